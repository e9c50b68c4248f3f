//! The table's queries on hand-made entries (files gcc builds with `-g` are compared
//! with bpftrace in tests/dwarf_vs_bpftrace.rs).

use super::*;
use crate::btf::{Btf, NewType, TypeId, TypeKind};

fn die(tag: dw::DwTag, name: Option<&str>, ty: Option<DieRef>) -> Die {
    Die {
        tag: tag.0,
        name: name.map(str::to_string),
        ty,
        ..Die::default()
    }
}

/// `struct Foo { int a; char b[10]; }; int f(const char *s, struct Foo *foo, void *v);`
fn sample() -> DebugInfo {
    let mut info = DebugInfo::default();
    let mut put = |at: DieRef, d: Die| {
        info.dies.insert(at, d);
    };
    put(
        1,
        Die {
            byte_size: Some(4),
            encoding: Some(dw::DW_ATE_signed.0),
            ..die(dw::DW_TAG_base_type, Some("int"), None)
        },
    );
    put(
        2,
        Die {
            byte_size: Some(1),
            encoding: Some(dw::DW_ATE_signed_char.0),
            ..die(dw::DW_TAG_base_type, Some("char"), None)
        },
    );
    put(3, die(dw::DW_TAG_const_type, None, Some(2)));
    put(4, die(dw::DW_TAG_pointer_type, None, Some(3)));
    put(
        5,
        Die {
            byte_size: Some(16),
            children: vec![6, 7],
            ..die(dw::DW_TAG_structure_type, Some("Foo"), None)
        },
    );
    put(
        6,
        Die {
            member_offset: Some(0),
            ..die(dw::DW_TAG_member, Some("a"), Some(1))
        },
    );
    put(
        7,
        Die {
            member_offset: Some(4),
            ..die(dw::DW_TAG_member, Some("b"), Some(8))
        },
    );
    put(
        8,
        Die {
            children: vec![9],
            ..die(dw::DW_TAG_array_type, None, Some(2))
        },
    );
    put(
        9,
        Die {
            count: Some(10),
            ..die(dw::DW_TAG_subrange_type, None, None)
        },
    );
    put(10, die(dw::DW_TAG_pointer_type, None, Some(5)));
    put(11, die(dw::DW_TAG_pointer_type, None, None));
    put(
        12,
        Die {
            children: vec![13, 14, 15],
            ..die(dw::DW_TAG_subprogram, Some("f"), Some(1))
        },
    );
    put(13, die(dw::DW_TAG_formal_parameter, Some("s"), Some(4)));
    put(14, die(dw::DW_TAG_formal_parameter, Some("foo"), Some(10)));
    put(15, die(dw::DW_TAG_formal_parameter, Some("v"), Some(11)));
    info.units.push(vec![1, 2, 3, 4, 5, 8, 10, 11, 12]);
    info
}

#[test]
fn lists_parameters_as_bpftrace() {
    let info = sample();
    assert_eq!(
        info.param_lines("f"),
        ["const char* s", "struct Foo* foo", "void* v"]
    );
    assert!(info.param_lines("g").is_empty());
    assert_eq!(info.find_struct("Foo"), Some(5));
    assert_eq!(info.find_struct("Bar"), None);
}

#[test]
fn converts_types_into_btf_records() {
    let info = sample();
    let btf = Btf::empty();
    let mut convert = Converter::new(btf.type_count());
    assert!(convert.name_struct(0, &info, "Foo"));
    let params = info.params("f").unwrap();
    let ids: Vec<TypeId> = params
        .iter()
        .map(|p| convert.type_id(0, &info, p.ty))
        .collect();
    let converted = convert.finish();
    assert!(converted
        .added
        .iter()
        .any(|t| matches!(t, NewType::Aggregate { name, size: 16, .. } if name == "Foo")));
    let btf = btf.extended(&converted.added, &converted.names).unwrap();
    let foo = btf.find_type("struct Foo").unwrap();
    assert_eq!(btf.size_of(foo), Some(16));
    let b = btf.member(foo, "b").unwrap();
    assert_eq!(b.bit_offset, 32);
    assert!(matches!(
        btf.kind(b.type_id),
        TypeKind::Array { len: 10, .. }
    ));
    // `const char *` peels to a pointer to `char`; `void *` to a pointer to void.
    let TypeKind::Ptr { target } = btf.kind(ids[0]) else {
        panic!("{:?}", btf.kind(ids[0]));
    };
    assert!(matches!(
        btf.kind(target),
        TypeKind::Int {
            size: 1,
            signed: true,
            is_char: true,
            ..
        }
    ));
    assert_eq!(btf.kind(ids[1]), TypeKind::Ptr { target: foo });
    assert_eq!(
        btf.kind(ids[2]),
        TypeKind::Ptr {
            target: TypeId::VOID
        }
    );
}

/// As bpftrace 0.17 finds fields (by name, among structs): a union has none, and a
/// struct reached through a typedef of another name has none either.
#[test]
fn unions_and_typedef_named_structs_have_no_fields() {
    let mut info = sample();
    info.dies.insert(
        20,
        Die {
            byte_size: Some(4),
            children: vec![6],
            ..die(dw::DW_TAG_union_type, Some("U"), None)
        },
    );
    info.dies
        .insert(21, die(dw::DW_TAG_typedef, Some("foo_t"), Some(5)));
    info.dies
        .insert(22, die(dw::DW_TAG_typedef, Some("Foo"), Some(5)));
    let btf = Btf::empty();
    let mut convert = Converter::new(btf.type_count());
    let ids: Vec<TypeId> = [20, 21, 22]
        .iter()
        .map(|at| convert.type_id(0, &info, Some(*at)))
        .collect();
    let converted = convert.finish();
    let btf = btf.extended(&converted.added, &converted.names).unwrap();
    assert_eq!(btf.kind(ids[0]), TypeKind::Union { size: 4 });
    assert!(btf.member(ids[0], "a").is_none());
    assert_eq!(btf.name_of(ids[1]), "struct foo_t");
    assert_eq!(btf.size_of(ids[1]), Some(16));
    assert!(btf.member(ids[1], "a").is_none());
    // `typedef struct Foo Foo`: the name finds the struct, fields and all.
    assert!(btf.member(ids[2], "a").is_some());
}
