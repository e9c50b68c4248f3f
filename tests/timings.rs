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
    // Two threads report: the pipeline, and the kernel BTF read that `src/early.rs`
    // starts before flags are parsed. Each thread's phases come in its own order; the
    // two interleave as the scheduler likes, except that sema waits for the index
    // (tcpaccept.bt needs kernel types).
    let order = |names: &[&str]| -> Vec<usize> {
        let at = |n: &&str| phases.iter().position(|p| p == n);
        names
            .iter()
            .map(|n| at(n).unwrap_or_else(|| panic!("no {n}: {phases:?}")))
            .collect()
    };
    assert_eq!(phases.len(), 7, "{phases:?}");
    let pipeline = order(&["read script", "parse", "sema", "codegen"]);
    let btf = order(&["btf read", "btf parse", "btf index"]);
    assert!(pipeline.is_sorted(), "{phases:?}");
    assert!(btf.is_sorted(), "{phases:?}");
    assert!(
        btf[2] < pipeline[2],
        "sema ended before the BTF index: {phases:?}"
    );
}

/// Kernel BTF is read only when the script needs a kernel type: a BEGIN script runs
/// with an unreadable `--btf`, while a tracepoint script reports that file, not the
/// lookups that failed after it.
#[test]
fn btf_is_read_only_when_a_kernel_type_is_needed() {
    let run = |script: &str| {
        Command::new(env!("CARGO_BIN_EXE_rbt"))
            .args([
                "-d",
                "codegen",
                "--btf",
                "/nonexistent/vmlinux",
                "-e",
                script,
            ])
            .env("RBT_TIMINGS", "1")
            .output()
            .expect("run rbt")
    };
    // The everyday language without kernel types: arithmetic, comparisons, strings,
    // tuples, maps and aggregations, printf of each kind, control flow.
    let begin = run(concat!(
        r#"BEGIN { $a = 1 + 2 * 3; $b = $a == 7 ? 1 : 2; $c = "x"; $t = (1, "s"); @x = count(); "#,
        r#"@h = hist($a); @m[comm, $a] = sum($a - 1); if ($a > 2 && $c != "z") { $a++; } "#,
        r#"printf("%d %d %s %s %d %s\n", $a, $b, $c, str(0), $t.0, comm); print($t); "#,
        r#"@s = stats(nsecs % 3); delete(@m[comm, 7]); exit(); }"#,
    ));
    let stderr = String::from_utf8_lossy(&begin.stderr);
    assert!(begin.status.success(), "{stderr}");
    assert!(!stderr.contains("btf read"), "{stderr}");
    let tp = run("tracepoint:syscalls:sys_enter_openat { @[args->dfd] = count(); }");
    let stderr = String::from_utf8_lossy(&tp.stderr);
    assert_eq!(tp.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("rbt: timing: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("rbt: /nonexistent/vmlinux: No such file or directory"),
        "{stderr}"
    );
}
