//! `sizeof(type | expr)`: a constant, as bpftrace 0.17 computes it: a type's size
//! (`int32`, `struct task_struct`), or the size of an expression's type, which is not
//! evaluated (integers in maps count 8 bytes: bpftrace stores them as 64-bit).

use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::sema::{Checker, TExpr, TExprKind, Type};

pub static SIZEOF: Builtin = Builtin {
    name: "sizeof",
    form: Form::Function,
    numbered: false,
    check,
    // Sema folds every use into a constant.
    lower: |g, call, dest| g.misplaced(call, dest),
    pure: true,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let arg = ck.one_arg(site)?;
    let size = match &arg.kind {
        ExprKind::Ident(name) => match ck.type_size(name) {
            Some(size) => size,
            // An enumerator is an int64 constant (`sizeof(BTF_VAR_STATIC)` is 8).
            None if ck.is_enumerator(name) => 8,
            None => {
                ck.error(site.span, format!("Unknown identifier: '{name}'"));
                return None;
            }
        },
        _ => {
            let e = ck.expr(arg)?;
            match (&e.kind, &e.ty) {
                (TExprKind::MapRead { .. }, Type::Int { .. }) => 8,
                (_, Type::Mem { size, .. }) => *size as usize,
                (_, ty) => ty.size(),
            }
        }
    };
    Some(Checked::Value(TExpr {
        kind: TExprKind::Int(size as u64),
        ty: Type::U64,
        span: site.span,
    }))
}
