#!/bin/bash
# SPDX-License-Identifier: MIT
# The four timers are installed and each one's next elapse is the next slot in America/Montreal
# (computed independently with python3 zoneinfo from the timer's own OnCalendar= lines).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
# shellcheck source=tests/integration/setup.sh
. "$here/setup.sh"

listed=$(systemctl --user list-timers --all --no-pager --no-legend 'gazelle-*')
for t in "${GS_TIMERS[@]}"; do
    grep -q "$t" <<<"$listed" || fail "$t not in list-timers: $listed"
    ok "$t listed by systemctl --user list-timers"
done

# expected HH:MM... - next wall-clock occurrence (unix seconds) of any of the given
# America/Montreal times after now; nonexistent local times (spring forward) are skipped.
expected() {
    python3 - "$@" <<'PY'
import sys, datetime as dt
from zoneinfo import ZoneInfo
tz = ZoneInfo("America/Montreal")
now = dt.datetime.now(dt.timezone.utc)
best = None
for hm in sys.argv[1:]:
    h, m = map(int, hm.split(":")[:2])
    d = now.astimezone(tz).date() - dt.timedelta(days=1)
    for i in range(5):
        day = d + dt.timedelta(days=i)
        c = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=tz)
        back = c.astimezone(dt.timezone.utc).astimezone(tz)
        if (back.hour, back.minute) != (h, m):
            continue                     # does not exist that day
        if c > now:
            best = c if best is None or c < best else best
            break
print(int(best.timestamp()))
PY
}

declare -A want_times=([gazelle-sync.timer]="01:00" [gazelle-report.timer]="02:00" \
                       [gazelle-backup.timer]="03:00" [gazelle-alerts.timer]="16:00")
for t in "${GS_TIMERS[@]}"; do
    # the OnCalendar= lines the manager loaded, e.g. "{ OnCalendar=*-*-* 02:00:00 America/Montreal ; ... }"
    cal=$(systemctl --user show -p TimersCalendar --value "$t")
    mapfile -t times < <(grep -o '\*-\*-\* [0-9][0-9]:[0-9][0-9]:[0-9][0-9] America/Montreal' <<<"$cal" | awk '{print $2}')
    [ "${#times[@]}" -ge 1 ] || fail "$t: no America/Montreal OnCalendar= in '$cal'"
    case " ${times[*]} " in *" ${want_times[$t]}:00 "*) ok "$t: OnCalendar= ${times[*]} America/Montreal";;
                              *) fail "$t: expected ${want_times[$t]} among '${times[*]}'";; esac
    if [ "$t" = gazelle-report.timer ]; then
        case " ${times[*]} " in *" 03:15:00 "*) ok "$t: 03:15 catch-up trigger present";;
                                  *) fail "$t: no 03:15 catch-up trigger in '${times[*]}'";; esac
    fi
    # --timestamp=unix needs systemd >= 253; older ones print "Wed 2026-11-25 06:00:00 UTC"
    got=$(systemctl --user show -p NextElapseUSecRealtime --value --timestamp=unix "$t" 2>/dev/null) \
        || got=$(systemctl --user show -p NextElapseUSecRealtime --value "$t")
    case "$got" in @*) got=${got#@};; *) got=$(date -d "$got" +%s) || fail "$t: cannot parse '$got'";; esac
    exp=$(expected "${times[@]}")
    assert_eq "$exp" "$got" "$t: NextElapseUSecRealtime = next ${times[*]} America/Montreal ($(TZ=America/Montreal date -d "@$exp" '+%F %T %Z'))"
done
