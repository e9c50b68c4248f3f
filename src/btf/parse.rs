//! Decoding and validating a raw BTF blob: header, type records, string section.
//! Everything later lookups rely on (bounds, string offsets, type ids, chain depth) is
//! checked here once, so queries never index out of range or loop.

use super::error::BtfError;
use std::ops::Range;

use super::raw::*;

const MAGIC: u16 = 0xeb9f;
const MAGIC_SWAPPED: u16 = 0x9feb;
const VERSION: u8 = 1;
/// `struct btf_header` as of version 1.
pub(super) const HEADER_LEN: usize = 24;

/// A validated blob's layout: type records (index = type id, 0 is void) and where the
/// type and string sections lie in the blob.
pub(super) struct Parsed {
    /// Where each type's record starts in the type section ([`Types::starts`]).
    pub types: Vec<u32>,
    /// The ids the name index holds from the start ([`super::index::indexed_at_load`]),
    /// found on this walk so building the index need not walk all records again.
    pub named: Vec<u32>,
    pub type_range: Range<usize>,
    pub str_range: Range<usize>,
}

fn malformed(msg: String) -> BtfError {
    BtfError::Malformed(msg)
}

/// Checks magic, version and header length, which need only the first 8 bytes.
/// Returns the header length.
fn check_header(bytes: &[u8]) -> Result<usize, BtfError> {
    let file_len = bytes.len();
    if file_len < 8 {
        return Err(malformed(format!(
            "BTF is truncated: {file_len} bytes, shorter than the {HEADER_LEN}-byte header"
        )));
    }
    match u16_at(bytes, 0) {
        MAGIC => {}
        MAGIC_SWAPPED => {
            return Err(BtfError::Unsupported(
                "BTF is big-endian; rbt reads only little-endian BTF (the byte order of this host)"
                    .into(),
            ))
        }
        m => {
            return Err(malformed(format!(
                "not BTF: magic at byte 0 is {m:#06x}, expected 0xeb9f"
            )))
        }
    }
    if bytes[2] != VERSION {
        return Err(BtfError::Unsupported(format!(
            "BTF version {} (byte 2) is not supported, expected {VERSION}",
            bytes[2]
        )));
    }
    let hdr_len = u32_at(bytes, 4) as usize;
    if hdr_len < HEADER_LEN {
        return Err(malformed(format!(
            "BTF header length at byte 4 is {hdr_len}, less than the minimum {HEADER_LEN}"
        )));
    }
    Ok(hdr_len)
}

/// Where a blob starting with `head` (its first [`HEADER_LEN`] bytes, or all of a
/// shorter file) ends by its header: the end of its last section. The header is
/// checked first, so reading a file that is not BTF stops here.
pub(super) fn blob_end(head: &[u8]) -> Result<u64, BtfError> {
    let hdr_len = check_header(head)? as u64;
    if head.len() < HEADER_LEN {
        return Ok(head.len() as u64); // all there is; `parse` says what is missing
    }
    let end = |field: usize| u32_at(head, field) as u64 + u32_at(head, field + 4) as u64;
    Ok(hdr_len + end(8).max(end(16)))
}

/// The error for bytes past the end of the last section (`extra` of them, if known).
/// The kernel's own files (`/sys/kernel/btf/*`) are exactly header and sections long.
pub(super) fn trailing_bytes(end: u64, extra: Option<u64>) -> BtfError {
    let what = extra.map_or("more bytes".to_string(), |n| format!("{n} more bytes"));
    malformed(format!(
        "not a raw BTF file: its sections end at byte {end}, but it has {what} after them"
    ))
}

/// The header, the sections' bounds and the type records' boundaries: what indexing
/// needs. [`validate`] checks the rest; the two can run at the same time.
pub(super) fn layout(bytes: &[u8]) -> Result<Parsed, BtfError> {
    let file_len = bytes.len();
    let hdr_len = check_header(bytes)?;
    if file_len < hdr_len {
        return Err(malformed(format!(
            "BTF is truncated: header is {hdr_len} bytes, file has {file_len}"
        )));
    }
    let type_range = section(bytes, hdr_len, 8, "type data")?;
    let str_range = section(bytes, hdr_len, 16, "string data")?;
    let end = hdr_len.max(type_range.end).max(str_range.end);
    if file_len > end {
        return Err(trailing_bytes(end as u64, Some((file_len - end) as u64)));
    }
    let (types, named) = split_records(&bytes[type_range.clone()], type_range.start)?;
    Ok(Parsed {
        types,
        named,
        type_range,
        str_range,
    })
}

