//! The layout rbt gives a script's struct/union definitions (sema/ctypes.rs) equals
//! gcc's for the same C on x86-64: every member's offset and every type's size, read
//! from the typed program (the member read's offset, `sizeof` folded to a constant) and
//! from a C program gcc compiles, `offsetof`/`sizeof` printed. Bitfields are compared
//! by the bytes they cover in tests/types_vs_bpftrace.rs (C has no offsetof for them).
//! Needs gcc (skips otherwise, fails under CI).

mod codegen_common;
mod support;

use codegen_common::pinned_btf;
use rbt::sema::{self, TExprKind, TStmtKind};
use rbt::{diag, parser};
use std::process::Command;

/// (definitions, the struct/union to measure, member paths to scalars or strings).
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "struct Foo { int x; char c; long y[4]; struct Foo *p; };",
        "struct Foo",
        &["x", "c", "y[0]", "y[3]", "p"],
    ),
    (
        "struct O { char a; struct I { short s; long l; } i; char z; };",
        "struct O",
        &["a", "i.s", "i.l", "z"],
    ),
    (
        "struct M { char a; short b; char c; int d; char e; long long f; char g[3]; unsigned short h; };",
        "struct M",
        &["a", "b", "c", "d", "e", "f", "g", "h"],
    ),
    (
        "struct A { char c; struct { int q; char r; } anon; unsigned short t[3][2]; void *v; };",
        "struct A",
        &["c", "anon.q", "anon.r", "t[1][1]", "t[2][0]", "v"],
    ),
    (
        "union U { int x; char c[9]; short s; long l; };",
        "union U",
        &["x", "c", "s", "l"],
    ),
    (
        "struct B { char a:3; int b:7; long c:40; char after; };",
        "struct B",
        &["after"],
    ),
    (
        "struct Z { char c; int :0; char d; short e:3; int f; };",
        "struct Z",
        &["c", "d", "f"],
    ),
    (
        "struct W { char c; long :3; char d; int :0; char e; };",
        "struct W",
        &["c", "d", "e"],
    ),
    (
        "struct K { char c; struct list_head h; unsigned int u; unsigned long long w; _Bool b; };",
        "struct K",
        &["c", "h.next", "h.prev", "u", "w", "b"],
    ),
];

/// gcc's size and offsets for one case.
fn gcc_layout(defs: &str, ty: &str, paths: &[&str]) -> Option<Vec<u64>> {
    let dir = std::env::temp_dir().join(format!("rbt-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let tag = ty.replace(' ', "_");
    let src = dir.join(format!("{tag}.c"));
    let exe = dir.join(&tag);
    let mut c = format!(
        "#include <stdio.h>\n#include <stddef.h>\nstruct list_head {{ struct list_head *next, *prev; }};\n{defs}\nint main(void) {{\n  printf(\"%zu\\n\", sizeof({ty}));\n"
    );
    for p in paths {
        c += &format!("  printf(\"%zu\\n\", offsetof({ty}, {p}));\n");
    }
    c += "  return 0;\n}\n";
    std::fs::write(&src, c).ok()?;
    let built = Command::new("gcc").arg("-o").arg(&exe).arg(&src).status();
    if !matches!(built, Ok(s) if s.success()) {
        return None;
    }
    let out = Command::new(&exe).output().ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect(),
    )
}

/// rbt's size and offsets: `sizeof` folds to a constant, a member read through
/// `(T *)0` reads at the member's offset.
fn rbt_layout(defs: &str, ty: &str, paths: &[&str]) -> Vec<u64> {
    // rbt (like bpftrace) takes definitions without the trailing `;` too.
    let mut src = format!("{defs}\nBEGIN {{ $size = sizeof({ty});");
    for (i, p) in paths.iter().enumerate() {
        src += &format!(" $m{i} = (({ty} *)0)->{p};");
    }
    src += " }\n";
    let ast = parser::parse(&src).unwrap_or_else(|d| panic!("{}", diag::render("t.bt", &src, &d)));
    let typed = sema::analyze(&ast, &pinned_btf().into())
        .unwrap_or_else(|d| panic!("{}", diag::render("t.bt", &src, &d)));
    typed.probes[0]
        .body
        .iter()
        .map(|s| match &s.kind {
            TStmtKind::Assign { value, .. } => match &value.kind {
                TExprKind::Int(v) => *v,
                TExprKind::Load { place, .. } | TExprKind::InMemory(place) => place.offset as u64,
                other => panic!("unexpected value {other:?} in {src}"),
            },
            other => panic!("unexpected statement {other:?} in {src}"),
        })
        .collect()
}

#[test]
fn script_struct_layout_matches_gcc() {
    let mut failures = Vec::new();
    for (defs, ty, paths) in CASES {
        let Some(want) = gcc_layout(defs, ty, paths) else {
            support::skip("script_struct_layout_matches_gcc", "cannot build with gcc");
            return;
        };
        // `struct list_head` comes from the kernel's BTF on the rbt side.
        let have = rbt_layout(defs, ty, paths);
        if want != have {
            failures.push(format!("{defs}\n  gcc {want:?}\n  rbt {have:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bad definitions get one spanned error each, with clang's message (which bpftrace
/// 0.17 prints, located in its generated definitions.h).
#[test]
fn bad_definitions_are_spanned_errors() {
    let cases = [
        (
            "struct A { nosuch_t x; } BEGIN { }",
            "unknown type name 'nosuch_t'",
            "nosuch_t",
        ),
        (
            "struct A { int x; } struct A { int y; } BEGIN { }",
            "redefinition of 'A'",
            "struct A { int y; }",
        ),
        (
            "struct A { char c:9; } BEGIN { }",
            "width of bit-field 'c' (9 bits) exceeds the width of its type (8 bits)",
            "c:9",
        ),
        (
            "struct A { int x:0; } BEGIN { }",
            "named bit-field 'x' has zero width",
            "x:0",
        ),
        (
            "struct A { struct nosuch s; } BEGIN { }",
            "field has incomplete type 'struct nosuch'",
            "struct nosuch",
        ),
    ];
    for (src, message, spanned) in cases {
        let diags = match parser::parse(src) {
            Ok(ast) => sema::analyze(&ast, &pinned_btf().into()).err(),
            Err(d) => Some(d),
        }
        .unwrap_or_else(|| panic!("accepted: {src}"));
        assert_eq!(diags.len(), 1, "{src}: {diags:?}");
        assert_eq!(diags[0].message, message, "{src}");
        let at = src.find(spanned).unwrap() as u32;
        assert_eq!(
            (diags[0].span.start, diags[0].span.end),
            (at, at + spanned.len() as u32),
            "{src}"
        );
    }
}
