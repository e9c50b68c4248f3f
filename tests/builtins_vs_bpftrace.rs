//! Builtins added through the registry (`src/builtins/`), and values built in per-CPU
//! scratch space, compared with the real bpftrace 0.17 on this host. Needs root and
//! bpftrace 0.17 (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use bpftrace_ref::{run_bpftrace, run_rbt, skip_reason};

/// `rand` is a 32-bit random number typed uint64: both tracers agree on its range and
/// on comparisons that would differ for a signed or narrower type.
#[test]
fn rand_has_bpftrace_range_and_type() {
    if skip_reason("rand_has_bpftrace_range_and_type").is_some() {
        return;
    }
    let script = r#"BEGIN {
        $r = rand;
        printf("%d %d %d %d\n", $r <= 0xffffffff, ($r >> 32) == 0, $r > -1, rand != rand || 1);
        $r = -1;
        printf("%u %d\n", $r, $r);
        exit();
    }"#;
    let expected = run_bpftrace(&[], script);
    assert_eq!(
        String::from_utf8_lossy(&run_rbt(&[], script)),
        String::from_utf8_lossy(&expected)
    );
}

/// Successive `rand` values differ (the helper is really called, not folded).
#[test]
fn rand_varies() {
    if skip_reason("rand_varies").is_some() {
        return;
    }
    let script = "BEGIN { $a = rand; $b = rand; $c = rand; printf(\"%d\\n\", $a != $b || $b != $c); exit(); }";
    let out = String::from_utf8_lossy(&run_rbt(&["-q"], script)).into_owned();
    assert_eq!(out, "1\n\n\n");
}

/// A printf record larger than the stack (35 `comm`s, 568 bytes) is built in scratch
/// space. bpftrace 0.17 itself exceeds its stack there, so the expectation is its
/// output for the same arguments split over two printf calls.
#[test]
fn printf_larger_than_the_stack_uses_scratch() {
    if skip_reason("printf_larger_than_the_stack_uses_scratch").is_some() {
        return;
    }
    let convs = |n: usize| vec!["%s"; n].join(" ");
    let comms = |n: usize| vec!["comm"; n].join(", ");
    let one = format!(
        "BEGIN {{ printf(\"{} {}\\n\", {}, 7); exit(); }}",
        convs(35),
        "%d",
        comms(35)
    );
    let two = format!(
        "BEGIN {{ printf(\"{} \", {}); printf(\"{} %d\\n\", {}, 7); exit(); }}",
        convs(17),
        comms(17),
        convs(18),
        comms(18)
    );
    // comm is the tracer's own name: make both print the same one.
    let expected = String::from_utf8_lossy(&run_bpftrace(&[], &two)).replace("bpftrace", "rbt");
    assert_eq!(String::from_utf8_lossy(&run_rbt(&[], &one)), expected);
}

/// A string literal of 64 or more characters is rejected with bpftrace 0.17's message
/// (format strings are exempt).
#[test]
fn long_string_literals_are_rejected_like_bpftrace() {
    if skip_reason("long_string_literals_are_rejected_like_bpftrace").is_some() {
        return;
    }
    let run = |tracer: &str, script: &str| {
        std::process::Command::new(tracer)
            .args(["-e", script])
            .output()
            .expect("run tracer")
    };
    let rbt = env!("CARGO_BIN_EXE_rbt");
    let long = "y".repeat(64);
    let script = format!("BEGIN {{ printf(\"%s\\n\", \"{long}\"); exit(); }}");
    let (theirs, ours) = (run("bpftrace", &script), run(rbt, &script));
    assert!(!theirs.status.success() && !ours.status.success());
    let message = format!("String is too long (over 64 bytes): {long}");
    assert!(String::from_utf8_lossy(&theirs.stderr).contains(&message));
    assert!(String::from_utf8_lossy(&ours.stderr).contains(&message));
    let ok = format!(
        "BEGIN {{ printf(\"%s\\n\", \"{}\"); exit(); }}",
        "y".repeat(63)
    );
    assert_eq!(
        String::from_utf8_lossy(&run_rbt(&[], &ok)),
        String::from_utf8_lossy(&run_bpftrace(&[], &ok))
    );
}

