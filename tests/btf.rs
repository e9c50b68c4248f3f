//! BTF reader against the kernel's own BTF (tests/data/vmlinux-6.18.btf, and the host's
//! /sys/kernel/btf/vmlinux when present), cross-checked with `bpftool btf dump ... format
//! raw`: offsets, sizes and signatures come from bpftool, not from our own reading.

mod bpftool_raw;
mod support;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use bpftool_raw::{Dump, RawMember};
use rbt::btf::{Btf, Member, TypeId, TypeKind};

const VMLINUX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vmlinux-6.18.btf");
const HOST_VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn btf() -> &'static Btf {
    static BTF: OnceLock<Btf> = OnceLock::new();
    BTF.get_or_init(|| Btf::load(Path::new(VMLINUX)).expect("load test BTF"))
}

/// bpftool's raw dump of the test BTF, or None (after printing why) when bpftool is
/// missing outside CI.
fn dump(test: &str) -> Option<&'static Dump> {
    static DUMP: OnceLock<Option<Dump>> = OnceLock::new();
    let d = DUMP.get_or_init(|| bpftool_raw::dump(Path::new(VMLINUX)).ok());
    if d.is_none() {
        bpftool_raw::skip_or_fail(test);
    }
    d.as_ref()
}

fn member(btf: &Btf, agg: TypeId, name: &str) -> Member {
    btf.member(agg, name)
        .unwrap_or_else(|| panic!("no member {name} in {}", btf.name_of(agg)))
}

/// Our answer for `agg.name` must equal bpftool's (found by the same C rules:
/// anonymous members searched, offsets added).
fn assert_member_matches(btf: &Btf, d: &Dump, agg: TypeId, name: &str) -> Member {
    let ours = member(btf, agg, name);
    let theirs: RawMember = d
        .find_member(agg.0, name)
        .unwrap_or_else(|| panic!("bpftool has no {name} in [{}]", agg.0));
    assert_eq!(
        (ours.type_id.0, ours.bit_offset, ours.bitfield_size),
        (theirs.type_id, theirs.bit_offset, theirs.bitfield_size),
        "{}.{name}: ours vs bpftool",
        btf.name_of(agg)
    );
    ours
}

#[test]
fn sock_to_v6_daddr_bytes() {
    let btf = btf();
    let Some(d) = dump("sock_to_v6_daddr_bytes") else {
        return;
    };
    let sock = btf.find_type("struct sock").expect("struct sock");
    assert_eq!(Some(sock.0), d.first_named("STRUCT", "sock"));
    let common = assert_member_matches(btf, d, sock, "__sk_common");
    assert_eq!(btf.name_of(common.type_id), "struct sock_common");
    let v6 = assert_member_matches(btf, d, common.type_id, "skc_v6_daddr");
    assert_eq!(btf.name_of(v6.type_id), "struct in6_addr");
    assert_eq!(btf.size_of(v6.type_id), Some(16));
    let in6_u = assert_member_matches(btf, d, v6.type_id, "in6_u");
    assert!(matches!(
        btf.kind(in6_u.type_id),
        TypeKind::Union { size: 16 }
    ));
    let bytes = assert_member_matches(btf, d, in6_u.type_id, "u6_addr8");
    let TypeKind::Array { elem, len } = btf.kind(bytes.type_id) else {
        panic!("u6_addr8 is {:?}", btf.kind(bytes.type_id));
    };
    assert_eq!(len, 16);
    assert_eq!(btf.name_of(elem), "__u8");
    assert_eq!(btf.name_of(bytes.type_id), "__u8[16]");
    assert_eq!(btf.size_of(bytes.type_id), Some(16));
    assert_eq!(
        btf.kind(elem),
        TypeKind::Int {
            size: 1,
            signed: false,
            is_char: false,
            is_bool: false
        }
    );
}

