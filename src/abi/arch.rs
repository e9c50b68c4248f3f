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
