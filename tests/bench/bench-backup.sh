#!/usr/bin/env bash
# Backup benchmark (on demand, not in the default suite):
#   tests/bench/bench-backup.sh [BUILD_DIR]      BENCH_SIZE_MB=1024 by default
# Builds a SQLite store of BENCH_SIZE_MB in WAL mode, then, in the same run:
#   baseline  cp of the same file (page cache warm for both)
#   backup    gazelle-scheduler run backup (online backup API + integrity_check + fsync + rename)
# while a concurrent writer commits one row at a time; prints the backup/cp ratio and the
# writer's longest commit stall during the backup against its longest stall before it.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
size_mb=${BENCH_SIZE_MB:-1024}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/gs-bench-backup.XXXXXX")
trap 'kill "${writer:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
export XDG_STATE_HOME=$work/state
unset STATE_DIRECTORY DATABASE_URL BACKUP_SQLITE_PATH BACKUP_DIR
store=$XDG_STATE_HOME/gazelle-scheduler/gazelle-scheduler.sqlite

now() { date +%s.%N; }
"$build/gazelle-scheduler" migrate >/dev/null
echo "filling $store to ${size_mb} MiB…"
rows=$(( size_mb * 1024 * 1024 / 1100 ))
sqlite3 "$store" <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO gazelle_timeline_entries (external_id, occurred_at, type, summary, comment, synced_at)
SELECT 'tme_' || i, '2026-01-01T00:00:00.000000Z', 'SERVICE_ENTRY_MANUAL',
       hex(randomblob(200)), hex(randomblob(300)), '2026-01-01T00:00:00.000000Z' FROM n;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
bytes=$(stat -c %s "$store")
echo "store: $((bytes / 1024 / 1024)) MiB"
cat "$store" >/dev/null   # warm the page cache for both contenders

t0=$(now); cp "$store" "$work/copy.sqlite"; sync "$work/copy.sqlite"; t1=$(now)
cp_s=$(echo "$t1 - $t0" | bc -l); rm -f "$work/copy.sqlite"

# The writer: one INSERT + COMMIT at a time; reports the longest commit in each phase.
python3 - "$store" "$work/writer.out" <<'PY' &
import sqlite3, sys, time, signal, os
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
phase, worst, n = "before", {"before": 0.0, "during": 0.0}, {"before": 0, "during": 0}
def switch(*_):
    global phase
    phase = "during"
def stop(*_):
    with open(sys.argv[2], "w") as f:
        f.write(f"{worst['before']*1000:.1f} {worst['during']*1000:.1f} {n['before']} {n['during']}\n")
    os._exit(0)
signal.signal(signal.SIGUSR1, switch)
signal.signal(signal.SIGTERM, stop)
i = 0
while True:
    i += 1
    t = time.monotonic()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO gazelle_users (external_id, first_name, synced_at) VALUES (?, 'bench', '2026')", (f"usr_{i}",))
    db.execute("COMMIT")
    dt = time.monotonic() - t
    worst[phase] = max(worst[phase], dt)
    n[phase] += 1
    time.sleep(0.002)
PY
writer=$!
sleep 3
kill -USR1 "$writer"
t0=$(now); "$build/gazelle-scheduler" run backup; t1=$(now)
backup_s=$(echo "$t1 - $t0" | bc -l)
kill -TERM "$writer"; wait "$writer" || true
read -r stall_before stall_during n_before n_during < "$work/writer.out"

printf '\nbackup benchmark, %d MiB store, concurrent writer\n' "$((bytes / 1024 / 1024))"
printf '  cp (baseline)        %8.2f s\n' "$cp_s"
printf '  gazelle backup       %8.2f s   ratio %.2fx cp (includes integrity_check + fsync)\n' "$backup_s" "$(echo "$backup_s / $cp_s" | bc -l)"
printf '  writer longest stall %8.1f ms during backup (%d commits), %.1f ms before (%d commits)\n' \
        "$stall_during" "$n_during" "$stall_before" "$n_before"
