//! Event records as the kernel writes them: programs run for real (BEGIN through
//! BPF_PROG_TEST_RUN, a tracepoint attached), and the raw record bytes are checked
//! against the layout codegen published in the event catalog. Needs root and BPF (and
//! tracefs for the tracepoint): skips with the reason otherwise, fails when CI is set.

mod codegen_common;
mod support;

use codegen_common::*;
use rbt::btf::Btf;
use rbt::codegen::CompileOptions;
use rbt::event::{EventCatalog, EventKind, ValueLayout};
use rbt::runtime::{self, EventSink, Next, RunOptions};
use std::io;
use std::path::Path;

/// Keeps every record; stops at the `exit()` event.
#[derive(Default)]
struct Records(Vec<Vec<u8>>);

impl EventSink for Records {
    fn attached(&mut self, _probes: usize) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, catalog: &EventCatalog, record: &[u8]) -> io::Result<Next> {
        self.0.push(record.to_vec());
        let id = u64::from_le_bytes(record[..8].try_into().unwrap()) as usize;
        Ok(match catalog.events[id] {
            EventKind::Exit => Next::Stop,
            _ => Next::Continue,
        })
    }
    fn lost(&mut self, count: u64) -> io::Result<()> {
        panic!("{count} events lost")
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn run(src: &str, opts: &RunOptions) -> (EventCatalog, Vec<Vec<u8>>) {
    let btf = Btf::load(Path::new("/sys/kernel/btf/vmlinux")).expect("kernel BTF");
    let compiled = compile("test.bt", src, &btf, &CompileOptions::default());
    let mut records = Records::default();
    runtime::run(&compiled, opts, &mut records).unwrap_or_else(|e| panic!("{e}"));
    (compiled.events, records.0)
}

#[test]
fn begin_records_follow_the_catalog_layout() {
    if skip_reason("begin_records_follow_the_catalog_layout").is_some() {
        return;
    }
    let src = r#"BEGIN {
  $x = (int16)-5;
  printf("%d %u %s %s %s|%d\n", $x, (uint8)300, comm, ntop(0x0100007f), "lit", pid);
  time("%H\n");
  exit();
  printf("not reached\n");
}
"#;
    let (catalog, records) = run(src, &RunOptions::default());
    assert_eq!(records.len(), 3, "printf, time, exit; nothing after exit()");
    let EventKind::Printf { args, .. } = &catalog.events[0] else {
        panic!("{:?}", catalog.events[0])
    };
    let r = &records[0];
    assert_eq!(int_at(r, 0, 8), 0, "event id");
    let values: Vec<ValueLayout> = args.iter().map(|a| a.value.clone()).collect();
    assert_eq!(
        values,
        [
            ValueLayout::Int {
                size: 2,
                signed: true
            },
            ValueLayout::Int {
                size: 1,
                signed: false
            },
            ValueLayout::Str { size: 16 },
            ValueLayout::Inet,
            ValueLayout::Str { size: 4 },
            ValueLayout::Int {
                size: 8,
                signed: false
            },
        ]
    );
    assert_eq!(int_at(r, args[0].offset, 2) as u16 as i16, -5);
    assert_eq!(int_at(r, args[1].offset, 1), 300 % 256);
    // BEGIN runs in this thread (BPF_PROG_TEST_RUN): comm is the thread's name.
    let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    let got = &r[args[2].offset..args[2].offset + 16];
    let end = got.iter().position(|&b| b == 0).unwrap();
    assert_eq!(std::str::from_utf8(&got[..end]).unwrap(), comm.trim_end());
    let inet = &r[args[3].offset..args[3].offset + 24];
    assert_eq!(int_at(inet, 0, 8), 2, "AF_INET");
    assert_eq!(&inet[8..12], &[127, 0, 0, 1]);
    assert_eq!(&r[args[4].offset..args[4].offset + 4], b"lit\0");
    assert_eq!(int_at(r, args[5].offset, 8), std::process::id() as u64);
    assert_eq!(records[1].len(), 8);
    assert_eq!(int_at(&records[1], 0, 8), 1, "time event");
    assert_eq!(int_at(&records[2], 0, 8), 2, "exit event");
}

#[test]
fn tracepoint_args_are_read_from_the_context() {
    if skip_reason("tracepoint_args_are_read_from_the_context").is_some() {
        return;
    }
    if !Path::new("/sys/kernel/tracing/events/sched/sched_process_exec").exists() {
        support::skip(
            "tracepoint_args_are_read_from_the_context",
            "tracefs not mounted at /sys/kernel/tracing",
        );
        return;
    }
    let src = "tracepoint:sched:sched_process_exec\n/args->pid == pid/\n{\n  printf(\"%d %d %s\\n\", args->pid, pid, comm);\n  exit();\n}\n";
    let opts = RunOptions {
        dry_run: false,
        command: Some("/bin/true".into()),
        ..Default::default()
    };
    let (catalog, records) = run(src, &opts);
    assert_eq!(records.len(), 2, "one exec seen, then exit");
    let EventKind::Printf { args, .. } = &catalog.events[0] else {
        panic!()
    };
    let r = &records[0];
    let (tp_pid, pid) = (int_at(r, args[0].offset, 4), int_at(r, args[1].offset, 8));
    assert_eq!(tp_pid, pid, "args->pid is the exec'ing process");
    assert_ne!(pid, std::process::id() as u64);
    assert_ne!(r[args[2].offset], 0, "comm is set");
}

