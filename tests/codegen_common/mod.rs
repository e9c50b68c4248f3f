//! Shared by the codegen tests: the pipeline from script to `Compiled`, and the
//! root/BPF skip rule.
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
    let typed = sema::analyze(&ast, btf)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"));
    codegen::compile(&typed, options)
        .map_err(render)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn snapshot(name: &str, value: String) {
    insta::with_settings!({snapshot_path => "../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, value)
    });
}

/// `Some(reason)` when this machine cannot load BPF programs; panics instead under CI.
pub fn skip_reason(test: &str) -> Option<String> {
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
