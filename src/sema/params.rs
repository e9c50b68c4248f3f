//! Positional parameters: `$1`.. are the command-line arguments after the script,
//! `$#` their number. As bpftrace 0.17: outside `str()` a parameter must be an integer
//! as C's `strtoll(s, 0)` reads it whole (`0x10`, `010`, `-3`), a missing one is 0;
//! inside `str()` it is the text (a missing one is empty), optionally with a constant
//! offset (`str($1 + 2)`).

use super::typed::*;
use super::Analyzer;
use crate::ast::{self, BinOp, ExprKind, Span};

impl Analyzer<'_> {
    /// `$n` used as a number.
    pub(super) fn param_number(&mut self, n: u64, span: Span) -> Option<TExpr> {
        let text = self.param(n).unwrap_or("0");
        let Some(v) = c_integer(text) else {
            let msg = format!("${n} used numerically but given \"{text}\". Try using str(${n}).");
            self.error(span, msg);
            return None;
        };
        Some(TExpr {
            kind: TExprKind::Int(v as u64),
            ty: Type::I64,
            span,
        })
    }

    /// `$#`.
    pub(super) fn param_count(&self, span: Span) -> TExpr {
        TExpr {
            kind: TExprKind::Int(self.params.len() as u64),
            ty: Type::I64,
            span,
        }
    }

    fn param(&self, n: u64) -> Option<&str> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        self.params.get(i).map(String::as_str)
    }

    /// The text `str(arg)` denotes when `arg` involves a positional parameter (`$1`,
    /// `$1 + k`, `k + $1`): `Some(Ok(text))`, `Some(Err(()))` after an error, `None`
    /// when `arg` has no parameter.
    pub(super) fn param_text(&mut self, arg: &ast::Expr, span: Span) -> Option<Result<String, ()>> {
        let (n, offset) = match &arg.kind {
            ExprKind::Param(n) => (*n, 0),
            ExprKind::ParamCount => {
                self.error(arg.span, "use $#, not str($#)");
                return Some(Err(()));
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let (n, other) = match (&lhs.kind, &rhs.kind) {
                    (ExprKind::Param(n), _) => (*n, rhs),
                    (_, ExprKind::Param(n)) => (*n, lhs),
                    _ if has_param(arg) => return self.only_direct(span),
                    _ => return None,
                };
                let len = self.param(n).unwrap_or("").len();
                match other.kind {
                    ExprKind::Int(k) if *op == BinOp::Add && k <= len as u64 => (n, k),
                    _ => {
                        let at = Span {
                            start: arg.span.start.min(rhs.span.start),
                            end: arg.span.end.max(rhs.span.end),
                        };
                        self.error(
                            at,
                            format!(
                                "only addition of a single constant less or equal to the length of ${n} (which is {len}) is allowed inside str()"
                            ),
                        );
                        return Some(Err(()));
                    }
                }
            }
            _ if has_param(arg) => return self.only_direct(span),
            _ => return None,
        };
        let text = self.param(n).unwrap_or("");
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        Some(Ok(String::from_utf8_lossy(
            text.as_bytes().get(skip..).unwrap_or(&[]),
        )
        .into_owned()))
    }

    fn only_direct(&mut self, span: Span) -> Option<Result<String, ()>> {
        self.error(
            span,
            "str() only accepts positional parameters directly or with a single constant offset added",
        );
        Some(Err(()))
    }
}

fn has_param(e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::Param(_) | ExprKind::ParamCount => true,
        ExprKind::Unary { expr, .. } | ExprKind::Cast { expr, .. } => has_param(expr),
        ExprKind::Binary { lhs, rhs, .. } => has_param(lhs) || has_param(rhs),
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => has_param(cond) || has_param(then) || has_param(otherwise),
        _ => false,
    }
}

/// `s` as C's `strtoll(s, &end, 0)` reads it, when it reads all of `s`: leading
/// whitespace, a sign, then hex (`0x`), octal (leading `0`) or decimal digits.
pub fn c_integer(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -magnitude } else { magnitude };
    i64::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::c_integer;

    #[test]
    fn integers_read_as_strtoll_base_0() {
        assert_eq!(c_integer("5"), Some(5));
        assert_eq!(c_integer("0x10"), Some(16));
        assert_eq!(c_integer("010"), Some(8));
        assert_eq!(c_integer("-3"), Some(-3));
        assert_eq!(c_integer(" 7"), Some(7));
        assert_eq!(c_integer("0"), Some(0));
        assert_eq!(c_integer("12abc"), None);
        assert_eq!(c_integer("0x"), None);
        assert_eq!(c_integer(""), None);
        assert_eq!(c_integer("foo"), None);
        assert_eq!(c_integer("9223372036854775808"), None);
    }
}
