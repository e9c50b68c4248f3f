//! uprobes and uretprobes against the real bpftrace 0.17 on this host: both tracers
//! trace the same freshly built test program (tests/data/uprobe/rbtup.c, built static,
//! -no-pie and PIE, and a program calling a shared library the test builds too) and
//! must print the same bytes; bad targets must fail under both, with the same meaning
//! (rbt's wording is an insta snapshot). The tracers run in the build directory, so
//! paths in scripts and messages are relative and stable.
//! Needs root, bpftrace 0.17, the uprobe PMU, gcc and nm (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BINARIES: [&str; 3] = ["rbtup_static", "rbtup_nopie", "rbtup_pie"];

/// Builds the test programs once into a fresh directory; `Err` says what is missing.
fn build() -> Result<&'static Path, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            support::build_uprobe_programs(
                "uprobes",
                &[
                    &["-static", "-o", "rbtup_static", "rbtup.c"],
                    &["-no-pie", "-o", "rbtup_nopie", "rbtup.c"],
                    &["-pie", "-fPIE", "-o", "rbtup_pie", "rbtup.c"],
                    &["-shared", "-fPIC", "-o", "librbtup.so", "rbtuplib.c"],
                    &[
                        "-o",
                        "rbtup_lib",
                        "rbtup_lib.c",
                        "-L.",
                        "-lrbtup",
                        "-Wl,-rpath,{dir}",
                    ],
                ],
            )
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// One test at a time: a uprobe on one of the shared binaries fires in every process
/// running it, so a test's tracers would count another test's runs.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The build directory and this test's turn, or `None` (after saying why) when a
/// facility is missing.
fn setup(test: &str) -> Option<(std::sync::MutexGuard<'static, ()>, &'static Path)> {
    bpftrace_ref::uprobe_turn(test, &SERIAL, build)
}

fn rbt() -> &'static str {
    env!("CARGO_BIN_EXE_rbt")
}

