//! Wildcards, lists of attach points, the `probe` builtin and `-l` against the real
//! bpftrace 0.17 on this host: same scripts, same bytes on stdout ("Attaching N
//! probes..." included), same errors in meaning. The tracing scripts trace the
//! deterministic workload (tests/data/workload/rbtwl.c, built as comm "rbtwlw") run with `-c`.
//! Attaching the ~360 `syscalls:sys_enter_*` tracepoints is quick, but detaching them
//! takes the kernel ~20-25 s under either tracer (an RCU grace period per tracepoint),
//! so only one test traces them.
//! Needs root, bpftrace 0.17, tracefs and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

const RBT: &str = env!("CARGO_BIN_EXE_rbt");

/// Runs `tracer args` with `env`, stdin closed.
fn run(tracer: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(tracer)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"))
}

/// Stdout of a run that must succeed.
fn stdout_of(tracer: &str, args: &[&str]) -> String {
    let out = run(tracer, args, &[]);
    assert!(
        out.status.success(),
        "{tracer} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stdout of bpftrace and of rbt for the same arguments. One comparison at a time:
/// the scripts filter on the workload's comm, which another test's workload shares.
fn both(args: &[&str]) -> (String, String) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    (stdout_of("bpftrace", args), stdout_of(RBT, args))
}

/// The workload, built once (static, so its syscalls do not depend on the dynamic loader).
fn workload() -> Option<&'static str> {
    static BUILT: OnceLock<Option<String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Its comm is its file name, "rbtwlw": other tests' workloads are "rbtwl...".
            let out = bpftrace_ref::build_workload("rbtwlw")?;
            Some(out.to_string_lossy().into_owned())
        })
        .as_deref()
}

/// The workload, or `None` after reporting the skip.
fn workload_or_skip(test: &str) -> Option<&'static str> {
    if bpftrace_ref::skip_reason(test).is_some() {
        return None;
    }
    let built = workload();
    if built.is_none() {
        support::skip(test, "cannot build the workload with gcc -static");
    }
    built
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn probe_counts_over_every_syscall_entry_match() {
    let Some(wl) = workload_or_skip("probe_counts_over_every_syscall_entry_match") else {
        return;
    };
    let script = r#"tracepoint:syscalls:sys_enter_* /comm == "rbtwlw"/ { @[probe] = count(); }"#;
    let (expected, got) = both(&["-c", wl, "-e", script]);
    // Same probe count (hundreds of tracepoints), on the first line.
    assert_eq!(expected.lines().next(), got.lines().next());
    assert!(expected.starts_with("Attaching ") && expected.lines().count() > 10);
    // Entries with equal counts print in the kernel's hash order, which differs between
    // the tracers: compare the lines sorted.
    assert_eq!(
        sorted_lines(&expected),
        sorted_lines(&got),
        "--- bpftrace\n{expected}--- rbt\n{got}"
    );
}

#[test]
fn lists_of_tracepoints_with_different_records_match() {
    let Some(wl) = workload_or_skip("lists_of_tracepoints_with_different_records_match") else {
        return;
    };
    let scripts = [
        // `count` and `fd` are in both records, at different offsets in none, but the
        // records are different types; every count differs, so the order is fixed.
        r#"tracepoint:syscalls:sys_enter_write,tracepoint:syscalls:sys_enter_read /comm == "rbtwlw"/ { @[probe, args->fd] = count(); @bytes[probe] = sum(args->count); }"#,
        r#"tracepoint:syscalls:sys_enter_read, tracepoint:syscalls:sys_enter_close /comm == "rbtwlw"/ { printf("%s fd=%d\n", probe, args->fd); }"#,
        r#"t:syscalls:sys_enter_getppid,t:syscalls:sys_enter_close /comm == "rbtwlw"/ { @[probe] = count(); }"#,
        r#"BEGIN, tracepoint:syscalls:sys_enter_close /comm == "rbtwlw"/ { @n = count(); }"#,
        // Wildcards whose body reads `args`: every match has its own record (rbt
        // resolves a wildcard's later matches only for such a body).
        r#"t:syscalls:sys_enter_write*,t:syscalls:sys_enter_close* /comm == "rbtwlw"/ { @[probe] = sum(args->fd); }"#,
    ];
    for script in scripts {
        for format in ["text", "json"] {
            let (expected, got) = both(&["-f", format, "-c", wl, "-e", script]);
            // The workload was traced (not two empty outputs compared).
            assert!(
                expected.contains("sys_enter_") || expected.contains("@n"),
                "{expected}"
            );
            assert_eq!(expected, got, "{format}: {script}");
        }
    }
}