/// Everything later lookups rely on beyond [`layout`]: the string section, names, type
/// references, typedef chains.
pub(super) fn validate(bytes: &[u8], parsed: &Parsed) -> Result<(), BtfError> {
    let str_range = parsed.str_range.clone();
    let strings = &bytes[str_range.clone()];
    // Validated once here, so names can be handed out as &str later.
    if let Err(e) = std::str::from_utf8(strings) {
        return Err(malformed(format!(
            "BTF string section is not UTF-8 at byte {}",
            str_range.start + e.valid_up_to()
        )));
    }
    if strings.first() != Some(&0) || strings.last() != Some(&0) {
        return Err(malformed(format!(
            "BTF string section at byte {} must start and end with a NUL byte",
            str_range.start
        )));
    }
    Validator {
        types: Types {
            starts: &parsed.types,
            data: &bytes[parsed.type_range.clone()],
        },
        type_data: &bytes[parsed.type_range.clone()],
        strings,
        type_base: parsed.type_range.start,
    }
    .run()
}

/// The (offset, length) pair at `field` of the header, checked against the file.
fn section(
    bytes: &[u8],
    hdr_len: usize,
    field: usize,
    what: &str,
) -> Result<Range<usize>, BtfError> {
    let off = u32_at(bytes, field) as u64;
    let len = u32_at(bytes, field + 4) as u64;
    let start = hdr_len as u64 + off;
    let end = start + len;
    if end > bytes.len() as u64 {
        return Err(malformed(format!(
            "BTF is truncated: header says {len} bytes of {what} at byte {start}, file has {}",
            bytes.len()
        )));
    }
    Ok(start as usize..end as usize)
}

/// Walk the type section record by record; ids are assigned in order from 1.
fn split_records(data: &[u8], base: usize) -> Result<(Vec<u32>, Vec<u32>), BtfError> {
    // Smallest record is 12 bytes; reserving by that bound avoids regrowth.
    let mut types = Vec::with_capacity(data.len() / 16 + 1);
    types.push(0); // void: no record
    let mut named = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let id = types.len();
        let left = data.len() - pos;
        if left < TYPE_HEADER_LEN {
            return Err(malformed(format!(
                "BTF type [{id}] at byte {}: record truncated, needs {TYPE_HEADER_LEN} bytes, {left} left in the type section",
                base + pos
            )));
        }
        let Some(head) = data.get(pos..pos + TYPE_HEADER_LEN) else {
            break; // ruled out by `left` above
        };
        let t = RawType {
            name_off: le32(&head[0..4]),
            info: le32(&head[4..8]),
            size_or_type: le32(&head[8..12]),
            data: (pos + TYPE_HEADER_LEN) as u32,
        };
        let Some(trailing) = t.trailing_len() else {
            return Err(malformed(format!(
                "BTF type [{id}] at byte {}: unknown kind {}",
                base + pos,
                t.kind()
            )));
        };
        let need = TYPE_HEADER_LEN + trailing;
        if need > left {
            return Err(malformed(format!(
                "BTF type [{id}] at byte {}: {} record with vlen {} needs {need} bytes, {left} left in the type section",
                base + pos,
                kind_name(t.kind()),
                t.vlen()
            )));
        }
        if id > u32::MAX as usize - 1 {
            return Err(malformed("BTF has more than 2^32 types".into()));
        }
        if super::index::indexed_at_load(&t) {
            named.push(id as u32);
        }
        types.push(pos as u32);
        pos += need;
    }
    Ok((types, named))
}

struct Validator<'a> {
    types: Types<'a>,
    type_data: &'a [u8],
    strings: &'a [u8],
    type_base: usize,
}

