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
