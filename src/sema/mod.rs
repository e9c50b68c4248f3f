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
mod stmt;
pub(crate) mod tracefs;
pub mod typed;

pub use checker::{statement, value, Checker};
pub use typed::*;

use crate::ast::{self, Span};
use crate::btf::{Btf, TypeId, TypeKind};
use crate::diag::Diagnostic;
use crate::probes::Provider;
use std::collections::{HashMap, HashSet};

/// Type-check a parsed program against the kernel's types.
pub fn analyze(program: &ast::Program, btf: &Btf) -> Result<TypedProgram, Vec<Diagnostic>> {
    let mut a = Analyzer {
        btf,
        diags: Vec::new(),
        enumerators: None,
        maps: Vec::new(),
        collecting: true,
    };
    // First pass: learn every map's types from all its uses; its errors are repeated
    // (with the map types known) by the second pass.
    for p in &program.probes {
        a.probe(p);
    }
    a.diags.clear();
    a.collecting = false;
    let probes: Vec<_> = program.probes.iter().filter_map(|p| a.probe(p)).collect();
    a.check_maps_cleared();
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
    /// The first pass, which only collects map types.
    collecting: bool,
}

/// Per-probe state: what the context offers and the variables seen so far.
struct ProbeCx {
    provider: &'static Provider,
    /// For tracepoint probes: the record `args` reads.
    args: Option<Args>,
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

    fn probe(&mut self, probe: &ast::Probe) -> Option<TypedProbe> {
        let first = probe.attach_points.first()?;
        let provider = first.provider;
        let errors_before = self.diags.len();
        let mut args = None;
        for ap in &probe.attach_points {
            if ap.provider != provider {
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
            self.check_attach_point(ap, &mut args);
        }
        let mut cx = ProbeCx {
            provider,
            args,
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
    /// and that every attach point of one probe gives `args` the same record.
    fn check_attach_point(&mut self, ap: &ast::AttachPoint, args: &mut Option<Args>) {
        if ap.target.iter().any(|t| t.contains('*') || t.contains('?')) {
            self.error(
                ap.span,
                format!("wildcards in '{}' are not supported yet", ap.name()),
            );
            return;
        }
        let record = match (ap.provider.resolve)(self.btf, ap) {
            Ok(resolved) => resolved.args,
            Err(message) => return self.error(ap.span, message),
        };
        match (args.as_ref(), record) {
            (Some(prev), Some(record)) if *prev != record => self.error(
                ap.span,
                "tracepoints with different argument records in one probe are not supported yet",
            ),
            (_, Some(record)) => *args = Some(record),
            (_, None) => {}
        }
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
