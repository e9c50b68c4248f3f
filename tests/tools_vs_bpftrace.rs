//! bpftrace's own tools (Debian's bpftrace 0.17 package, `/usr/sbin/*.bt`), unchanged,
//! under rbt and under real bpftrace at the same time on this host, on a workload that
//! makes each print something real; outputs compared after tests/tools/normalize.rs.
//!
//! Each host tool (tests/tools/cases.rs) runs once: both tracers start on it (`-B line`,
//! so their headers show when they are live), the workload runs when both printed their
//! headers, then both get SIGINT. `tests/tools/host_passing.txt` is the gate: a tool
//! listed there that differs fails this test. `RBT_TOOLS_WRITE=1` regenerates
//! docs/TOOLS.md from this run (and the VM results in tests/tools/vm_results.txt).
//! `RBT_TOOLS_ONLY=a,b` runs only those tools; `RBT_TOOLS_KEEP=DIR` keeps the outputs.

mod bpftrace_ref;
mod support;
mod tools;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tools::cases::{Site, Tool, TOOLS};
use tools::outcome::{gate, Outcome};

fn tool_path(name: &str) -> PathBuf {
    Path::new("/usr/sbin").join(format!("{name}.bt"))
}

fn spawn(tracer: &str, tool: &Path, dir: &Path, side: &str) -> std::io::Result<Child> {
    let out = std::fs::File::create(dir.join(format!("{side}.out")))?;
    let err = std::fs::File::create(dir.join(format!("{side}.err")))?;
    Command::new(tracer)
        .args(["-B", "line"])
        .arg(tool)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
}

fn read(dir: &Path, file: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join(file)).unwrap_or_default()).into_owned()
}

/// Waits until `child` printed `lines` lines (it is live) or exited (it failed).
fn wait_live(child: &mut Child, dir: &Path, side: &str, lines: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if read(dir, &format!("{side}.out")).lines().count() >= lines.max(1) {
            return true;
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn interrupt_and_wait(child: &mut Child, tracer: &str) -> Result<(), String> {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let stuck = where_stuck(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{tracer} did not exit within 30 s of SIGINT; {stuck}"
                ));
            }
        }
    }
}

/// Each thread's state and kernel stack, so a tracer that hangs says where (in a
/// syscall such as a perf event's close, or in its own loop).
fn where_stuck(pid: u32) -> String {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut out = String::new();
    for task in tasks {
        let file = |f: &str| std::fs::read_to_string(task.join(f)).unwrap_or_default();
        let state = file("status");
        let state = state
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or("");
        let stack = file("stack");
        let frames: Vec<&str> = stack
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        let _ = write!(
            out,
            "[task {} {} syscall {} stack {}] ",
            task.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            state.trim_start_matches("State:").trim(),
            file("syscall").split_whitespace().next().unwrap_or("?"),
            frames.join("<")
        );
    }
    out
}

/// [`run_tool`] in an empty `dir`.
fn fresh_run(tool: &Tool, dir: &Path) -> Outcome {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch directory");
    run_tool(tool, dir)
}

/// The file written in a tool's directory when `side` did not exit after SIGINT (what
/// it was doing, [`where_stuck`]).
fn hung_file(side: &str) -> String {
    format!("{side}.hung")
}

/// bpftrace's line for events its perf buffers dropped (`Lost 3 events`).
fn reports_loss(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(3)
        .any(|w| w[0] == "Lost" && w[1].parse::<u64>().is_ok() && w[2] == "events")
}

fn run_tool(tool: &Tool, dir: &Path) -> Outcome {
    let path = tool_path(tool.name);
    let (mut theirs, mut ours) = match (
        spawn("bpftrace", &path, dir, "bpftrace"),
        spawn(env!("CARGO_BIN_EXE_rbt"), &path, dir, "rbt"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Outcome::RbtFails(format!("cannot start: {e}")),
    };
    let header = tool.rules.header;
    let bpftrace_live = wait_live(&mut theirs, dir, "bpftrace", header);
    let rbt_live = wait_live(&mut ours, dir, "rbt", header);
    if bpftrace_live && rbt_live {
        let status = Command::new("timeout")
            .args(["60", "sh", "-c", tool.workload])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            let _ = (theirs.kill(), ours.kill(), theirs.wait(), ours.wait());
            return Outcome::Differs(format!("the workload failed: {status:?}"));
        }
        std::thread::sleep(Duration::from_millis(tool.settle_ms));
    }
    let stopped = (
        interrupt_and_wait(&mut theirs, "bpftrace"),
        interrupt_and_wait(&mut ours, "rbt"),
    );
    for (side, stop) in [("bpftrace", &stopped.0), ("rbt", &stopped.1)] {
        if let Err(e) = stop {
            let _ = std::fs::write(dir.join(hung_file(side)), e);
        }
    }
    if bpftrace_live && rbt_live {
        if let (_, Err(e)) | (Err(e), _) = stopped {
            return Outcome::Differs(e);
        }
    }
    Outcome::judge(
        tool,
        (bpftrace_live, rbt_live),
        (&read(dir, "bpftrace.out"), &read(dir, "rbt.out")),
        (&read(dir, "bpftrace.err"), &read(dir, "rbt.err")),
    )
}

