#!/usr/bin/env bash
# Installs everything building, running and testing gazelle-scheduler needs on Debian 12.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
        echo "tests/deps.sh: run as root (apt-get install)" >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
        build-essential meson ninja-build pkg-config python3 python3-cryptography \
        libsystemd-dev libcurl4-openssl-dev libcjson-dev libpq-dev libsqlite3-dev libssl-dev libdbus-1-dev \
        systemd dbus dbus-daemon dbus-user-session polkitd postgresql pgbouncer sqlite3 util-linux iproute2 procps valgrind openssl ca-certificates bc \
        cockpit-ws cockpit-bridge chromium fonts-noto-color-emoji
