//! User addresses to symbols, as bcc's `ProcSyms` (which bpftrace 0.17 uses) resolves
//! them: find the executable mapping of `/proc/PID/maps` that holds the address, turn
//! the address into the file's own virtual address (through the mapping's file offset
//! and the ELF's `PT_LOAD` segments, so PIE and shared objects work), and look it up in
//! `.symtab`/`.dynsym` — or, when the file has no `.symtab`, in its debug file
//! (`/usr/lib/debug/.build-id/xx/rest.debug`). A process that has exited resolves
//! nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::elf::{self, Elf};

/// One executable file mapping of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

/// The executable, file-backed mappings in `/proc/PID/maps` text.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (start, end) = f.next()?.split_once('-')?;
            let perms = f.next()?;
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let (_dev, _inode) = (f.next()?, f.next()?);
            let path = f.collect::<Vec<_>>().join(" ");
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            (perms.as_bytes().get(2) == Some(&b'x') && path.starts_with('/')).then_some(Mapping {
                start,
                end,
                offset,
                path,
            })
        })
        .collect()
}

/// A resolved user address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSymbol {
    pub name: String,
    pub offset: u64,
    /// The mapped file's path, as `/proc/PID/maps` names it.
    pub module: String,
}

/// Parsed ELF files by path, with their debug files' symbols.
#[derive(Default)]
pub struct ElfCache {
    files: HashMap<PathBuf, Option<Arc<Symbols>>>,
}

/// What symbolising needs of one file.
struct Symbols {
    elf: Elf,
    /// The debug file, when the file itself has no `.symtab`.
    debug: Option<Elf>,
}

impl ElfCache {
    /// `addr` in process `pid`, if a mapping and a symbol hold it.
    pub fn resolve(&mut self, pid: u32, addr: u64) -> Option<UserSymbol> {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
        let map = parse_maps(&maps)
            .into_iter()
            .find(|m| m.start <= addr && addr < m.end)?;
        // The file as this process sees it (its root may differ from ours).
        let root = format!("/proc/{pid}/root{}", map.path);
        let syms = self.load(Path::new(&root))?;
        let vaddr = syms.elf.vaddr_of_offset(addr - map.start + map.offset)?;
        let table = syms.debug.as_ref().unwrap_or(&syms.elf);
        let sym = table.symbol_at(vaddr)?;
        Some(UserSymbol {
            name: sym.name.clone(),
            offset: vaddr - sym.value,
            module: map.path,
        })
    }

    fn load(&mut self, path: &Path) -> Option<Arc<Symbols>> {
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let elf = elf::parse(&std::fs::read(path).ok()?).ok()?;
                let debug = match (&elf.build_id, elf.has_symtab) {
                    (Some(id), false) if !id.is_empty() => debug_file(id),
                    _ => None,
                };
                Some(Arc::new(Symbols { elf, debug }))
            })
            .clone()
    }
}

/// The debug file named by build id `id`, parsed.
fn debug_file(id: &[u8]) -> Option<Elf> {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    elf::parse(&std::fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_file_mappings_only() {
        let text = "\
00400000-00401000 r--p 00000000 08:01 123 /tmp/stk/rbtstk
00401000-00402000 r-xp 00001000 08:01 123 /tmp/stk/rbtstk
7fa0e3d2e000-7fa0e3ea5000 r-xp 00026000 08:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 [vdso]
7ffe0000-7ffe1000 rw-p 00000000 00:00 0 [stack]
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 2);
        assert_eq!(
            maps[0],
            Mapping {
                start: 0x401000,
                end: 0x402000,
                offset: 0x1000,
                path: "/tmp/stk/rbtstk".into()
            }
        );
        assert_eq!(maps[1].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
    }

    /// This test's own `main`, through this process's mappings, as a stack would hold it.
    #[test]
    fn resolves_addresses_in_a_live_process() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let elf = elf::parse(&std::fs::read(&exe).unwrap()).unwrap();
        let main = elf.symbol("main").unwrap().clone();
        let offset = elf.file_offset(main.value).unwrap();
        let maps = parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
        let map = maps
            .iter()
            .find(|m| {
                Path::new(&m.path) == exe
                    && m.offset <= offset
                    && offset - m.offset < m.end - m.start
            })
            .expect("main's mapping");
        let addr = map.start + offset - map.offset + 1;
        let sym = ElfCache::default()
            .resolve(std::process::id(), addr)
            .expect("resolved");
        assert_eq!((sym.name.as_str(), sym.offset), ("main", 1));
        assert_eq!(Path::new(&sym.module), exe);
        assert_eq!(ElfCache::default().resolve(std::process::id(), 8), None);
    }
}
