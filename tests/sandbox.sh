#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/sandbox.sh CMD [ARGS...]
#
# Runs CMD inside private mount + pid + ipc namespaces next to a real systemd-journald, a real
# `systemd --user` manager (which socket-activates the real session dbus-daemon) and a throwaway
# PostgreSQL cluster, and tears all of it down whatever happens. Exit code = CMD's exit code
# (124 on SBX_TIMEOUT, 143 when the sandbox is terminated, 1 when the stack cannot be brought up,
# 77 = skip when the sandbox cannot be made on this host at all: not root, no CAP_SYS_ADMIN, no
# writable cgroupfs, missing systemd/dbus/postgres binaries).
#
# Design notes (the pitfalls each part avoids; the code cites them as Pn):
#   P1  systemd --user refuses to start unless sd_booted(), which only checks /run/systemd/system:
#       a tmpfs over /run/systemd in the private mount namespace, then mkdir (never on the host).
#   P5  A user manager takes its own cgroup (minus a trailing /init.scope) as its root and, on exit,
#       rmdirs every empty cgroup below it: started from a host shell it would adopt the host's root
#       cgroup. So it runs in sbx-<pid>-<epoch>.slice/user@0.service, made in every hierarchy in use.
#   P6  journald derives _SYSTEMD_USER_UNIT only from ...*.slice/user@<uid>.service/<unit> paths.
#   P9  journald started with the host's configuration would write /var/log/journal, switch kernel
#       auditing off host-wide (Debian's Audit=no), wall the host's ttys and import the kernel log:
#       a bind-mounted journald.conf (Storage=volatile, Audit= empty, no forwarding, ReadKMsg=no).
#   P14 bash as PID 1 of a pid namespace gets signals from outside only when it traps them, and
#       traps wait for a foreground command: CMD runs in the background and the init waits.
#   P16 A wait_for condition written "$(...)" is evaluated once: pass a function.
#   P23 Debian's user dbus.service logs with --syslog-only and there is no /dev/log: a drop-in
#       with --nosyslog (stderr goes to the journal).
#   Also: the user manager hands its whole environment to every service, so PG* are exported
#   before it starts; `unshare` blocks SIGTERM/SIGINT without forwarding them, so the outer part
#   signals the sandbox init itself; the pid namespace (the kernel kills all of it when its init
#   dies) and the ipc namespace (PostgreSQL's SysV shm) leave nothing behind; initdb and postgres
#   refuse root, so they run through setpriv (no PAM) on a unix socket only.
#
# Knobs (environment):
#   SBX_TIMEOUT=600        hard limit for CMD in seconds (timeout(1) syntax, 0 = none) -> rc 124
#   SBX_NO_PG=1            no PostgreSQL (PG* and SBX_PG_URL stay unset)
#   SBX_PGBOUNCER=1        put a real pgbouncer (pool_mode = transaction, SBX_PGBOUNCER_POOL=3
#                          server connections per database) in front of PostgreSQL, on a unix
#                          socket: SBX_PG_URL then goes through it, SBX_PG_DIRECT_URL does not,
#                          and `$SBX_PGBOUNCER_CTL start|stop|restart` drives it (stop is an
#                          immediate shutdown: every client connection is cut)
#   SBX_BUS=managed        managed: dbus.socket of the user manager activates dbus-daemon (default);
#                          external: dbus-daemon started first, the manager attached via shim units
#   SBX_DUMP=0             0: dump daemon logs + last journal entries only when bring-up fails;
#                          fail: also when CMD fails (default if CI=true); 1: always
#   SBX_ARTIFACTS=DIR      copy logs, journal (text + export) there, into DIR/sbx-<pid>-<epoch>/
#   SBX_PG_TEMPLATE=DIR    cache of a fresh initdb cluster, keyed by PostgreSQL version (default
#                          ${TMPDIR:-/var/tmp}/gazelle-sbx-pg-template; set empty to initdb every run)
#   SBX_PG_USER=postgres   OS user running initdb/postgres (falls back to nobody)
#   SBX_STOP_TIMEOUT=10s   DefaultTimeoutStopSec= of the user manager
#   SBX_MANAGER_ARGS=      extra arguments for systemd --user (e.g. --log-level=debug)
#   SBX_TMPFS=             extra paths (space separated) to cover with a tmpfs
#   SBX_VERBOSE=1          print bring-up/teardown timings on stderr
#
# The caller's DATABASE_URL, GAZELLE_* and BACKUP_* are dropped (the product must not see them).
# Inside CMD sees: HOME, XDG_{CONFIG,DATA,CACHE,STATE}_HOME and TMPDIR on tmpfs,
# XDG_RUNTIME_DIR=/run/user/0, DBUS_SESSION_BUS_ADDRESS, SBX_DIR (scratch tmpfs),
# SBX_UNIT_DIR (= $XDG_CONFIG_HOME/systemd/user), SBX_LOG_DIR, and unless SBX_NO_PG=1:
# PGHOST PGPORT PGUSER=postgres PGDATABASE=postgres SBX_PG_URL SBX_PG_DIRECT_URL SBX_PG_DATA, PATH
# starting with the PostgreSQL bin dir (PG* always reach PostgreSQL directly). The user manager was started with the same environment.
# Called again from inside a sandbox, it runs CMD directly in the existing one (knobs ignored), so
# `tests/sandbox.sh meson test --suite integration` gives one sandbox for the whole suite
# (CMD then sees SBX_REUSED=1).

