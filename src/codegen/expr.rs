//! Expressions. Scalars are computed into r0 (spilling the left operand of a binary
//! operator to a stack temporary when the right one calls helpers, which clobber r0-r5);
//! integers are kept widened to 64 bits by their signedness. Conditions compile to
//! jumps (short-circuit `&&`/`||`). Strings and inet values are written straight into
//! their destination on the stack.

use super::builder::*;
use super::lower::Gen;
use super::Dest;
use crate::abi::insn::{helper, *};
use crate::ast::{BinOp, UnaryOp};
use crate::diag::Span;
use crate::sema::{Base, Bitfield, Place, Space, TExpr, TExprKind, Type};

impl Gen<'_> {
    /// Compute scalar `e` into r0.
    pub fn scalar(&mut self, e: &TExpr) {
        if self.simple(e, R0) {
            return;
        }
        match &e.kind {
            TExprKind::Call(call) => (call.builtin.lower)(self, call, Dest::Reg(R0)),
            TExprKind::Load { place, bitfield } => {
                let mark = self.b.mark();
                let size = bitfield.map_or(e.ty.size() as u32, |bf| bf.bytes);
                let tmp = self.b.alloc(8);
                self.read_memory(place, Loc::stack(tmp.off), size, e.span);
                self.b.ldx(Size::of(size), R0, R_FP, tmp.off);
                self.b.release(mark);
                self.finish_load(R0, &e.ty, *bitfield);
            }
            TExprKind::Unary { op, expr } => match op {
                UnaryOp::Neg => {
                    self.scalar(expr);
                    self.b.neg(R0);
                }
                UnaryOp::BitNot => {
                    self.scalar(expr);
                    self.b.alu_imm(BPF_XOR, R0, -1);
                }
                _ => self.cond_value(e),
            },
            TExprKind::Binary { op, lhs, rhs } => match alu_op(*op, lhs.ty.is_signed()) {
                // Comparisons and logical operators.
                None => self.cond_value(e),
                Some(alu) => {
                    self.scalar(lhs);
                    match const_imm(rhs) {
                        // The verifier rejects a constant zero divisor and shifts past 63;
                        // bpftrace 0.17 prints 0 for `1/0`, `1%0` and `1 << 64`.
                        Some(imm) if undefined_constant_operation(alu, imm) => {
                            self.b.mov_imm(R0, 0)
                        }
                        Some(imm) => self.b.alu_imm(alu, R0, imm),
                        None => {
                            self.rhs_to_r1(rhs);
                            if alu == BPF_MOD {
                                // BPF leaves the dividend for `x % 0`; bpftrace gives 0.
                                let nonzero = self.b.label();
                                self.b.jmp_imm(BPF_JNE, R1, 0, nonzero);
                                self.b.mov_imm(R0, 0);
                                self.b.bind(nonzero);
                            }
                            self.b.alu(alu, R0, R1);
                        }
                    }
                }
            },
            TExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => self.if_else(
                cond,
                |g| g.scalar(then),
                Some(|g: &mut Self| g.scalar(otherwise)),
            ),
            TExprKind::Cast(inner) => {
                self.scalar(inner);
                if let Type::Int { size, signed } = e.ty {
                    self.normalize(R0, size as u32, signed);
                }
            }
            TExprKind::MapRead { map, key } => self.map_read_scalar(*map, key, e.span),
            TExprKind::TupleElem { expr, index } => self.tuple_elem_scalar(expr, *index, &e.ty),
            TExprKind::Field {
                expr,
                offset,
                bitfield,
            } => self.part_scalar(expr, *offset, &e.ty, *bitfield),
            TExprKind::Effect { stmts, value } => {
                self.stmts(stmts);
                self.scalar(value);
            }
            // Constants and scalar variables are `simple`; sema gives scalar contexts
            // nothing else.
            TExprKind::Int(_)
            | TExprKind::Var(_)
            | TExprKind::Str(_)
            | TExprKind::InMemory(_)
            | TExprKind::Tuple(_)
            | TExprKind::CtxAddress => self.misplaced_value(e, "a scalar"),
        }
    }

    /// Emit `e` straight into `reg` if it needs no helper call and no temporary:
    /// constants, variables, and context reads.
    fn simple(&mut self, e: &TExpr, reg: Reg) -> bool {
        match &e.kind {
            TExprKind::Int(v) => self.b.load_const(reg, *v),
            TExprKind::CtxAddress => self.b.mov(reg, R_CTX),
            TExprKind::Var(id) if e.ty.is_scalar() => {
                self.b.ldx(Size::DW, reg, R_FP, self.vars[id.0].off)
            }
            TExprKind::Call(call) if call.builtin.pure => {
                (call.builtin.lower)(self, call, Dest::Reg(reg))
            }
            TExprKind::Load {
                place:
                    Place {
                        base: Base::Ctx,
                        offset,
                    },
                bitfield,
            } => {
                let size = bitfield.map_or(e.ty.size() as u32, |bf| bf.bytes);
                self.b.ldx(Size::of(size), reg, R_CTX, *offset as i16);
                self.finish_load(reg, &e.ty, *bitfield);
            }
            _ => return false,
        }
        true
    }

    /// Reports an expression in a context sema never puts it in (an internal error).
    pub fn misplaced_value(&mut self, e: &TExpr, context: &str) {
        self.errors.push(format!(
            "internal error: a '{}' expression lowered as {context}",
            e.ty.describe()
        ));
    }

    /// r1 = `rhs`, keeping r0 (the left operand) intact.
    fn rhs_to_r1(&mut self, rhs: &TExpr) {
        if self.simple(rhs, R1) {
            return;
        }
        let mark = self.b.mark();
        let spill = self.b.alloc(8);
        self.b.stx(Size::DW, R_FP, spill.off, R0);
        self.scalar(rhs);
        self.b.mov(R1, R0);
        self.b.ldx(Size::DW, R0, R_FP, spill.off);
        self.b.release(mark);
    }

    /// One of the two 32-bit ids that helper `func` packs into its u64 result.
    pub fn half_of(&mut self, func: i32, upper: bool) {
        self.b.call(func);
        if upper {
            self.b.alu_imm(BPF_RSH, R0, 32);
        } else {
            self.b.zext32(R0);
        }
    }

    /// After loading the raw bytes of a scalar: extract the bitfield, widen to 64 bits.
    pub(super) fn finish_load(&mut self, reg: Reg, ty: &Type, bitfield: Option<Bitfield>) {
        let Type::Int { size, signed } = *ty else {
            return;
        };
        match bitfield {
            // Loads zero-extend: only signed values need widening.
            None if signed => self.normalize(reg, size as u32, true),
            None => {}
            // bpftrace 0.17 shifts and masks, also signed bitfields (`int d:4` holding
            // 0b1010 reads 10).
            Some(bf) => {
                if bf.shift > 0 {
                    self.b.alu_imm(BPF_RSH, reg, bf.shift as i32);
                }
                if bf.bits < 32 {
                    self.b.alu_imm(BPF_AND, reg, ((1u64 << bf.bits) - 1) as i32);
                } else if bf.bits < 64 {
                    self.b.alu_imm(BPF_LSH, reg, (64 - bf.bits) as i32);
                    self.b.alu_imm(BPF_RSH, reg, (64 - bf.bits) as i32);
                }
            }
        }
    }

    /// Widen the low `size` bytes of `reg` to 64 bits: sign-extend or zero-extend.
    pub fn normalize(&mut self, reg: Reg, size: u32, signed: bool) {
        if size >= 8 {
            return;
        }
        if signed {
            self.b.alu_imm(BPF_LSH, reg, (64 - size * 8) as i32);
            self.b.alu_imm(BPF_ARSH, reg, (64 - size * 8) as i32);
        } else if size == 4 {
            self.b.zext32(reg);
        } else {
            self.b
                .alu_imm(BPF_AND, reg, ((1u32 << (size * 8)) - 1) as i32);
        }
    }

    /// Copy `size` bytes at `place` to `dst`; `-kk` reports a failed read at `span`.
    pub fn read_memory(&mut self, place: &Place, dst: Loc, size: u32, span: Span) {
        match &place.base {
            Base::Mem { ptr, space } => {
                self.scalar(ptr);
                self.b.mov(R3, R0);
                if place.offset != 0 {
                    self.b.alu_imm(BPF_ADD, R3, place.offset as i32);
                }
                self.b.addr(R1, dst);
                self.b.mov_imm(R2, size as i32);
                self.b.call(probe_read_helper(*space, false));
                self.check_helper(probe_read_helper(*space, false), span);
            }
            Base::Ctx => {
                // Context loads must be naturally aligned: copy in the widest aligned pieces.
                let mut i = 0;
                while i < size {
                    // Both the context load and the store must be naturally aligned.
                    let at = place.offset + i;
                    let to = i64::from(dst.off) + i64::from(i);
                    let piece = [8u32, 4, 2, 1]
                        .into_iter()
                        .find(|&p| {
                            at.is_multiple_of(p)
                                && to.rem_euclid(i64::from(p)) == 0
                                && i + p <= size
                        })
                        .unwrap_or(1);
                    self.b.ldx(Size::of(piece), R1, R_CTX, at as i16);
                    let to = dst.at(i);
                    self.b.stx(Size::of(piece), to.base, to.off, R1);
                    i += piece;
                }
            }
        }
    }

    /// Write string or inet value `e` to `dst`, filling `cap` bytes (a multiple of 8) so
    /// none of it is left uninitialized.
    pub fn write_value(&mut self, e: &TExpr, dst: Loc, cap: u32) {
        let mark = self.b.mark();
        match &e.kind {
            TExprKind::Str(s) => {
                let mut bytes = s.as_bytes().to_vec();
                bytes.truncate(cap.saturating_sub(1) as usize);
                bytes.resize(cap as usize, 0);
                for (i, word) in bytes.chunks(4).enumerate() {
                    let imm = i32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                    let to = dst.at(4 * i as u32);
                    self.b.st_imm(Size::W, to.base, to.off, imm);
                }
            }
            TExprKind::Call(call) => (call.builtin.lower)(self, call, Dest::Mem { at: dst, cap }),
            TExprKind::Var(id) => {
                let src = self.vars[id.0];
                for i in (0..cap).step_by(8) {
                    let to = dst.at(i);
                    if i < src.size {
                        self.b.ldx(Size::DW, R1, R_FP, src.at(i));
                        self.b.stx(Size::DW, to.base, to.off, R1);
                    } else {
                        self.b.st_imm(Size::DW, to.base, to.off, 0);
                    }
                }
            }
            TExprKind::MapRead { map, key } => self.map_read_into(*map, key, e.span, dst, cap),
            TExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => self.if_else(
                cond,
                |g| g.write_value(then, dst, cap),
                Some(|g: &mut Self| g.write_value(otherwise, dst, cap)),
            ),
            TExprKind::Tuple(elems) => self.write_tuple(elems, &e.ty, dst, cap),
            TExprKind::TupleElem { expr, index } => self.tuple_elem_into(expr, *index, dst, cap),
            TExprKind::Field { expr, offset, .. } => {
                self.part_into(expr, *offset, e.ty.size() as u32, dst, cap)
            }
            TExprKind::InMemory(place) => {
                // A `char[N]` string: zero the space, then copy what fits.
                self.zero(dst, cap);
                let size = (e.ty.size() as u32).min(cap);
                if size > 0 {
                    self.read_memory(place, dst, size, e.span);
                }
            }
            _ => self.misplaced_value(e, "an in-memory value"),
        }
        self.b.release(mark);
    }

    /// Zero `len` bytes (a multiple of 8) at `dst`.
    pub fn zero(&mut self, dst: Loc, len: u32) {
        for i in (0..len).step_by(8) {
            let to = dst.at(i);
            self.b.st_imm(Size::DW, to.base, to.off, 0);
        }
    }

    /// Compare two strings (C `strcmp` semantics within their sizes and at most `limit`
    /// bytes) and jump to `equal` or `differ`. Against a literal, the bytes are
    /// immediates.
    pub fn str_equal(
        &mut self,
        lhs: &TExpr,
        rhs: &TExpr,
        limit: Option<u32>,
        equal: Label,
        differ: Label,
    ) {
        let (lhs, rhs) = match lhs.kind {
            TExprKind::Str(_) => (rhs, lhs),
            _ => (lhs, rhs),
        };
        let mark = self.b.mark();
        let n = (lhs.ty.size().min(rhs.ty.size()) as u32).min(limit.unwrap_or(u32::MAX));
        let left = self.b.alloc(lhs.ty.size() as u32);
        self.write_value(lhs, Loc::stack(left.off), left.size);
        if let TExprKind::Str(lit) = &rhs.kind {
            let bytes = lit.as_bytes().iter().copied().chain(std::iter::once(0));
            for (i, byte) in bytes.take(n as usize).enumerate() {
                self.b.ldx(Size::B, R1, R_FP, left.at(i as u32));
                self.b.jmp_imm(BPF_JNE, R1, byte as i32, differ);
            }
        } else {
            let right = self.b.alloc(rhs.ty.size() as u32);
            self.write_value(rhs, Loc::stack(right.off), right.size);
            for i in 0..n {
                self.b.ldx(Size::B, R1, R_FP, left.at(i));
                self.b.ldx(Size::B, R2, R_FP, right.at(i));
                self.b.jmp(BPF_JNE, R1, R2, differ);
                self.b.jmp_imm(BPF_JEQ, R1, 0, equal);
            }
        }
        self.b.release(mark);
        self.b.ja(equal);
    }

    /// Compare two values of one record type byte for byte (bpftrace's integer-array
    /// `==`) and jump to `equal` or `differ`.
    pub fn bytes_equal(&mut self, lhs: &TExpr, rhs: &TExpr, equal: Label, differ: Label) {
        let mark = self.b.mark();
        let size = lhs.ty.size() as u32;
        let (left, right) = (self.b.alloc(size), self.b.alloc(size));
        self.write_value(lhs, Loc::stack(left.off), left.size);
        self.write_value(rhs, Loc::stack(right.off), right.size);
        // Both are zero-padded to their 8-byte slots: compare whole words.
        for i in (0..size).step_by(8) {
            self.b.ldx(Size::DW, R1, R_FP, left.at(i));
            self.b.ldx(Size::DW, R2, R_FP, right.at(i));
            self.b.jmp(BPF_JNE, R1, R2, differ);
        }
        self.b.release(mark);
        self.b.ja(equal);
    }

    /// r0 = 1 if `e` holds, else 0.
    fn cond_value(&mut self, e: &TExpr) {
        let no = self.b.label();
        let end = self.b.label();
        self.branch(e, no, false);
        self.b.mov_imm(R0, 1);
        self.b.ja(end);
        self.b.bind(no);
        self.b.mov_imm(R0, 0);
        self.b.bind(end);
    }

    /// Jump to `target` when the truth of `e` equals `when`; fall through otherwise.
    /// `cond ? then : otherwise` (an expression or an `if` statement): `then` falls
    /// through; without an `otherwise` there is nothing to jump over.
    pub fn if_else(
        &mut self,
        cond: &TExpr,
        then: impl FnOnce(&mut Self),
        otherwise: Option<impl FnOnce(&mut Self)>,
    ) {
        let else_label = self.b.label();
        let end = self.b.label();
        self.branch(cond, else_label, false);
        then(self);
        if let Some(otherwise) = otherwise {
            self.b.ja(end);
            self.b.bind(else_label);
            otherwise(self);
        } else {
            self.b.bind(else_label);
        }
        self.b.bind(end);
    }

    pub fn branch(&mut self, e: &TExpr, target: Label, when: bool) {
        match &e.kind {
            TExprKind::Unary {
                op: UnaryOp::Not,
                expr,
            } => self.branch(expr, target, !when),
            TExprKind::Binary {
                op: op @ (BinOp::LogicalAnd | BinOp::LogicalOr),
                lhs,
                rhs,
            } => {
                // `a && b` jumps when true only if both are; `a || b` when false only if both are.
                let both_needed = (*op == BinOp::LogicalAnd) == when;
                if both_needed {
                    let skip = self.b.label();
                    self.branch(lhs, skip, !when);
                    self.branch(rhs, target, when);
                    self.b.bind(skip);
                } else {
                    self.branch(lhs, target, when);
                    self.branch(rhs, target, when);
                }
            }
            TExprKind::Binary {
                op: op @ (BinOp::Eq | BinOp::Ne),
                lhs,
                rhs,
            } if matches!(
                lhs.ty,
                Type::Str { .. } | Type::Buf { .. } | Type::Record(_)
            ) =>
            {
                let fall = self.b.label();
                let (equal, differ) = match (*op == BinOp::Eq) == when {
                    true => (target, fall),
                    false => (fall, target),
                };
                match lhs.ty {
                    Type::Record(_) => self.bytes_equal(lhs, rhs, equal, differ),
                    _ => self.str_equal(lhs, rhs, None, equal, differ),
                }
                self.b.bind(fall);
            }
            TExprKind::Binary { op, lhs, rhs } if compare_op(*op, false).is_some() => {
                let signed = lhs.ty.is_signed() && rhs.ty.is_signed();
                let op = if when { *op } else { negate(*op) };
                let jmp = compare_op(op, signed).expect("comparison");
                self.scalar(lhs);
                match const_imm(rhs) {
                    Some(imm) => self.b.jmp_imm(jmp, R0, imm, target),
                    None => {
                        self.rhs_to_r1(rhs);
                        self.b.jmp(jmp, R0, R1, target);
                    }
                }
            }
            _ => {
                self.scalar(e);
                self.b
                    .jmp_imm(if when { BPF_JNE } else { BPF_JEQ }, R0, 0, target);
            }
        }
    }
}

