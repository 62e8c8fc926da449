#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sync Gazelle Totale against the loopback fake (tests/fakes/gazelle.py), into the store that
GS_STORE selects (sqlite: a temporary state directory; postgresql: $SBX_PG_URL, so run it inside
tests/sandbox.sh). `gazelle-scheduler run sync` is the real binary; the store is read back.

Covers: token import, full then incremental sync with counts equal to the fake's, a second run
that changes nothing, an edit arriving, a deletion becoming deleted_at, local columns surviving,
a vanished appointment cancelled, the deletion threshold, partial nested objects erasing
nothing, every fault switch ending with a
clear error or warning and a consistent store, the appointment window's edges whether Gazelle
reads date filters as Montréal or UTC dates, access tokens expiring every few requests under
four concurrent requests, a crash right after a token refresh, and SIGKILLs
at random moments each leaving whole pages that the next run completes.

Environment: GS_BUILD_DIR (required), GS_STORE (sqlite|postgresql), SYNC_KILLS (default 20).
"""

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from zoneinfo import ZoneInfo

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "gazelle.py")
BUILD = os.environ.get("GS_BUILD_DIR") or os.path.join(HERE, "..", "..", "build")
BIN = os.path.join(BUILD, "gazelle-scheduler")
STORE = os.environ.get("GS_STORE", "sqlite")
KILLS = int(os.environ.get("SYNC_KILLS", "20"))
N = {"clients": 120, "pianos": 90, "timeline": 1500, "events": 600}

checks = 0


def ok(msg):
    global checks
    checks += 1
    print(f"ok {checks} - {msg}", flush=True)


def fail(msg):
    print(f"not ok - {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg, detail=""):
    if not cond:
        fail(f"{msg}: {detail}" if detail else msg)
    ok(msg)


# The test's own reads and writes go straight to PostgreSQL, the product's through the pooler
# when the sandbox has one (SBX_PGBOUNCER=1).
PG_ADMIN_URL = os.environ.get("SBX_PG_DIRECT_URL") or os.environ.get("SBX_PG_URL", "")


class World:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="test-sync.")
        self.fake = None
        self.env = dict(os.environ)
        for k in ("INVOCATION_ID", "NOTIFY_SOCKET", "GAZELLE_API_KEY", "CREDENTIALS_DIRECTORY"):
            self.env.pop(k, None)
        self.env.update({
            "XDG_STATE_HOME": os.path.join(self.tmp, "state"),
            "GAZELLE_BUS": "user",
            "GAZELLE_CLIENT_ID": "fake-client-id",
            "GAZELLE_CLIENT_SECRET": "fake-client-secret",
            "GAZELLE_HTTP_BACKOFF_MS": "50",
            "GAZELLE_HTTP_MAX_ATTEMPTS": "3",
            "GAZELLE_HTTP_TIMEOUT_SEC": "20",
            "GAZELLE_CONFIG": os.path.join(self.tmp, "config.json"),
        })
        with open(self.env["GAZELLE_CONFIG"], "w") as f:
            f.write("{}\n")
        if STORE == "postgresql":
            url = os.environ.get("SBX_PG_URL")
            if not url:
                print("SKIP: GS_STORE=postgresql needs $SBX_PG_URL (run inside tests/sandbox.sh)")
                sys.exit(77)
            self.env["DATABASE_URL"] = url
            self.psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        else:
            self.env.pop("DATABASE_URL", None)
        self.db = os.path.join(self.tmp, "state", "gazelle-scheduler", "gazelle-scheduler.sqlite")

    def start_fake(self, **kw):
        self.stop_fake()
        port_file = os.path.join(self.tmp, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        args = [sys.executable, FAKE, "--port-file", port_file, "--refresh-token", "ref-initial",
                "--api-key", "fake-api-key"]
        for k, v in dict(N, **kw).items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        self.fake = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if time.time() > deadline or self.fake.poll() is not None:
                fail("the fake Gazelle server did not start")
            time.sleep(0.02)
        port = int(open(port_file).read())
        self.base = f"http://127.0.0.1:{port}"
        self.env["GAZELLE_API_URL"] = self.base + "/graphql/private/"
        self.env["GAZELLE_TOKEN_URL"] = self.base + "/developer/oauth/token"

    def stop_fake(self):
        if self.fake:
            self.fake.terminate()
            self.fake.wait()
            self.fake = None

    def cleanup(self):
        self.stop_fake()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- fake
    def control(self, **obj):
        req = urllib.request.Request(self.base + "/_control", data=json.dumps(obj).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def state(self, **params):
        qs = "&".join(f"{k}={v}" for k, v in params.items())
        with urllib.request.urlopen(f"{self.base}/_state?{qs}", timeout=30) as r:
            return json.load(r)

    # --- store
    def psql(self, sql):
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1",
                              "-d", PG_ADMIN_URL, "-c", sql], capture_output=True, text=True)
        if out.returncode:
            fail(f"psql: {sql}: {out.stderr.strip()}")
        return [tuple(line.split("|")) for line in out.stdout.splitlines() if line]

    def q(self, sql):
        if STORE == "postgresql":
            return self.psql(sql)
        import sqlite3
        con = sqlite3.connect(self.db, timeout=10)
        try:
            rows = [tuple("" if v is None else str(v) for v in row) for row in con.execute(sql)]
            con.commit()
            return rows
        finally:
            con.close()

    def q1(self, sql):
        rows = self.q(sql)
        return rows[0][0] if rows else None

    def n(self, table, where="deleted_at IS NULL"):
        return int(self.q1(f"SELECT count(*) FROM {table} WHERE {where}"))

    # --- binary
    def run(self, *args, stdin=None, env=None, timeout=120):
        e = dict(self.env, **(env or {}))
        return subprocess.run([BIN, *args], input=stdin, env=e, capture_output=True, text=True, timeout=timeout)

    def sync(self, *args, env=None, expect=None):
        p = self.run("run", "sync", *args, env=env)
        row = self.last_run()
        if expect and row["status"] != expect:
            fail(f"sync ended {row['status']}, expected {expect}: {row['message']}\n{p.stderr[-3000:]}")
        return row

    def last_run(self):
        rows = self.q("SELECT status, message, stats FROM scheduler_logs WHERE task_name = 'sync_gazelle' "
                      "ORDER BY started_at DESC LIMIT 1")
        if not rows:
            fail("no scheduler_logs row for sync_gazelle")
        status, message, stats = rows[0]
        return {"status": status, "message": message, "stats": json.loads(stats or "{}")}

    def stored_refresh_token(self):
        return self.q1("SELECT refresh_token FROM gazelle_oauth_tokens WHERE id = 1")

    def counts_match(self, what):
        st = self.state()["counts"]
        got = {"clients": self.n("gazelle_clients"), "contacts": self.n("gazelle_contacts"),
               "pianos": self.n("gazelle_pianos"), "timeline": self.n("gazelle_timeline_entries")}
        want = {k: st[k] for k in got}
        check(got == want, f"{what}: store counts equal the fake's {want}", f"store has {got}")
        win = self.last_run()["stats"].get("appointments_window")
        if win:
            ev = self.state(startOn=win["from"], endOn=win["to"])["events_in_window"]
            got_ev = self.n("gazelle_appointments")
            check(got_ev == ev, f"{what}: appointments equal the fake's window ({ev})", f"store has {got_ev}")

    def consistent(self, what, total_timeline):
        if STORE == "sqlite" and os.path.exists(self.db):
            check(self.q1("PRAGMA integrity_check") == "ok", f"{what}: SQLite integrity_check ok")
        orphans = int(self.q1("SELECT count(*) FROM gazelle_contacts c LEFT JOIN gazelle_clients k "
                              "ON k.external_id = c.client_external_id WHERE k.external_id IS NULL") or 0)
        tl = self.n("gazelle_timeline_entries", "1 = 1")
        hwm = self.q1("SELECT high_water_mark FROM sync_state WHERE entity = 'timeline_entries'")
        whole = tl % 100 == 0 or tl == total_timeline
        if hwm:
            whole = whole and tl == total_timeline
        check(orphans == 0 and whole, f"{what}: whole pages ({tl} entries, mark {'set' if hwm else 'not set'}), "
              "every contact's client present", f"orphans={orphans}")


def test_auth_and_full(w):
    r = w.sync(expect="error")
    check("gazelle-scheduler auth" in r["message"], "without tokens the run fails saying to run auth", r["message"])
    p = w.run("auth", "--refresh-token", "ref-initial")
    check(p.returncode == 2, "auth --refresh-token VALUE is refused (secrets never in argv)")
    p = w.run("auth", "--refresh-token", "-", stdin="ref-initial\n")
    check(p.returncode == 0, "auth --refresh-token - imports a refresh token from stdin", p.stderr)
    check("a perdu son accès à Gazelle" in p.stdout and "Arrêtez ses tâches" in p.stdout,
          "auth --refresh-token - says the old system lost its access and what to do", p.stdout)
    check(w.stored_refresh_token() == w.state()["refresh_token"], "the rotated refresh token is in the store")
    p = w.run("auth", "--code", "bad-code")
    check(p.returncode == 2 and "stdin" in p.stderr, "auth --code VALUE is refused (secrets never in argv)", p.stderr)
    p = w.run("auth", "--code", "-", stdin="bad-code\n")
    check(p.returncode == 1 and "refusé" in p.stderr, "auth --code with a bad code fails clearly", p.stderr)

    r = w.sync(expect="success")
    s = r["stats"]
    check(s["timeline_mode"] == "full", "first run takes the whole timeline")
    check(s["clients"]["inserted"] == N["clients"] and s["pianos"]["inserted"] == N["pianos"],
          "stats count the inserted clients and pianos", json.dumps(s))
    check(s["pages"] > 0 and s["requests"] >= s["pages"], "stats carry pages and requests", json.dumps(s))
    w.counts_match("full sync")
    check(w.n("gazelle_users", "1 = 1") == 4, "the four technicians are in gazelle_users")
    fr = w.q1("SELECT company_name FROM gazelle_clients WHERE external_id = 'cli_9UMLkteep8EsISbG'")
    check(fr == "École de musique Vincent-d'Indy", "Québec French text arrives intact", fr)
    emoji = int(w.q1("SELECT count(*) FROM gazelle_timeline_entries WHERE summary LIKE '%😬%'"))
    check(emoji > 0, "emoji survive")
    nulls = int(w.q1("SELECT count(*) FROM gazelle_pianos WHERE make IS NULL"))
    check(nulls > 0, "null optional fields are stored as NULL")


def test_second_run_and_edits(w):
    r = w.sync(expect="success")
    s = r["stats"]
    changed = sum(s[k].get(x, 0) for k in ("clients", "contacts", "pianos", "timeline_entries", "appointments", "users")
                  for x in ("inserted", "updated", "deleted"))
    check(changed == 0, "a second run changes nothing", json.dumps(s))
    check(s["timeline_mode"] == "incremental", "the second run is incremental (mark − 30 days)")
    check(s["timeline_entries"]["fetched"] < N["timeline"] // 2, "the incremental pass fetches only recent entries",
          str(s["timeline_entries"]["fetched"]))

    cid = "cli_s1c0000042"
    w.q(f"UPDATE gazelle_clients SET local_tags = 'vip', local_flags = 'rappel' WHERE external_id = '{cid}'")
    w.control(edit={cid: {"companyName": "Café l'Entracte — édité 🎻"}}, delete=["ins_s1p0000005"],
              append_timeline=3)
    r = w.sync(expect="success")
    s = r["stats"]
    row = w.q(f"SELECT company_name, local_tags, local_flags FROM gazelle_clients WHERE external_id = '{cid}'")[0]
    check(row == ("Café l'Entracte — édité 🎻", "vip", "rappel"), "an edit arrives and local columns survive", str(row))
    check(s["clients"]["updated"] == 1, "exactly one client counted updated", json.dumps(s["clients"]))
    d = w.q1("SELECT deleted_at FROM gazelle_pianos WHERE external_id = 'ins_s1p0000005'")
    check(bool(d) and s["pianos"]["deleted"] == 1, "a piano gone from Gazelle gets deleted_at", str(d))
    check(s["timeline_entries"]["inserted"] == 3, "three new timeline entries arrive incrementally",
          json.dumps(s["timeline_entries"]))
    w.counts_match("after edits")

    # an appointment of the window vanishes: cancelled, not a ghost
    win = s["appointments_window"]
    ev = w.q1("SELECT external_id FROM gazelle_appointments WHERE status = 'ACTIVE' ORDER BY start_at DESC LIMIT 1")
    w.control(delete=[ev])
    r = w.sync(expect="success")
    st = w.q1(f"SELECT status FROM gazelle_appointments WHERE external_id = '{ev}'")
    check(st == "CANCELED" and r["stats"]["appointments"]["cancelled"] == 1,
          f"an appointment vanished from the window {win['from']}…{win['to']} is marked CANCELED", st)
    w.control(undelete=[ev])
    r = w.sync(expect="success")
    st = w.q1(f"SELECT status FROM gazelle_appointments WHERE external_id = '{ev}'")
    check(st == "ACTIVE", "it comes back when Gazelle has it again", st)

    # deletion threshold: half the pianos vanish → nothing deleted, warning
    gone = [f"ins_s1p{i:07d}" for i in range(0, N["pianos"], 2)]
    w.control(delete=gone)
    before = w.n("gazelle_pianos")
    r = w.sync(expect="warning")
    check(w.n("gazelle_pianos") == before and "aucune suppression" in r["message"],
          "a pass that would delete more than 10 % deletes nothing and warns", r["message"])
    w.control(undelete=gone + ["ins_s1p0000005"])
    r = w.sync(expect="success")
    check(w.n("gazelle_pianos") == N["pianos"], "pianos back: deleted_at cleared")

    r = w.sync("--full", expect="success")
    check(r["stats"]["timeline_mode"] == "full" and r["stats"]["timeline_entries"]["fetched"] == N["timeline"] + 3,
          "--full fetches the whole timeline again", json.dumps(r["stats"]["timeline_entries"]))

    r = w.sync("--dry-run", expect="success")
    check(r["stats"].get("dry_run") and "rien n'a été écrit" in r["message"], "--dry-run fetches and writes nothing")


def test_partial_nested(w):
    """Gazelle leaves fields out of nested objects (user { id }, defaultContact { id }) or sends a
    reference's fields null: no known value is erased, and nothing counts as updated."""
    users = "SELECT external_id, first_name, last_name FROM gazelle_users ORDER BY 1"
    contacts = ("SELECT external_id, client_external_id, first_name, last_name, title, wants_email, email, phone, "
                "street1, street2, municipality, postal_code, region FROM gazelle_contacts ORDER BY 1")
    links = "SELECT external_id, client_external_id, user_external_id, piano_external_ids FROM gazelle_appointments ORDER BY 1"
    before = (w.q(users), w.q(contacts), w.q(links))
    check(all(u[1] and u[2] for u in before[0]), "the technicians' names are known", str(before[0]))
    for what, partial in (("left out", {"objects": ["user", "defaultContact", "client", "piano"], "mode": "drop"}),
                          ("null", {"objects": ["user", "client", "piano"], "mode": "null"})):
        w.control(partial_nested=partial)
        r = w.sync("--full", expect="success")
        s = r["stats"]
        updated = {k: s[k]["updated"] for k in ("users", "contacts", "clients", "pianos", "timeline_entries",
                                                 "appointments")}
        check(set(updated.values()) == {0}, f"nested fields {what}: nothing counted updated", json.dumps(updated))
        after = (w.q(users), w.q(contacts), w.q(links))
        check(after == before, f"nested fields {what}: names, contacts and links kept in the store",
              f"users {after[0]}" if after[0] != before[0] else "contacts or links changed")
    w.control(partial_nested={})


