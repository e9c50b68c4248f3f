#!/usr/bin/env bash
# maps.sh: host benchmark of map-heavy tracing, rbt vs bpftrace 0.17 side by side,
# alternating runs (docs/PERFORMANCE.md, "Maps"). Two measurements:
#  1. per-event cost: a getppid(2) storm (STORM calls) untraced, then under each tracer
#     running `tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }`; slowdown =
#     traced / untraced wall time of the storm;
#  2. printing a map of KEYS keys at exit: the storm's calls each make a key
#     (`@[nsecs] = count()`, BPFTRACE_MAP_KEYS_MAX raised for both), then SIGINT; the
#     time from SIGINT to the tracer's exit, its output going to a file.
# usage: bench/maps.sh   env: RUNS (3), STORM (2000000), KEYS (100000), RBT (a prebuilt
# rbt; default: cargo build --release)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/bench
mkdir -p "$out"
runs=${RUNS:-3} storm_n=${STORM:-2000000} keys=${KEYS:-100000}
if [[ -z ${RBT:-} ]]; then
  (cd "$repo" && cargo build --release -q --target x86_64-unknown-linux-musl)
  RBT=$repo/target/x86_64-unknown-linux-musl/release/rbt # the README's static build
fi
gcc -O2 -o "$out/storm" "$repo/bench/storm.c"
now_ms() { date +%s%3N; }

# start TRACER SCRIPT OUTFILE: start in the background, wait until attached.
start() {
  rm -f "$3" "$3.err" # else a previous run's marker is seen before this tracer attached
  __BPFTRACE_NOTIFY_PROBES_ATTACHED=1 "$1" -e "$2" >"$3" 2>"$3.err" &
  pid=$!
  for _ in $(seq 600); do
    grep -q __BPFTRACE_NOTIFY_PROBES_ATTACHED "$3.err" && return
    sleep 0.05
  done
  echo "maps.sh: $1 did not attach: $(cat "$3.err")" >&2
  exit 1
}
stop() { # SIGINT, then the ms until exit in $elapsed (not a subshell: it must wait)
  local t0
  t0=$(now_ms)
  kill -INT "$pid"
  wait "$pid" || true
  elapsed=$(($(now_ms) - t0))
}
median() { sort -g | awk '{v[NR] = $1} END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

count_script='tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }'
keys_script='tracepoint:syscalls:sys_enter_getppid /comm == "storm"/ { @[nsecs] = count(); }'
declare -A storm print
for i in $(seq "$runs"); do
  storm[none]+="$("$out/storm" "$storm_n") "
  for t in rbt bpftrace; do
    bin=$RBT; [[ $t == bpftrace ]] && bin=bpftrace
    start "$bin" "$count_script" "$out/maps-$t.out"
    storm[$t]+="$("$out/storm" "$storm_n") "
    stop
    BPFTRACE_MAP_KEYS_MAX=$((keys * 2)) start "$bin" "$keys_script" "$out/keys-$t.out"
    "$out/storm" "$keys" >/dev/null
    stop
    print[$t]+="$elapsed "
    lines=$(grep -c '^@\[' "$out/keys-$t.out" || true)
    [[ $lines -eq $keys ]] || echo "maps.sh: $t printed $lines of $keys keys" >&2
  done
done
m() { tr ' ' '\n' | grep . | median; }
none=$(m <<<"${storm[none]}")
echo "| measure (median of $runs, ms) | untraced | rbt | bpftrace | rbt / bpftrace |"
echo "|---|---:|---:|---:|---:|"
r=$(m <<<"${storm[rbt]}") b=$(m <<<"${storm[bpftrace]}")
echo "| $storm_n getppid, @[comm] = count() | $none | $r | $b | $(awk -v a="$r" -v b="$b" 'BEGIN {printf "%.2f", a / b}') |"
echo "| slowdown (traced / untraced) | 1 | $(awk -v a="$r" -v n="$none" 'BEGIN {printf "%.2f", a / n}') | $(awk -v a="$b" -v n="$none" 'BEGIN {printf "%.2f", a / n}') | |"
r=$(m <<<"${print[rbt]}") b=$(m <<<"${print[bpftrace]}")
echo "| SIGINT to exit, printing $keys keys | | $r | $b | $(awk -v a="$r" -v b="$b" 'BEGIN {printf "%.3f", a / b}') |"
echo "raw: storm none=[${storm[none]}] rbt=[${storm[rbt]}] bpftrace=[${storm[bpftrace]}]; print rbt=[${print[rbt]}] bpftrace=[${print[bpftrace]}]"
