//! The tracing session: load, announce, run BEGIN, attach, poll the ring buffer until
//! `exit()`, a signal or the `-c` command ends, then detach, run END and finish.
//!
//! BEGIN and END are raw-tracepoint programs run once with `BPF_PROG_TEST_RUN`
//! (bpftrace 0.17 attaches uprobes to its own trigger functions instead): no uprobe
//! support needed, the run is synchronous on our thread (so `pid`/`comm` are rbt's, as
//! in bpftrace), and their output takes the same ring-buffer path as every other probe.
//! Signals arrive through a signalfd polled next to the ring buffer, so no work runs in
//! a signal handler.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::event::EventKind;

use super::attach::load_attach_type;
use super::attach::{close_in_parallel, detach_all, Attacher, Attachment};
use super::child::{spawn_gated, CommandChild};
use super::error::RuntimeError;
use super::load::{load_program, load_with, Loaded};
use super::maps;
use super::ringbuf::{Next, RingBuf};
use super::status::Status;
use crate::codegen::runtime_value::{CHILD_PID as RUNTIME_CHILD_PID, START_NS as RUNTIME_START_NS};
use crate::codegen::{map_index, Compiled, MapRole};
use crate::event::EventCatalog;
use crate::output::maps::MapDump;
use crate::probes;
use crate::probes::Timing;
use crate::{sys, timings};

const EVENTS: usize = map_index::EVENTS as usize;

/// Set in the environment: print this line on stderr once every probe is attached.
const NOTIFY_ATTACHED: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";

/// How long one poll waits before the lost counter is checked again (as bpftrace).
const POLL_TIMEOUT_MS: i32 = 100;

/// While records are printed, how often a pending SIGINT/SIGTERM is looked for.
const SIGNAL_CHECK: Duration = Duration::from_millis(1);
const STOP_SIGNALS: &[libc::c_int] = &[libc::SIGINT, libc::SIGTERM];

/// `rbt` command-line choices that shape the session.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// `--dry-run`: load (and so verify) everything, attach nothing.
    pub dry_run: bool,
    /// `-c CMD`: started before BEGIN but held until every probe is attached (see
    /// `spawn_gated`); stop when it exits. It is killed (with what it started) if the
    /// session ends first, as bpftrace kills its child.
    pub command: Option<String>,
    /// `-p PID`: a pidfd of the traced process ([`sys::pidfd_open`]); the session ends
    /// when it exits, as bpftrace's does.
    pub watch: Option<std::os::fd::OwnedFd>,
    /// `--metrics ADDR`: served from when the probes are attached until exit printing.
    pub metrics: Option<crate::metrics::Endpoint>,
    /// Perf events opened while the script was compiled, which the preflight takes.
    pub early: Option<crate::probes::early::Early>,
    /// Maps created while the script was compiled, which loading takes.
    pub premade: super::Premade,
}

/// Where the session's output goes (implemented by `output::Printer`).
pub trait EventSink {
    /// Announces the number of attach points, BEGIN and END included.
    fn attached(&mut self, probes: usize) -> io::Result<()>;
    /// Handles one event record; [`Next::Stop`] for `exit()`.
    fn event(&mut self, catalog: &EventCatalog, record: &[u8]) -> io::Result<Next>;
    /// Reports `count` more events the kernel could not queue.
    fn lost(&mut self, count: u64) -> io::Result<()>;
    /// Prints what is printed at exit and flushes.
    fn finish(&mut self) -> io::Result<()>;
    /// Prints one map for `print(@map, top, div)`.
    fn print_map(&mut self, _map: &MapDump, _top: u64, _div: u64) -> io::Result<()> {
        Ok(())
    }
    /// Prints the maps at exit, after [`EventSink::finish`], and flushes.
    fn exit_maps(&mut self, _maps: &[MapDump]) -> io::Result<()> {
        Ok(())
    }
}

/// Why polling ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// `exit()` ran: later events are ignored.
    Exit,
    /// SIGINT/SIGTERM or the command ended: pending events are still printed (after a
    /// signal, queued `system()` commands are not run).
    Finish,
    /// The output is gone (`BrokenPipe`): detach and leave quietly.
    OutputClosed,
}

