#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/system-sandbox.sh leaves nothing behind: three boxes in a row (each with a unit and an
# orphan that ignore SIGTERM; the unit is SIGKILLed after its 2 s stop timeout), one whose runner
# gets SIGTERM and one whose runner is SIGKILLed leave no process in their pid namespace, no mount on the host, no cgroup,
# no scratch directory (the SIGKILLed box's empty cgroups and directory are swept by the next
# run). Runs on the host, not in a box.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/lib.sh
. "$here/lib.sh"
box=$here/../system-sandbox.sh
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

mounts() { findmnt -rn -o TARGET,SOURCE,FSTYPE | sort; }
# Cgroups and scratch directories of boxes whose runner is gone (gsys-PID-…, gsys-PID.…): a box
# that another test runs at the same time (the production suites) is alive and not a leftover.
leftovers() {
    local d pid
    for d in /sys/fs/cgroup/*/gsys-* /sys/fs/cgroup/gsys-* /tmp/gsys-*; do
        [ -e "$d" ] || continue
        pid=${d##*/gsys-}; pid=${pid%%[-.]*}
        kill -0 "$pid" 2>/dev/null || echo "$d"
    done
    return 0
}
# PIDs of host processes in pid namespace $1 ("pid:[N]")
in_ns() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
    done
    return 0
}
ns_empty() { [ -z "$(in_ns "$1")" ]; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
base_mounts=$(mounts)
base_left=$(leftovers)

# Inside: the box's pid namespace, a unit and an orphan that both ignore SIGTERM.
inner='readlink /proc/1/ns/pid
systemctl is-system-running
systemd-run -q --unit=stubborn -p TimeoutStopSec=2 sh -c "trap \"\" TERM; sleep infinity"
setsid sh -c "trap \"\" TERM; sleep infinity" </dev/null >/dev/null 2>&1 &
systemctl is-active stubborn.service'

for i in 1 2 3; do
    t0=${EPOCHREALTIME/[.,]/}
    "$box" sh -c "$inner" >"$out/run$i" 2>"$out/err$i" || fail "box $i failed: $(cat "$out/err$i")"
    t1=${EPOCHREALTIME/[.,]/}
    mapfile -t lines <"$out/run$i"
    ns=${lines[0]}
    assert_eq running "${lines[1]}" "box $i: the system manager is running"
    assert_eq active "${lines[2]}" "box $i: the stubborn unit ran"
    wait_for "the processes of box $i to go" 10 ns_empty "$ns" || fail "box $i left processes: $(in_ns "$ns")"
    assert_eq "$base_mounts" "$(mounts)" "box $i: host mounts unchanged"
    assert_eq "$base_left" "$(leftovers)" "box $i: no cgroup or scratch directory left"
    ok "box $i: no process left in $ns ($(( (t1 - t0) / 1000 )) ms for the whole run)"
done

# A box whose runner gets SIGTERM while its command runs: orderly teardown, rc 143.
"$box" sh -c 'readlink /proc/1/ns/pid; exec sleep 300' >"$out/termed" 2>"$out/err-termed" &
victim=$!
has_ns_t() { [ -s "$out/termed" ]; }
wait_for "the box to start its command" 30 has_ns_t || fail "box did not start: $(cat "$out/err-termed")"
ns=$(head -n 1 "$out/termed")
kill -TERM "$victim"
rc=0; wait "$victim" || rc=$?
assert_eq 143 "$rc" "SIGTERM to the runner: rc 143"
wait_for "the SIGTERMed box's processes to go" 10 ns_empty "$ns" || fail "SIGTERMed box left processes: $(in_ns "$ns")"
assert_eq "$base_mounts" "$(mounts)" "SIGTERM: host mounts unchanged"
assert_eq "$base_left" "$(leftovers)" "SIGTERM: no cgroup or scratch directory left"

# A box whose runner is SIGKILLed while its command runs.
"$box" sh -c 'readlink /proc/1/ns/pid; exec sleep 300' >"$out/killed" 2>"$out/err-killed" &
victim=$!
has_ns() { [ -s "$out/killed" ]; }
wait_for "the victim box to start its command" 30 has_ns || fail "victim did not start: $(cat "$out/err-killed")"
ns=$(head -n 1 "$out/killed")
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
wait_for "the SIGKILLed box's processes to go" 10 ns_empty "$ns" || fail "SIGKILLed box left processes: $(in_ns "$ns")"
ok "SIGKILLed runner: the kernel killed the box ($ns empty)"
assert_eq "$base_mounts" "$(mounts)" "SIGKILLed runner: host mounts unchanged"
"$box" true 2>"$out/err-sweep" || fail "the box after the SIGKILL failed: $(cat "$out/err-sweep")"
grep -q "removing stale cgroup" "$out/err-sweep" || fail "the next run did not sweep the SIGKILLed box's cgroups: $(cat "$out/err-sweep")"
assert_eq "$base_left" "$(leftovers)" "the next run swept the SIGKILLed box's cgroups and scratch directory"
