//! `rbt --info`: bpftrace 0.17's `--info` sections (System, Build, Kernel features, Map
//! types, Probe types) filled with what rbt itself detects on this host: each map type
//! by creating a one-entry map of it, each probe type by the kernel interface rbt
//! attaches it through. Sections bpftrace fills from its LLVM build or its helper
//! probes are left out rather than guessed.

use std::fmt::Write;
use std::path::Path;

use crate::abi::{map_type, paths};

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Whether the kernel creates a map of `kind` (a ring buffer needs a page-multiple size).
fn map_supported(kind: u32) -> bool {
    let (key, value, entries) = match kind {
        map_type::RINGBUF => (0, 0, crate::sys::page_size() as u32),
        map_type::STACK_TRACE => (4, 8, 1),
        _ => (4, 4, 1),
    };
    crate::sys::map_create(kind, key, value, entries, "rbt_info").is_ok()
}

/// The report; `btf` is the kernel BTF file rbt would read.
pub fn report(btf: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "System");
    let _ = writeln!(
        out,
        "  OS: {} {} {}",
        read_trimmed("/proc/sys/kernel/ostype"),
        read_trimmed(paths::OSRELEASE),
        read_trimmed("/proc/sys/kernel/version")
    );
    let _ = writeln!(out, "  Arch: {}\n", std::env::consts::ARCH);

    let _ = writeln!(out, "Build");
    let _ = writeln!(
        out,
        "  version: rbt v{} (compatible with bpftrace v{})",
        env!("CARGO_PKG_VERSION"),
        crate::BPFTRACE_COMPAT
    );
    let _ = writeln!(out, "  LLVM: none (rbt emits eBPF instructions itself)");
    let _ = writeln!(out, "  libdw (DWARF support): no\n");

    let tracefs = paths::TRACEFS_DIRS
        .iter()
        .any(|d| Path::new(d).join("events").is_dir());
    let _ = writeln!(out, "Kernel features");
    let _ = writeln!(out, "  btf: {} ({})", yes_no(btf.is_file()), btf.display());
    let _ = writeln!(out, "  tracefs: {}\n", yes_no(tracefs));

    let _ = writeln!(out, "Map types");
    for (name, kind) in [
        ("hash", map_type::HASH),
        ("percpu hash", map_type::PERCPU_HASH),
        ("array", map_type::ARRAY),
        ("percpu array", map_type::PERCPU_ARRAY),
        ("stack_trace", map_type::STACK_TRACE),
        ("perf_event_array", map_type::PERF_EVENT_ARRAY),
        ("ringbuf", map_type::RINGBUF),
    ] {
        let _ = writeln!(out, "  {name}: {}", yes_no(map_supported(kind)));
    }
    let _ = writeln!(out);

    let kprobes = Path::new(paths::KPROBE_PMU).exists()
        || paths::TRACEFS_DIRS
            .iter()
            .any(|d| Path::new(d).join("kprobe_events").exists());
    let perf = Path::new("/proc/sys/kernel/perf_event_paranoid").exists();
    let _ = writeln!(out, "Probe types");
    let _ = writeln!(out, "  kprobe: {}", yes_no(kprobes));
    let _ = writeln!(out, "  tracepoint: {}", yes_no(tracefs));
    let _ = writeln!(
        out,
        "  uprobe: {}",
        yes_no(Path::new(paths::UPROBE_PMU).exists())
    );
    let _ = writeln!(out, "  perf_event: {}", yes_no(perf));
    out
}
