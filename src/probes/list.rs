//! `rbt -l [PATTERN]` and `-lv`: the probes a pattern names, printed as bpftrace 0.17
//! prints them (`ProbeMatcher::list_probes`): per comma-separated attach point, its
//! matches in byte order as `TYPE:TARGET`, with `-v` a tracepoint's fields indented
//! by four spaces. No pattern (or `*`) is `*:*`: every kernel probe type, by name, or
//! with `-p PID` the user-space ones (the process's executable). Uprobes list the
//! function symbols of files (`ListFn`, probes/uprobe/list.rs). Errors are spanned in
//! the pattern, which bpftrace parses as a script called `stdin`.
//!
//! Probe types rbt lists but does not run yet are listed as bpftrace lists them:
//! `software`/`hardware` print the pattern back (`software:*:`; bpftrace 0.17 does not
//! expand them when listing), `iter` has its two iterators.

use super::{lookup, matches, wildcard, ListQuery, Provider};
use crate::diag::{self, Diagnostic, Span};
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
    /// Listed by no one yet; only a wildcard type reaches it.
    Usdt,
}

impl Kind {
    fn by_name(name: &str) -> Option<Kind> {
        match name {
            "software" | "s" => Some(Kind::Events("software", SOFTWARE)),
            "hardware" | "h" => Some(Kind::Events("hardware", HARDWARE)),
            "iter" | "it" => Some(Kind::Iter),
            "usdt" | "U" => Some(Kind::Usdt),
            _ => lookup(name)
                .filter(|p| p.expand.is_some() || p.list.is_some())
                .map(Kind::Provider),
        }
    }
}

/// The kernel probe types a wildcard type matches, sorted by name (bpftrace's
/// `kernel_probe_list`: no return probes, no special, user-space or timed probes).
const KERNEL_TYPES: &[&str] = &["hardware", "iter", "kprobe", "software", "tracepoint"];

/// The user-space probe types a wildcard type matches with `-p` or a path in the
/// pattern (bpftrace's `userspace_probe_list`). rbt cannot read USDT notes yet: `usdt`
/// lists nothing, but takes its shapes of target (so `*:PATH:PROVIDER:PROBE` is valid).
const USER_TYPES: &[&str] = &["uprobe", "usdt"];

/// The listing for `search`, and what goes to stderr (warnings); an `Err` is the
/// rendered error.
pub fn list(search: Option<&str>, query: &ListQuery) -> Result<(String, String), String> {
    let search = match search {
        None | Some("*") => "*:*",
        Some(s) => s,
    };
    let fail = |at: Span, message: String| {
        diag::render("stdin", search, &[Diagnostic::error(at, message)])
    };
    if let Some((at, c)) = invalid_character(search) {
        // bpftrace 0.17's message, which its tests match as `ERROR: invalid character`.
        let error = Diagnostic::error(
            Span::new(at, at + c.len_utf8()),
            format!("invalid character '{c}'"),
        );
        return Err(diag::render(
            "stdin",
            search,
            &[error.in_bpftrace_words(true)],
        ));
    }
    let (mut out, mut warnings) = (String::new(), String::new());
    let mut start = 0;
    for raw in search.split(',') {
        let end = start + raw.len();
        let lead = raw.len() - raw.trim_start().len();
        let at = Span::new(start + lead, start + raw.trim_end().len());
        start = end + 1;
        let point = raw.trim();
        if point.is_empty() {
            continue; // bpftrace ignores an empty attach point (a trailing comma)
        }
        let (ty, rest) = match point.split_once(':') {
            Some(split) => split,
            // One part with a wildcard (`-l '*sched_switch*'`) is the target for every
            // probe type, as bpftrace's attach-point parser makes it `TYPE:PART`.
            None if wildcard::has_wildcard(point) => ("*", point),
            None => (point, ""),
        };
        let kinds: Vec<Kind> = if wildcard::has_wildcard(ty) {
            let second = point.split_once(':').map(|(_, r)| r.split(':').next());
            let user = query.pid.is_some() || second.flatten().is_some_and(|p| p.contains('/'));
            let types = if user { USER_TYPES } else { KERNEL_TYPES };
            types
                .iter()
                .filter(|t| wildcard::matches(ty, t))
                .filter_map(|t| Kind::by_name(t))
                .collect()
        } else {
            vec![Kind::by_name(ty)
                .ok_or_else(|| fail(at, format!("'{ty}' is not a probe type rbt can list")))?]
        };
        if let [Kind::Usdt] = kinds.as_slice() {
            return Err(fail(at, "'usdt' is not a probe type rbt can list".into()));
        }
        // Several types from a wildcard: each takes the targets of its shape only.
        let query = &ListQuery {
            ignore_invalid: kinds.len() > 1,
            ..*query
        };
        let mut any_valid = false;
        for kind in kinds {
            let mut spanned = Vec::new();
            any_valid |= list_one(kind, rest, query, &mut out, &mut warnings, &mut spanned)
                .map_err(|e| fail(at, e))?;
            let diags: Vec<Diagnostic> = spanned
                .into_iter()
                .map(|w| Diagnostic::warning(at, w))
                .collect();
            warnings.push_str(&diag::render("stdin", search, &diags));
        }
        if query.ignore_invalid && !any_valid {
            return Err(fail(at, "No attach points for probe".into()));
        }
    }
    Ok((out, warnings))
}

