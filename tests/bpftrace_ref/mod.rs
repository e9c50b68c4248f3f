//! Shared by the tests that compare rbt with the real bpftrace 0.17 on this host.
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// `Some(reason)` when real bpftrace cannot run here (not root, not installed); see
/// `support::skip`.
pub fn skip_reason(test: &str) -> Option<String> {
    let reason = crate::support::not_root().or_else(|| {
        match Command::new("bpftrace").arg("--version").output() {
            Ok(out) if String::from_utf8_lossy(&out.stdout).contains("v0.17") => None,
            Ok(out) => Some(format!(
                "bpftrace is not v0.17 ({})",
                String::from_utf8_lossy(&out.stdout).trim()
            )),
            Err(e) => Some(format!("cannot run bpftrace: {e}")),
        }
    });
    crate::support::skip_if(test, reason)
}

/// Runs `bpftrace <args> -e <script>` to completion (the script must `exit()`); stdout.
pub fn run_bpftrace(args: &[&str], script: &str) -> Vec<u8> {
    let out = Command::new("bpftrace")
        .args(args)
        .arg("-e")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .expect("run bpftrace");
    assert!(
        out.status.success(),
        "bpftrace failed ({}):\n{}\nscript:\n{script}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `rbt <args> -e <script>` to completion (the script must `exit()`); stdout.
pub fn run_rbt(args: &[&str], script: &str) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_rbt"))
        .args(args)
        .arg("-e")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .expect("run rbt");
    assert!(
        out.status.success(),
        "rbt failed ({}):\n{}\nscript:\n{script}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
