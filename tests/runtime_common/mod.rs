//! Shared by the runtime tests: the root/BPF skip rule and a few hand-built instructions.
#![allow(dead_code)]

use rbt::codegen::insn::{Insn, PSEUDO_MAP_FD};

/// `Some(reason)` when this machine cannot run BPF tests. Panics instead under CI,
/// where every facility must be present.
pub fn skip_reason(test: &str) -> Option<String> {
    let reason = if unsafe_free_euid() != 0 {
        Some("not running as root".to_string())
    } else if !std::path::Path::new("/sys/fs/bpf").exists()
        && !std::path::Path::new("/proc/sys/kernel/bpf_stats_enabled").exists()
    {
        Some("kernel without BPF".to_string())
    } else {
        None
    };
    if let Some(r) = &reason {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {r} (CI is set, so this test must run)");
        }
        eprintln!("SKIP {test}: {r}");
    }
    reason
}

/// The effective uid, read from /proc (tests stay free of `unsafe`).
fn unsafe_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX)
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
