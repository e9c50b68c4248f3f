//! Functions end to end (`join`, `buf` and printf's `%r`, ...): rbt and the real
//! bpftrace 0.17 run the same scripts on this host and must print the same bytes, in
//! text and `-f json`, and reject the same bad scripts with the same message. The
//! tracepoint scripts trace the exec of a command each tracer starts with `-c` (picked
//! out by `pid == cpid`), whose arguments the test chooses; `/bin/true` prints nothing,
//! so nothing races the tracer's own output.
//! Needs root, bpftrace 0.17 and tracefs (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use bpftrace_ref::error_message;
use std::process::{Command, Stdio};

/// The first error each tracer reports for `args -e script`; both must reject it.
fn errors(args: &[&str], script: &str) -> (String, String) {
    let run = |tracer: &str| {
        let out = Command::new(tracer)
            .args(args)
            .args(["-e", script])
            .stdin(Stdio::null())
            .output()
            .expect("run tracer");
        assert!(!out.status.success(), "{tracer} accepted {script}");
        error_message(&out.stderr).unwrap_or_else(|| panic!("{tracer}: no error for {script}"))
    };
    (run("bpftrace"), run(env!("CARGO_BIN_EXE_rbt")))
}

fn compare_errors(args: &[&str], scripts: &[&str]) {
    let failures: Vec<String> = scripts
        .iter()
        .filter_map(|s| {
            let (theirs, ours) = errors(args, s);
            (theirs != ours).then(|| format!("{s}\n  bpftrace: {theirs}\n  rbt:      {ours}"))
        })
        .collect();
    bpftrace_ref::assert_no_mismatches(failures, scripts.len());
}

