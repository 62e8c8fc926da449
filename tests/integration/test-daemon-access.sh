#!/bin/bash
# SPDX-License-Identifier: MIT
# Who may call gazelle-schedulerd (only root and members of gazelle-admin run tasks).
# The sandbox's session bus lives in /run/user/0 (0700), so other uids reach the daemon on a
# private dbus-daemon this test starts, with the daemon run on it by hand (--user with
# DBUS_SESSION_BUS_ADDRESS). No systemd is on that bus: an authorized RunTask gets as far as
# StartUnit and ends SystemdUnavailable, which is how the test tells "authorized" from "refused".
#   A. permissive bus: the daemon's own check on the sender's credentials (uid nobody);
#   B. the shipped dbus/…conf policy, groups renamed to ones this machine has.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

ERR=com.piano_tek.GazelleScheduler1.Error
DENIED=org.freedesktop.DBus.Error.AccessDenied
getent passwd nobody >/dev/null && getent group nogroup >/dev/null || skip_test "needs user nobody and group nogroup"
getent passwd backup >/dev/null && getent group backup >/dev/null || skip_test "needs user and group backup"
# nobody's only group is nogroup; backup's only group is backup; daemon is in neither.
[ -z "$(id -Gn nobody | tr ' ' '\n' | grep -vx nogroup)" ] || skip_test "nobody has unexpected groups: $(id -Gn nobody)"

# Other uids must reach the socket: $SBX_DIR is 0700 (a tmpfs private to this sandbox).
chmod o+x "$SBX_DIR"
pbus=$SBX_DIR/pbus
mkdir -p -m 0755 "$pbus"
ADDR=unix:path=$pbus/socket
BUS_PID= DAEMON_PID=

# as USER CMD... - run CMD with USER's uid, primary group and supplementary groups (no PAM).
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }
# err_name USER METHOD ARGS... - the D-Bus error name of the call made as USER, "OK" on success.
err_name() {
    local out u=$1 m=$2
    shift 2
    if out=$(as "$u" dbus-send --bus="$ADDR" --print-reply --reply-timeout=20000 --dest="$GS_BUS" "$GS_PATH" "$m" "$@" 2>&1); then
        echo OK
    else
        sed -n 's/^Error \([^:]*\):.*/\1/p' <<<"$out" | head -n 1
        printf '%s\n' "$out" > "$SBX_DIR/last-error"
    fi
}

# start_bus [POLICY] - a private dbus-daemon; everyone may connect; POLICY is included last.
start_bus() {
    {
        cat <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>$ADDR</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
EOF
        [ -z "${1:-}" ] || echo "  <include>$1</include>"
        echo '</busconfig>'
    } > "$pbus/bus.conf"
    rm -f "$pbus/socket"
    dbus-daemon --config-file="$pbus/bus.conf" --nofork --nopidfile --nosyslog 2>"$pbus/bus.log" &
    BUS_PID=$!
    bus_up() { busctl --address="$ADDR" call org.freedesktop.DBus / org.freedesktop.DBus GetId >/dev/null 2>&1; }
    wait_for "the private bus" 10 bus_up || fail "private dbus-daemon did not start: $(cat "$pbus/bus.log")"
}

# start_daemon [VAR=VALUE...] - gazelle-schedulerd on the private bus, as root.
start_daemon() {
    env DBUS_SESSION_BUS_ADDRESS="$ADDR" GAZELLE_IDLE_EXIT_SEC=0 "$@" \
        "$GS_BUILD_DIR/gazelle-schedulerd" --user 2>>"$pbus/daemon.log" &
    DAEMON_PID=$!
    has_owner() { busctl --address="$ADDR" status "$GS_BUS" >/dev/null 2>&1; }
    wait_for "the daemon on the private bus" 10 has_owner || fail "daemon did not own $GS_BUS: $(cat "$pbus/daemon.log")"
}

stop_all() {
    local p
    for p in $DAEMON_PID $BUS_PID; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    DAEMON_PID= BUS_PID=
}
trap 'stop_all; _gs_cleanup' EXIT

rows() { q1 "SELECT count(*) FROM scheduler_logs"; }

