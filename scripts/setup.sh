#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks for building, testing and the VM demo.
# Idempotent: installs only missing packages; mounts tracefs if needed.
set -euo pipefail
pkgs=(bpftrace bpftool qemu-system-x86 busybox-static cpio gcc libc6-dev libclang-common-14-dev xfsprogs)
# mdadm without its recommended mail server (the VM's mdflush.bt workload needs only the binary).
norec=(mdadm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for p in "${norec[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "setup: installing $p"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  fi
done
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
if [[ ! -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || echo "setup: could not mount tracefs at /sys/kernel/tracing"
fi
# The README's release build is static musl; rustup ships its std separately.
musl=x86_64-unknown-linux-musl
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$musl"; then
  echo "setup: adding the Rust target $musl"
  rustup target add "$musl" >/dev/null
fi
cargo fetch --locked >/dev/null
# tests/metrics.rs parses rbt's --metrics output with Prometheus' Python client's parser.
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  echo "setup: installing prometheus-client (PyPI)"
  python3 -m pip install --quiet prometheus-client 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages prometheus-client
fi
