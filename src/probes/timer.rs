//! `interval:UNIT:N` and `profile:UNIT:N` (UNIT `s`, `ms`, `us` or `hz`): timers, as
//! `PERF_COUNT_SW_CPU_CLOCK` sampling events, every N units or N times a second.
//! `interval` fires on one CPU (CPU 0, as bpftrace 0.17); `profile` on every online
//! CPU. Both are attached after BEGIN ran, as all probes are.

use std::os::fd::BorrowedFd;

use super::perf_event::{attach_sampling, online_cpus, Sample};
use super::{Context, Provider, Resolved, Timing, Unresolved};
use crate::abi::{paths, perf_sw, perf_type};
use crate::ast::AttachPoint;
use crate::btf::Lazy;
use crate::codegen::ProgramType;
use crate::parser;
use crate::runtime::{Attacher, Attachment, RuntimeError};
use crate::sema::Space;

pub static INTERVAL: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    space: Space::Unset,
    name: "interval",
    aliases: &["i"],
    usage: "interval:UNIT:N (UNIT: s, ms, us or hz)",
    parts: (2, 2),
    malformed: "malformed interval probe",
    timing: Timing::Attached,
    prog_type: ProgramType::PerfEvent,
    prog_prefix: "interval",
    context: &[Context::Regs],
    absent: None,
    resolve,
    check: check_interval,
    expand: None,
    exists: None,
    early: None,
    cookies: false,
    multi: None,
    attach: attach_interval,
};

pub static PROFILE: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    space: Space::Unset,
    name: "profile",
    aliases: &["p"],
    usage: "profile:UNIT:N (UNIT: s, ms, us or hz)",
    parts: (2, 2),
    malformed: "malformed profile probe",
    timing: Timing::Attached,
    prog_type: ProgramType::PerfEvent,
    prog_prefix: "profile",
    context: &[Context::Regs, Context::Signal],
    absent: None,
    resolve,
    check: check_profile,
    expand: None,
    exists: None,
    early: None,
    cookies: false,
    multi: None,
    attach: attach_profile,
};

/// The CPU-clock sampling event `point` names: a period in nanoseconds, or (`hz`) a
/// frequency.
fn timer(point: &AttachPoint) -> Result<Sample, String> {
    let kind = point.provider.name;
    let [unit, count] = point.target.as_slice() else {
        return Err(format!("expected '{}'", point.provider.usage));
    };
    let nanos: Option<u64> = match unit.as_str() {
        "s" => Some(1_000_000_000),
        "ms" => Some(1_000_000),
        "us" => Some(1_000),
        "hz" => None,
        _ => {
            return Err(format!(
                "{unit} is not an accepted unit of time (use s, ms, us or hz)"
            ))
        }
    };
    let n = parser::integer_literal(count)
        .map_err(|why| format!("{kind} frequency must be an integer: {why}"))?;
    // bpftrace 0.17 lets `interval:s:0` through to a failing perf_event_open.
    if n == 0 {
        return Err(format!("{kind} frequency should be a positive integer"));
    }
    let (period, freq) = match nanos {
        Some(scale) => (n.saturating_mul(scale), false),
        None => (n, true),
    };
    // The kernel rejects periods with the top bit set.
    if period > i64::MAX as u64 {
        let most = i64::MAX as u64 / nanos.unwrap_or(1);
        return Err(format!(
            "{kind}:{unit}:{count} is too long a period (at most {most} {unit})"
        ));
    }
    Ok(Sample {
        type_: perf_type::SOFTWARE,
        config: perf_sw::CPU_CLOCK,
        period,
        freq,
    })
}

fn resolve(_: &Lazy, point: &AttachPoint) -> Result<Resolved, Unresolved> {
    timer(point)?;
    Ok(Resolved {
        args: None,
        args_space: Space::Unset,
    })
}

/// A frequency above `perf_event_max_sample_rate` would fail `perf_event_open` with a
/// bare EINVAL: say so before anything runs.
fn check_rate(point: &AttachPoint) -> Result<(), RuntimeError> {
    let sample = timer(point).map_err(RuntimeError::Internal)?;
    if sample.freq {
        let max = std::fs::read_to_string(paths::PERF_MAX_SAMPLE_RATE)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if let Some(max) = max.filter(|&max| sample.period > max) {
            return Err(RuntimeError::SampleRate {
                probe: point.name(),
                hz: sample.period,
                max,
            });
        }
    }
    Ok(())
}

fn check_interval(_: &mut Attacher, point: &AttachPoint) -> Result<(), RuntimeError> {
    check_rate(point)
}

fn check_profile(_: &mut Attacher, point: &AttachPoint) -> Result<(), RuntimeError> {
    check_rate(point)?;
    online_cpus().map(|_| ())
}

fn attach_interval(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let sample = timer(point).map_err(RuntimeError::Internal)?;
    attach_sampling(attacher, point, &sample, &[0], prog)
}

fn attach_profile(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let sample = timer(point).map_err(RuntimeError::Internal)?;
    attach_sampling(attacher, point, &sample, &online_cpus()?, prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;

    fn sample(provider: &'static Provider, unit: &str, n: &str) -> Result<(u64, bool), String> {
        let point = AttachPoint {
            provider,
            target: vec![unit.to_string(), n.to_string()],
            span: Span::new(0, 0),
            wildcard: None,
        };
        timer(&point).map(|s| (s.period, s.freq))
    }

    #[test]
    fn units_become_periods_or_frequencies() {
        assert_eq!(sample(&INTERVAL, "s", "2"), Ok((2_000_000_000, false)));
        assert_eq!(sample(&INTERVAL, "ms", "100"), Ok((100_000_000, false)));
        assert_eq!(sample(&PROFILE, "us", "1e3"), Ok((1_000_000, false)));
        assert_eq!(sample(&PROFILE, "hz", "99"), Ok((99, true)));
        assert_eq!(sample(&INTERVAL, "ms", "0x10"), Ok((16_000_000, false)));
        assert!(sample(&INTERVAL, "xs", "1").is_err());
        assert!(sample(&INTERVAL, "s", "0").is_err());
        assert!(sample(&INTERVAL, "s", "abc").is_err());
        assert!(sample(&INTERVAL, "s", "9223372037").is_err());
    }
}
