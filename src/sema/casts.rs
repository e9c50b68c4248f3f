//! Casts and `sizeof`: the type names bpftrace 0.17 takes and what a cast does to
//! the value.

use super::kernel;
use super::typed::*;
use super::{Analyzer, ProbeCx};
use crate::ast::{self, Span};

impl Analyzer<'_> {
    pub(super) fn cast(
        &mut self,
        cx: &mut ProbeCx,
        to: &ast::TypeName,
        operand: &ast::Expr,
        span: Span,
    ) -> Option<TExpr> {
        let inner = self.expr(cx, operand);
        // bpftrace 0.17 casts to its own integer names and to struct/union pointers
        // only: C names (`int`, `u32`, `void *`) and `(sock *)` are unknown to it.
        let tagged = ["struct ", "union "].iter().any(|k| to.name.starts_with(k));
        let ty = match kernel::bpftrace_int(&to.name) {
            Some(t) if to.pointer_depth == 0 => t,
            Some(_) => {
                let target = self.btf.find_type(int_c_name(&to.name))?;
                kernel::pointer_to(self.btf, target, to.pointer_depth)
            }
            None => match self.btf.find_type(&to.name).filter(|_| tagged) {
                Some(_) if to.pointer_depth == 0 => {
                    let msg = format!("Cannot cast to struct type \"{}\"", to.name);
                    self.error(to.span, msg);
                    return None;
                }
                Some(target) => kernel::pointer_to(self.btf, target, to.pointer_depth),
                None => {
                    self.error(to.span, format!("Unknown struct/union: '{}'", to.name));
                    return None;
                }
            },
        };
        let inner = inner?;
        if to.pointer_depth > 0 && !tagged && kernel::is_ctx_pointer(&inner) {
            self.error(
                span,
                "Integer pointer casts are not supported for type: ctx",
            );
            return None;
        }
        // bpftrace 0.17: a cast keeps its operand's address space, else takes the
        // probe type's.
        let space = match self.space_of(cx, &inner) {
            Space::Unset => cx.provider.space,
            space => space,
        };
        let ty = kernel::in_space(ty, space);
        if !inner.ty.is_scalar() {
            self.error(
                inner.span,
                format!(
                    "cannot cast '{}' to '{}'",
                    inner.ty.describe(),
                    ty.describe()
                ),
            );
            return None;
        }
        // bpftrace 0.17 widens by the target's signedness, not the operand's:
        // `(uint64)(int8)-1` is 255, `(int32)(uint8)255` is -1.
        let inner = match (&inner.ty, &ty) {
            (
                &Type::Int { size, signed },
                &Type::Int {
                    size: to,
                    signed: to_signed,
                },
            ) if size < to && signed != to_signed => {
                let span = inner.span;
                let reinterpreted = Type::Int {
                    size,
                    signed: to_signed,
                };
                TExpr {
                    kind: TExprKind::Cast(Box::new(inner)),
                    ty: reinterpreted,
                    span,
                }
            }
            _ => inner,
        };
        Some(TExpr {
            kind: TExprKind::Cast(Box::new(inner)),
            ty,
            span,
        })
    }
}

/// The C name of a bpftrace integer type, to find it in BTF for pointer casts.
fn int_c_name(name: &str) -> &'static str {
    match name {
        "int8" => "signed char",
        "uint8" => "unsigned char",
        "int16" => "short",
        "uint16" => "short unsigned int",
        "int32" => "int",
        "uint32" => "unsigned int",
        "int64" => "long long int",
        _ => "long long unsigned int",
    }
}