def fault(w, what, faults, expect, needle, env=None, extra=None):
    before = w.q1("SELECT last_complete_at FROM sync_state WHERE entity = 'pianos'")
    w.control(clear_faults=True, faults=faults)
    r = w.sync(env=env, expect=None)
    w.control(clear_faults=True)
    if r["status"] != expect or (needle and needle not in r["message"]):
        fail(f"{what}: expected {expect} with '{needle}', got {r['status']}: {r['message']}")
    ok(f"{what}: {r['status']} — {r['message'][:150]}")
    if expect == "error":
        after = w.q1("SELECT last_complete_at FROM sync_state WHERE entity = 'pianos'")
        if any(f.get("match") == "allPianos" for f in faults):
            check(after == before, f"{what}: the failed entity's mark did not move")
    w.consistent(what, N["timeline"] + 3)
    if extra:
        extra(r)
    return r


def test_faults(w):
    host = w.base.replace("http://", "") + "/graphql/private/"
    fault(w, "429 with Retry-After, twice", [{"type": "http", "status": 429, "retry_after": 1, "count": 2}],
          "success", None, extra=lambda r: check(r["stats"]["retries"] >= 2, "429: retries counted",
                                                   json.dumps(r["stats"])))
    fault(w, "one 502", [{"type": "http", "status": 502, "count": 1}], "success", None)
    fault(w, "persistent 503 on pianos", [{"type": "http", "status": 503, "count": -1, "match": "allPianos"}],
          "error", "503", extra=lambda r: check(host in r["message"] and "POST" in r["message"],
                                                 "the message names method, host and path", r["message"]))
    fault(w, "500 is retried then fails", [{"type": "http", "status": 500, "count": -1, "match": "allPianos"}],
          "error", "500")
    fault(w, "GraphQL errors", [{"type": "graphql_error", "count": 1, "match": "allPianos"}], "error",
          "erreur GraphQL")
    fault(w, "malformed JSON", [{"type": "malformed", "count": 1, "match": "allClients"}], "error", "JSON invalide")
    fault(w, "truncated body once", [{"type": "truncate", "count": 1, "match": "allTimelineEntries"}], "success", None)
    fault(w, "truncated bodies always", [{"type": "truncate", "count": -1, "match": "allPianos"}], "error", host)
    fault(w, "stalled server", [{"type": "stall", "seconds": 8, "count": -1, "match": "allPianos"}], "error", host,
          env={"GAZELLE_HTTP_TIMEOUT_SEC": "1", "GAZELLE_HTTP_MAX_ATTEMPTS": "2"})
    serial = w.state()["serial"]
    fault(w, "401 token expiry mid-sync", [{"type": "expire_token", "count": 1, "after": 1}], "success", None,
          extra=lambda r: check(w.state()["serial"] == serial + 1 and w.stored_refresh_token() == w.state()["refresh_token"],
                                "expired token refreshed once, the rotated refresh token stored"))
    w.control(missing_id_every={"pianos": 9})
    fault(w, "records without id", [], "warning", "sans id",
          extra=lambda r: check(r["stats"]["pianos"]["rejected"] == N["pianos"] // 9 and
                                len(r["stats"]["rejected_reasons"]) >= 1,
                                "rejected records counted with reasons", json.dumps(r["stats"])))
    w.control(missing_id_every={"pianos": 0})
    w.sync(expect="success")
    w.control(revoke_refresh=True)
    fault(w, "refresh token revoked", [{"type": "expire_token", "count": 1}], "error", "gazelle-scheduler auth")
    p = w.run("auth", "--code", "-", stdin="code-ok\n")
    check(p.returncode == 0, "auth --code exchanges a code for tokens", p.stderr)
    w.sync(expect="success")


