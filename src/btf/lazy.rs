//! Kernel BTF read on first use: a `BEGIN`, `interval` or uprobe script never asks for a
//! kernel type, and reading and indexing vmlinux BTF is most of rbt's startup (and
//! several MB of memory) on kernels before 6.16. So sema takes a [`Lazy`], and only a
//! script that touches a kernel type pays for it.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use super::{Btf, BtfError};

/// BTF that is already loaded (tests, the script's extended types), or a file loaded the
/// first time it is dereferenced. A load error leaves an empty BTF (only `void`) behind
/// and is kept in [`Lazy::error`]: the caller must check it after sema, since every
/// lookup in the empty BTF fails and the errors those give are not the real cause.
pub struct Lazy<'a> {
    source: Source<'a>,
    /// The read [`Lazy::prefetch`] started, taken by the first dereference.
    reading: Mutex<Option<JoinHandle<Result<Btf, BtfError>>>>,
    /// Closed (or sent on) when that thread's read of the file is over.
    read_over: Mutex<Option<Receiver<()>>>,
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
            reading: Mutex::new(None),
            read_over: Mutex::new(None),
            loaded: OnceLock::new(),
            error: OnceLock::new(),
        }
    }

    /// BTF from `path`, read from now on by a thread of its own, for a script that
    /// will likely need it: the read overlaps parsing (in the emulated 6.1 VM,
    /// reading vmlinux BTF through sysfs takes longer than everything before sema).
    /// Unused, it costs that thread's work and memory, and dropping the `Lazy` waits for
    /// the read to end.
    pub fn prefetch(path: PathBuf) -> Lazy<'static> {
        let mut lazy = Lazy::file(path.clone());
        let (over, read_over) = sync_channel(1);
        let reading = std::thread::Builder::new()
            .name("rbt-btf".into())
            .spawn(move || {
                Btf::load_then(&path, || {
                    let _ = over.send(());
                })
            })
            .ok();
        lazy.read_over = Mutex::new(reading.is_some().then_some(read_over));
        lazy.reading = Mutex::new(reading);
        lazy
    }

    /// For a prefetch (once): something that blocks until its thread's `read(2)` of the
    /// file is over, so that work racing a system call of rbt's (registering kprobes,
    /// see `probes::early`) can wait for it. `None` without a prefetch, when the read
    /// happens on first use, at a time nobody knows ahead.
    pub fn when_read(&self) -> Option<impl FnOnce() + Send + 'static> {
        let over = self.read_over.lock().ok()?.take()?;
        Some(move || {
            // A message, or the sender dropped: the read ended either way.
            let _ = over.recv();
        })
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

/// A read nobody took (the guess that the script needs kernel types was wrong) is waited
/// for, not left running: rbt attaches probes next, and registering a kprobe while
/// another of its threads was in `read(2)` crashed the emulated 6.1 kernel.
impl Drop for Lazy<'_> {
    fn drop(&mut self) {
        let reading = self.reading.get_mut().ok().and_then(Option::take);
        if let Some(reading) = reading {
            let _ = reading.join();
        }
    }
}

impl<'a> From<&'a Btf> for Lazy<'a> {
    fn from(btf: &'a Btf) -> Lazy<'a> {
        Lazy {
            source: Source::Loaded(btf),
            reading: Mutex::new(None),
            read_over: Mutex::new(None),
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
                let reading = self.reading.lock().ok().and_then(|mut r| r.take());
                let loaded = match reading.map(JoinHandle::join) {
                    Some(Ok(loaded)) => loaded,
                    // No prefetch, or its thread died: read here.
                    _ => Btf::load(path),
                };
                loaded.unwrap_or_else(|e| {
                    let _ = self.error.set(e);
                    Btf::empty()
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_prefetch_says_when_its_read_is_over() {
        let path = PathBuf::from("tests/data/vmlinux-6.18.btf");
        assert!(Lazy::file(path.clone()).when_read().is_none());
        let lazy = Lazy::prefetch(path);
        let read = lazy.when_read().expect("a prefetch in flight");
        assert!(lazy.when_read().is_none(), "handed out once");
        read();
        assert!(!lazy.was_read(), "waiting takes nothing");
        assert!(lazy.find_type("struct task_struct").is_some());
        // A read that fails says so too, instead of leaving the waiter blocked.
        let missing = Lazy::prefetch(PathBuf::from("/nonexistent/vmlinux"));
        missing.when_read().expect("a prefetch in flight")();
        let _ = &*missing;
        assert!(missing.error().is_some());
    }
}
