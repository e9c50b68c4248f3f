//! Semantic analysis: resolve names and kernel types, type-check, produce the typed program.
//!
//! Typing follows bpftrace 0.17: a `$variable` takes the type of its first assignment and
//! later assignments must be compatible (integers of any width convert to the variable's
//! width); member accesses on kernel pointers are typed from BTF (`.` on a pointer is
//! accepted like `->`); tracepoint `args` come from BTF's `trace_event_raw_<event>` or
//! the tracefs format file; kernel enumerators are constants; `@maps` get their types
//! from all their uses (a first pass collects them); printf arguments are checked
//! against the format. Every error is collected with its span, so one run reports them
//! all.

mod access;
mod casts;
mod checker;
mod ctypes;
mod debuginfo;
mod expr;
mod finalize;
mod kernel;
mod maps;
mod params;
mod records;
mod resolve;
mod stmt;
pub(crate) mod tracefs;
mod tuples;
pub mod typed;

pub use checker::{statement, value, Checker, ProbeName};
pub use kernel::{in_space, is_ctx_pointer, kind_name, pointer_to};
pub use typed::*;

use crate::ast::{self, Span};
use crate::btf::{Lazy, TypeId, TypeKind};
use crate::diag::Diagnostic;
use crate::probes::Provider;
use ctypes::Tags;
use resolve::{skipped, Resolution};
use std::collections::{HashMap, HashSet};

/// Type-check a parsed program against the kernel's types, in explicit passes:
/// 1. expand every attach point's wildcards and resolve it through its provider (once:
///    tracefs is read once), grouping a probe's attach points into programs: one per
///    probe type, and one per attach point when the body uses a value constant per
///    attach point (`probe`, a tracepoint's `args`), as bpftrace 0.17 expands them,
///    unless that value is only `probe` and attach cookies can tell it ([`Plan`]);
/// 2. collect map types from all their uses (a read may precede the assignment in
///    the text), discarding that pass's diagnostics;
/// 3. type-check with the map types known, reporting everything;
/// 4. finalize each probe (variables take their final types) and hand over the typed
///    program with every map's final types.
pub fn analyze(program: &ast::Program, btf: &Lazy) -> Result<TypedProgram, Vec<Diagnostic>> {
    // Kernel BTF is read when a kernel type is first needed (see `Lazy`); script types
    // extend it, so a script that defines any reads it here.
    let kernel = btf;
    let (extended, kernel_types) = match program.types.is_empty() {
        true => (None, None),
        false => (
            ctypes::extend(btf, &program.types, Tags::Kernel)?,
            Some(btf.type_count()),
        ),
    };
    let shadowing = match (&extended, kernel_types) {
        (Some(ext), Some(count)) => ctypes::shadowing(btf, ext, count),
        _ => Vec::new(),
    };
    let extended = extended.as_ref().map(Lazy::from);
    let btf = extended.as_ref().unwrap_or(btf);
    // Then the types of the probed binaries' debug info the script uses.
    let (debug, fn_params) = match debuginfo::extend(btf, program) {
        Ok(Some((debug, params))) => (Some(debug), params),
        Ok(None) => (None, debuginfo::Params::new()),
        Err(e) => return Err(vec![Diagnostic::error(program.span, e)]),
    };
    let debug = debug.as_ref().map(Lazy::from);
    let btf = debug.as_ref().unwrap_or(btf);
    let mut a = Analyzer {
        btf,
        kernel_types,
        diags: Vec::new(),
        warnings: Vec::new(),
        enumerators: None,
        maps: Vec::new(),
        pass: Pass::CollectMaps,
        aggregation_allowed: false,
        params: program.params.clone(),
        str_size: program.str_size,
        child: program.child,
        allow_unsafe: program.allow_unsafe,
        pid: program.pid,
        fn_params,
        unattached: 0,
        shadowing,
        tags_conflict: false,
    };
    let mut expansion_errors = Vec::new();
    let mut units = Vec::new();
    // Those attach points' share of their probes: checked, never compiled.
    let mut silent = Vec::new();
    // The script's attach point behind each program made per attach point.
    let mut expanded = Vec::new();
    for p in &program.probes {
        let (groups, nothing) = a.resolve_probe(p, &mut expansion_errors);
        // Their bodies still define maps and get checked, as in bpftrace.
        for group in nothing {
            a.probe(&group);
            silent.push(group);
        }
        for mut group in groups {
            let (_, mut needs) = a.probe(&group);
            if needs.args && a.resolve_deferred(&mut group) {
                needs = a.probe(&group).1;
            }
            let per_point = needs.per_attach_point();
            // A lone attach point that denotes nothing (a probe of several dropped it
            // at resolution): bpftrace's probe matcher drops it from a probe made per
            // attach point (`probe` in the body), else it fails.
            if let [(
                point,
                Resolution {
                    absent: Some(why), ..
                },
                _,
            )] = group.points.as_slice()
            {
                if per_point {
                    a.warnings.push(skipped(point.span, why));
                } else {
                    expansion_errors.push(Diagnostic::error(point.span, why.clone()));
                }
                silent.push(group);
                continue;
            }
            if per_point {
                // Counted against BPFTRACE_MAX_BPF_PROGS as bpftrace counts them.
                expanded.extend(group.points.iter().map(|(point, _, _)| point.span));
                // Before each match is checked on its own: `k:*` has ~35k.
                if let Some(too_many) = program_limit(&expanded) {
                    return Err(vec![too_many]);
                }
                // bpftrace's `need_expansion`: each match attaches on its own.
                for (point, _, _) in &mut group.points {
                    point.wildcard = None;
                }
            }
            match Plan::of(&group, needs) {
                Plan::One => units.push(group),
                Plan::ByCookie => {
                    group.probe_names = ProbeNames::Cookie;
                    a.probe(&group);
                    units.push(group);
                }
                Plan::PerAttachPoint => {
                    for one in group.split() {
                        a.probe(&one);
                        units.push(one);
                    }
                }
            }
        }
    }
    // Nothing left to attach: main says so as bpftrace does ("No probes to attach"),
    // after the warnings that say what was dropped.
    a.diags.clear();
    a.pass = Pass::Check;
    for unit in &silent {
        a.probe(unit);
    }
    let probes: Vec<_> = units.iter().filter_map(|u| a.probe(u).0).collect();
    // A body checked once per attach point reports its errors once.
    for d in a.diags.drain(..) {
        if !expansion_errors.contains(&d) {
            expansion_errors.push(d);
        }
    }
    // bpftrace's clang pass, which runs before its semantic checks, saw the conflict.
    if a.tags_conflict {
        ctypes::extend(kernel, &program.types, Tags::ScriptOnly)?;
    }
    if expansion_errors.is_empty() {
        Ok(TypedProgram {
            probes,
            maps: a.typed_maps(),
            warnings: std::mem::take(&mut a.warnings),
            unattached: a.unattached,
        })
    } else {
        Err(expansion_errors)
    }
}

