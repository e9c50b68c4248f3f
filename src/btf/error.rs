//! Why BTF could not be read: I/O, a malformed blob, or a format rbt does not support.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Every failure names what was wrong and, for malformed data, the byte offset.
#[derive(Debug)]
pub enum BtfError {
    /// The file could not be read (missing `/sys/kernel/btf/vmlinux` means the kernel
    /// was built without `CONFIG_DEBUG_INFO_BTF`).
    Io { path: PathBuf, source: io::Error },
    /// The blob breaks the BTF format: what and at which byte offset.
    Malformed(String),
    /// Valid BTF that rbt cannot use (big-endian, unknown version).
    Unsupported(String),
}

impl BtfError {
    /// Prefix a blob-level error with the file it came from.
    pub(super) fn in_file(self, path: &Path) -> BtfError {
        match self {
            BtfError::Malformed(m) => BtfError::Malformed(format!("{}: {m}", path.display())),
            BtfError::Unsupported(m) => BtfError::Unsupported(format!("{}: {m}", path.display())),
            io @ BtfError::Io { .. } => io,
        }
    }
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Only a missing kernel BTF (`.../vmlinux`) points at the kernel's build.
            BtfError::Io { path, source }
                if source.kind() == io::ErrorKind::NotFound
                    && path.file_name().is_some_and(|n| n == "vmlinux") =>
            {
                write!(
                    f,
                    "{}: {source} (kernel BTF needs CONFIG_DEBUG_INFO_BTF=y)",
                    path.display()
                )
            }
            BtfError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            BtfError::Malformed(m) | BtfError::Unsupported(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BtfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BtfError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
