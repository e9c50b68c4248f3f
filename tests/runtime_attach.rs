//! Attaching hand-built programs: a tracepoint that fires from this test, kprobes (or
//! the error naming the missing kernel option), and unknown tracepoints.

mod runtime_common;
mod support;

use runtime_common::*;
use std::os::fd::AsFd;
use std::path::Path;

use rbt::codegen::ProgramType;
use rbt::runtime::{self, Attacher, Next, RingBuf};

fn records_from(ring: &mut RingBuf, tgid: u32) -> Vec<Record> {
    let mut out = Vec::new();
    ring.consume(|r| {
        let rec = Record::parse(r);
        if rec.tgid == tgid {
            out.push(rec);
        }
        Ok::<_, ()>(Next::Continue)
    })
    .unwrap();
    out
}

/// One loopback connection, accepted: `inet_csk_accept` returns once.
fn accept_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let _server = listener.accept().unwrap();
}

#[test]
fn tracepoint_event_received_until_detached() {
    if skip_reason("tracepoint_event_received_until_detached").is_some() {
        return;
    }
    let tp = point("tracepoint", &["syscalls", "sys_enter_getpid"]);
    let loaded = load_recorder("tp_getpid", ProgramType::Tracepoint, &tp, 1);
    let mut ring = RingBuf::new(loaded.maps[0].as_fd()).unwrap();
    let me = std::process::id();
    let attachment = Attacher::new()
        .attach(&tp, loaded.programs[0].as_fd())
        .unwrap_or_else(|e| panic!("{e}"));

    for _ in 0..3 {
        assert_eq!(std::process::id(), me); // getpid(2): fires the tracepoint
    }
    let got = records_from(&mut ring, me);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|r| r.event_id == 1));

    drop(attachment);
    assert_eq!(std::process::id(), me);
    assert_eq!(
        records_from(&mut ring, me),
        vec![],
        "no events after detaching"
    );
}

#[test]
fn kretprobe_attaches_or_names_missing_config() {
    if skip_reason("kretprobe_attaches_or_names_missing_config").is_some() {
        return;
    }
    let kp = point("kretprobe", &["inet_csk_accept"]);
    let loaded = load_recorder("kr_accept", ProgramType::Kprobe, &kp, 1);
    let result = Attacher::new().attach(&kp, loaded.programs[0].as_fd());
    if support::kernel_has_kprobes() {
        let attachment =
            result.unwrap_or_else(|e| panic!("kernel has kprobes, attach failed: {e}"));
        let mut ring = RingBuf::new(loaded.maps[0].as_fd()).unwrap();
        accept_once();
        let got = records_from(&mut ring, std::process::id());
        assert_eq!(got.len(), 1, "one accept, one kretprobe hit: {got:?}");
        drop(attachment);
    } else {
        let err = result.expect_err("no kprobes on this kernel");
        assert_eq!(
            err.to_string(),
            "cannot attach kretprobe:inet_csk_accept: this kernel has no kprobe support (CONFIG_KPROBES is not set)"
        );
    }
}

#[test]
fn unknown_tracepoint_is_named() {
    if skip_reason("unknown_tracepoint_is_named").is_some() {
        return;
    }
    let tp = point("tracepoint", &["sock", "no_such_event"]);
    let loaded = load_recorder("tp_none", ProgramType::Tracepoint, &tp, 1);
    let err = Attacher::new()
        .attach(&tp, loaded.programs[0].as_fd())
        .expect_err("no such tracepoint");
    assert_eq!(
        err.to_string(),
        "cannot attach tracepoint:sock:no_such_event: no such tracepoint in this kernel"
    );
}

/// The tracefs `kprobe_events` path (kernels without the kprobe PMU): stale events of
/// dead rbt processes are removed, ours works, and is removed again when detached.
#[test]
fn tracefs_kprobe_events_are_created_and_removed() {
    if skip_reason("tracefs_kprobe_events_are_created_and_removed").is_some() {
        return;
    }
    let kprobe_events = [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.exists());
    let Some(kprobe_events) = kprobe_events else {
        if std::env::var_os("CI").is_some()
            && Path::new("/sys/bus/event_source/devices/kprobe").exists()
        {
            panic!("kprobe PMU but no kprobe_events");
        }
        eprintln!("SKIP tracefs_kprobe_events_are_created_and_removed: kernel without kprobe_events (CONFIG_KPROBE_EVENTS)");
        return;
    };
    let rbt_events = || -> Vec<String> {
        let text = std::fs::read_to_string(kprobe_events).unwrap();
        text.lines()
            .filter(|l| l.contains("/rbt_"))
            .map(str::to_string)
            .collect()
    };
    // A leftover of an rbt that died (pid 4194304 is above PID_MAX_LIMIT: never alive).
    std::fs::OpenOptions::new()
        .append(true)
        .open(kprobe_events)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, b"p:kprobes/rbt_4194304_0 inet_csk_accept\n")
        })
        .unwrap();
    assert_eq!(rbt_events().len(), 1);

    let kp = point("kretprobe", &["inet_csk_accept"]);
    let loaded = load_recorder("kr_accept", ProgramType::Kprobe, &kp, 1);
    let mut ring = RingBuf::new(loaded.maps[0].as_fd()).unwrap();
    let attachment = Attacher::with_tracefs_kprobes()
        .attach(&kp, loaded.programs[0].as_fd())
        .unwrap_or_else(|e| panic!("{e}"));
    let ours = rbt_events();
    assert_eq!(ours.len(), 1, "stale event removed, ours added: {ours:?}");
    // Listed as `r<maxactive>:kprobes/rbt_<pid>_<n> inet_csk_accept`.
    let ours_prefix = format!(":kprobes/rbt_{}_", std::process::id());
    assert!(
        ours[0].starts_with('r') && ours[0].contains(&ours_prefix),
        "{ours:?}"
    );

    accept_once();
    assert_eq!(
        records_from(&mut ring, std::process::id()).len(),
        1,
        "one accept, one hit"
    );

    drop(attachment);
    assert_eq!(
        rbt_events(),
        Vec::<String>::new(),
        "our event removed at detach"
    );
}

