//! Maps are read at exit only once no program can still run (runtime/attach.rs
//! `detach_all`, which unlinks the programs, waits for an RCU grace period and closes
//! the perf events on a thread while the maps print). Checked with a probe that bumps
//! three counters per hit while a getppid storm keeps it firing through SIGINT: the
//! tracer reads the maps one after another, with a 20,000-key map read between the
//! first and the others (a millisecond or more), so a program still running during the
//! read would leave them unequal. Real bpftrace 0.17 (which closes its perf events before
//! reading) is held to the same property in the same run. Needs root, bpftrace 0.17 and
//! gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// bench/storm.c (getppid in a loop) built into a fresh directory; `None` without gcc.
fn storm() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rbt-quiescence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let out = dir.join("storm");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/storm.c");
    let status = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(src)
        .status();
    matches!(status, Ok(s) if s.success()).then_some(out)
}

/// Runs `tracer` on `script` until attached, lets the storm hit it for a moment, sends
/// SIGINT while it still fires and returns the tracer's stdout.
fn trace_through_sigint(tracer: &str, script: &str) -> String {
    let mut child = bpftrace_ref::start_attached(tracer, &[], script);
    std::thread::sleep(Duration::from_millis(300));
    // Drained while waiting: the exit print (a 20,000-key map) would fill the pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    // bpftrace 0.17 can miss a SIGINT that a thread other than its poll loop's takes
    // (it then polls on): SIGINT again every 2 s, and give up after 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next_signal = Instant::now();
    while child.try_wait().expect("wait for tracer").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{tracer} did not exit within 60 s of SIGINT");
        }
        if Instant::now() >= next_signal {
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -INT failed");
            next_signal = Instant::now() + Duration::from_secs(2);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait for tracer");
    assert!(status.success(), "{tracer} failed: {status}");
    printed.join().expect("stdout reader")
}

/// The three counters' values, in the order `@a`, `@y[1]`, `@z`.
fn counters(output: &str) -> Vec<u64> {
    ["@a: ", "@y[1]: ", "@z: "]
        .iter()
        .map(|prefix| {
            output
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {prefix} in:\n{output}"))
        })
        .collect()
}

#[test]
fn maps_are_read_after_the_last_program_ran() {
    let test = "maps_are_read_after_the_last_program_ran";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(storm) = storm() else {
        support::skip(test, "gcc cannot build bench/storm.c");
        return;
    };
    let mut running = Command::new(&storm)
        .arg("1000000000000")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the storm");
    let script = format!(
        "tracepoint:syscalls:sys_enter_getppid /pid == {}/ {{ @a = count(); @m[nsecs % 20000] = count(); @y[1] = count(); @z = count(); }}",
        running.id()
    );
    let mut failures = Vec::new();
    for tracer in [
        "bpftrace",
        env!("CARGO_BIN_EXE_rbt"),
        env!("CARGO_BIN_EXE_rbt"),
    ] {
        let values = counters(&trace_through_sigint(tracer, &script));
        if values[0] == 0 || values.iter().any(|&v| v != values[0]) {
            failures.push(format!("{tracer}: @a, @y[1], @z = {values:?}"));
        }
    }
    let _ = running.kill();
    let _ = running.wait();
    assert!(failures.is_empty(), "{failures:#?}");
}