/// The command `-c` runs: `/bin/true` with these arguments (one space between them, as
/// bpftrace splits `-c` at every space).
fn true_with(args: &[String]) -> String {
    std::iter::once("/bin/true".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn skip_unless_tracepoints(test: &str) -> bool {
    if bpftrace_ref::skip_reason(test).is_some() {
        return true;
    }
    let events = "/sys/kernel/tracing/events/syscalls/sys_enter_execve";
    if !std::path::Path::new(events).exists() {
        support::skip(test, &format!("no tracepoint {events}"));
        return true;
    }
    false
}

const JOIN_SCRIPTS: &[&str] = &[
    "tracepoint:syscalls:sys_enter_execve /pid == cpid/ { join(args->argv); }",
    "tracepoint:syscalls:sys_enter_execve /pid == cpid/ { join(args->argv, \", \"); join(args->argv, \"\"); join(args->argv, \"\\t\\\"\"); }",
    "tracepoint:syscalls:sys_enter_execve /pid == cpid/ { printf(\"<\"); join(args->argv, \"-\"); printf(\">\\n\"); }",
];

/// `join(args->argv)` on an exec with known arguments: all printed, as bpftrace does.
#[test]
fn join_matches_bpftrace() {
    if skip_unless_tracepoints("join_matches_bpftrace") {
        return;
    }
    let words: Vec<String> = ["a", "bb", "c-c", "d.d"].map(String::from).to_vec();
    let cmd = true_with(&words);
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(JOIN_SCRIPTS, &["-c", &cmd], bpftrace_ref::TEXT_AND_JSON),
        JOIN_SCRIPTS.len() * 2,
    );
}

/// bpftrace reads 16 elements of the array and at most 1023 bytes of each string.
#[test]
fn join_limits_match_bpftrace() {
    if skip_unless_tracepoints("join_limits_match_bpftrace") {
        return;
    }
    let many: Vec<String> = (1..=20).map(|i| format!("arg{i}")).collect();
    let long = vec!["x".repeat(1100), "after".to_string()];
    // `-c` splits on single spaces and runs no shell: quotes stay, two spaces make an
    // empty argument.
    let quoted = vec!["'A'".to_string(), String::new(), "\"b c\"".to_string()];
    let mut failures = Vec::new();
    for words in [many, long, quoted] {
        failures.extend(bpftrace_ref::output_mismatches(
            &JOIN_SCRIPTS[..1],
            &["-c", &true_with(&words)],
            bpftrace_ref::TEXT_AND_JSON,
        ));
    }
    bpftrace_ref::assert_no_mismatches(failures, 6);
}

const BUF_BEGIN_SCRIPTS: &[&str] = &[
    r#"BEGIN { printf("[%r] [%rx] [%rh]\n", buf("ab\x01~ \x7f", 6), buf("ab\x01", 3), buf("ab\x01", 3)); exit(); }"#,
    r#"BEGIN { printf("[%10r|%-10rx|%.3rh]\n", buf("ab", 2), buf("ab", 2), buf("abcd", 4)); exit(); }"#,
    r#"BEGIN { printf("%r|\n", buf("abc", 100)); printf("%r|\n", buf("ab", 0)); exit(); }"#,
    r#"BEGIN { $n = 2; printf("%r|\n", buf("abcdef", $n)); $n = 200; printf("%r|\n", buf("abcdef", $n)); exit(); }"#,
    r#"BEGIN { printf("%r|%rh\n", buf(0, 4), buf(0, 2)); exit(); }"#,
    r#"BEGIN { @b = buf("a\x02\"c", 4); @k[buf("xy", 2)] = 1; @k[buf("\ny", 2)] = 2; $v = buf("q\n", 2); printf("%r\n", $v); exit(); }"#,
    r#"BEGIN { @b = buf("a\x02c", 3); print(@b); exit(); }"#,
];

const SIZEOF_SCRIPTS: &[&str] = &[
    r#"BEGIN { printf("%d %d %d %d %d\n", sizeof(struct task_struct), sizeof(int32), sizeof(comm), sizeof(pid), sizeof(uint8)); exit(); }"#,
    r#"BEGIN { printf("%d %d %d %d\n", sizeof(curtask), sizeof(*curtask), sizeof(curtask->comm), sizeof(curtask->pid)); exit(); }"#,
    r#"BEGIN { printf("%d %d %d %d\n", sizeof(1), sizeof("abc"), sizeof(ntop(0)), sizeof(uid)); exit(); }"#,
    r#"BEGIN { $x = (int16)1; @m = (uint8)3; printf("%d %d %d %d\n", sizeof($x), sizeof(@m), sizeof(buf("ab", 2)), sizeof(str(0))); exit(); }"#,
    r#"BEGIN { @s = sizeof(struct sock); @u = sizeof(union bpf_attr); @i = sizeof(int8); exit(); }"#,
];

#[test]
fn sizeof_matches_bpftrace() {
    if bpftrace_ref::skip_reason("sizeof_matches_bpftrace").is_some() {
        return;
    }
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(SIZEOF_SCRIPTS, &[], bpftrace_ref::TEXT_AND_JSON),
        SIZEOF_SCRIPTS.len() * 2,
    );
}

#[test]
fn buf_matches_bpftrace() {
    if bpftrace_ref::skip_reason("buf_matches_bpftrace").is_some() {
        return;
    }
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(BUF_BEGIN_SCRIPTS, &[], bpftrace_ref::TEXT_AND_JSON),
        BUF_BEGIN_SCRIPTS.len() * 2,
    );
}

/// `buf()` of user memory: the exec'd path, with constant and run-time lengths, and
/// arrays of 1-, 2-, 4- and 8-byte elements in it without a length (their whole size).
#[test]
fn buf_of_user_memory_matches_bpftrace() {
    if skip_unless_tracepoints("buf_of_user_memory_matches_bpftrace") {
        return;
    }
    let scripts = [
        r#"tracepoint:syscalls:sys_enter_execve /pid == cpid/ { printf("%r|%rx|%rh\n", buf(args->filename, 10), buf(args->filename, 4), buf(args->filename, 9)); }"#,
        r#"tracepoint:syscalls:sys_enter_execve /pid == cpid/ { $n = 5; printf("%r\n", buf(args->filename, $n)); @[buf(args->filename, 4)] = count(); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(
            &scripts,
            &["-c", "/bin/true"],
            bpftrace_ref::TEXT_AND_JSON,
        ),
        scripts.len() * 2,
    );
    // Within the 17 bytes of "/bin/../bin/true" (what lies after differs per tracer).
    let arrays = [
        r#"struct S { uint8_t c[3]; uint16_t e[2]; int d[2]; }; struct T { uint64_t f[2]; }; tracepoint:syscalls:sys_enter_execve /pid == cpid/ { $s = (struct S *)args->filename; printf("%r-%r-%rx-%r\n", buf($s->c), buf($s->e), buf($s->d), buf(((struct T *)args->filename)->f)); @[buf($s->d)] = 1; }"#,
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(
            &arrays,
            &["-c", "/bin/../bin/true"],
            bpftrace_ref::TEXT_AND_JSON,
        ),
        arrays.len() * 2,
    );
}

