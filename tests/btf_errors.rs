//! The BTF reader on hand-built blobs: exact answers for every kind and encoding, one
//! clear error per kind of corruption, and no panic or hang on random corruption.

mod btf_blob;

use std::path::{Path, PathBuf};

use btf_blob::{id, sample, Blob};
use proptest::prelude::*;
use rbt::btf::{Btf, BtfError, Member, TypeId, TypeKind};

fn load_sample() -> Btf {
    Btf::from_bytes(sample().bytes()).expect("sample blob is valid")
}

fn err(bytes: Vec<u8>) -> String {
    match Btf::from_bytes(bytes) {
        Ok(_) => panic!("corrupt blob was accepted"),
        Err(e) => e.to_string(),
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("rbt-btf-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn set_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Absolute byte offset of type `id`'s record in the sample blob.
fn record(b: &Blob, id: u32) -> usize {
    24 + b.record_at[id as usize - 1]
}

#[test]
fn sample_kinds() {
    let btf = load_sample();
    let t = TypeId;
    assert_eq!(btf.kind(t(0)), TypeKind::Void);
    assert_eq!(
        btf.kind(t(id::INT)),
        TypeKind::Int {
            size: 4,
            signed: true,
            is_char: false,
            is_bool: false
        }
    );
    assert_eq!(
        btf.kind(t(id::U8X16)),
        TypeKind::Array {
            elem: t(id::U8),
            len: 16
        }
    );
    assert_eq!(btf.kind(t(id::OUTER_TT)), TypeKind::Struct { size: 32 });
    assert_eq!(btf.resolve(t(id::OUTER_TT)), t(id::OUTER));
    assert_eq!(
        btf.kind(t(id::CONST_PTR)),
        TypeKind::Ptr {
            target: t(id::OUTER)
        }
    );
    assert_eq!(btf.kind(t(id::ANON_UNION)), TypeKind::Union { size: 8 });
    assert_eq!(
        btf.kind(t(id::COLOR)),
        TypeKind::Enum {
            size: 4,
            signed: true
        }
    );
    assert_eq!(
        btf.kind(t(id::BIG)),
        TypeKind::Enum {
            size: 8,
            signed: false
        }
    );
    assert_eq!(btf.kind(t(id::DOUBLE)), TypeKind::Float { size: 8 });
    assert_eq!(btf.kind(t(id::DO_THING)), TypeKind::Func);
    assert_eq!(btf.kind(t(id::PROTO)), TypeKind::FuncProto);
    assert_eq!(btf.kind(t(id::FWD_OPAQUE)), TypeKind::Fwd { union: false });
    assert_eq!(btf.kind(t(id::VAR)), TypeKind::Var);
    assert_eq!(btf.kind(t(id::DATASEC)), TypeKind::Datasec);
    assert_eq!(btf.kind(t(id::DECL_TAG)), TypeKind::DeclTag);
    assert_eq!(btf.kind(t(id::TYPE_TAG)), btf.kind(t(id::INT)));
    assert_eq!(btf.kind(t(id::VOLATILE_INT)), btf.kind(t(id::INT)));
    assert_eq!(
        btf.kind(t(9999)),
        TypeKind::Void,
        "unknown ids read as void"
    );

    assert_eq!(btf.size_of(t(id::U8X16)), Some(16));
    assert_eq!(btf.size_of(t(id::MATRIX)), Some(24));
    assert_eq!(btf.size_of(t(id::OUTER_TT)), Some(32));
    assert_eq!(btf.size_of(t(id::RESTRICT_PTR)), Some(8));
    assert_eq!(btf.size_of(t(id::VAR)), Some(4));
    assert_eq!(btf.size_of(t(id::DATASEC)), Some(4));
    for none in [0, id::DO_THING, id::PROTO, id::FWD_OPAQUE, 9999] {
        assert_eq!(btf.size_of(t(none)), None, "[{none}]");
    }
}

#[test]
fn sample_names() {
    let btf = load_sample();
    let name = |i| btf.name_of(TypeId(i));
    assert_eq!(name(0), "void");
    assert_eq!(name(id::U8X16), "u8[16]");
    assert_eq!(name(id::MATRIX), "int[2][3]");
    assert_eq!(name(id::OUTER_PTR), "struct outer *");
    assert_eq!(name(id::CONST_PTR), "struct outer *const");
    assert_eq!(name(id::RESTRICT_PTR), "struct outer *restrict");
    assert_eq!(name(id::VOLATILE_INT), "volatile int");
    assert_eq!(name(id::CHAR_PP), "const char **");
    assert_eq!(name(id::CONST_CHAR), "const char");
    assert_eq!(name(id::ANON_UNION), "union (anonymous)");
    assert_eq!(name(id::OUTER_TT), "outer_tt");
    assert_eq!(name(id::COLOR), "enum color");
    assert_eq!(name(id::FWD_OPAQUE), "struct opaque");
    assert_eq!(name(id::TAGGED_PTR), "int *");
    assert_eq!(name(id::PROTO), "int (struct outer *, int)");
    assert_eq!(name(id::VARIADIC_PROTO), "void (int *, ...)");
    assert_eq!(name(id::DO_THING), "do_thing");
    assert_eq!(name(9999), "<invalid type id 9999>");
}

#[test]
fn sample_lookup_rules() {
    let btf = load_sample();
    let find = |n| btf.find_type(n).map(|t| t.0);
    assert_eq!(find("struct outer"), Some(id::OUTER));
    assert_eq!(find("outer_t"), Some(id::OUTER_T));
    assert_eq!(find("u8"), Some(id::U8));
    assert_eq!(find("int"), Some(id::INT));
    assert_eq!(find("signed"), Some(id::INT), "C spelling of int");
    assert_eq!(find("unsigned char"), Some(id::UCHAR));
    assert_eq!(find("unsigned int"), Some(id::UINT5), "first of duplicates");
    assert_eq!(find("double"), Some(id::DOUBLE));
    assert_eq!(
        find("struct opaque"),
        Some(id::FWD_OPAQUE),
        "fwd when no definition"
    );
    assert_eq!(find("struct later"), Some(id::LATER), "definition over fwd");
    assert_eq!(
        btf.kind(TypeId(id::FWD_LATER)),
        TypeKind::Fwd { union: false }
    );
    assert_eq!(find("struct pair"), Some(id::PAIR), "first complete struct");
    assert_ne!(find("struct pair"), Some(id::PAIR_DUP));
    assert_eq!(
        find("enum color2"),
        Some(id::COLOR2),
        "full enum over enum fwd"
    );
    assert_ne!(find("enum color2"), Some(id::COLOR2_FWD));
    assert_eq!(find("enum big"), Some(id::BIG));
    assert_eq!(find("union outer"), None);
    assert_eq!(find("outer"), None, "struct tags are not plain names");
    assert_eq!(find("do_thing"), None, "functions are not types");
    assert_eq!(btf.find_func("do_thing"), Some(TypeId(id::DO_THING)));
    assert_eq!(btf.find_func("outer"), None);
    assert_eq!(btf.type_name(TypeId(id::COLOR)), "color");
}

#[test]
fn sample_members() {
    let btf = load_sample();
    let outer = TypeId(id::OUTER_TT); // through a typedef chain
    let m = |agg: TypeId, n: &str| btf.member(agg, n).unwrap_or_else(|| panic!("{n}"));
    let mk = |name: &str, ty, bit_offset, bitfield_size| Member {
        name: name.to_string(),
        type_id: TypeId(ty),
        bit_offset,
        bitfield_size,
    };
    assert_eq!(m(outer, "tag"), mk("tag", id::INT, 0, None));
    // Through the anonymous union at bit 32, then the struct pair inside it.
    assert_eq!(m(outer, "x"), mk("x", id::INT, 32, None));
    assert_eq!(m(outer, "p"), mk("p", id::PAIR, 32, None));
    assert_eq!(m(m(outer, "p").type_id, "b").bit_offset, 32);
    // kind_flag bitfields: width in the offset word's top byte.
    assert_eq!(m(outer, "bits"), mk("bits", id::U8, 96, Some(3)));
    assert_eq!(m(outer, "flag"), mk("flag", id::UCHAR, 99, Some(1)));
    assert_eq!(m(outer, "addr"), mk("addr", id::U8X16, 128, None));
    // Without kind_flag: width and extra offset come from the INT encoding.
    let old = TypeId(id::OLD_STYLE);
    assert_eq!(m(old, "lo"), mk("lo", id::UINT5, 0, Some(5)));
    assert_eq!(m(old, "mid"), mk("mid", id::UINT3_AT2, 12, Some(3)));
    assert_eq!(m(old, "whole"), mk("whole", id::INT, 0, None));
    assert_eq!(btf.member(outer, "nope"), None);
    assert_eq!(btf.member(outer, ""), None);
    assert_eq!(btf.member(TypeId(id::INT), "x"), None);
    assert_eq!(
        btf.member(TypeId(id::OUTER_PTR), "tag"),
        None,
        "no auto-deref"
    );
    let names: Vec<String> = btf.members(outer).into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["tag", "", "bits", "flag", "addr"]);
}

#[test]
fn sample_functions_and_enums() {
    let btf = load_sample();
    let f = TypeId(id::DO_THING);
    assert_eq!(
        btf.func_params(f),
        [
            ("o".to_string(), TypeId(id::OUTER_PTR)),
            ("n".to_string(), TypeId(id::INT))
        ]
    );
    assert_eq!(btf.func_return(f), TypeId(id::INT));
    assert_eq!(btf.func_proto(f), Some(TypeId(id::PROTO)));
    assert!(!btf.func_is_variadic(f));
    let v = TypeId(id::PRINTK_LIKE);
    assert_eq!(
        btf.func_params(v),
        [("fmt".to_string(), TypeId(id::TAGGED_PTR))]
    );
    assert!(btf.func_is_variadic(v));
    assert_eq!(btf.func_return(v), TypeId::VOID);
    assert_eq!(btf.func_params(TypeId(id::INT)), []);
    assert_eq!(btf.func_return(TypeId(id::INT)), TypeId::VOID);
    assert_eq!(
        btf.enum_values(TypeId(id::COLOR)),
        [("RED".to_string(), -1), ("GREEN".to_string(), 2)]
    );
    assert_eq!(
        btf.enum_values(TypeId(id::BIG)),
        [("HUGE".to_string(), 1i128 << 40)]
    );
}

#[test]
fn missing_file_names_the_kernel_option() {
    let e = Btf::load(Path::new("/nonexistent/vmlinux")).unwrap_err();
    assert!(matches!(e, BtfError::Io { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with("/nonexistent/vmlinux: "), "{msg}");
    assert!(msg.contains("CONFIG_DEBUG_INFO_BTF"), "{msg}");
}

#[test]
fn truncated_kernel_btf() {
    let full = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vmlinux-6.18.btf"
    ))
    .unwrap();
    let type_len = u32::from_le_bytes(full[12..16].try_into().unwrap());
    let path = temp_file("truncated.btf", &full[..100]);
    let msg = Btf::load(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).ok();
    assert_eq!(
        msg,
        format!(
            "{}: BTF is truncated: header says {type_len} bytes of type data at byte 24, file has 100",
            path.display()
        )
    );
}

#[test]
fn header_errors() {
    let good = sample().bytes();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        err(b)
    };
    assert_eq!(
        err(Vec::new()),
        "BTF is truncated: 0 bytes, shorter than the 24-byte header"
    );
    assert_eq!(
        with(&|b| b[0] = 0),
        "not BTF: magic at byte 0 is 0xeb00, expected 0xeb9f"
    );
    assert!(with(&|b| b.swap(0, 1)).contains("big-endian"));
    assert_eq!(
        with(&|b| b[2] = 2),
        "BTF version 2 (byte 2) is not supported, expected 1"
    );
    assert_eq!(
        with(&|b| set_u32(b, 4, 8)),
        "BTF header length at byte 4 is 8, less than the minimum 24"
    );
    let len = good.len();
    assert_eq!(
        with(&|b| b.truncate(len - 1)),
        format!(
            "BTF is truncated: header says {} bytes of string data at byte {}, file has {}",
            u32::from_le_bytes(good[20..24].try_into().unwrap()),
            24 + u32::from_le_bytes(good[16..20].try_into().unwrap()),
            len - 1
        )
    );
    let last = *good.last().unwrap();
    assert_eq!(last, 0);
    assert!(with(&|b| *b.last_mut().unwrap() = b'x').contains("must start and end with a NUL"));
    assert!(with(&|b| {
        let n = b.len();
        b[n - 2] = 0xff;
    })
    .contains("not UTF-8"));
}

#[test]
fn type_record_errors() {
    let b = sample();
    let good = b.bytes();
    let at = |i| record(&b, i);
    let with = |off: usize, v: u32| {
        let mut bytes = good.clone();
        set_u32(&mut bytes, off, v);
        err(bytes)
    };
    // Unknown kind 25 in the info word of type [5].
    assert_eq!(
        with(at(id::PAIR) + 4, 25 << 24),
        format!("BTF type [5] at byte {}: unknown kind 25", at(id::PAIR))
    );
    // A vlen that runs past the type section.
    let last = b.record_at.len() as u32;
    assert_eq!(
        with(at(last) + 4, (4u32 << 24) | 500),
        format!(
            "BTF type [{last}] at byte {}: STRUCT record with vlen 500 needs 6012 bytes, 24 left in the type section",
            at(last)
        )
    );
    assert_eq!(
        with(at(last) + 4, (3u32 << 24) | 500),
        format!(
            "BTF type [{last}] ARRAY at byte {}: vlen is 500, must be 0",
            at(last)
        )
    );
    let msg = with(at(id::OUTER) + 4, (4u32 << 24) | 0xffff);
    assert!(
        msg.contains("STRUCT record with vlen 65535 needs 786432 bytes"),
        "{msg}"
    );
    // Name offset outside the string section.
    assert_eq!(
        with(at(id::INT), 9999),
        format!(
            "BTF type [1] INT at byte {}: name offset 9999 is outside the {}-byte string section",
            at(id::INT),
            u32::from_le_bytes(good[20..24].try_into().unwrap())
        )
    );
    // A member name offset (first member of struct pair) out of range.
    assert!(with(at(id::PAIR) + 12, 1 << 30).contains("name offset 1073741824 is outside"));
    // Type reference out of range.
    assert_eq!(
        with(at(id::OUTER_PTR) + 8, 999),
        format!(
            "BTF type [{}] PTR at byte {}: refers to type [999], but the last type is [{last}]",
            id::OUTER_PTR,
            at(id::OUTER_PTR)
        )
    );
    // typedef outer_t -> outer_tt -> outer_t: a cycle.
    let msg = with(at(id::OUTER_T) + 8, id::OUTER_TT);
    assert!(
        msg.contains("typedef/qualifier chain is cyclic or deeper than 32"),
        "{msg}"
    );
    // FUNC pointing at an INT.
    assert!(with(at(id::DO_THING) + 8, id::INT)
        .contains("function type [1] is INT, expected FUNC_PROTO"));
    // Broken integer encoding.
    assert!(with(at(id::INT) + 12, 64).contains("is not a valid integer"));
    // A type section ending mid-record.
    let mut bytes = good.clone();
    let type_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    set_u32(&mut bytes, 12, type_len - 4);
    let msg = err(bytes);
    assert!(msg.contains("left in the type section"), "{msg}");
}

#[test]
fn load_prefixes_the_path() {
    let mut bytes = sample().bytes();
    bytes[0] = 0;
    let path = temp_file("badmagic.btf", &bytes);
    let msg = Btf::load(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).ok();
    assert_eq!(
        msg,
        format!(
            "{}: not BTF: magic at byte 0 is 0xeb00, expected 0xeb9f",
            path.display()
        )
    );
}

/// Corrupt-but-well-formed graphs (C could never produce them) must not make a query
/// recurse without end or fan out exponentially.
#[test]
fn self_referential_types_stay_bounded() {
    let mut b = Blob::new();
    let int = b.ty("int", btf_blob::INT, false, 0, 4, &[1 << 24 | 32]); // 1
                                                                        // struct s { struct s; struct s; ... (200 anonymous copies of itself) }
    let members: Vec<(&str, u32, u32)> = (0..200).map(|_| ("", 2, 0)).collect();
    b.aggregate("s", btf_blob::STRUCT, false, 4, &members); // 2
                                                            // int (*)(f *, f *, ...): a prototype whose parameters point back at it.
    let params: Vec<u32> = (0..100).flat_map(|_| [0, 4]).collect();
    b.ty("", btf_blob::FUNC_PROTO, false, 100, int, &params); // 3
    b.ty("", btf_blob::PTR, false, 0, 3, &[]); // 4
    let btf = Btf::from_bytes(b.bytes()).expect("structurally valid");
    let start = std::time::Instant::now();
    assert_eq!(btf.member(TypeId(2), "missing"), None);
    let name = btf.name_of(TypeId(4));
    assert!(name.starts_with("int (*)(int (*)("), "{name}");
    assert!(name.len() < 100_000, "{} bytes", name.len());
    exercise(&btf);
    eprintln!("bounded queries took {:?}", start.elapsed());
}

/// Every query on every id (and a few past the end) of whatever loaded.
fn exercise(btf: &Btf) {
    for i in 0..btf.type_count() + 3 {
        let t = TypeId(i);
        let r = btf.resolve(t);
        let _ = (
            btf.kind(t),
            btf.kind(r),
            btf.size_of(t),
            btf.name_of(t),
            btf.type_name(t),
        );
        for m in btf.members(t) {
            let _ = btf.member(t, &m.name);
            let _ = btf.name_of(m.type_id);
        }
        let _ = (
            btf.member(t, "x"),
            btf.member(t, "bits"),
            btf.member(t, "b"),
        );
        let _ = (
            btf.func_params(t),
            btf.func_return(t),
            btf.func_is_variadic(t),
            btf.enum_values(t),
        );
    }
    for n in [
        "struct outer",
        "union outer",
        "enum color",
        "u8",
        "int",
        "struct later",
    ] {
        let _ = btf.find_type(n);
    }
    let _ = btf.find_func("do_thing");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random byte edits anywhere in the blob: an error or a usable Btf, never a panic.
    #[test]
    fn byte_mutations_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = sample().bytes();
        for (i, v) in edits {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if let Ok(btf) = Btf::from_bytes(bytes) {
            exercise(&btf);
        }
    }

    /// Whole-word edits with boundary values (ids, offsets, vlens, sizes) on 4-byte
    /// boundaries, where the fields are, plus truncation.
    #[test]
    fn word_mutations_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just(0u32), Just(1), Just(7), Just(0xffff), Just(u32::MAX), Just(1 << 31),
            (0u32..45), (0u32..20).prop_map(|k| k << 24), any::<u32>()]), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = sample().bytes();
        for (i, v) in edits {
            let at = i.index(bytes.len() / 4) * 4;
            set_u32(&mut bytes, at, v);
        }
        if truncate {
            let n = cut.index(bytes.len());
            bytes.truncate(n);
        }
        if let Ok(btf) = Btf::from_bytes(bytes) {
            exercise(&btf);
        }
    }
}