/// bpftrace's `BPFTRACE_MAX_BPF_PROGS` (default 512; main rejects a malformed value):
/// the most programs made per attach point. Counted as bpftrace 0.17 counts them: only
/// those, one script attach point at a time (all its matches at once), reporting the
/// running total at the first attach point over the limit.
fn program_limit(spans: &[Span]) -> Option<Diagnostic> {
    let limit = std::env::var("BPFTRACE_MAX_BPF_PROGS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(512);
    let mut total = 0u64;
    for (i, span) in spans.iter().enumerate() {
        total += 1;
        if total > limit && spans.get(i + 1) != Some(span) {
            return Some(Diagnostic::error(
                *span,
                format!(
                    "Your program is trying to generate more than {total} BPF programs, which \
                     exceeds the current limit of {limit}.\nYou can increase the limit through \
                     the BPFTRACE_MAX_BPF_PROGS environment variable."
                ),
            ));
        }
    }
    None
}

struct Analyzer<'a> {
    btf: &'a Lazy<'a>,
    /// Type ids from here on are the script's own definitions (None: it defines none).
    kernel_types: Option<u32>,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Every enumerator in kernel BTF (`TCP_CLOSE` = 7), indexed on first use.
    enumerators: Option<HashMap<String, i128>>,
    maps: Vec<maps::MapState>,
    pass: Pass,
    /// Set while typing the value of `@map[key] = ...`: the one place an aggregation
    /// (`count()`) may stand.
    aggregation_allowed: bool,
    /// The positional parameters `$1`.. denote.
    params: Vec<String>,
    /// Bytes of a `str()` value.
    str_size: usize,
    /// Whether a `-c` command runs.
    child: bool,
    /// `--unsafe` was given.
    allow_unsafe: bool,
    /// `-p PID`.
    pid: Option<u32>,
    /// Probed functions' parameters from debug info (`args` of a uprobe).
    fn_params: debuginfo::Params,
    /// Attach points dropped from a probe of several: see `TypedProgram::unattached`.
    unattached: usize,
    /// The script's structs that shadow a kernel one ([`ctypes::shadowing`]) ...
    shadowing: Vec<TypeId>,
    /// ... and whether a member was read through one: the script's types must then
    /// stand without the kernel's tags ([`Tags::ScriptOnly`]).
    tags_conflict: bool,
}

