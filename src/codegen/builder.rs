//! The instruction builder: one small function per instruction form (like ply's `ir.c`
//! macros), forward jumps through labels patched when the program is finished, and the
//! 512-byte stack frame handed out in 8-byte-aligned slots.

use crate::abi::insn::*;

/// eBPF registers. r0 = return value, r1-r5 = helper arguments (clobbered by calls),
/// r6-r9 callee-saved, r10 = read-only frame pointer.
pub type Reg = u8;
pub const R0: Reg = 0;
pub const R1: Reg = 1;
pub const R2: Reg = 2;
pub const R3: Reg = 3;
pub const R4: Reg = 4;
/// Holds the program's context pointer for the whole program.
pub const R_CTX: Reg = 6;
/// Callee-saved: the per-CPU scratch space a statement builds a large value in.
pub const R_SCRATCH: Reg = 9;
pub const R_FP: Reg = 10;

/// The kernel's per-program stack limit.
pub const STACK_LIMIT: u32 = 512;

/// Memory access width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    /// The access of exactly `bytes` bytes (1, 2, 4 or 8).
    pub fn of(bytes: u32) -> Size {
        match bytes {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            _ => Size::DW,
        }
    }
    fn code(self) -> u8 {
        match self {
            Size::B => BPF_B,
            Size::H => BPF_H,
            Size::W => BPF_W,
            Size::DW => BPF_DW,
        }
    }
}

/// A jump target, bound to an instruction index with [`Builder::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// A location in memory a value is built at: `base + off`, where `base` is the frame
/// pointer (a stack slot) or [`R_SCRATCH`] (per-CPU scratch space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub base: Reg,
    pub off: i16,
}

impl Loc {
    pub fn stack(off: i16) -> Loc {
        Loc { base: R_FP, off }
    }
    /// `delta` bytes further on.
    pub fn at(self, delta: u32) -> Loc {
        Loc {
            base: self.base,
            off: self.off.wrapping_add(delta as i16),
        }
    }
}

/// A stack slot: `r10 + off` (always negative), `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub off: i16,
    pub size: u32,
}

impl Slot {
    /// The slot `delta` bytes further in.
    pub fn at(self, delta: u32) -> i16 {
        self.off.wrapping_add(delta as i16)
    }
}

#[derive(Debug, Default)]
pub struct Builder {
    pub insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// Per label: whether an emitted jump targets it (what `bind` needs to know
    /// without scanning `fixups`, which made codegen quadratic in script size).
    jumped_to: Vec<bool>,
    fixups: Vec<(usize, Label)>,
    /// Bytes of stack in use now, and the most ever in use.
    stack_used: u32,
    pub stack_max: u32,
    /// `(first instruction, script byte offset)` of each source statement.
    pub lines: Vec<(usize, u32)>,
    /// After `goto`/`exit`, until a label something jumps to: code here could never
    /// run, and the verifier rejects unreachable instructions, so it is not emitted.
    dead: bool,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    fn push(&mut self, insn: Insn) {
        if !self.dead {
            self.insns.push(insn);
        }
    }

    fn push_jump(&mut self, insn: Insn, label: Label) {
        if !self.dead {
            self.jumped_to[label.0] = true;
            self.fixups.push((self.insns.len(), label));
            self.insns.push(insn);
        }
    }

    /// Start a block of instructions that came from the statement at `offset` in the script.
    pub fn source(&mut self, offset: u32) {
        let at = self.insns.len();
        match self.lines.last_mut() {
            Some(last) if last.0 == at => last.1 = offset,
            _ => self.lines.push((at, offset)),
        }
    }

    // ---- stack frame ----

    /// Reserve `size` bytes (rounded up to 8). The frame grows down from r10; slots are
    /// released in LIFO order with [`Builder::release`].
    pub fn alloc(&mut self, size: u32) -> Slot {
        let size = size.div_ceil(8).max(1) * 8;
        self.stack_used += size;
        self.stack_max = self.stack_max.max(self.stack_used);
        // Beyond the limit the offset is meaningless; `finish` reports the overflow.
        let off = -(self.stack_used.min(i16::MAX as u32) as i32) as i16;
        Slot { off, size }
    }