def test_window_edges(w):
    """The nightly window (-60/+90 days) is asked as dates; Gazelle may read them as Montréal or
    UTC dates. An appointment only one reading returns is never taken for cancelled; a real
    deletion where both readings cover still is."""
    mtl = ZoneInfo("America/Montreal")
    today = dt.datetime.now(mtl).date()
    first, last = today - dt.timedelta(days=60), today + dt.timedelta(days=90)

    def at(d, h, m):
        return dt.datetime(d.year, d.month, d.day, h, m, tzinfo=mtl).astimezone(dt.timezone.utc) \
            .strftime("%Y-%m-%dT%H:%M:%SZ")
    edges = {
        "evt_edge_first_0015": at(first, 0, 15),                         # both readings
        "evt_edge_before_2330": at(first - dt.timedelta(days=1), 23, 30),  # the UTC reading only
        "evt_edge_last_1930": at(last, 19, 30),                          # the Montréal reading (and UTC in summer)
        "evt_edge_last_2330": at(last, 23, 30),                          # the Montréal reading only
        "evt_edge_after_0015": at(last + dt.timedelta(days=1), 0, 15),   # neither
    }
    ids = "', '".join(edges)
    w.control(add_events=[{"id": k, "start": v} for k, v in edges.items()], date_filters="montreal")
    w.sync(expect="success")
    stored = {k for (k,) in w.q(f"SELECT external_id FROM gazelle_appointments WHERE external_id IN ('{ids}')")}
    check(stored == {"evt_edge_first_0015", "evt_edge_last_1930", "evt_edge_last_2330"},
          "Montréal dates: the window's edge appointments stored", str(sorted(stored)))

    w.control(date_filters="utc")
    r = w.sync(expect="success")
    st = dict(w.q(f"SELECT external_id, status FROM gazelle_appointments WHERE external_id IN ('{ids}')"))
    check(r["stats"]["appointments"]["cancelled"] == 0 and set(st.values()) == {"ACTIVE"} and len(st) == 4,
          "UTC dates: what only the other reading returned is not cancelled", f"{st} {r['message']}")

    w.control(delete=["evt_edge_first_0015"])
    r = w.sync(expect="success")
    st = w.q1("SELECT status FROM gazelle_appointments WHERE external_id = 'evt_edge_first_0015'")
    check(st == "CANCELED" and r["stats"]["appointments"]["cancelled"] == 1,
          "UTC dates: a deletion where both readings cover is still a cancellation", f"{st} {r['message']}")
    w.control(undelete=["evt_edge_first_0015"], date_filters="montreal")
    w.sync(expect="success")


