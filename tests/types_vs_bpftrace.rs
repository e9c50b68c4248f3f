//! The rest of the language's types against the real bpftrace 0.17 on this host:
//! integer and pointer casts, struct/union/enum definitions in the script (sizes,
//! member reads through a cast, bitfields, nested types, kernel types redefined),
//! `++`/`--` as values, `unroll`, tracepoint `__data_loc` fields, and the errors of
//! each. The member reads go through `(struct X *)args->filename` of the workload's
//! openat calls (tests/data/workload/rbtwl.c opens "/dev/null" and "/dev/zero"):
//! known bytes.
//! Needs root, bpftrace 0.17, tracefs and gcc (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use std::path::PathBuf;
use std::sync::OnceLock;

fn owned(scripts: &[&str]) -> Vec<String> {
    scripts.iter().map(|s| s.to_string()).collect()
}

const BEGIN_SCRIPTS: &[&str] = &[
    // Truncation and sign extension, printed and stored.
    "BEGIN { printf(\"%d %d %d %d\\n\", (int8)255, (uint8)-1, (int16)65535, (uint16)-1); printf(\"%d %d %d %d\\n\", (int32)0xffffffff, (uint32)-1, (int64)-1, (uint64)-1); exit(); }",
    "BEGIN { @a = (int8)200; @b = (uint8)300; @c = (int16)-40000; @d = (uint16)-1; @e = (int32)0x80000000; @f = (uint32)-1; @g = (int64)-1; @h = (uint64)-1; @k[(int8)-1, (uint16)65537] = 1; exit(); }",
    "BEGIN { $a = (int8)-1; $b = (uint8)$a; printf(\"%d %d %d\\n\", $a, $b, (int16)$b + (int8)$b); exit(); }",
    // Widening goes by the target's signedness.
    "BEGIN { $a = (int8)-1; $b = (uint8)$a; printf(\"%d %d %d %d %d\\n\", (uint64)$a, (uint32)$a, (int32)$b, (int64)$b, (uint16)(int8)-2); exit(); }",
    // Pointer casts and their arithmetic.
    "BEGIN { $p = (uint32 *)8; $q = (int8 **)0; $s = (struct task_struct *)0; $u = (union bpf_attr *)0; printf(\"%d %d %d %d\\n\", $p + 1, $q + 1, (uint64)($s + 1), $u == 0); exit(); }",
    // Definitions: layout (sizes), nested, unions, bitfields, enums as constants.
    "struct Foo { int x; char c; long y[4]; struct Foo *p; } \
     union U { int x; char c[9]; } \
     struct B { char a:3; int b:7; long c:40; } \
     struct O { char a; struct I { short s; long l; } i; char z; } \
     struct E2 { char c; struct { int q; } anon; unsigned short t[3]; } \
     BEGIN { printf(\"%d %d %d %d %d %d\\n\", sizeof(struct Foo), sizeof(union U), sizeof(struct B), sizeof(struct O), sizeof(struct I), sizeof(struct E2)); exit(); }",
    "struct P { char c; struct task_struct *t; unsigned long long u; _Bool b; } \
     struct Z { short s; char c[3]; } \
     struct K { struct list_head h; char c; } \
     BEGIN { printf(\"%d %d %d %d %d\\n\", sizeof(struct P), sizeof(struct Z), sizeof(struct K), sizeof(struct list_head), sizeof(uint16)); exit(); }",
    // bpftrace's runtime tests' definitions: C type names, a last member without `;`.
    "struct MyStruct { const char* a; char b[4]; uint8_t c[4]; int d[4]; uint16_t e[4]; uint64_t f[4] }; struct Foo { struct { int m[1] } y; struct { int n; } a; } BEGIN { printf(\"%d %d\\n\", sizeof(struct MyStruct), sizeof(struct Foo)); exit(); }",
    "enum E { TCP_CLOSE = 99, BPF_MAP_TYPE_HASH = 98 } BEGIN { printf(\"%d %d\\n\", TCP_CLOSE, BPF_MAP_TYPE_HASH); exit(); }",
    "enum E { A, B = 5, C, D = -2, F } BEGIN { printf(\"%d %d %d %d %d\\n\", A, B, C, D, F); exit(); }",
    // A script type shadows the kernel's of the same name; a new name does not.
    "struct task_struct { int x; char c; } BEGIN { printf(\"%d\\n\", sizeof(struct task_struct)); exit(); }",
    // A kernel enumerator is an int64 constant.
    "BEGIN { printf(\"%d %d\\n\", sizeof(BTF_VAR_STATIC), BTF_VAR_STATIC); exit(); }",
    // A shadowing type used only as a pointer: no conflict (see type_errors_match_bpftrace).
    "struct task_struct { struct thread_info x; int pid; } BEGIN { $t = (struct task_struct *)curtask; printf(\"%d\\n\", $t == 0); exit(); }",
    "struct Foo { struct thread_info x; int pid; } BEGIN { printf(\"%d\\n\", sizeof(struct Foo)); exit(); }",
    "struct task_struct_partial { int x; char c; } BEGIN { printf(\"%d %d\\n\", sizeof(struct task_struct_partial), sizeof(struct task_struct)); exit(); }",
    // Comments and macros in definitions (array lengths).
    "#define N 3\nstruct Foo {\n  int x; /* c */\n  char comm[16]; // d\n  long v[N];\n};\nBEGIN { printf(\"%d\\n\", sizeof(struct Foo)); exit(); }",
    // runqlen.bt's pattern: definitions only without BTF, which both define.
    "#ifndef BPFTRACE_HAVE_BTF\nstruct task_struct { int x; };\n#endif\nBEGIN { printf(\"%d %d\\n\", sizeof(struct task_struct) > 100, BPFTRACE_HAVE_BTF); exit(); }",
    // `++`/`--` as values.
    "BEGIN { $x = @a++; @b = @a--; printf(\"%d\\n\", $x); printf(\"%d\\n\", @a++); exit(); }",
    "BEGIN { $a = 1; $x = $a++; printf(\"%d %d\\n\", $x, $a); $y = ++$a; printf(\"%d\\n\", $y); $z = --$a + $a--; printf(\"%d %d\\n\", $z, $a); exit(); }",
    "BEGIN { @m[1] = 5; @k[@m[1]++] = @m[1]--; if (@m[1]++ == 5) { printf(\"yes %d\\n\", @m[1]); } $p = (uint32 *)0; $p++; printf(\"%d\\n\", $p++); exit(); }",
    // Evaluation order with effects in predicates, conditions, loops, keys.
    "BEGIN /@a++ == 0/ { printf(\"%d %d\\n\", @a++, @a); exit(); }",
    "BEGIN { $x = 1; $y = $x++ ? $x++ : 5; printf(\"%d %d\\n\", $x, $y); @k[$x++, $x--] = $x++; exit(); }",
    "BEGIN { $i = 0; while ($i++ < 3) { printf(\"%d\\n\", $i); } if ($i-- && --$i) { printf(\"t %d\\n\", $i); } exit(); }",
    // sizeof of values: strings, pointers, kernel structs and their members.
    "BEGIN { $s = \"abc\"; printf(\"%d %d %d %d %d %d\\n\", sizeof($s), sizeof(comm), sizeof(curtask), sizeof(*curtask), sizeof(curtask->comm), sizeof((int8)1)); exit(); }",
    // unroll: the body n times (1 to 100).
    "BEGIN { unroll(3) { printf(\"a\\n\"); } unroll(2) { printf(\"b\\n\"); unroll(2) { printf(\"c\\n\"); } } exit(); }",
    "BEGIN { $i = 0; unroll(5) { $i++; @a[$i] = $i; } printf(\"%d\\n\", $i); unroll(100) { @n++; } exit(); }",
    // Ternaries whose branches have no value, as statements (also nested).
    "BEGIN { 1 ? printf(\"yes\\n\") : printf(\"no\\n\"); 0 ? printf(\"yes\\n\") : printf(\"no\\n\"); $a = 2; $a > 1 ? (0 ? printf(\"a\\n\") : printf(\"b\\n\")) : printf(\"c\\n\"); exit(); }",
    "BEGIN { @x = 1; @y = 2; 1 ? clear(@x) : delete(@x); 0 ? exit() : print(3); nsecs ? printf(\"%d\\n\", @y) : exit(); exit(); }",
];

