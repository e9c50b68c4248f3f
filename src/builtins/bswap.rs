//! `bswap(x)`: reverse the bytes of an integer at its own width (bpftrace 0.17 keeps
//! the operand's type).

use super::{Builtin, Form};
use crate::codegen::builder::*;
use crate::sema::{value, Payload, Type};

pub static BSWAP: Builtin = Builtin {
    name: "bswap",
    form: Form::Function,
    numbered: false,
    check: |ck, site| {
        ck.arity(site, 1)?;
        let arg = ck.expr(&site.args[0])?;
        if !matches!(arg.ty, Type::Int { .. }) {
            ck.error(
                arg.span,
                format!("bswap() expects an integer, not '{}'", arg.ty.describe()),
            );
            return None;
        }
        let ty = arg.ty.clone();
        value(&BSWAP, vec![arg], Payload::None, ty, site.span)
    },
    lower: |g, call, dest| {
        let [inner] = call.args.as_slice() else {
            return g.misplaced(call, dest);
        };
        g.into_reg(call, dest, |g| {
            g.scalar(inner);
            // BPF_END zero-extends the swapped bytes; only signed values need widening.
            let size = inner.ty.size() as u32;
            if size > 1 {
                g.b.swap_to_be(R0, size as i32 * 8);
                if inner.ty.is_signed() {
                    g.normalize(R0, size, true);
                }
            }
        })
    },
    pure: false,
};
