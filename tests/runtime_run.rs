//! Whole sessions with hand-built programs and a recording sink: BEGIN before the
//! other probes, `-c` ending the session, `exit()`, END last, lost events, dry runs,
//! and a closed output.

mod runtime_common;
mod support;

use runtime_common::*;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rbt::abi::insn::Insn;
use rbt::codegen::{Compiled, ProgramType};
use rbt::event::{EventCatalog, EventKind};
use rbt::runtime::{self, EventSink, Next, RunOptions};

const BEGIN_ID: i32 = 0;
const PROBE_ID: i32 = 1;
const END_ID: i32 = 2;
const EXIT_ID: i32 = 3;

fn catalog() -> EventCatalog {
    let time = || EventKind::Time {
        format: "%H:%M:%S\n".into(),
    };
    EventCatalog {
        events: vec![time(), time(), time(), EventKind::Exit],
    }
}

/// Records every call, in order, as a short line.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    records: Vec<Record>,
    /// Fail every event with BrokenPipe (stdout closed).
    closed: bool,
}

impl EventSink for Recorder {
    fn attached(&mut self, probes: usize) -> io::Result<()> {
        self.calls.push(format!("attached {probes}"));
        Ok(())
    }
    fn event(&mut self, catalog: &EventCatalog, record: &[u8]) -> io::Result<Next> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let r = Record::parse(record);
        self.calls.push(format!("event {}", r.event_id));
        let exit = matches!(
            catalog.events.get(r.event_id as usize),
            Some(EventKind::Exit)
        );
        self.records.push(r);
        Ok(if exit { Next::Stop } else { Next::Continue })
    }
    fn lost(&mut self, count: u64) -> io::Result<()> {
        self.calls.push(format!("lost {count}"));
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        self.calls.push("finish".into());
        Ok(())
    }
}

fn session(probe: Option<(&[&str], i32)>, begin_id: i32) -> Compiled {
    let mut programs = vec![begin(emit_record(begin_id))];
    if let Some((target, id)) = probe {
        programs.push(program(
            "tp",
            ProgramType::Tracepoint,
            vec![point("tracepoint", target)],
            emit_record(id),
        ));
    }
    programs.push(end(emit_record(END_ID)));
    let mut c = compiled(programs);
    c.events = catalog();
    c
}

fn run(c: &Compiled, opts: &RunOptions, sink: &mut Recorder) -> Duration {
    let start = Instant::now();
    runtime::run(c, opts, sink).unwrap_or_else(|e| panic!("{e}"));
    start.elapsed()
}

#[test]
fn command_runs_after_begin_and_ends_the_session() {
    if skip_reason("command_runs_after_begin_and_ends_the_session").is_some() {
        return;
    }
    let c = session(Some((&["sched", "sched_process_exit"], PROBE_ID)), BEGIN_ID);
    let mut sink = Recorder::default();
    let opts = RunOptions {
        dry_run: false,
        command: Some("sleep 0.2".into()),
        ..Default::default()
    };
    let took = run(&c, &opts, &mut sink);
    assert!(
        took < Duration::from_secs(10),
        "session outlived its command: {took:?}"
    );
    assert_eq!(sink.calls[..2], ["attached 3", "event 0"]);
    assert_eq!(sink.calls[sink.calls.len() - 2..], ["event 2", "finish"]);
    assert!(
        sink.records
            .iter()
            .any(|r| r.event_id == PROBE_ID as u64 && r.comm == "sleep"),
        "the command's exit was traced: {:?}",
        sink.records
    );
}

#[test]
fn exit_in_a_probe_stops_and_runs_end() {
    if skip_reason("exit_in_a_probe_stops_and_runs_end").is_some() {
        return;
    }
    let c = session(Some((&["syscalls", "sys_enter_getpid"], EXIT_ID)), BEGIN_ID);
    let done = Arc::new(AtomicBool::new(false));
    let trigger = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let _ = std::process::id(); // getpid(2)
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut sink = Recorder::default();
    let took = run(&c, &RunOptions::default(), &mut sink);
    done.store(true, Ordering::Relaxed);
    trigger.join().unwrap();
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Events after exit() are ignored, so exactly one exit event is handled.
    assert_eq!(
        sink.calls,
        ["attached 3", "event 0", "event 3", "event 2", "finish"]
    );
}

