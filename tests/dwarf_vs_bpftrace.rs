//! A uprobe binary's DWARF against the real bpftrace 0.17 on this host: `-lv`
//! parameter lists, `args->NAME` (base, pointer, struct-pointer, enum and typedef
//! parameters; struct fields, strings, arrays, nested structs and a union), casts to
//! the binary's structs and `sizeof`, and the errors of `args` misuse. Both tracers run
//! the same test program (tests/data/uprobe/rbtdwarf.c, built with -g -O0 -no-pie, and
//! once without -g) in its build directory and must print the same bytes.
//! Needs root, bpftrace 0.17, the uprobe PMU and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

fn build() -> Result<&'static Path, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            support::build_uprobe_programs(
                "dwarf",
                &[
                    &["-g", "-O0", "-no-pie", "-o", "rbtdwarf", "rbtdwarf.c"],
                    &["-O0", "-no-pie", "-o", "rbtnodwarf", "rbtdwarf.c"],
                ],
            )
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// One test at a time: a uprobe fires in every process running the binary.
static SERIAL: Mutex<()> = Mutex::new(());

fn setup(test: &str) -> Option<(MutexGuard<'static, ()>, &'static Path)> {
    bpftrace_ref::uprobe_turn(test, &SERIAL, build)
}

fn run(tracer: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(tracer)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tracer}: {e}"))
}

