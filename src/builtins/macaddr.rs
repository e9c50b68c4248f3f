//! `macaddr(p)`: 6 bytes printed `XX:XX:XX:XX:XX:XX` (as a printf `%s` argument, a map
//! key or value), as bpftrace 0.17 types it: an array of 6 bytes is copied, a pointer
//! or integer is read in its address space.

use super::join::kind_name;
use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::codegen::builder::*;
use crate::codegen::{probe_read_helper, Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, TExprKind, Type};

pub static MACADDR: Builtin = Builtin {
    name: "macaddr",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let arg = ck.one_arg(site)?;
    let literal = matches!(arg.kind, ExprKind::Str(_));
    let e = ck.expr(arg)?;
    // bpftrace's arrays and byte arrays (strings, inet, buffers, MAC addresses).
    let bytes = matches!(&e.ty, Type::Mem { name, .. } if name.ends_with(']'))
        || matches!(
            e.ty,
            Type::Str { .. } | Type::Inet | Type::Buf { .. } | Type::MacAddr
        );
    if !(e.ty.is_scalar() || bytes) {
        ck.error(
            site.span,
            format!(
                "macaddr() only supports array or pointer arguments ({} provided)",
                kind_name(&e.ty)
            ),
        );
        return None;
    }
    let size = match &e.ty {
        Type::Mem { size, .. } => *size as usize,
        ty => ty.size(),
    };
    if bytes && size != 6 {
        ck.error(site.span, "macaddr() argument must be 6 bytes in size");
        return None;
    }
    if literal {
        ck.error(
            site.span,
            "macaddr() does not support literal string arguments",
        );
        return None;
    }
    let space = ck.space_of(&e);
    value(
        &MACADDR,
        vec![e],
        Payload::Read { space, size: 6 },
        Type::MacAddr,
        site.span,
    )
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, cap }, &Payload::Read { space, .. }) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    g.zero(at, cap);
    let arg = &call.args[0];
    match &arg.kind {
        TExprKind::InMemory(place) => g.read_memory(place, at, 6, call.span),
        _ if arg.ty.is_scalar() => {
            let mark = g.b.mark();
            g.scalar(arg);
            g.b.mov(R3, R0);
            g.b.addr(R1, at);
            g.b.mov_imm(R2, 6);
            g.b.call(probe_read_helper(space, false));
            g.check_helper(probe_read_helper(space, false), call.span);
            g.b.release(mark);
        }
        // A 6-byte string value already built elsewhere (a variable, a map value).
        _ => g.write_value(arg, at, cap),
    }
}