#[test]
fn exit_in_begin_ends_before_polling() {
    if skip_reason("exit_in_begin_ends_before_polling").is_some() {
        return;
    }
    // The command would keep the session alive for a minute: exit() must not wait for it.
    let c = session(Some((&["sched", "sched_process_exit"], PROBE_ID)), EXIT_ID);
    let mut sink = Recorder::default();
    let opts = RunOptions {
        dry_run: false,
        command: Some("sleep 60".into()),
        ..Default::default()
    };
    let took = run(&c, &opts, &mut sink);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(sink.calls, ["attached 3", "event 3", "event 2", "finish"]);
}

#[test]
fn attach_failure_prints_nothing_from_begin() {
    if skip_reason("attach_failure_prints_nothing_from_begin").is_some() {
        return;
    }
    let c = session(Some((&["sock", "no_such_event"], PROBE_ID)), BEGIN_ID);
    let mut sink = Recorder::default();
    let err = runtime::run(&c, &RunOptions::default(), &mut sink).expect_err("no such tracepoint");
    assert_eq!(
        err.to_string(),
        "cannot attach tracepoint:sock:no_such_event: no such tracepoint in this kernel"
    );
    let none: [&str; 0] = [];
    assert_eq!(
        sink.calls, none,
        "the preflight fails before \"Attaching N probes...\" and before BEGIN"
    );
}

#[test]
fn dry_run_loads_but_attaches_and_prints_nothing() {
    if skip_reason("dry_run_loads_but_attaches_and_prints_nothing").is_some() {
        return;
    }
    let c = session(Some((&["sock", "no_such_event"], PROBE_ID)), BEGIN_ID);
    let mut sink = Recorder::default();
    run(
        &c,
        &RunOptions {
            dry_run: true,
            command: None,
            ..Default::default()
        },
        &mut sink,
    );
    assert!(sink.calls.is_empty(), "{:?}", sink.calls);
    // ...but it does verify: a rejected program fails the dry run.
    let mut bad = c.clone();
    bad.programs[1].insns = vec![ldx_dw(R0, R6, 0), exit()];
    let err = runtime::run(
        &bad,
        &RunOptions {
            dry_run: true,
            command: None,
            ..Default::default()
        },
        &mut sink,
    )
    .expect_err("rejected");
    assert!(
        err.to_string().starts_with(
            "the kernel's BPF verifier rejected the program for tracepoint:sock:no_such_event"
        ),
        "{err}"
    );
}

#[test]
fn closed_output_ends_quietly() {
    if skip_reason("closed_output_ends_quietly").is_some() {
        return;
    }
    let c = session(None, BEGIN_ID);
    let mut sink = Recorder {
        closed: true,
        ..Default::default()
    };
    run(&c, &RunOptions::default(), &mut sink);
    // BEGIN's event hit the closed output: no END, no finish.
    assert_eq!(sink.calls, ["attached 2"]);
}

#[test]
fn lost_counter_increase_is_reported() {
    if skip_reason("lost_counter_increase_is_reported").is_some() {
        return;
    }
    // BEGIN: lost[0] += 5, as codegen does when ringbuf_output fails; then emit a record.
    let mut insns = vec![st_dw(R10, -8, 0), mov_reg(R2, R10), add_imm(R2, -8)];
    insns.extend(ld_map(R1, 1));
    insns.extend([
        call(HELPER_MAP_LOOKUP_ELEM),
        jeq_imm(R0, 0, 2),
        mov_imm(R1, 5),
        Insn::new(0xdb, R0, R1, 0, 0), // lock *(u64 *)(r0 + 0) += r1
    ]);
    insns.extend(emit_record(BEGIN_ID));
    let mut c = session(None, BEGIN_ID);
    c.programs[0].insns = insns;
    let mut sink = Recorder::default();
    run(
        &c,
        &RunOptions {
            dry_run: false,
            command: Some("true".into()),
            ..Default::default()
        },
        &mut sink,
    );
    assert_eq!(
        sink.calls,
        ["attached 2", "event 0", "lost 5", "event 2", "finish"]
    );
}
