//! The C headers a script may `#include`. rbt reads no header files (kernel types
//! come from BTF); a known header is accepted and provides the object-like macros
//! that bpftrace scripts take from it, with the values of the Linux UAPI/glibc.

/// Address families: the same numbers as `AF_*` and `PF_*` in linux/socket.h.
const FAMILIES: &[(&str, u32)] = &[
    ("UNSPEC", 0),
    ("UNIX", 1),
    ("LOCAL", 1),
    ("INET", 2),
    ("AX25", 3),
    ("IPX", 4),
    ("APPLETALK", 5),
    ("NETROM", 6),
    ("BRIDGE", 7),
    ("ATMPVC", 8),
    ("X25", 9),
    ("INET6", 10),
    ("ROSE", 11),
    ("DECnet", 12),
    ("NETBEUI", 13),
    ("SECURITY", 14),
    ("KEY", 15),
    ("NETLINK", 16),
    ("ROUTE", 16),
    ("PACKET", 17),
    ("ASH", 18),
    ("ECONET", 19),
    ("ATMSVC", 20),
    ("RDS", 21),
    ("SNA", 22),
    ("IRDA", 23),
    ("PPPOX", 24),
    ("WANPIPE", 25),
    ("LLC", 26),
    ("IB", 27),
    ("MPLS", 28),
    ("CAN", 29),
    ("TIPC", 30),
    ("BLUETOOTH", 31),
    ("IUCV", 32),
    ("RXRPC", 33),
    ("ISDN", 34),
    ("PHONET", 35),
    ("IEEE802154", 36),
    ("CAIF", 37),
    ("ALG", 38),
    ("NFC", 39),
    ("VSOCK", 40),
    ("KCM", 41),
    ("QIPCRTR", 42),
    ("SMC", 43),
    ("XDP", 44),
    ("MCTP", 45),
    ("MAX", 46),
];

/// Socket types and levels (linux/net.h via linux/socket.h; glibc's sys/socket.h).
const SOCKET: &[(&str, u32)] = &[
    ("SOCK_STREAM", 1),
    ("SOCK_DGRAM", 2),
    ("SOCK_RAW", 3),
    ("SOCK_RDM", 4),
    ("SOCK_SEQPACKET", 5),
    ("SOCK_DCCP", 6),
    ("SOCK_PACKET", 10),
    ("SOL_SOCKET", 1),
    ("SOL_IP", 0),
    ("SOL_TCP", 6),
    ("SOL_UDP", 17),
    ("SOL_IPV6", 41),
    ("SHUT_RD", 0),
    ("SHUT_WR", 1),
    ("SHUT_RDWR", 2),
    ("SOMAXCONN", 4096),
];

/// IP protocol numbers (linux/in.h, linux/in6.h).
const IN: &[(&str, u32)] = &[
    ("IPPROTO_IP", 0),
    ("IPPROTO_ICMP", 1),
    ("IPPROTO_IGMP", 2),
    ("IPPROTO_IPIP", 4),
    ("IPPROTO_TCP", 6),
    ("IPPROTO_EGP", 8),
    ("IPPROTO_PUP", 12),
    ("IPPROTO_UDP", 17),
    ("IPPROTO_IDP", 22),
    ("IPPROTO_TP", 29),
    ("IPPROTO_DCCP", 33),
    ("IPPROTO_IPV6", 41),
    ("IPPROTO_RSVP", 46),
    ("IPPROTO_GRE", 47),
    ("IPPROTO_ESP", 50),
    ("IPPROTO_AH", 51),
    ("IPPROTO_ICMPV6", 58),
    ("IPPROTO_SCTP", 132),
    ("IPPROTO_UDPLITE", 136),
    ("IPPROTO_MPLS", 137),
    ("IPPROTO_RAW", 255),
    ("INET_ADDRSTRLEN", 16),
    ("INET6_ADDRSTRLEN", 46),
];

