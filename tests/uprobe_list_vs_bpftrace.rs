//! `-l` for uprobes against the real bpftrace 0.17 on this host: both tracers list the
//! function symbols of freshly built test programs (tests/data/uprobe/*.c: -no-pie, PIE,
//! a shared library, copies without execute bits) and of this host's bash and libc, by
//! file, by wildcarded file, through `PATH`, `-p PID` (also in another mount namespace)
//! and a wildcarded probe type; stdout and exit codes must be equal, and a failure's
//! first message too. Also `-p` tracing of a file only the process's mount namespace
//! has (found through `/proc/PID/root`, like the listing). The tracers run in the build directory, so paths are relative.
//! Needs root, bpftrace 0.17 and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Builds the programs once into a fresh directory; `Err` says what is missing.
fn build() -> Result<&'static Path, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = support::build_uprobe_programs(
                "ulist",
                &[
                    &["-no-pie", "-o", "rbtup_nopie", "rbtup.c"],
                    &["-pie", "-fPIE", "-o", "rbtup_pie", "rbtup.c"],
                    &["-shared", "-fPIC", "-o", "librbtup.so", "rbtuplib.c"],
                ],
            )?;
            // A library and an executable without execute bits (bcc takes the first only),
            // and an executable text file.
            for (from, to) in [("librbtup.so", "libnox.so"), ("rbtup_nopie", "nox_exe")] {
                std::fs::copy(dir.join(from), dir.join(to)).map_err(|e| e.to_string())?;
                let mode = std::fs::Permissions::from_mode(0o644);
                std::fs::set_permissions(dir.join(to), mode).map_err(|e| e.to_string())?;
            }
            std::fs::write(dir.join("text.sh"), "echo hi\n").map_err(|e| e.to_string())?;
            let mode = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(dir.join("text.sh"), mode).map_err(|e| e.to_string())?;
            Ok(dir)
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

fn setup(test: &str) -> Option<&'static Path> {
    if bpftrace_ref::skip_reason(test).is_some() {
        return None;
    }
    match build() {
        Ok(dir) => Some(dir),
        Err(e) => {
            support::skip(test, &e);
            None
        }
    }
}