const HOST_GATE: &str = "tests/tools/host_passing.txt";

#[test]
fn host_tools_match_bpftrace() {
    const TEST: &str = "host_tools_match_bpftrace";
    if bpftrace_ref::skip_reason(TEST).is_some() {
        return;
    }
    if !tool_path("opensnoop").exists() {
        support::skip(TEST, "bpftrace's tools are not installed in /usr/sbin");
        return;
    }
    let only: Option<Vec<String>> = std::env::var("RBT_TOOLS_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let keep = std::env::var_os("RBT_TOOLS_KEEP").map(PathBuf::from);
    let scratch = std::env::temp_dir().join(format!("rbt-tools-{}", std::process::id()));
    let mut results = Vec::new();
    for tool in TOOLS.iter().filter(|t| t.site == Site::Host) {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == tool.name))
        {
            continue;
        }
        let dir = scratch.join(tool.name);
        let mut outcome = fresh_run(tool, &dir);
        // A reference that lost events (bpftrace 0.17's perf buffers overflow when the
        // machine is busy: execsnoop's join() bursts) or that hung on SIGINT is no
        // reference: run again (rbt hanging is a failure, never retried).
        for _ in 0..2 {
            if dir.join(hung_file("rbt")).exists() {
                break;
            }
            let why = match std::fs::read_to_string(dir.join(hung_file("bpftrace"))) {
                Ok(hung) => hung,
                _ if read(&dir, "bpftrace.out").lines().any(reports_loss) => "lost events".into(),
                _ => break,
            };
            eprintln!("{:<16} bpftrace {why}; running both again", tool.name);
            outcome = fresh_run(tool, &dir);
        }
        eprintln!("{:<16} {} {}", tool.name, outcome.cell(), outcome.summary());
        if let Some(keep) = &keep {
            let _ = std::fs::create_dir_all(keep);
            for side in ["bpftrace", "rbt"] {
                for ext in ["out", "err"] {
                    let name = format!("{side}.{ext}");
                    let _ =
                        std::fs::copy(dir.join(&name), keep.join(format!("{}.{name}", tool.name)));
                }
            }
        }
        results.push((tool, outcome));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if std::env::var_os("RBT_TOOLS_WRITE").is_some() {
        std::fs::write("docs/TOOLS.md", table(&results)).expect("write docs/TOOLS.md");
    }
    let failed: Vec<_> = gate(HOST_GATE)
        .into_iter()
        .filter(|name| results.iter().any(|(t, o)| t.name == name && !o.passed()))
        .collect();
    let passed = results.iter().filter(|(_, o)| o.passed()).count();
    eprintln!("{passed}/{} host tools pass", results.len());
    assert!(
        failed.is_empty(),
        "gated tools that no longer match bpftrace: {failed:?}"
    );
    for name in gate(HOST_GATE) {
        assert!(
            TOOLS.iter().any(|t| t.name == name && t.site == Site::Host),
            "{name} in host_passing.txt is not a host tool"
        );
    }
}

/// `tool<TAB>kernel<TAB>result` lines the VM suite wrote.
fn vm_results() -> Vec<(String, String, String)> {
    std::fs::read_to_string("tests/tools/vm_results.txt")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            Some((
                parts.next()?.to_string(),
                parts.next()?.to_string(),
                parts.next()?.to_string(),
            ))
        })
        .collect()
}

fn table(results: &[(&Tool, Outcome)]) -> String {
    let mut md = String::from(
        "# bpftrace's tools under rbt\n\n\
         Generated by `RBT_TOOLS_WRITE=1 cargo test --test tools_vs_bpftrace` (host) from one \
         side-by-side run of rbt and real bpftrace 0.17 per tool on the same events \
         (tests/tools/cases.rs has each workload and normalisation; tests/tools/normalize.rs \
         the comparison). VM columns come from tests/tools/vm_results.txt.\n\n\
         | tool | site | host (6.18) | 6.1 | 6.12 | normalised | notes |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let vm = vm_results();
    for tool in TOOLS {
        let found = results.iter().find(|(t, _)| t.name == tool.name);
        let host = match found {
            Some((_, o)) => o.cell(),
            None if tool.site == Site::Vm => "no kprobes",
            None => "not run",
        };
        let note = found.map(|(_, o)| o.summary()).unwrap_or_default();
        let on = |kernel: &str| {
            vm.iter()
                .find(|(t, k, _)| t == tool.name && k == kernel)
                .map_or("–".to_string(), |(_, _, r)| r.clone())
        };
        let _ = writeln!(
            md,
            "| {} | {:?} | {host} | {} | {} | {} | {} |",
            tool.name,
            tool.site,
            on("6.1"),
            on("6.12"),
            tool.masked,
            note.replace('|', "\\|")
        );
    }
    md
}
