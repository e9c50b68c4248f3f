//! Maps and aggregations end to end: rbt and the real bpftrace 0.17 run the same
//! scripts on this host and must print the same bytes, in text and `-f json`. BEGIN-only
//! scripts hold constants; the tracepoint scripts trace the project's deterministic
//! workload (tests/data/workload/rbtwl.c, comm "rbtwl", a fixed set of syscalls) run by
//! each tracer with `-c`. Nothing is masked: map printing is deterministic, except the
//! order of entries with equal values (the kernel's hash order), which the scripts avoid.
//! Needs root, bpftrace 0.17, tracefs and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Runs `tracer args -e script`; its stdout, or why it failed.
fn run(tracer: &str, args: &[&str], script: &str) -> Result<String, String> {
    bpftrace_ref::run_tracer(tracer, args, script, &[])
}

const BEGIN_SCRIPTS: &[&str] = &[
    "BEGIN { @c[1]=count(); @c[2]=count(); @c[2]=count(); @c[3]=count(); @c[3]=count(); @c[3]=count(); @n = count(); exit(); }",
    "BEGIN { @s[1] = sum(-7); @s[2] = sum(3); @s[3] = sum(10); @s[3] = sum(-1); @u = sum((uint64)5); @big = sum((uint64)-1); exit(); }",
    "BEGIN { @a[1]=avg(10); @a[1]=avg(-25); @a[2]=avg(7); @z = avg(-7); @z = avg(2); exit(); }",
    "BEGIN { @mn[1]=min(-3); @mn[2]=min(5); @mn[3]=min(0); @mx[1]=max(-3); @mx[2]=max(7); @mx[3]=max(0); @big = min(0x100000000); @m1 = min(0x7fffffff); exit(); }",
    "BEGIN { @st[1]=stats(5); @st[1]=stats(-8); @st[2]=stats(100); @st[3]=stats(-50); @s0 = stats(3); exit(); }",
    "BEGIN { @h = hist(-5); @h = hist(0); @h = hist(1); @h = hist(2); @h = hist(3); @h = hist(4); @h = hist(7); @h = hist(8); @h = hist(1024); @h = hist(1048576); exit(); }",
    "BEGIN { @g = hist(1 << 40); @g = hist(0x80000000); @k[1] = hist(0x7fffffffffffffff); @k[2] = hist(5); @k[2] = hist(6); exit(); }",
    "BEGIN { @l = lhist(-1, 0, 100, 10); @l = lhist(0, 0, 100, 10); @l = lhist(55, 0, 100, 10); @l = lhist(100, 0, 100, 10); @l = lhist(1000, 0, 100, 10); @m = lhist(9, 0, 10, 3); @m = lhist(2, 0, 10, 3); exit(); }",
    "BEGIN { @k = lhist(2048, 0, 4096, 1024); @k = lhist(3000, 0, 4096, 1024); @mm = lhist(1048576, 0, 3145728, 1048576); @mm = lhist(5000000, 0, 3145728, 1048576); exit(); }",
    "BEGIN { @g[\"b\", 1] = hist(5); @g[\"a\", 2] = hist(5); @g[\"ab\", 0] = hist(9); exit(); }",
    "BEGIN { @t[1, \"a\"] = 5; @t[1, \"b\"] = 3; @t[-1, \"a\"] = 4; @t[2, \"\"] = -9; exit(); }",
    "BEGIN { @s[1]=\"x\"; @s[-2]=\"y\"; @s[3]=\"z\"; @s[256]=\"w\"; @s[0]=\"v\"; @t[\"b\"]=\"1\"; @t[\"a\"]=\"2\"; @t[\"ab\"]=\"3\"; @t[\"\"]=\"4\"; @v = \"scalar\"; exit(); }",
    "BEGIN { @i[1] = -5; @i[2] = 10; @i[-3] = 0; @y = (uint64)-1; @w = (int8)-1; @x[(uint64)-1] = 1; @k[(int32)-5, (uint16)7] = 1; exit(); }",
    "BEGIN { @x = 7; @c[1] = sum(25); @c[2] = sum(-37); @c[3] = sum(10); @c[4] = sum(99); print(@x); print(@c); print(@c, 2); print(@c, 2, 10); print(@c, 0, 4); print(@x, 0, 2); exit(); }",
    "BEGIN { @h[1]=hist(1); @h[2]=hist(2); @h[2]=hist(2); @h[3]=hist(100); @h[3]=hist(100); @h[3]=hist(100); print(@h, 2, 2); exit(); }",
    "BEGIN { printf(\"hi\\n\"); @b = 1; @a = 2; @B = 3; @_ = 4; @ = 5; exit(); }",
    "BEGIN { @a[1] = 1; @a[2] = 2; delete(@a[1]); @b = count(); @c[1] = count(); @h = hist(3); @s = stats(3); @v = avg(4); clear(@c); zero(@h); zero(@s); zero(@v); clear(@b); exit(); }",
    "BEGIN { @start[1] = 100; if (@start[1]) { @d = hist(150 - @start[1]); } delete(@start[1]); exit(); }",
    "BEGIN { @x++; @x++; @x++; @y += 5; @y -= 2; @z[1]++; @z[2] += 10; exit(); }",
    "BEGIN { @e[\"q\\\"b\\\\s\\tt\\nn\"] = \"v\\\"\\\\\\t\\r\"; @ = count(); exit(); }",
    "BEGIN { @c = count(); @c = count(); print(@c); clear(@c); print(@c); @c = count(); exit(); } END { @e = sum(3); }",
    "BEGIN { @l[1] = lhist(5, 0, 1000, 100); @l[2] = lhist(500, 0, 1000, 100); @l[2] = lhist(501, 0, 1000, 100); @l[3] = lhist(2000, 0, 1000, 100); exit(); }",
];

