//! `buf(p, n)` / `buf(array)`: `n` bytes at `p` as a value printed with `%r`, `%rx`,
//! `%rh` (and as a map key or value, escaped as `%r`). As in bpftrace 0.17 the value is
//! a length byte and the data (`AsyncEvent::Buf`); the length is at most
//! BPFTRACE_STRLEN (a longer literal is cut to it, where bpftrace also warns; a
//! run-time `n` is clamped). A pointer or integer is read in its address space; a
//! string or an array is read first and copied.

use super::join::kind_name;
use super::{Builtin, Checked, Form, Site};
use crate::abi::insn::{helper, BPF_JLE};
use crate::codegen::builder::*;
use crate::codegen::{probe_read_helper, Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, TExprKind, Type};

pub static BUF: Builtin = Builtin {
    name: "buf",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.arg_range(site, 1, 2)?;
    let src = ck.expr(&site.args[0]);
    let len = site.args.get(1).map(|n| ck.expr(n));
    let src = src?;
    let array = matches!(&src.ty, Type::Mem { name, .. } if name.ends_with(']'));
    if !(src.ty.is_scalar() || matches!(src.ty, Type::Str { .. }) || array) {
        ck.error(
            site.span,
            format!(
                "buf() expects an integer, string, or array argument but saw {}",
                kind_name(&src.ty)
            ),
        );
        return None;
    }
    let max = ck.str_size();
    let mut args = vec![src];
    let size = match len {
        None if array => bytes_of(&args[0].ty) as usize,
        None => {
            ck.error(
                site.span,
                format!(
                    "buf() expects a length argument for non-array type {}",
                    kind_name(&args[0].ty)
                ),
            );
            return None;
        }
        Some(len) => {
            let len = len?;
            if !matches!(len.ty, Type::Int { .. }) {
                ck.error(
                    site.span,
                    format!(
                        "buf() only supports integer arguments ({} provided)",
                        kind_name(&len.ty)
                    ),
                );
                return None;
            }
            let size = match len.kind {
                TExprKind::Int(v) if (v as i64) < 0 => {
                    ck.error(
                        site.span,
                        format!("buf cannot use negative length ({})", v as i64),
                    );
                    return None;
                }
                TExprKind::Int(v) => usize::try_from(v).unwrap_or(usize::MAX),
                _ => {
                    // A run-time length: the space is the maximum, clamped in the program.
                    args.push(len);
                    max
                }
            };
            size
        }
    };
    let space = ck.space_of(&args[0]);
    let size = size.min(max);
    value(
        &BUF,
        args,
        Payload::Read { space, size },
        Type::Buf { size },
        site.span,
    )
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, cap }, &Payload::Read { space, size }) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    let size = size as u32;
    if cap < 1 + size {
        return g.misplaced(call, dest);
    }
    g.zero(at, cap);
    let src = &call.args[0];
    let mark = g.b.mark();
    // Where the bytes come from (r3 for the copy), and which helper copies them.
    let from = g.b.alloc(8);
    let read = if src.ty.is_scalar() {
        g.scalar(src);
        g.b.stx(Size::DW, R_FP, from.off, R0);
        probe_read_helper(space, false)
    } else {
        // Strings and arrays are first built in an (aligned) stack copy, read from there.
        let whole = bytes_of(&src.ty);
        let room = whole.max(size + 1).next_multiple_of(8);
        let copy = g.b.alloc(room);
        match &src.kind {
            TExprKind::InMemory(place) if !matches!(src.ty, Type::Str { .. }) => {
                g.zero(Loc::stack(copy.off), room);
                g.read_memory(place, Loc::stack(copy.off), whole.min(room), call.span);
            }
            _ => g.write_value(src, Loc::stack(copy.off), room),
        }
        g.b.stack_addr(R0, copy.off);
        g.b.stx(Size::DW, R_FP, from.off, R0);
        helper::PROBE_READ_KERNEL
    };
    match call.args.get(1) {
        Some(len) => {
            // min(n, size), unsigned, kept in a register so the verifier sees the bound.
            g.scalar(len);
            let fits = g.b.label();
            g.b.jmp_imm(BPF_JLE, R0, size as i32, fits);
            g.b.mov_imm(R0, size as i32);
            g.b.bind(fits);
            g.b.stx(Size::B, at.base, at.off, R0);
            g.b.mov(R2, R0);
        }
        None => {
            g.b.st_imm(Size::B, at.base, at.off, size as i32);
            g.b.mov_imm(R2, size as i32);
        }
    }
    if size > 0 {
        g.b.ldx(Size::DW, R3, R_FP, from.off);
        g.b.addr(R1, at.at(1));
        g.b.call(read);
        g.check_helper(read, call.span);
    }
    g.b.release(mark);
}

/// The bytes of the operand: an array left in memory has no value size of its own.
fn bytes_of(ty: &Type) -> u32 {
    match ty {
        Type::Mem { size, .. } => *size,
        ty => ty.size() as u32,
    }
}
