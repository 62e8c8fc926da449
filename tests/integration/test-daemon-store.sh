#!/bin/bash
# SPDX-License-Identifier: MIT
# The store goes down under a running gazelle-schedulerd (PostgreSQL stopped): every method
# answers StoreUnavailable, the same daemon process keeps serving, and once PostgreSQL is back
# it reconnects by itself (no restart) and runs tasks again.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

[ "$GS_STORE" = postgresql ] || skip_test "PostgreSQL only (GS_STORE=postgresql)"
[ -n "${SBX_PG_DATA:-}" ] || skip_test "no PostgreSQL cluster in this sandbox"
D=gazelle-schedulerd.service
ERR=com.piano_tek.GazelleScheduler1.Error
pg_user=$(stat -c %U "$SBX_PG_DATA")
pg_ctl_as_owner() { setpriv --reuid="$pg_user" --regid="$(id -g "$pg_user")" --init-groups -- pg_ctl -D "$SBX_PG_DATA" "$@"; }
err_name() {
    local out
    if out=$(dbus-send --session --print-reply --reply-timeout=30000 --dest="$GS_BUS" "$GS_PATH" "$GS_BUS.$1" "${@:2}" 2>&1); then
        echo OK
    else
        sed -n 's/^Error \([^:]*\):.*/\1/p' <<<"$out" | head -n 1
    fi
}
status_of() { q1 "SELECT status FROM scheduler_logs WHERE id='$1'"; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }

assert_eq OK "$(err_name GetLogs uint32:5)" "GetLogs with the store up (the daemon holds a connection)"
inv=$(systemctl --user show -p InvocationID --value "$D")

pg_ctl_as_owner stop -m fast -w >/dev/null
ok "PostgreSQL stopped under the daemon"
for round in 1 2; do
    # ListTasks first: its failure must be reported too, not read as "never run"
    assert_eq "$ERR.StoreUnavailable" "$(err_name ListTasks)" "store down ($round): ListTasks -> StoreUnavailable"
    assert_eq "$ERR.StoreUnavailable" "$(err_name GetLogs uint32:5)" "store down ($round): GetLogs -> StoreUnavailable"
    assert_eq "$ERR.StoreUnavailable" "$(err_name RunTask string:backup string:)" "store down ($round): RunTask -> StoreUnavailable"
done
assert_eq "$inv" "$(systemctl --user show -p InvocationID --value "$D")" "the same daemon process kept serving"

pg_ctl_as_owner -l "$SBX_LOG_DIR/postgresql.log" -w -t 30 -o \
    "-k $PGHOST -p $PGPORT -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
ok "PostgreSQL started again"
assert_eq OK "$(err_name GetLogs uint32:5)" "store back: GetLogs answers again (reconnected)"
assert_eq OK "$(err_name ListTasks)" "store back: ListTasks answers again"
out=$(gs_call RunTask ss backup '') || fail "RunTask after the store came back failed"
id=$(sed -n 's/^s "\(.*\)"$/\1/p' <<<"$out")
wait_for "run $id to succeed" 60 is_status "$id" success || fail "run $id: $(q "SELECT status,message FROM scheduler_logs WHERE id='$id'")"
ok "store back: RunTask backup ran to success (run $id)"
assert_eq "$inv" "$(systemctl --user show -p InvocationID --value "$D")" "still the same daemon process, no restart needed"