/// The passes that walk probe bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Learn map types; nothing is reported (the check pass repeats every error).
    CollectMaps,
    /// Type-check with all map types known.
    Check,
}

/// One program's share of a probe: attach points of one probe type, each resolved
/// (the record `args` reads, the errors to report at the probe).
struct Unit<'p> {
    probe: &'p ast::Probe,
    points: Vec<(ast::AttachPoint, Resolution, Vec<Diagnostic>)>,
    /// Where its program's `probe` comes from (set by [`Plan::ByCookie`]).
    probe_names: ProbeNames,
}

/// What a body asked of the attach points its program serves.
#[derive(Clone, Copy, Debug, Default)]
struct Needs {
    /// A value constant per attach point that only a program of its own can hold (a
    /// tracepoint's `args` record, a symbol of the probed binary): `Checker::per_attach_point`.
    own_program: bool,
    /// `probe`, the attach point's name: `Checker::probe_name`.
    name: bool,
    /// It reads the context record (`args`: `Checker::args_record`).
    args: bool,
}

impl Needs {
    /// bpftrace 0.17's `need_expansion`: it makes one program per attach point.
    fn per_attach_point(self) -> bool {
        self.own_program || self.name
    }
}

/// How one probe type's share of a probe becomes programs. bpftrace 0.17 makes one per
/// attach point when the body uses a value constant per attach point; where that value
/// is only `probe` (`@[probe] = count()` over `sys_enter_*`), rbt loads one program for
/// all of them and attaches it to each with its index into a table of their names as
/// the attach cookie (`bpf_get_attach_cookie`, `builtins/probe.rs`): one verification
/// instead of hundreds. Kernels without cookies, and probe types whose attachments
/// carry none, get one program per attach point as in bpftrace. Either way the output,
/// "Attaching N probes..." and the BPFTRACE_MAX_BPF_PROGS count are bpftrace's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// One program for all the attach points (nothing per attach point, or just one).
    One,
    /// One program, `probe` read by cookie.
    ByCookie,
    /// One program per attach point.
    PerAttachPoint,
}

impl Plan {
    fn of(unit: &Unit<'_>, needs: Needs) -> Plan {
        let provider = unit.points[0].0.provider;
        if !needs.per_attach_point() || unit.points.len() == 1 {
            Plan::One
        } else if !needs.own_program && !needs.args && crate::probes::names_by_cookie(provider) {
            Plan::ByCookie
        } else {
            Plan::PerAttachPoint
        }
    }
}

impl Unit<'_> {
    /// One unit per attach point.
    fn split(self) -> Vec<Self> {
        let probe = self.probe;
        self.points
            .into_iter()
            .map(|point| Unit {
                probe,
                points: vec![point],
                probe_names: ProbeNames::Constant,
            })
            .collect()
    }
}

/// Per-probe state: what the context offers and the variables seen so far.
struct ProbeCx {
    provider: &'static Provider,
    /// The attach points the program serves (at least one).
    attach_points: Vec<ast::AttachPoint>,
    /// The probe types of all the probe's attach points, as written (the probe may be
    /// split into several programs).
    written_types: Vec<&'static Provider>,
    /// What the body asked of its attach points.
    needs: Needs,
    /// Where `probe` comes from (see [`Plan`]).
    probe_names: ProbeNames,
    /// For tracepoint probes: the record `args` reads.
    args: Option<Args>,
    /// The address space of pointers in `args`.
    args_space: Space,
    /// The attach points' `args` differ (functions with other parameters).
    mixed_args: bool,
    vars: Vec<Var>,
    by_name: HashMap<String, VarId>,
    /// Variables whose first assignment failed to type: reading them reports nothing
    /// more (the cause is already reported).
    untyped: HashSet<String>,
}

/// A tracepoint's record: the BTF type `struct trace_event_raw_<event>`, or the fields
/// of its tracefs format file when BTF has no type of that name; or a function's
/// parameters from debug info, each read from its argument register.
#[derive(Clone, Debug, PartialEq)]
pub enum Args {
    Btf(TypeId),
    Format(Vec<tracefs::Field>),
    Params(Vec<Param>),
}

