#!/usr/bin/env bash
# Backup benchmark (on demand, not in the default suite):
#   tests/bench/bench-backup.sh [BUILD_DIR]     BENCH_SIZE_MB=1024 BENCH_ROUNDS=1 by default
# Builds a SQLite store of BENCH_SIZE_MB in WAL mode, starts a writer in its own process (one
# INSERT + COMMIT every 2 ms, synchronous=NORMAL like the store's own connections, every commit's
# latency logged), then, in the same run and on the same warm page cache, times:
#   cp            cp of the store (inconsistent under a writer: the floor)
#   cp+fsync      cp, then fsync of the copy (still inconsistent)
#   VACUUM INTO   sqlite3's consistent copy (not yet durable when it returns)
#   VACUUM+fsync  the same, then fsync of the copy: the same guarantees as ours
#   ours          gazelle-scheduler run backup (snapshot image, verification, fsync, rename)
# and prints each one's time, its ratios, and the writer's worst commit in the 10 s before it
# (BENCH_QUIET_S: at least as long as a method takes, so that "before" sees as much of a shared
# machine's noise as "during") and during it. With BENCH_ROUNDS > 1, medians. Ends with the
# goal lines: ours <= 2x cp+fsync, faster than VACUUM INTO (and, for information, against
# VACUUM INTO + fsync, the same durability as ours), writer's worst commit during ours <= 2x
# its worst before; exit status 3 when one is missed.
set -euo pipefail
. "$(dirname "$0")/backup-lib.sh" gs-bench-backup "$@"
size_mb=${BENCH_SIZE_MB:-1024}
rounds=${BENCH_ROUNDS:-1}
quiet_s=${BENCH_QUIET_S:-10}

"$build/gazelle-scheduler" migrate >/dev/null
echo "filling the store to ${size_mb} MiB…"
rows=$(( size_mb * 1024 * 1024 / 1530 )) # ~1530 bytes a row once stored
sqlite3 "$store" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO gazelle_timeline_entries (external_id, occurred_at, type, summary, comment, synced_at)
SELECT 'tme_' || i, '2026-01-01T00:00:00.000000Z', 'SERVICE_ENTRY_MANUAL',
       hex(randomblob(200)), hex(randomblob(300)), '2026-01-01T00:00:00.000000Z' FROM n;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
sync
bytes=$(stat -c %s "$store")
echo "store: $((bytes / 1024 / 1024)) MiB"
cat "$store" >/dev/null # the page cache is warm for every contender

# The writer: its own process and connection; "start end" of every commit, written at SIGTERM.
python3 - "$store" "$work/commits.txt" <<'PY' &
import os, signal, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("PRAGMA synchronous=NORMAL")
log = []
def stop(*_):
    with open(sys.argv[2], "w") as f:
        f.writelines(f"{a:.6f} {b:.6f}\n" for a, b in log)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
i = 0
while True:
    i += 1
    t = time.time()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO gazelle_users (external_id, first_name, synced_at) VALUES (?, 'bench', '2026')",
               (f"usr_{i}",))
    db.execute("COMMIT")
    log.append((t, time.time()))
    time.sleep(0.002)
PY
writer=$!

copy=$work/copy.sqlite
run_method() {
        case $1 in
        cp) cp "$store" "$copy" ;;
        cp+fsync) cp "$store" "$copy" && sync "$copy" ;;
        "VACUUM INTO") sqlite3 "$store" "VACUUM INTO '$copy'" ;;
        VACUUM+fsync) sqlite3 "$store" "VACUUM INTO '$copy'" && sync "$copy" ;;
        ours)
                "$build/gazelle-scheduler" run backup >"$work/ours.log" 2>&1 || { cat "$work/ours.log"; exit 1; }
                sqlite3 "$store" "SELECT stats FROM scheduler_logs WHERE task_name = 'backup' ORDER BY started_at DESC LIMIT 1" \
                        >>"$work/ours-stats.txt" ;;
        esac
}
: >"$work/windows.txt"
methods=(cp cp+fsync "VACUUM INTO" VACUUM+fsync ours)
for ((r = 0; r < rounds; r++)); do
        # Each round starts one method later: none always runs at the same point of the
        # other tenants' load.
        for ((k = 0; k < ${#methods[@]}; k++)); do
                m=${methods[(k + r) % ${#methods[@]}]}
                sync
                sleep "$quiet_s"
                t0=$(now)
                run_method "$m"
                t1=$(now)
                echo "$m|$t0|$t1" >>"$work/windows.txt"
                rm -rf "$copy" "$BACKUP_DIR"
        done
done
kill -TERM "$writer"
wait "$writer" || true
writer=

python3 - "$work/windows.txt" "$work/commits.txt" "$bytes" "$quiet_s" "$rounds" "$work/ours-stats.txt" <<'PY'
import json, statistics, sys
windows = [l.rstrip("\n").split("|") for l in open(sys.argv[1])]
commits = [tuple(map(float, l.split())) for l in open(sys.argv[2])]
size_mib, quiet, rounds = int(sys.argv[3]) >> 20, float(sys.argv[4]), int(sys.argv[5])

def worst(a, b):
    """Longest commit that overlapped [a, b], in ms."""
    return max([(e - s) * 1000 for s, e in commits if s < b and e > a], default=0.0)

res = {}
for name, t0, t1 in windows:
    t0, t1 = float(t0), float(t1)
    res.setdefault(name, []).append((t1 - t0, worst(t0 - quiet + 0.5, t0), worst(t0, t1)))
med = {m: tuple(statistics.median(x[i] for x in v) for i in range(3)) for m, v in res.items()}
cp, cpf, vac, vacf, ours = (med[m][0] for m in ("cp", "cp+fsync", "VACUUM INTO", "VACUUM+fsync", "ours"))
print(f"\nbackup benchmark: {size_mib} MiB WAL store, a writer committing every 2 ms in its own process"
      + (f", medians of {rounds} rounds" if rounds > 1 else ""))
print(f"  {'method':<12} {'time':>8}  {'x cp':>6}  {'x cp+fsync':>10}   writer worst commit: before / during")
for m in ("cp", "cp+fsync", "VACUUM INTO", "VACUUM+fsync", "ours"):
    t, b, d = med[m]
    print(f"  {m:<12} {t:7.2f}s  {t / cp:6.2f}  {t / cpf:10.2f}   {b:8.1f} ms / {d:8.1f} ms  ({d / b if b else 0:.2f}x)")
for line in open(sys.argv[6]):
    st = json.loads(line)
    print(f"  ours: method {st.get('method')}, {st.get('wal_frames', 0)} WAL frames, copy {st.get('copy_ms', '?')} ms, "
          f"verification {st.get('verify_ms', '?')} ms ({st.get('verified_pages', 0)} pages), final fsync "
          f"{st.get('sync_ms', '?')} ms, whole run {st.get('duration_ms')} ms")
_, b, d = med["ours"]
ok = [ours <= 2 * cpf, ours < vac, d <= 2 * b]
print(f"\n  goal: ours <= 2x cp+fsync        {ours / cpf:.2f}x   {'met' if ok[0] else 'MISSED'}")
print(f"  goal: ours faster than VACUUM    {ours / vac:.2f}x   {'met' if ok[1] else 'MISSED'} (against VACUUM INTO "
      f"with its fsync, the same durability as ours: {ours / vacf:.2f}x)")
print(f"  goal: writer during <= 2x before {d / b if b else 0:.2f}x   {'met' if ok[2] else 'MISSED'}")
sys.exit(0 if all(ok) else 3)
PY
