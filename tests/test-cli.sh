#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a person sees of gazelle-scheduler outside systemd: every command's --help prints its
# usage and exits 0 (even with a broken configuration); a run's messages reach stderr when stderr
# is not the journal, and only then (JOURNAL_STREAM); `restore` (--dry-run, a foreign file, the
# pre-restore copy named); `logs` reads the store silently without
# any bus, and says once — also in --watch — that the daemon cannot be reached when a bus is
# there. Needs dbus-daemon for the last part (skipped without it).
set -euo pipefail
bin=${GS_BUILD_DIR:?}/gazelle-scheduler
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-cli.XXXXXX")
bus_pid=
cleanup() {
    if [ -n "$bus_pid" ]; then kill "$bus_pid" 2>/dev/null || true; wait "$bus_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "not ok - $*" >&2; exit 1; }

unset STATE_DIRECTORY DATABASE_URL CREDENTIALS_DIRECTORY INVOCATION_ID JOURNAL_STREAM GAZELLE_CONFIG \
      BACKUP_DIR BACKUP_SQLITE_PATH
export XDG_STATE_HOME=$tmp/state GAZELLE_BUS=user
# No session bus unless a part sets one up.
export DBUS_SESSION_BUS_ADDRESS=unix:path=$tmp/no-bus

# --- every command's --help: its usage on stdout, exit 0, before the configuration is read
printf 'not json' > "$tmp/bad.json"
for cmd in run start logs status should-run migrate restore auth slot notify-failure check-config; do
    out=$(GAZELLE_CONFIG=$tmp/bad.json "$bin" "$cmd" --help 2>"$tmp/err") || fail "$cmd --help exited $?: $(cat "$tmp/err")"
    case "$out" in "Usage: gazelle-scheduler $cmd"*) ;; *) fail "$cmd --help printed: $out";; esac
    [ ! -s "$tmp/err" ] || fail "$cmd --help wrote to stderr: $(cat "$tmp/err")"
done
out=$("$bin" run backup -h) || fail "run backup -h exited $?"
case "$out" in "Usage: gazelle-scheduler run"*) ;; *) fail "run backup -h printed: $out";; esac
ok "every command's --help (and -h after its arguments) prints its usage and exits 0"
grep -q "the old scheduler) loses its access" <<<"$("$bin" auth --help)" \
    || fail "auth --help does not warn about the old system: $("$bin" auth --help)"
ok "auth --help says the import cuts the old system off"

# --- a run's messages on stderr when stderr is not the journal
"$bin" run backup >/dev/null 2>"$tmp/err" || fail "run backup failed: $(cat "$tmp/err")"
grep -q "^Backup SQL: démarrage" "$tmp/err" && grep -q "^Backup SQL: success" "$tmp/err" \
    || fail "run backup with stderr in a file printed: $(cat "$tmp/err")"
ok "stderr to a file: the run's messages are there"
BACKUP_SQLITE_PATH=$tmp/missing.sqlite "$bin" run backup >/dev/null 2>"$tmp/err" && fail "a backup of a missing file succeeded"
grep -q "Backup SQL: error" "$tmp/err" || fail "a failed run printed nothing useful: $(cat "$tmp/err")"
ok "a failed run says so on stderr"
# systemd's JOURNAL_STREAM names the stream it gave as stderr: that one is the journal already.
: > "$tmp/journal"
JOURNAL_STREAM=$(stat -c '%d:%i' "$tmp/journal") "$bin" run backup >/dev/null 2>>"$tmp/journal" \
    || fail "run backup with JOURNAL_STREAM failed"
[ ! -s "$tmp/journal" ] || fail "stderr that is the journal got the lines twice: $(cat "$tmp/journal")"
JOURNAL_STREAM=1:1 "$bin" run backup >/dev/null 2>"$tmp/err" || fail "run backup failed"
grep -q "^Backup SQL: success" "$tmp/err" || fail "JOURNAL_STREAM of another stream silenced stderr"
ok "stderr that is the journal stream gets nothing more; another JOURNAL_STREAM changes nothing"

