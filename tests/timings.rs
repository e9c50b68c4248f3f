//! `RBT_TIMINGS=1` prints one stderr line per startup phase, in pipeline order, and
//! changes nothing else; without it, stderr stays empty.

use std::process::{Command, Output};

fn rbt(timings: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbt"));
    cmd.args([
        "-d",
        "codegen",
        "--btf",
        "tests/data/vmlinux-6.18.btf",
        "scripts/tcpaccept.bt",
    ]);
    cmd.env_remove("RBT_TIMINGS");
    if timings {
        cmd.env("RBT_TIMINGS", "1");
    }
    cmd.output().expect("run rbt")
}

#[test]
fn phases_are_reported_in_order_without_changing_output() {
    let plain = rbt(false);
    let timed = rbt(true);
    assert!(plain.status.success() && timed.status.success());
    assert_eq!(plain.stdout, timed.stdout);
    assert_eq!(String::from_utf8_lossy(&plain.stderr), "");

    let stderr = String::from_utf8(timed.stderr).expect("UTF-8 stderr");
    let phases: Vec<&str> = stderr
        .lines()
        .map(|l| {
            let rest = l.strip_prefix("rbt: timing: ").expect("timing line");
            let (name, ms) = rest.split_once(" ms (total ").expect("ms and total");
            let (name, value) = name.rsplit_once(' ').expect("phase and ms");
            assert!(value.parse::<f64>().is_ok_and(|v| v >= 0.0), "{l}");
            assert!(ms.ends_with(" ms)"), "{l}");
            name
        })
        .collect();
    // The BTF phases run on their own thread, so they interleave with the others.
    let main_thread: Vec<&str> = phases
        .iter()
        .copied()
        .filter(|p| !p.starts_with("btf "))
        .collect();
    assert_eq!(
        main_thread,
        ["read script", "parse", "wait for btf", "sema", "codegen"]
    );
    let btf_thread: Vec<&str> = phases
        .iter()
        .copied()
        .filter(|p| p.starts_with("btf "))
        .collect();
    assert_eq!(btf_thread, ["btf read", "btf parse", "btf index"]);
}
