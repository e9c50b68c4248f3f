//! SIGUSR1 prints every map and tracing goes on (bpftrace 0.17's print_maps on
//! SIGUSR1): the same output as real bpftrace on this host, text and JSON.

mod bpftrace_ref;
mod support;

use std::process::Command;

/// Maps of several kinds at the signal, and one more key added after it (with its own
/// count: the order of equal values depends on the kernel's hash seed, in bpftrace too).
const SCRIPT: &str = r#"BEGIN { @scalar = 5; @h = hist(3); @c[1] = count(); @s["a"] = sum(7); }
interval:ms:1500 { @c[2] = count(); @c[2] = count(); exit(); }"#;

/// Runs `tracer args -e SCRIPT`, sends SIGUSR1 once every probe is attached, and
/// returns its stdout once it exits.
fn run_with_usr1(tracer: &str, args: &[&str]) -> String {
    let child = bpftrace_ref::start_attached(tracer, args, SCRIPT);
    let status = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{tracer}: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sigusr1_prints_all_maps_like_bpftrace() {
    if bpftrace_ref::skip_reason("sigusr1_prints_all_maps_like_bpftrace").is_some() {
        return;
    }
    for args in bpftrace_ref::TEXT_AND_JSON {
        let expected = run_with_usr1("bpftrace", args);
        let got = run_with_usr1(env!("CARGO_BIN_EXE_rbt"), args);
        // The maps appear twice: at the signal and at exit.
        assert!(expected.matches("@scalar").count() == 2, "{expected}");
        assert_eq!(got, expected, "format {args:?}");
    }
}

/// SIGINT under a flood of slow records (`system()` on every `sched_switch`, each
/// switch making more): bpftrace ignores the records it has not printed when the
/// signal comes, runs END and exits within a second; rbt runs none of the queued
/// commands either (a backlog of them would take a minute). Both are held to
/// upstream's `other.sigint under heavy load` bound: END's output within 5 s.
#[test]
fn sigint_under_heavy_load_ends_like_bpftrace() {
    if bpftrace_ref::skip_reason("sigint_under_heavy_load_ends_like_bpftrace").is_some() {
        return;
    }
    let script = r#"tracepoint:sched:sched_switch { system("echo foo"); } END { printf("end"); }"#;
    for tracer in ["bpftrace", env!("CARGO_BIN_EXE_rbt")] {
        let child = bpftrace_ref::start_attached(tracer, &["--unsafe"], script);
        std::thread::sleep(std::time::Duration::from_secs(1));
        let pid = child.id().to_string();
        let (done, wait) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let out = child.wait_with_output().expect("wait");
            let _ = done.send(());
            out
        });
        let sent = std::time::Instant::now();
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success());
        let in_time = wait.recv_timeout(std::time::Duration::from_secs(5)).is_ok();
        if !in_time {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        let out = waiter.join().expect("waiter");
        assert!(in_time, "{tracer} still running 5 s after SIGINT");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{tracer}: {}", out.status);
        assert!(
            stdout.contains("foo\n") && stdout.contains("end"),
            "{tracer}: {stdout}"
        );
        eprintln!("{tracer}: exited {:?} after SIGINT", sent.elapsed());
    }
}