/// The fields tcpaccept.bt reads, with the C types bpftool shows for them.
#[test]
fn tcpaccept_fields_match_bpftool() {
    let btf = btf();
    let Some(d) = dump("tcpaccept_fields_match_bpftool") else {
        return;
    };
    let sock = btf.find_type("struct sock").unwrap();
    let common = member(btf, sock, "__sk_common").type_id;
    let cases = [
        (common, "skc_family", "short unsigned int", 2),
        (common, "skc_dport", "__be16", 2),
        (common, "skc_num", "__u16", 2),
        (common, "skc_daddr", "__be32", 4),
        (common, "skc_rcv_saddr", "__be32", 4),
        (sock, "sk_ack_backlog", "u32", 4),
        (sock, "sk_max_ack_backlog", "u32", 4),
    ];
    for (agg, name, c_type, size) in cases {
        let m = assert_member_matches(btf, d, agg, name);
        assert_eq!(btf.name_of(m.type_id), c_type, "{name}");
        assert_eq!(d.name_of(m.type_id.0), c_type, "{name}: bpftool's name");
        assert_eq!(btf.size_of(m.type_id), Some(size), "{name}");
        assert_eq!(Some(size), d.size_of(m.type_id.0), "{name}: bpftool's size");
        assert!(matches!(
            btf.kind(m.type_id),
            TypeKind::Int { signed: false, .. }
        ));
        eprintln!(
            "{}.{name}: byte {} {c_type} ({size} bytes)",
            btf.name_of(agg),
            m.bit_offset / 8
        );
    }
    // skc_daddr/skc_rcv_saddr live in an anonymous union/struct inside sock_common:
    // both must be found at the offset bpftool's members add up to.
    let daddr = member(btf, common, "skc_daddr");
    let rcv = member(btf, common, "skc_rcv_saddr");
    assert_eq!(rcv.bit_offset, daddr.bit_offset + 32);
}

#[test]
fn bitfields_both_encodings() {
    let btf = btf();
    let Some(d) = dump("bitfields_both_encodings") else {
        return;
    };
    let common = btf.find_type("struct sock_common").unwrap();
    for name in [
        "skc_reuse",
        "skc_reuseport",
        "skc_ipv6only",
        "skc_net_refcnt",
    ] {
        let m = assert_member_matches(btf, d, common, name);
        assert!(m.bitfield_size.is_some(), "{name} is a bitfield");
    }
    let reuse = member(btf, common, "skc_reuse");
    assert_eq!((reuse.bit_offset, reuse.bitfield_size), (152, Some(4)));
}

/// Tracepoint arguments come from `struct trace_event_raw_<event>`.
#[test]
fn tracepoint_inet_sock_set_state() {
    let btf = btf();
    let Some(d) = dump("tracepoint_inet_sock_set_state") else {
        return;
    };
    let id = btf
        .find_type("struct trace_event_raw_inet_sock_set_state")
        .expect("tracepoint struct");
    assert_eq!(btf.size_of(id), d.size_of(id.0));
    let names: Vec<String> = btf.members(id).into_iter().map(|m| m.name).collect();
    assert_eq!(names, d.member_names(id.0));
    for name in [
        "skaddr", "oldstate", "newstate", "sport", "dport", "family", "saddr", "daddr_v6",
    ] {
        assert_member_matches(btf, d, id, name);
    }
    assert_eq!(
        btf.name_of(member(btf, id, "skaddr").type_id),
        "const void *"
    );
    assert_eq!(btf.name_of(member(btf, id, "saddr").type_id), "__u8[4]");
    assert_eq!(btf.name_of(member(btf, id, "oldstate").type_id), "int");
}