def test_concurrent_refresh(w):
    """Access tokens that expire every three requests, four requests at once: a request refused
    because it left with a token older than the current one is resent with the current one, so
    every run succeeds, and the rotated refresh token is stored each time. A fresh token that is
    refused still fails clearly."""
    conc = {"GAZELLE_MAX_CONCURRENCY": "4"}
    w.control(clear_faults=True, token_uses=3, latency_ms=15)
    serial = w.state()["serial"]
    for i in range(20):
        r = w.sync(env=conc)
        if r["status"] != "success":
            fail(f"run {i + 1}/20 with tokens expiring every 3 requests: {r['status']}: {r['message']}")
        if w.stored_refresh_token() != w.state()["refresh_token"]:
            fail(f"run {i + 1}/20: the stored refresh token is not the fake's latest")
    refreshes = w.state()["serial"] - serial
    check(refreshes >= 20, f"20 runs, 4 requests at once, tokens expiring every 3 requests: all success, "
          f"{refreshes} refreshes, the stored refresh token the fake's latest after each")

    w.control(token_uses=0)
    r = w.sync(env=conc, expect="error")
    check("jeton refusé même après rafraîchissement" in r["message"] and "gazelle-scheduler auth" in r["message"],
          "a fresh token refused again fails clearly", r["message"])
    check(w.stored_refresh_token() == w.state()["refresh_token"], "and its rotated refresh token is stored")
    w.control(token_uses=None, latency_ms=0)
    w.sync(expect="success")


