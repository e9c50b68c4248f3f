//! What two tracers running the same tool on the same events must agree on. The events
//! a tool prints are filtered to the workload's (other processes on the machine differ
//! between any two runs), the fields that inherently vary between two tracers (times,
//! latencies, counts of system-wide events) are masked, and what remains — headers,
//! line layout, the workload's events and their number, map keys — must be equal.

use fancy_regex::Regex;

/// How one tool's output is normalised.
pub struct Rules {
    /// Event lines kept: those matching this (`None`: every line). Header lines (the
    /// first `header` lines) and the maps printed at exit are always kept.
    pub keep: Option<&'static str>,
    /// Lines at the top always kept (the `Attaching` line plus the tool's own headers).
    pub header: usize,
    /// `(regex, replacement)` applied to every kept line: the fields that vary.
    pub mask: &'static [(&'static str, &'static str)],
    /// Kept event lines are compared as a sorted list: two tracers read per-CPU buffers
    /// in their own order, so events of a migrating process may interleave differently.
    pub sort: bool,
    /// Maps printed at exit kept: entries (an `@` line and its hist lines) whose `@` line
    /// matches this (`None`: every entry).
    pub maps_keep: Option<&'static str>,
    /// The maps' lines compared as a sorted list: entries of equal value print in the
    /// kernel's hash order of their keys, and the tracers encode keys differently
    /// (bpftrace's probe ids, rbt's own), so only for maps of one-line entries.
    pub sort_maps: bool,
    /// A run of identical masked lines, or of identical blocks of up to four lines, counts
    /// once (a hist whose bucket set depends on system-wide timing; `interval` output
    /// whose number of ticks differs).
    pub collapse: bool,
}

/// Exactly the output, nothing masked.
pub const EXACT: Rules = Rules {
    keep: None,
    header: 0,
    mask: &[],
    sort: false,
    collapse: false,
    maps_keep: None,
    sort_maps: false,
};

/// `12:34:56` (`time()`), the leading field of most tools.
pub const CLOCK: (&str, &str) = (r"\b\d\d:\d\d:\d\d\b", "HH:MM:SS");
/// The count and bar of a hist/lhist bucket line (bpftrace's 52-column bar).
pub const HIST_COUNTS: (&str, &str) = (r"^(\S.{15}) *\d+ \|[@ ]{52}\|$", "$1 N |BAR|");
/// The value of a map entry line `@x[key]: 123`.
pub const MAP_VALUE: (&str, &str) = (r"^(@[^:]*): -?\d+$", "$1: N");

