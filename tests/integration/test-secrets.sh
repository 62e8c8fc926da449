#!/bin/bash
# SPDX-License-Identifier: MIT
# The secret sweep: every secret setting holds a marker, every endpoint fails (an HTTP endpoint
# that echoes the request: body, query, Authorization and x-gazelle-api-key; a closed SMTP port;
# an SMTP_URL of the wrong scheme; a malformed and an unreachable DATABASE_URL), and every path a
# text leaves by is searched for every marker: the journal (all fields), scheduler_logs and
# alert_ledger, the CLI's stderr, busctl's view of D-Bus error texts, the failure emails in the
# outbox, and /proc/*/cmdline sampled every 20 ms throughout. Expected: 0 hits.
# Secrets reach the processes the way an administrator gives them: the units' environment file,
# exported variables, stdin (auth) — never argv, so the sampler's hits are the product's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

# --- markers: one per secret setting, and for the secrets the product obtains at run time
M_DB=mk1DbPassword9q        # DATABASE_URL's password
M_CLIENT=mk2ClientSecret8w  # GAZELLE_CLIENT_SECRET
M_API=mk3ApiKey7e           # GAZELLE_API_KEY
M_SG=mk4SendgridKey6r       # SENDGRID_API_KEY
M_SMTP=mk5SmtpPassword5t    # SMTP_PASSWORD
M_SMTPURL=mk6SmtpUrlPass4y  # SMTP_URL's password
M_CODE=mk7AuthCode3u        # the authorization code (auth --code -)
M_RT=mk8RefreshToken2i      # a refresh token (auth --refresh-token -, the store)
M_AT=mk9AccessToken1o       # an access token (the store)
M_JWT=eyJhbGci                # the start of every signed JWT (Google's assertion: a bearer credential)
MARKERS=("$M_DB" "$M_CLIENT" "$M_API" "$M_SG" "$M_SMTP" "$M_SMTPURL" "$M_CODE" "$M_RT" "$M_AT" "$M_JWT")

# --- /proc/*/cmdline, sampled for the whole test (stopped before anything greps for a marker)
cmdlines=$SBX_DIR/cmdlines
( while :; do
      for f in /proc/[0-9]*/cmdline; do { tr '\0' ' ' < "$f"; echo; } 2>/dev/null; done >> "$cmdlines"
      sleep 0.02
  done ) &
sampler=$!

# --- the echoing endpoint
python3 "$GS_SOURCE_DIR/tests/fakes/echo.py" --port-file "$SBX_DIR/echo.port" &
echo_pid=$!
trap 'kill $sampler $echo_pid 2>/dev/null || true; _gs_cleanup' EXIT
wait_for "echo endpoint" 10 test -s "$SBX_DIR/echo.port" || fail "echo.py did not start"
E=http://127.0.0.1:$(cat "$SBX_DIR/echo.port")

outbox=$SBX_DIR/outbox
cat > "$SBX_DIR/config.json" <<JSON
{"mail": {"admin_email": "admin@example.com", "sender_email": "gs@example.com", "transport": "outbox",
          "outbox_dir": "$outbox"}}
JSON
sed 's/"outbox",/"sendgrid",/' "$SBX_DIR/config.json" > "$SBX_DIR/config-sendgrid.json"
sed 's/"outbox",/"smtp",/' "$SBX_DIR/config.json" > "$SBX_DIR/config-smtp.json"

# Every secret setting at once, so that each failing endpoint below meets all of them.
envfile=$XDG_CONFIG_HOME/gazelle-scheduler/gazelle-scheduler.env
mkdir -p "$(dirname "$envfile")"
cat > "$envfile" <<ENV
GAZELLE_CONFIG=$SBX_DIR/config.json
GAZELLE_CLIENT_ID=client-id-test
GAZELLE_CLIENT_SECRET=$M_CLIENT
GAZELLE_TOKEN_URL=$E/developer/oauth/token
GAZELLE_API_URL=$E/graphql/private/
GAZELLE_HTTP_MAX_ATTEMPTS=1
SENDGRID_API_KEY=$M_SG
SENDGRID_API_URL=$E
SMTP_USERNAME=smtp-user
SMTP_PASSWORD=$M_SMTP
SMTP_URL=smtp://smtp-user:$M_SMTPURL@127.0.0.1:9
ENV
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a

errs=$SBX_DIR/stderr
: > "$errs"
# cli ARGS... - the CLI with its stderr kept; its exit code does not matter (every call fails)
cli() { gazelle-scheduler "$@" >>"$errs" 2>&1 </dev/null || true; }
cli_stdin() { local input=$1; shift; gazelle-scheduler "$@" >>"$errs" 2>&1 <<<"$input" || true; }

cli status   # creates the store
# --- endpoint: the token endpoint (authorization code, refresh token import, a run's refresh)
cli_stdin "$M_CODE" auth --code -
cli_stdin "$M_RT" auth --refresh-token -
sqlite3 -batch "$GS_DB" <<SQL
INSERT INTO gazelle_oauth_tokens (id, access_token, refresh_token, token_type, expires_at, updated_at)
VALUES (1, '$M_AT', '$M_RT', 'Bearer', '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z')
ON CONFLICT (id) DO UPDATE SET access_token = excluded.access_token, refresh_token = excluded.refresh_token,
expires_at = excluded.expires_at;
SQL
cli run sync
ok "token endpoint echoing: auth --code -, auth --refresh-token -, a run's refresh"

# --- endpoint: the API (access token still valid; then API-key mode)
sqlite3 -batch "$GS_DB" <<SQL
UPDATE gazelle_oauth_tokens SET access_token = '$M_AT', refresh_token = '$M_RT', expires_at = '2100-01-01T00:00:00Z';
SQL
cli run sync
GAZELLE_API_KEY=$M_API cli run sync
ok "GraphQL endpoint echoing: OAuth and API-key mode"

