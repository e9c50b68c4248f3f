//! Kernel types from BTF (`/sys/kernel/btf/vmlinux`), indexed once, looked up by name.
//!
//! The blob is validated completely at load (header, every record in bounds, string
//! offsets, referenced type ids, typedef chains), so every query afterwards is total:
//! no panics, no loops, on any input.

mod error;
mod extend;
mod index;
mod lazy;
mod names;
mod parse;
mod query;
mod raw;
mod split;

use std::ops::Range;
use std::path::Path;

pub use error::BtfError;
pub use extend::{NewMember, NewType};
use index::{NameIndex, Ns};
pub use lazy::Lazy;
use raw::RawType;
pub use split::module_files;

/// A BTF type id; 0 (the default) is `void`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

impl TypeId {
    pub const VOID: TypeId = TypeId(0);
}

/// What a type is, after typedefs and qualifiers are stripped (see [`Btf::kind`]).
/// Ids inside (pointer target, array element) are as written, not resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeKind {
    Void,
    Int {
        size: u32,
        signed: bool,
        /// Plain `char` (BTF_INT_CHAR, or named "char": pahole does not set the flag);
        /// `char` arrays are strings to bpftrace, `unsigned char` arrays are not.
        is_char: bool,
        /// Declared `_Bool` (BTF_INT_BOOL).
        is_bool: bool,
    },
    Ptr {
        target: TypeId,
    },
    Array {
        elem: TypeId,
        len: u32,
    },
    Struct {
        size: u32,
    },
    Union {
        size: u32,
    },
    /// ENUM and ENUM64 alike.
    Enum {
        size: u32,
        signed: bool,
    },
    Float {
        size: u32,
    },
    /// A function (kprobe target); its signature is the FuncProto it points to.
    Func,
    FuncProto,
    /// Forward declaration of a struct (or a union) with no definition in this BTF.
    Fwd {
        union: bool,
    },
    Var,
    Datasec,
    DeclTag,
}

/// A field of a struct or union, found by name (see [`Btf::member`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub type_id: TypeId,
    /// From the start of the aggregate searched, including enclosing anonymous members.
    pub bit_offset: u32,
    /// Some(width) for bitfields.
    pub bitfield_size: Option<u32>,
}

/// A BTF file's bytes: read into memory, or the kernel's pages mapped.
enum Blob {
    Owned(Vec<u8>),
    Mapped(crate::sys::MappedFile),
}

impl std::ops::Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Blob::Owned(v) => v,
            Blob::Mapped(m) => m,
        }
    }
}

/// Parsed, validated and indexed BTF.
pub struct Btf {
    /// The whole file; the type and string sections are ranges of it.
    blob: Blob,
    type_range: Range<usize>,
    str_range: Range<usize>,
    /// Where each type's record starts in the type section (see [`raw::Types`]).
    types: Vec<u32>,
    index: NameIndex,
    ptr_size: u32,
    /// The script's own types by C name, found before the kernel's (see `extended`).
    preferred: Vec<(String, TypeId)>,
}

/// Who validated a BTF blob's records beyond their layout.
#[derive(Clone, Copy)]
enum Checked {
    /// The kernel, which exposes in sysfs only BTF it parsed and checked.
    ByKernel,
    /// Nobody yet: [`parse::validate`] runs at load.
    Here,
}

impl Btf {
    /// Read and index a raw BTF file: `/sys/kernel/btf/vmlinux`, or any standalone BTF
    /// blob such as `pahole --btf_encode_detached` writes. Split (module) BTF, which
    /// needs its base, is not supported. Errors name the file.
    ///
    /// Only the header is read before it is checked, and then only as many bytes as it
    /// says the blob has, so a huge file that is not BTF costs nothing. Bytes past the
    /// last section are an error (the kernel's files end exactly there).
    pub fn load(path: &Path) -> Result<Btf, BtfError> {
        Btf::load_then(path, || ())
    }

