#!/bin/bash
# SPDX-License-Identifier: MIT
# GetLogs benchmark (on demand, not in the default suite):
#   tests/bench/bench-getlogs.sh [BUILD_DIR]     BENCH_ROWS=100000 BENCH_CALLS=100000 by default
# Inside tests/sandbox.sh (user manager, session bus, PostgreSQL), for SQLite then PostgreSQL:
# fills scheduler_logs with BENCH_ROWS rows, then
#   daemon    GetLogs(20) through gazelle-schedulerd, BENCH_CALLS sequential calls on one
#             connection (getlogs-load): p50/p99/max latency, calls per second; the daemon's
#             VmRSS/VmHWM after 100 calls and after BENCH_CALLS calls;
#   baseline  the same query (the same 20 rows, newest first) without the daemon: in one
#             sqlite3 process / pgbench (the engine's own cost), and one sqlite3/psql process
#             per query (what a shell script pays); ratios daemon/baseline.
# Numbers depend on the machine's load: run it on a quiet machine and read p50 first.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
if [ -z "${SBX_DIR:-}" ]; then
    GS_BUILD_DIR=$(cd "${1:-$src/build}" && pwd)
    meson compile -C "$GS_BUILD_DIR" getlogs-load >/dev/null
    export GS_BUILD_DIR GS_SOURCE_DIR=$src GS_STORE=sqlite
    exec env SBX_TIMEOUT="${SBX_TIMEOUT:-3000}" "$src/tests/sandbox.sh" "$here/bench-getlogs.sh"
fi
# shellcheck source=tests/integration/setup.sh
. "$src/tests/integration/setup.sh"

ROWS=${BENCH_ROWS:-100000}
CALLS=${BENCH_CALLS:-100000}
LOAD=$GS_BUILD_DIR/tests/bench/getlogs-load
D=gazelle-schedulerd.service
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n 1 || true)
[ -x "$LOAD" ] || fail "$LOAD missing: meson compile -C $GS_BUILD_DIR getlogs-load"
SQL="SELECT id, task_name, task_label, started_at, completed_at, duration_seconds, status, message, stats,
triggered_by, triggered_by_user, created_at, invocation_id, host, pid FROM scheduler_logs ORDER BY started_at DESC LIMIT 20"
SQL1=$(tr '\n' ' ' <<<"$SQL")

fill() {
    q "DELETE FROM scheduler_logs"
    if [ "$GS_STORE" = postgresql ]; then
        q "INSERT INTO scheduler_logs (task_name, task_label, started_at, completed_at, duration_seconds, status,
               message, stats, triggered_by, triggered_by_user, created_at, invocation_id, host)
           SELECT 'sync_gazelle', 'Synchronisation', t, t + interval '42 seconds', 42,
                  CASE WHEN i % 50 = 0 THEN 'error' ELSE 'success' END,
                  'Synchronisation terminée : ' || i || ' clients, 0 erreur', '{\"clients\": 1200}',
                  CASE WHEN i % 10 = 0 THEN 'manual' ELSE 'scheduler' END,
                  CASE WHEN i % 10 = 0 THEN 'tech@piano-tek.com' END, t, md5(i::text), 'bench'
           FROM generate_series(1, $ROWS) AS i,
                LATERAL (SELECT timestamptz '2015-01-01 00:00Z' + i * interval '1 hour') AS x(t)"
        q "ANALYZE scheduler_logs"
    else
        q "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS),
                ts(i, t) AS (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', '2015-01-01', '+' || i || ' hours') FROM n)
           INSERT INTO scheduler_logs (id, task_name, task_label, started_at, completed_at, duration_seconds, status,
               message, stats, triggered_by, triggered_by_user, created_at, invocation_id, host)
           SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a'
                        || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
                  'sync_gazelle', 'Synchronisation', t, t, 42,
                  CASE WHEN i % 50 = 0 THEN 'error' ELSE 'success' END,
                  'Synchronisation terminée : ' || i || ' clients, 0 erreur', '{\"clients\": 1200}',
                  CASE WHEN i % 10 = 0 THEN 'manual' ELSE 'scheduler' END,
                  CASE WHEN i % 10 = 0 THEN 'tech@piano-tek.com' END, t, lower(hex(randomblob(16))), 'bench'
           FROM ts"
        q "ANALYZE"
    fi
    assert_eq "$ROWS" "$(q1 "SELECT count(*) FROM scheduler_logs")" "$GS_STORE: $ROWS rows in scheduler_logs"
}

