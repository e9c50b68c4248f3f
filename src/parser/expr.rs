//! Expressions, with bpftrace's precedence (loosest first): `?:` (right), `||`,
//! `&&`, `|`, `^`, `&`, `== !=`, `< <= > >=`, `<< >>`, `+ -`, `* / %` (all left),
//! then casts and unary `! ~ - * &` (right), then postfix `. -> [] ++ --`.

use super::error::{PError, PResult};
use super::{is_builtin, lex, KEYWORDS, P};
use crate::ast::{BinOp, Expr, ExprKind, LValue, TypeName, UnaryOp};
use crate::diag::Span;

/// Binary operators with their binding strength (higher binds tighter).
fn binop(p: &str) -> Option<(BinOp, u8)> {
    use BinOp::*;
    Some(match p {
        "||" => (LogicalOr, 1),
        "&&" => (LogicalAnd, 2),
        "|" => (BitOr, 3),
        "^" => (BitXor, 4),
        "&" => (BitAnd, 5),
        "==" => (Eq, 6),
        "!=" => (Ne, 6),
        "<" => (Lt, 7),
        "<=" => (Le, 7),
        ">" => (Gt, 7),
        ">=" => (Ge, 7),
        "<<" => (Shl, 8),
        ">>" => (Shr, 8),
        "+" => (Add, 9),
        "-" => (Sub, 9),
        "*" => (Mul, 10),
        "/" => (Div, 10),
        "%" => (Mod, 10),
        _ => return None,
    })
}

/// `$x` or `@m[k]` as an assignment or `++` target.
pub fn lvalue(e: &Expr) -> Option<LValue> {
    match &e.kind {
        ExprKind::Var(name) => Some(LValue::Var {
            name: name.clone(),
            span: e.span,
        }),
        ExprKind::Map { name, keys } => Some(LValue::Map {
            name: name.clone(),
            keys: keys.clone(),
            span: e.span,
        }),
        _ => None,
    }
}

/// `++`/`--` (`op`) applied to `target`, before or after it; the error message when the
/// target is not a map or variable.
fn inc_dec(op: &str, target: &Expr, prefix: bool, span: Span) -> Result<Expr, String> {
    let Some(target) = lvalue(target) else {
        return Err(format!(
            "the {op} operator must be applied to a map or variable"
        ));
    };
    let kind = ExprKind::IncDec {
        target,
        increment: op == "++",
        prefix,
    };
    Ok(node(kind, span))
}

