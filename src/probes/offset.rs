//! `FUNCTION+OFFSET` targets (`kprobe:vfs_read+4`, `uprobe:/bin/sh:main+8`), split as
//! bpftrace 0.17's attach-point parser splits them, for every provider that takes one.

/// An integer as bpftrace's `stoll` reads it: decimal, `0x` hex or `0` octal.
pub fn integer(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u64::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

/// `text` as `(function, offset)`; `None` when it has no `+`. The errors are bpftrace's
/// reasons, phrased for the whole target.
pub fn split(text: &str) -> Result<Option<(&str, u64)>, String> {
    let Some((name, offset)) = text.split_once('+') else {
        return Ok(None);
    };
    if offset.contains('+') {
        return Err(format!("cannot take more than one offset in '{text}'"));
    }
    match integer(offset) {
        Some(offset) if !name.is_empty() => Ok(Some((name, offset))),
        _ => Err(format!("invalid offset in '{text}': write FUNCTION+NUMBER")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_offsets() {
        assert_eq!(integer("0x1149"), Some(0x1149));
        assert_eq!(integer("4425"), Some(4425));
        assert_eq!(integer("010"), Some(8));
        assert_eq!(integer("malloc"), None);
        assert_eq!(split("f+0x4"), Ok(Some(("f", 4))));
        assert_eq!(split("f"), Ok(None));
        assert!(split("f+1+2").is_err());
        assert!(split("+4").is_err());
        assert!(split("f+x").is_err());
    }
}
