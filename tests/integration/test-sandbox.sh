#!/bin/bash
# SPDX-License-Identifier: MIT
# Self-test of tests/sandbox.sh: journald, the user manager, the session bus, units, timers and
# PostgreSQL are real and reachable. Run as `tests/sandbox.sh tests/integration/test-sandbox.sh`
# (started directly, it re-executes itself inside the sandbox).
# shellcheck disable=SC2016  # $VARS in single quotes are expanded by the unit's shell
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/lib.sh
. "$here/lib.sh"
t=$$   # unit and file names are unique, so that several copies can share one sandbox

# --- environment
assert_eq /run/user/0 "$XDG_RUNTIME_DIR" "XDG_RUNTIME_DIR"
case "$HOME" in "$SBX_DIR"/*) ok "HOME on the sandbox tmpfs ($HOME)";; *) fail "HOME is $HOME";; esac
assert_eq tmpfs "$(stat -fc %T "$HOME")" "HOME is a tmpfs"
assert_eq "$XDG_CONFIG_HOME/systemd/user" "$SBX_UNIT_DIR" "SBX_UNIT_DIR"

# --- journald
systemd-cat -t sbx-selftest echo hi
entry=$(journal_wait 10 SYSLOG_IDENTIFIER=sbx-selftest) || fail "no journal entry from systemd-cat"
case "$entry" in *'"MESSAGE":"hi"'*) ok "journald received the systemd-cat entry";; *) fail "unexpected entry: $entry";; esac

# --- user manager and session bus
state=$(systemctl --user is-system-running || true)
case "$state" in running|degraded) ok "systemctl --user is-system-running: $state";; *) fail "manager state '$state'";; esac
if [ -z "${SBX_STOP_TIMEOUT:-}" ]; then
    assert_eq 10s "$(systemctl --user show -p DefaultTimeoutStopUSec --value)" "DefaultTimeoutStopSec=10s from user.conf"
fi
id=$(busctl --user call org.freedesktop.DBus / org.freedesktop.DBus GetId) || fail "GetId on the session bus"
[[ $id =~ ^s\ \"[0-9a-f]{32}\"$ ]] || fail "GetId returned '$id'"
ok "busctl --user GetId: $id"
owner=$(busctl --user call org.freedesktop.DBus / org.freedesktop.DBus GetNameOwner s org.freedesktop.systemd1) \
    || fail "org.freedesktop.systemd1 has no owner on the session bus"
ok "org.freedesktop.systemd1 on the session bus ($owner)"

# --- file-based oneshot unit
stamp=$XDG_RUNTIME_DIR/sbx-oneshot-$t.stamp
cat > "$SBX_UNIT_DIR/sbx-oneshot-$t.service" <<EOF
[Unit]
Description=sandbox self-test oneshot
[Service]
Type=oneshot
SyslogIdentifier=sbx-oneshot-$t
ExecStart=/bin/sh -c 'echo "oneshot ran"; echo "\$PGHOST" > "$stamp"'
EOF
systemctl --user daemon-reload
systemctl --user start "sbx-oneshot-$t.service" || fail "sbx-oneshot-$t.service failed"
[ -e "$stamp" ] || fail "no $stamp"
ok "oneshot unit wrote $stamp"
assert_eq "${PGHOST:-}" "$(cat "$stamp")" "services inherit the PG* environment"
journal_wait 10 SYSLOG_IDENTIFIER="sbx-oneshot-$t" MESSAGE="oneshot ran" >/dev/null || fail "oneshot output not in the journal"
ok "oneshot stdout reached the journal"

# --- transient unit
systemd-run --user --wait --quiet --collect -p SyslogIdentifier=sbx-transient \
    /bin/touch "$XDG_RUNTIME_DIR/sbx-transient-$t.stamp" || fail "systemd-run --user failed"
[ -e "$XDG_RUNTIME_DIR/sbx-transient-$t.stamp" ] || fail "transient unit did not run"
ok "transient unit ran"

# --- timer
cat > "$SBX_UNIT_DIR/sbx-tick-$t.service" <<EOF
[Service]
Type=oneshot
ExecStart=/bin/touch $XDG_RUNTIME_DIR/sbx-tick-$t.stamp
EOF
cat > "$SBX_UNIT_DIR/sbx-tick-$t.timer" <<'EOF'
[Timer]
OnActiveSec=1s
AccuracySec=1ms
EOF
systemctl --user daemon-reload
t0=${EPOCHREALTIME/[.,]/}
systemctl --user start "sbx-tick-$t.timer"
tick_fired() { [ -e "$XDG_RUNTIME_DIR/sbx-tick-$t.stamp" ]; }
wait_for "sbx-tick-$t.timer to fire" 10 tick_fired || fail "timer did not fire"
ms=$(( (${EPOCHREALTIME/[.,]/} - t0) / 1000 ))
(( ms >= 900 )) || fail "timer fired after ${ms} ms, before OnActiveSec=1s"
ok "timer fired after ${ms} ms"

# --- PostgreSQL
if [ "${SBX_NO_PG:-0}" = 1 ] && [ "${SBX_REUSED:-0}" != 1 ]; then
    if [ -n "${PGHOST:-}" ] || [ -n "${SBX_PG_URL:-}" ]; then fail "PG* set with SBX_NO_PG=1"; fi
    ok "SBX_NO_PG=1: no PG* exported"
elif [ -z "${SBX_PG_URL:-}" ]; then
    [ "${SBX_REUSED:-0}" = 1 ] || fail "no PostgreSQL in the sandbox (SBX_PG_URL unset)"
    ok "# SKIP PostgreSQL: reused sandbox was started with SBX_NO_PG=1"
else
    assert_eq 1 "$(psql -Atc 'select 1')" "psql via PG* environment"
    assert_eq 1 "$(DATABASE_URL=$SBX_PG_URL psql "$SBX_PG_URL" -Atc 'select 1')" "psql via SBX_PG_URL ($SBX_PG_URL)"
    systemd-run --user --wait --quiet --collect -p SyslogIdentifier=sbx-pgcheck \
        /bin/sh -c "psql -Atc 'select 40 + 2' > $XDG_RUNTIME_DIR/sbx-pg-$t.out" || fail "psql under the user manager failed"
    assert_eq 42 "$(cat "$XDG_RUNTIME_DIR/sbx-pg-$t.out")" "psql from a user service"
fi
