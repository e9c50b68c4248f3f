//! The kernel's verifier accepts what codegen emits: every program of the upstream
//! tcpaccept.bt versions is loaded (not attached) into the running kernel. kprobe-type
//! programs load even where kprobes cannot attach. Needs root and BPF: skips with the
//! reason otherwise, and fails when CI is set.

use rbt::btf::Btf;
use rbt::codegen::{self, CompileOptions, Compiled};
use rbt::{diag, parser, runtime, sema};
use std::path::Path;

fn skip_reason(test: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u32>().ok());
    let reason = if euid != Some(0) {
        Some("not running as root".to_string())
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("kernel without BTF (/sys/kernel/btf/vmlinux)".to_string())
    } else {
        None
    };
    if let Some(r) = &reason {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {r} (CI is set, so this test must run)");
        }
        eprintln!("SKIP {test}: {r}");
    }
    reason
}

/// Compile against the running kernel's BTF: offsets must match the kernel that verifies.
fn compile(file: &str, options: &CompileOptions) -> Compiled {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let btf = Btf::load(Path::new("/sys/kernel/btf/vmlinux")).expect("kernel BTF");
    let render = |d: Vec<diag::Diagnostic>| diag::render(file, &src, &d);
    let ast = parser::parse(&src)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    let typed = sema::analyze(&ast, &btf)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    codegen::compile(&typed, options)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn assert_loads(test: &str, file: &str, options: &CompileOptions) {
    if skip_reason(test).is_some() {
        return;
    }
    let compiled = compile(file, options);
    let loaded = runtime::load(&compiled).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(loaded.programs.len(), compiled.programs.len());
    assert_eq!(compiled.programs.len(), 2, "BEGIN and the kretprobe");
}

#[test]
fn tcpaccept_v0_14_0_passes_the_verifier() {
    assert_loads(
        "tcpaccept_v0_14_0_passes_the_verifier",
        "tests/data/upstream/v0.14.0.bt",
        &CompileOptions::default(),
    );
}

#[test]
fn tcpaccept_v0_17_0_passes_the_verifier() {
    assert_loads(
        "tcpaccept_v0_17_0_passes_the_verifier",
        "tests/data/upstream/v0.17.0.bt",
        &CompileOptions::default(),
    );
}

#[test]
fn tcpaccept_head_passes_the_verifier() {
    assert_loads(
        "tcpaccept_head_passes_the_verifier",
        "tests/data/upstream/head-e1b7c3934.bt",
        &CompileOptions::default(),
    );
}

#[test]
fn pid_filtered_tcpaccept_passes_the_verifier() {
    assert_loads(
        "pid_filtered_tcpaccept_passes_the_verifier",
        "tests/data/upstream/v0.17.0.bt",
        &CompileOptions {
            pid_filter: Some(1),
        },
    );
}