    /// [`Btf::load`], calling `read` as soon as the file has been read (before the
    /// records are parsed and indexed); not at all if reading failed.
    pub fn load_then(path: &Path, read: impl FnOnce()) -> Result<Btf, BtfError> {
        use std::io::Read;
        let io = |source| BtfError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        // The kernel's own BTF (sysfs) was validated by the kernel when it booted, or
        // loaded the module (`btf_parse_vmlinux`, `btf_parse_module`: names, type
        // references, modifier chains): checking it again was the longest part of a
        // load (~3.5 ms natively, beside a ~2 ms index).
        let checked = match crate::sys::is_sysfs(&file) {
            true => Checked::ByKernel,
            false => Checked::Here,
        };
        // A regular file's size is known (procfs says 0: unknown); a pipe's is not.
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file() && m.len() > 0)
            .map(|m| m.len());
        // The kernel's own BTF (sysfs, Linux 6.16+): mapped, not copied.
        if let Some(mapped) = size.and_then(|s| crate::sys::map_sysfs(&file, s as usize)) {
            let head = &mapped[..mapped.len().min(parse::HEADER_LEN)];
            let end = parse::blob_end(head).map_err(|e| e.in_file(path))?;
            if let Some(extra) = (mapped.len() as u64).checked_sub(end).filter(|&n| n > 0) {
                return Err(parse::trailing_bytes(end, Some(extra)).in_file(path));
            }
            crate::timings::phase("btf read");
            read();
            return Btf::from_blob(Blob::Mapped(mapped), checked).map_err(|e| e.in_file(path));
        }
        let mut bytes = Vec::with_capacity(parse::HEADER_LEN);
        (&mut file)
            .take(parse::HEADER_LEN as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let end = parse::blob_end(&bytes).map_err(|e| e.in_file(path))?;
        if let Some(size) = size.filter(|&size| size > end) {
            return Err(parse::trailing_bytes(end, Some(size - end)).in_file(path));
        }
        let rest = end.saturating_sub(bytes.len() as u64);
        bytes.reserve(
            usize::try_from(
                size.map_or(0, |s| s.min(end))
                    .saturating_sub(bytes.len() as u64),
            )
            .unwrap_or(0),
        );
        (&mut file).take(rest).read_to_end(&mut bytes).map_err(io)?;
        if size.is_none() && bytes.len() as u64 == end {
            let mut one = [0u8; 1];
            if file.read(&mut one).map_err(io)? > 0 {
                return Err(parse::trailing_bytes(end, None).in_file(path));
            }
        }
        crate::timings::phase("btf read");
        read();
        Btf::from_blob(Blob::Owned(bytes), checked).map_err(|e| e.in_file(path))
    }

