#!/usr/bin/env bash
# vm-demo.sh: the main job, shown. rbt runs scripts/tcpaccept.bt (upstream
# tcpaccept.bt, unchanged) next to real bpftrace 0.17 running Debian's
# tcpaccept.bt, both tracing the same TCP accepts (IPv4, IPv6, IPv4-mapped;
# tests/vm/acceptload.c). Prints both outputs side by side, line by line, and
# whether they are identical apart from the time stamp.
# On a kernel without kprobes (like this project's dev and CI hosts) it boots
# a Debian 6.1 kernel under qemu (tests/vm/vmrun.sh, about a minute).
#
# usage: scripts/vm-demo.sh [-k KERNEL_PKG] [-n CONNECTIONS_PER_LISTENER]
# Needs root, bpftrace, gcc; for the VM also qemu-system-x86 busybox-static cpio.
set -euo pipefail
cd "$(dirname "$0")/.."
kpkg=linux-image-6.1.0-56-cloud-amd64
n=4
while getopts "k:n:" o; do
  case $o in
    k) kpkg=$OPTARG ;;
    n) n=$OPTARG ;;
    *) exit 2 ;;
  esac
done
./scripts/setup.sh
echo "== building rbt (release)"
cargo build --release --locked --quiet --target x86_64-unknown-linux-musl
rbt=target/x86_64-unknown-linux-musl/release/rbt # the README's static build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -static -o "$work/acceptload" tests/vm/acceptload.c
# In the VM /bin/tcpaccept.bt is Debian's copy (bpftrace's script): keep
# rbt's under another name.
cp scripts/tcpaccept.bt "$work/scripts-tcpaccept.bt"
workload="acceptload -c 1 -n $n -B 4 -l 4:8080:16 -l 6:8081:16 -l m:8082:16"
accepts=$((3 * n))
out=$work/golden/demo
if [[ -e /sys/bus/event_source/devices/kprobe ]]; then
  echo "== this kernel has kprobes: tracing on the host"
  PATH=$work:$PATH RBT=$PWD/$rbt VERSIONS=scripts-tcpaccept SCRIPTS=$work \
    REF="bpftrace /usr/sbin/tcpaccept.bt" GOLDEN_DIR=$work/golden GOLDEN_SINK=/dev/null \
    sh -c '. tests/vm/golden.sh && scenario demo "$1" "$2"' sh "$accepts" "$workload"
  kernel=$(uname -r)
else
  echo "== this kernel has no kprobes: booting $kpkg under qemu"
  cat >"$work/run.sh" <<RUN
. /bin/golden.sh
RBT=/bin/rbt VERSIONS=scripts-tcpaccept GOLDEN_SINK=/dev/null
scenario demo $accepts '$workload'
for f in bpftrace.out rbt-scripts-tcpaccept.out rbt-scripts-tcpaccept.err; do
  echo "@@OUT \$f"; cat "/tmp/golden/demo/\$f"
done
echo "@@OUT end"
RUN
  tests/vm/vmrun.sh -k "$kpkg" -f "$rbt" -f "$work/acceptload" -f tests/vm/golden.sh \
    -f "$work/scripts-tcpaccept.bt" "$work/run.sh" >"$work/console" || {
    cat "$work/console"
    exit 1
  }
  grep '^scenario demo' "$work/console" || true
  mkdir -p "$out"
  awk -v dir="$out" '/^@@OUT /{f = dir "/" $2; printf "" > f; next} f {print > f}' "$work/console"
  kernel=$(sed -n 's/^@@VM-BEGIN //p' "$work/console")
fi

mask() { sed -E 's/^[0-9]{2}:[0-9]{2}:[0-9]{2}/HH:MM:SS/' "$1"; }
echo
echo "== rbt scripts/tcpaccept.bt on $kernel"
cat "$out/rbt-scripts-tcpaccept.out"
if [[ -s $out/rbt-scripts-tcpaccept.err ]]; then
  echo "== rbt stderr"
  cat "$out/rbt-scripts-tcpaccept.err"
fi
echo
echo "== side by side, line by line (bpftrace 0.17 running Debian's tcpaccept.bt, then rbt)"
paste -d '\n' <(sed 's/^/bpftrace | /' "$out/bpftrace.out") <(sed 's/^/rbt      | /' "$out/rbt-scripts-tcpaccept.out")
echo
if diff <(mask "$out/bpftrace.out") <(mask "$out/rbt-scripts-tcpaccept.out") >"$work/diff"; then
  echo "== identical to bpftrace's output (apart from the time stamps): $accepts accepts"
else
  echo "== DIFFERENT from bpftrace's output (time stamps masked; < bpftrace, > rbt):"
  cat "$work/diff"
  exit 1
fi
