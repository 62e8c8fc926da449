#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The browser half of test-cockpit-system.sh, inside the system-manager box: the installed
system-flavour page, served by one cockpit-ws --local-session per account (USER=URL arguments),
in one headless chromium (tests/cdp.py). Prints "ok -" lines; exits 1 at the first failure.

States and their screenshots (--artifacts):
  system-01-reader-refused.png   gs-reader (group gazelle) clicked "Lancer maintenant" on Backup
                                 SQL: the card says "réservé au groupe gazelle-admin" (bus policy)
  system-02-gazelle-refused.png  the same as the service account gazelle, which the bus lets
                                 through: refused by the daemon itself
  system-03-admin-running.png    gs-admin (group gazelle-admin): the ⏳ row of its run
  system-04-admin-finished.png   the same run ✅ Succès, 🔌 API (gs-admin), without a reload
"""
import argparse
import importlib.util
import os
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from cdp import Browser, CDPError  # noqa: E402

# The user-flavour driver's pieces: the held SQLite file, the row reader, the ⏳/✅ observer.
_spec = importlib.util.spec_from_file_location("cockpit_page", os.path.join(HERE, "cockpit-page.py"))
cockpit_page = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cockpit_page)
Lock, ROWS_JS, OBSERVER_JS = cockpit_page.Lock, cockpit_page.ROWS_JS, cockpit_page.OBSERVER_JS
ok, fail, wait_until, CURRENT = cockpit_page.ok, cockpit_page.fail, cockpit_page.wait_until, cockpit_page.CURRENT

DAEMON = "gazelle-schedulerd.service"
BACKUP_UNIT = "gazelle-backup.service"
REFUSAL = "réservé au groupe gazelle-admin"


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def unit_prop(unit, prop):
    return run("systemctl", "show", "-p", prop, "--value", unit)


def runs_recorded(state):
    path = os.path.join(state, "gazelle-scheduler.sqlite")
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT count(*) FROM scheduler_logs").fetchone()[0]
    finally:
        db.close()


def backup_starts():
    """How many times the system manager started the backup unit (its start jobs in the journal)."""
    out = run("journalctl", "-q", "--no-pager", "-o", "cat", "-u", BACKUP_UNIT)
    return sum(1 for line in out.splitlines() if line.startswith("Starting "))


def journal_has(identifier, needle):
    out = run("journalctl", "-q", "--no-pager", "-o", "cat", "-t", identifier)
    return next((line for line in out.splitlines() if needle in line), None)


def open_page(browser, url, artifacts):
    page = browser.open(url, width=1280, height=900)
    CURRENT.update(page=page, artifacts=artifacts)
    page.wait("document.querySelectorAll('#tasks li.card').length === 4 && "
              "!document.querySelector('button.run[data-task=backup]').disabled", timeout=20)
    return page


def refused(browser, user, url, args, shot, journal_check):
    """user clicks "Lancer maintenant" on Backup SQL: the refusal shows, nothing is recorded or started."""
    rows, starts = runs_recorded(args.state), backup_starts()
    page = open_page(browser, url, args.artifacts)
    page.click("button.run[data-task=backup]")
    try:
        text = page.wait("(document.querySelector('li.card[data-task=backup] .card-error') || {}).textContent", 10)
    except CDPError:
        fail(f"{user} clicked Lancer maintenant: no refusal on the Backup SQL card within 10 s "
             f"(runs recorded {rows} -> {runs_recorded(args.state)}, {BACKUP_UNIT} starts {starts} -> {backup_starts()})")
    if REFUSAL not in text or f"votre compte : {user}" not in text:
        fail(f"{user}: the card says {text!r}, want « {REFUSAL} » and the account")
    page.screenshot(os.path.join(args.artifacts, shot))
    line = wait_until(f"{user}'s refusal in the journal", 10, journal_check)
    time.sleep(1)   # what a wrongly accepted call would start has had time to show
    if runs_recorded(args.state) != rows:
        fail(f"{user}: a run was recorded after the refusal ({rows} -> {runs_recorded(args.state)} rows)")
    if backup_starts() != starts or unit_prop(BACKUP_UNIT, "ActiveState") not in ("inactive", "failed"):
        fail(f"{user}: {BACKUP_UNIT} started after the refusal")
    if page.problems:
        fail(f"{user}: console errors or failed requests: {'; '.join(page.problems)}")
    ok(f"{user}: {text!r}; no run recorded ({rows} rows), {BACKUP_UNIT} not started; journal: {line}")
    page.close()
    CURRENT.clear()


def member_runs(browser, url, args):
    page = open_page(browser, url, args.artifacts)
    page.evaluate(OBSERVER_JS)
    known = {r["id"] for r in page.evaluate(ROWS_JS)}
    lock = Lock(args.held)
    os.chown(args.held, *[int(run("id", "-" + f, "gazelle")) for f in ("u", "g")])
    os.chmod(args.held, 0o600)
    try:
        t0 = time.monotonic()
        page.click("button.run[data-task=backup]")
        row = wait_until("gs-admin's ⏳ Backup SQL row", 15, lambda: next(
            (r for r in page.evaluate(ROWS_JS) if r["id"] not in known and r["status"] == "running"), None))
        page.wait("document.querySelector('button.run[data-task=backup]').disabled", timeout=5)
        # A oneshot unit is "activating/start" while its ExecStart= runs (held by the lock).
        wait_until(f"{BACKUP_UNIT} to run", 15, lambda: unit_prop(BACKUP_UNIT, "ActiveState") == "activating"
                   and unit_prop(BACKUP_UNIT, "SubState") == "start")
        progress = page.wait("(document.querySelector('li.card[data-task=backup] .progress') || {}).textContent", 10)
        ok(f"gs-admin: ⏳ row {row['id']} after {time.monotonic() - t0:.2f} s, button disabled, "
           f"{BACKUP_UNIT} running, the card shows its STATUS= text {progress!r}")
        page.screenshot(os.path.join(args.artifacts, "system-03-admin-running.png"))
    finally:
        lock.release()
    final = wait_until(f"the result of {row['id']}", 30, lambda: page.evaluate(
        f"(() => {{ const tr = document.querySelector('tr.run[data-run-id=\"{row['id']}\"]');"
        " return tr && tr.dataset.status !== 'running' ? tr.dataset.status : null; })()"))
    cells = page.evaluate(f"[...document.querySelector('tr.run[data-run-id=\"{row['id']}\"]').cells]"
                          ".map(td => td.textContent.trim())")
    if final != "success":
        fail(f"gs-admin: run {row['id']} ended {final}: {cells}")
    if page.evaluate("window.__gsMarker") != "no reload":
        fail("gs-admin: the page was reloaded")
    if not cells[5].startswith("🔌 API") or "gs-admin" not in cells[5]:
        fail(f"gs-admin: trigger cell {cells[5]!r}, want 🔌 API … gs-admin")
    page.wait("!document.querySelector('button.run[data-task=backup]').disabled", timeout=5)
    page.screenshot(os.path.join(args.artifacts, "system-04-admin-finished.png"))
    if page.problems:
        fail(f"gs-admin: console errors or failed requests: {'; '.join(page.problems)}")
    ok(f"gs-admin: run {row['id']} {cells[2]} ({cells[5]}, {cells[4]!r}) without a reload; no console error")
    page.close()
    CURRENT.clear()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--held", required=True)
    ap.add_argument("urls", nargs="+", help="USER=URL")
    args = ap.parse_args()
    urls = dict(u.split("=", 1) for u in args.urls)
    t0 = time.monotonic()
    with Browser() as browser:
        try:
            ok(f"chromium up in {browser.startup_seconds:.2f} s")
            other_uid = run("id", "-u", "gs-reader")
            refused(browser, "gs-reader", urls["gs-reader"], args, "system-01-reader-refused.png",
                    lambda: next((line for line in run("journalctl", "-q", "--no-pager", "-o", "cat", "-u", "dbus.service")
                                  .splitlines() if "Rejected send message" in line and f"uid={other_uid} " in line
                                  and 'member="RunTask"' in line), None))
            refused(browser, "gazelle", urls["gazelle"], args, "system-02-gazelle-refused.png",
                    lambda: journal_has("gazelle-schedulerd", "RunTask backup refused: caller gazelle"))
            member_runs(browser, urls["gs-admin"], args)
        except CDPError as e:
            fail(str(e))
    print(f"# whole browser part {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        fail(f"{' '.join(e.cmd)}: exit {e.returncode}: {e.stderr}")
