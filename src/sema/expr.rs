//! Expressions: builtins, kernel member access, casts, operators and value-returning calls.

use super::stmt::convert;
use super::typed::*;
use super::{Analyzer, Checker, ProbeCx};
use crate::ast::{self, BinOp, ExprKind, Span, UnaryOp};
use crate::builtins::{self, Builtin, Checked, Form, Site};

impl Analyzer<'_> {
    pub(super) fn expr(&mut self, cx: &mut ProbeCx, e: &ast::Expr) -> Option<TExpr> {
        // Only the outermost expression of a map assignment may be an aggregation.
        let aggregation_allowed = std::mem::take(&mut self.aggregation_allowed);
        let span = e.span;
        let (kind, ty) = match &e.kind {
            ExprKind::Int(v) => {
                let ty = if *v > i64::MAX as u64 {
                    Type::U64
                } else {
                    Type::I64
                };
                (TExprKind::Int(*v), ty)
            }
            ExprKind::Str(s) => {
                // As bpftrace 0.17: format strings (taken by their builtins) are exempt.
                if s.len() > STRING_SIZE - 1 {
                    let msg = format!("String is too long (over {STRING_SIZE} bytes): {s}");
                    self.error(span, msg);
                    return None;
                }
                (TExprKind::Str(s.clone()), Type::Str { size: s.len() + 1 })
            }
            ExprKind::Var(name) => match cx.by_name.get(name) {
                Some(&id) if cx.vars[id.0].ctx => (TExprKind::CtxAddress, cx.vars[id.0].ty.clone()),
                Some(&id) => (TExprKind::Var(id), cx.vars[id.0].ty.clone()),
                None => {
                    if !cx.untyped.contains(name) {
                        self.error(span, format!("undefined variable '${name}'"));
                    }
                    return None;
                }
            },
            ExprKind::Param(n) => return self.param_number(*n, span),
            ExprKind::ParamCount => return Some(self.param_count(span)),
            ExprKind::Map { name, keys } => return self.map_read(cx, name, keys, span),
            ExprKind::IncDec {
                target,
                increment,
                prefix,
            } => return self.inc_dec_value(cx, target, *increment, *prefix, span),
            ExprKind::Builtin(name) | ExprKind::Ident(name) => return self.builtin(cx, name, span),
            ExprKind::Call { name, args } => {
                let value = self.call(cx, name, args, span)?;
                if matches!(value.ty, Type::Agg(_)) && !aggregation_allowed {
                    self.error(
                        span,
                        format!("{name}() should be directly assigned to a map"),
                    );
                    return None;
                }
                return Some(value);
            }
            ExprKind::Unary { op, expr } => return self.unary(cx, *op, expr, span),
            ExprKind::Binary { op, lhs, rhs } => {
                let lhs = self.expr(cx, lhs);
                let rhs = self.expr(cx, rhs);
                let (lhs, rhs) = (lhs?, rhs?);
                return self.binary(*op, lhs, rhs, span);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.expr(cx, cond);
                let then = self.expr(cx, then);
                let otherwise = self.expr(cx, otherwise);
                let (cond, then, otherwise) = (cond?, then?, otherwise?);
                self.expect_scalar(&cond, "a condition")?;
                if matches!(then.ty, Type::Tuple(_) | Type::Record(_) | Type::Mem { .. }) {
                    let kind = crate::builtins::type_kind_name(&then.ty);
                    self.error(span, format!("Ternary return type unsupported {kind}"));
                    return None;
                }
                let is_str = |t: &Type| matches!(t, Type::Str { .. });
                let ty = match (&then.ty, &otherwise.ty) {
                    // bpftrace 0.17: a string ternary is a BPFTRACE_STRLEN string.
                    (a, b) if is_str(a) && is_str(b) => Type::Str {
                        size: self.str_size,
                    },
                    (a, b) if a.is_scalar() && b.is_scalar() => match a == b {
                        true => a.clone(),
                        false => int_result(&then, &otherwise),
                    },
                    (a, b) if (is_str(a) && b.is_scalar()) || (a.is_scalar() && is_str(b)) => {
                        let name = |t: &Type| if is_str(t) { "string" } else { "integer" };
                        self.error(
                            span,
                            format!(
                                "Ternary operator must return the same type: have '{}' and '{}'",
                                name(a),
                                name(b)
                            ),
                        );
                        return None;
                    }
                    _ => {
                        self.error(
                            span,
                            "'?:' is only supported with integer, pointer or string branches yet",
                        );
                        return None;
                    }
                };
                // Strings are written into the result's space, padded or cut to it.
                let (then, otherwise) = match is_str(&ty) {
                    true => (then, otherwise),
                    false => (convert(then, &ty), convert(otherwise, &ty)),
                };
                let kind = TExprKind::Ternary {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                };
                (kind, ty)
            }
            ExprKind::Cast { ty, expr } => return self.cast(cx, ty, expr, span),
            ExprKind::Member { expr, field, arrow } => {
                let base = self.expr(cx, expr)?;
                return self.member(cx, base, field, *arrow, span);
            }
            ExprKind::Index { expr, index } => return self.index(cx, expr, index, span),
            ExprKind::Tuple(elems) => return self.tuple(cx, elems, span),
            ExprKind::TupleElem { expr, index } => return self.tuple_elem(cx, expr, *index, span),
        };
        Some(TExpr { kind, ty, span })
    }

    /// A bare name: a builtin variable, else a kernel enumerator.
    fn builtin(&mut self, cx: &mut ProbeCx, name: &str, span: Span) -> Option<TExpr> {
        if let Some((builtin, index)) = builtins::lookup(name, false) {
            let site = Site {
                name,
                index,
                args: &[],
                span,
            };
            return self.checked_value(cx, builtin, &site);
        }
        if let Some(v) = self.enumerator(name) {
            return Some(TExpr {
                kind: TExprKind::Int(v as u64),
                ty: Type::I64,
                span,
            });
        }
        let hint = did_you_mean(builtins::similar(name, false));
        self.error(span, format!("unknown identifier '{name}'{hint}"));
        None
    }

    /// `name(args)` where a value is wanted.
    fn call(
        &mut self,
        cx: &mut ProbeCx,
        name: &str,
        args: &[ast::Expr],
        span: Span,
    ) -> Option<TExpr> {
        let Some((builtin, index)) = builtins::lookup(name, true) else {
            let hint = did_you_mean(builtins::similar(name, true));
            self.error(span, format!("unknown function '{name}'{hint}"));
            return None;
        };
        if builtin.form == Form::Statement {
            self.error(
                span,
                format!("{name}() has no value; call it as a statement"),
            );
            return None;
        }
        let site = Site {
            name,
            index,
            args,
            span,
        };
        self.checked_value(cx, builtin, &site)
    }

    /// Runs `builtin`'s type rule where a value is wanted.
    fn checked_value(
        &mut self,
        cx: &mut ProbeCx,
        builtin: &'static Builtin,
        site: &Site<'_>,
    ) -> Option<TExpr> {
        match (builtin.check)(&mut Checker { an: self, cx }, site)? {
            Checked::Value(e) => Some(e),
            Checked::Stmt(_) => {
                self.error(
                    site.span,
                    format!("{}() has no value; call it as a statement", site.name),
                );
                None
            }
        }
    }

    fn unary(
        &mut self,
        cx: &mut ProbeCx,
        op: UnaryOp,
        operand: &ast::Expr,
        span: Span,
    ) -> Option<TExpr> {
        let inner = self.expr(cx, operand)?;
        match op {
            // bpftrace reads a u64 through an integer (`*kaddr("avenrun")`, loads.bt).
            UnaryOp::Deref if matches!(inner.ty, Type::Int { .. }) => {
                let space = self.space_of(cx, &inner);
                let place = Place {
                    base: Base::Mem {
                        ptr: Box::new(inner),
                        space,
                    },
                    offset: 0,
                };
                return Some(super::kernel::at_place(place, None, Type::U64, space, span));
            }
            UnaryOp::Deref => return self.deref(inner, 0, span),
            UnaryOp::AddrOf => {
                self.error(span, "'&' (address-of) is not supported yet");
                return None;
            }
            _ => {}
        }
        self.expect_scalar(&inner, "the operand")?;
        // `-1` and `~0` are constants: fold them so they stay immediate operands.
        if let (TExprKind::Int(v), UnaryOp::Neg | UnaryOp::BitNot) = (&inner.kind, op) {
            let v = if op == UnaryOp::Neg {
                v.wrapping_neg()
            } else {
                !v
            };
            return Some(TExpr {
                kind: TExprKind::Int(v),
                ty: Type::I64,
                span,
            });
        }
        let ty = match op {
            UnaryOp::Not => Type::U64,
            UnaryOp::Neg => Type::I64,
            _ => Type::Int {
                size: 8,
                signed: inner.ty.is_signed(),
            },
        };
        Some(TExpr {
            kind: TExprKind::Unary {
                op,
                expr: Box::new(inner),
            },
            ty,
            span,
        })
    }

    fn binary(&mut self, op: BinOp, lhs: TExpr, rhs: TExpr, span: Span) -> Option<TExpr> {
        let opaque = |t: &Type| {
            matches!(
                t,
                Type::Agg(_)
                    | Type::Username
                    | Type::Strerror
                    | Type::Tuple(_)
                    | Type::Stack { .. }
                    | Type::Ksym
                    | Type::Usym
            )
        };
        if opaque(&lhs.ty) || opaque(&rhs.ty) {
            let msg = format!(
                "Type mismatch for '{}': comparing '{}' with '{}'",
                op_text(op),
                lhs.ty.describe(),
                rhs.ty.describe()
            );
            self.error(span, msg);
            return None;
        }
        let (lhs, rhs) = match self.array_operands(op, lhs, rhs, span)? {
            Ok(compared) => return Some(compared),
            Err(operands) => operands,
        };
        let strings = matches!(
            (&lhs.ty, &rhs.ty),
            (Type::Str { .. }, Type::Str { .. }) | (Type::Buf { .. }, Type::Buf { .. })
        );
        if strings && matches!(op, BinOp::Eq | BinOp::Ne) {
            let kind = TExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
            return Some(TExpr {
                kind,
                ty: Type::U64,
                span,
            });
        }
        for side in [&lhs, &rhs] {
            if !side.ty.is_scalar() {
                self.error(
                    side.span,
                    format!(
                        "operands of '{}' must be integers or pointers, not '{}'",
                        op_text(op),
                        side.ty.describe()
                    ),
                );
                return None;
            }
        }
        if let Some(scaled) = self.pointer_arithmetic(op, &lhs, &rhs, span) {
            return Some(scaled);
        }
        let ty = match op {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => Type::U64,
            BinOp::LogicalAnd | BinOp::LogicalOr => Type::U64,
            _ => int_result(&lhs, &rhs),
        };
        let kind = TExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        };
        Some(TExpr { kind, ty, span })
    }

    /// `ptr + n`, `n + ptr`, `ptr - n`: as in C (and bpftrace 0.17, where
    /// `(uint32 *)0 + 2` is 8), `n` counts elements; the result keeps the pointer type.
    fn pointer_arithmetic(
        &mut self,
        op: BinOp,
        lhs: &TExpr,
        rhs: &TExpr,
        span: Span,
    ) -> Option<TExpr> {
        let (ptr, n) = match (op, &lhs.ty, &rhs.ty) {
            (BinOp::Add | BinOp::Sub, Type::Ptr { .. }, Type::Int { .. }) => (lhs, rhs),
            (BinOp::Add, Type::Int { .. }, Type::Ptr { .. }) => (rhs, lhs),
            _ => return None,
        };
        let Type::Ptr { target, depth, .. } = &ptr.ty else {
            return None;
        };
        let elem = if *depth > 1 {
            8
        } else {
            self.btf.size_of(*target).unwrap_or(0).max(1)
        };
        let scaled = TExpr {
            kind: TExprKind::Binary {
                op: BinOp::Mul,
                lhs: Box::new(n.clone()),
                rhs: Box::new(TExpr {
                    kind: TExprKind::Int(elem as u64),
                    ty: Type::I64,
                    span: n.span,
                }),
            },
            ty: Type::I64,
            span: n.span,
        };
        Some(TExpr {
            kind: TExprKind::Binary {
                op,
                lhs: Box::new(ptr.clone()),
                rhs: Box::new(scaled),
            },
            ty: ptr.ty.clone(),
            span,
        })
    }
}

