//! A minimal ELF64 little-endian reader: just what uprobes need. The kernel places a
//! uprobe at a *file offset* of an inode, so a symbol's virtual address must be mapped
//! back through the `PT_LOAD` segment that holds it (`vaddr - p_vaddr + p_offset`), the
//! same for non-PIE executables, PIE executables and shared objects.

pub mod functions;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What kind of object file (`e_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `ET_EXEC`: a non-PIE executable.
    Executable,
    /// `ET_DYN`: a PIE executable or a shared object.
    Shared,
    /// `ET_REL`, `ET_CORE` or a processor-specific type: nothing a uprobe can use.
    Other(u16),
}

/// One defined symbol of `.symtab` or `.dynsym`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    /// Its virtual address (`st_value`).
    pub value: u64,
    pub size: u64,
    /// `STT_OBJECT`: a variable (what `uaddr()` looks up).
    pub object: bool,
}

/// One `PT_LOAD` program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
}

/// The parts of an ELF file a uprobe needs.
#[derive(Clone, Debug)]
pub struct Elf {
    pub kind: ObjectKind,
    segments: Vec<Segment>,
    /// Defined symbols, `.symtab` ones first (a stripped binary has only `.dynsym`).
    symbols: Vec<Symbol>,
    /// Whether it has a `.symtab` (else its full symbols may be in a debug file).
    pub has_symtab: bool,
    /// The GNU build id (`.note.gnu.build-id`), which names its debug file.
    pub build_id: Option<Vec<u8>>,
}

/// Why bytes are not a usable ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// No `\x7fELF` magic.
    NotElf,
    /// ELF, but not 64-bit little-endian (the only kind x86-64 runs).
    Unsupported(&'static str),
    /// A header or table points outside the file.
    Truncated(&'static str),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => f.write_str("not an ELF file"),
            ElfError::Unsupported(what) => write!(f, "unsupported ELF file: {what}"),
            ElfError::Truncated(what) => write!(f, "truncated ELF file ({what})"),
        }
    }
}

const PT_LOAD: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const SHT_NOTE: u32 = 7;
const NT_GNU_BUILD_ID: u32 = 3;
const STT_OBJECT: u8 = 1;
const SHN_UNDEF: u16 = 0;
const SYM_SIZE: usize = 24;

/// Bounds-checked little-endian reads.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn slice(&self, at: u64, len: u64, what: &'static str) -> Result<&[u8], ElfError> {
        let start = usize::try_from(at).map_err(|_| ElfError::Truncated(what))?;
        let len = usize::try_from(len).map_err(|_| ElfError::Truncated(what))?;
        let end = start.checked_add(len).ok_or(ElfError::Truncated(what))?;
        self.0.get(start..end).ok_or(ElfError::Truncated(what))
    }

    fn u16(&self, at: u64, what: &'static str) -> Result<u16, ElfError> {
        let b = self.slice(at, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, at: u64, what: &'static str) -> Result<u32, ElfError> {
        let b = self.slice(at, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&self, at: u64, what: &'static str) -> Result<u64, ElfError> {
        let b = self.slice(at, 8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Why [`load`] could not give a file's symbols.
#[derive(Debug)]
pub enum LoadError {
    Read(std::io::Error),
    Elf(ElfError),
}

/// The parsed file at `path`, read once per run: a uprobe's binary is looked up when sema
/// checks its symbol, when it resolves the attach point, and when it attaches, and
/// several probes often name one library (gethostlatency.bt: three in libc).
pub fn load(path: &Path) -> Result<Arc<Elf>, LoadError> {
    static FILES: Mutex<Vec<(PathBuf, Arc<Elf>)>> = Mutex::new(Vec::new());
    let mut files = FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, elf)) = files.iter().find(|(p, _)| p == path) {
        return Ok(elf.clone());
    }
    let bytes = std::fs::read(path).map_err(LoadError::Read)?;
    let elf = Arc::new(parse(&bytes).map_err(LoadError::Elf)?);
    files.push((path.to_path_buf(), elf.clone()));
    Ok(elf)
}

/// Whether `bytes` start like an ELF file (cheap test before reading a whole file).
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Parses the ELF header, the `PT_LOAD` segments and the symbol tables.
pub fn parse(bytes: &[u8]) -> Result<Elf, ElfError> {
    if !has_magic(bytes) {
        return Err(ElfError::NotElf);
    }
    let b = Bytes(bytes);
    let ident = b.slice(0, 16, "identification")?;
    if ident[4] != 2 {
        return Err(ElfError::Unsupported("not 64-bit"));
    }
    if ident[5] != 1 {
        return Err(ElfError::Unsupported("not little-endian"));
    }
    let kind = match b.u16(16, "header")? {
        2 => ObjectKind::Executable,
        3 => ObjectKind::Shared,
        other => ObjectKind::Other(other),
    };
    let phoff = b.u64(32, "header")?;
    let shoff = b.u64(40, "header")?;
    let phentsize = u64::from(b.u16(54, "header")?);
    let phnum = u64::from(b.u16(56, "header")?);
    let shentsize = u64::from(b.u16(58, "header")?);
    let shnum = u64::from(b.u16(60, "header")?);

    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        if b.u32(at, "program headers")? == PT_LOAD {
            segments.push(Segment {
                offset: b.u64(at + 8, "program headers")?,
                vaddr: b.u64(at + 16, "program headers")?,
                memsz: b.u64(at + 40, "program headers")?,
            });
        }
    }

    struct Section {
        kind: u32,
        offset: u64,
        size: u64,
        link: u32,
    }
    let mut sections = Vec::new();
    for i in 0..shnum {
        let at = shoff + i * shentsize;
        sections.push(Section {
            kind: b.u32(at + 4, "section headers")?,
            offset: b.u64(at + 24, "section headers")?,
            size: b.u64(at + 32, "section headers")?,
            link: b.u32(at + 40, "section headers")?,
        });
    }
    let mut build_id = None;
    for note in sections.iter().filter(|s| s.kind == SHT_NOTE) {
        let data = b.slice(note.offset, note.size, "notes")?;
        build_id = build_id.or_else(|| gnu_build_id(data));
    }
    let has_symtab = sections.iter().any(|s| s.kind == SHT_SYMTAB);
    let mut symbols = Vec::new();
    for wanted in [SHT_SYMTAB, SHT_DYNSYM] {
        for table in sections.iter().filter(|s| s.kind == wanted) {
            let strings = sections
                .get(table.link as usize)
                .ok_or(ElfError::Truncated("symbol string table"))?;
            let strtab = b.slice(strings.offset, strings.size, "symbol string table")?;
            let data = b.slice(table.offset, table.size, "symbol table")?;
            for sym in data.chunks_exact(SYM_SIZE) {
                let s = Bytes(sym);
                let shndx = s.u16(6, "symbol")?;
                let value = s.u64(8, "symbol")?;
                if shndx == SHN_UNDEF || value == 0 {
                    continue;
                }
                let name_at = s.u32(0, "symbol")? as usize;
                let name = strtab.get(name_at..).unwrap_or_default();
                let name = name.split(|&c| c == 0).next().unwrap_or_default();
                symbols.push(Symbol {
                    name: String::from_utf8_lossy(name).into_owned(),
                    value,
                    size: s.u64(16, "symbol")?,
                    object: sym[4] & 0xf == STT_OBJECT,
                });
            }
        }
    }
    Ok(Elf {
        kind,
        segments,
        symbols,
        has_symtab,
        build_id,
    })
}

/// The contents of the section called `name` (`.debug_info`), when the file has it
/// uncompressed (a `SHF_COMPRESSED` section counts as absent: rbt has no zlib).
pub fn section<'b>(bytes: &'b [u8], name: &str) -> Option<&'b [u8]> {
    const SHF_COMPRESSED: u64 = 0x800;
    const SHT_NOBITS: u32 = 8;
    let b = Bytes(bytes);
    let shoff = b.u64(40, "header").ok()?;
    let shentsize = u64::from(b.u16(58, "header").ok()?);
    let shnum = u64::from(b.u16(60, "header").ok()?);
    let shstrndx = u64::from(b.u16(62, "header").ok()?);
    let header = |i: u64| {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = b.u32(at, "section headers").ok()?;
        let kind = b.u32(at + 4, "section headers").ok()?;
        let flags = b.u64(at + 8, "section headers").ok()?;
        let offset = b.u64(at + 24, "section headers").ok()?;
        let size = b.u64(at + 32, "section headers").ok()?;
        Some((name, kind, flags, offset, size))
    };
    let (_, _, _, str_off, str_size) = header(shstrndx)?;
    let names = b.slice(str_off, str_size, "section names").ok()?;
    (0..shnum).find_map(move |i| {
        let (at, kind, flags, offset, size) = header(i)?;
        let text = names.get(at as usize..)?.split(|&c| c == 0).next()?;
        if text != name.as_bytes() || kind == SHT_NOBITS || flags & SHF_COMPRESSED != 0 {
            return None;
        }
        let start = usize::try_from(offset).ok()?;
        bytes.get(start..start.checked_add(usize::try_from(size).ok()?)?)
    })
}

/// The descriptor of the `GNU` `NT_GNU_BUILD_ID` note among `notes`, if there is one.
fn gnu_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    let word = |b: &[u8], at: usize| Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?));
    while notes.len() >= 12 {
        let (namesz, descsz, kind) = (word(notes, 0)?, word(notes, 4)?, word(notes, 8)?);
        let name_end = 12 + (namesz as usize).next_multiple_of(4);
        let desc_end = name_end + (descsz as usize).next_multiple_of(4);
        let name = notes.get(12..12 + namesz as usize)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return Some(notes.get(name_end..name_end + descsz as usize)?.to_vec());
        }
        notes = notes.get(desc_end..)?;
    }
    None
}

impl Elf {
    /// The defined symbol called `name` (`.symtab` before `.dynsym`).
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|s| s.name == name)
    }

    /// Every defined symbol, `.symtab` ones first.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.symbols.iter()
    }

    /// The sized symbol whose extent holds virtual address `addr`.
    pub fn symbol_at(&self, addr: u64) -> Option<&Symbol> {
        self.symbols
            .iter()
            .find(|s| s.value <= addr && addr < s.value.saturating_add(s.size.max(1)))
    }

    /// The virtual address file offset `offset` is loaded at (the inverse of
    /// [`Elf::file_offset`]): where a mapped address is in the file's own terms.
    pub fn vaddr_of_offset(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| s.offset <= offset && offset < s.offset.saturating_add(s.memsz))
            .map(|s| offset - s.offset + s.vaddr)
    }

    /// The file offset virtual address `vaddr` is loaded from, through its `PT_LOAD`
    /// segment: what the kernel's uprobe wants.
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| s.vaddr <= vaddr && vaddr < s.vaddr.saturating_add(s.memsz))
            .map(|s| vaddr - s.vaddr + s.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running test binary is itself an ELF64 file with symbols.
    #[test]
    fn reads_the_test_binary() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = parse(&bytes).unwrap();
        assert!(matches!(
            elf.kind,
            ObjectKind::Executable | ObjectKind::Shared
        ));
        let main = elf.symbol("main").expect("main in .symtab");
        assert_eq!(elf.symbol_at(main.value).map(|s| &s.name), Some(&main.name));
        let offset = elf.file_offset(main.value).unwrap();
        assert!(offset < bytes.len() as u64);
        assert_eq!(elf.vaddr_of_offset(offset), Some(main.value));
        assert!(elf.has_symtab && !main.object);
        assert_eq!(elf.build_id.as_ref().map(Vec::len), Some(20));
    }

    /// A non-PIE layout: text loaded from file offset 0x1000 at 0x401000.
    #[test]
    fn maps_addresses_through_their_segment() {
        let mut bytes = vec![0u8; 64 + 56];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[16] = 2;
        bytes[32] = 64; // e_phoff
        bytes[54] = 56; // e_phentsize
        bytes[56] = 1; // e_phnum
        let ph = &mut bytes[64..];
        ph[0] = 1; // PT_LOAD
        ph[8..16].copy_from_slice(&0x1000u64.to_le_bytes());
        ph[16..24].copy_from_slice(&0x40_1000u64.to_le_bytes());
        ph[40..48].copy_from_slice(&0x100u64.to_le_bytes());
        let elf = parse(&bytes).unwrap();
        assert_eq!(elf.file_offset(0x40_1010), Some(0x1010));
        assert_eq!(elf.file_offset(0x40_1100), None);
        assert_eq!(elf.file_offset(0x1010), None);
    }

    #[test]
    fn rejects_other_files() {
        assert_eq!(parse(b"#!/bin/sh\n").unwrap_err(), ElfError::NotElf);
        assert_eq!(
            parse(b"\x7fELF\x01\x01").unwrap_err(),
            ElfError::Truncated("identification")
        );
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 1;
        assert_eq!(
            parse(&bytes).unwrap_err(),
            ElfError::Unsupported("not 64-bit")
        );
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[16] = 2;
        // No program or section headers: valid, nothing in it.
        let elf = parse(&bytes).unwrap();
        assert_eq!(elf.kind, ObjectKind::Executable);
        assert_eq!(elf.file_offset(0x1000), None);
        // A section table past the end of the file.
        bytes[40] = 0xff;
        bytes[60] = 1;
        assert_eq!(
            parse(&bytes).unwrap_err(),
            ElfError::Truncated("section headers")
        );
    }
}