fn node(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

impl<'s> P<'s> {
    pub(super) fn expr(&self, i: &'s str) -> PResult<'s, Expr> {
        // No level of its own: every way back into `expr` passes `cast_expr` or a
        // block, which count, except the `?:` branches below.
        let (i, cond) = self.binary(i, 1)?;
        if self.peek(i) != Some("?") {
            return Ok((i, cond));
        }
        let _depth = self.enter(i)?;
        let (i, _) = self.sym(i, "?")?;
        let (i, then) = self.expr(i).map_err(cut)?;
        let (i, _) = self.sym(i, ":").map_err(cut)?;
        let (i, otherwise) = self.expr(i).map_err(cut)?;
        let span = cond.span.to(otherwise.span);
        let kind = ExprKind::Ternary {
            cond: Box::new(cond),
            then: Box::new(then),
            otherwise: Box::new(otherwise),
        };
        Ok((i, node(kind, span)))
    }

    /// Precedence climbing over the binary operators binding at least `min`.
    fn binary(&self, i: &'s str, min: u8) -> PResult<'s, Expr> {
        let (mut i, mut lhs) = self.cast_expr(i)?;
        // Each operator deepens the (left-leaning) tree: count it against the limit.
        let mut _depth = Vec::new();
        loop {
            let t = lex::ws_lenient(i);
            let Some((op, prec)) = lex::punct(t).and_then(|(p, _)| binop(p)) else {
                break;
            };
            if prec < min || lex::is_end_predicate(t) {
                break;
            }
            let (_, rest) = lex::punct(t).expect("matched above");
            _depth.push(self.link(t)?);
            let (rest, rhs) = self.binary(rest, prec + 1).map_err(cut)?;
            let span = lhs.span.to(rhs.span);
            lhs = node(
                ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            );
            i = rest;
        }
        Ok((i, lhs))
    }

    /// `(type) expr` or a unary expression.
    fn cast_expr(&self, i: &'s str) -> PResult<'s, Expr> {
        let _depth = self.enter(i)?;
        let (i, ()) = self.ws(i)?;
        if let Some((rest, ty)) = self.cast_head(i)? {
            let (rest, e) = self.cast_expr(rest).map_err(cut)?;
            let span = self.span(i, rest).to(ty.span).to(e.span);
            return Ok((
                rest,
                node(
                    ExprKind::Cast {
                        ty,
                        expr: Box::new(e),
                    },
                    span,
                ),
            ));
        }
        self.unary(i)
    }

    /// The `(type)` of a cast, if `i` starts with one. `(name)` is a cast only when an
    /// operand follows, as in bpftrace; `(struct x)` and `(name *)` always are.
    fn cast_head(&self, i: &'s str) -> Result<Option<(&'s str, TypeName)>, nom::Err<PError>> {
        let Some(after) = i.strip_prefix('(') else {
            return Ok(None);
        };
        let t = lex::ws_lenient(after);
        let Some((word, mut rest)) = lex::ident(t) else {
            return Ok(None);
        };
        let mut name = word.to_string();
        let tagged = matches!(word, "struct" | "union" | "enum");
        if tagged {
            let r = lex::ws_lenient(rest);
            let Some((tag, r)) = lex::ident(r) else {
                return PError::msg(
                    rest,
                    0,
                    format!("expected a type name after '{word}' in this cast"),
                )
                .fail();
            };
            name = format!("{word} {tag}");
            rest = r;
        } else if KEYWORDS.contains(&word) || is_builtin(word) || self.macro_body(word, t).is_some()
        {
            return Ok(None);
        }
        let mut ty_end = rest;
        let mut pointer_depth = 0u8;
        loop {
            let r = lex::ws_lenient(rest);
            match r.strip_prefix('*') {
                Some(r2) if !r2.starts_with('=') => {
                    pointer_depth = pointer_depth.saturating_add(1);
                    rest = r2;
                    ty_end = r2;
                }
                _ => break,
            }
        }
        let r = lex::ws_lenient(rest);
        let Some(after_paren) = r.strip_prefix(')') else {
            if tagged || pointer_depth > 0 {
                return PError::expected(r, ")")
                    .note(format!(
                        "in the cast to '{name}{}'",
                        "*".repeat(pointer_depth.into())
                    ))
                    .fail();
            }
            return Ok(None);
        };
        if !tagged && pointer_depth == 0 && !self.starts_operand(after_paren) {
            return Ok(None);
        }
        let ty = TypeName {
            name,
            pointer_depth,
            span: self.span(t, ty_end),
        };
        Ok(Some((after_paren, ty)))
    }

    /// Whether `i` begins something a cast can apply to.
    fn starts_operand(&self, i: &str) -> bool {
        let t = lex::ws_lenient(i);
        if let Some((word, _)) = lex::ident(t) {
            return !KEYWORDS.contains(&word);
        }
        t.starts_with(|c: char| c.is_ascii_digit() || "\"$@(".contains(c))
            || matches!(lex::punct(t), Some((p, _)) if ["-", "!", "~", "*", "&", "++", "--"].contains(&p))
    }

    fn unary(&self, i: &'s str) -> PResult<'s, Expr> {
        let op = match lex::punct(i) {
            Some(("!", _)) => UnaryOp::Not,
            Some(("~", _)) => UnaryOp::BitNot,
            Some(("-", _)) => UnaryOp::Neg,
            Some(("*", _)) => UnaryOp::Deref,
            // bpftrace 0.17 has no address-of operator.
            Some(("&", _)) => return PError::msg(i, 1, "syntax error, unexpected &").fail(),
            Some((p @ ("++" | "--"), rest)) => {
                let (rest, target) = self.primary(rest).map_err(cut)?;
                return match inc_dec(p, &target, true, self.span(i, rest)) {
                    Ok(e) => Ok((rest, e)),
                    Err(msg) => PError::msg(rest, 0, msg).at(target.span).fail(),
                };
            }
            _ => return self.postfix(i),
        };
        let (rest, e) = self.cast_expr(&i[1..]).map_err(cut)?;
        let span = self.span(i, rest).to(e.span);
        Ok((
            rest,
            node(
                ExprKind::Unary {
                    op,
                    expr: Box::new(e),
                },
                span,
            ),
        ))
    }

    fn postfix(&self, i: &'s str) -> PResult<'s, Expr> {
        let begin = lex::ws_lenient(i);
        let (mut i, mut e) = self.primary(i)?;
        // The operand's text with its parentheses: bpftrace's location of `(...)->f`.
        let operand = self.span(begin, i);
        let mut _depth = Vec::new();
        loop {
            let t = lex::ws_lenient(i);
            let Some((p, rest)) = lex::punct(t) else {
                break;
            };
            if matches!(p, "." | "->" | "[") {
                _depth.push(self.link(t)?);
            }
            match p {
                "." | "->" => {
                    let after = lex::ws_lenient(rest);
                    if p == "." && after.starts_with(|c: char| c.is_ascii_digit()) {
                        // `$t.0`: only decimal digits, so `$t.1.0` is two accesses.
                        let n = after
                            .find(|c: char| !c.is_ascii_digit())
                            .unwrap_or(after.len());
                        let (digits, rest) = after.split_at(n);
                        let Ok(index) = digits.parse::<u64>() else {
                            return PError::msg(after, n, "tuple index is too large").fail();
                        };
                        let span = e.span.to(self.span(after, rest));
                        e = node(
                            ExprKind::TupleElem {
                                expr: Box::new(e),
                                index,
                            },
                            span,
                        );
                        i = rest;
                        continue;
                    }
                    let (rest, (field, fspan)) = self.name(rest, "a field name").map_err(cut)?;
                    let span = match p {
                        "->" => e.span.to(operand).to(fspan),
                        _ => e.span.to(fspan),
                    };
                    let kind = ExprKind::Member {
                        expr: Box::new(e),
                        field: field.to_string(),
                        arrow: p == "->",
                    };
                    e = node(kind, span);
                    i = rest;
                }
                "[" => {
                    let (rest, index) = self.expr(rest).map_err(cut)?;
                    let (rest, close) = self.sym(rest, "]").map_err(cut)?;
                    let span = e.span.to(close);
                    e = node(
                        ExprKind::Index {
                            expr: Box::new(e),
                            index: Box::new(index),
                        },
                        span,
                    );
                    i = rest;
                }
                "++" | "--" => {
                    let span = e.span.to(self.span(t, rest));
                    return match inc_dec(p, &e, false, span) {
                        Ok(e) => Ok((rest, e)),
                        Err(msg) => PError::msg(t, 2, msg).fail(),
                    };
                }
                _ => break,
            }
        }
        Ok((i, e))
    }

    fn primary(&self, i: &'s str) -> PResult<'s, Expr> {
        let (i, ()) = self.ws(i)?;
        let Some(c) = i.chars().next() else {
            return PError::expected(i, "an expression").backtrack();
        };
        if c.is_ascii_digit() {
            let (rest, v) = lex::integer(i)?;
            return Ok((rest, node(ExprKind::Int(v), self.span(i, rest))));
        }
        if c == '"' {
            let (rest, s) = lex::string(i)?;
            return Ok((rest, node(ExprKind::Str(s), self.span(i, rest))));
        }
        if c == '$' {
            return match lex::ident(&i[1..]) {
                Some((name, rest)) => Ok((
                    rest,
                    node(ExprKind::Var(name.to_string()), self.span(i, rest)),
                )),
                None if i[1..].starts_with('#') => {
                    let rest = &i[2..];
                    Ok((rest, node(ExprKind::ParamCount, self.span(i, rest))))
                }
                None if i[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                    let n = 1 + i[1..]
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(i.len() - 1);
                    let rest = &i[n..];
                    // bpftrace 0.17's parser: parameters are numbered from 1.
                    match i[1..n].parse::<i64>() {
                        Ok(v) if v >= 1 => {
                            Ok((rest, node(ExprKind::Param(v as u64), self.span(i, rest))))
                        }
                        _ => PError::msg(
                            i,
                            n,
                            format!(
                                "param {} is out of integer range [1, {}]",
                                &i[..n],
                                i64::MAX
                            ),
                        )
                        .fail(),
                    }
                }
                None => PError::msg(i, 1, "'$' must be followed by a variable name").fail(),
            };
        }
        if c == '@' {
            return self.map(i);
        }
        if c == '(' {
            let (rest, e) = self.expr(&i[1..]).map_err(cut)?;
            if self.peek(rest) == Some(",") {
                // `(a, b, ...)`: a tuple (bpftrace's grammar wants two or more elements).
                let (rest, _) = self.sym(rest, ",")?;
                if self.peek(rest) == Some(")") {
                    return PError::expected(lex::ws_lenient(rest), "a tuple element").fail();
                }
                let (rest, more) = self.args(rest, ")")?;
                let elems = std::iter::once(e).chain(more).collect();
                return Ok((rest, node(ExprKind::Tuple(elems), self.span(i, rest))));
            }
            let (rest, _) = self.sym(rest, ")").map_err(cut)?;
            return Ok((rest, e));
        }
        let Some((name, rest)) = lex::ident(i) else {
            return PError::expected(i, "an expression").backtrack();
        };
        // `struct x` names a type, as bpftrace's lexer reads it: an identifier that
        // `sizeof()` takes (anywhere else sema reports it unknown).
        if matches!(name, "struct" | "union" | "enum") {
            let t = lex::ws_lenient(rest);
            if let Some((tag, rest)) = lex::ident(t).filter(|(w, _)| !KEYWORDS.contains(w)) {
                let ident = ExprKind::Ident(format!("{name} {tag}"));
                return Ok((rest, node(ident, self.span(i, rest))));
            }
        }
        if KEYWORDS.contains(&name) {
            return PError::expected(i, "an expression").backtrack();
        }
        let span = self.span(i, rest);
        if let Some(body) = self.macro_body(name, i) {
            return Ok((rest, self.expand(name, body, span, i)?));
        }
        if self.peek(rest) == Some("(") {
            let (rest, _) = self.sym(rest, "(")?;
            let (rest, args) = self.args(rest, ")")?;
            return Ok((
                rest,
                node(
                    ExprKind::Call {
                        name: name.to_string(),
                        args,
                    },
                    self.span(i, rest),
                ),
            ));
        }
        let kind = if is_builtin(name) {
            ExprKind::Builtin(name.into())
        } else {
            ExprKind::Ident(name.into())
        };
        Ok((rest, node(kind, span)))
    }

    /// `@name` or `@name[k1, k2]`.
    fn map(&self, i: &'s str) -> PResult<'s, Expr> {
        let (name, mut rest) = lex::ident(&i[1..]).unwrap_or(("", &i[1..]));
        let mut keys = Vec::new();
        if self.peek(rest) == Some("[") {
            let (r, _) = self.sym(rest, "[")?;
            let (r, k) = self.args(r, "]")?;
            if k.is_empty() {
                return PError::msg(r, 0, "a map key list '[]' cannot be empty")
                    .at(self.span(i, r))
                    .fail();
            }
            keys = k;
            rest = r;
        }
        Ok((
            rest,
            node(
                ExprKind::Map {
                    name: name.to_string(),
                    keys,
                },
                self.span(i, rest),
            ),
        ))
    }

    /// Comma-separated expressions up to and including `close`.
    pub(super) fn args(&self, i: &'s str, close: &'static str) -> PResult<'s, Vec<Expr>> {
        let mut out = Vec::new();
        if let Ok((rest, _)) = self.sym(i, close) {
            return Ok((rest, out));
        }
        let mut i = i;
        loop {
            let (rest, e) = self.expr(i).map_err(cut)?;
            out.push(e);
            match self.sym(rest, ",") {
                Ok((rest, _)) => i = rest,
                Err(e1) => {
                    let (rest, _) = self.sym(rest, close).map_err(|e2| cut(or(e1, e2)))?;
                    return Ok((rest, out));
                }
            }
        }
    }

    /// The body of `name` if it names a macro here (and is not being expanded).
    pub(super) fn macro_body(&self, name: &str, at: &'s str) -> Option<&'s str> {
        if self.sh.expanding.borrow().iter().any(|m| m == name) {
            return None;
        }
        let pos = self.macro_pos.unwrap_or_else(|| self.off(at));
        self.sh.macros.lookup(name, pos)
    }

    /// Parse a macro body as an expression; the result gets the use's span.
    fn expand(
        &self,
        name: &str,
        body: &'s str,
        span: Span,
        at: &'s str,
    ) -> Result<Expr, nom::Err<PError>> {
        if body.trim().is_empty() {
            let msg = format!(
                "macro '{name}' is defined without a value, so it cannot be used in an expression"
            );
            return PError::msg(at, name.len(), msg).at(span).fail();
        }
        let child = P {
            text: body,
            span_override: Some(span),
            macro_pos: Some(self.macro_pos.unwrap_or_else(|| self.off(at))),
            sh: self.sh,
        };
        self.sh.expanding.borrow_mut().push(name.to_string());
        let result = child.expr(body).and_then(|(rest, e)| {
            let (rest, ()) = child.ws(rest)?;
            match rest.is_empty() {
                true => Ok(e),
                false => PError::expected(rest, "the end of the macro body").backtrack(),
            }
        });
        self.sh.expanding.borrow_mut().pop();
        result.map_err(|e| {
            let d = child.to_diag(super::error::inner(e));
            let msg = format!(
                "in expansion of macro '{name}' (#define {name} {body}): {}",
                d.message
            );
            nom::Err::Failure(PError::msg(at, name.len(), msg).at(span))
        })
    }
}

/// Once a construct is recognised, a later error is final (nom's `cut`).
pub fn cut(e: nom::Err<PError>) -> nom::Err<PError> {
    match e {
        nom::Err::Error(e) => nom::Err::Failure(e),
        other => other,
    }
}

/// Merge two errors at the same place ("expecting ',' or ')'").
fn or(a: nom::Err<PError>, b: nom::Err<PError>) -> nom::Err<PError> {
    use nom::error::ParseError;
    match (a, b) {
        (nom::Err::Error(a), nom::Err::Error(b)) => nom::Err::Error(a.or(b)),
        (_, b) => b,
    }
}