#[test]
fn begin_types_match_bpftrace() {
    if bpftrace_ref::skip_reason("begin_types_match_bpftrace").is_some() {
        return;
    }
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(BEGIN_SCRIPTS, &[], bpftrace_ref::TEXT),
        BEGIN_SCRIPTS.len(),
    );
}

fn workload() -> Option<&'static PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| bpftrace_ref::build_workload("rbtwl"))
        .as_ref()
}

/// The workload's openat calls: "/dev/null", then "/dev/zero".
const OPENAT: &str = "tracepoint:syscalls:sys_enter_openat /pid == cpid/";

/// (definitions, body over `$p = (struct S *)args->filename`): the struct's members
/// read the filename's bytes at the offsets the layout gives them.
const OVERLAYS: &[(&str, &str)] = &[
    (
        "struct S { char a; char b; short s; int i; char c[2]; }",
        "printf(\"%d %d %d %d %s\\n\", $p->a, $p->b, $p->s, $p->i, $p->c);",
    ),
    (
        "struct S { char a; int i; }",
        "printf(\"%d %d\\n\", $p->a, $p->i);",
    ),
    (
        "struct S { unsigned int a:3, b:5; unsigned short c:7; int d:4; signed char e:2; }",
        "printf(\"%d %d %d %d %d\\n\", $p->a, $p->b, $p->c, $p->d, $p->e);",
    ),
    (
        "struct S { char a; struct I { char x; short y; } i; char z; }",
        "printf(\"%d %d %d %d\\n\", $p->a, $p->i.x, $p->i.y, $p->z);",
    ),
    (
        "union S { int i; unsigned char c[4]; short s; }",
        "printf(\"%d %d %d\\n\", $p->i, $p->c[3], $p->s);",
    ),
    (
        "struct S { short s[3]; char c; }",
        "printf(\"%d %d %d\\n\", $p->s[0], $p->s[2], $p->c);",
    ),
    (
        "enum K { K0 = 100 } struct S { enum K k; char c; }",
        "printf(\"%d %d %d\\n\", $p->k, $p->c, K0);",
    ),
];

