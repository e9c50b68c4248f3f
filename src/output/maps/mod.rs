//! Printing maps exactly like bpftrace 0.17 (`print(@x, top, div)` and at exit), in text
//! and `-f json`, from values already read from the kernel and merged over CPUs.
//!
//! # What the kernel side stores (bpftrace 0.17's layout, which the merges here assume)
//!
//! Maps are `BPF_MAP_TYPE_PERCPU_HASH` for count/sum/min/max/avg/stats/hist/lhist, a
//! 1-entry `PERCPU_ARRAY` (4-byte key 0) for a keyless `count()`, a plain `HASH` otherwise.
//! Keys are the user key parts concatenated, each at its key type's size (ints
//! little-endian, strings zero-padded); a keyless map uses one 8-byte zero key. Every
//! aggregation slot is 8 bytes per CPU; a missing entry reads as 0 in the BPF code:
//! - `count()`: u64, `slot += 1`. Merge: [`merge_count`].
//! - `sum(v)`: v widened to 64 bits (sign-extended if signed), `slot += v`; signedness of
//!   `v` decides [`MapValue::Sum`] vs [`MapValue::USum`]. Merge: [`merge_sum`] / [`merge_count`].
//! - `min(v)`: stores `inv = 0xffffffff - v` when `inv >= slot` (signed); so a first
//!   value above 0xffffffff never creates the entry. Merge: [`merge_min`].
//! - `max(v)`: stores `v` when `v >= slot` (signed), so max() of only negative values never
//!   creates the entry. Merge: [`merge_max`] (unsigned, as bpftrace prints it).
//! - `avg(v)` / `stats(v)`: two entries per user key, key + u64 0 holding the count
//!   (`+= 1`) and key + u64 1 holding the total (`+= v`). Merge both with [`merge_sum`].
//! - `hist(v)`: key + u64 [`log2_bucket`]`(v)` (0..=33), `slot += 1`; `lhist(v, min, max,
//!   step)`: key + u64 [`linear_bucket`] (0..=1001), `slot += 1`. Merge each bucket with
//!   [`merge_count`]; bpftrace keeps 65 (hist) / 1002 (lhist) buckets per key.
//! - `clear()` deletes every entry, except in the keyless count array, which it zeroes;
//!   `zero()` writes 0 into every slot; `delete()` removes one entry.
//!
//! # What bpftrace prints (all measured; see tests/map_output_vs_bpftrace.rs)
//! - At exit, after `"\n\n"` (which [`super::Printer::finish`] writes), every map
//!   the program names, in byte order of the name (`@` < `@B` < `@_` < `@a`): bpftrace
//!   creates them from a `std::map<std::string, ...>`. Maps that are empty (never written,
//!   cleared, deleted) are printed too: an empty line in text, nothing in JSON.
//! - Text: entries joined by `"\n"`, then `"\n"` — so no blank line between two plain
//!   maps; a hist entry is `@h[k]: \n` plus its bucket lines, so hists end in a blank line;
//!   avg and stats maps end with `"\n\n"`.
//! - Order: count/sum/min/max and plain ints by value ascending, equal values in the
//!   kernel's iteration order (which varies run to run: pass entries in `bpf_get_next_key`
//!   order); other plain values (strings, tuples) by key, parts compared in turn, ints
//!   unsigned (`@s[-2]` after `@s[256]`), strings bytewise; hist/lhist by the total of
//!   their buckets and avg/stats by their average, starting from key-byte order (ints
//!   little-endian: `[256]` before `[1]`). bpftrace uses the unstable `std::sort` for all
//!   but the by-key order, so `sort.rs` reproduces libstdc++'s introsort (which keeps
//!   equal values in order only up to 16 entries).
//! - JSON: `{"type": "map"|"hist"|"stats", "data": {"@x": V}}` (`hist` for lhist too,
//!   `stats` for avg too); keyed maps `{"@x": {"k1,k2": V, ...}}` with the key parts
//!   joined by `,`; strings quoted with bpftrace's escaping, tuples `[1,"a"]`, hists
//!   `[{"min": 2, "max": 3, "count": 1}, ...]`, stats `{"count": .., "average": ..,
//!   "total": ..}`. `print()` of a keyless map is `{"type": "map", "data": {"@x": 7}}`.
//! - `print(@x, top, div)`: only the last `top` entries of that order (0: all); counts,
//!   sums, min, max, avg, plain ints (also inside tuples) and hist counts are divided by
//!   `div` (0 means 1; signed types divide signed); the hist bars, lhist counts and stats
//!   are not. stats ignores both `top` and `div`. Both are u32 in bpftrace's event.

