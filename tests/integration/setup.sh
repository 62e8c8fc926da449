# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Common set-up of the product integration tests, sourced by tests/integration/test-*.sh inside
# tests/sandbox.sh (a test started directly re-executes itself inside a sandbox first):
#   - installs the test flavour of the units (build/units/test/*) into $XDG_CONFIG_HOME/systemd/user,
#     the session activation file into $XDG_DATA_HOME/dbus-1/services, the Alias of
#     gazelle-schedulerd.service, enables the four timers;
#   - picks the store from GS_STORE=sqlite|postgresql (PostgreSQL: DATABASE_URL=$SBX_PG_URL in the
#     manager's environment and exported for CLI calls);
#   - q SQL: prints the rows of SQL, columns separated by '|', for either engine.
# Environment: GS_BUILD_DIR (default <source>/build), GS_SOURCE_DIR, GS_STORE (default sqlite).

GS_SOURCE_DIR=${GS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
GS_BUILD_DIR=${GS_BUILD_DIR:-$GS_SOURCE_DIR/build}
GS_STORE=${GS_STORE:-sqlite}
GS_STATE=$XDG_STATE_HOME/gazelle-scheduler
GS_DB=$GS_STATE/gazelle-scheduler.sqlite
GS_BUS=com.piano_tek.GazelleScheduler1
GS_PATH=/com/piano_tek/GazelleScheduler1
GS_TIMERS=(gazelle-sync.timer gazelle-report.timer gazelle-backup.timer gazelle-alerts.timer)
export GS_SOURCE_DIR GS_BUILD_DIR GS_STORE
# shellcheck source=tests/integration/lib.sh
. "$GS_SOURCE_DIR/tests/integration/lib.sh"

skip_test() { printf 'SKIP: %s\n' "$*"; exit 77; }

[ -x "$GS_BUILD_DIR/gazelle-scheduler" ] && [ -x "$GS_BUILD_DIR/gazelle-schedulerd" ] \
    || fail "build first: $GS_BUILD_DIR/gazelle-scheduler(d) missing"
[ -d "$GS_BUILD_DIR/units/test" ] || fail "$GS_BUILD_DIR/units/test missing"
export PATH=$GS_BUILD_DIR:$PATH

gs_install() {
    local unitdir=$XDG_CONFIG_HOME/systemd/user alias=dbus-$GS_BUS.service
    mkdir -p "$unitdir" "$XDG_DATA_HOME/dbus-1/services"
    cp "$GS_BUILD_DIR"/units/test/* "$unitdir/"
    cp "$GS_BUILD_DIR/dbus/$GS_BUS.session.service" "$XDG_DATA_HOME/dbus-1/services/$GS_BUS.service"
    systemctl --user daemon-reload
    systemctl --user enable gazelle-schedulerd.service >/dev/null 2>&1 || true
    # The unit template may lack [Install] Alias=: make the alias by hand then.
    if [ ! -e "$unitdir/$alias" ]; then
        ln -s gazelle-schedulerd.service "$unitdir/$alias"
        systemctl --user daemon-reload
    fi
    # dbus-daemon rereads its service directories on ReloadConfig
    busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >/dev/null
    systemctl --user enable --now "${GS_TIMERS[@]}" >/dev/null 2>&1
}

gs_select_store() {
    case "$GS_STORE" in
        sqlite)
            unset DATABASE_URL
            systemctl --user unset-environment DATABASE_URL;;
        postgresql)
            [ -n "${SBX_PG_URL:-}" ] || skip_test "no PostgreSQL in this sandbox (SBX_NO_PG=1?)"
            export DATABASE_URL=$SBX_PG_URL
            systemctl --user set-environment DATABASE_URL="$SBX_PG_URL";;
        *) fail "GS_STORE must be sqlite or postgresql, not '$GS_STORE'";;
    esac
}

# q SQL - rows of SQL, '|'-separated; nothing (and success) while the store does not exist yet.
q() {
    if [ "$GS_STORE" = postgresql ]; then
        local exists
        exists=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$SBX_PG_URL" \
                      -c "SELECT to_regclass('scheduler_logs') IS NOT NULL") || return 1
        [ "$exists" = t ] || return 0
        psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -d "$SBX_PG_URL" -c "$1"
    else
        [ -f "$GS_DB" ] || return 0
        sqlite3 -batch -separator '|' -cmd '.timeout 5000' "$GS_DB" "$1"
    fi
}

# q1 SQL - the first column of the first row (empty if none)
q1() { q "$1" | head -n 1 | cut -d'|' -f1; }

# gs_call METHOD [SIGNATURE ARGS...] - busctl call on the daemon's object. No call may wait for
# its timeout (every error path answers at once): one that does is recorded, and the test fails
# when it ends (_gs_cleanup), even if the caller expected an error and hid the message.
GS_TIMEOUTS=$SBX_DIR/dbus-call-timeouts
gs_call() {
    local rc=0 err=$SBX_DIR/gs_call.$$.$RANDOM
    busctl --user --timeout=30 call "$GS_BUS" "$GS_PATH" "$GS_BUS" "$@" 2>"$err" || rc=$?
    if grep -qiE "timed out|timeout was reached" "$err"; then
        printf '%s: %s\n' "$1" "$(cat "$err")" >> "$GS_TIMEOUTS"
    fi
    cat "$err" >&2
    rm -f "$err"
    return $rc
}

# Holding a rollback-journal SQLite file with BEGIN EXCLUSIVE makes a backup of it hang (the
# backup loops on SQLITE_BUSY). lock_start FILE creates FILE and locks it; lock_release frees it.
LOCK_PID=
lock_locked() { ! sqlite3 -batch -cmd '.timeout 0' "$LOCK_FILE" 'SELECT count(*) FROM t' >/dev/null 2>&1; }
lock_start() {
    LOCK_FILE=$1
    rm -f "$LOCK_FILE" "$LOCK_FILE.release"
    sqlite3 -batch "$LOCK_FILE" 'PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);' >/dev/null
    # The writer keeps its stdin open until the release file appears (bounded: 240 s).
    (
        echo 'BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);'
        for _ in $(seq 12000); do [ -e "$LOCK_FILE.release" ] && break; sleep 0.02; done
        echo 'COMMIT;'
    ) | sqlite3 -batch -cmd '.timeout 10000' "$LOCK_FILE" &   # .timeout: lock_locked's probe may hold a read lock
    LOCK_PID=$!
    wait_for "exclusive lock on $LOCK_FILE" 10 lock_locked || fail "could not lock $LOCK_FILE"
}
lock_release() {
    [ -n "$LOCK_PID" ] || return 0
    : > "$LOCK_FILE.release"
    wait "$LOCK_PID" 2>/dev/null || true
    LOCK_PID=
}
_gs_cleanup() {
    [ -z "$LOCK_PID" ] || { : > "$LOCK_FILE.release"; kill "$LOCK_PID" 2>/dev/null || true; }
    if [ -s "$GS_TIMEOUTS" ]; then
        printf 'not ok - D-Bus call(s) waited for their timeout:\n%s\n' "$(cat "$GS_TIMEOUTS")" >&2
        exit 1
    fi
}
trap _gs_cleanup EXIT

unit_state() { systemctl --user show -p ActiveState --value "$1"; }
unit_active() { [ "$(unit_state "$1")" = active ]; }
unit_inactive() { case "$(unit_state "$1")" in inactive|failed) return 0;; *) return 1;; esac; }

gs_install
gs_select_store
ok "units installed, store $GS_STORE selected"
