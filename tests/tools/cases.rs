//! The 38 tools of Debian's bpftrace 0.17 package (`/usr/sbin/*.bt`), each with where
//! it can run, the workload that makes it print something real, and what of its output
//! varies between two tracers watching the same events.
//!
//! Workloads are `sh` scripts run in a scratch directory once both tracers are live.
//! Programs they run are reached through symlinks named `rbtmark-*` (a process's comm is
//! the name it was exec'd by), so the tools' lines for them are told apart from the
//! rest of the machine's.

use super::normalize::{Rules, CLOCK, HIST_COUNTS, MAP_VALUE};

/// Where a tool's probes can be served.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Site {
    /// This host (tracepoints, uprobes, interval, profile, software events).
    Host,
    /// Only a kernel with kprobes: the VM of tests/vm.
    Vm,
}

pub struct Tool {
    pub name: &'static str,
    pub site: Site,
    /// Run by `sh` in the scratch directory once both tracers print their headers.
    pub workload: &'static str,
    pub rules: Rules,
    /// How long the tools run after the workload (interval tools need their ticks).
    pub settle_ms: u64,
    /// Why a difference is inherent, for docs/TOOLS.md ("" when nothing is masked).
    pub masked: &'static str,
}

const fn host(
    name: &'static str,
    workload: &'static str,
    rules: Rules,
    masked: &'static str,
) -> Tool {
    Tool {
        name,
        site: Site::Host,
        workload,
        rules,
        settle_ms: 500,
        masked,
    }
}

/// A kprobe tool, run in the VM (busybox userland; `acceptload` from tests/vm and the
/// workload program `rbtmark-wl` are in its /bin). Busybox copied to
/// `/tmp/busybox-rbtmark` runs the applet its first argument names (its own name starts
/// with `busybox`) under a comm of the workload's.
const fn vm(
    name: &'static str,
    workload: &'static str,
    rules: Rules,
    masked: &'static str,
) -> Tool {
    Tool {
        name,
        site: Site::Vm,
        workload,
        rules,
        settle_ms: 0,
        masked,
    }
}

/// Lines naming the workload, sorted; with the tool's `header` lines on top.
const fn snoop(header: usize, mask: &'static [(&'static str, &'static str)]) -> Rules {
    Rules {
        keep: Some("rbtmark"),
        header,
        mask,
        sort: true,
        collapse: false,
        maps_keep: None,
        sort_maps: false,
    }
}

/// Everything is system-wide: only the layout can be compared.
const fn layout(header: usize, mask: &'static [(&'static str, &'static str)]) -> Rules {
    Rules {
        keep: None,
        header,
        mask,
        sort: false,
        collapse: true,
        maps_keep: None,
        sort_maps: false,
    }
}

/// A hist/lhist bucket label (`[4, 8)`, `[1K, 2K)`, `(..., 0)`).
const BUCKET: (&str, &str) = (r"^[\[(][^|]*\|BAR\|$", "BUCKET N |BAR|");
/// Any map entry line with a plain value.
const ANY_ENTRY: (&str, &str) = (r"^@.*: -?\d+$", "@ENTRY: N");
/// A TLS handshake and one HTTP request through openssl's own client and server. Each
/// openssl lingers after exiting (tests/data/workload/linger.c), so the functions the
/// tools print resolve to names under both tracers, not by chance to addresses.
const SSL_WORKLOAD: &str = concat!(
    "gcc -shared -fPIC -o linger.so ",
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/workload/linger.c
ln -s /usr/bin/openssl rbtmark-ssl
L=$PWD/linger.so
LD_PRELOAD=$L ./rbtmark-ssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -subj /CN=rbt -days 1 2>/dev/null
LD_PRELOAD=$L ./rbtmark-ssl s_server -accept 127.0.0.1:44330 -cert c.pem -key k.pem -naccept 1 -www >/dev/null 2>&1 &
sleep 0.5
printf 'GET / HTTP/1.0\\r\\n\\r\\n' | LD_PRELOAD=$L ./rbtmark-ssl s_client -connect 127.0.0.1:44330 -quiet >/dev/null 2>&1
wait"
);
/// Everything but the tool's header lines, exactly.
const EXACT_AFTER_HEADER: Rules = Rules {
    keep: None,
    header: 2,
    mask: &[],
    sort: false,
    collapse: false,
    maps_keep: None,
    sort_maps: false,
};
/// Every number.
const NUMBERS: (&str, &str) = (r"\d+(\.\d+)?", "N");

