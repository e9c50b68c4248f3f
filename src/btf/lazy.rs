//! Kernel BTF read on first use: a `BEGIN`, `interval` or uprobe script never asks for a
//! kernel type, and reading and indexing vmlinux BTF is most of rbt's startup (and
//! several MB of memory) on kernels before 6.16. So sema takes a [`Lazy`], and only a
//! script that touches a kernel type pays for it.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::{Btf, BtfError};

/// BTF that is already loaded (tests, the script's extended types), or a file loaded the
/// first time it is dereferenced. A load error leaves an empty BTF (only `void`) behind
/// and is kept in [`Lazy::error`]: the caller must check it after sema, since every
/// lookup in the empty BTF fails and the errors those give are not the real cause.
pub struct Lazy<'a> {
    source: Source<'a>,
    loaded: OnceLock<Btf>,
    error: OnceLock<BtfError>,
}

enum Source<'a> {
    File(PathBuf),
    Loaded(&'a Btf),
}

impl Lazy<'_> {
    /// BTF to be read from `path` when first needed.
    pub fn file(path: PathBuf) -> Lazy<'static> {
        Lazy {
            source: Source::File(path),
            loaded: OnceLock::new(),
            error: OnceLock::new(),
        }
    }

    /// Whether anything asked for a kernel type (so the file was read, or failed to be).
    pub fn was_read(&self) -> bool {
        self.loaded.get().is_some()
    }

    /// Why the file could not be read, once something needed it.
    pub fn error(&self) -> Option<&BtfError> {
        self.error.get()
    }
}

impl<'a> From<&'a Btf> for Lazy<'a> {
    fn from(btf: &'a Btf) -> Lazy<'a> {
        Lazy {
            source: Source::Loaded(btf),
            loaded: OnceLock::new(),
            error: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for Lazy<'_> {
    type Target = Btf;

    fn deref(&self) -> &Btf {
        match &self.source {
            Source::Loaded(btf) => btf,
            Source::File(path) => self.loaded.get_or_init(|| {
                Btf::load(path).unwrap_or_else(|e| {
                    let _ = self.error.set(e);
                    Btf::empty()
                })
            }),
        }
    }
}
