//! Attach points registered while the script is still being checked and compiled.
//!
//! Registering a kprobe is kernel work (~15-17 ms of a ~130 ms start in the emulated
//! 6.1 VM) that needs nothing sema or codegen find: the function is written out in the
//! script. So once the script is parsed, a thread opens those perf events beside sema
//! and codegen, and the preflight takes them ([`Early::take`]). It starts only after
//! rbt's own read of kernel BTF has ended: registering `kprobe:vfs_read` while rbt's
//! BTF thread was in `read(2)` crashed the emulated 6.1 kernel (docs/PERFORMANCE.md).
//! A failed open is dropped; the preflight repeats it and reports it in turn.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::thread::JoinHandle;

use crate::ast::{AttachPoint, Program};

/// Perf events being opened ahead, by probe name.
#[derive(Debug)]
pub struct Early {
    opening: Mutex<Option<JoinHandle<HashMap<String, OwnedFd>>>>,
}

impl Early {
    /// Starts opening every written-out attach point whose provider has a
    /// [`super::Provider::early`] step, once `ready` returns (rbt's BTF read is over);
    /// `None` if there is none, or no thread could be started.
    pub fn start(program: &Program, ready: impl FnOnce() + Send + 'static) -> Option<Early> {
        // By probe name: a point written twice is opened once.
        let mut points: HashMap<String, (AttachPoint, super::EarlyFn)> = HashMap::new();
        for point in program.probes.iter().flat_map(|p| &p.attach_points) {
            if let Some(open) = point.provider.early.filter(|_| !point.has_wildcard()) {
                points
                    .entry(point.name())
                    .or_insert_with(|| (point.clone(), open));
            }
        }
        if points.is_empty() {
            return None;
        }
        let opening = std::thread::Builder::new()
            .name("rbt-early".into())
            .spawn(move || {
                ready();
                let opened = points
                    .into_iter()
                    .filter_map(|(name, (point, open))| Some((name, open(&point)?)))
                    .collect();
                crate::timings::phase("early attach points");
                opened
            })
            .ok()?;
        Some(Early {
            opening: Mutex::new(Some(opening)),
        })
    }

    /// What was opened, once the thread is done (empty the second time).
    pub fn take(&self) -> HashMap<String, OwnedFd> {
        let opening = self.opening.lock().ok().and_then(|mut o| o.take());
        opening.and_then(|o| o.join().ok()).unwrap_or_default()
    }
}