/// Every struct and union: size and full member list equal bpftool's.
#[test]
fn every_aggregate_matches_bpftool() {
    let btf = btf();
    let Some(d) = dump("every_aggregate_matches_bpftool") else {
        return;
    };
    let (mut checked, mut lookups) = (0, 0);
    for (id, e) in d.entries() {
        if e.kind != "STRUCT" && e.kind != "UNION" {
            continue;
        }
        let id = TypeId(id);
        assert_eq!(btf.size_of(id), e.attr("size"), "size of [{}]", id.0);
        let ours: Vec<RawMember> = btf
            .members(id)
            .into_iter()
            .map(|m| RawMember {
                name: m.name,
                type_id: m.type_id.0,
                bit_offset: m.bit_offset,
                bitfield_size: m.bitfield_size,
            })
            .collect();
        assert_eq!(ours, d.members(id.0), "members of [{}]", id.0);
        // Every name reachable through anonymous members is found where bpftool's
        // C lookup finds it.
        for name in d.reachable_names(id.0) {
            let theirs = d.find_member(id.0, &name);
            let ours = btf.member(id, &name).map(|m| RawMember {
                name: m.name,
                type_id: m.type_id.0,
                bit_offset: m.bit_offset,
                bitfield_size: m.bitfield_size,
            });
            assert_eq!(ours, theirs, "[{}].{name}", id.0);
            lookups += 1;
        }
        checked += 1;
    }
    eprintln!("{checked} structs/unions and {lookups} member lookups match bpftool");
    assert!(checked > 10_000);
}

