//! `-d codegen` output for the upstream tcpaccept.bt versions and feature scripts,
//! against the pinned 6.18 BTF so offsets (and so the snapshots) are stable.

mod codegen_common;
mod support;

use codegen_common::*;
use rbt::codegen::{self, CompileOptions};

fn disasm(file: &str, options: &CompileOptions) -> String {
    let src = read(file);
    codegen::disasm(&compile(file, &src, pinned_btf(), options), &src)
}

#[test]
fn tcpaccept_v0_14_0() {
    snapshot(
        "codegen_tcpaccept_v0.14.0",
        disasm("tests/data/upstream/v0.14.0.bt", &CompileOptions::default()),
    );
}

#[test]
fn tcpaccept_v0_17_0() {
    snapshot(
        "codegen_tcpaccept_v0.17.0",
        disasm("tests/data/upstream/v0.17.0.bt", &CompileOptions::default()),
    );
}

#[test]
fn tcpaccept_head() {
    snapshot(
        "codegen_tcpaccept_head-e1b7c3934",
        disasm(
            "tests/data/upstream/head-e1b7c3934.bt",
            &CompileOptions::default(),
        ),
    );
}

#[test]
fn pid_filter_guards_every_probe_but_begin_and_end() {
    let out = disasm(
        "tests/data/upstream/v0.17.0.bt",
        &CompileOptions {
            pid_filter: Some(4242),
            ..Default::default()
        },
    );
    let kretprobe = out
        .split("program ")
        .find(|p| p.starts_with("kr_"))
        .unwrap();
    assert!(kretprobe.contains("r1 = 4242"), "{kretprobe}");
    let begin = out
        .split("program ")
        .find(|p| p.starts_with("BEGIN"))
        .unwrap();
    assert!(!begin.contains("4242"), "{begin}");
    snapshot("codegen_tcpaccept_v0.17.0_pid_filter", out);
}

#[test]
fn tracepoint_args() {
    snapshot(
        "codegen_tracepoint",
        disasm(
            "tests/data/codegen/tracepoint.bt",
            &CompileOptions::default(),
        ),
    );
}

#[test]
fn kprobe_features() {
    snapshot(
        "codegen_kprobe",
        disasm("tests/data/codegen/kprobe.bt", &CompileOptions::default()),
    );
}

#[test]
fn strings() {
    snapshot(
        "codegen_strings",
        disasm("tests/data/codegen/strings.bt", &CompileOptions::default()),
    );
}

#[test]
fn exceeding_the_stack_is_a_clear_error() {
    // 40 string variables live on the stack: 40 * 16 bytes.
    let vars: String = (0..40).map(|i| format!("  $v{i} = comm;\n")).collect();
    let src = format!("BEGIN {{\n{vars}}}\n");
    let ast = rbt::parser::parse(&src).unwrap();
    let typed = rbt::sema::analyze(&ast, &pinned_btf().into()).unwrap();
    let diags = codegen::compile(&typed, &CompileOptions::default()).unwrap_err();
    let out = rbt::diag::render("big.bt", &src, &diags);
    assert!(
        out.starts_with(
            "big.bt:1:1: error: program needs 640 bytes of stack; the BPF limit is 512\n"
        ),
        "{out}"
    );
}

#[test]
fn maps() {
    snapshot(
        "codegen_maps",
        disasm("tests/data/codegen/maps.bt", &CompileOptions::default()),
    );
}
