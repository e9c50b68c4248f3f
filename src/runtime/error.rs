//! Runtime errors: each one clear line naming what failed and why (the missing kernel
//! feature or privilege by name), plus the verifier log's tail for rejected programs.

use crate::sys;
use std::fmt;
use std::io;

/// Verifier log lines shown under a rejection: the end of the log holds the failing
/// instruction and the verifier's reason.
const VERIFIER_TAIL_LINES: usize = 20;

#[derive(Debug)]
pub enum RuntimeError {
    /// `bpf()` or `perf_event_open()` returned `EPERM`/`EACCES` before any verification.
    Permission { action: String },
    /// A map the kernel would not create.
    MapCreate { map: String, source: io::Error },
    /// The stack-trace map of `kstack`/`ustack` with `limit` frames (bpftrace's hints:
    /// memory, or `kernel.perf_event_max_stack` below the limit).
    /// `max`: the sysctl's value, when readable.
    StackMapCreate {
        limit: u32,
        max: Option<u32>,
        source: io::Error,
    },
    /// The verifier rejected a program.
    Verifier {
        probe: String,
        source: io::Error,
        log: String,
    },
    /// A kprobe or kretprobe on a kernel built without `config` (`CONFIG_KPROBES`, or
    /// `CONFIG_KPROBE_EVENTS` for the tracefs interface).
    NoKprobes { probe: String, config: &'static str },
    /// The kprobe target is not a traceable kernel function (`exists`: the kernel has
    /// the symbol, but it cannot be probed).
    FunctionNotFound {
        probe: String,
        function: String,
        exists: bool,
    },
    /// A `hardware` probe where the CPU counts nothing: `pmu` false when the system has
    /// no hardware PMU at all (a VM without one), true when it lacks just this event.
    NoHardwareEvent {
        probe: String,
        event: String,
        pmu: bool,
    },
    /// A `sample_freq` above the kernel's `perf_event_max_sample_rate`.
    SampleRate { probe: String, hz: u64, max: u64 },
    /// No such tracepoint under tracefs.
    TracepointNotFound { probe: String },
    /// tracefs (needed for tracepoints and legacy kprobes) is not reachable.
    Tracefs { probe: String, reason: String },
    /// Any other failure attaching a probe.
    Attach { probe: String, source: io::Error },
    /// The kernel lacks a BPF facility rbt needs.
    KernelTooOld {
        feature: &'static str,
        version: &'static str,
    },
    /// `-c CMD` could not be started.
    Command { command: String, source: io::Error },
    /// A system facility (signals, polling, the ring buffer) failed.
    Sys { action: String, source: io::Error },
    /// Writing the output failed (other than a closed pipe, which ends quietly).
    Output(io::Error),
    /// Codegen output the runtime cannot use (a bug in rbt, not in the script).
    Internal(String),
}

impl RuntimeError {
    pub(crate) fn sys(action: impl Into<String>, source: io::Error) -> RuntimeError {
        RuntimeError::Sys {
            action: action.into(),
            source,
        }
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Permission { action } => write!(
                f,
                "cannot {action}: permission denied (run as root, or grant CAP_BPF and CAP_PERFMON)"
            ),
            RuntimeError::MapCreate { map, source } => {
                write!(f, "cannot create BPF map {map}: {}", sys::describe_io(source))
            }
            RuntimeError::StackMapCreate { limit, max, source } => {
                write!(f, "cannot create the stack map for {limit}-frame stacks: ")?;
                match (source.raw_os_error(), max) {
                    (Some(libc::EINVAL), Some(max)) if max < limit => write!(
                        f,
                        "kernel.perf_event_max_stack is {max}: capture at most {max} frames, or raise it with sysctl kernel.perf_event_max_stack=<n>"
                    ),
                    (Some(libc::ENOMEM), _) => write!(
                        f,
                        "out of memory for 131072 entries of {} bytes; capture fewer frames (kstack(N), ustack(N))",
                        8 * limit
                    ),
                    _ => write!(
                        f,
                        "{}; the kernel's limit kernel.perf_event_max_stack may be below {limit} (raise it with sysctl kernel.perf_event_max_stack=<n>, or capture fewer frames)",
                        sys::describe_io(source)
                    ),
                }
            }
            RuntimeError::Verifier { probe, source, log } => {
                write!(f, "the kernel's BPF verifier rejected the program for {probe}: {source}")?;
                // The closing statistics ("processed N insns ...") explain nothing.
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time"))
                    .collect();
                let start = lines.len().saturating_sub(VERIFIER_TAIL_LINES);
                if start > 0 {
                    write!(f, "\n  ... ({start} earlier verifier log lines omitted)")?;
                }
                for line in &lines[start..] {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
            RuntimeError::NoKprobes { probe, config } => {
                write!(f, "cannot attach {probe}: this kernel has no kprobe support ({config} is not set)")
            }
            RuntimeError::FunctionNotFound { probe, function, exists: false } => {
                write!(f, "cannot attach {probe}: kernel function {function} not found")
            }
            RuntimeError::FunctionNotFound { probe, function, exists: true } => write!(
                f,
                "cannot attach {probe}: kernel function {function} cannot be traced (inlined, notrace or blacklisted)"
            ),
            RuntimeError::NoHardwareEvent { probe, pmu: false, .. } => write!(
                f,
                "cannot attach {probe}: this system has no hardware performance counters (no hardware PMU; perf_event_open of PERF_TYPE_HARDWARE fails)"
            ),
            RuntimeError::NoHardwareEvent { probe, event, pmu: true } => write!(
                f,
                "cannot attach {probe}: this CPU's performance counters do not count {event}"
            ),
            RuntimeError::SampleRate { probe, hz, max } => write!(
                f,
                "cannot attach {probe}: {hz} Hz is above the kernel's limit of {max} Hz (sysctl kernel.perf_event_max_sample_rate)"
            ),
            RuntimeError::TracepointNotFound { probe } => {
                write!(f, "cannot attach {probe}: no such tracepoint in this kernel")
            }
            RuntimeError::Tracefs { probe, reason } => write!(f, "cannot attach {probe}: {reason}"),
            RuntimeError::Attach { probe, source } if is_permission(source) => write!(
                f,
                "cannot attach {probe}: permission denied (run as root, or grant CAP_BPF and CAP_PERFMON)"
            ),
            RuntimeError::Attach { probe, source } => {
                write!(f, "cannot attach {probe}: {}", sys::describe_io(source))
            }
            RuntimeError::Command { command, source } => {
                write!(f, "cannot run command '{command}': {}", sys::describe_io(source))
            }
            RuntimeError::Sys { action, source } => {
                write!(f, "cannot {action}: {}", sys::describe_io(source))
            }
            RuntimeError::KernelTooOld { feature, version } => write!(
                f,
                "this kernel does not support {feature} (rbt needs Linux {version} or newer)"
            ),
            RuntimeError::Output(e) => write!(f, "cannot write output: {e}"),
            RuntimeError::Internal(msg) => write!(f, "internal error: {msg}"),
        }
    }
}

impl std::error::Error for RuntimeError {}
