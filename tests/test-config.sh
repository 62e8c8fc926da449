#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Settings refused at start, or not at all: every bad environment value, a config.json with a
# duplicate key or invalid UTF-8, and a broken configuration under `status`/`logs` exit 2 with
# one line on stderr naming the setting, before any row or email (the store and the outbox
# stay as they were); `check-config` validates everything and prints what is in effect with
# the secrets masked. Runs the real binary outside systemd, on a SQLite store.
set -euo pipefail
bin=${GS_BUILD_DIR:?}/gazelle-scheduler
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-config.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "not ok - $*" >&2; exit 1; }

unset STATE_DIRECTORY DATABASE_URL CREDENTIALS_DIRECTORY INVOCATION_ID JOURNAL_STREAM GAZELLE_CONFIG \
      BACKUP_DIR BACKUP_SQLITE_PATH SMTP_URL SENDGRID_API_KEY GAZELLE_API_KEY GAZELLE_CLIENT_ID \
      GAZELLE_CLIENT_SECRET ALERTS_MAX_LATENESS GAZELLE_MAX_CONCURRENCY GAZELLE_HTTP_MAX_ATTEMPTS \
      GAZELLE_SYNC_DELETE_MAX_PERCENT
export XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/xdg GAZELLE_BUS=user
export DBUS_SESSION_BUS_ADDRESS=unix:path=$tmp/no-bus
store=$tmp/state/gazelle-scheduler/gazelle-scheduler.sqlite
outbox=$tmp/state/gazelle-scheduler/outbox

# A store with one run in it, and credentials that would let a task get going.
"$bin" run backup >/dev/null 2>&1 || fail "the first backup failed"
rows() { sqlite3 "$store" 'SELECT count(*) FROM scheduler_logs'; }
before=$(rows)
export GAZELLE_API_KEY=test-key GAZELLE_API_URL=http://127.0.0.1:9/graphql/private/

# expect_refused NAME=VALUE TASK EXPECTED: exit 2, one line naming NAME and EXPECTED, nothing written.
expect_refused() {
    local setting=$1 task=$2 expected=$3 rc=0
    env "$setting" "$bin" run "$task" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" = 2 ] || fail "$setting: run $task exited $rc, expected 2: $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$setting: expected one line on stderr, got: $(cat "$tmp/err")"
    grep -qF "${setting%%=*}" "$tmp/err" || fail "$setting: the line does not name the variable: $(cat "$tmp/err")"
    grep -qF "$expected" "$tmp/err" || fail "$setting: the line lacks '$expected': $(cat "$tmp/err")"
    ! grep -q PASSWORD "$tmp/err" || fail "$setting: the line echoes the password: $(cat "$tmp/err")"
    [ "$(rows)" = "$before" ] || fail "$setting: run $task wrote a row"
    [ ! -e "$outbox" ] || [ -z "$(ls -A "$outbox")" ] || fail "$setting: run $task left an email in the outbox"
}

# The audit's ten values, each with the task that used to read it only when it ran.
expect_refused GAZELLE_MAX_CONCURRENCY=0 sync "expected 1 to 16"
expect_refused GAZELLE_MAX_CONCURRENCY=17 sync "expected 1 to 16"
expect_refused GAZELLE_MAX_CONCURRENCY=abc sync "expected 1 to 16"
expect_refused GAZELLE_MAX_CONCURRENCY=-2 sync "expected 1 to 16"
expect_refused ALERTS_MAX_LATENESS=garbage alerts "expected 1s to 7d"
expect_refused ALERTS_MAX_LATENESS=-1h alerts "expected 1s to 7d"
expect_refused ALERTS_MAX_LATENESS=99999999999999h alerts "expected 1s to 7d"
expect_refused GAZELLE_SYNC_DELETE_MAX_PERCENT=200 sync "expected 0 to 100"
expect_refused GAZELLE_HTTP_MAX_ATTEMPTS=0 sync "expected 1 to 20"
expect_refused SMTP_URL=ftp://user:PASSWORD@host alerts "expected smtp://HOST[:PORT] or smtps://HOST[:PORT]"
ok "the audit's ten values exit 2 with one line naming the variable and the range; no row, no email"

# config.json with a duplicate key or invalid UTF-8: refused by every command, exit 2, one line.
printf '{"mail": {"admin_email": "a@example.com"}, "mail": {"admin_email": "b@example.com"}}' > "$tmp/dup.json"
printf '{\n "mail": {"sender_name": "Piano-Tek \xe9"}\n}' > "$tmp/latin1.json"
for f in dup latin1; do
    rc=0; GAZELLE_CONFIG=$tmp/$f.json "$bin" run alerts >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" = 2 ] || fail "$f.json: run alerts exited $rc: $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$f.json: expected one line: $(cat "$tmp/err")"
    [ "$(rows)" = "$before" ] || fail "$f.json: a row was written"
done
grep -q 'duplicate key "mail"' <(GAZELLE_CONFIG=$tmp/dup.json "$bin" run alerts 2>&1) || fail "dup.json: the line does not name the key"
grep -q 'line 2: invalid UTF-8' <(GAZELLE_CONFIG=$tmp/latin1.json "$bin" run alerts 2>&1) || fail "latin1.json: the line does not say where"
ok "config.json with a duplicate key or invalid UTF-8: exit 2, one line naming the key or the line"

# status and logs with a bad configuration: exit 2 (not status's "stale task" 1), one line.
for cmd in status logs; do
    for setting in GAZELLE_CONFIG=$tmp/dup.json GAZELLE_MAX_CONCURRENCY=0; do
        rc=0; env "$setting" "$bin" "$cmd" >"$tmp/out" 2>"$tmp/err" || rc=$?
        [ "$rc" = 2 ] || fail "$cmd with $setting exited $rc, expected 2: $(cat "$tmp/err")"
        [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$cmd with $setting: expected one line: $(cat "$tmp/err")"
        [ ! -s "$tmp/out" ] || fail "$cmd with $setting printed: $(cat "$tmp/out")"
    done
done
ok "status and logs with a bad configuration exit 2 with one line"
