//! `exit()`: stop tracing. A flag in the status map and then a record tell the runtime
//! to stop (the flag survives a full ring buffer); the program returns at once, as
//! bpftrace's does.

use super::{Builtin, Form};
use crate::codegen::Dest;
use crate::event::EventKind;
use crate::sema::{statement, Payload};

pub static EXIT: Builtin = Builtin {
    name: "exit",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| {
        if !site.args.is_empty() {
            ck.error(site.span, "exit() takes no arguments");
            return None;
        }
        statement(&EXIT, Vec::new(), Payload::None)
    },
    lower: |g, call, dest| {
        if dest != Dest::Effect {
            return g.misplaced(call, dest);
        }
        g.request_exit();
        let id = g.event(EventKind::Exit);
        g.emit_bare_event(id);
        g.b.ja(g.done);
    },
    pure: false,
};