/// Every function's parameters and return type equal bpftool's; find_func returns
/// the first FUNC of a name.
#[test]
fn every_func_matches_bpftool() {
    let btf = btf();
    let Some(d) = dump("every_func_matches_bpftool") else {
        return;
    };
    let mut checked = 0;
    for (id, e) in d.entries() {
        if e.kind != "FUNC" {
            continue;
        }
        let proto = e.attr("type_id").unwrap();
        assert_eq!(btf.func_proto(TypeId(id)), Some(TypeId(proto)));
        let params: Vec<(String, u32)> = btf
            .func_params(TypeId(id))
            .into_iter()
            .map(|(n, t)| (n, t.0))
            .collect();
        let theirs: Vec<(String, u32)> = d
            .members(proto)
            .into_iter()
            .filter(|p| !(p.name.is_empty() && p.type_id == 0))
            .map(|p| (p.name, p.type_id))
            .collect();
        assert_eq!(params, theirs, "params of {}", e.name);
        assert_eq!(
            Some(btf.func_return(TypeId(id)).0),
            d.get(proto).and_then(|p| p.attr("ret_type_id"))
        );
        if d.first_named("FUNC", &e.name) == Some(id) {
            assert_eq!(btf.find_func(&e.name), Some(TypeId(id)), "{}", e.name);
        }
        checked += 1;
    }
    eprintln!("{checked} functions match bpftool");
    assert!(checked > 10_000);
    let ours: Vec<(String, u32)> = btf.funcs().map(|(n, t)| (n.to_string(), t.0)).collect();
    let theirs: Vec<(String, u32)> = d
        .entries()
        .filter(|(_, e)| e.kind == "FUNC")
        .map(|(id, e)| (e.name.clone(), id))
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn kprobe_target_signature() {
    let btf = btf();
    let f = btf.find_func("inet_csk_accept").expect("inet_csk_accept");
    assert_eq!(btf.kind(f), TypeKind::Func);
    assert_eq!(btf.name_of(btf.func_return(f)), "struct sock *");
    let params: Vec<(String, String)> = btf
        .func_params(f)
        .into_iter()
        .map(|(n, t)| (n, btf.name_of(t)))
        .collect();
    assert_eq!(
        params,
        [
            ("sk".to_string(), "struct sock *".to_string()),
            ("arg".to_string(), "struct proto_accept_arg *".to_string())
        ]
    );
    assert!(!btf.func_is_variadic(f));
    assert_eq!(btf.find_func("no_such_function_in_the_kernel"), None);
    let proto = btf.func_proto(f).unwrap();
    assert_eq!(btf.kind(proto), TypeKind::FuncProto);
    assert_eq!(
        btf.name_of(proto),
        "struct sock *(struct sock *, struct proto_accept_arg *)"
    );
}

#[test]
fn find_type_spellings() {
    let btf = btf();
    let int = |size, signed| TypeKind::Int {
        size,
        signed,
        is_char: false,
        is_bool: false,
    };
    for (name, kind) in [
        ("u32", int(4, false)),
        ("__be16", int(2, false)),
        ("unsigned int", int(4, false)),
        ("unsigned short", int(2, false)),
        ("long", int(8, true)),
        ("unsigned long long", int(8, false)),
        ("u8", int(1, false)),
        ("struct sock", TypeKind::Struct { size: 784 }),
        ("union bpf_attr", TypeKind::Union { size: 168 }),
        (
            "enum bpf_map_type",
            TypeKind::Enum {
                size: 4,
                signed: false,
            },
        ),
        ("struct static_key_mod", TypeKind::Fwd { union: false }),
        ("double", TypeKind::Float { size: 8 }),
    ] {
        let id = btf.find_type(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(btf.kind(id), kind, "{name}");
    }
    assert!(matches!(
        btf.kind(btf.find_type("char").unwrap()),
        TypeKind::Int {
            size: 1,
            is_char: true,
            ..
        }
    ));
    assert!(matches!(
        btf.kind(btf.find_type("unsigned char").unwrap()),
        TypeKind::Int {
            size: 1,
            is_char: false,
            ..
        }
    ));
    let comm = member(btf, btf.find_type("struct task_struct").unwrap(), "comm").type_id;
    assert_eq!(btf.name_of(comm), "char[16]");
    assert_eq!(btf.size_of(comm), Some(16));
    assert_eq!(
        btf.name_of(btf.find_type("unsigned short").unwrap()),
        "short unsigned int"
    );
    assert_eq!(
        btf.name_of(btf.find_type("struct static_key_mod").unwrap()),
        "struct static_key_mod"
    );
    for missing in [
        "struct no_such_struct",
        "sock",
        "union sock",
        "enum sock",
        "",
        "struct ",
    ] {
        assert_eq!(btf.find_type(missing), None, "{missing:?}");
    }
    let values = btf.enum_values(btf.find_type("enum bpf_map_type").unwrap());
    assert_eq!(values[0], ("BPF_MAP_TYPE_UNSPEC".to_string(), 0));
    assert_eq!(values[1], ("BPF_MAP_TYPE_HASH".to_string(), 1));
}

/// Load time of the 5.5 MB kernel BTF (printed, not asserted: the machine is shared).
/// Release numbers: `cargo run --release --example btf_load`.
#[test]
fn load_time() {
    let start = Instant::now();
    let btf = Btf::load(Path::new(VMLINUX)).unwrap();
    eprintln!(
        "loaded {} types from {VMLINUX} in {:.1?} (debug build)",
        btf.type_count(),
        start.elapsed()
    );
    assert_eq!(btf.type_count(), 126_700);
}

/// The running kernel's BTF, when it has one.
#[test]
fn host_vmlinux() {
    let path = Path::new(HOST_VMLINUX);
    if !path.exists() {
        support::skip("host_vmlinux", &format!("{HOST_VMLINUX} is missing"));
        return;
    }
    let start = Instant::now();
    let btf = Btf::load(path).expect("host BTF");
    eprintln!(
        "loaded {} types from {HOST_VMLINUX} in {:.1?}",
        btf.type_count(),
        start.elapsed()
    );
    let Ok(d) = bpftool_raw::dump(path) else {
        bpftool_raw::skip_or_fail("host_vmlinux");
        return;
    };
    let sock = btf.find_type("struct sock").expect("struct sock");
    let common = assert_member_matches(&btf, &d, sock, "__sk_common").type_id;
    for name in [
        "skc_family",
        "skc_dport",
        "skc_num",
        "skc_daddr",
        "skc_rcv_saddr",
    ] {
        assert_member_matches(&btf, &d, common, name);
    }
    for name in ["sk_ack_backlog", "sk_max_ack_backlog"] {
        assert_member_matches(&btf, &d, sock, name);
    }
}