/// An operation whose constant right operand makes it undefined: division or modulo
/// by zero, a shift by 64 or more (or a negative amount).
fn undefined_constant_operation(alu: u8, imm: i32) -> bool {
    match alu {
        BPF_DIV | BPF_MOD => imm == 0,
        BPF_LSH | BPF_RSH | BPF_ARSH => !(0..64).contains(&imm),
        _ => false,
    }
}

/// `rhs` as a 32-bit immediate operand, when it is a constant that fits.
fn const_imm(rhs: &TExpr) -> Option<i32> {
    match rhs.kind {
        TExprKind::Int(v) => i32::try_from(v as i64).ok(),
        _ => None,
    }
}

/// The ALU operation of an arithmetic operator (`None` for comparisons and logic).
fn alu_op(op: BinOp, signed: bool) -> Option<u8> {
    Some(match op {
        BinOp::Add => BPF_ADD,
        BinOp::Sub => BPF_SUB,
        BinOp::Mul => BPF_MUL,
        BinOp::Div => BPF_DIV,
        BinOp::Mod => BPF_MOD,
        BinOp::BitAnd => BPF_AND,
        BinOp::BitOr => BPF_OR,
        BinOp::BitXor => BPF_XOR,
        BinOp::Shl => BPF_LSH,
        BinOp::Shr if signed => BPF_ARSH,
        BinOp::Shr => BPF_RSH,
        BinOp::Eq
        | BinOp::Ne
        | BinOp::Lt
        | BinOp::Le
        | BinOp::Gt
        | BinOp::Ge
        | BinOp::LogicalAnd
        | BinOp::LogicalOr => return None,
    })
}

