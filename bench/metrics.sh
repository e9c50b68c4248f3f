#!/usr/bin/env bash
# metrics.sh: cost of `--metrics` with SERIES (10000) series (docs/PERFORMANCE.md,
# "Metrics"). A getppid(2) storm (bench/storm.c) fills `@calls[nsecs % SERIES] =
# count()` (every key) and a hist; then
#  1. scrape latency: SCRAPES back-to-back `GET /metrics` (curl's time_total), median
#     and max, with the exposition's size and sample count;
#  2. tracing overhead: the storm's wall time (STORM calls) untraced, traced with no
#     scrapes, and traced while a client scrapes back to back the whole time (the
#     worst case: Prometheus scrapes every 15 s or so).
# usage: bench/metrics.sh   env: RUNS (3), STORM (1000000), SERIES (10000), SCRAPES (20),
# RBT (a prebuilt rbt; default: cargo build --release), PORT (19435)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/bench
mkdir -p "$out"
runs=${RUNS:-3} storm_n=${STORM:-1000000} series=${SERIES:-10000} scrapes=${SCRAPES:-20}
port=${PORT:-19435}
if [[ -z ${RBT:-} ]]; then
  (cd "$repo" && cargo build --release -q)
  RBT=$repo/target/release/rbt
fi
gcc -O2 -o "$out/storm" "$repo/bench/storm.c"
url=http://127.0.0.1:$port/metrics
median() { sort -g | awk '{v[NR] = $1} END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m() { tr ' ' '\n' | grep . | median; }

script="tracepoint:syscalls:sys_enter_getppid /comm == \"storm\"/ { @calls[nsecs % $series] = count(); @lat = hist(nsecs % 1000000); }"
start() {
  BPFTRACE_MAP_KEYS_MAX=$((series * 2)) __BPFTRACE_NOTIFY_PROBES_ATTACHED=1 \
    "$RBT" --metrics "127.0.0.1:$port" -e "$script" >"$out/metrics.out" 2>"$out/metrics.err" &
  pid=$!
  for _ in $(seq 600); do
    grep -q __BPFTRACE_NOTIFY_PROBES_ATTACHED "$out/metrics.err" && return
    sleep 0.05
  done
  echo "metrics.sh: rbt did not attach: $(cat "$out/metrics.err")" >&2
  exit 1
}
declare -A t
lat="" maxes=""
for i in $(seq "$runs"); do
  t[none]+="$("$out/storm" "$storm_n") "
  start
  "$out/storm" $((series * 20)) >/dev/null # every key, many times over
  curl -sf "$url" >"$out/metrics.txt"
  samples=$(grep -vc '^#' "$out/metrics.txt")
  bytes=$(wc -c <"$out/metrics.txt")
  keys=$(grep -c '^rbt_calls_total' "$out/metrics.txt" || true)
  run_lat=""
  for _ in $(seq "$scrapes"); do
    run_lat+="$(curl -sf -o /dev/null -w '%{time_total}' "$url" || echo failed) "
  done
  lat+="$run_lat"
  maxes+="$(tr ' ' '\n' <<<"$run_lat" | grep . | sort -g | tail -1) "
  t[quiet]+="$("$out/storm" "$storm_n") "
  (while curl -sf -o /dev/null "$url"; do :; done) &
  scraper=$!
  t[scraped]+="$("$out/storm" "$storm_n") "
  kill "$scraper" 2>/dev/null || true
  wait "$scraper" 2>/dev/null || true
  kill -INT "$pid"
  wait "$pid" || true
done
ms() { awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}'; }
echo "series: $keys keys of @calls exported; $samples samples, $bytes bytes per scrape"
echo "| measure (median of $runs runs) | value |"
echo "|---|---:|"
echo "| scrape latency, median of $((runs * scrapes)) (ms) | $(ms "$(m <<<"$lat")") |"
echo "| scrape latency, median of per-run max (ms) | $(ms "$(m <<<"$maxes")") |"
none=$(m <<<"${t[none]}") quiet=$(m <<<"${t[quiet]}") scraped=$(m <<<"${t[scraped]}")
echo "| $storm_n getppid untraced (ms) | $none |"
echo "| traced, no scrapes (ms) | $quiet |"
echo "| traced, scraped back to back (ms) | $scraped |"
echo "| scraping's share: scraped / quiet | $(awk -v a="$scraped" -v b="$quiet" 'BEGIN {printf "%.2f", a / b}') |"
echo "raw: none=[${t[none]}] quiet=[${t[quiet]}] scraped=[${t[scraped]}] latency_s=[$lat]"
