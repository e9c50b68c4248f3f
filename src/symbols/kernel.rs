//! Kernel addresses to symbols from `/proc/kallsyms`, as bcc's `KSyms` (which bpftrace
//! 0.17 uses) resolves them: the nearest symbol at or below the address, however far
//! (measured: a BPF program's address prints as `_einittext+1015066265`), without data
//! symbols (types b, d, r) and without BPF programs' `[bpf]` entries.

/// The kernel's text symbols, sorted by address: (address, name's byte range in
/// `text`). One string and byte-level parsing: the file has ~200k lines, and splitting
/// it into a `String` per name took most of a map print's time in emulated VMs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kallsyms {
    text: String,
    syms: Vec<(u64, u32, u32)>,
}

impl Kallsyms {
    /// Reads `/proc/kallsyms` (empty when it cannot be read: every address is unknown).
    pub fn load() -> Kallsyms {
        Kallsyms::parse(std::fs::read_to_string("/proc/kallsyms").unwrap_or_default())
    }

    /// Parses kallsyms text: `ADDR TYPE NAME[\t[MODULE]]` lines (kept, not copied).
    pub fn parse(text: impl Into<String>) -> Kallsyms {
        let text = text.into();
        let bytes = text.as_bytes();
        let mut syms = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let end = memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            if let Some(sym) = parse_line(bytes, at, end) {
                syms.push(sym);
            }
            at = end + 1;
        }
        // Stable: of symbols at one address the last listed wins, as upper_bound - 1.
        syms.sort_by_key(|&(addr, _, _)| addr);
        Kallsyms { text, syms }
    }

    /// The symbol holding `addr` and the offset into it.
    pub fn resolve(&self, addr: u64) -> Option<(&str, u64)> {
        let after = self.syms.partition_point(|&(a, _, _)| a <= addr);
        let &(start, from, len) = self.syms.get(after.checked_sub(1)?)?;
        let name = self.text.get(from as usize..(from + len) as usize)?;
        Some((name, addr - start))
    }

    /// The address of the first symbol called `name` in kallsyms order, any type
    /// (bpftrace's `resolve_kname` for `kaddr()`).
    pub fn address_of(text: &str, name: &str) -> Option<u64> {
        text.lines().find_map(|line| {
            let mut f = line.split_whitespace();
            let addr = f.next()?;
            f.next()?;
            (f.next()? == name)
                .then(|| u64::from_str_radix(addr, 16).ok())
                .flatten()
        })
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// One line `bytes[from..end]`: a text symbol's address and name range, or `None` for
/// data symbols (types b, d, r), BPF programs (`[bpf]`) and malformed lines.
fn parse_line(bytes: &[u8], from: usize, end: usize) -> Option<(u64, u32, u32)> {
    let line = &bytes[from..end];
    let space = memchr(b' ', line)?;
    let mut addr = 0u64;
    for &b in &line[..space] {
        addr = addr.checked_mul(16)? | u64::from((b as char).to_digit(16)?);
    }
    let kind = *line.get(space + 1)?;
    if matches!(kind, b'b' | b'B' | b'd' | b'D' | b'r' | b'R') || line.get(space + 2) != Some(&b' ')
    {
        return None;
    }
    let name_at = space + 3;
    let rest = line.get(name_at..)?;
    let name_len = rest
        .iter()
        .position(|&b| b == b'\t' || b == b' ')
        .unwrap_or(rest.len());
    if name_len == 0 || rest[name_len..].trim_ascii() == b"[bpf]" {
        return None;
    }
    Some((
        addr,
        u32::try_from(from + name_at).ok()?,
        u32::try_from(name_len).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81000000 T _stext
ffffffff81000100 t entry_SYSCALL_64
ffffffff81000130 t entry_SYSCALL_64_after_hwframe
ffffffff82000000 D some_data
ffffffff8225a090 T do_syscall_64
ffffffff837f5870 T _einittext
ffffffff83b28974 R __stop_runtime_ptr_USER_PTR_MAX
ffffffffc0001398 t bpf_prog_c77b2f3f7259213d_END\t[bpf]
ffffffffc1000000 t xfs_fs_fill_super\t[xfs]
";

    #[test]
    fn resolves_to_the_nearest_text_symbol_below() {
        let k = Kallsyms::parse(TEXT);
        // As bpftrace printed this host's syscall stack: entry_SYSCALL_64_after_hwframe+118.
        assert_eq!(
            k.resolve(0xffffffff81000130 + 118),
            Some(("entry_SYSCALL_64_after_hwframe", 118))
        );
        assert_eq!(k.resolve(0xffffffff8225a090), Some(("do_syscall_64", 0)));
        // Data symbols are skipped: an address past them belongs to the text before.
        assert_eq!(
            k.resolve(0xffffffff82000010),
            Some(("entry_SYSCALL_64_after_hwframe", 0xfffee0))
        );
        // BPF programs resolve to the last kernel symbol, as bpftrace printed BEGIN's
        // frame: _einittext+1015066265.
        assert_eq!(
            k.resolve(0xffffffff837f5870 + 1015066265),
            Some(("_einittext", 1015066265))
        );
        // Module functions keep their name, without the module.
        assert_eq!(
            k.resolve(0xffffffffc1000010),
            Some(("xfs_fs_fill_super", 0x10))
        );
        assert_eq!(k.resolve(0xffffffff80000000), None);
        assert_eq!(Kallsyms::parse("").resolve(0xffffffff81000000), None);
    }

    #[test]
    fn names_resolve_to_their_first_address() {
        assert_eq!(
            Kallsyms::address_of(TEXT, "do_syscall_64"),
            Some(0xffffffff8225a090)
        );
        assert_eq!(
            Kallsyms::address_of(TEXT, "some_data"),
            Some(0xffffffff82000000)
        );
        assert_eq!(Kallsyms::address_of(TEXT, "nosuch"), None);
    }
}
