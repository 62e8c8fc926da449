# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Serving the Cockpit page inside tests/sandbox.sh, sourced by test-cockpit.sh and tests/demo.sh:
#   cockpit_install SRC BUILD  installs the page as the user flavour does: src/cockpit/* and the
#                              session-bus manifest into $XDG_DATA_HOME/cockpit/gazelle-scheduler
#   cockpit_ws_start           starts Cockpit's web server on a free loopback port with
#                              --local-session (no login: the bridge runs as us, on the sandbox's
#                              session bus) and an empty config dir (no host cockpit.conf); sets
#                              COCKPIT_URL (the page) and COCKPIT_WS_PID. Returns 1 if it does
#                              not answer within 10 s (its log: $SBX_LOG_DIR/cockpit-ws.log).

COCKPIT_WS=/usr/lib/cockpit/cockpit-ws

cockpit_install() {
    local pkg=$XDG_DATA_HOME/cockpit/gazelle-scheduler
    mkdir -p "$pkg"
    cp "$1"/src/cockpit/index.html "$1"/src/cockpit/gazelle-scheduler.js "$1"/src/cockpit/gazelle-scheduler.css "$pkg/"
    cp "$2/src/cockpit/manifest.session.json" "$pkg/manifest.json"
}

_cockpit_ws_up() { (exec 3<>"/dev/tcp/127.0.0.1/$_cockpit_port") 2>/dev/null; }

cockpit_ws_start() {
    local i
    mkdir -p "$SBX_DIR/cockpit-etc"
    _cockpit_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    XDG_CONFIG_DIRS=$SBX_DIR/cockpit-etc "$COCKPIT_WS" --port "$_cockpit_port" --address 127.0.0.1 \
        --local-session=cockpit-bridge >"$SBX_LOG_DIR/cockpit-ws.log" 2>&1 &
    COCKPIT_WS_PID=$!
    COCKPIT_URL=http://127.0.0.1:$_cockpit_port/cockpit/@localhost/gazelle-scheduler/index.html
    for i in $(seq 500); do
        _cockpit_ws_up && return 0
        kill -0 "$COCKPIT_WS_PID" 2>/dev/null || break
        sleep 0.02
    done
    return 1
}
