#!/bin/bash
# SPDX-License-Identifier: MIT
# gazelle-alerts.service under the user manager against the loopback fake Gazelle and fake
# SendGrid, on the store GS_STORE selects: the timer's run syncs tomorrow's appointments and mails
# one email per technician (the fake accepted exactly emails_sent messages, the journal has one
# "alert sent" entry per email with the run id); RunTask alerts over D-Bus afterwards sends
# nothing; a bad setting exits 2 at start with no row and no mail; a run made to fail starts
# gazelle-notify-failure@gazelle-alerts.service, which mails
# the administrator the run's message and journal lines, once.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

pids=()
cleanup_fakes() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup_fakes; _gs_cleanup' EXIT
has_file() { [ -s "$1" ]; }

python3 "$GS_SOURCE_DIR/tests/fakes/gazelle.py" --port-file "$SBX_DIR/gazelle.port" --refresh-token ref-alerts \
        --clients 120 --pianos 80 --timeline 20 --events 6000 >/dev/null &
pids+=($!)
python3 "$GS_SOURCE_DIR/tests/fakes/sendgrid.py" --port-file "$SBX_DIR/sendgrid.port" --api-key sg-test-key &
pids+=($!)
wait_for "the fake Gazelle" 30 has_file "$SBX_DIR/gazelle.port" || fail "fake Gazelle did not start"
wait_for "the fake SendGrid" 30 has_file "$SBX_DIR/sendgrid.port" || fail "fake SendGrid did not start"
gz=http://127.0.0.1:$(cat "$SBX_DIR/gazelle.port")
sg=http://127.0.0.1:$(cat "$SBX_DIR/sendgrid.port")
ok "fake Gazelle on $gz, fake SendGrid on $sg"

cat > "$SBX_DIR/config.json" <<'EOF'
{
  "technicians": [
    {"id": "usr_ofYggsCDt2JAVeNP", "full_name": "Allan Sutton", "display_name": "Allan", "email": "allan@example.com"},
    {"id": "usr_HcCiFk7o0vZ9xAI0", "full_name": "Nicolas Lessard", "display_name": "Nick", "email": "nick@example.com"},
    {"id": "usr_ReUSmIJmBF86ilY1", "full_name": "Jean-Philippe Reny", "display_name": "JP", "email": "jp@example.com"},
    {"id": "usr_bbt59aCUqUaDWA8n", "full_name": "Margot Charignon", "display_name": "Margot", "email": "margot@example.com"}
  ],
  "alerts": {"fallback_email": "bureau@example.com"},
  "mail": {"sender_email": "alertes@piano-tek.example", "sender_name": "Piano-Tek", "admin_email": "admin@example.com"}
}
EOF
export GAZELLE_API_URL=$gz/graphql/private/ GAZELLE_TOKEN_URL=$gz/developer/oauth/token
export GAZELLE_CLIENT_ID=fake-client-id GAZELLE_CLIENT_SECRET=fake-client-secret
export GAZELLE_CONFIG=$SBX_DIR/config.json SENDGRID_API_URL=$sg SENDGRID_API_KEY=sg-test-key
# Any hour of the day: the test must not depend on when it runs (the lateness rule has its own test).
export ALERTS_MAX_LATENESS=25h
systemctl --user set-environment GAZELLE_API_URL="$GAZELLE_API_URL" GAZELLE_TOKEN_URL="$GAZELLE_TOKEN_URL" \
        GAZELLE_CLIENT_ID="$GAZELLE_CLIENT_ID" GAZELLE_CLIENT_SECRET="$GAZELLE_CLIENT_SECRET" \
        GAZELLE_CONFIG="$GAZELLE_CONFIG" SENDGRID_API_URL="$sg" SENDGRID_API_KEY=sg-test-key \
        ALERTS_MAX_LATENESS=25h
echo ref-alerts | gazelle-scheduler --user auth --refresh-token - >/dev/null || fail "auth --refresh-token - failed"
# The nightly sync fills clients, contacts and pianos; the alerts run refreshes only its day.
gazelle-scheduler --user run sync >/dev/null 2>&1 || fail "the nightly sync failed"
ok "nightly sync done: $(q1 'SELECT count(*) FROM gazelle_clients') clients"

