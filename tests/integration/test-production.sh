#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The product as installed: the system flavour under a real system manager
# (tests/system-sandbox.sh), on the store GS_STORE=sqlite|postgresql names (PostgreSQL: a
# cluster in the box, its URL with a password in the database-url credential). Installed by
# running the README's "Install (production, system manager)" commands literally, one line at a
# time, from a directory whose `build` is a --prefix=/usr build of this tree; then:
#   1. list-timers shows the four timers at their Montréal slots; the backup timer moved by a
#      drop-in to fire every 3 s runs the real service as gazelle, files 0600/0700 owned by
#      gazelle under /var/lib/gazelle-scheduler, exactly one scheduled run in the slot, the
#      later starts skipped by the guard;
#   2. a running task is confined (NoNewPrivs, seccomp, no capabilities, read-only /etc /usr,
#      no /home /root, writable state directory and the path a `systemctl edit` drop-in opens
#      with ReadWritePaths=) and systemd-analyze security scores each service live as it does
#      offline;
#   3. secrets come through LoadCredential= and are absent from systemctl show, the task's
#      environment and the journal;
#   4. the system bus: RunTask by root and by a gazelle-admin member start the unit, another
#      user and gazelle itself are refused (the daemon's refusal journaled), GetLogs as a
#      member of gazelle, TaskStarted/TaskFinished, bus activation, idle exit, re-activation;
#   5. polkit: gazelle may start the four task units and nothing else, may not stop them;
#   6. a failing task starts gazelle-notify-failure@ once, which mails through the outbox;
#   7. upgrade in place from the previous commit's build while a timer is due (skipped when
#      the tree has no git history): history kept, no run lost or doubled;
#   8. removal (`ninja uninstall`, daemon-reload): units and bus files gone, state kept.
# Host side it prepares the builds (cached under GS_BUILD_DIR/production*, shared by both
# stores), then re-runs itself inside the box. GS_UPGRADE_FROM (default HEAD~1): the
# revision installed first for check 7.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GS_SOURCE_DIR=${GS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
GS_BUILD_DIR=${GS_BUILD_DIR:-$GS_SOURCE_DIR/build}
GS_STORE=${GS_STORE:-sqlite}
export GS_SOURCE_DIR GS_BUILD_DIR GS_STORE
# shellcheck source=tests/integration/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/integration/production-lib.sh
. "$here/production-lib.sh"

# ---------------------------------------------------------------------------------------------
# Host side: the --prefix=/usr builds (this tree, and the previous revision for check 7).
# ---------------------------------------------------------------------------------------------
if [ -z "${GSYS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
    prod=$GS_BUILD_DIR/production
    log=$GS_BUILD_DIR/production.log
    production_build_locked
    GS_PREV_BUILD=
    if rev=$(git -C "$GS_SOURCE_DIR" rev-parse --verify -q "${GS_UPGRADE_FROM:-HEAD~1}^{commit}" 2>/dev/null); then
        prev=$GS_BUILD_DIR/production-prev
        if [ "$(cat "$prev/rev" 2>/dev/null)" != "$rev" ]; then
            rm -rf "$prev"; mkdir -p "$prev/src"
            git -C "$GS_SOURCE_DIR" archive "$rev" | tar -x -C "$prev/src"
            { meson setup "$prev/build" "$prev/src" --prefix=/usr && meson compile -C "$prev/build"; } >>"$log" 2>&1 \
                || fail "build of $rev for the upgrade check: $(tail -n 20 "$log")"
            echo "$rev" >"$prev/rev"
        fi
        GS_PREV_BUILD=$prev/build
    fi
    flock -u 9
    exec 9>&-
    export GS_PROD_BUILD=$prod GS_PREV_BUILD
    exec "$GS_SOURCE_DIR/tests/system-sandbox.sh" "$here/$(basename "$0")"
fi

# ---------------------------------------------------------------------------------------------
# Inside the box (root, system manager = PID 1).
# ---------------------------------------------------------------------------------------------
[ -z "${GS_TRACE:-}" ] || set -x
BUS=com.piano_tek.GazelleScheduler1
OBJ=/com/piano_tek/GazelleScheduler1
STATE=/var/lib/gazelle-scheduler
ETC=/etc/gazelle-scheduler
TASK_UNITS=(gazelle-sync.service gazelle-report.service gazelle-backup.service gazelle-alerts.service)
TIMERS=(gazelle-sync.timer gazelle-report.timer gazelle-backup.timer gazelle-alerts.timer)
MSG_SKIPPED=1ddcf83100d14d15bd316675bfdc3f40
work=/tmp/gs-production
mkdir -p "$work"
secret() { head -c 32 /dev/urandom | sha256sum | cut -c1-24; }
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }
unit_state() { systemctl show -p ActiveState --value "$1"; }
unit_settled() { case "$(unit_state "$1")" in inactive|failed) return 0;; *) return 1;; esac; }
unit_active() { [ "$(unit_state "$1")" = active ]; }

