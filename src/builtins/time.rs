//! `time([format])`: print the wall-clock time. The record carries no payload: user
//! space formats its own local time on receipt, as bpftrace does.

use super::{Builtin, Form};
use crate::ast::ExprKind;
use crate::codegen::Dest;
use crate::event::EventKind;
use crate::sema::{statement, Payload};

/// bpftrace's default `time()` format.
pub const DEFAULT_FORMAT: &str = "%H:%M:%S\n";

pub static TIME: Builtin = Builtin {
    name: "time",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| {
        let format = match site.args {
            [] => DEFAULT_FORMAT.to_string(),
            [arg] => match &arg.kind {
                ExprKind::Str(f) => f.clone(),
                _ => return bad_format(ck, site),
            },
            _ => return bad_format(ck, site),
        };
        statement(&TIME, Vec::new(), Payload::Text(format))
    },
    lower: |g, call, dest| {
        let (Dest::Effect, Payload::Text(format)) = (dest, &call.payload) else {
            return g.misplaced(call, dest);
        };
        let id = g.event(EventKind::Time {
            format: format.clone(),
        });
        g.emit_bare_event(id);
    },
    pure: false,
};

fn bad_format(
    ck: &mut crate::sema::Checker<'_, '_>,
    site: &super::Site<'_>,
) -> Option<super::Checked> {
    ck.error(
        site.span,
        "time() takes one string literal: the strftime format",
    );
    None
}
