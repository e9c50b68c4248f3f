//! Shared by the runtime tests: the root/BPF skip reason and a few hand-built instructions.
#![allow(dead_code)]

use rbt::abi::insn::{Insn, PSEUDO_MAP_FD};

/// `Some(reason)` when this machine cannot run BPF tests (see `support::skip`).
pub fn skip_reason(test: &str) -> Option<String> {
    // Probe: can this kernel create a BPF map for us at all?
    let reason = crate::support::not_root().or_else(|| {
        rbt::sys::map_create(map_type::ARRAY, 4, 8, 1, "rbt_probe")
            .err()
            .map(|e| format!("bpf() does not work here: {e}"))
    });
    crate::support::skip_if(test, reason)
}

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R6: u8 = 6;
pub const R10: u8 = 10;

pub const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
pub const HELPER_GET_CURRENT_PID_TGID: i32 = 14;
pub const HELPER_GET_CURRENT_COMM: i32 = 16;
pub const HELPER_RINGBUF_OUTPUT: i32 = 130;

pub fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0xb7, dst, 0, 0, imm)
}
pub fn mov_reg(dst: u8, src: u8) -> Insn {
    Insn::new(0xbf, dst, src, 0, 0)
}
pub fn add_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0x07, dst, 0, 0, imm)
}
pub fn rsh_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0x77, dst, 0, 0, imm)
}
/// `*(u64 *)(dst + off) = src`
pub fn stx_dw(dst: u8, off: i16, src: u8) -> Insn {
    Insn::new(0x7b, dst, src, off, 0)
}
/// `*(u64 *)(dst + off) = imm`
pub fn st_dw(dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(0x7a, dst, 0, off, imm)
}
/// `dst = *(u64 *)(src + off)`
pub fn ldx_dw(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(0x79, dst, src, off, 0)
}
pub fn call(helper: i32) -> Insn {
    Insn::new(0x85, 0, 0, 0, helper)
}
pub fn exit() -> Insn {
    Insn::new(0x95, 0, 0, 0, 0)
}
/// `if dst == imm goto +off`
pub fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(0x15, dst, 0, off, imm)
}
/// `dst = map[index]` as codegen emits it (two instructions).
pub fn ld_map(dst: u8, index: i32) -> [Insn; 2] {
    [
        Insn::new(0x18, dst, PSEUDO_MAP_FD, 0, index),
        Insn::default(),
    ]
}

/// Instructions that write a 32-byte record `[event_id: u64][pid_tgid: u64][comm: 16]`
/// into the ring buffer (map index 0), then return the `ringbuf_output` result.
pub fn emit_record(event_id: i32) -> Vec<Insn> {
    let mut v = vec![
        st_dw(R10, -32, event_id),
        call(HELPER_GET_CURRENT_PID_TGID),
        stx_dw(R10, -24, R0),
        mov_reg(R1, R10),
        add_imm(R1, -16),
        mov_imm(R2, 16),
        call(HELPER_GET_CURRENT_COMM),
    ];
    v.extend(ld_map(R1, 0));
    v.extend([
        mov_reg(R2, R10),
        add_imm(R2, -32),
        mov_imm(R3, 32),
        mov_imm(R4, 0),
        call(HELPER_RINGBUF_OUTPUT),
        exit(),
    ]);
    v
}

use rbt::ast::AttachPoint;
use rbt::codegen::{Compiled, ProgramCode, ProgramType};
use rbt::diag::Span;
use rbt::runtime::Loaded;

use rbt::abi::map_type;

/// An attach point of probe type `provider` (a name or alias, as scripts spell it).
pub fn point(provider: &str, target: &[&str]) -> AttachPoint {
    AttachPoint {
        provider: rbt::probes::lookup(provider).expect("a registered probe type"),
        target: target.iter().map(|s| s.to_string()).collect(),
        span: Span::default(),
        wildcard: None,
    }
}

pub fn program(
    name: &str,
    prog_type: ProgramType,
    points: Vec<AttachPoint>,
    insns: Vec<Insn>,
) -> ProgramCode {
    ProgramCode {
        name: name.into(),
        prog_type,
        attach_points: points,
        cookie_base: None,
        one_of_several: false,
        insns,
        lines: vec![],
    }
}

/// A run-once BEGIN program.
pub fn begin(insns: Vec<Insn>) -> ProgramCode {
    program(
        "BEGIN",
        ProgramType::Special,
        vec![point("BEGIN", &[])],
        insns,
    )
}

/// A run-once END program.
pub fn end(insns: Vec<Insn>) -> ProgramCode {
    program("END", ProgramType::Special, vec![point("END", &[])], insns)
}

/// Loads `c`; an error fails the test.
pub fn load(c: &Compiled) -> Loaded {
    rbt::runtime::load(c).unwrap_or_else(|e| panic!("{e}"))
}

/// Loads one program `name` for `at` that writes record `event_id` (see
/// [`emit_record`]); it is `programs[0]`, its ring buffer `maps[0]`.
pub fn load_recorder(
    name: &str,
    prog_type: ProgramType,
    at: &AttachPoint,
    event_id: i32,
) -> Loaded {
    load(&compiled(vec![program(
        name,
        prog_type,
        vec![at.clone()],
        emit_record(event_id),
    )]))
}

pub fn compiled(programs: Vec<ProgramCode>) -> Compiled {
    Compiled {
        programs,
        maps: rbt::codegen::standard_maps(),
        events: Default::default(),
        unattached: 0,
    }
}

/// A record written by [`emit_record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub event_id: u64,
    pub tgid: u32,
    pub comm: String,
}

impl Record {
    pub fn parse(bytes: &[u8]) -> Record {
        assert_eq!(bytes.len(), 32, "record length");
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        let comm = &bytes[16..32];
        let end = comm.iter().position(|&b| b == 0).unwrap_or(16);
        Record {
            event_id: u64_at(0),
            tgid: (u64_at(8) >> 32) as u32,
            comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
        }
    }
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
