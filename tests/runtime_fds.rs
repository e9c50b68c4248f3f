//! File descriptor hygiene: maps, programs, ring buffer mappings, perf events, links and
//! the signalfd are all released when their owners drop. Alone in its own test binary
//! so no concurrent test opens descriptors while we count.

mod runtime_common;
mod support;

use runtime_common::*;
use std::io;
use std::os::fd::AsFd;

use rbt::codegen::ProgramType;
use rbt::event::EventCatalog;
use rbt::runtime::{self, Attacher, EventSink, Next, RingBuf, RunOptions};

struct Discard;

impl EventSink for Discard {
    fn attached(&mut self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: &EventCatalog, _: &[u8]) -> io::Result<Next> {
        Ok(Next::Continue)
    }
    fn lost(&mut self, _: u64) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn everything_is_closed_after_drop() {
    if skip_reason("everything_is_closed_after_drop").is_some() {
        return;
    }
    let tp = point("tracepoint", &["syscalls", "sys_enter_getpid"]);
    let c = compiled(vec![
        begin(emit_record(0)),
        program(
            "tp",
            ProgramType::Tracepoint,
            vec![tp.clone()],
            emit_record(0),
        ),
    ]);
    let before = open_fds();
    {
        let loaded = load(&c);
        let _ring = RingBuf::new(loaded.maps[0].as_fd()).unwrap();
        let _attachment = Attacher::new()
            .attach(&tp, loaded.programs[1].as_fd())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            open_fds() >= before + 5,
            "2 maps, 2 programs, a perf event at least"
        );
    }
    assert_eq!(open_fds(), before, "after load/attach/ring buffer");
    let opts = RunOptions {
        dry_run: false,
        command: Some("true".into()),
        ..Default::default()
    };
    runtime::run(&c, &opts, &mut Discard).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(open_fds(), before, "after a whole session");
}
