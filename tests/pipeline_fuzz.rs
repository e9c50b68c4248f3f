//! The whole pipeline under fuzz, with the kernel's verifier as the judge: generated
//! bpftrace programs (a small grammar of what rbt supports, plus some deliberate type
//! errors) go through parse → sema → codegen → `runtime::load`. Properties: no stage
//! panics; a rejected program has diagnostics inside the source; a program codegen
//! accepts loads (a verifier rejection is the bug "rbt accepted a program it cannot
//! run"). Needs root and BPF (skips with the reason otherwise, fails under CI).
//! `PROPTEST_CASES=N` overrides the case count (the default takes ~25 s in a debug
//! build); the counts by stage go to stderr; `PIPELINE_FUZZ_VERBOSE=1` prints each
//! rejection with its program.

mod codegen_common;
mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use rbt::btf::Btf;
use rbt::codegen::CompileOptions;
use rbt::diag::Diagnostic;
use rbt::runtime::{self, RuntimeError};
use rbt::{codegen, parser, sema};
use std::cell::Cell;
use std::path::Path;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- the grammar -------------------------------------------------------------------

fn pick(options: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(options)
        .prop_map(String::from)
        .boxed()
}

/// Integer literals, small and at the edges of the integer types.
fn int_literal() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u64..20).prop_map(|n| n.to_string()),
        1 => pick(&[
            "0", "1", "7", "31", "63", "64", "127", "128", "255", "256", "65535",
            "4294967295", "4294967296", "0x7fffffffffffffff", "18446744073709551615",
            "0xff", "1000000",
        ]),
    ]
    .boxed()
}

fn str_literal() -> BoxedStrategy<String> {
    pick(&[
        "\"\"",
        "\"a\"",
        "\"abc\"",
        "\"hello world\"",
        "\"rbt\"",
        "\"0123456789abcdef\"",
        "\"a string longer than sixteen bytes, much longer\"",
        "\"sixty-three bytes: the longest literal bpftrace takes, 01234567\"",
    ])
}

/// A string value without an operator: literals, `$s`, `comm`, string-valued maps.
fn str_leaf() -> BoxedStrategy<String> {
    prop_oneof![
        3 => str_literal(),
        3 => pick(&["$s", "$t"]),
        2 => Just("comm".to_string()),
        1 => int_literal().prop_map(|k| format!("@str[{k}]")),
    ]
    .boxed()
}

fn int_leaf() -> BoxedStrategy<String> {
    prop_oneof![
        4 => int_literal(),
        4 => pick(&["$a", "$b"]),
        3 => pick(&["pid", "tid", "nsecs", "cpu", "rand", "uid", "gid"]),
        1 => Just("@m".to_string()),
        1 => int_literal().prop_map(|k| format!("@k1[{k}]")),
        1 => (int_literal(), str_literal()).prop_map(|(k, s)| format!("@k2[{k}, {s}]")),
    ]
    .boxed()
}

const ARITH: &[&str] = &["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^"];
const COMPARE: &[&str] = &["==", "!=", "<", "<=", ">", ">="];
const CASTS: &[&str] = &[
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
];

/// An integer-valued expression, fully parenthesised (the parser has its own fuzz).
fn int_expr() -> BoxedStrategy<String> {
    int_leaf()
        .prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                4 => (inner.clone(), pick(ARITH), inner.clone())
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                2 => (inner.clone(), pick(COMPARE), inner.clone())
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                1 => (str_leaf(), pick(&["==", "!="]), str_leaf())
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                2 => (inner.clone(), pick(&["&&", "||"]), inner.clone())
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                1 => (pick(&["!", "-", "~"]), inner.clone()).prop_map(|(op, a)| format!("{op} {a}")),
                1 => (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
                2 => (pick(CASTS), inner.clone()).prop_map(|(t, a)| format!("(({t}){a})")),
                1 => inner.clone().prop_map(|a| format!("bswap({a})")),
            ]
        })
        .boxed()
}

