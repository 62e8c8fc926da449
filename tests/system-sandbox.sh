#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/system-sandbox.sh CMD [ARGS...]
#
# Boots the host's systemd as the *system* manager, PID 1 of private pid, mount, uts, ipc, net
# and cgroup namespaces, on an overlay of the host's / (writes to /usr, /etc, /var stay in a
# tmpfs), with its own journald, system bus (dbus.socket) and bus-activated polkitd; runs CMD
# inside it as root (nsenter), then halts it and removes everything, whatever happens.
# Exit code = CMD's (124 on GSYS_TIMEOUT, 1 when the box does not come up, 77 = skip when this
# host cannot make one: not root, no writable cgroupfs, no systemd).
#
# What the design rests on (systemd 252, dbus 1.14, polkit 122, hybrid cgroups, a host whose
# PID 1 is not systemd):
#  - Host side: NAME/{outer,entered,payload} cgroups in each hierarchy systemd uses (unified and
#    name=systemd on a hybrid host). The box runs in payload; commands entered with nsenter run
#    in entered, so teardown finds them (nsenter forwards no signal and never reaps).
#  - `setpriv --pdeathsig KILL unshare --fork --pid ... --kill-child=SIGKILL`: whatever kills
#    this script kills the box (the kernel kills a pid namespace with its PID 1).
#  - Stage 1 (PID 1 of the new pid namespace) moves itself into payload, then
#    `exec unshare --cgroup`: the cgroup mounts made inside are rooted at payload.
#  - Stage 2 builds the root: an overlay (lowerdir=/, tmpfs upper) with fresh proc (/proc/sys
#    read-only), read-only sysfs, a dedicated tmpfs on /sys/fs/cgroup holding cgroup2 (unified)
#    and name=systemd, then remounted read-only (a writable one lets systemd mount the host's v1
#    controllers and make slices there), a private /dev (a few nodes, devpts newinstance, a log
#    file as /dev/console), tmpfs /run and /tmp, an overlay of its own over GS_SOURCE_DIR and
#    GS_BUILD_DIR (a tree below /tmp or on another mount). Its /etc gets a hostname, a fresh machine-id, no
#    host *.wants (postgresql, cockpit, apt timers…), an empty fstab, volatile journald without
#    kmsg/audit, DefaultTimeoutStopSec=10s, units touching hardware or the host masked, and
#    default.target = basic.target.
#  - pivot_root, then `mount --make-rshared /`: systemd makes / shared only outside containers,
#    and without it LoadCredential= fails with EACCES (the credential mount never propagates).
#  - systemd runs with container=gsys, no generators (host-specific, and they halve start-up),
#    and a bounding set without sys_module, sys_time, sys_rawio, audit_*, syslog, wake_alarm.
#  - Ready when /run/systemd/private exists and `systemctl is-system-running --wait` answers.
#  - Teardown: SIGKILL the entered commands (halt hangs on them), SIGRTMIN+3 to PID 1 (halt,
#    < 1 s), SIGKILL after GSYS_HALT_TIMEOUT; remove the cgroups; sweep those of boxes whose owner
#    died (a SIGKILLed run).
#  - The box sees the host's packages through the overlay: tests/deps.sh installs them on the
#    host. Writes to the host's files before pivot_root would hit the real disk: stage 2 writes
#    only below its tmpfs.
#
# Knobs: GSYS_TIMEOUT=600 (CMD limit, seconds), GSYS_HALT_TIMEOUT=20, GSYS_VERBOSE=1 (timings),
# GSYS_DUMP=1|fail (journal on stderr at the end: always | when CMD failed; default fail),
# GSYS_PASSENV="VAR ..." (more variables handed to CMD; GS_* always are).
# Inside, CMD sees PATH, HOME=/root, LANG, GSYS=1 and the passed variables; the box's console
# log is /run/gsys-console.log.

# shellcheck disable=SC2317  # functions are invoked indirectly (traps, wait_for)
set -u -o pipefail
shopt -s nullglob

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
GSYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'system-sandbox: %s\n' "$*" >&2; }
vlog() { [ "${GSYS_VERBOSE:-0}" = 1 ] && log "$@"; return 0; }
skip() { printf 'system-sandbox: SKIP: %s\n' "$*" >&2; exit 77; }
elapsed() { local t=${EPOCHREALTIME/[.,]/}; printf '%d.%02d' $(( (t - $1) / 1000000 )) $(( (t - $1) % 1000000 / 10000 )); }
wait_for() {
    local _d=$1 _s=$2 _now _end
    shift 2
    _now=${EPOCHREALTIME/[.,]/}; _end=$(( _now + _s * 1000000 ))
    until "$@"; do
        _now=${EPOCHREALTIME/[.,]/}
        (( _now < _end )) || { log "timed out after ${_s}s waiting for $_d"; return 1; }
        sleep 0.02
    done
}