# --- the store
if [ "$GS_STORE" = postgresql ]; then
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    install -d -o postgres -g postgres -m 0700 /var/lib/gs-pg
    install -d -o postgres -g postgres -m 2775 /run/postgresql
    as postgres "$pgbin/initdb" -D /var/lib/gs-pg/data -U postgres --auth-local=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$work/initdb.log" 2>&1 \
        || fail "initdb: $(tail -n 5 "$work/initdb.log")"
    printf 'local all postgres trust\nlocal all all scram-sha-256\n' >/var/lib/gs-pg/data/pg_hba.conf
    systemd-run -q --unit=gs-postgres -p User=postgres -p Group=postgres \
        "$pgbin/postgres" -D /var/lib/gs-pg/data -k /run/postgresql -c listen_addresses= -c fsync=off
    pg_up() { "$pgbin/pg_isready" -q -h /run/postgresql; }
    wait_for "PostgreSQL" 30 pg_up || fail "PostgreSQL did not start: $(journalctl -q -u gs-postgres -n 20 --no-pager)"
    DB_PASSWORD=$(secret)
    psql -X -q -h /run/postgresql -U postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE gazelle LOGIN PASSWORD '$DB_PASSWORD'" -c "CREATE DATABASE gazelle OWNER gazelle" >/dev/null
    DATABASE_URL="postgresql://gazelle:$DB_PASSWORD@/gazelle?host=/run/postgresql"
    ok "PostgreSQL cluster up; database-url carries a password"
fi
# q SQL: rows '|'-separated from the store the product uses
q() {
    if [ "$GS_STORE" = postgresql ]; then
        local psql=(psql -X -q -A -t -F '|' -h /run/postgresql -U postgres -d gazelle -v ON_ERROR_STOP=1)
        [ "$("${psql[@]}" -c "SELECT to_regclass('scheduler_logs') IS NOT NULL")" = t ] || return 0
        "${psql[@]}" -c "$1"
    else
        [ -f "$STATE/gazelle-scheduler.sqlite" ] || return 0
        sqlite3 -batch -separator '|' -cmd '.timeout 5000' "$STATE/gazelle-scheduler.sqlite" "$1"
    fi
}
q1() { q "$1" | head -n 1; }

# --- the README's install section, literally
# A booted machine has its system bus up before anyone installs anything.
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId >/dev/null

# Check 7 starts from the previous revision: install it, let it run once, upgrade later.
if [ -n "${GS_PREV_BUILD:-}" ]; then
    install_from "$GS_PREV_BUILD" "$work"
    PREV_INSTALLED=1
else
    install_from "$GS_PROD_BUILD" "$work"
fi

# --- configuration a sysadmin adds after the install (README: after the install)
gz_uid=$(id -u gazelle) gz_gid=$(id -g gazelle)
useradd -M -N -g users -G gazelle-admin gs-admin
useradd -M -N -g users -G gazelle gs-reader
useradd -M -N -g users gs-other
API_KEY=$(secret)
install -m 0600 /dev/null "$ETC/credentials/gazelle-api-key"
printf '%s\n' "$API_KEY" >"$ETC/credentials/gazelle-api-key"
if [ "$GS_STORE" = postgresql ]; then
    install -m 0600 /dev/null "$ETC/credentials/database-url"
    printf '%s\n' "$DATABASE_URL" >"$ETC/credentials/database-url"
