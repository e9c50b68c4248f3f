//! Run-time faults against the real binary on this host's tracepoints: signals during a
//! burst of events, SIGKILL, two tracers on one tracepoint, a closed stdout, a stopped
//! reader (ring buffer overflow), and resource hygiene (kernel objects, fds, memory).
//!
//! Events come from this test: `write(fd, buf, k)` to /dev/null with k = 1, 2, 3, ...
//! and the script prints `w k` for writes of this process to that fd, so every event is
//! numbered and gaps, duplicates and torn lines are visible. Needs root and tracefs;
//! skips with the reason otherwise (fails under CI).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod support;

/// The sessions share the CPU and /dev/null writes: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SYS_WRITE: u32 = 1;

/// Skips (see `support::skip`) without root, x86_64 or raw_syscalls:sys_enter.
fn skip(test: &str) -> bool {
    let reason = if support::effective_uid() != 0 {
        Some("not running as root")
    } else if !cfg!(target_arch = "x86_64") {
        Some("the script filters on the x86_64 write syscall number")
    } else if !Path::new("/sys/kernel/tracing/events/raw_syscalls/sys_enter").exists()
        && !Path::new("/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter").exists()
    {
        Some("tracefs with raw_syscalls:sys_enter is not mounted")
    } else {
        None
    };
    support::skip_if(test, reason.map(String::from)).is_some()
}

/// The event source: numbered writes to /dev/null.
struct Writes {
    file: File,
    buf: Vec<u8>,
}

impl Writes {
    fn new(max: usize) -> Writes {
        Writes {
            file: File::options().write(true).open("/dev/null").unwrap(),
            buf: vec![b'x'; max],
        }
    }
    /// The script printing `w k` for every write of this process to our fd.
    fn script(&self, end: &str) -> String {
        format!(
            "tracepoint:raw_syscalls:sys_enter /pid == {} && args.id == {SYS_WRITE} && args.args[0] == {}/ {{ printf(\"w %d\\n\", args.args[2]); }}{end}",
            std::process::id(),
            self.file.as_raw_fd()
        )
    }
    fn write_range(&mut self, range: std::ops::RangeInclusive<usize>, progress: &AtomicU64) {
        for k in range {
            self.file.write_all(&self.buf[..k]).unwrap();
            progress.store(k as u64, Ordering::Relaxed);
        }
    }
}

fn spawn_rbt(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rbt"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rbt")
}

/// Collects a child's stdout on a thread (so a full pipe never blocks rbt).
fn collect(stdout: ChildStdout) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        BufReader::new(stdout).read_to_string(&mut s).unwrap();
        s
    })
}

/// Waits until `pid` holds a BPF link or perf event fd: its probe is attached.
fn wait_attached(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attached = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| {
                dir.flatten().any(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|t| {
                        let t = t.to_string_lossy();
                        t.contains("bpf_link") || t.contains("perf_event")
                    })
                })
            })
            .unwrap_or(false);
        if attached {
            return;
        }
        assert!(Instant::now() < deadline, "rbt {pid} never attached");
        thread::sleep(Duration::from_millis(20));
    }
}

/// rbt running with `args`, its stdout collected on a thread, its probe attached.
struct Session {
    child: Child,
    out: thread::JoinHandle<String>,
}

