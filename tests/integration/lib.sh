# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Helpers for integration test scripts run inside tests/sandbox.sh. Source it:
#     . "$(dirname "$0")/lib.sh"
# Works under `set -euo pipefail`. Every helper that waits has a deadline; nothing sleeps blindly.

# ok MSG - report a passed check.
ok() { printf 'ok - %s\n' "$*"; }

# fail MSG - report a failed check and stop the test.
fail() { printf 'not ok - %s\n' "$*" >&2; exit 1; }

# assert_eq EXPECTED ACTUAL MSG
assert_eq() {
    if [ "$1" = "$2" ]; then
        ok "$3"
    else
        fail "$3: expected '$1', got '$2'"
    fi
}

# wait_for DESC SECONDS CMD... - run CMD every 20 ms until it succeeds; return 1 after SECONDS.
# CMD is re-run each time, so pass a command or function, never "$(...)" (it would be evaluated
# only once). Example: has_stamp() { [ -e "$XDG_RUNTIME_DIR/x.stamp" ]; }; wait_for stamp 5 has_stamp
wait_for() {
    local _wf_desc=$1 _wf_secs=$2 _wf_now _wf_deadline   # prefixed: CMD sees these locals
    shift 2
    _wf_now=${EPOCHREALTIME/[.,]/}
    _wf_deadline=$(( _wf_now + _wf_secs * 1000000 ))
    until "$@"; do
        _wf_now=${EPOCHREALTIME/[.,]/}
        if (( _wf_now >= _wf_deadline )); then
            printf 'timed out after %ss waiting for %s\n' "$_wf_secs" "$_wf_desc" >&2
            return 1
        fi
        sleep 0.02
    done
}

# journal_wait SECONDS MATCH... - poll the journal until at least one entry matches, then print
# the matching entries as JSON (one per line). journald ingests asynchronously, hence the polling.
# Match on SYSLOG_IDENTIFIER= or your own fields: _SYSTEMD_* fields can be missing for processes
# that exit immediately (reference pitfall P8). Matches are exact (FIELD=VALUE).
_journal_has() { _JOURNAL_OUT=$(journalctl -o json --no-pager -q "$@" 2>/dev/null) && [ -n "$_JOURNAL_OUT" ]; }
journal_wait() {
    local secs=$1
    shift
    _JOURNAL_OUT=
    wait_for "journal entry matching $*" "$secs" _journal_has "$@" || return 1
    printf '%s\n' "$_JOURNAL_OUT"
}