last() { q "SELECT $1 FROM scheduler_logs WHERE task_name='rv_alerts' ORDER BY started_at DESC LIMIT 1"; }
rows() { q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='rv_alerts' AND status <> 'running'"; }
stat() { python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, s))' "$(last stats)" "$1"; }
accepted() { curl -s "$sg/_state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["accepted"]))'; }

# --- 1. the timer's run
dropin=$XDG_CONFIG_HOME/systemd/user/gazelle-alerts.timer.d
mkdir -p "$dropin"
printf '[Timer]\nOnActiveSec=1s\nAccuracySec=1ms\n' > "$dropin/50-test-now.conf"
systemctl --user daemon-reload
n=$(rows)
systemctl --user restart gazelle-alerts.timer
finished() { [ "$(rows)" -gt "$n" ]; }
wait_for "the timer's alerts run" 90 finished || fail "no finished rv_alerts run: $(last 'status, message')"
assert_eq scheduler "$(last triggered_by)" "the timer's run is triggered_by=scheduler"
assert_eq success "$(last status)" "the timer's run ended success ($(last message))"
run_id=$(last id)
target=$(stat target_date)
sent=$(stat emails_sent)
unconfirmed=$(stat unconfirmed)
[ "$sent" -ge 1 ] && [ "$unconfirmed" -ge "$sent" ] || fail "expected mails: $(last stats)"
assert_eq True "$(stat 'isinstance(sync, dict)')" "the appointment sync of $target ran (stats.sync)"
assert_eq "$sent" "$(accepted)" "the fake SendGrid accepted exactly emails_sent=$sent messages"
assert_eq "$unconfirmed" "$(q1 "SELECT count(*) FROM alert_ledger WHERE state='sent' AND transport='sendgrid'")" \
    "ledger: $unconfirmed alerts sent through SendGrid"
entries=$(journal_wait 30 MESSAGE_ID=3bb6f2bf00c242dcad50fa78143631b4 GAZELLE_RUN_ID="$run_id") || fail "no alert sent entry"
assert_eq "$sent" "$(wc -l <<<"$entries")" "one 'alert sent' journal entry per email, with GAZELLE_RUN_ID"
grep -q '"GAZELLE_APPOINTMENT_IDS":"evt_' <<<"$entries" || fail "alert entries lack the appointment ids"
! grep -q '@example.com' <<<"$entries" || fail "an alert journal entry carries an email address"
ok "journal entries carry ids only (no addresses)"
rm -rf "$dropin"; systemctl --user daemon-reload

# --- 2. RunTask over D-Bus: nothing is sent twice
n=$(rows)
out=$(gs_call RunTask ss alerts admin@piano-tek.com) || fail "RunTask failed: $out"
wait_for "the RunTask alerts run" 90 finished || fail "RunTask run did not finish: $(last 'status, message')"
assert_eq manual "$(last triggered_by)" "RunTask run is triggered_by=manual"
assert_eq success "$(last status)" "RunTask run ended success ($(last message))"
assert_eq 0 "$(stat emails_sent)" "the second run sent nothing"
assert_eq "$unconfirmed" "$(stat already_sent)" "already_sent=$unconfirmed"
assert_eq "$sent" "$(accepted)" "the fake SendGrid still has $sent messages"

# --- 3. a bad setting is refused at start: exit 2, no row, no mail
admin_mail() {
    curl -s "$sg/_state" | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["accepted"] if m["to"] == ["admin@example.com"]]
sys.exit(0 if m else 1)'
}
n=$(rows)
systemctl --user set-environment ALERTS_MAX_LATENESS=bogus
systemctl --user reset-failed gazelle-alerts.service 2>/dev/null || true
systemctl --user start gazelle-alerts.service && fail "the run with ALERTS_MAX_LATENESS=bogus succeeded"
assert_eq 2 "$(systemctl --user show -p ExecMainStatus --value gazelle-alerts.service)" "a bad setting exits 2"
assert_eq "$n" "$(rows)" "a bad setting wrote no row"
notify_done() { [ "$(unit_state gazelle-notify-failure@gazelle-alerts.service.service)" = failed ]; }
wait_for "the notification unit (same bad setting: no mail)" 60 notify_done \
    || fail "notification unit is $(unit_state gazelle-notify-failure@gazelle-alerts.service.service)"