/// `numaid`, `cgroup` (both tracers run in the test's cgroup) and `curtask`, a kernel
/// `struct task_struct *` read through with `->`.
#[test]
fn task_builtins_match_bpftrace() {
    if skip_reason("task_builtins_match_bpftrace").is_some() {
        return;
    }
    let script = r#"BEGIN {
        printf("%d %d %d\n", numaid, numaid + 1, curtask > 0);
        $t = curtask;
        printf("%d %d %d\n", $t->pid == pid, curtask->tgid == pid, curtask->real_parent->tgid > 0);
        printf("%d %d\n", cgroup, cgroup == cgroup);
        @c[cgroup] = count();
        exit();
    }"#;
    assert_eq!(
        String::from_utf8_lossy(&run_rbt(&[], script)),
        String::from_utf8_lossy(&run_bpftrace(&[], script))
    );
}

/// `elapsed` counts nanoseconds from just before BEGIN (the start-time map): positive,
/// far below a second in BEGIN, and growing.
#[test]
fn elapsed_matches_bpftrace() {
    if skip_reason("elapsed_matches_bpftrace").is_some() {
        return;
    }
    let script = r#"BEGIN {
        $e = elapsed;
        printf("%d %d %d\n", $e > 10, $e < 1000000000, elapsed >= $e);
        @e = elapsed > 0;
        exit();
    }"#;
    assert_eq!(
        String::from_utf8_lossy(&run_rbt(&[], script)),
        String::from_utf8_lossy(&run_bpftrace(&[], script))
    );
}

/// `username` prints the uid's name from /etc/passwd, in printf, as a map key and
/// value, in text and JSON; comparing it with a string is bpftrace's type error.
#[test]
fn username_matches_bpftrace() {
    if skip_reason("username_matches_bpftrace").is_some() {
        return;
    }
    let script = r#"BEGIN { printf("%s|%d\n", username, uid); @u = username; @[username, 1] = count(); $u = username; printf("%s\n", $u); exit(); }"#;
    for args in [&[][..], &["-f", "json"][..]] {
        assert_eq!(
            String::from_utf8_lossy(&run_rbt(args, script)),
            String::from_utf8_lossy(&run_bpftrace(args, script))
        );
    }
    let bad = r#"BEGIN { $u = username; printf("%d\n", $u == "root"); exit(); }"#;
    let run = |tracer: &str| {
        std::process::Command::new(tracer)
            .args(["-e", bad])
            .output()
            .expect("run tracer")
    };
    let (theirs, ours) = (run("bpftrace"), run(env!("CARGO_BIN_EXE_rbt")));
    assert!(!theirs.status.success() && !ours.status.success());
    let message = "Type mismatch for '==': comparing 'username' with 'string[5]'";
    assert!(String::from_utf8_lossy(&theirs.stderr).contains(message));
    assert!(String::from_utf8_lossy(&ours.stderr).contains(message));
}

