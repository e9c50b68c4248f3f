#!/usr/bin/env bash
# vmrun.sh: boot a Debian cloud kernel (which has kprobes) under qemu's TCG
# emulator with a small initramfs: busybox, the real bpftrace (the reference
# tracer) with its libraries, Debian's /usr/sbin/tcpaccept.bt as
# /bin/tcpaccept.bt, and the files given with -f. Runs SCRIPT inside as root,
# then powers off. Used by tests/golden_vm.rs and scripts/vm-demo.sh.
#
# usage: vmrun.sh [-k KERNEL_PKG] [-f FILE]... [-m MODULE]... [-o DATA_OUT] SCRIPT
#   -k  Debian kernel package (default linux-image-6.1.0-56-cloud-amd64)
#   -f  host file to put in the VM's /bin (its shared libraries come along)
#   -m  a module of that kernel, by its path under kernel/ without .ko, and its
#       parameters ('fs/xfs/xfs', 'drivers/block/brd rd_size=4096'), loaded with
#       insmod before SCRIPT runs, in the order given
#   -o  host file receiving what the VM writes to /dev/ttyS1 (raw, a channel
#       kept apart from console and kernel messages)
# env: RBT_VM_CACHE (default /var/cache/rbt-vm): kernel packages and the base
#      initramfs, reused across runs; RBT_VM_MEM (MiB, 2048);
#      RBT_VM_TIMEOUT (s, 1200)
# Inside the VM: tracefs, debugfs, bpffs mounted; lo up; cwd /tmp.
# Prints the VM console lines between "@@VM-BEGIN <kernel release>" and
# "@@VM-END rc=N"; exits with the script's rc (1 if the VM did not finish).
# Needs: qemu-system-x86 busybox-static bpftrace cpio gcc libc6-dev, and root
# for bpftrace's headers walk (no KVM needed: nested KVM hangs on CI hosts).
set -euo pipefail
cache=${RBT_VM_CACHE:-/var/cache/rbt-vm}
kpkg=linux-image-6.1.0-56-cloud-amd64
files=()
modules=()
data_out=/dev/null
while getopts "k:f:m:o:" o; do
  case $o in
    k) kpkg=$OPTARG ;;
    f) files+=("$OPTARG") ;;
    m) modules+=("$OPTARG") ;;
    o) data_out=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
script=${1:?usage: vmrun.sh [-k KERNEL_PKG] [-f FILE]... [-m MODULE]... [-o DATA_OUT] SCRIPT}
for t in qemu-system-x86_64 busybox bpftrace cpio gcc apt-get dpkg-deb; do
  command -v "$t" >/dev/null || {
    echo "vmrun.sh: $t missing; apt-get install qemu-system-x86 busybox-static bpftrace cpio gcc libc6-dev" >&2
    exit 2
  }
done
mkdir -p "$cache"

# The kernel: fetched once with apt-get download, unpacked into the cache.
kdir=$cache/$kpkg
if ! compgen -G "$kdir/boot/vmlinuz-*" >/dev/null; then
  deb=$(compgen -G "$cache/${kpkg}_*.deb" | head -1 || true)
  if [[ -z $deb ]]; then
    (cd "$cache" && apt-get download "$kpkg" >/dev/null 2>&1) || {
      echo "vmrun.sh: apt-get download $kpkg failed (try apt-get update)" >&2
      exit 2
    }
    deb=$(compgen -G "$cache/${kpkg}_*.deb" | head -1)
  fi
  rm -rf "$kdir.tmp" && dpkg-deb -x "$deb" "$kdir.tmp" && mv "$kdir.tmp" "$kdir"
fi
kernel=$(compgen -G "$kdir/boot/vmlinuz-*" | head -1)

