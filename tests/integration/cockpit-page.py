#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The browser half of test-cockpit.sh: headless chromium (tests/cdp.py) on the page that
cockpit-ws serves, inside the sandbox test-cockpit.sh prepared (units installed, history
seeded, GAZELLE_IDLE_EXIT_SEC=2). Prints TAP-like "ok -" lines; exits 1 at the first failure.

States and their screenshots (--artifacts):
  01-history.png            the seeded history, every status and trigger, 1280 px
  02-click-running.png      after "Lancer maintenant" on Backup SQL: ⏳ row, card busy, STATUS= text
  03-click-finished.png     the same run finished, without a reload
  04-systemctl-running.png  a run started by `systemctl --user start` while the page is open
  05-systemctl-finished.png its result
  06-details.png            a row opened with the keyboard: stats table and the run's journal lines
  10-error-already-running  "Lancer maintenant" while a terminal runs the backup
  11-error-store.png        the daemon's store is down (PostgreSQL refusing connections)
  12-error-unreachable.png  no daemon to activate
  07-narrow-360.png         360 px wide, dark look: the cards
  08-narrow-360-history.png the same, scrolled to the history (rows as labelled blocks)
  09-wide-1920.png          1920 px wide, light look
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cdp import Browser, CDPError  # noqa: E402

BUS = "com.piano_tek.GazelleScheduler1"
DAEMON = "gazelle-schedulerd.service"
BACKUP_UNIT = "gazelle-backup.service"
FINISH_BUDGET_MS = 3000   # the result must show < 3 s after the unit ended

STATUS = {"success": "✅ Succès", "warning": "⚠️ Avertissement", "error": "❌ Erreur",
          "running": "⏳ En cours", "skipped": "⏭️ Ignorée"}
TRIGGER = {"scheduler": "⏰ Auto", "manual": "👤 Manuel", "cli": "💻 CLI", "api": "🔌 API"}


def ok(msg):
    print(f"ok - {msg}", flush=True)


CURRENT = {}   # the open page and where to put a screenshot of a failure


