#!/bin/bash
# SPDX-License-Identifier: MIT
# gazelle-report.service under the user manager on the store GS_STORE selects, against the
# loopback fake Google (tests/fakes/fake_google.py) with a key made by openssl:
#   1. the timer path (the 02:00 slot, brought forward by a drop-in): triggered_by=scheduler,
#      success, every CSV equals the generator's expected file, the sheet's cells equal the CSV;
#   2. RunTask rapport over D-Bus: the daemon's run id is the runner's row, triggered_by=manual;
#   3. the journal carries GAZELLE_TASK=rapport_timeline and the run id.
# PostgreSQL gets the production-scale history (283,000 entries, psql \copy); SQLite a smaller
# one (the production-scale SQLite run is tests/test-report.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"
python3 -c 'import cryptography' 2>/dev/null || skip_test "python3-cryptography missing"

work=$SBX_DIR/report
mkdir -p "$work"
gazelle-scheduler --user migrate >/dev/null
if [ "$GS_STORE" = postgresql ]; then
    python3 "$GS_SOURCE_DIR/tests/gen-report-history.py" --out "$work/expected" --pg-csv >"$work/summary.txt"
    for t in gazelle_clients gazelle_pianos gazelle_users gazelle_timeline_entries; do
        psql -X -q -v ON_ERROR_STOP=1 -d "$SBX_PG_URL" \
             -c "\\copy $t ($(cat "$work/expected/$t.cols")) FROM '$work/expected/$t.csv' WITH (FORMAT csv, NULL '\\N')"
    done
    psql -X -q -d "$SBX_PG_URL" -c "ANALYZE" >/dev/null
else
    python3 "$GS_SOURCE_DIR/tests/gen-report-history.py" --out "$work/expected" --sqlite "$GS_DB" \
        --entries 40000 --relevant 4000 >"$work/summary.txt"
fi
ok "history in the $GS_STORE store: $(cat "$work/summary.txt")"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
openssl pkey -in "$work/key.pem" -pubout -out "$work/pub.pem"
email=rapport-units@piano-tek-test.iam.gserviceaccount.com
python3 - "$work/key.pem" "$email" >"$work/sa.json" <<'EOF'
import json, sys
print(json.dumps({"type": "service_account", "private_key": open(sys.argv[1]).read(), "client_email": sys.argv[2]}))
EOF
sheet_id=1ZZsMrIT0BEwHKQ6-units
python3 "$GS_SOURCE_DIR/tests/fakes/fake_google.py" --port-file "$work/port" --public-key "$work/pub.pem" \
    --client-email "$email" --spreadsheet "$sheet_id" &
fake_pid=$!
trap '_gs_cleanup; kill "$fake_pid" 2>/dev/null || true' EXIT
has_port() { [ -s "$work/port" ]; }
wait_for "the fake Google" 30 has_port || fail "fake Google did not start"
fake=http://127.0.0.1:$(cat "$work/port")
systemctl --user set-environment GAZELLE_CONFIG="$work/expected/config.json" \
    GOOGLE_APPLICATION_CREDENTIALS="$work/sa.json" REPORT_SPREADSHEET_ID="$sheet_id" \
    GOOGLE_TOKEN_URL="$fake/token" SHEETS_API_URL="$fake"
export GAZELLE_CONFIG=$work/expected/config.json

check_outputs() {
    local day out
    day=$(TZ=America/Montreal date +%F)
    out=$GS_STATE/reports/$day
    for f in "$work"/expected/*.csv; do
        case ${f##*/} in gazelle_*) continue;; esac
        cmp "$f" "$out/${f##*/}" || fail "${f##*/} differs from the expected report"
    done
    ok "$1: every CSV file in $out equals the expected bytes"
    python3 "$GS_SOURCE_DIR/tests/report-check.py" sheet-equals-csv "$fake" "$out" "$work/expected/summary.json" \
        | sed "s/^ok - /ok - $1: /"
}

# --- 1. the timer starts the report (its 02:00 slot brought forward)
dropin=$XDG_CONFIG_HOME/systemd/user/gazelle-report.timer.d
mkdir -p "$dropin"
printf '[Timer]\nOnActiveSec=1s\nAccuracySec=1ms\n' >"$dropin/50-test-now.conf"
systemctl --user daemon-reload
systemctl --user restart gazelle-report.timer
sched_done() { [ -n "$(q1 "SELECT id FROM scheduler_logs WHERE task_name='rapport_timeline' AND triggered_by='scheduler' AND status <> 'running'")" ]; }
wait_for "the timer's report run" 240 sched_done || fail "no finished scheduler run: $(q 'SELECT task_name,status,triggered_by,message FROM scheduler_logs')"
row=$(q "SELECT status, message FROM scheduler_logs WHERE task_name='rapport_timeline' AND triggered_by='scheduler'")
[ "${row%%|*}" = success ] || fail "timer run: $row"
ok "timer run: ${row#*|}"
rm -rf "$dropin"
systemctl --user daemon-reload
check_outputs "timer"

# --- 2. RunTask rapport over D-Bus
python3 "$GS_SOURCE_DIR/tests/report-check.py" control "$fake" '{"reset_requests": true}'
reply=$(gs_call RunTask ss rapport admin@piano-tek.test) || fail "RunTask failed"
run_id=$(sed -E 's/^s "(.*)"$/\1/' <<<"$reply")
run_done() { [ -n "$(q1 "SELECT id FROM scheduler_logs WHERE id='$run_id' AND status <> 'running'")" ]; }
wait_for "run $run_id" 240 run_done || fail "run $run_id did not finish: $(q "SELECT status,message FROM scheduler_logs WHERE id='$run_id'")"
assert_eq "success|manual|admin@piano-tek.test" \
    "$(q "SELECT status, triggered_by, triggered_by_user FROM scheduler_logs WHERE id='$run_id'")" \
    "RunTask rapport: run $run_id succeeded, triggered_by=manual"
writes=$(python3 "$GS_SOURCE_DIR/tests/report-check.py" requests "$fake" 'values:batchUpdate')
ok "RunTask rapport wrote the sheet in $writes values:batchUpdate call(s)"
check_outputs "RunTask"

# --- 3. the journal
entries=$(journal_wait 10 GAZELLE_RUN_ID="$run_id" GAZELLE_TASK=rapport_timeline) || fail "no journal entry for $run_id"
ok "journalctl GAZELLE_RUN_ID=$run_id GAZELLE_TASK=rapport_timeline: $(wc -l <<<"$entries") entries"
