#!/usr/bin/env bash
# The test command: set up a fresh machine, check formatting and lints, run every test
# (unit, snapshot, host BPF/tracepoint end-to-end, and the VM golden suite).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
./scripts/image.sh # the container image; tests/fleet.rs runs its binary
cargo test --locked -- --test-threads=1
