//! x86-64 `struct pt_regs` (arch/x86/include/asm/ptrace.h): where a kprobe's context
//! keeps the return value and the integer arguments.

/// Offset of `ax`, the return value at a kretprobe.
pub const PT_REGS_RET: i16 = 80;
/// Offset of `ip`, the instruction pointer (`func`).
pub const PT_REGS_IP: i16 = 128;
/// Offsets of the argument registers di, si, dx, cx, r8, r9 (System V calling convention).
pub const PT_REGS_ARGS: [i16; 6] = [112, 104, 96, 88, 72, 64];
/// Arguments passed in registers (`arg0`..`arg5`).
pub const ARG_REGS: usize = PT_REGS_ARGS.len();

/// `struct pt_regs` in order, 8 bytes each, as bpftrace 0.17 names them for `reg()`
/// (its src/arch/x86_64.cpp).
pub const PT_REGS_NAMES: [&str; 21] = [
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di",
    "orig_ax", "ip", "cs", "flags", "sp", "ss",
];
