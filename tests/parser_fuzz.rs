//! Property tests: random bytes and mutated upstream scripts never make the parser
//! panic, and every diagnostic points inside the input and renders.
//! `PROPTEST_CASES=N` overrides the case counts (defaults fit ~15 s in CI).

use proptest::prelude::*;
use rbt::ast::{Block, Expr, ExprKind, LValue, Program, StmtKind};
use rbt::diag::Span;
use rbt::parser::{dump, parse};

const UPSTREAM: [&str; 3] = [
    include_str!("data/upstream/v0.14.0.bt"),
    include_str!("data/upstream/v0.17.0.bt"),
    include_str!("data/upstream/head-e1b7c3934.bt"),
];

/// Fragments that steer mutations into the interesting corners of the grammar.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "/",
    "*",
    "\"",
    "\\",
    "#",
    "\n",
    ";",
    ",",
    "?",
    ":",
    "->",
    ".",
    "$",
    "@",
    "++",
    "--",
    "/*",
    "*/",
    "//",
    "#if 0\n",
    "#else\n",
    "#endif\n",
    "#define X\n",
    "#define AF_INET AF_INET6\n",
    "#include <nope.h>\n",
    "(struct sock *)",
    "0x",
    "1e99",
    "09",
    "\\x",
    "\\777",
    "AF_INET",
    "é",
    "\u{0}",
    "\t",
    "if",
    "else",
    "while",
    "return",
    "BEGIN",
    "kprobe:",
    "t:a:b",
    "=",
    "+=",
    "<<=",
    "!",
    "~",
    "&",
    "-",
];

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    Swap { a: usize, b: usize },
    Duplicate { at: usize, len: usize, to: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, 1usize..20).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (pos, 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (pos, pos).prop_map(|(a, b)| Mutation::Swap { a, b }),
        (pos, 1usize..40, pos).prop_map(|(at, len, to)| Mutation::Duplicate { at, len, to }),
        pos.prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// Apply mutations at char boundaries (positions are taken modulo the length).
fn mutate(src: &str, muts: &[Mutation]) -> String {
    let mut s: Vec<char> = src.chars().collect();
    for m in muts {
        let n = s.len().max(1);
        match *m {
            Mutation::Delete { at, len } => {
                let at = at % n;
                let end = (at + len).min(s.len());
                s.drain(at.min(s.len())..end);
            }
            Mutation::Insert { at, token } => {
                let at = at % (s.len() + 1);
                s.splice(at..at, TOKENS[token].chars());
            }
            Mutation::Swap { a, b } if !s.is_empty() => {
                let len = s.len();
                s.swap(a % len, b % len);
            }
            Mutation::Duplicate { at, len, to } if !s.is_empty() => {
                let at = at % s.len();
                let chunk: Vec<char> = s[at..(at + len).min(s.len())].to_vec();
                let to = to % (s.len() + 1);
                s.splice(to..to, chunk);
            }
            Mutation::Truncate { at } => s.truncate(at % n),
            _ => {}
        }
    }
    s.into_iter().collect()
}

fn inside(span: Span, src: &str) -> bool {
    span.start <= span.end && span.end as usize <= src.len()
}

fn check_expr(e: &Expr, src: &str) {
    assert!(
        inside(e.span, src),
        "expr span {:?} outside input of {} bytes",
        e.span,
        src.len()
    );
    let lv = |l: &LValue| match l {
        LValue::Var { span, .. } => *span,
        LValue::Map { span, .. } => *span,
    };
    match &e.kind {
        ExprKind::Call { args, .. } | ExprKind::Map { keys: args, .. } => {
            args.iter().for_each(|a| check_expr(a, src))
        }
        ExprKind::Unary { expr, .. } | ExprKind::Member { expr, .. } => check_expr(expr, src),
        ExprKind::Cast { ty, expr } => {
            assert!(inside(ty.span, src));
            check_expr(expr, src);
        }
        ExprKind::Binary { lhs, rhs, .. }
        | ExprKind::Index {
            expr: lhs,
            index: rhs,
        } => {
            check_expr(lhs, src);
            check_expr(rhs, src);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => [cond, then, otherwise]
            .iter()
            .for_each(|x| check_expr(x, src)),
        ExprKind::IncDec { target, .. } => assert!(inside(lv(target), src)),
        _ => {}
    }
}

fn check_block(b: &Block, src: &str) {
    assert!(inside(b.span, src));
    for s in &b.stmts {
        assert!(inside(s.span, src));
        match &s.kind {
            StmtKind::Expr(e) | StmtKind::Assign { value: e, .. } => check_expr(e, src),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                check_expr(cond, src);
                check_block(then, src);
                otherwise.iter().for_each(|o| check_block(o, src));
            }
            StmtKind::While { cond, body } | StmtKind::Unroll { count: cond, body } => {
                check_expr(cond, src);
                check_block(body, src);
            }
            StmtKind::Return => {}
        }
    }
}

fn check_program(p: &Program, src: &str) {
    for probe in &p.probes {
        assert!(inside(probe.span, src));
        probe
            .attach_points
            .iter()
            .for_each(|a| assert!(inside(a.span, src)));
        probe.predicate.iter().for_each(|e| check_expr(e, src));
        check_block(&probe.body, src);
    }
}

/// The properties every input must have.
fn check(src: &str) {
    match parse(src) {
        Ok(p) => {
            check_program(&p, src);
            assert!(dump(&p).starts_with("Program\n"));
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            for d in &diags {
                assert!(
                    inside(d.span, src),
                    "{d:?} outside input of {} bytes",
                    src.len()
                );
                assert!(!d.message.is_empty());
            }
            let out = rbt::diag::render("fuzz.bt", src, &diags);
            assert_eq!(out.matches(": error: ").count(), diags.len(), "{out}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1500)))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_token_soup_never_panics(tokens in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let src: String = tokens.iter().map(|&t| TOKENS[t]).collect::<Vec<_>>().join(" ");
        check(&src);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2500)))]

    #[test]
    fn mutated_upstream_scripts_never_panic(which in 0..3usize, muts in proptest::collection::vec(mutation(), 1..6)) {
        check(&mutate(UPSTREAM[which], &muts));
    }
}
