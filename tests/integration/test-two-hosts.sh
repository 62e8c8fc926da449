#!/bin/bash
# SPDX-License-Identifier: MIT
# Two hosts on one PostgreSQL store reached through a real pgbouncer in transaction mode (run
# with SBX_PGBOUNCER=1 GS_STORE=postgresql): "hote-a" and "hote-b" are terminals of their own,
# each with its own host name (a UTS namespace) and state directory; the sandbox's user manager
# is a third host (its timers, its daemon). Checks:
#   1. 20 rounds where hote-a and hote-b start the same sync at once: exactly one runs, the
#      other ends `skipped` naming the holder's host;
#   2. while hote-a runs, the daemon of another host answers AlreadyRunning naming hote-a and
#      ListTasks says running; the timer's start there stands by; SIGKILL of hote-a mid-run:
#      the standby takes the expired lease over (failover time printed), closes hote-a's run as
#      interrupted and runs the slot once;
#   3. 5 sequential syncs alternating hosts: all `success` (nothing leaked);
#   4. pgbouncer restarted mid-sync: `error` naming the lost connection, whole pages only, the
#      lease released, the next run completes.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"
[ "$GS_STORE" = postgresql ] || skip_test "two hosts share a PostgreSQL store (GS_STORE=postgresql)"