impl Validator<'_> {
    fn at(&self, t: &RawType) -> usize {
        self.type_base + t.data as usize - TYPE_HEADER_LEN
    }

    fn err(&self, id: usize, t: &RawType, what: String) -> BtfError {
        malformed(format!(
            "BTF type [{id}] {} at byte {}: {what}",
            kind_name(t.kind()),
            self.at(t)
        ))
    }

    fn name(&self, id: usize, t: &RawType, off: u32) -> Result<(), BtfError> {
        let s = self.strings;
        // In range only: reading each name's first byte here would touch the whole string
        // section at random (most of validation's time). An offset inside a multi-byte
        // character is no danger: `str_at` checks each name it hands out as UTF-8.
        if off as usize >= s.len() {
            return Err(self.err(
                id,
                t,
                format!(
                    "name offset {off} is outside the {}-byte string section",
                    s.len()
                ),
            ));
        }
        Ok(())
    }

    fn type_ref(&self, id: usize, t: &RawType, target: u32) -> Result<(), BtfError> {
        if target as usize >= self.types.len() {
            return Err(self.err(
                id,
                t,
                format!(
                    "refers to type [{target}], but the last type is [{}]",
                    self.types.len() - 1
                ),
            ));
        }
        Ok(())
    }

    fn word(&self, t: &RawType, i: usize) -> u32 {
        u32_at(self.type_data, t.data as usize + 4 * i)
    }

    /// A type's `vlen` trailing records of `size` bytes each (`split_records` checked
    /// they are all inside the section), as fixed-size chunks.
    fn records(&self, t: &RawType, size: usize) -> std::slice::ChunksExact<'_, u8> {
        let start = t.data as usize;
        let end = start.saturating_add(size * t.vlen());
        self.type_data
            .get(start..end)
            .unwrap_or_default()
            .chunks_exact(size)
    }

    fn run(&self) -> Result<(), BtfError> {
        for (id, t) in self.types.iter().enumerate().skip(1) {
            let t = &t;
            self.name(id, t, t.name_off)?;
            let vlen = t.vlen();
            let counted = matches!(
                t.kind(),
                KIND_STRUCT
                    | KIND_UNION
                    | KIND_ENUM
                    | KIND_ENUM64
                    | KIND_FUNC_PROTO
                    | KIND_DATASEC
                    | KIND_FUNC // vlen holds the linkage
            );
            if !counted && vlen != 0 {
                return Err(self.err(id, t, format!("vlen is {vlen}, must be 0")));
            }
            match t.kind() {
                KIND_INT => {
                    let enc = self.word(t, 0);
                    let bits = enc & 0xff;
                    let offset = (enc >> 16) & 0xff;
                    let size = t.size_or_type;
                    if !matches!(size, 1 | 2 | 4 | 8 | 16) || bits + offset > size * 8 {
                        return Err(self.err(
                            id,
                            t,
                            format!("size {size} with {bits} bits at bit offset {offset} is not a valid integer"),
                        ));
                    }
                }
                KIND_PTR | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_TYPE_TAG | KIND_VAR | KIND_DECL_TAG => {
                    self.type_ref(id, t, t.size_or_type)?;
                }
                KIND_FUNC => {
                    self.type_ref(id, t, t.size_or_type)?;
                    let proto = self.types.at(t.size_or_type as usize).kind();
                    if proto != KIND_FUNC_PROTO {
                        return Err(self.err(
                            id,
                            t,
                            format!(
                                "function type [{}] is {}, expected FUNC_PROTO",
                                t.size_or_type,
                                kind_name(proto)
                            ),
                        ));
                    }
                }
                KIND_FUNC_PROTO => {
                    self.type_ref(id, t, t.size_or_type)?;
                    for param in self.records(t, REC8) {
                        self.name(id, t, le32(&param[0..4]))?;
                        self.type_ref(id, t, le32(&param[4..8]))?;
                    }
                }
                KIND_ARRAY => {
                    self.type_ref(id, t, self.word(t, 0))?;
                    self.type_ref(id, t, self.word(t, 1))?;
                }
                KIND_STRUCT | KIND_UNION => {
                    for member in self.records(t, REC12) {
                        self.name(id, t, le32(&member[0..4]))?;
                        self.type_ref(id, t, le32(&member[4..8]))?;
                    }
                }
                KIND_DATASEC => {
                    for var in self.records(t, REC12) {
                        self.type_ref(id, t, le32(&var[0..4]))?;
                    }
                }
                KIND_ENUM => {
                    for value in self.records(t, REC8) {
                        self.name(id, t, le32(&value[0..4]))?;
                    }
                }
                KIND_ENUM64 => {
                    for value in self.records(t, REC12) {
                        self.name(id, t, le32(&value[0..4]))?;
                    }
                }
                _ => {}
            }
        }
        // Second pass: every reference is now known to be in range.
        for (id, t) in self.types.iter().enumerate().skip(1) {
            let t = &t;
            if t.is_modifier() {
                self.chain_ends(id, t)?;
            }
        }
        Ok(())
    }

    /// A typedef/const/... chain must reach a real type within MAX_DEPTH hops, so
    /// `resolve` is total and cycles are reported instead of looped on.
    fn chain_ends(&self, id: usize, t: &RawType) -> Result<(), BtfError> {
        let mut cur = *t;
        for _ in 0..MAX_DEPTH {
            cur = self.types.at(cur.size_or_type as usize);
            if !cur.is_modifier() {
                return Ok(());
            }
        }
        Err(self.err(
            id,
            t,
            format!("typedef/qualifier chain is cyclic or deeper than {MAX_DEPTH}"),
        ))
    }
}

/// A little-endian u32 of a 4-byte slice (callers slice constant ranges of chunks whose
/// length is known, so the compiler drops the bounds checks).
#[inline]
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
