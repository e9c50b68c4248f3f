//! Struct, union and array values against the real bpftrace 0.17 on this host: copied
//! out of memory into variables, map values and keys (multi-keys too), tuples and
//! `print()`; their fields and elements read back; arrays and buffers compared; and
//! all of it printed in text and `-f json`. The values are read through
//! `*(struct S *)args->filename` of the workload's openat calls
//! (tests/data/workload/rbtwl.c opens "/dev/null", then "/dev/zero"): known bytes.
//! Map values differ per call (`args->flags`: 1, then 0), so sorted maps have no ties;
//! a map with record keys and record values is not sorted at all (bpftrace's
//! `sort_by_key` skips them), so such maps hold one entry.
//! Needs root, bpftrace 0.17, tracefs and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

/// The workload's openat calls.
const OPENAT: &str = "tracepoint:syscalls:sys_enter_openat /pid == cpid/";

/// (definitions, body over `$s`, a copy of `*(struct S *)args->filename`).
const VALUES: &[(&str, &str)] = &[
    // Into a variable, a map value, a multi-key, a tuple; a member array on its own.
    (
        "struct S { int a; char b[4]; short c[2]; }",
        "print($s); @m = $s; @k[$s, 1] = args->flags; @t = (1, $s); print($s.c); @arr = $s.c; @ak[$s.c] = args->flags;",
    ),
    (
        "union S { int i; char c[4]; unsigned short s[2]; }",
        "print($s); @u[$s] = args->flags; @v = $s;",
    ),
    // Pointer members print as integers, in keys as hex; unsigned ones unsigned.
    (
        "struct S { char *p; unsigned int u; int i; }",
        "print($s); @k[$s] = args->flags; printf(\"%d %d\\n\", sizeof($s), $s.u);",
    ),
    // Signedness, and a struct inside a tuple with a string after it (its size).
    (
        "struct S { unsigned char a; signed char b; unsigned short c; long d; }",
        "print($s); @k[$s] = args->flags; $t = (1, $s, \"x\"); print($t); printf(\"%d\\n\", sizeof($t)); @t = $t;",
    ),
    // Arrays of structs, an element as a key, a string member of an element.
    (
        "struct S { int a; struct I { short x; char y[3]; } i[2]; }",
        "print($s); @[$s.i[1]] = args->flags; @v = $s.i; print($s.i[1].y); print(sizeof($s));",
    ),
    // Bitfields print their storage unit and read as their bits.
    (
        "struct S { unsigned int a:3, b:5; unsigned short c:7; signed char e:2; }",
        "print($s); printf(\"%d %d %d %d\\n\", $s.a, $s.b, $s.c, $s.e); @[$s] = args->flags;",
    ),
    // Members of a map's struct value and of a variable copied from it.
    (
        "struct S { int a; char b[4]; }",
        "@s = $s; print(@s.b); printf(\"%s %d\\n\", @s.b, @s.a); $x = @s; printf(\"%s\\n\", $x.b);",
    ),
    // Multi-dimensional arrays: printed, stored, indexed, as keys.
    (
        "struct S { short y[2][2]; char c; }",
        "print($s.y); @b = $s.y; $y = $s.y; printf(\"%d %d\\n\", $y[1][0], $y[0][1]); @x[$s.y] = args->flags;",
    ),
    // Array comparison: values and memory, equal and not.
    (
        "struct S { int a; char b[4]; short c[2]; short d[2]; }",
        "$t = $s; printf(\"%d %d %d %d\\n\", $s.c == $t.c, $s.c != $s.d, $s.c == $s.d, ((struct S *)args->filename)->c == $s.c);",
    ),
];

#[test]
fn record_values_match_bpftrace() {
    let test = "record_values_match_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(workload) = bpftrace_ref::build_workload("rbtwl") else {
        support::skip(test, "cannot build the workload with gcc -static");
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let scripts: Vec<String> = VALUES
        .iter()
        .map(|(defs, body)| {
            let kind = if defs.starts_with("union") {
                "union"
            } else {
                "struct"
            };
            format!("{defs} {OPENAT} {{ $s = *({kind} S *)args->filename; {body} }}")
        })
        .collect();
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &["-c", &workload], bpftrace_ref::TEXT_AND_JSON),
        2 * scripts.len(),
    );
}

