//! Semantic errors, rendered as the user sees them (file:line:col, the line, a caret),
//! checked against the pinned 6.18 BTF.

mod codegen_common;
mod support;

use codegen_common::{pinned_btf, snapshot};
use rbt::{diag, parser, sema};

/// The rendered diagnostics of a script that must fail semantic analysis.
fn errors(src: &str) -> String {
    let ast = parser::parse(src).unwrap_or_else(|d| panic!("{}", diag::render("test.bt", src, &d)));
    match sema::analyze(&ast, &pinned_btf().into()) {
        Ok(_) => panic!("expected semantic errors in:\n{src}"),
        Err(d) => diag::render("test.bt", src, &d),
    }
}

#[test]
fn unknown_struct() {
    snapshot(
        "sema_unknown_struct",
        errors("kretprobe:inet_csk_accept { $sk = (struct nosuch *)retval; }\n"),
    );
}

#[test]
fn unknown_member() {
    snapshot(
        "sema_unknown_member",
        errors("kretprobe:inet_csk_accept {\n  $sk = (struct sock *)retval;\n  printf(\"%d\\n\", $sk->__sk_common.skc_nosuch);\n}\n"),
    );
}

#[test]
fn member_access_on_non_pointer() {
    snapshot(
        "sema_member_on_integer",
        errors("BEGIN {\n  $x = pid;\n  printf(\"%d\\n\", $x->skc_family);\n}\n"),
    );
}

#[test]
fn printf_argument_count() {
    snapshot(
        "sema_printf_argument_count",
        errors("BEGIN {\n  printf(\"%d %d\\n\", pid);\n  printf(\"%d\\n\", pid, tid);\n}\n"),
    );
}

#[test]
fn printf_argument_type() {
    snapshot(
        "sema_printf_argument_type",
        errors("BEGIN {\n  printf(\"%d %s\\n\", comm, pid);\n}\n"),
    );
}

#[test]
fn ntop_of_a_string() {
    snapshot(
        "sema_ntop_string",
        errors("BEGIN {\n  printf(\"%s\\n\", ntop(comm));\n}\n"),
    );
}

#[test]
fn retval_outside_kretprobe() {
    snapshot(
        "sema_retval_in_kprobe",
        errors("kprobe:inet_csk_accept {\n  printf(\"%d\\n\", retval);\n}\n"),
    );
}

#[test]
fn variable_type_change() {
    snapshot(
        "sema_variable_type_change",
        errors("BEGIN {\n  $x = pid;\n  $x = comm;\n}\n"),
    );
}

#[test]
fn unknown_function() {
    snapshot(
        "sema_unknown_function",
        errors("BEGIN {\n  $x = frobnicate(1);\n}\n"),
    );
}

#[test]
fn unknown_kernel_function() {
    // A warning, as bpftrace's: the probe's other attach points would stay; this one
    // had none, so nothing is left to attach (main then says so).
    let src = "kprobe:no_such_kernel_function, kprobe:no_such_either { exit(); }\n";
    let ast = parser::parse(src).unwrap_or_else(|d| panic!("{}", diag::render("t", src, &d)));
    let typed = sema::analyze(&ast, &pinned_btf().into())
        .unwrap_or_else(|d| panic!("{}", diag::render("test.bt", src, &d)));
    assert!(typed.probes.is_empty());
    // Still counted in "Attaching N probes...", as bpftrace drops them only at attach.
    assert_eq!(typed.unattached, 2);
    // The running kernel's release varies by machine.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    snapshot(
        "sema_unknown_kernel_function",
        diag::render("test.bt", src, &typed.warnings)
            .replace(&format!("Linux {}", release.trim()), "Linux RELEASE"),
    );
}

#[test]
fn unknown_tracepoint() {
    // Not in BTF; with tracefs readable bpftrace 0.17's words (with its `ERROR:`), else
    // why it cannot tell.
    let out = errors("tracepoint:sock:no_such_event { exit(); }\n");
    assert!(
        out.starts_with("test.bt:1:1: ERROR: tracepoint not found: sock:no_such_event\n")
            || out.starts_with("test.bt:1:1: error: tracepoint 'sock:no_such_event' not found: "),
        "{out}"
    );
    assert!(
        out.ends_with("tracepoint:sock:no_such_event { exit(); }\n^~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"),
        "{out}"
    );
}

#[test]
fn aggregations_are_typed_as_bpftrace_types_them() {
    snapshot(
        "sema_aggregation_errors",
        errors(concat!(
            "BEGIN {\n",
            "  @c = count();\n",
            "  @c = hist(1);\n",
            "  $x = count();\n",
            "  @h = hist(comm);\n",
            "  @l = lhist(1, 10, 5, 1);\n",
            "  @s = sum(1, 2);\n",
            "  @n = count();\n",
            "  $y = @n + 1;\n",
            "  @k[1] = 1;\n",
            "  @k[1, 2] = 1;\n",
            "  clear(@k[1]);\n",
            "}\n"
        )),
    );
}

#[test]
fn every_error_is_reported() {
    let out = errors(
        "kprobe:tcp_sendmsg {\n  $a = retval;\n  $s = (struct sock *)arg0;\n  $f = $s->nosuch;\n  printf(\"%s\\n\", $s->sk_ack_backlog);\n}\n",
    );
    assert_eq!(out.matches(": error: ").count(), 3, "{out}");
    snapshot("sema_several_errors", out);
}

#[test]
fn ntop_family_must_match_the_address() {
    snapshot(
        "sema_ntop_family_mismatch",
        errors("kprobe:tcp_set_state {\n  $sk = (struct sock *)arg0;\n  $a = ntop(10, $sk->__sk_common.skc_daddr);\n  $b = ntop(arg1, 0);\n}\n"),
    );
}

#[test]
fn maps_must_be_assigned() {
    snapshot(
        "sema_map_never_assigned",
        errors("BEGIN {\n  @a[1] = 2;\n  @b = @c;\n}\nEND {\n  clear(@b);\n}\n"),
    );
}

#[test]
fn tuple_errors() {
    // Messages as bpftrace 0.17 words them (tests/tuples_vs_bpftrace.rs compares them).
    snapshot(
        "sema_tuple_errors",
        errors("BEGIN {\n  $t = (1, \"a\");\n  print($t.5);\n  $t = 5;\n  $u = (1, 2);\n  $u = (1, \"a\");\n  @[(1, 2)] = 1;\n  $i = 1;\n  print($i.0);\n}\n"),
    );
}
