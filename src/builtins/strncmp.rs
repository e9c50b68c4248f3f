//! `strncmp(a, b, n)`: 0 when strings `a` and `b` agree in their first `n` bytes (or up
//! to a common NUL), else 1, as bpftrace 0.17's `CreateStrncmp`; `n` must be a
//! non-negative integer literal. Comparison stops at the shorter buffer's end.

use super::{Builtin, Checked, Form, Site};
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, TExprKind, Type};

pub static STRNCMP: Builtin = Builtin {
    name: "strncmp",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.arity(site, 3)?;
    let a = ck.expr(&site.args[0]);
    let b = ck.expr(&site.args[1]);
    let n = ck.expr(&site.args[2]);
    let (a, b, n) = (a?, b?, n?);
    for s in [&a, &b] {
        if !matches!(s.ty, Type::Str { .. }) {
            ck.error(
                s.span,
                format!(
                    "strncmp() expects a string argument ({} provided)",
                    s.ty.describe()
                ),
            );
            return None;
        }
    }
    let count = match n.kind {
        TExprKind::Int(v) if (v as i64) < 0 => {
            ck.error(site.span, "Builtin strncmp requires a non-negative size");
            return None;
        }
        TExprKind::Int(v) => v,
        _ => {
            ck.error(
                site.span,
                format!(
                    "strncmp() expects a integer literal ({} provided)",
                    if matches!(n.ty, Type::Int { .. }) {
                        "integer".to_string()
                    } else {
                        n.ty.describe()
                    }
                ),
            );
            return None;
        }
    };
    value(
        &STRNCMP,
        vec![a, b],
        Payload::Count(count),
        Type::U64,
        site.span,
    )
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let ([a, b], Payload::Count(n)) = (call.args.as_slice(), &call.payload) else {
        return g.misplaced(call, dest);
    };
    let limit = u32::try_from(*n).unwrap_or(u32::MAX);
    g.into_reg(call, dest, |g| {
        let equal = g.b.label();
        let differ = g.b.label();
        let end = g.b.label();
        g.str_equal(a, b, Some(limit), equal, differ);
        g.b.bind(equal);
        g.b.mov_imm(R0, 0);
        g.b.ja(end);
        g.b.bind(differ);
        g.b.mov_imm(R0, 1);
        g.b.bind(end);
    });
}