/// Runs the whole session for `compiled`, printing through `sink`.
pub fn run<S: EventSink + ?Sized>(
    compiled: &Compiled,
    opts: &RunOptions,
    sink: &mut S,
) -> Result<(), RuntimeError> {
    // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones ignore it.
    let _ = sys::raise_memlock_rlimit();
    check_privileges()?;
    // What the preflight learned (tracepoint ids) serves attaching.
    let attacher = match opts.dry_run {
        false => preflight(compiled, opts.early.as_ref())?,
        true => Attacher::new(),
    };
    timings::phase("preflight");
    let loaded = load_with(compiled, &opts.premade)?;
    timings::phase("load+verify");
    if opts.dry_run {
        return Ok(());
    }
    // SIGUSR1 prints every map and tracing goes on, as in bpftrace.
    let mut signals_wanted = vec![libc::SIGINT, libc::SIGTERM, libc::SIGUSR1];
    if opts.command.is_some() {
        signals_wanted.push(libc::SIGCHLD);
    }
    let signals =
        sys::SignalFd::new(&signals_wanted).map_err(|e| RuntimeError::sys("block signals", e))?;
    if compiled.maps.get(EVENTS).map(|m| &m.role) != Some(&MapRole::Events) {
        return Err(RuntimeError::Internal(
            "map 0 is not the event ring buffer".into(),
        ));
    }
    let ring = RingBuf::new(loaded.maps[EVENTS].as_fd())
        .map_err(|e| RuntimeError::sys("map the event ring buffer", e))?;
    let mut session = Session {
        compiled,
        loaded: &loaded,
        ring,
        sink,
        status: Status::new(compiled, &loaded),
        lost_seen: 0,
        metrics: None,
        stopping: false,
    };

    let probes = super::attach::probe_count(&compiled.programs) + compiled.unattached;
    if let Err(e) = session.sink.attached(probes) {
        return quiet_if_closed(e);
    }
    // The -c command starts now, held at a gate until every probe is attached, so its
    // pid (`cpid`) is known to BEGIN, as in bpftrace (which forks its child early).
    let mut child = CommandChild(None);
    let mut gate = None;
    if let Some(command) = &opts.command {
        let (spawned, writer) = spawn_gated(command)?;
        session.store_runtime_value(RUNTIME_CHILD_PID, u64::from(spawned.id()))?;
        child.0 = Some(spawned);
        gate = Some(writer);
    }
    let now = sys::boottime_ns().map_err(|e| RuntimeError::sys("read the boot clock", e))?;
    session.store_runtime_value(RUNTIME_START_NS, now)?;
    // BEGIN fires before the other probes are attached; its records are first in the
    // ring buffer, so they print first. As with bpftrace, if attaching fails the error
    // is all that is printed.
    session.run_special(Timing::Start)?;
    timings::phase("BEGIN");
    let attachments = session.attach_all(attacher)?;
    timings::phase("attach");
    if compiled.reads_kernel_symbols() {
        crate::symbols::prefetch_kernel();
    }
    if let Some(endpoint) = &opts.metrics {
        let serving = crate::metrics::Serving::start(endpoint, compiled, &loaded.maps, probes);
        session.metrics = Some(serving.map_err(|e| RuntimeError::sys("serve --metrics", e))?);
    }
    let mut stop = session.drain()?;
    if stop.is_none() {
        if let Some(mut writer) = gate.take() {
            writer
                .write_all(b"\n")
                .map_err(|e| RuntimeError::sys("start the command", e))?;
        }
        // bpftrace's signal to its runtime test framework that every probe is live.
        if std::env::var_os(NOTIFY_ATTACHED).is_some() {
            eprintln!("{NOTIFY_ATTACHED}");
        }
        let watch = opts.watch.as_ref().map(|fd| fd.as_fd());
        stop = Some(session.poll_loop(&signals, &mut child.0, watch)?);
    }
    timings::phase("trace");
    // Before the final drain and END; the perf events may still be closing meanwhile.
    let detached = detach_all(attachments);
    timings::phase("detach");
    let stop = stop.unwrap_or(Stop::Exit);
    let stop = match stop {
        Stop::Finish => session.drain()?.unwrap_or(Stop::Finish),
        Stop::Exit => {
            session.ring.discard_pending();
            session
                .forget_lost()
                .map_err(|e| RuntimeError::sys("read the lost-events counter", e))?;
            Stop::Exit
        }
        Stop::OutputClosed => Stop::OutputClosed,
    };
    if stop == Stop::OutputClosed {
        return Ok(());
    }
    // END's own records all print, as in bpftrace (which resets its signal flag here).
    session.stopping = false;
    session.run_special(Timing::End)?;
    if session.drain()? == Some(Stop::OutputClosed) {
        return Ok(());
    }
    if let Some(serving) = session.metrics.take() {
        serving.stop(); // no scrape reads the maps from here on
    }
    let dumps = maps::dump_all(compiled, &loaded)?;
    maps::report_drops(compiled, &loaded);
    timings::phase("read maps");
    let done = match session
        .sink
        .finish()
        .and_then(|()| session.sink.exit_maps(&dumps))
    {
        Ok(()) => Ok(()),
        Err(e) => quiet_if_closed(e),
    };
    timings::phase("print maps");
    drop(session);
    close_in_parallel(loaded.programs);
    timings::phase("unload");
    drop(detached);
    timings::phase("close events");
    done
}