admin_mail && fail "a bad setting mailed the administrator"
systemctl --user set-environment ALERTS_MAX_LATENESS=25h
systemctl --user reset-failed 2>/dev/null || true
ok "ALERTS_MAX_LATENESS=bogus: exit 2 at start, no row"

# --- 3b. a failing run notifies the administrator, once (the ledger hidden: the run fails
# after its row is written)
q "ALTER TABLE alert_ledger RENAME TO alert_ledger_hidden"
systemctl --user start gazelle-alerts.service && fail "the run without its ledger succeeded"
q "ALTER TABLE alert_ledger_hidden RENAME TO alert_ledger"
assert_eq error "$(last status)" "the run without its ledger ended error"
failed_run=$(last id)
wait_for "the failure notification mail" 60 admin_mail || fail "no mail to the administrator: $(systemctl --user status 'gazelle-notify-failure@*' --no-pager 2>&1 | tail -5)"
notes=$(curl -s "$sg/_state" | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["accepted"] if m["to"] == ["admin@example.com"]]
print(len(m)); print(m[0]["subject"]); print(m[0]["text"])')
assert_eq 1 "$(head -n1 <<<"$notes")" "exactly one notification mail"
grep -q 'Échec : Sync RV & Alertes (gazelle-alerts.service)' <<<"$notes" || fail "subject: $notes"
grep -q "Exécution $failed_run" <<<"$notes" || fail "the mail does not name run $failed_run: $notes"
grep -q 'Registre des alertes illisible' <<<"$notes" || fail "the mail lacks the run's message: $notes"
grep -q 'Résultat systemd : exit-code' <<<"$notes" || fail "the mail lacks the unit's result: $notes"
grep -q 'Sync RV & Alertes: démarrage' <<<"$notes" || fail "the mail lacks the run's journal lines: $notes"
grep -q 'gazelle-alerts.service: .*exited' <<<"$notes" || fail "the mail lacks the manager's lines: $notes"
ok "the administrator got the unit, the run's message and its journal lines"

# --- 4. a notification that fails does not notify about itself (no OnFailure= loop)
systemctl --user set-environment SENDGRID_API_KEY=revoked-key
systemctl --user reset-failed 2>/dev/null || true
q "ALTER TABLE alert_ledger RENAME TO alert_ledger_hidden"
systemctl --user start gazelle-alerts.service && fail "the run without its ledger succeeded"
q "ALTER TABLE alert_ledger_hidden RENAME TO alert_ledger"
notify_failed() { [ "$(unit_state gazelle-notify-failure@gazelle-alerts.service.service)" = failed ]; }
wait_for "the notification unit to fail (SendGrid refuses the key)" 60 notify_failed \
    || fail "notification unit is $(unit_state gazelle-notify-failure@gazelle-alerts.service.service)"
ok "with a revoked key the notification fails: $(systemctl --user show -p Result --value gazelle-notify-failure@gazelle-alerts.service.service)"
loops=$(systemctl --user list-units --all --no-legend 'gazelle-notify-failure@gazelle-notify-failure*' | wc -l)
assert_eq 0 "$loops" "no notification about the notification"
journal_wait 30 SYSLOG_IDENTIFIER=gazelle-scheduler GAZELLE_FAILED_UNIT=gazelle-alerts.service GAZELLE_ALERT_STATE=failed >/dev/null \
    || fail "the failed notification is not in the journal"
ok "the failed notification is in the journal (GAZELLE_ALERT_STATE=failed)"
systemctl --user set-environment SENDGRID_API_KEY=sg-test-key
