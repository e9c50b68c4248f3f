//! `system(format, args...)`: run a command (only with `--unsafe`, as in bpftrace
//! 0.17). Checked and laid out as printf; user space formats the command when the
//! record arrives, runs it and prints its output (`output/system.rs`).

use super::printf::{check_format, lower_format};
use super::{Builtin, Form};
use crate::event::EventKind;

pub static SYSTEM: Builtin = Builtin {
    name: "system",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| {
        ck.unsafe_allowed(site)?;
        check_format(ck, site, &SYSTEM)
    },
    lower: |g, call, dest| {
        lower_format(g, call, dest, |format, args| EventKind::System {
            format,
            args,
        })
    },
    pure: false,
};
