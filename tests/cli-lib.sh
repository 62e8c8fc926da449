# SPDX-License-Identifier: MIT
# cli-lib.sh — sourced by the tests that run the built binary outside systemd on a SQLite store
# (test-config.sh, test-directories.sh): `. "$(dirname "$0")/cli-lib.sh" NAME` gives $bin, a
# private $tmp (NAME in its name) removed on exit, ok/fail TAP lines, none of the caller's
# settings, the state and config homes under $tmp, and a session bus that is not there.
bin=${GS_BUILD_DIR:?}/gazelle-scheduler
tmp=$(mktemp -d "${TMPDIR:-/tmp}/${1:?}.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "not ok - $*" >&2; exit 1; }

unset STATE_DIRECTORY DATABASE_URL CREDENTIALS_DIRECTORY INVOCATION_ID JOURNAL_STREAM GAZELLE_CONFIG \
      BACKUP_DIR BACKUP_SQLITE_PATH
export XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/xdg GAZELLE_BUS=user
export DBUS_SESSION_BUS_ADDRESS=unix:path=$tmp/no-bus
