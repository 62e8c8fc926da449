#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Rapport Timeline benchmark (on demand, not in the default suite):
#   tests/bench/bench-report.sh [BUILD_DIR]        BENCH_SCALES="1 2" by default
# For each scale s: a generated history of s × 283,000 timeline entries (s × ~24,000 relevant,
# tests/gen-report-history.py), then in the same run, on SQLite and on PostgreSQL (the latter
# inside tests/sandbox.sh):
#   bare SQL   the builder's query (same text as build_query() in src/report.c, ids inlined)
#              run by sqlite3 / psql with its rows thrown away
#   report     gazelle-scheduler run rapport, CSV only: wall time, the task's own build_ms, and
#              the process's peak RSS (GNU time %M)
# SQLite also runs the report with Google Sheets on (loopback fake: JWT, get, batchUpdate,
# batchClear, values:batchUpdate in ~2 MB chunks).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
scales=${BENCH_SCALES:-1 2}
bin=$build/gazelle-scheduler
gen=$src/tests/gen-report-history.py

now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000 / 1" | bc; }

# The builder's query with literal parameters (sqlite3 and psql bind nothing here).
ids="'cli_sos6RK8t4htOApiM','cli_annexeUqam0001','cli_9UMLkteep8EsISbG','cli_HbEwl9rN11pSuDEU','cli_annexePdA00001','cli_PmqPUBTbPFeCMGmz'"
cols="t.external_id, t.occurred_at, t.type, t.summary, t.comment, t.user_external_id, u.first_name, u.last_name"
types="'SERVICE_ENTRY_MANUAL', 'PIANO_MEASUREMENT'"
query="SELECT $cols, t.piano_external_id, p.client_external_id, p.make, p.model, p.serial_number, p.type, p.year, p.location
FROM gazelle_pianos p JOIN gazelle_timeline_entries t ON t.piano_external_id = p.external_id
LEFT JOIN gazelle_users u ON u.external_id = t.user_external_id
WHERE p.client_external_id IN ($ids) AND t.type IN ($types) AND t.deleted_at IS NULL AND t.occurred_at IS NOT NULL
UNION ALL
SELECT $cols, NULL, t.client_external_id, NULL, NULL, NULL, NULL, NULL, NULL
FROM gazelle_timeline_entries t LEFT JOIN gazelle_users u ON u.external_id = t.user_external_id
WHERE t.client_external_id IN ($ids) AND t.type IN ($types) AND t.deleted_at IS NULL AND t.occurred_at IS NOT NULL
AND NOT EXISTS (SELECT 1 FROM gazelle_pianos p2 WHERE p2.external_id = t.piano_external_id)
ORDER BY 2 DESC, 1 DESC"

# run_report LABEL: one CSV-only report; prints wall ms, build_ms, peak RSS.
run_report() {
    local t0 t1 rss build_ms
    t0=$(now)
    /usr/bin/time -f '%M' -o "$work/time.out" "$bin" run rapport 2>"$work/run.err" \
        || { cat "$work/run.err"; exit 1; }
    t1=$(now)
    rss=$(tail -n1 "$work/time.out")
    build_ms=$(last_stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["build_ms"])')
    printf '%-11s %-10s report     wall %6s ms  build %6s ms  peak RSS %6s KiB\n' "$1" "$store" "$(ms "$t0" "$t1")" \
        "$build_ms" "$rss"
}