fi
# A Gazelle that accepts and never answers until released (check 2, 3, 6).
python3 - "$work/gazelle.port" "$work/gazelle.release" <<'PY' &
import socket, sys, os, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8); s.settimeout(0.1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    try:
        held.append(s.accept()[0])
    except socket.timeout:
        pass
    if os.path.exists(sys.argv[2]):
        for c in held: c.close()
        held = []
PY
has_port() { [ -s "$work/gazelle.port" ]; }
wait_for "the silent Gazelle" 10 has_port || fail "silent Gazelle did not start"
port=$(cat "$work/gazelle.port")
cat >"$ETC/gazelle-scheduler.env" <<EOF
GAZELLE_IDLE_EXIT_SEC=3
GAZELLE_API_URL=http://127.0.0.1:$port/graphql
GAZELLE_HTTP_MAX_ATTEMPTS=1
GAZELLE_HTTP_TIMEOUT_SEC=120
EOF
cat >"$ETC/config.json" <<'EOF'
{ "mail": { "admin_email": "admin@piano-tek.test", "transport": "outbox" } }
EOF
chgrp gazelle "$ETC/config.json"; chmod 0640 "$ETC/config.json"

# ============================================================================ 7a (previous build)
# A run recorded by the previous build, and the backup timer due within seconds.
backup_rows() { q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup'"; }
# The most scheduled successes of one Montréal backup slot (03:00 to 03:00): a test that crosses
# 03:00 legitimately has one in each slot.
sched_success() {
    q "SELECT started_at FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler' AND status IN ('success','warning')" |
        python3 -c '
import sys, datetime as dt, collections
from zoneinfo import ZoneInfo
tz = ZoneInfo("America/Montreal"); n = collections.Counter()
for line in sys.stdin:
    t = dt.datetime.fromisoformat(line.strip().replace("Z", "+00:00").replace(" ", "T")).astimezone(tz)
    n[(t - dt.timedelta(hours=3)).date()] += 1
print(max(n.values(), default=0))'
}
dropin=/etc/systemd/system/gazelle-backup.timer.d
if [ -n "${PREV_INSTALLED:-}" ]; then
    systemctl start gazelle-backup.service || fail "backup by the previous build failed: $(journalctl -q -u gazelle-backup.service -n 20 --no-pager)"
    prev_id=$(q1 "SELECT id FROM scheduler_logs WHERE task_name='backup' AND status='success'")
    [ -n "$prev_id" ] || fail "the previous build recorded no successful backup"
    ok "previous build ($(cut -c1-10 "$GS_PREV_BUILD/../rev")): backup run $prev_id recorded"
    prev_version=$(q1 "SELECT max(version) FROM schema_migrations")
    # due while the upgrade installs: fires in 2 s
    mkdir -p "$dropin"
    printf '[Timer]\nOnCalendar=\nOnActiveSec=2s\nAccuracySec=1ms\n' >"$dropin/50-test.conf"
    systemctl daemon-reload
    systemctl restart gazelle-backup.timer
    install_from "$GS_PROD_BUILD" "$work"
    has_sched() { [ "$(sched_success)" -ge 1 ]; }
    wait_for "the due timer's run across the upgrade" 60 has_sched || fail "the timer due during the upgrade never ran: $(q "SELECT status,triggered_by,message FROM scheduler_logs")"
    wait_for "gazelle-backup.service to settle" 60 unit_settled gazelle-backup.service || fail "backup still $(unit_state gazelle-backup.service)"
    assert_eq 1 "$(sched_success)" "7. upgrade while the timer was due: its run happened exactly once"
    assert_eq success "$(q1 "SELECT status FROM scheduler_logs WHERE id='$prev_id'")" "7. the previous build's run is still in the history"
    newest=$(find "$GS_SOURCE_DIR/sql/$GS_STORE" -name '[0-9]*.sql' -printf '%f\n' | sort | tail -n 1)
    assert_eq "$((10#${newest%%_*}))" "$(q1 "SELECT max(version) FROM schema_migrations")" \
        "7. migrations applied by the upgrade: schema $prev_version -> ${newest%.sql}"
    rm -rf "$dropin"; systemctl daemon-reload; systemctl restart gazelle-backup.timer
else
    ok "7. skipped: no previous revision to upgrade from (GS_UPGRADE_FROM=${GS_UPGRADE_FROM:-HEAD~1})"
fi

# ============================================================================ 1
listed=$(systemctl list-timers --all --no-pager --no-legend 'gazelle-*')
expected() {
    python3 - "$@" <<'PY'
import sys, datetime as dt
from zoneinfo import ZoneInfo
tz = ZoneInfo("America/Montreal"); now = dt.datetime.now(dt.timezone.utc); best = None
for hm in sys.argv[1:]:
    h, m = map(int, hm.split(":")[:2])
    d = now.astimezone(tz).date() - dt.timedelta(days=1)
    for i in range(5):
        day = d + dt.timedelta(days=i)
        c = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=tz)
        if (c.astimezone(dt.timezone.utc).astimezone(tz).hour, c.minute) != (h, m): continue
        if c > now:
            best = c if best is None or c < best else best; break
print(int(best.timestamp()))
PY
}
declare -A slot=([gazelle-sync.timer]="01:00" [gazelle-report.timer]="02:00 03:15" [gazelle-backup.timer]="03:00" [gazelle-alerts.timer]="16:00")
for t in "${TIMERS[@]}"; do
    grep -q "$t" <<<"$listed" || fail "$t not in systemctl list-timers: $listed"
    got=$(systemctl show -p NextElapseUSecRealtime --value "$t")
    got=$(date -d "$got" +%s)
    # shellcheck disable=SC2086
    assert_eq "$(expected ${slot[$t]})" "$got" "1. $t listed, next elapse at ${slot[$t]} America/Montreal ($(TZ=America/Montreal date -d "@$got" '+%F %T %Z'))"
done

skips() { journalctl -q --no-pager -o cat MESSAGE_ID=$MSG_SKIPPED GAZELLE_TASK=backup | wc -l; }
skips_at_least() { [ "$(skips)" -ge "$1" ]; }
mkdir -p "$dropin"
printf '[Timer]\nOnCalendar=\nOnCalendar=*:*:0/3\nAccuracySec=1ms\n' >"$dropin/50-test.conf"
systemctl daemon-reload
systemctl restart gazelle-backup.timer
s0=$(skips) n0=$(sched_success)
has_one() { [ "$(sched_success)" -ge 1 ]; }
wait_for "a scheduled backup" 60 has_one || fail "no scheduled backup: $(journalctl -q -u gazelle-backup.service -n 30 --no-pager)"
wait_for "three starts skipped by the guard" 60 skips_at_least $((s0 + 3)) \
    || fail "the guard did not skip: $(journalctl -q --no-pager -t gazelle-scheduler -n 20)"
# Without the stamp, should-run (no credentials in ExecCondition= on systemd 252) cannot decide:
# the runner refuses the slot and records it.
runner_skipped() { [ "$(q1 "SELECT count(*) FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler' AND status='skipped'")" -ge 1 ]; }
rm -f "$STATE/slots/backup.done"
wait_for "a start refused by the runner" 60 runner_skipped || fail "1. no skipped row: $(q "SELECT status,triggered_by,message FROM scheduler_logs WHERE task_name='backup'")"
ok "1. without the slot stamp the runner refuses the slot: $(q1 "SELECT message FROM scheduler_logs WHERE task_name='backup' AND status='skipped'" | cut -d'|' -f1)"
rm -rf "$dropin"; systemctl daemon-reload; systemctl restart gazelle-backup.timer
wait_for "gazelle-backup.service to settle" 60 unit_settled gazelle-backup.service || fail "backup still $(unit_state gazelle-backup.service)"
assert_eq 1 "$(sched_success)" "1. a timer firing every 3 s: exactly one scheduled backup in the Montréal slot ($((n0)) before), $(( $(skips) - s0 )) later starts skipped"
ok "1. skip reason: $(journalctl -q --no-pager -o cat MESSAGE_ID=$MSG_SKIPPED GAZELLE_TASK=backup | tail -n 1)"
ok "1. $(journalctl -q --no-pager -o cat GAZELLE_TASK=backup | grep -m1 'Cannot check the slot' || echo 'should-run read the store')"
uid=$(journalctl -q --no-pager -o json MESSAGE_ID=3158460f5e6d46609bbc17db9b44279a GAZELLE_TASK=backup | tail -n 1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["_UID"])')
assert_eq "$gz_uid" "$uid" "1. the backup ran as gazelle (uid $gz_uid)"
assert_eq scheduler "$(q1 "SELECT triggered_by FROM scheduler_logs WHERE task_name='backup' AND triggered_by='scheduler' AND status='success'")" "1. recorded triggered_by=scheduler"
perm() { stat -c '%U %a' "$1"; }
assert_eq "gazelle 700" "$(perm $STATE)" "1. $STATE: gazelle 0700"
assert_eq "gazelle 700" "$(perm $STATE/backups)" "1. $STATE/backups: gazelle 0700"
for f in "$STATE"/backups/db_backup_*.sqlite "$STATE"/slots/backup.done; do
    assert_eq "gazelle 600" "$(perm "$f")" "1. ${f#"$STATE"/}: gazelle 0600"
done
[ "$GS_STORE" = postgresql ] || assert_eq "gazelle 600" "$(perm $STATE/gazelle-scheduler.sqlite)" "1. the SQLite store: gazelle 0600"

# ============================================================================ 2, 3 (a sync held by the silent Gazelle)
# The README's way to open one more path: `systemctl edit` (the editor writes the drop-in).
install -d -o gazelle -g gazelle -m 0700 /srv/gs-extra
printf '#!/bin/sh\nprintf "[Service]\\nReadWritePaths=/srv/gs-extra\\n" > "$1"\n' >"$work/editor"
chmod +x "$work/editor"
# systemctl edit wants a terminal: script(1) gives it one.
SYSTEMD_EDITOR=$work/editor script -qec "systemctl edit gazelle-sync.service" /dev/null </dev/null >/dev/null 2>&1 \
    || fail "systemctl edit gazelle-sync.service failed"
assert_eq /srv/gs-extra "$(systemctl show -p ReadWritePaths --value gazelle-sync.service)" "2. systemctl edit added ReadWritePaths=/srv/gs-extra"
systemctl start --no-block gazelle-sync.service
main_pid() { p=$(systemctl show -p MainPID --value gazelle-sync.service); [ "${p:-0}" -gt 0 ] 2>/dev/null; }
wait_for "the sync to run" 30 main_pid || fail "gazelle-sync.service has no MainPID: $(journalctl -q -u gazelle-sync.service -n 20 --no-pager)"
pid=$p
held() { ss -tn state established "( dport = :$port )" 2>/dev/null | grep -q 127.0.0.1; }
wait_for "the sync's request to the silent Gazelle" 30 held || fail "the sync never reached Gazelle: $(journalctl -q -u gazelle-sync.service -n 20 --no-pager)"
status=$(cat "/proc/$pid/status")
assert_eq 1 "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")" "2. running task: NoNewPrivs 1"
assert_eq 2 "$(awk '/^Seccomp:/ {print $2}' <<<"$status")" "2. running task: Seccomp 2 (filter)"
assert_eq 0000000000000000 "$(awk '/^CapEff:/ {print $2}' <<<"$status")" "2. running task: CapEff 0"
try_write() { nsenter --target "$pid" --mount --setuid "$gz_uid" --setgid "$gz_gid" -- sh -c "touch '$1/.gs-probe' && rm -f '$1/.gs-probe'" 2>/dev/null; }
for d in /etc /usr /home /root /var/lib /opt "$ETC"; do
    if try_write "$d"; then fail "2. the task can write to $d"; fi
done
ok "2. in the task's view /etc /usr /home /root /var/lib /opt $ETC are not writable"
try_write "$STATE" || fail "2. the task cannot write its state directory"
try_write /tmp || fail "2. the task cannot write its private /tmp"
try_write /srv/gs-extra || fail "2. the path opened by ReadWritePaths= is not writable"
if try_write /srv; then fail "2. the task can write to /srv"; fi
ok "2. the state directory, the private /tmp and the ReadWritePaths= path are writable (not /srv around it)"
# The kernel's NoNewPrivs is also forced by SystemCallFilter= for a non-root unit: check that the
# unit asks for it too, so that dropping the line cannot go unnoticed.
for u in "${TASK_UNITS[@]}" gazelle-schedulerd.service; do
    assert_eq "yes yes strict" "$(systemctl show -p NoNewPrivileges --value "$u") $(systemctl show -p ProtectHome --value "$u") $(systemctl show -p ProtectSystem --value "$u")" \
        "2. $u: NoNewPrivileges=yes ProtectHome=yes ProtectSystem=strict"
done
score() { sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'; }
for u in "${TASK_UNITS[@]}" gazelle-schedulerd.service; do
    f=/usr/lib/systemd/system/$u
    live=$(systemd-analyze security --no-pager "$u" 2>&1 | score)
    off=$(systemd-analyze security --no-pager --offline=yes "$f" 2>&1 | score)
    [ -n "$live" ] || fail "2. no live score for $u"
    assert_eq "$off" "$live" "2. $u: live exposure $live = offline"
done

# 3: the secrets
creds=/proc/$pid/root/run/credentials/gazelle-sync.service
assert_eq "$API_KEY" "$(cat "$creds/gazelle-api-key")" "3. gazelle-api-key reaches the task as a credential"
secrets=("$API_KEY")
[ "$GS_STORE" = postgresql ] && secrets+=("$DB_PASSWORD")
leak_check() {
    local where=$1 text=$2 s
    for s in "${secrets[@]}"; do grep -qF "$s" <<<"$text" && fail "3. a secret is in $where"; done
    return 0
}
leak_check "systemctl show" "$(systemctl show gazelle-sync.service gazelle-backup.service gazelle-schedulerd.service)"
leak_check "/proc/$pid/environ" "$(tr '\0' '\n' <"/proc/$pid/environ")"
ok "3. no secret in systemctl show nor in the task's environment"

# ============================================================================ 6 (release the sync: it fails)
touch "$work/gazelle.release"
wait_for "the sync to fail" 60 unit_settled gazelle-sync.service || fail "sync still $(unit_state gazelle-sync.service)"
assert_eq failed "$(unit_state gazelle-sync.service)" "6. the sync failed (Gazelle closed the connection)"
eml() { find "$STATE/outbox" -name '*.eml' 2>/dev/null | wc -l; }
has_eml() { [ "$(eml)" -ge 1 ]; }
wait_for "the failure mail in the outbox" 60 has_eml || fail "6. no mail in $STATE/outbox: $(journalctl -q -u 'gazelle-notify-failure@*' -n 20 --no-pager)"
wait_for "notify-failure to settle" 30 unit_settled gazelle-notify-failure@gazelle-sync.service.service || true
sleep 2   # a loop would start it again within this time
nf=gazelle-notify-failure@gazelle-sync.service.service
starts=$(journalctl -q --no-pager -o cat -u "$nf" | grep -c "^Starting $nf" || true)
assert_eq 1 "$starts" "6. gazelle-notify-failure@gazelle-sync.service started once ($(journalctl -q --no-pager -o cat -u "$nf" | tr '\n' ' ' | cut -c1-300))"
assert_eq 1 "$(eml)" "6. one mail in the outbox"
grep -q 'admin@piano-tek.test' "$(find "$STATE/outbox" -name '*.eml' | head -n 1)" || fail "6. the mail is not addressed to mail.admin_email"
ok "6. the mail goes to mail.admin_email"
leak_check "the journal" "$(journalctl -q --no-pager -o export)"
ok "3. no secret anywhere in the journal"

# ============================================================================ 4
call() { busctl --timeout=30 call "$BUS" "$OBJ" "$BUS" "$@"; }
run_id_of() { sed -E 's/^s "(.*)"$/\1/' <<<"$1"; }
status_is() { [ "$(q1 "SELECT status FROM scheduler_logs WHERE id='$1'")" = "$2" ]; }
D=gazelle-schedulerd.service
wait_for "the daemon to exit when idle" 30 unit_settled $D || fail "4. $D still $(unit_state $D)"
mon=$work/monitor.txt
timeout 120 busctl --match "type='signal',interface='$BUS'" monitor >"$mon" 2>&1 &
mon_pid=$!
mon_ready() { [ -s "$mon" ]; }
wait_for "busctl monitor" 10 mon_ready || fail "busctl monitor printed nothing"
out=$(call RunTask ss backup root@piano-tek.test) || fail "4. RunTask by root: $out"
id=$(run_id_of "$out")
ok "4. RunTask by root bus-activated $D: run $id"
wait_for "run $id" 60 status_is "$id" success || fail "4. run $id: $(q "SELECT status,message FROM scheduler_logs WHERE id='$id'")"
ok "4. run $id (root) succeeded"
sig() { grep -q "Member=$1" "$mon" && grep -q "$id" "$mon"; }
{ wait_for "TaskStarted" 10 sig TaskStarted && wait_for "TaskFinished" 10 sig TaskFinished; } || fail "4. signals missing: $(cat "$mon")"
ok "4. TaskStarted and TaskFinished for $id on the system bus"
wait_for "the backup unit to settle" 30 unit_settled gazelle-backup.service || true
out=$(as gs-admin busctl --timeout=30 call "$BUS" "$OBJ" "$BUS" RunTask ss backup admin@piano-tek.test 2>&1) || fail "4. RunTask by a gazelle-admin member: $out"
id=$(run_id_of "$out")
wait_for "run $id" 60 status_is "$id" success || fail "4. run $id: $(q "SELECT status,message FROM scheduler_logs WHERE id='$id'")"
ok "4. RunTask by gs-admin (gazelle-admin) started run $id, success"
out=$(as gs-other busctl --timeout=30 call "$BUS" "$OBJ" "$BUS" RunTask ss backup x@piano-tek.test 2>&1) && fail "4. gs-other may call RunTask: $out"
grep -qi 'access denied\|AccessDenied' <<<"$out" || fail "4. gs-other: expected AccessDenied, got: $out"
other_uid=$(id -u gs-other)
bus_refusal() { journalctl -q --no-pager -o cat -u dbus.service | grep 'Rejected send message' | grep "uid=$other_uid " | grep -q 'member="RunTask"'; }
wait_for "the bus's refusal in the journal" 10 bus_refusal || fail "4. the bus policy's refusal of gs-other is not journaled"
ok "4. RunTask by gs-other refused by the bus policy ($out), journaled by dbus-daemon: Rejected send message … uid=$other_uid … member=\"RunTask\""
out=$(as gazelle busctl --timeout=30 call "$BUS" "$OBJ" "$BUS" RunTask ss backup x@piano-tek.test 2>&1) && fail "4. gazelle may call RunTask: $out"
grep -qi 'access denied\|AccessDenied\|denied' <<<"$out" || fail "4. gazelle: expected AccessDenied, got: $out"
refusal() { journalctl -q --no-pager -o cat -t gazelle-schedulerd | grep -q "refused: caller gazelle"; }
wait_for "the daemon's refusal in the journal" 10 refusal || fail "4. the refusal of gazelle's RunTask is not journaled"
ok "4. RunTask by gazelle (not an admin) refused by the daemon, journaled: $(journalctl -q --no-pager -o cat -t gazelle-schedulerd | grep -m1 'refused: caller gazelle')"
out=$(as gs-reader busctl --timeout=30 call "$BUS" "$OBJ" "$BUS" GetLogs u 3 2>&1) || fail "4. GetLogs as gs-reader (gazelle): $out"
grep -q '^aa{sv} [1-9]' <<<"$out" || fail "4. GetLogs as gs-reader returned: ${out:0:200}"
ok "4. GetLogs as a member of gazelle: ${out:0:60}…"
kill "$mon_pid" 2>/dev/null || true
wait_for "the daemon's idle exit" 30 unit_settled $D || fail "4. $D did not exit when idle"
ok "4. $D exited when idle ($(unit_state $D))"
out=$(as gs-reader busctl --timeout=30 call "$BUS" "$OBJ" "$BUS" ListTasks 2>&1) || fail "4. ListTasks after the idle exit: $out"
unit_active $D || fail "4. $D not re-activated"
ok "4. the next call bus-activated it again"

# ============================================================================ 5
sysctl_as() { as gazelle timeout 30 systemctl --no-ask-password "$@" 2>&1; }
printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' >/etc/systemd/system/gs-other.service
systemctl daemon-reload
for u in "${TASK_UNITS[@]}"; do
    systemctl mask --runtime -q "$u"   # allowed or not, nothing runs: a masked start fails after polkit
    out=$(sysctl_as start "$u") && fail "5. masked $u started?"
    grep -qi 'masked' <<<"$out" || fail "5. gazelle may not start $u: $out"
    systemctl unmask --runtime -q "$u"
done
systemctl mask --runtime -q gazelle-backup.service
out=$(as gs-admin timeout 30 systemctl --no-ask-password start gazelle-backup.service 2>&1) && fail "5. gs-admin started a masked unit?"
grep -qi 'authentication required' <<<"$out" || fail "5. polkit is not asked before the mask is seen: $out"
systemctl unmask --runtime -q gazelle-backup.service
ok "5. gazelle may start each of the four task units (polkit lets it through, systemd then says masked; for gs-admin polkit says no first)"
for verb in stop restart; do
    out=$(sysctl_as "$verb" gazelle-backup.service) && fail "5. gazelle may $verb gazelle-backup.service"
    grep -qi 'authentication required\|access denied' <<<"$out" || fail "5. $verb gazelle-backup.service: $out"
done
ok "5. gazelle may not stop or restart a task unit"
for verb in start stop restart; do
    for u in gs-other.service dbus.service gazelle-schedulerd.service gazelle-backup.timer; do
        out=$(sysctl_as "$verb" "$u") && fail "5. gazelle may $verb $u"
        grep -qi 'authentication required\|access denied' <<<"$out" || fail "5. $verb $u: $out"
    done
done
ok "5. gazelle may not start, stop or restart other units (gs-other, dbus, the daemon, a timer)"
out=$(as gs-admin timeout 30 systemctl --no-ask-password start gazelle-backup.service 2>&1) && fail "5. gs-admin may start a unit directly"
ok "5. another user (gs-admin) may not start a task unit through systemd directly"

# ============================================================================ 8
rows_before=$(q1 "SELECT count(*) FROM scheduler_logs")
ninja -C "$GS_PROD_BUILD" uninstall >"$work/uninstall.log" 2>&1 || fail "ninja uninstall: $(tail -n 10 "$work/uninstall.log")"
systemctl daemon-reload
for f in /usr/lib/systemd/system/gazelle-backup.service /usr/lib/systemd/system/gazelle-backup.timer \
         /usr/share/dbus-1/system-services/$BUS.service /usr/share/dbus-1/system.d/$BUS.conf \
         /usr/share/polkit-1/rules.d/gazelle-scheduler.rules; do
    [ ! -e "$f" ] || fail "8. $f still there after uninstall"
done
assert_eq not-found "$(systemctl show -p LoadState --value gazelle-backup.service)" "8. units gone after uninstall + daemon-reload"
{ [ -d "$STATE" ] && ls "$STATE"/backups/db_backup_*.sqlite >/dev/null; } || fail "8. state or backups removed"
[ "$GS_STORE" = postgresql ] || [ -f "$STATE/gazelle-scheduler.sqlite" ] || fail "8. the SQLite store was removed"
assert_eq "$rows_before" "$(q1 "SELECT count(*) FROM scheduler_logs")" "8. state kept: $STATE, the backups and the history ($rows_before runs)"
