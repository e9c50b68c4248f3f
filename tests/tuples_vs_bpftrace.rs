//! Tuples and `print()` of a non-map value end to end: rbt and the real bpftrace 0.17
//! run the same scripts on this host and must print the same bytes, in text and
//! `-f json`; misuses must be rejected by both with bpftrace's message (rbt's location
//! format differs by design, but it must point into the script). BEGIN-only scripts
//! hold constants; the tracepoint script traces the deterministic workload
//! (tests/data/workload/rbtwl.c) run by each tracer with `-c`.
//! Needs root, bpftrace 0.17, tracefs and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

const BEGIN_SCRIPTS: &[&str] = &[
    // Literals, variables, map values. (BEGIN's comm is each tracer's own name: the
    // workload test has comm in tuples.)
    "BEGIN { $t = (1, \"abc\"); print($t); @t = (1, \"abc\", \"fifteen_chars_x\"); exit(); }",
    // Nested tuples and element access, also chained.
    "BEGIN { $t = (1, (2, \"x\"), \"y\"); print($t); @n = $t; print($t.1); print($t.1.0); print($t.2); exit(); }",
    "BEGIN { $t = (1, 2).1; print($t); print((3, \"four\").1); $u = ((1, 2), 3); print($u.0.1); exit(); }",
    // String elements grow to the largest assigned; a narrower tuple is copied in its
    // own layout, as bpftrace copies it (its later elements land where they fall).
    "BEGIN { $t = (\"a\", 1); print($t); $t = (\"abcdefghij\", 2); print($t); $u = (\"abcdefghij\", 3); $u = (\"b\", 4); print($u); exit(); }",
    "BEGIN { $a = (\"a\", 1); $b = (\"abcdefghij\", 2); $b = $a; print($b); @t = (\"abcdefghij\", 2); @t = (\"a\", 1); @w = (1, \"a\"); @w = (2, \"abcdef\"); exit(); }",
    // Integers keep their width and signedness inside tuples.
    "BEGIN { $t = ((int8)-1, (uint64)-1, (uint16)7, -5, (int32)-2); print($t); @t = $t; print($t.0); print($t.1); print($t.4); exit(); }",
    // Alignment: strings at any offset, small integers at their size, nested tuples at
    // their largest element's alignment.
    "BEGIN { $t = (\"a\", (int16)2, \"bcd\", (int8)3, 4, ((int8)5, \"e\"), (int32)6); print($t); @t = $t; print($t.5.1); print($t.6); print($t.2); exit(); }",
    "BEGIN { $c = \"fifteen_chars_x\"; $t = ($c, $c, \"x\", $c); print($t); @x = (\"a\", \"b\"); @y = (1, (\"ab\", (int16)3), \"c\"); exit(); }",
    // print() of plain values.
    "BEGIN { print(5); print(-5); print((uint64)-1); print((int8)-3); print(\"s\"); print((1, 2)); print(\"\"); print(\"q\\\"b\\\\s\"); exit(); }",
    "BEGIN { print((pid > 0, \"p\", nsecs > 0)); $s = \"str\"; print($s); $i = 7; print($i * 6); exit(); }",
    // Elements of map values; tuple values in keyed maps (sorted by key) and print().
    "BEGIN { @t = (1, \"a\"); print(@t.1); print(@t.0 + 1); $x = @t.0; print($x); exit(); }",
    "BEGIN { @k[1, \"a\"] = (10, \"x\"); @k[2, \"b\"] = (20, \"yy\"); @k[-1, \"c\"] = (-30, \"zzz\"); @s[\"b\"] = (\"q\", 1); @s[\"a\"] = (\"r\", 2); exit(); }",
    "BEGIN { @m[1] = (5, \"a\"); @m[2] = (7, \"b\"); @m[3] = (-9, \"c\"); print(@m); print(@m, 1); print(@m, 0, 2); exit(); }",
    // A tuple holding a variable grows with it, also when it grows later in a loop.
    "BEGIN { $i = 0; $s = \"a\"; while ($i < 2) { $t = ($s, 1); print($t); $s = \"abcdefgh\"; $i++; } @m = ($s, 5); @m = (\"x\", 6); exit(); }",
    "BEGIN { @x[(int8)1] = ((int16)1, \"aa\"); @x[2] = ((int16)-1, \"b\"); exit(); }",
    "BEGIN { $t = ((uint8 *)16, 1); print($t); @p = $t; exit(); }",
    "BEGIN { $t = ((int8)1, ntop(0x0100007f), 1, username, ntop(0x0200007f)); print($t); @t = $t; print($t.1); print(username); print(ntop(0x0300007f)); exit(); }",
    // clear(), zero() and delete() of tuple maps.
    "BEGIN { @t = (1, \"a\"); @u[1] = (2, \"b\"); @u[2] = (3, \"c\"); zero(@t); clear(@u); @u[5] = (4, \"d\"); delete(@u[5]); @v[1] = (1, 1); zero(@v); exit(); }",
    "BEGIN { $i = 0; while ($i < 3) { @w[$i] = ($i, $i * 2); $i++; } if (@w[1].1 == 2) { print(@w[2].1); } exit(); }",
    // strftime() and cgroup_path() as the last element (bpftrace 0.17 mislays them
    // anywhere else), print() of them and of macaddr().
    "BEGIN { @ = (1, strftime(\"%M:%S\", 5000000000)); @c = (2, cgroup_path(1, \"unified\")); print((3, strftime(\"%H\", 0))); exit(); }",
    "BEGIN { print(strftime(\"%H:%M\", 0)); print(macaddr(0)); print(cgroup_path(1, \"uni*\")); exit(); }",
];