#[test]
fn attach_counts_match() {
    if bpftrace_ref::skip_reason("attach_counts_match").is_some() {
        return;
    }
    let scripts = [
        "tracepoint:sched:sched* { }",
        "tracepoint:*:sys_enter_openat { }",
        "t:syscalls:sys_enter_open* { }",
        "t:sys*:sys_exit_read { }",
        "tracepoint:sched:sched_switch, tracepoint:sched:sched_wak* { }",
        "BEGIN, tracepoint:sched:sched_process_e* { }",
        // Quoted parts, as bpftrace takes them (quotes dropped).
        "tracepoint:\"syscalls\":\"sys_enter_openat\" { }",
        "t:syscalls:\"sys_enter_open*\" { }",
    ];
    for script in scripts {
        let (expected, got) = both(&["-c", "/bin/true", "-e", script]);
        assert!(expected.starts_with("Attaching "), "{expected}");
        assert_eq!(expected, got, "{script}");
    }
}

#[test]
fn listings_match() {
    if bpftrace_ref::skip_reason("listings_match").is_some() {
        return;
    }
    let cases: &[&[&str]] = &[
        &["-l", "tracepoint:sched:*"],
        &["-l", "t:syscalls:sys_enter_open*"],
        &["-l", "tracepoint:sched*"],
        &["-l", "t*:sched:sched_switch"],
        &[
            "-l",
            "tracepoint:syscalls:sys_enter_read,tracepoint:sched:sched_switch",
        ],
        &["-l", "software:*"],
        &["-l", "iter:*"],
        &["-l"],
        &["-lv", "tracepoint:syscalls:sys_enter_openat"],
        &["-lv", "t:sched:sched_s*"],
    ];
    for args in cases {
        let (expected, got) = both(args);
        assert!(!expected.is_empty(), "bpftrace {args:?} lists nothing");
        assert_eq!(expected, got, "{args:?}");
    }
}

/// Listings whose probe type is a wildcard or whose target has an odd shape: bpftrace
/// lets each matched type take the targets of its shape (`*:sched_switch` prints
/// `software:sched_switch:` back), completes a lone tracepoint pattern's category
/// (`tr*:sched_sw*`), takes a lone wildcard part as every type's target
/// (`*sched_switch*`), reads a software count even when listing; stdout and exit code
/// must be the same, failures included.
#[test]
fn odd_listings_match_with_exit_codes() {
    if bpftrace_ref::skip_reason("odd_listings_match_with_exit_codes").is_some() {
        return;
    }
    let cases: &[(&str, bool)] = &[
        ("tr*:sched_sw*", true),
        ("*:sched_switch", true),
        ("t*:sched:sched_sw*", true),
        ("software:cpu-clock:1000", true),
        ("software:cpu*:5", true),
        ("h:cycles", true),
        ("*:sched:sched_switch", false),
        ("t*:sched:sched_switch:x", false),
        ("software:*:", false),
        ("s:cpu:abc", false),
        ("software:nosuch", false),
        ("*:/bin/bash", false),
        // One part with a wildcard: the target of every kernel probe type.
        ("*sched_switch*", true),
        ("sched_sw*", true),
        ("*sched_switc", true),
    ];
    for (pattern, succeeds) in cases {
        let (theirs, ours) = (
            run("bpftrace", &["-l", pattern], &[]),
            run(RBT, &["-l", pattern], &[]),
        );
        assert_eq!(theirs.status.success(), *succeeds, "bpftrace -l {pattern}");
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "-l {pattern}"
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "-l {pattern}");
    }
}

