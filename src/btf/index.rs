//! The name index, built once at load: C-namespace-aware lookup from name to type id.
//!
//! An open-addressing table of (hash tag, type id) slots; the names themselves stay in
//! the string section, so building the index allocates once, not per name (kernel BTF
//! has ~70k indexed names), and a hit is always confirmed by comparing the name, so
//! hash collisions cost a probe, never a wrong answer.
//!
//! Functions (~80% of kernel BTF names) are indexed lazily: a typical script looks up
//! one (its kprobe), and a scan of the FUNC records for it is cheaper than hashing all
//! 56k of them at startup; the second lookup builds their table.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::raw::*;
use super::TypeId;

/// C keeps struct, union and enum tags apart from ordinary identifiers; so do we.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ns {
    Struct,
    Union,
    Enum,
    /// Forward declarations, used only when no definition exists.
    FwdStruct,
    FwdUnion,
    /// typedef, int and float names ("u32", "unsigned int", "__be16").
    Plain,
    Func,
}

fn ns_of(t: &RawType) -> Option<Ns> {
    Some(match t.kind() {
        KIND_STRUCT => Ns::Struct,
        KIND_UNION => Ns::Union,
        KIND_ENUM | KIND_ENUM64 => Ns::Enum,
        KIND_FWD if t.kind_flag() => Ns::FwdUnion,
        KIND_FWD => Ns::FwdStruct,
        KIND_TYPEDEF | KIND_INT | KIND_FLOAT => Ns::Plain,
        KIND_FUNC => Ns::Func,
        _ => return None,
    })
}

/// Word-at-a-time multiplicative hash (FxHash-style) of the namespace and name.
fn hash(ns: Ns, name: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = (ns as u64 + 1).wrapping_mul(K);
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    let w = rest
        .iter()
        .fold(rest.len() as u64 | 0x80, |w, &b| w << 8 | b as u64);
    h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    h ^ (h >> 32)
}

/// A slot: the hash's top 32 bits (to skip most name comparisons) and the type id;
/// id 0 marks an empty slot (void has no name, so it is never indexed).
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u32,
    id: TypeId,
}

pub(super) struct NameIndex {
    hash: fn(Ns, &[u8]) -> u64,
    /// Every namespace but functions. Power-of-two length, at most ~2/3 full, so
    /// probing always ends.
    slots: Vec<Slot>,
    /// Functions, indexed at the second function lookup (the first one scans).
    funcs: OnceLock<Vec<Slot>>,
    func_lookups: AtomicU32,
}

/// Which of two same-named types a lookup should return. An enum with no values is a
/// forward declaration, so a later full one wins; otherwise the first wins
/// (deduplicated kernel BTF rarely has two, and the first is what libbpf finds too).
fn replaces(new: &RawType, old: &RawType) -> bool {
    matches!(new.kind(), KIND_ENUM | KIND_ENUM64) && old.vlen() == 0 && new.vlen() > 0
}

/// Whether the index holds `t` from the start (a named type outside the function
/// namespace); the layout pass lists these ids as it walks the records.
pub(super) fn indexed_at_load(t: &RawType) -> bool {
    t.name_off != 0 && ns_of(t).is_some_and(|ns| ns != Ns::Func)
}

impl NameIndex {
    /// The index of `types`, whose ids `named` are those [`indexed_at_load`] (in order).
    pub fn build(types: Types<'_>, strings: &[u8], named: &[u32]) -> NameIndex {
        NameIndex::build_with(types, strings, named, hash)
    }

    /// `hash` is a parameter so tests can force every name to collide.
    fn build_with(
        types: Types<'_>,
        strings: &[u8],
        named: &[u32],
        hash: fn(Ns, &[u8]) -> u64,
    ) -> NameIndex {
        let named = named.iter().map(|&id| (id as usize, types.at(id as usize)));
        NameIndex {
            hash,
            slots: table(hash, types, strings, named),
            funcs: OnceLock::new(),
            func_lookups: AtomicU32::new(0),
        }
    }

    pub fn get(&self, ns: Ns, name: &str, types: Types<'_>, strings: &[u8]) -> Option<TypeId> {
        let name = name.as_bytes();
        let slots = if ns != Ns::Func {
            &self.slots
        } else if let Some(funcs) = self.funcs.get() {
            funcs
        } else if self.func_lookups.fetch_add(1, Ordering::Relaxed) == 0 {
            // The first FUNC of that name, as the index would give.
            return types
                .iter()
                .position(|t| {
                    t.kind() == KIND_FUNC
                        && t.name_off != 0
                        && bytes_at(strings, t.name_off) == name
                })
                .map(|id| TypeId(id as u32));
        } else {
            self.funcs.get_or_init(|| {
                let funcs = types.iter().enumerate().skip(1);
                let funcs = funcs.filter(|(_, t)| t.kind() == KIND_FUNC && t.name_off != 0);
                table(self.hash, types, strings, funcs)
            })
        };
        let id = slots[probe(slots, self.hash, ns, name, types, strings)].id;
        (id != TypeId::VOID).then_some(id)
    }
}

