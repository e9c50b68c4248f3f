//! Grammar details: precedence against bpftrace's own parser, the preprocessor,
//! literals, attach points, spans, and the nesting limit.

use rbt::ast::{ExprKind, StmtKind};
use rbt::diag::Span;
use rbt::parser::{dump, parse};

fn ok(src: &str) -> rbt::ast::Program {
    parse(src).unwrap_or_else(|d| panic!("{}", rbt::diag::render("t.bt", src, &d)))
}

fn err(src: &str) -> String {
    match parse(src) {
        Ok(p) => panic!("parsed: {}", dump(&p)),
        Err(d) => rbt::diag::render("t.bt", src, &d),
    }
}

/// The value assigned by the first statement of the first probe.
fn value(src: &str) -> ExprKind {
    let p = ok(src);
    match &p.probes[0].body.stmts[0].kind {
        StmtKind::Assign { value, .. } => value.kind.clone(),
        StmtKind::Expr(e) => e.kind.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn precedence_matches_bpftrace() {
    // tests/data/prec.bpftrace-0.17.txt is `bpftrace -d` (v0.17.0) of prec.bt,
    // its parser AST with the type annotations removed.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let src = std::fs::read_to_string(format!("{dir}/prec.bt")).unwrap();
    let expected = std::fs::read_to_string(format!("{dir}/prec.bpftrace-0.17.txt")).unwrap();
    assert_eq!(dump(&ok(&src)).trim_end(), expected.trim_end());
}

#[test]
fn defines_and_headers() {
    // A define overrides a builtin, as in C.
    assert_eq!(
        value("#define pid 5\nBEGIN { $x = pid; }"),
        ExprKind::Int(5)
    );
    assert_eq!(
        value("BEGIN { $x = pid; }"),
        ExprKind::Builtin("pid".into())
    );
    // Header constants exist only after the #include.
    assert_eq!(
        value("BEGIN { $x = AF_INET6; }"),
        ExprKind::Ident("AF_INET6".into())
    );
    assert_eq!(
        value("#include <linux/socket.h>\nBEGIN { $x = AF_INET6; }"),
        ExprKind::Int(10)
    );
    assert_eq!(
        value("#include \"sys/socket.h\"\nBEGIN { $x = AF_UNIX; }"),
        ExprKind::Int(1)
    );
    assert_eq!(
        value("#include <net/tcp_states.h>\nBEGIN { $x = TCP_CLOSE; }"),
        ExprKind::Int(7)
    );
    assert_eq!(
        value("#include <net/sock.h>\nBEGIN { $x = AF_INET; }"),
        ExprKind::Int(2)
    );
    // Chains, self reference, #undef, redefinition.
    assert_eq!(
        value("#define A B\n#define B 3\nBEGIN { $x = A; }"),
        ExprKind::Int(3)
    );
    assert_eq!(
        value("#define X X\nBEGIN { $x = X; }"),
        ExprKind::Ident("X".into())
    );
    assert_eq!(
        value("#define X 1\n#undef X\nBEGIN { $x = X; }"),
        ExprKind::Ident("X".into())
    );
    assert_eq!(
        value("#define X 1\n#define X 2\nBEGIN { $x = X; }"),
        ExprKind::Int(2)
    );
    // An expression body becomes a tree, every node spanning the use.
    let p = ok("#define MASK (1 << 4) - 1\nBEGIN { $x = MASK; }");
    let StmtKind::Assign { value, .. } = &p.probes[0].body.stmts[0].kind else {
        panic!()
    };
    let at = "#define MASK (1 << 4) - 1\nBEGIN { $x = ".len();
    assert!(matches!(value.kind, ExprKind::Binary { .. }));
    assert_eq!(value.span, Span::new(at, at + 4));
}

#[test]
fn conditionals() {
    let pick = |cond: &str| {
        value(&format!(
            "{cond}\n#define V 1\n#else\n#define V 2\n#endif\nBEGIN {{ $x = V; }}"
        ))
    };
    assert_eq!(pick("#ifdef BPFTRACE_HAVE_BTF"), ExprKind::Int(1));
    assert_eq!(pick("#ifndef BPFTRACE_HAVE_BTF"), ExprKind::Int(2));
    assert_eq!(pick("#if 0"), ExprKind::Int(2));
    assert_eq!(pick("#if 1"), ExprKind::Int(1));
    assert_eq!(
        pick("#if defined(BPFTRACE_HAVE_BTF) && !defined(NOPE)"),
        ExprKind::Int(1)
    );
    assert_eq!(pick("#if BPFTRACE_HAVE_BTF == 2"), ExprKind::Int(2));
    let src =
        "#if 0\n#define V 1\n#elif 1\n#define V 3\n#else\n#define V 2\n#endif\nBEGIN { $x = V; }";
    assert_eq!(value(src), ExprKind::Int(3));
    // Nested, inactive outer: inner branches stay off, bad includes are not read.
    let src = "#if 0\n#include <no/such.h>\n#if 1\n#define V 1\n#endif\n#endif\nBEGIN { $x = V; }";
    assert_eq!(value(src), ExprKind::Ident("V".into()));
    // Code in inactive branches is not parsed.
    ok("#if 0\nthis is not bpftrace\n#endif\nBEGIN { exit(); }");
    // Directives inside comments are not directives.
    ok("/*\n#error no\n*/\nBEGIN { exit(); }");
    assert!(err("#if 1\n#else\n#else\n#endif\nBEGIN {}").contains("#else after #else"));
    assert!(err("#endif\nBEGIN {}").contains("#endif without #if"));
    assert!(err("#error stop here\nBEGIN {}").contains("error: #error stop here"));
}

#[test]
fn literals() {
    for (src, v) in [
        ("1e3", 1000),
        ("1_000", 1000),
        ("010", 8),
        ("0x10", 16),
        ("0", 0),
        ("5u", 5),
        ("7ULL", 7),
    ] {
        assert_eq!(
            value(&format!("BEGIN {{ $x = {src}; }}")),
            ExprKind::Int(v),
            "{src}"
        );
    }
    assert_eq!(
        value("BEGIN { $x = 18446744073709551615; }"),
        ExprKind::Int(u64::MAX)
    );
    assert_eq!(
        value(r#"BEGIN { $x = "a\n\t\r\\\"\x41\101\0"; }"#),
        ExprKind::Str("a\n\t\r\\\"AA\0".into())
    );
    assert!(err(r#"BEGIN { $x = "\xff"; }"#).contains("UTF-8"));
    assert!(err(r#"BEGIN { $x = "\777"; }"#).contains("out of range"));
    assert!(err("BEGIN { $x = 1_; }").contains("'_' must separate digits"));
    assert!(err("BEGIN { $x = 12ab; }").contains("unexpected 'ab'"));
}

#[test]
fn probes_and_attach_points() {
    let p = ok("#!/usr/bin/env bpftrace\n// c\nk:f,kr:g, t:sock:inet_sock_set_state /pid == 1/ { exit() }\nkprobe:tcp_* {}\nBEGIN,END{}");
    let names: Vec<String> = p
        .probes
        .iter()
        .flat_map(|p| p.attach_points.iter().map(|a| a.name()))
        .collect();
    assert_eq!(
        names,
        [
            "kprobe:f",
            "kretprobe:g",
            "tracepoint:sock:inet_sock_set_state",
            "kprobe:tcp_*",
            "BEGIN",
            "END"
        ]
    );
    assert_eq!(p.probes[0].attach_points[2].provider.name, "tracepoint");
    assert!(p.probes[0].predicate.is_some());
    assert!(err("tracepoint:sock {}").contains("write tracepoint:CATEGORY:EVENT"));
    assert!(err("BEGIN:x {}").contains("BEGIN takes no arguments"));
}

#[test]
fn statements() {
    let p = ok("BEGIN { if (1) { } else if (2) { $a = 1 } else { return } while ($i < 3) { $i++; } @ = 1; @x[1, 2] += 3; $s <<= 1; --@c; unroll(2) { } }");
    let kinds: Vec<&str> = p.probes[0]
        .body
        .stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::If {
                otherwise: Some(b), ..
            } if matches!(b.stmts[0].kind, StmtKind::If { .. }) => "if-else-if",
            StmtKind::If { .. } => "if",
            StmtKind::While { .. } => "while",
            StmtKind::Unroll { .. } => "unroll",
            StmtKind::Assign { op: None, .. } => "=",
            StmtKind::Assign { op: Some(_), .. } => "op=",
            StmtKind::Expr(_) => "expr",
            StmtKind::Return => "return",
        })
        .collect();
    assert_eq!(
        kinds,
        ["if-else-if", "while", "=", "op=", "op=", "expr", "unroll"]
    );
    // Lenient where bpftrace 0.17 is strict: `;` after a block, empty statements.
    ok("BEGIN { if (1) { exit() }; ; exit(); }");
}

#[test]
fn spans_point_at_the_source() {
    let src = "kretprobe:inet_csk_accept\n{\n\t$sk = (struct sock *)retval;\n\t$f = $sk->__sk_common.skc_family;\n}\n";
    let p = ok(src);
    let text = |s: Span| &src[s.start as usize..s.end as usize];
    assert_eq!(
        text(p.probes[0].attach_points[0].span),
        "kretprobe:inet_csk_accept"
    );
    assert_eq!(text(p.probes[0].span), src.trim_end());
    let stmts = &p.probes[0].body.stmts;
    assert_eq!(text(stmts[0].span), "$sk = (struct sock *)retval");
    let StmtKind::Assign { value, .. } = &stmts[0].kind else {
        panic!()
    };
    assert_eq!(text(value.span), "(struct sock *)retval");
    let ExprKind::Cast { ty, expr } = &value.kind else {
        panic!()
    };
    assert_eq!(
        (ty.name.as_str(), ty.pointer_depth, text(ty.span)),
        ("struct sock", 1, "struct sock *")
    );
    assert_eq!(text(expr.span), "retval");
    let StmtKind::Assign { value, .. } = &stmts[1].kind else {
        panic!()
    };
    assert_eq!(text(value.span), "$sk->__sk_common.skc_family");
    let ExprKind::Member {
        expr, arrow: false, ..
    } = &value.kind
    else {
        panic!()
    };
    assert_eq!(text(expr.span), "$sk->__sk_common");
}

/// Runs `f` on a thread with a small stack: the parser recurses on its own thread,
/// so the caller's stack size does not matter.
const STACK: usize = 256 << 10;
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    on_small_stack(|| {
        let n = 5000;
        let cases = [
            format!("BEGIN {{ $x = {}1{}; }}", "(".repeat(n), ")".repeat(n)),
            format!("BEGIN {{ $x = {}1; }}", "!".repeat(n)),
            format!("BEGIN {{ $x = {}1; }}", "- ".repeat(n)),
            format!("BEGIN {{ $x = {}1; }}", "(uint8)".repeat(n)),
            format!("BEGIN {{ $x = {}1; }}", "1 ? 1 : ".repeat(n)),
            format!(
                "BEGIN {{ {}exit();{} }}",
                "if (1) { ".repeat(n),
                "}".repeat(n)
            ),
            format!("BEGIN {{ $x = {}1{}; }}", "@m[".repeat(n), "]".repeat(n)),
            format!("BEGIN {{ $x = {}1{}; }}", "f(".repeat(n), ")".repeat(n)),
            format!(
                "#define A {}1{}\nBEGIN {{ $x = A; }}",
                "(".repeat(n),
                ")".repeat(n)
            ),
        ];
        for src in cases {
            let e = err(&src);
            assert!(
                e.contains("nested too deeply"),
                "{}",
                &e[..e.len().min(300)]
            );
        }
        // Long operator chains make deep trees too.
        for chain in [" + 1", ".f", "[0]"] {
            let e = err(&format!("BEGIN {{ $x = $a{}; }}", chain.repeat(n)));
            assert!(
                e.contains("nested too deeply"),
                "{chain}: {}",
                &e[..e.len().min(300)]
            );
        }
        let e = err(&format!(
            "BEGIN {{ if (1) {{ }} {} }}",
            "else if (1) { } ".repeat(n)
        ));
        assert!(
            e.contains("nested too deeply"),
            "else if: {}",
            &e[..e.len().min(300)]
        );
        // Real-world sizes are fine.
        ok(&format!(
            "BEGIN {{ $x = {}1{}; }}",
            "(".repeat(40),
            ")".repeat(40)
        ));
        ok(&format!("BEGIN {{ $x = 1{}; }}", " + 1".repeat(100)));
        ok(&format!("BEGIN {{ {} }}", "$x = 1; ".repeat(n)));
    });
}
