//! The three upstream tcpaccept.bt versions parse, and their AST dumps differ
//! exactly where the scripts differ.

use rbt::parser::{dump, parse};

const SCRIPTS: [&str; 3] = ["v0.14.0.bt", "v0.17.0.bt", "head-e1b7c3934.bt"];

fn source(name: &str) -> String {
    let path = format!("{}/tests/data/upstream/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dumped(name: &str) -> String {
    let src = source(name);
    match parse(&src) {
        Ok(p) => dump(&p),
        Err(d) => panic!(
            "{name} failed to parse:\n{}",
            rbt::diag::render(name, &src, &d)
        ),
    }
}

#[test]
fn upstream_dumps() {
    for name in SCRIPTS {
        let snap = format!(
            "parser_dump_{}",
            name.trim_end_matches(".bt").replace(['.', '-'], "_")
        );
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(snap, dumped(name));
        });
    }
}

/// A hunk of a line diff: lines only in `a`, lines only in `b`.
type Hunk = (Vec<String>, Vec<String>);

/// Longest-common-subsequence line diff, grouped into hunks.
fn diff(a: &str, b: &str) -> Vec<Hunk> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut hunks = Vec::new();
    let mut cur: Hunk = Default::default();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            if !cur.0.is_empty() || !cur.1.is_empty() {
                hunks.push(std::mem::take(&mut cur));
            }
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            cur.1.push(b[j].to_string());
            j += 1;
        } else {
            cur.0.push(a[i].to_string());
            i += 1;
        }
    }
    if !cur.0.is_empty() || !cur.1.is_empty() {
        hunks.push(cur);
    }
    hunks
}

fn trimmed(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| l.trim()).collect()
}

/// Member accesses written with `->` in a script (comments excluded).
fn arrows(src: &str) -> usize {
    src.lines()
        .filter(|l| !l.trim_start().starts_with(['/', '*']))
        .map(|l| l.matches("->").count())
        .sum()
}

#[test]
fn v0_14_and_v0_17_differ_only_in_the_byte_swap() {
    let hunks = diff(&dumped("v0.14.0.bt"), &dumped("v0.17.0.bt"));
    assert_eq!(hunks.len(), 1, "{hunks:#?}");
    let (old, new) = &hunks[0];
    // `$dport = ($dport >> 8) | (($dport << 8) & 0x00FF00);` versus `$dport = bswap($dport);`
    assert_eq!(
        trimmed(old),
        [
            "|",
            ">>",
            "variable: $dport",
            "int: 8",
            "&",
            "<<",
            "variable: $dport",
            "int: 8",
            "int: 65280"
        ]
    );
    assert_eq!(trimmed(new), ["call: bswap", "variable: $dport"]);
}

#[test]
fn v0_17_and_head_differ_only_in_member_access_on_the_pointer() {
    let v17 = dumped("v0.17.0.bt");
    let head = dumped("head-e1b7c3934.bt");
    let hunks = diff(&v17, &head);
    assert_eq!(hunks.len(), arrows(&source("v0.17.0.bt")), "{hunks:#?}");
    assert_eq!(arrows(&source("head-e1b7c3934.bt")), 0);
    for (old, new) in &hunks {
        assert_eq!(old.len(), 1, "{old:?}");
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(old[0].trim(), "->");
        assert_eq!(new[0].trim(), ".");
        assert_eq!(
            old[0].len(),
            new[0].len() + 1,
            "same depth: {old:?} {new:?}"
        );
    }
}

#[test]
fn address_families_come_from_headers_or_defines() {
    // v0.14: #include <linux/socket.h>; v0.17: #include <sys/socket.h> under BTF;
    // head: #define AF_INET 2 under BTF. All three compare with the numbers.
    for name in SCRIPTS {
        let d = dumped(name);
        assert!(
            !d.contains("identifier:"),
            "{name}: unexpanded identifier\n{d}"
        );
        assert_eq!(d.matches("int: 2\n").count(), 2, "{name}");
        assert_eq!(d.matches("int: 10\n").count(), 1, "{name}");
    }
}

#[test]
fn macro_uses_get_the_identifier_span() {
    let src = source("v0.17.0.bt");
    let p = parse(&src).unwrap();
    let at = src.find("== AF_INET6").unwrap() + 3;
    let mut found = false;
    visit(&p, &mut |e| {
        if e.span == rbt::diag::Span::new(at, at + "AF_INET6".len()) {
            assert_eq!(e.kind, rbt::ast::ExprKind::Int(10));
            found = true;
        }
    });
    assert!(found, "no node spans AF_INET6");
}

fn visit(p: &rbt::ast::Program, f: &mut dyn FnMut(&rbt::ast::Expr)) {
    use rbt::ast::{ExprKind as E, StmtKind as S};
    fn expr(e: &rbt::ast::Expr, f: &mut dyn FnMut(&rbt::ast::Expr)) {
        f(e);
        match &e.kind {
            E::Call { args, .. } | E::Map { keys: args, .. } => {
                args.iter().for_each(|a| expr(a, f))
            }
            E::Unary { expr: x, .. } | E::Cast { expr: x, .. } | E::Member { expr: x, .. } => {
                expr(x, f)
            }
            E::Binary { lhs, rhs, .. }
            | E::Index {
                expr: lhs,
                index: rhs,
            } => {
                expr(lhs, f);
                expr(rhs, f);
            }
            E::Ternary {
                cond,
                then,
                otherwise,
            } => [cond, then, otherwise].iter().for_each(|x| expr(x, f)),
            _ => {}
        }
    }
    fn block(b: &rbt::ast::Block, f: &mut dyn FnMut(&rbt::ast::Expr)) {
        for s in &b.stmts {
            match &s.kind {
                S::Expr(e) | S::Assign { value: e, .. } => expr(e, f),
                S::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    expr(cond, f);
                    block(then, f);
                    if let Some(o) = otherwise {
                        block(o, f);
                    }
                }
                S::While { cond, body } | S::Unroll { count: cond, body } => {
                    expr(cond, f);
                    block(body, f);
                }
                S::Return => {}
            }
        }
    }
    for probe in &p.probes {
        block(&probe.body, f);
    }
}
