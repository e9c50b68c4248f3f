//! `cat()`: the file named by the formatted text, as bpftrace 0.17's `cat_file` prints
//! it: at most `BPFTRACE_CAT_BYTES_MAX` bytes (10 KiB by default), no newline added; a
//! file that cannot be opened or read is an `ERROR:` line on stderr (written after
//! stdout is flushed: bpftrace's `std::cerr` is tied to `std::cout`).

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

/// bpftrace 0.17's `cat_bytes_max_`.
pub const DEFAULT_BYTES_MAX: u64 = 10240;

/// Up to `max` bytes of the file at `path` (what was read before an error, too), and
/// the error message if it could not be opened or read.
pub fn read(path: &[u8], max: u64) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    let result = std::fs::File::open(OsStr::from_bytes(path))
        .and_then(|file| file.take(max).read_to_end(&mut out));
    let error = result.err().map(|e| {
        // bpftrace's message: `strerror` text, without Rust's " (os error N)".
        let text = e.to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_string();
        format!(
            "ERROR: failed to open file '{}': {text}",
            String::from_utf8_lossy(path)
        )
    });
    (out, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_at_most_max_bytes() {
        let path = std::env::temp_dir().join(format!("rbt-cat-{}", std::process::id()));
        std::fs::write(&path, b"line1\nline2").unwrap();
        let name = path.as_os_str().as_bytes();
        assert_eq!(read(name, 10240), (b"line1\nline2".to_vec(), None));
        assert_eq!(read(name, 3).0, b"lin");
        std::fs::remove_file(&path).unwrap();
        let (text, error) = read(b"/nonexistent/rbt", 10);
        assert!(text.is_empty());
        assert_eq!(
            error.as_deref(),
            Some("ERROR: failed to open file '/nonexistent/rbt': No such file or directory")
        );
    }
}