# shellcheck disable=SC2317  # functions are invoked indirectly (traps, wait_for)
set -u -o pipefail
shopt -s nullglob

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
TEMPLATE_REV=1          # bump when the initdb arguments below change

log()  { printf 'sandbox: %s\n' "$*" >&2; }
vlog() { [ "${SBX_VERBOSE:-0}" = 1 ] && log "$@"; return 0; }
skip() { printf 'sandbox: SKIP: %s\n' "$*" >&2; exit 77; }
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
elapsed() { local t=${EPOCHREALTIME/[.,]/}; printf '%d.%02d' $(( (t - $1) / 1000000 )) $(( (t - $1) % 1000000 / 10000 )); }

# wait_for DESC SECONDS CMD... - poll CMD every 20 ms until it succeeds or SECONDS pass.
# CMD must re-evaluate its condition each call: pass a function, not "$(...)" (pitfall P16).
wait_for() {
    local _wf_desc=$1 _wf_secs=$2 _wf_now _wf_deadline   # prefixed: CMD sees these locals
    shift 2
    _wf_now=${EPOCHREALTIME/[.,]/}
    _wf_deadline=$(( _wf_now + _wf_secs * 1000000 ))
    until "$@"; do
        _wf_now=${EPOCHREALTIME/[.,]/}
        if (( _wf_now >= _wf_deadline )); then
            log "timed out after ${_wf_secs}s waiting for $_wf_desc"
            return 1
        fi
        sleep 0.02
    done
}