/// `ctx`: `struct bpf_perf_event_data *` in perf-event probes, read directly (members,
/// nested members, `*ctx`, a struct pointer cast of it, through variables holding it),
/// compared, cast to an integer; misuses (BEGIN, tracepoints, maps, print(), integer
/// pointer casts, probe types of different program types) are bpftrace's errors.
#[test]
fn ctx_matches_bpftrace() {
    if skip_reason("ctx_matches_bpftrace").is_some() {
        return;
    }
    let scripts = [
        r#"struct x { unsigned long x; }; i:ms:1 { printf("%d %d %d\n", ctx->sample_period, ((struct x *)ctx)->x == ctx->regs.r15, ctx->addr); exit(); }"#,
        // Per-CPU probes may fire on several CPUs before exit: map keys say it once.
        r#"p:hz:10 { @[(*ctx).sample_period, ctx->regs.sp > 0, ctx == 0] = 1; exit(); }"#,
        r#"software:cpu-clock:1000000 { $x = (uint64)ctx; @[$x > 0, ctx->sample_period] = 1; exit(); }"#,
        r#"i:ms:1 { $c = ctx; $d = $c; printf("%d %d %d\n", $c->sample_period, (*$d).sample_period, $d->regs.sp > 0); exit(); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &[], bpftrace_ref::TEXT_AND_JSON),
        scripts.len() * 2,
    );
    let errors = [
        r#"BEGIN { printf("%p\n", ctx); exit(); }"#,
        r#"tracepoint:syscalls:sys_enter_openat { print(ctx); exit(); }"#,
        r#"i:ms:1 { @ = ctx; exit(); }"#,
        r#"i:ms:1 { @[ctx] = 1; exit(); }"#,
        r#"i:ms:1 { printf("%d\n", *(uint64*)ctx > 0); exit(); }"#,
        r#"i:ms:1 { print(ctx); exit(); }"#,
        r#"i:ms:1 { $c = ctx; print($c); exit(); }"#,
        r#"i:ms:1 { $c = ctx; @x = $c; exit(); }"#,
        r#"i:ms:1, tracepoint:syscalls:sys_enter_read { printf("%p\n", ctx); exit(); }"#,
        r#"tracepoint:syscalls:sys_enter_read, i:ms:1 { printf("%p\n", ctx); exit(); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(bpftrace_ref::error_mismatches(&errors, true), errors.len());
}

/// `strerror()` printed as libc's text (an int: `1 << 40` is 0, "Success"), in printf,
/// print, tuples and map values, text and JSON (unquoted there, as bpftrace 0.17);
/// its errors; and `--include errno.h` (upstream's call.strerror runs it so).
#[test]
fn strerror_matches_bpftrace() {
    if skip_reason("strerror_matches_bpftrace").is_some() {
        return;
    }
    let scripts = [
        "BEGIN { print(strerror(EPERM)); exit(); }",
        r#"BEGIN { @x = strerror(1); @y[1] = strerror(2); $v = strerror(3); printf("%s|%s\n", $v, strerror(4)); print((1, strerror(5))); print(strerror(134)); print(strerror(1 << 40)); print(strerror(-1)); exit(); }"#,
    ];
    let include = ["--include", "errno.h"];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &include, bpftrace_ref::TEXT_AND_JSON),
        scripts.len() * 2,
    );
    let errors = [
        r#"BEGIN { print(strerror("a")); exit(); }"#,
        "BEGIN { print(strerror()); exit(); }",
        r#"BEGIN { printf("%d\n", strerror(1)); exit(); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(bpftrace_ref::error_mismatches(&errors, true), errors.len());
}

/// `errno.h`'s numbers, by `--include` and by `#include`: every `E*` macro of the
/// kernel's UAPI headers on this host (and glibc's ENOTSUP), as bpftrace reads them.
#[test]
fn errno_header_matches_bpftrace() {
    if skip_reason("errno_header_matches_bpftrace").is_some() {
        return;
    }
    let mut names = vec!["ENOTSUP".to_string()];
    for header in ["errno-base.h", "errno.h"] {
        let path = format!("/usr/include/asm-generic/{header}");
        let Ok(text) = std::fs::read_to_string(&path) else {
            support::skip("errno_header_matches_bpftrace", &format!("no {path}"));
            return;
        };
        names.extend(text.lines().filter_map(|l| {
            let name = l.strip_prefix("#define")?.split_whitespace().next()?;
            (name.starts_with('E') && !name.starts_with("E_")).then(|| name.to_string())
        }));
    }
    let prints: Vec<String> = names.iter().map(|n| format!("print({n});")).collect();
    let body = prints.join(" ");
    let scripts = [
        format!("BEGIN {{ {body} exit(); }}"),
        format!("#include <errno.h>\nBEGIN {{ {body} exit(); }}"),
    ];
    let mismatches = [
        bpftrace_ref::output_mismatches(
            &scripts[..1],
            &["--include", "errno.h"],
            bpftrace_ref::TEXT,
        ),
        bpftrace_ref::output_mismatches(&scripts[1..], &[], bpftrace_ref::TEXT),
    ];
    bpftrace_ref::assert_no_mismatches(mismatches.concat(), 2);
}
