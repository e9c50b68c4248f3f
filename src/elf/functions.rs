//! The function symbols of an ELF file as bpftrace 0.17 lists them for
//! `-l 'uprobe:PATH:*'` (bcc's `bcc_elf_foreach_sym` with `STT_FUNC | STT_GNU_IFUNC`):
//! every named `.symtab`/`.dynsym` function whose value is not zero (bcc does not look at
//! the section index, so a non-PIE executable's canonical PLT entries count), plus those
//! of its build-id debug file. Read with positioned reads: a wildcard over `PATH` opens
//! hundreds of binaries, some of them hundreds of megabytes.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{gnu_build_id, has_magic, SHT_DYNSYM, SHT_NOTE, SHT_SYMTAB, SYM_SIZE};

const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const SECTION_HEADER: usize = 64;

/// What listing needs of one file.
#[derive(Debug, Default)]
pub struct Functions {
    pub names: BTreeSet<String>,
    /// Whether it has a `.debug_info` section (DWARF, which `-lv` reads).
    pub has_dwarf: bool,
    /// Its build-id debug file, when that exists.
    pub debug_file: Option<std::path::PathBuf>,
}

struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

/// Reads `len` bytes at `at`, refusing ranges past the end (a corrupt header must not
/// allocate gigabytes).
fn read_at(file: &File, file_len: u64, at: u64, len: u64) -> Option<Vec<u8>> {
    if at.checked_add(len)? > file_len {
        return None;
    }
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, at).ok()?;
    Some(buf)
}

fn word<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    word::<2>(b, at).map(|w| u64::from(u16::from_le_bytes(w)))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    word::<4>(b, at).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    word::<8>(b, at).map(u64::from_le_bytes)
}

/// The NUL-terminated name at `at` of a string table.
fn name_at(strtab: &[u8], at: u32) -> &[u8] {
    let rest = strtab.get(at as usize..).unwrap_or_default();
    rest.split(|&c| c == 0).next().unwrap_or_default()
}

/// The function symbols of `path` and of its debug file; `None` when it cannot be read
/// as a 64-bit little-endian ELF file (bpftrace then warns and lists nothing for it).
pub fn functions(path: &Path) -> Option<Functions> {
    let mut found = own_functions(path)?;
    let debug = found.1.map(|id| debug_file(&id));
    if let Some(symbols) = debug.as_ref().and_then(|file| own_functions(file)) {
        found.0.names.extend(symbols.0.names);
        found.0.debug_file = debug;
    }
    Some(found.0)
}

/// Where the debug file of build id `id` lives.
fn debug_file(id: &[u8]) -> std::path::PathBuf {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let (dir, rest) = hex.split_at(2.min(hex.len()));
    format!("/usr/lib/debug/.build-id/{dir}/{rest}.debug").into()
}

/// The file's own functions and its build id.
fn own_functions(path: &Path) -> Option<(Functions, Option<Vec<u8>>)> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let header = read_at(&file, len, 0, 64)?;
    if !has_magic(&header) || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let shoff = u64_at(&header, 40)?;
    let shentsize = u16_at(&header, 58)?;
    let shnum = u16_at(&header, 60)?;
    let shstrndx = u16_at(&header, 62)? as usize;
    if shnum == 0 {
        return Some((Functions::default(), None));
    }
    if (shentsize as usize) < SECTION_HEADER {
        return None;
    }
    let table = read_at(&file, len, shoff, shentsize * shnum)?;
    let sections: Vec<Section> = table
        .chunks_exact(shentsize as usize)
        .map(|h| {
            Some(Section {
                name: u32_at(h, 0)?,
                kind: u32_at(h, 4)?,
                offset: u64_at(h, 24)?,
                size: u64_at(h, 32)?,
                link: u32_at(h, 40)?,
            })
        })
        .collect::<Option<_>>()?;
    let data = |s: &Section| read_at(&file, len, s.offset, s.size);
    let mut found = Functions::default();
    if let Some(names) = sections.get(shstrndx).and_then(data) {
        found.has_dwarf = sections
            .iter()
            .any(|s| name_at(&names, s.name) == b".debug_info");
    }
    let build_id = sections
        .iter()
        .filter(|s| s.kind == SHT_NOTE)
        .filter_map(data)
        .find_map(|notes| gnu_build_id(&notes));
    for table in sections
        .iter()
        .filter(|s| s.kind == SHT_SYMTAB || s.kind == SHT_DYNSYM)
    {
        let strings = sections.get(table.link as usize).and_then(data)?;
        let symbols = data(table)?;
        for sym in symbols.chunks_exact(SYM_SIZE) {
            let kind = sym[4] & 0xf;
            let value = u64_at(sym, 8)?;
            let name = name_at(&strings, u32_at(sym, 0)?);
            if (kind == STT_FUNC || kind == STT_GNU_IFUNC) && value != 0 && !name.is_empty() {
                found
                    .names
                    .insert(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    Some((found, build_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running test binary has `main` and no undefined or data symbols listed.
    #[test]
    fn lists_the_test_binary_functions() {
        let exe = std::env::current_exe().unwrap();
        let found = functions(&exe).unwrap();
        assert!(found.names.contains("main"));
        let bytes = std::fs::read(&exe).unwrap();
        let elf = super::super::parse(&bytes).unwrap();
        for name in elf.symbols().filter(|s| s.object).map(|s| &s.name) {
            assert!(!found.names.contains(name), "{name} is an object");
        }
        assert!(functions(Path::new("/nonexistent")).is_none());
    }
}