/// The first character bpftrace's lexer has no token for (`\`, a `$` that starts no
/// variable), which it rejects as an invalid character.
fn invalid_character(search: &str) -> Option<(usize, char)> {
    let mut chars = search.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let lone_dollar =
            c == '$' && !next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '_' || n == '#');
        if c == '\\' || c == '`' || lone_dollar {
            return Some((at, c));
        }
    }
    None
}

fn list_one(
    kind: Kind,
    rest: &str,
    query: &ListQuery,
    out: &mut String,
    warnings: &mut String,
    spanned: &mut Vec<String>,
) -> Result<bool, String> {
    let verbose = query.verbose;
    match kind {
        Kind::Events(name, events) => {
            // `software:EVENT[:COUNT]`: bpftrace reads the count as a number even when
            // listing, and prints the event alone.
            let (event, count) = rest.split_once(':').unwrap_or((rest, "0"));
            if count.parse::<u64>().is_err() {
                return Err(format!("invalid count '{count}' in '{name}:{rest}'"));
            }
            // A type from a wildcard (`*:x`) prints its pattern back unchecked.
            if !wildcard::has_wildcard(event) && !events.contains(&event) && !query.ignore_invalid {
                return Err(format!("{event} is not a {name} probe"));
            }
            let _ = writeln!(out, "{name}:{event}:");
        }
        Kind::Iter => {
            for m in wildcard::matching_lines(rest, "task\ntask_file", false) {
                let _ = writeln!(out, "iter:{m}");
            }
        }
        Kind::Usdt => {
            // `usdt:PATH:[PROVIDER:]PROBE`, with `-p` also `usdt:PROBE`.
            let parts = rest.split(':').count();
            return Ok((2..=3).contains(&parts) || (parts == 1 && query.pid.is_some()));
        }
        Kind::Provider(p) => {
            if let Some(list) = p.list {
                let listed = list(rest, query)?;
                for m in &listed.matches {
                    let _ = writeln!(out, "{}:{m}", p.name);
                    for line in listed.params.get(m).into_iter().flatten() {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                for line in listed.messages {
                    let _ = writeln!(warnings, "{line}");
                }
                spanned.extend(listed.spanned);
                return Ok(!listed.invalid);
            }
            let Some(how) = &p.expand else {
                return Ok(true);
            };
            let parts = rest.split(':').count();
            // Types of a fixed shape complete a wildcard's missing leading parts, as
            // bpftrace's tracepoint parser does (`tracepoint:sched*` is `*:sched*`).
            let pattern = if parts == p.parts.1 || p.parts.0 != p.parts.1 {
                rest.to_string()
            } else if parts < p.parts.1 && wildcard::has_wildcard(rest) {
                format!("{}{rest}", "*:".repeat(p.parts.1 - parts))
            } else if query.ignore_invalid {
                return Ok(false);
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
                    return Ok(true);
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
    Ok(true)
}
