//! `strcontains(haystack, needle)`: 1 when string `needle` occurs in `haystack`, else 0,
//! with bpftrace 0.17's algorithm (`CreateStrcontains`), quirks included: the needle is
//! tried at every start up to `size(haystack) - size(needle)` (type sizes, not string
//! lengths), so a needle of a larger type than the haystack is never found.

use super::{Builtin, Checked, Form, Site};
use crate::abi::insn::{BPF_JEQ, BPF_JNE};
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, Type};

pub static STRCONTAINS: Builtin = Builtin {
    name: "strcontains",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.nargs(site, 2)?;
    let haystack = ck.expr(&site.args[0]);
    let needle = ck.expr(&site.args[1]);
    let (haystack, needle) = (haystack?, needle?);
    for s in [&haystack, &needle] {
        if !matches!(s.ty, Type::Str { .. }) {
            let provided = match s.ty {
                Type::Int { .. } => "integer".to_string(),
                _ => s.ty.describe(),
            };
            ck.error(
                site.span,
                format!("strcontains() only supports string arguments ({provided} provided)"),
            );
            return None;
        }
    }
    value(
        &STRCONTAINS,
        vec![haystack, needle],
        Payload::None,
        Type::U64,
        site.span,
    )
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let [haystack, needle] = call.args.as_slice() else {
        return g.misplaced(call, dest);
    };
    let (n1, n2) = (haystack.ty.size() as u32, needle.ty.size() as u32);
    g.into_reg(call, dest, |g| {
        let mark = g.b.mark();
        let hay = g.b.alloc(n1);
        g.write_value(haystack, Loc::stack(hay.off), hay.size);
        let pin = g.b.alloc(n2);
        g.write_value(needle, Loc::stack(pin.off), pin.size);
        let (found, absent, end) = (g.b.label(), g.b.label(), g.b.label());
        // Unrolled as bpftrace unrolls it: for each start j, compare until the needle's
        // NUL (found) or a mismatch; a NUL in the haystack at j ends the search.
        // No start at all when the needle's type is the larger.
        let starts = n1.checked_sub(n2).map_or(0, |last| last + 1);
        for j in 0..starts {
            let next = g.b.label();
            for i in 0..n2 {
                g.b.ldx(Size::B, R2, R_FP, pin.at(i));
                g.b.jmp_imm(BPF_JEQ, R2, 0, found);
                g.b.ldx(Size::B, R1, R_FP, hay.at(i + j));
                g.b.jmp(BPF_JNE, R1, R2, next);
            }
            g.b.bind(next);
            g.b.ldx(Size::B, R1, R_FP, hay.at(j));
            g.b.jmp_imm(BPF_JEQ, R1, 0, absent);
        }
        g.b.ja(absent);
        g.b.bind(found);
        g.b.mov_imm(R0, 1);
        g.b.ja(end);
        g.b.bind(absent);
        g.b.mov_imm(R0, 0);
        g.b.bind(end);
        g.b.release(mark);
    });
}
