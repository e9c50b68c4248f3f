//! Strings and address spaces end to end: rbt and the real bpftrace 0.17 run the same
//! scripts on this host and must print the same bytes. BEGIN-only scripts hold
//! constants; the tracepoint scripts read user memory (a syscall's `const char *`
//! argument) of the project's deterministic workload (tests/data/workload/rbtwl.c,
//! comm "rbtwl", opens /dev/null and /dev/zero) run by each tracer with `-c` and
//! picked out by `pid == cpid`.
//! Needs root, bpftrace 0.17, tracefs and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The workload, built once (static, so its syscalls do not depend on the dynamic
/// loader) in a directory of its own so that its comm is "rbtwl".
fn workload() -> Option<&'static PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("rbt-strings-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let out = dir.join("rbtwl");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workload/rbtwl.c");
            let status = Command::new("gcc")
                .args(["-static", "-O1", "-o"])
                .arg(&out)
                .arg(src)
                .status();
            match status {
                Ok(s) if s.success() => Some(out),
                _ => None,
            }
        })
        .as_ref()
}

/// Filtered by `cpid`, not comm, so that workloads other tests (or other users of the
/// host) run at the same time are not seen.
const OPENAT: &str = "tracepoint:syscalls:sys_enter_openat /pid == cpid/";

/// Scripts over the workload's two openat calls, each `OPENAT { BODY }`.
const WORKLOAD_BODIES: &[&str] = &[
    // Issue 18: syscall arguments are user pointers, read with probe_read_user.
    "printf(\"%d %d %c\\n\", *args->filename, args->filename[1], args->filename[5]);",
    "printf(\"%d\\n\", *(uint8 *)args->filename);",
    // kptr()/uptr() override the space (a user address read as kernel memory fails);
    // a variable keeps its first value's space.
    "printf(\"[%s] [%s] %d %d %d\\n\", str(kptr(args->filename)), str(uptr(args->filename)), *kptr(args->filename), *uptr(args->filename), *(uint8 *)kptr(args->filename));",
    "$p = (uint64)args->filename; printf(\"[%s] [%s]\\n\", str($p), str(uptr($p)));",
    // str() of a user pointer: whole, limited (n + 1 bytes with the NUL), as map keys
    // and values, compared.
    "printf(\"%s\\n\", str(args->filename));",
    "printf(\"[%s] [%s] [%s]\\n\", str(args->filename, 3), str(args->filename, 0), str(args->filename, 100));",
    "@[str(args->filename)] = sum(args->flags + 1);",
    "@s = str(args->filename);",
    "@[comm, str(args->filename, 6)] = sum(args->flags + 1);",
    "$s = str(args->filename); if ($s == \"/dev/zero\") { printf(\"zero\\n\"); } printf(\"%d\\n\", $s == \"/dev/null\");",
    // elapsed in an attached probe: the start time is there before the workload runs.
    "printf(\"%d\\n\", elapsed > 1000 && elapsed < 10000000000);",
    // curtask is a kernel pointer: its comm is read with probe_read_kernel.
    "printf(\"%s %d\\n\", curtask->comm, strncmp(curtask->comm, \"rbtwl\", 5));",
    "printf(\"%d %d %d\\n\", strncmp(str(args->filename), \"/dev/nul\", 8), strncmp(str(args->filename), \"/dev/zzz\", 5), strncmp(str(args->filename), \"/dev/zzz\", 6));",
    // strcontains() of user memory: bpftrace's type-size rule (a 64-byte needle is
    // never found in a 16-byte comm).
    "printf(\"%d %d %d %d\\n\", strcontains(str(args->filename), \"dev\"), strcontains(str(args->filename), \"zero\"), strcontains(comm, \"wl\"), strcontains(comm, str(args->filename)));",
];

/// BEGIN-only scripts: str() of address 0 (an unset address space), strncmp of
/// literals.
const BEGIN_SCRIPTS: &[&str] = &[
    "BEGIN { printf(\"[%s]\\n\", str(0)); exit(); }",
    "BEGIN { printf(\"%d\\n\", kptr(5) + uptr(3)); exit(); }",
    "BEGIN { $s = str(0, 3); printf(\"[%s]\\n\", $s); @m = str(0); exit(); }",
    "BEGIN { printf(\"%d %d %d %d\\n\", strncmp(\"abc\", \"abd\", 2), strncmp(\"abc\", \"abd\", 3), strncmp(\"abc\", \"abc\", 0), strncmp(\"ab\", \"abc\", 10)); exit(); }",
    // Strings in ternaries: a BPFTRACE_STRLEN string, as a variable, key and argument.
    "BEGIN { $a = 1 ? \"yes\" : \"no\"; printf(\"%s\\n\", $a); @m[nsecs > 0 ? \"big\" : \"small\"] = count(); $b = 0 ? \"x\" : str(0); printf(\"[%s]|%s\\n\", $b, pid > 1 ? \"p\" : \"qq\"); exit(); }",
    // strcontains() as an operand: its temporaries must not clobber the other side.
    "BEGIN { $a = 5; printf(\"%d %d %d\\n\", $a + strcontains(\"abc\", \"b\"), strcontains(\"abc\", \"z\") + $a * 2, ($a - 1) * strcontains(\"xy\", \"y\")); exit(); }",
    "BEGIN { $x = strcontains(\"abc\", \"bc\"); printf(\"%d %d %d %d %d %d\\n\", $x, strcontains(\"abc\", \"d\"), strcontains(comm, \"t\"), strcontains(\"\", \"\"), strcontains(\"ab\", comm), strcontains(\"abc\", \"abcd\")); if (strcontains(\"abc\", \"a\")) { printf(\"OK\\n\"); } exit(); }",
];

