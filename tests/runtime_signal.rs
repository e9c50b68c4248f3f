//! SIGINT and SIGTERM end a session cleanly: pending events are printed, END runs,
//! the sink is finished and the process exits 0. The session runs in a child copy of
//! this program (no libtest threads, so the signal reaches the session's signalfd).

mod runtime_common;
mod support;

use runtime_common::*;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rbt::codegen::ProgramType;
use rbt::event::{EventCatalog, EventKind};
use rbt::runtime::{self, EventSink, Next, RunOptions};

const CHILD: &str = "RBT_TEST_SIGNAL_CHILD";

/// Prints each call as a line, flushed at once so the parent sees it.
struct LinePrinter;

impl LinePrinter {
    fn line(&self, s: String) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{s}")?;
        out.flush()
    }
}

impl EventSink for LinePrinter {
    fn attached(&mut self, probes: usize) -> io::Result<()> {
        self.line(format!("attached {probes}"))
    }
    fn event(&mut self, _: &EventCatalog, record: &[u8]) -> io::Result<Next> {
        self.line(format!("event {}", Record::parse(record).event_id))?;
        Ok(Next::Continue)
    }
    fn lost(&mut self, count: u64) -> io::Result<()> {
        self.line(format!("lost {count}"))
    }
    fn finish(&mut self) -> io::Result<()> {
        self.line("finish".into())
    }
}

fn child() {
    let time = || EventKind::Time {
        format: "%H\n".into(),
    };
    let mut c = compiled(vec![
        begin(emit_record(0)),
        program(
            "tp",
            ProgramType::Tracepoint,
            vec![point("tracepoint", &["syscalls", "sys_enter_getpid"])],
            emit_record(1),
        ),
        end(emit_record(2)),
    ]);
    c.events = EventCatalog {
        events: vec![time(), time(), time()],
    };
    if let Err(e) = runtime::run(&c, &RunOptions::default(), &mut LinePrinter) {
        eprintln!("rbt: {e}");
        std::process::exit(1);
    }
}

fn check(signal: &str) {
    let mut session = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the session");
    let mut lines = BufReader::new(session.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap());
    let mut seen = Vec::new();
    // BEGIN's event is printed after "attached" and before polling starts.
    for line in lines.by_ref() {
        seen.push(line);
        if seen.last().unwrap() == "event 0" {
            break;
        }
    }
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(session.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    seen.extend(lines);
    let status = session.wait().unwrap();
    assert!(
        status.success(),
        "SIG{signal}: session failed: {status} {seen:?}"
    );
    // Middle lines are getpid events from other processes, if any.
    assert_eq!(
        seen[..2],
        ["attached 3", "event 0"],
        "SIG{signal}: {seen:?}"
    );
    assert_eq!(
        seen[seen.len() - 2..],
        ["event 2", "finish"],
        "SIG{signal}: {seen:?}"
    );
    println!("test sig{} ... ok", signal.to_lowercase());
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    if skip_reason("runtime_signal").is_some() {
        return;
    }
    check("INT");
    check("TERM");
}