# ---------------------------------------------------------------------------------------------
# Stage 2: PID 1 of the namespaces, in its own cgroup namespace. Builds the root, execs systemd.
# ---------------------------------------------------------------------------------------------
stage2() {
    local scratch=$1 r
    set -e
    r=$scratch/root
    mount -t tmpfs -o mode=0755,size=2g gsys "$scratch"
    mkdir -p "$scratch/upper" "$scratch/work" "$r"
    mount -t overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" gsys-root "$r"
    mount -t proc proc "$r/proc"
    mount --bind "$r/proc/sys" "$r/proc/sys"
    mount -o remount,bind,ro "$r/proc/sys"
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
    mount -t tmpfs -o mode=0755,size=4m gsys-cgroup "$r/sys/fs/cgroup"
    mkdir "$r/sys/fs/cgroup/unified" "$r/sys/fs/cgroup/systemd"
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup/unified"
    mount -t cgroup -o nosuid,nodev,noexec,none,name=systemd cgroup "$r/sys/fs/cgroup/systemd"
    mount -o remount,ro "$r/sys/fs/cgroup"
    mount -t tmpfs -o mode=0755,size=8m,nosuid gsys-dev "$r/dev"
    cp -a /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty "$r/dev/"
    mkdir "$r/dev/pts" "$r/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
    ln -s pts/ptmx "$r/dev/ptmx"
    ln -s /proc/self/fd "$r/dev/fd"
    ln -s /proc/self/fd/0 "$r/dev/stdin"; ln -s /proc/self/fd/1 "$r/dev/stdout"; ln -s /proc/self/fd/2 "$r/dev/stderr"
    : > "$scratch/console.log"
    : > "$r/dev/console"
    mount --bind "$scratch/console.log" "$r/dev/console"
    mount -t tmpfs -o mode=0755,nosuid,nodev,size=256m gsys-run "$r/run"
    mount -t tmpfs -o mode=1777,nosuid,nodev,size=1g gsys-tmp "$r/tmp"
    # The tree under test (GS_SOURCE_DIR, GS_BUILD_DIR) may live where the root overlay does not
    # reach: below /tmp (the box's own tmpfs covers it) or on another mount (an overlay of / shows
    # no submount). Each gets an overlay of its own: the box reads the host's files, its writes stay
    # in the box like all others.
    local p n=0
    for p in "${GS_SOURCE_DIR:-}" "${GS_BUILD_DIR:-}"; do
        [ -n "$p" ] && [ -d "$p" ] || continue
        p=$(readlink -f -- "$p")
        n=$((n + 1))
        mkdir -p "$scratch/tree$n/upper" "$scratch/tree$n/work" "$r$p"
        mount -t overlay -o "lowerdir=$p,upperdir=$scratch/tree$n/upper,workdir=$scratch/tree$n/work" "gsys-tree$n" "$r$p"
    done

    # /etc of the box (all below the overlay: nothing reaches the host's disk)
    local e=$r/etc
    echo gsys > "$e/hostname"
    hostname gsys
    tr -d '-' < /proc/sys/kernel/random/uuid > "$e/machine-id"
    rm -rf "$e"/systemd/system/*.wants "$e/systemd/system/default.target"
    : > "$e/fstab"
    mkdir -p "$e/systemd/journald.conf.d" "$e/systemd/system.conf.d"
    printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRateLimitBurst=0\nAudit=\n' \
        > "$e/systemd/journald.conf.d/gsys.conf"
    printf '[Manager]\nDefaultTimeoutStopSec=10s\n' > "$e/systemd/system.conf.d/gsys.conf"
    local u
    for u in systemd-remount-fs.service systemd-journald-audit.socket systemd-firstboot.service \
             modprobe@.service kmod-static-nodes.service systemd-modules-load.service systemd-sysctl.service \
             systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
             systemd-udevd-control.socket systemd-udevd-kernel.socket \
             systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
             sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount \
             dev-hugepages.mount systemd-hwdb-update.service ldconfig.service systemd-pstore.service \
             systemd-timesyncd.service getty.target console-getty.service systemd-repart.service \
             systemd-pcrphase.service systemd-pcrphase-sysinit.service systemd-update-utmp.service \
             systemd-ask-password-console.path systemd-journal-catalog-update.service; do
        ln -sfn /dev/null "$e/systemd/system/$u"
    done
    printf '[Unit]\nDescription=system-sandbox default target\nRequires=basic.target\nAfter=basic.target\nAllowIsolate=yes\n' \
        > "$e/systemd/system/default.target"

    mkdir -p "$r/.gsys-old"
    cd "$r"
    pivot_root . .gsys-old
    cd /
    umount -l /.gsys-old
    rmdir /.gsys-old
    mount --make-rshared /
    # The console log, readable from the host through /proc/PID1/root.
    ln -s /dev/console /run/gsys-console.log
    set +e
    exec env -i container=gsys PATH="$GSYS_PATH" LANG=C.UTF-8 \
        SYSTEMD_GENERATOR_PATH=/nonexistent SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/nonexistent \
        setpriv --bounding-set -sys_module,-sys_time,-sys_rawio,-audit_control,-audit_read,-audit_write,-syslog,-wake_alarm,-block_suspend \
        /lib/systemd/systemd --log-target=journal-or-kmsg --show-status=no
}

# Stage 1: PID 1 of the new pid namespace, still in the host's cgroup namespace.
stage1() {
    local scratch=$1 cg
    shift
    for cg in "$@"; do echo $$ > "$cg/cgroup.procs" || exit 1; done
    exec unshare --cgroup -- "$SELF" --gsys-stage2 "$scratch"
}

case "${1:-}" in
    --gsys-stage1) shift; stage1 "$@"; exit 1;;
    --gsys-stage2) shift; stage2 "$@"; log "stage 2 failed"; exit 1;;
esac

# ---------------------------------------------------------------------------------------------
# Outer part: host side.
# ---------------------------------------------------------------------------------------------
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || skip "must run as root"
for b in unshare nsenter setpriv /lib/systemd/systemd systemctl; do
    command -v "$b" >/dev/null || skip "$b missing"
done
CG_ROOTS=()
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
    CG_ROOTS=(/sys/fs/cgroup)
else
    [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && CG_ROOTS+=(/sys/fs/cgroup/unified)
    [ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ] && CG_ROOTS+=(/sys/fs/cgroup/systemd)
fi
{ [ "${#CG_ROOTS[@]}" -gt 0 ] && [ -w "${CG_ROOTS[0]}" ]; } || skip "no writable cgroupfs"

cg_procs() { local d; for d in "$@"; do [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done; }
cg_rmdir() { local d; for d in "$@"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done; return 0; }

# Boxes whose owner died (SIGKILLed run): their cgroups and scratch directories.
sweep_stale() {
    local root d pid
    for root in "${CG_ROOTS[@]}"; do
        for d in "$root"/gsys-*; do
            pid=${d##*/gsys-}; pid=${pid%%-*}
            kill -0 "$pid" 2>/dev/null && continue
            [ -z "$(cg_procs "$d")" ] || continue
            log "removing stale cgroup $d"
            cg_rmdir "$d"
        done
    done
    for d in /tmp/gsys-*; do
        pid=${d##*/gsys-}; pid=${pid%%.*}
        kill -0 "$pid" 2>/dev/null && continue
        rmdir "$d" 2>/dev/null && log "removed stale $d"
    done
    return 0
}
sweep_stale

