#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Static checks of the generated systemd units (units/meson.build):
#  1. every flavour (system, user, test) has every unit, no placeholder is left,
#     and the flavour-specific lines are where they belong;
#  2. systemd-analyze verify accepts every unit: the test flavour as it is
#     (--user), the install flavours (system and --user) on a copy whose
#     ExecStart=/ExecCondition= point at the build tree's binaries (verify fails
#     on binaries that are not installed);
#  3. systemd-analyze security --offline=yes rates every system-flavour
#     service at an exposure of 2.0 or less.
#
# Environment: GS_BUILD_DIR (meson build root), GS_SOURCE_DIR (source root).
# Exit 0 pass, 1 fail, 77 skip (only when systemd-analyze is missing).
set -uo pipefail

: "${GS_BUILD_DIR:?GS_BUILD_DIR must be the meson build root}"
: "${GS_SOURCE_DIR:?GS_SOURCE_DIR must be the source root}"
MAX_EXPOSURE=2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "SKIP: systemd-analyze is not installed"
        exit 77
fi

export LC_ALL=C.UTF-8 SYSTEMD_PAGER='' SYSTEMD_COLORS=0
units=$GS_BUILD_DIR/units
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# verify --user and security --offline need a runtime directory (without one they fail with "No medium found").
export XDG_RUNTIME_DIR=$tmp/runtime
mkdir -m 0700 "$XDG_RUNTIME_DIR"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
has() { grep -q -x -F -- "$2" "$1"; }              # file, exact line
has_re() { grep -q -E -- "$2" "$1"; }              # file, extended regex

tasks=(sync report backup alerts)
services=(gazelle-sync.service gazelle-report.service gazelle-backup.service gazelle-alerts.service
          gazelle-schedulerd.service gazelle-notify-failure@.service)
timers=(gazelle-sync.timer gazelle-report.timer gazelle-backup.timer gazelle-alerts.timer)
declare -A timeout=([sync]=2h [report]=30min [backup]=1h [alerts]=30min)

dbus_alias=dbus-com.piano_tek.GazelleScheduler1.service

# --- 1. files and flavours --------------------------------------------------
for flavour in system user test; do
        for u in "${services[@]}" "${timers[@]}"; do
                [ -f "$units/$flavour/$u" ] || fail "$flavour/$u was not generated"
        done
        # dbus/'s activation file starts the daemon by this name (SystemdService=).
        has "$units/$flavour/gazelle-schedulerd.service" "Alias=$dbus_alias" ||
                fail "$flavour/gazelle-schedulerd.service: no Alias=$dbus_alias"
        if [ "$flavour" = test ]; then
                # Copied with cp, a symlink would become a second, separate unit.
                [ ! -e "$units/$flavour/$dbus_alias" ] || fail "$flavour/$dbus_alias exists"
        else
                [ "$(readlink "$units/$flavour/$dbus_alias")" = gazelle-schedulerd.service ] ||
                        fail "$flavour/$dbus_alias is not a symlink to gazelle-schedulerd.service"
        fi
done
for f in "$GS_BUILD_DIR"/dbus/*.service; do
        [ -e "$f" ] || continue
        has_name=$(sed -n 's/^SystemdService=//p' "$f")
        [ "$has_name" = "$dbus_alias" ] || [ "$has_name" = gazelle-schedulerd.service ] ||
                fail "${f#"$GS_BUILD_DIR"/}: SystemdService=$has_name is not a unit of units/"
done
[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }

if left=$(grep -n -E '@[A-Za-z_]+@' "$units"/{system,user,test}/*); then
        fail "placeholders left in generated units:"; echo "$left"
fi


for f in "$units"/system/*.service; do
        u=${f##*/}
        if ! has "$f" "User=gazelle" || ! has "$f" "Group=gazelle"; then
                fail "system/$u: no User=/Group=gazelle"
        fi
        has "$f" "StateDirectory=gazelle-scheduler" || fail "system/$u: no StateDirectory="
        has "$f" "EnvironmentFile=-/etc/gazelle-scheduler/gazelle-scheduler.env" ||
                has_re "$f" '^EnvironmentFile=-/.*/gazelle-scheduler/gazelle-scheduler\.env$' ||
                fail "system/$u: no optional EnvironmentFile="
        has_re "$f" '^Exec(Start|Condition)=/[^ ]*/gazelle-scheduler(d)? --system( |$)' || fail "system/$u: ExecStart= without --system"
        ! has_re "$f" ' --user( |$)' || fail "system/$u: mentions --user"
        # Every LoadCredential= needs its SetCredential= default, or a missing
        # file fails the unit with 243/CREDENTIALS (systemd 252 has no "-" form).
        while read -r id; do
                has_re "$f" "^SetCredential=${id//./\\.}:" || fail "system/$u: LoadCredential=$id without SetCredential=$id: default"
        done < <(sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' "$f")
done
for flavour in user test; do
        for f in "$units/$flavour"/*.service; do
                u=${f##*/}
                if bad=$(grep -n -E '^(User|Group|DynamicUser|SupplementaryGroups|StateDirectory|LoadCredential|SetCredential)=' "$f"); then
                        fail "$flavour/$u: system-only settings in a user unit: $bad"
                fi
                has_re "$f" '^Exec(Start|Condition)=/[^ ]*/gazelle-scheduler(d)? --user( |$)' || fail "$flavour/$u: ExecStart= without --user"
                ! has_re "$f" ' --system( |$)' || fail "$flavour/$u: mentions --system"
                has "$f" "EnvironmentFile=-%E/gazelle-scheduler/gazelle-scheduler.env" || fail "$flavour/$u: no optional %E EnvironmentFile="
        done