#[test]
fn missing_kernel_function_is_named() {
    if skip_reason("missing_kernel_function_is_named").is_some() {
        return;
    }
    let kp = point("kprobe", &["rbt_no_such_function"]);
    let loaded = load_recorder("k_none", ProgramType::Kprobe, &kp, 1);
    let err = Attacher::new()
        .attach(&kp, loaded.programs[0].as_fd())
        .expect_err("no such function")
        .to_string();
    if Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        assert_eq!(err, "cannot attach kprobe:rbt_no_such_function: kernel function rbt_no_such_function not found");
    } else {
        assert!(err.contains("CONFIG_KPROBES is not set"), "{err}");
    }
}

/// With tracefs unmounted (in a private mount namespace), attaching a tracepoint mounts
/// it at /sys/kernel/tracing. The attach runs in a child copy of this test.
#[test]
fn tracepoint_attach_mounts_tracefs() {
    const CHILD: &str = "RBT_TEST_TRACEFS_CHILD";
    let tp = point("tracepoint", &["syscalls", "sys_enter_getpid"]);
    if std::env::var_os(CHILD).is_some() {
        assert!(
            !Path::new("/sys/kernel/tracing/events").exists(),
            "tracefs still mounted"
        );
        let loaded = load_recorder("tp_getpid", ProgramType::Tracepoint, &tp, 1);
        let _a = Attacher::new()
            .attach(&tp, loaded.programs[0].as_fd())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            Path::new("/sys/kernel/tracing/events").exists(),
            "tracefs mounted by the attacher"
        );
        println!("CHILD OK");
        return;
    }
    if skip_reason("tracepoint_attach_mounts_tracefs").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; \
         umount /sys/kernel/debug 2>/dev/null; exec '{}' tracepoint_attach_mounts_tracefs --exact --nocapture",
        exe.display()
    );
    let mut unshare = std::process::Command::new("unshare");
    unshare
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env(CHILD, "1");
    let Some(out) = support::output_or_skip("tracepoint_attach_mounts_tracefs", &mut unshare)
    else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD OK"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pre-5.15 attach path (`PERF_EVENT_IOC_SET_BPF` + enable, no BPF link), which
/// the attacher falls back to when `BPF_LINK_CREATE` does not know perf events.
#[test]
fn perf_event_ioctl_attach_path() {
    if skip_reason("perf_event_ioctl_attach_path").is_some() {
        return;
    }
    let tp = point("tracepoint", &["syscalls", "sys_enter_getpid"]);
    let loaded = load_recorder("tp_getpid", ProgramType::Tracepoint, &tp, 4);
    let mut ring = RingBuf::new(loaded.maps[0].as_fd()).unwrap();
    let tracefs = runtime::tracefs_root().unwrap_or_else(|e| panic!("{e}"));
    let id_path = tracefs.join("events/syscalls/sys_enter_getpid/id");
    let id: u64 = std::fs::read_to_string(id_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let me = std::process::id();
    let perf = rbt::sys::perf_event_open(rbt::abi::perf_type::TRACEPOINT, id, None)
        .expect("perf_event_open");
    rbt::sys::perf_event_set_bpf(perf.as_fd(), loaded.programs[0].as_fd()).expect("SET_BPF");
    rbt::sys::perf_event_enable(perf.as_fd()).expect("ENABLE");
    assert_eq!(std::process::id(), me); // getpid(2), traced once
    let got = records_from(&mut ring, me);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].event_id, 4);
    drop(perf);
    assert_eq!(std::process::id(), me);
    assert_eq!(
        records_from(&mut ring, me),
        vec![],
        "detached when the perf fd closed"
    );
}

/// What `detach_all` waits on before its barrier: while a link is open, the
/// tracepoint's program list (`PERF_EVENT_IOC_QUERY_BPF`) holds the link's program
/// (`BPF_OBJ_GET_INFO_BY_FD` on the link); once the link is closed, it does not.
#[test]
fn tracepoint_lists_the_linked_program_until_unlinked() {
    if skip_reason("tracepoint_lists_the_linked_program_until_unlinked").is_some() {
        return;
    }
    let tp = point("tracepoint", &["syscalls", "sys_enter_getpid"]);
    let loaded = load_recorder("tp_getpid_q", ProgramType::Tracepoint, &tp, 5);
    let tracefs = runtime::tracefs_root().unwrap_or_else(|e| panic!("{e}"));
    let id_path = tracefs.join("events/syscalls/sys_enter_getpid/id");
    let id: u64 = std::fs::read_to_string(id_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let perf = rbt::sys::perf_event_open(rbt::abi::perf_type::TRACEPOINT, id, None)
        .expect("perf_event_open");
    let link = rbt::sys::link_create(
        loaded.programs[0].as_fd(),
        perf.as_fd(),
        rbt::abi::BPF_PERF_EVENT,
        0,
    )
    .expect("link_create");
    let prog = rbt::sys::link_prog_id(link.as_fd()).expect("link info");
    assert_ne!(prog, 0);
    let listed = rbt::sys::tracepoint_prog_ids(perf.as_fd()).expect("query");
    assert!(listed.contains(&prog), "{prog} not in {listed:?}");
    drop(link);
    let listed = rbt::sys::tracepoint_prog_ids(perf.as_fd()).expect("query");
    assert!(!listed.contains(&prog), "{prog} still in {listed:?}");
}
