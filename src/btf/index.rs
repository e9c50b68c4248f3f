//! The name index, built once at load: C-namespace-aware lookup from name to type id.
//!
//! An open-addressing table of (hash tag, type id) slots; the names themselves stay in
//! the string section, so building the index allocates once, not per name (kernel BTF
//! has ~70k indexed names), and a hit is always confirmed by comparing the name, so
//! hash collisions cost a probe, never a wrong answer.

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
    /// Power-of-two length, at most half full, so probing always ends.
    slots: Vec<Slot>,
}

/// Which of two same-named types a lookup should return. An enum with no values is a
/// forward declaration, so a later full one wins; otherwise the first wins
/// (deduplicated kernel BTF rarely has two, and the first is what libbpf finds too).
fn replaces(new: &RawType, old: &RawType) -> bool {
    matches!(new.kind(), KIND_ENUM | KIND_ENUM64) && old.vlen() == 0 && new.vlen() > 0
}

impl NameIndex {
    pub fn build(types: &[RawType], strings: &[u8]) -> NameIndex {
        NameIndex::build_with(types, strings, hash)
    }

    /// `hash` is a parameter so tests can force every name to collide.
    fn build_with(types: &[RawType], strings: &[u8], hash: fn(Ns, &[u8]) -> u64) -> NameIndex {
        let named = |t: &&RawType| t.name_off != 0 && ns_of(t).is_some();
        let count = types.iter().skip(1).filter(named).count();
        // At most ~2/3 full: short probes, and an empty slot always ends a probe.
        let len = (count + count / 2 + 1).next_power_of_two().max(16);
        let mut ix = NameIndex {
            hash,
            slots: vec![Slot::default(); len],
        };
        for (id, t) in types.iter().enumerate().skip(1) {
            if t.name_off == 0 {
                continue;
            }
            let Some(ns) = ns_of(t) else { continue };
            let name = bytes_at(strings, t.name_off);
            if name.is_empty() {
                continue;
            }
            let i = ix.probe(ns, name, types, strings);
            let slot = &mut ix.slots[i];
            if slot.id == TypeId::VOID {
                *slot = Slot {
                    tag: ((ix.hash)(ns, name) >> 32) as u32,
                    id: TypeId(id as u32),
                };
            } else if replaces(t, &types[slot.id.0 as usize]) {
                slot.id = TypeId(id as u32);
            }
        }
        ix
    }

    /// The slot holding (ns, name), or the empty slot where it would go.
    fn probe(&self, ns: Ns, name: &[u8], types: &[RawType], strings: &[u8]) -> usize {
        let mask = self.slots.len() - 1;
        let h = (self.hash)(ns, name);
        let tag = (h >> 32) as u32;
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s.id == TypeId::VOID {
                return i;
            }
            if s.tag == tag {
                if let Some(t) = types.get(s.id.0 as usize) {
                    if ns_of(t) == Some(ns) && bytes_at(strings, t.name_off) == name {
                        return i;
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, ns: Ns, name: &str, types: &[RawType], strings: &[u8]) -> Option<TypeId> {
        let id = self.slots[self.probe(ns, name.as_bytes(), types, strings)].id;
        (id != TypeId::VOID).then_some(id)
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
        ];
        for h in [hash, |_: Ns, _: &[u8]| 7] {
            let ix = NameIndex::build_with(&types, strings, h);
            let get = |ns, n| ix.get(ns, n, &types, strings).map(|t| t.0);
            assert_eq!(get(Ns::Struct, "a"), Some(1));
            assert_eq!(get(Ns::Struct, "b"), Some(2));
            assert_eq!(get(Ns::Plain, "a"), Some(3));
            assert_eq!(get(Ns::Enum, "c"), Some(5));
            assert_eq!(get(Ns::FwdUnion, "b"), Some(7));
            assert_eq!(get(Ns::Struct, "c"), None);
            assert_eq!(get(Ns::Union, "b"), None);
            assert_eq!(get(Ns::Func, "a"), None);
        }
    }
}