def test_lease(w):
    """Another host's run holds the sync's lease: this one ends skipped naming that host, having
    done nothing; once that lease has expired (its host died) the next sync takes it over and
    closes the dead run as interrupted. Both engines keep the lease in task_leases."""
    dead = "7d0c4b8e-5d7e-4c59-9a53-0d6f1f0e9a11"
    w.q("INSERT INTO scheduler_logs (id, task_name, task_label, started_at, created_at, status, triggered_by, host, pid) "
        f"VALUES ('{dead}', 'sync_gazelle', 'Sync Gazelle Totale', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', 'running', "
        "'scheduler', 'hote-mort', 4242)")
    w.q("INSERT INTO task_leases (task_name, host, run_id, acquired_at, expires_at) VALUES "
        f"('sync_gazelle', 'hote-mort', '{dead}', '2026-01-01T00:00:00.000000Z', '2999-01-01T00:00:00.000000Z')")
    served = w.state()["graphql_requests"]
    r = w.sync(expect="skipped")
    check("hote-mort" in r["message"] and dead in r["message"] and w.state()["graphql_requests"] == served,
          "a sync while another host holds the lease ends skipped naming that host and its run, no request",
          r["message"])
    check(w.q1(f"SELECT status FROM scheduler_logs WHERE id = '{dead}'") == "running",
          "the live holder's run is left alone")
    w.q("UPDATE task_leases SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE task_name = 'sync_gazelle'")
    w.sync(expect="success")
    check(w.q1(f"SELECT status FROM scheduler_logs WHERE id = '{dead}'") == "error",
          "an expired lease is taken over and the dead host's run left running is marked interrupted")
    check(w.q1("SELECT count(*) FROM task_leases") == "0", "the lease is released when the run ends")