fake_pid= holder_pid=
cleanup() {
    [ -z "$holder_pid" ] || kill -KILL "$holder_pid" 2>/dev/null || true
    [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true
    _gs_cleanup
}
trap cleanup EXIT

port_file=$SBX_DIR/fake-gazelle.port
python3 "$GS_SOURCE_DIR/tests/fakes/gazelle.py" --port-file "$port_file" --refresh-token ref-hosts >/dev/null &
fake_pid=$!
has_port() { [ -s "$port_file" ]; }
wait_for "the fake Gazelle server" 10 has_port || fail "fake Gazelle did not start"
base=http://127.0.0.1:$(cat "$port_file")
latency() { curl -s -X POST -d "{\"latency_ms\": $1}" "$base/_control" >/dev/null; }

# A short lease, so that the failover happens within the test (production: 60 s; TWO_HOSTS_LEASE=60
# measures that one).
export GAZELLE_LEASE_SECONDS=${TWO_HOSTS_LEASE:-4}
export GAZELLE_API_URL=$base/graphql/private/ GAZELLE_TOKEN_URL=$base/developer/oauth/token
export GAZELLE_CLIENT_ID=fake-client-id GAZELLE_CLIENT_SECRET=fake-client-secret
systemctl --user set-environment GAZELLE_API_URL="$GAZELLE_API_URL" GAZELLE_TOKEN_URL="$GAZELLE_TOKEN_URL" \
        GAZELLE_CLIENT_ID="$GAZELLE_CLIENT_ID" GAZELLE_CLIENT_SECRET="$GAZELLE_CLIENT_SECRET" \
        GAZELLE_LEASE_SECONDS="$GAZELLE_LEASE_SECONDS"
echo ref-hosts | gazelle-scheduler --user auth --refresh-token - >/dev/null || fail "auth --refresh-token - failed"

# on HOST CMD... - CMD as host HOST: its own host name and state directory, the shared store.
# Every step execs (unshare, sh, CMD), so `on ... &` leaves $! the runner's own pid; it replaces
# the calling shell: call it in the background or in a subshell.
on() {
    local h=$1; shift
    mkdir -p "$SBX_DIR/hosts/$h"
    XDG_STATE_HOME=$SBX_DIR/hosts/$h INVOCATION_ID= exec unshare --uts -- sh -c 'hostname "$0" && exec "$@"' "$h" "$@"
}
here_host=$(hostname)
[ "$here_host" != hote-a ] && [ "$here_host" != hote-b ] || fail "the machine's host name collides with the test's"

rows_since() { q "SELECT host, status, message FROM scheduler_logs WHERE task_name = 'sync_gazelle' AND id IN ($1)"; }
run_id_of() { sed -n 's/.*exécution \([0-9a-f-]\{36\}\).*/\1/p' "$1" | head -n 1; }

# --- 1. 20 rounds, both hosts at once
declare -A wins=()
latency 150
for round in $(seq 20); do
    on hote-a gazelle-scheduler --user run sync >"$SBX_DIR/a.out" 2>&1 & a=$!
    on hote-b gazelle-scheduler --user run sync >"$SBX_DIR/b.out" 2>&1 & b=$!
    wait "$a" || fail "round $round: hote-a's runner failed: $(cat "$SBX_DIR/a.out")"
    wait "$b" || fail "round $round: hote-b's runner failed: $(cat "$SBX_DIR/b.out")"
    ids="'$(run_id_of "$SBX_DIR/a.out")', '$(run_id_of "$SBX_DIR/b.out")'"
    got=$(rows_since "$ids" | sort)
    n_success=$(grep -c '|success|' <<<"$got" || true)
    n_skipped=$(grep -c '|skipped|' <<<"$got" || true)
    [ "$n_success" = 1 ] && [ "$n_skipped" = 1 ] || fail "round $round: expected one success and one skipped: $got"
    winner=$(grep '|success|' <<<"$got" | cut -d'|' -f1)
    grep '|skipped|' <<<"$got" | grep -q "déjà en cours sur l'hôte $winner" \
        || fail "round $round: the skipped run does not name $winner: $got"
    wins[$winner]=$(( ${wins[$winner]:-0} + 1 ))
done
assert_eq 0 "$(q1 "SELECT count(*) FROM task_leases")" "no lease left after the rounds"
ok "20 rounds of two simultaneous syncs: exactly one ran each time, the other skipped naming it (hote-a won ${wins[hote-a]:-0}, hote-b ${wins[hote-b]:-0})"

# --- 2. failover
latency $(( (GAZELLE_LEASE_SECONDS + 30) * 1000 ))   # the four paginations run at once: one wait
on hote-a gazelle-scheduler --user run sync >"$SBX_DIR/holder.out" 2>&1 &
holder_pid=$!
held_by_a() { [ "$(q1 "SELECT host FROM task_leases WHERE task_name = 'sync_gazelle'")" = hote-a ]; }
wait_for "hote-a's lease" 20 held_by_a || fail "hote-a never took the lease: $(cat "$SBX_DIR/holder.out")"
a_run=$(q1 "SELECT run_id FROM task_leases WHERE task_name = 'sync_gazelle'")
ok "hote-a runs the sync (run $a_run)"

if out=$(gs_call RunTask ss sync "" 2>&1); then fail "RunTask started a sync another host runs: $out"; fi
grep -q "AlreadyRunning\|already running" <<<"$out" && grep -q hote-a <<<"$out" \
    || fail "RunTask should answer AlreadyRunning naming hote-a: $out"
ok "the daemon of another host answers AlreadyRunning naming hote-a"
listed=$(busctl --user --json=short call "$GS_BUS" "$GS_PATH" "$GS_BUS" ListTasks)
running=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print([t["running"]["data"] for t in d["data"][0] if t["name"]["data"]=="sync_gazelle"][0])' "$listed")
assert_eq True "$running" "ListTasks there says sync_gazelle is running"

# The timer of this third host fires: its run stands by behind hote-a's lease.
dropin=$XDG_CONFIG_HOME/systemd/user/gazelle-sync.timer.d
mkdir -p "$dropin"
printf '[Timer]\nOnActiveSec=1s\nAccuracySec=1ms\n' > "$dropin/50-test-now.conf"
systemctl --user daemon-reload
systemctl --user restart gazelle-sync.timer
standby() { q1 "SELECT id FROM scheduler_logs WHERE task_name = 'sync_gazelle' AND host = '$here_host' AND status = 'running' AND triggered_by = 'scheduler'" | grep -q .; }
wait_for "the timer's run on $here_host" 30 standby || fail "no standby run on $here_host"
waiting() { systemctl --user show -p StatusText --value gazelle-sync.service | grep -q "en attente de l'hôte hote-a"; }
wait_for "the standby to wait for hote-a" 20 waiting \
    || fail "the standby does not wait: $(systemctl --user show -p StatusText --value gazelle-sync.service)"
ok "the timer's run on $here_host stands by behind hote-a's lease"

latency 0
kill -KILL "$holder_pid"
t_kill=${EPOCHREALTIME/[.,]/}
wait "$holder_pid" 2>/dev/null || true
holder_pid=
taken_over() { journalctl -o json --no-pager -q SYSLOG_IDENTIFIER=gazelle-scheduler GAZELLE_TASK=sync_gazelle 2>/dev/null | grep -q 'bail repris de l'"'"'hôte hote-a'; }
wait_for "the standby to take the lease over" $(( GAZELLE_LEASE_SECONDS + 30 )) taken_over || fail "no take-over within 30 s of the kill: $(journalctl --no-pager -q -o cat GAZELLE_TASK=sync_gazelle | tail -n 8) / $(q "SELECT * FROM task_leases") / $(systemctl --user show -p StatusText --value gazelle-sync.service)"
t_take=$(journalctl -o json --no-pager -q SYSLOG_IDENTIFIER=gazelle-scheduler GAZELLE_TASK=sync_gazelle \
         | grep 'bail repris de l'"'"'hôte hote-a' | head -n 1 \
         | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["__REALTIME_TIMESTAMP"])')
failover_ms=$(( (t_take - t_kill) / 1000 ))
ok "failover: hote-a killed -> $here_host's run took the lease over after ${failover_ms} ms (lease ${GAZELLE_LEASE_SECONDS} s)"
echo "FAILOVER_MS=$failover_ms LEASE_SECONDS=$GAZELLE_LEASE_SECONDS"
[ "$failover_ms" -le $(( (GAZELLE_LEASE_SECONDS + 3) * 1000 )) ] || fail "failover took ${failover_ms} ms"

done_here() { q1 "SELECT status FROM scheduler_logs WHERE task_name = 'sync_gazelle' AND host = '$here_host' AND triggered_by = 'scheduler' ORDER BY started_at DESC LIMIT 1" | grep -qv running; }
wait_for "the catch-up run to end" 60 done_here || fail "the catch-up run did not end"
assert_eq success "$(q1 "SELECT status FROM scheduler_logs WHERE task_name = 'sync_gazelle' AND host = '$here_host' AND triggered_by = 'scheduler' ORDER BY started_at DESC LIMIT 1")" \
    "the catch-up on $here_host ran the slot: success"
assert_eq error "$(q1 "SELECT status FROM scheduler_logs WHERE id = '$a_run'")" "hote-a's killed run is closed as error"
q1 "SELECT message FROM scheduler_logs WHERE id = '$a_run'" | grep -q "Interrompue" || fail "hote-a's run is not marked interrupted"
ok "hote-a's killed run is marked interrupted"
assert_eq 1 "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name = 'sync_gazelle' AND triggered_by = 'scheduler' AND status IN ('success', 'warning')")" \
    "exactly one scheduled success for the slot"