add() { # copy host file $2 and its shared libraries into root $1
  local root=$1 f=$2 l
  mkdir -p "$root$(dirname "$f")"
  cp -L "$f" "$root$f"
  { ldd "$f" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r l; do
    [[ -e $root$l ]] || { mkdir -p "$root$(dirname "$l")"; cp -L "$l" "$root$l"; }
  done
}

# The base initramfs (busybox, bpftrace, headers, init), cached under a key of
# everything that goes into it.
key=$(cat "$0" "$(command -v bpftrace)" "$(command -v busybox)" /usr/sbin/tcpaccept.bt | md5sum | cut -c1-12)
base=$cache/base-$key.cpio
if [[ ! -s $base ]]; then
  r=$(mktemp -d)
  mkdir -p "$r"/{bin,proc,sys,dev,tmp,etc,root}
  cp "$(command -v busybox)" "$r/bin/busybox"
  for a in $("$r/bin/busybox" --list | grep -vx busybox); do ln -sf busybox "$r/bin/$a"; done
  add "$r" "$(command -v bpftrace)"
  cp /usr/sbin/tcpaccept.bt "$r/bin/"
  # bpftrace 0.17 runs clang over the script's #include <sys/socket.h>: ship
  # exactly the libc headers that pulls in.
  printf '#include <sys/socket.h>\n#include <linux/socket.h>\n' |
    gcc -M -E -x c - 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\/usr\/include\//) print $i}' | sort -u |
    while read -r h; do mkdir -p "$r$(dirname "$h")" && cp -L "$h" "$r$h"; done
  cat >"$r/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tracefs tracefs /sys/kernel/tracing; mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ip link set lo up; export PATH=/bin:/usr/bin:/usr/sbin HOME=/root; cd /tmp
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "@@VM-BEGIN $(uname -r)"
sh /run.sh 2>&1
echo "@@VM-END rc=$?"
poweroff -f
INIT
  chmod +x "$r/init"
  (cd "$r" && find . | cpio -o -H newc 2>/dev/null) >"$base.tmp" && mv "$base.tmp" "$base"
  rm -rf "$r"
fi

x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
mkdir -p "$x/root/bin"
mkdir -p "$x/root/lib/modules"
: >"$x/root/run.sh"
for spec in "${modules[@]}"; do
  read -r m params <<<"$spec"
  ko=$(compgen -G "$kdir/lib/modules/*/kernel/$m.ko*" | head -1 || true)
  [[ -n $ko ]] || { echo "vmrun.sh: $kpkg has no module $m" >&2; exit 2; }
  name=$(basename "$m").ko
  case $ko in
    *.xz) xz -dc "$ko" >"$x/root/lib/modules/$name" ;;
    *) cp "$ko" "$x/root/lib/modules/$name" ;;
  esac
  echo "insmod /lib/modules/$name $params || echo 'vmrun.sh: insmod $name failed'" >>"$x/root/run.sh"
done
cat "$script" >>"$x/root/run.sh"
for f in "${files[@]}"; do
  add "$x/root" "$(readlink -f "$f")"
  cp -L "$f" "$x/root/bin/"
done
(cd "$x/root" && find . | cpio -o -H newc 2>/dev/null) >"$x/extra.cpio"
cat "$base" "$x/extra.cpio" >"$x/initrd.cpio"
timeout "${RBT_VM_TIMEOUT:-1200}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
  -m "${RBT_VM_MEM:-2048}" -smp 2 -nographic -no-reboot -nodefaults \
  -serial stdio -chardev file,id=data,path="$data_out" -serial chardev:data \
  -kernel "$kernel" -initrd "$x/initrd.cpio" -append "console=ttyS0 quiet panic=-1" \
  </dev/null 2>&1 | tr -d '\r' >"$x/console.log" || true
sed -n '/@@VM-BEGIN/,/@@VM-END/p' "$x/console.log" | sed 's/.*@@VM-BEGIN/@@VM-BEGIN/'
rc=$(sed -n 's/.*@@VM-END rc=\([0-9]*\).*/\1/p' "$x/console.log" | tail -1)
if [[ -z $rc ]]; then
  echo "vmrun.sh: the VM did not finish; last console lines:" >&2
  tail -20 "$x/console.log" >&2
  exit 1
fi
exit "$rc"