fn compare_op(op: BinOp, signed: bool) -> Option<u8> {
    Some(match (op, signed) {
        (BinOp::Eq, _) => BPF_JEQ,
        (BinOp::Ne, _) => BPF_JNE,
        (BinOp::Lt, false) => BPF_JLT,
        (BinOp::Le, false) => BPF_JLE,
        (BinOp::Gt, false) => BPF_JGT,
        (BinOp::Ge, false) => BPF_JGE,
        (BinOp::Lt, true) => BPF_JSLT,
        (BinOp::Le, true) => BPF_JSLE,
        (BinOp::Gt, true) => BPF_JSGT,
        (BinOp::Ge, true) => BPF_JSGE,
        _ => return None,
    })
}

fn negate(op: BinOp) -> BinOp {
    match op {
        BinOp::Eq => BinOp::Ne,
        BinOp::Ne => BinOp::Eq,
        BinOp::Lt => BinOp::Ge,
        BinOp::Ge => BinOp::Lt,
        BinOp::Le => BinOp::Gt,
        BinOp::Gt => BinOp::Le,
        other => other,
    }
}

/// The helper reading memory (or, with `str`, a NUL-terminated string) in `space`, as
/// bpftrace 0.17's `selectProbeReadHelper` picks it: the legacy `probe_read` when the
/// space is unset.
pub fn probe_read_helper(space: Space, str: bool) -> i32 {
    match (space, str) {
        (Space::Kernel, false) => helper::PROBE_READ_KERNEL,
        (Space::Kernel, true) => helper::PROBE_READ_KERNEL_STR,
        (Space::User, false) => helper::PROBE_READ_USER,
        (Space::User, true) => helper::PROBE_READ_USER_STR,
        (Space::Unset, false) => helper::PROBE_READ,
        (Space::Unset, true) => helper::PROBE_READ_STR,
    }
}
