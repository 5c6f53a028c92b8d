#!/usr/bin/env bash
# Host benchmarks of mm's page-table operations (map, unmap, protect,
# fork-copy) from 1 to 262,144 pages, on the simulated machine
# (mm/benches/paging.rs, criterion). Prints one row per case as it finishes:
#
#   op          pages     time/op   time/page  x prev
#
# time/op is criterion's estimate (the middle of its interval), time/page is
# that divided by the pages, and "x prev" is time/op over the previous size's
# (the sizes grow by 8, so a cost linear in the pages shows x8.0).
#
# Usage: scripts/host-bench.sh [FILTER...]   e.g. scripts/host-bench.sh fork-copy
# Criterion's full output goes to $HOST_BENCH_LOG (target/host-bench.log);
# its saved estimates stay under target/criterion/ for later comparison.
# The whole suite takes about a minute after the build.
set -euo pipefail

cd "$(dirname "$0")/.."
LOG=${HOST_BENCH_LOG:-target/host-bench.log}
mkdir -p "$(dirname "$LOG")"

echo "host-bench: building mm's benchmarks (log: $LOG)" >&2
if ! cargo bench -p aspen-mm --bench paging --no-run >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "host-bench: build failed" >&2
    exit 1
fi

start=$(date +%s)
set +e
cargo bench -p aspen-mm --bench paging -- --noplot "$@" 2>&1 | tee -a "$LOG" | awk '
    function ns(v, u) {
        if (u == "ps") return v / 1000
        if (u == "ns") return v
        if (u == "ms") return v * 1e6
        if (u == "s") return v * 1e9
        return v * 1000          # µs (or us)
    }
    function human(t) {
        if (t < 1) return sprintf("%.3f ns", t)
        if (t < 1000) return sprintf("%.1f ns", t)
        if (t < 1e6) return sprintf("%.2f us", t / 1e3)
        if (t < 1e9) return sprintf("%.2f ms", t / 1e6)
        return sprintf("%.2f s", t / 1e9)
    }
    BEGIN {
        printf "%-10s %8s %12s %11s %7s\n", "op", "pages", "time/op", "time/page", "x prev"
    }
    # The case name starts the line; "time:" follows on it or on the next.
    $1 ~ /^[a-z-]+\/[0-9]+$/ { id = $1 }
    /time:/ && id != "" {
        s = $0
        sub(/.*\[/, "", s); sub(/\].*/, "", s)
        split(s, f, " ")
        t = ns(f[3], f[4])
        split(id, p, "/")
        op = p[1]; n = p[2] + 0
        ratio = (op == last_op && last_t > 0) ? sprintf("x%.1f", t / last_t) : "-"
        printf "%-10s %8d %12s %11s %7s\n", op, n, human(t), human(t / n), ratio
        fflush()
        last_op = op; last_t = t; id = ""; rows++
    }
    END { if (rows == 0) { print "host-bench: no results (see the log)" > "/dev/stderr"; exit 1 } }
'
status=("${PIPESTATUS[@]}")
set -e
if [ "${status[0]}" -ne 0 ]; then
    tail -n 40 "$LOG" >&2
    echo "host-bench: cargo bench failed" >&2
    exit 1
fi
[ "${status[2]}" -eq 0 ] || exit 1
echo "host-bench: $(($(date +%s) - start)) s" >&2