pub static TOOLS: &[Tool] = &[
    host(
        "bashreadline",
        "printf 'echo rbtmark-readline\\nexit\\n' | script -qec 'bash --norc -i' /dev/null >/dev/null",
        snoop(2, &[CLOCK]),
        "TIME",
    ),
    vm(
        "biolatency",
        "true",
        layout(1, &[HIST_COUNTS, BUCKET]),
        "bucket counts and set (no disk in the VM)",
    ),
    vm(
        "biosnoop",
        "true",
        snoop(2, &[]),
        "",
    ),
    vm(
        "biostacks",
        "true",
        layout(1, &[HIST_COUNTS, BUCKET]),
        "bucket counts and set",
    ),
    host(
        "bitesize",
        "ln -s /bin/dd rbtmark-dd && ./rbtmark-dd if=/dev/zero of=rbt-blocks bs=4k count=16 oflag=direct 2>/dev/null",
        // Only the workload's hist: the disk's other writers differ between runs.
        Rules {
            keep: None,
            header: 2,
            mask: &[],
            sort: false,
            collapse: false,
            maps_keep: Some("rbtmark"),
            sort_maps: false,
        },
        "other processes' hists dropped",
    ),
    vm(
        "capable",
        "cp /bin/busybox /tmp/busybox-rbtmark; touch /tmp/capf; /tmp/busybox-rbtmark chown 1 /tmp/capf",
        snoop(2, &[CLOCK]),
        "TIME",
    ),
    host(
        "cpuwalk",
        "timeout 1 sh -c 'while :; do :; done' & timeout 1 sh -c 'while :; do :; done'; wait",
        layout(2, &[HIST_COUNTS]),
        "bucket counts (samples)",
    ),
    vm(
        "dcsnoop",
        "cp /bin/busybox /tmp/busybox-rbtmark; /tmp/busybox-rbtmark ls /tmp/rbtmark-nonexistent 2>/dev/null; true",
        // Lookups in flight at exit are left in @fname: which ones is timing.
        Rules {
            maps_keep: Some("rbtmark"),
            ..snoop(2, &[(r"^\d+ +", "MS ")])
        },
        "TIME(ms)",
    ),
    host(
        "execsnoop",
        "ln -s /bin/sh rbtmark-sh && ./rbtmark-sh -c '/bin/echo rbtmark-exec a \"b c\" >/dev/null'",
        // Only the workload's lines: another process's arguments may name rbtmark too.
        Rules { keep: Some("rbtmark-(sh|exec)"), ..snoop(2, &[(r"^\d+ +", "MS ")]) },
        "TIME(ms) (time since the tracer started)",
    ),
    host(
        "gethostlatency",
        "ln -s /usr/bin/getent rbtmark-host && ./rbtmark-host ahosts localhost >/dev/null",
        snoop(2, &[CLOCK, (r"rbtmark-host +\d+", "rbtmark-host LAT")]),
        "TIME, LATms",
    ),
    host(
        "killsnoop",
        "ln -s /bin/sh rbtmark-kill && ./rbtmark-kill -c 'sleep 5 & kill -0 $!; kill $!; kill -9 999999 2>/dev/null; wait'",
        snoop(2, &[CLOCK]),
        "TIME",
    ),
    host("loads", "sleep 1.2", layout(2, &[CLOCK, NUMBERS]), "the load averages, TIME"),
    vm(
        "mdflush",
        "mdadm --create /dev/md0 --run --level=1 --raid-devices=2 /dev/ram1 /dev/ram2 >/dev/null 2>&1; dd if=/dev/zero of=/dev/md0 bs=4k count=2 oflag=direct conv=fsync 2>/dev/null; mdadm --stop /dev/md0 >/dev/null 2>&1",
        Rules { keep: Some(" md0$"), header: 2, mask: &[CLOCK], sort: true, collapse: false, maps_keep: None, sort_maps: false },
        "TIME",
    ),
    host(
        "naptime",
        "ln -s /usr/bin/python3 rbtmark-nap && ./rbtmark-nap -c 'import ctypes; t=(ctypes.c_long*2)(0,20000000); ctypes.CDLL(None).syscall(35, t, None)'",
        snoop(2, &[CLOCK]),
        "TIME",
    ),
    vm(
        "oomkill",
        "true",
        snoop(1, &[]),
        "",
    ),
    host(
        "opensnoop",
        "cat /tmp/rbtmark-open-1 rbtmark-open-2 2>/dev/null; : > rbtmark-open-3; cat rbtmark-open-3",
        snoop(2, &[]),
        "",
    ),
    host(
        "pidpersec",
        "for i in 1 2 3 4 5; do /bin/true; done; sleep 1.2",
        layout(2, &[CLOCK, (r"@: \d+$", "@: N")]),
        "TIME, the system-wide rate",
    ),
    host("runqlat", "sleep 0.3", layout(2, &[HIST_COUNTS, BUCKET]), "bucket counts and set"),
    host("runqlen", "sleep 0.3", layout(2, &[HIST_COUNTS, BUCKET]), "bucket counts and set"),
    host(
        "setuids",
        "ln -s /usr/bin/setpriv rbtmark-uid && ./rbtmark-uid --reuid=0 --regid=0 --clear-groups true",
        snoop(2, &[CLOCK]),
        "TIME",
    ),
    host(
        "ssllatency",
        SSL_WORKLOAD,
        layout(
            1,
            &[
                HIST_COUNTS,
                BUCKET,
                (r"^(@\w+)\[.*\]: $", "$1[KEY]: "),
                (r"average \d+, total \d+$", "average LAT, total LAT"),
            ],
        ),
        "counts and latency buckets, stats' average and total",
    ),
    host(
        "sslsnoop",
        SSL_WORKLOAD,
        snoop(2, &[(r"^\d+ +(\d+ +\S+) +\d+ ", "US $1 LAT ")]),
        "TIME(us), LAT(us)",
    ),
    host(
        "statsnoop",
        "stat /tmp/rbtmark-stat-1 2>/dev/null; ls rbtmark-stat-2 2>/dev/null; :",
        snoop(2, &[]),
        "",
    ),
    vm(
        "swapin",
        "true",
        // Its once-a-second time stamps tick as often as each tracer ran: only the
        // counts (`@[comm, pid]`) are events.
        Rules {
            keep: Some("^@"),
            header: 1,
            mask: &[],
            sort: true,
            collapse: false,
            maps_keep: None,
            sort_maps: false,
        },
        "the once-a-second TIME lines (their number)",
    ),
    host(
        "syncsnoop",
        "ln -s /bin/sync rbtmark-sync && ./rbtmark-sync",
        snoop(2, &[CLOCK]),
        "TIME",
    ),
    host(
        "syscount",
        "ln -s /bin/ls rbtmark-ls && ./rbtmark-ls >/dev/null",
        layout(2, &[ANY_ENTRY]),
        "keys and counts (system-wide top 10)",
    ),
    vm(
        "tcpaccept",
        "acceptload -c 1 -n 3 -l 4:8110:128",
        snoop(3, &[CLOCK]),
        "TIME",
    ),
    vm(
        "tcpconnect",
        "acceptload -c 1 -n 3 -l 4:8111:128",
        snoop(4, &[CLOCK]),
        "TIME",
    ),
    host(
        "tcpdrop",
        "python3 -c 'import socket; s=socket.socket(); s.settimeout(1)\ntry: s.connect((\"127.0.0.1\", 9))\nexcept OSError: pass'",
        snoop(2, &[CLOCK]),
        "TIME",
    ),
    vm(
        "tcplife",
        "acceptload -c 1 -n 3 -l 4:8112:128",
        Rules { keep: Some("acceptload"), header: 2, mask: &[(r" \d+$", " MS")], sort: true, collapse: false, maps_keep: None, sort_maps: false },
        "MS",
    ),
    vm(
        "tcpretrans",
        "acceptload -c 1 -n 3 -l 4:8113:128",
        snoop(3, &[CLOCK]),
        "TIME",
    ),
    vm(
        "tcpsynbl",
        "acceptload -c 1 -n 3 -l 4:8114:128",
        EXACT_AFTER_HEADER,
        "",
    ),
    host(
        "threadsnoop",
        "ln -s /usr/bin/python3 rbtmark-thr && ./rbtmark-thr -c 'import threading; t=threading.Thread(target=len, args=[()]); t.start(); t.join()'",
        snoop(2, &[CLOCK]),
        "",
    ),
    vm(
        "undump",
        "true",
        snoop(3, &[]),
        "",
    ),
    vm(
        "vfscount",
        "rbtmark-wl",
        layout(2, &[ANY_ENTRY]),
        "keys and counts (system-wide)",
    ),
    vm(
        "vfsstat",
        "rbtmark-wl; sleep 1.2",
        layout(2, &[CLOCK, NUMBERS, (r"^@\[vfs_\w+\]: N$", "@[vfs_*]: N")]),
        "TIME; the functions and counts of each second (system-wide, in each tracer's own one-second windows)",
    ),
    host(
        "writeback",
        "dd if=/dev/zero of=rbt-dirty bs=64k count=16 2>/dev/null; sync",
        Rules {
            keep: Some(" sync "),
            header: 2,
            mask: &[CLOCK, NUMBERS],
            sort: true,
            collapse: true,
            maps_keep: None,
            sort_maps: false,
        },
        "TIME, DEVICE, PAGES, ms; only the workload's `sync` writebacks kept",
    ),
    vm(
        "xfsdist",
        "mkfs.xfs -q -f /dev/ram0 && mkdir -p /mnt/x && mount -t xfs /dev/ram0 /mnt/x && for i in 1 2 3; do echo hi$i >/mnt/x/f$i; cat /mnt/x/f$i >/dev/null; done; umount /mnt/x",
        layout(2, &[HIST_COUNTS, BUCKET]),
        "bucket counts and set",
    ),
];

