#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sync benchmark (on demand, never by `meson test`):

    tests/bench/bench-sync.py [BUILD_DIR]                      SQLite only
    tests/sandbox.sh tests/bench/bench-sync.py [BUILD_DIR]     SQLite and PostgreSQL

A production-size full sync (about 300,000 records: 4,000 clients and their contacts, 1,000
pianos, 283,000 timeline entries, the appointments of the 60/90-day window out of 11,500) from
the loopback fake Gazelle, for each fake latency, concurrency and store:
  floor  `run sync --dry-run`: the same pages fetched, parsed and discarded
  sync   `run sync --full` into an empty store
both in the same run, plus their peak RSS; then peak RSS of a full sync at 30,000 records
against 300,000 (memory must stay flat).

Knobs: BENCH_LATENCIES="0 50" (ms per request), BENCH_CONCURRENCY="1 4",
BENCH_STORES="sqlite postgresql" (postgresql needs $SBX_PG_URL), BENCH_TIMELINE=283000.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..")
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GS_BUILD_DIR", os.path.join(SRC, "build")))
BIN = os.path.join(BUILD, "gazelle-scheduler")
FAKE = os.path.join(SRC, "tests", "fakes", "gazelle.py")
TIMELINE = int(os.environ.get("BENCH_TIMELINE", "283000"))
PROD = {"clients": 4000, "pianos": 1000, "timeline": TIMELINE, "events": 11500}
LATENCIES = [int(x) for x in os.environ.get("BENCH_LATENCIES", "0 50").split()]
CONCURRENCY = [int(x) for x in os.environ.get("BENCH_CONCURRENCY", "1 4").split()]
STORES = os.environ.get("BENCH_STORES", "sqlite postgresql" if os.environ.get("SBX_PG_URL") else "sqlite").split()


class Fake:
    def __init__(self, tmp, scale):
        self.port_file = os.path.join(tmp, f"port-{os.getpid()}-{time.time_ns()}")
        args = [sys.executable, FAKE, "--port-file", self.port_file, "--refresh-token", "bench"]
        for k, v in scale.items():
            args += [f"--{k}", str(v)]
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        while not os.path.exists(self.port_file):
            time.sleep(0.02)
        self.base = f"http://127.0.0.1:{int(open(self.port_file).read())}"

    def control(self, **obj):
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(self.base + "/_control", data=json.dumps(obj).encode(),
                                                      method="POST")).read()

    def stop(self):
        self.p.terminate()
        self.p.wait()


def env_for(tmp, fake, store, conc):
    e = dict(os.environ)
    for k in ("INVOCATION_ID", "NOTIFY_SOCKET", "GAZELLE_API_KEY", "CREDENTIALS_DIRECTORY", "DATABASE_URL"):
        e.pop(k, None)
    cfg = os.path.join(tmp, "config.json")
    with open(cfg, "w") as f:
        f.write("{}\n")
    e.update({"XDG_STATE_HOME": os.path.join(tmp, "state"), "GAZELLE_BUS": "user", "GAZELLE_CONFIG": cfg,
              "GAZELLE_CLIENT_ID": "fake-client-id", "GAZELLE_CLIENT_SECRET": "fake-client-secret",
              "GAZELLE_API_URL": fake.base + "/graphql/private/",
              "GAZELLE_TOKEN_URL": fake.base + "/developer/oauth/token",
              "GAZELLE_MAX_CONCURRENCY": str(conc)})
    if store == "postgresql":
        e["DATABASE_URL"] = os.environ["SBX_PG_URL"]
    return e


def reset_store(tmp, store):
    shutil.rmtree(os.path.join(tmp, "state"), ignore_errors=True)
    if store == "postgresql":
        subprocess.run(["psql", "-X", "-q", "-d", os.environ["SBX_PG_URL"], "-c",
                        "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"], check=True, capture_output=True)