#[test]
fn bytes_after_the_last_section_are_rejected() {
    // The kernel's /sys/kernel/btf/vmlinux is exactly header + type + string sections.
    let mut bytes = sample().bytes();
    let end = bytes.len();
    bytes.extend_from_slice(&[0; 3]);
    assert_eq!(
        err(bytes),
        format!("not a raw BTF file: its sections end at byte {end}, but it has 3 more bytes after them")
    );
}

/// rbt does not validate BTF it reads from sysfs again (the kernel checked it before
/// exposing it): here the running kernel's BTF goes through that validation anyway, and
/// the unvalidated load gives the same answers.
#[test]
fn kernel_btf_passes_the_validation_sysfs_loads_skip() {
    let path = Path::new("/sys/kernel/btf/vmlinux");
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("skipped: {} is not readable here", path.display());
        return;
    };
    let checked = Btf::from_bytes(bytes).expect("the kernel's BTF passes validation");
    let trusted = Btf::load(path).expect("the kernel's BTF loads");
    assert_eq!(checked.type_count(), trusted.type_count());
    for name in ["struct task_struct", "int", "char", "u64"] {
        let id = checked.find_type(name);
        assert!(id.is_some(), "{name} is in kernel BTF");
        assert_eq!(id, trusted.find_type(name), "{name}");
    }
}
