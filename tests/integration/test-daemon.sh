#!/bin/bash
# SPDX-License-Identifier: MIT
# gazelle-schedulerd on the session bus, on the store GS_STORE selects: bus activation, RunTask
# (manual/api rows, signals, errors), GetLogs limits, ListTasks, the introspection contract,
# 200 concurrent RunTask calls, a SIGKILLed runner (idle exit: test-daemon-idle.sh; callers
# that are not admins: test-daemon-access.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

D=gazelle-schedulerd.service
ERR=com.piano_tek.GazelleScheduler1.Error
status_of() { q1 "SELECT status FROM scheduler_logs WHERE id='$1'"; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
run_id_of() { sed -n 's/^s "\(.*\)"$/\1/p' <<<"$1"; }
# err_name METHOD ARGS... - the D-Bus error name of a call (dbus-send prints it; busctl does not),
# "OK" when it succeeds. ARGS in dbus-send syntax (string:x, uint32:1).
err_name() {
    local out
    if out=$(dbus-send --session --print-reply --reply-timeout=30000 --dest="$GS_BUS" "$GS_PATH" "$GS_BUS.$1" "${@:2}" 2>&1); then
        echo OK
    else
        sed -n 's/^Error \([^:]*\):.*/\1/p' <<<"$out" | head -n 1
    fi
}

# --- bus activation + RunTask with an email, signals
mon=$SBX_DIR/monitor.txt
timeout 60 busctl --user --match "type='signal',interface='$GS_BUS'" monitor >"$mon" 2>&1 &
mon_pid=$!
mon_ready() { [ -s "$mon" ]; }
wait_for "busctl monitor to start" 10 mon_ready || fail "busctl monitor printed nothing"
assert_eq inactive "$(unit_state $D)" "$D not running before the first call"
out=$(gs_call RunTask ss backup admin@piano-tek.com) || fail "RunTask backup failed"
id=$(run_id_of "$out")
[ -n "$id" ] || fail "RunTask returned '$out'"
wait_for "$D to be active" 10 unit_active "$D" || fail "$D is $(unit_state $D) after RunTask"
ok "RunTask bus-activated $D and returned run $id"
st=$(status_of "$id")
case "$st" in running|success) ok "row $id exists right after RunTask ($st)";; *) fail "row $id: '$st'";; esac
wait_for "run $id to succeed" 60 is_status "$id" success || fail "run $id: $(q "SELECT status,message FROM scheduler_logs WHERE id='$id'")"
ok "run $id went to success"
assert_eq "manual|admin@piano-tek.com|0|root" "$(q "SELECT triggered_by, triggered_by_user, caller_uid, caller_name FROM scheduler_logs WHERE id='$id'")" "triggered_by=manual with the email, caller root from the bus credentials"
sig_seen() { grep -q "Member=$1" "$mon" && grep -q "$id" "$mon" && { [ "$1" != TaskFinished ] || grep -q '"success"' "$mon"; }; }
wait_for "TaskStarted on the bus" 10 sig_seen TaskStarted || fail "no TaskStarted: $(cat "$mon")"
ok "signal TaskStarted seen for $id"
wait_for "TaskFinished on the bus" 10 sig_seen TaskFinished || fail "no TaskFinished(success): $(cat "$mon")"
ok "signal TaskFinished(success) seen for $id"
kill "$mon_pid" 2>/dev/null || true; wait "$mon_pid" 2>/dev/null || true

# --- RunTask without an email: api + caller's user name
wait_for "the backup unit to settle" 30 unit_inactive gazelle-backup.service || fail "backup unit still $(unit_state gazelle-backup.service)"
out=$(gs_call RunTask ss backup '') || fail "RunTask backup '' failed"
id2=$(run_id_of "$out")
wait_for "run $id2 to end" 60 is_status "$id2" success || fail "run $id2: $(q "SELECT status,message FROM scheduler_logs WHERE id='$id2'")"
assert_eq "api|root" "$(q "SELECT triggered_by, triggered_by_user FROM scheduler_logs WHERE id='$id2'")" "RunTask with '' -> triggered_by=api, user root"

# --- the journal table names a known technician by display name, not by address
names=$XDG_RUNTIME_DIR/gs-names.json
printf '{"technicians": [{"id": "usr_t", "display_name": "Allan", "email": "ADMIN@piano-tek.com"}]}\n' > "$names"
table=$(GAZELLE_CONFIG=$names COLUMNS=250 gazelle-scheduler logs -n 5)
grep -qF "👤 Manuel (Allan, par root)" <<<"$table" || fail "logs table without the display name and the real caller: $table"
grep -qF "admin@piano-tek.com" <<<"$table" && fail "logs table still shows the address: $table"
ok "gazelle-scheduler logs shows 👤 Manuel (Allan) for admin@piano-tek.com"
# Through the daemon (GetTaskLogs): only that task's rows, the newest first, no fallback.
table=$(GAZELLE_BUS=user COLUMNS=250 gazelle-scheduler logs --task backup -n 1 2>&1)
grep -qF "injoignable" <<<"$table" && fail "logs --task did not reach the daemon: $table"
[ "$(grep -c "Backup SQL" <<<"$table")" = 1 ] && grep -qF "🔌 API (root)" <<<"$table" \
    || fail "logs --task backup -n 1 through the daemon is not the newest backup run ($id2): $table"