#[test]
fn function_errors_match_bpftrace() {
    if bpftrace_ref::skip_reason("function_errors_match_bpftrace").is_some() {
        return;
    }
    compare_errors(
        &[],
        &[
            "BEGIN { join(comm); }",
            "BEGIN { join(ntop(0)); }",
            "BEGIN { join(0, 1); }",
            "BEGIN { join(0, comm); }",
            "BEGIN { join(); }",
            "BEGIN { join(0, \",\", 1); }",
            r#"BEGIN { printf("%r\n", buf("abc")); }"#,
            r#"BEGIN { printf("%r\n", buf(comm, -1)); }"#,
            r#"BEGIN { printf("%r\n", buf(comm, comm)); }"#,
            r#"BEGIN { printf("%r\n", buf()); }"#,
            r#"BEGIN { printf("%r\n", buf(1, 2, 3)); }"#,
            r#"BEGIN { printf("%r\n", buf(ntop(0), 4)); }"#,
            r#"BEGIN { printf("%r\n", buf(*curtask, 3)); }"#,
            r#"BEGIN { printf("%s\n", buf(comm, 3)); }"#,
            r#"BEGIN { printf("%rx\n", comm); }"#,
            r#"BEGIN { printf("%d\n", buf(comm, 3)); }"#,
            r#"BEGIN { @x[buf("ab", 2)] = 1; @x[buf("abc", 3)] = 2; }"#,
            "BEGIN { cat(); }",
            "BEGIN { cat(1); }",
            r#"BEGIN { cat("%d"); }"#,
            r#"BEGIN { cat("x", 1); }"#,
            r#"BEGIN { cat("%d", comm); }"#,
            "BEGIN { printf(1); }",
            "BEGIN { printf(); }",
            r#"BEGIN { printf("%d\n", sizeof(enum bpf_cmd)); }"#,
            r#"BEGIN { printf("%d\n", sizeof(nosuch)); }"#,
            r#"BEGIN { printf("%d\n", sizeof(struct nosuch)); }"#,
            r#"BEGIN { printf("%d\n", sizeof()); }"#,
            r#"BEGIN { printf("%d\n", sizeof(1, 2)); }"#,
            r#"BEGIN { printf("%d\n", cgroupid(1)); }"#,
            r#"BEGIN { printf("%d\n", cgroupid()); }"#,
            r#"BEGIN { printf("%s\n", macaddr(curtask->comm)); }"#,
            r#"BEGIN { printf("%s\n", macaddr("abcdef")); }"#,
            r#"BEGIN { printf("%s\n", macaddr()); }"#,
            r#"BEGIN { printf("%s\n", macaddr(ntop(0))); }"#,
            r#"BEGIN { printf("%d\n", macaddr(0)); }"#,
            r#"BEGIN { printf("%s\n", strftime("%H")); }"#,
            r#"BEGIN { printf("%s\n", strftime(1, 2)); }"#,
            r#"BEGIN { printf("%s\n", strftime("%H", comm)); }"#,
            r#"BEGIN { printf("%d\n", strftime("%H", 1)); }"#,
            r#"BEGIN { printf("%s\n", strftime("%H", 1, 2)); }"#,
        ],
    );
}