#[test]
fn struct_members_match_bpftrace() {
    let test = "struct_members_match_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(workload) = workload() else {
        support::skip(test, "cannot build the workload with gcc -static");
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let kind = |defs: &str| {
        if defs.contains("union S") {
            "union"
        } else {
            "struct"
        }
    };
    let scripts: Vec<String> = OVERLAYS
        .iter()
        .map(|(defs, body)| {
            format!(
                "{defs} {OPENAT} {{ $p = ({} S *)args->filename; {body} }}",
                kind(defs)
            )
        })
        .collect();
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &["-c", &workload], bpftrace_ref::TEXT),
        scripts.len(),
    );
}

/// `__data_loc` fields: the data's address, which `str()` reads.
#[test]
fn data_loc_fields_match_bpftrace() {
    let test = "data_loc_fields_match_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(workload) = workload() else {
        support::skip(test, "cannot build the workload with gcc -static");
        return;
    };
    let workload = workload.to_string_lossy().into_owned();
    let scripts = owned(&[
        "tracepoint:sched:sched_process_exec /pid == cpid/ { printf(\"%s %d\\n\", str(args->filename), args->filename != 0); @[str(args->filename)] = count(); }",
        "tracepoint:sched:sched_process_exec /pid == cpid/ { $f = args->filename; printf(\"%s %d\\n\", str($f, 5), args->pid == pid); }",
    ]);
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &["-c", &workload], bpftrace_ref::TEXT),
        scripts.len(),
    );
}

