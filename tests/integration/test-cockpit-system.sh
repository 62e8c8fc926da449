#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The "Journal des tâches" Cockpit page of the system flavour, installed the README's way under a
# real system manager (tests/system-sandbox.sh: system bus, polkitd, journald), on SQLite, as
# three different accounts: one cockpit-ws --local-session per account (setpriv), each serving
# the installed page (/usr/share/cockpit/gazelle-scheduler, system-bus manifest) on its own
# loopback port to one headless chromium inside the box (tests/cdp.py):
#   - gs-reader (group gazelle): reads the history; "Lancer maintenant" is refused by the bus
#     policy, the page says "réservé au groupe gazelle-admin", no run is recorded or started;
#   - gazelle (the service account, which the bus policy lets call everything): refused by the
#     daemon's own check (journaled), same message, nothing recorded or started — this is the
#     case that fails if the daemon stops checking gazelle-admin;
#   - gs-admin (group gazelle-admin): the click gives a ⏳ row, then ✅ Succès, as 🔌 API by
#     gs-admin, without a reload.
# Screenshots of each state: <build>/meson-logs/cockpit-system/ (cockpit-system-page.py).
# Host side it prepares the --prefix=/usr build shared with the production tests
# (GS_BUILD_DIR/production, same lock), then re-runs itself inside the box, handing it the
# screenshot directory as an open file descriptor (the box's root is an overlay whose writes
# never reach the host).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GS_SOURCE_DIR=${GS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
GS_BUILD_DIR=${GS_BUILD_DIR:-$GS_SOURCE_DIR/build}
export GS_SOURCE_DIR GS_BUILD_DIR
# shellcheck source=tests/integration/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/integration/production-lib.sh
. "$here/production-lib.sh"

# ---------------------------------------------------------------------------------------------
# Host side: the --prefix=/usr build, the screenshot directory.
# ---------------------------------------------------------------------------------------------
if [ -z "${GSYS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
    for b in /usr/lib/cockpit/cockpit-ws /usr/bin/cockpit-bridge /usr/bin/chromium; do
        [ -x "$b" ] || { echo "SKIP: $b missing (tests/deps.sh installs cockpit-ws, cockpit-bridge, chromium)"; exit 77; }
    done
    prod=$GS_BUILD_DIR/production
    production_build_locked
    flock -u 9
    exec 9>&-
    artifacts=$GS_BUILD_DIR/meson-logs/cockpit-system
    mkdir -p "$artifacts"
    rm -f "$artifacts"/*.png
    exec 8<"$artifacts"
    export GS_PROD_BUILD=$prod GS_ARTIFACTS_FD=8 GS_ARTIFACTS_HOST=$artifacts
    export GSYS_DUMP=${GSYS_DUMP:-0}   # a failure prints the journal that matters itself
    exec "$GS_SOURCE_DIR/tests/system-sandbox.sh" "$here/$(basename "$0")"
fi

# ---------------------------------------------------------------------------------------------
# Inside the box (root, system manager = PID 1, own network namespace: chromium runs here too).
# ---------------------------------------------------------------------------------------------
[ -z "${GS_TRACE:-}" ] || set -x
STATE=/var/lib/gazelle-scheduler
ETC=/etc/gazelle-scheduler
work=/tmp/gs-cockpit-system
mkdir -p "$work"
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }

# --- the README's install section, literally, one line at a time (as test-production.sh does)
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId >/dev/null
install_from "$GS_PROD_BUILD" "$work" quiet
[ -f /usr/share/cockpit/gazelle-scheduler/manifest.json ] || fail "the install put no Cockpit page in /usr/share/cockpit"
grep -q '"bus": *"system"' /usr/share/cockpit/gazelle-scheduler/manifest.json \
    || fail "the installed manifest is not the system-bus one: $(cat /usr/share/cockpit/gazelle-scheduler/manifest.json)"
ok "installed the README's way; the page is in /usr/share/cockpit/gazelle-scheduler with the system-bus manifest"

# --- the accounts (README: usermod -aG gazelle-admin / gazelle), the settings
useradd -M -N -g users -G gazelle-admin gs-admin
useradd -M -N -g users -G gazelle gs-reader
# Backup SQL reads this file instead of the store: the browser half holds a lock on it, so the
# member's run stays ⏳ until it lets go.
cat >"$ETC/gazelle-scheduler.env" <<EOF
GAZELLE_IDLE_EXIT_SEC=5
BACKUP_SQLITE_PATH=$STATE/held.sqlite
EOF

# --- one cockpit-ws --local-session per account, on its own loopback port
mkdir -p "$work/cockpit-etc"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ws_pids=()
urls=()
for user in gs-reader gazelle gs-admin; do
    port=$(free_port)
    home=$work/home-$user
    install -d -o "$user" -m 0700 "$home"
    as "$user" env -i PATH="$PATH" HOME="$home" USER="$user" LANG=C.UTF-8 XDG_CONFIG_DIRS="$work/cockpit-etc" \
        /usr/lib/cockpit/cockpit-ws --port "$port" --address 127.0.0.1 --local-session=cockpit-bridge \
        >"$work/cockpit-ws-$user.log" 2>&1 &
    ws_pids+=($!)
    up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
    wait_for "cockpit-ws of $user" 10 up || fail "cockpit-ws as $user did not answer: $(cat "$work/cockpit-ws-$user.log")"
    urls+=("$user=http://127.0.0.1:$port/cockpit/@localhost/gazelle-scheduler/index.html")
done
trap 'kill "${ws_pids[@]}" 2>/dev/null || true' EXIT
ok "cockpit-ws --local-session answers as gs-reader, gazelle and gs-admin"

rc=0
python3 "$here/cockpit-system-page.py" --artifacts "/proc/self/fd/$GS_ARTIFACTS_FD" --state "$STATE" \
    --held "$STATE/held.sqlite" "${urls[@]}" 2>"$work/page.err" || rc=$?
cat "$work/page.err" >&2
if [ "$rc" != 0 ]; then
    {
        for user in gs-reader gazelle gs-admin; do
            echo "# cockpit-ws as $user:"; tail -n 5 "$work/cockpit-ws-$user.log"
        done
        echo "# the daemon, the backup unit and the bus:"
        journalctl -q --no-pager -o short-precise -n 30 -u gazelle-schedulerd.service -u gazelle-backup.service -u dbus.service
    } >&2
    fail "page checks failed: $(grep '^not ok' "$work/page.err" | head -n 1) (screenshots in $GS_ARTIFACTS_HOST)"
fi
ok "screenshots in $GS_ARTIFACTS_HOST"
