//! Positional parameters (`$1`.., `$#`, `str($1)`) end to end: rbt and the real
//! bpftrace 0.17 run the same BEGIN scripts with the same arguments after the script
//! (`-e PROGRAM ARGS...` and `FILE ARGS...`) and must print the same bytes; where
//! bpftrace rejects the script, rbt must too, with the same message (the location
//! format differs by design: rbt prints `line:col` and a caret).
//! Needs root and bpftrace 0.17 (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use bpftrace_ref::error_message as message;
use std::process::{Command, Output, Stdio};

fn run(tracer: &str, pre: &[&str], post: &[&str]) -> Output {
    Command::new(tracer)
        .args(pre)
        .args(post)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"))
}

/// (script, parameters)
const CASES: &[(&str, &[&str])] = &[
    ("BEGIN { printf(\"%d\\n\", $1); exit(); }", &[]),
    (
        "BEGIN { printf(\"%d %d\\n\", $1, $#); exit(); }",
        &["5", "foo"],
    ),
    (
        "BEGIN { printf(\"%s %s\\n\", str($1), str($2)); exit(); }",
        &["5", "foo"],
    ),
    (
        "BEGIN { printf(\"[%s]\\n\", str($3)); exit(); }",
        &["5", "foo"],
    ),
    (
        "BEGIN { printf(\"%d %d %d\\n\", $1 + 1, $2, $3); exit(); }",
        &["0x10", "010", "7"],
    ),
    ("BEGIN { printf(\"%d\\n\", $#); exit(); }", &[]),
    (
        "BEGIN { @[str($1)] = count(); printf(\"%s\\n\", str($1, 2)); exit(); }",
        &["hello"],
    ),
    (
        "BEGIN { printf(\"%s|%s\\n\", str($1 + 1), str(2 + $1)); exit(); }",
        &["hello"],
    ),
    (
        "BEGIN { if (str($1) == \"yes\") { printf(\"y\\n\"); } @n = $2 * 2; exit(); }",
        &["yes", "21"],
    ),
    (
        "BEGIN { printf(\"%s\\n\", str($1)); exit(); }",
        &["0123456789012345678901234567890123456789012345678901234567890123456789"],
    ),
    // Where a literal is required, a parameter counts as one.
    (
        "BEGIN { @[1] = 1; @[2] = 2; @[3] = 3; print(@, $1); clear(@); exit(); }",
        &["2"],
    ),
    // Rejected by both.
    ("BEGIN { printf(\"%d\\n\", $2); exit(); }", &["5", "foo"]),
    ("BEGIN { printf(\"%d\\n\", $1); exit(); }", &["12abc"]),
    ("BEGIN { printf(\"%d\\n\", $0); exit(); }", &["1"]),
    ("BEGIN { printf(\"%s\\n\", str($#)); exit(); }", &["1"]),
    ("BEGIN { printf(\"%s\\n\", str($1 * 2)); exit(); }", &["1"]),
    (
        "BEGIN { printf(\"%s\\n\", str($1 + 6)); exit(); }",
        &["hello"],
    ),
    (
        "BEGIN { printf(\"%s\\n\", str(($1 + 1) + 1)); exit(); }",
        &["hello"],
    ),
    (
        "BEGIN { printf(\"%s\\n\", str(pid + 1)); exit(); }",
        &["hello"],
    ),
    // In attach points: substituted as text, a missing one as "".
    ("i:ms:$1 { printf(\"hello world\\n\"); exit(); }", &["1"]),
    (
        "BEG$1 { printf(\"hello %s\\n\", str($1)); exit(); }",
        &["IN"],
    ),
    ("i:ms:1$2 { printf(\"x\\n\"); exit(); }", &["5"]),
    (
        "i:$1:$2 { printf(\"%s\\n\", probe); exit(); }",
        &["ms", "20"],
    ),
    // `str($1)` where a string literal is required.
    (
        "BEGIN { printf(\"%d\\n\", kaddr(str($1)) > 0); exit(); }",
        &["vfs_read"],
    ),
];

fn compare(pre: &[&str], post: &[&str], rbt_pre: &[&str], what: &str) -> Option<String> {
    let expected = run("bpftrace", pre, post);
    let got = run(env!("CARGO_BIN_EXE_rbt"), rbt_pre, post);
    if expected.status.success() {
        (got.status.success() && got.stdout == expected.stdout)
            .then_some(())
            .map_or_else(
                || {
                    Some(format!(
                        "{what} {post:?}\n--- bpftrace\n{}--- rbt ({})\n{}{}",
                        String::from_utf8_lossy(&expected.stdout),
                        got.status,
                        String::from_utf8_lossy(&got.stdout),
                        String::from_utf8_lossy(&got.stderr)
                    ))
                },
                |()| None,
            )
    } else {
        let want = message(&expected.stderr);
        let have = message(&got.stderr);
        assert!(want.is_some(), "bpftrace gave no message for {what}");
        (got.status.success() || want != have).then(|| {
            format!(
                "{what} {post:?}: bpftrace says {want:?}, rbt ({}) {have:?}",
                got.status
            )
        })
    }
}

#[test]
fn positional_parameters_match_bpftrace() {
    if bpftrace_ref::skip_reason("positional_parameters_match_bpftrace").is_some() {
        return;
    }
    let mut failures = Vec::new();
    for (script, params) in CASES {
        failures.extend(compare(&["-e", script], params, &["-e", script], script));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn script_file_parameters_match_bpftrace() {
    if bpftrace_ref::skip_reason("script_file_parameters_match_bpftrace").is_some() {
        return;
    }
    let path = std::env::temp_dir().join(format!("rbt-positional-{}.bt", std::process::id()));
    std::fs::write(
        &path,
        "BEGIN { printf(\"%d %s %d\\n\", $1, str($2), $#); exit(); }\n",
    )
    .unwrap();
    let file = path.to_string_lossy().into_owned();
    let failure = compare(&[&file], &["7", "bar"], &[&file], "script file");
    let _ = std::fs::remove_file(&path);
    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
}
