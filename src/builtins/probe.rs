//! `probe`: the full name of the attach point that fired (`tracepoint:syscalls:sys_enter_read`).
//! As in bpftrace 0.17 it is a constant of each expanded attach point, so a probe that
//! uses it gets one program per attach point (bpftrace's `need_expansion`).

use super::{Builtin, Checked, Form};
use crate::sema::{TExpr, TExprKind, Type};

pub static PROBE: Builtin = Builtin {
    name: "probe",
    form: Form::Variable,
    numbered: false,
    check: |ck, site| {
        let name = ck.per_attach_point().name();
        Some(Checked::Value(TExpr {
            ty: Type::Str {
                size: name.len() + 1,
            },
            kind: TExprKind::Str(name),
            span: site.span,
        }))
    },
    // Typed to a string constant, never to a call.
    lower: |g, call, dest| g.misplaced(call, dest),
    pure: false,
};
