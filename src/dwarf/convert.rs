//! DWARF types as BTF records, appended to the kernel's BTF ([`Btf::extended`]) so
//! sema types a uprobe's parameters and a binary's structs as it types kernel data.
//! Follows bpftrace 0.17's `Dwarf::get_stype`: typedefs and qualifiers are peeled;
//! integers keep size and sign (`char`s are marked so their arrays are strings, signed
//! or unsigned, as bpftrace makes `char[N]` and `unsigned char[N]` strings); enums are
//! unsigned integers of their size; floats and function types are types rbt cannot
//! read; structs keep their members at their offsets, while unions, and structs
//! reached through a typedef of another name, have none (bpftrace finds fields by
//! name among the structs only).
//!
//! [`Btf::extended`]: crate::btf::Btf::extended

use std::collections::HashMap;

use super::{DebugInfo, DieRef};
use crate::btf::{NewMember, NewType, TypeId};
use gimli::constants as dw;

/// Bound on the nesting of types followed (pointers, arrays, qualifiers).
const MAX_DEPTH: usize = 64;

/// Builds the records for the types asked for, each DWARF type once.
pub struct Converter {
    /// The id the first added record gets (the extended BTF's type count).
    base: u32,
    added: Vec<NewType>,
    /// Records made so far, by file (an index the caller picks) and entry.
    ids: HashMap<(usize, DieRef), TypeId>,
    names: Vec<(String, TypeId)>,
}

/// The records to append, and the names that find them before the kernel's.
#[derive(Debug, Default)]
pub struct Converted {
    pub added: Vec<NewType>,
    pub names: Vec<(String, TypeId)>,
}

impl Converter {
    pub fn new(base: u32) -> Converter {
        Converter {
            base,
            added: Vec::new(),
            ids: HashMap::new(),
            names: Vec::new(),
        }
    }

    pub fn finish(self) -> Converted {
        Converted {
            added: self.added,
            names: self.names,
        }
    }

