//! Shared by the reliability tests: running the `rbt` binary, scratch directories, the
//! no-crash contract and snapshots of exit code and stderr.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::support;

pub const BTF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vmlinux-6.18.btf");

pub fn rbt() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbt"));
    cmd.stdin(Stdio::null());
    cmd
}

/// A scratch directory for one case.
pub fn scratch(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rbt-rel-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// No panic, no abort: an exit code, not a signal.
pub fn assert_no_crash(name: &str, out: &Output) {
    let stderr = stderr_of(out);
    assert!(!stderr.contains("panicked"), "{name}: panicked:\n{stderr}");
    assert!(
        out.status.code().is_some(),
        "{name}: killed by a signal ({:?}), stderr:\n{stderr}",
        out.status
    );
}

/// Snapshots exit code and stderr (bpftrace's RLIMIT_MEMLOCK line never appears: rbt).
pub fn snapshot(name: &str, out: &Output) {
    assert_no_crash(name, out);
    let text = format!("exit: {:?}\n{}", out.status.code(), stderr_of(out));
    insta::with_settings!({snapshot_path => "../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("rel_{name}"), text);
    });
}

/// Checks a compile-time failure against the pinned BTF: exit 1, nothing on stdout.
pub fn compile_error(name: &str, program: &str) {
    let out = rbt().args(["--btf", BTF, "-e", program]).output().unwrap();
    assert_eq!(out.stdout, b"", "{name}: stdout must stay empty");
    assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr_of(&out));
    snapshot(name, &out);
}

/// Skips unless root (BPF programs are loaded).
pub fn skip_unless_root(test: &str) -> bool {
    support::skip_if(test, support::not_root()).is_some()
}