# --- endpoint: Google's token endpoint (the signed JWT assertion in the body it echoes)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$SBX_DIR/key.pem" 2>/dev/null
python3 - "$SBX_DIR/key.pem" >"$SBX_DIR/sa.json" <<'PY'
import json, sys
print(json.dumps({"type": "service_account", "private_key": open(sys.argv[1]).read(),
                  "client_email": "sweep@example.iam.gserviceaccount.com"}))
PY
GOOGLE_APPLICATION_CREDENTIALS=$SBX_DIR/sa.json REPORT_SPREADSHEET_ID=sheet-sweep GOOGLE_TOKEN_URL=$E/token \
    SHEETS_API_URL=$E cli run report
ok "Google token endpoint echoing the JWT assertion"

# --- through the units: a failing run, its OnFailure= email into the outbox
systemctl --user daemon-reload
systemctl --user start gazelle-sync.service 2>>"$errs" || true
wait_for "the failure email" 60 bash -c "ls '$outbox'/*.eml >/dev/null 2>&1" || fail "no failure email in $outbox"
ok "a failing unit run and its failure email"

# --- endpoints: SendGrid (echoing), SMTP (closed port), SMTP_URL of another scheme
GAZELLE_CONFIG=$SBX_DIR/config-sendgrid.json cli notify-failure gazelle-sync.service
GAZELLE_CONFIG=$SBX_DIR/config-smtp.json cli notify-failure gazelle-sync.service
GAZELLE_CONFIG=$SBX_DIR/config-smtp.json SMTP_URL="ftp://smtp-user:$M_SMTPURL@127.0.0.1" \
    cli notify-failure gazelle-sync.service
GAZELLE_CONFIG=$SBX_DIR/config-smtp.json SMTP_URL="ftp://smtp-user:$M_SMTPURL@127.0.0.1" cli run backup
ok "mail endpoints: SendGrid echoing, SMTP refused, SMTP_URL=ftp://"

# --- endpoint: the store (malformed URI, which libpq quotes whole; unreachable server)
for url in "postgresql://postgres:$M_DB@[::1" "postgresql://postgres:$M_DB@127.0.0.1:9/gazelle" \
           "host=127.0.0.1 port=9 user=postgres password=$M_DB dbname=gazelle"; do
    DATABASE_URL=$url cli run backup
    DATABASE_URL=$url cli logs
    DATABASE_URL=$url cli notify-failure gazelle-backup.service
    # The daemon: the same URL in its environment file, a call, its StoreUnavailable text.
    { cat "$envfile"; echo "DATABASE_URL=$url"; } > "$envfile.new"
    cp "$envfile" "$envfile.keep"
    mv "$envfile.new" "$envfile"
    systemctl --user stop gazelle-schedulerd.service
    gs_call GetLogs u 5 >>"$errs" 2>&1 || true
    gs_call RunTask ss backup "" >>"$errs" 2>&1 || true
    systemctl --user stop gazelle-schedulerd.service
    mv "$envfile.keep" "$envfile"
done
ok "store endpoint: malformed URI, unreachable server, key=value form (CLI, daemon, email)"

# --- the sweep
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sleep 1 # journald ingests asynchronously
journal=$SBX_DIR/journal
journalctl --no-pager -o export > "$journal" 2>/dev/null || journalctl --user --no-pager -o export > "$journal"
[ -s "$journal" ] || fail "the journal is empty: nothing was swept"
grep -q "GAZELLE_TASK=sync_gazelle" "$journal" || fail "the runs are not in the journal"
grep -q "Store unavailable: .*postgres:\*\*\*@" "$journal" || fail "the daemon's store error is not in the journal"
grep -q "client_secret=\*\*\*" "$journal" || fail "the token endpoint's echo is not in the journal"
store=$SBX_DIR/store.txt
sqlite3 -batch "$GS_DB" "SELECT * FROM scheduler_logs; SELECT * FROM alert_ledger;" > "$store"
[ -s "$store" ] || fail "scheduler_logs is empty: nothing was swept"
mails=$SBX_DIR/mails.txt
# Decoded (the text part is base64 or quoted-printable), and raw.
python3 "$GS_SOURCE_DIR/tests/fakes/parse_eml.py" "$outbox"/*.eml > "$mails"
cat "$outbox"/*.eml >> "$mails"
grep -q "a échoué" "$mails" || fail "the failure email is not there: $(head -c 300 "$mails")"

# GS_SECRETS_KEEP=DIR keeps the swept files for a look.
[ -z "${GS_SECRETS_KEEP:-}" ] || cp "$errs" "$journal" "$store" "$mails" "$cmdlines" "$GS_SECRETS_KEEP"/
hits=0
for m in "${MARKERS[@]}"; do
    for f in "$journal" "$store" "$errs" "$mails" "$cmdlines"; do
        n=$(grep -c -F -- "$m" "$f" || true)
        if [ "$n" != 0 ]; then
            hits=$((hits + n))
            printf '%s: %s line(s) with %s, e.g.: %s\n' "$(basename "$f")" "$n" "$m" \
                "$(grep -F -m1 -- "$m" "$f" | cut -c1-300)" >&2
        fi
    done
done
[ "$hits" = 0 ] || fail "$hits secret occurrence(s) in the journal, store, stderr, outbox or argv"
# The texts did reach stderr, only masked (else the sweep proved nothing).
grep -q "\*\*\*" "$errs" || fail "no masked text on stderr: the failures never quoted a secret"

ok "secret sweep: ${#MARKERS[@]} markers x (journal, scheduler_logs, stderr, outbox, /proc/*/cmdline): 0 hits"
