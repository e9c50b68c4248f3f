//! Probe providers: one entry per probe type (learned from ply's `struct provider` and
//! bpftrace's `ProviderRegistry`). An entry is the whole feature: its names, the shape
//! of its target, what its context offers builtins (`args`, `retval`, `argN`), how sema
//! resolves its target, the kernel program type, and how the runtime checks and attaches
//! it. Stages ask the entry; none of them matches on probe types.
//!
//! To add a probe type: write `probes/<type>.rs` with one `Provider` and list it in
//! [`REGISTRY`].

mod cookie;
pub mod early;
mod kprobe;
pub mod list;
mod offset;
mod perf_event;
mod special;
mod timer;
mod tracepoint;
mod uprobe;
pub mod wildcard;

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::ast::AttachPoint;
use crate::btf::Lazy;
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
    &uprobe::UPROBE,
    &uprobe::URETPROBE,
    &timer::INTERVAL,
    &timer::PROFILE,
    &perf_event::SOFTWARE,
    &perf_event::HARDWARE,
];

/// Probe types whose programs run newest-attached first when several share an event
/// (the kernel adds software perf events to the head of a list): the runtime attaches
/// them last to first, so they fire in script order, as bpftrace 0.17 does
/// (`attach_reverse`).
pub static ATTACHED_IN_REVERSE: &[&Provider] = &[
    &kprobe::KPROBE,
    &uprobe::UPROBE,
    &uprobe::URETPROBE,
    &perf_event::SOFTWARE,
];

/// Why `point` denotes nothing to attach, if it does (the provider's `absent`): sema
/// drops it with a warning but still checks its probe's body, as bpftrace 0.17 does.
pub fn matches_nothing(point: &AttachPoint) -> Option<String> {
    point.provider.absent.and_then(|absent| absent(point))
}

/// Probe types bpftrace 0.17 has and rbt does not run yet (with their aliases): named
/// as such in errors rather than "unknown".
pub const NOT_YET: &[&str] = &[
    "usdt",
    "U",
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
    /// `args`: the tracepoint record, or a function's parameters from debug info.
    Args,
    /// `retval`: the return value register.
    Retval,
    /// `arg0`..`arg5`: the argument registers.
    ArgRegs,
    /// `signal()`: runs in the traced task, which `bpf_send_signal` signals (the probe
    /// types bpftrace 0.17's `check_available` allows).
    Signal,
    /// `reg()`: saved registers (`struct pt_regs`) at the start of the context.
    Regs,
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

/// The file and function whose debug info describe an attach point.
pub type DebugInfoFn = fn(&AttachPoint) -> Option<(std::path::PathBuf, String)>;
pub type ResolveFn = fn(&Lazy, &AttachPoint) -> Result<Resolved, Unresolved>;

/// See [`Provider::exists`].
pub type ExistsFn = fn(&AttachPoint) -> Result<(), Unresolved>;

/// Why an attach point denotes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    pub message: String,
    /// bpftrace's own words, which its tests and users' scripts match as
    /// `ERROR: <message>`: rendered with bpftrace's severity word
    /// ([`crate::diag::Diagnostic::bpftrace_severity`]).
    pub bpftrace_words: bool,
    /// Not an error: the attach point is dropped with this message as a warning, the
    /// probe's other attach points stay (bpftrace warns of a kprobe function that is not
    /// traceable and attaches the rest).
    pub skipped: bool,
}

impl Unresolved {
    /// bpftrace 0.17's message, printed after its `ERROR:`.
    pub fn bpftrace(message: String) -> Unresolved {
        Unresolved {
            bpftrace_words: true,
            ..message.into()
        }
    }

    /// An attach point dropped with a warning (see [`Unresolved::skipped`]).
    pub fn skipped(message: String) -> Unresolved {
        Unresolved {
            skipped: true,
            ..message.into()
        }
    }
}

impl From<String> for Unresolved {
    fn from(message: String) -> Unresolved {
        Unresolved {
            message,
            bpftrace_words: false,
            skipped: false,
        }
    }
}

