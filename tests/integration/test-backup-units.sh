#!/bin/bash
# SPDX-License-Identifier: MIT
# gazelle-backup.service under the user manager, on the store GS_STORE selects: a timer start is
# recorded as triggered_by=scheduler, the ExecCondition= guard skips a second timer start the same
# day, concurrent starts give one run, the journal carries GAZELLE_RUN_ID, a SIGKILLed run is
# marked error ("Interrompue…") by the next run, a BACKUP_DIR made read-only by the unit's sandbox
# is reported as such with the ReadWritePaths= drop-in that fixes it, and so is a read-only
# mail.outbox_dir in the failure notification.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

dropin=$XDG_CONFIG_HOME/systemd/user/gazelle-backup.timer.d
mkdir -p "$dropin"
printf '[Timer]\nOnActiveSec=1s\nAccuracySec=1ms\n' > "$dropin/50-test-now.conf"
systemctl --user daemon-reload

rows() { q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup'"; }
sched_rows() { q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler'"; }
has_sched_success() { [ "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler' AND status='success'")" = 1 ] 2>/dev/null; }
skip_count() { journalctl -q --no-pager -o cat MESSAGE_ID=1ddcf83100d14d15bd316675bfdc3f40 GAZELLE_TASK=backup 2>/dev/null | wc -l; }
more_skips() { [ "$(skip_count)" -gt "$1" ]; }
no_running() { [ "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND status='running'")" = 0 ]; }

# --- 1. the timer runs the backup: triggered_by=scheduler, success, a file
systemctl --user restart gazelle-backup.timer
wait_for "a successful scheduler backup row" 60 has_sched_success || fail "no scheduler/success row: $(q 'SELECT task_name,status,triggered_by,message FROM scheduler_logs')"
ok "timer start recorded: triggered_by=scheduler, status=success"
wait_for "gazelle-backup.service to finish" 30 unit_inactive gazelle-backup.service || fail "service still $(unit_state gazelle-backup.service)"
files=("$GS_STATE"/backups/db_backup_*.sqlite)
[ "${#files[@]}" -ge 1 ] || fail "no backup file in $GS_STATE/backups"
ok "backup file ${files[0]##*/} exists"
run_id=$(q1 "SELECT id FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler'")

# --- 2. the guard skips a second timer start of the same slot
skips=$(skip_count)
n_sched=$(sched_rows)
systemctl --user restart gazelle-backup.timer
wait_for "the skip message (MESSAGE_ID=1ddcf831…)" 30 more_skips "$skips" || fail "no skip message in the journal"
ok "ExecCondition= guard logged MESSAGE_ID=1ddcf83100d14d15bd316675bfdc3f40 GAZELLE_TASK=backup"
wait_for "gazelle-backup.service to settle" 30 unit_inactive gazelle-backup.service || fail "service still $(unit_state gazelle-backup.service)"
assert_eq "$n_sched" "$(sched_rows)" "no new scheduler row after the skipped timer start"

# --- 2b. a timer firing every 2 s, the guard unable to read the store: one scheduled run per slot
# The system flavour's ExecCondition= gets no credentials on systemd 252: should-run cannot
# reach a store named by the database-url credential. Here should-run gets an unreachable
# DATABASE_URL instead (the runner keeps the real store): it skips from the slot stamp, and
# without the stamp it says it cannot decide and the runner records `skipped`.
svc_dropin=$XDG_CONFIG_HOME/systemd/user/gazelle-backup.service.d
mkdir -p "$svc_dropin"
printf '[Service]\nExecCondition=\nExecCondition=/usr/bin/env DATABASE_URL=postgresql:///none?host=/nonexistent %s --user should-run backup\n' \
    "$GS_BUILD_DIR/gazelle-scheduler" > "$svc_dropin/50-test-blind-guard.conf"
printf '[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n' > "$dropin/50-test-now.conf"
systemctl --user daemon-reload
sched_success() { q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler' AND status IN ('success','warning')"; }
runner_skips() { q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler' AND status='skipped'"; }
has_runner_skip() { [ "$(runner_skips)" -ge 1 ]; }
[ -f "$GS_STATE/slots/backup.done" ] || fail "no slot stamp $GS_STATE/slots/backup.done after the scheduled success"
skips=$(skip_count)
systemctl --user restart gazelle-backup.timer
wait_for "two skips by the blind guard, from the slot stamp" 30 more_skips $((skips + 1)) \
    || fail "the blind guard did not skip twice: $(journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=gazelle-scheduler | tail -n 5)"
ok "a blind should-run skips from the slot stamp ($(journalctl -q --no-pager -o cat MESSAGE_ID=1ddcf83100d14d15bd316675bfdc3f40 GAZELLE_TASK=backup | tail -n 1))"
rm -f "$GS_STATE/slots/backup.done"
wait_for "a run the runner refused (status skipped, scheduler)" 30 has_runner_skip \
    || fail "no skipped row from the runner: $(q "SELECT status,triggered_by,message FROM scheduler_logs WHERE task_name='backup'")"
ok "without the stamp the runner refuses the slot: $(q1 "SELECT message FROM scheduler_logs WHERE task_name='backup' AND status='skipped'")"
undecided() { journalctl -q --no-pager -o cat GAZELLE_TASK=backup | grep -q 'Cannot check the slot of backup in the store'; }
wait_for "should-run's 'cannot decide' entry" 10 undecided || fail "should-run did not say it could not decide"
ok "should-run said in the journal that it could not decide"
skips=$(skip_count)
wait_for "a skip from the stamp the runner wrote back" 30 more_skips "$skips" || fail "no skip after the runner's refusal"
systemctl --user stop gazelle-backup.timer
wait_for "gazelle-backup.service to settle" 30 unit_inactive gazelle-backup.service || fail "service still $(unit_state gazelle-backup.service)"
assert_eq 1 "$(sched_success)" "exactly one successful scheduled run in the slot after every 2 s for the test"
rm -rf "$svc_dropin"

# --- 3. two concurrent starts: one run
# The runner (src/manager.c, TIMER_START_TOLERANCE_USEC) takes a start within 3 s of the timer's
# LastTriggerUSec for a timer start, which the guard would skip: stop the timer, wait that out.
rm -rf "$dropin"; systemctl --user daemon-reload; systemctl --user restart gazelle-backup.timer
trigger_old() {
    local t
    t=$(busctl --user get-property org.freedesktop.systemd1 /org/freedesktop/systemd1/unit/gazelle_2dbackup_2etimer \
        org.freedesktop.systemd1.Timer LastTriggerUSec) || return 1
    t=${t#t }
    (( ${EPOCHREALTIME/[.,]/} - t > 3500000 ))
}
wait_for "the last timer trigger to be older than 3.5 s" 10 trigger_old || fail "LastTriggerUSec keeps moving"
n=$(rows)
systemctl --user start gazelle-backup.service & p1=$!
systemctl --user start gazelle-backup.service & p2=$!
wait "$p1" || fail "first systemctl start failed"
wait "$p2" || fail "second systemctl start failed"
assert_eq $((n + 1)) "$(rows)" "two concurrent systemctl start give exactly one new row"

# --- 4. the journal finds the run by GAZELLE_RUN_ID
entries=$(journal_wait 10 GAZELLE_RUN_ID="$run_id" SYSLOG_IDENTIFIER=gazelle-scheduler) || fail "no journal entry for run $run_id"
ok "journalctl GAZELLE_RUN_ID=$run_id finds $(wc -l <<<"$entries") entries"

# --- 5. a SIGKILLed run is marked error by the next run
lock_start "$SBX_DIR/locked-source.sqlite"
systemctl --user set-environment BACKUP_SQLITE_PATH="$LOCK_FILE"
n=$(rows)
systemctl --user start --no-block gazelle-backup.service
new_running() { [ "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND status='running' AND pid IS NOT NULL")" = 1 ]; }
wait_for "the hanging run's row" 30 new_running || fail "no running row: $(q "SELECT status,message FROM scheduler_logs WHERE task_name='backup'")"
killed=$(q1 "SELECT id FROM scheduler_logs WHERE task_name='backup' AND status='running'")
ok "backup hangs on the locked source (run $killed is running)"
systemctl --user kill -s KILL gazelle-backup.service
wait_for "the killed service to stop" 30 unit_inactive gazelle-backup.service || fail "service still $(unit_state gazelle-backup.service)"
ok "gazelle-backup.service killed with SIGKILL ($(unit_state gazelle-backup.service))"
lock_release
systemctl --user unset-environment BACKUP_SQLITE_PATH
systemctl --user reset-failed gazelle-backup.service 2>/dev/null || true
systemctl --user start gazelle-backup.service || fail "the next backup run failed"
wait_for "no running backup row" 10 no_running || fail "rows still running"
st=$(q "SELECT status, message FROM scheduler_logs WHERE id='$killed'")
case "$st" in
    "error|Interrompue"*) ok "killed run $killed marked error: ${st#error|}";;
    *) fail "killed run $killed: '$st'";;
esac
assert_eq success "$(q1 "SELECT status FROM scheduler_logs WHERE task_name='backup' ORDER BY started_at DESC LIMIT 1")" "the next run succeeded"

# --- 6. a BACKUP_DIR the unit's sandbox makes read-only: as the system units, ProtectSystem=strict
# with only the state directory writable; the run says so and names the drop-in that fixes it
ro=$SBX_DIR/ro-backups
mkdir -p "$ro"; chmod 0700 "$ro"
svc_dropin=$XDG_CONFIG_HOME/systemd/user/gazelle-backup.service.d
mkdir -p "$svc_dropin"
printf '[Service]\nProtectSystem=strict\nReadWritePaths=%s\n' "$GS_STATE" > "$svc_dropin/50-test-strict.conf"
systemctl --user daemon-reload
systemctl --user set-environment BACKUP_DIR="$ro"
systemctl --user reset-failed gazelle-backup.service 2>/dev/null || true
systemctl --user start gazelle-backup.service && fail "a backup into a read-only BACKUP_DIR succeeded"
msg=$(q1 "SELECT message FROM scheduler_logs WHERE task_name='backup' ORDER BY started_at DESC LIMIT 1")
grep -q "$ro est en lecture seule dans le bac à sable de l'unité" <<<"$msg" \
    && grep -qF "ReadWritePaths=$ro" <<<"$msg" && grep -q "systemctl edit gazelle-backup.service" <<<"$msg" \
    || fail "the read-only BACKUP_DIR's message: $msg"
! grep -q "introuvable" <<<"$msg" || fail "the message still says 'not found': $msg"
ok "a read-only BACKUP_DIR: $msg"
# The drop-in the message names is the fix.
printf '[Service]\nReadWritePaths=%s\n' "$ro" > "$svc_dropin/60-test-read-write.conf"
systemctl --user daemon-reload
systemctl --user reset-failed gazelle-backup.service 2>/dev/null || true
systemctl --user start gazelle-backup.service || fail "the backup with ReadWritePaths= failed: $(q1 "SELECT message FROM scheduler_logs WHERE task_name='backup' ORDER BY started_at DESC LIMIT 1")"
ls "$ro"/db_backup_*.sqlite >/dev/null || fail "no backup in $ro"
ok "with the ReadWritePaths= drop-in the backup lands in $ro"
rm -rf "$svc_dropin"; systemctl --user daemon-reload
systemctl --user unset-environment BACKUP_DIR

# --- 7. mail.outbox_dir outside the state directory under the same sandbox: the failure
# notification's journal entry says the outbox is read-only there and names the drop-in
rob=$SBX_DIR/ro-outbox
mkdir -p "$rob"; chmod 0700 "$rob"
printf '{"mail": {"admin_email": "admin@example.com", "transport": "outbox", "outbox_dir": "%s"}}\n' "$rob" \
    > "$SBX_DIR/outbox-config.json"
notify_dropin=$XDG_CONFIG_HOME/systemd/user/gazelle-notify-failure@.service.d
mkdir -p "$notify_dropin"
printf '[Service]\nProtectSystem=strict\nReadWritePaths=%s\n' "$GS_STATE" > "$notify_dropin/50-test-strict.conf"
systemctl --user daemon-reload
systemctl --user set-environment GAZELLE_CONFIG="$SBX_DIR/outbox-config.json"
systemctl --user start gazelle-notify-failure@gazelle-backup.service.service 2>/dev/null || true
entry=$(journal_wait 30 SYSLOG_IDENTIFIER=gazelle-scheduler GAZELLE_FAILED_UNIT=gazelle-backup.service GAZELLE_ALERT_STATE=failed) \
    || fail "no failed-notification entry: $(journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=gazelle-scheduler | tail -n 3)"
grep -q "$rob est en lecture seule dans le bac à sable de l'unité" <<<"$entry" && grep -qF "ReadWritePaths=$rob" <<<"$entry" \
    || fail "the outbox's message: $entry"
[ -z "$(ls -A "$rob")" ] || fail "something was written to the read-only outbox"
ok "a read-only mail.outbox_dir: $(tail -n 1 <<<"$entry")"
systemctl --user unset-environment GAZELLE_CONFIG
rm -rf "$notify_dropin"; systemctl --user daemon-reload