/// Runs `tracer args -e script` with `env`; stdout and stderr without bpftrace's
/// RLIMIT_MEMLOCK line.
fn run_with_env(
    tracer: &str,
    args: &[&str],
    script: &str,
    env: &[(&str, &str)],
) -> (String, String) {
    let out = Command::new(tracer)
        .args(args)
        .args(["-e", script])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run tracer");
    assert!(out.status.success(), "{tracer} failed on {script}");
    let stderr = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("RLIMIT_MEMLOCK"))
        .map(|l| format!("{l}\n"))
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// `cat()` prints the named file as it is (no newline), at most
/// BPFTRACE_CAT_BYTES_MAX bytes; a file it cannot read is an error on stderr.
#[test]
fn cat_matches_bpftrace() {
    if bpftrace_ref::skip_reason("cat_matches_bpftrace").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rbt-cat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f1.txt"), "line1\n\"tab\"\there\nlast").unwrap();
    let d = dir.display();
    let scripts = [
        format!(r#"BEGIN {{ cat("{d}/f1.txt"); printf("|\n"); cat("{d}/f%d.txt", 1); exit(); }}"#),
        format!(
            r#"BEGIN {{ cat("{d}/f%s.txt", "1"); cat("{d}/none%d", 7); cat("{d}"); printf("|\n"); exit(); }}"#
        ),
    ];
    let rbt = env!("CARGO_BIN_EXE_rbt");
    let mut failures = Vec::new();
    let mut comparisons = 0;
    for script in &scripts {
        for env in [&[][..], &[("BPFTRACE_CAT_BYTES_MAX", "8")][..]] {
            for args in [&[][..], &["-f", "json"][..]] {
                comparisons += 1;
                let theirs = run_with_env("bpftrace", args, script, env);
                let ours = run_with_env(rbt, args, script, env);
                if theirs != ours {
                    failures.push(format!(
                        "{env:?} {args:?} {script}\n--- bpftrace\n{theirs:?}\n--- rbt\n{ours:?}"
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    bpftrace_ref::assert_no_mismatches(failures, comparisons);
}

/// `system()` (with `--unsafe`) runs the command through `sh` and prints its stdout,
/// in order with the other messages.
#[test]
fn system_matches_bpftrace() {
    if bpftrace_ref::skip_reason("system_matches_bpftrace").is_some() {
        return;
    }
    let scripts = [
        r#"BEGIN { system("echo hi %d; echo x", 5); printf("after\n"); system("printf '%s|'", "a\tb"); exit(); }"#,
        r#"BEGIN { printf("<"); system("printf abc"); printf(">\n"); system("exit 3"); exit(); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &["--unsafe"], bpftrace_ref::TEXT_AND_JSON),
        scripts.len() * 2,
    );
}

/// `signal()` (with `--unsafe`) signals the current task: the `-c` command, signalled
/// as it execs, ends at once instead of sleeping 30 s, under both tracers.
#[test]
fn signal_matches_bpftrace() {
    if skip_unless_tracepoints("signal_matches_bpftrace") {
        return;
    }
    let scripts = [
        r#"tracepoint:syscalls:sys_enter_execve /pid == cpid/ { printf("sent\n"); signal("TERM"); }"#,
        r#"tracepoint:syscalls:sys_enter_execve /pid == cpid/ { $s = 9; signal($s); printf("sent\n"); }"#,
    ];
    let start = std::time::Instant::now();
    let failures = bpftrace_ref::output_mismatches(
        &scripts,
        &["--unsafe", "-c", "/bin/sleep 30"],
        bpftrace_ref::TEXT_AND_JSON,
    );
    // Four runs per tracer; without the signal each would take 30 s.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "a command was not signalled ({:?})",
        start.elapsed()
    );
    bpftrace_ref::assert_no_mismatches(failures, scripts.len() * 2);
}

#[test]
fn unsafe_function_errors_match_bpftrace() {
    if bpftrace_ref::skip_reason("unsafe_function_errors_match_bpftrace").is_some() {
        return;
    }
    compare_errors(
        &[],
        &[
            r#"BEGIN { system("echo hi %d", 5); exit(); }"#,
            r#"BEGIN { signal("KILL"); }"#,
            r#"tracepoint:syscalls:sys_enter_getpid { signal(9); }"#,
        ],
    );
    compare_errors(
        &["--unsafe"],
        &[
            r#"BEGIN { signal("KILL"); }"#,
            r#"interval:s:1 { signal(1); }"#,
            r#"tracepoint:syscalls:sys_enter_getpid { signal("FOO"); }"#,
            r#"tracepoint:syscalls:sys_enter_getpid { signal(0); }"#,
            r#"tracepoint:syscalls:sys_enter_getpid { signal(65); }"#,
            r#"tracepoint:syscalls:sys_enter_getpid { signal(comm); }"#,
            r#"tracepoint:syscalls:sys_enter_getpid { signal(); }"#,
            r#"tracepoint:syscalls:sys_enter_getpid { signal(1, 2); }"#,
            r#"BEGIN { system(1); }"#,
            r#"BEGIN { system("%d"); }"#,
        ],
    );
}

/// The cgroup2 mount point, from /proc/mounts.
fn cgroup2_mount() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
    })
}

/// `cgroupid(path)` resolves at compile time to the id bpftrace finds (on cgroup2 the
/// id `cgroup` returns); a path it cannot resolve is the same error.
#[test]
fn cgroupid_matches_bpftrace() {
    if bpftrace_ref::skip_reason("cgroupid_matches_bpftrace").is_some() {
        return;
    }
    let mut paths = vec!["/tmp".to_string()];
    paths.extend(cgroup2_mount());
    let scripts: Vec<String> = paths
        .iter()
        .map(|p| format!(r#"BEGIN {{ printf("%d %d\n", cgroupid("{p}"), cgroup); @[cgroupid("{p}")] = 1; exit(); }}"#))
        .collect();
    let scripts: Vec<&str> = scripts.iter().map(String::as_str).collect();
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &[], bpftrace_ref::TEXT_AND_JSON),
        scripts.len() * 2,
    );
    // bpftrace reports the failure when it compiles ("Failed to compile: ..."), rbt
    // while checking the call; the words after that are the same.
    for path in ["/nonexistent/rbt", "/proc/self"] {
        let (theirs, ours) = errors(&[], &format!(r#"BEGIN {{ @ = cgroupid("{path}"); }}"#));
        assert_eq!(theirs.trim_start_matches("Failed to compile: "), ours);
    }
}

/// `macaddr()` of user memory (the exec'd path, `/bin/../bin/true`): through a pointer,
/// a 6-byte array member, as a map key and value, in a variable.
#[test]
fn macaddr_matches_bpftrace() {
    if skip_unless_tracepoints("macaddr_matches_bpftrace") {
        return;
    }
    let scripts = [
        r#"tracepoint:syscalls:sys_enter_execve /pid == cpid/ { printf("%s|%s\n", macaddr(args->filename), macaddr(((struct ethhdr *)args->filename)->h_source)); }"#,
        r#"tracepoint:syscalls:sys_enter_execve /pid == cpid/ { @m[macaddr(args->filename)] = macaddr(args->filename + 1); $m = macaddr(args->filename); printf("%s %s\n", $m, macaddr($m)); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(
            &scripts,
            &["-c", "/bin/../bin/true"],
            bpftrace_ref::TEXT_AND_JSON,
        ),
        scripts.len() * 2,
    );
}

/// `strftime(fmt, nsecs)`: boot-relative times as local wall-clock text, as printf
/// arguments, map keys and values (constant times: both tracers must agree whenever
/// they run).
#[test]
fn strftime_matches_bpftrace() {
    if bpftrace_ref::skip_reason("strftime_matches_bpftrace").is_some() {
        return;
    }
    let scripts = [
        r#"BEGIN { printf("%s|%s|%s\n", strftime("%Y-%m-%d %H:%M %Z", 0), strftime("%s", 0), strftime("%s", 5000000000)); exit(); }"#,
        r#"BEGIN { printf("[%s]\n", strftime("", 1)); exit(); }"#,
        r#"BEGIN { @x = strftime("%H", 1); @y[strftime("%M", 1)] = 1; $x = strftime("%H:%M", 1); printf("%s\n", $x); exit(); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &[], bpftrace_ref::TEXT_AND_JSON),
        scripts.len() * 2,
    );
}

/// `pton("addr")`: the address's bytes as a `uint8[4]`/`uint8[16]` array, printed,
/// stored, used as a key, in a tuple, indexed, sized and turned back by `ntop()`; bad
/// addresses and non-literal arguments are the same errors.
#[test]
fn pton_matches_bpftrace() {
    if bpftrace_ref::skip_reason("pton_matches_bpftrace").is_some() {
        return;
    }
    let scripts = [
        r#"BEGIN { printf("%s %s %s\n", ntop(pton("127.0.0.1")), ntop(10, pton("::1")), ntop(2, pton("10.1.2.3"))); exit(); }"#,
        r#"BEGIN { print(pton("127.0.0.1")); $a = pton("fe80::1:2"); print($a); printf("%s\n", ntop($a)); exit(); }"#,
        r#"BEGIN { @[pton("1.2.3.4")] = 1; @x = (1, pton("::2")); @y = pton("255.0.0.9"); exit(); }"#,
        r#"BEGIN { printf("%d %d %d\n", pton("1.2.3.4")[1], sizeof(pton("::1")), sizeof(pton("0.0.0.0"))); exit(); }"#,
        r#"BEGIN { print(pton("::")); print(pton("1:2:3:4:5:6:7::")); print(pton("::FFFF")); print(pton("255.255.255.255")); exit(); }"#,
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &[], bpftrace_ref::TEXT_AND_JSON),
        scripts.len() * 2,
    );
    compare_errors(
        &[],
        &[
            r#"BEGIN { print(pton("abc")); }"#,
            r#"BEGIN { print(pton("1.2.3.400")); }"#,
            r#"BEGIN { print(pton("::ffff:1.2.3.4")); }"#,
            r#"BEGIN { print(pton("1::2::3")); }"#,
            r#"BEGIN { print(pton("01.2.3.4")); }"#,
            r#"BEGIN { print(pton("1::2:3:4:5:6:7:8")); }"#,
            r#"BEGIN { $s = "1.2.3.4"; print(pton($s)); }"#,
            r#"BEGIN { print(pton(1)); }"#,
            r#"BEGIN { print(pton()); }"#,
            r#"BEGIN { print(pton("1.2.3.4", 1)); }"#,
        ],
    );
}

/// `cgroup_path(id [, filter])`: the root cgroup (`cgroup` here) and cgroups the test
/// makes two levels deep in the cgroup2 hierarchy and, if mounted, the v1 `pids` one;
/// printed by printf, print(), as a variable, a map value and a tuple element, with
/// filters; unknown ids print nothing; argument errors as bpftrace's.
#[test]
fn cgroup_path_matches_bpftrace() {
    if bpftrace_ref::skip_reason("cgroup_path_matches_bpftrace").is_some() {
        return;
    }
    let Some(v2) = cgroup2_mount() else {
        return support::skip("cgroup_path_matches_bpftrace", "no cgroup2 mount");
    };
    let dir = format!("rbt-cgroup-path-{}", std::process::id());
    let made: Vec<String> = [v2, "/sys/fs/cgroup/pids".to_string()]
        .iter()
        .map(|root| format!("{root}/{dir}/inner"))
        .filter(|leaf| std::fs::create_dir_all(leaf).is_ok())
        .collect();
    let mut scripts = vec![
        r#"BEGIN { print(cgroup_path(cgroup)); printf("path: %s|\n", cgroup_path(cgroup & ((1 << 32) - 1))); exit(); }"#.to_string(),
        r#"BEGIN { $x = cgroup_path(cgroup, "pids"); $y = $x; print($y); @x = $x; @t = (1, cgroup_path(cgroup, "*e*")); exit(); }"#.to_string(),
        r#"BEGIN { print(cgroup_path(123456789)); printf("[%s] [%s]\n", cgroup_path(0), cgroup_path(1, "nomatch")); exit(); }"#.to_string(),
    ];
    for leaf in &made {
        scripts.push(format!(
            r#"BEGIN {{ printf("%s\n", cgroup_path(cgroupid("{leaf}"))); @[1] = cgroup_path(cgroupid("{leaf}"), "u*"); exit(); }}"#
        ));
    }
    let failures = bpftrace_ref::output_mismatches(&scripts, &[], bpftrace_ref::TEXT_AND_JSON);
    for leaf in &made {
        let _ = std::fs::remove_dir(leaf);
        let _ = std::fs::remove_dir(std::path::Path::new(leaf).parent().expect("parent"));
    }
    bpftrace_ref::assert_no_mismatches(failures, scripts.len() * 2);
    compare_errors(
        &[],
        &[
            r#"BEGIN { print(cgroup_path("a")); }"#,
            r#"BEGIN { print(cgroup_path()); }"#,
            r#"BEGIN { print(cgroup_path(1, "a", 2)); }"#,
            r#"BEGIN { print(cgroup_path(1, 2)); }"#,
        ],
    );
}
