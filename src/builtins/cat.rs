//! `cat(format, args...)`: print the file whose name the printf-style format makes.
//! Checked and laid out as printf (bpftrace 0.17 treats the two alike); user space
//! formats the name when the record arrives and prints the file (`output/cat.rs`).

use super::printf::{check_format, lower_format};
use super::{Builtin, Form};
use crate::event::EventKind;

pub static CAT: Builtin = Builtin {
    name: "cat",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| check_format(ck, site, &CAT),
    lower: |g, call, dest| {
        lower_format(g, call, dest, |format, args| EventKind::Cat {
            format,
            args,
        })
    },
    pure: false,
};
