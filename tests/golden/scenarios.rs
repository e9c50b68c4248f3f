//! The golden scenarios: each is an accept workload (shell code run inside
//! the VM; `acceptload` is tests/vm/acceptload.c) and how many accepts it
//! makes. Every scenario runs once per kernel with bpftrace and rbt (all
//! script versions) tracing it at the same time. To add one: append here,
//! run the suite, review and commit the new snapshots/vm-bpftrace-*.snap.

pub struct Scenario {
    /// Also the snapshot name (snapshots/vm-bpftrace-<name>.snap).
    pub name: &'static str,
    /// Accept lines every tracer must print.
    pub accepts: usize,
    /// Shell code run in the VM; its stdout lists each accept as
    /// "accept PID RPORT LPORT", the ground truth for events and their order.
    pub workload: &'static str,
}

/// Pinning the workload (`-c 1`) keeps all events on one CPU, so per-CPU
/// buffers deliver them in accept order for both tracers.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ipv4-loopback",
        accepts: 5,
        workload: "acceptload -c 1 -n 5 -l 4:8080:128",
    },
    Scenario {
        name: "ipv6-loopback",
        accepts: 5,
        workload: "acceptload -c 1 -n 5 -l 6:8081:128",
    },
    Scenario {
        // v6 listener on ::, IPv4 client: addresses print as ::ffff:127.0.0.1
        name: "ipv4-mapped",
        accepts: 5,
        workload: "acceptload -c 1 -n 5 -l m:8082:128",
    },
    Scenario {
        // Batches of 8 (or the backlog) queued before accepting: BL counts
        // the queue, and listen(10000) is capped at net.core.somaxconn.
        name: "ports-backlogs",
        accepts: 32,
        workload: "acceptload -c 1 -n 8 -B 8 -l 4:8083:7 -l 4:8084:3 -l 6:8085:1 -l 4:8086:10000",
    },
    Scenario {
        name: "burst-1000",
        accepts: 1000,
        workload: "acceptload -c 1 -n 1000 -B 64 -l 4:8087:128",
    },
    Scenario {
        // A forked child renamed with prctl, then an exec of a long-named
        // copy: the kernel keeps 15 chars of COMM, wider than its %-14s.
        name: "long-comm",
        accepts: 6,
        workload: "acceptload -c 1 -n 3 -F -N a-very-long-process-name -l 4:8088:128 && \
                   cp /bin/acceptload /tmp/acceptload-renamed-long && \
                   /tmp/acceptload-renamed-long -c 1 -n 3 -l 6:8089:128",
    },
    Scenario {
        // Connections established but never accepted: header only.
        name: "no-accepts",
        accepts: 0,
        workload: "acceptload -c 1 -x -n 3 -l 4:8090:8",
    },
];

/// A map scenario: bpftrace and rbt run the same script (in /bin) at once on a workload;
/// the maps they print at exit are compared (tests/golden/maps.rs).
pub struct MapScenario {
    pub name: &'static str,
    pub script: &'static str,
    /// Shell code run in the VM.
    pub workload: &'static str,
    /// The map key whose events only the workload makes: both tracers see all of them.
    pub workload_key: &'static str,
}

/// issue 12's tutorial check: vfs_read latency histograms per comm. Each `dd` of the
/// same file makes the same reads (busybox `cat` would use sendfile, not read), so both
/// tracers count the same `@ns[dd]` events; the latencies differ between the tracers.
pub const MAP_SCENARIOS: &[MapScenario] = &[MapScenario {
    name: "maps-vfs_read-hist",
    script: "/bin/vfsread.bt",
    workload: "for i in 1 2 3 4 5 6 7 8 9 10; do dd if=/bin/golden.sh of=/dev/null bs=512 2>/dev/null; done",
    workload_key: "@ns[dd]",
}];