ok "gazelle-scheduler logs --task backup -n 1 through the daemon shows the newest backup run"

# --- errors
assert_eq "$ERR.UnknownTask" "$(err_name RunTask string:nosuchtask string:)" "unknown task -> UnknownTask"
assert_eq org.freedesktop.DBus.Error.InvalidArgs "$(err_name RunTask string:backup string:not-an-email)" "'not-an-email' -> InvalidArgs"
journaled() { journalctl -t gazelle-schedulerd -o cat --no-pager 2>/dev/null | grep -qF "$1"; }
wait_for "the refusals in the journal" 10 journaled "RunTask 'nosuchtask' by root (uid 0) refused: unknown task" \
    && wait_for "the refusals in the journal" 10 journaled "RunTask backup by root (uid 0) refused: invalid email address 'not-an-email'" \
    || fail "refused requests not journaled: $(journalctl -t gazelle-schedulerd -o cat --no-pager | grep refused | tail -3)"
ok "refused requests are journaled with the caller"
long="$(printf 'a%.0s' $(seq 290))@example.com"
assert_eq org.freedesktop.DBus.Error.InvalidArgs "$(err_name RunTask string:backup "string:$long")" "${#long}-byte address -> InvalidArgs"

# --- GetLogs limits: 0 means 20, capped at 1000, newest first. 1100 old rows (2020) make the
# cap visible; they are older than every real run, so "newest" is the last real one.
fill_old_rows() {
    if [ "$GS_STORE" = postgresql ]; then
        q "INSERT INTO scheduler_logs (task_name, task_label, started_at, completed_at, duration_seconds, status,
               message, triggered_by, created_at, host)
           SELECT 'sync_gazelle', 'Synchronisation', t, t + interval '3 seconds', 3, 'success', 'old row ' || i,
                  'scheduler', t, 'bench'
           FROM generate_series(1, $1) AS i, LATERAL (SELECT timestamptz '2020-01-01 00:00Z' + i * interval '1 minute') AS x(t)"
    else
        q "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
           INSERT INTO scheduler_logs (id, task_name, task_label, started_at, completed_at, duration_seconds, status,
               message, triggered_by, created_at, host)
           SELECT printf('00000000-0000-4000-8000-%012d', i), 'sync_gazelle', 'Synchronisation',
                  strftime('%Y-%m-%dT%H:%M:%S.000000Z', '2020-01-01', '+' || i || ' minutes'),
                  strftime('%Y-%m-%dT%H:%M:%S.000000Z', '2020-01-01', '+' || i || ' minutes', '+3 seconds'),
                  3, 'success', 'old row ' || i, 'scheduler',
                  strftime('%Y-%m-%dT%H:%M:%S.000000Z', '2020-01-01', '+' || i || ' minutes'), 'bench'
           FROM n"
    fi
}
fill_old_rows 1100
getlogs() { busctl --user --json=short call "$GS_BUS" "$GS_PATH" "$GS_BUS" GetLogs u "$1"; }
nlogs() { getlogs "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"][0]))'; }
assert_eq 20 "$(nlogs 0)" "GetLogs 0 -> 20 rows (the default)"
assert_eq 1 "$(nlogs 1)" "GetLogs 1 -> 1 row"
assert_eq 1000 "$(nlogs 1000)" "GetLogs 1000 -> 1000 rows"
assert_eq 1000 "$(nlogs 4294967295)" "GetLogs 4294967295 -> capped at 1000, no error"
assert_eq "$id2" "$(getlogs 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0][0]["id"]["data"])')" \
    "GetLogs 1 -> the newest run"
order=$(getlogs 1000 | python3 -c '
import json, sys
rows = json.load(sys.stdin)["data"][0]
s = [r["started_at"]["data"] for r in rows]
print("sorted" if all(r.get("started_at") for r in rows) and s == sorted(s, reverse=True) else "unsorted")')
assert_eq sorted "$order" "GetLogs rows are newest first"
keys=$(busctl --user --json=short call "$GS_BUS" "$GS_PATH" "$GS_BUS" GetLogs u 1 \
       | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["data"][0][0])))')
for k in id task_name status started_at triggered_by; do
    case " $keys " in *" $k "*) ;; *) fail "GetLogs row lacks $k (keys: $keys)";; esac
