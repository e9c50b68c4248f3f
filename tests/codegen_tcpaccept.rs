//! tcpaccept.bt for real: the compiled kretprobe attached to inet_csk_accept sees this
//! process accept loopback connections, and its records carry what the kernel's socket
//! holds (addresses, ports in host order, backlog). Needs root, BPF and kprobes: the
//! host kernels of development and CI have no kprobes, so there it skips with the
//! reason; it runs in the 6.1/6.12 VMs (see /work/shared/tools/vm).

mod codegen_common;
mod support;

use codegen_common::*;
use rbt::btf::Btf;
use rbt::codegen::CompileOptions;
use rbt::event::{EventCatalog, EventKind};
use rbt::runtime::{self, EventSink, Next, RunOptions};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

#[derive(Default)]
struct Records(Vec<(usize, Vec<u8>)>);

impl EventSink for Records {
    fn attached(&mut self, _probes: usize) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _catalog: &EventCatalog, record: &[u8]) -> io::Result<Next> {
        let id = u64::from_le_bytes(record[..8].try_into().unwrap()) as usize;
        self.0.push((id, record.to_vec()));
        Ok(Next::Continue)
    }
    fn lost(&mut self, count: u64) -> io::Result<()> {
        panic!("{count} events lost")
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn tcpaccept_reports_loopback_accepts() {
    let test = "tcpaccept_reports_loopback_accepts";
    if skip_reason(test).is_some() {
        return;
    }
    if !support::kernel_has_kprobes() {
        // Not a CI failure: CI kernels have no kprobes (the VM run covers this test).
        eprintln!("SKIP {test}: kernel without kprobes (CONFIG_KPROBES)");
        return;
    }
    let file = "tests/data/upstream/v0.17.0.bt";
    let btf = Btf::load(Path::new("/sys/kernel/btf/vmlinux")).expect("kernel BTF");
    let me = std::process::id();
    let compiled = compile(
        file,
        &read(file),
        &btf,
        &CompileOptions {
            pid_filter: Some(me),
            ..Default::default()
        },
    );

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The `-c` command starts once every probe is attached: it tells the acceptor so.
    let marker = std::env::temp_dir().join(format!("rbt-tcpaccept-attached-{me}"));
    let _ = std::fs::remove_file(&marker);
    let wait_for = marker.clone();
    let acceptor = std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || {
            let start = std::time::Instant::now();
            while !wait_for.exists() {
                assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "probes never attached"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (_conn, peer) = listener.accept().unwrap();
            (client.local_addr().unwrap().port(), peer.port())
        })
        .unwrap();
    let mut records = Records::default();
    // `-c` runs no shell (as in bpftrace): the two steps go in a script.
    let script = marker.with_extension("sh");
    std::fs::write(&script, format!("touch {}; sleep 3\n", marker.display())).unwrap();
    let command = format!("/bin/sh {}", script.display());
    let opts = RunOptions {
        dry_run: false,
        command: Some(command),
        ..Default::default()
    };
    runtime::run(&compiled, &opts, &mut records).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(&script);
    let (client_port, _) = acceptor.join().unwrap();

    let layout = |id: usize| match &compiled.events.events[id] {
        EventKind::Printf { args, .. } => args.clone(),
        other => panic!("event {id}: {other:?}"),
    };
    let ids: Vec<usize> = records.0.iter().map(|(id, _)| *id).collect();
    // BEGIN's three header lines, then time + three printfs for the one accept.
    assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6], "records: {ids:?}");
    let rec = |id: usize| &records.0.iter().find(|(i, _)| *i == id).unwrap().1;

    let who = layout(4);
    assert_eq!(int_at(rec(4), who[0].offset, 8), me as u64, "pid");
    assert_eq!(
        &rec(4)[who[1].offset..who[1].offset + 9],
        b"acceptor\0",
        "comm"
    );

    let addr = layout(5);
    let r = rec(5);
    for inet in [addr[0].offset, addr[2].offset] {
        assert_eq!(int_at(r, inet, 8), 2, "AF_INET");
        assert_eq!(&r[inet + 8..inet + 12], &[127, 0, 0, 1]);
    }
    assert_eq!(
        int_at(r, addr[1].offset, 2),
        client_port as u64,
        "remote port (bswapped)"
    );
    assert_eq!(int_at(r, addr[3].offset, 2), port as u64, "local port");

    let backlog = layout(6);
    assert_eq!(
        int_at(rec(6), backlog[0].offset, 4),
        0,
        "accept queue drained"
    );
    assert!(int_at(rec(6), backlog[1].offset, 4) > 0, "listen backlog");
}
