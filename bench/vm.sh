# vm.sh: the in-VM half of the benchmarks (bench/run.sh boots the VM with it).
# Runs rbt, bpftrace and libbpf-tools' tcptracer alternately through bench/probe.c
# and prints one "@@R tool=T kind=K run=I key=value..." line per measurement
# (plus "@@R ... stderr: ..." lines: rbt's RBT_TIMINGS phases).
# Inputs (set by run.sh): RUNS (startup runs per tool), EVENT_RUNS (throughput
# runs per tool), ACCEPTS (accepts per throughput run), BURST_LISTENERS
# (listeners of ACCEPTS accepts each in the burst run). Optional /bin/rbt-alt: another
# build of rbt (e.g. another opt-level), timed alongside.
# Every tool runs the same script: /bin/tcpaccept.bt, Debian's copy (v0.17.0).
# shellcheck shell=sh
set -u
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
script=/bin/tcpaccept.bt

r() { # r TOOL KIND RUN PROBE-ARGS...: one measurement, tagged
  tag="tool=$1 kind=$2 run=$3"
  shift 3
  probe "$@" 2>&1 | sed "s/^/@@R $tag /"
}

echo "@@R kind=machine kernel=$(uname -r) cpus=$(nproc) mem_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo) cpu=$(awk -F': ' '/model name/{gsub(/ /,"_",$2); print $2; exit}' /proc/cpuinfo)"
bpftrace --version 2>&1 | sed 's/^/@@R kind=version tool=bpftrace /'

i=1
while [ "$i" -le "$RUNS" ]; do
  r rbt startup "$i" -- env RBT_TIMINGS=1 rbt "$script"
  r bpftrace startup "$i" -- bpftrace "$script"
  r tcptracer startup "$i" -m "T " -- tcptracer
  if [ -x /bin/rbt-alt ]; then r rbt-alt startup "$i" -- env RBT_TIMINGS=1 rbt-alt "$script"; fi
  i=$((i + 1))
done

load="acceptload -l 4:9000:128 -n $ACCEPTS -B 64"
i=1
while [ "$i" -le "$EVENT_RUNS" ]; do
  r none throughput "$i" -w "$load"
  r rbt throughput "$i" -q 1000 -w "$load" -- rbt "$script"
  r bpftrace throughput "$i" -q 1000 -w "$load" -- bpftrace "$script"
  i=$((i + 1))
done

# The burst: BURST_LISTENERS x ACCEPTS accepts in batches of 1000, as fast as the
# kernel takes them; separate listener ports keep every 4-tuple fresh.
burst="acceptload -n $ACCEPTS -B 1000"
l=1
while [ "$l" -le "$BURST_LISTENERS" ]; do
  burst="$burst -l 4:$((9100 + l)):1024"
  l=$((l + 1))
done
r none burst 1 -w "$burst"
r rbt burst 1 -q 2000 -t 120000 -w "$burst" -- rbt "$script"
r bpftrace burst 1 -q 2000 -t 120000 -w "$burst" -- bpftrace "$script"