# --- A. permissive bus: the daemon's own credential check
start_bus
start_daemon
assert_eq OK "$(err_name nobody "$GS_BUS.GetLogs" uint32:5)" "nobody: GetLogs answered"
assert_eq OK "$(err_name nobody "$GS_BUS.ListTasks")" "nobody: ListTasks answered"
before=$(rows); [ -n "$before" ] || fail "no store after GetLogs"
assert_eq "$DENIED" "$(err_name nobody "$GS_BUS.RunTask" string:backup string:)" "nobody: RunTask -> AccessDenied"
grep -q "Only root and members of group gazelle-admin" "$SBX_DIR/last-error" \
    || fail "AccessDenied does not come from the daemon's check: $(cat "$SBX_DIR/last-error")"
assert_eq OK "$(err_name daemon "$GS_BUS.GetLogs" uint32:0)" "uid daemon: GetLogs answered"
assert_eq "$DENIED" "$(err_name daemon "$GS_BUS.RunTask" string:backup string:tech@piano-tek.com)" \
    "uid daemon: RunTask with an email -> AccessDenied"
assert_eq "$before" "$(rows)" "a refused RunTask writes no row"
# stderr is not the journal: the daemon logs to daemon.log too.
grep -q "refused: caller nobody (uid 65534) is neither root nor in group gazelle-admin" "$pbus/daemon.log" \
    || fail "refusal not logged: $(tail -n 5 "$pbus/daemon.log")"
ok "the refusal is logged with the caller's name and uid"
# root is authorized: the call goes on to StartUnit, which fails here (no systemd on this bus).
assert_eq "$ERR.SystemdUnavailable" "$(err_name root "$GS_BUS.RunTask" string:backup string:)" \
    "root: RunTask authorized (then SystemdUnavailable: no systemd on the private bus)"
st=$(q "SELECT status, triggered_by, triggered_by_user FROM scheduler_logs WHERE triggered_by_user='root'")
assert_eq "error|api|root" "$st" "the unstartable run is closed as error, not left running"

# The group is configurable: with GAZELLE_ADMIN_GROUP=nogroup, nobody is an admin.
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
start_daemon GAZELLE_ADMIN_GROUP=nogroup
assert_eq "$ERR.SystemdUnavailable" "$(err_name nobody "$GS_BUS.RunTask" string:backup string:)" \
    "GAZELLE_ADMIN_GROUP=nogroup: nobody's RunTask is authorized"
assert_eq "$DENIED" "$(err_name daemon "$GS_BUS.RunTask" string:backup string:)" \
    "GAZELLE_ADMIN_GROUP=nogroup: uid daemon still refused"
assert_eq "error|api|nobody" \
    "$(q "SELECT status, triggered_by, triggered_by_user FROM scheduler_logs WHERE triggered_by_user='nobody'")" \
    "nobody's run recorded as api + nobody"
stop_all

# --- B. the shipped bus policy (gazelle -> nogroup, gazelle-admin -> backup)
sed -e 's/group="gazelle-admin"/group="backup"/' -e 's/group="gazelle"/group="nogroup"/' \
    "$GS_BUILD_DIR/dbus/$GS_BUS.conf" > "$pbus/policy.conf"
grep -q 'group="backup"' "$pbus/policy.conf" && grep -q 'group="nogroup"' "$pbus/policy.conf" \
    || fail "policy file has no gazelle/gazelle-admin group rules to rename"
start_bus "$pbus/policy.conf"
start_daemon GAZELLE_ADMIN_GROUP=backup
assert_eq OK "$(err_name nobody "$GS_BUS.GetLogs" uint32:1)" "policy: group gazelle may call GetLogs"
assert_eq OK "$(err_name nobody "$GS_BUS.ListTasks")" "policy: group gazelle may call ListTasks"
assert_eq OK "$(err_name nobody org.freedesktop.DBus.Introspectable.Introspect)" "policy: group gazelle may introspect"
assert_eq "$DENIED" "$(err_name nobody "$GS_BUS.RunTask" string:backup string:)" "policy: group gazelle may not RunTask"
grep -q "Rejected send message" "$SBX_DIR/last-error" \
    || fail "expected the bus policy to reject RunTask: $(cat "$SBX_DIR/last-error")"
ok "policy: that refusal comes from dbus-daemon, before the daemon sees the call"
assert_eq "$DENIED" "$(err_name daemon "$GS_BUS.GetLogs" uint32:1)" "policy: other users may not even read"
assert_eq "$ERR.SystemdUnavailable" "$(err_name backup "$GS_BUS.RunTask" string:backup string:)" \
    "policy: group gazelle-admin may RunTask (authorized by the bus and the daemon)"
assert_eq "$ERR.SystemdUnavailable" "$(err_name root "$GS_BUS.RunTask" string:sync string:)" "policy: root may RunTask"
stop_all
