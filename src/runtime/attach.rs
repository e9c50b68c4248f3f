//! Attaching loaded programs to kprobes, kretprobes and tracepoints.
//!
//! Every attachment is a perf event (plus, from Linux 5.15, a BPF link on it) owned by
//! a file descriptor, so the kernel detaches it by itself when rbt exits or dies. Kprobes
//! use the kprobe PMU (`/sys/bus/event_source/devices/kprobe`, Linux 4.17+), which needs
//! no global tracefs state; only without it do we fall back to creating named events in
//! tracefs `kprobe_events`, which must be removed again (at exit, and stale ones of dead
//! rbt processes at the next start).

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::error::RuntimeError;
use crate::ast::{AttachPoint, ProbeKind};
use crate::sys;

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";
const TRACEFS_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// A program attached to a perf event; detached when dropped.
#[derive(Debug)]
struct PerfAttachment {
    /// Dropped first: the link, then the event it hangs on.
    _link: Option<OwnedFd>,
    _perf: OwnedFd,
}

/// One live attachment.
#[derive(Debug)]
pub struct Attachment {
    perf: Option<PerfAttachment>,
    /// A tracefs kprobe event we created (legacy path), removed after detaching.
    legacy_event: Option<(PathBuf, String)>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.perf = None;
        if let Some((kprobe_events, name)) = self.legacy_event.take() {
            let _ = remove_kprobe_event(&kprobe_events, &name);
        }
    }
}