mod bucket;
mod json;
mod merge;
mod sort;
mod text;

pub use bucket::{linear_bucket, log2_bucket, LOG2_MAX_BUCKET};
pub use merge::{merge_count, merge_max, merge_min, merge_sum};

use std::cmp::Ordering;

use crate::event::ValueLayout;

/// One key part or plain value from its bytes (`layout.size()` of them): integers
/// little-endian of their size, sign-extended when signed (unsigned ones stay
/// unsigned only where `unsigned_ok`, as in values, not keys), strings up to their
/// first NUL, tuples element by element.
pub fn decode(layout: &ValueLayout, bytes: &[u8], unsigned_ok: bool) -> Scalar {
    let int = |size: usize, signed: bool| {
        let mut word = [0u8; 8];
        let n = size.min(8).min(bytes.len());
        word[..n].copy_from_slice(&bytes[..n]);
        let v = u64::from_le_bytes(word);
        let shift = 64 - 8 * size.clamp(1, 8) as u32;
        match signed {
            true => ((v << shift) as i64) >> shift,
            false => v as i64,
        }
    };
    match layout {
        &ValueLayout::Int { size, signed } => {
            let v = int(size, signed);
            if signed || !unsigned_ok {
                Scalar::Int(v)
            } else {
                Scalar::UInt(v as u64)
            }
        }
        ValueLayout::Str { .. } => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Scalar::Str(String::from_utf8_lossy(&bytes[..end]).into_owned())
        }
        ValueLayout::Buf { .. } => {
            Scalar::Str(crate::format::BufferStyle::Ascii.format(ValueLayout::buffer(bytes)))
        }
        ValueLayout::Pointer if unsigned_ok => Scalar::Int(int(8, true)),
        ValueLayout::Pointer => Scalar::Bare(format!("0x{:x}", int(8, false))),
        ValueLayout::MacAddr => Scalar::Bare(ValueLayout::mac_address(bytes)),
        ValueLayout::Timestamp { .. } => Scalar::Bare(crate::output::timestamp(bytes)),
        // Unquoted in JSON, as bpftrace 0.17 prints it.
        ValueLayout::CgroupPath { .. } => Scalar::Bare(crate::output::cgroup::paths(bytes)),
        ValueLayout::Inet => match <&[u8; 24]>::try_from(&bytes[..bytes.len().min(24)]) {
            Ok(inet) => Scalar::Str(crate::output::ntop(inet)),
            Err(_) => Scalar::Str(String::new()),
        },
        ValueLayout::Username => Scalar::Str(crate::output::username(int(8, false) as u64)),
        ValueLayout::Strerror => Scalar::Bare(crate::output::strerror(int(8, false) as i32)),
        // bpftrace indents a stack's frames by 4 in a key, 8 in a value.
        &ValueLayout::Stack { user, stack } => {
            let indent = if unsigned_ok { 8 } else { 4 };
            Scalar::Str(crate::symbols::stack(
                int(8, false) as u64,
                user,
                stack,
                indent,
            ))
        }
        ValueLayout::Ksym => Scalar::Str(crate::symbols::ksym(int(8, false) as u64)),
        ValueLayout::Usym => {
            let pid = bytes.get(8..).map_or(0, |rest| {
                let mut word = [0u8; 8];
                let n = rest.len().min(8);
                word[..n].copy_from_slice(&rest[..n]);
                u64::from_le_bytes(word)
            });
            Scalar::Str(crate::symbols::usym(int(8, false) as u64, pid as u32))
        }
        ValueLayout::Tuple { elems, .. } => {
            Scalar::Tuple(elems.iter().map(|e| part(e, bytes, unsigned_ok)).collect())
        }
        ValueLayout::Struct { fields, .. } => Scalar::Struct(
            fields
                .iter()
                .map(|(name, e)| (name.clone(), part(e, bytes, unsigned_ok)))
                .collect(),
        ),
        ValueLayout::Array { elems, .. } => {
            Scalar::Array(elems.iter().map(|e| part(e, bytes, unsigned_ok)).collect())
        }
    }
}

/// The part of a tuple, struct or array at `e`'s offset.
fn part(e: &crate::event::ArgLayout, bytes: &[u8], unsigned_ok: bool) -> Scalar {
    let end = (e.offset + e.value.size()).min(bytes.len());
    decode(&e.value, &bytes[e.offset.min(end)..end], unsigned_ok)
}

/// A key part as bpftrace prints it in `@x[...]` (struct keys `{.a=1,.b=x}`).
pub fn key_text(part: &Scalar) -> String {
    let mut out = String::new();
    text::key_part(part, &mut out);
    out
}