bench_store() {  # scale
    local s=$1 t0 t1
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/gs-bench-report.XXXXXX")
    export XDG_STATE_HOME=$work/state GAZELLE_CONFIG=$work/expected/config.json
    unset STATE_DIRECTORY GOOGLE_APPLICATION_CREDENTIALS REPORT_SPREADSHEET_ID CREDENTIALS_DIRECTORY INVOCATION_ID
    env -u GAZELLE_CONFIG "$bin" migrate >/dev/null
    local label="x$s"
    if [ "$store" = sqlite ]; then
        db=$XDG_STATE_HOME/gazelle-scheduler/gazelle-scheduler.sqlite
        python3 "$gen" --out "$work/expected" --sqlite "$db" --entries $((283000 * s)) --relevant $((24000 * s)) \
            --seed $((2026 + s)) >"$work/summary"
        last_stats() { sqlite3 "$db" "SELECT stats FROM scheduler_logs ORDER BY started_at DESC LIMIT 1"; }
        sqlite3 "$db" "SELECT count(*) FROM gazelle_timeline_entries" >/dev/null   # warm the cache
        t0=$(now); sqlite3 "$db" "$query" >/dev/null; t1=$(now)
    else
        python3 "$gen" --out "$work/expected" --pg-csv --entries $((283000 * s)) --relevant $((24000 * s)) \
            --seed $((2026 + s)) >"$work/summary"
        for t in gazelle_clients gazelle_pianos gazelle_users gazelle_timeline_entries; do
            psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" \
                 -c "\\copy $t ($(cat "$work/expected/$t.cols")) FROM '$work/expected/$t.csv' WITH (FORMAT csv, NULL '\\N')"
        done
        psql -X -q -d "$DATABASE_URL" -c "VACUUM ANALYZE" >/dev/null
        last_stats() { psql -X -q -A -t -d "$DATABASE_URL" -c "SELECT stats FROM scheduler_logs ORDER BY started_at DESC LIMIT 1"; }
        # \copy streams the rows to the client without psql's table formatting (one line for \copy).
        local copy="\\copy (${query//$'\n'/ }) TO '/dev/null'"
        psql -X -q -d "$DATABASE_URL" -c "$copy"   # warm the cache
        t0=$(now); psql -X -q -d "$DATABASE_URL" -c "$copy"; t1=$(now)
    fi
    local relevant
    relevant=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["entries"], d["relevant_entries"])' \
        "$work/expected/summary.json")
    printf '%-11s %-10s history    %s entries, %s relevant\n' "$label" "$store" ${relevant}
    printf '%-11s %-10s bare SQL   wall %6s ms\n' "$label" "$store" "$(ms "$t0" "$t1")"
    run_report "$label"
    run_report "$label"
    if [ "$store" = sqlite ] && python3 -c 'import cryptography' 2>/dev/null; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
        openssl pkey -in "$work/key.pem" -pubout -out "$work/pub.pem"
        python3 -c 'import json,sys; print(json.dumps({"type": "service_account", "client_email": "bench@x.iam.gserviceaccount.com", "private_key": open(sys.argv[1]).read()}))' \
            "$work/key.pem" >"$work/sa.json"
        python3 "$src/tests/fakes/fake_google.py" --port-file "$work/port" --public-key "$work/pub.pem" \
            --client-email bench@x.iam.gserviceaccount.com --spreadsheet bench &
        local fake=$!
        for _ in $(seq 1500); do [ -s "$work/port" ] && break; sleep 0.02; done
        GOOGLE_APPLICATION_CREDENTIALS=$work/sa.json REPORT_SPREADSHEET_ID=bench \
            GOOGLE_TOKEN_URL=http://127.0.0.1:$(cat "$work/port")/token SHEETS_API_URL=http://127.0.0.1:$(cat "$work/port") \
            run_report "$label+sheets"
        printf '%-11s %-10s requests   %s\n' "$label" "$store" \
            "$(last_stats | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["requests"], "HTTP requests,", d["retries"], "retries")')"
        kill "$fake"
    fi
    rm -rf "$work"
}

if [ "${BENCH_INNER:-}" = postgresql ]; then
    store=postgresql
    export DATABASE_URL=$SBX_PG_URL
    for s in $scales; do
        psql -X -q -d "$SBX_PG_URL" -c "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null
        bench_store "$s"
    done
    exit 0
fi

echo "Rapport Timeline benchmark — $(nproc) CPU, $(date -u +%FT%TZ), build $build"
store=sqlite
unset DATABASE_URL
for s in $scales; do
    bench_store "$s"
done
BENCH_INNER=postgresql BENCH_SCALES="$scales" SBX_TIMEOUT=1800 "$src/tests/sandbox.sh" "$0" "$build"
