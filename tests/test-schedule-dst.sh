#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The schedule runs every task exactly once per America/Montreal calendar day,
# DST days included, from 2026-01-01 to 2035-12-31:
#  1. every OnCalendar= of the four generated timers is expanded with
#     systemd-analyze calendar, and every task has at least one trigger on
#     every Montréal day (02:00 does not exist on spring-forward Sundays: the
#     report's second trigger covers them);
#  2. every trigger instant goes through `gazelle-scheduler slot TASK`, which
#     must map it to the Montréal day it fires on, so that triggers sharing a
#     day share one slot key and the should-run guard allows one successful
#     run a day; each day's slot boundary is checked too (slot time -> that
#     day, one microsecond earlier -> the day before; a nonexistent slot time
#     normalizes forward).
#
# Speed: systemd 252 computes each iteration of a calendar spec that names a
# time zone in a forked child (2.5-9 ms each: 9-30 s for ten years). The ten
# years are therefore expanded with the zone taken from TZ= instead (the same
# computation without the fork: 50 ms), and the exact expression of the unit
# file is expanded over a few days around the 2026 DST changes, where it must
# give the same instants.
#
# Environment: GS_BUILD_DIR (meson build root), GS_SOURCE_DIR (source root),
# optional GS_SCHEDULER (the gazelle-scheduler binary; default: the one the
# test units run). Exit 0 pass, 1 fail, 77 skip (systemd-analyze or python3
# missing).
set -uo pipefail

: "${GS_BUILD_DIR:?GS_BUILD_DIR must be the meson build root}"
for tool in systemd-analyze python3; do
        if ! command -v "$tool" >/dev/null 2>&1; then
                echo "SKIP: $tool is not installed"
                exit 77
        fi
done
if [ -z "${GS_SCHEDULER:-}" ]; then
        GS_SCHEDULER=$(sed -n 's|^ExecStart=\(/[^ ]*/gazelle-scheduler\) .*|\1|p' \
                "$GS_BUILD_DIR/units/test/gazelle-sync.service" 2>/dev/null)
fi
export GS_BUILD_DIR GS_SCHEDULER LC_ALL=C.UTF-8

exec python3 - <<'PY'
import collections, datetime as dt, os, re, subprocess, sys
from zoneinfo import ZoneInfo

TZNAME = "America/Montreal"
TZ = ZoneInfo(TZNAME)
UTC = dt.timezone.utc
FIRST, LAST = dt.date(2026, 1, 1), dt.date(2035, 12, 31)
BASE = "2025-12-31 00:00:00 UTC"
ITERATIONS = (LAST - FIRST).days + 40          # a trigger a day, and margin
# Exact-expression cross-check windows: (base time, iterations), around the
# 2026 spring-forward (03-08) and fall-back (11-01) Sundays.
SAMPLES = [(dt.datetime(2026, 3, 5, tzinfo=UTC), 8), (dt.datetime(2026, 10, 29, tzinfo=UTC), 8)]
# timer -> (task, slot time); the slot is the timer's first OnCalendar=.
TIMERS = {
    "gazelle-sync.timer": ("sync_gazelle", dt.time(1, 0)),
    "gazelle-report.timer": ("rapport_timeline", dt.time(2, 0)),
    "gazelle-backup.timer": ("backup", dt.time(3, 0)),
    "gazelle-alerts.timer": ("rv_alerts", dt.time(16, 0)),
}
units = os.path.join(os.environ["GS_BUILD_DIR"], "units", "system")
scheduler = os.environ.get("GS_SCHEDULER", "")
failures = []

def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)

