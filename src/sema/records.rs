//! Structs, unions and arrays held as values (bpftrace 0.17's record and array types):
//! a `Type::Mem` read where a value is wanted (a variable, a map key or value, a tuple
//! element, `print()`) is copied out of memory whole, and its layout travels with the
//! type so codegen copies and indexes it and the output prints it without BTF.

use super::expr::op_text;
use super::kernel;
use super::typed::*;
use super::Analyzer;
use crate::ast::{BinOp, Span};
use crate::btf::{Btf, Lazy, TypeId, TypeKind};

/// A struct, union or array value: its bytes as in C, and where its parts lie.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// As bpftrace names the type (`struct Foo`, `int32[4]`).
    pub name: String,
    pub size: u32,
    /// Its C alignment (bpftrace's `GetAlignment`: an array its element's).
    pub align: u32,
    pub shape: Shape,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A struct's or union's members in declaration order.
    Fields(Vec<Field>),
    /// `len` elements of `elem`, each `elem.size()` bytes.
    Array { elem: Type, len: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    /// As printed: a bitfield prints its whole storage unit of the declared type at
    /// `offset`, as bpftrace 0.17 does.
    pub ty: Type,
    /// A bitfield's bits within the unit read at `offset`, and the type read as.
    pub bits: Option<(Bitfield, Type)>,
}

impl Record {
    /// The field called `name` (a struct's or union's).
    pub fn field(&self, name: &str) -> Option<&Field> {
        match &self.shape {
            Shape::Fields(fields) => fields.iter().find(|f| f.name == name),
            Shape::Array { .. } => None,
        }
    }
}

/// The value type of BTF aggregate `id`, its members' types made values in turn
/// (`char[N]` members are strings, as everywhere).
pub fn record_type(btf: &Btf, id: TypeId) -> Result<Type, String> {
    let r = btf.resolve(id);
    let name = btf.name_of(r);
    let size = btf.size_of(r).unwrap_or(0);
    let part = |t: TypeId| match kernel::value_type(btf, t)? {
        Type::Mem { ty, .. } => record_type(btf, ty),
        Type::Void => Err(format!("'{name}' has a member of no value type")),
        other => Ok(other),
    };
    let (shape, align) = match btf.kind(r) {
        TypeKind::Array { elem, len } => {
            let elem = part(elem)?;
            let align = elem.alignment();
            // Named by the element's value type, as bpftrace names it (`int32[4]`).
            let name = format!("{}[{len}]", elem.describe());
            return Ok(Type::Record(Box::new(Record {
                name,
                size,
                align,
                shape: Shape::Array { elem, len },
            })));
        }
        TypeKind::Struct { .. } | TypeKind::Union { .. } => {
            let mut fields = Vec::new();
            let mut align = 1;
            for m in btf.members(r) {
                let ty = part(m.type_id)?;
                align = align.max(c_alignment(&ty));
                // An anonymous struct or union's members are the parent's, as in C
                // (and in bpftrace's printing).
                if let (true, Type::Record(inner)) = (m.name.is_empty(), &ty) {
                    if let Shape::Fields(inner) = &inner.shape {
                        fields.extend(inner.iter().map(|f| Field {
                            offset: f.offset + m.bit_offset / 8,
                            ..f.clone()
                        }));
                        continue;
                    }
                }
                let bits = match m.bitfield_size.filter(|&b| b > 0) {
                    Some(_) if !m.name.is_empty() => {
                        let access = kernel::member(btf, r, &m.name)?;
                        access.bitfield.map(|b| (b, access.ty))
                    }
                    _ => None,
                };
                fields.push(Field {
                    name: m.name,
                    offset: m.bit_offset / 8,
                    ty,
                    bits,
                });
            }
            (Shape::Fields(fields), align)
        }
        _ => return Err(format!("'{name}' is not a struct, union or array")),
    };
    Ok(Type::Record(Box::new(Record {
        name,
        size,
        align,
        shape,
    })))
}

/// A member's alignment within a C struct: strings (char arrays) 1, records theirs,
/// scalars their size.
fn c_alignment(ty: &Type) -> u32 {
    match ty {
        Type::Str { .. } => 1,
        Type::Record(r) => r.align,
        other => (other.size() as u32).clamp(1, 8),
    }
}

/// Whether `ty` is an array, in memory or as a value (takes the `Lazy` so that asking
/// about a non-memory type reads no BTF).
fn is_array(btf: &Lazy, ty: &Type) -> bool {
    match ty {
        Type::Mem { ty, .. } => matches!(btf.kind(*ty), TypeKind::Array { .. }),
        Type::Record(r) => matches!(r.shape, Shape::Array { .. }),
        _ => false,
    }
}

