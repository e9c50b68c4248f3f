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
mod checker;
mod expr;
mod kernel;
mod maps;
mod params;
mod stmt;
pub(crate) mod tracefs;
pub mod typed;

pub use checker::{statement, value, Checker};
pub use kernel::{in_space, pointer_to};
pub use typed::*;

use crate::ast::{self, Span};
use crate::btf::{Btf, TypeId, TypeKind};
use crate::diag::Diagnostic;
use crate::probes::Provider;
use std::collections::{HashMap, HashSet};

/// Type-check a parsed program against the kernel's types, in explicit passes:
/// 1. resolve every attach point through its provider (once: tracefs is read once);
/// 2. collect map types from all their uses (a read may precede the assignment in
///    the text), discarding that pass's diagnostics;
/// 3. type-check with the map types known, reporting everything;
/// 4. the typed program, with every map's final types.
pub fn analyze(program: &ast::Program, btf: &Btf) -> Result<TypedProgram, Vec<Diagnostic>> {
    let mut a = Analyzer {
        btf,
        diags: Vec::new(),
        enumerators: None,
        maps: Vec::new(),
        pass: Pass::CollectMaps,
        aggregation_allowed: false,
        params: program.params.clone(),
        str_size: program.str_size,
        child: program.child,
    };
    let contexts: Vec<_> = program.probes.iter().map(|p| a.resolve_probe(p)).collect();
    for (p, context) in program.probes.iter().zip(&contexts) {
        a.probe(p, context);
    }
    a.diags.clear();
    a.pass = Pass::Check;
    let probes: Vec<_> = program
        .probes
        .iter()
        .zip(&contexts)
        .filter_map(|(p, context)| a.probe(p, context))
        .collect();
    if a.diags.is_empty() {
        Ok(TypedProgram {
            probes,
            maps: a.typed_maps(),
        })
    } else {
        Err(a.diags)
    }
}

struct Analyzer<'a> {
    btf: &'a Btf,
    diags: Vec<Diagnostic>,
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
}

/// The passes that walk probe bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Learn map types; nothing is reported (the check pass repeats every error).
    CollectMaps,
    /// Type-check with all map types known.
    Check,
}

/// What resolving a probe's attach points found: the record `args` reads, and the
/// errors to report at the probe.
struct ProbeContext {
    args: Option<Args>,
    args_space: Space,
    diags: Vec<Diagnostic>,
}

/// Per-probe state: what the context offers and the variables seen so far.
struct ProbeCx {
    provider: &'static Provider,
    /// For tracepoint probes: the record `args` reads.
    args: Option<Args>,
    /// The address space of pointers in `args`.
    args_space: Space,
    vars: Vec<Var>,
    by_name: HashMap<String, VarId>,
    /// Variables whose first assignment failed to type: reading them reports nothing
    /// more (the cause is already reported).
    untyped: HashSet<String>,
}

/// A tracepoint's record: the BTF type `struct trace_event_raw_<event>`, or the fields
/// of its tracefs format file when BTF has no type of that name.
#[derive(Clone, Debug, PartialEq)]
pub enum Args {
    Btf(TypeId),
    Format(Vec<tracefs::Field>),
}

impl Analyzer<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, message));
    }

    /// Pass 1: resolve the probe's attach points (errors kept for the probe's report).
    fn resolve_probe(&mut self, probe: &ast::Probe) -> ProbeContext {
        let outer = std::mem::take(&mut self.diags);
        let mut args = None;
        let mut args_space = Space::Unset;
        if let Some(first) = probe.attach_points.first() {
            for ap in &probe.attach_points {
                if ap.provider != first.provider {
                    self.error(
                        ap.span,
                        format!(
                            "mixing '{}' with '{}' in one probe is not supported yet; write two probes",
                            ap.name(),
                            first.name()
                        ),
                    );
                    continue;
                }
                if let Some(space) = self.check_attach_point(ap, &mut args) {
                    args_space = space;
                }
            }
        }
        let diags = std::mem::replace(&mut self.diags, outer);
        ProbeContext {
            args,
            args_space,
            diags,
        }
    }

    /// Passes 2 and 3: type-check one probe's predicate and body.
    fn probe(&mut self, probe: &ast::Probe, context: &ProbeContext) -> Option<TypedProbe> {
        let provider = probe.attach_points.first()?.provider;
        let errors_before = self.diags.len();
        self.diags.extend(context.diags.iter().cloned());
        let args = context.args.clone();
        let mut cx = ProbeCx {
            provider,
            args,
            args_space: context.args_space,
            vars: Vec::new(),
            by_name: HashMap::new(),
            untyped: HashSet::new(),
        };
        let predicate = probe.predicate.as_ref().and_then(|p| {
            let e = self.expr(&mut cx, p)?;
            self.expect_scalar(&e, "a predicate")?;
            Some(e)
        });
        let body = self.block(&mut cx, &probe.body);
        if self.diags.len() > errors_before {
            return None;
        }
        Some(TypedProbe {
            provider,
            attach_points: probe.attach_points.clone(),
            predicate,
            body,
            vars: cx.vars,
            span: probe.span,
        })
    }

    /// Check that the kernel has what the attach point names (its provider resolves it),
    /// and that every attach point of one probe gives `args` the same record; returns
    /// the space of the record's pointers.
    fn check_attach_point(
        &mut self,
        ap: &ast::AttachPoint,
        args: &mut Option<Args>,
    ) -> Option<Space> {
        if ap.target.iter().any(|t| t.contains('*') || t.contains('?')) {
            self.error(
                ap.span,
                format!("wildcards in '{}' are not supported yet", ap.name()),
            );
            return None;
        }
        let (record, space) = match (ap.provider.resolve)(self.btf, ap) {
            Ok(resolved) => (resolved.args, resolved.args_space),
            Err(message) => {
                self.error(ap.span, message);
                return None;
            }
        };
        match (args.as_ref(), record) {
            (Some(prev), Some(record)) if *prev != record => self.error(
                ap.span,
                "tracepoints with different argument records in one probe are not supported yet",
            ),
            (_, Some(record)) => *args = Some(record),
            (_, None) => {}
        }
        Some(space)
    }

    /// The value of kernel enumerator `name` (bpftrace resolves them from BTF as constants).
    fn enumerator(&mut self, name: &str) -> Option<i128> {
        let btf = self.btf;
        let all = self.enumerators.get_or_insert_with(|| {
            let mut all = HashMap::new();
            for id in (1..btf.type_count()).map(TypeId) {
                if let TypeKind::Enum { .. } = btf.kind(id) {
                    for (n, v) in btf.enum_values(id) {
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
