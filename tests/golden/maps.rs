//! Comparing maps printed at exit by two tracers that traced the same events but
//! measured different values (latencies): the maps come in the same order, every hist
//! line has bpftrace's layout (label, count, 52-column bar), and the key the workload
//! alone fills holds the same number of events in both.

use std::collections::BTreeMap;

/// `@name[key]` → the hist's (label, count) lines; plain entries map to no lines.
pub type Maps = BTreeMap<String, Vec<(String, u64)>>;

/// The maps section (after the `"\n\n"` printed at exit) of a tracer's output, and the
/// order of the map names in it.
pub fn parse(output: &str) -> Result<(Vec<String>, Maps), String> {
    let Some((_, section)) = output.split_once("\n\n\n") else {
        return Err("no maps printed at exit (no blank lines after the events)".into());
    };
    let mut order: Vec<String> = Vec::new();
    let mut maps = Maps::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        if line.is_empty() {
            current = None;
            continue;
        }
        if line.starts_with('@') {
            let entry = line
                .split(": ")
                .next()
                .unwrap_or(line)
                .trim_end_matches(':');
            let name = entry.split('[').next().unwrap_or(entry).to_string();
            if order.last() != Some(&name) {
                order.push(name);
            }
            maps.insert(entry.to_string(), Vec::new());
            current = line.ends_with(": ").then(|| entry.to_string());
            continue;
        }
        let Some(key) = &current else {
            return Err(format!("a line outside any map: {line:?}"));
        };
        let bucket = hist_line(line).ok_or_else(|| format!("not a hist line: {line:?}"))?;
        maps.get_mut(key).expect("inserted above").push(bucket);
    }
    Ok((order, maps))
}

/// Every `@map[key]` header line, in order (duplicates kept).
fn parse_keys(output: &str) -> Vec<String> {
    let section = output.split_once("\n\n\n").map_or("", |(_, s)| s);
    section
        .lines()
        .filter(|l| l.starts_with('@'))
        .map(|l| {
            l.split(": ")
                .next()
                .unwrap_or(l)
                .trim_end_matches(':')
                .to_string()
        })
        .collect()
}

/// `[4, 8)      3 |@@@@     |`: bpftrace's hist layout (label padded to 16, count to 8,
/// a 52-character bar between pipes).
fn hist_line(line: &str) -> Option<(String, u64)> {
    let (left, bar) = line.split_once(" |")?;
    let bar = bar.strip_suffix('|')?;
    if bar.chars().count() != 52 || !bar.trim_end().chars().all(|c| c == '@') {
        return None;
    }
    let label = left.get(..16)?.trim_end().to_string();
    let count = left.get(16..)?.trim().parse().ok()?;
    let labelled = (label.starts_with('[') && (label.ends_with(')') || label.ends_with(']')))
        || label == "(..., 0)";
    labelled.then_some((label, count))
}

/// The two outputs agree as far as the tracers' shared events determine them.
pub fn compare(reference: &str, rbt: &str, workload_key: &str) -> Result<(), String> {
    let (ref_order, ref_maps) = parse(reference).map_err(|e| format!("bpftrace: {e}"))?;
    let (order, maps) = parse(rbt).map_err(|e| format!("rbt: {e}"))?;
    // A map can be empty in one run and not the other (reads in flight at exit): only
    // the maps both printed must come in the same order.
    let shared = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|m| b.contains(m)).cloned().collect()
    };
    if shared(&ref_order, &order) != shared(&order, &ref_order) || order.is_empty() {
        return Err(format!(
            "maps in another order: bpftrace {ref_order:?}, rbt {order:?}"
        ));
    }
    // Each key once (a hist key printed twice means keys that differ in hidden bytes).
    for (name, out) in [
        ("bpftrace", parse_keys(reference)),
        ("rbt", parse_keys(rbt)),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = out.iter().find(|k| !seen.insert(k.as_str())) {
            return Err(format!("{name} printed {dup} twice"));
        }
    }
    let total = |maps: &Maps| -> Option<u64> {
        maps.get(workload_key)
            .map(|b| b.iter().map(|(_, n)| n).sum())
    };
    match (total(&ref_maps), total(&maps)) {
        (Some(a), Some(b)) if a == b && a > 0 => Ok(()),
        (a, b) => Err(format!(
            "{workload_key} holds {a:?} events under bpftrace but {b:?} under rbt"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Attaching 2 probes...\n\n\n@ns[cat]: \n[1K, 2K)               2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n[2K, 4K)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\n@start[12]: 345\n";

    #[test]
    fn equal_layouts_and_totals_pass() {
        let other = OUT
            .replace("[1K, 2K)               2", "[1K, 2K)               1")
            .replace("[2K, 4K)               1", "[2K, 4K)               2");
        assert_eq!(compare(OUT, &other, "@ns[cat]"), Ok(()));
    }

    #[test]
    fn a_wrong_total_fails() {
        let other = OUT.replace("[2K, 4K)               1", "[2K, 4K)               3");
        assert!(compare(OUT, &other, "@ns[cat]").is_err());
    }

    #[test]
    fn a_broken_layout_fails() {
        let other = OUT.replace(
            "|@@@@@@@@@@@@@@@@@@@@@@@@@@                          |",
            "|@@@|",
        );
        assert!(compare(OUT, &other, "@ns[cat]").is_err());
        let missing = OUT.replace("\n\n\n", "\n");
        assert!(compare(OUT, &missing, "@ns[cat]").is_err());
    }

    #[test]
    fn a_key_printed_twice_fails() {
        let other = OUT.replace("\n@start", "\n@ns[cat]: \n[1K, 2K)               3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n@start");
        assert!(compare(OUT, &other, "@ns[cat]").is_err());
    }

    #[test]
    fn another_map_order_fails() {
        let other = "Attaching 2 probes...\n\n\n@start[12]: 345\n@ns[cat]: \n[1K, 2K)               3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n";
        assert!(compare(OUT, other, "@ns[cat]").is_err());
    }
}