/// Misuses rejected by both tracers with the same message (rbt's location format
/// differs by design).
#[test]
fn type_errors_match_bpftrace() {
    if bpftrace_ref::skip_reason("type_errors_match_bpftrace").is_some() {
        return;
    }
    let scripts = [
        "BEGIN { $p = (sock *)0; exit(); }",
        "BEGIN { $p = (task_struct *)0; exit(); }",
        "BEGIN { $p = (u32)1; exit(); }",
        "BEGIN { $p = (int)1; exit(); }",
        "BEGIN { $p = (void *)0; exit(); }",
        "BEGIN { $p = (enum bpf_map_type)1; exit(); }",
        "BEGIN { $p = (struct nonexist *)0; exit(); }",
        "BEGIN { $p = (struct task_struct)0; exit(); }",
        "struct Foo { int x; } BEGIN { $p = (struct Foo)0; exit(); }",
        "struct Foo { int x; } BEGIN { $p = (Foo *)0; exit(); }",
        "struct task_struct { int x; char c; } BEGIN { printf(\"%d\\n\", curtask->pid); exit(); }",
        "BEGIN { printf(\"%d\\n\", sizeof(struct nonexist)); exit(); }",
        // A member or the size of a script struct that shadows a kernel one: bpftrace's
        // BTF header conflicts, so the script's types stand alone (and embed an
        // incomplete kernel struct).
        "struct task_struct { struct thread_info x; } BEGIN { printf(\"%d\\n\", curtask->x.status); exit(); }",
        "struct task_struct { struct thread_info x; int pid; } BEGIN { $t = (struct task_struct *)curtask; printf(\"%d\\n\", $t->pid); exit(); }",
        "struct task_struct { struct thread_info x; int pid; } BEGIN { printf(\"%d\\n\", sizeof(struct task_struct)); exit(); }",
        "enum E { A } BEGIN { printf(\"%d\\n\", sizeof(enum E)); exit(); }",
        "BEGIN { $s = \"a\"; $s++; exit(); }",
        "BEGIN { @s = \"a\"; $x = @s++; exit(); }",
        "BEGIN { @c = count(); @c--; exit(); }",
        "BEGIN { $a = 1; $b = &$a; exit(); }",
        "struct S { char c[4]; } BEGIN { $p = (struct S *)0; printf(\"%d\\n\", $p->c[1]); exit(); }",
        // printf names the kind of a wrong argument.
        "tracepoint:sock:inet_sock_set_state { printf(\"%s\\n\", args->saddr); }",
        "BEGIN { printf(\"%d\\n\", *curtask); }",
        "BEGIN { printf(\"%d\\n\", curtask->comm); }",
        "BEGIN { printf(\"%s\\n\", curtask); }",
        "BEGIN { printf(\"%d\\n\", username); }",
        "BEGIN { @h = hist(1); printf(\"%d\\n\", @h); }",
        "BEGIN { unroll(0) { printf(\"a\\n\"); } exit(); }",
        "BEGIN { unroll(101) { printf(\"a\\n\"); } exit(); }",
        "BEGIN { unroll(-1) { printf(\"a\\n\"); } exit(); }",
        "BEGIN { unroll($#) { printf(\"a\\n\"); } exit(); }",
        "BEGIN { $x = 5; printf(\"%d\\n\", $x[1]); exit(); }",
        "BEGIN { 1 ? printf(\"yes\\n\") : 1; exit(); }",
        "t:syscalls:nonsense { printf(\"hit\"); exit(); }",
        "BEGIN { 1 ? 2 : exit(); }",
        "BEGIN { \"a\" ? printf(\"x\") : printf(\"y\"); }",
    ];
    let failures = bpftrace_ref::error_mismatches(&scripts, false);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A TCP connection over the loopback, closed: `tcp:tcp_destroy_sock` fires for the
/// listener and both ends. The event's record is not in BTF (a shared class), so its
/// fields come from tracefs, `__u8 saddr[4]` an array.
const LOOPBACK: &str = "import socket, time\ntime.sleep(0.3)\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\nc = socket.create_connection(s.getsockname()); a, _ = s.accept()\nc.close(); a.close(); s.close()\ntime.sleep(0.3)\n";

#[test]
fn tracefs_array_fields_match_bpftrace() {
    let test = "tracefs_array_fields_match_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    // bpftrace's -c wants one real binary, not a pyenv shim.
    let python = std::fs::canonicalize("/usr/bin/python3").ok();
    let Some(python) = python else {
        support::skip(test, "no /usr/bin/python3 to open a TCP connection");
        return;
    };
    let dir = std::env::temp_dir().join(format!("rbt-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = dir.join("loopback.py");
    std::fs::write(&script, LOOPBACK).expect("write the python script");
    let command = format!("{} {}", python.display(), script.display());
    let scripts = owned(&[
        "tracepoint:tcp:tcp_destroy_sock /pid == cpid && args->saddr[0] == 127/ { printf(\"%d %d %d %d %s\\n\", args->saddr[0], args->saddr[1], args->saddr[3], args->family, ntop(args->saddr)); }",
    ]);
    bpftrace_ref::assert_no_mismatches(
        bpftrace_ref::output_mismatches(&scripts, &["-c", &command], bpftrace_ref::TEXT),
        scripts.len(),
    );
}