done
ok "GetLogs rows carry the scheduler_logs columns ($keys)"

# --- GetTaskLogs: one task by name or alias, "" for all, same limits
task_logs() { busctl --user --json=short call "$GS_BUS" "$GS_PATH" "$GS_BUS" GetTaskLogs su "$1" "$2" \
              | python3 -c 'import json,sys; r = json.load(sys.stdin)["data"][0]; print(len(r), " ".join(sorted({x["task_name"]["data"] for x in r})))'; }
assert_eq "2 backup" "$(task_logs backup 0)" "GetTaskLogs backup 0 -> its 2 runs only"
assert_eq "20 sync_gazelle" "$(task_logs sync 0)" "GetTaskLogs sync (alias) 0 -> 20 rows of sync_gazelle"
assert_eq "1000 backup sync_gazelle" "$(task_logs '' 4294967295)" "GetTaskLogs '' -> every task, capped at 1000"
assert_eq "$ERR.UnknownTask" "$(err_name GetTaskLogs string:nosuchtask uint32:1)" "GetTaskLogs nosuchtask -> UnknownTask"
assert_eq "$ERR.NotSubscribed" "$(err_name Unsubscribe)" "Unsubscribe without Subscribe -> NotSubscribed"

# --- ListTasks
tasks=$(busctl --user --json=short call "$GS_BUS" "$GS_PATH" "$GS_BUS" ListTasks \
        | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"][0]
print(len(t), sum(1 for x in t if x.get("next_run", {}).get("data")), " ".join(sorted(x["name"]["data"] for x in t)))')
assert_eq "4 4 backup rapport_timeline rv_alerts sync_gazelle" "$tasks" "ListTasks: 4 tasks, each with next_run"
backup_keys=$(busctl --user --json=short call "$GS_BUS" "$GS_PATH" "$GS_BUS" ListTasks \
    | python3 -c '
import json, sys
t = {x["name"]["data"]: x for x in json.load(sys.stdin)["data"][0]}
b = t["backup"]
print(" ".join(sorted(b)), b["last_run_id"]["data"], b["last_status"]["data"], b["running"]["data"])')
assert_eq "label last_run_id last_started_at last_status last_success_at name next_run running schedule unit $id2 success False" \
    "$backup_keys" "ListTasks backup: every documented key, last run $id2 (success), not running"
# The CLI's status takes the last start from ListTasks (exit 1: other tasks never succeeded).
cli_backup=$(gazelle-scheduler status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
tasks = d if isinstance(d, list) else d.get("tasks", [])
b = [t for t in tasks if t["name"] == "backup"][0]
print(b["last_run_id"], "started" if b.get("last_started_at") else "no-start")') || true
assert_eq "$id2 started" "$cli_backup" "gazelle-scheduler status: backup's last run and its start time"

# --- introspection = dbus/com.piano_tek.GazelleScheduler1.xml
busctl --user introspect --xml-interface "$GS_BUS" "$GS_PATH" > "$SBX_DIR/introspect.xml"
python3 - "$GS_SOURCE_DIR/dbus/$GS_BUS.xml" "$SBX_DIR/introspect.xml" <<'PY' || fail "introspection differs from the contract"
import sys, xml.etree.ElementTree as ET
def shape(path):
    root = ET.parse(path).getroot()
    ifs = [i for i in root.iter("interface") if i.get("name") == "com.piano_tek.GazelleScheduler1"]
    assert len(ifs) == 1, f"{path}: {len(ifs)} interface elements"
    out = set()
    for m in ifs[0]:
        if m.tag not in ("method", "signal", "property"):
            continue
        args = tuple((a.get("name"), a.get("type"), a.get("direction", "in" if m.tag == "method" else "out"))
                     for a in m.findall("arg"))
        out.add((m.tag, m.get("name"), args))
    return out
want, got = shape(sys.argv[1]), shape(sys.argv[2])
if want != got:
    print("missing:", sorted(want - got)); print("extra:", sorted(got - want)); sys.exit(1)
PY
ok "introspection of $GS_BUS matches dbus/$GS_BUS.xml (methods, signals, args)"

# --- clients that hang up before the answer harm nothing: a RunTask runs, or (caller gone
# before the daemon could ask the bus who it was) is refused and journaled; no row stays
# pending; the daemon (same process) keeps serving
wait_for "the backup unit to settle" 30 unit_inactive gazelle-backup.service || fail "backup unit still $(unit_state gazelle-backup.service)"
inv=$(systemctl --user show -p InvocationID --value "$D")
n_before=$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup'")
busctl --user call --expect-reply=no "$GS_BUS" "$GS_PATH" "$GS_BUS" RunTask ss backup '' || fail "RunTask without reply"
for _ in 1 2 3 4 5; do busctl --user call --expect-reply=no "$GS_BUS" "$GS_PATH" "$GS_BUS" GetLogs u 1000; done
ran_or_refused() {
    [ "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup'")" -gt "$n_before" ] ||
        journalctl -t gazelle-schedulerd -o cat --no-pager | grep -q "refused: cannot identify the caller"
}
wait_for "the RunTask of the vanished client to run or be refused" 20 ran_or_refused \
    || fail "RunTask whose client hung up: no row and no refusal in the journal"
if [ "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup'")" -gt "$n_before" ]; then
    gone=$(q1 "SELECT id FROM scheduler_logs WHERE task_name='backup' ORDER BY started_at DESC LIMIT 1")
    wait_for "run $gone to end" 60 is_status "$gone" success || fail "run $gone: $(q "SELECT status,message FROM scheduler_logs WHERE id='$gone'")"
    ok "RunTask of a client that hung up: run $gone went to success"
else
    ok "RunTask of a client that hung up before its credentials were read: refused and journaled"
fi
assert_eq 1 "$(nlogs 1)" "the daemon still answers after clients hung up"
assert_eq "$inv" "$(systemctl --user show -p InvocationID --value "$D")" "same daemon instance: nothing crashed"

# --- 200 concurrent RunTask from parallel processes while a run hangs on a locked source
wait_for "the backup unit to settle" 30 unit_inactive gazelle-backup.service || fail "backup unit still $(unit_state gazelle-backup.service)"
lock_start "$SBX_DIR/locked-source.sqlite"
systemctl --user set-environment BACKUP_SQLITE_PATH="$LOCK_FILE"
par=$SBX_DIR/par; mkdir -p "$par"
pids=()
for i in $(seq 200); do
    err_name RunTask string:backup string: > "$par/$i" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
n_ok=$(grep -lx OK "$par"/* | wc -l)
n_busy=$(grep -lx "$ERR.AlreadyRunning" "$par"/* | wc -l)
assert_eq "1 199" "$n_ok $n_busy" "200 concurrent RunTask: one run, 199 AlreadyRunning"
hung=$(q1 "SELECT id FROM scheduler_logs WHERE task_name='backup' AND status='running'")
[ -n "$hung" ] || fail "no running backup row"
assert_eq 1 "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND status='running'")" "exactly one backup row is running"
msg=$(dbus-send --session --print-reply --dest="$GS_BUS" "$GS_PATH" "$GS_BUS.RunTask" string:backup string: 2>&1 || true)
case "$msg" in *"$hung"*) ok "AlreadyRunning names the running run $hung";; *) fail "AlreadyRunning message: $msg";; esac

# --- the runner SIGKILLed mid-run: the daemon closes its row as error when the job ends (no
# later run needed), and says so with TaskFinished
adopted() { [ "$(q1 "SELECT coalesce(pid, 0) > 0 FROM scheduler_logs WHERE id='$hung'")" = "$(true_lit)" ]; }
true_lit() { [ "$GS_STORE" = postgresql ] && echo t || echo 1; }
wait_for "the runner to adopt $hung" 20 adopted || fail "run $hung never adopted: $(q "SELECT * FROM scheduler_logs WHERE id='$hung'")"
mon=$SBX_DIR/monitor-kill.txt
timeout 60 busctl --user --match "type='signal',interface='$GS_BUS',member='TaskFinished'" monitor >"$mon" 2>&1 &
mon_pid=$!
wait_for "busctl monitor to start" 10 mon_ready || fail "busctl monitor printed nothing"
systemctl --user kill -s KILL gazelle-backup.service
wait_for "the killed service to stop" 30 unit_inactive gazelle-backup.service || fail "service still $(unit_state gazelle-backup.service)"
lock_release
systemctl --user unset-environment BACKUP_SQLITE_PATH
wait_for "run $hung to be closed" 20 is_status "$hung" error || fail "killed run $hung: $(q "SELECT status,message FROM scheduler_logs WHERE id='$hung'")"
st=$(q "SELECT status, message FROM scheduler_logs WHERE id='$hung'")
case "$st" in "error|Interrompue"*) ok "SIGKILLed run $hung ends error: ${st#error|}";; *) fail "killed run $hung: '$st'";; esac
killed_sig() { grep -q "$hung" "$mon" && grep -q '"error"' "$mon"; }
wait_for "TaskFinished(error)" 10 killed_sig || fail "no TaskFinished(error) for $hung: $(cat "$mon")"
ok "TaskFinished(error) emitted for the killed run"
kill "$mon_pid" 2>/dev/null || true; wait "$mon_pid" 2>/dev/null || true

# AccessDenied for a non-admin caller: test-daemon-access.sh (a private bus other uids can reach).