/// Attaches probes, remembering what it learned about the system (tracefs location,
/// kernel symbols) across attach points.
#[derive(Debug, Default)]
pub struct Attacher {
    /// Use tracefs `kprobe_events` even when the kprobe PMU exists.
    tracefs_kprobes: bool,
    tracefs: Option<PathBuf>,
    legacy_count: usize,
    stale_removed: bool,
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
        match point.kind {
            ProbeKind::Kprobe => self.attach_kprobe(point, false, prog),
            ProbeKind::Kretprobe => self.attach_kprobe(point, true, prog),
            ProbeKind::Tracepoint => self.attach_tracepoint(point, prog),
            ProbeKind::Begin | ProbeKind::End => Err(RuntimeError::Internal(format!(
                "{} is run, not attached",
                point.name()
            ))),
        }
    }

    /// The tracefs mount (see [`tracefs_root`]), found once per attacher.
    fn tracefs(&mut self, probe: &str) -> Result<PathBuf, RuntimeError> {
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

    /// Checks, without changing anything, that `point` can be attached: the kernel has
    /// kprobes and the function, or has the tracepoint. Run for every attach point
    /// before loading, so a script that cannot run fails before printing anything.
    pub fn check(&mut self, point: &AttachPoint) -> Result<(), RuntimeError> {
        let probe = point.name();
        match point.kind {
            ProbeKind::Kprobe | ProbeKind::Kretprobe => {
                if self.tracefs_kprobes || !Path::new(KPROBE_PMU).join("type").exists() {
                    self.legacy_kprobe_events(&probe)?;
                }
                let function = point.target.first().map_or("", String::as_str);
                if kernel_symbols_readable() && !kernel_has_symbol(function) {
                    return Err(not_found(&probe, function));
                }
                Ok(())
            }
            ProbeKind::Tracepoint => {
                let id = self.tracepoint_dir(point, &probe)?.join("id");
                if !id.exists() {
                    return Err(RuntimeError::TracepointNotFound { probe });
                }
                Ok(())
            }
            ProbeKind::Begin | ProbeKind::End => Ok(()),
        }
    }

    /// Without the kprobe PMU: the tracefs mount and its `kprobe_events`, if the kernel
    /// has kprobes at all (`register_kprobe` exists exactly when CONFIG_KPROBES is set).
    fn legacy_kprobe_events(&mut self, probe: &str) -> Result<(PathBuf, PathBuf), RuntimeError> {
        if kernel_symbols_readable() && !kernel_has_symbol("register_kprobe") {
            return Err(RuntimeError::NoKprobes {
                probe: probe.to_string(),
                config: "CONFIG_KPROBES",
            });
        }
        let tracefs = self.tracefs(probe)?;
        let kprobe_events = tracefs.join("kprobe_events");
        if !kprobe_events.exists() {
            return Err(RuntimeError::NoKprobes {
                probe: probe.to_string(),
                config: "CONFIG_KPROBE_EVENTS",
            });
        }
        Ok((tracefs, kprobe_events))
    }

    /// `events/<category>/<name>` of tracepoint `point` in tracefs.
    fn tracepoint_dir(
        &mut self,
        point: &AttachPoint,
        probe: &str,
    ) -> Result<PathBuf, RuntimeError> {
        let [category, name] = point.target.as_slice() else {
            return Err(RuntimeError::TracepointNotFound {
                probe: probe.to_string(),
            });
        };
        Ok(self
            .tracefs(probe)?
            .join("events")
            .join(category)
            .join(name))
    }

    fn attach_tracepoint(
        &mut self,
        point: &AttachPoint,
        prog: BorrowedFd<'_>,
    ) -> Result<Attachment, RuntimeError> {
        let probe = point.name();
        let dir = self.tracepoint_dir(point, &probe)?;
        let id = match fs::read_to_string(dir.join("id")) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| RuntimeError::TracepointNotFound {
                    probe: probe.clone(),
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RuntimeError::TracepointNotFound { probe })
            }
            Err(source) => return Err(RuntimeError::Attach { probe, source }),
        };
        let perf = sys::perf_event_open(sys::PERF_TYPE_TRACEPOINT, id, None).map_err(|source| {
            RuntimeError::Attach {
                probe: probe.clone(),
                source,
            }
        })?;
        let perf =
            attach_perf(perf, prog).map_err(|source| RuntimeError::Attach { probe, source })?;
        Ok(Attachment {
            perf: Some(perf),
            legacy_event: None,
        })
    }

    fn attach_kprobe(
        &mut self,
        point: &AttachPoint,
        retprobe: bool,
        prog: BorrowedFd<'_>,
    ) -> Result<Attachment, RuntimeError> {
        let probe = point.name();
        let function = point.target.first().cloned().unwrap_or_default();
        let pmu = Path::new(KPROBE_PMU);
        let pmu_type = if self.tracefs_kprobes {
            None
        } else {
            read_number(&pmu.join("type"))
        };
        if let Some(pmu_type) = pmu_type {
            let config = if retprobe {
                let bit = retprobe_bit(pmu).ok_or_else(|| RuntimeError::Attach {
                    probe: probe.clone(),
                    source: io::Error::other("the kprobe PMU does not describe its retprobe bit"),
                })?;
                1u64 << bit
            } else {
                0
            };
            let name = CString::new(function.as_str()).map_err(|_| not_found(&probe, &function))?;
            let perf = sys::perf_event_open(pmu_type as u32, config, Some(&name))
                .map_err(|e| kprobe_error(&probe, &function, e))?;
            let perf =
                attach_perf(perf, prog).map_err(|source| RuntimeError::Attach { probe, source })?;
            return Ok(Attachment {
                perf: Some(perf),
                legacy_event: None,
            });
        }
        let (tracefs, kprobe_events) = self.legacy_kprobe_events(&probe)?;
        if !self.stale_removed {
            remove_stale_kprobe_events(&kprobe_events);
            self.stale_removed = true;
        }
        let event = format!("rbt_{}_{}", std::process::id(), self.legacy_count);
        self.legacy_count += 1;
        let definition = format!(
            "{}:kprobes/{event} {function}",
            if retprobe { 'r' } else { 'p' }
        );
        append_line(&kprobe_events, &definition).map_err(|e| kprobe_error(&probe, &function, e))?;
        // From here on, dropping `attachment` removes the event again.
        let mut attachment = Attachment {
            perf: None,
            legacy_event: Some((kprobe_events, event.clone())),
        };
        let id_path = tracefs.join("events/kprobes").join(&event).join("id");
        let id = read_number(&id_path).ok_or_else(|| RuntimeError::Attach {
            probe: probe.clone(),
            source: io::Error::other(format!("cannot read {}", id_path.display())),
        })?;
        let perf = sys::perf_event_open(sys::PERF_TYPE_TRACEPOINT, id, None).map_err(|source| {
            RuntimeError::Attach {
                probe: probe.clone(),
                source,
            }
        })?;
        attachment.perf =
            Some(attach_perf(perf, prog).map_err(|source| RuntimeError::Attach { probe, source })?);
        Ok(attachment)
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

/// Runs `prog` on every hit of `perf`: a BPF link when the kernel has them (5.15+),
/// otherwise the `PERF_EVENT_IOC_SET_BPF` ioctl. Both die with their fds.
fn attach_perf(perf: OwnedFd, prog: BorrowedFd<'_>) -> io::Result<PerfAttachment> {
    let link = match sys::link_create(prog, perf.as_fd(), sys::BPF_PERF_EVENT) {
        Ok(link) => Some(link),
        Err(e)
            if matches!(
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
    Ok(PerfAttachment {
        _link: link,
        _perf: perf,
    })
}

fn not_found(probe: &str, function: &str) -> RuntimeError {
    let exists = kernel_has_symbol(function);
    RuntimeError::FunctionNotFound {
        probe: probe.to_string(),
        function: function.to_string(),
        exists,
    }
}

/// Explains a failed kprobe creation: missing or untraceable function, or privileges.
fn kprobe_error(probe: &str, function: &str, source: io::Error) -> RuntimeError {
    match source.raw_os_error() {
        Some(libc::ENOENT)
        | Some(libc::EINVAL)
        | Some(libc::EADDRNOTAVAIL)
        | Some(libc::EILSEQ) => not_found(probe, function),
        _ => RuntimeError::Attach {
            probe: probe.to_string(),
            source,
        },
    }
}

/// Whether `/proc/kallsyms` lists `function` (tells "no such function" from "not traceable").
fn kernel_has_symbol(function: &str) -> bool {
    let Ok(text) = fs::read_to_string("/proc/kallsyms") else {
        return false;
    };
    text.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_, kind, name) = (f.next(), f.next(), f.next());
        matches!(kind, Some("t") | Some("T")) && name == Some(function)
    })
}

