//! Kernel types from BTF as sema sees them: value types of members, member access folded
//! into memory reads, casts to kernel type names.

use super::typed::{Base, Bitfield, Place, Space, TExpr, TExprKind, Type};
use crate::btf::{Btf, TypeId, TypeKind};

/// The value type of a value of BTF type `id`: integers/enums/pointers become scalars,
/// structs/unions/arrays stay in memory.
pub fn value_type(btf: &Btf, id: TypeId) -> Result<Type, String> {
    let r = btf.resolve(id);
    Ok(match btf.kind(r) {
        TypeKind::Int { size, signed, .. } | TypeKind::Enum { size, signed } => match size {
            1 | 2 | 4 | 8 => Type::Int {
                size: size as u8,
                signed,
            },
            n => {
                return Err(format!(
                    "{n}-byte integer type '{}' is not supported",
                    btf.name_of(r)
                ))
            }
        },
        TypeKind::Ptr { target } => pointer_to(btf, target, 1),
        // `char name[N]` is a string, as in bpftrace (`unsigned char`/`__u8` arrays are not).
        TypeKind::Array { elem, len } if is_char(btf, elem) => Type::Str { size: len as usize },
        TypeKind::Struct { .. } | TypeKind::Union { .. } | TypeKind::Array { .. } => Type::Mem {
            ty: r,
            name: btf.name_of(r),
            size: btf.size_of(r).unwrap_or(0),
        },
        TypeKind::Void => Type::Void,
        TypeKind::Fwd { .. } => {
            return Err(format!(
                "'{}' is only declared, not defined, in kernel BTF",
                btf.name_of(r)
            ))
        }
        TypeKind::Float { .. } => return Err("floating-point values are not supported".into()),
        TypeKind::Func
        | TypeKind::FuncProto
        | TypeKind::Var
        | TypeKind::Datasec
        | TypeKind::DeclTag => {
            return Err(format!(
                "'{}' is a function type, not a value type",
                btf.name_of(r)
            ))
        }
    })
}

/// `depth` levels of pointer over `target`, folding pointer-to-pointer chains so the
/// target is never itself a pointer.
pub fn pointer_to(btf: &Btf, target: TypeId, depth: u8) -> Type {
    let mut target = btf.resolve(target);
    let mut depth = depth;
    while let TypeKind::Ptr { target: inner } = btf.kind(target) {
        target = btf.resolve(inner);
        depth += 1;
    }
    let base = match btf.kind(target) {
        TypeKind::Void => "void".to_string(),
        _ => btf.name_of(target),
    };
    Type::Ptr {
        target,
        depth,
        name: format!("{base} {}", "*".repeat(depth as usize)),
        space: Space::Kernel,
    }
}

/// bpftrace's own integer type names, accepted in casts.
pub fn bpftrace_int(name: &str) -> Option<Type> {
    let (signed, bits) = match name.strip_prefix('u') {
        Some(rest) => (false, rest.strip_prefix("int")?),
        None => (true, name.strip_prefix("int")?),
    };
    let size = match bits {
        "8" => 1,
        "16" => 2,
        "32" => 4,
        "64" => 8,
        _ => return None,
    };
    Some(Type::Int { size, signed })
}

/// What a struct/union member access resolves to, relative to its container.
pub struct MemberAccess {
    pub byte_offset: u32,
    pub bitfield: Option<Bitfield>,
    pub ty: Type,
}

/// Look up `field` in aggregate `agg` (a struct or union type id).
pub fn member(btf: &Btf, agg: TypeId, field: &str) -> Result<MemberAccess, String> {
    let Some(m) = btf.member(agg, field) else {
        return Err(format!(
            "Struct/union of type '{}' does not contain a field named '{field}'",
            btf.name_of(agg)
        ));
    };
    let ty = value_type(btf, m.type_id)?;
    let bit_offset = m.bit_offset;
    match m.bitfield_size.filter(|&b| b > 0) {
        None => Ok(MemberAccess {
            byte_offset: bit_offset / 8,
            bitfield: None,
            ty,
        }),
        Some(bits) if bits > 56 => Err(format!("bitfield '{field}' is wider than 56 bits")),
        Some(bits) => {
            // The declared type's size and sign, as bpftrace 0.17 types a bitfield
            // (`short b:8` holding 217 is 217, not an 8-bit -39).
            let Type::Int { size, signed } = ty else {
                return Err(format!("bitfield '{field}' is not an integer"));
            };
            let shift = bit_offset % 8;
            let bytes = match (shift + bits).div_ceil(8) {
                1 => 1,
                2 => 2,
                3 | 4 => 4,
                _ => 8,
            };
            Ok(MemberAccess {
                byte_offset: bit_offset / 8,
                bitfield: Some(Bitfield { bytes, shift, bits }),
                ty: Type::Int { size, signed },
            })
        }
    }
}

