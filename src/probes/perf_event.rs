//! `software:EVENT[:COUNT]` and `hardware:EVENT[:COUNT]`: the program runs every COUNT
//! occurrences of a kernel software event or a CPU counter, on every online CPU (one
//! sampling perf event per CPU, as bpftrace 0.17). The event tables are bpftrace's
//! (src/probe_matcher.h), with its aliases and default counts. Also the helpers the
//! timer probes share: the online CPUs and attaching one sampling event per CPU.

use std::io;
use std::os::fd::BorrowedFd;

use super::{Context, Provider, Resolved, Timing, Unresolved};
use crate::abi::{paths, perf_hw, perf_sw, perf_type};
use crate::ast::AttachPoint;
use crate::btf::Lazy;
use crate::codegen::ProgramType;
use crate::runtime::{Attacher, Attachment, RuntimeError};
use crate::sema::Space;
use crate::{parser, sys};

pub static SOFTWARE: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    space: Space::Unset,
    name: "software",
    aliases: &["s"],
    usage: "software:EVENT or software:EVENT:COUNT",
    parts: (1, 2),
    malformed: "malformed software probe",
    timing: Timing::Attached,
    prog_type: ProgramType::PerfEvent,
    prog_prefix: "sw",
    context: &[Context::Regs],
    absent: None,
    resolve: resolve_software,
    check: check_software,
    expand: None,
    exists: None,
    early: None,
    cookies: false,
    multi: None,
    attach: attach_software,
};

pub static HARDWARE: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    space: Space::Unset,
    name: "hardware",
    aliases: &["h"],
    usage: "hardware:EVENT or hardware:EVENT:COUNT",
    parts: (1, 2),
    malformed: "malformed hardware probe",
    timing: Timing::Attached,
    prog_type: ProgramType::PerfEvent,
    prog_prefix: "hw",
    context: &[Context::Regs],
    absent: None,
    resolve: resolve_hardware,
    check: check_hardware,
    expand: None,
    exists: None,
    early: None,
    cookies: false,
    multi: None,
    attach: attach_hardware,
};

/// One event: its name, perf's alias (`""`: none), its `config`, the default count.
type Event = (&'static str, &'static str, u64, u64);

/// bpftrace 0.17's `SW_PROBE_LIST`.
const SOFTWARE_EVENTS: &[Event] = &[
    ("alignment-faults", "", perf_sw::ALIGNMENT_FAULTS, 1),
    ("bpf-output", "", perf_sw::BPF_OUTPUT, 1),
    ("context-switches", "cs", perf_sw::CONTEXT_SWITCHES, 1000),
    ("cpu-clock", "cpu", perf_sw::CPU_CLOCK, 1_000_000),
    ("cpu-migrations", "", perf_sw::CPU_MIGRATIONS, 1),
    ("dummy", "", perf_sw::DUMMY, 1),
    ("emulation-faults", "", perf_sw::EMULATION_FAULTS, 1),
    ("major-faults", "", perf_sw::PAGE_FAULTS_MAJ, 1),
    ("minor-faults", "", perf_sw::PAGE_FAULTS_MIN, 100),
    ("page-faults", "faults", perf_sw::PAGE_FAULTS, 100),
    ("task-clock", "", perf_sw::TASK_CLOCK, 1),
];

/// bpftrace 0.17's `HW_PROBE_LIST`.
const HARDWARE_EVENTS: &[Event] = &[
    (
        "backend-stalls",
        "",
        perf_hw::STALLED_CYCLES_BACKEND,
        1_000_000,
    ),
    (
        "branch-instructions",
        "branches",
        perf_hw::BRANCH_INSTRUCTIONS,
        100_000,
    ),
    ("branch-misses", "", perf_hw::BRANCH_MISSES, 100_000),
    ("bus-cycles", "", perf_hw::BUS_CYCLES, 100_000),
    ("cache-misses", "", perf_hw::CACHE_MISSES, 1_000_000),
    ("cache-references", "", perf_hw::CACHE_REFERENCES, 1_000_000),
    ("cpu-cycles", "cycles", perf_hw::CPU_CYCLES, 1_000_000),
    (
        "frontend-stalls",
        "",
        perf_hw::STALLED_CYCLES_FRONTEND,
        1_000_000,
    ),
    ("instructions", "", perf_hw::INSTRUCTIONS, 1_000_000),
    ("ref-cycles", "", perf_hw::REF_CPU_CYCLES, 1_000_000),
];

/// The event and count `point` names in `table`: `(config, count)`. A count of 0 (or
/// none) is the event's default, as in bpftrace.
fn event(table: &[Event], point: &AttachPoint) -> Result<(u64, u64), String> {
    let kind = point.provider.name;
    let (name, count) = match point.target.as_slice() {
        [name] => (name, None),
        [name, count] => (name, Some(count)),
        _ => return Err(format!("expected '{}'", point.provider.usage)),
    };
    let Some(&(_, _, config, default)) = table
        .iter()
        .find(|(n, alias, ..)| n == name || (!alias.is_empty() && alias == name))
    else {
        let known: Vec<&str> = table.iter().map(|e| e.0).collect();
        return Err(format!(
            "{name} is not a {kind} probe (the {kind} events are {})",
            known.join(", ")
        ));
    };
    let count = match count {
        Some(text) => parser::integer_literal(text)
            .map_err(|why| format!("the count of {kind}:{name} must be an integer: {why}"))?,
        None => 0,
    };
    if count > i64::MAX as u64 {
        return Err(format!(
            "the count of {kind}:{name} is too large (at most {})",
            i64::MAX
        ));
    }
    Ok((config, if count == 0 { default } else { count }))
}