/// A `printf` whose conversions match its arguments.
fn printf() -> BoxedStrategy<String> {
    let arg = prop_oneof![
        3 => (pick(&["%d", "%u", "%x", "%lu", "%llx", "%5d", "%-3u", "%08X", "%hhd", "%o", "%c", "%p"]), int_expr()),
        2 => (pick(&["%s", "%-8s", "%20s", "%.3s"]), str_leaf()),
        1 => (Just("%s".to_string()), int_expr().prop_map(|e| format!("ntop({e})"))),
    ];
    (proptest::collection::vec(arg, 0..8), str_literal())
        .prop_map(|(args, text)| {
            let text = text.trim_matches('"');
            let convs: Vec<&str> = args.iter().map(|(c, _)| c.as_str()).collect();
            let mut call = format!("printf(\"{text} {}\\n\"", convs.join(" "));
            for (_, e) in &args {
                call.push_str(", ");
                call.push_str(e);
            }
            call + ");"
        })
        .boxed()
}

/// `@name = agg(e)`, keyed by zero to two parts; each kind has its own maps.
fn aggregation() -> BoxedStrategy<String> {
    let call = prop_oneof![
        Just("count()".to_string()),
        (
            pick(&["sum", "min", "max", "avg", "stats", "hist"]),
            int_expr()
        )
            .prop_map(|(f, e)| format!("{f}({e})")),
        (
            int_expr(),
            pick(&["0, 100, 10", "0, 10, 1", "5, 50, 5", "0, 1000000, 1000"])
        )
            .prop_map(|(e, r)| format!("lhist({e}, {r})")),
    ];
    let keys = prop_oneof![
        Just(("0", String::new())),
        int_expr().prop_map(|k| ("1", format!("[{k}]"))),
        (int_expr(), str_leaf()).prop_map(|(k, s)| ("2", format!("[{k}, {s}]"))),
        (str_leaf(), str_leaf()).prop_map(|(k, s)| ("s", format!("[{k}, {s}]"))),
    ];
    (call, keys)
        .prop_map(|(call, (shape, keys))| {
            let kind = &call[..call.find('(').unwrap_or(call.len())];
            format!("@{kind}{shape}{keys} = {call};")
        })
        .boxed()
}

/// Statements without blocks.
fn simple_stmt() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (pick(&["$a", "$b"]), int_expr()).prop_map(|(v, e)| format!("{v} = {e};")),
        1 => (pick(&["$a", "$b"]), pick(&["+=", "-=", "*=", "|=", "<<="]), int_expr())
            .prop_map(|(v, op, e)| format!("{v} {op} {e};")),
        2 => (pick(&["$s", "$t"]), str_leaf()).prop_map(|(v, e)| format!("{v} = {e};")),
        1 => pick(&["$a++;", "$b--;", "@m++;", "@k1[1]++;", "--@k2[0, comm];", "return;"]),
        1 => (pick(&["@m", "@k1[$a]", "@k2[$b, $s]"]), pick(&["+=", "-=", "/=", ">>="]), int_expr())
            .prop_map(|(m, op, e)| format!("{m} {op} {e};")),
        2 => int_expr().prop_map(|e| format!("@m = {e};")),
        2 => (int_expr(), int_expr()).prop_map(|(k, e)| format!("@k1[{k}] = {e};")),
        2 => (int_expr(), str_leaf(), int_expr()).prop_map(|(k, s, e)| format!("@k2[{k}, {s}] = {e};")),
        2 => (int_expr(), str_leaf()).prop_map(|(k, e)| format!("@str[{k}] = {e};")),
        4 => aggregation(),
        3 => printf(),
        1 => proptest::collection::vec(pick(&["$s", "$t", "comm", "\"sixty-three bytes: the longest literal bpftrace takes, 01234567\""]), 4..9)
            .prop_map(|args| format!("printf(\"{}\\n\", {});", vec!["%s"; args.len()].join(" "), args.join(", "))),
        1 => int_expr().prop_map(|k| format!("delete(@k1[{k}]);")),
        1 => (int_expr(), str_leaf()).prop_map(|(k, s)| format!("delete(@k2[{k}, {s}]);")),
        1 => (str_leaf(), str_leaf(), str_leaf()).prop_map(|(a, b, c)| format!("@big[{a}, {b}, {c}] = {a};")),
        1 => pick(&["print(@k1, 2);", "print(@hist0, 1, 10);", "print(@k2, 0, 3);"]),
        1 => (pick(&["clear", "zero", "print"]), pick(&["@m", "@k1", "@k2", "@str", "@count0", "@sum1", "@hist0", "@stats2"]))
            .prop_map(|(f, m)| format!("{f}({m});")),
        1 => Just("exit();".to_string()),
        1 => pick(&["time();", "time(\"%H:%M:%S\\n\");"]),
        1 => bad_stmt(),
    ]
    .boxed()
}