# --- restore from a terminal: --dry-run prints per table rows now -> rows after and changes
#     nothing; another program's SQLite file is refused with its reason; a restore names the copy
#     of the replaced store
backups=$XDG_STATE_HOME/gazelle-scheduler/backups
backup=$(find "$backups" -name 'db_backup_*.sqlite' | sort | tail -n 1)
[ -n "$backup" ] || fail "no backup in $backups"
"$bin" restore --dry-run "$backup" >"$tmp/out" 2>"$tmp/err" || fail "restore --dry-run failed: $(cat "$tmp/err")"
grep -qE '^scheduler_logs +[0-9]+ -> +[0-9]+$' "$tmp/out" || fail "restore --dry-run printed: $(cat "$tmp/out")"
[ -z "$(find "$backups" -name 'pre-restore-*')" ] || fail "restore --dry-run kept a copy"
ok "restore --dry-run: per table rows now -> rows after, nothing kept"
if command -v sqlite3 >/dev/null; then
    sqlite3 "$tmp/migrate.db" "CREATE TABLE schema_migrations (version uint64, dirty bool);
                               INSERT INTO schema_migrations VALUES (3, 0); CREATE TABLE clients (id INTEGER);"
    "$bin" restore "$tmp/migrate.db" >/dev/null 2>"$tmp/err" && fail "a golang-migrate file was restored"
    grep -q "autre programme" "$tmp/err" || fail "refusal without its reason: $(cat "$tmp/err")"
    ok "restore refuses a golang-migrate SQLite file and says why"
fi
"$bin" restore "$backup" >/dev/null 2>"$tmp/err" || fail "restore failed: $(cat "$tmp/err")"
kept=$(find "$backups" -name 'pre-restore-*.sqlite')
[ -n "$kept" ] && grep -qF "$kept" "$tmp/err" || fail "restore did not name the kept copy '$kept': $(cat "$tmp/err")"
ok "restore keeps the replaced store as ${kept##*/} and says so"

# --- logs without any bus: the store, silently
"$bin" logs -n 3 >"$tmp/out" 2>"$tmp/err" || fail "logs without a bus failed: $(cat "$tmp/err")"
grep -q "Backup SQL" "$tmp/out" || fail "logs without a bus printed: $(cat "$tmp/out")"
[ ! -s "$tmp/err" ] || fail "logs without a bus wrote to stderr: $(cat "$tmp/err")"
ok "logs without any bus reads the store and says nothing about the daemon"

# --- logs with a bus where the daemon cannot be reached: said once, --watch too
command -v dbus-daemon >/dev/null || { echo "ok $((n + 1)) - # SKIP no dbus-daemon"; exit 0; }
cat > "$tmp/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$tmp/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile --nosyslog 2>"$tmp/bus.log" &
bus_pid=$!
export DBUS_SESSION_BUS_ADDRESS=unix:path=$tmp/bus
bus_up() { busctl --user --timeout=2 call org.freedesktop.DBus / org.freedesktop.DBus GetId >/dev/null 2>&1; }
for _ in $(seq 100); do bus_up && break; sleep 0.1; done
bus_up || fail "private dbus-daemon did not start: $(cat "$tmp/bus.log")"
"$bin" logs -n 3 >"$tmp/out" 2>"$tmp/err" || fail "logs with an unreachable daemon failed: $(cat "$tmp/err")"
grep -q "Backup SQL" "$tmp/out" || fail "logs with an unreachable daemon printed: $(cat "$tmp/out")"
assert_lines() { [ "$(grep -c 'gazelle-schedulerd injoignable .* : lecture directe de la base' "$tmp/err")" = 1 ]; }
assert_lines || fail "expected the fallback line once: $(cat "$tmp/err")"
ok "logs with a bus but no daemon says once that it reads the store"
timeout -s INT 3.5 "$bin" logs -n 3 --watch 1 >"$tmp/out" 2>"$tmp/err" || true
[ "$(grep -c '^Journal des tâches' "$tmp/out")" -ge 3 ] || fail "--watch did not refresh: $(cat "$tmp/out")"
assert_lines || fail "--watch repeated the fallback line: $(cat "$tmp/err")"
ok "logs --watch refreshes from the store and says it once"

# A caller's text cut inside a multi-byte character never reaches stderr half: a 62- to 65-byte
# task name ending in "é" or "€", for every command that checks a task itself (start asks the
# daemon: tests/unit/test-bus-api.c).
for pad in 62 63 64 65; do
    for ch in é €; do
        name="$(printf 'a%.0s' $(seq "$pad"))$ch$ch"
        for cmd in "run $name" "should-run $name" "logs --task $name"; do
            # shellcheck disable=SC2086
            "$bin" ${cmd% *} "$name" >/dev/null 2>"$tmp/err" && fail "$cmd accepted an unknown task"
            iconv -f UTF-8 -t UTF-8 "$tmp/err" >/dev/null 2>&1 || fail "${cmd%% *}: invalid UTF-8 on stderr at a $pad-byte cut"
            grep -q "Unknown task" "$tmp/err" || fail "${cmd%% *}: $(cat "$tmp/err")"
        done
    done
done
ok "an unknown task name cut inside a multi-byte character: valid UTF-8 on stderr, for every command"
echo "1..$n"