def fail(msg):
    page = CURRENT.get("page")
    if page:
        try:
            path = page.screenshot(os.path.join(CURRENT["artifacts"], "99-failure.png"))
            state = page.evaluate("({banner: document.getElementById('banner').textContent,"
                                  " connection: document.getElementById('connection').textContent})")
            msg += f"\n  page: {state}\n  problems: {page.problems}\n  screenshot: {path}"
        except Exception as e:  # noqa: BLE001 - the failure itself is what matters
            msg += f"\n  (no screenshot: {e})"
    print(f"not ok - {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def unit_prop(unit, prop):
    return run("systemctl", "--user", "show", "-p", prop, "--value", unit)


def unit_usec(unit, prop):
    path = "/org/freedesktop/systemd1/unit/" + "".join(
        c if c.isalnum() else f"_{ord(c):02x}" for c in unit)
    out = run("busctl", "--user", "get-property", "org.freedesktop.systemd1", path,
              "org.freedesktop.systemd1.Unit", prop)
    return int(out.split()[1])


def get_logs(limit=20):
    out = run("busctl", "--user", "--json=short", "call", BUS, "/com/piano_tek/GazelleScheduler1", BUS,
              "GetLogs", "u", str(limit))
    return [{k: v["data"] for k, v in row.items()} for row in json.loads(out)["data"][0]]


def wait_until(what, timeout, predicate, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Lock:
    """An EXCLUSIVE lock on a rollback-journal SQLite file: a backup of it waits (SQLITE_BUSY)
    until release(), which keeps a real Backup SQL run "running" for as long as we want."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        db = sqlite3.connect(path)
        db.executescript("PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        db.close()
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("BEGIN EXCLUSIVE")
        self.db.execute("INSERT INTO t VALUES (2)")

    def release(self):
        self.db.execute("COMMIT")
        self.db.close()


ROWS_JS = """[...document.querySelectorAll('#runs tr.run')].map(tr => ({
    id: tr.dataset.runId, status: tr.dataset.status,
    cells: [...tr.cells].map(td => td.textContent.trim())}))"""

# Records when each (run, status) first appeared in the table, in the page's clock (epoch ms).
OBSERVER_JS = """(() => {
    window.__gsMarker = "no reload";
    window.__gsSeen = {};
    const note = () => {
        for (const tr of document.querySelectorAll('#runs tr.run')) {
            const key = tr.dataset.runId + ':' + tr.dataset.status;
            if (!(key in window.__gsSeen)) window.__gsSeen[key] = Date.now();
        }
    };
    note();
    new MutationObserver(note).observe(document.getElementById('runs'), {childList: true, subtree: true, attributes: true});
    return true;
})()"""


def check_history(page):
    logs = get_logs(20)
    rows = page.wait(f"(() => {{ const r = {ROWS_JS}; return r.length >= {len(logs)} ? r : null; }})()", timeout=15)
    if [r["id"] for r in rows] != [log["id"] for log in logs]:
        fail(f"page rows {[r['id'] for r in rows]} != GetLogs {[log['id'] for log in logs]}")
    for row, log in zip(rows, logs):
        status, trigger = row["cells"][2], row["cells"][5]
        if status != STATUS[log["status"]]:
            fail(f"run {log['id']}: status cell {status!r}, want {STATUS[log['status']]!r}")
        if not trigger.startswith(TRIGGER[log["triggered_by"]]):
            fail(f"run {log['id']}: trigger cell {trigger!r}, want {TRIGGER[log['triggered_by']]}…")
        if log.get("triggered_by_name") and f"({log['triggered_by_name']}" not in trigger:
            fail(f"run {log['id']}: trigger cell {trigger!r} lacks the display name {log['triggered_by_name']}")
        caller = log.get("caller_name")
        if caller and log["triggered_by"] != "scheduler" and caller not in trigger:
            fail(f"run {log['id']}: trigger cell {trigger!r} lacks the real caller {caller}")
        if log.get("triggered_by_user", "").count("@") and log["triggered_by_user"] in " ".join(row["cells"]):
            fail(f"run {log['id']}: the address {log['triggered_by_user']} is shown instead of the name")
        if row["cells"][1] != log["task_label"] or row["cells"][4] != log.get("message", ""):
            fail(f"run {log['id']}: task/message cells {row['cells'][1]!r}/{row['cells'][4]!r}")
    seen = {r["cells"][2] for r in rows}
    want = {STATUS[s] for s in ("success", "warning", "error", "skipped")}
    if not want <= seen:
        fail(f"statuses shown {seen}, want at least {want}")
    if not any("👤 Manuel (Nick, par marie)" == r["cells"][5] for r in rows):
        fail("no row shows 👤 Manuel (Nick, par marie) for the technician's address sent by marie")
    if not any("💻 CLI (root)" == r["cells"][5] for r in rows):
        fail("no row shows 💻 CLI (root) for a terminal's run by root")
    ok(f"the page shows GetLogs' {len(logs)} runs in order, with ✅ ⚠️ ❌ ⏭️, ⏰ 👤 💻 🔌, "
       "👤 Manuel (Nick, par marie) and 💻 CLI (root)")


def new_running_backup(page, known):
    rows = page.evaluate(ROWS_JS)
    for r in rows:
        if r["id"] not in known and r["status"] == "running" and r["cells"][1] == "Backup SQL":
            return r
    return None


def live_run(page, args, start, name, shots):
    """start() begins a Backup SQL run held by a lock; the page must show it ⏳, then its result
    < 3 s after the unit ended, without a reload."""
    known = {r["id"] for r in page.evaluate(ROWS_JS)}
    lock = Lock(os.path.join(args.scratch, "held.sqlite"))
    try:
        t0 = time.monotonic()
        start()
        row = wait_until(f"a ⏳ Backup SQL row ({name})", 10, lambda: new_running_backup(page, known))
        ok(f"{name}: ⏳ row {row['id']} after {time.monotonic() - t0:.2f} s ({row['cells'][5]})")
        page.wait("document.querySelector('button.run[data-task=backup]').disabled", timeout=5)
        page.wait("(document.querySelector('li.card[data-task=backup] .progress') || {}).textContent", timeout=5)
        progress = page.evaluate("document.querySelector('li.card[data-task=backup] .progress').textContent")
        ok(f"{name}: Backup SQL card busy, button disabled, live STATUS= text {progress!r}")
        page.screenshot(os.path.join(args.artifacts, shots[0]))
    finally:
        lock.release()
    final = wait_until(f"the result of {row['id']}", 20, lambda: page.evaluate(
        f"(() => {{ const tr = document.querySelector('tr.run[data-run-id=\"{row['id']}\"]');"
        f" return tr && tr.dataset.status !== 'running' ? tr.dataset.status : null; }})()"))
    if final != "success":
        fail(f"{name}: run {row['id']} ended {final}")
    wait_until(f"{BACKUP_UNIT} inactive", 10, lambda: unit_prop(BACKUP_UNIT, "ActiveState") in ("inactive", "failed"))
    ended_ms = unit_usec(BACKUP_UNIT, "InactiveEnterTimestamp") / 1000
    shown_ms = page.evaluate(f"window.__gsSeen['{row['id']}:success']")
    delay = shown_ms - ended_ms
    if page.evaluate("window.__gsMarker") != "no reload":
        fail(f"{name}: the page was reloaded")
    if delay > FINISH_BUDGET_MS:
        fail(f"{name}: ✅ shown {delay:.0f} ms after {BACKUP_UNIT} ended (budget {FINISH_BUDGET_MS} ms)")
    page.wait("!document.querySelector('button.run[data-task=backup]').disabled", timeout=5)
    ok(f"{name}: ✅ Succès shown {delay:.0f} ms after the unit ended, no reload, button enabled again")
    page.screenshot(os.path.join(args.artifacts, shots[1]))
    return row["id"], delay


def set_filter(page, task):
    """Picks a task in the filter as a person does: focus the <select>, choose, change event."""
    page.evaluate(f"(() => {{ const s = document.getElementById('task-filter'); s.focus(); s.value = '{task}';"
                  " s.dispatchEvent(new Event('change', {bubbles: true})); })()")


def check_filter(page):
    set_filter(page, "backup")
    want = [r["id"] for r in get_logs(200) if r["task_name"] == "backup"][:20]
    rows = page.wait(f"(() => {{ const r = {ROWS_JS}; return r.length === {len(want)} && "
                     "r.every(x => x.cells[1] === 'Backup SQL') ? r : null; })()", timeout=10)
    if [r["id"] for r in rows] != want:
        fail(f"filter backup: rows {[r['id'] for r in rows]}, want {want}")
    set_filter(page, "")
    page.wait(f"{ROWS_JS}.some(r => r.cells[1] !== 'Backup SQL')", timeout=10)
    ok(f"task filter: Backup SQL shows its {len(want)} runs only (GetTaskLogs), then all tasks again")


def banner(page):
    return page.evaluate("(b => b.hidden ? '' : b.textContent)(document.getElementById('banner'))")


def check_errors(page, args, shot):
    """The French errors a person meets: already running, store unavailable, service unreachable."""
    held = os.path.join(args.scratch, "held.sqlite")
    lock = Lock(held)
    cli = subprocess.Popen(["gazelle-scheduler", "--user", "run", "backup"],
                           env=dict(os.environ, BACKUP_SQLITE_PATH=held),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # A run from a terminal: no unit, no signal; the page does not know yet, the daemon does.
        wait_until("the CLI run's row", 10, lambda: get_logs(1)[0]["triggered_by"] == "cli"
                   and get_logs(1)[0]["status"] == "running")
        page.click("button.run[data-task=backup]")
        text = page.wait("(document.querySelector('li.card[data-task=backup] .card-error') || {}).textContent", 10)
        if not text.startswith("« Backup SQL » est déjà en cours"):
            fail(f"already running: card says {text!r}")
        # The refresh after the refusal learns from the daemon that the task runs (its lock).
        page.wait("document.querySelector('button.run[data-task=backup]').disabled", timeout=10)
        ok(f"already running (a CLI run): {text!r}; then the button is disabled")
        page.screenshot(shot("10-error-already-running.png"))
    finally:
        lock.release()
    if cli.wait(30) != 0:
        fail(f"the CLI backup run failed ({cli.returncode})")

    run("systemctl", "--user", "set-environment", "DATABASE_URL=postgresql://gazelle@127.0.0.1:1/gazelle")
    run("systemctl", "--user", "stop", DAEMON)
    set_filter(page, "")   # any refresh: the next call activates a daemon whose store is down
    text = wait_until("the store banner", 15, lambda: "indisponible" in banner(page) and banner(page))
    if not text.startswith("Base de données indisponible :"):
        fail(f"store unavailable: banner says {text!r}")
    ok(f"store unavailable: {text!r}")
    page.screenshot(shot("11-error-store.png"))

    services = os.path.join(os.environ["XDG_DATA_HOME"], "dbus-1", "services")
    activation = os.path.join(services, BUS + ".service")
    os.rename(activation, activation + ".off")
    reload_bus = ("busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                  "org.freedesktop.DBus", "ReloadConfig")
    run(*reload_bus)
    run("systemctl", "--user", "stop", DAEMON)
    set_filter(page, "")
    text = wait_until("the unreachable banner", 15, lambda: "injoignable" in banner(page) and banner(page))
    ok(f"service unreachable: {text!r}")
    page.screenshot(shot("12-error-unreachable.png"))

    os.rename(activation + ".off", activation)
    run(*reload_bus)
    run("systemctl", "--user", "unset-environment", "DATABASE_URL")
    set_filter(page, "")
    page.wait("document.getElementById('banner').hidden && document.querySelectorAll('#runs tr.run').length > 0", 15)
    ok("service back: the banner goes, the history returns")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--state", required=True)
    args = ap.parse_args()
    args.scratch = os.environ.get("SBX_DIR", "/tmp")
    shot = lambda name: os.path.join(args.artifacts, name)  # noqa: E731

    run("systemctl", "--user", "set-environment", f"BACKUP_SQLITE_PATH={os.path.join(args.scratch, 'held.sqlite')}")
    t0 = time.monotonic()
    with Browser() as browser:
        try:
            scenario(browser, args, shot, t0)
        except CDPError as e:
            fail(str(e))


def scenario(browser, args, shot, t0):
    if True:
        ok(f"chromium up in {browser.startup_seconds:.2f} s")
        page = browser.open(args.url, width=1280, height=900)
        CURRENT.update(page=page, artifacts=args.artifacts)
        page.wait("document.querySelectorAll('#tasks li.card').length === 4", timeout=15)
        ok(f"page ready in {time.monotonic() - t0:.2f} s from chromium start: 4 task cards")
        page.evaluate(OBSERVER_JS)
        check_history(page)
        cards = page.evaluate("[...document.querySelectorAll('#tasks li.card')].map(li => li.textContent)")
        for label, schedule in (("Sync Gazelle Totale", "tous les jours à 01:00"),
                                ("Backup SQL", "tous les jours à 03:00")):
            if not any(label in c and schedule in c for c in cards):
                fail(f"no card with {label} / {schedule}: {cards}")
        if not any("Sync Gazelle Totale" in c and "plus de 26 h" in c for c in cards):
            fail("the sync card (last success 30 h ago) lacks the 26 h warning")
        ok("cards: label, schedule, next run, last run, last success with the 26 h warning")
        page.screenshot(shot("01-history.png"))

        delays = []
        _, d = live_run(page, args, lambda: page.click("button.run[data-task=backup]"), "click on Lancer maintenant",
                        ("02-click-running.png", "03-click-finished.png"))
        delays.append(d)
        _, d = live_run(page, args, lambda: run("systemctl", "--user", "start", "--no-block", BACKUP_UNIT),
                        "systemctl --user start", ("04-systemctl-running.png", "05-systemctl-finished.png"))
        delays.append(d)

        # Details with the keyboard alone: focus the newest row's button, Enter opens it.
        newest = page.evaluate("document.querySelector('#runs tr.run').dataset.runId")
        page.evaluate(f"document.querySelector('button[data-run=\"{newest}\"]').focus()")
        page.key("Enter")
        page.wait(f"document.querySelector('button[data-run=\"{newest}\"]').getAttribute('aria-expanded') === 'true'", 5)
        journal = page.wait("(() => { const p = document.querySelector('tr.details pre.journal');"
                            " return p && /Backup SQL/.test(p.textContent) ? p.textContent : null; })()", timeout=10)
        stats = page.evaluate("[...document.querySelectorAll('tr.details table.stats tbody th')].map(th => th.textContent)")
        if "bytes" not in stats:
            fail(f"details: stats table without 'bytes': {stats}")
        ok(f"details opened with Enter: stats table ({', '.join(stats[:4])}…), "
           f"{len(journal.splitlines())} journal lines of GAZELLE_RUN_ID={newest}")
        page.screenshot(shot("06-details.png"))

        check_filter(page)
        check_errors(page, args, shot)
        daemon_pid = unit_prop(DAEMON, "MainPID")
        if unit_prop(DAEMON, "ActiveState") != "active" or daemon_pid == "0":
            fail(f"{DAEMON} is not running while the page is open")
        time.sleep(3.5)   # > GAZELLE_IDLE_EXIT_SEC=2 with no call: only the subscription keeps it
        if unit_prop(DAEMON, "ActiveState") != "active" or unit_prop(DAEMON, "MainPID") != daemon_pid:
            fail(f"{DAEMON} exited while the page was open (idle exit 2 s)")
        ok(f"{DAEMON} (pid {daemon_pid}, restarted during the error checks) stays up with the page open, "
           "3.5 s idle > GAZELLE_IDLE_EXIT_SEC=2")

        page.evaluate("localStorage.setItem('shell:style', 'dark');"
                      " window.dispatchEvent(new CustomEvent('cockpit-style', {detail: {style: 'dark'}}))")
        page.viewport(360, 800)
        page.wait("document.documentElement.classList.contains('pf-theme-dark')", timeout=5)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 360:
            wide = page.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 360)"
                                 ".slice(-5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))")
            fail(f"360 px: the page is {width} px wide (horizontal scrolling), widest: {wide}")
        ok("360 px wide, dark look: no horizontal scrolling")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(shot("07-narrow-360.png"), full_page=False)
        page.evaluate("document.querySelector('#runs tr.run').scrollIntoView()")
        page.screenshot(shot("08-narrow-360-history.png"), full_page=False)
        page.evaluate("localStorage.setItem('shell:style', 'light');"
                      " window.dispatchEvent(new CustomEvent('cockpit-style', {detail: {style: 'light'}}))")
        page.viewport(1920, 1080)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(shot("09-wide-1920.png"))

        if page.problems:
            fail("console errors or failed requests: " + "; ".join(page.problems))
        ok("no JavaScript error, console error or failed request")

        daemon_pid = unit_prop(DAEMON, "MainPID")
        page.close()
        CURRENT.clear()
        t_close = time.monotonic()
        wait_until(f"{DAEMON} to exit after the page closed", 20,
                   lambda: unit_prop(DAEMON, "ActiveState") in ("inactive", "failed"))
        bridge = subprocess.run(["pgrep", "-x", "cockpit-bridge"], capture_output=True, text=True).stdout.split()
        if not bridge:
            fail("cockpit-bridge exited with the page: the page's own Unsubscribe() was not what released the daemon")
        ok(f"{DAEMON} (pid {daemon_pid}) exited {time.monotonic() - t_close:.1f} s after the page closed "
           f"(the page unsubscribed on pagehide; its cockpit-bridge, pid {bridge[0]}, still runs)")
        print(f"# timings: result shown {', '.join(f'{d:.0f} ms' for d in delays)} after the unit ended; "
              f"whole browser part {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except CDPError as e:
        fail(str(e))
    except subprocess.CalledProcessError as e:
        fail(f"{' '.join(e.cmd)}: exit {e.returncode}: {e.stderr}")
