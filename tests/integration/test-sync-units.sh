#!/bin/bash
# SPDX-License-Identifier: MIT
# gazelle-sync.service under the user manager against the loopback fake Gazelle, on the store
# GS_STORE selects: RunTask over D-Bus ends `success` with the stats; during a larger sync
# `systemctl --user status gazelle-sync` shows the progress (sd_notify STATUS=) and the journal
# carries progress lines of the run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

fake_pid=
cleanup_fake() { [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true; }
trap 'cleanup_fake; _gs_cleanup' EXIT

port_file=$SBX_DIR/fake-gazelle.port
python3 "$GS_SOURCE_DIR/tests/fakes/gazelle.py" --port-file "$port_file" --refresh-token ref-units \
        --clients 300 --pianos 200 --timeline 6000 --events 800 >/dev/null &
fake_pid=$!
has_port() { [ -s "$port_file" ]; }
wait_for "the fake Gazelle server" 10 has_port || fail "fake Gazelle did not start"
base=http://127.0.0.1:$(cat "$port_file")
ok "fake Gazelle listening on $base"

export GAZELLE_API_URL=$base/graphql/private/ GAZELLE_TOKEN_URL=$base/developer/oauth/token
export GAZELLE_CLIENT_ID=fake-client-id GAZELLE_CLIENT_SECRET=fake-client-secret
systemctl --user set-environment GAZELLE_API_URL="$GAZELLE_API_URL" GAZELLE_TOKEN_URL="$GAZELLE_TOKEN_URL" \
        GAZELLE_CLIENT_ID="$GAZELLE_CLIENT_ID" GAZELLE_CLIENT_SECRET="$GAZELLE_CLIENT_SECRET"

echo ref-units | gazelle-scheduler --user auth --refresh-token - >/dev/null || fail "auth --refresh-token - failed"
ok "refresh token imported into the store"

sync_rows() { q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='sync_gazelle' AND status <> 'running'"; }
last() { q "SELECT $1 FROM scheduler_logs WHERE task_name='sync_gazelle' ORDER BY started_at DESC LIMIT 1"; }

# --- 1. RunTask over D-Bus, against the fake with 30 ms per request: progress shows meanwhile
curl -s -X POST -d '{"latency_ms": 30}' "$base/_control" >/dev/null
n=$(sync_rows)
out=$(gs_call RunTask ss sync admin@piano-tek.com) || fail "RunTask failed: $out"
run_id=$(sed -n 's/^s "\(.*\)"$/\1/p' <<<"$out")
[ -n "$run_id" ] || fail "RunTask returned no run id: $out"
ok "RunTask sync admin@piano-tek.com → run $run_id"

status_text() { systemctl --user show -p StatusText --value gazelle-sync.service; }
has_progress() { case "$(status_text)" in *pages*) return 0;; *) return 1;; esac; }
wait_for "a progress STATUS= of gazelle-sync.service" 60 has_progress || fail "no progress in StatusText: '$(status_text)'"
shown=$(systemctl --user status gazelle-sync.service --no-pager --lines=0 2>&1 || true)
grep -q 'Status: "Sync Gazelle : [0-9]* pages' <<<"$shown" || fail "systemctl status shows no progress: $shown"
ok "systemctl --user status gazelle-sync shows: $(grep -o 'Status: .*' <<<"$shown")"

finished() { [ "$(sync_rows)" -gt "$n" ]; }
wait_for "the sync run to finish" 120 finished || fail "sync still running: $(last 'status, message')"
assert_eq success "$(last status)" "the sync started over D-Bus ended success"
assert_eq "$run_id" "$(last id)" "the runner adopted the daemon's row"
assert_eq manual "$(last triggered_by)" "triggered_by=manual"
stats=$(last stats)
clients=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["clients"]["fetched"], s["timeline_entries"]["fetched"], s["pages"] > 0)' "$stats")
assert_eq "300 6000 True" "$clients" "stats: 300 clients, 6000 timeline entries, pages counted"
assert_eq 6000 "$(q1 'SELECT count(*) FROM gazelle_timeline_entries')" "6000 timeline entries in the store"

lines=$(journal_wait 10 GAZELLE_RUN_ID="$run_id" SYSLOG_IDENTIFIER=gazelle-scheduler | grep -c '"MESSAGE":"Sync Gazelle : [0-9]* pages' || true)
[ "$lines" -ge 2 ] || fail "expected progress lines in the journal of run $run_id, got $lines"
ok "the journal has $lines progress lines for run $run_id"

# --- 2. a second run through the unit: incremental, nothing changes
n=$(sync_rows)
curl -s -X POST -d '{"latency_ms": 0}' "$base/_control" >/dev/null
systemctl --user start gazelle-sync.service || true
wait_for "the second run" 60 finished || fail "second run did not finish"
assert_eq success "$(last status)" "second run through systemctl start: success"
unchanged=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["timeline_mode"], s["clients"]["inserted"] + s["clients"]["updated"])' "$(last stats)")
assert_eq "incremental 0" "$unchanged" "second run is incremental and changes nothing"
