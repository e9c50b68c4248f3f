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

/// Builds the deterministic workload (tests/data/workload/rbtwl.c) static — so its
/// syscalls do not depend on the dynamic loader — as `name` in a fresh directory: its
/// comm is `name` (at most 15 bytes), which the tests' scripts filter on. `None` when
/// gcc cannot build it.
pub fn build_workload(name: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("rbt-workload-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let out = dir.join(name);
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workload/rbtwl.c");
    let status = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(src)
        .status();
    matches!(status, Ok(s) if s.success()).then_some(out)
}

/// Runs `tracer args -e script tail...` to completion; its stdout, or why it failed.
pub fn run_tracer(
    tracer: &str,
    args: &[&str],
    script: &str,
    tail: &[&str],
) -> Result<String, String> {
    let out = Command::new(tracer)
        .args(args)
        .arg("-e")
        .arg(script)
        .args(tail)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {tracer}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{tracer} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The message of the first diagnostic on stderr (after bpftrace's `ERROR: ` or rbt's
/// `error: `).
pub fn error_message(stderr: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.contains("RLIMIT_MEMLOCK"))
        .find_map(|l| {
            l.split_once("ERROR: ")
                .or_else(|| l.split_once("error: "))
                .map(|(_, m)| m.to_string())
        })
}

/// For each script bpftrace 0.17 rejects: a line for every one whose first error
/// under rbt differs from bpftrace's (or that rbt accepts, or, with `spanned`, whose
/// error does not point into the script with a caret).
pub fn error_mismatches(scripts: &[&str], spanned: bool) -> Vec<String> {
    let rbt = env!("CARGO_BIN_EXE_rbt");
    let run = |tracer: &str, script: &str| {
        Command::new(tracer)
            .args(["-e", script])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"))
    };
    let mut failures = Vec::new();
    for script in scripts {
        let (theirs, ours) = (run("bpftrace", script), run(rbt, script));
        assert!(!theirs.status.success(), "bpftrace accepts {script}");
        let want = error_message(&theirs.stderr);
        assert!(want.is_some(), "bpftrace gave no message for {script}");
        let have = error_message(&ours.stderr);
        let stderr = String::from_utf8_lossy(&ours.stderr);
        let points = stderr.starts_with("stdin:1:") && stderr.lines().any(|l| l.contains('^'));
        if ours.status.success() || want != have || (spanned && !points) {
            failures.push(format!("{script}: bpftrace {want:?}, rbt {stderr}"));
        }
    }
    failures
}

/// Output formats to compare in: bpftrace's text, and text then `-f json`.
pub const TEXT: &[&[&str]] = &[&[]];
pub const TEXT_AND_JSON: &[&[&str]] = &[&[], &["-f", "json"]];

/// Every script (which both tracers must run to completion) under bpftrace and rbt
/// with `args` plus each of `formats`: a description of each difference in stdout.
pub fn output_mismatches<S: AsRef<str>>(
    scripts: &[S],
    args: &[&str],
    formats: &[&[&str]],
) -> Vec<String> {
    let rbt = env!("CARGO_BIN_EXE_rbt");
    let mut failures = Vec::new();
    for script in scripts.iter().map(AsRef::as_ref) {
        for format in formats {
            let args: Vec<&str> = args.iter().chain(format.iter()).copied().collect();
            let expected = run_tracer("bpftrace", &args, script, &[])
                .unwrap_or_else(|e| panic!("bpftrace must run the script {script:?}: {e}"));
            match run_tracer(rbt, &args, script, &[]) {
                Ok(got) if got == expected => {}
                Ok(got) => failures.push(format!(
                    "{args:?} {script}\n--- bpftrace\n{expected}--- rbt\n{got}"
                )),
                Err(e) => failures.push(format!("{args:?} {script}\n{e}")),
            }
        }
    }
    failures
}

/// Fails with every difference [`output_mismatches`] found among `comparisons`.
pub fn assert_no_mismatches(failures: Vec<String>, comparisons: usize) {
    assert!(
        failures.is_empty(),
        "{} of {comparisons} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Starts `tracer args -e script` and returns once its probes are attached (both
/// tracers print `__BPFTRACE_NOTIFY_PROBES_ATTACHED` on stderr when asked to); stdout
/// is piped, stderr drained from then on so the tracer never blocks on it.
pub fn start_attached(tracer: &str, args: &[&str], script: &str) -> std::process::Child {
    use std::io::Read;
    let mut child = Command::new(tracer)
        .args(args)
        .arg("-e")
        .arg(script)
        .env("__BPFTRACE_NOTIFY_PROBES_ATTACHED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"));
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("__BPFTRACE_NOTIFY_PROBES_ATTACHED") {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => panic!(
                "{tracer} ended before attaching: {}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

/// A uprobe test's turn and its built test programs, or `None` after saying which
/// facility is missing. One uprobe test runs at a time (`serial`): a uprobe fires in
/// every process running the binary, another test's included.
#[allow(dead_code)] // not every test binary has uprobe tests
pub fn uprobe_turn(
    test: &str,
    serial: &'static std::sync::Mutex<()>,
    build: impl FnOnce() -> Result<&'static std::path::Path, String>,
) -> Option<(std::sync::MutexGuard<'static, ()>, &'static std::path::Path)> {
    let turn = serial.lock().unwrap_or_else(|p| p.into_inner());
    if skip_reason(test).is_some() {
        return None;
    }
    if !std::path::Path::new("/sys/bus/event_source/devices/uprobe/type").exists() {
        crate::support::skip(test, "the kernel has no uprobe PMU");
        return None;
    }
    match build() {
        Ok(dir) => Some((turn, dir)),
        Err(e) => {
            crate::support::skip(test, &e);
            None
        }
    }
}
