//! Types the script defines, appended to the kernel's BTF as ordinary records, so
//! member access, casts and sizes treat them exactly like kernel types. The new blob is
//! validated like any other (a mistake here is an error, never a bad read), and the
//! script's names take precedence over the kernel's, as bpftrace 0.17 gives them.

use super::raw::*;
use super::{Btf, BtfError, TypeId};

/// A record to append; the k-th gets id `type_count() + k`.
#[derive(Clone, Debug, PartialEq)]
pub enum NewType {
    /// An integer (from DWARF base types): `char` marks a character type, whose arrays
    /// are strings.
    Int {
        name: String,
        size: u32,
        signed: bool,
        char: bool,
    },
    /// A floating-point type (which rbt reads as nothing, as bpftrace 0.17).
    Float {
        name: String,
        size: u32,
    },
    Ptr {
        target: TypeId,
    },
    Array {
        elem: TypeId,
        len: u32,
    },
    /// A struct (or union) with members at the given bit offsets.
    Aggregate {
        name: String,
        union: bool,
        size: u32,
        members: Vec<NewMember>,
    },
    Enum {
        name: String,
        size: u32,
        signed: bool,
        values: Vec<(String, i64)>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewMember {
    pub name: String,
    pub ty: TypeId,
    pub bit_offset: u32,
    pub bits: Option<u32>,
}

impl Btf {
    /// This BTF plus `added`; `names` ("struct Foo", "enum E") resolve to the given
    /// new ids before any kernel type of the same name.
    pub fn extended(&self, added: &[NewType], names: &[(String, TypeId)]) -> Result<Btf, BtfError> {
        let mut strings = self.strings().to_vec();
        // The string section starts with the empty string (absent in an empty BTF).
        if strings.is_empty() {
            strings.push(0);
        }
        let mut string = |s: &str| -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = strings.len() as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            off
        };
        let index_type = self.find_type("int").unwrap_or(TypeId::VOID).0;
        let mut types = self
            .blob
            .get(self.type_range.clone())
            .unwrap_or_default()
            .to_vec();
        let mut put = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        for t in added {
            match t {
                NewType::Int {
                    name,
                    size,
                    signed,
                    char,
                } => {
                    let flag = |on: bool, bit: u32| if on { bit } else { 0 };
                    let encoding = flag(*signed, INT_SIGNED) | flag(*char, INT_CHAR);
                    put(&[string(name), (KIND_INT as u32) << 24, *size]);
                    put(&[encoding << 24 | (*size * 8).min(128)]);
                }
                NewType::Float { name, size } => {
                    put(&[string(name), (KIND_FLOAT as u32) << 24, *size])
                }
                NewType::Ptr { target } => put(&[0, (KIND_PTR as u32) << 24, target.0]),
                NewType::Array { elem, len } => {
                    put(&[0, (KIND_ARRAY as u32) << 24, 0, elem.0, index_type, *len])
                }
                NewType::Aggregate {
                    name,
                    union,
                    size,
                    members,
                } => {
                    let kind = if *union { KIND_UNION } else { KIND_STRUCT };
                    // kind_flag: each member's offset word carries its bitfield width.
                    let info = 1 << 31 | (kind as u32) << 24 | members.len() as u32;
                    put(&[string(name), info, *size]);
                    for m in members {
                        let off = m.bits.unwrap_or(0) << 24 | m.bit_offset;
                        put(&[string(&m.name), m.ty.0, off]);
                    }
                }
                NewType::Enum {
                    name,
                    size,
                    signed,
                    values,
                } => {
                    let wide = values
                        .iter()
                        .any(|(_, v)| i32::try_from(*v).is_err() && u32::try_from(*v).is_err());
                    let kind = if wide { KIND_ENUM64 } else { KIND_ENUM };
                    let info = (*signed as u32) << 31 | (kind as u32) << 24 | values.len() as u32;
                    put(&[string(name), info, *size]);
                    for (n, v) in values {
                        let n = string(n);
                        if wide {
                            put(&[n, *v as u32, (*v >> 32) as u32]);
                        } else {
                            put(&[n, *v as u32]);
                        }
                    }
                }
            }
        }
        let blob = assemble(&types, &strings);
        let mut btf = Btf::from_bytes(blob)?;
        // Names of an earlier extension (the script's types) stay ahead of these.
        btf.preferred = self.preferred.iter().chain(names).cloned().collect();
        Ok(btf)
    }
}

/// A raw BTF blob (version 1, 24-byte header) of the given type and string sections.
pub(super) fn assemble(types: &[u8], strings: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(24 + types.len() + strings.len());
    blob.extend_from_slice(&0xeb9f_u16.to_le_bytes());
    blob.extend_from_slice(&[1, 0]);
    for w in [
        24,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        blob.extend_from_slice(&w.to_le_bytes());
    }
    blob.extend_from_slice(types);
    blob.extend_from_slice(strings);
    blob
}
