//! What a builtin's type rule (in `builtins/`) sees of the analysis: typing of its
//! arguments, errors, kernel types, the probe's context and the maps.

use super::typed::*;
use super::{Analyzer, Args, ProbeCx};
use crate::ast::{self, ExprKind, Span};
use crate::btf::Btf;
use crate::builtins::{Builtin, Checked, Site};
use crate::probes::{self, Context, Provider, Timing};

pub struct Checker<'c, 'a> {
    pub(super) an: &'c mut Analyzer<'a>,
    pub(super) cx: &'c mut ProbeCx,
}

impl Checker<'_, '_> {
    /// Type an argument expression.
    pub fn expr(&mut self, e: &ast::Expr) -> Option<TExpr> {
        self.an.expr(self.cx, e)
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

    /// The tracepoint record `args` reads, when the probe has one.
    pub fn args_record(&self) -> Option<&Args> {
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

    /// The map operand of a map function (`delete(@m[k])`, `clear(@m)`): its id and,
    /// when it is indexed or `keyed` is asked for, its key.
    pub fn map_operand(
        &mut self,
        site: &Site<'_>,
        keyed: bool,
    ) -> Option<(MapId, Option<TExpr>, bool)> {
        let [ast::Expr {
            kind: ExprKind::Map { name, keys },
            span,
        }] = site.args
        else {
            self.error(site.span, format!("{}() takes one map argument", site.name));
            return None;
        };
        let id = self.an.map_id(name, *span);
        let key = if keyed {
            Some(self.an.map_key(self.cx, id, keys, *span)?)
        } else {
            None
        };
        Some((id, key, !keys.is_empty()))
    }

    /// Whether the probe runs at the end of tracing (`END`).
    pub fn in_end_probe(&self) -> bool {
        self.cx.provider.timing == Timing::End
    }

    /// Records that `map` is cleared in END (so nothing of it is printed at exit).
    pub fn cleared_in_end(&mut self, map: MapId) {
        self.an.maps[map.0].cleared_in_end = true;
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
        }),
        ty,
        span,
    }))
}

/// A typed statement use of `builtin`.
pub fn statement(builtin: &'static Builtin, args: Vec<TExpr>, payload: Payload) -> Option<Checked> {
    Some(Checked::Stmt(TStmtKind::Call(Call {
        builtin,
        args,
        payload,
    })))
}