    /// Whether anything was added.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
    }

    /// Makes `struct NAME` of `info` findable by name (the first file that has it wins);
    /// whether it has one.
    pub fn name_struct(&mut self, file: usize, info: &DebugInfo, name: &str) -> bool {
        let full = format!("struct {name}");
        if self.names.iter().any(|(n, _)| *n == full) {
            return true;
        }
        let Some(at) = info.find_struct(name) else {
            return false;
        };
        let id = self.type_id(file, info, Some(at));
        self.names.push((full, id));
        true
    }

    /// The record for DWARF type `ty` of `info` (`void` for none).
    pub fn type_id(&mut self, file: usize, info: &DebugInfo, ty: Option<DieRef>) -> TypeId {
        self.convert(file, info, ty, 0)
    }

    fn reserve(&mut self, key: (usize, DieRef)) -> (TypeId, usize) {
        let slot = self.added.len();
        self.added.push(NewType::Ptr {
            target: TypeId::VOID,
        });
        let id = TypeId(self.base + slot as u32);
        self.ids.insert(key, id);
        (id, slot)
    }

    fn add(&mut self, key: (usize, DieRef), t: NewType) -> TypeId {
        let (id, slot) = self.reserve(key);
        self.added[slot] = t;
        id
    }

    fn convert(
        &mut self,
        file: usize,
        info: &DebugInfo,
        ty: Option<DieRef>,
        depth: usize,
    ) -> TypeId {
        let Some((at, die)) = ty.and_then(|at| Some((at, info.die(at)?))) else {
            return TypeId::VOID;
        };
        if let Some(id) = self.ids.get(&(file, at)) {
            return *id;
        }
        if depth > MAX_DEPTH {
            return TypeId::VOID;
        }
        let key = (file, at);
        let name = die.name.clone().unwrap_or_default();
        let size = die
            .bit_size
            .map(|b| b / 8)
            .or(die.byte_size)
            .unwrap_or(0)
            .min(u64::from(u32::MAX)) as u32;
        match dw::DwTag(die.tag) {
            // bpftrace names a record by the typedef it is reached through, and finds
            // its fields by that name among the structs.
            dw::DW_TAG_typedef if is_record(info, die.ty, depth) => match info.find_struct(&name) {
                Some(def) => self.convert(file, info, Some(def), depth + 1),
                None => {
                    let size = record_size(info, die.ty, depth);
                    self.add(key, empty_record(name, false, size))
                }
            },
            dw::DW_TAG_typedef
            | dw::DW_TAG_const_type
            | dw::DW_TAG_volatile_type
            | dw::DW_TAG_restrict_type
            | dw::DW_TAG_atomic_type => self.convert(file, info, die.ty, depth + 1),
            dw::DW_TAG_base_type => {
                let encoding = die.encoding.map(dw::DwAte);
                let t = match encoding {
                    Some(dw::DW_ATE_boolean | dw::DW_ATE_unsigned | dw::DW_ATE_unsigned_char) => {
                        integer(size, false, encoding == Some(dw::DW_ATE_unsigned_char))
                    }
                    Some(dw::DW_ATE_signed | dw::DW_ATE_signed_char) => {
                        integer(size, true, encoding == Some(dw::DW_ATE_signed_char))
                    }
                    _ => NewType::Float { name, size },
                };
                self.add(key, t)
            }
            dw::DW_TAG_enumeration_type => self.add(key, integer(size, false, false)),
            dw::DW_TAG_pointer_type => {
                let (id, slot) = self.reserve(key);
                let target = self.convert(file, info, die.ty, depth + 1);
                self.added[slot] = NewType::Ptr { target };
                id
            }
            tag @ (dw::DW_TAG_structure_type | dw::DW_TAG_union_type) => {
                // A declaration stands for the unit's definition of that name.
                if die.declaration {
                    if let Some(def) = info.find_struct(&name).filter(|&d| d != at) {
                        return self.convert(file, info, Some(def), depth + 1);
                    }
                }
                // bpftrace finds fields among structs only: a union has none.
                if tag == dw::DW_TAG_union_type {
                    return self.add(key, empty_record(name, true, size));
                }
                let (id, slot) = self.reserve(key);
                let mut members = Vec::new();
                for m in die.children.iter().filter_map(|c| info.die(*c)) {
                    if m.tag != dw::DW_TAG_member.0 {
                        continue;
                    }
                    let bit_offset = match (m.data_bit_offset, m.member_offset) {
                        (Some(bits), _) => bits,
                        (None, Some(bytes)) => bytes.saturating_mul(8),
                        (None, None) => 0,
                    };
                    let ty = self.convert(file, info, m.ty, depth + 1);
                    members.push(NewMember {
                        name: m.name.clone().unwrap_or_default(),
                        ty,
                        bit_offset: bit_offset.min(u64::from(u32::MAX >> 8)) as u32,
                        bits: m.bit_size.map(|b| b.min(255) as u32),
                    });
                }
                self.added[slot] = NewType::Aggregate {
                    name,
                    union: false,
                    size,
                    members,
                };
                id
            }
            dw::DW_TAG_array_type => {
                let mut elem = self.convert(file, info, die.ty, depth + 1);
                let counts: Vec<u64> = die
                    .children
                    .iter()
                    .filter_map(|c| info.die(*c))
                    .filter(|d| d.tag == dw::DW_TAG_subrange_type.0)
                    .map(|d| d.count.unwrap_or(0))
                    .collect();
                let counts = if counts.is_empty() { vec![0] } else { counts };
                // `int a[2][3]`: the last subrange is the innermost array.
                let (outer, inner) = counts.split_first().unwrap_or((&0, &[]));
                for len in inner.iter().rev() {
                    elem = self.add_unkeyed(NewType::Array {
                        elem,
                        len: (*len).min(u64::from(u32::MAX)) as u32,
                    });
                }
                let len = (*outer).min(u64::from(u32::MAX)) as u32;
                self.add(key, NewType::Array { elem, len })
            }
            // Function types and anything else: nothing rbt can read.
            _ => TypeId::VOID,
        }
    }

    fn add_unkeyed(&mut self, t: NewType) -> TypeId {
        self.added.push(t);
        TypeId(self.base + self.added.len() as u32 - 1)
    }
}

/// An integer named as bpftrace names it (`int32 *` in messages, as bpftrace says);
/// `char` marks character types.
fn integer(size: u32, signed: bool, char: bool) -> NewType {
    NewType::Int {
        name: format!("{}int{}", if signed { "" } else { "u" }, size * 8),
        size,
        signed,
        char,
    }
}

/// A record without fields, as bpftrace 0.17 has for DWARF unions and for structs it
/// cannot find by name.
fn empty_record(name: String, union: bool, size: u32) -> NewType {
    NewType::Aggregate {
        name,
        union,
        size,
        members: Vec::new(),
    }
}

/// `ty` after qualifiers and typedefs (libdw's `dwarf_peel_type`).
fn peeled(info: &DebugInfo, ty: Option<DieRef>, depth: usize) -> Option<&super::Die> {
    let die = info.die(ty?)?;
    match dw::DwTag(die.tag) {
        dw::DW_TAG_typedef
        | dw::DW_TAG_const_type
        | dw::DW_TAG_volatile_type
        | dw::DW_TAG_restrict_type
        | dw::DW_TAG_atomic_type
            if depth < MAX_DEPTH =>
        {
            peeled(info, die.ty, depth + 1)
        }
        _ => Some(die),
    }
}

fn is_record(info: &DebugInfo, ty: Option<DieRef>, depth: usize) -> bool {
    peeled(info, ty, depth)
        .is_some_and(|d| d.tag == dw::DW_TAG_structure_type.0 || d.tag == dw::DW_TAG_union_type.0)
}

fn record_size(info: &DebugInfo, ty: Option<DieRef>, depth: usize) -> u32 {
    let size = peeled(info, ty, depth)
        .and_then(|d| d.byte_size)
        .unwrap_or(0);
    size.min(u64::from(u32::MAX)) as u32
}
