#!/bin/bash
# SPDX-License-Identifier: MIT
# gazelle-schedulerd exits after GAZELLE_IDLE_EXIT_SEC idle seconds and the next call activates it
# again (SPEC §6: bus-activated, exits when idle).
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

