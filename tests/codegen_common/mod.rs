//! Shared by the codegen tests: the pipeline from script to `Compiled`, and the
//! root/BPF skip reason.
#![allow(dead_code)]

use rbt::btf::Btf;
use rbt::codegen::{self, CompileOptions, Compiled};
use rbt::{diag, parser, sema};
use std::path::Path;
use std::sync::OnceLock;

/// The pinned 6.18 BTF: offsets (and so snapshots) are the same on every machine.
pub fn pinned_btf() -> &'static Btf {
    static BTF: OnceLock<Btf> = OnceLock::new();
    BTF.get_or_init(|| {
        Btf::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vmlinux-6.18.btf"))
            .unwrap()
    })
}

pub fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// Parse, analyze and compile `src`; any diagnostic fails the test, rendered.
pub fn compile(file: &str, src: &str, btf: &Btf, options: &CompileOptions) -> Compiled {
    let render = |d: Vec<diag::Diagnostic>| diag::render(file, src, &d);
    let ast = parser::parse(src)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    let typed = sema::analyze(&ast, &btf.into())
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    codegen::compile(&typed, options)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The little-endian unsigned integer of `size` bytes at `offset` of an event record.
pub fn int_at(record: &[u8], offset: usize, size: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..size].copy_from_slice(&record[offset..offset + size]);
    u64::from_le_bytes(bytes)
}

pub fn snapshot(name: &str, value: String) {
    insta::with_settings!({snapshot_path => "../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, value)
    });
}

/// `Some(reason)` when this machine cannot load BPF programs (see `support::skip`).
pub fn skip_reason(test: &str) -> Option<String> {
    let reason = crate::support::not_root().or_else(|| {
        (!Path::new("/sys/kernel/btf/vmlinux").exists())
            .then(|| "kernel without BTF (/sys/kernel/btf/vmlinux)".to_string())
    });
    crate::support::skip_if(test, reason)
}
