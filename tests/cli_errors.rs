//! Bad input, end to end through the `rbt` binary: every case must end with one clear
//! message on stderr (snapshotted exactly), nothing on stdout, a non-zero exit and no
//! panic. Script cases use the pinned 6.18 BTF so their messages are the same on every
//! machine; the cases that depend on this kernel or on privileges say so and skip
//! (with the reason) where they cannot run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod support;

const BTF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vmlinux-6.18.btf");

/// A scratch directory for one case; the command runs inside it, so file names in
/// messages are relative and stable.
fn scratch(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rbt-cli-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rbt_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rbt"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run rbt")
}

/// Runs each case under bpftrace and rbt in `dir` and fails with every case where
/// `same(bpftrace's output, rbt's, bpftrace's stderr, rbt's)` is false.
fn compare_with_bpftrace(
    test: &str,
    dir: &Path,
    cases: &[&[&str]],
    same: impl Fn(&Output, &Output, &str, &str) -> bool,
) {
    let mut failures = Vec::new();
    for args in cases {
        let Some((theirs, ours)) = run_both(test, dir, args) else {
            return;
        };
        let (their_err, our_err) = (stderr_text(&theirs), stderr_text(&ours));
        if !same(&theirs, &ours, &their_err, &our_err) {
            failures.push(format!(
                "{args:?}: bpftrace {:?}:\n{their_err}rbt {:?}:\n{our_err}",
                theirs.status.code(),
                ours.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

/// `args` run by bpftrace and by rbt in `dir`: their outputs, or None when bpftrace
/// cannot run here (the test is skipped, or fails under CI).
fn run_both(test: &str, dir: &Path, args: &[&str]) -> Option<(Output, Output)> {
    let theirs = support::output_or_skip(
        test,
        Command::new("bpftrace")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null()),
    )?;
    Some((theirs, rbt_in(dir, args)))
}

/// Checks the failure contract and snapshots exit code and stderr.
fn check_failure(name: &str, out: Output, expected_code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "{name}: rbt panicked:\n{stderr}"
    );
    assert_eq!(
        out.status.code(),
        Some(expected_code),
        "{name}: exit status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert_eq!(stdout, "", "{name}: nothing may reach stdout on failure");
    assert!(
        stderr.lines().count() <= 12,
        "{name}: one clear error expected, got:\n{stderr}"
    );
    // The running kernel's release varies by machine.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let stderr = stderr.replace(&format!("Linux {}", release.trim()), "Linux RELEASE");
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("cli_{name}"), format!("exit: {expected_code}\n{stderr}"));
    });
}

/// Runs `script` (written to `name.bt`) against the pinned BTF and checks it fails.
fn script_case(name: &str, script: &[u8]) {
    let dir = scratch(name);
    let file = format!("{name}.bt");
    std::fs::write(dir.join(&file), script).unwrap();
    let out = rbt_in(&dir, &["--btf", BTF, &file]);
    check_failure(name, out, 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn empty_file() {
    script_case("empty_file", b"");
}

#[test]
fn binary_garbage() {
    // An ELF header and bytes that are not UTF-8: someone ran rbt on a binary.
    let mut bytes = b"\x7fELF\x02\x01\x01\x00".to_vec();
    bytes.extend((0u8..=255).rev().cycle().take(4096));
    script_case("binary_garbage", &bytes);
}

#[test]
fn text_garbage() {
    script_case("text_garbage", b"\x01\x02 }}} ((( @@ $$ ;;\n");
}

#[test]
fn one_megabyte_script() {
    // 1 MiB of valid statements, then one error on the last line: parsing and checking
    // a large script ends in the one error, pointing at the right line.
    let mut src = String::from("BEGIN {\n");
    while src.len() < 1 << 20 {
        src.push_str("  $x = 1 + 2 * 3;\n");
    }
    src.push_str("  nosuch();\n}\n");
    script_case("one_megabyte_script", src.as_bytes());
}

#[test]
fn deeply_nested_expression() {
    let depth = 5000;
    let src = format!(
        "BEGIN {{ $x = {}1{}; }}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    script_case("deeply_nested_expression", src.as_bytes());
}

#[test]
fn deeply_nested_blocks() {
    let depth = 1000;
    let src = format!(
        "BEGIN {{\n{}{}}}\n",
        "if (1) {\n".repeat(depth),
        "}\n".repeat(depth)
    );
    script_case("deeply_nested_blocks", src.as_bytes());
}

#[test]
fn unknown_function() {
    script_case("unknown_function", b"BEGIN {\n  foo(1);\n}\n");
}

#[test]
fn unknown_builtin() {
    script_case(
        "unknown_builtin",
        b"BEGIN {\n  printf(\"%d\\n\", nosuchvar);\n}\n",
    );
}

#[test]
fn unknown_struct() {
    script_case(
        "unknown_struct",
        b"kprobe:tcp_connect {\n  $s = (struct nosuch *)arg0;\n}\n",
    );
}

#[test]
fn unknown_member() {
    script_case(
        "unknown_member",
        b"kprobe:tcp_connect {\n  $s = (struct sock *)arg0;\n  printf(\"%d\\n\", $s->nosuch);\n}\n",
    );
}

#[test]
fn kprobe_on_missing_function() {
    script_case(
        "kprobe_on_missing_function",
        b"kprobe:no_such_fn {\n  printf(\"x\\n\");\n}\n",
    );
}

#[test]
fn missing_tracepoint() {
    // Records not in BTF are read from tracefs by sema, which only root can read: as
    // another user the message (rightly) says tracefs is not available instead.
    if skip_unless_root("missing_tracepoint") {
        return;
    }
    script_case(
        "missing_tracepoint",
        b"tracepoint:nosuch:no_such_event {\n  printf(\"x\\n\");\n}\n",
    );
}

#[test]
fn missing_script_file() {
    let dir = scratch("missing_script_file");
    // bpftrace 0.17 exits with 255 (its `return -1`) when it cannot open the script.
    check_failure("missing_script_file", rbt_in(&dir, &["nosuch.bt"]), 255);
}

#[test]
fn script_is_a_directory() {
    let dir = scratch("script_is_a_directory");
    std::fs::create_dir(dir.join("scripts.d")).unwrap();
    check_failure("script_is_a_directory", rbt_in(&dir, &["scripts.d"]), 1);
}

/// stderr without bpftrace's harmless RLIMIT_MEMLOCK line.
fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("RLIMIT_MEMLOCK"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Command lines bpftrace 0.17 rejects (or answers with its usage) before reading any
/// script: rbt must exit with the same code and, where bpftrace prints an `ERROR:`
/// line first, print the same first line; where it prints its usage, rbt prints its
/// own (`USAGE:`), also on stderr.
#[test]
fn command_line_errors_match_bpftrace() {
    let test = "command_line_errors_match_bpftrace";
    if support::skip_if(test, support::not_root()).is_some() {
        return;
    }
    let dir = scratch("command_line_errors");
    let cases: &[&[&str]] = &[
        &["-p", "a1111", "file.bt"],
        &["-p", "111a1", "file.bt"],
        &["-p", "not_a_pid", "file.bt"],
        &["-p", "5000000", "file.bt"],
        &["-p", "0", "file.bt"],
        &["-p", "99999999999999999999", "file.bt"],
        &["-f", "jsonx", "-e", "BEGIN { exit(); }"],
        &["-B", "bad", "-e", "BEGIN { exit(); }"],
        &["non_existent_file.bt"],
        &["-q"],
        &["-c", "true", "-p", "1", "-e", "BEGIN { exit(); }"],
        &["-idonotexist"],
        &["--bogus", "-e", "BEGIN { exit(); }"],
        &["-kkk", "-e", "BEGIN { exit(); }"],
        &["-l", "a", "b"],
        &["-h"],
        &[],
    ];
    compare_with_bpftrace(test, &dir, cases, |theirs, ours, their_err, our_err| {
        let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
        let usage = their_err.contains("USAGE:\n");
        theirs.status.code() == ours.status.code()
            && ours.stdout.is_empty() == theirs.stdout.is_empty()
            && !our_err.contains("panicked")
            && match (usage, their_err.starts_with("ERROR: ")) {
                (_, true) => first(their_err) == first(our_err),
                (true, false) => our_err.contains("USAGE:\n"),
                (false, false) => false,
            }
    });
}

/// Errors rbt gives in bpftrace's words and with its severity word, located in the
/// script as rbt locates errors: after the location, the line is bpftrace's
/// (`stdin:1:1-20: ERROR: tracepoint not found: syscalls:nonsense` from bpftrace,
/// `stdin:1:1: ERROR: ...` and a caret from rbt), and the exit code is the same.
#[test]
fn bpftrace_worded_errors_match_bpftrace() {
    let test = "bpftrace_worded_errors_match_bpftrace";
    if support::skip_if(test, support::not_root()).is_some() {
        return;
    }
    let dir = scratch("bpftrace_worded_errors");
    let cases: &[&[&str]] = &[
        &["-e", "t:syscalls:nonsense { printf(\"hit\"); exit(); }"],
        &["-l", "\\n"],
        &["-l", "a\\b"],
    ];
    compare_with_bpftrace(test, &dir, cases, |theirs, ours, their_err, our_err| {
        let message = |s: &str| {
            let first = s.lines().next().unwrap_or_default();
            first.find(" ERROR: ").map(|at| first[at..].to_string())
        };
        theirs.status.code() == ours.status.code()
            && message(their_err).is_some()
            && message(their_err) == message(our_err)
            && our_err.starts_with("stdin:1:")
            && our_err.lines().nth(2).is_some_and(|l| l.contains('^'))
    });
}

/// `--info` reports what rbt detects: the sections bpftrace 0.17 prints, and the map
/// type bpftrace's own runtime test looks for (`perf_event_array: yes`) as detected.
/// `kprobe:` is not compared: bpftrace says whether the program type loads, rbt whether
/// kprobes can be attached (the kprobe PMU or `kprobe_events`), which this host lacks.
#[test]
fn info_reports_the_host_like_bpftrace() {
    let test = "info_reports_the_host_like_bpftrace";
    if support::skip_if(test, support::not_root()).is_some() {
        return;
    }
    let Some(theirs) = support::output_or_skip(test, Command::new("bpftrace").arg("--info")) else {
        return;
    };
    let dir = scratch("info");
    let ours = rbt_in(&dir, &["--info"]);
    assert_eq!(ours.status.code(), theirs.status.code());
    // Both print it on stderr.
    let (theirs, ours) = (stderr_text(&theirs), stderr_text(&ours));
    let line = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(str::to_string)
    };
    for key in [
        "System",
        "OS:",
        "Arch:",
        "Build",
        "Kernel features",
        "Map types",
        "hash:",
        "percpu hash:",
        "array:",
        "percpu array:",
        "stack_trace:",
        "perf_event_array:",
        "Probe types",
        "tracepoint:",
        "perf_event:",
    ] {
        assert_eq!(line(&ours, key), line(&theirs, key), "--info line {key}");
    }
}

/// A script that needs kernel types (BTF is read only then).
const NEEDS_BTF: &str = "BEGIN { printf(\"%d\\n\", curtask->pid); exit(); }";

/// `--btf FILE` cases: the file's first bytes come from the pinned (real) BTF.
fn btf_case(name: &str, contents: &[u8]) {
    let dir = scratch(name);
    std::fs::write(dir.join("kernel.btf"), contents).unwrap();
    let out = rbt_in(&dir, &["--btf", "kernel.btf", "-e", NEEDS_BTF]);
    check_failure(name, out, 1);
}

#[test]
fn truncated_btf() {
    let real = std::fs::read(BTF).unwrap();
    btf_case("truncated_btf", &real[..1000]);
}

#[test]
fn corrupt_btf() {
    let mut bytes = std::fs::read(BTF).unwrap();
    // Keep the header, scramble the type section.
    for (i, b) in bytes.iter_mut().enumerate().skip(64).take(4096) {
        *b = (i as u8).wrapping_mul(151) ^ 0x5a;
    }
    btf_case("corrupt_btf", &bytes);
}

#[test]
fn not_btf_at_all() {
    btf_case("not_btf_at_all", b"this is not BTF\n");
}

#[test]
fn missing_btf_file() {
    let dir = scratch("missing_btf_file");
    let out = rbt_in(&dir, &["--btf", "nosuch.btf", "-e", NEEDS_BTF]);
    check_failure("missing_btf_file", out, 1);
}

#[test]
fn output_file_in_missing_directory() {
    let dir = scratch("output_file_in_missing_directory");
    let out = rbt_in(
        &dir,
        &[
            "--btf",
            BTF,
            "-o",
            "/proc/nosuch/out",
            "-e",
            "BEGIN { exit(); }",
        ],
    );
    check_failure("output_file_in_missing_directory", out, 1);
}

// ---- cases that depend on privileges or on this kernel ----

/// Skips (see `support::skip`) unless root.
fn skip_unless_root(test: &str) -> bool {
    support::skip_if(test, support::not_root()).is_some()
}

/// `setpriv` drops to `nobody` with no capabilities: rbt must name the privilege.
fn as_nobody(dir: &Path, args: &[&str]) -> Output {
    // World-readable scratch dir, so `nobody` can run there.
    let _ = Command::new("chmod").arg("755").arg(dir).status();
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_rbt"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv (util-linux)")
}

#[test]
fn not_root() {
    if skip_unless_root("not_root") {
        return;
    }
    let dir = scratch("not_root");
    let out = as_nobody(&dir, &["--btf", BTF, "-e", "BEGIN { exit(); }"]);
    check_failure("not_root", out, 1);
}

#[test]
fn not_root_tracepoint() {
    // Without privileges the first thing to fail used to be mounting tracefs.
    if skip_unless_root("not_root_tracepoint") {
        return;
    }
    let dir = scratch("not_root_tracepoint");
    let out = as_nobody(
        &dir,
        &[
            "--btf",
            BTF,
            "-e",
            "tracepoint:sock:inet_sock_set_state { printf(\"x\\n\"); }",
        ],
    );
    check_failure("not_root_tracepoint", out, 1);
}

#[test]
fn output_file_not_writable() {
    if skip_unless_root("output_file_not_writable") {
        return;
    }
    let dir = scratch("output_file_not_writable");
    std::fs::create_dir(dir.join("ro")).unwrap();
    let _ = Command::new("chmod")
        .arg("555")
        .arg(dir.join("ro"))
        .status();
    let out = as_nobody(
        &dir,
        &["--btf", BTF, "-o", "ro/out.txt", "-e", "BEGIN { exit(); }"],
    );
    check_failure("output_file_not_writable", out, 1);
}

#[test]
fn output_file_rejects_writes() {
    // Root may open /proc/version for writing, but every write fails (EIO).
    if skip_unless_root("output_file_rejects_writes") {
        return;
    }
    let dir = scratch("output_file_rejects_writes");
    let out = rbt_in(
        &dir,
        &[
            "--btf",
            BTF,
            "-o",
            "/proc/version",
            "-e",
            "BEGIN { printf(\"hi\\n\"); exit(); }",
        ],
    );
    check_failure("output_file_rejects_writes", out, 1);
}

#[test]
fn kprobes_missing_from_kernel() {
    // tcpaccept.bt on a kernel without CONFIG_KPROBES: the error comes before
    // "Attaching N probes..." and before BEGIN's header (check_failure: stdout empty).
    if skip_unless_root("kprobes_missing_from_kernel") {
        return;
    }
    if support::kernel_has_kprobes() {
        eprintln!("SKIP kprobes_missing_from_kernel: this kernel has kprobes");
        return;
    }
    let dir = scratch("kprobes_missing_from_kernel");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tcpaccept.bt");
    let out = rbt_in(&dir, &[script]);
    check_failure("kprobes_missing_from_kernel", out, 1);
}

#[test]
fn tracepoint_missing_from_tracefs() {
    // The BTF knows the record type, but no such category exists: sema says so in
    // bpftrace 0.17's words (measured) before anything is printed.
    if skip_unless_root("tracepoint_missing_from_tracefs") {
        return;
    }
    let dir = scratch("tracepoint_missing_from_tracefs");
    let out = rbt_in(
        &dir,
        &[
            "-e",
            "BEGIN { printf(\"begin\\n\"); } tracepoint:nosuch:inet_sock_set_state { printf(\"x\\n\"); }",
        ],
    );
    check_failure("tracepoint_missing_from_tracefs", out, 1);
}