#[test]
fn syscall_tracepoint_args_come_from_the_format_file() {
    let test = "syscall_tracepoint_args_come_from_the_format_file";
    if skip_reason(test).is_some() {
        return;
    }
    if !Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_openat").exists() {
        support::skip(
            test,
            "tracefs (with syscall tracepoints) not mounted at /sys/kernel/tracing",
        );
        return;
    }
    // Only this process's opens: the -p filter, then exit() after the first.
    let me = std::process::id();
    let src = "tracepoint:syscalls:sys_enter_openat\n{\n  printf(\"%d %d\\n\", args->dfd, args->flags);\n  exit();\n}\n";
    let btf = Btf::load(Path::new("/sys/kernel/btf/vmlinux")).expect("kernel BTF");
    let compiled = compile(
        "test.bt",
        src,
        &btf,
        &CompileOptions {
            pid_filter: Some(me),
            ..Default::default()
        },
    );
    let opener = std::thread::spawn(|| {
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let _ = std::fs::File::open("/proc/self/status");
        }
    });
    let mut records = Records::default();
    runtime::run(&compiled, &RunOptions::default(), &mut records).unwrap_or_else(|e| panic!("{e}"));
    let EventKind::Printf { args, .. } = &compiled.events.events[0] else {
        panic!()
    };
    let r = &records.0[0];
    // As bpftrace 0.17 prints it (measured: `-100 524288`): the declared `int`s.
    assert_eq!(
        args[0].value,
        ValueLayout::Int {
            size: 4,
            signed: true
        },
        "int dfd"
    );
    assert_eq!(int_at(r, args[0].offset, 4) as u32 as i32, -100, "AT_FDCWD");
    assert_ne!(
        int_at(r, args[1].offset, 4) & libc_o_cloexec(),
        0,
        "std opens with O_CLOEXEC"
    );
    drop(opener);
}

/// `O_CLOEXEC` on x86-64 Linux.
fn libc_o_cloexec() -> u64 {
    0o2000000
}

#[test]
fn maps_keep_state_and_read_zero_when_absent() {
    if skip_reason("maps_keep_state_and_read_zero_when_absent").is_some() {
        return;
    }
    let src = r#"BEGIN {
  @n[7] = -3;
  @n[7] += 10;
  @s["a"] = "xyz";
  @s["b"] = "q";
  delete(@s["b"]);
  printf("%d %d %s|%s|\n", @n[7], @n[8], @s["a"], @s["b"]);
  exit();
}
END { clear(@n); clear(@s); }
"#;
    let (catalog, records) = run(src, &RunOptions::default());
    let EventKind::Printf { args, .. } = &catalog.events[0] else {
        panic!()
    };
    let r = &records[0];
    assert_eq!(int_at(r, args[0].offset, 8) as i64, 7);
    assert_eq!(int_at(r, args[1].offset, 8), 0, "absent key reads 0");
    assert_eq!(&r[args[2].offset..args[2].offset + 4], b"xyz\0");
    assert_eq!(r[args[3].offset], 0, "deleted key reads \"\"");
}

/// The runtime reads `/proc/kallsyms` ahead of the first print exactly when something
/// printed is a kernel symbol or stack, wherever it sits (key, value, tuple, printf).
#[test]
fn compiled_says_when_it_prints_kernel_symbols() {
    let btf = pinned_btf();
    let opts = CompileOptions::default();
    let reads = |src: &str| compile("t.bt", src, btf, &opts).reads_kernel_symbols();
    for src in [
        "BEGIN { @[ksym(1)] = count(); }",
        "BEGIN { @[comm, ksym(1)] = count(); }",
        "BEGIN { @x = ksym(1); }",
        "BEGIN { printf(\"%s\\n\", ksym(1)); }",
        "tracepoint:sched:sched_switch { @[kstack] = count(); }",
        "tracepoint:sched:sched_switch { printf(\"%s\", kstack(3)); }",
    ] {
        assert!(reads(src), "{src}");
    }
    for src in [
        "BEGIN { @[1] = count(); printf(\"%d\\n\", 2); }",
        "tracepoint:sched:sched_switch { @[ustack] = count(); }",
        "BEGIN { @x = (1, \"a\"); }",
    ] {
        assert!(!reads(src), "{src}");
    }
}
