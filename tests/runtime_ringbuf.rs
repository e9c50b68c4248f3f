//! Ring buffer round trip: a BEGIN-style raw tracepoint program, run once with
//! BPF_PROG_TEST_RUN, writes records that the consumer reads back in order.

mod runtime_common;
mod support;

use runtime_common::*;
use std::os::fd::AsFd;

use rbt::abi::insn::Insn;
use rbt::runtime::{Next, RingBuf};
use rbt::sys;

#[test]
fn begin_record_round_trip() {
    if skip_reason("begin_record_round_trip").is_some() {
        return;
    }
    let c = compiled(vec![begin(emit_record(5)), end(emit_record(6))]);
    let loaded = load(&c);
    let mut ring = RingBuf::new(loaded.maps[0].as_fd()).expect("mmap ring buffer");

    let mut got = Vec::new();
    let collect = |got: &mut Vec<Record>, ring: &mut RingBuf| {
        ring.consume(|r| {
            got.push(Record::parse(r));
            Ok::<_, ()>(Next::Continue)
        })
        .unwrap()
    };
    collect(&mut got, &mut ring);
    assert!(got.is_empty(), "nothing written yet: {got:?}");

    // Each run writes one record; run BEGIN twice and END once, then read all three.
    assert_eq!(sys::prog_test_run(loaded.programs[0].as_fd()).unwrap(), 0);
    assert_eq!(sys::prog_test_run(loaded.programs[0].as_fd()).unwrap(), 0);
    assert_eq!(sys::prog_test_run(loaded.programs[1].as_fd()).unwrap(), 0);
    collect(&mut got, &mut ring);
    let me = std::process::id();
    let comm = std::fs::read_to_string("/proc/thread-self/comm")
        .unwrap()
        .trim()
        .to_string();
    let want = |id| Record {
        event_id: id,
        tgid: me,
        comm: comm.clone(),
    };
    assert_eq!(got, vec![want(5), want(5), want(6)]);
}

#[test]
fn consumer_wraps_around_and_stops_on_request() {
    if skip_reason("consumer_wraps_around_and_stops_on_request").is_some() {
        return;
    }
    // 4 KiB of ring, 40-byte slots (32 + header): 300 records wrap it about three times.
    let mut c = compiled(vec![begin(emit_record(9))]);
    c.maps[0].max_entries = sys::page_size() as u32;
    let loaded = load(&c);
    let mut ring = RingBuf::new(loaded.maps[0].as_fd()).expect("mmap ring buffer");
    let mut seen = 0usize;
    for round in 0..100 {
        for _ in 0..3 {
            assert_eq!(
                sys::prog_test_run(loaded.programs[0].as_fd()).unwrap(),
                0,
                "round {round}"
            );
        }
        // Stop after the first record of the round; the next call picks up the rest.
        let next = ring
            .consume(|r| {
                assert_eq!(Record::parse(r).event_id, 9);
                seen += 1;
                Ok::<_, ()>(Next::Stop)
            })
            .unwrap();
        assert_eq!(next, Next::Stop);
        ring.consume(|r| {
            assert_eq!(Record::parse(r).event_id, 9);
            seen += 1;
            Ok::<_, ()>(Next::Continue)
        })
        .unwrap();
    }
    assert_eq!(seen, 300);
}

#[test]
fn discarded_records_are_skipped() {
    if skip_reason("discarded_records_are_skipped").is_some() {
        return;
    }
    const RESERVE: i32 = 131;
    const SUBMIT: i32 = 132;
    const DISCARD: i32 = 133;
    // Reserve a record and discard it, then reserve, fill and submit a second one.
    // r0 = a reserved 32-byte record; when there is none, skip the next `skip` insns.
    let reserve = |insns: &mut Vec<Insn>, skip: i16| {
        insns.extend(ld_map(R1, 0));
        insns.extend([
            mov_imm(R2, 32),
            mov_imm(R3, 0),
            call(RESERVE),
            jeq_imm(R0, 0, skip),
        ]);
    };
    let mut insns = Vec::new();
    reserve(&mut insns, 16);
    insns.extend([mov_reg(R1, R0), mov_imm(R2, 0), call(DISCARD)]);
    reserve(&mut insns, 7);
    insns.extend([
        st_dw(R0, 0, 11),
        st_dw(R0, 8, 0),
        st_dw(R0, 16, 0),
        st_dw(R0, 24, 0),
    ]);
    insns.extend([mov_reg(R1, R0), mov_imm(R2, 0), call(SUBMIT)]);
    insns.extend([mov_imm(R0, 0), exit()]);
    let c = compiled(vec![begin(insns)]);
    let loaded = load(&c);
    let mut ring = RingBuf::new(loaded.maps[0].as_fd()).expect("mmap ring buffer");
    for _ in 0..2 {
        assert_eq!(sys::prog_test_run(loaded.programs[0].as_fd()).unwrap(), 0);
    }
    let mut ids = Vec::new();
    ring.consume(|r| {
        ids.push(Record::parse(r).event_id);
        Ok::<_, ()>(Next::Continue)
    })
    .unwrap();
    assert_eq!(ids, [11, 11]);
}