# mem - "VmRSS=… VmHWM=…" of the daemon, in KiB
mem() {
    local pid
    pid=$(systemctl --user show -p MainPID --value "$D")
    [ "$pid" -gt 0 ] || fail "$D not running"
    awk '/^VmRSS|^VmHWM/ { printf "%s=%s ", $1, $2 } END { print "KiB" }' "/proc/$pid/status" | tr -d ':'
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
ratio() { python3 -c "print(f'{$1 / $2:.3g}')"; }

# Per-query microseconds of the same query repeated N times in one engine process.
in_process_us() {
    local n=$1 t0 t1
    if [ "$GS_STORE" = postgresql ]; then
        printf '%s;\n' "$SQL1" > "$SBX_DIR/q.sql"
        "$PGBENCH" -n -M prepared -f "$SBX_DIR/q.sql" -t "$n" -c 1 "$SBX_PG_URL" 2>/dev/null \
            | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' | python3 -c 'import sys; print(f"{float(sys.stdin.read()) * 1000:.1f}")'
    else
        for _ in $(seq "$n"); do printf '%s;\n' "$SQL1"; done > "$SBX_DIR/q.sql"
        t0=${EPOCHREALTIME/[.,]/}
        sqlite3 -batch "$GS_DB" < "$SBX_DIR/q.sql" > /dev/null
        t1=${EPOCHREALTIME/[.,]/}
        python3 -c "print(f'{($t1 - $t0) / $n:.1f}')"
    fi
}

# Per-query microseconds with one sqlite3/psql process per query (median of N).
per_process_us() {
    local n=$1 i t0 t1
    for i in $(seq "$n"); do
        t0=${EPOCHREALTIME/[.,]/}
        if [ "$GS_STORE" = postgresql ]; then
            psql -X -q -A -t -d "$SBX_PG_URL" -c "$SQL1" > /dev/null
        else
            sqlite3 -batch "$GS_DB" "$SQL1" > /dev/null
        fi
        t1=${EPOCHREALTIME/[.,]/}
        echo $(( t1 - t0 ))
    done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

bench_store() {
    GS_STORE=$1
    gs_select_store
    systemctl --user stop "$D" 2>/dev/null || true
    systemctl --user set-environment GAZELLE_IDLE_EXIT_SEC=0   # no idle exit between phases
    gs_call ListTasks > /dev/null || fail "ListTasks failed"  # activates the daemon, migrates the store
    fill
    systemctl --user restart "$D"   # a fresh daemon for the memory figures

    local first rest inproc perproc m100 mN
    first=$("$LOAD" 100 20) || fail "getlogs-load 100: $first"
    m100=$(mem)
    rest=$("$LOAD" $(( CALLS - 100 )) 20) || fail "getlogs-load: $rest"
    mN=$(mem)
    case "$rest" in *"rows=20/20"*) ;; *) fail "GetLogs(20) did not return 20 rows: $rest";; esac
    inproc=$(in_process_us 2000)
    perproc=$(per_process_us 100)

    local p50 p99
    p50=$(field p50_us "$rest"); p99=$(field p99_us "$rest")
    echo "== $GS_STORE, $ROWS rows in scheduler_logs"
    echo "   daemon GetLogs(20), calls 101-$CALLS: $rest"
    echo "   daemon memory after 100 calls:       $m100"
    echo "   daemon memory after $CALLS calls: $mN"
    echo "   baseline, one process, same query:   ${inproc} us/query  -> GetLogs p50 = $(ratio "$p50" "$inproc") x"
    echo "   baseline, one process per query:     ${perproc} us/query (median of 100) -> GetLogs p50 = $(ratio "$p50" "$perproc") x"
    echo "   p99/p50 = $(ratio "$p99" "$p50")"
}

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench_store sqlite
[ -n "${SBX_PG_URL:-}" ] && bench_store postgresql || echo "# no PostgreSQL in this sandbox: skipped"
systemctl --user unset-environment GAZELLE_IDLE_EXIT_SEC
