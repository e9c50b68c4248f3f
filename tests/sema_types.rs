//! Types sema gives kernel data and builtins (bpftrace 0.17 rules), on the pinned BTF.

mod codegen_common;
mod support;

use codegen_common::{pinned_btf, read};
use rbt::sema::{self, Type, TypedProgram};
use rbt::{diag, parser};

fn analyze(file: &str, src: &str) -> TypedProgram {
    let ast = parser::parse(src).unwrap_or_else(|d| panic!("{}", diag::render(file, src, &d)));
    sema::analyze(&ast, &pinned_btf().into())
        .unwrap_or_else(|d| panic!("{}", diag::render(file, src, &d)))
}

/// `(name, type)` of each variable of the first probe of probe type `kind`.
fn vars(program: &TypedProgram, kind: &str) -> Vec<(String, String)> {
    let probe = program
        .probes
        .iter()
        .find(|p| p.provider.name == kind)
        .expect("probe");
    probe
        .vars
        .iter()
        .map(|v| (v.name.clone(), v.ty.describe()))
        .collect()
}

#[test]
fn tcpaccept_variables_have_kernel_widths() {
    let expected: Vec<(String, String)> = [
        ("sk", "struct sock *"),
        ("inet_family", "uint16"),
        ("daddr", "inet"),
        ("saddr", "inet"),
        ("lport", "uint16"),
        ("dport", "uint16"),
        ("qlen", "uint32"),
        ("qmax", "uint32"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect();
    for file in [
        "tests/data/upstream/v0.14.0.bt",
        "tests/data/upstream/v0.17.0.bt",
        "tests/data/upstream/head-e1b7c3934.bt",
    ] {
        let program = analyze(file, &read(file));
        assert_eq!(vars(&program, "kretprobe"), expected, "{file}");
    }
}

#[test]
fn tracepoint_args_are_typed_from_the_event_record() {
    let src = "tracepoint:sock:inet_sock_set_state {\n  $old = args->oldstate;\n  $sport = args.sport;\n  $skaddr = args->skaddr;\n  $a = ntop(args->saddr_v6);\n}\n";
    let program = analyze("t.bt", src);
    let got = vars(&program, "tracepoint");
    let types: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(types, ["int32", "uint16", "void *", "inet"]);
}

#[test]
fn builtins_and_arithmetic() {
    let src = "kprobe:tcp_sendmsg {\n  $p = pid;\n  $c = comm;\n  $a = arg2;\n  $n = -1;\n  $m = $n * 2;\n  $u = $p + $n;\n  $b = bswap((uint16)1);\n}\n";
    let program = analyze("t.bt", src);
    let got: Vec<(String, String)> = vars(&program, "kprobe");
    let types: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    // Arithmetic is 64-bit, signed only when both operands are.
    assert_eq!(
        types,
        [
            "uint64",
            "string[16]",
            "uint64",
            "int64",
            "int64",
            "uint64",
            "uint16"
        ]
    );
}

#[test]
fn integer_reassignment_keeps_the_first_type() {
    let src = "BEGIN {\n  $x = (uint16)1;\n  $x = 70000;\n}\n";
    let program = analyze("t.bt", src);
    assert_eq!(
        program.probes[0].vars[0].ty,
        Type::Int {
            size: 2,
            signed: false
        }
    );
}

#[test]
fn kernel_enumerators_are_constants() {
    // tcplife.bt compares with TCP_* states, which BTF knows as enumerators.
    let src = "kprobe:tcp_set_state {\n  $close = TCP_CLOSE;\n  $is = arg1 == TCP_FIN_WAIT1;\n}\n";
    let program = analyze("t.bt", src);
    let probe = &program.probes[0];
    assert_eq!(probe.vars[0].ty, Type::I64);
    let rbt::sema::TStmtKind::Assign { value, .. } = &probe.body[0].kind else {
        panic!()
    };
    assert_eq!(value.kind, rbt::sema::TExprKind::Int(7), "TCP_CLOSE");
}

#[test]
fn ntop_with_an_explicit_family() {
    let src = "kprobe:tcp_set_state {\n  $sk = (struct sock *)arg0;\n  $a = ntop(2, $sk->__sk_common.skc_daddr);\n  $b = ntop(10, $sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8);\n}\n";
    let program = analyze("t.bt", src);
    let types: Vec<String> = program.probes[0]
        .vars
        .iter()
        .map(|v| v.ty.describe())
        .collect();
    assert_eq!(types, ["struct sock *", "inet", "inet"]);
}