T0=${EPOCHREALTIME/[.,]/}
NAME=gsys-$$-${EPOCHSECONDS}
SCRATCH=$(mktemp -d "/tmp/gsys-$$.XXXXXX")
CGS=()
for root in "${CG_ROOTS[@]}"; do
    mkdir -p "$root/$NAME/outer" "$root/$NAME/entered" "$root/$NAME/payload"
    echo $$ > "$root/$NAME/outer/cgroup.procs"
    CGS+=("$root/$NAME")
done
UNSHARE_PID='' PID1='' RC=0 CMD_PID=

kill_entered() {
    local p c
    for c in "${CGS[@]}"; do
        for p in $(cg_procs "$c/entered"); do kill -KILL "$p" 2>/dev/null; done
    done
}
entered_empty() { [ -z "$(cg_procs "${CGS[@]/%//entered}")" ]; }
payload_empty() { [ -z "$(cg_procs "${CGS[@]/%//payload}")" ]; }

dump_journal() {
    [ -n "$PID1" ] || return 0
    log "--- last journal entries of the box"
    timeout 20 nsenter --target "$PID1" --mount --uts --ipc --net --pid --cgroup --root \
        env -i -C / PATH="$GSYS_PATH" journalctl --no-pager -q -o short-precise -n 150 >&2 2>&1 || true
    log "--- console"
    tail -n 30 "$SCRATCH/console.log" >&2 2>/dev/null || true
}

teardown() {
    local t=${EPOCHREALTIME/[.,]/}
    trap - EXIT TERM INT HUP
    kill_entered
    wait_for "entered commands to die" 10 entered_empty || true
    if [ -n "$PID1" ] && kill -0 "$PID1" 2>/dev/null; then
        case "${GSYS_DUMP:-fail}" in 1) dump_journal;; fail) [ "$RC" = 0 ] || dump_journal;; esac
        kill_entered
        kill -s RTMIN+3 "$PID1" 2>/dev/null
        pid1_gone() { ! kill -0 "$PID1" 2>/dev/null; }
        wait_for "the box to halt" "${GSYS_HALT_TIMEOUT:-20}" pid1_gone || kill -KILL "$PID1" 2>/dev/null
    fi
    [ -z "$UNSHARE_PID" ] || wait "$UNSHARE_PID" 2>/dev/null
    wait_for "the box's processes to go" 10 payload_empty || {
        local p; for p in $(cg_procs "${CGS[@]}"); do [ "$p" = $$ ] || kill -KILL "$p" 2>/dev/null; done
    }
    # Leave our cgroups before removing them.
    echo $$ > "${CG_ROOTS[0]%/}/cgroup.procs" 2>/dev/null
    for root in "${CG_ROOTS[@]:1}"; do echo $$ > "$root/cgroup.procs" 2>/dev/null; done
    cg_rmdir "${CGS[@]}"
    rm -rf "$SCRATCH"
    vlog "teardown $(elapsed "$t") s, total $(elapsed "$T0") s, rc $RC"
    exit "$RC"
}
on_signal() { RC=$1; teardown; }
trap teardown EXIT
trap 'on_signal 143' TERM
trap 'on_signal 130' INT
trap 'on_signal 129' HUP

# The box: background + wait so that traps run while it boots (bash defers them otherwise).
setpriv --pdeathsig KILL -- unshare --fork --pid --mount --uts --ipc --net --mount-proc \
    --propagation private --kill-child=SIGKILL -- "$SELF" --gsys-stage1 "$SCRATCH" "${CGS[@]/%//payload}" \
    </dev/null &
UNSHARE_PID=$!
find_pid1() {
    local c
    c=$(cat "/proc/$UNSHARE_PID/task/$UNSHARE_PID/children" 2>/dev/null) || return 1
    PID1=${c%% *}
    [ -n "$PID1" ] && [ -e "/proc/$PID1/root/run/systemd/private" ]
}
if ! wait_for "the system manager's private socket" 30 find_pid1; then
    RC=1; tail -n 30 "$SCRATCH/console.log" >&2 2>/dev/null; teardown
fi

# enter CMD... - run CMD inside the box, as root, in the "entered" cgroups.
GS_ENV=()
while IFS='=' read -r k _; do
    case "$k" in GS_*) GS_ENV+=("$k=${!k}");; esac
done < <(env)
for k in ${GSYS_PASSENV:-}; do [ -n "${!k+x}" ] && GS_ENV+=("$k=${!k}"); done
enter() {
    (
        for c in "${CGS[@]}"; do echo "$BASHPID" > "$c/entered/cgroup.procs"; done
        exec nsenter --target "$PID1" --mount --uts --ipc --net --pid --cgroup --root \
            env -i -C / PATH="$GSYS_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb GSYS=1 "${GS_ENV[@]}" "$@"
    )
}
state=$(enter timeout 60 systemctl is-system-running --wait 2>&1)
case "$state" in
    running) vlog "system manager running after $(elapsed "$T0") s";;
    *) log "system manager state: $state"
       enter systemctl --no-pager --failed >&2 2>&1
       case "$state" in degraded) ;; *) RC=1; dump_journal; teardown;; esac;;
esac

enter timeout --kill-after=10 "${GSYS_TIMEOUT:-600}" "$@" &
CMD_PID=$!
wait "$CMD_PID"
RC=$?
teardown
