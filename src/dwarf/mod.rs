//! DWARF debug info of user binaries, as bpftrace 0.17 reads it through libdw
//! (`dwarf_parser.cpp`): a uprobe function's parameters (`args->NAME`, `-lv`), and the
//! struct types of the binary for casts (`(struct Foo *)arg0`). Read with `gimli` once
//! per file into a small table of the entries that describe types and functions; what
//! the rest of rbt sees is that table ([`DebugInfo`]), never gimli's types.
//!
//! `text` names types as bpftrace's `-lv` prints them; `convert` turns them into BTF
//! records appended to the kernel's BTF, so sema types them as it types kernel data.

mod convert;
mod text;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gimli::{constants as dw, AttributeValue, EndianSlice, LittleEndian};

pub use convert::{Converted, Converter};

/// Bound on the nesting of entries read (a corrupt file must not recurse without end).
const MAX_DEPTH: usize = 64;

/// Where one entry is: its offset in `.debug_info`.
pub type DieRef = u64;

/// The attributes of one debugging information entry that rbt uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Die {
    pub tag: u16,
    pub name: Option<String>,
    /// `DW_AT_type`.
    pub ty: Option<DieRef>,
    pub byte_size: Option<u64>,
    pub bit_size: Option<u64>,
    /// `DW_AT_encoding` of a base type.
    pub encoding: Option<u8>,
    /// A subrange's element count (`DW_AT_count`, or `DW_AT_upper_bound` + 1).
    pub count: Option<u64>,
    /// A member's `DW_AT_data_member_location` (bytes).
    pub member_offset: Option<u64>,
    /// A member's `DW_AT_data_bit_offset` (bits).
    pub data_bit_offset: Option<u64>,
    pub declaration: bool,
    pub children: Vec<DieRef>,
}

/// The entries of one file: every one by offset, and each compilation unit's top-level
/// entries in file order (where bpftrace looks functions and structs up).
#[derive(Debug, Default)]
pub struct DebugInfo {
    pub dies: HashMap<DieRef, Die>,
    pub units: Vec<Vec<DieRef>>,
}

/// A function parameter: its name and type.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: Option<DieRef>,
}

/// Tags whose entries are kept (types, members, functions and their parameters).
const KEPT: &[dw::DwTag] = &[
    dw::DW_TAG_base_type,
    dw::DW_TAG_pointer_type,
    dw::DW_TAG_const_type,
    dw::DW_TAG_volatile_type,
    dw::DW_TAG_restrict_type,
    dw::DW_TAG_atomic_type,
    dw::DW_TAG_typedef,
    dw::DW_TAG_structure_type,
    dw::DW_TAG_union_type,
    dw::DW_TAG_enumeration_type,
    dw::DW_TAG_array_type,
    dw::DW_TAG_subrange_type,
    dw::DW_TAG_member,
    dw::DW_TAG_subprogram,
    dw::DW_TAG_formal_parameter,
    dw::DW_TAG_subroutine_type,
];

/// The debug info of `path` (or of its build-id debug file, as libdw's standard
/// debuginfo lookup finds it), read once per run; `None` when it has none.
pub fn load(path: &Path) -> Option<Arc<DebugInfo>> {
    cached(path, || {
        // Only a file with `.debug_info` (found with positioned reads: listing may
        // look at hundreds of large binaries) is read whole.
        let listed = crate::elf::functions::functions(path)?;
        match listed.has_dwarf {
            true => Some(path.to_path_buf()),
            false => listed.debug_file,
        }
    })
}

/// [`load`] for a caller that knows where `path`'s DWARF is (`source`: the file or its
/// debug file) or that it has none.
pub fn load_from(path: &Path, source: Option<&Path>) -> Option<Arc<DebugInfo>> {
    cached(path, || source.map(Path::to_path_buf))
}

fn cached(path: &Path, source: impl FnOnce() -> Option<PathBuf>) -> Option<Arc<DebugInfo>> {
    type Cache = Mutex<Vec<(PathBuf, Option<Arc<DebugInfo>>)>>;
    static FILES: Cache = Mutex::new(Vec::new());
    let mut files = FILES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, info)) = files.iter().find(|(p, _)| p == path) {
        return info.clone();
    }
    let info = source()
        .and_then(|file| std::fs::read(file).ok())
        .and_then(|bytes| parse(&bytes))
        .map(Arc::new);
    files.push((path.to_path_buf(), info.clone()));
    info
}

