//! Probe providers: one entry per probe type (learned from ply's `struct provider` and
//! bpftrace's `ProviderRegistry`). An entry is the whole feature: its names, the shape
//! of its target, what its context offers builtins (`args`, `retval`, `argN`), how sema
//! resolves its target, the kernel program type, and how the runtime checks and attaches
//! it. Stages ask the entry; none of them matches on probe types.
//!
//! To add a probe type: write `probes/<type>.rs` with one `Provider` and list it in
//! [`REGISTRY`].

mod kprobe;
mod special;
mod tracepoint;

use std::fmt;
use std::os::fd::BorrowedFd;

use crate::ast::AttachPoint;
use crate::btf::Btf;
use crate::codegen::ProgramType;
use crate::runtime::{Attacher, Attachment, RuntimeError};
use crate::sema::{Args, Space};

/// Every probe type rbt runs, in the order messages list them.
pub static REGISTRY: &[&Provider] = &[
    &special::BEGIN,
    &special::END,
    &kprobe::KPROBE,
    &kprobe::KRETPROBE,
    &tracepoint::TRACEPOINT,
];

/// Probe types bpftrace 0.17 has and rbt does not run yet (with their aliases): named
/// as such in errors rather than "unknown".
pub const NOT_YET: &[&str] = &[
    "uprobe",
    "u",
    "uretprobe",
    "ur",
    "usdt",
    "U",
    "profile",
    "p",
    "interval",
    "i",
    "software",
    "s",
    "hardware",
    "h",
    "watchpoint",
    "w",
    "asyncwatchpoint",
    "aw",
    "kfunc",
    "f",
    "kretfunc",
    "fr",
    "fentry",
    "fexit",
    "iter",
    "it",
    "rawtracepoint",
    "rt",
    "self",
];

/// When a probe's program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Once, before the other probes are attached (`BEGIN`).
    Start,
    /// Once, after tracing stops (`END`).
    End,
    /// On every hit of its attach points.
    Attached,
}

/// What a probe's context offers builtins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// `args`: the tracepoint record.
    Args,
    /// `retval`: the return value register.
    Retval,
    /// `arg0`..`arg5`: the argument registers.
    ArgRegs,
}

/// What sema learns from resolving one attach point.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The record `args` reads (tracepoints).
    pub args: Option<Args>,
    /// The address space of pointers in that record (syscall arguments are user
    /// pointers).
    pub args_space: Space,
}

pub type ResolveFn = fn(&Btf, &AttachPoint) -> Result<Resolved, String>;
pub type CheckFn = fn(&mut Attacher, &AttachPoint) -> Result<(), RuntimeError>;
pub type AttachFn =
    fn(&mut Attacher, &AttachPoint, BorrowedFd<'_>) -> Result<Attachment, RuntimeError>;

/// One probe type.
pub struct Provider {
    /// The name bpftrace prints (`kprobe`, `BEGIN`).
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// The target as users write it, for messages: `kprobe:FUNCTION`.
    pub usage: &'static str,
    /// How many `:`-separated parts follow the type: at least `parts.0`, at most
    /// `parts.1` (`kprobe:f` has 1, `kprobe:module:f` 2).
    pub parts: (usize, usize),
    /// The parser's message for a target of the wrong shape (before `'TEXT': write USAGE`).
    pub malformed: &'static str,
    pub timing: Timing,
    pub prog_type: ProgramType,
    /// Stem of kernel program names (15 chars max in all): `kp`, `tp`.
    pub prog_prefix: &'static str,
    pub context: &'static [Context],
    /// The address space of pointers the probe's data gives (bpftrace's
    /// `find_addrspace`): `arg0`, casts of integers.
    pub space: Space,
    /// Sema: does the target exist, and what does its context hold.
    pub resolve: ResolveFn,
    /// Runtime preflight, without side effects: can the target be attached.
    pub check: CheckFn,
    /// Runtime: attach a loaded program (not called for `Start`/`End` probes).
    pub attach: AttachFn,
}

impl Provider {
    pub fn offers(&self, context: Context) -> bool {
        self.context.contains(&context)
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Provider) -> bool {
        std::ptr::eq(self, other)
    }
}

/// The provider a probe type name (or alias) denotes.
pub fn lookup(name: &str) -> Option<&'static Provider> {
    REGISTRY
        .iter()
        .copied()
        .find(|p| p.name == name || p.aliases.contains(&name))
}

/// The probe types rbt runs, as error messages list them:
/// `BEGIN, END, kprobe (k), kretprobe (kr) or tracepoint (t)`.
pub fn supported_list() -> String {
    let names: Vec<String> = REGISTRY
        .iter()
        .map(|p| match p.aliases {
            [] => p.name.to_string(),
            aliases => format!("{} ({})", p.name, aliases.join(", ")),
        })
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Providers whose context offers `context`, as messages name them (`kretprobe`).
pub fn offering(context: Context) -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|p| p.offers(context))
        .map(|p| p.name)
        .collect()
}
