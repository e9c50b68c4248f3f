//! Rendered diagnostics for malformed scripts: position, caret, wording.

use rbt::parser::parse;

/// (snapshot name, script)
const CASES: &[(&str, &str)] = &[
    ("unterminated_string", "BEGIN { printf(\"hello); }\n"),
    (
        "unterminated_attach_point_string",
        "uprobe:/bin/bash:\"echo_builtin { exit(); }\n",
    ),
    (
        "unterminated_comment",
        "BEGIN { exit(); }\n/* never closed\nEND { }\n",
    ),
    (
        "unterminated_block",
        "BEGIN {\n  if (1) {\n    exit();\n  }\n",
    ),
    ("bad_cast", "kprobe:f { $sk = (struct sock *retval; }\n"),
    ("bad_cast_no_tag", "kprobe:f { $sk = (struct *)retval; }\n"),
    ("unknown_probe_type", "kprobee:tcp_connect { exit(); }\n"),
    (
        "unsupported_probe_type",
        "usdt:/bin/bash:readline { exit(); }\n",
    ),
    (
        "missing_close_brace",
        "BEGIN { printf(\"x\");\nkretprobe:inet_csk_accept { exit(); }\n",
    ),
    ("stray_token", "BEGIN { $x = 1 $y = 2; }\n"),
    ("stray_close_brace", "BEGIN { exit(); } }\n"),
    ("bad_escape", "BEGIN { printf(\"a\\qb\\n\"); }\n"),
    ("else_without_if", "#else\nBEGIN { }\n"),
    (
        "endif_missing",
        "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/socket.h>\nBEGIN { }\n",
    ),
    ("unknown_include", "#include <net/nope.h>\nBEGIN { }\n"),
    ("missing_paren", "BEGIN { printf(\"%d\\n\", (1 + 2); }\n"),
    ("empty_predicate", "BEGIN / / { exit(); }\n"),
    (
        "bad_integer",
        "BEGIN { $x = 09; $y = 0x; $z = 99999999999999999999; }\n",
    ),
    ("missing_attach_point", "{ exit(); }\n"),
    ("missing_function", "kprobe: { exit(); }\n"),
    ("non_lvalue", "BEGIN { 1 = 2; $a + 1 = 3; }\n"),
    (
        "several_errors",
        "BEGIN { $x = ; }\nkprobe:f { $y = 1 +; }\nEND { @a[] = 1; }\n",
    ),
    ("incdec_non_lvalue", "BEGIN { $x->y++; ++1; }\n"),
    ("macro_body_error", "#define FOO 1 +\nBEGIN { $x = FOO; }\n"),
    ("macro_without_value", "#define FOO\nBEGIN { $x = FOO; }\n"),
    (
        "function_like_macro",
        "#define SQ(x) ((x) * (x))\nBEGIN { }\n",
    ),
    ("unclosed_predicate", "BEGIN /pid == 1 { exit(); }\n"),
    ("else_alone", "BEGIN { else { exit(); } }\n"),
    ("keyword_as_value", "BEGIN { $x = while; }\n"),
    ("positional_parameter", "BEGIN { printf(\"%d\\n\", $0); }\n"),
    ("unsupported_statement", "BEGIN { break; }\n"),
    ("unroll_not_a_count", "BEGIN { unroll(x) { exit(); } }\n"),
    ("tuple", "BEGIN { $t = (1, ); }\n"),
    ("bad_directive", "#incldue <linux/socket.h>\nBEGIN { }\n"),
    (
        "missing_semicolon_between_calls",
        "BEGIN {\n  printf(\"a\")\n  exit()\n}\n",
    ),
    ("empty_file", ""),
    ("eof_in_expression", "BEGIN {\n  $x = 1 +\n\n"),
    ("eof_after_attach_point", "kprobe:tcp_connect\n"),
    (
        "unicode_before_error",
        "BEGIN { printf(\"héllo\"); $x = ; }\n",
    ),
];

#[test]
fn malformed_scripts() {
    for (name, src) in CASES {
        let diags = match parse(src) {
            Ok(p) => panic!("{name}: parsed without error: {p:#?}"),
            Err(d) => d,
        };
        let rendered = rbt::diag::render(&format!("{name}.bt"), src, &diags);
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false, description => *src}, {
            insta::assert_snapshot!(format!("parser_err_{name}"), rendered);
        });
    }
}

#[test]
fn independent_errors_are_all_reported() {
    let (_, src) = CASES.iter().find(|(n, _)| *n == "several_errors").unwrap();
    let diags = parse(src).unwrap_err();
    let lines: Vec<usize> = diags
        .iter()
        .map(|d| rbt::diag::line_col(src, d.span.start as usize).0)
        .collect();
    assert_eq!(lines, [1, 2, 3]);
}
