//! Attaching loaded programs: the [`Attacher`] carries what one session learns about the
//! system (the tracefs mount, legacy kprobe events) and hands each attach point to its
//! probe provider (`probes/`), which knows how to attach that type.
//!
//! Every attachment is a perf event (plus, from Linux 5.15, a BPF link on it) owned by
//! a file descriptor, so the kernel detaches it by itself when rbt exits or dies; what
//! does not die with an fd (a tracefs kprobe event) is undone by the attachment's cleanup.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::error::RuntimeError;
use crate::abi::paths::TRACEFS_DIRS;
use crate::ast::AttachPoint;
use crate::codegen::ProgramCode;
use crate::probes;
use crate::sys;

/// A program attached to a perf event; detached when dropped.
#[derive(Debug)]
pub struct PerfAttachment {
    /// Dropped first: the link, then the event it hangs on.
    link: Option<OwnedFd>,
    perf: OwnedFd,
}

/// One live attachment.
pub struct Attachment {
    /// One per perf event: per-CPU probes (profile, software) have one per online CPU.
    perf: Vec<PerfAttachment>,
    /// BPF links on no perf event (a kprobe_multi link on many functions).
    links: Vec<OwnedFd>,
    /// Undoes global state the attachment created (a tracefs kprobe event), after detaching.
    cleanup: Option<Box<dyn FnOnce()>>,
    /// Whether each run of the program happens with preemption disabled, from looking it
    /// up to its end, so one RCU grace period after unlinking ends every run (see
    /// [`detach_all`]); set by the providers that know it.
    runs_unpreempted: bool,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("perf", &self.perf)
            .field("links", &self.links.len())
            .field("cleanup", &self.cleanup.is_some())
            .field("runs_unpreempted", &self.runs_unpreempted)
            .finish()
    }
}

impl Attachment {
    /// An attachment that is nothing but its perf event.
    pub fn perf(perf: PerfAttachment) -> Attachment {
        Attachment::perfs(vec![perf])
    }

    /// An attachment made of several perf events (one per CPU), detached together.
    pub fn perfs(perf: Vec<PerfAttachment>) -> Attachment {
        Attachment {
            perf,
            links: Vec::new(),
            cleanup: None,
            runs_unpreempted: false,
        }
    }

    /// An attachment that is one BPF link (a kprobe_multi link).
    pub fn link(link: OwnedFd) -> Attachment {
        Attachment {
            perf: Vec::new(),
            links: vec![link],
            cleanup: None,
            runs_unpreempted: false,
        }
    }

    /// Marks the program as run with preemption disabled from the moment the kernel
    /// looks it up until it returns (tracepoints and perf events: `trace_call_bpf` and
    /// the overflow handler). Not uprobes: they look their programs up under RCU Tasks
    /// Trace and run them preemptible, which one RCU grace period does not wait for.
    pub fn runs_unpreempted(mut self) -> Attachment {
        self.runs_unpreempted = true;
        self
    }

    /// An attachment (perf event still to come) whose drop runs `cleanup`.
    pub fn cleanup(cleanup: impl FnOnce() + 'static) -> Attachment {
        Attachment {
            perf: Vec::new(),
            links: Vec::new(),
            cleanup: Some(Box::new(cleanup)),
            runs_unpreempted: false,
        }
    }

