#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Demo of Sync RV & Alertes, run inside tests/sandbox.sh (after tests/demo.sh or on its own):
# the fake Gazelle stands in for gazelleapp.io, no mail provider is configured, so tomorrow's
# unconfirmed appointments land as .eml files in the outbox (counted "queued", never "sent").
# Shows the run's row, the outbox and the first email as a mail client would decode it.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${GS_BUILD_DIR:-$src/build}
state=$XDG_STATE_HOME/gazelle-scheduler
export PATH=$build:$PATH
[ -x "$build/gazelle-scheduler" ] || { echo "demo: build first (meson setup build && meson compile -C build)"; exit 1; }

port_file=$(mktemp -u "${TMPDIR:-/tmp}/demo-gazelle.XXXXXX")
python3 "$src/tests/fakes/gazelle.py" --port-file "$port_file" --refresh-token demo-refresh --clients 200 --pianos 100 --timeline 100 --events 30000 >/dev/null &
fake=$!
trap 'kill $fake 2>/dev/null || true; rm -f "$port_file"' EXIT
for _ in $(seq 250); do [ -s "$port_file" ] && break; sleep 0.02; done
base=http://127.0.0.1:$(cat "$port_file")

config=$XDG_CONFIG_HOME/gazelle-scheduler/config.json
mkdir -p "${config%/*}"
cat > "$config" <<'EOF'
{
  "technicians": [
    {"id": "usr_ofYggsCDt2JAVeNP", "full_name": "Allan Sutton", "display_name": "Allan", "email": "allan@example.com"},
    {"id": "usr_HcCiFk7o0vZ9xAI0", "full_name": "Nicolas Lessard", "display_name": "Nick", "email": "nick@example.com"},
    {"id": "usr_ReUSmIJmBF86ilY1", "full_name": "Jean-Philippe Reny", "display_name": "JP", "email": "jp@example.com"},
    {"id": "usr_bbt59aCUqUaDWA8n", "full_name": "Margot Charignon", "display_name": "Margot", "email": "margot@example.com"}
  ],
  "alerts": {"fallback_email": "bureau@example.com"},
  "mail": {"sender_email": "alertes@piano-tek.example", "sender_name": "Piano-Tek"}
}
EOF
export GAZELLE_API_URL=$base/graphql/private/ GAZELLE_TOKEN_URL=$base/developer/oauth/token
export GAZELLE_CLIENT_ID=fake-client-id GAZELLE_CLIENT_SECRET=fake-client-secret
echo demo-refresh | gazelle-scheduler --user auth --refresh-token - >/dev/null
gazelle-scheduler --user run sync >/dev/null 2>&1

tomorrow=$(TZ=America/Montreal date -d tomorrow +%F)
echo "== gazelle-scheduler run alerts --target-date $tomorrow   (no SendGrid key, no SMTP_URL: the outbox)"
gazelle-scheduler --user run alerts --target-date "$tomorrow" || true

echo
echo "== scheduler_logs"
sqlite3 -header -column "$state/gazelle-scheduler.sqlite" \
        "SELECT task_name, status, message FROM scheduler_logs WHERE task_name = 'rv_alerts' ORDER BY started_at DESC LIMIT 1"
sqlite3 "$state/gazelle-scheduler.sqlite" \
        "SELECT stats FROM scheduler_logs WHERE task_name = 'rv_alerts' ORDER BY started_at DESC LIMIT 1"

echo
echo "== $state/outbox"
ls -l "$state/outbox"
first=$(ls "$state"/outbox/*.eml | head -n 1)
echo
echo "== $(basename "$first"), decoded"
python3 "$src/tests/fakes/parse_eml.py" "$first" | python3 -c '
import json, sys
m = json.load(sys.stdin)[0]
print("From:", m["from"]); print("To:", m["to"]); print("Subject:", m["subject"]); print(); print(m["text"])'
