//! Tuples, typed as bpftrace 0.17 types them: `(a, b, ...)` has the types of its
//! elements (integers keep their width), `t.N` reads element N. A variable or map
//! holding tuples grows each string element to the largest assigned
//! (`update_string_size`); a later tuple must then fit (`SizedType::FitsInto`): the same
//! number of elements, each of the same type, strings no larger.

use super::typed::*;
use super::{Analyzer, ProbeCx};
use crate::ast::{self, Span};

impl Analyzer<'_> {
    /// `(a, b, ...)`
    pub(super) fn tuple(
        &mut self,
        cx: &mut ProbeCx,
        elems: &[ast::Expr],
        span: Span,
    ) -> Option<TExpr> {
        let elems: Vec<_> = elems
            .iter()
            .map(|e| self.expr(cx, e).and_then(|e| self.value_of(e)))
            .collect();
        let elems: Vec<TExpr> = elems.into_iter().collect::<Option<_>>()?;
        for e in &elems {
            let storable = matches!(
                e.ty,
                Type::Str { .. }
                    | Type::Tuple(_)
                    | Type::Inet
                    | Type::Username
                    | Type::Strerror
                    | Type::Record(_)
                    | Type::Timestamp { .. }
                    | Type::CgroupPath { .. }
            );
            if !(e.ty.is_scalar() || storable) {
                self.error(
                    e.span,
                    format!(
                        "a tuple element must be an integer, pointer, string, inet, username or tuple, not '{}'",
                        e.ty.describe()
                    ),
                );
                return None;
            }
        }
        let ty = Type::Tuple(elems.iter().map(|e| e.ty.clone()).collect());
        Some(TExpr {
            kind: TExprKind::Tuple(elems),
            ty,
            span,
        })
    }

    /// `t.N`
    pub(super) fn tuple_elem(
        &mut self,
        cx: &mut ProbeCx,
        base: &ast::Expr,
        index: u64,
        span: Span,
    ) -> Option<TExpr> {
        let base = self.expr(cx, base)?;
        let Type::Tuple(elems) = &base.ty else {
            self.error(
                span,
                format!(
                    "Can not access index {index} on expression of type '{}'",
                    base.ty.describe()
                ),
            );
            return None;
        };
        let Some(ty) = usize::try_from(index).ok().and_then(|i| elems.get(i)) else {
            self.error(
                span,
                format!(
                    "Invalid tuple index: {index}. Found {} elements in tuple.",
                    elems.len()
                ),
            );
            return None;
        };
        let ty = ty.clone();
        Some(TExpr {
            kind: TExprKind::TupleElem {
                expr: Box::new(base),
                index: index as usize,
            },
            ty,
            span,
        })
    }

    /// A tuple `value` assigned where tuples of type `stored` are kept: `stored` grows
    /// to hold it; reports bpftrace's error when it does not fit.
    pub(super) fn store_tuple(
        &mut self,
        stored: &mut Type,
        value: &Type,
        span: Span,
    ) -> Option<()> {
        widen(stored, value);
        if fits_into(value, stored) {
            return Some(());
        }
        let msg = format!(
            "Tuple type mismatch: {} != {}.",
            stored.describe(),
            value.describe()
        );
        self.error(span, msg);
        None
    }
}

/// bpftrace's `update_string_size`: strings (also inside tuples with as many elements)
/// grow to the larger size.
pub(super) fn widen(stored: &mut Type, new: &Type) {
    match (stored, new) {
        (Type::Str { size }, Type::Str { size: other }) => *size = (*size).max(*other),
        (Type::Tuple(have), Type::Tuple(new)) if have.len() == new.len() => {
            for (h, n) in have.iter_mut().zip(new) {
                widen(h, n);
            }
        }
        _ => {}
    }
}

/// bpftrace's `SizedType::FitsInto`: whether a `value` can be stored as `into`.
fn fits_into(value: &Type, into: &Type) -> bool {
    match (value, into) {
        (Type::Str { size }, Type::Str { size: cap }) => size <= cap,
        (Type::Tuple(v), Type::Tuple(i)) => {
            v.len() == i.len() && v.iter().zip(i).all(|(a, b)| fits_into(a, b))
        }
        _ => value == into,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(size: u8) -> Type {
        Type::Int { size, signed: true }
    }

    #[test]
    fn layout_matches_bpftrace_sizeof() {
        // Measured with bpftrace 0.17 `print(sizeof(...))` (and upstream's
        // tests/runtime/tuples "tuple struct sizing" and "complex tuple 4").
        let s = |n| Type::Str { size: n };
        let cases = [
            (vec![int(1), int(8), int(1), int(8)], 32),
            (vec![int(1), int(2), int(4)], 8),
            (vec![int(4), int(2), int(1)], 8),
            (
                vec![
                    int(1),
                    int(1),
                    s(7),
                    int(8),
                    int(4),
                    int(8),
                    int(1),
                    int(2),
                    s(4),
                ],
                48,
            ),
            (
                vec![
                    s(2),
                    int(2),
                    s(4),
                    int(1),
                    int(8),
                    Type::Tuple(vec![int(1), s(2)]),
                    int(4),
                ],
                32,
            ),
            (vec![s(2), s(2)], 4),
        ];
        for (elems, size) in cases {
            assert_eq!(tuple_layout(&elems).size, size, "{elems:?}");
        }
        let l = tuple_layout(&[s(2), int(2), s(4), int(1), int(8)]);
        assert_eq!(l.offsets, [0, 2, 4, 8, 16]);
    }

    #[test]
    fn strings_widen_and_must_fit() {
        let mut stored = Type::Tuple(vec![int(8), Type::Str { size: 2 }]);
        let wider = Type::Tuple(vec![int(8), Type::Str { size: 7 }]);
        widen(&mut stored, &wider);
        assert_eq!(stored, wider);
        assert!(fits_into(
            &Type::Tuple(vec![int(8), Type::Str { size: 3 }]),
            &stored
        ));
        assert!(!fits_into(
            &Type::Tuple(vec![int(1), Type::Str { size: 3 }]),
            &stored
        ));
        assert!(!fits_into(&Type::Tuple(vec![int(8)]), &stored));
    }
}