/// The part of value `base` at `offset` of type `ty` (a field of a field folds into
/// one offset).
pub fn part_of(
    base: TExpr,
    offset: u32,
    ty: Type,
    bitfield: Option<Bitfield>,
    span: Span,
) -> TExpr {
    let (expr, offset) = match base.kind {
        TExprKind::Field {
            expr,
            offset: o,
            bitfield: None,
        } => (expr, o + offset),
        kind => (
            Box::new(TExpr {
                kind,
                ty: base.ty,
                span: base.span,
            }),
            offset,
        ),
    };
    TExpr {
        kind: TExprKind::Field {
            expr,
            offset,
            bitfield,
        },
        ty,
        span,
    }
}

impl Analyzer<'_> {
    /// `e` as a value: a struct, union or array in memory becomes a copy of it (a
    /// record); anything else is itself.
    pub(super) fn value_of(&mut self, e: TExpr) -> Option<TExpr> {
        let (
            Type::Mem { ty, .. },
            TExprKind::InMemory(Place {
                base: Base::Mem { .. },
                ..
            }),
        ) = (&e.ty, &e.kind)
        else {
            return Some(e);
        };
        match record_type(self.btf, *ty) {
            Ok(ty) => Some(TExpr { ty, ..e }),
            Err(msg) => {
                self.error(e.span, msg);
                None
            }
        }
    }

    /// `lhs op rhs` of two arrays (in memory or values): compared element by element
    /// for `==`/`!=` when both are arrays of the same integers, as bpftrace 0.17 allows
    /// (`binop_array`); `Err` gives back operands that are not both arrays.
    pub(super) fn array_operands(
        &mut self,
        op: BinOp,
        lhs: TExpr,
        rhs: TExpr,
        span: Span,
    ) -> Option<Result<TExpr, (TExpr, TExpr)>> {
        if !(is_array(self.btf, &lhs.ty) && is_array(self.btf, &rhs.ty)) {
            return Some(Err((lhs, rhs)));
        }
        let (lhs, rhs) = (self.value_of(lhs)?, self.value_of(rhs)?);
        let (Type::Record(l), Type::Record(r)) = (&lhs.ty, &rhs.ty) else {
            return Some(Err((lhs, rhs)));
        };
        let (Shape::Array { elem, len: a }, Shape::Array { len: b, .. }) = (&l.shape, &r.shape)
        else {
            return Some(Err((lhs, rhs)));
        };
        let msg = if !matches!(op, BinOp::Eq | BinOp::Ne) {
            Some(format!(
                "The {} operator cannot be used on arrays.",
                op_text(op)
            ))
        } else if a != b {
            Some("Only arrays of same size support comparison operators.".to_string())
        } else if !matches!(elem, Type::Int { .. }) || l != r {
            Some("Only arrays of same sized integer support comparison operators.".to_string())
        } else {
            None
        };
        if let Some(msg) = msg {
            self.error(span, msg);
            return None;
        }
        Some(Ok(TExpr {
            kind: TExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            ty: Type::U64,
            span,
        }))
    }

    /// `base.name` of a record value.
    pub(super) fn record_member(&mut self, base: TExpr, name: &str, span: Span) -> Option<TExpr> {
        let Type::Record(r) = &base.ty else {
            return Some(base);
        };
        let Some(f) = r.field(name) else {
            let msg = format!(
                "Struct/union of type '{}' does not contain a field named '{name}'",
                r.name
            );
            self.error(span, msg);
            return None;
        };
        let (offset, ty, bitfield) = match &f.bits {
            Some((bits, ty)) => (f.offset, ty.clone(), Some(*bits)),
            None => (f.offset, f.ty.clone(), None),
        };
        Some(part_of(base, offset, ty, bitfield, span))
    }

    /// `base[index]` of an array value.
    pub(super) fn record_index(&mut self, base: TExpr, index: u64, span: Span) -> Option<TExpr> {
        let Type::Record(r) = &base.ty else {
            return Some(base);
        };
        let Shape::Array { elem, len } = &r.shape else {
            let msg = format!(
                "The array index operator [] can only be used on arrays and pointers, found {}.",
                r.name
            );
            self.error(span, msg);
            return None;
        };
        if index >= u64::from(*len) {
            let msg = format!("the index {index} is out of bounds for array of size {len}");
            self.error(span, msg);
            return None;
        }
        let (offset, ty) = (index as u32 * elem.size() as u32, elem.clone());
        Some(part_of(base, offset, ty, None, span))
    }
}