done
for flavour in system user test; do
        d=$units/$flavour
        for t in "${tasks[@]}"; do
                f=$d/gazelle-$t.service
                has "$f" "Type=oneshot" || fail "$flavour/gazelle-$t.service: not Type=oneshot"
                has "$f" "OnFailure=gazelle-notify-failure@%n.service" || fail "$flavour/gazelle-$t.service: no OnFailure="
                has_re "$f" '^ExecCondition=.* should-run ' || fail "$flavour/gazelle-$t.service: no should-run guard"
                has "$f" "TimeoutStartSec=${timeout[$t]}" || fail "$flavour/gazelle-$t.service: TimeoutStartSec= is not ${timeout[$t]}"
                has "$f" "SyslogIdentifier=gazelle-scheduler" || fail "$flavour/gazelle-$t.service: SyslogIdentifier="
                f=$d/gazelle-$t.timer
                has "$f" "Persistent=true" || fail "$flavour/gazelle-$t.timer: not Persistent=true"
                has "$f" "WantedBy=timers.target" || fail "$flavour/gazelle-$t.timer: not WantedBy=timers.target"
                if bad=$(grep '^OnCalendar=' "$f" | grep -v -E '^OnCalendar=.* America/Montreal$'); then
                        fail "$flavour/gazelle-$t.timer: OnCalendar= without America/Montreal: $bad"
                fi
        done
        ! grep -q '^OnFailure=' "$d/gazelle-notify-failure@.service" || fail "$flavour/gazelle-notify-failure@.service has OnFailure="
        has "$d/gazelle-notify-failure@.service" "SyslogIdentifier=gazelle-scheduler" || fail "$flavour/gazelle-notify-failure@.service: SyslogIdentifier="
        has "$d/gazelle-schedulerd.service" "Type=dbus" || fail "$flavour/gazelle-schedulerd.service: not Type=dbus"
        has "$d/gazelle-schedulerd.service" "BusName=com.piano_tek.GazelleScheduler1" || fail "$flavour/gazelle-schedulerd.service: BusName="
        has "$d/gazelle-schedulerd.service" "SyslogIdentifier=gazelle-schedulerd" || fail "$flavour/gazelle-schedulerd.service: SyslogIdentifier="
done
[ "$failures" -eq 0 ] && ok "flavours: system, user, test have every unit with the right settings"

# --- 2. systemd-analyze verify ------------------------------------------------
# The test flavour names the build tree's binaries; the copies of the install
# flavours are rewritten to them.
bindir=$(sed -n 's|^ExecStart=\(/[^ ]*\)/gazelle-scheduler .*|\1|p' "$units/test/gazelle-sync.service")
have_bins=yes
for b in gazelle-scheduler gazelle-schedulerd; do
        if [ ! -x "$bindir/$b" ]; then
                fail "$bindir/$b does not exist: build the binaries first (units/test/ runs them)"
                have_bins=no
        fi
done

verify() { # label, user|system, unit files... (run from the directory holding them)
        local label=$1 mode=(); shift
        [ "$1" = user ] && mode=(--user)
        shift
        local out rc
        out=$(systemd-analyze verify "${mode[@]}" "$@" 2>&1); rc=$?
        # Warnings about our units (unknown keys, bad values) do not change the
        # exit status: fail on any line naming one. Lines about the host's own
        # units (pulled in through network-online.target) are not ours.
        local ours
        ours=$(printf '%s\n' "$out" | grep -E 'gazelle' || true)
        if [ "$rc" -ne 0 ] || [ -n "$ours" ]; then
                fail "verify $label (rc=$rc):"; printf '%s\n' "$out" | sed 's/^/    /'
        else
                ok "verify $label: ${#} units"
        fi
}