/// Statements sema must reject with a spanned error.
fn bad_stmt() -> BoxedStrategy<String> {
    prop_oneof![
        Just("$a = \"now a string\";".to_string()),
        Just("$s = 1;".to_string()),
        Just("@m = \"x\";".to_string()),
        Just("@k1[\"key\"] = 1;".to_string()),
        Just("@k1[1, 2] = 1;".to_string()),
        Just("$a = \"a\" + 1;".to_string()),
        Just("$a = $undefined + 1;".to_string()),
        Just("printf(\"%d\\n\", \"str\");".to_string()),
        Just("printf(\"%s %s\\n\", comm);".to_string()),
        Just("@hist0 = hist(\"s\");".to_string()),
        Just("@lhist0 = lhist(1, 0, 10);".to_string()),
        Just("$a = (int8)\"abc\";".to_string()),
        Just("$a = @count0 + 1;".to_string()),
        Just("$a = nosuchbuiltin;".to_string()),
        Just("$a = comm * 2;".to_string()),
        Just("exit(1, 2);".to_string()),
        Just("delete(@nosuchmap[1]);".to_string()),
        Just("@sum0 = count();".to_string()),
        Just("@lhist0 = lhist(1, -5, 5, 2);".to_string()),
        Just("$a = args->__syscall_nr;".to_string()),
        Just("$a = args->nosuchfield;".to_string()),
        Just("$s++;".to_string()),
        Just("@str[1]++;".to_string()),
        Just("$a = -comm;".to_string()),
        Just("$a = !$s;".to_string()),
        Just("$a = retval;".to_string()),
        Just("$a = arg0;".to_string()),
        Just("@k1[(uint8)1] = 2;".to_string()),
        Just("@m = (int8)-1;".to_string()),
        Just("print($a);".to_string()),
        Just("$s = ntop(1);".to_string()),
        Just("printf(\"%d\\n\", ntop(1));".to_string()),
        Just("$s = (pid ? comm : \"x\");".to_string()),
    ]
    .boxed()
}

/// Statements nested `depth` deep; loops count `$w<depth>` to a small bound, at most
/// two loops deep. Known bug kept out this way: rbt compares strings byte by byte, a
/// branch per byte the verifier must queue, so a comparison run a few hundred times in
/// a loop exceeds its 8192 pending jumps ("The sequence of 8193 jumps is too complex"),
/// where bpftrace 0.17 loads: `BEGIN { $s = "<63 bytes>"; $i = 0; while ($i < 300) {
/// if ($s == comm) { } $i++; } }`.
fn stmt(depth: u32) -> BoxedStrategy<String> {
    if depth == 0 {
        return simple_stmt();
    }
    let block = || proptest::collection::vec(stmt(depth - 1), 0..3).prop_map(|v| v.join(" "));
    let looping = if depth <= 2 { 1 } else { 0 };
    prop_oneof![
        6 => simple_stmt(),
        1 => (int_expr(), block()).prop_map(|(c, t)| format!("if ({c}) {{ {t} }}")),
        1 => (int_expr(), block(), block())
            .prop_map(|(c, t, e)| format!("if ({c}) {{ {t} }} else {{ {e} }}")),
        looping => (1u32..6, block()).prop_map(move |(n, b)| {
            format!("$w{depth} = 0; while ($w{depth} < {n}) {{ {b} $w{depth}++; }}")
        }),
    ]
    .boxed()
}

