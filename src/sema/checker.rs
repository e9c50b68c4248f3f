//! What a builtin's type rule (in `builtins/`) sees of the analysis: typing of its
//! arguments, errors, kernel types, the probe's context and the maps.

use super::typed::*;
use super::{Analyzer, Args, Pass, ProbeCx};
use crate::ast::{self, ExprKind, Span};
use crate::btf::Btf;
use crate::builtins::{Builtin, Checked, Site};
use crate::probes::{self, Context, Provider};

/// What `probe` is in the program being checked ([`Checker::probe_name`]).
pub enum ProbeName {
    Constant(String),
    /// Read by attach cookie; the longest name's length.
    Cookie {
        longest: usize,
    },
}

pub struct Checker<'c, 'a> {
    pub(super) an: &'c mut Analyzer<'a>,
    pub(super) cx: &'c mut ProbeCx,
}

impl Checker<'_, '_> {
    /// Type an argument expression.
    pub fn expr(&mut self, e: &ast::Expr) -> Option<TExpr> {
        self.an.expr(self.cx, e)
    }

    /// An argument used as a value: a struct, union or array in memory is copied out
    /// (see `sema::records`).
    pub fn value_expr(&mut self, e: &ast::Expr) -> Option<TExpr> {
        let e = self.an.expr(self.cx, e)?;
        self.an.value_of(e)
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.an.error(span, message);
    }

    pub fn btf(&self) -> &Btf {
        self.an.btf
    }

