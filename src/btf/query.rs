//! Type queries: resolving typedef chains, kinds, sizes, members, function signatures.

use super::raw::*;
use super::{Btf, Member, TypeId, TypeKind};

/// Members examined by one lookup: real kernel types need a few hundred at most.
const MEMBER_SEARCH_BUDGET: usize = 1 << 14;

impl Btf {
    /// Strip typedef/const/volatile/restrict/type_tag to the underlying type.
    /// Validation guarantees these chains end within MAX_DEPTH hops.
    pub fn resolve(&self, id: TypeId) -> TypeId {
        let mut cur = id;
        for _ in 0..=MAX_DEPTH {
            match self.raw(cur) {
                Some(t) if t.is_modifier() => cur = TypeId(t.size_or_type),
                _ => break,
            }
        }
        cur
    }

    /// The kind of the resolved type. Unknown ids read as Void.
    pub fn kind(&self, id: TypeId) -> TypeKind {
        self.kind_of(self.resolve(id))
    }

    /// The kind of exactly this id, which must already be resolved.
    fn kind_of(&self, id: TypeId) -> TypeKind {
        let Some(t) = self.raw(id) else {
            return TypeKind::Void;
        };
        let t = &t;
        let size = t.size_or_type;
        match t.kind() {
            KIND_INT => {
                let enc = self.word(t, 0) >> 24;
                TypeKind::Int {
                    size,
                    signed: enc & INT_SIGNED != 0,
                    // pahole leaves BTF_INT_CHAR unset; plain `char` is known by name.
                    is_char: enc & INT_CHAR != 0 || self.str_at(t.name_off) == "char",
                    is_bool: enc & INT_BOOL != 0,
                }
            }
            KIND_PTR => TypeKind::Ptr {
                target: TypeId(size),
            },
            KIND_ARRAY => TypeKind::Array {
                elem: TypeId(self.word(t, 0)),
                len: self.word(t, 2),
            },
            KIND_STRUCT => TypeKind::Struct { size },
            KIND_UNION => TypeKind::Union { size },
            KIND_ENUM | KIND_ENUM64 => TypeKind::Enum {
                size,
                signed: t.kind_flag(),
            },
            KIND_FLOAT => TypeKind::Float { size },
            KIND_FUNC => TypeKind::Func,
            KIND_FUNC_PROTO => TypeKind::FuncProto,
            KIND_FWD => TypeKind::Fwd {
                union: t.kind_flag(),
            },
            KIND_VAR => TypeKind::Var,
            KIND_DATASEC => TypeKind::Datasec,
            KIND_DECL_TAG => TypeKind::DeclTag,
            // Modifiers are resolved by the callers; reaching one here means a chain
            // deeper than validation allows, which cannot happen.
            _ => TypeKind::Void,
        }
    }

    /// An array type of `len` elements of `elem` (both compared after typedefs), if
    /// this BTF has one: tracefs records declare arrays (`u8 fsid[16]`) that BTF only
    /// has as some struct's member type. A scan, done only for such fields.
    pub fn find_array(&self, elem: TypeId, len: u32) -> Option<TypeId> {
        let elem = self.resolve(elem);
        (1..self.type_count()).map(TypeId).find(|&id| {
            self.raw(id).is_some_and(|t| t.kind() == KIND_ARRAY)
                && matches!(self.kind_of(id), TypeKind::Array { elem: e, len: n }
                    if n == len && self.resolve(e) == elem)
        })
    }

    /// Size in bytes; None for void, functions, forward declarations, and arrays whose
    /// size overflows.
    pub fn size_of(&self, id: TypeId) -> Option<u32> {
        self.size_at_depth(id, 0)
    }