impl From<&str> for Unresolved {
    fn from(message: &str) -> Unresolved {
        message.to_string().into()
    }
}
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
    /// Why an attach point bpftrace 0.17 drops instead of rejecting is absent (a uprobe
    /// symbol the binary lacks): the script runs without it, with a warning.
    pub absent: Option<fn(&AttachPoint) -> Option<String>>,
    /// Sema: does the target exist, and what does its context hold.
    pub resolve: ResolveFn,
    /// Sema, for a target whose context record costs more than its existence (a
    /// tracepoint's is typed from kernel BTF): whether it exists. Its [`Provider::resolve`]
    /// then runs only if the body reads `args`, so `@[comm] = count()` on a tracepoint
    /// reads no kernel BTF (`None`: always resolve).
    pub exists: Option<ExistsFn>,
    /// The perf event attaching uses, opened for a written-out attach point while sema
    /// and codegen run ([`early::Early`]); the preflight then finds it opened.
    pub early: Option<EarlyFn>,
    /// Runtime preflight, without side effects: can the target be attached.
    pub check: CheckFn,
    /// Runtime: attach a loaded program (not called for `Start`/`End` probes).
    pub attach: AttachFn,
    /// Where wildcards in the target expand from (`None`: the type has no wildcards).
    pub expand: Option<Expand>,
    /// How `rbt -l` lists targets that are not one kernel-wide list (files' symbols).
    pub list: Option<ListFn>,
    /// The attach point as `-p PID` sees it (a file path inside the process's mount
    /// namespace, `/proc/PID/root/...`), when that differs.
    pub in_process: Option<fn(&AttachPoint, u32) -> Option<AttachPoint>>,
    /// The file whose debug info (DWARF) describes the attach point, and the function
    /// in it: sema takes `args` (the function's parameters) and struct types from it.
    pub debug_info: Option<DebugInfoFn>,
    /// Whether its attachments carry a BPF attach cookie (each match attached through
    /// `Attacher::attach_perf`), so one program can serve all matches of a probe whose
    /// body reads only `probe` of them ([`names_by_cookie`]).
    pub cookies: bool,
    /// How all matches of one wildcard attach at once, when the kernel can (`None`:
    /// one attachment per match).
    pub multi: Option<Multi>,
}

/// `point` as process `pid` (`-p`) sees it: its provider's [`Provider::in_process`].
pub fn for_process(point: &AttachPoint, pid: Option<u32>) -> AttachPoint {
    pid.zip(point.provider.in_process)
        .and_then(|(pid, localize)| localize(point, pid))
        .unwrap_or_else(|| point.clone())
}

/// [`Provider::early`]: `None` where it could not be opened (the preflight says why).
pub type EarlyFn = fn(&AttachPoint) -> Option<OwnedFd>;

/// `rbt -l` for one provider: the matches of the part of the pattern after the type.
pub type ListFn = fn(&str, &ListQuery) -> Result<Listed, String>;

/// What a listing knows besides the pattern.
#[derive(Clone, Copy, Debug)]
pub struct ListQuery {
    /// `-p PID`.
    pub pid: Option<u32>,
    /// `-v`.
    pub verbose: bool,
    /// The probe type came from a wildcard (`*:PATH:FUNCTION`): a target of the wrong
    /// shape for this type lists nothing instead of failing (bpftrace's
    /// `ignore_invalid`).
    pub ignore_invalid: bool,
}

/// What a [`ListFn`] found.
#[derive(Debug, Default)]
pub struct Listed {
    /// Targets (`PATH:FUNCTION`), sorted.
    pub matches: std::collections::BTreeSet<String>,
    /// Warnings about the attach point, shown with its span.
    pub spanned: Vec<String>,
    /// Whole lines for stderr (`WARNING: ...`).
    pub messages: Vec<String>,
    /// With `-v`: the lines listed under a match (a uprobe's parameters), by match.
    pub params: std::collections::BTreeMap<String, Vec<String>>,
    /// The target has the wrong shape for the type ([`ListQuery::ignore_invalid`]).
    pub invalid: bool,
}

/// Attaching every match of one wildcard with one kernel object, as bpftrace 0.17 does
/// with kprobe_multi links: "Attaching N probes..." then counts the wildcard once.
pub struct Multi {
    /// Whether this kernel can (bpftrace's feature test, run once per process).
    pub available: fn() -> bool,
    /// The `expected_attach_type` a program so attached is loaded with (the kernel
    /// refuses it for single attachments, so a program attached both ways is loaded twice).
    pub attach_type: u32,
    /// Attaches a loaded program to all of `points` (one wildcard's matches) at once.
    pub attach:
        fn(&mut Attacher, &[AttachPoint], BorrowedFd<'_>) -> Result<Attachment, RuntimeError>,
}

/// Whether one program can serve several of `provider`'s attach points, reading which
/// one fired (`probe`) from its attach cookie: the provider's attachments carry one
/// and this kernel has `bpf_get_attach_cookie` (5.15+; tested once per process).
pub fn names_by_cookie(provider: &Provider) -> bool {
    provider.cookies && cookie::available()
}

/// Whether `provider` attaches wildcards' matches together on this kernel.
pub fn multi_available(provider: &Provider) -> bool {
    provider.multi.as_ref().is_some_and(|m| (m.available)())
}

/// A program's attach points split into attachments (what bpftrace counts as probes):
/// each run of one wildcard's matches, when `multi` says their provider attaches them
/// together, is one; every other attach point is one on its own.
pub fn attach_groups<'a>(
    points: &'a [AttachPoint],
    multi: &dyn Fn(&Provider) -> bool,
) -> Vec<&'a [AttachPoint]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < points.len() {
        let first = &points[start];
        let mut end = start + 1;
        if first.wildcard.is_some() && multi(first.provider) {
            while end < points.len()
                && points[end].provider == first.provider
                && points[end].span == first.span
                && points[end].wildcard == first.wildcard
            {
                end += 1;
            }
        }
        groups.push(&points[start..end]);
        start = end;
    }
    groups
}

/// Whether `group` (one of [`attach_groups`]) attaches as one multi-attachment.
pub fn is_multi(group: &[AttachPoint]) -> bool {
    group
        .first()
        .is_some_and(|p| p.wildcard.is_some() && multi_available(p.provider))
}