/// `PATH` with the build directory first, so patterns can name a program without a `/`.
fn path_env(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

fn run(tracer: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(tracer)
        .env("PATH", path_env(dir))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"))
}

/// Runs each argument list under both tracers; describes every difference in stdout,
/// exit code or first error message. `Some(text)` expects that text in the listing.
fn compare(dir: &Path, cases: &[(Vec<String>, Option<String>)]) {
    let mut failures = Vec::new();
    for (args, wanted) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = run("bpftrace", dir, &args);
        let ours = run(env!("CARGO_BIN_EXE_rbt"), dir, &args);
        let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
        if let Some(wanted) = wanted {
            assert!(
                text(&theirs).contains(wanted.as_str()),
                "{args:?}: bpftrace's listing lacks {wanted}: the case tests nothing"
            );
        }
        let (their_error, our_error) = (
            bpftrace_ref::error_message(&theirs.stderr),
            bpftrace_ref::error_message(&ours.stderr),
        );
        if text(&theirs) != text(&ours)
            || theirs.status.code() != ours.status.code()
            || (!theirs.status.success() && their_error != our_error)
        {
            failures.push(format!(
                "{args:?}: bpftrace ({}):\n{}{}\nrbt ({}):\n{}{}",
                theirs.status,
                text(&theirs),
                String::from_utf8_lossy(&theirs.stderr),
                ours.status,
                text(&ours),
                String::from_utf8_lossy(&ours.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

fn list(pattern: &str, wanted: Option<&str>) -> (Vec<String>, Option<String>) {
    (
        vec!["-l".to_string(), pattern.to_string()],
        wanted.map(str::to_string),
    )
}

#[test]
fn files_and_wildcards_list_like_bpftrace() {
    let Some(dir) = setup("files_and_wildcards_list_like_bpftrace") else {
        return;
    };
    let cases = [
        list(
            "uprobe:./rbtup_nopie:*",
            Some("uprobe:./rbtup_nopie:rbt_target"),
        ),
        list(
            "uprobe:./rbtup_pie:rbt*",
            Some("uprobe:./rbtup_pie:rbt_stack_args"),
        ),
        list("uretprobe:./rbtup_nopie:rbt*", Some("uretprobe:")),
        list("ur:./rbtup_pie:main", Some("uretprobe:./rbtup_pie:main")),
        list("uprobe:./rbtup_nopie:main+4", Some("main")),
        list(
            "uprobe:./rbtup_nopie:0x401136",
            Some("uprobe:./rbtup_nopie:"),
        ),
        list("uprobe:./rbtup_nopie:nosuch", None),
        list("uprobe:./rbtup*:main", Some("uprobe:./rbtup_pie:main")),
        list("uprobe:rbtup_n*:main", Some("uprobe:rbtup_nopie:main")),
        list("uprobe:./*.so:rbt*", Some("uprobe:./libnox.so:rbt_lib_add")),
        list("uprobe:./libnox.so:rbt*", Some("rbt_lib_add")),
        list("uprobe:rbtup_pie:main", Some("uprobe:rbtup_pie:main")),
        list("uprobe:bash:main", Some("bash:main")),
        list("uprobe:libc:malloc", Some("libc.so.6:malloc")),
        list("uprobe:/bin/bash:*", Some("uprobe:/bin/bash:main")),
        list(
            "*:./rbtup_nopie:rbt*",
            Some("uprobe:./rbtup_nopie:rbt_target"),
        ),
        list(
            "uprobe:./rbtup_nopie:rbt*,uretprobe:./rbtup_pie:ma*",
            Some("uretprobe:./rbtup_pie:main"),
        ),
        // Failures: bpftrace's messages, exit 1.
        list("uprobe:./nox_exe:rbt*", None),
        list("uprobe:./text.sh:*", None),
        list("uprobe:./nonexistent:*", None),
        list("uprobe:./rbtup_nopie", None),
        list("uprobe:./rbtup_nopie:*:x", None),
        list("uprobe:./rbtup_nopie:main+1+2", None),
        list("uretprobe:./rbtup_nopie:main+1", None),
        list("uprobe:./rbtup_*:0x10", None),
        list("\\n", None),
        list("kprobe:f$", None),
    ];
    compare(dir, &cases);
}

#[test]
fn libc_lists_like_bpftrace() {
    let Some(dir) = setup("libc_lists_like_bpftrace") else {
        return;
    };
    compare(dir, &[list("uprobe:libc:*", Some(":malloc\n"))]);
}

/// `rbtup_nopie wait` waits (30 s at most) for a uprobe on rbt_target: long enough to be
/// listed. Killed on drop.
struct Waiting(Child);

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_started(child: Child) -> Waiting {
    let waiting = Waiting(child);
    let exe = format!("/proc/{}/exe", waiting.0.id());
    let start = Instant::now();
    // Until the shell (for the mount namespace case) has exec'ed the program.
    while !std::fs::read_link(&exe).is_ok_and(|p| p.ends_with("rbtup_nopie")) {
        assert!(start.elapsed() < Duration::from_secs(5), "{exe} never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    waiting
}

/// `-p` cases for a process running `path`; an explicit path is seen through
/// `/proc/PID/root` only from another mount namespace (`foreign`).
fn pid_cases(pid: u32, path: &str, foreign: bool) -> Vec<(Vec<String>, Option<String>)> {
    let exe = format!("uprobe:/proc/{pid}/root{path}:rbt_target");
    let explicit = match foreign {
        true => exe.clone(),
        false => format!("uprobe:{path}:rbt_target"),
    };
    let with_pid = |args: &[&str], wanted: Option<&str>| {
        let mut all = vec!["-p".to_string(), pid.to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        (all, wanted.map(str::to_string))
    };
    vec![
        with_pid(&["-l"], Some(&exe)),
        with_pid(&["-l", "uprobe:*"], Some(&exe)),
        with_pid(&["-l", "u*:rbt*"], Some(&exe)),
        with_pid(&["-l", "*:rbt*"], Some(&exe)),
        with_pid(&["-lv", "uprobe:rbt_*"], Some(&exe)),
        with_pid(&["-l", &format!("uprobe:{path}:rbt*")], Some(&explicit)),
    ]
}

#[test]
fn a_process_lists_like_bpftrace() {
    let Some(dir) = setup("a_process_lists_like_bpftrace") else {
        return;
    };
    let child = Command::new(dir.join("rbtup_nopie"))
        .arg("wait")
        .spawn()
        .expect("start rbtup_nopie");
    let waiting = wait_started(child);
    let path = dir.join("rbtup_nopie").display().to_string();
    let mut cases = pid_cases(waiting.0.id(), &path, false);
    // `libc` is the library the process maps (bpftrace asks bcc with the pid).
    let pid = waiting.0.id().to_string();
    let libc = ["-p", &pid, "-l", "uprobe:libc:mallo*"];
    cases.push((libc.map(str::to_string).to_vec(), Some(":malloc\n".into())));
    compare(dir, &cases);
}

/// Starts `rbtup_nopie wait` from a tmpfs only its own mount namespace has (under
/// `dir/private`); `None` (after skipping) without `unshare`.
fn in_private_mount(test: &str, dir: &Path) -> Option<(Waiting, String)> {
    let private = dir.join("private");
    std::fs::create_dir_all(&private).unwrap();
    let script = format!(
        "mount -t tmpfs none {p} && cp {dir}/rbtup_nopie {p}/ && exec {p}/rbtup_nopie wait",
        p = private.display(),
        dir = dir.display()
    );
    let spawned = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            support::skip(test, &format!("cannot run unshare: {e}"));
            return None;
        }
    };
    let waiting = wait_started(child);
    let path = private.join("rbtup_nopie").display().to_string();
    assert!(!Path::new(&path).exists(), "the tmpfs is visible outside");
    Some((waiting, path))
}

#[test]
fn a_process_in_another_mount_namespace_lists_like_bpftrace() {
    let test = "a_process_in_another_mount_namespace_lists_like_bpftrace";
    let Some(dir) = setup(test) else {
        return;
    };
    let Some((waiting, path)) = in_private_mount(test, dir) else {
        return;
    };
    compare(dir, &pid_cases(waiting.0.id(), &path, true));
}

/// `-p PID` with a path only the process's mount namespace has: both tracers attach to
/// the file through `/proc/PID/root` (which `probe` shows) and trace its 5 calls.
#[test]
fn a_process_in_another_mount_namespace_is_traced_like_bpftrace() {
    let test = "a_process_in_another_mount_namespace_is_traced_like_bpftrace";
    let Some(dir) = setup(test) else {
        return;
    };
    let mut outputs = Vec::new();
    for tracer in ["bpftrace", env!("CARGO_BIN_EXE_rbt")] {
        let Some((waiting, path)) = in_private_mount(test, dir) else {
            return;
        };
        let pid = waiting.0.id().to_string();
        let script = format!("uprobe:{path}:rbt_target {{ printf(\"%s %d\\n\", probe, arg0); }}");
        let out = run(tracer, dir, &["-p", &pid, "-e", &script]);
        assert!(
            out.status.success(),
            "{tracer}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).replace(&pid, "PID");
        outputs.push(text);
    }
    assert!(
        outputs[0].contains("uprobe:/proc/PID/root/") && outputs[0].contains(":rbt_target 5\n"),
        "bpftrace did not trace through /proc/PID/root:\n{}",
        outputs[0]
    );
    assert_eq!(outputs[1], outputs[0]);
}