/// `CAP_SYS_ADMIN`, or `CAP_BPF` with `CAP_PERFMON`: what loading tracing programs takes.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails up front, with the privilege named, when this process cannot load tracing
/// programs (otherwise the first symptom would be some unrelated-looking EPERM, such as
/// tracefs refusing to mount). Skipped if `capget` fails.
fn check_privileges() -> Result<(), RuntimeError> {
    let Ok(caps) = sys::effective_capabilities() else {
        return Ok(());
    };
    let has = |cap: u32| caps & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(RuntimeError::Permission {
            action: "load BPF programs".to_string(),
        })
    }
}

/// Fails with the reason if any attach point cannot be attached on this kernel, before
/// anything is loaded or printed (no "Attaching N probes..." and no BEGIN output).
fn preflight(
    compiled: &Compiled,
    early: Option<&crate::probes::early::Early>,
) -> Result<Attacher, RuntimeError> {
    let mut attacher = Attacher::new();
    attacher.opened_perf = early.map(|e| e.take()).unwrap_or_default();
    compiled
        .programs
        .iter()
        .flat_map(|p| &p.attach_points)
        .try_for_each(|point| attacher.check(point))?;
    Ok(attacher)
}

fn quiet_if_closed(e: io::Error) -> Result<(), RuntimeError> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(RuntimeError::Output(e))
    }
}

struct Session<'a, S: EventSink + ?Sized> {
    compiled: &'a Compiled,
    loaded: &'a Loaded,
    ring: RingBuf,
    sink: &'a mut S,
    status: Status<'a>,
    /// The lost-events counter as last reported.
    lost_seen: u64,
    /// The `--metrics` server, once the probes are attached.
    metrics: Option<crate::metrics::Serving>,
    /// A SIGINT/SIGTERM was seen: queued `system()` records are no longer run (see
    /// [`Session::drain_watching`]); cleared before END.
    stopping: bool,
}

