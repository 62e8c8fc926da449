#!/usr/bin/env bash
# Command 2: the whole test suite. Builds with -Werror, runs every suite (unit, integration),
# runs the unit suite again under ASan+UBSan, and prints one closing line "N passed, N failed".
# Usage: tests/run.sh            (from the source tree; needs root for the sandboxed suites)
set -uo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
out=${GS_TEST_BUILD:-$src/build-test}
asan=${GS_ASAN_BUILD:-$src/build-asan}
jobs=${GS_TEST_JOBS:-2}

count() { # testlog.json -> "passed failed skipped"
        python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
try:
    for line in open(sys.argv[1], encoding="utf-8"):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"): p += 1
        elif r == "SKIP": s += 1
        else: f += 1
except FileNotFoundError:
    f += 1
print(p, f, s)
PY
}

rc=0
setup() { # dir, extra args
        local dir=$1; shift
        if [ -d "$dir/meson-private" ]; then
                meson setup --reconfigure "$dir" "$@" >/dev/null
        else
                meson setup "$dir" "$@"
        fi
}

setup "$out" --werror --buildtype=debugoptimized || exit 1
meson compile -C "$out" || exit 1
meson test -C "$out" --print-errorlogs --num-processes "$jobs" || rc=1
read -r p1 f1 s1 < <(count "$out/meson-logs/testlog.json")

setup "$asan" --werror --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || exit 1
meson compile -C "$asan" || exit 1
ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$asan" --suite unit --print-errorlogs --num-processes "$jobs" || rc=1
read -r p2 f2 s2 < <(count "$asan/meson-logs/testlog.json")

passed=$((p1 + p2)); failed=$((f1 + f2)); skipped=$((s1 + s2))
echo "suites: default build $p1 passed, $f1 failed, $s1 skipped; ASan+UBSan unit $p2 passed, $f2 failed, $s2 skipped"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || rc=1
exit $rc