def expand(spec, iterations, tz_env, base=BASE):
    """Start systemd-analyze calendar; parse() collects the UTC instants."""
    env = dict(os.environ, TZ=tz_env)
    return subprocess.Popen(
        ["systemd-analyze", "calendar", f"--iterations={iterations}", f"--base-time={base}", spec],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def parse(proc, what):
    out, err = proc.communicate()
    if proc.returncode != 0:
        fail(f"systemd-analyze calendar {what}: rc={proc.returncode}: {err.strip()}")
        return []
    # Every iteration prints one line in UTC: "... 2026-01-01 07:00:00 UTC"
    # (TZ=UTC prints only that; another TZ adds a local line before it).
    found = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$", out, re.M)
    return [dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for s in found]

# --- expand every OnCalendar= ---------------------------------------------------
calendars = {}
for timer in TIMERS:
    path = os.path.join(units, timer)
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        fail(f"{path}: {e}")
        continue
    specs = [l.split("=", 1)[1].strip() for l in lines if l.startswith("OnCalendar=")]
    if not specs:
        fail(f"{timer}: no OnCalendar=")
    for s in specs:
        if not s.endswith(" " + TZNAME):
            fail(f"{timer}: OnCalendar={s} does not name {TZNAME}")
    calendars[timer] = specs

jobs = []
for timer, specs in calendars.items():
    for spec in specs:
        local = spec[: -len(TZNAME) - 1] if spec.endswith(" " + TZNAME) else spec
        samples = [(b, expand(spec, n, "UTC", b.strftime("%Y-%m-%d %H:%M:%S UTC"))) for b, n in SAMPLES]
        jobs.append((timer, spec, expand(local, ITERATIONS, TZNAME), samples))

triggers = collections.defaultdict(set)        # task -> UTC instants
for timer, spec, full_p, samples in jobs:
    task = TIMERS[timer][0]
    full = parse(full_p, f"'{spec}' (TZ={TZNAME})")
    if not full:
        continue
    if full[-1].astimezone(TZ).date() <= LAST:
        fail(f"{timer} '{spec}': {ITERATIONS} iterations end at {full[-1]}, before {LAST}")
    checked = 0
    for base, p in samples:
        exact = parse(p, f"'{spec}' --base-time={base}")
        after = [t for t in full if t > base][: len(exact)]
        if not exact or exact != after:
            fail(f"{timer} '{spec}' after {base}: {[str(t) for t in exact]} with the zone in the spec, "
                 f"{[str(t) for t in after]} with TZ={TZNAME}")
        checked += len(exact)
    in_range = [t for t in full if FIRST <= t.astimezone(TZ).date() <= LAST]
    triggers[task].update(in_range)
    print(f"ok: {timer} OnCalendar={spec}: {len(in_range)} triggers; "
          f"{checked} around the DST changes equal with the zone in the spec")

# --- 1. a trigger on every Montréal day -----------------------------------------
days = [FIRST + dt.timedelta(d) for d in range((LAST - FIRST).days + 1)]

def offset_changes(day):
    a = dt.datetime.combine(day, dt.time(0), TZ).utcoffset()
    b = dt.datetime.combine(day + dt.timedelta(1), dt.time(0), TZ).utcoffset()
    return a != b

dst_days = [d for d in days if offset_changes(d)]
print(f"{len(days)} days, {len(dst_days)} DST days: {', '.join(map(str, dst_days[:4]))}, …")
if dt.date(2026, 3, 8) not in dst_days or dt.date(2026, 11, 1) not in dst_days:
    fail("zoneinfo does not know the 2026 DST days (tzdata?)")

by_day = {}
for timer, (task, slot) in TIMERS.items():
    per_day = collections.defaultdict(list)
    for t in sorted(triggers[task]):
        per_day[t.astimezone(TZ).date()].append(t)
    by_day[task] = per_day
    missing = [d for d in days if d not in per_day]
    if missing:
        fail(f"{task}: no trigger on {len(missing)} Montréal days: {', '.join(map(str, missing[:10]))}")
    else:
        dst_note = "; ".join(
            f"{d}: " + ",".join(t.astimezone(TZ).strftime("%H:%M%Z") for t in per_day[d])
            for d in dst_days[:2])
        print(f"ok: {task}: at least one trigger on each of the {len(days)} days ({dst_note})")

# --- 2. slot keys ---------------------------------------------------------------
def usec(t):
    return (t - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)

def slot_instant(day, slot):
    # fold=0: a nonexistent local time (spring forward) takes the offset
    # before the change, i.e. normalizes forward (02:00 EST = 03:00 EDT); an
    # ambiguous one (fall back) is its first occurrence, the one systemd fires.
    return dt.datetime.combine(day, slot, TZ).astimezone(UTC)

if not scheduler or not os.access(scheduler, os.X_OK):
    fail(f"gazelle-scheduler not found ({scheduler or 'GS_SCHEDULER unset and no units/test'}): "
         "cannot check slot keys")
else:
    for timer, (task, slot) in TIMERS.items():
        expect = {}                              # usec -> expected slot day
        for day, ts in by_day[task].items():
            for t in ts:
                expect[usec(t)] = day
        for day in days:
            s = slot_instant(day, slot)
            expect.setdefault(usec(s), day)
            expect.setdefault(usec(s) - 1, day - dt.timedelta(1))
        stdin = "".join(f"{u}\n" for u in sorted(expect))
        p = subprocess.run([scheduler, "slot", task], input=stdin, capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"{scheduler} slot {task}: rc={p.returncode}: {p.stderr.strip()[:300]}")
            continue
        got = {}
        for line in p.stdout.splitlines():
            m = re.fullmatch(r"(-?\d+) (\d{4}-\d\d-\d\d)", line.strip())
            if not m:
                fail(f"slot {task}: unexpected output line {line!r}")
                break
            got[int(m.group(1))] = dt.date.fromisoformat(m.group(2))
        if set(got) != set(expect):
            fail(f"slot {task}: {len(expect)} instants in, {len(got)} distinct out")
            continue
        wrong = [(u, expect[u], got[u]) for u in sorted(expect) if got[u] != expect[u]]
        for u, want, have in wrong[:10]:
            t = dt.datetime.fromtimestamp(u / 1e6, TZ)
            fail(f"slot {task}: {u} ({t.isoformat()}) -> {have}, expected {want}")
        # Triggers sharing a Montréal day share one key (one successful run a day).
        shared = 0
        for day, ts in by_day[task].items():
            keys = {got[usec(t)] for t in ts}
            if len(keys) != 1:
                fail(f"slot {task}: the triggers of {day} have keys {sorted(map(str, keys))}")
            shared += len(ts) > 1
        if not wrong:
            print(f"ok: slot {task}: {sum(map(len, by_day[task].values()))} triggers map to the day they fire on "
                  f"({shared} days with two triggers share one key); {len(days)} slot boundaries right")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("schedule covers every America/Montreal day once per task")
PY