impl<S: EventSink + ?Sized> Session<'_, S> {
    /// Runs every BEGIN (or END) program once; their events wait in the ring buffer.
    fn run_special(&mut self, timing: Timing) -> Result<(), RuntimeError> {
        for (code, fd) in self.compiled.programs.iter().zip(&self.loaded.programs) {
            if code
                .attach_points
                .iter()
                .any(|a| a.provider.timing == timing)
            {
                let what = if timing == Timing::Start {
                    "run BEGIN"
                } else {
                    "run END"
                };
                sys::prog_test_run(fd.as_fd()).map_err(|e| match e.raw_os_error() {
                    Some(libc::EPERM) => RuntimeError::Permission {
                        action: what.to_string(),
                    },
                    // ENOTSUPP (524): no test runs for raw tracepoints before 5.10.
                    Some(524) | Some(libc::EOPNOTSUPP) => RuntimeError::KernelTooOld {
                        feature: "running BEGIN/END (BPF_PROG_TEST_RUN of raw tracepoints)",
                        version: "5.10",
                    },
                    _ => RuntimeError::sys(what, e),
                })?;
            }
        }
        Ok(())
    }

    /// Attaches every attach point in script order, then (as bpftrace) the types that
    /// fire newest first in reverse order, so programs sharing an event run in script order.
    fn attach_all(&mut self, mut attacher: Attacher) -> Result<Vec<Attachment>, RuntimeError> {
        let mut attachments = Vec::new();
        let mut groups = Vec::new();
        for (code, fd) in self.compiled.programs.iter().zip(&self.loaded.programs) {
            if code
                .attach_points
                .iter()
                .any(|a| a.provider.timing != Timing::Attached)
            {
                continue;
            }
            let plan = probes::attach_groups(&code.attach_points, &probes::multi_available);
            // A program serving several attach points by cookie: the k-th gets base + k.
            let mut cookie = code.cookie_base;
            for group in plan {
                groups.push((group, code, fd, cookie));
                cookie = cookie.map(|c| c + group.len() as u64);
            }
        }
        let (reversed, forward): (Vec<_>, Vec<_>) = groups
            .into_iter()
            .partition(|(group, _, _, _)| group[0].provider.attached_in_reverse());
        let mut seen = std::collections::HashSet::new();
        // Copies loaded for multi-attachments of programs loaded for single ones. (bpftrace
        // 0.17 reuses one fd per probe instead: measured on 6.12, `kprobe:vfs_write*,
        // kprobe:ksys_read` fails there with "Error attaching probe: 'kprobe:vfs_write*'",
        // while rbt attaches both; the other order works in both.)
        let mut multi_copies = std::collections::HashMap::new();
        for (group, code, fd, cookie) in forward.into_iter().chain(reversed.into_iter().rev()) {
            if probes::is_multi(group) {
                let attach_type = load_attach_type(code);
                let fd = match group[0].provider.multi.as_ref() {
                    Some(multi) if multi.attach_type != attach_type => {
                        let key = code.name.as_str();
                        if !multi_copies.contains_key(key) {
                            let copy = load_program(code, &self.loaded.maps, multi.attach_type)?;
                            multi_copies.insert(key, copy);
                        }
                        multi_copies[key].as_fd()
                    }
                    _ => fd.as_fd(),
                };
                attachments.push(attacher.attach_multi(group, fd)?);
                continue;
            }
            let point = &group[0];
            let attached = if seen.insert((code.name.as_str(), point.name())) {
                attacher.attach_with_cookie(point, fd.as_fd(), cookie)
            } else {
                // The kernel attaches a program to an event once: a duplicated attach
                // point gets a copy (its attachment keeps the copy alive).
                let copy = load_program(code, &self.loaded.maps, 0)?;
                attacher.attach_with_cookie(point, copy.as_fd(), cookie)
            };
            match attached {
                Ok(attachment) => attachments.push(attachment),
                // bpftrace's words after its reason: the probe runs without it.
                Err(e) if code.one_of_several => {
                    eprintln!("rbt: {e}");
                    eprintln!(
                        "WARNING: could not attach probe {}, skipping.",
                        point.name()
                    );
                }
                Err(e) => return Err(e),
            }
        }
        // The links hold their programs; the copies' fds may close.
        drop(multi_copies);
        Ok(attachments)
    }

    /// Prints every pending event, then any increase of the lost counter.
    fn drain(&mut self) -> Result<Option<Stop>, RuntimeError> {
        self.drain_watching(None)
    }

    /// [`Session::drain`], which also notices a SIGINT or SIGTERM pending on
    /// `signals` while it prints (every [`SIGNAL_CHECK`]). From then on the queued
    /// records still print (everything the kernel accepted), but queued `system()`
    /// commands are not run: bpftrace runs none once it has seen the signal (its
    /// printer ignores every later record), and a flood of them (`system()` on every
    /// `sched_switch`, upstream's `other.sigint under heavy load`) would hold off the
    /// exit for as long as the ring buffer's backlog takes to run.
    fn drain_watching(
        &mut self,
        signals: Option<&sys::SignalFd>,
    ) -> Result<Option<Stop>, RuntimeError> {
        // Read before consuming: records a probe wrote before it set the flag are then
        // in the ring buffer to be printed.
        let exit_requested = self.status.exit_requested();
        let (compiled, loaded) = (self.compiled, self.loaded);
        let sink = &mut *self.sink;
        let metrics = self.metrics.as_ref();
        let stopping = &mut self.stopping;
        let mut checked = Instant::now();
        let consumed: io::Result<Next> = self.ring.consume(|record| {
            if !*stopping && checked.elapsed() >= SIGNAL_CHECK {
                checked = Instant::now();
                let pending = |s: &sys::SignalFd| s.pending(STOP_SIGNALS).unwrap_or(false);
                *stopping = signals.is_some_and(pending);
            }
            if *stopping
                && matches!(
                    compiled.events.kind_of(record),
                    Some(EventKind::System { .. })
                )
            {
                return Ok(Next::Continue);
            }
            match sink.event(&compiled.events, record)? {
                Next::MapOp { map, op } => {
                    let _no_scrape = metrics.map(crate::metrics::Serving::lock);
                    maps::map_op(compiled, loaded, map, op, &mut *sink)?;
                    Ok(Next::Continue)
                }
                next => Ok(next),
            }
        });
        let stop = match consumed {
            Ok(Next::Stop) => Some(Stop::Exit),
            // exit() ran but its record was lost (a full ring buffer).
            Ok(Next::Continue | Next::MapOp { .. }) if exit_requested => Some(Stop::Exit),
            Ok(Next::Continue | Next::MapOp { .. }) => None,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Some(Stop::OutputClosed)),
            Err(e) => return Err(RuntimeError::Output(e)),
        };
        match self.report_lost() {
            Ok(()) => Ok(stop),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Some(Stop::OutputClosed)),
            Err(e) => Err(RuntimeError::Output(e)),
        }
    }

    fn poll_loop(
        &mut self,
        signals: &sys::SignalFd,
        child: &mut Option<Child>,
        watch: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<Stop, RuntimeError> {
        let ring_fd = self.loaded.maps[EVENTS].as_fd();
        let mut fds = vec![ring_fd, signals.as_fd()];
        fds.extend(watch);
        let mut first = true;
        loop {
            let ready = sys::poll_readable(&fds, POLL_TIMEOUT_MS)
                .map_err(|e| RuntimeError::sys("poll the event ring buffer", e))?;
            if std::mem::take(&mut first) {
                timings::phase("first poll");
            }
            if let Some(stop) = self.drain_watching(Some(signals))? {
                return Ok(stop);
            }
            while let Some(signo) = signals
                .read()
                .map_err(|e| RuntimeError::sys("read signals", e))?
            {
                match signo {
                    libc::SIGCHLD => {}
                    libc::SIGUSR1 => {
                        if let Some(stop) = self.print_all_maps()? {
                            return Ok(stop);
                        }
                    }
                    _ => {
                        self.stopping = true;
                        return Ok(Stop::Finish);
                    }
                }
            }
            // The `-p` process exited (its pidfd is readable).
            if ready.get(2) == Some(&true) {
                return Ok(Stop::Finish);
            }
            if let Some(c) = child {
                if c.try_wait()
                    .map_err(|e| RuntimeError::sys("wait for the command", e))?
                    .is_some()
                {
                    return Ok(Stop::Finish);
                }
            }
        }
    }

    /// Every map, as at exit but without clearing anything (bpftrace's SIGUSR1).
    fn print_all_maps(&mut self) -> Result<Option<Stop>, RuntimeError> {
        let dumps = maps::dump_all(self.compiled, self.loaded)?;
        match self.sink.exit_maps(&dumps) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Some(Stop::OutputClosed)),
            Err(e) => Err(RuntimeError::Output(e)),
        }
    }

    /// Writes slot `index` of the runtime-values map, if the programs have one
    /// (`elapsed` counts from the start time written just before BEGIN, as in bpftrace).
    fn store_runtime_value(&mut self, index: u32, value: u64) -> Result<(), RuntimeError> {
        for (spec, fd) in self.compiled.maps.iter().zip(&self.loaded.maps) {
            if spec.role == MapRole::Runtime {
                sys::map_update_elem(fd.as_fd(), &index.to_ne_bytes(), &value.to_ne_bytes(), 0)
                    .map_err(|e| RuntimeError::sys("write the runtime values map", e))?;
            }
        }
        Ok(())
    }

    /// Reads the lost-events counter (key 0) and reports what is new.
    fn report_lost(&mut self) -> io::Result<()> {
        match self.status.lost_total()? {
            Some(total) if total > self.lost_seen => {
                let delta = total - self.lost_seen;
                self.lost_seen = total;
                self.sink.lost(delta)
            }
            _ => Ok(()),
        }
    }

    /// After `exit()`: events lost since are not reported (bpftrace stops reading its
    /// buffers at `exit()`; probes that keep firing until detached fill the ring).
    fn forget_lost(&mut self) -> io::Result<()> {
        if let Some(total) = self.status.lost_total()? {
            self.lost_seen = self.lost_seen.max(total);
        }
        Ok(())
    }
}
