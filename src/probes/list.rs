//! `rbt -l [PATTERN]` and `-lv`: the probes a pattern names, printed as bpftrace 0.17
//! prints them (`ProbeMatcher::list_probes`): per comma-separated attach point, its
//! matches in byte order as `TYPE:TARGET`, with `-v` a tracepoint's fields indented
//! by four spaces. No pattern (or `*`) is `*:*`: every kernel probe type, by name.
//!
//! Probe types rbt lists but does not run yet are listed as bpftrace lists them:
//! `software`/`hardware` print the pattern back (`software:*:`; bpftrace 0.17 does not
//! expand them when listing), `iter` has its two iterators.

use super::{lookup, matches, wildcard, Provider};
use std::fmt::Write;

/// bpftrace's software events (`SW_PROBE_LIST`: name, alias).
const SOFTWARE: &[&str] = &[
    "alignment-faults",
    "bpf-output",
    "context-switches",
    "cs",
    "cpu-clock",
    "cpu",
    "cpu-migrations",
    "dummy",
    "emulation-faults",
    "major-faults",
    "minor-faults",
    "page-faults",
    "faults",
    "task-clock",
];

/// bpftrace's hardware events (`HW_PROBE_LIST`: name, alias).
const HARDWARE: &[&str] = &[
    "backend-stalls",
    "branch-instructions",
    "branches",
    "branch-misses",
    "bus-cycles",
    "cache-misses",
    "cache-references",
    "cpu-cycles",
    "cycles",
    "frontend-stalls",
    "instructions",
    "ref-cycles",
];

/// A probe type as listing knows it.
#[derive(Clone, Copy)]
enum Kind {
    Provider(&'static Provider),
    /// Printed back as `NAME:PATTERN:` once the pattern names a known event or has a
    /// wildcard.
    Events(&'static str, &'static [&'static str]),
    Iter,
}

impl Kind {
    fn by_name(name: &str) -> Option<Kind> {
        match name {
            "software" | "s" => Some(Kind::Events("software", SOFTWARE)),
            "hardware" | "h" => Some(Kind::Events("hardware", HARDWARE)),
            "iter" | "it" => Some(Kind::Iter),
            _ => lookup(name)
                .filter(|p| p.expand.is_some())
                .map(Kind::Provider),
        }
    }
}

/// The kernel probe types a wildcard type matches, sorted by name (bpftrace's
/// `kernel_probe_list`: no return probes, no special, user-space or timed probes).
const KERNEL_TYPES: &[&str] = &["hardware", "iter", "kprobe", "software", "tracepoint"];

/// The listing for `search`, and the warnings for stderr.
pub fn list(search: Option<&str>, verbose: bool) -> Result<(String, String), String> {
    let search = match search {
        None | Some("*") => "*:*",
        Some(s) => s,
    };
    let (mut out, mut warnings) = (String::new(), String::new());
    for point in search.split(',').map(str::trim) {
        let (ty, rest) = point.split_once(':').unwrap_or((point, ""));
        let kinds: Vec<Kind> = if wildcard::has_wildcard(ty) {
            KERNEL_TYPES
                .iter()
                .filter(|t| wildcard::matches(ty, t))
                .filter_map(|t| Kind::by_name(t))
                .collect()
        } else {
            vec![Kind::by_name(ty)
                .ok_or_else(|| format!("'{ty}' is not a probe type rbt can list"))?]
        };
        for kind in kinds {
            list_one(kind, rest, verbose, &mut out, &mut warnings)?;
        }
    }
    Ok((out, warnings))
}

fn list_one(
    kind: Kind,
    rest: &str,
    verbose: bool,
    out: &mut String,
    warnings: &mut String,
) -> Result<(), String> {
    match kind {
        Kind::Events(name, events) => {
            if !wildcard::has_wildcard(rest) && !events.contains(&rest) {
                return Err(format!("{rest} is not a {name} probe"));
            }
            let _ = writeln!(out, "{name}:{rest}:");
        }
        Kind::Iter => {
            for m in wildcard::matching_lines(rest, "task\ntask_file", false) {
                let _ = writeln!(out, "iter:{m}");
            }
        }
        Kind::Provider(p) => {
            let Some(how) = &p.expand else {
                return Ok(());
            };
            let parts = rest.split(':').count();
            // Types of a fixed shape complete a wildcard's missing parts (`tracepoint:sched*`).
            let pattern = if parts == p.parts.1 || p.parts.0 != p.parts.1 {
                rest.to_string()
            } else if parts < p.parts.1 && wildcard::has_wildcard(rest) {
                format!("{rest}{}", ":*".repeat(p.parts.1 - parts))
            } else {
                return Err(format!(
                    "{} probe type requires {} arguments",
                    p.name, p.parts.1
                ));
            };
            let found = match matches(how, &pattern) {
                Ok(found) => found,
                Err(why) => {
                    let _ = writeln!(warnings, "WARNING: {why}");
                    return Ok(());
                }
            };
            for m in found {
                let _ = writeln!(out, "{}:{m}", p.name);
                if let (true, Some(params)) = (verbose, how.params) {
                    for param in params(&m) {
                        let _ = writeln!(out, "    {param}");
                    }
                }
            }
        }
    }
    Ok(())
}