/// An open-addressing table of the named types `entries` (ids in increasing order).
fn table(
    hash: fn(Ns, &[u8]) -> u64,
    types: Types<'_>,
    strings: &[u8],
    entries: impl Iterator<Item = (usize, RawType)> + Clone,
) -> Vec<Slot> {
    let count = entries.clone().count();
    let len = (count + count / 2 + 1).next_power_of_two().max(16);
    let mut slots = vec![Slot::default(); len];
    for (id, t) in entries {
        let Some(ns) = ns_of(&t) else { continue };
        let name = bytes_at(strings, t.name_off);
        if name.is_empty() {
            continue;
        }
        let i = probe(&slots, hash, ns, name, types, strings);
        let slot = &mut slots[i];
        if slot.id == TypeId::VOID {
            *slot = Slot {
                tag: (hash(ns, name) >> 32) as u32,
                id: TypeId(id as u32),
            };
        } else if replaces(&t, &types.at(slot.id.0 as usize)) {
            slot.id = TypeId(id as u32);
        }
    }
    slots
}

/// The slot holding (ns, name), or the empty slot where it would go.
fn probe(
    slots: &[Slot],
    hash: fn(Ns, &[u8]) -> u64,
    ns: Ns,
    name: &[u8],
    types: Types<'_>,
    strings: &[u8],
) -> usize {
    let mask = slots.len() - 1;
    let h = hash(ns, name);
    let tag = (h >> 32) as u32;
    let mut i = h as usize & mask;
    loop {
        let s = slots[i];
        if s.id == TypeId::VOID {
            return i;
        }
        if s.tag == tag {
            if let Some(t) = types.get(s.id.0 as usize) {
                if ns_of(&t) == Some(ns) && bytes_at(strings, t.name_off) == name {
                    return i;
                }
            }
        }
        i = (i + 1) & mask;
    }
}

/// The NUL-terminated string at `off` ("" when out of range; validation rules that out).
pub(super) fn str_at(strings: &[u8], off: u32) -> &str {
    std::str::from_utf8(bytes_at(strings, off)).unwrap_or("")
}

#[inline]
fn bytes_at(strings: &[u8], off: u32) -> &[u8] {
    let tail = strings.get(off as usize..).unwrap_or_default();
    let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
    &tail[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name_off: u32, kind: u8, flag: bool, vlen: u32) -> RawType {
        RawType {
            name_off,
            info: (flag as u32) << 31 | (kind as u32) << 24 | vlen,
            size_or_type: 4,
            data: 0,
        }
    }

    /// Every name hashing alike must still find each name in its namespace, with the
    /// same preference rules as the normal path.
    #[test]
    fn collisions_resolve_by_name() {
        let strings = b"\0a\0b\0c\0";
        let types = [
            RawType::VOID,
            ty(1, KIND_STRUCT, false, 0),  // 1 struct a
            ty(3, KIND_STRUCT, false, 0),  // 2 struct b
            ty(1, KIND_TYPEDEF, false, 0), // 3 a
            ty(5, KIND_ENUM, false, 0),    // 4 enum c (forward)
            ty(5, KIND_ENUM, false, 2),    // 5 enum c
            ty(3, KIND_STRUCT, false, 0),  // 6 struct b again
            ty(3, KIND_FWD, true, 0),      // 7 union b (forward)
            ty(5, KIND_FUNC, false, 0),    // 8 func c (scanned, not indexed)
            ty(5, KIND_FUNC, false, 0),    // 9 func c again
        ];
        // Each record is its 12-byte header (the index reads no trailing records).
        let data: Vec<u8> = types
            .iter()
            .skip(1)
            .flat_map(|t| [t.name_off, t.info, t.size_or_type])
            .flat_map(u32::to_le_bytes)
            .collect();
        let starts: Vec<u32> = (0..types.len() as u32)
            .map(|i| i.saturating_sub(1) * 12)
            .collect();
        let types = Types {
            starts: &starts,
            data: &data,
        };
        let named: Vec<u32> = (1..types.len() as u32)
            .filter(|&id| indexed_at_load(&types.at(id as usize)))
            .collect();
        for h in [hash, |_: Ns, _: &[u8]| 7] {
            let ix = NameIndex::build_with(types, strings, &named, h);
            let get = |ns, n| ix.get(ns, n, types, strings).map(|t| t.0);
            assert_eq!(get(Ns::Struct, "a"), Some(1));
            assert_eq!(get(Ns::Struct, "b"), Some(2));
            assert_eq!(get(Ns::Plain, "a"), Some(3));
            assert_eq!(get(Ns::Enum, "c"), Some(5));
            assert_eq!(get(Ns::FwdUnion, "b"), Some(7));
            assert_eq!(get(Ns::Struct, "c"), None);
            assert_eq!(get(Ns::Union, "b"), None);
            assert_eq!(get(Ns::Func, "c"), Some(8)); // the first lookup scans
            assert_eq!(get(Ns::Func, "c"), Some(8)); // later ones use the table
            assert_eq!(get(Ns::Func, "b"), None);
            assert_eq!(get(Ns::Func, "a"), None);
            assert_eq!(get(Ns::Plain, "c"), None);
        }
    }
}
