//! Attach-point wildcards, matched exactly as bpftrace 0.17 matches them
//! (`utils.cpp` `wildcard_match`, `probe_matcher.cpp` `get_matches_in_stream`): the
//! pattern is split at `*` and each piece is found left to right, first occurrence
//! first, without backtracking (so `a*b` does not match `abab`). `?` and `{a,b}` are
//! not wildcards (bpftrace's parser rejects them in attach points).

use std::collections::BTreeSet;

/// Whether `s` holds a wildcard (bpftrace also counts a `[...]` pair).
pub fn has_wildcard(s: &str) -> bool {
    s.contains('*') || (s.contains('[') && s.contains(']'))
}

/// Whether `candidate` matches `pattern`.
pub fn matches(pattern: &str, candidate: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    let tokens: Vec<&str> = pattern.split('*').filter(|t| !t.is_empty()).collect();
    let starts_wild = pattern.starts_with('*');
    let ends_wild = pattern.ends_with('*');
    if !starts_wild && !tokens.first().is_some_and(|t| candidate.starts_with(t)) {
        return false;
    }
    let mut next = 0;
    for token in &tokens {
        match candidate[next..].find(token) {
            Some(found) => next += found + token.len(),
            None => return false,
        }
    }
    ends_wild || next == candidate.len()
}

/// The lines of `list` matching `pattern`, sorted and deduplicated (bpftrace keeps
/// them in a `std::set`). With `strip_module`, a trailing ` [module]` is dropped first
/// (`available_filter_functions`); `.part.N` symbols are skipped (they cannot be traced).
pub fn matching_lines(pattern: &str, list: &str, strip_module: bool) -> BTreeSet<String> {
    list.lines()
        .map(|line| match strip_module {
            true => strip_symbol_module(line),
            false => line,
        })
        .filter(|line| matches(pattern, line) && !line.contains(".part."))
        .map(str::to_string)
        .collect()
}

/// `func [module]` → `func` (bpftrace's `strip_symbol_module`).
fn strip_symbol_module(line: &str) -> &str {
    match line.find(" [") {
        Some(at) if line.ends_with(']') => &line[..at],
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_like_bpftrace() {
        assert!(matches("sys_enter_*", "sys_enter_read"));
        assert!(matches("*", "anything"));
        assert!(matches("*read", "sys_enter_read"));
        assert!(matches("s*d:*", "sched:sched_switch"));
        assert!(!matches("sys_enter_*", "sys_exit_read"));
        assert!(!matches("read", "pread"));
        assert!(matches("read", "read"));
        // No backtracking, as in bpftrace: the first `b` is taken, then the end fails.
        assert!(!matches("a*b", "abab"));
        assert!(matches("a*b", "aab"));
        assert!(!matches("sys_enter_open?", "sys_enter_openat"));
    }

    #[test]
    fn wildcards_are_stars_and_bracket_pairs() {
        assert!(has_wildcard("sys_*"));
        assert!(has_wildcard("a[bc]"));
        assert!(!has_wildcard("sys_enter_read"));
        assert!(!has_wildcard("a?"));
    }

    #[test]
    fn filter_functions_lose_their_module_and_part_variants() {
        let list = include_str!("../../tests/data/available_filter_functions");
        let got: Vec<_> = matching_lines("tcp_v4_*", list, true).into_iter().collect();
        assert_eq!(
            got,
            [
                "tcp_v4_connect",
                "tcp_v4_destroy_sock",
                "tcp_v4_rcv",
                "tcp_v4_send_check"
            ]
        );
        let got: Vec<_> = matching_lines("ehci_*", list, true).into_iter().collect();
        assert_eq!(got, ["ehci_disable_ASE", "ehci_setup"]);
    }
}
