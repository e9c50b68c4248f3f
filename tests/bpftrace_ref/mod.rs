//! Shared by the tests that compare rbt with the real bpftrace 0.17 on this host.
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// `Some(reason)` when real bpftrace cannot run here (not root, not installed). Panics
/// instead under CI, where every facility must be present.
pub fn skip_reason(test: &str) -> Option<String> {
    let reason = if effective_uid() != 0 {
        Some("not running as root".to_string())
    } else {
        match Command::new("bpftrace").arg("--version").output() {
            Ok(out) if String::from_utf8_lossy(&out.stdout).contains("v0.17") => None,
            Ok(out) => Some(format!(
                "bpftrace is not v0.17 ({})",
                String::from_utf8_lossy(&out.stdout).trim()
            )),
            Err(e) => Some(format!("cannot run bpftrace: {e}")),
        }
    };
    if let Some(r) = &reason {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {r} (CI is set, so this test must run)");
        }
        eprintln!("SKIP {test}: {r}");
    }
    reason
}

/// The effective uid, read from /proc (tests stay free of `unsafe`).
pub fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX)
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
