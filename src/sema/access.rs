//! Kernel data access: `.`/`->` member access, `[]` indexing and `*` dereference, all
//! folded into memory reads at offsets known from BTF.

use super::kernel::{self, at_place, pointee};
use super::tracefs::Field;
use super::typed::*;
use super::{Analyzer, Args, Param, ProbeCx};
use crate::ast::{self, ExprKind, Span};
use crate::btf::TypeKind;

impl Analyzer<'_> {
    /// `base.field` / `base->field`. `.` on a pointer to a struct reads through it, as
    /// newer bpftrace allows.
    pub(super) fn member(
        &mut self,
        cx: &ProbeCx,
        base: TExpr,
        field: &str,
        arrow: bool,
        span: Span,
    ) -> Option<TExpr> {
        if let (
            TExprKind::InMemory(Place {
                base: Base::Ctx, ..
            }),
            Some(Args::Format(fields)),
        ) = (&base.kind, &cx.args)
        {
            return self.format_field(fields, field, cx.args_space, span);
        }
        if let (
            TExprKind::InMemory(Place {
                base: Base::Ctx, ..
            }),
            Some(Args::Params(params)),
        ) = (&base.kind, &cx.args)
        {
            return self.fn_param(params, field, arrow, &base.ty, cx.args_space, span);
        }
        if let Type::Record(_) = base.ty {
            return self.record_member(base, field, span);
        }
        let (agg, place) = match (&base.ty, base.kind) {
            (
                Type::Ptr {
                    target, depth: 1, ..
                },
                kind,
            ) if kernel::is_aggregate(self.btf, *target) => {
                let target = *target;
                let ptr = TExpr {
                    kind,
                    ty: base.ty.clone(),
                    span: base.span,
                };
                (target, pointee(ptr, 0))
            }
            (Type::Mem { ty, .. }, TExprKind::InMemory(place))
                if kernel::is_aggregate(self.btf, *ty) =>
            {
                if arrow && place.base != Base::Ctx {
                    self.error(
                        span,
                        format!(
                            "'->' on '{}', which is not a pointer; use '.'",
                            base.ty.describe()
                        ),
                    );
                    return None;
                }
                (*ty, place)
            }
            (ty, _) => {
                self.error(
                    span,
                    format!(
                        "cannot access member '{field}' of '{}': not a struct, union or pointer to one",
                        ty.describe()
                    ),
                );
                return None;
            }
        };
        self.uses_tag(agg);
        let in_ctx = place.base == Base::Ctx;
        let data_loc = format!("__data_loc_{field}");
        match kernel::member(self.btf, agg, field) {
            // A BTF tracepoint record names a `__data_loc` field `__data_loc_<name>`.
            Err(_) if in_ctx && self.btf.member(agg, &data_loc).is_some() => {
                let m = kernel::member(self.btf, agg, &data_loc).ok()?;
                Some(data_loc_value(place.offset + m.byte_offset, span))
            }
            Ok(m) => {
                let place = Place {
                    offset: place.offset.wrapping_add(m.byte_offset),
                    ..place
                };
                Some(at_place(place, m.bitfield, m.ty, cx.args_space, span))
            }
            Err(msg) => {
                // Point at the member name, which ends the expression.
                let len = field.len() as u32;
                let at = if span.end - span.start > len {
                    Span {
                        start: span.end - len,
                        end: span.end,
                    }
                } else {
                    span
                };
                self.error(at, msg);
                None
            }
        }
    }

    pub(super) fn index(
        &mut self,
        cx: &mut ProbeCx,
        base: &ast::Expr,
        index: &ast::Expr,
        span: Span,
    ) -> Option<TExpr> {
        let base = self.expr(cx, base)?;
        // A constant, or what folds to one (a positional parameter).
        let i = match index.kind {
            ExprKind::Int(i) => i,
            _ => match self.expr(cx, index)?.kind {
                TExprKind::Int(i) => i,
                _ => {
                    self.error(index.span, "only constant array indexes are supported yet");
                    return None;
                }
            },
        };
        match (&base.ty, &base.kind) {
            (Type::Record(_), _) => self.record_index(base, i, span),
            (Type::Mem { ty, .. }, TExprKind::InMemory(place)) => {
                let TypeKind::Array { elem, len } = self.btf.kind(*ty) else {
                    self.error(span, format!("cannot index '{}'", base.ty.describe()));
                    return None;
                };
                if i >= len as u64 {
                    let msg = format!("the index {i} is out of bounds for array of size {len}");
                    self.error(span, msg);
                    return None;
                }
                let ty = match kernel::value_type(self.btf, elem) {
                    Ok(t) => t,
                    Err(msg) => {
                        self.error(span, msg);
                        return None;
                    }
                };
                let elem_size = self.btf.size_of(elem).unwrap_or(0) as u64;
                let offset = place.offset.wrapping_add(i.wrapping_mul(elem_size) as u32);
                Some(at_place(
                    Place {
                        base: place.base.clone(),
                        offset,
                    },
                    None,
                    ty,
                    cx.args_space,
                    span,
                ))
            }
            (Type::Ptr { .. }, _) => self.deref(base, i, span),
            (ty, _) => {
                let found = match ty {
                    Type::Str { .. } => "string".to_string(),
                    Type::Int { .. } => "integer".to_string(),
                    ty => ty.describe(),
                };
                self.error(
                    span,
                    format!("The array index operator [] can only be used on arrays and pointers, found {found}."),
                );
                None
            }
        }
    }

    /// `args->field` of a tracepoint whose record comes from its tracefs format file.
    fn format_field(
        &mut self,
        fields: &[Field],
        name: &str,
        space: Space,
        span: Span,
    ) -> Option<TExpr> {
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            self.error(span, format!("the tracepoint has no argument '{name}'"));
            return None;
        };
        match &field.ty {
            Ok(_) if field.data_loc => Some(data_loc_value(field.offset, span)),
            Ok(ty) => {
                let place = Place {
                    base: Base::Ctx,
                    offset: field.offset,
                };
                Some(at_place(place, None, ty.clone(), space, span))
            }
            Err(why) => {
                self.error(span, why.clone());
                None
            }
        }
    }

    /// `args->name` at a uprobe: parameter `name`'s argument register (bpftrace 0.17's
    /// `is_funcarg`), typed from debug info.
    fn fn_param(
        &mut self,
        params: &[Param],
        name: &str,
        arrow: bool,
        args: &Type,
        space: Space,
        span: Span,
    ) -> Option<TExpr> {
        if !arrow {
            let message = format!(
                "Can not access field '{name}' on type '{}'. Try dereferencing it first, or using '->'",
                args.describe()
            );
            self.error(span, message);
            return None;
        }
        let Some(index) = params.iter().position(|p| p.name == name) else {
            self.error(span, format!("Can't find function parameter {name}"));
            return None;
        };
        let ty = match kernel::value_type(self.btf, params[index].ty) {
            Ok(ty @ (Type::Int { .. } | Type::Ptr { .. })) => ty,
            _ => {
                self.error(span, format!("{name} has unsupported type"));
                return None;
            }
        };
        let Some((register, Some(n))) = crate::builtins::lookup(&format!("arg{index}"), false)
        else {
            self.error(span, format!("{name} is not an argument rbt can read"));
            return None;
        };
        if n as usize >= crate::abi::arch::ARG_REGS {
            let message = format!("{name} is argument {n}: only arg0..arg5 are in registers");
            self.error(span, message);
            return None;
        }
        let call = Call {
            builtin: register,
            args: Vec::new(),
            payload: Payload::Index(n),
            span,
        };
        // The whole register, typed as declared but not narrowed, as bpftrace 0.17
        // reads it: `@m = args->i` of an `int` -3 stores 4294967293, printf's `%d`
        // prints -3.
        Some(TExpr {
            kind: TExprKind::Call(call),
            ty: kernel::in_space(ty, space),
            span,
        })
    }

    /// `ptr[index]` and `*ptr`: the `index`-th element ptr points at.
    pub(super) fn deref(&mut self, ptr: TExpr, index: u64, span: Span) -> Option<TExpr> {
        let Type::Ptr { target, depth, .. } = ptr.ty else {
            self.error(
                span,
                format!("cannot dereference '{}': not a pointer", ptr.ty.describe()),
            );
            return None;
        };
        let ty = if depth > 1 {
            kernel::pointer_to(self.btf, target, depth - 1)
        } else {
            match kernel::value_type(self.btf, target) {
                Ok(Type::Void) | Err(_) => {
                    self.error(span, format!("cannot dereference '{}'", ptr.ty.describe()));
                    return None;
                }
                Ok(t) => t,
            }
        };
        let elem_size = if depth > 1 {
            8
        } else {
            self.btf.size_of(target).unwrap_or(0) as u64
        };
        let offset = index.wrapping_mul(elem_size) as u32;
        let place = pointee(ptr, offset);
        // The context's space is irrelevant: the place is behind a pointer.
        Some(at_place(place, None, ty, Space::Unset, span))
    }
}

/// A tracepoint's `__data_loc` field at `offset` in the context, as bpftrace 0.17
/// reads it: the record's address plus the low 16 bits of the u32 there (the high 16
/// are the data's length), an int64 that `str()` reads the data at.
fn data_loc_value(offset: u32, span: Span) -> TExpr {
    let e = |kind, ty| TExpr { kind, ty, span };
    let word = e(
        TExprKind::Load {
            place: Place {
                base: Base::Ctx,
                offset,
            },
            bitfield: None,
        },
        Type::Int {
            size: 4,
            signed: false,
        },
    );
    let low = e(
        TExprKind::Binary {
            op: ast::BinOp::BitAnd,
            lhs: Box::new(word),
            rhs: Box::new(e(TExprKind::Int(0xffff), Type::I64)),
        },
        Type::U64,
    );
    e(
        TExprKind::Binary {
            op: ast::BinOp::Add,
            lhs: Box::new(low),
            rhs: Box::new(e(TExprKind::CtxAddress, Type::I64)),
        },
        Type::I64,
    )
}
