#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Rapport Timeline at production scale, SQLite store, `gazelle-scheduler run rapport` against the
# loopback fake of Google (tests/fakes/fake_google.py) with a service-account key made here by
# openssl:
#   1. 283,000 timeline entries (about 24,000 relevant): every CSV file is byte for byte the
#      generator's expected file (rows, folding, dedup, humidity, display names, alerts, the empty
#      Orford tab with its header only and a note); the sheet's cells read back equal the CSV,
#      grids sized to the data, few requests (never one per row);
#   2. fewer rows in the store: the sheet shrinks, no stale row survives;
#   3. a 429/503 storm: retried, then success;
#   4. the sheet not shared with the service account: the run fails saying exactly that, and the
#      sheet is left as it was;
#   5. a key that does not parse: the run fails at start with one clear line;
#   6. CSV retention: day directories older than 30 days are removed, other files kept.
# Environment: GS_BUILD_DIR, GS_SOURCE_DIR. Exit 77 when python3-cryptography or openssl is missing.
set -euo pipefail

: "${GS_BUILD_DIR:?}" "${GS_SOURCE_DIR:?}"
ok() { printf 'ok - %s\n' "$*"; }
fail() { printf 'not ok - %s\n' "$*" >&2; exit 1; }
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 77; }
python3 -c 'import cryptography' 2>/dev/null || { echo "SKIP: python3-cryptography missing"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-report.XXXXXX")
fake_pid=
cleanup() {
    [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

bin=$GS_BUILD_DIR/gazelle-scheduler
check=$GS_SOURCE_DIR/tests/report-check.py
export STATE_DIRECTORY=$tmp/state GAZELLE_CONFIG=$tmp/expected/config.json GAZELLE_BUS=user
unset DATABASE_URL CREDENTIALS_DIRECTORY INVOCATION_ID GOOGLE_APPLICATION_CREDENTIALS
mkdir -p "$STATE_DIRECTORY"
db=$STATE_DIRECTORY/gazelle-scheduler.sqlite
sql() { sqlite3 -batch -cmd '.timeout 5000' "$db" "$1"; }
last() { sql "SELECT $1 FROM scheduler_logs WHERE task_name='rapport_timeline' ORDER BY started_at DESC LIMIT 1"; }

# --- the store and the expected report
env -u GAZELLE_CONFIG "$bin" migrate >/dev/null  # the config is generated with the history
t0=$EPOCHREALTIME
python3 "$GS_SOURCE_DIR/tests/gen-report-history.py" --out "$tmp/expected" --sqlite "$db" >"$tmp/summary.txt"
ok "history generated in $(bc <<<"$EPOCHREALTIME - $t0" | cut -c1-5) s: $(cat "$tmp/summary.txt")"

# --- a service-account key made now, and the fake Google
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/key.pem" 2>/dev/null
openssl pkey -in "$tmp/key.pem" -pubout -out "$tmp/pub.pem"
email=rapport-test@piano-tek-test.iam.gserviceaccount.com
python3 - "$tmp/key.pem" "$email" >"$tmp/sa.json" <<'EOF'
import json, sys
print(json.dumps({"type": "service_account", "project_id": "piano-tek-test", "private_key_id": "0123",
                  "private_key": open(sys.argv[1]).read(), "client_email": sys.argv[2],
                  "token_uri": "https://oauth2.googleapis.com/token"}))
EOF
sheet_id=1ZZsMrIT0BEwHKQ6-test
python3 "$GS_SOURCE_DIR/tests/fakes/fake_google.py" --port-file "$tmp/port" --public-key "$tmp/pub.pem" \
    --client-email "$email" --spreadsheet "$sheet_id" --sheet "Feuille 1=1000x26" --sheet "UQAM=40000x40" &
fake_pid=$!
for _ in $(seq 1500); do [ -s "$tmp/port" ] && break; sleep 0.02; done  # 30 s: a loaded machine
[ -s "$tmp/port" ] || fail "fake Google did not start"
fake=http://127.0.0.1:$(cat "$tmp/port")
export GOOGLE_APPLICATION_CREDENTIALS=$tmp/sa.json REPORT_SPREADSHEET_ID=$sheet_id
export GOOGLE_TOKEN_URL=$fake/token SHEETS_API_URL=$fake

# Retention fixtures: one day older than 30 days, one recent, one foreign directory.
mkdir -p "$STATE_DIRECTORY/reports/2020-01-01" "$STATE_DIRECTORY/reports/notes"
touch "$STATE_DIRECTORY/reports/2020-01-01/uqam.csv"
recent=$(TZ=America/Montreal date -d '-29 days' +%F)
mkdir -p "$STATE_DIRECTORY/reports/$recent"

# --- 1. full report
t0=$EPOCHREALTIME
"$bin" run rapport 2>"$tmp/run1.err" || fail "run failed: $(last message) $(cat "$tmp/run1.err")"
ok "report built and written in $(bc <<<"$EPOCHREALTIME - $t0" | cut -c1-5) s: $(last message)"
[ "$(last status)" = success ] || fail "status $(last status)"
day=$(TZ=America/Montreal date +%F)
out=$STATE_DIRECTORY/reports/$day
for f in "$tmp"/expected/*.csv; do
    cmp "$f" "$out/${f##*/}" || fail "${f##*/} differs from the expected report"
done
n_csv=("$tmp"/expected/*.csv)
ok "every CSV file equals the expected bytes (${#n_csv[@]} files)"
python3 "$check" sheet-equals-csv "$fake" "$out" "$tmp/expected/summary.json"
stats=$(last stats)
grep -q '"Orford":0' <<<"$stats" || fail "no Orford row count in $stats"
grep -q "Orford : aucune ligne" <<<"$stats" || fail "no note for the empty Orford tab in $stats"
ok "empty institution: header only, noted in the stats"
writes=$(python3 "$check" requests "$fake" 'values:batchUpdate')
total=$(python3 "$check" requests "$fake" ' /')
[ "$writes" -ge 1 ] && [ "$writes" -le 5 ] || fail "$writes values:batchUpdate calls"
[ "$total" -le $((writes + 4)) ] || fail "$total requests for $writes writes"
grep -q "\"requests\":$total" <<<"$stats" || fail "stats do not count $total requests: $stats"
[ "$(python3 "$check" tokens "$fake")" = 1 ] || fail "more than one token for one run"
ok "$total requests in all, $writes values:batchUpdate (about 2 MB each), token once"
[ ! -e "$STATE_DIRECTORY/reports/2020-01-01" ] || fail "a 2020 report directory survived retention"
[ -d "$STATE_DIRECTORY/reports/$recent" ] && [ -d "$STATE_DIRECTORY/reports/notes" ] \
    || fail "retention removed a recent or foreign directory"
ok "retention: older than 30 days removed; $recent and foreign entries kept"

# --- 2. fewer rows: the sheet shrinks with them
sql "UPDATE gazelle_timeline_entries SET deleted_at = synced_at WHERE piano_external_id IN
     (SELECT external_id FROM gazelle_pianos WHERE client_external_id = 'cli_sos6RK8t4htOApiM')"
"$bin" run rapport 2>"$tmp/run2.err" || fail "second run failed: $(last message)"
uqam=$(($(wc -l <"$out/uqam.csv") - 1))
full=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"]["UQAM"])' "$tmp/expected/summary.json")
[ "$uqam" -lt "$full" ] || fail "UQAM did not shrink ($uqam rows, $full before)"
python3 - "$fake" "$out/uqam.csv" <<'EOF' || exit 1
import csv, json, sys, urllib.request
st = json.load(urllib.request.urlopen(sys.argv[1] + "/_state"))["sheets"]["UQAM"]
rows = list(csv.reader(open(sys.argv[2], encoding="utf-8-sig", newline="")))
assert len(st["values"]) == len(rows) and st["rows"] == len(rows), (len(st["values"]), st["rows"], len(rows))
print(f"ok - UQAM shrank to {len(rows) - 1} rows in the sheet too (grid {st['rows']} rows), no stale row")
EOF

# --- 3. a 429 and 503 storm, answered with Retry-After: 0 so the test stays fast
python3 "$check" control "$fake" '{"faults": [
    {"match": "values:batchUpdate", "status": 429, "count": 4, "retry_after": 0},
    {"match": "GET /v4/spreadsheets", "status": 503, "count": 2, "retry_after": 0},
    {"match": "POST /token", "status": 429, "count": 1, "retry_after": 0}]}'
"$bin" run rapport 2>"$tmp/run3.err" || fail "run under a 429 storm failed: $(last message)"
retries=$(last stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["retries"])')
[ "$retries" -ge 7 ] || fail "only $retries retries counted"
python3 "$check" sheet-equals-csv "$fake" "$out" "$tmp/expected/summary.json" >/dev/null
ok "429/503 storm: $retries retries, then the sheet equals the CSV"

# --- 4. not shared with the service account: fails before writing, the sheet stays as it was
python3 "$check" dump "$fake" >"$tmp/before.json"
sql "UPDATE gazelle_timeline_entries SET deleted_at = NULL"
python3 "$check" control "$fake" '{"shared": false}'
if "$bin" run rapport 2>"$tmp/run4.err"; then fail "run succeeded on a sheet not shared"; fi
msg=$(last message)
grep -q "n'est pas partagé avec le compte de service $email" <<<"$msg" || fail "message: $msg"
grep -q "n'a pas été modifié" <<<"$msg" || fail "message does not say the sheet is unchanged: $msg"
python3 "$check" dump "$fake" >"$tmp/after.json"
cmp -s "$tmp/before.json" "$tmp/after.json" || fail "the sheet changed although the run failed before writing"
ok "403: \"$msg\"; sheet unchanged"
python3 "$check" control "$fake" '{"shared": true}'

# --- 4b. Google down (503 on every attempt) before the write: fails, sheet as it was
python3 "$check" control "$fake" '{"faults": [{"match": "GET /v4/spreadsheets", "status": 503, "count": -1, "retry_after": 0}]}'
if "$bin" run rapport 2>"$tmp/run4b.err"; then fail "run succeeded with Google down"; fi
msg=$(last message)
grep -q "Google Sheets indisponible : GET .*/v4/spreadsheets/$sheet_id.*503" <<<"$msg" && grep -q "n'a pas été modifié" <<<"$msg" || fail "message: $msg"
python3 "$check" dump "$fake" >"$tmp/after4b.json"
cmp -s "$tmp/before.json" "$tmp/after4b.json" || fail "the sheet changed although Google was down before writing"
ok "503 on every attempt: \"$msg\"; sheet unchanged"
python3 "$check" control "$fake" '{"clear_faults": true}'

# --- 4c. tokens are reused until shortly before they expire: with 200 s tokens (less than the
# 5 min margin) every call needs a new one, with 1 h tokens one per run
python3 "$check" control "$fake" '{"token_ttl": 200}'
t_before=$(python3 "$check" tokens "$fake"); r_before=$(python3 "$check" requests "$fake" ' /v4/')
"$bin" run rapport 2>"$tmp/run4c.err" || fail "run with short tokens failed: $(last message)"
t_new=$(( $(python3 "$check" tokens "$fake") - t_before )); r_new=$(( $(python3 "$check" requests "$fake" ' /v4/') - r_before ))
[ "$t_new" = "$r_new" ] || fail "$t_new tokens for $r_new Sheets calls with 200 s tokens"
python3 "$check" control "$fake" '{"token_ttl": 3599}'
t_before=$(python3 "$check" tokens "$fake")
"$bin" run rapport 2>"$tmp/run4d.err" || fail "run failed: $(last message)"
[ $(( $(python3 "$check" tokens "$fake") - t_before )) = 1 ] || fail "1 h tokens not reused within a run"
ok "token cache: $t_new tokens for $r_new calls with 200 s tokens, 1 token per run with 1 h tokens"
python3 "$check" dump "$fake" >"$tmp/before.json"

# --- 5. a key that does not parse
printf '{"type": "service_account", "client_email": "%s", "private_key": "-----BEGIN PRIVATE KEY-----\\nnope\\n-----END PRIVATE KEY-----\\n"}' \
    "$email" >"$tmp/bad.json"
if GOOGLE_APPLICATION_CREDENTIALS=$tmp/bad.json "$bin" run rapport 2>"$tmp/run5.err"; then fail "bad key accepted"; fi
msg=$(last message)
grep -q "clé de compte de service Google ($tmp/bad.json) invalide : private_key" <<<"$msg" || fail "message: $msg"
grep -q "nope" <<<"$msg$(cat "$tmp/run5.err")" && fail "the key's text leaked into a message"
ok "bad key: \"$msg\""
python3 "$check" dump "$fake" >"$tmp/after5.json"
cmp -s "$tmp/before.json" "$tmp/after5.json" || fail "the sheet changed on a bad key"

# No secret in any message or log line of these runs.
key_line=$(sed -n 2p "$tmp/key.pem")
! grep -qF "$key_line" "$tmp"/run*.err || fail "private key text on stderr"
! sql "SELECT message || stats FROM scheduler_logs" | grep -q 'ya29\.' || fail "a token in scheduler_logs"
ok "no key or token in stderr or scheduler_logs"
