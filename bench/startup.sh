#!/usr/bin/env bash
# startup.sh: exec -> every probe live for one script, rbt (one or more builds) vs
# bpftrace 0.17 alternating, as bench/host.sh's startup suite measures it (both print
# `__BPFTRACE_NOTIFY_PROBES_ATTACHED` on stderr once the last probe is attached;
# bench/probe.c -e times it); min / median / max and each build's ratio to bpftrace.
#
# usage: bench/startup.sh RBT_BINARY... [-- SCRIPT]   env: RUNS (5)
#   default SCRIPT: tracepoint:syscalls:sys_enter_* { @[probe] = count(); }
# e.g.   bench/startup.sh /tmp/rbt-old target/x86_64-unknown-linux-musl/release/rbt
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/bench
mkdir -p "$out/host"
runs=${RUNS:-5}
builds=()
while [[ $# -gt 0 && $1 != -- ]]; do builds+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
script=${1:-'tracepoint:syscalls:sys_enter_* { @[probe] = count(); }'}
[[ ${#builds[@]} -gt 0 ]] || { echo "usage: bench/startup.sh RBT_BINARY... [-- SCRIPT]" >&2; exit 2; }
gcc -O2 -o "$out/host/probe" "$repo/bench/probe.c"
export __BPFTRACE_NOTIFY_PROBES_ATTACHED=1
NOTIFY=__BPFTRACE_NOTIFY_PROBES_ATTACHED
stats() {
  sort -g | awk '{v[NR] = $1} END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.1f / %.1f / %.1f %.1f\n", v[1], m, v[NR], m }'
}
tracers=("${builds[@]}" bpftrace)
declare -A times
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$runs"); do
  for t in "${tracers[@]}"; do
    line=$("$out/host/probe" -e "$NOTIFY" -q 200 -t 60000 -- "$t" -e "$script" 2>/dev/null | head -1) || true
    ms=$(sed -n 's/^startup_ms=\([0-9.]*\) .*/\1/p' <<<"$line")
    [[ -n $ms ]] || { echo "startup.sh: $t did not start: $line" >&2; continue; }
    times[$t]+="$ms "
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
bt=$(tr ' ' '\n' <<<"${times[bpftrace]}" | grep -v '^$' | stats)
bt_median=${bt##* }
for t in "${tracers[@]}"; do
  s=$(tr ' ' '\n' <<<"${times[$t]}" | grep -v '^$' | stats)
  ratio=$(awk -v a="${s##* }" -v b="$bt_median" 'BEGIN { printf "%.3f", a / b }')
  echo "$t: min/median/max ${s% *} ms (ratio to bpftrace's median $ratio; runs: ${times[$t]})"
done