    pub fn set_perf(&mut self, perf: PerfAttachment) {
        self.perf = vec![perf];
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.perf.clear();
        self.links.clear();
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

/// Detaches every attachment; when this returns no program can still run, so the maps
/// hold their final values (bar END). Closing a tracepoint's BPF link waits in the
/// kernel for an RCU Tasks Trace grace period (~25 ms, `perf_event_detach_bpf_prog`)
/// after taking the program off, and closing its perf event for more grace periods, so
/// where it can this leaves both to threads ([`Detached`]) that overlap reading and
/// printing the maps:
/// 1. closing a link takes its program off the event (the tracepoint's program array,
///    or the perf event's overflow handler) at once; a run that already began may still
///    be going on another CPU — with preemption disabled from the lookup of the program
///    to its end, for the attachments marked [`Attachment::runs_unpreempted`]. The links
///    are closed on a thread; this one waits until [`sys::tracepoint_prog_ids`] no
///    longer lists each program (read under the lock the removal holds), or where that
///    cannot be asked (perf events, kernels that hold the lock through the grace
///    period), until the thread is done;
/// 2. [`sys::visit_every_cpu`] then waits for every such run to end (this thread runs
///    on each CPU in turn, which a CPU allows only outside such sections; well under a
///    millisecond), or where it cannot, [`sys::synchronize_rcu`] (a grace period, 8-25
///    ms);
/// 3. the perf events, now without a program, are closed on another thread.
///
/// `PERF_EVENT_IOC_DISABLE` would not do instead of step 1: a tracepoint runs its BPF
/// programs whether or not the perf event is enabled (`perf_trace_run_bpf_submit`).
/// Other attachments (uprobes, kprobes, those without a link on kernels before 5.15),
/// and all of them if the barrier is refused, are closed here as before, from
/// several threads so the waits overlap (bpftrace closes them one by one).
pub fn detach_all(attachments: Vec<Attachment>) -> Detached {
    let (mut linked, others): (Vec<Attachment>, Vec<Attachment>) =
        attachments.into_iter().partition(|a| {
            a.runs_unpreempted
                && a.cleanup.is_none()
                && a.links.is_empty()
                && !a.perf.is_empty()
                && a.perf.iter().all(|p| p.link.is_some())
        });
    let mut closing: Vec<Box<dyn Send>> = Vec::new();
    let mut others = others;
    for a in &mut others {
        closing.extend(a.perf.drain(..).map(|p| Box::new(p) as Box<dyn Send>));
        // kprobe_multi links, on no perf event.
        closing.extend(a.links.drain(..).map(|l| Box::new(l) as Box<dyn Send>));
    }
    let mut links = Vec::new();
    // Each event with the id of the program its link runs (`None`: unknown).
    let mut events: Vec<(OwnedFd, Option<u32>)> = Vec::new();
    for p in linked.iter_mut().flat_map(|a| std::mem::take(&mut a.perf)) {
        let id = p
            .link
            .as_ref()
            .and_then(|l| sys::link_prog_id(l.as_fd()).ok());
        links.extend(p.link);
        events.push((p.perf, id));
    }
    drop(linked);
    // A thread that cannot start drops `links` here, closing them before going on.
    let unlinking = match links.is_empty() {
        true => None,
        false => std::thread::Builder::new()
            .name("rbt-unlink".into())
            .spawn(move || close_in_parallel(links))
            .ok(),
    };
    close_in_parallel(closing);
    drop(others); // their cleanups, after their events are closed
    let mut threads = Vec::new();
    if let Some(thread) = unlinking {
        if !wait_unlinked(&events, &thread) {
            let _ = thread.join();
        } else {
            threads.push(thread);
        }
    }
    let events: Vec<OwnedFd> = events.into_iter().map(|(event, _)| event).collect();
    if events.is_empty() {
        return Detached(threads);
    }
    // Running on every CPU in turn waits out the same sections as a grace period does.
    if sys::visit_every_cpu().is_err() && sys::synchronize_rcu().is_err() {
        close_in_parallel(events);
        return Detached(threads);
    }
    // A thread that cannot start drops `events` here (the closure is dropped with it).
    threads.extend(
        std::thread::Builder::new()
            .spawn(move || close_in_parallel(events))
            .ok(),
    );
    Detached(threads)
}

/// Waits, while `unlinking` closes the links, until no event's tracepoint lists its
/// program any more; `false` (without waiting) if that cannot be told for some event.
fn wait_unlinked(events: &[(OwnedFd, Option<u32>)], unlinking: &JoinHandle<()>) -> bool {
    let gone = |(event, id): &(OwnedFd, Option<u32>)| -> Option<bool> {
        let ids = sys::tracepoint_prog_ids(event.as_fd()).ok()?;
        Some(!ids.contains(&(*id)?))
    };
    loop {
        match events.iter().map(gone).collect::<Option<Vec<bool>>>() {
            None => return false,
            Some(all) if all.iter().all(|&g| g) => return true,
            // The removal takes microseconds once the thread runs.
            Some(_) if !unlinking.is_finished() => {
                std::thread::sleep(std::time::Duration::from_micros(20))
            }
            // Finished, yet a program still listed: not one rbt can tell apart.
            Some(_) => return false,
        }
    }
}

/// Links and perf events still being closed after [`detach_all`] (their programs
/// already gone); dropping this waits for the closing threads, so rbt exits with
/// everything released.
#[derive(Debug)]
pub struct Detached(Vec<JoinHandle<()>>);

impl Drop for Detached {
    fn drop(&mut self) {
        for thread in self.0.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Drops `items` (file descriptors) from a few threads at once; see [`detach_all`].
pub fn close_in_parallel<T: Send>(mut items: Vec<T>) {
    const THREADS: usize = 16;
    const SERIAL_BELOW: usize = 8;
    if items.len() < SERIAL_BELOW {
        return;
    }
    let chunk = items.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        while !items.is_empty() {
            let part = items.split_off(items.len().saturating_sub(chunk));
            // A thread that cannot start drops its part right here (the closure is
            // dropped with it).
            let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(part));
        }
    });
}

/// How many probes bpftrace would say it attaches ("Attaching N probes...", and what
/// `BPFTRACE_MAX_PROBES` limits): every attachment, a wildcard attached at once as one.
pub fn probe_count(programs: &[ProgramCode]) -> usize {
    programs
        .iter()
        .map(|p| probes::attach_groups(&p.attach_points, &probes::multi_available).len())
        .sum()
}

/// The `expected_attach_type` to load `prog` with: its provider's multi-attach type
/// when every attach point of it attaches as part of a wildcard at once, else none
/// (programs attached both ways get a second copy, see `Session::attach_all`).
pub fn load_attach_type(prog: &ProgramCode) -> u32 {
    let groups = probes::attach_groups(&prog.attach_points, &probes::multi_available);
    match prog
        .attach_points
        .first()
        .and_then(|p| p.provider.multi.as_ref())
    {
        Some(multi) if !groups.is_empty() && groups.iter().all(|g| probes::is_multi(g)) => {
            multi.attach_type
        }
        _ => 0,
    }
}

/// Attaches probes, remembering what it learned about the system across attach points.
#[derive(Debug, Default)]
pub struct Attacher {
    /// Use tracefs `kprobe_events` even when the kprobe PMU exists.
    pub(crate) tracefs_kprobes: bool,
    tracefs: Option<PathBuf>,
    /// Legacy kprobe events created so far (their names count up).
    pub(crate) legacy_count: usize,
    /// Whether stale legacy kprobe events of dead rbt processes were removed.
    pub(crate) stale_removed: bool,
    /// The cookie the attachment being made passes its program (see
    /// [`Attacher::attach_with_cookie`]).
    cookie: Option<u64>,
    /// Tracepoint event ids read by the preflight, by `category:event`, so attaching
    /// does not read them again.
    pub(crate) tracepoint_ids: std::collections::HashMap<String, u64>,
    /// Perf events opened before attaching (by the preflight, or early: see
    /// [`crate::probes::early`]), by probe name.
    pub(crate) opened_perf: std::collections::HashMap<String, OwnedFd>,
}

impl Attacher {
    pub fn new() -> Attacher {
        Attacher::default()
    }