/// `PATH` with the build directory first, so scripts can name a binary without a `/`.
fn path_env() -> std::ffi::OsString {
    let mut dirs = vec![build().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

fn run(tracer: &str, dir: &Path, args: &[&str], script: &str) -> Output {
    Command::new(tracer)
        .env("PATH", path_env())
        .args(args)
        .arg("-e")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"))
}

/// Runs each (args, script) under both tracers; describes every difference.
fn compare(dir: &Path, cases: &[(Vec<String>, String)]) {
    let mut failures = Vec::new();
    for (args, script) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let expected = run("bpftrace", dir, &args, script);
        assert!(
            expected.status.success(),
            "bpftrace must run {args:?} {script}: {}",
            String::from_utf8_lossy(&expected.stderr)
        );
        let got = run(rbt(), dir, &args, script);
        let (expected, got_text) = (
            String::from_utf8_lossy(&expected.stdout),
            String::from_utf8_lossy(&got.stdout),
        );
        if !got.status.success() || got_text != expected {
            failures.push(format!(
                "{args:?} {script}\n--- bpftrace\n{expected}--- rbt ({})\n{got_text}{}",
                got.status,
                String::from_utf8_lossy(&got.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `-c BIN` (relative to the build directory unless absolute).
fn with_c(bin: &str, script: String) -> (Vec<String>, String) {
    let command = if bin.starts_with('/') {
        bin.to_string()
    } else {
        format!("./{bin}")
    };
    (vec!["-c".into(), command], script)
}

#[test]
fn arguments_and_return_values_match_bpftrace() {
    let Some((_turn, dir)) = setup("arguments_and_return_values_match_bpftrace") else {
        return;
    };
    let cases: Vec<_> = BINARIES
        .iter()
        .map(|bin| {
            with_c(
                bin,
                format!(
                    "uprobe:./{bin}:rbt_target {{ printf(\"%d %d\\n\", arg0, arg1); \
                     printf(\"reg %d %d %d\\n\", reg(\"di\"), reg(\"si\"), reg(\"sp\") > 0); }} \
                     ur:./{bin}:rbt_target {{ printf(\"= %d %d\\n\", retval, reg(\"ax\")); }} \
                     uprobe:./{bin}:rbt_stack_args {{ printf(\"sarg %d %d\\n\", sarg0, sarg1); }}"
                ),
            )
        })
        .collect();
    compare(dir, &cases);
}

/// Wildcards in a uprobe's file and function expand as bpftrace 0.17 expands them (the
/// symbols `-l` lists): one attach point per match, `probe` naming each, a pattern that
/// matches nothing dropped; quoted parts are taken as written. A private copy of the program, so no other test's run of
/// it is traced.
#[test]
fn wildcards_expand_like_bpftrace() {
    let Some((_turn, dir)) = setup("wildcards_expand_like_bpftrace") else {
        return;
    };
    std::fs::copy(dir.join("rbtup_nopie"), dir.join("rbtup_wild")).unwrap();
    let cases: Vec<_> = [
        "uprobe:./rbtup_wild:rbt_t* { printf(\"%s %d\\n\", probe, arg0); }",
        "uprobe:./rbtup_w*:rbt* { @[probe] = count(); }",
        "uretprobe:./rbtup_wild:rbt* { @[probe] = sum(retval); }",
        "uprobe:./rbtup_wild:rbt* { @ = count(); }",
        "BEGIN { printf(\"begin\\n\"); } uprobe:./rbtup_wild:nomatch* { printf(\"hit\\n\"); }",
        // Quoted parts (bpftrace drops the quotes), with an offset after one.
        "uprobe:\"./rbtup_wild\":\"rbt_target\"+0 { printf(\"%s %d\\n\", probe, arg0); }",
    ]
    .into_iter()
    .map(|script| with_c("rbtup_wild", script.to_string()))
    .collect();
    compare(dir, &cases);
}

/// `rbt_target`'s address as `nm` prints it (a virtual address, as bpftrace takes it).
fn nm_address(dir: &Path, bin: &str) -> String {
    let out = Command::new("nm")
        .arg(bin)
        .current_dir(dir)
        .output()
        .expect("run nm");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.ends_with(" rbt_target"))
        .unwrap_or_else(|| panic!("nm {bin} lists no rbt_target:\n{text}"));
    let hex = line.split_whitespace().next().unwrap();
    format!("0x{}", hex.trim_start_matches('0'))
}

#[test]
fn maps_addresses_and_libraries_match_bpftrace() {
    let Some((_turn, dir)) = setup("maps_addresses_and_libraries_match_bpftrace") else {
        return;
    };
    let mut cases = Vec::new();
    for bin in BINARIES {
        let addr = nm_address(dir, bin);
        cases.push(with_c(
            bin,
            format!("u:./{bin}:{addr} {{ @s[arg0] = sum(arg1); @c = count(); }}"),
        ));
    }
    cases.push(with_c(
        "rbtup_lib",
        "uprobe:./librbtup.so:rbt_lib_add { printf(\"%d %d\\n\", arg0, arg1); } \
         uretprobe:./librbtup.so:rbt_lib_add { @r[retval] = sum(retval); }"
            .into(),
    ));
    cases.push(with_c(
        "rbtup_pie",
        "uprobe:libc:atoi /comm == \"rbtup_pie\"/ { @atoi = count(); }".into(),
    ));
    compare(dir, &cases);
    // A name without `/` is looked up in PATH (run elsewhere: bpftrace takes a match in
    // the working directory too, then fails to find the symbol through it).
    let elsewhere = dir.parent().unwrap();
    let by_name = format!("{}/rbtup_pie", dir.display());
    compare(
        elsewhere,
        &[with_c(
            &by_name,
            "uprobe:rbtup_pie:rbt_target { @h = hist(arg1); @m = max(arg0); }".into(),
        )],
    );
}

/// Runs `tracer -p PID script` on a waiting `rbtup_pie` (it starts its calls once it
/// sees the uprobe) and returns what the tracer printed until it exited with it.
fn trace_running(tracer: &str, dir: &Path, script: &str) -> String {
    let mut target = Command::new("./rbtup_pie")
        .arg("wait")
        .current_dir(dir)
        .spawn()
        .expect("start rbtup_pie");
    let mut child = Command::new(tracer)
        .args(["-p", &target.id().to_string(), "-e", script])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        stdout.read_to_string(&mut all).map(|_| all)
    });
    let status = target.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{tracer} -p did not exit after its process did");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        status.success(),
        "rbtup_pie never saw {tracer}'s uprobe: {status}"
    );
    reader.join().unwrap().expect("read the tracer")
}

#[test]
fn attaching_to_a_running_process_matches_bpftrace() {
    let Some((_turn, dir)) = setup("attaching_to_a_running_process_matches_bpftrace") else {
        return;
    };
    let script = "uprobe:./rbtup_pie:rbt_target { printf(\"%d %d\\n\", arg0, arg1); } \
                  uretprobe:./rbtup_pie:rbt_target { @r[retval] = sum(retval); }";
    let expected = trace_running("bpftrace", dir, script);
    assert!(expected.contains("5 50"), "bpftrace saw: {expected}");
    assert_eq!(trace_running(rbt(), dir, script), expected);
}

/// (snapshot name, script, what bpftrace's message says, what rbt's says)
const BAD_TARGETS: &[(&str, &str, &str, &str)] = &[
    (
        "missing_binary",
        "uprobe:/nonexistent/rbtup:f { exit(); }",
        "does not exist",
        "does not exist",
    ),
    (
        "not_elf",
        "uprobe:/etc/passwd:f { exit(); }",
        "does not exist or is not executable",
        "not an elf executable",
    ),
    (
        "unknown_library",
        "uprobe:libnosuchrbt:f { exit(); }",
        "'libnosuchrbt' does not exist",
        "'libnosuchrbt' does not exist",
    ),
    (
        "address_outside_functions",
        "uprobe:./rbtup_pie:0x5 { exit(); }",
        "could not resolve address",
        "could not resolve address",
    ),
    (
        "uretprobe_offset",
        "uretprobe:./rbtup_pie:rbt_target+1 { exit(); }",
        "offset not allowed",
        "cannot be attached at a function offset",
    ),
    (
        "offset_unchecked",
        "uprobe:./rbtup_pie:rbt_target+1 { exit(); }",
        "can't check if uprobe is in proper place",
        "instruction boundary",
    ),
    (
        "offset_outside_function",
        "uprobe:./rbtup_pie:rbt_target+64 { exit(); }",
        "offset outside the function bounds",
        "offset outside the function bounds",
    ),
];

/// bpftrace 0.17 drops an attach point whose symbol the binary lacks (it finds no C++
/// overload of it) and runs without it; with nothing left it says "No probes to attach"
/// on stdout and fails. rbt does the same and says on stderr what it dropped.
#[test]
fn a_missing_symbol_drops_the_attach_point_like_bpftrace() {
    let Some((_turn, dir)) = setup("a_missing_symbol_drops_the_attach_point_like_bpftrace") else {
        return;
    };
    for script in [
        "uprobe:./rbtup_pie:nosuch { exit(); }",
        "BEGIN { printf(\"begin\\n\"); exit(); } uprobe:./rbtup_pie:nosuch { printf(\"hit\\n\"); }",
    ] {
        let theirs = run("bpftrace", dir, &[], script);
        let ours = run(rbt(), dir, &[], script);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "stdout for {script}"
        );
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "exit for {script}"
        );
        let ours_err = String::from_utf8_lossy(&ours.stderr);
        assert!(
            ours_err.contains("warning: './rbtup_pie' has no symbol 'nosuch'"),
            "rbt's warning for {script}:\n{ours_err}"
        );
    }
}

#[test]
fn bad_targets_fail_like_bpftrace() {
    let Some((_turn, dir)) = setup("bad_targets_fail_like_bpftrace") else {
        return;
    };
    for (name, script, bpftrace_says, rbt_says) in BAD_TARGETS {
        let theirs = run("bpftrace", dir, &[], script);
        // bpftrace says some of it on stdout ("No probes to attach").
        let theirs_err = format!(
            "{}{}",
            String::from_utf8_lossy(&theirs.stdout),
            String::from_utf8_lossy(&theirs.stderr)
        )
        .to_lowercase();
        assert!(!theirs.status.success(), "bpftrace ran {script}");
        assert!(
            theirs_err.contains(bpftrace_says),
            "bpftrace's message for {script} changed:\n{theirs_err}"
        );
        let ours = run(rbt(), dir, &[], script);
        let ours_err = String::from_utf8_lossy(&ours.stderr).into_owned();
        assert!(!ours.status.success(), "rbt ran {script}");
        assert!(ours.stdout.is_empty(), "rbt printed for {script}");
        assert!(
            ours_err.to_lowercase().contains(rbt_says),
            "rbt's message for {script}:\n{ours_err}"
        );
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false, description => *script}, {
            insta::assert_snapshot!(format!("uprobe_err_{name}"), ours_err);
        });
    }
}