impl Analyzer<'_> {
    /// `x++`, `++x` (and `--`) used as a value, as bpftrace 0.17 evaluates them: the
    /// update happens, and the value is the old one (postfix) or the new one (prefix).
    fn inc_dec_value(
        &mut self,
        cx: &mut ProbeCx,
        target: &ast::LValue,
        increment: bool,
        prefix: bool,
        span: Span,
    ) -> Option<TExpr> {
        let read = ast::Expr {
            kind: match target {
                ast::LValue::Var { name, .. } => ExprKind::Var(name.clone()),
                ast::LValue::Map { name, keys, .. } => ExprKind::Map {
                    name: name.clone(),
                    keys: keys.clone(),
                },
            },
            span,
        };
        let one = ast::Expr {
            kind: ExprKind::Int(1),
            span,
        };
        self.inc_dec_target(cx, &read, increment, span)?;
        let op = if increment { BinOp::Add } else { BinOp::Sub };
        // Typed before the read, so a map first assigned here has its type; it runs after.
        let update = TStmt {
            kind: self.assign(cx, target, Some(op), &one, span)?,
            span,
        };
        let old = if prefix {
            None
        } else {
            Some(self.expr(cx, &read)?)
        };
        let (stmts, value) = match old {
            None => (vec![update], self.expr(cx, &read)?),
            Some(old) => {
                let tmp = VarId(cx.vars.len());
                cx.vars.push(Var {
                    name: String::new(),
                    ty: old.ty.clone(),
                    space: self.space_of(cx, &old),
                    ctx: false,
                });
                let value = TExpr {
                    kind: TExprKind::Var(tmp),
                    ty: old.ty.clone(),
                    span,
                };
                let save = TStmt {
                    kind: TStmtKind::Assign {
                        var: tmp,
                        value: old,
                    },
                    span,
                };
                (vec![save, update], value)
            }
        };
        if !value.ty.is_scalar() {
            self.expect_scalar(&value, "the operand of '++'/'--'")?;
        }
        Some(TExpr {
            ty: value.ty.clone(),
            kind: TExprKind::Effect {
                stmts,
                value: Box::new(value),
            },
            span,
        })
    }

    /// `++`/`--` apply to integers and pointers only (bpftrace's message otherwise).
    pub(super) fn inc_dec_target(
        &mut self,
        cx: &mut ProbeCx,
        read: &ast::Expr,
        increment: bool,
        span: Span,
    ) -> Option<()> {
        let before = self.diags.len();
        let ty = self.expr(cx, read).map(|e| e.ty);
        // A target not typed yet (a map first assigned here) is the assignment's to report.
        self.diags.truncate(before);
        match ty {
            Some(Type::Int { .. } | Type::Ptr { .. }) | None => Some(()),
            Some(ty) => {
                let op = if increment { "++" } else { "--" };
                let msg = format!(
                    "The {op} operator can not be used on expressions of type '{}'",
                    ty.describe()
                );
                self.error(span, msg);
                None
            }
        }
    }
}