fn resolve_software(_: &Lazy, point: &AttachPoint) -> Result<Resolved, Unresolved> {
    let (config, _) = event(SOFTWARE_EVENTS, point)?;
    if config == perf_sw::BPF_OUTPUT {
        // bpftrace 0.17 fails to attach it (bcc refuses the event type).
        return Err(
            "software:bpf-output cannot be traced: the event only carries data BPF programs \
             write to it and is never sampled"
                .into(),
        );
    }
    Ok(Resolved {
        args: None,
        args_space: Space::Unset,
    })
}

fn resolve_hardware(_: &Lazy, point: &AttachPoint) -> Result<Resolved, Unresolved> {
    event(HARDWARE_EVENTS, point)?;
    Ok(Resolved {
        args: None,
        args_space: Space::Unset,
    })
}

fn check_software(_: &mut Attacher, point: &AttachPoint) -> Result<(), RuntimeError> {
    event(SOFTWARE_EVENTS, point).map_err(RuntimeError::Internal)?;
    online_cpus().map(|_| ())
}

/// Opens (and closes again) the counter on the first online CPU: the only way to learn
/// whether the CPU counts it; a system without a hardware PMU (most VMs) fails here.
fn check_hardware(_: &mut Attacher, point: &AttachPoint) -> Result<(), RuntimeError> {
    let (config, count) = event(HARDWARE_EVENTS, point).map_err(RuntimeError::Internal)?;
    let cpu = online_cpus()?.first().copied().unwrap_or(0);
    match sys::perf_event_open_sampling(perf_type::HARDWARE, config, count, false, cpu) {
        Ok(_) => Ok(()),
        Err(e) if is_missing_event(&e) => {
            let cycles = perf_hw::CPU_CYCLES;
            let pmu = config != cycles
                && sys::perf_event_open_sampling(perf_type::HARDWARE, cycles, count, false, cpu)
                    .is_ok();
            Err(RuntimeError::NoHardwareEvent {
                probe: point.name(),
                event: point.target.first().cloned().unwrap_or_default(),
                pmu,
            })
        }
        Err(source) => Err(RuntimeError::Attach {
            probe: point.name(),
            source,
        }),
    }
}

/// `perf_event_open`'s answers for an event no PMU provides.
fn is_missing_event(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) | Some(libc::ENODEV)
    )
}

fn attach_software(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let (config, count) = event(SOFTWARE_EVENTS, point).map_err(RuntimeError::Internal)?;
    let sample = Sample {
        type_: perf_type::SOFTWARE,
        config,
        period: count,
        freq: false,
    };
    attach_sampling(attacher, point, &sample, &online_cpus()?, prog)
}

fn attach_hardware(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let (config, count) = event(HARDWARE_EVENTS, point).map_err(RuntimeError::Internal)?;
    let sample = Sample {
        type_: perf_type::HARDWARE,
        config,
        period: count,
        freq: false,
    };
    attach_sampling(attacher, point, &sample, &online_cpus()?, prog)
}

/// What a sampling perf event counts and how often it runs the program.
pub(super) struct Sample {
    pub type_: u32,
    pub config: u64,
    /// Every `period` events, or `period` times a second when `freq`.
    pub period: u64,
    pub freq: bool,
}

/// Runs `prog` on `sample` on each CPU in `cpus`; all of them detach together.
pub(super) fn attach_sampling(
    attacher: &Attacher,
    point: &AttachPoint,
    sample: &Sample,
    cpus: &[u32],
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let attach_error = |source| RuntimeError::Attach {
        probe: point.name(),
        source,
    };
    let mut perfs = Vec::with_capacity(cpus.len());
    for &cpu in cpus {
        let perf = sys::perf_event_open_sampling(
            sample.type_,
            sample.config,
            sample.period,
            sample.freq,
            cpu,
        )
        .map_err(attach_error)?;
        perfs.push(attacher.attach_perf(perf, prog).map_err(attach_error)?);
    }
    Ok(Attachment::perfs(perfs).runs_unpreempted())
}

/// The online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-3,6`).
pub(super) fn online_cpus() -> Result<Vec<u32>, RuntimeError> {
    let action = || format!("read the online CPUs from {}", paths::ONLINE_CPUS);
    let text =
        std::fs::read_to_string(paths::ONLINE_CPUS).map_err(|e| RuntimeError::sys(action(), e))?;
    parse_cpu_list(&text).ok_or_else(|| {
        RuntimeError::sys(
            action(),
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected contents {:?}", text.trim()),
            ),
        )
    })
}

/// A kernel CPU list (`0-3,6`); `None` if malformed or empty.
fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for range in text.trim().split(',') {
        let (first, last): (u32, u32) = match range.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let cpu = range.parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last {
            return None;
        }
        cpus.extend(first..=last);
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0\n"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn event_tables_have_unique_names() {
        for table in [SOFTWARE_EVENTS, HARDWARE_EVENTS] {
            let mut names: Vec<&str> = table
                .iter()
                .flat_map(|(n, a, ..)| [*n, *a])
                .filter(|n| !n.is_empty())
                .collect();
            let all = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), all);
        }
    }
}