if [ "$have_bins" = yes ]; then
        for flavour in system user test; do
                d=$tmp/verify-$flavour
                mkdir -p "$d"
                [ -L "$units/$flavour/$dbus_alias" ] && cp -P "$units/$flavour/$dbus_alias" "$d/"
                for f in "$units/$flavour"/*; do
                        [ -L "$f" ] && continue
                        sed -E "s#^(Exec[A-Za-z]*=[-+!@:]*)/[^ ]*/(gazelle-schedulerd?)( |\$)#\\1$bindir/\\2\\3#" "$f" > "$d/${f##*/}"
                done
                if [ "$flavour" = test ]; then
                        cmp -s "$units/test/gazelle-sync.service" "$d/gazelle-sync.service" || fail "test flavour does not run $bindir"
                fi
                # An instance of the template, as OnFailure= starts it.
                ln -s gazelle-notify-failure@.service "$d/gazelle-notify-failure@gazelle-sync.service.service"
                manager=user
                [ "$flavour" = system ] && manager=system
                cd "$d" || exit 1
                verify "$flavour" "$manager" ./*.service ./*.timer
                cd - >/dev/null || exit 1
        done
fi

# The task names the units pass are ones the binary accepts: outside a unit
# (no INVOCATION_ID) should-run answers 0 for a known task without asking the
# service manager, and 2 for an unknown one, which ExecCondition= would take
# for "skip" every day.
if [ "$have_bins" = yes ]; then
        for t in "${tasks[@]}"; do
                f=$units/test/gazelle-$t.service
                cond=$(sed -n 's/^ExecCondition=//p' "$f")
                start=$(sed -n 's/^ExecStart=//p' "$f")
                if [ "${cond##* }" != "${start##* }" ]; then
                        fail "gazelle-$t.service: ExecCondition= and ExecStart= name different tasks"
                        continue
                fi
                mkdir -p "$tmp/home"
                # shellcheck disable=SC2086 # the command line is split like systemd does
                env -u INVOCATION_ID HOME="$tmp/home" XDG_STATE_HOME="$tmp/home/state" \
                        XDG_CONFIG_HOME="$tmp/home/config" $cond >"$tmp/should-run.out" 2>&1
                rc=$?
                if [ "$rc" -ne 0 ]; then
                        fail "gazelle-$t.service: '$cond' exits $rc outside a unit (unknown task?):"
                        sed 's/^/    /' "$tmp/should-run.out"
                fi
        done
        [ "$failures" -eq 0 ] && ok "should-run accepts the task of every task unit"
fi

# --- 3. systemd-analyze security ---------------------------------------------
printf '%-34s %s\n' "system service" "exposure"
for u in "${services[@]}"; do
        out=$(systemd-analyze security --offline=yes --no-pager "$units/system/$u" 2>&1)
        level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        warn=$(printf '%s\n' "$out" | grep -E '^/.*(ignoring|Failed|rror)' || true)
        if [ -z "$level" ]; then
                fail "security $u: no exposure level:"; printf '%s\n' "$out" | tail -5 | sed 's/^/    /'
                continue
        fi
        printf '%-34s %s\n' "$u" "$level"
        [ -z "$warn" ] || fail "security $u: the unit does not parse cleanly: $warn"
        awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }' ||
                fail "security $u: exposure $level > $MAX_EXPOSURE"
done

# --- 4. sysusers.d and tmpfiles.d --------------------------------------------
# Applied to a scratch root: the user and groups exist, the configuration
# directories get their modes. Needs root (tmpfiles chowns).
if [ "$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
        r=$tmp/root
        mkdir -p "$r/etc" "$r/usr/lib/sysusers.d" "$r/usr/lib/tmpfiles.d"
        cp "$GS_BUILD_DIR/units/gazelle-scheduler.sysusers" "$r/usr/lib/sysusers.d/gazelle-scheduler.conf"
        cp "$units/gazelle-scheduler.conf" "$r/usr/lib/tmpfiles.d/gazelle-scheduler.conf"
        if ! out=$(systemd-sysusers --root="$r" gazelle-scheduler.conf 2>&1); then
                fail "systemd-sysusers: $out"
        elif ! out=$(systemd-tmpfiles --create --root="$r" gazelle-scheduler.conf 2>&1); then
                fail "systemd-tmpfiles: $out"
        else
                gid=$(awk -F: '$1 == "gazelle" { print $3 }' "$r/etc/group")
                grep -q '^gazelle:x:[0-9]*:'"$gid"':' "$r/etc/passwd" || fail "sysusers: no user gazelle in group gazelle"
                grep -q '^gazelle-admin:' "$r/etc/group" || fail "sysusers: no group gazelle-admin"
                confdir=$(awk '$1 == "d" && $2 !~ /credentials$/ { print $2 }' "$units/gazelle-scheduler.conf")
                got=$(stat -c '%a %u %g' "$r$confdir" 2>&1)
                [ "$got" = "750 0 $gid" ] || fail "tmpfiles: $confdir is '$got', expected '750 0 $gid'"
                got=$(stat -c '%a %u %g' "$r$confdir/credentials" 2>&1)
                [ "$got" = "700 0 0" ] || fail "tmpfiles: $confdir/credentials is '$got', expected '700 0 0'"
                [ "$failures" -eq 0 ] && ok "sysusers.d creates gazelle and gazelle-admin; tmpfiles.d creates $confdir"
        fi
else
        echo "note: sysusers.d/tmpfiles.d not applied (needs root and systemd-sysusers/systemd-tmpfiles)"
fi

if [ "$failures" -ne 0 ]; then
        echo "$failures failure(s)"
        exit 1
fi
echo "all unit checks passed"