/// One probe: `$a`, `$b`, `$s` are assigned first, so later statements may read them
/// (`$b = $a + ...` reads `$a`).
fn probe() -> BoxedStrategy<String> {
    let attach = prop_oneof![
        4 => pick(&["BEGIN", "END", "tracepoint:syscalls:sys_enter_getppid"]),
        1 => pick(&["interval:s:1", "profile:hz:99"]),
    ];
    let predicate = proptest::option::weighted(0.2, int_expr()).prop_map(|p| {
        p.map(|p| {
            p.replace("$a", "pid")
                .replace("$b", "cpu")
                .replace("$s", "comm")
                .replace("$t", "comm")
        })
    });
    let prelude =
        (int_literal(), int_expr(), str_literal(), str_literal()).prop_map(|(a, b, s, t)| {
            let b = b
                .replace("$b", "$a")
                .replace("$s", "comm")
                .replace("$t", "comm");
            format!("$a = {a}; $b = {b}; $s = {s}; $t = {t};")
        });
    (
        attach,
        predicate,
        prelude,
        proptest::collection::vec(stmt(3), 0..5),
    )
        .prop_map(|(at, pred, prelude, body)| {
            let pred = pred.map(|p| format!(" /{p}/")).unwrap_or_default();
            format!("{at}{pred}\n{{\n  {prelude}\n  {}\n}}\n", body.join("\n  "))
        })
        .boxed()
}

fn program() -> BoxedStrategy<String> {
    proptest::collection::vec(probe(), 1..3)
        .prop_map(|p| with_setup(&p.concat()))
        .boxed()
}

/// The maps the grammar writes, each with one assignment that fixes its type.
const SETUP: &[(&str, &str)] = &[
    ("@m", "@m = 0;"),
    ("@k1", "@k1[0] = 0;"),
    ("@k2", "@k2[0, \"\"] = 0;"),
    ("@str", "@str[0] = \"\";"),
    ("@count0", "@count0 = count();"),
    ("@sum1", "@sum1[0] = sum(0);"),
    ("@hist0", "@hist0 = hist(0);"),
    ("@stats2", "@stats2[0, \"\"] = stats(0);"),
    ("@big", "@big[\"\", \"\", \"\"] = \"\";"),
];

