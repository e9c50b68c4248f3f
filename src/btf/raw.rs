//! The on-disk encoding (include/uapi/linux/btf.h): kind numbers, record sizes, and
//! bounds-checked little-endian reads.

pub(super) const KIND_INT: u8 = 1;
pub(super) const KIND_PTR: u8 = 2;
pub(super) const KIND_ARRAY: u8 = 3;
pub(super) const KIND_STRUCT: u8 = 4;
pub(super) const KIND_UNION: u8 = 5;
pub(super) const KIND_ENUM: u8 = 6;
pub(super) const KIND_FWD: u8 = 7;
pub(super) const KIND_TYPEDEF: u8 = 8;
pub(super) const KIND_VOLATILE: u8 = 9;
pub(super) const KIND_CONST: u8 = 10;
pub(super) const KIND_RESTRICT: u8 = 11;
pub(super) const KIND_FUNC: u8 = 12;
pub(super) const KIND_FUNC_PROTO: u8 = 13;
pub(super) const KIND_VAR: u8 = 14;
pub(super) const KIND_DATASEC: u8 = 15;
pub(super) const KIND_FLOAT: u8 = 16;
pub(super) const KIND_DECL_TAG: u8 = 17;
pub(super) const KIND_TYPE_TAG: u8 = 18;
pub(super) const KIND_ENUM64: u8 = 19;

/// `struct btf_type`: name_off, info, size-or-type.
pub(super) const TYPE_HEADER_LEN: usize = 12;
/// `struct btf_member` / `btf_var_secinfo` / `btf_enum64` / `btf_array`.
pub(super) const REC12: usize = 12;
/// `struct btf_enum` / `btf_param`.
pub(super) const REC8: usize = 8;

/// By kind: (fixed bytes after the header, bytes per `vlen` entry); `None`: unknown kind.
const TRAILING: [Option<(u8, u8)>; 32] = {
    const GROUPS: [(&[u8], u8, u8); 5] = [
        (&[KIND_INT, KIND_VAR, KIND_DECL_TAG], 4, 0),
        (
            &[
                KIND_PTR,
                KIND_FWD,
                KIND_TYPEDEF,
                KIND_VOLATILE,
                KIND_CONST,
                KIND_RESTRICT,
                KIND_FUNC,
                KIND_FLOAT,
                KIND_TYPE_TAG,
            ],
            0,
            0,
        ),
        (&[KIND_ARRAY], REC12 as u8, 0),
        (
            &[KIND_STRUCT, KIND_UNION, KIND_DATASEC, KIND_ENUM64],
            0,
            REC12 as u8,
        ),
        (&[KIND_ENUM, KIND_FUNC_PROTO], 0, REC8 as u8),
    ];
    let mut table = [None; 32];
    let mut g = 0;
    while g < GROUPS.len() {
        let (kinds, fixed, per_vlen) = GROUPS[g];
        let mut k = 0;
        while k < kinds.len() {
            table[kinds[k] as usize] = Some((fixed, per_vlen));
            k += 1;
        }
        g += 1;
    }
    table
};

/// BTF_INT_ENCODING bits.
pub(super) const INT_SIGNED: u32 = 1;
pub(super) const INT_CHAR: u32 = 2;
pub(super) const INT_BOOL: u32 = 4;

/// Bound on typedef/const/array/anonymous-member chains, like the kernel's
/// MAX_RESOLVE_DEPTH: deeper (or cyclic) chains are rejected or cut off, never looped on.
pub(super) const MAX_DEPTH: usize = 32;

/// One type record, fixed part decoded; `data` is where its trailing records start
/// inside the type section.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawType {
    pub name_off: u32,
    pub info: u32,
    /// `size` for int/struct/union/enum/float/datasec, `type` for everything else.
    pub size_or_type: u32,
    pub data: u32,
}

impl RawType {
    /// Type id 0: `void`.
    pub const VOID: RawType = RawType {
        name_off: 0,
        info: 0,
        size_or_type: 0,
        data: 0,
    };

    #[inline]
    pub fn kind(&self) -> u8 {
        ((self.info >> 24) & 0x1f) as u8
    }

    #[inline]
    pub fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    #[inline]
    pub fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }

    /// Bytes of trailing records after the 12-byte header, or None for an unknown kind.
    /// A table, not a `match`: the layout pass asks for each of ~150k records of mixed
    /// kinds, and a jump per kind was mispredicted most of the time.
    #[inline]
    pub fn trailing_len(&self) -> Option<usize> {
        let (fixed, per_vlen) = TRAILING[self.kind() as usize]?;
        Some(fixed as usize + per_vlen as usize * self.vlen())
    }

    /// typedef/const/volatile/restrict/type_tag: names another type without changing it.
    pub fn is_modifier(&self) -> bool {
        matches!(
            self.kind(),
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
        )
    }
}

/// The type records of a type section by id: where each starts (4 bytes a type; a
/// decoded 16-byte copy of each of vmlinux's ~150k types was ~2 MB of peak RSS), each
/// decoded when asked for. Id 0 is `void`, which has no record.
#[derive(Clone, Copy)]
pub(super) struct Types<'a> {
    pub starts: &'a [u32],
    pub data: &'a [u8],
}

impl<'a> Types<'a> {
    /// Number of ids, void included.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn get(&self, id: usize) -> Option<RawType> {
        match id {
            0 => Some(RawType::VOID),
            _ => self
                .starts
                .get(id)
                .map(|&start| self.decode(start as usize)),
        }
    }

    /// Type `id`, or void for an id out of range (validation rules that out).
    pub fn at(&self, id: usize) -> RawType {
        self.get(id).unwrap_or(RawType::VOID)
    }

    /// Every type in id order, void first.
    pub fn iter(&self) -> impl Iterator<Item = RawType> + Clone + 'a {
        let this = *self;
        (0..self.len()).map(move |id| this.at(id))
    }

    fn decode(&self, start: usize) -> RawType {
        RawType {
            name_off: u32_at(self.data, start),
            info: u32_at(self.data, start + 4),
            size_or_type: u32_at(self.data, start + 8),
            data: (start + TYPE_HEADER_LEN) as u32,
        }
    }
}

/// Little-endian u32 at `off`; 0 when out of bounds (validation rules that out, so a 0
/// here means a bug, not a panic).
#[inline]
pub(super) fn u32_at(data: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = off.checked_add(4).and_then(|end| data.get(off..end)) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

pub(super) fn u16_at(data: &[u8], off: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = off.checked_add(2).and_then(|end| data.get(off..end)) {
        b.copy_from_slice(s);
    }
    u16::from_le_bytes(b)
}

pub(super) fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_INT => "INT",
        KIND_PTR => "PTR",
        KIND_ARRAY => "ARRAY",
        KIND_STRUCT => "STRUCT",
        KIND_UNION => "UNION",
        KIND_ENUM => "ENUM",
        KIND_FWD => "FWD",
        KIND_TYPEDEF => "TYPEDEF",
        KIND_VOLATILE => "VOLATILE",
        KIND_CONST => "CONST",
        KIND_RESTRICT => "RESTRICT",
        KIND_FUNC => "FUNC",
        KIND_FUNC_PROTO => "FUNC_PROTO",
        KIND_VAR => "VAR",
        KIND_DATASEC => "DATASEC",
        KIND_FLOAT => "FLOAT",
        KIND_DECL_TAG => "DECL_TAG",
        KIND_TYPE_TAG => "TYPE_TAG",
        KIND_ENUM64 => "ENUM64",
        _ => "UNKNOWN",
    }
}