    /// An attacher that creates kprobes through tracefs `kprobe_events`, as it must on
    /// kernels before 4.17 (no kprobe PMU): lets that path be tested on newer kernels.
    pub fn with_tracefs_kprobes() -> Attacher {
        Attacher {
            tracefs_kprobes: true,
            ..Attacher::default()
        }
    }

    /// Attaches `prog` to `point` (not BEGIN/END, which run via `BPF_PROG_TEST_RUN`).
    pub fn attach(
        &mut self,
        point: &AttachPoint,
        prog: BorrowedFd<'_>,
    ) -> Result<Attachment, RuntimeError> {
        (point.provider.attach)(self, point, prog)
    }

    /// [`Attacher::attach`], the program reading `cookie` with `bpf_get_attach_cookie`
    /// there: one program serving many attach points tells them apart so (see
    /// `codegen::ProgramCode::cookie_base`).
    pub fn attach_with_cookie(
        &mut self,
        point: &AttachPoint,
        prog: BorrowedFd<'_>,
        cookie: Option<u64>,
    ) -> Result<Attachment, RuntimeError> {
        self.cookie = cookie;
        let attached = (point.provider.attach)(self, point, prog);
        self.cookie = None;
        attached
    }

    /// Runs `prog` on every hit of `perf`: a BPF link when the kernel has them (5.15+),
    /// with the cookie of [`Attacher::attach_with_cookie`], otherwise the
    /// `PERF_EVENT_IOC_SET_BPF` ioctl (not for a cookie, which only a link carries).
    /// Both die with their fds.
    pub fn attach_perf(&self, perf: OwnedFd, prog: BorrowedFd<'_>) -> io::Result<PerfAttachment> {
        let cookie = self.cookie.unwrap_or(0);
        let link = match sys::link_create(prog, perf.as_fd(), crate::abi::BPF_PERF_EVENT, cookie) {
            Ok(link) => Some(link),
            Err(e)
                if self.cookie.is_none()
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(libc::E2BIG)
                    ) =>
            {
                sys::perf_event_set_bpf(perf.as_fd(), prog)?;
                None
            }
            Err(e) => return Err(e),
        };
        sys::perf_event_enable(perf.as_fd())?;
        Ok(PerfAttachment { link, perf })
    }

