#!/bin/bash
# SPDX-License-Identifier: MIT
# gazelle-schedulerd exits after GAZELLE_IDLE_EXIT_SEC idle seconds and the next call activates it
# again (bus-activated, exits when idle); calls racing the idle exit are all answered.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

D=gazelle-schedulerd.service
# --- idle exit and re-activation
systemctl --user set-environment GAZELLE_IDLE_EXIT_SEC=2
gs_call ListTasks >/dev/null || fail "ListTasks failed"
wait_for "$D to be active" 10 unit_active "$D" || fail "$D is $(unit_state $D) after a call"
ok "$D activated by a call"
t0=${EPOCHREALTIME/[.,]/}
wait_for "$D to exit when idle" 15 unit_inactive "$D" || fail "$D still $(unit_state $D)"
t1=${EPOCHREALTIME/[.,]/}
ok "$D exited after $(( (t1 - t0) / 1000 )) ms idle (GAZELLE_IDLE_EXIT_SEC=2)"
gs_call GetLogs u 1 >/dev/null || fail "GetLogs after idle exit failed"
wait_for "$D to be active again" 10 unit_active "$D" || fail "$D is $(unit_state $D) after the next call"
ok "the next call activates $D again"
systemctl --user unset-environment GAZELLE_IDLE_EXIT_SEC


# --- calls racing the idle exit: bursts of 4 parallel calls spaced around the idle deadline
# (GAZELLE_IDLE_EXIT_SEC=1, checked every second), so that some land while the daemon gives its
# name back and drains its queue. Every call must be answered, and the daemon must have exited
# and come back several times in between, or the race was never run.
systemctl --user set-environment GAZELLE_IDLE_EXIT_SEC=1
systemctl --user stop "$D"
race=$SBX_DIR/race; mkdir -p "$race"
invocations=$SBX_DIR/invocations
: > "$invocations"
delays=(0.4 0.6 0.8 0.9 0.95 1.0 1.05 1.1 1.2 1.3 0.7 0.85 1.0 1.15 0.5 1.4)
for i in "${!delays[@]}"; do
    for j in 1 2 3 4; do
        ( gs_call GetLogs u 1 >/dev/null 2>"$race/$i.$j.err" && echo ok > "$race/$i.$j" || echo failed > "$race/$i.$j" ) &
    done
    wait
    systemctl --user show -p InvocationID --value "$D" >> "$invocations"
    # around the 1 s idle deadline and its 1 s check ticks: some gaps outlive the daemon, some not
    sleep "${delays[$i]}"
done
n_ok=$(grep -lx ok "$race"/* | wc -l)
[ "$n_ok" = 64 ] || fail "$((64 - n_ok)) of 64 calls racing the idle exit failed: $(cat "$race"/*.err | sort | uniq -c | head -5)"
n_inv=$(sort -u "$invocations" | grep -c .)
[ "$n_inv" -ge 3 ] || fail "only $n_inv daemon instance(s) in 16 rounds: the idle exit was never raced"
ok "64 calls racing the idle exit all answered across $n_inv daemon instances"
systemctl --user unset-environment GAZELLE_IDLE_EXIT_SEC