not_alive() { ! kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# Outer part: host side, stays outside every namespace.
# ---------------------------------------------------------------------------------------------

cg_detect() {
    CG_ROOTS=()
    if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
        CG_ROOTS=(/sys/fs/cgroup)
        return 0
    fi
    [ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ] || return 1
    [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && CG_ROOTS+=(/sys/fs/cgroup/unified)
    CG_ROOTS+=(/sys/fs/cgroup/systemd)
}

# PIDs in any cgroup below the given slice directories.
cg_procs() {
    local d
    for d in "$@"; do
        [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
}
cg_empty() { [ -z "$(cg_procs "$@")" ]; }
cg_rmdir() {
    local d
    for d in "$@"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}

# Is PID alive and older than EPOCH (not a recycled PID)?
owner_alive() {
    local pid=$1 since=$2 stat start btime
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    start=$(set -- $stat; echo "${20}")
    btime=$(awk '/^btime/ {print $2}' /proc/stat)
    (( btime + start / $(getconf CLK_TCK) <= since + 1 ))
}

sweep_stale() {
    local root d name pid epoch
    declare -A busy_pids=()
    for root in "${CG_ROOTS[@]}"; do
        for d in "$root"/sbx-*-*.slice; do
            name=${d##*/}; name=${name#sbx-}; name=${name%.slice}
            pid=${name%%-*}; epoch=${name#*-}
            [[ $pid =~ ^[0-9]+$ && $epoch =~ ^[0-9]+$ ]] || continue
            owner_alive "$pid" "$epoch" && continue
            if cg_empty "$d"; then
                log "removing stale cgroup $d"
                cg_rmdir "$d"
            else
                busy_pids[$pid]=1
            fi
        done
    done
    for d in /tmp/sbx-*.*; do
        if [ ! -d "$d" ] || [ -L "$d" ]; then continue; fi
        name=${d#/tmp/sbx-}; pid=${name%%.*}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        [ -z "${busy_pids[$pid]:-}" ] || continue
        owner_alive "$pid" "$(stat -c %Y "$d")" && continue
        rmdir "$d" 2>/dev/null && log "removed stale scratch dir $d"
    done
    return 0
}

check_host() {
    local capeff b
    [ "$(id -u)" = 0 ] || skip "must run as root (uid $(id -u))"
    capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
    (( (0x$capeff >> 21) & 1 )) || skip "no CAP_SYS_ADMIN"
    for b in unshare setpriv setsid timeout flock mount /lib/systemd/systemd /lib/systemd/systemd-journald \
             systemctl busctl journalctl systemd-cat dbus-daemon; do
        [ -x "$b" ] || command -v "$b" >/dev/null 2>&1 || skip "missing binary: $b"
    done
    if [ "${SBX_BUS:-managed}" = managed ] && ! unit_file dbus.socket >/dev/null; then
        skip "no user dbus.socket (install dbus-user-session, or use SBX_BUS=external)"
    fi
    if [ "${SBX_NO_PG:-0}" != 1 ]; then
        pg_bindir >/dev/null || skip "missing PostgreSQL server binaries (initdb/pg_ctl/postgres); SBX_NO_PG=1 runs without"
    fi
    if [ "${SBX_PGBOUNCER:-0}" = 1 ]; then
        pgbouncer_bin >/dev/null || skip "missing pgbouncer (apt-get install pgbouncer)"
    fi
    cg_detect || skip "no cgroup hierarchy usable by systemd (neither cgroup2 nor name=systemd at /sys/fs/cgroup)"
    local err
    err=$(unshare --mount --pid --ipc --fork --mount-proc --propagation private true 2>&1) \
        || skip "cannot create namespaces: ${err:-unshare failed}"
}

unit_file() {
    local d
    for d in /etc/systemd/user /usr/local/lib/systemd/user /usr/lib/systemd/user /lib/systemd/user; do
        [ -f "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}

pgbouncer_bin() { command -v pgbouncer || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; }; }

pg_bindir() {
    local d best=
    if [ -n "${SBX_PG_BINDIR:-}" ]; then best=$SBX_PG_BINDIR
    else
        for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do best=$d; done
        if [ -z "$best" ] && command -v initdb >/dev/null; then best=$(dirname "$(command -v initdb)"); fi
    fi
    [ -n "$best" ] && [ -x "$best/initdb" ] && [ -x "$best/pg_ctl" ] && [ -x "$best/postgres" ] || return 1
    echo "$best"
}

outer_forward() {
    local sig=$1 pid=${UNSHARE_PID:-$!} init
    FORWARDED=1
    [ -n "$pid" ] || exit $(( 128 + sig ))
    read -r init _ < "/proc/$pid/task/$pid/children" 2>/dev/null
    if [ -n "${init:-}" ]; then
        log "signal $sig: terminating the sandbox"
        kill -TERM "$init" 2>/dev/null
    else
        # init not forked yet: killing unshare makes --kill-child=SIGTERM deliver TERM to it
        kill -KILL "$pid" 2>/dev/null
    fi
}

outer_cleanup() {
    local rc=$? slices=() root t0
    trap '' TERM INT HUP
    t0=$(now_us)
    for root in "${CG_ROOTS[@]}"; do slices+=("$root/$SLICE"); done
    if ! cg_empty "${slices[@]}"; then
        wait_for "sandbox cgroups to drain" 30 cg_empty "${slices[@]}" || {
            log "killing leftover processes: $(cg_procs "${slices[@]}" | tr '\n' ' ')"
            cg_procs "${slices[@]}" | xargs -r kill -KILL 2>/dev/null
            wait_for "sandbox cgroups to drain after SIGKILL" 5 cg_empty "${slices[@]}"
        }
    fi
    cg_rmdir "${slices[@]}"
    for root in "${slices[@]}"; do [ -d "$root" ] && log "could not remove cgroup $root"; done
    rmdir "$SBX_DIR" 2>/dev/null || log "could not remove $SBX_DIR"
    vlog "outer cleanup $(elapsed "$t0")s"
    exit "$rc"
}

outer_main() {
    local root epoch rc r
    [ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
    case "${1:-}" in -h|--help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$SELF"; exit 0;; esac
    # Already inside a sandbox (e.g. `sandbox.sh meson test ...` whose tests call sandbox.sh
    # again): reuse it. On the host $SBX_DIR is an empty mountpoint, inside it holds log/.
    if [ -n "${SBX_DIR:-}" ] && [ -d "$SBX_DIR/log" ] && [ -d /run/systemd/system ]; then
        SBX_REUSED=1 exec "$@"
    fi
    check_host
    sweep_stale

    epoch=$(date +%s)
    SLICE="sbx-$$-$epoch.slice"
    for root in "${CG_ROOTS[@]}"; do
        mkdir "$root/$SLICE" "$root/$SLICE/sandbox.scope" 2>/dev/null || {
            for r in "${CG_ROOTS[@]}"; do cg_rmdir "$r/$SLICE"; done
            skip "cgroupfs not writable ($root)"
        }
    done
    SBX_DIR=$(mktemp -d "/tmp/sbx-$$.XXXXXX") || { for root in "${CG_ROOTS[@]}"; do cg_rmdir "$root/$SLICE"; done; exit 1; }
    trap outer_cleanup EXIT
    trap 'outer_forward 15' TERM
    trap 'outer_forward 2' INT
    trap 'outer_forward 1' HUP

    # Move ourselves into sandbox.scope, then exec: setpriv (dies with us) -> setsid (own
    # session: a process-group kill of the caller, e.g. meson's timeout, reaches only this
    # script, which then tears the sandbox down properly) -> unshare -> this script as PID 1.
    (
        for root in "${CG_ROOTS[@]}"; do echo "$BASHPID" > "$root/$SLICE/sandbox.scope/cgroup.procs" || exit 1; done
        _SBX_STAGE=inner _SBX_SLICE="$SLICE" _SBX_CG_ROOTS="${CG_ROOTS[*]}" SBX_DIR="$SBX_DIR" \
        exec setpriv --pdeathsig KILL -- setsid -- unshare --mount --pid --ipc --fork --kill-child=SIGTERM \
            --mount-proc --propagation private -- "$SELF" "$@"
    ) 0<&0 &
    UNSHARE_PID=$!
    # A trapped signal interrupts `wait` (status > 128): wait again for the real status.
    rc=
    while :; do
        FORWARDED=0
        wait "$UNSHARE_PID" 2>/dev/null; r=$?     # 2>/dev/null: bash's "Killed" job report
        [ "$r" = 127 ] && [ -n "$rc" ] && break      # already reaped by the previous wait
        rc=$r
        [ "$FORWARDED" = 1 ] || break
    done
    exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Inner part: PID 1 of the new pid namespace.
# ---------------------------------------------------------------------------------------------

die() { log "$*"; BRINGUP_FAILED=1; RC=1; exit 1; }

alive_or_die() { kill -0 "$1" 2>/dev/null || die "$2 exited during start-up"; }

probe_journald() {
    alive_or_die "$JOURNALD_PID" systemd-journald
    [ -S /run/systemd/journal/socket ] && [ -S /run/systemd/journal/stdout ]
}
probe_manager_socket() {
    alive_or_die "$MGR_PID" "systemd --user"
    [ -S "$XDG_RUNTIME_DIR/systemd/private" ]
}
probe_bus() {
    busctl --user --timeout=2 call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId >/dev/null 2>&1
}
probe_manager_on_bus() {
    alive_or_die "$MGR_PID" "systemd --user"
    busctl --user --timeout=2 call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetNameOwner s org.freedesktop.systemd1 >/dev/null 2>&1
}
probe_pg() { "$PGBIN/pg_isready" -q -h "$PGHOST" -p "$PGPORT" -t 1 >/dev/null 2>&1; }

# Run a PostgreSQL program as $PG_OS_USER: setpriv, not runuser/su (no PAM session).
pg() { (cd "$SBX_DIR/pg" && exec setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_GID" --init-groups -- "$@"); }

mount_tmpfs() { # PATH MODE
    [ -d "$1" ] || mkdir -p "$1" || die "cannot create $1"
    mount -t tmpfs -o "mode=$2,nosuid,nodev" sbx-tmpfs "$1" || die "cannot mount tmpfs on $1"
}

inner_setup_fs() {
    local d
    mount_tmpfs "$SBX_DIR" 0755
    for d in /run/systemd /run/log /run/user /run/dbus /run/postgresql /var/log/journal; do mount_tmpfs "$d" 0755; done
    mount_tmpfs /dev/shm 1777
    for d in ${SBX_TMPFS:-}; do mount_tmpfs "$d" 0755; done
    # /run/systemd/system is all sd_booted() checks (P1)
    mkdir /run/systemd/system /run/user/0 "$SBX_DIR/log" "$SBX_DIR/etc" "$SBX_DIR/empty" "$SBX_DIR/tmp" \
        "$SBX_DIR/home" || die "cannot create the sandbox directories"
    chmod 0700 /run/user/0 "$SBX_DIR/home"
    chmod 1777 "$SBX_DIR/tmp"
    SBX_LOG_DIR=$SBX_DIR/log

    cat > "$SBX_DIR/etc/journald.conf" <<'EOF'
# sandbox journald.conf (see tests/sandbox.sh, pitfall P9)
[Journal]
Storage=volatile
RateLimitBurst=0
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
Audit=
EOF
    if [ -f /etc/systemd/journald.conf ]; then
        mount --bind "$SBX_DIR/etc/journald.conf" /etc/systemd/journald.conf || die "cannot bind-mount journald.conf"
    else
        mkdir -p /run/systemd/journald.conf.d && cp "$SBX_DIR/etc/journald.conf" /run/systemd/journald.conf.d/00-sbx.conf
    fi
    for d in /etc/systemd/journald.conf.d /usr/local/lib/systemd/journald.conf.d /usr/lib/systemd/journald.conf.d; do
        [ -d "$d" ] && mount --bind "$SBX_DIR/empty" "$d"
    done
    if [ -f /etc/machine-id ] && [ ! -s /etc/machine-id ]; then
        tr -d - < /proc/sys/kernel/random/uuid > "$SBX_DIR/etc/machine-id"
        mount --bind "$SBX_DIR/etc/machine-id" /etc/machine-id
    fi
}

inner_setup_env() {
    local v
    for v in $(compgen -e); do
        case "$v" in
            NOTIFY_SOCKET|LISTEN_PID|LISTEN_FDS|LISTEN_FDNAMES|INVOCATION_ID|JOURNAL_STREAM|MANAGERPID|\
            WATCHDOG_PID|WATCHDOG_USEC|SYSTEMD_EXEC_PID|SYSTEMD_LOG_*|SYSTEMD_UNIT_PATH|PG*|\
            DBUS_SESSION_BUS_ADDRESS|DBUS_STARTER_*|XDG_*|SBX_PG_URL|SBX_PG_DIRECT_URL|SBX_PGBOUNCER_CTL|SBX_PG_DATA|SBX_UNIT_DIR|SBX_LOG_DIR|SBX_REUSED|\
            DATABASE_URL|GAZELLE_*|BACKUP_*)
                unset "$v";;
        esac
    done
    export HOME=$SBX_DIR/home
    export XDG_CONFIG_HOME=$HOME/.config XDG_DATA_HOME=$HOME/.local/share
    export XDG_CACHE_HOME=$HOME/.cache XDG_STATE_HOME=$HOME/.local/state
    export XDG_RUNTIME_DIR=/run/user/0
    export DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus
    export TMPDIR=$SBX_DIR/tmp
    export SBX_DIR SBX_LOG_DIR SBX_UNIT_DIR=$XDG_CONFIG_HOME/systemd/user
    mkdir -p "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$SBX_UNIT_DIR"

    if [ "$SBX_NO_PG" != 1 ]; then
        PGBIN=$(pg_bindir) || die "PostgreSQL binaries vanished"
        export PATH="$PGBIN:$PATH"
        export PGHOST=$SBX_DIR/pg PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
        export SBX_PG_DATA=$SBX_DIR/pg/data
        export SBX_PG_URL="postgresql:///postgres?host=$PGHOST&port=$PGPORT&user=postgres"
        export SBX_PG_DIRECT_URL=$SBX_PG_URL
        (( ${#PGHOST} + 20 < 107 )) || die "PGHOST too long for a unix socket path: $PGHOST"
    fi
}

inner_start_journald() {
    SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald </dev/null >"$SBX_LOG_DIR/journald.log" 2>&1 &
    JOURNALD_PID=$!
    wait_for "journald sockets" 10 probe_journald || die "journald did not come up"
}

inner_write_manager_config() {
    local exec_start f
    printf '[Manager]\nDefaultTimeoutStopSec=%s\n' "$SBX_STOP_TIMEOUT" > "$XDG_CONFIG_HOME/systemd/user.conf"
    if [ "$SBX_BUS" = managed ]; then
        # Debian's user dbus.service logs with --syslog-only, but there is no /dev/log here (P23).
        f=$(unit_file dbus.service) || die "no user dbus.service unit"
        exec_start=$(sed -n 's/^ExecStart=//p' "$f" | tail -n 1)
        if [[ $exec_start == *--syslog-only* ]]; then
            mkdir -p "$SBX_UNIT_DIR/dbus.service.d"
            printf '[Service]\nExecStart=\nExecStart=%s\n' "${exec_start//--syslog-only/--nosyslog}" \
                > "$SBX_UNIT_DIR/dbus.service.d/sbx-nosyslog.conf"
        fi
    else
        # Shims: make manager_dbus_is_running() true without binding %t/bus (§2.1).
        printf '[Unit]\nDescription=sandbox shim for the external dbus-daemon\n[Socket]\nListenFIFO=%%t/sbx-dbus-shim.fifo\n' \
            > "$SBX_UNIT_DIR/dbus.socket"
        printf '[Unit]\nDescription=sandbox shim for the external dbus-daemon\nRequires=dbus.socket\n[Service]\nExecStart=/bin/sleep infinity\n' \
            > "$SBX_UNIT_DIR/dbus.service"
    fi
}

inner_start_manager() {
    local state root
    inner_write_manager_config
    if [ "$SBX_BUS" = external ]; then
        dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --nofork --nopidfile --systemd-activation --nosyslog \
            </dev/null >"$SBX_LOG_DIR/dbus-daemon.log" 2>&1 &
        DBUS_PID=$!
        wait_for "dbus-daemon (GetId)" 10 probe_bus || die "dbus-daemon did not come up"
    fi
    # Started in .../user@0.service: the manager takes its cgroup as root (P5, P6).
    (
        # created only now: an empty cgroup may be removed by a foreign manager's cleanup (P5)
        for root in $_SBX_CG_ROOTS; do
            mkdir -p "$root/$_SBX_SLICE/user@0.service" && echo "$BASHPID" > "$root/$_SBX_SLICE/user@0.service/cgroup.procs" || exit 1
        done
        unset _SBX_STAGE _SBX_SLICE _SBX_CG_ROOTS
        # shellcheck disable=SC2086
        exec /lib/systemd/systemd --user --log-target=journal ${SBX_MANAGER_ARGS:-}
    ) </dev/null >"$SBX_LOG_DIR/systemd.log" 2>&1 &
    MGR_PID=$!
    wait_for "systemd --user private socket" 20 probe_manager_socket || die "systemd --user did not come up"
    if [ "$SBX_BUS" = managed ]; then
        wait_for "session bus (GetId, socket-activates dbus.service)" 10 probe_bus || die "session bus did not come up"
    else
        systemctl --user start dbus.service || die "cannot start the dbus shim units"
    fi
    state=$(timeout 30 systemctl --user is-system-running --wait 2>/dev/null)
    case "$state" in
        running|degraded) ;;
        *) die "systemd --user is '${state:-unknown}' (want running or degraded)";;
    esac
    wait_for "org.freedesktop.systemd1 on the session bus" 10 probe_manager_on_bus || die "systemd --user did not attach to the bus"
}

# Fresh cluster: copied from the template cache, or initdb'ed (and then cached).
pg_make_cluster() {
    local ver key tpl lockfd='' old
    pg_initdb() {
        pg "$PGBIN/initdb" -D "$SBX_PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
            >"$SBX_LOG_DIR/initdb.log" 2>&1 || { cat "$SBX_LOG_DIR/initdb.log" >&2; die "initdb failed"; }
    }
    if [ -z "$SBX_PG_TEMPLATE" ]; then pg_initdb; return; fi
    ver=$("$PGBIN/postgres" --version | sed -n 's/.*) \([0-9][0-9.]*\).*/\1/p')
    key="pg${ver:-unknown}-$PG_OS_USER-r$TEMPLATE_REV"
    tpl=$SBX_PG_TEMPLATE/$key
    if ! { mkdir -p "$SBX_PG_TEMPLATE" && exec {lockfd}>>"$SBX_PG_TEMPLATE/.lock"; } 2>/dev/null; then
        log "template cache $SBX_PG_TEMPLATE not usable, running initdb"
        pg_initdb; return
    fi
    flock -w 120 "$lockfd" || die "timed out waiting for the template lock $SBX_PG_TEMPLATE/.lock"
    if [ -f "$tpl/PG_VERSION" ] && [ -f "$tpl/global/pg_control" ]; then
        flock -s "$lockfd"                            # downgrade: parallel copies are fine
        cp -a "$tpl" "$SBX_PG_DATA" || die "cannot copy the template $tpl"
    else
        pg_initdb
        for old in "$SBX_PG_TEMPLATE"/*.tmp.*; do rm -rf "$old"; done
        if cp -a "$SBX_PG_DATA" "$tpl.tmp.$$" && sync -f "$tpl.tmp.$$" && mv -T "$tpl.tmp.$$" "$tpl"; then
            vlog "cached a fresh cluster in $tpl"
        else
            rm -rf "$tpl.tmp.$$"; log "could not cache the cluster in $tpl, ignoring"
        fi
    fi
    exec {lockfd}>&-
}

inner_start_pg() {
    PG_OS_USER=${SBX_PG_USER:-postgres}
    id -u "$PG_OS_USER" >/dev/null 2>&1 || PG_OS_USER=nobody
    PG_OS_GID=$(id -g "$PG_OS_USER")
    mkdir -p "$PGHOST"; chown "$PG_OS_USER:$PG_OS_GID" "$PGHOST"; chmod 0755 "$PGHOST"
    pg_make_cluster
    : > "$SBX_LOG_DIR/postgresql.log"; chown "$PG_OS_USER:$PG_OS_GID" "$SBX_LOG_DIR/postgresql.log"
    PG_STARTED=1
    pg "$PGBIN/pg_ctl" -D "$SBX_PG_DATA" -l "$SBX_LOG_DIR/postgresql.log" -w -t 30 -o \
        "-k $PGHOST -p $PGPORT -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >"$SBX_LOG_DIR/pg_ctl.log" 2>&1 || die "pg_ctl start failed"
    wait_for "pg_isready" 10 probe_pg || die "PostgreSQL is not accepting connections"
}

# pgbouncer in transaction mode on a unix socket (no TCP: nothing to collide with other sandboxes),
# trusting the sandbox's own user, every database forwarded to the sandbox's PostgreSQL. Run as
# the PostgreSQL OS user (pgbouncer refuses root); the ctl script lets tests cut it and restart it.
inner_start_pgbouncer() {
    local dir=$SBX_DIR/pgb bin
    bin=$(pgbouncer_bin) || die "pgbouncer vanished"
    mkdir -p "$dir" || die "cannot create $dir"
    cat > "$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$PGHOST port=$PGPORT
[pgbouncer]
listen_addr =
listen_port = 6432
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = ${SBX_PGBOUNCER_POOL:-3}
max_client_conn = 500
query_wait_timeout = 30
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $SBX_LOG_DIR/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    printf '"postgres" ""\n' > "$dir/userlist.txt"
    : > "$SBX_LOG_DIR/pgbouncer.log"
    chown -R "$PG_OS_USER:$PG_OS_GID" "$dir" "$SBX_LOG_DIR/pgbouncer.log"
    # The ctl script: values of this sandbox baked in, the rest evaluated when it runs.
    {
        printf '#!/bin/bash\n# sandbox pgbouncer: start | stop (immediate shutdown: every connection cut) | restart\nset -u\n'
        printf 'dir=%q bin=%q user=%q group=%q\n' "$dir" "$bin" "$PG_OS_USER" "$PG_OS_GID"
        cat <<'EOF'
pid() { cat "$dir/pgbouncer.pid" 2>/dev/null; }
up() { local p; p=$(pid); [ -S "$dir/.s.PGSQL.6432" ] && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
start() {
    setpriv --reuid="$user" --regid="$group" --init-groups -- "$bin" -q -d "$dir/pgbouncer.ini" || return 1
    for _ in $(seq 500); do up && return 0; sleep 0.02; done
    echo "pgbouncer did not come up" >&2
    return 1
}
stop() {
    local p
    p=$(pid)
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 500); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
    kill -KILL "$p" 2>/dev/null
    rm -f "$dir/pgbouncer.pid" "$dir/.s.PGSQL.6432" "$dir/.s.PGSQL.6432.lock"
    return 0
}
case "${1:-}" in
    start) start;;
    stop) stop;;
    restart) stop; start;;
    *) echo "usage: $0 start|stop|restart" >&2; exit 2;;
esac
EOF
    } > "$dir/ctl"
    chmod 0755 "$dir/ctl"
    "$dir/ctl" start || die "pgbouncer did not start (see $SBX_LOG_DIR/pgbouncer.log)"
    export SBX_PGBOUNCER_CTL=$dir/ctl
    export SBX_PG_URL="postgresql:///postgres?host=$dir&port=6432&user=postgres"
}

inner_dump() {
    local f
    {
        echo "===== sandbox logs ($SBX_DIR) ====="
        for f in "$SBX_LOG_DIR"/*.log; do
            [ -s "$f" ] || continue
            echo "----- ${f##*/} -----"
            tail -n 200 "$f"
        done
        echo "----- journal (last 100 entries) -----"
        journalctl --no-pager -o short-monotonic -n 100 2>&1
        echo "===== end of sandbox logs ====="
    } >&2
}

inner_artifacts() {
    local dst=$SBX_ARTIFACTS/${_SBX_SLICE%.slice}
    mkdir -p "$dst" || { log "cannot create $dst"; return 0; }
    cp -a "$SBX_LOG_DIR/." "$dst/" 2>/dev/null
    journalctl --no-pager -o short-precise > "$dst/journal.txt" 2>&1
    journalctl --no-pager -o export > "$dst/journal.export" 2>/dev/null
    log "artifacts in $dst"
}

# stop_pid PID DESC SECONDS: SIGTERM, wait, escalate to SIGKILL.
stop_pid() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null
    wait_for "$2 to exit" "$3" not_alive "$1" && return 0
    log "$2 did not exit within $3 s, sending SIGKILL"
    kill -KILL "$1" 2>/dev/null
    wait_for "$2 to die" 5 not_alive "$1"
}

inner_teardown() {
    local rc=${RC:-$?} t0 stop_s dump=0
    trap '' TERM INT HUP
    t0=$(now_us)
    [ -n "$T_READY" ] && vlog "command finished after $(elapsed "$T_READY")s, rc $rc"
    stop_pid "$CMD_PID" command 10
    stop_s=${SBX_STOP_TIMEOUT%s}; [[ $stop_s =~ ^[0-9]+$ ]] || stop_s=10
    stop_pid "$MGR_PID" "systemd --user" $(( 2 * stop_s + 20 ))
    [ -n "${SBX_PGBOUNCER_CTL:-}" ] && "$SBX_PGBOUNCER_CTL" stop
    if [ "$PG_STARTED" = 1 ]; then
        pg "$PGBIN/pg_ctl" -D "$SBX_PG_DATA" -w -t 10 -m fast stop >>"$SBX_LOG_DIR/pg_ctl.log" 2>&1 \
            || pg "$PGBIN/pg_ctl" -D "$SBX_PG_DATA" -w -t 5 -m immediate stop >>"$SBX_LOG_DIR/pg_ctl.log" 2>&1
    fi
    case "$SBX_DUMP" in
        1|yes|always) dump=1;;
        fail) [ "$rc" != 0 ] && dump=1;;
    esac
    [ "$BRINGUP_FAILED" = 1 ] && dump=1
    [ -n "$JOURNALD_PID" ] && [ "$dump" = 1 ] && inner_dump
    [ -n "$JOURNALD_PID" ] && [ -n "${SBX_ARTIFACTS:-}" ] && inner_artifacts
    stop_pid "$DBUS_PID" dbus-daemon 5
    stop_pid "$JOURNALD_PID" systemd-journald 5
    vlog "teardown $(elapsed "$t0")s"
    exit "$rc"   # the kernel kills whatever is left in the pid namespace; mounts vanish with it
}

inner_main() {
    local t0 t
    RC='' CMD_PID='' MGR_PID='' DBUS_PID='' JOURNALD_PID='' PG_STARTED=0 BRINGUP_FAILED=0 T_READY=''
    # A pid-namespace init only receives signals it handles (P14).
    trap 'RC=143; exit 143' TERM
    trap 'RC=130; exit 130' INT
    trap 'RC=129; exit 129' HUP
    trap inner_teardown EXIT
    t0=$(now_us)

    SBX_NO_PG=${SBX_NO_PG:-0}
    SBX_BUS=${SBX_BUS:-managed}
    case "$SBX_BUS" in managed|external) ;; *) die "SBX_BUS must be managed or external, not '$SBX_BUS'";; esac
    SBX_STOP_TIMEOUT=${SBX_STOP_TIMEOUT:-10s}
    SBX_TIMEOUT=${SBX_TIMEOUT:-600}
    if [ "${CI:-}" = true ]; then SBX_DUMP=${SBX_DUMP:-fail}; else SBX_DUMP=${SBX_DUMP:-0}; fi
    SBX_PG_TEMPLATE=${SBX_PG_TEMPLATE-${TMPDIR:-/var/tmp}/gazelle-sbx-pg-template}

    inner_setup_fs
    inner_setup_env
    t=$(now_us); inner_start_journald;  vlog "journald ready in $(elapsed "$t")s (+fs $(( (t - t0) / 1000 )) ms)"
    t=$(now_us); inner_start_manager;   vlog "systemd --user + session bus ready in $(elapsed "$t")s"
    if [ "$SBX_NO_PG" != 1 ]; then
        t=$(now_us); inner_start_pg;    vlog "postgresql ready in $(elapsed "$t")s"
        if [ "${SBX_PGBOUNCER:-0}" = 1 ]; then
            t=$(now_us); inner_start_pgbouncer; vlog "pgbouncer ready in $(elapsed "$t")s"
        fi
    fi
    T_READY=$(now_us)
    vlog "bring-up $(elapsed "$t0")s"

    unset _SBX_STAGE _SBX_CG_ROOTS
    # env --default-signal: async commands of a non-interactive shell start with SIGINT/SIGQUIT ignored.
    env --default-signal=INT,QUIT timeout --kill-after=10 "$SBX_TIMEOUT" "$@" 0<&0 &
    CMD_PID=$!
    wait "$CMD_PID"; RC=$?
    CMD_PID=
    exit "$RC"
}

if [ "${_SBX_STAGE:-}" = inner ] && [ $$ = 1 ]; then
    inner_main "$@"
else
    unset _SBX_STAGE _SBX_SLICE _SBX_CG_ROOTS
    outer_main "$@"
fi
