//! `str(p [, n])`: the NUL-terminated string at `p`, read with the probe_read_*_str
//! helper of `p`'s address space. As in bpftrace 0.17 the value is always a
//! `string[BPFTRACE_STRLEN]` (64 by default); `n`, any integer expression, limits the
//! read to `min(n + 1, BPFTRACE_STRLEN)` bytes (the helper writes the NUL itself).

use super::{Builtin, Checked, Form, Site};
use crate::abi::insn::{BPF_ADD, BPF_JLE};
use crate::codegen::builder::*;
use crate::codegen::{probe_read_helper, Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, Space, TExpr, TExprKind, Type};

pub static STR: Builtin = Builtin {
    name: "str",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    if !(1..=2).contains(&site.args.len()) {
        ck.error(site.span, "str() takes one or two arguments");
        return None;
    }
    if let Some(text) = ck.param_text(&site.args[0], site.span) {
        return param_string(ck, site, text.ok()?);
    }
    let ptr = ck.expr(&site.args[0]);
    let len = site.args.get(1).map(|n| ck.expr(n));
    let ptr = ptr?;
    if !ptr.ty.is_scalar() {
        ck.error(
            site.span,
            format!(
                "str() expects an integer or a pointer type as first argument ({} provided)",
                ptr.ty.describe()
            ),
        );
        return None;
    }
    let mut args = vec![ptr];
    if let Some(len) = len {
        let len = len?;
        if !matches!(len.ty, Type::Int { .. }) {
            ck.error(
                len.span,
                format!(
                    "str() expects an integer as its length, not '{}'",
                    len.ty.describe()
                ),
            );
            return None;
        }
        if let TExprKind::Int(v) = len.kind {
            if (v as i64) < 0 {
                // bpftrace 0.17's wording, missing space included.
                ck.error(
                    site.span,
                    format!("strcannot use negative length ({})", v as i64),
                );
                return None;
            }
        }
        args.push(len);
    }
    // bpftrace reads in the operand's space; an integer without one takes the probe's.
    let space = match ck.space_of(&args[0]) {
        Space::Unset => ck.provider().space,
        space => space,
    };
    let size = ck.str_size();
    value(
        &STR,
        args,
        Payload::Read { space, size },
        Type::Str { size },
        site.span,
    )
}

/// `str($1 [, n])`: the parameter's text, a constant (at most 63 bytes, or `n`).
fn param_string(ck: &mut Checker<'_, '_>, site: &Site<'_>, mut text: String) -> Option<Checked> {
    if let Some(len) = site.args.get(1) {
        let len = ck.expr(len)?;
        let TExprKind::Int(n) = len.kind else {
            ck.error(
                len.span,
                "str() of a positional parameter takes a constant length",
            );
            return None;
        };
        if (n as i64) < 0 {
            ck.error(
                site.span,
                format!("strcannot use negative length ({})", n as i64),
            );
            return None;
        }
        let keep = usize::try_from(n).unwrap_or(usize::MAX).min(text.len());
        text.truncate(floor_char_boundary(&text, keep));
    }
    let size = ck.str_size();
    let keep = text.len().min(size - 1);
    text.truncate(floor_char_boundary(&text, keep));
    Some(Checked::Value(TExpr {
        kind: TExprKind::Str(text),
        ty: Type::Str { size },
        span: site.span,
    }))
}

/// The largest char boundary of `s` at or below `i` (truncation is by bytes, as in C).
fn floor_char_boundary(s: &str, i: usize) -> usize {
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, cap }, &Payload::Read { space, size }) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    let size = cap.min(size as u32);
    g.zero(at, cap);
    let mark = g.b.mark();
    let ptr = g.b.alloc(8);
    g.scalar(&call.args[0]);
    g.b.stx(Size::DW, R_FP, ptr.off, R0);
    match call.args.get(1) {
        Some(len) => {
            // min(n + 1, size), unsigned, kept in a register so the verifier sees the bound.
            g.scalar(len);
            g.b.alu_imm(BPF_ADD, R0, 1);
            let fits = g.b.label();
            g.b.jmp_imm(BPF_JLE, R0, size as i32, fits);
            g.b.mov_imm(R0, size as i32);
            g.b.bind(fits);
            g.b.mov(R2, R0);
        }
        None => g.b.mov_imm(R2, size as i32),
    }
    g.b.ldx(Size::DW, R3, R_FP, ptr.off);
    g.b.addr(R1, at);
    g.b.call(probe_read_helper(space, true));
    g.check_helper(probe_read_helper(space, true), call.span);
    g.b.release(mark);
}