    /// Validate and index a raw BTF blob.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Btf, BtfError> {
        Btf::from_blob(Blob::Owned(bytes), Checked::Here)
    }

    fn from_blob(bytes: Blob, checked: Checked) -> Result<Btf, BtfError> {
        let parsed = parse::layout(&bytes)?;
        crate::timings::phase("btf parse");
        let strings = &bytes[parsed.str_range.clone()];
        let records = raw::Types {
            starts: &parsed.types,
            data: &bytes[parsed.type_range.clone()],
        };
        let index = match checked {
            Checked::ByKernel => NameIndex::build(records, strings, &parsed.named),
            // Validating and indexing ~150k types are independent reads of the same
            // records: on two CPUs at once (inline if no thread can be started).
            Checked::Here => std::thread::scope(|s| {
                let check = std::thread::Builder::new()
                    .name("rbt-btf".into())
                    .spawn_scoped(s, || parse::validate(&bytes, &parsed));
                let index = NameIndex::build(records, strings, &parsed.named);
                let checked = match check {
                    Ok(thread) => thread.join().unwrap_or_else(|_| {
                        Err(BtfError::Malformed("BTF validation failed".into()))
                    }),
                    Err(_) => parse::validate(&bytes, &parsed),
                };
                checked.map(|()| index)
            })?,
        };
        crate::timings::phase("btf index");
        let mut btf = Btf {
            blob: bytes,
            type_range: parsed.type_range,
            str_range: parsed.str_range,
            types: parsed.types,
            index,
            ptr_size: 8,
            preferred: Vec::new(),
        };
        // BTF has no pointer size; the target's `long` tells it (4 on 32-bit kernels).
        if let Some(long) = btf.lookup(Ns::Plain, "long unsigned int") {
            if let Some(size) = btf.size_of(long) {
                btf.ptr_size = size;
            }
        }
        Ok(btf)
    }

    /// BTF with no types but `void`: what a failed [`Lazy`] load leaves behind.
    pub fn empty() -> Btf {
        let types = vec![0];
        let records = raw::Types {
            starts: &types,
            data: &[],
        };
        Btf {
            blob: Blob::Owned(Vec::new()),
            type_range: 0..0,
            str_range: 0..0,
            index: NameIndex::build(records, &[], &[]),
            types,
            ptr_size: 8,
            preferred: Vec::new(),
        }
    }

    /// Number of type ids, including void: valid ids are `0..type_count()`.
    pub fn type_count(&self) -> u32 {
        self.types.len() as u32
    }

    /// Look a type up by its C spelling: "struct sock", "union bpf_attr", "enum
    /// bpf_map_type", or a plain name for a typedef, integer or float ("u32", "__be16",
    /// "unsigned int"). A struct/union with only a forward declaration returns the Fwd.
    pub fn find_type(&self, name: &str) -> Option<TypeId> {
        let name = name.trim();
        if let Some((_, id)) = self.preferred.iter().find(|(n, _)| n == name) {
            return Some(*id);
        }
        if let Some(tag) = name.strip_prefix("struct ") {
            let tag = tag.trim_start();
            self.lookup(Ns::Struct, tag)
                .or_else(|| self.lookup(Ns::FwdStruct, tag))
        } else if let Some(tag) = name.strip_prefix("union ") {
            let tag = tag.trim_start();
            self.lookup(Ns::Union, tag)
                .or_else(|| self.lookup(Ns::FwdUnion, tag))
        } else if let Some(tag) = name.strip_prefix("enum ") {
            self.lookup(Ns::Enum, tag.trim_start())
        } else {
            self.lookup(Ns::Plain, name)
                .or_else(|| self.lookup(Ns::Plain, dwarf_int_name(name)?))
        }
    }

    fn lookup(&self, ns: Ns, name: &str) -> Option<TypeId> {
        self.index.get(ns, name, self.records(), self.strings())
    }

    /// A kernel function (BTF_KIND_FUNC) by name: does a kprobe target exist, and
    /// what is its signature.
    pub fn find_func(&self, name: &str) -> Option<TypeId> {
        self.lookup(Ns::Func, name)
    }

    /// Every function (BTF_KIND_FUNC) with its id, in BTF order, for wildcard probes
    /// and listings. Names can repeat (static functions in different files).
    pub fn funcs(&self) -> impl Iterator<Item = (&str, TypeId)> + '_ {
        self.records()
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind() == raw::KIND_FUNC)
            .map(|(id, t)| (self.str_at(t.name_off), TypeId(id as u32)))
    }

    /// The raw BTF name of a type ("" for anonymous ones and for void/pointers/...).
    pub fn type_name(&self, id: TypeId) -> &str {
        match self.raw(id) {
            Some(t) => self.str_at(t.name_off),
            None => "",
        }
    }

    fn raw(&self, id: TypeId) -> Option<RawType> {
        self.records().get(id.0 as usize)
    }

    fn records(&self) -> raw::Types<'_> {
        raw::Types {
            starts: &self.types,
            data: self.blob.get(self.type_range.clone()).unwrap_or_default(),
        }
    }

    /// The i-th 32-bit word of a type's trailing records.
    fn word(&self, t: &RawType, i: usize) -> u32 {
        let data = self.blob.get(self.type_range.clone()).unwrap_or_default();
        raw::u32_at(data, t.data as usize + 4 * i)
    }

    fn strings(&self) -> &[u8] {
        self.blob.get(self.str_range.clone()).unwrap_or_default()
    }

    fn str_at(&self, off: u32) -> &str {
        index::str_at(self.strings(), off)
    }
}

/// BTF names integers as DWARF spells them ("short unsigned int"); map the usual C
/// spellings onto those so `find_type("unsigned short")` works.
fn dwarf_int_name(c: &str) -> Option<&'static str> {
    let words: Vec<&str> = c.split_whitespace().collect();
    Some(match words.as_slice() {
        ["unsigned"] => "unsigned int",
        ["signed"] | ["signed", "int"] => "int",
        ["short"] | ["signed", "short"] | ["short", "signed"] => "short int",
        ["unsigned", "short"] | ["unsigned", "short", "int"] => "short unsigned int",
        ["long"] | ["signed", "long"] => "long int",
        ["unsigned", "long"] | ["unsigned", "long", "int"] => "long unsigned int",
        ["long", "long"] | ["signed", "long", "long"] => "long long int",
        ["unsigned", "long", "long"] | ["unsigned", "long", "long", "int"] => {
            "long long unsigned int"
        }
        _ => return None,
    })
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("types", &self.types.len())
            .field("bytes", &self.blob.len())
            .finish()
    }
}
