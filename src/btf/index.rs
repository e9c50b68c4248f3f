//! The name index, built once at load: C-namespace-aware maps from name to type id.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::raw::*;
use super::TypeId;

/// FNV-1a: type names are short and trusted-enough (our own kernel's BTF), so a simple
/// fast hash beats SipHash for the ~100k names hashed at every load.
#[derive(Default)]
pub(super) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type NameMap = HashMap<Box<str>, TypeId, BuildHasherDefault<Fnv>>;

/// C keeps struct, union and enum tags apart from ordinary identifiers; so do we.
#[derive(Default)]
pub(super) struct NameIndex {
    pub structs: NameMap,
    pub unions: NameMap,
    pub enums: NameMap,
    /// Forward declarations, used only when no definition exists.
    pub fwd_structs: NameMap,
    pub fwd_unions: NameMap,
    /// typedef, int and float names ("u32", "unsigned int", "__be16").
    pub plain: NameMap,
    pub funcs: NameMap,
}

impl NameIndex {
    pub fn build(types: &[RawType], strings: &str) -> NameIndex {
        let mut ix = NameIndex::default();
        for (id, t) in types.iter().enumerate().skip(1) {
            if t.name_off == 0 {
                continue;
            }
            let map = match t.kind() {
                KIND_STRUCT => &mut ix.structs,
                KIND_UNION => &mut ix.unions,
                KIND_ENUM | KIND_ENUM64 => &mut ix.enums,
                KIND_FWD if t.kind_flag() => &mut ix.fwd_unions,
                KIND_FWD => &mut ix.fwd_structs,
                KIND_TYPEDEF | KIND_INT | KIND_FLOAT => &mut ix.plain,
                KIND_FUNC => &mut ix.funcs,
                _ => continue,
            };
            let name = str_at(strings, t.name_off);
            if name.is_empty() {
                continue;
            }
            let id = TypeId(id as u32);
            match map.get_mut(name) {
                None => {
                    map.insert(name.into(), id);
                }
                // An enum with no values is a forward declaration: a later full one wins.
                Some(prev)
                    if matches!(t.kind(), KIND_ENUM | KIND_ENUM64)
                        && types[prev.0 as usize].vlen() == 0
                        && t.vlen() > 0 =>
                {
                    *prev = id;
                }
                // Otherwise the first definition wins (deduplicated kernel BTF rarely
                // has two, and the first is what bpftool/libbpf find too).
                Some(_) => {}
            }
        }
        ix
    }
}

/// The NUL-terminated string at `off` ("" when out of range; validation rules that out).
pub(super) fn str_at(strings: &str, off: u32) -> &str {
    strings
        .get(off as usize..)
        .and_then(|s| s.split('\0').next())
        .unwrap_or("")
}