/// TCP states (net/tcp_states.h; an enum there, usable by name in bpftrace).
const TCP_STATES: &[(&str, u32)] = &[
    ("TCP_ESTABLISHED", 1),
    ("TCP_SYN_SENT", 2),
    ("TCP_SYN_RECV", 3),
    ("TCP_FIN_WAIT1", 4),
    ("TCP_FIN_WAIT2", 5),
    ("TCP_TIME_WAIT", 6),
    ("TCP_CLOSE", 7),
    ("TCP_CLOSE_WAIT", 8),
    ("TCP_LAST_ACK", 9),
    ("TCP_LISTEN", 10),
    ("TCP_CLOSING", 11),
    ("TCP_NEW_SYN_RECV", 12),
    ("TCP_MAX_STATES", 13),
];

/// Task states and sizes (linux/sched.h).
const SCHED: &[(&str, u32)] = &[
    ("TASK_RUNNING", 0),
    ("TASK_INTERRUPTIBLE", 1),
    ("TASK_UNINTERRUPTIBLE", 2),
    ("__TASK_STOPPED", 4),
    ("__TASK_TRACED", 8),
    ("EXIT_DEAD", 16),
    ("EXIT_ZOMBIE", 32),
    ("TASK_PARKED", 64),
    ("TASK_DEAD", 128),
    ("TASK_WAKEKILL", 256),
    ("TASK_WAKING", 512),
    ("TASK_NOLOAD", 1024),
    ("TASK_NEW", 2048),
    ("TASK_COMM_LEN", 16),
];

/// What one header provides: its own macros and the headers it includes.
struct Header {
    path: &'static str,
    includes: &'static [&'static str],
    families: bool,
    macros: &'static [(&'static str, u32)],
}

const HEADERS: &[Header] = &[
    Header {
        path: "linux/socket.h",
        includes: &[],
        families: true,
        macros: SOCKET,
    },
    Header {
        path: "sys/socket.h",
        includes: &[],
        families: true,
        macros: SOCKET,
    },
    Header {
        path: "linux/in.h",
        includes: &["linux/socket.h"],
        families: false,
        macros: IN,
    },
    Header {
        path: "linux/in6.h",
        includes: &["linux/in.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "netinet/in.h",
        includes: &["linux/in.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "net/tcp_states.h",
        includes: &[],
        families: false,
        macros: TCP_STATES,
    },
    Header {
        path: "net/sock.h",
        includes: &["linux/in6.h", "net/tcp_states.h", "linux/sched.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "net/inet_sock.h",
        includes: &["net/sock.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/tcp.h",
        includes: &["net/sock.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "net/tcp.h",
        includes: &["linux/tcp.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/ipv6.h",
        includes: &["linux/in6.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/sched.h",
        includes: &[],
        families: false,
        macros: SCHED,
    },
    Header {
        path: "errno.h",
        includes: &[],
        families: false,
        macros: super::errno::ERRNO,
    },
    Header {
        path: "linux/skbuff.h",
        includes: &["linux/socket.h"],
        families: false,
        macros: &[],
    },
    // Headers of other upstream tools: accepted, nothing a script uses comes from them.
    Header {
        path: "linux/blkdev.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/blk-mq.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/bio.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/genhd.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/fs.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/time.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/oom.h",
        includes: &["linux/sched.h"],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/path.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/dcache.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/mm.h",
        includes: &[],
        families: false,
        macros: &[],
    },
    Header {
        path: "linux/types.h",
        includes: &[],
        families: false,
        macros: &[],
    },
];

/// The macros `#include <path>` provides, or `None` for an unknown header.
pub fn lookup(path: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    collect(path, &mut out, 0)?;
    Some(out)
}

fn collect(path: &str, out: &mut Vec<(String, String)>, depth: usize) -> Option<()> {
    let h = HEADERS.iter().find(|h| h.path == path)?;
    for inc in h.includes {
        if depth < 8 {
            collect(inc, out, depth + 1)?;
        }
    }
    if h.families {
        for (name, v) in FAMILIES {
            out.push((format!("AF_{name}"), v.to_string()));
            out.push((format!("PF_{name}"), v.to_string()));
        }
    }
    out.extend(h.macros.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Some(())
}

/// The known header paths, for the "file not found" note.
pub fn known() -> Vec<&'static str> {
    HEADERS.iter().map(|h| h.path).collect()
}
