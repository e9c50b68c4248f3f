//! Kernel modules' BTF (`/sys/kernel/btf/<module>`): split BTF, whose type ids and
//! string offsets continue those of vmlinux. bpftrace 0.17 loads every module's BTF
//! beside vmlinux (kprobe scripts cast to `struct xfs_inode *` and the like); rbt appends
//! them to vmlinux's records as one blob, renumbering each module's own ids and strings
//! after the previous module's, so the rest of rbt sees one id space. vmlinux's ids are
//! unchanged. The merged blob is validated like any other.

use std::path::Path;

use super::extend::assemble;
use super::parse;
use super::raw::*;
use super::{Btf, BtfError};
use crate::abi::paths;

impl Btf {
    /// This BTF (vmlinux) followed by the modules' split BTF blobs, `(name, bytes)`.
    pub fn with_modules(&self, modules: &[(String, Vec<u8>)]) -> Result<Btf, BtfError> {
        let base_types = self.type_count();
        let base_strings = self.strings().len() as u32;
        let mut types = self
            .blob
            .get(self.type_range.clone())
            .unwrap_or_default()
            .to_vec();
        let mut strings = self.strings().to_vec();
        let mut count = base_types;
        for (name, bytes) in modules {
            let bad = |e: BtfError| BtfError::Malformed(format!("module {name}'s BTF: {e}"));
            let parsed = parse::layout(bytes).map_err(bad)?;
            let own = Renumber {
                base_types,
                base_strings,
                first_type: count,
                first_string: strings.len() as u32,
            };
            let section = &bytes[parsed.type_range.clone()];
            // `layout` puts void at index 0; a split blob's records start at base_types.
            let records = super::raw::Types {
                starts: &parsed.types,
                data: section,
            };
            for t in records.iter().skip(1) {
                own.record(&t, section, &mut types)
                    .ok_or_else(|| bad(BtfError::Malformed("a record is cut off".into())))?;
            }
            count += parsed.types.len() as u32 - 1;
            strings.extend_from_slice(&bytes[parsed.str_range.clone()]);
        }
        let mut btf = Btf::from_bytes(assemble(&types, &strings))?;
        btf.ptr_size = self.ptr_size;
        Ok(btf)
    }
}

/// The loaded modules' BTF, sorted by name, when `vmlinux` is the kernel's own
/// (`/sys/kernel/btf/vmlinux`): only that directory holds modules, so any other `--btf`
/// file has none.
pub fn module_files(vmlinux: &Path) -> Vec<(String, Vec<u8>)> {
    let Some(dir) = vmlinux
        .parent()
        .filter(|_| vmlinux == Path::new(paths::VMLINUX_BTF))
    else {
        return Vec::new();
    };
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path() != vmlinux)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            Some((name, std::fs::read(e.path()).ok()?))
        })
        .collect();
    found.sort();
    found
}

/// How one module's ids and string offsets map into the merged blob.
struct Renumber {
    base_types: u32,
    base_strings: u32,
    first_type: u32,
    first_string: u32,
}

impl Renumber {
    fn ty(&self, id: u32) -> u32 {
        match id.checked_sub(self.base_types) {
            Some(own) => self.first_type + own,
            None => id,
        }
    }

    fn string(&self, off: u32) -> u32 {
        match off.checked_sub(self.base_strings) {
            Some(own) => self.first_string + own,
            None => off,
        }
    }

    /// Appends record `t` (its trailing records at `t.data` of `section`) to `out`,
    /// every type id and name renumbered. `None` if the record is cut off.
    fn record(&self, t: &RawType, section: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let mut put = |w: u32| out.extend_from_slice(&w.to_le_bytes());
        let refers = !matches!(
            t.kind(),
            KIND_INT
                | KIND_STRUCT
                | KIND_UNION
                | KIND_ENUM
                | KIND_ENUM64
                | KIND_FLOAT
                | KIND_DATASEC
                | KIND_FWD
        );
        put(self.string(t.name_off));
        put(t.info);
        put(if refers {
            self.ty(t.size_or_type)
        } else {
            t.size_or_type
        });
        let data = t.data as usize;
        let len = t.trailing_len()?;
        let words = section.get(data..data + len)?;
        let word = |i: usize| u32_at(words, 4 * i);
        // Which word of each trailing record is a name (N) or a type (T).
        let shape: &[u8] = match t.kind() {
            KIND_ARRAY => b"TT-",
            KIND_STRUCT | KIND_UNION => b"NT-",
            KIND_ENUM => b"N-",
            KIND_ENUM64 => b"N--",
            KIND_FUNC_PROTO => b"NT",
            KIND_DATASEC => b"T--",
            _ => b"-",
        };
        for i in 0..len / 4 {
            let w = word(i);
            put(match shape[i % shape.len()] {
                b'N' => self.string(w),
                b'T' => self.ty(w),
                _ => w,
            });
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::{TypeId, TypeKind};

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// vmlinux: [1] int "int". A module: [2] struct "m" { int a; struct m *next; },
    /// [3] a pointer to [2]; its strings continue vmlinux's.
    #[test]
    fn modules_are_renumbered_after_vmlinux_and_each_other() {
        let base_strings = b"\0int\0".to_vec();
        let int = words(&[1, (KIND_INT as u32) << 24, 4, 32 | 1 << 24]);
        let base = Btf::from_bytes(assemble(&int, &base_strings)).unwrap();
        let module = |name: &str| {
            let own = format!("{name}\0a\0next\0");
            let s = |i: u32| base_strings.len() as u32 + i;
            let name_len = name.len() as u32 + 1;
            let mut types = words(&[s(0), (KIND_STRUCT as u32) << 24 | 2, 16]);
            types.extend(words(&[s(name_len), 1, 0]));
            types.extend(words(&[s(name_len + 2), 3, 64]));
            types.extend(words(&[0, (KIND_PTR as u32) << 24, 2]));
            (name.to_string(), assemble(&types, own.as_bytes()))
        };
        let merged = base.with_modules(&[module("m1"), module("m2")]).unwrap();
        assert_eq!(merged.type_count(), 6);
        for (name, id) in [("struct m1", 2), ("struct m2", 4)] {
            let s = merged.find_type(name).unwrap();
            assert_eq!(s.0, id);
            let members = merged.members(s);
            let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["a", "next"]);
            assert_eq!(merged.type_name(members[0].type_id), "int");
            assert_eq!(members[1].type_id, TypeId(id + 1));
            assert_eq!(merged.kind(TypeId(id + 1)), TypeKind::Ptr { target: s });
        }
        assert_eq!(merged.find_type("int").unwrap().0, 1);
    }
}