/// `src` after a BEGIN probe that assigns every map it reads (a read of a map never
/// assigned is an error, as in bpftrace); predicates read no variables.
fn with_setup(src: &str) -> String {
    let uses = |name: &str| {
        src.match_indices(name).any(|(i, _)| {
            !src[i + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let setup: Vec<&str> = SETUP
        .iter()
        .filter(|(name, _)| uses(name))
        .map(|&(_, stmt)| stmt)
        .collect();
    if setup.is_empty() {
        return src.to_string();
    }
    format!("BEGIN {{ {} }}\n{src}", setup.join(" "))
}

// ---- the judge ---------------------------------------------------------------------

/// Where the pipeline stopped, counted over the run.
#[derive(Default)]
struct Stats {
    parse: Cell<usize>,
    sema: Cell<usize>,
    codegen: Cell<usize>,
    loaded: Cell<usize>,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

/// With `PIPELINE_FUZZ_VERBOSE` set, prints each rejection (to tune the grammar).
fn verbose(src: &str, diags: &[Diagnostic]) {
    if std::env::var_os("PIPELINE_FUZZ_VERBOSE").is_some() {
        eprintln!("{}\n{src}", rbt::diag::render("fuzz.bt", src, diags));
    }
}

fn spans_inside(src: &str, stage: &str, diags: &[Diagnostic]) -> Result<(), TestCaseError> {
    if diags.is_empty() {
        return Err(TestCaseError::fail(format!(
            "{stage} failed without a diagnostic\n{src}"
        )));
    }
    for d in diags {
        if d.span.start > d.span.end || d.span.end as usize > src.len() || d.message.is_empty() {
            return Err(TestCaseError::fail(format!(
                "{stage}: {d:?} outside the {} bytes of\n{src}",
                src.len()
            )));
        }
    }
    let out = rbt::diag::render("fuzz.bt", src, diags);
    if out.matches(": error: ").count() != diags.len() {
        return Err(TestCaseError::fail(format!("{stage}: rendered as\n{out}")));
    }
    Ok(())
}

/// Runs `src` through the pipeline; `Err` names the broken property.
fn judge(src: &str, btf: &Btf, stats: &Stats) -> Result<(), TestCaseError> {
    let ast = match parser::parse(src) {
        Ok(ast) => ast,
        Err(d) => {
            bump(&stats.parse);
            verbose(src, &d);
            return spans_inside(src, "parse", &d);
        }
    };
    let typed = match sema::analyze(&ast, &btf.into()) {
        Ok(t) => t,
        Err(d) => {
            bump(&stats.sema);
            verbose(src, &d);
            return spans_inside(src, "sema", &d);
        }
    };
    let compiled = match codegen::compile(&typed, &CompileOptions::default()) {
        Ok(c) => c,
        Err(d) => {
            bump(&stats.codegen);
            verbose(src, &d);
            return spans_inside(src, "codegen", &d);
        }
    };
    match runtime::load(&compiled) {
        Ok(loaded) => {
            bump(&stats.loaded);
            drop(loaded);
            Ok(())
        }
        Err(RuntimeError::Verifier { probe, source, log }) => {
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let message = format!(
                "the verifier rejected {probe} ({source}) of a program codegen accepted:\n{src}\n\
                 --- verifier log (last lines) ---\n{}",
                tail.join("\n")
            );
            // Printed at once too: shrinking reloads the program many times.
            eprintln!("{message}\n");
            Err(TestCaseError::fail(message))
        }
        Err(e) => Err(TestCaseError::fail(format!("load failed: {e}\n{src}"))),
    }
}

fn kernel_btf(test: &str) -> Option<Btf> {
    if codegen_common::skip_reason(test).is_some() {
        return None;
    }
    Some(Btf::load(Path::new("/sys/kernel/btf/vmlinux")).expect("kernel BTF"))
}

#[test]
fn generated_programs_load_or_are_rejected_with_a_span() {
    let test = "generated_programs_load_or_are_rejected_with_a_span";
    let Some(btf) = kernel_btf(test) else { return };
    let stats = Stats::default();
    let config = Config {
        cases: cases(2000),
        source_file: Some(file!()),
        // A program the verifier gives up on takes seconds a load: shrink for a minute.
        max_shrink_time: 60_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&program(), |src| judge(&src, &btf, &stats));
    eprintln!(
        "pipeline_fuzz: {} programs (cases, plus shrink steps after a failure) in {:.1?}: \
         rejected by parse {}, sema {}, codegen {}; loaded {}",
        stats.parse.get() + stats.sema.get() + stats.codegen.get() + stats.loaded.get(),
        started.elapsed(),
        stats.parse.get(),
        stats.sema.get(),
        stats.codegen.get(),
        stats.loaded.get(),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // The grammar is meant to produce mostly valid programs: the verifier must see them.
    assert!(
        stats.loaded.get() * 2 >= cases(2000) as usize,
        "only {} of {} programs got to the verifier: the grammar drifted from what rbt accepts",
        stats.loaded.get(),
        cases(2000)
    );
}
