#!/usr/bin/env bash
# Backup consistency torture (on demand, not in the default suite):
#   tests/bench/torture-backup.sh [BUILD_DIR]    TORTURE_TRIALS=30 TORTURE_SIZE_MB=64
# A writer in its own process moves money between 100 accounts (the sum stays 0) and appends
# one row per transaction to a ledger numbered 1, 2, 3…, with random blobs and rewrites of old
# rows, while a reader thread of that process holds read transactions of random length (so
# checkpoints stop short and the snapshot's pages sit in the WAL) and SQLite checkpoints and
# restarts the WAL as it goes (wal_autocheckpoint 1000, synchronous=NORMAL). Each trial backs
# the store up and checks the copy: integrity_check ok, balances sum to 0, the ledger is 1..n
# without a hole, n at least every transaction committed before the backup started and at
# most those committed before it ended. Prints each trial and "bad: N of TRIALS"; exit 1 if N > 0.
set -euo pipefail
. "$(dirname "$0")/backup-lib.sh" gs-torture-backup "$@"
trials=${TORTURE_TRIALS:-30}
size_mb=${TORTURE_SIZE_MB:-64}

"$build/gazelle-scheduler" migrate >/dev/null
sqlite3 "$store" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE ledger (seq INTEGER PRIMARY KEY, a INTEGER, b INTEGER, amount INTEGER, pad BLOB);
CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO accounts SELECT i, 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $size_mb * 256)
INSERT INTO filler SELECT i, randomblob(4000) FROM n;
SQL

python3 - "$store" "$work/commits.txt" <<'PY' &
import os, random, signal, sqlite3, sys, threading, time
path = sys.argv[1]
db = sqlite3.connect(path, timeout=60, isolation_level=None)
db.execute("PRAGMA synchronous=NORMAL")
n_filler = db.execute("SELECT max(id) FROM filler").fetchone()[0]
log, stop = [], False

def reader():
    r = sqlite3.connect(path, timeout=60, isolation_level=None)
    while not stop:
        r.execute("BEGIN")
        r.execute("SELECT count(*) FROM accounts").fetchone()
        time.sleep(random.uniform(0, 0.5))
        r.execute("COMMIT")
        time.sleep(random.uniform(0, 0.2))

def on_term(*_):
    with open(sys.argv[2], "w") as f:
        f.writelines(f"{t:.6f} {s}\n" for t, s in log)
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
threading.Thread(target=reader, daemon=True).start()
seq = 0
while True:
    a, b = random.sample(range(1, 101), 2)
    x = random.randint(1, 1000)
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (x, a))
    db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (x, b))
    db.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, randomblob(?))", (seq + 1, a, b, x, random.randint(0, 8000)))
    if random.random() < 0.3:
        db.execute("UPDATE filler SET data = randomblob(4000) WHERE id = ?", (random.randint(1, n_filler),))
    db.execute("COMMIT")
    seq += 1
    log.append((time.time(), seq))
    time.sleep(random.uniform(0, 0.003))
PY
writer=$!
sleep 2

check_copy() { # FILE -> "integrity sum n holes"
        python3 - "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
try:
    ok = c.execute("PRAGMA integrity_check").fetchone()[0]
    total = c.execute("SELECT coalesce(sum(balance), 0) FROM accounts").fetchone()[0]
    n, top = c.execute("SELECT count(*), coalesce(max(seq), 0) FROM ledger").fetchone()
    print(ok.replace(" ", "_")[:60], total, top, top - n)
except sqlite3.DatabaseError as e:
    print(str(e).replace(" ", "_")[:60], "?", 0, "?")
PY
}

: >"$work/trials.txt"
for ((i = 1; i <= trials; i++)); do
        rm -rf "$BACKUP_DIR"
        mkdir -p "$BACKUP_DIR"
        t0=$(now)
        "$build/gazelle-scheduler" run backup >"$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
        file=$(ls "$BACKUP_DIR"/db_backup_*.sqlite)
        how=$(sqlite3 "$store" "SELECT json_extract(stats, '$.method') || ',' || \
                coalesce(json_extract(stats, '$.wal_frames'), 0) FROM scheduler_logs \
                WHERE task_name = 'backup' ORDER BY started_at DESC LIMIT 1")
        t1=$(now)
        echo "$i $t0 $t1 $how $(check_copy "$file")" >>"$work/trials.txt"
        sleep 0.$((RANDOM % 10))
done
kill -TERM "$writer"
wait "$writer" || true
writer=

python3 - "$work/trials.txt" "$work/commits.txt" "$trials" <<'PY'
import bisect, sys
commits = [tuple(map(float, l.split())) for l in open(sys.argv[2])]
times = [t for t, _ in commits]
def committed_by(t):
    i = bisect.bisect_left(times, t)
    return int(commits[i - 1][1]) if i else 0
bad = 0
print(f"backup torture: {sys.argv[3]} trials of gazelle-scheduler run backup, a writer in its own process")
for line in open(sys.argv[1]):
    i, t0, t1, how, integrity, total, top, holes = line.split()
    lo, hi = committed_by(float(t0)), committed_by(float(t1))
    problems = []
    if integrity != "ok":
        problems.append(f"integrity {integrity}")
    if total != "0":
        problems.append(f"balances sum to {total}")
    if holes != "0":
        problems.append(f"{holes} ledger rows missing inside 1..{top}")
    if not lo <= int(top) <= hi:
        problems.append(f"ledger ends at {top}, committed {lo} before the start, {hi} before the end")
    bad += bool(problems)
    print(f"  trial {int(i):2d}: {how:<14} ledger {int(top):6d} (committed {lo}..{hi})  "
          + ("ok" if not problems else "BAD: " + "; ".join(problems)))
print(f"bad: {bad} of {sys.argv[3]}")
sys.exit(1 if bad else 0)
PY