    /// The current stack depth, to hand to [`Builder::release`] after temporaries.
    pub fn mark(&self) -> u32 {
        self.stack_used
    }
    pub fn release(&mut self, mark: u32) {
        self.stack_used = mark;
    }

    // ---- labels ----

    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        self.jumped_to.push(false);
        Label(self.labels.len() - 1)
    }
    pub fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
        if self.jumped_to[label.0] {
            self.dead = false;
        }
    }

    /// Patch every jump with its label's offset. Errors name what cannot be encoded.
    pub fn finish(mut self) -> Result<Builder, String> {
        if self.stack_max > STACK_LIMIT {
            return Err(format!(
                "program needs {} bytes of stack; the BPF limit is {STACK_LIMIT}",
                self.stack_max
            ));
        }
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0].ok_or("jump to an unbound label")?;
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| "jump too far for eBPF")?;
        }
        self.fixups.clear();
        Ok(self)
    }

    // ---- instructions ----

    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm));
    }
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0));
    }
    /// `dst = imm` for any 64-bit constant (one `mov` when it fits in 32 signed bits).
    pub fn load_const(&mut self, dst: Reg, value: u64) {
        if let Ok(imm) = i32::try_from(value as i64) {
            self.mov_imm(dst, imm);
        } else {
            self.push(Insn::new(
                BPF_LD | BPF_DW | BPF_IMM,
                dst,
                0,
                0,
                value as u32 as i32,
            ));
            self.push(Insn::new(0, 0, 0, 0, (value >> 32) as u32 as i32));
        }
    }
    /// `dst = map[index]`: a map reference the runtime rewrites to the map's fd.
    pub fn ld_map(&mut self, dst: Reg, index: u32) {
        self.push(Insn::new(
            BPF_LD | BPF_DW | BPF_IMM,
            dst,
            PSEUDO_MAP_FD,
            0,
            index as i32,
        ));
        self.push(Insn::new(0, 0, 0, 0, 0));
    }
    /// 64-bit `dst op= imm` (`op` is one of the `BPF_ADD`.. constants).
    pub fn alu_imm(&mut self, op: u8, dst: Reg, imm: i32) {
        self.push(Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm));
    }
    /// 64-bit `dst op= src`.
    pub fn alu(&mut self, op: u8, dst: Reg, src: Reg) {
        self.push(Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0));
    }
    pub fn neg(&mut self, dst: Reg) {
        self.push(Insn::new(BPF_ALU64 | BPF_NEG, dst, 0, 0, 0));
    }
    /// 32-bit `wdst = wdst`: clears the upper half (zero-extends the low 32 bits).
    pub fn zext32(&mut self, dst: Reg) {
        self.push(Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, dst, 0, 0));
    }
    /// Byte-swap the low `bits` (16, 32, 64) of `dst` to big endian, zero-extending.
    pub fn swap_to_be(&mut self, dst: Reg, bits: i32) {
        self.push(Insn::new(BPF_ALU | BPF_END | BPF_X, dst, 0, 0, bits));
    }
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.push(Insn::new(BPF_LDX | BPF_MEM | size.code(), dst, src, off, 0));
    }
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.push(Insn::new(BPF_STX | BPF_MEM | size.code(), dst, src, off, 0));
    }
    pub fn st_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) {
        self.push(Insn::new(BPF_ST | BPF_MEM | size.code(), dst, 0, off, imm));
    }
    /// `lock *(u64 *)(dst + off) += src`
    pub fn atomic_add64(&mut self, dst: Reg, off: i16, src: Reg) {
        self.push(Insn::new(
            BPF_STX | BPF_ATOMIC | BPF_DW,
            dst,
            src,
            off,
            BPF_ADD as i32,
        ));
    }
    /// `dst = loc.base + loc.off`: a pointer to a location, for helper arguments.
    pub fn addr(&mut self, dst: Reg, loc: Loc) {
        if loc.base == R_FP {
            return self.stack_addr(dst, loc.off);
        }
        self.mov(dst, loc.base);
        if loc.off != 0 {
            self.alu_imm(BPF_ADD, dst, loc.off as i32);
        }
    }
    /// `dst = r10 + off`: a pointer to a stack slot, for helper arguments.
    pub fn stack_addr(&mut self, dst: Reg, off: i16) {
        self.mov(dst, R_FP);
        self.alu_imm(BPF_ADD, dst, off as i32);
    }
    /// `if dst op imm goto label` (`op` is one of the `BPF_JEQ`.. constants).
    pub fn jmp_imm(&mut self, op: u8, dst: Reg, imm: i32, label: Label) {
        self.push_jump(Insn::new(BPF_JMP | op | BPF_K, dst, 0, 0, imm), label);
    }
    /// `if dst op src goto label`
    pub fn jmp(&mut self, op: u8, dst: Reg, src: Reg, label: Label) {
        self.push_jump(Insn::new(BPF_JMP | op | BPF_X, dst, src, 0, 0), label);
    }
    /// `goto label`
    pub fn ja(&mut self, label: Label) {
        self.push_jump(Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0), label);
        self.dead = true;
    }
    pub fn call(&mut self, helper: i32) {
        self.push(Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper));
    }
    pub fn exit(&mut self) {
        self.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
        self.dead = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_jumps_are_patched() {
        let mut b = Builder::new();
        let top = b.label();
        let out = b.label();
        b.bind(top);
        b.mov_imm(R0, 1); // 0
        b.jmp_imm(BPF_JEQ, R0, 0, out); // 1: to 4 => off 2
        b.alu_imm(BPF_ADD, R0, 1); // 2
        b.ja(top); // 3: to 0 => off -4
        b.bind(out);
        b.exit(); // 4
        let b = b.finish().unwrap();
        assert_eq!(b.insns[1].off, 2);
        assert_eq!(b.insns[3].off, -4);
        assert_eq!(b.insns[1].code, BPF_JMP | BPF_JEQ | BPF_K);
    }

    #[test]
    fn unreachable_code_is_not_emitted() {
        let mut b = Builder::new();
        let after = b.label();
        let unused = b.label();
        b.ja(after); // 0
        b.mov_imm(R0, 1); // dead
        b.jmp_imm(BPF_JEQ, R0, 0, unused); // dead: records no fixup
        b.bind(unused); // nothing live jumps here: still dead
        b.mov_imm(R0, 2); // dead
        b.bind(after);
        b.mov_imm(R0, 3); // 1
        b.exit(); // 2
        b.mov_imm(R0, 4); // dead
        let b = b.finish().unwrap();
        assert_eq!(b.insns.len(), 3);
        assert_eq!((b.insns[0].off, b.insns[1].imm), (0, 3));
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut b = Builder::new();
        let l = b.label();
        b.ja(l);
        assert_eq!(b.finish().unwrap_err(), "jump to an unbound label");
    }

    #[test]
    fn stack_slots_are_aligned_lifo_and_limited() {
        let mut b = Builder::new();
        let a = b.alloc(4);
        assert_eq!(a, Slot { off: -8, size: 8 });
        let m = b.mark();
        let t = b.alloc(24);
        assert_eq!(t.off, -32);
        b.release(m);
        let u = b.alloc(8);
        assert_eq!(u.off, -16, "released space is reused");
        assert_eq!(b.stack_max, 32);
        b.alloc(STACK_LIMIT);
        let err = b.finish().unwrap_err();
        assert!(
            err.contains("bytes of stack; the BPF limit is 512"),
            "{err}"
        );
    }

    #[test]
    fn wide_constants_take_two_slots() {
        let mut b = Builder::new();
        b.load_const(R1, 5);
        b.load_const(R1, 0xffff_ffff);
        b.load_const(R1, u64::MAX);
        assert_eq!(b.insns.len(), 4);
        assert_eq!(b.insns[1].code, BPF_LD | BPF_DW | BPF_IMM);
        assert_eq!((b.insns[1].imm, b.insns[2].imm), (-1, 0));
        assert_eq!(b.insns[3].imm, -1, "u64::MAX is -1 as a 32-bit signed mov");
    }
}
