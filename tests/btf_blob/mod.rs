//! Hand-built BTF blobs: a small, fully known type graph covering every kind, for
//! exact expectations and for fuzzing the reader.

pub const INT: u8 = 1;
pub const PTR: u8 = 2;
pub const ARRAY: u8 = 3;
pub const STRUCT: u8 = 4;
pub const UNION: u8 = 5;
pub const ENUM: u8 = 6;
pub const FWD: u8 = 7;
pub const TYPEDEF: u8 = 8;
pub const VOLATILE: u8 = 9;
pub const CONST: u8 = 10;
pub const RESTRICT: u8 = 11;
pub const FUNC: u8 = 12;
pub const FUNC_PROTO: u8 = 13;
pub const VAR: u8 = 14;
pub const DATASEC: u8 = 15;
pub const FLOAT: u8 = 16;
pub const DECL_TAG: u8 = 17;
pub const TYPE_TAG: u8 = 18;
pub const ENUM64: u8 = 19;

pub struct Blob {
    types: Vec<u8>,
    strings: Vec<u8>,
    /// Byte offset (within the type section) of each record, by id - 1.
    pub record_at: Vec<usize>,
}

impl Blob {
    pub fn new() -> Blob {
        Blob {
            types: Vec::new(),
            strings: vec![0],
            record_at: Vec::new(),
        }
    }

    /// Offset of `name` in the string section (0 for "").
    pub fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    /// Append a type record; returns its id.
    pub fn ty(
        &mut self,
        name: &str,
        kind: u8,
        flag: bool,
        vlen: u32,
        size_or_type: u32,
        tail: &[u32],
    ) -> u32 {
        let name_off = self.s(name);
        self.record_at.push(self.types.len());
        let info = (flag as u32) << 31 | (kind as u32) << 24 | vlen;
        for w in [name_off, info, size_or_type].iter().chain(tail) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        self.record_at.len() as u32
    }

