//! `-k`/`-kk` (helper error checks) compared with the real bpftrace 0.17 on this host:
//! which helpers each level checks, the warning's text with its source location and
//! marker line (columns as bpftrace's lexer counts them), and the `-f json` line.
//! Needs root and bpftrace 0.17 (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use bpftrace_ref::{assert_no_mismatches, output_mismatches, skip_reason, TEXT_AND_JSON};

const SCRIPTS: &[&str] = &[
    // -k: a failed delete; -kk also the lookup of a missing key.
    "i:ms:100 { @[1] = 1; delete(@[2]); exit(); }",
    "i:ms:100 { @[1] = 1; printf(\"%d\\n\", @[2]); exit(); }",
    // Aggregations on new keys: one lookup each, two for avg/stats, none for a
    // keyless count() (bpftrace's array map).
    "BEGIN { @a = avg(1); @b[1] = stats(2); @c = lhist(1,0,10,1); @d = min(1); @e = max(1); @f[2] = count(); @g = count(); @h = hist(2); @s[1] = sum(2); exit() }",
    // Reads through a null pointer; a cast shifts bpftrace's later columns by one.
    "struct foo {int a;}; BEGIN { $tmp = ((struct foo*) 0)->a; exit(); }",
    "BEGIN { $t = ((struct task_struct *)0)->pid; @x[1] = 1; $y = @x[1]; $z = @x[2]; delete(@x[1]); delete(@x[1]); exit(); }",
    "BEGIN { $p = (int8*)0; printf(\"%d %s %r\\n\", $p[3], str($p, 4), buf($p, 2)); exit(); }",
    // A tab before the call, and a statement on a later line.
    "BEGIN {\tdelete(@x[1]); @x[2] = 1; exit(); }",
    "BEGIN { @x[2] = 1;\n  delete(@x[1]);\n  $v = @x[3]; exit(); }",
];

#[test]
fn helper_errors_match_bpftrace() {
    if skip_reason("helper_errors_match_bpftrace").is_some() {
        return;
    }
    let mut failures = Vec::new();
    for level in ["-k", "-kk"] {
        failures.extend(output_mismatches(SCRIPTS, &[level], TEXT_AND_JSON));
    }
    assert_no_mismatches(failures, SCRIPTS.len() * 2 * TEXT_AND_JSON.len());
}

/// Without -k nothing is checked: the same scripts print no warning.
#[test]
fn no_checks_without_k() {
    if skip_reason("no_checks_without_k").is_some() {
        return;
    }
    assert_no_mismatches(
        output_mismatches(SCRIPTS, &[], TEXT_AND_JSON),
        SCRIPTS.len() * 2,
    );
}