/// The expression reading a value of type `ty` at `place`: a scalar load, or the place
/// itself for aggregates. A pointer read from memory points into that memory's address
/// space (bpftrace carries the space through `->`, `[]` and `*`); `ctx` is the space of
/// pointers in the probe's context record.
pub fn at_place(
    place: Place,
    bitfield: Option<Bitfield>,
    ty: Type,
    ctx: Space,
    span: crate::ast::Span,
) -> TExpr {
    let space = match &place.base {
        Base::Mem { space, .. } => *space,
        Base::Ctx => ctx,
    };
    let ty = in_space(ty, space);
    let kind = match ty {
        Type::Mem { .. } | Type::Str { .. } => TExprKind::InMemory(place),
        _ => TExprKind::Load { place, bitfield },
    };
    TExpr { kind, ty, span }
}

/// The place a pointer value points at.
pub fn pointee(ptr: TExpr, offset: u32) -> Place {
    // Through `ctx` (or a struct pointer cast of it): read the context directly.
    if is_ctx_pointer(&ptr) {
        return Place {
            base: Base::Ctx,
            offset,
        };
    }
    let space = match ptr.ty {
        Type::Ptr { space, .. } => space,
        _ => Space::Unset,
    };
    Place {
        base: Base::Mem {
            ptr: Box::new(ptr),
            space,
        },
        offset,
    }
}

/// Whether `e` is the `ctx` pointer, or a pointer cast of it: what it points at is the
/// probe's context (bpftrace's `MarkCtxAccess`). The integer address a tracepoint's
/// `__data_loc` fields use is not.
pub fn is_ctx_pointer(e: &TExpr) -> bool {
    matches!(e.ty, Type::Ptr { .. })
        && match &e.kind {
            TExprKind::CtxAddress => true,
            TExprKind::Cast(inner) => is_ctx_pointer(inner),
            _ => false,
        }
}

/// `ty` with its pointer (if it is one) in address space `space`.
pub fn in_space(ty: Type, space: Space) -> Type {
    match ty {
        Type::Ptr {
            target,
            depth,
            name,
            ..
        } => Type::Ptr {
            target,
            depth,
            name,
            space,
        },
        other => other,
    }
}

/// Is `id` a struct or union (after typedefs)?
pub fn is_aggregate(btf: &Btf, id: TypeId) -> bool {
    matches!(
        btf.kind(btf.resolve(id)),
        TypeKind::Struct { .. } | TypeKind::Union { .. }
    )
}

/// Plain `char` (or a BTF int marked as a character).
fn is_char(btf: &Btf, id: TypeId) -> bool {
    let r = btf.resolve(id);
    match btf.kind(r) {
        TypeKind::Int {
            size: 1, is_char, ..
        } => is_char || btf.name_of(r) == "char",
        _ => false,
    }
}

/// The kind of a type as bpftrace 0.17 names it in messages such as printf's
/// "(integer supplied)": pointers are integers, `username` and `ntop()` strings, a
/// struct in memory a record.
pub fn kind_name(btf: &Btf, ty: &Type) -> &'static str {
    match ty {
        Type::Int { .. } | Type::Ptr { .. } => "integer",
        // Every value printed as text.
        Type::Str { .. }
        | Type::Inet
        | Type::Username
        | Type::Strerror
        | Type::MacAddr
        | Type::Timestamp { .. }
        | Type::CgroupPath { .. }
        | Type::Stack { .. }
        | Type::Ksym
        | Type::Usym => "string",
        Type::Buf { .. } => "buffer",
        Type::Tuple(_) => "tuple",
        Type::Agg(kind) => kind.name(),
        Type::Record(r) => match r.shape {
            super::records::Shape::Array { .. } => "array",
            super::records::Shape::Fields(_) => "record",
        },
        Type::Mem { ty, .. } => match btf.kind(*ty) {
            TypeKind::Array { .. } => "array",
            TypeKind::Struct { .. } | TypeKind::Union { .. } => "record",
            TypeKind::Void
            | TypeKind::Int { .. }
            | TypeKind::Ptr { .. }
            | TypeKind::Enum { .. }
            | TypeKind::Float { .. }
            | TypeKind::Func
            | TypeKind::FuncProto
            | TypeKind::Fwd { .. }
            | TypeKind::Var
            | TypeKind::Datasec
            | TypeKind::DeclTag => "none",
        },
        Type::Void => "none",
    }
}
