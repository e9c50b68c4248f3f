//! `strerror(errno)`: an error number, printed by user space as libc's description of
//! it (`Operation not permitted`), as bpftrace 0.17 does: the value is the integer,
//! kept in memory like `username`, read as a C `int` when printed.

use super::join::kind_name;
use super::{Builtin, Form};
use crate::codegen::builder::*;
use crate::codegen::Dest;
use crate::sema::{value, Payload, Type};

pub static STRERROR: Builtin = Builtin {
    name: "strerror",
    form: Form::Function,
    numbered: false,
    check: |ck, site| {
        let arg = ck.one_arg(site)?;
        let arg = ck.expr(arg)?;
        if !matches!(arg.ty, Type::Int { .. }) {
            // bpftrace 0.17's words.
            let message = format!(
                "strerror() only supports integer arguments ({} provided)",
                kind_name(&arg.ty)
            );
            ck.error(site.span, message);
            return None;
        }
        value(
            &STRERROR,
            vec![arg],
            Payload::None,
            Type::Strerror,
            site.span,
        )
    },
    lower: |g, call, dest| {
        let (Dest::Mem { at, .. }, [errno]) = (dest, call.args.as_slice()) else {
            return g.misplaced(call, dest);
        };
        g.scalar(errno);
        g.b.stx(Size::DW, at.base, at.off, R0);
    },
    pure: false,
};
