//! The kernel's verifier accepts what codegen emits: every program is loaded (not
//! attached) into the running kernel, compiled against the running kernel's BTF. kprobe
//! programs load even where kprobes cannot attach. Needs root and BPF: skips with the
//! reason otherwise, and fails when CI is set.

mod codegen_common;
mod support;

use codegen_common::*;
use rbt::btf::Btf;
use rbt::codegen::CompileOptions;
use rbt::runtime;
use std::path::Path;

fn assert_loads(test: &str, file: &str, options: &CompileOptions, programs: usize) {
    if skip_reason(test).is_some() {
        return;
    }
    let btf = Btf::load(Path::new("/sys/kernel/btf/vmlinux")).expect("kernel BTF");
    let compiled = compile(file, &read(file), &btf, options);
    assert_eq!(compiled.programs.len(), programs);
    let loaded = runtime::load(&compiled).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(loaded.programs.len(), programs);
}

#[test]
fn tcpaccept_v0_14_0_passes_the_verifier() {
    assert_loads(
        "tcpaccept_v0_14_0_passes_the_verifier",
        "tests/data/upstream/v0.14.0.bt",
        &CompileOptions::default(),
        2,
    );
}

#[test]
fn tcpaccept_v0_17_0_passes_the_verifier() {
    assert_loads(
        "tcpaccept_v0_17_0_passes_the_verifier",
        "tests/data/upstream/v0.17.0.bt",
        &CompileOptions::default(),
        2,
    );
}

#[test]
fn tcpaccept_head_passes_the_verifier() {
    assert_loads(
        "tcpaccept_head_passes_the_verifier",
        "tests/data/upstream/head-e1b7c3934.bt",
        &CompileOptions::default(),
        2,
    );
}

#[test]
fn pid_filtered_tcpaccept_passes_the_verifier() {
    assert_loads(
        "pid_filtered_tcpaccept_passes_the_verifier",
        "tests/data/upstream/v0.17.0.bt",
        &CompileOptions {
            pid_filter: Some(1),
            ..Default::default()
        },
        2,
    );
}

#[test]
fn tracepoint_program_passes_the_verifier() {
    assert_loads(
        "tracepoint_program_passes_the_verifier",
        "tests/data/codegen/tracepoint.bt",
        &CompileOptions::default(),
        1,
    );
}

#[test]
fn kprobe_features_pass_the_verifier() {
    assert_loads(
        "kprobe_features_pass_the_verifier",
        "tests/data/codegen/kprobe.bt",
        &CompileOptions::default(),
        2,
    );
}

#[test]
fn string_comparisons_pass_the_verifier() {
    assert_loads(
        "string_comparisons_pass_the_verifier",
        "tests/data/codegen/strings.bt",
        &CompileOptions::default(),
        1,
    );
}

#[test]
fn tracefs_described_tracepoints_pass_the_verifier() {
    let test = "tracefs_described_tracepoints_pass_the_verifier";
    if !Path::new("/sys/kernel/tracing/events/syscalls").exists() {
        if skip_reason(test).is_none() {
            support::skip(test, "tracefs not mounted at /sys/kernel/tracing");
        }
        return;
    }
    assert_loads(
        test,
        "tests/data/codegen/tracefs.bt",
        &CompileOptions::default(),
        2,
    );
}

#[test]
fn maps_pass_the_verifier() {
    assert_loads(
        "maps_pass_the_verifier",
        "tests/data/codegen/maps.bt",
        &CompileOptions::default(),
        3,
    );
}

/// `BEGIN { @m[1] = 1; ... @m[N] = N; }`: the case bpftrace's issue #3257 reports as
/// quadratic (bpftrace 0.17 takes ~4 s at 1000 statements and over 300 s at 5000 here).
fn keyed_updates(n: usize) -> String {
    let body: String = (1..=n).map(|i| format!("@m[{i}] = {i}; ")).collect();
    format!("BEGIN {{ {body}exit(); }}")
}

/// Conditional jumps (JMP and JMP32 classes) in the first program.
fn branches(compiled: &rbt::codegen::Compiled) -> usize {
    compiled.programs[0]
        .insns
        .iter()
        .filter(|i| matches!(i.code & 0x07, 0x05 | 0x06) && !matches!(i.code >> 4, 0 | 8 | 9)) // not ja, call, exit
        .count()
}

/// A map update costs no branch (a failed one is counted branch-free), so the verifier's
/// work grows linearly with a script's statements and 5000 of them load: with a branch
/// per update, 1000 took seconds to verify and ~4000 passed the verifier's limit of
/// 8192 pending jumps ("The sequence of 8193 jumps is too complex").
#[test]
fn five_thousand_map_updates_pass_the_verifier() {
    let test = "five_thousand_map_updates_pass_the_verifier";
    let options = CompileOptions::default();
    let small = compile("small.bt", &keyed_updates(10), pinned_btf(), &options);
    let large = compile("large.bt", &keyed_updates(5000), pinned_btf(), &options);
    assert_eq!(branches(&small), branches(&large));
    if skip_reason(test).is_some() {
        return;
    }
    let loaded = runtime::load(&large).unwrap_or_else(|e| panic!("5000 updates: {e}"));
    assert_eq!(loaded.programs.len(), 1);
}