def timed(args, env, stdin=None):
    """Wall seconds and peak RSS (KiB) of one child."""
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        if stdin is not None:
            r, w = os.pipe()
            os.write(w, stdin.encode())
            os.close(w)
            os.dup2(r, 0)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execve(args[0], args, env)
    _, status, ru = os.wait4(pid, 0)
    dt = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args[1:])} failed (exit {os.waitstatus_to_exitcode(status)})")
    return dt, ru.ru_maxrss


def last_stats(env, store, tmp):
    sql = "SELECT status, stats FROM scheduler_logs WHERE task_name='sync_gazelle' ORDER BY started_at DESC LIMIT 1"
    if store == "postgresql":
        out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", "-d", env["DATABASE_URL"], "-c", sql],
                             capture_output=True, text=True, check=True).stdout.strip()
    else:
        import sqlite3
        con = sqlite3.connect(os.path.join(tmp, "state", "gazelle-scheduler", "gazelle-scheduler.sqlite"))
        out = "|".join(con.execute(sql).fetchone())
        con.close()
    status, stats = out.split("|", 1)
    return status, json.loads(stats)


def one(tmp, fake, store, conc):
    env = env_for(tmp, fake, store, conc)
    reset_store(tmp, store)
    timed([BIN, "auth", "--refresh-token", "-"], env, stdin=last_refresh(fake))
    floor, floor_rss = timed([BIN, "run", "sync", "--dry-run"], env)
    reset_store(tmp, store)
    timed([BIN, "auth", "--refresh-token", "-"], env, stdin=last_refresh(fake))
    real, real_rss = timed([BIN, "run", "sync", "--full"], env)
    status, stats = last_stats(env, store, tmp)
    records = sum(stats[k]["fetched"] for k in ("clients", "contacts", "pianos", "timeline_entries", "appointments"))
    if status != "success":
        sys.exit(f"sync ended {status}: {stats}")
    return floor, floor_rss, real, real_rss, records, stats["pages"]


def last_refresh(fake):
    """The refresh token the fake honours now (every refresh rotates it)."""
    import urllib.request
    with urllib.request.urlopen(fake.base + "/_state") as r:
        return (json.load(r)["refresh_token"] or "bench") + "\n"


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"build first: {BIN}")
    tmp = tempfile.mkdtemp(prefix="gs-bench-sync.")
    try:
        fake = Fake(tmp, PROD)
        print(f"# bench-sync: {BIN}; fake {PROD}")
        print(f"{'store':<11}{'latency':>8}{'conc':>5}{'records':>9}{'pages':>7}{'floor s':>9}{'sync s':>9}"
              f"{'ratio':>7}{'RSS floor':>11}{'RSS sync':>10}")
        for lat in LATENCIES:
            fake.control(latency_ms=lat)
            for store in STORES:
                for conc in CONCURRENCY:
                    floor, frss, real, rrss, records, pages = one(tmp, fake, store, conc)
                    print(f"{store:<11}{lat:>6}ms{conc:>5}{records:>9}{pages:>7}{floor:>9.1f}{real:>9.1f}"
                          f"{real / floor:>7.2f}{frss / 1024:>9.1f}MB{rrss / 1024:>8.1f}MB", flush=True)
        fake.stop()

        # memory: 30,000 against 300,000 records, latency 0, concurrency 2
        small = {"clients": 400, "pianos": 100, "timeline": TIMELINE // 10, "events": 1150}
        for store in STORES:
            rss = []
            for scale in (small, PROD):
                f = Fake(tmp, scale)
                env = env_for(tmp, f, store, 2)
                reset_store(tmp, store)
                timed([BIN, "auth", "--refresh-token", "-"], env, stdin="bench\n")
                _, peak = timed([BIN, "run", "sync", "--full"], env)
                _, stats = last_stats(env, store, tmp)
                n = sum(stats[k]["fetched"] for k in ("clients", "contacts", "pianos", "timeline_entries",
                                                     "appointments"))
                rss.append((n, peak))
                f.stop()
            print(f"peak RSS {store}: {rss[0][0]} records {rss[0][1] / 1024:.1f} MB, {rss[1][0]} records "
                  f"{rss[1][1] / 1024:.1f} MB (ratio {rss[1][1] / rss[0][1]:.2f})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
