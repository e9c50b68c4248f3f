//! Host end-to-end: rbt and the real bpftrace 0.17 run the same script at the same time,
//! see the same loopback TCP workload (generated here with std::net), are stopped the same
//! way, and must print the same bytes — with `HH:MM:SS` times masked, and with the traced
//! event lines compared as a sorted list, because bpftrace reads one perf buffer per CPU
//! (events from different CPUs can come out in either order) while rbt reads one ring.
//! Needs root, bpftrace 0.17 and tracefs (mounted if missing); skips otherwise, fails under CI.

mod bpftrace_ref;
mod support;

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The tracer under test: rbt, or `RBT_E2E_TRACER` (e.g. `bpftrace`, to check this
/// harness by comparing bpftrace with itself).
fn rbt() -> String {
    std::env::var("RBT_E2E_TRACER").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rbt").to_string())
}
const TRACEPOINT: &str = "/sys/kernel/tracing/events/sock/inet_sock_set_state";
/// rbt loads BTF and verifies programs; give both tracers time to get going.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Loopback connections per address family.
const CONNECTIONS: usize = 5;

/// `Some(reason)` when the host cannot run these tests (panics instead under CI).
fn skip_reason(test: &str) -> Option<String> {
    if let Some(reason) = bpftrace_ref::skip_reason(test) {
        return Some(reason);
    }
    if !Path::new(TRACEPOINT).exists() {
        let _ = Command::new("mount")
            .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            .status();
    }
    if Path::new(TRACEPOINT).exists() {
        return None;
    }
    let reason = format!("{TRACEPOINT} is missing (no tracefs or no sock tracepoints)");
    support::skip_if(test, Some(reason))
}

/// A running tracer whose stdout and stderr are collected by reader threads.
struct Tracer {
    name: &'static str,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

impl Tracer {
    fn spawn(name: &'static str, program: &str, args: &[&str], script: &Path) -> Tracer {
        let mut child = Command::new(program)
            .args(args)
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Tracer {
            name,
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn describe(&self) -> String {
        format!(
            "{} stdout:\n{}\n{} stderr:\n{}",
            self.name,
            self.stdout(),
            self.name,
            String::from_utf8_lossy(&self.stderr.lock().unwrap())
        )
    }

    /// Waits until stdout contains `marker`; fails if the tracer exits or times out first.
    fn wait_for(&mut self, marker: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.stdout().contains(marker) {
            if let Some(status) = self.child.try_wait().unwrap() {
                if self.stdout().contains(marker) {
                    break;
                }
                panic!(
                    "{} exited ({status}) before printing {marker:?}\n{}",
                    self.name,
                    self.describe()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {marker:?}\n{}",
                self.name,
                self.describe()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT. bpftrace 0.17 only notices a SIGINT that interrupts its epoll_wait
    /// (one that lands elsewhere waits for the next event), so it is repeated until the
    /// END output (`end_marker`) appears — never after, when a second SIGINT would kill.
    fn interrupt(&mut self, end_marker: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let retry = Instant::now() + Duration::from_secs(2);
            while Instant::now() < retry {
                if self.stdout().contains(end_marker) || self.child.try_wait().unwrap().is_some() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            assert!(
                Instant::now() < deadline,
                "{} ignores SIGINT\n{}",
                self.name,
                self.describe()
            );
        }
    }

    /// Waits for exit; returns stdout. Fails on a non-zero exit.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not exit\n{}", self.name, self.describe());
            }
            thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        assert!(
            status.success(),
            "{} exited with {status}\n{}",
            self.name,
            self.describe()
        );
        self.stdout()
    }
}

/// A failing test must not leave its tracers running.
impl Drop for Tracer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Replaces `HH:MM:SS` at the start of each line.
fn mask_times(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let b = line.as_bytes();
            let is_time = b.len() >= 8
                && b[..8].iter().enumerate().all(|(i, c)| {
                    if i % 3 == 2 {
                        *c == b':'
                    } else {
                        c.is_ascii_digit()
                    }
                });
            if is_time {
                format!("HH:MM:SS{}", &line[8..])
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// Writes `script` to a fresh file for both tracers.
fn script_file(name: &str, script: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("rbt-e2e-{}-{name}.bt", std::process::id()));
    std::fs::write(&path, script).unwrap();
    path
}

/// Starts bpftrace and rbt on `script` and waits until both printed `ready`.
fn start_both(name: &str, args: &[&str], script: &str, ready: &str) -> (Tracer, Tracer) {
    let path = script_file(name, script);
    let mut bpftrace = Tracer::spawn("bpftrace", "bpftrace", args, &path);
    let mut rbt = Tracer::spawn("rbt", &rbt(), args, &path);
    bpftrace.wait_for(ready);
    rbt.wait_for(ready);
    let _ = std::fs::remove_file(&path);
    // Both print BEGIN's output only once every probe is attached and polling runs;
    // a little slack keeps a slow attach from racing the workload anyway.
    thread::sleep(Duration::from_millis(200));
    (bpftrace, rbt)
}

/// tcpaccept's column styles on every TCP state change of the test's port.
fn tcp_states_script(port: u16) -> String {
    format!(
        r#"BEGIN
{{
  printf("Tracing TCP state changes. Hit Ctrl-C to end.\n");
  printf("%-8s %-6s %-14s ", "TIME", "PID", "COMM");
  printf("%-39s %-5s %-39s %-5s %s\n", "RADDR", "RPORT", "LADDR", "LPORT", "STATES");
}}

tracepoint:sock:inet_sock_set_state
{{
  if (args->protocol == 6 && (args->sport == {port} || args->dport == {port})) {{
    time("%H:%M:%S ");
    printf("%-6d %-14s ", pid, comm);
    if (args->family == 2) {{
      printf("%-39s %-5d %-39s %-5d ", ntop(args->daddr), args->dport, ntop(args->saddr), args->sport);
    }} else {{
      printf("%-39s %-5d %-39s %-5d ", ntop(args->daddr_v6), args->dport, ntop(args->saddr_v6), args->sport);
    }}
    printf("%d/%d\n", args->oldstate, args->newstate);
  }}
}}

END
{{
  printf("Done tracing.\n");
}}
"#
    )
}

/// IPv4 and IPv6 loopback listeners on one port (retrying until a port is free in both).
fn listeners() -> (TcpListener, TcpListener, u16) {
    for _ in 0..100 {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = v4.local_addr().unwrap().port();
        if let Ok(v6) = TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
            return (v4, v6, port);
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

/// Connects, accepts, and closes (client first) `CONNECTIONS` times on each listener.
fn tcp_workload(listeners: &[&TcpListener]) {
    for listener in listeners {
        let addr: SocketAddr = listener.local_addr().unwrap();
        for _ in 0..CONNECTIONS {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            drop(client);
            drop(server);
        }
    }
}

/// The lines of a traced run split as (lines before the first event, event lines sorted,
/// lines from END on), with times masked. Event lines are the ones starting with a time.
fn sections(text: &str, end_marker: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let masked = mask_times(text);
    let lines: Vec<String> = masked.split_inclusive('\n').map(str::to_string).collect();
    let first_event = lines
        .iter()
        .position(|l| l.starts_with("HH:MM:SS"))
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .position(|l| l.starts_with(end_marker))
        .unwrap_or(lines.len());
    let mut events = lines[first_event..end.max(first_event)].to_vec();
    events.sort();
    (
        lines[..first_event].to_vec(),
        events,
        lines[end.max(first_event)..].to_vec(),
    )
}

#[test]
fn tcp_state_changes_match_bpftrace() {
    if skip_reason("tcp_state_changes_match_bpftrace").is_some() {
        return;
    }
    let (v4, v6, port) = listeners();
    let (mut bpftrace, mut rbt) =
        start_both("tcp", &[], &tcp_states_script(port), "TIME     PID    COMM");
    tcp_workload(&[&v4, &v6]);
    drop((v4, v6));
    thread::sleep(Duration::from_millis(500));
    bpftrace.interrupt("Done tracing.");
    rbt.interrupt("Done tracing.");
    let want = bpftrace.finish();
    let got = rbt.finish();

    let (want_head, want_events, want_tail) = sections(&want, "Done tracing.");
    let (got_head, got_events, got_tail) = sections(&got, "Done tracing.");
    // Each connection changes state about ten times on its two sockets.
    assert!(
        want_events.len() >= 2 * CONNECTIONS * 8,
        "bpftrace saw only {} state changes:\n{want}",
        want_events.len()
    );
    assert_eq!(
        got_head, want_head,
        "header\nrbt:\n{got}\nbpftrace:\n{want}"
    );
    for (n, (g, w)) in got_events.iter().zip(&want_events).enumerate() {
        assert_eq!(
            g, w,
            "sorted event line {n}\nrbt:\n{got}\nbpftrace:\n{want}"
        );
    }
    assert_eq!(
        got_events.len(),
        want_events.len(),
        "event count\nrbt:\n{got}\nbpftrace:\n{want}"
    );
    assert_eq!(
        got_tail, want_tail,
        "END and exit\nrbt:\n{got}\nbpftrace:\n{want}"
    );
    if mask_times(&got) != mask_times(&want) {
        eprintln!("note: rbt printed the same events as bpftrace in a different CPU interleaving");
    }
}

const BEGIN_END_SCRIPT: &str = r#"BEGIN
{
  printf("%-8s %-6s %-14s|%5d|%05d|%x|%X|%lu|%c|%%|%o\n", "TIME", "PID", "COMM", 42, 42, 255, 255, 123456789012, 65, 8);
  time("%H:%M:%S ");
  printf("%s %s ", ntop(0), ntop(0x0100007f));
  printf("pid=%d comm=%s 100%%\n", pid, comm);
  time();
  printf("Ready.\n");
}

END
{
  printf("END ran: %s.\n", "bye");
}
"#;

#[test]
fn begin_end_on_sigint_matches_bpftrace() {
    if skip_reason("begin_end_on_sigint_matches_bpftrace").is_some() {
        return;
    }
    let (mut bpftrace, mut rbt) = start_both("begin-end", &[], BEGIN_END_SCRIPT, "Ready.\n");
    bpftrace.interrupt("END ran");
    rbt.interrupt("END ran");
    let want = mask_times(&bpftrace.finish());
    let got = mask_times(&rbt.finish());
    // pid and comm belong to each tracer itself; compare them masked.
    assert_eq!(mask_self(&got), mask_self(&want));
    assert!(want.ends_with("END ran: bye.\n\n\n"), "{want:?}");
}

#[test]
fn begin_exit_json_matches_bpftrace() {
    if skip_reason("begin_exit_json_matches_bpftrace").is_some() {
        return;
    }
    let script =
        BEGIN_END_SCRIPT.replace("printf(\"Ready.\\n\");", "printf(\"Ready.\\n\"); exit();");
    let path = script_file("json", &script);
    let want = Tracer::spawn("bpftrace", "bpftrace", &["-f", "json"], &path).finish();
    let got = Tracer::spawn("rbt", &rbt(), &["-f", "json"], &path).finish();
    let _ = std::fs::remove_file(&path);
    // JSON time data ("HH:MM:SS " and "HH:MM:SS\n") starts right after `"data": "`.
    let mask = |text: &str| {
        let split = mask_self(text).replace("\"data\": \"", "\"data\": \"\n");
        mask_times(&split).replace("\"data\": \"\n", "\"data\": \"")
    };
    assert_eq!(mask(&got), mask(&want));
    assert!(
        want.contains("{\"type\": \"attached_probes\", \"data\": {\"probes\": 2}}\n"),
        "{want}"
    );
}

/// Masks the tracer's own pid (after `pid=`) and comm (after `comm=`).
fn mask_self(text: &str) -> String {
    let mut out = text.to_string();
    for (key, digits) in [("pid=", true), ("comm=", false)] {
        let Some(at) = out.find(key).map(|i| i + key.len()) else {
            continue;
        };
        let value: String = out[at..]
            .chars()
            .take_while(|c| {
                if digits {
                    c.is_ascii_digit()
                } else {
                    !c.is_whitespace()
                }
            })
            .collect();
        if !value.is_empty() {
            out = out.replace(&format!("{key}{value} "), &format!("{key}<self> "));
        }
    }
    out
}