/// A function parameter: its name and (appended) BTF type.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: TypeId,
}

impl Analyzer<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, message));
    }

    /// The script reads a member or the size of type `id`: if that is a script struct
    /// shadowing a kernel one, bpftrace 0.17 would have generated the kernel's too and
    /// conflicted ([`ctypes::shadowing`]).
    fn uses_tag(&mut self, id: TypeId) {
        if self.shadowing.contains(&self.btf.resolve(id)) {
            self.tags_conflict = true;
        }
    }

    /// Passes 2 and 3: type-check one program's share of a probe: its predicate and
    /// body. Also says what the body asked of its attach points (see [`Plan`]).
    fn probe(&mut self, unit: &Unit<'_>) -> (Option<TypedProbe>, Needs) {
        let probe = unit.probe;
        let provider = unit.points[0].0.provider;
        let errors_before = self.diags.len();
        for (_, _, diags) in &unit.points {
            self.diags.extend(diags.iter().cloned());
        }
        let attach_points: Vec<_> = unit.points.iter().map(|(p, _, _)| p.clone()).collect();
        let mut cx = ProbeCx {
            provider,
            attach_points: attach_points.clone(),
            written_types: probe.attach_points.iter().map(|a| a.provider).collect(),
            needs: Needs::default(),
            probe_names: unit.probe_names,
            args: unit.points.iter().find_map(|(_, r, _)| r.args.clone()),
            args_space: unit
                .points
                .iter()
                .find(|(_, r, _)| r.args.is_some())
                .map_or(Space::Unset, |(_, r, _)| r.args_space),
            mixed_args: unit.points.iter().any(|(_, r, _)| {
                match (&r.args, &unit.points[0].1.args) {
                    (Some(Args::Params(a)), Some(Args::Params(b))) => {
                        !debuginfo::same_params(self.btf, a, b)
                    }
                    (a, b) => a != b,
                }
            }),
            vars: Vec::new(),
            by_name: HashMap::new(),
            untyped: HashSet::new(),
        };
        let predicate = probe.predicate.as_ref().and_then(|p| {
            let e = self.expr(&mut cx, p)?;
            self.expect_scalar(&e, "a predicate")?;
            Some(e)
        });
        let mut body = self.block(&mut cx, &probe.body);
        if self.diags.len() > errors_before {
            return (None, cx.needs);
        }
        let mut predicate = predicate;
        finalize::probe(&mut body, predicate.as_mut(), &mut cx.vars);
        let typed = TypedProbe {
            provider,
            attach_points,
            predicate,
            body,
            vars: cx.vars,
            probe_names: unit.probe_names,
            one_of_several: probe.attach_points.len() > 1
                || probe
                    .attach_points
                    .iter()
                    .any(ast::AttachPoint::has_wildcard),
            span: probe.span,
        };
        (Some(typed), cx.needs)
    }

    /// The value of kernel enumerator `name` (bpftrace resolves them from BTF as constants).
    fn enumerator(&mut self, name: &str) -> Option<i128> {
        let btf = self.btf;
        let kernel_types = self.kernel_types.unwrap_or_else(|| btf.type_count());
        let all = self.enumerators.get_or_insert_with(|| {
            let mut all = HashMap::new();
            for id in (kernel_types..btf.type_count()).map(TypeId) {
                if let TypeKind::Enum { .. } = btf.kind(id) {
                    for (n, v) in btf.enum_values(id) {
                        all.entry(n).or_insert(v);
                    }
                }
            }
            // A kernel enum with an enumerator the script redefines is hidden whole
            // (bpftrace 0.17: its other enumerators become unknown identifiers).
            let script: HashSet<String> = all.keys().cloned().collect();
            for id in (1..kernel_types).map(TypeId) {
                if let TypeKind::Enum { .. } = btf.kind(id) {
                    let values = btf.enum_values(id);
                    if values.iter().any(|(n, _)| script.contains(n)) {
                        continue;
                    }
                    for (n, v) in values {
                        all.entry(n).or_insert(v);
                    }
                }
            }
            all
        });
        all.get(name).copied()
    }

    fn expect_scalar(&mut self, e: &TExpr, what: &str) -> Option<()> {
        if e.ty.is_scalar() {
            Some(())
        } else {
            self.error(
                e.span,
                format!(
                    "{what} must be an integer or a pointer, not '{}'",
                    e.ty.describe()
                ),
            );
            None
        }
    }
}