/// Reads the DWARF sections of ELF `bytes`; `None` without `.debug_info` or when it
/// cannot be read (bpftrace then finds no debug info either).
pub fn parse(bytes: &[u8]) -> Option<DebugInfo> {
    crate::elf::section(bytes, ".debug_info")?;
    let dwarf = gimli::Dwarf::load(|id| {
        let data = crate::elf::section(bytes, id.name()).unwrap_or_default();
        Ok::<_, gimli::Error>(EndianSlice::new(data, LittleEndian))
    })
    .ok()?;
    let mut info = DebugInfo::default();
    let mut headers = dwarf.units();
    while let Ok(Some(header)) = headers.next() {
        let Ok(unit) = dwarf.unit(header) else {
            continue;
        };
        let Ok(mut tree) = unit.entries_tree(None) else {
            continue;
        };
        let Ok(root) = tree.root() else {
            continue;
        };
        let mut top = Vec::new();
        let mut children = root.children();
        while let Ok(Some(node)) = children.next() {
            if let Some(at) = read_node(&dwarf, &unit, node, 0, &mut info) {
                top.push(at);
            }
        }
        info.units.push(top);
    }
    Some(info)
}

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Records `node` and its kept descendants; its offset when it is kept.
fn read_node(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    node: gimli::EntriesTreeNode<'_, '_, Slice<'_>>,
    depth: usize,
    info: &mut DebugInfo,
) -> Option<DieRef> {
    let entry = node.entry();
    if depth > MAX_DEPTH || !KEPT.contains(&entry.tag()) {
        return None;
    }
    let at = global(unit, entry.offset())?;
    let mut die = Die {
        tag: entry.tag().0,
        declaration: matches!(
            entry.attr_value(dw::DW_AT_declaration),
            Some(AttributeValue::Flag(true))
        ),
        ..Die::default()
    };
    for attr in entry.attrs() {
        let value = attr.value();
        match attr.name() {
            dw::DW_AT_name => {
                die.name = dwarf
                    .attr_string(unit, value)
                    .ok()
                    .map(|s| s.to_string_lossy().into_owned())
            }
            dw::DW_AT_type => die.ty = reference(unit, value),
            dw::DW_AT_byte_size => die.byte_size = value.udata_value(),
            dw::DW_AT_bit_size => die.bit_size = value.udata_value(),
            dw::DW_AT_encoding => {
                if let AttributeValue::Encoding(e) = value {
                    die.encoding = Some(e.0);
                }
            }
            dw::DW_AT_count => die.count = value.udata_value(),
            dw::DW_AT_upper_bound => {
                die.count = die.count.or(value.udata_value().map(|n| n.wrapping_add(1)))
            }
            dw::DW_AT_data_member_location => die.member_offset = value.udata_value(),
            dw::DW_AT_data_bit_offset => die.data_bit_offset = value.udata_value(),
            _ => {}
        }
    }
    let mut children = node.children();
    while let Ok(Some(child)) = children.next() {
        if let Some(c) = read_node(dwarf, unit, child, depth + 1, info) {
            die.children.push(c);
        }
    }
    info.dies.insert(at, die);
    Some(at)
}

fn global(unit: &gimli::Unit<Slice<'_>>, offset: gimli::UnitOffset) -> Option<DieRef> {
    offset
        .to_debug_info_offset(&unit.header)
        .map(|o| o.0 as DieRef)
}

fn reference(unit: &gimli::Unit<Slice<'_>>, value: AttributeValue<Slice<'_>>) -> Option<DieRef> {
    match value {
        AttributeValue::UnitRef(offset) => global(unit, offset),
        AttributeValue::DebugInfoRef(offset) => Some(offset.0 as DieRef),
        _ => None,
    }
}

impl DebugInfo {
    pub fn die(&self, at: DieRef) -> Option<&Die> {
        self.dies.get(&at)
    }

    /// The first defined function called `name`, in unit order (libdw's
    /// `dwarf_getfuncs` over each unit, as bpftrace's `get_func_die`).
    fn function(&self, name: &str) -> Option<&Die> {
        self.units.iter().flatten().find_map(|at| {
            let die = self.die(*at)?;
            let found = die.tag == dw::DW_TAG_subprogram.0
                && !die.declaration
                && die.name.as_deref() == Some(name);
            found.then_some(die)
        })
    }

    /// The named parameters of function `name` (`None`: DWARF does not have it).
    pub fn params(&self, name: &str) -> Option<Vec<Param>> {
        let function = self.function(name)?;
        Some(
            function
                .children
                .iter()
                .filter_map(|at| self.die(*at))
                .filter(|d| d.tag == dw::DW_TAG_formal_parameter.0)
                .filter_map(|d| {
                    Some(Param {
                        name: d.name.clone()?,
                        ty: d.ty,
                    })
                })
                .collect(),
        )
    }

    /// `-lv`'s lines for function `name` (`int argc`), as bpftrace's
    /// `get_function_params` prints them; none when DWARF lacks the function.
    pub fn param_lines(&self, name: &str) -> Vec<String> {
        self.params(name)
            .unwrap_or_default()
            .iter()
            .map(|p| format!("{} {}", text::type_name(self, p.ty), p.name))
            .collect()
    }

    /// The struct called `name` (without `struct `) at the top level of the first unit
    /// that has one (bpftrace's `find_type` looks at structs only).
    pub fn find_struct(&self, name: &str) -> Option<DieRef> {
        self.units.iter().flatten().copied().find(|at| {
            self.die(*at).is_some_and(|d| {
                d.tag == dw::DW_TAG_structure_type.0
                    && !d.declaration
                    && d.name.as_deref() == Some(name)
            })
        })
    }
}

#[cfg(test)]
mod tests;