impl Session {
    fn start(args: &[&str]) -> Session {
        let mut child = spawn_rbt(args);
        let out = collect(child.stdout.take().unwrap());
        wait_attached(child.id());
        Session { child, out }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (60 s at most) for rbt to exit: its status, stderr and parsed stdout.
    fn finish(mut self) -> (std::process::ExitStatus, String, Seen) {
        let status = wait_exit(&mut self.child, 60);
        let stderr = stderr_of(&mut self.child);
        (status, stderr, parse(&self.out.join().unwrap()))
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -s {sig} {pid}");
}

/// Waits for `child` with a deadline; kills it (and fails) if it hangs.
fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rbt did not exit within {secs} s");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Parsed session output: the numbered events in order, lost counts, and the rest.
#[derive(Debug, Default)]
struct Seen {
    events: Vec<u64>,
    lost: u64,
    end: bool,
    other: Vec<String>,
}

fn parse(out: &str) -> Seen {
    let mut seen = Seen::default();
    assert!(
        out.is_empty() || out.ends_with('\n'),
        "half-written last line: {:?}",
        &out[out.len().saturating_sub(40)..]
    );
    for line in out.lines() {
        if let Some(k) = line.strip_prefix("w ") {
            let k = k
                .parse()
                .unwrap_or_else(|_| panic!("torn event line {line:?}"));
            assert!(!seen.end, "event after END: {line}");
            seen.events.push(k);
        } else if let Some(n) = line
            .strip_prefix("Lost ")
            .and_then(|r| r.strip_suffix(" events"))
        {
            seen.lost += n.parse::<u64>().expect("Lost N events");
        } else if line == "end" {
            seen.end = true;
        } else if !line.starts_with("Attaching ") && !line.is_empty() {
            seen.other.push(line.to_string());
        }
    }
    assert!(seen.other.is_empty(), "unexpected lines: {:?}", seen.other);
    seen
}

/// Asserts `events` is exactly 1..=n.
fn assert_prefix(events: &[u64]) {
    for (i, &k) in events.iter().enumerate() {
        assert_eq!(k, i as u64 + 1, "event {} out of order or missing", i + 1);
    }
}

/// SIGINT/SIGTERM halfway through a burst: everything the kernel accepted (a gap-free
/// prefix at least as long as the burst before the signal) is printed, END runs, exit 0.
fn stop_during_burst(test: &str, sig: &str) {
    if skip(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 40_000; // fits the 1 MiB ring buffer (43690 records): none lost
    let mut writes = Writes::new(N);
    let script = writes.script(" END { printf(\"end\\n\"); }");
    let session = Session::start(&["-e", &script]);
    let progress = Arc::new(AtomicU64::new(0));
    let p = progress.clone();
    let burst = thread::spawn(move || writes.write_range(1..=N, &p));
    while progress.load(Ordering::Relaxed) < N as u64 / 2 {
        thread::yield_now();
    }
    let before_signal = progress.load(Ordering::Relaxed);
    signal(session.pid(), sig);
    burst.join().unwrap();
    let (status, stderr, seen) = session.finish();
    eprintln!(
        "{test}: {} events printed, {} written before the signal, lost {}",
        seen.events.len(),
        before_signal,
        seen.lost
    );
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.is_empty() || stderr.contains("RLIMIT_MEMLOCK"),
        "stderr: {stderr}"
    );
    assert_eq!(seen.lost, 0);
    assert_prefix(&seen.events);
    assert!(seen.events.len() as u64 >= before_signal);
    assert!(seen.end, "END did not run");
}

#[test]
fn sigint_during_burst() {
    stop_during_burst("sigint_during_burst", "INT");
}

#[test]
fn sigterm_during_burst() {
    stop_during_burst("sigterm_during_burst", "TERM");
}

/// Kernel object ids held by `pid`: (programs, maps, links), from /proc fdinfo.
fn bpf_objects(pid: u32) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut ids = (Vec::new(), Vec::new(), Vec::new());
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in info.lines() {
            let mut f = line.split(':');
            let (key, value) = (f.next().unwrap_or(""), f.next().unwrap_or("").trim());
            let Ok(id) = value.parse::<u32>() else {
                continue;
            };
            match key {
                "prog_id" => ids.0.push(id),
                "map_id" => ids.1.push(id),
                "link_id" => ids.2.push(id),
                _ => {}
            }
        }
    }
    for v in [&mut ids.0, &mut ids.1, &mut ids.2] {
        v.sort_unstable();
        v.dedup();
    }
    ids
}