/// stderr without bpftrace's harmless RLIMIT_MEMLOCK line.
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("RLIMIT_MEMLOCK"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs each argument list under both tracers; with `with_stderr` stderr must match
/// too. Describes every difference.
fn compare(dir: &Path, cases: &[Vec<&str>], with_stderr: bool) {
    let mut failures = Vec::new();
    for args in cases {
        let theirs = run("bpftrace", dir, args);
        assert!(
            theirs.status.success(),
            "bpftrace must run {args:?}: {}",
            stderr(&theirs)
        );
        let ours = run(env!("CARGO_BIN_EXE_rbt"), dir, args);
        let same_err = !with_stderr || stderr(&theirs) == stderr(&ours);
        if !ours.status.success() || theirs.stdout != ours.stdout || !same_err {
            failures.push(format!(
                "{args:?}\n--- bpftrace\n{}{}--- rbt ({})\n{}{}",
                String::from_utf8_lossy(&theirs.stdout),
                stderr(&theirs),
                ours.status,
                String::from_utf8_lossy(&ours.stdout),
                stderr(&ours)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn traced(script: &str) -> Vec<&str> {
    vec!["-c", "./rbtdwarf", "-e", script]
}

#[test]
fn lists_parameters_like_bpftrace() {
    let Some((_turn, dir)) = setup("lists_parameters_like_bpftrace") else {
        return;
    };
    let cases = [
        vec!["-lv", "uprobe:./rbtdwarf:rbt_*"],
        vec!["-lv", "uprobe:./rbtdwarf:main"],
        vec!["-lv", "uprobe:./rbtdwarf:*"],
        vec!["-l", "uprobe:./rbtdwarf:rbt_*"],
        vec!["-lv", "uprobe:./rbtnodwarf:rbt_*"],
    ];
    compare(dir, &cases, true);
}

#[test]
fn arguments_by_name_match_bpftrace() {
    let Some((_turn, dir)) = setup("arguments_by_name_match_bpftrace") else {
        return;
    };
    let cases = [
        // Registers typed as declared, not narrowed (`@a` of an int -3 is 4294967293).
        "uprobe:./rbtdwarf:rbt_base { printf(\"%d %c %d %d %d %u\\n\", args->a, args->c, \
         args->us, args->l, args->i8, args->u64); @a = args->a; @c = args->c; \
         @eq = args->a == -3; }",
        "uprobe:./rbtdwarf:rbt_ptrs { printf(\"%s %d %d\\n\", str(args->str), *args->ip, \
         args->v == args->ip); printf(\"%s\\n\", str(*args->pp)); }",
        "uprobe:./rbtdwarf:rbt_rec { printf(\"%d %s %d %d %d\\n\", args->r->id, args->r->name, \
         args->r->vals[1], args->r->in.s, args->r->in.l); print(args->r->vals); \
         print(args->r->in); printf(\"%d %d %s\\n\", args->color, args->len, \
         str(args->r->label)); }",
        // A DWARF union has no fields for bpftrace 0.17: `.num = {  }`.
        "uprobe:./rbtdwarf:rbt_rec { print(*args->r); $r = args->r; print($r->name); \
         @[args->r->name] = count(); @v[args->r->vals] = 1; }",
        "uprobe:./rbtdwarf:rbt_rec { printf(\"%s\\n\", args->r->name); } \
         uprobe:./rbtdwarf:rbt_base { printf(\"%d\\n\", args->us); }",
        // The same function in a copy of the binary: the same arguments, one program.
        "uprobe:./rbtdwarf:rbt_rec, uprobe:./rbtdwarf_copy:rbt_rec { print(args->r->id); }",
    ];
    std::fs::copy(dir.join("rbtdwarf"), dir.join("rbtdwarf_copy")).unwrap();
    let mut cases: Vec<Vec<&str>> = cases.iter().map(|s| traced(s)).collect();
    let more = [
        "uprobe:./rbtdwarf:rbt_base /args->c == 122/ { printf(\"yes %d\\n\", args->a); }",
        "uprobe:./rbtdwarf:rbt_rec { @[args->r->name] = count(); \
         @v = args->r->vals[2]; @in = args->r->in; @t = (args->r->id, args->r->name); }",
    ];
    cases.extend(more.iter().map(|s| traced(s)));
    let json =
        "uprobe:./rbtdwarf:rbt_rec { print(args->r->vals); print(args->r->in); @x = args->r->in; }";
    cases.push(vec!["-f", "json", "-c", "./rbtdwarf", "-e", json]);
    compare(dir, &cases, false);
}

#[test]
fn struct_casts_match_bpftrace() {
    let Some((_turn, dir)) = setup("struct_casts_match_bpftrace") else {
        return;
    };
    let cases = [
        "uprobe:./rbtdwarf:rbt_rec { $r = (struct rbt_rec *)arg0; printf(\"%d %s %d\\n\", \
         $r->id, $r->name, sizeof(struct rbt_rec)); print(((struct rbt_rec *)arg0)->in); }",
        "uprobe:./rbtdwarf:rbt_rec { print(((struct rbt_inner *)arg0)->l); \
         print(sizeof(struct rbt_inner)); }",
        // The script's definition wins over the binary's.
        "struct rbt_inner { int first; } uprobe:./rbtdwarf:rbt_rec { \
         print(((struct rbt_inner *)arg0)->first); print((*(struct rbt_rec *)arg0).vals); }",
    ];
    let cases: Vec<Vec<&str>> = cases.iter().map(|s| traced(s)).collect();
    compare(dir, &cases, false);
}

#[test]
fn args_errors_match_bpftrace() {
    let Some((_turn, dir)) = setup("args_errors_match_bpftrace") else {
        return;
    };
    let scripts = [
        "uprobe:./rbtdwarf:rbt_base { print(args.a); }",
        "uprobe:./rbtdwarf:rbt_base { print(args->nope); }",
        "uprobe:./rbtdwarf:rbt_base { print(args); }",
        "uprobe:./rbtdwarf:rbt_* { print(args->a); }",
        "uprobe:./rbtnodwarf:rbt_base { print(args->a); }",
        "uprobe:./rbtnodwarf:rbt_rec { print(((struct rbt_rec *)arg0)->id); }",
        "uprobe:./rbtdwarf:rbt_rec { print(args->r->num.i); }",
        // A function the DWARF lacks has no parameters (the file has debug info).
        "uprobe:./rbtdwarf:_start { print(args->a); }",
        "uprobe:./rbtdwarf:rbt_rec { @s = str(args->r->name); }",
        // Types named as bpftrace names them.
        "uprobe:./rbtdwarf:rbt_ptrs { print(args->ip); }",
        "uprobe:./rbtdwarf:rbt_rec { print(args->r); }",
        "uretprobe:./rbtdwarf:rbt_rec { print(1); } uprobe:./rbtdwarf:rbt_rec { print(args->r->nope); }",
    ];
    let mut failures = Vec::new();
    for script in scripts {
        let args = ["-e", script];
        let theirs = run("bpftrace", dir, &args);
        let ours = run(env!("CARGO_BIN_EXE_rbt"), dir, &args);
        assert!(!theirs.status.success(), "bpftrace accepts {script}");
        let want = bpftrace_ref::error_message(&theirs.stderr);
        assert!(want.is_some(), "bpftrace gave no message for {script}");
        let have = bpftrace_ref::error_message(&ours.stderr);
        let points = stderr(&ours).lines().any(|l| l.contains('^'));
        if ours.status.success() || want != have || !points {
            failures.push(format!(
                "{script}: bpftrace {want:?}, rbt {}",
                stderr(&ours)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