    /// Attaches `prog` (loaded with the provider's multi `attach_type`) to all of
    /// `points`, one wildcard's matches ([`probes::is_multi`]), at once.
    pub fn attach_multi(
        &mut self,
        points: &[AttachPoint],
        prog: BorrowedFd<'_>,
    ) -> Result<Attachment, RuntimeError> {
        match points.first().and_then(|p| p.provider.multi.as_ref()) {
            Some(multi) => (multi.attach)(self, points, prog),
            None => Err(RuntimeError::Internal(
                "a multi-attachment of a probe type without one".into(),
            )),
        }
    }

    /// Checks, without changing anything, that `point` can be attached. Run for every
    /// attach point before loading, so a script that cannot run fails before printing.
    pub fn check(&mut self, point: &AttachPoint) -> Result<(), RuntimeError> {
        (point.provider.check)(self, point)
    }

    /// The tracefs mount (see [`tracefs_root`]), found once per attacher.
    pub fn tracefs(&mut self, probe: &str) -> Result<PathBuf, RuntimeError> {
        if let Some(p) = &self.tracefs {
            return Ok(p.clone());
        }
        let path = tracefs_root().map_err(|reason| RuntimeError::Tracefs {
            probe: probe.to_string(),
            reason,
        })?;
        self.tracefs = Some(path.clone());
        Ok(path)
    }
}

/// Where tracefs is mounted (/sys/kernel/tracing, else /sys/kernel/debug/tracing),
/// mounting it at /sys/kernel/tracing if it is in neither place. The error says how to fix it.
pub fn tracefs_root() -> Result<PathBuf, String> {
    let found = TRACEFS_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir());
    if let Some(p) = found {
        return Ok(p);
    }
    let target = Path::new(TRACEFS_DIRS[0]);
    match sys::mount_tracefs(target) {
        Ok(()) if target.join("events").is_dir() => Ok(target.to_path_buf()),
        result => {
            let why = result
                .err()
                .map_or_else(|| "it has no events".to_string(), |e| e.to_string());
            Err(format!(
                "tracefs is not mounted and mounting it at /sys/kernel/tracing failed ({why}); \
                 run `mount -t tracefs tracefs /sys/kernel/tracing` (the kernel needs CONFIG_TRACING)"
            ))
        }
    }
}