rm -rf "$dropin"; systemctl --user daemon-reload

# --- 3. alternating sequential syncs
latency 0
for i in 1 2 3 4 5; do
    h=hote-a; [ $(( i % 2 )) = 0 ] && h=hote-b
    (on "$h" gazelle-scheduler --user run sync) >"$SBX_DIR/seq.out" 2>&1 || fail "sync $i on $h failed: $(cat "$SBX_DIR/seq.out")"
    id=$(run_id_of "$SBX_DIR/seq.out")
    assert_eq "$h|success" "$(q "SELECT host, status FROM scheduler_logs WHERE id = '$id'")" "sequential sync $i on $h: success"
done
assert_eq 0 "$(q1 "SELECT count(*) FROM task_leases")" "no lease left behind"

# --- 4. the pooler restarted in the middle of a sync: the run ends `error` naming the lost
# connection, the store keeps whole pages only, the lease goes, the next run completes. Each of
# these entities is one page of the fake: after emptying them, each count is 0 or all of it.
counts() { q "SELECT (SELECT count(*) FROM gazelle_clients), (SELECT count(*) FROM gazelle_pianos), (SELECT count(*) FROM gazelle_appointments)"; }
full=$(counts)
psql -X -q -d "$SBX_PG_DIRECT_URL" -c "TRUNCATE gazelle_clients, gazelle_pianos, gazelle_appointments CASCADE" \
    || fail "cannot empty the tables"
latency 3000
on hote-a gazelle-scheduler --user run sync >"$SBX_DIR/cut.out" 2>&1 &
cut_pid=$!
wait_for "hote-a's lease" 20 held_by_a || fail "hote-a never took the lease: $(cat "$SBX_DIR/cut.out")"
sleep 1
"$SBX_PGBOUNCER_CTL" restart || fail "pgbouncer did not restart"
ok "pgbouncer restarted under hote-a's sync"
rc=0; wait "$cut_pid" || rc=$?
[ "$rc" != 0 ] || fail "the sync cut from its store succeeded: $(cat "$SBX_DIR/cut.out")"
cut_id=$(run_id_of "$SBX_DIR/cut.out")
got=$(q "SELECT status, message FROM scheduler_logs WHERE id = '$cut_id'")
case "$got" in
    "error|"*"connexion à la base perdue"*) ok "the run ends error naming the lost connection: ${got#error|}";;
    *) fail "expected error naming the lost connection, got: $got / $(cat "$SBX_DIR/cut.out")";;
esac
IFS='|' read -r -a want <<<"$full"
IFS='|' read -r -a have <<<"$(counts)"
for i in 0 1 2; do
    [ "${have[$i]}" = 0 ] || [ "${have[$i]}" = "${want[$i]}" ] \
        || fail "a half-written page: $(counts) (pages of $full)"
done
ok "the store holds whole pages only: $(counts) of $full"
no_lease() { [ "$(q1 "SELECT count(*) FROM task_leases")" = 0 ]; }
wait_for "the lease to go" 10 no_lease || fail "the lease stayed: $(q "SELECT * FROM task_leases")"
ok "the lease is released"
latency 0
(on hote-b gazelle-scheduler --user run sync) >"$SBX_DIR/after.out" 2>&1 || fail "the next sync failed: $(cat "$SBX_DIR/after.out")"
assert_eq success "$(q1 "SELECT status FROM scheduler_logs WHERE id = '$(run_id_of "$SBX_DIR/after.out")'")" \
    "the next run (hote-b) completes"
