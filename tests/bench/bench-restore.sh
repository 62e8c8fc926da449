#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Restore benchmark (on demand, not in the default suite), inside tests/sandbox.sh for its
# PostgreSQL (it re-executes itself there):
#   tests/bench/bench-restore.sh [BUILD_DIR]     BENCH_ROWS=283000 by default
# Makes a backup holding BENCH_ROWS timeline entries (the production size), then, in the same
# run, times:
#   cp+fsync        copying the backup file and fsyncing it (the SQLite floor)
#   integrity       sqlite3's PRAGMA integrity_check of the backup (what recognition must read)
#   dry-run         gazelle-scheduler restore --dry-run (recognition, counts: no copy)
#   sqlite restore  gazelle-scheduler restore into the SQLite store (checks, work copy and
#                   forward migration, pre-restore copy, the copy itself)
#   COPY            psql \copy of the same rows into an empty PostgreSQL table (the PostgreSQL
#                   floor: its bulk load)
#   pg restore      gazelle-scheduler restore into the PostgreSQL store (the same steps, the
#                   pre-restore export, DELETE + INSERT in one transaction)
# and prints each time and its ratio to its floor.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
rows=${BENCH_ROWS:-283000}
[ -n "${SBX_PG_URL:-}" ] || { echo "SKIP: no PostgreSQL in this sandbox"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gs-bench-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_STATE_HOME=$work/state BACKUP_DIR=$work/backups
unset STATE_DIRECTORY DATABASE_URL BACKUP_SQLITE_PATH INVOCATION_ID
store=$XDG_STATE_HOME/gazelle-scheduler/gazelle-scheduler.sqlite
gs=$build/gazelle-scheduler
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

"$gs" migrate >/dev/null
echo "filling the store with $rows timeline entries…"
sqlite3 "$store" >/dev/null <<SQL
PRAGMA synchronous=OFF;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO gazelle_timeline_entries (external_id, occurred_at, type, summary, comment, client_external_id,
                                      piano_external_id, user_external_id, synced_at)
SELECT 'tme_' || i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', 1700000000 + i * 60, 'unixepoch'),
       'SERVICE_ENTRY_MANUAL', 'Accord et réglage ' || i, 'Humidité 42 %, marteaux à revoir, client ' || (i % 900),
       'cli_' || (i % 900), 'pno_' || (i % 1500), 'usr_' || (i % 4), '2026-01-01T00:00:00.000000Z' FROM n;
SQL
"$gs" run backup >/dev/null 2>&1
backup=$(find "$BACKUP_DIR" -name 'db_backup_*.sqlite' | head -n 1)
echo "backup: $(( $(stat -c %s "$backup") / 1024 / 1024 )) MiB"
cat "$backup" >/dev/null # warm page cache for every contender

t=$(now); cp "$backup" "$work/copy.sqlite" && sync "$work/copy.sqlite"; cp_s=$(elapsed "$t")
t=$(now); sqlite3 "$backup" "PRAGMA integrity_check" >/dev/null; ic_s=$(elapsed "$t")
t=$(now); "$gs" restore --dry-run "$backup" >/dev/null 2>&1; dry_s=$(elapsed "$t")
t=$(now); "$gs" restore "$backup" 2>"$work/sqlite.log" || { cat "$work/sqlite.log"; exit 1; }; sq_s=$(elapsed "$t")

export DATABASE_URL=$SBX_PG_URL
"$gs" migrate >/dev/null
sqlite3 -csv "$backup" "SELECT external_id, occurred_at, type, summary, comment, client_external_id,
                              piano_external_id, user_external_id, synced_at FROM gazelle_timeline_entries" \
    >"$work/rows.csv"
psql -X -q -d "$SBX_PG_URL" -c "CREATE TABLE bench_copy (LIKE gazelle_timeline_entries)"
t=$(now)
psql -X -q -d "$SBX_PG_URL" -c "\\copy bench_copy (external_id, occurred_at, type, summary, comment,
    client_external_id, piano_external_id, user_external_id, synced_at) FROM '$work/rows.csv' CSV"
copy_s=$(elapsed "$t")
psql -X -q -d "$SBX_PG_URL" -c "DROP TABLE bench_copy"
t=$(now); "$gs" restore "$backup" 2>"$work/pg.log" || { cat "$work/pg.log"; exit 1; }; pg_s=$(elapsed "$t")
n=$(psql -X -q -A -t -d "$SBX_PG_URL" -c "SELECT count(*) FROM gazelle_timeline_entries")
[ "$n" = "$rows" ] || { echo "PostgreSQL holds $n rows after the restore, expected $rows"; exit 1; }

printf '%-16s %8.2f s\n' "cp+fsync" "$cp_s" "integrity" "$ic_s" "dry-run" "$dry_s" "sqlite restore" "$sq_s" \
    "COPY" "$copy_s" "pg restore" "$pg_s"
printf 'dry-run / integrity = %.1f\n' "$(echo "$dry_s / $ic_s" | bc -l)"
printf 'sqlite restore / cp+fsync = %.1f\n' "$(echo "$sq_s / $cp_s" | bc -l)"
printf 'pg restore / COPY = %.1f\n' "$(echo "$pg_s / $copy_s" | bc -l)"
