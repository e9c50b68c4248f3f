//! Statements: assignments (with bpftrace's variable typing), control flow, and
//! builtins called as statements (their entries in `builtins/` type them).

use super::typed::*;
use super::{Analyzer, Checker, ProbeCx};
use crate::ast::{self, ExprKind, LValue, Span, StmtKind};
use crate::builtins::{self, Builtin, Checked, Site};

impl Analyzer<'_> {
    pub(super) fn block(&mut self, cx: &mut ProbeCx, block: &ast::Block) -> Vec<TStmt> {
        block
            .stmts
            .iter()
            .filter_map(|s| self.stmt(cx, s))
            .collect()
    }

    fn stmt(&mut self, cx: &mut ProbeCx, stmt: &ast::Stmt) -> Option<TStmt> {
        let span = stmt.span;
        let kind = match &stmt.kind {
            StmtKind::Expr(e) => match &e.kind {
                ExprKind::Call { name, args } => match builtins::lookup(name, true) {
                    Some((builtin, index)) => {
                        let site = Site {
                            name,
                            index,
                            args,
                            span: e.span,
                        };
                        self.call_stmt(cx, builtin, &site)?
                    }
                    None => TStmtKind::Expr(self.expr(cx, e)?),
                },
                ExprKind::IncDec {
                    target, increment, ..
                } => {
                    let op = if *increment {
                        ast::BinOp::Add
                    } else {
                        ast::BinOp::Sub
                    };
                    let one = ast::Expr {
                        kind: ExprKind::Int(1),
                        span: e.span,
                    };
                    let read = ast::Expr {
                        kind: match target {
                            LValue::Var { name, .. } => ExprKind::Var(name.clone()),
                            LValue::Map { name, keys, .. } => ExprKind::Map {
                                name: name.clone(),
                                keys: keys.clone(),
                            },
                        },
                        span: e.span,
                    };
                    self.inc_dec_target(cx, &read, *increment, e.span)?;
                    self.assign(cx, target, Some(op), &one, e.span)?
                }
                ExprKind::Ternary {
                    cond,
                    then,
                    otherwise,
                } if no_value(then) || no_value(otherwise) => {
                    self.statement_ternary(cx, cond, then, otherwise, e.span)?
                }
                _ => TStmtKind::Expr(self.expr(cx, e)?),
            },
            StmtKind::Assign { target, op, value } => self.assign(cx, target, *op, value, span)?,
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.condition(cx, cond);
                let then = self.block(cx, then);
                let otherwise = otherwise
                    .as_ref()
                    .map(|b| self.block(cx, b))
                    .unwrap_or_default();
                TStmtKind::If {
                    cond: cond?,
                    then,
                    otherwise,
                }
            }
            StmtKind::While { cond, body } => {
                let cond = self.condition(cx, cond);
                let body = self.block(cx, body);
                TStmtKind::While { cond: cond?, body }
            }
            StmtKind::Unroll { count, body } => {
                let n = self.unroll_count(cx, count, span);
                let body = self.block(cx, body);
                let n = n?;
                TStmtKind::Block((0..n).flat_map(|_| body.iter().cloned()).collect())
            }
            StmtKind::Return => TStmtKind::Return,
        };
        Some(TStmt { kind, span })
    }

    /// `unroll(n)`'s count: 1 to 100, as bpftrace 0.17 allows.
    fn unroll_count(&mut self, cx: &mut ProbeCx, count: &ast::Expr, span: Span) -> Option<u64> {
        let shape_ok = match &count.kind {
            ExprKind::Int(_) | ExprKind::Param(_) | ExprKind::ParamCount => true,
            ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                expr,
            } => matches!(expr.kind, ExprKind::Int(_)),
            _ => false,
        };
        if !shape_ok {
            self.error(count.span, "unroll takes an integer, '-' integer, $N or $#");
            return None;
        }
        let TExprKind::Int(v) = self.expr(cx, count)?.kind else {
            self.error(count.span, "invalid unroll value");
            return None;
        };
        match v as i64 {
            ..=0 => {
                self.error(span, "unroll minimum value is 1");
                None
            }
            101.. => {
                self.error(span, "unroll maximum value is 100");
                None
            }
            n => Some(n as u64),
        }
    }

    /// `c ? printf("a") : exit()` as a statement: bpftrace 0.17 types a ternary whose
    /// branches have no value `none` and runs one branch; here it is an if/else. One
    /// branch with a value and one without is bpftrace's type mismatch.
    fn statement_ternary(
        &mut self,
        cx: &mut ProbeCx,
        cond: &ast::Expr,
        then: &ast::Expr,
        otherwise: &ast::Expr,
        span: Span,
    ) -> Option<TStmtKind> {
        let cond = self.expr(cx, cond);
        let (a, b) = (no_value(then), no_value(otherwise));
        if a != b {
            let valued = if a { otherwise } else { then };
            let kind = builtins::type_kind_name(&self.expr(cx, valued)?.ty);
            let (l, r) = if a { ("none", kind) } else { (kind, "none") };
            self.error(
                span,
                format!("Ternary operator must return the same type: have '{l}' and '{r}'"),
            );
            return None;
        }
        let cond = cond?;
        if !cond.ty.is_scalar() {
            let kind = builtins::type_kind_name(&cond.ty);
            self.error(span, format!("Invalid condition in ternary: {kind}"));
            return None;
        }
        let mut branch = |e: &ast::Expr| {
            let stmt = ast::Stmt {
                kind: StmtKind::Expr(e.clone()),
                span: e.span,
            };
            self.stmt(cx, &stmt)
        };
        let (then, otherwise) = (branch(then), branch(otherwise));
        Some(TStmtKind::If {
            cond,
            then: vec![then?],
            otherwise: vec![otherwise?],
        })
    }

    fn condition(&mut self, cx: &mut ProbeCx, cond: &ast::Expr) -> Option<TExpr> {
        let e = self.expr(cx, cond)?;
        self.expect_scalar(&e, "a condition")?;
        Some(e)
    }

    pub(super) fn assign(
        &mut self,
        cx: &mut ProbeCx,
        target: &LValue,
        op: Option<ast::BinOp>,
        value: &ast::Expr,
        span: Span,
    ) -> Option<TStmtKind> {
        let (name, target_span) = match target {
            LValue::Var { name, span } => (name, *span),
            LValue::Map {
                name,
                keys,
                span: map_span,
            } => {
                return self.map_assign(cx, (name, keys, *map_span), op, value, span);
            }
        };
        let Some(value) = self.assigned_value(cx, name, target_span, op, value, span) else {
            if !cx.by_name.contains_key(name) {
                cx.untyped.insert(name.clone());
            }
            return None;
        };
        let ctx = super::kernel::is_ctx_pointer(&value);
        if let Some(&id) = cx.by_name.get(name) {
            if cx.vars[id.0].ctx != ctx {
                // A read through it would need to know which it holds: the context is
                // read directly, other memory through the helper.
                self.error(
                    value.span,
                    format!("${name} cannot hold both ctx and another pointer"),
                );
                return None;
            }
        }
        let Some(&id) = cx.by_name.get(name) else {
            let id = VarId(cx.vars.len());
            let space = self.space_of(cx, &value);
            cx.vars.push(Var {
                name: name.clone(),
                ty: value.ty.clone(),
                space,
                ctx,
            });
            cx.by_name.insert(name.clone(), id);
            return Some(TStmtKind::Assign { var: id, value });
        };
        let stored = cx.vars[id.0].ty.clone();
        let value = match (&stored, &value.ty) {
            (Type::Int { .. }, Type::Int { .. }) => convert(value, &stored),
            (Type::Ptr { name: a, .. }, Type::Ptr { name: b, .. }) if a == b => value,
            (Type::Str { size: have }, Type::Str { size }) => {
                // The variable grows to its largest string (see `finalize`).
                cx.vars[id.0].ty = Type::Str {
                    size: (*have).max(*size),
                };
                value
            }
            (Type::Tuple(_), Type::Tuple(_)) => {
                // Widened as bpftrace does; the value keeps its own layout (see codegen).
                let mut ty = stored.clone();
                self.store_tuple(&mut ty, &value.ty, span)?;
                cx.vars[id.0].ty = ty;
                value
            }
            (Type::Inet, Type::Inet)
            | (Type::MacAddr, Type::MacAddr)
            | (Type::Username, Type::Username)
            | (Type::Strerror, Type::Strerror)
            | (Type::Ksym, Type::Ksym)
            | (Type::Usym, Type::Usym) => value,
            (Type::CgroupPath { size: have }, Type::CgroupPath { size }) if have == size => value,
            // bpftrace compares no stack type: the first one's is kept.
            (Type::Stack { user: a, .. }, Type::Stack { user: b, .. }) if a == b => value,
            (Type::Buf { size: have }, Type::Buf { size }) if have == size => value,
            (Type::Record(a), Type::Record(b)) if a == b => value,
            _ => {
                self.error(
                    span,
                    format!(
                        "Type mismatch for ${name}: trying to assign value of type '{}' when variable already contains a value of type '{}'",
                        value.ty.describe(),
                        stored.describe()
                    ),
                );
                return None;
            }
        };
        Some(TStmtKind::Assign { var: id, value })
    }

    /// The value a `$name = value` (or `$name op= value`) assignment stores, if it has
    /// a type a variable can hold.
    fn assigned_value(
        &mut self,
        cx: &mut ProbeCx,
        name: &str,
        target_span: Span,
        op: Option<ast::BinOp>,
        value: &ast::Expr,
        span: Span,
    ) -> Option<TExpr> {
        let target = ast::Expr {
            kind: ExprKind::Var(name.to_string()),
            span: target_span,
        };
        let value = self.stored_value(cx, target, op, value, span)?;
        let value = self.value_of(value)?;
        match &value.ty {
            Type::Void => {
                self.error(value.span, "this expression has no value to assign");
                None
            }
            Type::Mem { name: ty, .. } => {
                self.error(
                    value.span,
                    format!("assigning '{ty}' (a struct, union or array) to a variable is not supported"),
                );
                None
            }
            _ => Some(value),
        }
    }

    /// The value `target = value` stores, or for `target op= value` (and `++`, `--`) the
    /// expression `target op value`, typed like any binary expression.
    pub(super) fn stored_value(
        &mut self,
        cx: &mut ProbeCx,
        target: ast::Expr,
        op: Option<ast::BinOp>,
        value: &ast::Expr,
        span: Span,
    ) -> Option<TExpr> {
        let Some(op) = op else {
            return self.expr(cx, value);
        };
        let combined = ast::Expr {
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(target),
                rhs: Box::new(value.clone()),
            },
            span,
        };
        self.expr(cx, &combined)
    }

    /// A builtin called as a statement: statements and functions alike (a function's
    /// value is discarded).
    fn call_stmt(
        &mut self,
        cx: &mut ProbeCx,
        builtin: &'static Builtin,
        site: &Site<'_>,
    ) -> Option<TStmtKind> {
        Some(
            match (builtin.check)(&mut Checker { an: self, cx }, site)? {
                Checked::Value(e) if matches!(e.ty, Type::Agg(_)) => {
                    let msg = format!("{}() should be directly assigned to a map", site.name);
                    self.error(site.span, msg);
                    return None;
                }
                Checked::Value(e) => TStmtKind::Expr(e),
                Checked::Stmt(TStmtKind::Call(call)) => TStmtKind::Call(Call {
                    span: site.span,
                    ..call
                }),
                Checked::Stmt(kind) => kind,
            },
        )
    }
}

/// `value` as an integer of type `to` (a no-op when the types already agree).
pub(super) fn convert(value: TExpr, to: &Type) -> TExpr {
    if &value.ty == to {
        return value;
    }
    let span = value.span;
    TExpr {
        kind: TExprKind::Cast(Box::new(value)),
        ty: to.clone(),
        span,
    }
}

/// Whether `e` has no value: a statement-only builtin call (`printf`, `exit`), or a
/// ternary of such.
fn no_value(e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::Call { name, .. } => {
            builtins::lookup(name, true).is_some_and(|(b, _)| b.form == builtins::Form::Statement)
        }
        ExprKind::Ternary {
            then, otherwise, ..
        } => no_value(then) && no_value(otherwise),
        _ => false,
    }
}