#[test]
fn begin_tuples_match_bpftrace() {
    if bpftrace_ref::skip_reason("begin_tuples_match_bpftrace").is_some() {
        return;
    }
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(BEGIN_SCRIPTS, &[], bpftrace_ref::TEXT_AND_JSON),
        BEGIN_SCRIPTS.len() * 2,
    );
}

/// Tuple map values keyed by comm and by size, and print() of tuples and integers, over
/// the workload's writes and closes (in the order it makes them).
#[test]
fn workload_tuples_match_bpftrace() {
    if bpftrace_ref::skip_reason("workload_tuples_match_bpftrace").is_some() {
        return;
    }
    let comm = format!("rbtwl{:x}", std::process::id());
    let Some(workload) = bpftrace_ref::build_workload(&comm) else {
        support::skip(
            "workload_tuples_match_bpftrace",
            "cannot build the workload with gcc -static",
        );
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let scripts: Vec<String> = [
        "tracepoint:syscalls:sys_enter_write /comm == \"rbtwl\"/ { @t[comm] = (args->fd, args->count, comm); @n[args->count] = (comm, (int32)args->fd); } tracepoint:syscalls:sys_enter_close /comm == \"rbtwl\"/ { $c = (args->fd, comm); print($c); print(args->fd); print(@t[comm].1); }",
        // Strings read from user memory inside a tuple, elements as map keys and values.
        "tracepoint:syscalls:sys_enter_openat /comm == \"rbtwl\"/ { $t = (str(args->filename), comm, (int16)args->flags, str(args->filename)); print($t); @o[$t.0] = ($t.2, $t.1); print($t.3); }",
    ]
    .iter()
    .map(|s| s.replace("\"rbtwl\"", &format!("\"{comm}\"")))
    .collect();
    let traced =
        bpftrace_ref::run_tracer("bpftrace", &["-c", &workload], &scripts[0], &[]).unwrap();
    assert!(
        traced.contains(&format!("@t[{comm}]: (")),
        "workload not traced:\n{traced}"
    );
    let scripts: Vec<&str> = scripts.iter().map(String::as_str).collect();
    let failures =
        bpftrace_ref::output_mismatches(&scripts, &["-c", &workload], bpftrace_ref::TEXT_AND_JSON);
    let _ = std::fs::remove_file(&workload);
    bpftrace_ref::assert_no_mismatches(failures, scripts.len() * 2);
}

/// Misuses of tuples and print() get bpftrace's message from rbt, at a location in the
/// script (`stdin:LINE:COL: error:` and a caret line).
#[test]
fn tuple_errors_match_bpftrace() {
    if bpftrace_ref::skip_reason("tuple_errors_match_bpftrace").is_some() {
        return;
    }
    let scripts = [
        "BEGIN { $t = (1, \"a\"); print($t.5); exit(); }",
        "BEGIN { $t = 1; print($t.0); exit(); }",
        "BEGIN { $t = (1, \"a\"); $t = 5; exit(); }",
        "BEGIN { $x = 5; $x = (1, 2); exit(); }",
        "BEGIN { $t = (1, 2); $t = (1, \"a\"); exit(); }",
        "BEGIN { $t = (1, 2); $t = (1, 2, 3); exit(); }",
        "BEGIN { $t = (1, 2); $t = ((int8)1, 2); exit(); }",
        "BEGIN { @t = (1, \"a\"); @t = (1, 2); exit(); }",
        "BEGIN { @[(1, 2)] = 1; exit(); }",
        "BEGIN { $t = (1, \"a\"); printf(\"%s\\n\", $t); exit(); }",
        "BEGIN { $t = (1, 2); printf(\"%d\\n\", $t); exit(); }",
        "BEGIN { $t = (1, 2); print($t + 1); exit(); }",
        "BEGIN { print(5, 2); exit(); }",
        "BEGIN { $t = nsecs > 0 ? (1, \"a\") : (2, \"b\"); print($t); exit(); }",
        "BEGIN { @x[1] = 2; print(@x[1]); exit(); }",
    ];
    let failures = bpftrace_ref::error_mismatches(&scripts, true);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