    /// Members as (name, type, offset word).
    pub fn aggregate(
        &mut self,
        name: &str,
        kind: u8,
        flag: bool,
        size: u32,
        members: &[(&str, u32, u32)],
    ) -> u32 {
        let mut tail = Vec::new();
        for (n, t, off) in members {
            tail.extend([self.s(n), *t, *off]);
        }
        self.ty(name, kind, flag, members.len() as u32, size, &tail)
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Ids of the sample blob's types, for the tests' expectations.
pub mod id {
    pub const INT: u32 = 1;
    pub const UCHAR: u32 = 2;
    pub const U8: u32 = 3;
    pub const U8X16: u32 = 4;
    pub const PAIR: u32 = 5;
    pub const ANON_UNION: u32 = 6;
    pub const OUTER: u32 = 7;
    pub const UINT5: u32 = 8;
    pub const UINT3_AT2: u32 = 9;
    pub const OLD_STYLE: u32 = 10;
    pub const OUTER_PTR: u32 = 11;
    pub const CONST_PTR: u32 = 12;
    pub const VOLATILE_INT: u32 = 13;
    pub const RESTRICT_PTR: u32 = 14;
    pub const OUTER_T: u32 = 15;
    pub const OUTER_TT: u32 = 16;
    pub const PROTO: u32 = 17;
    pub const DO_THING: u32 = 18;
    pub const FWD_OPAQUE: u32 = 19;
    pub const COLOR: u32 = 20;
    pub const BIG: u32 = 21;
    pub const DOUBLE: u32 = 22;
    pub const VAR: u32 = 23;
    pub const DATASEC: u32 = 24;
    pub const DECL_TAG: u32 = 25;
    pub const TYPE_TAG: u32 = 26;
    pub const TAGGED_PTR: u32 = 27;
    pub const VARIADIC_PROTO: u32 = 28;
    pub const PRINTK_LIKE: u32 = 29;
    pub const FWD_LATER: u32 = 30;
    pub const LATER: u32 = 31;
    pub const PAIR_DUP: u32 = 32;
    pub const COLOR2_FWD: u32 = 33;
    pub const COLOR2: u32 = 34;
    pub const CONST_CHAR: u32 = 36;
    pub const CHAR_PP: u32 = 38;
    pub const MATRIX: u32 = 40;
}

/// One of every kind, both bitfield encodings, anonymous members, typedef chains,
/// duplicate and forward declarations.
pub fn sample() -> Blob {
    let mut b = Blob::new();
    b.ty("int", INT, false, 0, 4, &[1 << 24 | 32]); // 1
    b.ty("unsigned char", INT, false, 0, 1, &[8]); // 2
    b.ty("u8", TYPEDEF, false, 0, 2, &[]); // 3
    b.ty("", ARRAY, false, 0, 0, &[3, 1, 16]); // 4: u8[16]
    b.aggregate("pair", STRUCT, false, 8, &[("a", 1, 0), ("b", 1, 32)]); // 5
    b.aggregate("", UNION, false, 8, &[("x", 1, 0), ("p", 5, 0)]); // 6
    b.aggregate(
        "outer",
        STRUCT,
        true,
        32,
        &[
            ("tag", 1, 0),
            ("", 6, 32),
            ("bits", 3, 3 << 24 | 96),
            ("flag", 2, 1 << 24 | 99),
            ("addr", 4, 128),
        ],
    ); // 7
    b.ty("unsigned int", INT, false, 0, 4, &[5]); // 8: 5-bit int, old-style bitfield
    b.ty("unsigned int", INT, false, 0, 4, &[2 << 16 | 3]); // 9: 3 bits at bit 2
    b.aggregate(
        "old_style",
        STRUCT,
        false,
        4,
        &[("lo", 8, 0), ("mid", 9, 10), ("whole", 1, 0)],
    ); // 10
    b.ty("", PTR, false, 0, 7, &[]); // 11
    b.ty("", CONST, false, 0, 11, &[]); // 12
    b.ty("", VOLATILE, false, 0, 1, &[]); // 13
    b.ty("", RESTRICT, false, 0, 11, &[]); // 14
    b.ty("outer_t", TYPEDEF, false, 0, 7, &[]); // 15
    b.ty("outer_tt", TYPEDEF, false, 0, 15, &[]); // 16
    let (o, n) = (b.s("o"), b.s("n"));
    b.ty("", FUNC_PROTO, false, 2, 1, &[o, 11, n, 1]); // 17
    b.ty("do_thing", FUNC, false, 1, 17, &[]); // 18
    b.ty("opaque", FWD, false, 0, 0, &[]); // 19
    let (red, green) = (b.s("RED"), b.s("GREEN"));
    b.ty("color", ENUM, true, 2, 4, &[red, -1i32 as u32, green, 2]); // 20
    let huge = b.s("HUGE");
    b.ty("big", ENUM64, false, 1, 8, &[huge, 0, 1 << 8]); // 21: 1 << 40
    b.ty("double", FLOAT, false, 0, 8, &[]); // 22
    b.ty("counter", VAR, false, 0, 1, &[1]); // 23
    b.ty(".data", DATASEC, false, 1, 4, &[23, 0, 4]); // 24
    b.ty("tagged", DECL_TAG, false, 0, 18, &[-1i32 as u32]); // 25
    b.ty("user", TYPE_TAG, false, 0, 1, &[]); // 26
    b.ty("", PTR, false, 0, 26, &[]); // 27
    let fmt = b.s("fmt");
    b.ty("", FUNC_PROTO, false, 2, 0, &[fmt, 27, 0, 0]); // 28
    b.ty("printk_like", FUNC, false, 0, 28, &[]); // 29
    b.ty("later", FWD, false, 0, 0, &[]); // 30
    b.aggregate("later", STRUCT, false, 0, &[]); // 31
    b.aggregate("pair", STRUCT, false, 4, &[("a", 1, 0)]); // 32: duplicate name
    b.ty("color2", ENUM, false, 0, 4, &[]); // 33: enum forward declaration
    let blue = b.s("BLUE");
    b.ty("color2", ENUM, false, 1, 4, &[blue, 7]); // 34
    b.ty("char", INT, false, 0, 1, &[2 << 24 | 8]); // 35
    b.ty("", CONST, false, 0, 35, &[]); // 36: const char
    b.ty("", PTR, false, 0, 36, &[]); // 37: const char *
    b.ty("", PTR, false, 0, 37, &[]); // 38: const char **
    b.ty("", ARRAY, false, 0, 0, &[1, 1, 3]); // 39: int[3]
    b.ty("", ARRAY, false, 0, 0, &[39, 1, 2]); // 40: int[2][3]
    b
}