    pub fn provider(&self) -> &'static Provider {
        self.cx.provider
    }

    /// The attach point the probe's program serves, for a value that is constant per
    /// attach point (`probe`, a tracepoint's `args`): asks sema for one program per
    /// attach point, and while the probe still has several, answers with the first.
    pub fn per_attach_point(&mut self) -> &ast::AttachPoint {
        self.cx.needs.own_program = true;
        &self.cx.attach_points[0]
    }

    /// `probe`, the name of the attach point that fired: a constant while the program
    /// serves one attach point (asking, like [`Checker::per_attach_point`], for one
    /// program per attach point), or read by attach cookie when sema planned one
    /// program for them all (`sema::Plan::ByCookie`).
    pub fn probe_name(&mut self) -> ProbeName {
        self.cx.needs.name = true;
        let points = &self.cx.attach_points;
        match self.cx.probe_names {
            ProbeNames::Constant => ProbeName::Constant(points[0].name()),
            ProbeNames::Cookie => ProbeName::Cookie {
                longest: points.iter().map(|p| p.name().len()).max().unwrap_or(0),
            },
        }
    }

    /// The probe types of every attach point the probe was written with (its programs
    /// each serve one type).
    pub fn written_types(&self) -> &[&'static Provider] {
        &self.cx.written_types
    }

    /// The attach points the probe's program serves.
    pub fn attach_points(&self) -> &[ast::AttachPoint] {
        &self.cx.attach_points
    }

    /// Whether the attach points' `args` differ.
    pub fn mixed_args(&self) -> bool {
        self.cx.mixed_args
    }

    /// The tracepoint record `args` reads, when the probe has one (each match of a
    /// wildcard is then resolved: see `Analyzer::resolve_deferred`).
    pub fn args_record(&mut self) -> Option<&Args> {
        self.cx.needs.args = true;
        self.cx.args.as_ref()
    }

    /// Checks that the probe's context offers `context`, else reports
    /// "the NAME builtin can only be used with kretprobe probes".
    pub fn requires(&mut self, context: Context, site: &Site<'_>) -> Option<()> {
        if self.cx.provider.offers(context) {
            return Some(());
        }
        let which = probes::offering(context).join(", ");
        self.error(
            site.span,
            format!(
                "the {} builtin can only be used with {which} probes",
                site.name
            ),
        );
        None
    }

    /// Checks that the site has exactly `n` arguments (message as bpftrace words it).
    pub fn arity(&mut self, site: &Site<'_>, n: usize) -> Option<()> {
        if site.args.len() == n {
            return Some(());
        }
        let what = match n {
            0 => "no arguments".to_string(),
            1 => "exactly one argument".to_string(),
            n => format!("exactly {n} arguments"),
        };
        self.error(site.span, format!("{}() takes {what}", site.name));
        None
    }

    /// bpftrace's `check_nargs(call, 1)`: the one argument, else its error
    /// (`ksym() requires one argument (2 provided)`).
    pub fn one_arg<'e>(&mut self, site: &Site<'e>) -> Option<&'e ast::Expr> {
        self.nargs(site, 1)?;
        site.args.first()
    }

    /// bpftrace's `check_nargs(call, n)`: exactly `n` arguments, else its error
    /// (`strcontains() requires 2 arguments (1 provided)`).
    pub fn nargs(&mut self, site: &Site<'_>, n: usize) -> Option<()> {
        let provided = site.args.len();
        if provided == n {
            return Some(());
        }
        let count = match n {
            1 => "one argument".to_string(),
            n => format!("{n} arguments"),
        };
        self.error(
            site.span,
            format!("{}() requires {count} ({provided} provided)", site.name),
        );
        None
    }

    /// bpftrace's `check_varargs(call, min, max)`: `min`..=`max` arguments, else its error
    /// (`join() requires at least one argument (0 provided)`, `takes up to 2 ...`).
    pub fn arg_range(&mut self, site: &Site<'_>, min: usize, max: usize) -> Option<()> {
        let (n, name) = (site.args.len(), site.name);
        let count = |k: usize| match k {
            1 => "one argument".to_string(),
            k => format!("{k} arguments"),
        };
        let msg = if n < min {
            format!("{name}() requires at least {} ({n} provided)", count(min))
        } else if n > max {
            format!("{name}() takes up to {} ({n} provided)", count(max))
        } else {
            return Some(());
        };
        self.error(site.span, msg);
        None
    }

    /// `@map[key]` as a map function's argument (`delete(@m[k])`): the map and its key
    /// parts.
    pub fn map_element(&mut self, arg: &ast::Expr) -> Option<(MapId, Vec<TExpr>)> {
        let ExprKind::Map { name, keys } = &arg.kind else {
            self.error(arg.span, "expected a map element (@map[key])");
            return None;
        };
        let id = self.an.map_id(name, arg.span);
        let key = self.an.map_key(self.cx, id, keys, arg.span)?;
        self.defined(id, name, arg.span)?;
        Some((id, key))
    }

    /// A map only deleted from, cleared or printed, never assigned: bpftrace's
    /// "Undefined map" (reported once the collect pass has seen every assignment).
    fn defined(&mut self, id: MapId, name: &str, span: Span) -> Option<()> {
        if self.an.maps[id.0].value.is_none() && self.an.pass == Pass::Check {
            self.error(span, format!("Undefined map: @{name}"));
            return None;
        }
        Some(())
    }

    /// A whole map as a map function's argument (`clear(@m)`, `print(@m)`): `@m`,
    /// without a key.
    pub fn whole_map(&mut self, arg: &ast::Expr, func: &str) -> Option<MapId> {
        match &arg.kind {
            ExprKind::Map { name, keys } if keys.is_empty() => {
                let id = self.an.map_id(name, arg.span);
                self.defined(id, name, arg.span)?;
                Some(id)
            }
            _ => {
                self.error(arg.span, format!("{func}() expects a map to be provided"));
                None
            }
        }
    }

    /// The text of `str(arg)` when `arg` is a positional parameter (see
    /// `sema::params`): `Some(Err(()))` after reporting a misuse.
    pub fn param_text(&mut self, arg: &ast::Expr, span: Span) -> Option<Result<String, ()>> {
        self.an.param_text(arg, span)
    }

    /// An integer literal argument (`lhist`'s bounds, `kstack`'s limit): `5`, `-1`, or
    /// a positional parameter, which bpftrace 0.17 counts as a literal (`kstack($1)`).
    /// `Some(None)` when it is none of these (the caller says what it wanted); `None`,
    /// as from every check here, after an error: a parameter that is not a number.
    pub fn integer_literal(&mut self, arg: &ast::Expr) -> Option<Option<i64>> {
        Some(match &arg.kind {
            ExprKind::Int(v) => Some(*v as i64),
            ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                expr,
            } => self.integer_literal(expr)?.map(i64::wrapping_neg),
            ExprKind::Param(n) => match self.an.param_number(*n, arg.span)?.kind {
                TExprKind::Int(v) => Some(v as i64),
                _ => None,
            },
            _ => None,
        })
    }

    /// Whether a `-c` command runs (for `cpid`).
    pub fn has_child(&self) -> bool {
        self.an.child
    }

    /// For a builtin bpftrace 0.17 calls unsafe (`system`, `signal`): reports its
    /// error unless `--unsafe` was given.
    pub fn unsafe_allowed(&mut self, site: &Site<'_>) -> Option<()> {
        if self.an.allow_unsafe {
            return Some(());
        }
        self.error(
            site.span,
            format!(
                "{}() is an unsafe function being used in safe mode",
                site.name
            ),
        );
        None
    }

    /// Whether `name` is a kernel (or script) enumerator, usable as a constant.
    pub fn is_enumerator(&mut self, name: &str) -> bool {
        self.an.enumerator(name).is_some()
    }

    /// The size of the type `name` names in `sizeof()`: a bpftrace integer type
    /// (`int32`), a kernel or script struct or union (`struct sock`); bpftrace 0.17
    /// knows no `sizeof(enum E)`.
    pub fn type_size(&mut self, name: &str) -> Option<usize> {
        if let Some(ty) = super::kernel::bpftrace_int(name) {
            return Some(ty.size());
        }
        if !(name.starts_with("struct ") || name.starts_with("union ")) {
            return None;
        }
        let id = self.an.btf.find_type(name)?;
        self.an.uses_tag(id);
        self.an.btf.size_of(id).map(|s| s as usize)
    }

    /// Bytes of a `str()` value (BPFTRACE_STRLEN).
    pub fn str_size(&self) -> usize {
        self.an.str_size
    }

    /// The address space bpftrace gives `e` (which probe_read helper reads through it).
    pub fn space_of(&self, e: &TExpr) -> Space {
        self.an.space_of(self.cx, e)
    }

    /// The value type map `id` holds, once known (after the collect pass).
    pub fn map_value(&self, id: MapId) -> Option<&Type> {
        self.an.maps[id.0].value.as_ref()
    }
}

/// A typed use of `builtin` with value type `ty`.
pub fn value(
    builtin: &'static Builtin,
    args: Vec<TExpr>,
    payload: Payload,
    ty: Type,
    span: Span,
) -> Option<Checked> {
    Some(Checked::Value(TExpr {
        kind: TExprKind::Call(Call {
            builtin,
            args,
            payload,
            span,
        }),
        ty,
        span,
    }))
}

/// A typed statement use of `builtin` (its span is the call site's, set by sema's
/// `call_stmt`).
pub fn statement(builtin: &'static Builtin, args: Vec<TExpr>, payload: Payload) -> Option<Checked> {
    Some(Checked::Stmt(TStmtKind::Call(Call {
        builtin,
        args,
        payload,
        span: Span::default(),
    })))
}
