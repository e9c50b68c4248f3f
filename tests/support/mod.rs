//! The one rule for tests that need something of this machine (root, BPF, tracefs,
//! bpftrace, qemu): where it is missing, say so and skip — except under CI, where every
//! facility is present, so a missing one fails the test.
#![allow(dead_code)]

/// A missing facility: panics with `reason` when the env var CI is set, else prints
/// `SKIP <test>: <reason>` to stderr (the caller then returns).
pub fn skip(test: &str, reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {reason} (CI is set, so this test must run)");
    }
    eprintln!("SKIP {test}: {reason}");
}

/// [`skip`]s when there is a reason, and passes it on.
pub fn skip_if(test: &str, reason: Option<String>) -> Option<String> {
    if let Some(r) = &reason {
        skip(test, r);
    }
    reason
}

/// `Some("not running as root")` unless root.
pub fn not_root() -> Option<String> {
    (effective_uid() != 0).then(|| "not running as root".to_string())
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

/// Whether this kernel has kprobes: the kprobe PMU, or `kprobe_events` in tracefs
/// (mounted at either place).
pub fn kernel_has_kprobes() -> bool {
    use std::path::Path;
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
}

/// Runs `cmd` to completion; when it cannot be started, [`skip`]s with
/// `cannot run <program>: <error>` and returns `None`.
pub fn output_or_skip(test: &str, cmd: &mut std::process::Command) -> Option<std::process::Output> {
    match cmd.output() {
        Ok(out) => Some(out),
        Err(e) => {
            let program = cmd.get_program().to_string_lossy().into_owned();
            skip(test, &format!("cannot run {program}: {e}"));
            None
        }
    }
}

/// Builds the test programs tests/data/uprobe/ holds into a fresh directory named by
/// `tag`, one `gcc -O1 ARGS` per entry (sources named by file name); `Err` says what
/// failed.
pub fn build_uprobe_programs(tag: &str, builds: &[&[&str]]) -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("rbt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    let sources = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/uprobe/");
    for args in builds {
        let args = args.iter().map(|a| match a.ends_with(".c") {
            true => format!("{sources}{a}"),
            false => a.replace("{dir}", &dir.display().to_string()),
        });
        let args: Vec<String> = args.collect();
        let status = std::process::Command::new("gcc")
            .arg("-O1")
            .args(&args)
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("cannot run gcc: {e}"))?;
        if !status.success() {
            return Err(format!("gcc {args:?} failed: {status}"));
        }
    }
    Ok(dir)
}
