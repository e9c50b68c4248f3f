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
/// codegen writes the map's index in [`super::Compiled::maps`]; the runtime replaces it with the map fd.
pub const PSEUDO_MAP_FD: u8 = 1;