/// Runs a failing case under both; their stderr, which must both contain `needle`.
fn both_fail_saying(args: &[&str], env: &[(&str, &str)], needle: &str) {
    for tracer in ["bpftrace", RBT] {
        let out = run(tracer, args, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tracer} {args:?} succeeded");
        assert!(
            stderr.contains(needle),
            "{tracer} {args:?}: expected {needle:?} in:\n{stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("Attaching"));
    }
}

#[test]
fn errors_match_in_meaning() {
    if bpftrace_ref::skip_reason("errors_match_in_meaning").is_some() {
        return;
    }
    let nothing = "tracepoints not found: syscalls:sys_enter_nosuchx*";
    both_fail_saying(
        &["-e", "tracepoint:syscalls:sys_enter_nosuchx* { }"],
        &[],
        nothing,
    );
    both_fail_saying(
        &[
            "-e",
            "tracepoint:syscalls:sys_enter_nosuchx*, tracepoint:syscalls:sys_enter_read { }",
        ],
        &[],
        nothing,
    );
    both_fail_saying(
        &[
            "-e",
            "t:sched:sched_switch, t:sched:sched_wakeup, t:sched:sched_waking { }",
        ],
        &[("BPFTRACE_MAX_PROBES", "2")],
        "Can't attach to 3 probes because it exceeds the current limit of 2 probes.\n\
         You can increase the limit through the BPFTRACE_MAX_PROBES environment variable",
    );
    // Programs made per attach point (`probe`), counted per script attach point.
    both_fail_saying(
        &["-e", "BEGIN { @[probe] = count(); } t:sched:sched_switch,t:sched:sched_wakeup { @[probe] = count(); } t:sched:sched_waking, t:sched:sched_wakeup_new { @[probe] = count(); }"],
        &[("BPFTRACE_MAX_BPF_PROGS", "3")],
        "Your program is trying to generate more than 4 BPF programs, which exceeds the current limit of 3.\n\
         You can increase the limit through the BPFTRACE_MAX_BPF_PROGS environment variable.",
    );
    // A later match of a wildcard lacks the field (writev has no `count`).
    both_fail_saying(
        &[
            "-e",
            "t:syscalls:sys_enter_write* { @ = sum(args->count); }",
        ],
        &[],
        "'count'",
    );
    both_fail_saying(
        &["-e", "tracepoint:sched:sched_switch { }"],
        &[("BPFTRACE_MAX_PROBES", "x")],
        "Env var 'BPFTRACE_MAX_PROBES' did not contain a valid uint64_t",
    );
}

/// The programs `rbt --dry-run -d codegen` loads for `script`: their headers' attach points.
fn programs_of(script: &str) -> Vec<String> {
    let out = run(RBT, &["--dry-run", "-d", "codegen", "-e", script], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter_map(|l| l.strip_prefix("program "))
        .map(|l| l.split(" for ").nth(1).unwrap_or(l).to_string())
        .collect()
}

/// A body that reads only `probe` of several attach points gets one program for all of
/// them, each attached with its name's index as the BPF attach cookie (sema's
/// `Plan::ByCookie`, on kernels with `bpf_get_attach_cookie`), and prints what
/// bpftrace prints: `probe` as a map key (widened beside longer names), a printf
/// argument and a variable, two such probes in one script (their names in one table);
/// a body reading `args` keeps one program per attach point. (bpftrace 0.17 refuses
/// `probe == "..."`: its `probe` is no string.)
#[test]
fn probe_by_cookie_matches_bpftrace() {
    let Some(wl) = workload_or_skip("probe_by_cookie_matches_bpftrace") else {
        return;
    };
    let tracepoint = rbt::probes::lookup("tracepoint").expect("registered");
    let by_cookie = rbt::probes::names_by_cookie(tracepoint);
    let shared = programs_of(
        "t:syscalls:sys_enter_getppid,t:syscalls:sys_enter_clos* { @[probe] = count(); }",
    );
    let own = programs_of(
        "t:syscalls:sys_enter_read,t:syscalls:sys_enter_write { @[probe] = sum(args->fd); }",
    );
    assert_eq!(own.len(), 2, "{own:?}");
    match by_cookie {
        true => assert_eq!(shared.len(), 1, "{shared:?}"),
        false => assert!(shared.len() > 2, "{shared:?}"),
    }
    let scripts = [
        r#"t:syscalls:sys_enter_getppid,t:syscalls:sys_enter_clos* /comm == "rbtwlw"/ { @[probe] = count(); @[probe] = count(); }"#,
        r#"t:syscalls:sys_enter_getppid,t:syscalls:sys_enter_close /comm == "rbtwlw"/ { printf("%s|%s\n", probe, comm); }"#,
        r#"t:syscalls:sys_enter_write,t:syscalls:sys_enter_close /comm == "rbtwlw"/ { $p = probe; @by[$p, pid > 0] = count(); }"#,
        r#"t:syscalls:sys_enter_getppid,t:syscalls:sys_enter_close /comm == "rbtwlw"/ { @[probe] = count(); } t:syscalls:sys_enter_read,t:syscalls:sys_enter_write /comm == "rbtwlw"/ { @[probe] = count(); @rw[probe] = count(); } END { @[probe] = count(); }"#,
    ];
    for script in scripts {
        for format in ["text", "json"] {
            let (expected, got) = both(&["-f", format, "-c", wl, "-e", script]);
            assert!(expected.contains("sys_enter_"), "{expected}");
            assert_eq!(expected, got, "{format}: {script}");
        }
    }
}
