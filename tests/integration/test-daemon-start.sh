#!/bin/bash
# SPDX-License-Identifier: MIT
# No call waits for its timeout when gazelle-schedulerd cannot run: after repeated crashes (more
# than systemd's default start limit, 5 in 10 s) the next call activates a fresh daemon and is
# answered; with an invalid configuration every call gets InvalidConfiguration at once (the
# daemon takes its name to say so), and calls in a row keep getting it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

D=gazelle-schedulerd.service
# quick_call METHOD [ARGS...] - busctl with a 5 s timeout (callers default to 25 s or more);
# prints the elapsed milliseconds on fd 3.
quick_call() {
    local t0 t1 rc=0
    t0=${EPOCHREALTIME/[.,]/}
    busctl --user --timeout=5 call "$GS_BUS" "$GS_PATH" "$GS_BUS" "$@" >"$SBX_DIR/out" 2>"$SBX_DIR/err" || rc=$?
    t1=${EPOCHREALTIME/[.,]/}
    echo $(( (t1 - t0) / 1000 )) >&3
    return $rc
}

# --- seven crashes within a few seconds, then a call
for i in 1 2 3 4 5 6 7; do
    quick_call ListTasks 3>/dev/null || fail "call $i before the crash failed: $(cat "$SBX_DIR/err")"
    pid=$(systemctl --user show -p MainPID --value "$D")
    [ "$pid" != 0 ] || fail "no daemon after call $i"
    kill -SEGV "$pid"
    wait_for "crash $i to be noticed" 10 unit_inactive "$D" || fail "$D still $(unit_state "$D") after SIGSEGV"
done
ms=$(quick_call ListTasks 3>&1 >/dev/null) || fail "after 7 crashes, ListTasks failed: $(cat "$SBX_DIR/err") ($(systemctl --user show -p Result --value "$D"))"
ok "7 crashes in a row, then ListTasks answered in $ms ms (a fresh daemon, no start limit in the way)"

# --- an invalid configuration: every call answered at once, call after call
envfile=$XDG_CONFIG_HOME/gazelle-scheduler/gazelle-scheduler.env
mkdir -p "$(dirname "$envfile")"
echo "BACKUP_KEEP=abc" >> "$envfile"
systemctl --user stop "$D"
max=0
for i in $(seq 8); do
    ms=$(quick_call GetLogs u 5 3>&1 >/dev/null) && fail "call $i succeeded with an invalid configuration"
    grep -q "BACKUP_KEEP" "$SBX_DIR/err" || fail "call $i: the error does not name the setting: $(cat "$SBX_DIR/err")"
    (( ms > max )) && max=$ms
done
(( max < 4000 )) || fail "a call with an invalid configuration took $max ms"
ok "invalid configuration: 8 calls in a row each answered InvalidConfiguration naming it (slowest $max ms)"
sed -i '/^BACKUP_KEEP=abc$/d' "$envfile"
wait_for "the unconfigured daemon to give its name back" 10 unit_inactive "$D" || fail "$D still $(unit_state "$D")"
quick_call ListTasks 3>/dev/null || fail "configuration fixed, ListTasks still fails: $(cat "$SBX_DIR/err")"
ok "configuration fixed: the next call is served"