/// How a provider's wildcards expand (bpftrace's `ProbeMatcher`): the candidates, one a
/// line as `target` parts joined by `:` (`sched:sched_switch`, `vfs_read`).
pub struct Expand {
    /// Every target the kernel offers (tracefs `available_events`, ...), or why not.
    pub candidates: fn() -> Result<String, String>,
    /// Candidates carry a trailing ` [module]` to drop (`available_filter_functions`).
    pub strip_module: bool,
    /// What a pattern that matches nothing means.
    pub none_found: NoMatch,
    /// For `-lv`: the parameters of one matched target, as bpftrace lists them.
    pub params: Option<fn(&str) -> Vec<String>>,
}

/// A wildcard that matches nothing: bpftrace 0.17 rejects tracepoint patterns but runs
/// without kprobe ones (its probe matcher just finds no functions).
pub enum NoMatch {
    /// The script's error.
    Error(fn(&AttachPoint) -> String),
    /// Skipped; the text is rbt's warning.
    Skip(fn(&AttachPoint) -> String),
}

/// Why [`expand`] gave no attach points.
pub enum Unexpanded {
    Error(String),
    /// bpftrace drops the attach point; rbt warns.
    Skipped(String),
}

/// The attach points `point` denotes: itself, or with a wildcard in its target every
/// matching target of its provider, sorted as bpftrace sorts them (byte order).
pub fn expand(point: &AttachPoint) -> Result<Vec<AttachPoint>, Unexpanded> {
    if !point.has_wildcard() {
        return Ok(vec![point.clone()]);
    }
    let pattern = point.target.join(":");
    let found = match (&point.provider.expand, point.provider.list) {
        (Some(how), _) => {
            let found = matches(how, &pattern).map_err(Unexpanded::Error)?;
            if found.is_empty() {
                return Err(match how.none_found {
                    NoMatch::Error(message) => Unexpanded::Error(message(point)),
                    NoMatch::Skip(warning) => Unexpanded::Skipped(warning(point)),
                });
            }
            found
        }
        // Files' symbols (uprobes), matched as `-l` matches them; an offset stays
        // unexpanded (the provider then reports it).
        (None, Some(list)) if !pattern.contains('+') => {
            let query = ListQuery {
                pid: None,
                verbose: false,
                ignore_invalid: false,
            };
            let found = list(&pattern, &query).map_err(Unexpanded::Error)?.matches;
            if found.is_empty() {
                // bpftrace 0.17 matches no function and attaches nothing there.
                return Err(Unexpanded::Skipped(format!(
                    "no function matches '{}': attach point skipped, as bpftrace skips it",
                    point.name()
                )));
            }
            found
        }
        _ => return Ok(vec![point.clone()]),
    };
    let parts = point.target.len().max(1);
    Ok(found
        .into_iter()
        .map(|m| AttachPoint {
            provider: point.provider,
            target: m.splitn(parts, ':').map(str::to_string).collect(),
            span: point.span,
            wildcard: Some(point.target.join(":")),
        })
        .collect())
}

/// A tracefs file (`available_events`) from the first mounted tracefs, read once per
/// process: every wildcard expands from it, and the kernel generates these lists anew on
/// each read (seconds for `available_filter_functions` in an emulated VM).
fn tracefs_file(name: &str) -> Result<String, String> {
    type Cache = std::sync::Mutex<std::collections::HashMap<String, Result<String, String>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut files = cache.lock().unwrap_or_else(|poison| poison.into_inner());
    files
        .entry(name.to_string())
        .or_insert_with(|| read_tracefs_file(name))
        .clone()
}

fn read_tracefs_file(name: &str) -> Result<String, String> {
    let mut why =
        String::from("tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)");
    for root in crate::abi::paths::TRACEFS_DIRS {
        let path = format!("{root}/{name}");
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                // As bpftrace words it (strerror, without Rust's "(os error N)").
                let e = e.to_string();
                let e = e.split(" (os error").next().unwrap_or(&e).to_string();
                why = format!("Could not read symbols from {path}: {e}");
            }
        }
    }
    Err(why)
}

/// The candidates of `how` matching `pattern`.
fn matches(how: &Expand, pattern: &str) -> Result<std::collections::BTreeSet<String>, String> {
    let list = (how.candidates)()?;
    Ok(wildcard::matching_lines(pattern, &list, how.strip_module))
}

impl Provider {
    pub fn offers(&self, context: Context) -> bool {
        self.context.contains(&context)
    }

    /// Whether it is attached after the others, in reverse (see [`ATTACHED_IN_REVERSE`]).
    pub fn attached_in_reverse(&self) -> bool {
        ATTACHED_IN_REVERSE.contains(&self)
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

/// Whether the attach point of probe type `ty` may hold file paths (`uprobe:/bin/sh:f`),
/// read from its usage (`PATH`); types rbt does not run yet take paths whole too, so
/// the one error is about the probe type.
pub fn takes_path(ty: &str) -> bool {
    NOT_YET.contains(&ty) || lookup(ty).is_some_and(|p| p.usage.contains(":PATH:"))
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
