#!/bin/bash
# SPDX-License-Identifier: MIT
# RunTask whose unit never runs the runner: systemd's answer closes the pending row, so none stays
# `running` (issue 3): an ExecCondition= that fails -> `skipped`; a missing binary -> `error`
# naming the job result; both also end with TaskFinished. A pending row left by a daemon killed
# between its INSERT and StartUnit is never adopted by an unrelated start: a plain `systemctl
# start` records its own run and closes the orphan at once, as a restarted daemon does.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

U=gazelle-backup.service
dropin=$XDG_CONFIG_HOME/systemd/user/$U.d
status_of() { q1 "SELECT status FROM scheduler_logs WHERE id='$1'"; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
mon=$SBX_DIR/monitor.txt
timeout 120 busctl --user --match "type='signal',interface='$GS_BUS',member='TaskFinished'" monitor >"$mon" 2>&1 &
mon_ready() { [ -s "$mon" ]; }
wait_for "busctl monitor to start" 10 mon_ready || fail "busctl monitor printed nothing"

finished() { grep -A4 "$FIN_ID" "$mon" | grep -q "\"$FIN_STATUS\""; }
# run_with_dropin NAME CONTENT EXPECTED_STATUS MESSAGE_PART
run_with_dropin() {
    mkdir -p "$dropin"
    printf '[Service]\n%s\n' "$2" > "$dropin/$1.conf"
    systemctl --user daemon-reload
    local out id st
    out=$(gs_call RunTask ss backup tech@piano-tek.com) || fail "$1: RunTask failed: $out"
    id=$(sed -n 's/^s "\(.*\)"$/\1/p' <<<"$out")
    wait_for "$1: run $id to be closed" 30 is_status "$id" "$3" \
        || fail "$1: run $id: $(q "SELECT status, message FROM scheduler_logs WHERE id='$id'")"
    st=$(q "SELECT status, message FROM scheduler_logs WHERE id='$id'")
    case "$st" in *"$4"*) ok "$1: run $id closed '$3' by the daemon: ${st#*|}";; *) fail "$1: '$st' lacks '$4'";; esac
    FIN_ID=$id FIN_STATUS=$3
    wait_for "$1: TaskFinished($3)" 10 finished || fail "$1: no TaskFinished($3) for $id: $(cat "$mon")"
    ok "$1: TaskFinished($3) emitted"
    rm -f "$dropin/$1.conf"
    systemctl --user daemon-reload
    systemctl --user reset-failed "$U" 2>/dev/null || true
}

run_with_dropin condition 'ExecCondition=/bin/false' skipped "condition non remplie"
run_with_dropin missing-binary $'ExecStart=\nExecStart=/nonexistent/gazelle-scheduler run backup' error "résultat du job : failed"

# --- a daemon killed between its INSERT and StartUnit leaves a pending row tied to no job
host=$(hostname)
# plant_orphan ID: the row exactly as RunTask writes it before StartUnit's reply
plant_orphan() {
    q "INSERT INTO scheduler_logs (id, task_name, task_label, started_at, status, message, stats, triggered_by,
       triggered_by_user, created_at, host, caller_uid, caller_name)
       VALUES ('$1', 'backup', 'Backup SQL', '$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)', 'running',
       'En attente du démarrage par systemd', '{}', 'manual', 'intrus@piano-tek.com',
       '$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)', '$host', 4242, 'intrus')"
}
orphan=0e4f3a2b-1c5d-4e6f-8a7b-9c0d1e2f3a4b
plant_orphan "$orphan"
systemctl --user start "$U" || fail "systemctl start $U failed"
own=$(q1 "SELECT id FROM scheduler_logs WHERE task_name='backup' AND id <> '$orphan' ORDER BY started_at DESC LIMIT 1")
assert_eq "success|manual||" "$(q "SELECT status, triggered_by, triggered_by_user, caller_name FROM scheduler_logs WHERE id='$own'")" \
    "plain systemctl start: its own row ($own), manual, nobody's claim nor caller"
assert_eq "error|Interrompue" \
    "$(q "SELECT status, substr(message, 1, 11) FROM scheduler_logs WHERE id='$orphan'")" \
    "the orphan pending row was not adopted and is closed at once (interrupted)"

orphan2=5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d
plant_orphan "$orphan2"
systemctl --user stop gazelle-schedulerd.service
gs_call GetLogs u 1 >/dev/null || fail "GetLogs after a daemon restart failed"
wait_for "the restarted daemon to close the orphan" 10 is_status "$orphan2" error \
    || fail "orphan $orphan2 after a daemon restart: $(q "SELECT status, message FROM scheduler_logs WHERE id='$orphan2'")"
ok "a restarted daemon closes a dead daemon's pending row at once"

assert_eq 0 "$(q1 "SELECT count(*) FROM scheduler_logs WHERE status='running'")" "no row left running"
kill "$(jobs -p)" 2>/dev/null || true