#[test]
fn begin_strings_match_bpftrace() {
    if bpftrace_ref::skip_reason("begin_strings_match_bpftrace").is_some() {
        return;
    }
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(BEGIN_SCRIPTS, &[], bpftrace_ref::TEXT),
        BEGIN_SCRIPTS.len(),
    );
}

fn workload_scripts(bodies: &[&str]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| format!("{OPENAT} {{ {b} }}"))
        .collect()
}

#[test]
fn user_pointers_match_bpftrace() {
    let test = "user_pointers_match_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(workload) = workload() else {
        support::skip(test, "cannot build the workload with gcc -static");
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let scripts = workload_scripts(WORKLOAD_BODIES);
    let scripts: Vec<&str> = scripts.iter().map(String::as_str).collect();
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &["-c", &workload], bpftrace_ref::TEXT),
        scripts.len(),
    );
}

/// `BPFTRACE_STRLEN` sizes `str()` values (user pointers and positional parameters);
/// above 200 both tracers refuse to start.
#[test]
fn strlen_env_matches_bpftrace() {
    let test = "strlen_env_matches_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(workload) = workload() else {
        support::skip(test, "cannot build the workload with gcc -static");
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let rbt = env!("CARGO_BIN_EXE_rbt");
    let run = |tracer: &str, strlen: &str, args: &[&str]| {
        Command::new(tracer)
            .env("BPFTRACE_STRLEN", strlen)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"))
    };
    let traced = format!(
        "{OPENAT} {{ printf(\"%s\\n\", str(args->filename)); @[str(args->filename)] = sum(args->flags + 1); }}"
    );
    let cases: [(&str, Vec<&str>); 3] = [
        ("8", vec!["-c", &workload, "-e", &traced]),
        ("100", vec!["-c", &workload, "-e", &traced]),
        (
            "5",
            vec![
                "-e",
                "BEGIN { printf(\"%s|\\n\", str($1)); exit(); }",
                "abcdefgh",
            ],
        ),
    ];
    for (strlen, args) in &cases {
        let (theirs, ours) = (run("bpftrace", strlen, args), run(rbt, strlen, args));
        assert!(theirs.status.success(), "bpftrace must run {args:?}");
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "BPFTRACE_STRLEN={strlen} {args:?}"
        );
    }
    let script = ["-e", "BEGIN { exit(); }"];
    let (theirs, ours) = (run("bpftrace", "201", &script), run(rbt, "201", &script));
    let message = "'BPFTRACE_STRLEN' 201 exceeds the current maximum of 200 bytes.";
    assert!(String::from_utf8_lossy(&theirs.stderr).contains(message));
    assert!(!ours.status.success() && String::from_utf8_lossy(&ours.stderr).contains(message));
    assert!(theirs.stdout.is_empty() && ours.stdout.is_empty());
}

/// `cpid` is the `-c` command's pid, known in BEGIN already: filtering on it sees the
/// workload's own syscalls. (Not compared: the raw syscall count, which differs by the
/// few syscalls of rbt's start gate, a shell that execs the command.)
#[test]
fn cpid_matches_bpftrace() {
    let test = "cpid_matches_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(workload) = workload() else {
        support::skip(test, "cannot build the workload with gcc -static");
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let script = "BEGIN { @b = cpid > 0; } \
        tracepoint:syscalls:sys_enter_openat /pid == cpid/ { printf(\"%s %s\\n\", comm, str(args->filename)); } \
        tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { @g = count(); }";
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&[script], &["-c", &workload], bpftrace_ref::TEXT),
        1,
    );
}

/// Misuses of str(), strncmp() and kptr() are rejected by both tracers with the same
/// message (rbt's location format differs by design).
#[test]
fn string_errors_match_bpftrace() {
    if bpftrace_ref::skip_reason("string_errors_match_bpftrace").is_some() {
        return;
    }
    let scripts = [
        "BEGIN { printf(\"%s\\n\", str(\"x\")); exit(); }",
        "BEGIN { printf(\"%s\\n\", str(1, -1)); exit(); }",
        "BEGIN { printf(\"%d\\n\", strncmp(\"abc\", \"abc\", -1)); exit(); }",
        "BEGIN { $n = 2; printf(\"%d\\n\", strncmp(\"abc\", \"abc\", $n)); exit(); }",
        "BEGIN { printf(\"%d\\n\", kptr(\"a\")); exit(); }",
        "BEGIN { $u = username; printf(\"%d\\n\", $u == \"root\"); exit(); }",
        "BEGIN { printf(\"%d\\n\", cpid); exit(); }",
        "BEGIN { if (strcontains(\"abc\", 1)) { printf(\"OK\\n\"); } exit(); }",
        "BEGIN { if (strcontains(\"abc\")) { printf(\"OK\\n\"); } exit(); }",
        "BEGIN { $a = 1 ? \"yes\" : 2; exit(); }",
        "BEGIN { $a = 1 ? 3 : \"x\"; exit(); }",
    ];
    let failures = bpftrace_ref::error_mismatches(&scripts, false);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