/// `print(value)` of a non-map value, as bpftrace 0.17 prints it: the value as in a
/// map (`5`, `abc`, `(1, abc)`) and a newline; in JSON `{"type": "value", "data": 5}`.
pub fn print_value(value: &Scalar, json: bool, out: &mut String) {
    if json {
        out.push_str("{\"type\": \"value\", \"data\": ");
        json::scalar(value, 1, out);
        out.push_str("}\n");
    } else {
        text::scalar(value, 1, out);
        out.push('\n');
    }
}

/// One key part or plain map value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// A signed integer; key parts of any width are decoded signed (bpftrace prints key
    /// ints with `read_data<intN_t>`, so `@x[(uint64)-1]` prints `@x[-1]`).
    Int(i64),
    /// An unsigned plain value (`@y = (uint64)-1` prints 18446744073709551615).
    UInt(u64),
    /// A string, up to its first NUL.
    Str(String),
    /// Text bpftrace 0.17 writes unquoted even in JSON (a `macaddr()` value).
    Bare(String),
    /// A tuple value: `(1, a)` in text, `[1,"a"]` in JSON. Not allowed as a key.
    Tuple(Vec<Scalar>),
    /// A struct or union value: `{ .a = 1, .b = x }` (as a key `{.a=1,.b=x}`), in JSON
    /// `{ "a": 1, "b": "x" }`.
    Struct(Vec<(String, Scalar)>),
    /// An array value: `[1,2]` in text and JSON.
    Array(Vec<Scalar>),
}

/// A map entry's key parts (none for a keyless map). A single part, as in nearly every
/// map, is kept inline: 100k keys at exit would otherwise be 100k heap blocks to
/// allocate, visit and free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(KeyParts);

/// Always built by [`Key::from`], so equal keys have equal forms.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyParts {
    One(Scalar),
    Other(Vec<Scalar>),
}

impl From<Vec<Scalar>> for Key {
    fn from(parts: Vec<Scalar>) -> Key {
        match <[Scalar; 1]>::try_from(parts) {
            Ok([part]) => Key(KeyParts::One(part)),
            Err(parts) => Key(KeyParts::Other(parts)),
        }
    }
}

impl From<Scalar> for Key {
    fn from(part: Scalar) -> Key {
        Key(KeyParts::One(part))
    }
}

impl std::ops::Deref for Key {
    type Target = [Scalar];
    fn deref(&self) -> &[Scalar] {
        match &self.0 {
            KeyParts::One(part) => std::slice::from_ref(part),
            KeyParts::Other(parts) => parts,
        }
    }
}

/// An entry's value, already merged over CPUs (see the `merge_*` functions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapValue {
    Scalar(Scalar),
    Count(u64),
    /// `sum()` of signed values.
    Sum(i64),
    /// `sum()` of unsigned values.
    USum(u64),
    Min(i64),
    Max(u64),
    Avg {
        sum: i64,
        count: u64,
    },
    Stats {
        sum: i64,
        count: u64,
    },
    /// Bucket counts indexed by [`log2_bucket`]; missing trailing buckets are 0.
    Hist(Vec<u64>),
    /// Bucket counts indexed by [`linear_bucket`] with the map's lhist arguments.
    Lhist {
        min: i64,
        max: i64,
        step: i64,
        buckets: Vec<u64>,
    },
}

/// What kind of map: decides the separator after it and its JSON type, also when empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Plain values (`@x = 1`, `@s = "str"`, tuples).
    Plain,
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Stats,
    Hist,
    Lhist,
}

/// One map as read at print time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDump {
    /// `@x`, or `@` for the anonymous map.
    pub name: String,
    pub kind: MapKind,
    /// Whether the map takes a key (`@x[...]`); decides `@x: ` vs `@x[..]: ` and JSON's braces.
    pub keyed: bool,
    /// Key parts (empty for a keyless map) and values, in the kernel's iteration order.
    pub entries: Vec<(Key, MapValue)>,
}

/// Text for `print(@x, top, div)` (and, with 0 and 0, for exit).
pub fn print_text(map: &MapDump, top: usize, div: u64, out: &mut String) {
    text::map(map, &shown(map, top), div_arg(div), out);
}

/// The JSON line for `print(@x, top, div)` under `-f json` (nothing for an empty map).
pub fn print_json(map: &MapDump, top: usize, div: u64, out: &mut String) {
    json::map(map, &shown(map, top), div_arg(div), out);
}

/// [`print_json`]'s entries with typed keys, for `--json-envelope`.
pub fn print_json_entries(map: &MapDump, top: usize, div: u64, out: &mut String) {
    json::entries(map, &shown(map, top), div_arg(div), out);
}

