//! Pass 1 of sema: each probe's attach points expanded (wildcards) and resolved (does
//! the target exist, what record does `args` read), grouped into units by probe type.
//! A record that costs kernel BTF (a tracepoint's) is resolved only once the body
//! turns out to read it.

use super::*;

/// The warning for an attach point dropped because it denotes nothing.
pub(super) fn skipped(span: Span, why: &str) -> Diagnostic {
    Diagnostic::warning(
        span,
        format!("{why}: attach point skipped, as bpftrace skips it"),
    )
}

/// Adds a resolved attach point to its probe type's unit (made on first appearance).
pub(super) fn group<'p>(
    units: &mut Vec<Unit<'p>>,
    probe: &'p ast::Probe,
    resolved: (ast::AttachPoint, Resolution, Vec<Diagnostic>),
) {
    match units
        .iter_mut()
        .find(|u| u.points[0].0.provider == resolved.0.provider)
    {
        Some(unit) => unit.points.push(resolved),
        None => units.push(Unit {
            probe,
            points: vec![resolved],
            probe_names: ProbeNames::Constant,
        }),
    }
}

/// What resolving one attach point found for its probe's context.
#[derive(Clone, Debug, Default)]
pub(super) struct Resolution {
    /// The record `args` reads (tracepoints).
    pub(super) args: Option<Args>,
    /// The address space of the record's pointers.
    pub(super) args_space: Space,
    /// Not resolved yet (a wildcard's match, a tracepoint; see `Analyzer::resolve_deferred`).
    pub(super) deferred: bool,
    /// Denotes nothing (`Unresolved::skipped`), and why: dropped with a warning from a
    /// probe of several attach points or one made per attach point, else an error.
    pub(super) absent: Option<String>,
}

impl Resolution {
    pub(super) fn deferred() -> Resolution {
        Resolution {
            deferred: true,
            ..Resolution::default()
        }
    }
}

impl Analyzer<'_> {
    /// Pass 1: expand the probe's attach points and resolve each, grouped by probe type
    /// in order of first appearance (expansion errors go to `errors`; attach points
    /// that denote nothing are returned apart, with a warning each).
    pub(super) fn resolve_probe<'p>(
        &mut self,
        probe: &'p ast::Probe,
        errors: &mut Vec<Diagnostic>,
    ) -> (Vec<Unit<'p>>, Vec<Unit<'p>>) {
        let mut units: Vec<Unit<'p>> = Vec::new();
        let mut nothing: Vec<Unit<'p>> = Vec::new();
        for ap in &probe.attach_points {
            let ap = &crate::probes::for_process(ap, self.pid);
            let expanded = match crate::probes::expand(ap) {
                Ok(points) => points,
                Err(crate::probes::Unexpanded::Error(message)) => {
                    errors.push(Diagnostic::error(ap.span, message));
                    continue;
                }
                Err(crate::probes::Unexpanded::Skipped(warning)) => {
                    self.warnings.push(Diagnostic::warning(ap.span, warning));
                    continue;
                }
            };
            for point in expanded {
                // A wildcard's matches are resolved (a tracepoint's format file or BTF
                // record read) only if the body reads their context: `resolve_deferred`.
                // So is a target whose provider can tell its existence apart.
                let (record, diags) = match (&point.wildcard, point.provider.exists) {
                    (Some(_), _) => (Resolution::deferred(), Vec::new()),
                    (None, Some(exists)) => match exists(&point) {
                        Ok(()) => (Resolution::deferred(), Vec::new()),
                        Err(why) => self.apart(|a| a.unresolved(&point, why)),
                    },
                    (None, None) => self.resolve_point(&point),
                };
                if let (Some(why), true) = (&record.absent, probe.attach_points.len() > 1) {
                    self.warnings.push(skipped(point.span, why));
                    self.unattached += 1;
                    group(&mut nothing, probe, (point, record, Vec::new()));
                } else if let Some(why) = crate::probes::matches_nothing(&point) {
                    self.warnings.push(Diagnostic::warning(point.span, why));
                    group(&mut nothing, probe, (point, record, Vec::new()));
                } else {
                    group(&mut units, probe, (point, record, diags));
                }
            }
        }
        (units, nothing)
    }

    /// Resolves `point`, collecting the errors apart (they are reported at its probe).
    fn resolve_point(&mut self, point: &ast::AttachPoint) -> (Resolution, Vec<Diagnostic>) {
        self.apart(|a| a.check_attach_point(point))
    }

    /// What `f` resolves, and the diagnostics it reported, kept apart from the others.
    fn apart(&mut self, f: impl FnOnce(&mut Self) -> Resolution) -> (Resolution, Vec<Diagnostic>) {
        let outer = std::mem::take(&mut self.diags);
        let record = f(self);
        (record, std::mem::replace(&mut self.diags, outer))
    }

    /// Resolves the attach points of `unit` left unresolved at expansion (whether there
    /// were any): a wildcard's matches are resolved only for a body that reads their
    /// record (`args`), as bpftrace 0.17 parses tracepoint formats only then; so
    /// `@[probe] = count()` over `sys_enter_*` reads no kernel BTF at all.
    pub(super) fn resolve_deferred(&mut self, unit: &mut Unit<'_>) -> bool {
        let mut any = false;
        for (point, record, diags) in &mut unit.points {
            if record.deferred {
                (*record, *diags) = self.resolve_point(point);
                any = true;
            }
        }
        any
    }

    /// Check that the kernel has what the attach point names (its provider resolves
    /// it): the record `args` reads there and the space of its pointers.
    fn check_attach_point(&mut self, ap: &ast::AttachPoint) -> Resolution {
        if ap.has_wildcard() {
            self.error(
                ap.span,
                format!("wildcards in '{}' are not supported", ap.name()),
            );
            return Resolution::default();
        }
        match (ap.provider.resolve)(self.btf, ap) {
            Ok(resolved) => Resolution {
                args: resolved.args.or_else(|| {
                    let key = (ap.provider.debug_info?)(ap)?;
                    self.fn_params.get(&key).cloned().map(Args::Params)
                }),
                args_space: resolved.args_space,
                deferred: false,
                absent: None,
            },
            Err(why) => self.unresolved(ap, why),
        }
    }

    /// An attach point that denotes nothing: dropped with a warning, or an error.
    fn unresolved(&mut self, ap: &ast::AttachPoint, why: crate::probes::Unresolved) -> Resolution {
        if why.skipped {
            return Resolution {
                absent: Some(why.message),
                ..Resolution::default()
            };
        }
        let diag = Diagnostic::error(ap.span, why.message);
        self.diags.push(diag.in_bpftrace_words(why.bpftrace_words));
        Resolution::default()
    }
}
