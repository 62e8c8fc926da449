#!/bin/bash
# SPDX-License-Identifier: MIT
# The "Journal des tâches" Cockpit page in a real browser: Cockpit's own web server
# (cockpit-ws --local-session, no login, the bridge runs as us inside the sandbox and reaches its
# session bus) serves the page from $XDG_DATA_HOME/cockpit with the session-bus manifest, and
# Debian's headless chromium, driven over the DevTools protocol (tests/cdp.py), checks what a
# person sees: GetLogs' runs with icons and display names, a click on "Lancer maintenant" and a
# `systemctl --user start` each giving a ⏳ row and then their result without a reload, the daemon
# kept up by the open page and gone after it closes, no console error or failed request.
# Screenshots of every state go to <build>/meson-logs/cockpit/ (tests/integration/cockpit-page.py).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
for b in /usr/lib/cockpit/cockpit-ws /usr/bin/cockpit-bridge /usr/bin/chromium; do
    [ -x "$b" ] || { echo "SKIP: $b missing (tests/deps.sh installs cockpit-ws, cockpit-bridge, chromium)"; exit 77; }
done
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

ARTIFACTS=${GS_COCKPIT_ARTIFACTS:-$GS_BUILD_DIR/meson-logs/cockpit}
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png

# --- the product: a technician known by address, a short idle exit, a history of every kind
config=$XDG_CONFIG_HOME/gazelle-scheduler/config.json
mkdir -p "${config%/*}"
cat > "$config" <<'EOF'
{"technicians": [{"id": "usr_nick", "full_name": "Nicolas Lessard", "display_name": "Nick",
                  "email": "nlessard@piano-tek.com"}]}
EOF
systemctl --user set-environment GAZELLE_CONFIG="$config" GAZELLE_IDLE_EXIT_SEC=2
export GAZELLE_CONFIG=$config
gazelle-scheduler --user migrate >/dev/null
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%S.000000Z; }
seed() { # id task label start(date -d) duration status trigger user message stats
    q "INSERT INTO scheduler_logs (id, task_name, task_label, started_at, completed_at, duration_seconds, status,
           message, stats, triggered_by, triggered_by_user, created_at, host)
       VALUES ('$1', '$2', '$3', '$(at "$4")', '$(at "$4 + $5 seconds")', $5, '$6', '$9', '${10}', '$7',
               NULLIF('$8', ''), '$(at "$4")', 'seed')"
}
seed 10000000-0000-4000-8000-000000000001 sync_gazelle "Sync Gazelle Totale" "-30 hours" 133 success scheduler "" \
     "Sync terminée : 412 clients, 318 pianos" '{"clients": {"fetched": 412, "inserted": 3, "updated": 9}, "pages": 12}'
seed 10000000-0000-4000-8000-000000000002 rapport_timeline "Rapport Timeline Google Sheets" "-29 hours" 41 warning scheduler "" \
     "Rapport écrit en CSV seulement : aucune clé Google" '{"UQAM": 120, "Place des Arts": 0}'
seed 10000000-0000-4000-8000-000000000003 backup "Backup SQL" "-28 hours" 2 error manual nlessard@piano-tek.com \
     "Disque plein : sauvegarde annulée, les précédentes sont intactes" '{}'
seed 10000000-0000-4000-8000-000000000004 rv_alerts "Sync RV & Alertes" "-5 hours" 0 skipped scheduler "" \
     "Démarrée plus de 4 h après 16:00 : ignorée" '{}'
seed 10000000-0000-4000-8000-000000000005 backup "Backup SQL" "-3 hours" 1 success cli root \
     "Sauvegarde vérifiée : db_backup_20261124_030000.sqlite" '{"bytes": 81920, "kept": 3, "deleted": 0}'
seed 10000000-0000-4000-8000-000000000006 backup "Backup SQL" "-2 hours" 1 success api root \
     "Sauvegarde vérifiée : db_backup_20261124_050000.sqlite" '{"bytes": 81920, "kept": 4, "deleted": 0}'
# The real callers beside the claims: a technician's address sent by another account, a CLI run.
q "UPDATE scheduler_logs SET caller_uid = 1001, caller_name = 'marie' WHERE id = '10000000-0000-4000-8000-000000000003'"
q "UPDATE scheduler_logs SET caller_uid = 0, caller_name = 'root' WHERE id = '10000000-0000-4000-8000-000000000005'"
ok "history seeded: every status and every trigger, a technician by address, real callers"

# --- the page, as the user flavour installs it (session-bus manifest), served by cockpit-ws
# shellcheck source=tests/integration/cockpit.sh
. "$here/cockpit.sh"
cockpit_install "$GS_SOURCE_DIR" "$GS_BUILD_DIR"
cockpit-bridge --packages | grep -q "^gazelle-scheduler .*Journal des t" || fail "cockpit-bridge does not list the package: $(cockpit-bridge --packages)"
ok "cockpit-bridge finds package gazelle-scheduler (Journal des tâches) in \$XDG_DATA_HOME/cockpit"
cockpit_ws_start || fail "cockpit-ws did not answer: $(cat "$SBX_LOG_DIR/cockpit-ws.log")"
trap 'kill $COCKPIT_WS_PID 2>/dev/null || true; _gs_cleanup' EXIT
ok "cockpit-ws --local-session answers: $COCKPIT_URL"

python3 "$here/cockpit-page.py" --url "$COCKPIT_URL" --artifacts "$ARTIFACTS" --state "$GS_STATE" \
    || fail "page checks failed (screenshots in $ARTIFACTS)"
ok "screenshots in $ARTIFACTS"
