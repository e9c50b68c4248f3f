//! The golden comparator: rbt's output must equal bpftrace's line for line,
//! byte for byte, except the `time("%H:%M:%S ")` stamp at the start of a line
//! (both tracers stamp events when they print them, so a second boundary may
//! fall between them). Nothing else is masked: widths, order, counts, BL all
//! have to match.

use std::fmt;

/// Replaces a leading `HH:MM:SS` with a fixed mask; other lines unchanged.
pub fn mask_time(line: &str) -> String {
    let b = line.as_bytes();
    let is_time = b.len() >= 8
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && b[2] == b':'
        && b[5] == b':';
    if is_time {
        format!("HH:MM:SS{}", &line[8..])
    } else {
        line.to_string()
    }
}

/// Where and how two outputs first differ.
#[derive(Debug, PartialEq)]
pub struct Mismatch {
    /// 1-based line number of the first difference.
    pub line: usize,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub expected_lines: usize,
    pub actual_lines: usize,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |l: &Option<String>| match l {
            Some(s) => format!("{s:?}"),
            None => "<no line>".to_string(),
        };
        write!(
            f,
            "first difference at line {} (bpftrace {} lines, rbt {} lines)\n  bpftrace: {}\n  rbt:      {}",
            self.line,
            self.expected_lines,
            self.actual_lines,
            show(&self.expected),
            show(&self.actual)
        )
    }
}

/// Compares rbt's output (`actual`) with bpftrace's (`expected`).
pub fn compare(expected: &str, actual: &str) -> Result<(), Mismatch> {
    let exp: Vec<String> = expected.split('\n').map(mask_time).collect();
    let act: Vec<String> = actual.split('\n').map(mask_time).collect();
    let first = (0..exp.len().max(act.len())).find(|&i| exp.get(i) != act.get(i));
    match first {
        None => Ok(()),
        Some(i) => Err(Mismatch {
            line: i + 1,
            expected: exp.get(i).cloned(),
            actual: act.get(i).cloned(),
            expected_lines: expected.lines().count(),
            actual_lines: actual.lines().count(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bpftrace 0.17's real output for the ports-backlogs scenario, measured in
    /// the 6.1 VM (tests/data/golden/README.md says how it was captured).
    const MEASURED: &str = include_str!("../data/golden/bpftrace-ports-backlogs.out");

    fn lines() -> Vec<String> {
        MEASURED.split('\n').map(str::to_string).collect()
    }

    fn first_data_line(lines: &[String]) -> usize {
        lines
            .iter()
            .position(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap()
    }

    #[test]
    fn identical_outputs_match() {
        assert!(
            MEASURED.lines().count() > 10,
            "fixture too small to be meaningful"
        );
        assert_eq!(compare(MEASURED, MEASURED), Ok(()));
    }

    #[test]
    fn only_the_time_stamp_is_masked() {
        let mut l = lines();
        let i = first_data_line(&l);
        l[i].replace_range(0..8, "23:59:59");
        assert_eq!(compare(MEASURED, &l.join("\n")), Ok(()));
        // A time-shaped field elsewhere in the line is not masked.
        let mut l = lines();
        l[i].push_str(" 12:34:56");
        assert!(compare(MEASURED, &l.join("\n")).is_err());
    }

    #[test]
    fn wrong_printf_width_fails() {
        // COMM printed with %-13s instead of %-14s: one pad space fewer.
        let mut l = lines();
        let i = first_data_line(&l);
        let comm_end = l[i].find("acceptload ").unwrap() + "acceptload ".len();
        l[i].remove(comm_end);
        let err = compare(MEASURED, &l.join("\n")).unwrap_err();
        assert_eq!(err.line, i + 1);
        assert!(err.to_string().contains("first difference at line"));
    }

    #[test]
    fn missing_line_fails() {
        let mut l = lines();
        let i = first_data_line(&l) + 3;
        l.remove(i);
        let err = compare(MEASURED, &l.join("\n")).unwrap_err();
        assert_eq!(err.line, i + 1);
        assert_eq!(err.actual_lines + 1, err.expected_lines);
    }

    #[test]
    fn reordered_lines_fail() {
        let mut l = lines();
        let i = first_data_line(&l);
        l.swap(i + 1, i + 2);
        let err = compare(MEASURED, &l.join("\n")).unwrap_err();
        assert_eq!(err.line, i + 2);
    }

    #[test]
    fn wrong_backlog_fails() {
        let mut l = lines();
        let i = l
            .iter()
            .position(|x| x.ends_with(" 1/7"))
            .expect("fixture has a 1/7 line");
        let n = l[i].len();
        l[i].replace_range(n - 3.., "2/7");
        let err = compare(MEASURED, &l.join("\n")).unwrap_err();
        assert_eq!(err.line, i + 1);
        assert!(err.expected.unwrap().ends_with("1/7"));
    }

    #[test]
    fn extra_trailing_output_fails() {
        let err = compare(MEASURED, &format!("{MEASURED}Lost 3 events\n")).unwrap_err();
        assert_eq!(err.expected, Some(String::new()));
    }
}