/// Without a workload: buffers compared, a struct read from address 0 (zeros), a
/// kernel struct with anonymous unions and structs (their members are the parent's).
/// The lock is one BEGIN holds none of: zeros.
#[test]
fn begin_record_values_match_bpftrace() {
    if bpftrace_ref::skip_reason("begin_record_values_match_bpftrace").is_some() {
        return;
    }
    let scripts = [
        "BEGIN { $a = buf(\"hi\", 2); $b = buf(\"bye\", 3); printf(\"equal=%d, unequal=%d %d\\n\", $a == $a, $a != $b, $a == $b); exit(); }",
        "struct A { int x[4]; } BEGIN { @a = *(struct A *) 0; @b = @a.x; print(@a.x[1]); exit(); }",
        "BEGIN { print(curtask->pi_lock); @l[curtask->pi_lock] = 1; $x = curtask->pi_lock; printf(\"%d\\n\", $x.raw_lock.locked); exit(); }",
        "struct A { int x[4]; struct { char c; long l; } n; } BEGIN { $a = *(struct A *) 0; print($a); print(sizeof($a)); @[$a.n] = 1; exit(); }",
    ];
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &[], bpftrace_ref::TEXT_AND_JSON),
        2 * scripts.len(),
    );
}

/// Misuses of record values, rejected with bpftrace's message.
#[test]
fn record_value_errors_match_bpftrace() {
    if bpftrace_ref::skip_reason("record_value_errors_match_bpftrace").is_some() {
        return;
    }
    let scripts = [
        "struct A { int x[4]; } BEGIN { $a = (struct A *) 0; $x = $a->x[5]; exit(); }",
        "struct A { int x[4]; } BEGIN { $a = *(struct A *) 0; $x = $a.x[4]; exit(); }",
        "struct A { int x[4]; } BEGIN { $a = *(struct A *) 0; $y = $a.q; exit(); }",
        "struct A { int x[4]; } BEGIN { $a = *(struct A *) 0; printf(\"%d\\n\", $a); exit(); }",
        "struct A { int x[4]; } BEGIN { $a = *(struct A *) 0; printf(\"%s\\n\", $a.x); exit(); }",
        "struct S { int a; } struct T { int a; } BEGIN { $s = *(struct S *)0; $s = *(struct T *)0; exit(); }",
        "struct S { int a; } struct T { int a; } BEGIN { @s = *(struct S *)0; @s = *(struct T *)0; exit(); }",
        "struct A { int x[4]; int y[2]; } BEGIN { $a = *(struct A *) 0; if ($a.x == $a.y) { exit(); } }",
        "struct A { int x[4]; int y[4]; } BEGIN { $a = *(struct A *) 0; if ($a.x < $a.y) { exit(); } }",
        "struct S { int a[2]; int b[3]; } BEGIN { @s = ((struct S *)0)->a; @s = ((struct S *)0)->b; exit(); }",
        "struct S { int a[2]; int b[3]; } BEGIN { @s[((struct S *)0)->a] = 1; @s[((struct S *)0)->b] = 1; exit(); }",
        "struct S { int a[2]; } struct T { int a; } BEGIN { @s = *(struct T *)0; @s = ((struct S *)0)->a; exit(); }",
        "struct S { int a[2][2]; } BEGIN { @s = ((struct S *)0)->a; @s = 1; exit(); }",
        "struct S { int a; } BEGIN { @k[*(struct S *)0] = 1; @k[1] = 2; exit(); }",
        "BEGIN { @s = 1; @s = \"a\"; exit(); }",
        "tracepoint:syscalls:sys_enter_openat { @a = args; exit(); }",
        "struct S { int a; } BEGIN { $s = *(struct S *)0; $x = 1 ? $s : $s; exit(); }",
        "struct S { int a[2]; } BEGIN { $s = *(struct S *)0; $x = 1 ? $s.a : $s.a; exit(); }",
        "struct S { int a[2]; } BEGIN { $x = 1 ? ((struct S *)0)->a : ((struct S *)0)->a; exit(); }",
        "struct A { char *x[2]; char *y[2]; } BEGIN { $a = *(struct A *) 0; if ($a.x == $a.y) { exit(); } }",
    ];
    let failures = bpftrace_ref::error_mismatches(&scripts, true);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