#[test]
fn begin_maps_match_bpftrace() {
    if bpftrace_ref::skip_reason("begin_maps_match_bpftrace").is_some() {
        return;
    }
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(BEGIN_SCRIPTS, &[], bpftrace_ref::TEXT_AND_JSON),
        BEGIN_SCRIPTS.len() * 2,
    );
}

/// The workload, built once under a name unique to this test process, so other
/// workloads on the machine are not counted.
fn workload() -> Option<&'static PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| bpftrace_ref::build_workload(&workload_comm()))
        .as_ref()
}

/// The workload's name (and comm, at most 15 bytes): `rbtwl` and this process's pid.
fn workload_comm() -> String {
    format!("rbtwl{:x}", std::process::id())
}

/// The scripts say `rbtwl` for the workload's comm.
const WORKLOAD_SCRIPTS: &[&str] = &[
    "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @[comm] = count(); }",
    "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @bytes = hist(args->count); }",
    "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @bytes = lhist(args->count, 0, 128, 16); }",
    "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @s = sum(args->count); @a = avg(args->count); @mn = min(args->count); @mx = max(args->count); @st = stats(args->count); }",
    "tracepoint:syscalls:sys_enter_read /comm == \"rbtwl\"/ { @r[args->count] = sum(args->count); }",
    "tracepoint:syscalls:sys_exit_read /comm == \"rbtwl\"/ { @ret = hist(args->ret); }",
    "tracepoint:raw_syscalls:sys_enter /comm == \"rbtwl\" && (args->id == 0 || args->id == 1 || args->id == 110)/ { @[args->id] = count(); }",
    "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @start[tid] = nsecs; } tracepoint:syscalls:sys_exit_write /comm == \"rbtwl\" && @start[tid]/ { @n[comm] = count(); delete(@start[tid]); }",
    "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @w[comm, args->fd] = hist(args->count); }",
    // print() reads the map when user space handles the record, so printing after each
    // of several fast events is timing-dependent in both tracers; print once, at close.
    "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @x = count(); } tracepoint:syscalls:sys_enter_close /comm == \"rbtwl\"/ { print(@x); clear(@x); }",
    "tracepoint:syscalls:sys_enter_read /comm == \"rbtwl\"/ { @r[comm] = max(args->count); @m[comm] = min(args->count); }",
];

#[test]
fn workload_maps_match_bpftrace() {
    if bpftrace_ref::skip_reason("workload_maps_match_bpftrace").is_some() {
        return;
    }
    let Some(workload) = workload() else {
        support::skip(
            "workload_maps_match_bpftrace",
            "cannot build the workload with gcc -static",
        );
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let comm = workload_comm();
    let scripts: Vec<String> = WORKLOAD_SCRIPTS
        .iter()
        .map(|s| s.replace("\"rbtwl\"", &format!("\"{comm}\"")))
        .collect();
    let scripts: Vec<&str> = scripts.iter().map(String::as_str).collect();
    // The workload really ran under both: the first script counts its 67 writes.
    let probe = run("bpftrace", &["-c", &workload], scripts[0]).unwrap();
    assert!(
        probe.contains(&format!("@[{comm}]: 67")),
        "workload not traced:\n{probe}"
    );
    let failures =
        bpftrace_ref::output_mismatches(&scripts, &["-c", &workload], bpftrace_ref::TEXT_AND_JSON);
    let _ = std::fs::remove_file(&workload);
    bpftrace_ref::assert_no_mismatches(failures, WORKLOAD_SCRIPTS.len() * 2);
}

/// `BPFTRACE_MAP_KEYS_MAX` limits every map as in bpftrace, and the updates a full map
/// drops are reported once on stderr (bpftrace drops them silently).
#[test]
fn full_maps_drop_updates_and_say_so() {
    if bpftrace_ref::skip_reason("full_maps_drop_updates_and_say_so").is_some() {
        return;
    }
    let script = "BEGIN { @[1] = 1; @[2] = 2; @[3] = 3; @c[1] = count(); @c[1] = count(); @c[2] = count(); @c[3] = count(); exit(); }";
    let with_limit = |tracer: &str| {
        Command::new(tracer)
            .args(["-e", script])
            .env("BPFTRACE_MAP_KEYS_MAX", "2")
            .output()
            .expect("run tracer")
    };
    let (theirs, ours) = (
        with_limit("bpftrace"),
        with_limit(env!("CARGO_BIN_EXE_rbt")),
    );
    assert!(theirs.status.success() && ours.status.success());
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout)
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(
        stderr
            .matches("WARNING: 2 map updates were dropped")
            .count(),
        1,
        "{stderr}"
    );
}
