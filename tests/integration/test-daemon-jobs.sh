#!/bin/bash
# SPDX-License-Identifier: MIT
# RunTask whose unit never runs the runner: systemd's answer closes the pending row, so none stays
# `running` (issue 3): an ExecCondition= that fails -> `skipped`; a missing binary -> `error`
# naming the job result; both also end with TaskFinished.
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
assert_eq 0 "$(q1 "SELECT count(*) FROM scheduler_logs WHERE status='running'")" "no row left running"
kill "$(jobs -p)" 2>/dev/null || true