/// Scripts of the project's own that run in the VM like the tools (tests/vm/NAME.bt).
pub static VM_SCRIPTS: &[Tool] = &[
    vm(
        "kprobe_offset",
        "rbtmark-wl",
        EXACT_AFTER_HEADER_SORTED_MAPS,
        "",
    ),
    vm(
        "kprobe_wildcards",
        "acceptload -c 1 -n 4 -l 4:8120:128 -l 6:8121:128 >/dev/null; rbtmark-wl",
        EXACT_AFTER_HEADER_SORTED_MAPS,
        "",
    ),
];

/// The maps at exit, exactly, as a sorted list (entries of equal count print in hash
/// order).
const EXACT_AFTER_HEADER_SORTED_MAPS: Rules = Rules {
    keep: None,
    header: 1,
    mask: &[],
    sort: false,
    collapse: false,
    maps_keep: None,
    sort_maps: true,
};

#[test]
fn every_packaged_tool_has_one_entry() {
    let names: Vec<_> = TOOLS.iter().map(|t| t.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "one entry per tool, sorted");
    assert_eq!(TOOLS.len(), 38, "Debian's bpftrace 0.17 ships 38 tools");
    if let Ok(dir) = std::fs::read_dir("/usr/sbin") {
        let mut packaged: Vec<String> = dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".bt").map(str::to_string))
            .collect();
        packaged.sort();
        if !packaged.is_empty() {
            assert_eq!(packaged, names, "the tools in /usr/sbin");
        }
    }
    let _ = MAP_VALUE;
}
