//! Normalizes bpftrace's tcpaccept output for the insta snapshots: what
//! changes from run to run (the time, PIDs, ephemeral ports) becomes a
//! placeholder, everything else (addresses, listener ports, COMM, BL, the
//! column layout) stays. PIDs become P1, P2, ... in order of appearance, so a
//! forked child still shows as a different process.

use std::collections::HashMap;

/// The first port of Linux's default ephemeral range (ip_local_port_range);
/// scenarios listen below it.
const EPHEMERAL_START: u32 = 32768;

/// Formats an accept line exactly like tcpaccept.bt's printf calls.
fn format_line(f: &[&str; 8]) -> String {
    format!(
        "{:<8} {:<6} {:<14} {:<39} {:<5} {:<39} {:<5} {}",
        f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
    )
}

fn is_accept_line(fields: &[&str]) -> bool {
    fields.len() == 8
        && fields[0].len() == 8
        && fields[0].as_bytes()[2] == b':'
        && fields[1].parse::<u32>().is_ok()
}

/// Returns the normalized output. A line that looks like an accept but does
/// not re-format to itself is kept verbatim (so a layout surprise shows up in
/// the snapshot instead of being papered over).
pub fn normalize(output: &str) -> String {
    let mut pids: HashMap<String, String> = HashMap::new();
    let mut out = String::new();
    for line in output.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let fields: Vec<&str> = body.split_whitespace().collect();
        let normalized = if is_accept_line(&fields) {
            let f: [&str; 8] = fields.clone().try_into().unwrap();
            if format_line(&f) == body {
                let n = pids.len() + 1;
                let pid = pids
                    .entry(f[1].to_string())
                    .or_insert_with(|| format!("P{n}"))
                    .clone();
                let port = |p: &str| match p.parse::<u32>() {
                    Ok(v) if v >= EPHEMERAL_START => "EPORT".to_string(),
                    _ => p.to_string(),
                };
                let (rport, lport) = (port(f[4]), port(f[6]));
                format_line(&["HH:MM:SS", &pid, f[2], f[3], &rport, f[5], &lport, f[7]])
            } else {
                body.to_string()
            }
        } else {
            body.to_string()
        };
        out.push_str(&normalized);
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEASURED: &str = include_str!("../data/golden/bpftrace-ports-backlogs.out");

    #[test]
    fn keeps_layout_and_masks_what_varies() {
        let n = normalize(MEASURED);
        assert_eq!(n.lines().count(), MEASURED.lines().count());
        for (a, b) in MEASURED.lines().zip(n.lines()) {
            assert_eq!(a.len(), b.len(), "column layout changed: {a:?} -> {b:?}");
        }
        assert!(n.contains("HH:MM:SS P1     acceptload"));
        assert!(!n
            .lines()
            .any(|l| l.starts_with(|c: char| c.is_ascii_digit())));
    }

    #[test]
    fn distinct_pids_get_distinct_placeholders() {
        let a = format_line(&[
            "01:02:03",
            "41",
            "x",
            "127.0.0.1",
            "40000",
            "127.0.0.1",
            "8080",
            "0/1",
        ]);
        let b = format_line(&[
            "01:02:03",
            "42",
            "x",
            "127.0.0.1",
            "40002",
            "127.0.0.1",
            "8080",
            "0/1",
        ]);
        let n = normalize(&format!("{a}\n{b}\n{a}\n"));
        let pids: Vec<&str> = n
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(pids, ["P1", "P2", "P1"]);
        assert!(n
            .lines()
            .all(|l| l.contains(" EPORT ") && l.contains(" 8080 ")));
    }
}