    fn size_at_depth(&self, id: TypeId, depth: usize) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        let id = self.resolve(id);
        match self.kind_of(id) {
            TypeKind::Int { size, .. }
            | TypeKind::Struct { size }
            | TypeKind::Union { size }
            | TypeKind::Enum { size, .. }
            | TypeKind::Float { size } => Some(size),
            TypeKind::Ptr { .. } => Some(self.ptr_size),
            TypeKind::Array { elem, len } => self.size_at_depth(elem, depth + 1)?.checked_mul(len),
            TypeKind::Datasec => self.raw(id).map(|t| t.size_or_type),
            TypeKind::Var => self.size_at_depth(TypeId(self.raw(id)?.size_or_type), depth + 1),
            _ => None,
        }
    }

    /// All direct members of a struct or union (after resolving `aggregate`), in
    /// declaration order; anonymous members appear as one entry with an empty name.
    pub fn members(&self, aggregate: TypeId) -> Vec<Member> {
        let id = self.resolve(aggregate);
        let Some(t) = self.raw(id) else {
            return Vec::new();
        };
        let t = &t;
        if !matches!(t.kind(), KIND_STRUCT | KIND_UNION) {
            return Vec::new();
        }
        (0..t.vlen()).map(|i| self.member_at(t, i, 0)).collect()
    }

    /// Decode member `i`, honouring both bitfield encodings: with kind_flag the offset
    /// word carries the width in its top 8 bits; without it, a bitfield is an INT whose
    /// own encoding has a bit offset and fewer bits than its size.
    fn member_at(&self, t: &RawType, i: usize, base_bits: u32) -> Member {
        let name = self.str_at(self.word(t, 3 * i)).to_string();
        let type_id = TypeId(self.word(t, 3 * i + 1));
        let off = self.word(t, 3 * i + 2);
        let (mut bit_offset, mut bitfield_size) = if t.kind_flag() {
            (off & 0x00ff_ffff, Some(off >> 24).filter(|&w| w != 0))
        } else {
            (off, None)
        };
        if !t.kind_flag() {
            if let Some(it) = self.raw(self.resolve(type_id)) {
                if it.kind() == KIND_INT {
                    let enc = self.word(&it, 0);
                    let (bits, int_off) = (enc & 0xff, (enc >> 16) & 0xff);
                    if int_off != 0 || bits != it.size_or_type * 8 {
                        bit_offset = bit_offset.wrapping_add(int_off);
                        bitfield_size = Some(bits);
                    }
                }
            }
        }
        Member {
            name,
            type_id,
            bit_offset: bit_offset.wrapping_add(base_bits),
            bitfield_size,
        }
    }

    /// A member by name, looking through anonymous struct/union members (as C does) and
    /// adding their offsets, so `skc_daddr` is found directly in `struct sock_common`.
    pub fn member(&self, aggregate: TypeId, name: &str) -> Option<Member> {
        if name.is_empty() {
            return None;
        }
        let mut budget = MEMBER_SEARCH_BUDGET;
        self.member_at_depth(aggregate, name, 0, 0, &mut budget)
    }

    fn member_at_depth(
        &self,
        aggregate: TypeId,
        name: &str,
        base_bits: u32,
        depth: usize,
        budget: &mut usize,
    ) -> Option<Member> {
        // Depth stops cycles; the budget stops fan-out (anonymous members nested many
        // times over), so a corrupt blob cannot make one lookup take forever.
        if depth > MAX_DEPTH {
            return None;
        }
        let t = self.raw(self.resolve(aggregate))?;
        let t = &t;
        if !matches!(t.kind(), KIND_STRUCT | KIND_UNION) {
            return None;
        }
        for i in 0..t.vlen() {
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            let name_off = self.word(t, 3 * i);
            if name_off != 0 {
                if self.str_at(name_off) == name {
                    return Some(self.member_at(t, i, base_bits));
                }
                continue;
            }
            // Anonymous struct/union: search inside it, offsets added. (Unnamed
            // bitfield padding is anonymous too; it is no aggregate, so it is skipped.)
            let ty = TypeId(self.word(t, 3 * i + 1));
            let off = self.word(t, 3 * i + 2);
            let off = if t.kind_flag() {
                off & 0x00ff_ffff
            } else {
                off
            };
            let base = base_bits.wrapping_add(off);
            if let Some(m) = self.member_at_depth(ty, name, base, depth + 1, budget) {
                return Some(m);
            }
        }
        None
    }

    /// The FUNC_PROTO of a FUNC (a FUNC_PROTO is its own); None for anything else.
    pub fn func_proto(&self, func: TypeId) -> Option<TypeId> {
        let id = self.resolve(func);
        let t = self.raw(id)?;
        let t = &t;
        match t.kind() {
            KIND_FUNC => Some(TypeId(t.size_or_type)),
            KIND_FUNC_PROTO => Some(id),
            _ => None,
        }
    }

    /// Parameter names and types of a FUNC (or FUNC_PROTO), in order. A variadic
    /// function's trailing `...` is not a parameter (see [`Btf::func_is_variadic`]).
    pub fn func_params(&self, func: TypeId) -> Vec<(String, TypeId)> {
        let Some(t) = self.func_proto(func).and_then(|p| self.raw(p)) else {
            return Vec::new();
        };
        let t = &t;
        let mut params: Vec<(String, TypeId)> = (0..t.vlen())
            .map(|i| {
                let name = self.str_at(self.word(t, 2 * i)).to_string();
                (name, TypeId(self.word(t, 2 * i + 1)))
            })
            .collect();
        if params
            .last()
            .is_some_and(|(n, ty)| n.is_empty() && ty.0 == 0)
        {
            params.pop();
        }
        params
    }

    /// Whether the signature ends in `...` (encoded as a final nameless void parameter).
    pub fn func_is_variadic(&self, func: TypeId) -> bool {
        match self.func_proto(func).and_then(|p| self.raw(p)) {
            Some(t) if t.vlen() > 0 => {
                let i = t.vlen() - 1;
                self.word(&t, 2 * i) == 0 && self.word(&t, 2 * i + 1) == 0
            }
            _ => false,
        }
    }

    /// Return type of a FUNC (or FUNC_PROTO); void for anything else.
    pub fn func_return(&self, func: TypeId) -> TypeId {
        match self.func_proto(func).and_then(|p| self.raw(p)) {
            Some(t) => TypeId(t.size_or_type),
            None => TypeId::VOID,
        }
    }

    /// Enumerator names and values of an enum (ENUM or ENUM64), values sign-extended
    /// for signed enums.
    pub fn enum_values(&self, id: TypeId) -> Vec<(String, i128)> {
        let Some(t) = self.raw(self.resolve(id)) else {
            return Vec::new();
        };
        let t = &t;
        let signed = t.kind_flag();
        match t.kind() {
            KIND_ENUM => (0..t.vlen())
                .map(|i| {
                    let v = self.word(t, 2 * i + 1);
                    let v = if signed { v as i32 as i128 } else { v as i128 };
                    (self.str_at(self.word(t, 2 * i)).to_string(), v)
                })
                .collect(),
            KIND_ENUM64 => (0..t.vlen())
                .map(|i| {
                    let v = (self.word(t, 3 * i + 2) as u64) << 32 | self.word(t, 3 * i + 1) as u64;
                    let v = if signed { v as i64 as i128 } else { v as i128 };
                    (self.str_at(self.word(t, 3 * i)).to_string(), v)
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}