/// The normalised text of `output` under `rules`.
pub fn normalize(output: &str, rules: &Rules) -> Result<String, String> {
    let keep = rules
        .keep
        .map(|k| Regex::new(k).map_err(|e| format!("keep regex {k:?}: {e}")))
        .transpose()?;
    let masks = rules
        .mask
        .iter()
        .map(|(re, with)| {
            Regex::new(re)
                .map(|re| (re, *with))
                .map_err(|e| format!("mask regex {re:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let maps_keep = rules
        .maps_keep
        .map(|k| Regex::new(k).map_err(|e| format!("maps_keep regex {k:?}: {e}")))
        .transpose()?;
    let masked = |line: &str| {
        masks.iter().fold(line.to_string(), |line, (re, with)| {
            re.replace_all(&line, *with).into_owned()
        })
    };
    // The maps come after the blank lines bpftrace prints at exit, or, where END
    // printed a line of its own after those (bitesize.bt), after that line.
    let (events, maps) = match output.split_once("\n\n\n") {
        Some((events, maps)) => (events, Some(maps)),
        None => match output.find("\n@") {
            Some(at) => (&output[..at], Some(&output[at + 1..])),
            None => (output, None),
        },
    };
    let mut lines: Vec<String> = events.lines().take(rules.header).map(masked).collect();
    let mut kept: Vec<String> = events
        .lines()
        .skip(rules.header)
        .filter(|l| keep.as_ref().is_none_or(|k| k.is_match(l).unwrap_or(false)))
        .map(masked)
        .collect();
    if rules.sort {
        kept.sort();
    }
    lines.extend(kept);
    if let Some(maps) = maps {
        lines.push("--- maps at exit ---".into());
        let from = lines.len();
        // With a filter, what precedes the first entry (an empty map's blank line)
        // belongs to no kept entry.
        let mut keep_entry = maps_keep.is_none();
        for line in maps.lines() {
            if line.starts_with('@') {
                keep_entry = maps_keep
                    .as_ref()
                    .is_none_or(|k| k.is_match(line).unwrap_or(false));
            }
            if keep_entry {
                lines.push(masked(line));
            }
        }
        if rules.sort_maps {
            lines[from..].sort();
        }
    }
    if rules.collapse {
        lines.dedup();
        collapse_blocks(&mut lines);
        drop_empty_last_tick(&mut lines);
    }
    Ok(lines.join("\n"))
}

/// A run of identical blocks of up to four lines counts once: `interval` output
/// (a time line and a map, vfsstat.bt) whose number of ticks differs between tracers.
fn collapse_blocks(lines: &mut Vec<String>) {
    for len in 2..=4 {
        let mut i = 0;
        while i + 2 * len <= lines.len() {
            if lines[i..i + len] == lines[i + len..i + 2 * len] {
                lines.drain(i + len..i + 2 * len);
            } else {
                i += 1;
            }
        }
    }
}

/// A last event line that is a bare time line repeating an earlier one is a tick that
/// found its map empty: when a stalled reader prints two ticks at once, the second
/// prints only its time line, the first tick having just cleared the map (seen under
/// both tracers in a loaded VM). Empty ticks before it were merged by `dedup`.
fn drop_empty_last_tick(lines: &mut Vec<String>) {
    let events_end = lines
        .iter()
        .position(|l| l == "--- maps at exit ---")
        .unwrap_or(lines.len());
    if let Some(last) = events_end.checked_sub(1) {
        if lines[last] == CLOCK.1 && lines[..last].contains(&lines[last]) {
            lines.remove(last);
        }
    }
}

/// `Ok` when both outputs normalise to the same text; else the first difference.
pub fn compare(reference: &str, ours: &str, rules: &Rules) -> Result<(), String> {
    let (a, b) = (normalize(reference, rules)?, normalize(ours, rules)?);
    if a == b {
        return Ok(());
    }
    let (al, bl): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let at = al.iter().zip(&bl).take_while(|(x, y)| x == y).count();
    Err(format!(
        "normalised outputs differ at line {} ({} vs {} lines):\n  bpftrace: {:?}\n  rbt:      {:?}",
        at + 1,
        al.len(),
        bl.len(),
        al.get(at).unwrap_or(&"<end>"),
        bl.get(at).unwrap_or(&"<end>"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNOOP: Rules = Rules {
        keep: Some("rbtmark"),
        header: 2,
        mask: &[CLOCK],
        sort: true,
        collapse: false,
        maps_keep: None,
        sort_maps: false,
    };
    // Real statsnoop.bt output under bpftrace 0.17 (this host), other processes' lines
    // included.
    const STATSNOOP: &str = "Attaching 10 probes...\n\
PID    COMM             ERR PATH\n\
21620  bash               0 /usr/bin/stat\n\
21623  stat               2 /tmp/rbtmark-1\n\
21624  ls                 2 /tmp/rbtmark-2\n\
21624  ls                 2 /tmp/rbtmark-2\n";

    fn replace(text: &str, from: &str, to: &str) -> String {
        assert!(text.contains(from), "{from:?} not in the sample");
        text.replacen(from, to, 1)
    }

    #[test]
    fn other_processes_and_order_do_not_matter() {
        let other = replace(STATSNOOP, "21620  bash               0 /usr/bin/stat\n", "");
        let reordered = replace(
            &other,
            "21623  stat               2 /tmp/rbtmark-1\n21624  ls                 2 /tmp/rbtmark-2\n",
            "21624  ls                 2 /tmp/rbtmark-2\n21623  stat               2 /tmp/rbtmark-1\n",
        );
        compare(STATSNOOP, &reordered, &SNOOP).unwrap();
    }

    #[test]
    fn a_missing_event_fails() {
        let missing = replace(
            STATSNOOP,
            "21624  ls                 2 /tmp/rbtmark-2\n",
            "",
        );
        assert!(compare(STATSNOOP, &missing, &SNOOP).is_err());
    }

    #[test]
    fn a_wrong_field_or_layout_fails() {
        let errno = replace(STATSNOOP, "stat               2", "stat               0");
        assert!(compare(STATSNOOP, &errno, &SNOOP).is_err());
        let layout = replace(STATSNOOP, "21623  stat  ", "21623 stat   ");
        assert!(compare(STATSNOOP, &layout, &SNOOP).is_err());
        let header = replace(STATSNOOP, "ERR PATH", "ERR  PATH");
        assert!(compare(STATSNOOP, &header, &SNOOP).is_err());
    }

    // bpftrace 0.17's `@usecs = hist(...)` at exit, as runqlat.bt prints it here.
    const HIST: &str =
        "Attaching 5 probes...\nTracing CPU scheduler... Hit Ctrl-C to end.\n\n\n@usecs: \n\
[0]                   12 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\
[1]                    3 |@@@@@@@@@@@@@                                       |\n\
[2, 4)                 1 |@@@@                                                |\n\n";

    const HISTS: Rules = Rules {
        keep: None,
        header: 2,
        mask: &[HIST_COUNTS],
        sort: false,
        collapse: false,
        maps_keep: None,
        sort_maps: false,
    };

    #[test]
    fn hist_counts_are_masked_but_buckets_and_layout_are_not() {
        let counts = replace(HIST, "  12 |", "  11 |");
        compare(HIST, &counts, &HISTS).unwrap();
        let bucket = replace(HIST, "[2, 4)  ", "[4, 8)  ");
        assert!(compare(HIST, &bucket, &HISTS).is_err());
        let bar = replace(HIST, " |\n[2", "|\n[2");
        assert!(compare(HIST, &bar, &HISTS).is_err());
        let no_maps = HIST.split("\n\n\n").next().unwrap();
        assert!(compare(HIST, no_maps, &HISTS).is_err());
    }

    #[test]
    fn maps_after_an_end_line_are_filtered_as_maps() {
        // bitesize.bt under bpftrace 0.17 on this host: END prints a line before the maps.
        const END_LINE: &str = "Attaching 3 probes...\n\
Tracing block device I/O... Hit Ctrl-C to end.\n\n\
I/O size (bytes) histograms by process name:\n\n\
@[sh]: \n\
[4K, 8K)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n\
@[rbtmark-dd]: \n\
[4K, 8K)              16 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n";
        const WORKLOAD_MAPS: Rules = Rules {
            keep: None,
            header: 2,
            mask: &[],
            sort: false,
            collapse: false,
            maps_keep: Some("rbtmark"),
            sort_maps: false,
        };
        let other = replace(END_LINE, "@[sh]: ", "@[bash]: ");
        compare(END_LINE, &other, &WORKLOAD_MAPS).unwrap();
        let count = replace(END_LINE, "  16 |", "  15 |");
        assert!(compare(END_LINE, &count, &WORKLOAD_MAPS).is_err());
        let line = replace(END_LINE, "process name:", "process:");
        assert!(compare(END_LINE, &line, &WORKLOAD_MAPS).is_err());
        // dcsnoop.bt in the 6.1 VM: one tracer's @fname held another process's lookup
        // in flight at exit, the other's was empty (a blank line).
        let events = "Attaching 3 probes...\nTIME PID COMM\n1 2 rbtmark R x\n\n\n";
        let other = format!("{events}@fname[97]: -62413291793428443\n");
        compare(&other, &format!("{events}\n"), &WORKLOAD_MAPS).unwrap();
    }

    #[test]
    fn interval_ticks_compare_by_layout() {
        // vfsstat.bt in the 6.1 VM, both tracers at once: each prints its own one-second
        // windows of system-wide calls, so the keys and counts per tick differ.
        const TICKS: Rules = Rules {
            keep: None,
            header: 2,
            mask: &[CLOCK, (r"\d+", "N"), (r"^@\[vfs_\w+\]: N$", "@[vfs_*]: N")],
            sort: false,
            collapse: true,
            maps_keep: None,
            sort_maps: false,
        };
        let bpftrace = "Attaching 11 probes...\nTracing key VFS calls... Hit Ctrl-C to end.\n\
06:25:09\n@[vfs_readlink]: 6\n@[vfs_read]: 21\n@[vfs_open]: 37\n@[vfs_write]: 74\n\
06:25:10\n@[vfs_write]: 1\n\n\n\n";
        let rbt = "Attaching 11 probes...\nTracing key VFS calls... Hit Ctrl-C to end.\n\
06:25:09\n@[vfs_readlink]: 6\n@[vfs_open]: 39\n@[vfs_write]: 75\n@[vfs_read]: 222\n\
06:25:12\n@[vfs_readlink]: 1\n@[vfs_read]: 1\n@[vfs_open]: 1\n\n\n\n";
        compare(bpftrace, rbt, &TICKS).unwrap();
        let third = rbt.replace("\n\n\n\n", "\n06:25:13\n@[vfs_read]: 4\n\n\n\n");
        compare(bpftrace, &third, &TICKS).unwrap();
        // The second rehearsal at 8986c70, 6.1: rbt's reader stalled, its last two
        // ticks printed in one second and the second found the map cleared.
        let stalled = rbt.replace("\n\n\n\n", "\n06:25:12\n\n\n\n");
        compare(bpftrace, &stalled, &TICKS).unwrap();
        let missing = "Attaching 11 probes...\nTracing key VFS calls... Hit Ctrl-C to end.\n\
06:25:09\n06:25:10\n\n\n\n";
        assert!(compare(bpftrace, missing, &TICKS).is_err());
        let key = replace(rbt, "@[vfs_open]: 1", "@[open]: 1");
        assert!(compare(bpftrace, &key, &TICKS).is_err());
        let layout = replace(rbt, "06:25:12\n", "06:25:12 \n");
        assert!(compare(bpftrace, &layout, &TICKS).is_err());
        let header = replace(rbt, "VFS calls", "vfs calls");
        assert!(compare(bpftrace, &header, &TICKS).is_err());
    }

    #[test]
    fn map_values_mask_only_the_value() {
        const MAPS: Rules = Rules {
            keep: None,
            header: 1,
            mask: &[MAP_VALUE],
            sort: false,
            collapse: false,
            maps_keep: None,
            sort_maps: false,
        };
        let a = "Attaching 1 probe...\n\n\n@[rbtwl]: 5\n@[bash]: 17\n";
        compare(a, &replace(a, "17", "19"), &MAPS).unwrap();
        assert!(compare(a, &replace(a, "@[bash]", "@[sh]"), &MAPS).is_err());
        assert!(compare(a, &replace(a, "@[bash]: 17\n", ""), &MAPS).is_err());
    }

    #[test]
    fn sorted_maps_ignore_tie_order_but_not_counts() {
        const TIES: Rules = Rules {
            keep: None,
            header: 1,
            mask: &[],
            sort: false,
            collapse: false,
            maps_keep: None,
            sort_maps: true,
        };
        let a = "Attaching 3 probes...\n\n\n@[kprobe:a]: 4\n@[kprobe:b]: 4\n@[kprobe:c]: 9\n";
        let swapped = "Attaching 3 probes...\n\n\n@[kprobe:b]: 4\n@[kprobe:a]: 4\n@[kprobe:c]: 9\n";
        compare(a, swapped, &TIES).unwrap();
        assert!(compare(a, &replace(a, "c]: 9", "c]: 8"), &TIES).is_err());
        assert!(compare(a, &replace(a, "@[kprobe:b]: 4\n", ""), &TIES).is_err());
    }
}
