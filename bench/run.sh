#!/usr/bin/env bash
# run.sh: benchmark rbt against bpftrace 0.17 and libbpf-tools' tcptracer (the C
# floor) on tcpaccept.bt, in one VM boot per kernel, after bench/host.sh's host
# benchmark (HOST=0 skips it); prints a markdown report (also written to
# target/bench/report.md). docs/PERFORMANCE.md explains the numbers.
#
# usage: bench/run.sh [KERNEL_PKG...]   (default: the Debian 6.1 and 6.12 cloud kernels)
# env: HOST (0: skip bench/host.sh), RUNS (startup runs per tool, 5), EVENT_RUNS (throughput runs per tool, 3),
#      ACCEPTS (accepts per throughput run, 3000), BURST_LISTENERS (the burst is
#      this many times ACCEPTS, 10), VMRUN (tests/vm/vmrun.sh), RBT (a prebuilt rbt;
#      default: cargo build --release for the static musl target), RBT_ALT (another
#      rbt build whose startup and RSS are measured alongside, e.g. another opt-level)
# Needs: what tests/vm/vmrun.sh needs, plus gcc and libbpf-tools (apt-get install libbpf-tools).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/bench
mkdir -p "$out"
vmrun=${VMRUN:-$repo/tests/vm/vmrun.sh}
kernels=("$@")
[[ ${#kernels[@]} -gt 0 ]] || kernels=(linux-image-6.1.0-56-cloud-amd64 linux-image-6.12.117+deb12-cloud-amd64-unsigned)
"$repo/scripts/setup.sh"
command -v tcptracer >/dev/null || [[ -x /usr/sbin/tcptracer ]] ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbpf-tools >/dev/null
tcptracer=$(command -v tcptracer || echo /usr/sbin/tcptracer)
[[ -x $tcptracer ]] || { echo "run.sh: tcptracer missing: apt-get install libbpf-tools" >&2; exit 2; }

if [[ -z ${RBT:-} ]]; then
  # The README's static musl build; scripts/setup.sh (above) installed the target.
  (cd "$repo" && cargo build --release --target x86_64-unknown-linux-musl)
  RBT=$repo/target/x86_64-unknown-linux-musl/release/rbt
fi
alt=()
if [[ -n ${RBT_ALT:-} ]]; then cp "$RBT_ALT" "$out/rbt-alt" && alt=(-f "$out/rbt-alt"); fi
gcc -O2 -static -o "$out/probe" "$repo/bench/probe.c"
gcc -O2 -static -o "$out/acceptload" "${ACCEPTLOAD_C:-$repo/tests/vm/acceptload.c}"
{
  echo "RUNS=${RUNS:-5} EVENT_RUNS=${EVENT_RUNS:-3} ACCEPTS=${ACCEPTS:-3000} BURST_LISTENERS=${BURST_LISTENERS:-10}"
  cat "$repo/bench/vm.sh"
} >"$out/run-in-vm.sh"

# Installed size of a binary and the shared libraries it loads.
with_libs() {
  { echo "$1"; ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}'; } |
    xargs -r readlink -f | sort -u | xargs -r stat -L -c %s | awk '{s+=$1} END {print s}'
}
size() { stat -L -c %s "$1"; }
mb() { awk -v b="$1" 'BEGIN {printf "%.2f MB", b / 1048576}'; }

# min/median/max of the numbers on stdin, formatted with %.Nf ($1 digits).
stats() {
  sort -g | awk -v d="${1:-0}" '{v[NR] = $1} END {
    if (NR == 0) { print "n/a"; exit }
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    f = "%." d "f"; printf f " / " f " / " f "\n", v[1], m, v[NR] }'
}
median() { sort -g | awk '{v[NR] = $1} END { if (NR == 0) print 0; else print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# field TOOL KIND KEY: every value of KEY on that tool's lines of that kind.
field() {
  grep "^@@R tool=$1 kind=$2 " "$log" | grep -v ' stderr: ' | tr ' ' '\n' | sed -n "s/^$3=//p"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

report() { # report KERNEL_PKG: one markdown section from $log
  local rbt_ms bt_ms tt_ms rbt_kb bt_kb tt_kb base_ms rbt_w bt_w
  rbt_ms=$(field rbt startup startup_ms | median)
  bt_ms=$(field bpftrace startup startup_ms | median)
  tt_ms=$(field tcptracer startup startup_ms | median)
  rbt_kb=$(field rbt startup hwm_kb | median)
  bt_kb=$(field bpftrace startup hwm_kb | median)
  tt_kb=$(field tcptracer startup hwm_kb | median)
  echo "### $(sed -n 's/^@@R kind=machine //p' "$log")"
  echo
  echo "| metric | rbt | bpftrace 0.17 | tcptracer (libbpf-tools) | rbt / bpftrace | rbt / tcptracer |"
  echo "| --- | --- | --- | --- | --- | --- |"
  echo "| startup, exec -> header (ms, min / median / max) | $(field rbt startup startup_ms | stats 1) | $(field bpftrace startup startup_ms | stats 1) | $(field tcptracer startup startup_ms | stats 1) | $(ratio "$rbt_ms" "$bt_ms") | $(ratio "$rbt_ms" "$tt_ms") |"
  echo "| peak RSS, VmHWM (KB, min / median / max) | $(field rbt startup hwm_kb | stats) | $(field bpftrace startup hwm_kb | stats) | $(field tcptracer startup hwm_kb | stats) | $(ratio "$rbt_kb" "$bt_kb") | $(ratio "$rbt_kb" "$tt_kb") |"
  if grep -q '^@@R tool=rbt-alt ' "$log"; then
    echo "| RBT_ALT ($(mb "$(size "$out/rbt-alt")")): startup ms / VmHWM KB | $(field rbt-alt startup startup_ms | stats 1) / $(field rbt-alt startup hwm_kb | stats) | | | $(ratio "$(field rbt-alt startup startup_ms | median)" "$bt_ms") | $(ratio "$(field rbt-alt startup startup_ms | median)" "$tt_ms") |"
  fi
  echo "| ready, exec -> first event traced (ms, min / median / max) | $(field rbt startup ready_ms | stats 1) | $(field bpftrace startup ready_ms | stats 1) | $(field tcptracer startup ready_ms | stats 1) | $(ratio "$(field rbt startup ready_ms | median)" "$(field bpftrace startup ready_ms | median)") | $(ratio "$(field rbt startup ready_ms | median)" "$(field tcptracer startup ready_ms | median)") |"
  echo "| binary (+ shared libraries) | $(mb "$(size "$RBT")") ($(mb "$(with_libs "$RBT")")) | $(mb "$(size "$(command -v bpftrace)")") ($(mb "$(with_libs "$(command -v bpftrace)")")) | $(mb "$(size "$tcptracer")") ($(mb "$(with_libs "$tcptracer")")) | $(ratio "$(with_libs "$RBT")" "$(with_libs "$(command -v bpftrace)")") | $(ratio "$(with_libs "$RBT")" "$(with_libs "$tcptracer")") |"
  echo
  base_ms=$(field none throughput workload_ms | median)
  echo "| $ACCEPTS accepts at full speed | untraced | rbt | bpftrace 0.17 |"
  echo "| --- | --- | --- | --- |"
  rbt_w=$(field rbt throughput workload_ms | median)
  bt_w=$(field bpftrace throughput workload_ms | median)
  echo "| workload time (ms, min / median / max) | $(field none throughput workload_ms | stats) | $(field rbt throughput workload_ms | stats) | $(field bpftrace throughput workload_ms | stats) |"
  echo "| accepts/s (median) | $(awk -v n="$ACCEPTS" -v t="$base_ms" 'BEGIN{printf "%.0f", n*1000/t}') | $(awk -v n="$ACCEPTS" -v t="$rbt_w" 'BEGIN{printf "%.0f", n*1000/t}') | $(awk -v n="$ACCEPTS" -v t="$bt_w" 'BEGIN{printf "%.0f", n*1000/t}') |"
  echo "| slowdown vs untraced (median) | - | $(awk -v a="$rbt_w" -v b="$base_ms" 'BEGIN{printf "%+.1f%%", (a/b-1)*100}') | $(awk -v a="$bt_w" -v b="$base_ms" 'BEGIN{printf "%+.1f%%", (a/b-1)*100}') |"
  echo "| events received / lost per run (expected $ACCEPTS) | - | $(field rbt throughput events | tr '\n' ' ')/ $(field rbt throughput lost | tr '\n' ' ') | $(field bpftrace throughput events | tr '\n' ' ')/ $(field bpftrace throughput lost | tr '\n' ' ') |"
  local burst=$((ACCEPTS * BURST_LISTENERS))
  echo "| burst: $burst accepts, received / lost (received + lost) | - | $(field rbt burst events) / $(field rbt burst lost) ($(($(field rbt burst events) + $(field rbt burst lost)))) | $(field bpftrace burst events) / $(field bpftrace burst lost) ($(($(field bpftrace burst events) + $(field bpftrace burst lost)))) |"
  echo "| burst workload time (ms) | $(field none burst workload_ms) | $(field rbt burst workload_ms) | $(field bpftrace burst workload_ms) |"
  echo
  echo "rbt startup by phase (RBT_TIMINGS=1, median of $RUNS runs; btf read/parse/index run on a"
  echo "second thread while the script is read and parsed; the header is printed by BEGIN, before attach):"
  echo
  echo "| phase | ms | ms since main() |"
  echo "| --- | --- | --- |"
  local phase lines
  # shellcheck disable=SC2001
  grep '^@@R tool=rbt kind=startup .* stderr: rbt: timing: ' "$log" | sed 's/.*rbt: timing: //; s/ [0-9.]* ms (total.*//' | awk '!seen[$0]++' |
    while read -r phase; do
      lines=$(grep "^@@R tool=rbt kind=startup .* stderr: rbt: timing: $phase [0-9]" "$log")
      echo "| $phase | $(sed 's/.* \([0-9.]*\) ms (total.*/\1/' <<<"$lines" | median) | $(sed 's/.*(total \([0-9.]*\) ms).*/\1/' <<<"$lines" | median) |"
    done
  echo
}

eval "$(head -1 "$out/run-in-vm.sh")"
{
  if [[ ${HOST:-1} != 0 ]]; then
    RBT=$RBT "$repo/bench/host.sh" >/dev/null
    cat "$out/host.md"
  fi
  echo "## rbt vs bpftrace 0.17 vs libbpf-tools on tcpaccept.bt ($(date -u +%Y-%m-%d), host $(uname -r), $(nproc) host cpus)"
  echo
} >"$out/report.md"
for k in "${kernels[@]}"; do
  log=$out/$k.log
  echo "run.sh: booting $k" >&2
  "$vmrun" -k "$k" -f "$RBT" -f "$out/probe" -f "$out/acceptload" -f "$tcptracer" "${alt[@]}" "$out/run-in-vm.sh" >"$log" || {
    echo "run.sh: the VM run on $k failed; see $log" >&2
    exit 1
  }
  report "$k" >>"$out/report.md"
done
cat "$out/report.md"
