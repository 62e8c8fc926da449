#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Settings refused at start, or not at all: every bad environment value, a config.json with a
# duplicate key or invalid UTF-8, and a broken configuration under `status`/`logs` exit 2 with
# one line on stderr naming the setting, before any row or email (the store and the outbox
# stay as they were); `check-config` validates everything and prints what is in effect with
# the secrets masked. Runs the real binary outside systemd, on a SQLite store.
set -euo pipefail
. "$(dirname "$0")/cli-lib.sh" test-config
unset SMTP_URL SENDGRID_API_KEY GAZELLE_API_KEY GAZELLE_CLIENT_ID GAZELLE_CLIENT_SECRET ALERTS_MAX_LATENESS \
      GAZELLE_MAX_CONCURRENCY GAZELLE_HTTP_MAX_ATTEMPTS GAZELLE_SYNC_DELETE_MAX_PERCENT
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

# check-config: valid → exit 0, what is in effect with every secret masked, nothing written.
cat > "$tmp/config.json" <<'JSON'
{"mail": {"sender_email": "alertes@example.com", "admin_email": "admin@example.com", "transport": "smtp"}}
JSON
secrets=(SMTP-PW-1234 CLIENT-SECRET-5678 SENDGRID-KEY-9012 CLIENT-ID-3456)
check() {
    env GAZELLE_CONFIG="$tmp/config.json" SMTP_URL="smtps://bob:${secrets[0]}@mail.example.com:465" \
        GAZELLE_CLIENT_ID="${secrets[3]}" GAZELLE_CLIENT_SECRET="${secrets[1]}" SENDGRID_API_KEY="${secrets[2]}" \
        GAZELLE_API_KEY= "$@" "$bin" check-config >"$tmp/out" 2>"$tmp/err"
}
rc=0; check || rc=$?
[ "$rc" = 0 ] || fail "check-config of a valid configuration exited $rc: $(cat "$tmp/out" "$tmp/err")"
grep -q "^Configuration valid (user instance)" "$tmp/out" || fail "check-config printed: $(cat "$tmp/out")"
grep -q "Store: $store reachable, schema version" "$tmp/out" || fail "check-config did not check the store: $(cat "$tmp/out")"
grep -q "Mail: smtp, from alertes@example.com" "$tmp/out" || fail "check-config did not set up the mail: $(cat "$tmp/out")"
grep -q "Gazelle: OAuth client" "$tmp/out" || fail "check-config did not see the OAuth client: $(cat "$tmp/out")"
for name in GAZELLE_MAX_CONCURRENCY ALERTS_MAX_LATENESS GAZELLE_SYNC_DELETE_MAX_PERCENT GAZELLE_HTTP_MAX_ATTEMPTS \
            BACKUP_DIR BACKUP_KEEP DATABASE_URL SENDGRID_API_KEY GAZELLE_CLIENT_SECRET; do
    grep -q "^  $name " "$tmp/out" || fail "check-config does not show $name"
done
grep -q "^  SMTP_URL  *smtps://bob:\*\*\*@mail.example.com:465/  (environment)" "$tmp/out" \
    || fail "SMTP_URL not shown masked: $(grep SMTP_URL "$tmp/out")"
grep -q "^  ALERTS_MAX_LATENESS  *4h  (default)" "$tmp/out" || fail "the default lateness: $(grep LATENESS "$tmp/out")"
for s in "${secrets[@]}"; do
    ! grep -q -- "$s" "$tmp/out" "$tmp/err" || fail "check-config printed the secret $s"
done
ok "check-config: exit 0, every setting with its source, the store reachable, secrets masked"

# A bad value: exit 2 and the one line; a store that cannot be reached or no Gazelle credential: exit 1.
rc=0; check GAZELLE_HTTP_MAX_ATTEMPTS=0 || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "GAZELLE_HTTP_MAX_ATTEMPTS=0" "$tmp/err" \
    || fail "check-config with a bad value: rc=$rc $(cat "$tmp/err")"