def test_api_key(w):
    r = w.sync(env={"GAZELLE_API_KEY": "fake-api-key"}, expect="success")
    check(r["status"] == "success", "GAZELLE_API_KEY selects API-key mode (x-gazelle-api-key)")
    r = w.sync(env={"GAZELLE_API_KEY": "wrong-key"}, expect="error")
    check("GAZELLE_API_KEY" in r["message"] and "wrong-key" not in r["message"],
          "a refused API key fails clearly, without the key in the message", r["message"])


def wait(cond, secs, what):
    deadline = time.time() + secs
    while not cond():
        if time.time() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_crash_after_refresh(w):
    serial = w.state()["serial"]
    w.control(clear_faults=True, faults=[
        {"type": "expire_token", "count": 1, "after": 2, "match": "allTimelineEntries"},
        {"type": "stall", "seconds": 60, "count": 1, "after": 3, "match": "allTimelineEntries"}])
    p = subprocess.Popen([BIN, "run", "sync", "--full"], env=w.env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait(lambda: w.state()["serial"] > serial, 30, "the token refresh")
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    w.control(clear_faults=True)
    check(w.stored_refresh_token() == w.state()["refresh_token"],
          "SIGKILL right after a refresh: the rotated refresh token is in the store")
    r = w.sync(expect="success")
    check(r["status"] == "success", "the next run works with it")


def test_kills(w):
    w.stop_fake()
    total = 3000
    w.start_fake(timeline=total, latency_ms=4, seed=7)
    p = w.run("auth", "--refresh-token", "-", stdin="ref-initial\n")
    check(p.returncode == 0, "tokens imported for the new fake", p.stderr)
    rng = random.Random(int(os.environ.get("SYNC_KILL_SEED", "12345")))
    for tbl in ("gazelle_timeline_entries", "gazelle_clients", "gazelle_contacts", "gazelle_pianos",
                "gazelle_appointments", "sync_state"):
        w.q(f"DELETE FROM {tbl}")
    for i in range(KILLS):
        p = subprocess.Popen([BIN, "run", "sync"], env=w.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.02, 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait()
        w.consistent(f"SIGKILL {i + 1}/{KILLS}", total)
    r = w.sync(expect="success")
    st = w.state()["counts"]
    check(w.n("gazelle_timeline_entries") == st["timeline"] and w.n("gazelle_clients") == st["clients"],
          f"after {KILLS} SIGKILLs the next run completes the store", json.dumps(r["stats"]))
    running = int(w.q1("SELECT count(*) FROM scheduler_logs WHERE task_name = 'sync_gazelle' AND status = 'running'"))
    check(running == 0, "no run left 'running': the killed ones were marked interrupted")


def main():
    if not os.access(BIN, os.X_OK):
        fail(f"build first: {BIN}")
    w = World()
    try:
        w.start_fake()
        test_auth_and_full(w)
        test_second_run_and_edits(w)
        test_partial_nested(w)
        test_faults(w)
        test_window_edges(w)
        test_concurrent_refresh(w)
        test_crash_after_refresh(w)
        test_lease(w)
        test_api_key(w)
        test_kills(w)
    finally:
        w.cleanup()
    print(f"1..{checks}")


if __name__ == "__main__":
    main()