/// The maps in the order bpftrace prints them at exit: by name, bytewise.
pub fn exit_order(maps: &[MapDump]) -> Vec<&MapDump> {
    let mut order: Vec<&MapDump> = maps.iter().collect();
    order.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    order
}

/// All maps as bpftrace prints them at exit, after its `"\n\n"`: sorted by name.
pub fn print_all_at_exit(maps: &[MapDump], out: &mut String, json: bool) {
    // A guess of ~32 bytes a line saves most of the regrowing copies of a big output.
    out.reserve(maps.iter().map(|m| m.entries.len() * 32).sum());
    for map in exit_order(maps) {
        if json {
            print_json(map, 0, 0, out);
        } else {
            print_text(map, 0, 0, out);
        }
    }
}

/// bpftrace's u32 `div`, 0 meaning 1.
fn div_arg(div: u64) -> u64 {
    u64::from((div as u32).max(1))
}

/// Indices of the entries printed, in order: sorted as bpftrace sorts, the last `top`.
fn shown(map: &MapDump, top: usize) -> Vec<usize> {
    let e = &map.entries;
    let mut idx: Vec<usize> = (0..e.len()).collect();
    let by_key_bytes = matches!(
        map.kind,
        MapKind::Hist | MapKind::Lhist | MapKind::Avg | MapKind::Stats
    );
    if by_key_bytes {
        // bpftrace gathers these in a std::map keyed by the key bytes first.
        idx.sort_by(|&a, &b| key_bytes_cmp(&e[a].0, &e[b].0));
    }
    // Each entry's sort value once, not per comparison (~2 million of them for 100k).
    let values: Option<Vec<SortValue>> = e.iter().map(|(_, v)| sort_value(v)).collect();
    if let Some(values) = values {
        sort::cxx_sort(&mut idx, &|a, b| values[a] < values[b]);
    } else {
        idx.sort_by(|&a, &b| key_sort_cmp(&e[a].0, &e[b].0));
    }
    let top = top as u32 as usize;
    if map.kind != MapKind::Stats && top != 0 && idx.len() > top {
        idx.drain(..idx.len() - top);
    }
    idx
}

/// What bpftrace sorts a value by; `None` for values it sorts by key instead.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Signed(i64),
    Unsigned(u64),
}

fn sort_value(v: &MapValue) -> Option<SortValue> {
    use SortValue::{Signed, Unsigned};
    Some(match v {
        MapValue::Scalar(Scalar::Int(i)) => Signed(*i),
        MapValue::Scalar(Scalar::UInt(u)) => Unsigned(*u),
        MapValue::Scalar(_) => return None,
        // count() is a signed type in bpftrace (CreateCount(true)).
        MapValue::Count(c) => Signed(*c as i64),
        MapValue::Sum(s) | MapValue::Min(s) => Signed(*s),
        MapValue::USum(u) | MapValue::Max(u) => Unsigned(*u),
        MapValue::Avg { sum, count } | MapValue::Stats { sum, count } => {
            Signed(average(*sum, *count))
        }
        MapValue::Hist(b) | MapValue::Lhist { buckets: b, .. } => Unsigned(merge_count(b)),
    })
}

/// bpftrace's `total / count` on int64s, 0 for no count.
fn average(sum: i64, count: u64) -> i64 {
    match count as i64 {
        0 => 0,
        c => sum.wrapping_div(c),
    }
}

/// `std::map<std::vector<uint8_t>>` order of the raw keys: ints as 8 little-endian bytes,
/// strings bytewise (their zero padding makes a prefix sort first).
fn key_bytes_cmp(a: &[Scalar], b: &[Scalar]) -> Ordering {
    fn part(a: &Scalar, b: &Scalar) -> Ordering {
        match (int_bits(a), int_bits(b)) {
            (Some(x), Some(y)) => x.to_le_bytes().cmp(&y.to_le_bytes()),
            _ => key_sort_part(a, b),
        }
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| part(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// bpftrace's `sort_by_key`: parts compared in turn, ints as u64, strings with strncmp,
/// other types not at all (a stable sort keeps them as they came).
fn key_sort_cmp(a: &[Scalar], b: &[Scalar]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| key_sort_part(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn key_sort_part(a: &Scalar, b: &Scalar) -> Ordering {
    match (a, b) {
        (Scalar::Str(x) | Scalar::Bare(x), Scalar::Str(y) | Scalar::Bare(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        _ => match (int_bits(a), int_bits(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        },
    }
}

fn int_bits(s: &Scalar) -> Option<u64> {
    match s {
        Scalar::Int(i) => Some(*i as u64),
        Scalar::UInt(u) => Some(*u),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
