//! The dynamic loader's cache (`/etc/ld.so.cache`, glibc's "new" format): how bpftrace
//! (through bcc's `bcc_procutils_which_so`) turns `uprobe:libc:malloc` into
//! `/lib/x86_64-linux-gnu/libc.so.6` — the first x86-64 libc6 entry named `libNAME.so*`.

use std::path::PathBuf;

pub const LD_SO_CACHE: &str = "/etc/ld.so.cache";
const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// Header: magic + version (20), nlibs, len_strings, flags and padding, extension
/// offset, three unused words.
const HEADER: usize = 48;
/// Entry: flags, key, value, osversion (4 bytes each), hwcap (8).
const ENTRY: usize = 24;
const FLAG_TYPE_MASK: u32 = 0x00ff;
const FLAG_ELF_LIBC6: u32 = 0x0003;
const FLAG_REQUIRED_MASK: u32 = 0xff00;
const FLAG_X8664_LIB64: u32 = 0x0300;

/// The library file `libNAME` denotes, if the cache lists one.
pub fn which_so(name: &str) -> Option<PathBuf> {
    let cache = std::fs::read(LD_SO_CACHE).ok()?;
    lookup(&cache, name)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The NUL-terminated string at `at`.
fn string_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    bytes.get(at..)?.split(|&c| c == 0).next()
}

fn lookup(cache: &[u8], name: &str) -> Option<PathBuf> {
    // The new format follows an optional old-format table; its string offsets count
    // from its own header.
    let base = cache.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let new = cache.get(base..)?;
    let count = u32_at(new, MAGIC.len())? as usize;
    let prefix = format!("lib{name}.so");
    (0..count).find_map(|i| {
        let at = HEADER + i * ENTRY;
        let flags = u32_at(new, at)?;
        let key = string_at(new, u32_at(new, at + 4)? as usize)?;
        let value = string_at(new, u32_at(new, at + 8)? as usize)?;
        let wanted = flags & FLAG_TYPE_MASK == FLAG_ELF_LIBC6
            && flags & FLAG_REQUIRED_MASK == FLAG_X8664_LIB64
            && key.starts_with(prefix.as_bytes());
        wanted.then(|| PathBuf::from(String::from_utf8_lossy(value).into_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache with two entries, built as ldconfig lays it out.
    fn cache() -> Vec<u8> {
        let mut c = MAGIC.to_vec();
        c.extend(2u32.to_le_bytes());
        c.resize(HEADER, 0);
        let strings = HEADER + 2 * ENTRY;
        let names = [
            "libcap.so.2\0/lib/libcap.so.2\0",
            "libc.so.6\0/lib/x86_64-linux-gnu/libc.so.6\0",
        ];
        let mut at = strings;
        let mut text: Vec<u8> = Vec::new();
        for (flags, n) in [(0x0303u32, names[0]), (0x0303, names[1])] {
            let split = n.find('\0').unwrap() + 1;
            c.extend(flags.to_le_bytes());
            c.extend((at as u32).to_le_bytes());
            c.extend(((at + split) as u32).to_le_bytes());
            c.extend([0u8; 12]);
            text.extend(n.as_bytes());
            at += n.len();
        }
        c.extend(text);
        c
    }

    #[test]
    fn finds_the_first_matching_library() {
        let c = cache();
        assert_eq!(
            lookup(&c, "c"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"))
        );
        assert_eq!(lookup(&c, "cap"), Some(PathBuf::from("/lib/libcap.so.2")));
        assert_eq!(lookup(&c, "nosuch"), None);
        assert_eq!(lookup(b"not a cache", "c"), None);
    }
}
