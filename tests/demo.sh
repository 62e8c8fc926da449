#!/usr/bin/env bash
# Command 1's second half, run inside tests/sandbox.sh: the product on its embedded default
# (SQLite) under a real systemd --user manager. Installs the units, lists the timers, runs the
# backup once through systemd and shows its scheduler_logs row and the journal.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${GS_BUILD_DIR:-$src/build}
unitdir=$XDG_CONFIG_HOME/systemd/user
state=$XDG_STATE_HOME/gazelle-scheduler

[ -x "$build/gazelle-scheduler" ] || { echo "demo: build first (meson setup build && meson compile -C build)"; exit 1; }
mkdir -p "$unitdir" "$XDG_DATA_HOME/dbus-1/services"
cp "$build"/units/test/* "$unitdir/"
cp "$build/dbus/com.piano_tek.GazelleScheduler1.session.service" \
   "$XDG_DATA_HOME/dbus-1/services/com.piano_tek.GazelleScheduler1.service"
systemctl --user daemon-reload
systemctl --user enable gazelle-schedulerd.service  # creates the dbus-com.piano_tek.GazelleScheduler1.service alias
systemctl --user enable --now gazelle-sync.timer gazelle-report.timer gazelle-backup.timer gazelle-alerts.timer

echo "== Timers (next elapse shown in America/Montreal)"
TZ=America/Montreal systemctl --user list-timers 'gazelle-*' --all --no-pager

# Piano-Tek's settings (units/config.example.json) with its four technicians; no SendGrid key
# and no SMTP_URL, so alerts land in the outbox.
config=$XDG_CONFIG_HOME/gazelle-scheduler/config.json
mkdir -p "${config%/*}"
cp "$src/units/config.example.json" "$config"
systemctl --user set-environment GAZELLE_CONFIG="$config"
export GAZELLE_CONFIG=$config

echo
echo "== Sync Gazelle Totale from the loopback fake Gazelle's sample data (tests/fakes/gazelle.py)"
python3 "$src/tests/fakes/gazelle.py" --port-file "$XDG_RUNTIME_DIR/fake-gazelle.port" --refresh-token demo \
        --clients 400 --pianos 300 --timeline 5000 --events 6000 >/dev/null &
fake_pid=$!
trap 'kill $fake_pid 2>/dev/null || true' EXIT
for _ in $(seq 250); do [ -s "$XDG_RUNTIME_DIR/fake-gazelle.port" ] && break; sleep 0.02; done
fake=http://127.0.0.1:$(cat "$XDG_RUNTIME_DIR/fake-gazelle.port")
systemctl --user set-environment GAZELLE_API_URL="$fake/graphql/private/" \
        GAZELLE_TOKEN_URL="$fake/developer/oauth/token" GAZELLE_CLIENT_ID=fake-client-id GAZELLE_CLIENT_SECRET=fake-client-secret
echo demo | GAZELLE_TOKEN_URL="$fake/developer/oauth/token" GAZELLE_CLIENT_ID=fake-client-id \
        GAZELLE_CLIENT_SECRET=fake-client-secret "$build/gazelle-scheduler" --user auth --refresh-token -
systemctl --user start gazelle-sync.service || true
sqlite3 -header -column "$state/gazelle-scheduler.sqlite" \
        "SELECT (SELECT count(*) FROM gazelle_clients) AS clients, (SELECT count(*) FROM gazelle_contacts) AS contacts,
                (SELECT count(*) FROM gazelle_pianos) AS pianos, (SELECT count(*) FROM gazelle_timeline_entries) AS timeline,
                (SELECT count(*) FROM gazelle_appointments) AS appointments, (SELECT count(*) FROM gazelle_users) AS users"

echo
echo "== systemctl --user start gazelle-backup.service"
systemctl --user start gazelle-backup.service
systemctl --user status gazelle-backup.service --no-pager --lines=0 || true

echo
echo "== scheduler_logs ($state/gazelle-scheduler.sqlite)"
sqlite3 -header -column "$state/gazelle-scheduler.sqlite" \
        "SELECT started_at, task_name, status, triggered_by, duration_seconds AS s, message FROM scheduler_logs ORDER BY started_at DESC LIMIT 5"

echo
echo "== Backups"
ls -l "$state/backups"

echo
echo "== Journal of the run"
for _ in $(seq 50); do
        journalctl -t gazelle-scheduler GAZELLE_TASK=backup --no-pager -q -o cat | grep -q "Backup SQL: success" && break
        sleep 0.1
done
journalctl -t gazelle-scheduler GAZELLE_TASK=backup --no-pager -o short-iso

echo
echo "== RunTask over D-Bus (bus-activates gazelle-schedulerd)"
busctl --user call com.piano_tek.GazelleScheduler1 /com/piano_tek/GazelleScheduler1 \
        com.piano_tek.GazelleScheduler1 RunTask ss backup admin@piano-tek.com || true
sleep 2
busctl --user call com.piano_tek.GazelleScheduler1 /com/piano_tek/GazelleScheduler1 \
        com.piano_tek.GazelleScheduler1 GetLogs u 2 || true

echo
echo "== Rapport Timeline: systemctl --user start gazelle-report.service (CSV only: no Google key)"
systemctl --user start gazelle-report.service || true
sqlite3 "$state/gazelle-scheduler.sqlite" \
        "SELECT status || ' — ' || message FROM scheduler_logs WHERE task_name = 'rapport_timeline' ORDER BY started_at DESC LIMIT 1"
day=$(ls "$state/reports" | tail -n 1)
ls -l "$state/reports/$day"
echo "-- $state/reports/$day/uqam.csv (first lines)"
head -n 4 "$state/reports/$day/uqam.csv"

echo
tomorrow=$(TZ=America/Montreal date -d tomorrow +%F)
echo "== Sync RV & Alertes for $tomorrow (gazelle-scheduler run alerts --target-date $tomorrow): the outbox"
GAZELLE_API_URL="$fake/graphql/private/" GAZELLE_TOKEN_URL="$fake/developer/oauth/token" \
        GAZELLE_CLIENT_ID=fake-client-id GAZELLE_CLIENT_SECRET=fake-client-secret \
        "$build/gazelle-scheduler" --user run alerts --target-date "$tomorrow" || true
sqlite3 "$state/gazelle-scheduler.sqlite" \
        "SELECT status || ' — ' || message FROM scheduler_logs WHERE task_name = 'rv_alerts' ORDER BY started_at DESC LIMIT 1"
ls -l "$state/outbox" 2>/dev/null || echo "(no unconfirmed appointment tomorrow in the sample data)"
first=$(ls "$state"/outbox/*.eml 2>/dev/null | head -n 1 || true)
if [ -n "$first" ]; then
        echo "-- $(basename "$first"), decoded"
        python3 "$src/tests/fakes/parse_eml.py" "$first" | python3 -c '
import json, sys
m = json.load(sys.stdin)[0]
print("From:", m["from"]); print("To:", m["to"]); print("Subject:", m["subject"]); print(); print(m["text"])'
fi

echo
echo "== gazelle-scheduler logs (the \"Journal des tâches\")"
COLUMNS=160 "$build/gazelle-scheduler" --user logs -n 8 || true

echo
echo "== The Cockpit page \"Journal des tâches\" (cockpit-ws --local-session, headless chromium)"
# shellcheck source=tests/integration/cockpit.sh
. "$src/tests/integration/cockpit.sh"
cockpit_install "$src" "$build"
cockpit_ws_start || { echo "demo: cockpit-ws did not start (bash tests/deps.sh installs it)"; exit 1; }
trap 'kill $fake_pid $COCKPIT_WS_PID 2>/dev/null || true' EXIT
shot=$build/demo-journal-des-taches.png
python3 "$src/tests/cdp.py" "$COCKPIT_URL" "$shot" \
        --wait "document.querySelectorAll('#runs tr.run').length > 0 && document.querySelectorAll('#tasks li.card').length === 4"
echo "page:       $COCKPIT_URL (while the sandbox lived)"
echo "screenshot: $shot"