rc=0; check DATABASE_URL="postgresql://gs:${secrets[0]}@127.0.0.1:1/gs" || rc=$?
[ "$rc" = 1 ] && grep -q "problem: store PostgreSQL cannot be reached" "$tmp/out" \
    || fail "check-config with an unreachable store: rc=$rc $(cat "$tmp/out")"
grep -q "^  DATABASE_URL .*password=\*\*\* .*host=127.0.0.1" "$tmp/out" || fail "DATABASE_URL not masked: $(grep DATABASE_URL "$tmp/out")"
! grep -q -- "${secrets[0]}" "$tmp/out" "$tmp/err" || fail "check-config printed the database password"
rc=0; check DATABASE_URL="postgresql://gs:${secrets[0]}@[::1" || rc=$?
[ "$rc" = 1 ] && ! grep -q -- "${secrets[0]}" "$tmp/out" "$tmp/err" || fail "a malformed DATABASE_URL: rc=$rc $(cat "$tmp/out")"
rc=0; check GAZELLE_CLIENT_SECRET= || rc=$?
[ "$rc" = 1 ] && grep -q "problem: Gazelle" "$tmp/out" || fail "check-config without Gazelle credentials: rc=$rc"
ok "check-config: a bad value exits 2 with one line; an unreachable store or a missing credential exits 1, masked"

# It writes nothing: a state directory without a store stays without one.
rc=0; XDG_STATE_HOME=$tmp/fresh check || rc=$?
[ "$rc" = 0 ] && grep -q "not created yet" "$tmp/out" || fail "check-config on a fresh state: rc=$rc $(cat "$tmp/out")"
[ ! -e "$tmp/fresh/gazelle-scheduler/gazelle-scheduler.sqlite" ] || fail "check-config created the store"
ok "check-config creates no store"

# The admin group: one meson option generates the system bus policy and sysusers.d and is the
# daemon's group; on the system bus a GAZELLE_ADMIN_GROUP that differs is refused at start.
group=$("$bin" check-config | sed -n 's/^  GAZELLE_ADMIN_GROUP  *\([^ ]*\)  (default)$/\1/p')
[ -n "$group" ] || fail "check-config does not show the built-in admin group"
policy=$GS_BUILD_DIR/dbus/com.piano_tek.GazelleScheduler1.conf
grep -q "<policy group=\"$group\">" "$policy" || fail "the bus policy does not grant the daemon's group $group: $(grep 'policy group' "$policy")"
[ "$(grep -c '<policy group=' "$policy")" = 2 ] || fail "the bus policy names other groups: $(grep 'policy group' "$policy")"
grep -q "^g $group -" "$GS_BUILD_DIR/units/gazelle-scheduler.sysusers" || fail "sysusers.d does not create $group"
for m in "$GS_BUILD_DIR"/src/cockpit/manifest.*.json; do
    grep -q "\"admin_group\": \"$group\"" "$m" || fail "the Cockpit manifest $m does not name $group"
done
rc=0; GAZELLE_ADMIN_GROUP=not-$group "$bin" --system check-config >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && grep -q "GAZELLE_ADMIN_GROUP=not-$group: the system bus policy of this build grants group $group (meson option admin_group)" "$tmp/err" \
    || fail "--system with another admin group: rc=$rc $(cat "$tmp/err")"
GAZELLE_ADMIN_GROUP=$group "$bin" --system check-config >/dev/null 2>"$tmp/err" || [ $? = 1 ] || fail "--system with the build's group: $(cat "$tmp/err")"
GAZELLE_ADMIN_GROUP=not-$group "$bin" --user check-config >/dev/null 2>"$tmp/err" || [ $? = 1 ] || fail "--user with another group: $(cat "$tmp/err")"
ok "the bus policy, sysusers.d, the Cockpit page and the daemon share the admin group $group; a different one on the system bus exits 2"
echo "1..$n"