/// Whether bpftool still finds the object (`kind` = prog, map or link).
fn bpftool_has(kind: &str, id: u32) -> bool {
    Command::new("bpftool")
        .args([kind, "show", "id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run bpftool")
        .success()
}

/// Waits (the kernel frees BPF objects asynchronously) until none of `ids` remain.
fn assert_released(kind: &str, ids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for &id in ids {
        while bpftool_has(kind, id) {
            assert!(
                Instant::now() < deadline,
                "{kind} {id} still exists after rbt exited"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn no_rbt_kprobe_events() {
    for path in [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            assert!(
                !text.contains("rbt_"),
                "{path} still has rbt events:\n{text}"
            );
        }
    }
}

#[test]
fn sigkill_leaves_no_kernel_objects() {
    if skip("sigkill_leaves_no_kernel_objects") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut writes = Writes::new(100);
    let mut session = Session::start(&["-e", &writes.script("")]);
    writes.write_range(1..=100, &AtomicU64::new(0));
    let (progs, maps, links) = bpf_objects(session.pid());
    eprintln!("sigkill: rbt held progs {progs:?}, maps {maps:?}, links {links:?}");
    assert!(
        !progs.is_empty() && !maps.is_empty(),
        "no BPF objects found"
    );
    assert!(progs.iter().all(|&id| bpftool_has("prog", id)));
    session.child.kill().unwrap(); // SIGKILL
    session.child.wait().unwrap();
    drop(session.out.join());
    assert_released("prog", &progs);
    assert_released("map", &maps);
    assert_released("link", &links);
    no_rbt_kprobe_events();
}

#[test]
fn two_tracers_on_one_tracepoint_both_see_everything() {
    if skip("two_tracers_on_one_tracepoint_both_see_everything") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 5_000;
    let mut writes = Writes::new(N);
    let script = writes.script(" END { printf(\"end\\n\"); }");
    let a = Session::start(&["-e", &script]);
    let b = Session::start(&["-e", &script]);
    writes.write_range(1..=N, &AtomicU64::new(0));
    thread::sleep(Duration::from_millis(500));
    signal(a.pid(), "INT");
    signal(b.pid(), "INT");
    for session in [a, b] {
        let (status, stderr, seen) = session.finish();
        assert!(status.success(), "{status}: {stderr}");
        assert_eq!(seen.events.len(), N);
        assert_prefix(&seen.events);
        assert!(seen.end);
    }
}

/// `rbt ... | head -3`: the reader goes away after three lines while events keep
/// coming; rbt must notice (EPIPE), detach and exit 0 without a word on stderr.
fn closed_stdout(test: &str, buffering: &[&str]) {
    if skip(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 20_000; // enough output to overflow a full buffer several times
    let mut writes = Writes::new(N);
    let mut args = buffering.to_vec();
    let script = writes.script("");
    args.extend(["-e", &script]);
    let mut child = spawn_rbt(&args);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    wait_attached(child.id());
    let burst = thread::spawn(move || writes.write_range(1..=N, &AtomicU64::new(0)));
    let mut first = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        first.push(line);
    }
    drop(stdout); // what `head -3` does after three lines
    burst.join().unwrap();
    let status = wait_exit(&mut child, 30);
    let stderr = stderr_of(&mut child);
    assert_eq!(first, ["Attaching 1 probe...\n", "w 1\n", "w 2\n"]);
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.is_empty() || stderr.contains("RLIMIT_MEMLOCK"),
        "stderr: {stderr}"
    );
}

#[test]
fn closed_stdout_exits_quietly_line_buffered() {
    closed_stdout("closed_stdout_exits_quietly_line_buffered", &["-B", "line"]);
}

#[test]
fn closed_stdout_exits_quietly_default_buffering() {
    closed_stdout("closed_stdout_exits_quietly_default_buffering", &[]);
}

#[test]
fn stopped_reader_counts_lost_events() {
    if skip("stopped_reader_counts_lost_events") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 100_000; // about three times what the 1 MiB ring buffer holds
    let mut writes = Writes::new(N);
    let session = Session::start(&["-e", &writes.script(" END { printf(\"end\\n\"); }")]);
    let pid = session.pid();
    signal(pid, "STOP");
    writes.write_range(1..=N, &AtomicU64::new(0));
    signal(pid, "CONT");
    thread::sleep(Duration::from_millis(1500));
    signal(pid, "INT");
    let (status, stderr, seen) = session.finish();
    eprintln!(
        "stopped reader: generated {N}, printed {}, lost {}",
        seen.events.len(),
        seen.lost
    );
    assert!(status.success(), "{status}: {stderr}");
    assert!(seen.lost > 0, "the ring buffer should have overflowed");
    assert_eq!(seen.events.len() as u64 + seen.lost, N as u64);
    // The reader was stopped: what fit is the first events, in order.
    assert_prefix(&seen.events);
    assert!(seen.end);
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()
}

fn fd_count(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

#[test]
fn long_run_is_bounded_and_leaves_nothing_behind() {
    if skip("long_run_is_bounded_and_leaves_nothing_behind") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 100_000;
    const BATCH: usize = 10_000;
    let mut writes = Writes::new(N);
    let session = Session::start(&["-e", &writes.script(" END { printf(\"end\\n\"); }")]);
    let pid = session.pid();
    let (progs, maps, links) = bpf_objects(pid);
    let progress = AtomicU64::new(0);
    let mut rss = Vec::new();
    let mut fds = Vec::new();
    // Batches with a pause, so the reader keeps up and memory is sampled under load.
    for start in (1..=N).step_by(BATCH) {
        writes.write_range(start..=start + BATCH - 1, &progress);
        thread::sleep(Duration::from_millis(200));
        rss.extend(vm_rss_kb(pid));
        fds.extend(fd_count(pid));
    }
    thread::sleep(Duration::from_millis(500));
    signal(pid, "INT");
    let (status, stderr, seen) = session.finish();
    eprintln!(
        "100k run: VmRSS kB per 10k events {rss:?}; fds {fds:?}; printed {}, lost {}",
        seen.events.len(),
        seen.lost
    );
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(seen.events.len() as u64 + seen.lost, N as u64);
    assert!(seen.end);
    let max = *rss.iter().max().unwrap();
    assert!(max < 32 * 1024, "VmRSS reached {max} kB");
    let (early, late) = (rss[1], *rss.last().unwrap());
    assert!(
        late <= early + 1024,
        "VmRSS grew from {early} kB to {late} kB"
    );
    assert!(
        fds.windows(2).all(|w| w[0] == w[1]),
        "fd count changed: {fds:?}"
    );
    assert_released("prog", &progs);
    assert_released("map", &maps);
    assert_released("link", &links);
}
