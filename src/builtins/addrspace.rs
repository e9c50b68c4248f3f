//! `kptr(x)` and `uptr(x)`: `x` (an integer or pointer) marked as a kernel or user
//! address, so reads through it use that space's probe_read helper, as in bpftrace
//! 0.17. The value itself is unchanged.

use super::{Builtin, Checked, Form, Site};
use crate::codegen::{Dest, Gen};
use crate::sema::{in_space, value, Call, Checker, Payload, Space, Type};

pub static KPTR: Builtin = Builtin {
    name: "kptr",
    form: Form::Function,
    numbered: false,
    check: |ck, site| check(ck, site, &KPTR, Space::Kernel),
    lower,
    pure: false,
};

pub static UPTR: Builtin = Builtin {
    name: "uptr",
    form: Form::Function,
    numbered: false,
    check: |ck, site| check(ck, site, &UPTR, Space::User),
    lower,
    pure: false,
};

fn check(
    ck: &mut Checker<'_, '_>,
    site: &Site<'_>,
    builtin: &'static Builtin,
    space: Space,
) -> Option<Checked> {
    ck.arity(site, 1)?;
    let arg = ck.expr(&site.args[0])?;
    if !arg.ty.is_scalar() {
        let what = match arg.ty {
            Type::Str { .. } => "string".to_string(),
            ref other => other.describe(),
        };
        ck.error(
            site.span,
            format!(
                "{}() only supports integer or pointer arguments ({what} provided)",
                site.name
            ),
        );
        return None;
    }
    let ty = in_space(arg.ty.clone(), space);
    value(builtin, vec![arg], Payload::InSpace(space), ty, site.span)
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let [arg] = call.args.as_slice() else {
        return g.misplaced(call, dest);
    };
    g.into_reg(call, dest, |g| g.scalar(arg));
}
