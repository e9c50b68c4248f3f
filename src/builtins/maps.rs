//! Map functions: `delete(@map[key])` and `clear(@map)`. Until maps are printed at exit,
//! `clear()` is accepted only in END, where it marks the map as not printed.

use super::{Builtin, Form};
use crate::codegen::Dest;
use crate::sema::{statement, Payload};

pub static DELETE: Builtin = Builtin {
    name: "delete",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| {
        let (map, key, _) = ck.map_operand(site, true)?;
        statement(&DELETE, key.into_iter().collect(), Payload::Map(map))
    },
    lower: |g, call, dest| match (dest, &call.payload, call.args.as_slice()) {
        (Dest::Effect, Payload::Map(map), [key]) => g.map_delete(*map, key),
        _ => g.misplaced(call, dest),
    },
    pure: false,
};

pub static CLEAR: Builtin = Builtin {
    name: "clear",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| {
        let (map, _, indexed) = ck.map_operand(site, false)?;
        if !ck.in_end_probe() || indexed {
            ck.error(
                site.span,
                "clear() is only supported as clear(@map) in END yet",
            );
            return None;
        }
        ck.cleared_in_end(map);
        statement(&CLEAR, Vec::new(), Payload::Map(map))
    },
    // Maps are not printed at exit yet, so clearing them there changes nothing.
    lower: |g, call, dest| {
        if dest != Dest::Effect {
            g.misplaced(call, dest);
        }
    },
    pure: false,
};
