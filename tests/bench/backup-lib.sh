# SPDX-License-Identifier: MIT
# backup-lib.sh — sourced by the backup bench scripts (bench-backup.sh, torture-backup.sh):
# `. "$(dirname "$0")/backup-lib.sh" NAME "$@"` gives $src, $build (the first argument, else
# build/), a private $work (NAME in its name) removed on exit along with the writer process
# whose pid the script puts in $writer, the state and backups under $work with none of the
# caller's store settings, $store (the SQLite store path) and now() in seconds.
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${2:-$src/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/${1:?}.XXXXXX")
trap '[ -z "${writer:-}" ] || kill "$writer" 2>/dev/null || true; rm -rf "$work"' EXIT
export XDG_STATE_HOME=$work/state BACKUP_DIR=$work/backups
unset STATE_DIRECTORY DATABASE_URL BACKUP_SQLITE_PATH
store=$XDG_STATE_HOME/gazelle-scheduler/gazelle-scheduler.sqlite
now() { date +%s.%N; }
