//! `BEGIN` and `END`: run once, from user space, with `BPF_PROG_TEST_RUN` (see
//! runtime/run.rs), so they need no kernel attach point at all.

use std::os::fd::BorrowedFd;

use super::{Provider, Resolved, Timing, Unresolved};
use crate::ast::AttachPoint;
use crate::btf::Lazy;
use crate::codegen::ProgramType;
use crate::runtime::{Attacher, Attachment, RuntimeError};
use crate::sema::Space;

pub static BEGIN: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    name: "BEGIN",
    aliases: &[],
    usage: "BEGIN",
    parts: (0, 0),
    malformed: "takes no arguments",
    timing: Timing::Start,
    prog_type: ProgramType::Special,
    prog_prefix: "BEGIN",
    context: &[],
    space: Space::Unset,
    absent: None,
    resolve,
    check,
    attach,
    expand: None,
    exists: None,
    early: None,
    cookies: false,
    multi: None,
};

pub static END: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    name: "END",
    aliases: &[],
    usage: "END",
    parts: (0, 0),
    malformed: "takes no arguments",
    timing: Timing::End,
    prog_type: ProgramType::Special,
    prog_prefix: "END",
    context: &[],
    space: Space::Unset,
    absent: None,
    resolve,
    check,
    attach,
    expand: None,
    exists: None,
    early: None,
    cookies: false,
    multi: None,
};

fn resolve(_: &Lazy, _: &AttachPoint) -> Result<Resolved, Unresolved> {
    Ok(Resolved {
        args: None,
        args_space: Space::Unset,
    })
}

fn check(_: &mut Attacher, _: &AttachPoint) -> Result<(), RuntimeError> {
    Ok(())
}

fn attach(
    _: &mut Attacher,
    point: &AttachPoint,
    _: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    Err(RuntimeError::Internal(format!(
        "{} is run, not attached",
        point.name()
    )))
}