/// Whether `/proc/kallsyms` can be read and lists functions at all.
fn kernel_symbols_readable() -> bool {
    use std::io::Read;
    let mut first = [0u8; 64];
    fs::File::open("/proc/kallsyms")
        .and_then(|mut f| f.read(&mut first))
        .is_ok_and(|n| n > 0)
}

/// The `config` bit that makes a kprobe PMU event a return probe (`format/retprobe`
/// holds e.g. `config:0`).
fn retprobe_bit(pmu: &Path) -> Option<u32> {
    let text = fs::read_to_string(pmu.join("format/retprobe")).ok()?;
    text.trim().strip_prefix("config:")?.parse().ok()
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}

fn remove_kprobe_event(kprobe_events: &Path, name: &str) -> io::Result<()> {
    append_line(kprobe_events, &format!("-:kprobes/{name}"))
}

/// Removes `rbt_<pid>_<n>` kprobe events left behind by rbt processes that died
/// without cleaning up.
fn remove_stale_kprobe_events(kprobe_events: &Path) {
    let Ok(text) = fs::read_to_string(kprobe_events) else {
        return;
    };
    let stale: HashSet<String> = text
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .split_once(':')?
                .1
                .split('/')
                .nth(1)
                .map(str::to_string)
        })
        .filter(|name| {
            let pid = name
                .strip_prefix("rbt_")
                .and_then(|r| r.split('_').next())
                .and_then(|p| p.parse::<u32>().ok());
            pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect();
    for name in stale {
        let _ = remove_kprobe_event(kprobe_events, &name);
    }
}
