//! Defects a hostile tester found in `-p PID` and `-c CMD`, pinned through the `rbt`
//! binary: bad pids, a pid that exits, both flags at once, a command that does not exist
//! and a command (and its children) killed however tracing ends. What bpftrace 0.17 does
//! is quoted where it decided the expected behaviour. BPF cases need root.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod reliability_common;
mod support;

use reliability_common::*;

// ---- 3. `-p PID` ----

#[test]
fn pid_out_of_range_or_not_a_number() {
    // bpftrace 0.17: `ERROR: pid '0' out of valid pid range [1,4194304]`, likewise for
    // 4294967295, and `ERROR: pid 'abc' is not a valid decimal number`; exit 1.
    for (name, pid) in [("zero", "0"), ("u32_max", "4294967295"), ("abc", "abc")] {
        let out = rbt()
            .args(["--btf", BTF, "-p", pid, "-e", "BEGIN { exit(); }"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        snapshot(&format!("pid_{name}"), &out);
    }
}

#[test]
fn pid_that_does_not_exist() {
    // bpftrace 0.17 (pidfd_open fails with ESRCH): `ERROR: : No such process`, exit 1,
    // before the script is even parsed. PID_MAX_LIMIT itself is never a live pid.
    let out = rbt()
        .args(["--btf", BTF, "-p", "4194304", "-e", "BEGIN { exit(); }"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"");
    snapshot("pid_no_such_process", &out);
}

#[test]
fn pid_and_command_together() {
    // bpftrace 0.17: `ERROR: USAGE: Cannot use both -c and -p.`, exit 1.
    let out = rbt()
        .args([
            "--btf",
            BTF,
            "-p",
            "1",
            "-c",
            "true",
            "-e",
            "BEGIN { exit(); }",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).starts_with("ERROR: USAGE: Cannot use both -c and -p.\n"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn session_ends_when_the_pid_exits() {
    // bpftrace 0.17 with `-p` of a `sleep 1` printed `Attaching 2 probes...`, END's
    // output and the two closing newlines when the process exited; exit 0.
    if skip_unless_root("session_ends_when_the_pid_exits") {
        return;
    }
    let mut sleeper = Command::new("sleep").arg("1").spawn().unwrap();
    let started = Instant::now();
    let out = rbt()
        .args(["-p", &sleeper.id().to_string(), "-e"])
        .arg(r#"tracepoint:syscalls:sys_enter_nanosleep { printf("x\n"); } END { printf("end\n"); }"#)
        .output()
        .unwrap();
    let _ = sleeper.wait();
    assert_no_crash("pid_exits", &out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Attaching 2 probes...\nend\n\n\n"
    );
}

// ---- 4. the `-c` command ----

#[test]
fn command_that_does_not_exist() {
    // bpftrace 0.17: `ERROR: Failed to fork child: path '/nonexistent' does not exist or
    // is not executable`, exit 255, before anything is attached.
    for (name, cmd) in [("missing", "/nonexistent arg"), ("directory", "/tmp")] {
        let out = rbt()
            .args([
                "--btf",
                BTF,
                "-c",
                cmd,
                "-e",
                "BEGIN { printf(\"hi\\n\"); }",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(out.stdout, b"", "nothing attached, nothing printed");
        snapshot(&format!("command_{name}"), &out);
    }
}

/// Waits up to 5 s for process `pid` to be gone (no /proc entry, or a zombie).
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, r)| r.starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

/// Waits up to 10 s for the command to write its background sleep's pid to `file`.
fn read_pid(file: &std::path::Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the -c command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `-c` command that starts a grandchild (`sleep 300`), records its pid, and keeps
/// making nanosleep events.
fn command_with_grandchild(dir: &std::path::Path) -> (String, PathBuf) {
    let file = dir.join("sleep.pid");
    // `-c` runs no shell (its words are the program's arguments, as in bpftrace), so
    // the shell code goes in a script.
    let script = dir.join("grandchild.sh");
    std::fs::write(
        &script,
        format!(
            "sleep 300 & echo $! > {}; while :; do sleep 0.05; done\n",
            file.display()
        ),
    )
    .unwrap();
    (format!("/bin/sh {}", script.display()), file)
}

/// glibc sleeps with clock_nanosleep, so the command's `sleep 0.05` fires this.
const NANOSLEEP: &str = r#"tracepoint:syscalls:sys_enter_clock_nanosleep { printf("x\n"); }"#;

#[test]
fn command_is_killed_on_sigint() {
    // bpftrace 0.17 with `-c '/usr/bin/sleep 107'`, SIGINT to bpftrace: the output
    // ends as usual (exit 0) and the sleep is gone (SIGKILLed by ~ChildProc).
    if skip_unless_root("command_is_killed_on_sigint") {
        return;
    }
    let dir = scratch("command_sigint");
    let (cmd, file) = command_with_grandchild(&dir);
    let child = rbt()
        .args(["-c", &cmd, "-e", "BEGIN { printf(\"hi\\n\"); }"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleeper = read_pid(&file);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_no_crash("command_sigint", &out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Attaching 1 probe...\nhi\n\n\n"
    );
    assert!(
        gone(sleeper),
        "the command's sleep {sleeper} survived SIGINT"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn command_is_killed_when_the_output_closes() {
    if skip_unless_root("command_is_killed_when_the_output_closes") {
        return;
    }
    let dir = scratch("command_epipe");
    let (cmd, file) = command_with_grandchild(&dir);
    let mut child = rbt()
        .args(["-c", &cmd, "-e", NANOSLEEP])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleeper = read_pid(&file);
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_no_crash("command_epipe", &out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        gone(sleeper),
        "the command's sleep {sleeper} survived EPIPE"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn command_is_killed_on_an_output_error() {
    if skip_unless_root("command_is_killed_on_an_output_error") {
        return;
    }
    let dir = scratch("command_enospc");
    let (cmd, file) = command_with_grandchild(&dir);
    // -q: the first write (and so the error) comes after the command started.
    let child = rbt()
        .args(["-q", "-o", "/dev/full", "-c", &cmd, "-e", NANOSLEEP])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleeper = read_pid(&file);
    let out = child.wait_with_output().unwrap();
    assert_no_crash("command_enospc", &out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("No space left on device"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        gone(sleeper),
        "the command's sleep {sleeper} survived the error"
    );
    let _ = std::fs::remove_dir_all(dir);
}
