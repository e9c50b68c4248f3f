//! The eBPF instruction encoding (kernel `struct bpf_insn`), shared by codegen
//! (which builds instructions) and the runtime (which hands them to the kernel).

/// One 8-byte eBPF instruction. `regs` packs dst (low nibble) and src (high nibble).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }
    pub fn dst(&self) -> u8 {
        self.regs & 0x0f
    }
    pub fn src(&self) -> u8 {
        self.regs >> 4
    }
}

/// `src` value of a `BPF_LD | BPF_DW | BPF_IMM` instruction whose `imm` is a map:
/// codegen writes the map's index in `codegen::Compiled::maps`; the runtime replaces it with the map fd.
pub const PSEUDO_MAP_FD: u8 = 1;

// Opcode fields (kernel `include/uapi/linux/bpf_common.h` and `bpf.h`), shared by the
// instruction builder and the disassembler.

/// Instruction classes (low 3 bits of `code`).
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_ST: u8 = 0x02;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_ALU64: u8 = 0x07;

/// Memory access sizes.
pub const BPF_W: u8 = 0x00;
pub const BPF_H: u8 = 0x08;
pub const BPF_B: u8 = 0x10;
pub const BPF_DW: u8 = 0x18;

/// Memory access modes.
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_ATOMIC: u8 = 0xc0;

/// Operand source: immediate (`K`) or register (`X`). For `BPF_END`, `X` means "to big endian".
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;

/// ALU operations.
pub const BPF_ADD: u8 = 0x00;
pub const BPF_SUB: u8 = 0x10;
pub const BPF_MUL: u8 = 0x20;
pub const BPF_DIV: u8 = 0x30;
pub const BPF_OR: u8 = 0x40;
pub const BPF_AND: u8 = 0x50;
pub const BPF_LSH: u8 = 0x60;
pub const BPF_RSH: u8 = 0x70;
pub const BPF_NEG: u8 = 0x80;
pub const BPF_MOD: u8 = 0x90;
pub const BPF_XOR: u8 = 0xa0;
pub const BPF_MOV: u8 = 0xb0;
pub const BPF_ARSH: u8 = 0xc0;
pub const BPF_END: u8 = 0xd0;

/// Jump operations.
pub const BPF_JA: u8 = 0x00;
pub const BPF_JEQ: u8 = 0x10;
pub const BPF_JGT: u8 = 0x20;
pub const BPF_JGE: u8 = 0x30;
pub const BPF_JSET: u8 = 0x40;
pub const BPF_JNE: u8 = 0x50;
pub const BPF_JSGT: u8 = 0x60;
pub const BPF_JSGE: u8 = 0x70;
pub const BPF_CALL: u8 = 0x80;
pub const BPF_EXIT: u8 = 0x90;
pub const BPF_JLT: u8 = 0xa0;
pub const BPF_JLE: u8 = 0xb0;
pub const BPF_JSLT: u8 = 0xc0;
pub const BPF_JSLE: u8 = 0xd0;

/// Kernel helper function ids used by codegen.
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const KTIME_GET_NS: i32 = 5;
    pub const GET_PRANDOM_U32: i32 = 7;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_UID_GID: i32 = 15;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const GET_CURRENT_TASK: i32 = 35;
    pub const GET_NUMA_NODE_ID: i32 = 42;
    pub const GET_STACKID: i32 = 27;
    pub const PROBE_READ: i32 = 4;
    pub const PROBE_READ_STR: i32 = 45;
    pub const PROBE_READ_USER: i32 = 112;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const GET_CURRENT_CGROUP_ID: i32 = 80;
    pub const KTIME_GET_BOOT_NS: i32 = 125;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const SEND_SIGNAL: i32 = 109;
    /// `bpf_get_attach_cookie(ctx)`: the cookie the program was attached with (5.15+).
    pub const GET_ATTACH_COOKIE: i32 = 174;

    /// The helper's kernel name, for disassembly.
    pub fn name(id: i32) -> &'static str {
        match id {
            MAP_LOOKUP_ELEM => "map_lookup_elem",
            MAP_UPDATE_ELEM => "map_update_elem",
            MAP_DELETE_ELEM => "map_delete_elem",
            KTIME_GET_NS => "ktime_get_ns",
            GET_PRANDOM_U32 => "get_prandom_u32",
            GET_SMP_PROCESSOR_ID => "get_smp_processor_id",
            GET_CURRENT_PID_TGID => "get_current_pid_tgid",
            GET_CURRENT_UID_GID => "get_current_uid_gid",
            GET_CURRENT_COMM => "get_current_comm",
            GET_CURRENT_TASK => "get_current_task",
            GET_NUMA_NODE_ID => "get_numa_node_id",
            GET_STACKID => "get_stackid",
            GET_CURRENT_CGROUP_ID => "get_current_cgroup_id",
            KTIME_GET_BOOT_NS => "ktime_get_boot_ns",
            PROBE_READ => "probe_read",
            PROBE_READ_STR => "probe_read_str",
            PROBE_READ_USER => "probe_read_user",
            PROBE_READ_KERNEL => "probe_read_kernel",
            PROBE_READ_USER_STR => "probe_read_user_str",
            PROBE_READ_KERNEL_STR => "probe_read_kernel_str",
            RINGBUF_OUTPUT => "ringbuf_output",
            SEND_SIGNAL => "send_signal",
            GET_ATTACH_COOKIE => "get_attach_cookie",
            _ => "unknown",
        }
    }
}