/// The type of integer arithmetic, as bpftrace 0.17 types it: 64 bits, signed only when
/// both operands are.
fn int_result(lhs: &TExpr, rhs: &TExpr) -> Type {
    Type::Int {
        size: 8,
        signed: lhs.ty.is_signed() && rhs.ty.is_signed(),
    }
}

pub(super) fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::BitAnd => "&",
        BinOp::BitOr => "|",
        BinOp::BitXor => "^",
        BinOp::Shl => "<<",
        BinOp::Shr => ">>",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::LogicalAnd => "&&",
        BinOp::LogicalOr => "||",
    }
}

/// `"; did you mean 'NAME'?"` for a close registered name.
fn did_you_mean(name: Option<&str>) -> String {
    name.map_or_else(String::new, |n| format!("; did you mean '{n}'?"))
}

impl Analyzer<'_> {
    /// The address space bpftrace 0.17 gives a value (integers carry one too: a
    /// syscall tracepoint's integer field is a user address). Builtins such as `arg0`
    /// have the probe type's space, which is also what a cast of an unset one takes.
    pub(super) fn space_of(&self, cx: &ProbeCx, e: &TExpr) -> Space {
        if let Type::Ptr { space, .. } = e.ty {
            return space;
        }
        match &e.kind {
            TExprKind::Load { place, .. } | TExprKind::InMemory(place) => match &place.base {
                Base::Mem { space, .. } => *space,
                Base::Ctx => cx.args_space,
            },
            TExprKind::Cast(inner)
            | TExprKind::Unary { expr: inner, .. }
            | TExprKind::Effect { value: inner, .. } => self.space_of(cx, inner),
            TExprKind::Field { expr, .. } => self.space_of(cx, expr),
            TExprKind::Binary { lhs, rhs, .. } => {
                self.space_of(cx, lhs).combine(self.space_of(cx, rhs))
            }
            TExprKind::Var(id) => cx.vars.get(id.0).map_or(Space::Unset, |v| v.space),
            TExprKind::Call(Call {
                payload: Payload::InSpace(space),
                ..
            }) => *space,
            TExprKind::CtxAddress => cx.args_space,
            TExprKind::Int(_)
            | TExprKind::Str(_)
            | TExprKind::Call(_)
            | TExprKind::Ternary { .. }
            | TExprKind::Tuple(_)
            | TExprKind::TupleElem { .. }
            | TExprKind::MapRead { .. } => Space::Unset,
        }
    }
}
