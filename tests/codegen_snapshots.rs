//! `-d codegen` output for the upstream tcpaccept.bt versions, against the pinned 6.18
//! BTF so the offsets (and so the snapshots) are the same on every machine.

use rbt::btf::Btf;
use rbt::codegen::{self, CompileOptions};
use rbt::{diag, parser, sema};
use std::path::Path;

fn compile_to_disasm(file: &str, options: &CompileOptions) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let src = std::fs::read_to_string(&path).unwrap();
    let btf = Btf::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vmlinux-6.18.btf"))
        .unwrap();
    let render = |d: Vec<diag::Diagnostic>| diag::render(file, &src, &d);
    let ast = parser::parse(&src)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    let typed = sema::analyze(&ast, &btf)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    let compiled = codegen::compile(&typed, options)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    codegen::disasm(&compiled, &src)
}

fn snapshot(name: &str, value: String) {
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, value)
    });
}

#[test]
fn tcpaccept_v0_14_0() {
    snapshot(
        "codegen_tcpaccept_v0.14.0",
        compile_to_disasm("tests/data/upstream/v0.14.0.bt", &CompileOptions::default()),
    );
}

#[test]
fn tcpaccept_v0_17_0() {
    snapshot(
        "codegen_tcpaccept_v0.17.0",
        compile_to_disasm("tests/data/upstream/v0.17.0.bt", &CompileOptions::default()),
    );
}

#[test]
fn tcpaccept_head() {
    snapshot(
        "codegen_tcpaccept_head-e1b7c3934",
        compile_to_disasm(
            "tests/data/upstream/head-e1b7c3934.bt",
            &CompileOptions::default(),
        ),
    );
}

#[test]
fn pid_filter_guards_every_probe_but_begin_and_end() {
    let out = compile_to_disasm(
        "tests/data/upstream/v0.17.0.bt",
        &CompileOptions {
            pid_filter: Some(4242),
        },
    );
    snapshot("codegen_tcpaccept_v0.17.0_pid_filter", out);
}
