//! `@maps` from user space: read every entry, merge the per-CPU states of aggregations
//! and decode keys and values into what `output::maps` prints (at exit and for
//! `print()`); `clear()` and `zero()` as bpftrace does them, from user space.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::error::RuntimeError;
use super::load::Loaded;
use super::run::EventSink;
use crate::codegen::{Compiled, MapRole, MapSpec, MapValue, UserMap};
use crate::event::{ArgLayout, MapOp};
use crate::output::maps::{self as out, MapDump, MapKind, Scalar};
use crate::sema::AggKind;
use crate::sys;

/// The `@map` a catalog entry holds, if it is one.
pub fn user_map(spec: &MapSpec) -> Option<&UserMap> {
    match &spec.role {
        MapRole::User(user) => Some(user),
        _ => None,
    }
}

/// Everything in `@map` now, decoded and merged over CPUs.
pub fn dump(spec: &MapSpec, user: &UserMap, fd: BorrowedFd<'_>) -> io::Result<MapDump> {
    dump_with_sums(spec, user, fd).map(|(dump, _)| dump)
}

/// [`dump`], plus each entry's total of the values a hist/lhist counted (the sum of its
/// buckets' totals, read in the same pass; 0 for other maps): `--metrics`' `_sum`.
pub fn dump_with_sums(
    spec: &MapSpec,
    user: &UserMap,
    fd: BorrowedFd<'_>,
) -> io::Result<(MapDump, Vec<i64>)> {
    let entries = sys::map_entries(fd)?;
    let mut sums: Vec<i64> = Vec::new();
    let kind = kind_of(&user.value);
    let mut dump = MapDump {
        name: user.name.clone(),
        kind,
        keyed: user.keyed,
        entries: Vec::with_capacity(entries.len()),
    };
    let value_size = spec.value_size as usize;
    // Per-CPU slots of the entry at hand, reused: no allocation per entry.
    let (mut first, mut second) = (Slots::default(), Slots::default());
    match user.value {
        MapValue::Plain(ref layout) => {
            for e in entries.iter() {
                let value = out::MapValue::Scalar(out::decode(layout, e.value, true));
                dump.entries.push((key_parts(user, e.key), value));
            }
        }
        MapValue::Aggregate(agg) if agg.bucketed() => {
            // One entry per (key, bucket): gather each key's buckets.
            let mut by_key: HashMap<Vec<u8>, usize> = HashMap::new();
            let user_size = (spec.key_size as usize).saturating_sub(8);
            for e in entries.iter() {
                let (user_key, bucket) = e.key.split_at(user_size.min(e.key.len()));
                let bucket = u64_at(bucket, 0) as usize;
                let count = out::merge_count(first.read(&e, value_size, 0));
                let at = *by_key.entry(user_key.to_vec()).or_insert_with(|| {
                    let value = match agg {
                        AggKind::Lhist { min, max, step } => out::MapValue::Lhist {
                            min,
                            max,
                            step,
                            buckets: Vec::new(),
                        },
                        _ => out::MapValue::Hist(Vec::new()),
                    };
                    dump.entries.push((key_parts(user, user_key), value));
                    sums.push(0);
                    dump.entries.len() - 1
                });
                let total = out::merge_sum(second.read_signed(&e, value_size, 8));
                sums[at] = sums[at].wrapping_add(total);
                if let out::MapValue::Hist(buckets) | out::MapValue::Lhist { buckets, .. } =
                    &mut dump.entries[at].1
                {
                    if buckets.len() <= bucket {
                        buckets.resize(bucket + 1, 0);
                    }
                    buckets[bucket] = count;
                }
            }
        }
        MapValue::Aggregate(agg) => {
            for e in entries.iter() {
                let value = match agg {
                    AggKind::Count => {
                        out::MapValue::Count(out::merge_count(first.read(&e, value_size, 0)))
                    }
                    AggKind::Sum { signed: true } => {
                        out::MapValue::Sum(out::merge_sum(first.read_signed(&e, value_size, 0)))
                    }
                    AggKind::Sum { signed: false } => {
                        out::MapValue::USum(out::merge_count(first.read(&e, value_size, 0)))
                    }
                    AggKind::Min => {
                        out::MapValue::Min(out::merge_min(first.read_signed(&e, value_size, 0)))
                    }
                    AggKind::Max => {
                        out::MapValue::Max(out::merge_max(first.read(&e, value_size, 0)))
                    }
                    AggKind::Avg | AggKind::Stats => {
                        let count = out::merge_count(first.read(&e, value_size, 0));
                        let sum = out::merge_sum(second.read_signed(&e, value_size, 8));
                        if agg == AggKind::Avg {
                            out::MapValue::Avg { sum, count }
                        } else {
                            out::MapValue::Stats { sum, count }
                        }
                    }
                    AggKind::Hist | AggKind::Lhist { .. } => continue,
                };
                dump.entries.push((key_parts(user, e.key), value));
            }
            // bpftrace keeps a keyless count() in a one-entry array: it always prints.
            if agg == AggKind::Count && !user.keyed && dump.entries.is_empty() {
                dump.entries
                    .push((Vec::new().into(), out::MapValue::Count(0)));
            }
        }
    }
    sums.resize(dump.entries.len(), 0);
    Ok((dump, sums))
}

/// Every `@map`, as bpftrace prints them at exit.
pub fn dump_all(compiled: &Compiled, loaded: &Loaded) -> Result<Vec<MapDump>, RuntimeError> {
    compiled
        .maps
        .iter()
        .zip(&loaded.maps)
        .filter_map(|(spec, fd)| Some((spec, user_map(spec)?, fd)))
        .map(|(spec, user, fd)| {
            dump(spec, user, fd.as_fd())
                .map_err(|e| RuntimeError::sys(format!("read map {}", user.name), e))
        })
        .collect()
}

/// `print()`, `clear()` or `zero()` of map `index`, when its record arrives.
pub fn map_op<S: EventSink + ?Sized>(
    compiled: &Compiled,
    loaded: &Loaded,
    index: usize,
    op: MapOp,
    sink: &mut S,
) -> io::Result<()> {
    let (Some(spec), Some(fd)) = (compiled.maps.get(index), loaded.maps.get(index)) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("map operation on map {index}, which does not exist"),
        ));
    };
    let Some(user) = user_map(spec) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("map operation on {}, which is not a @map", spec.name),
        ));
    };
    match op {
        MapOp::Print { top, div } => sink.print_map(&dump(spec, user, fd.as_fd())?, top, div),
        MapOp::Clear => clear(fd.as_fd()),
        MapOp::Zero => zero(fd.as_fd()),
    }
}

/// Map updates lost to a full map are never silent: said once, on stderr, at exit.
pub fn report_drops(compiled: &Compiled, loaded: &Loaded) {
    let Some((_, fd)) = compiled
        .maps
        .iter()
        .zip(&loaded.maps)
        .find(|(spec, _)| spec.role == MapRole::Drops)
    else {
        return;
    };
    let mut value = [0u8; 8];
    if let Ok(true) = sys::map_lookup_elem(fd.as_fd(), &0u32.to_ne_bytes(), &mut value) {
        let dropped = u64::from_ne_bytes(value);
        if dropped > 0 {
            let limit = compiled
                .maps
                .iter()
                .find(|m| user_map(m).is_some())
                .map_or(0, |m| m.max_entries);
            eprintln!(
                "WARNING: {dropped} map updates were dropped because a map was full \
                 ({limit} entries; set BPFTRACE_MAP_KEYS_MAX to raise the limit)"
            );
        }
    }
}

/// `clear(@map)`: delete every entry.
pub fn clear(fd: BorrowedFd<'_>) -> io::Result<()> {
    for e in sys::map_entries(fd)?.iter() {
        sys::map_delete_elem(fd, e.key)?;
    }
    Ok(())
}

/// `zero(@map)`: every entry's value (on every CPU) set to 0.
pub fn zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    let entries = sys::map_entries(fd)?;
    let zeros = vec![0u8; entries.value_bytes()];
    for e in entries.iter() {
        sys::map_update_elem(fd, e.key, &zeros, 0)?;
    }
    Ok(())
}

fn kind_of(value: &MapValue) -> MapKind {
    match *value {
        MapValue::Plain(_) => MapKind::Plain,
        MapValue::Aggregate(agg) => match agg {
            AggKind::Count => MapKind::Count,
            AggKind::Sum { .. } => MapKind::Sum,
            AggKind::Min => MapKind::Min,
            AggKind::Max => MapKind::Max,
            AggKind::Avg => MapKind::Avg,
            AggKind::Stats => MapKind::Stats,
            AggKind::Hist => MapKind::Hist,
            AggKind::Lhist { .. } => MapKind::Lhist,
        },
    }
}

/// The key's parts (bpftrace prints key integers signed).
fn key_parts(user: &UserMap, key: &[u8]) -> out::Key {
    match user.key.as_slice() {
        [part] if user.keyed => field(part, key, false).into(),
        _ if !user.keyed => Vec::new().into(),
        parts => parts
            .iter()
            .map(|part| field(part, key, false))
            .collect::<Vec<_>>()
            .into(),
    }
}

fn field(part: &ArgLayout, bytes: &[u8], unsigned_ok: bool) -> Scalar {
    let end = (part.offset + part.value.size()).min(bytes.len());
    out::decode(&part.value, &bytes[part.offset.min(end)..end], unsigned_ok)
}

/// A buffer for the u64 at one offset of each CPU's state, refilled per entry.
#[derive(Default)]
struct Slots {
    unsigned: Vec<u64>,
    signed: Vec<i64>,
}

impl Slots {
    /// The u64 at `offset` of each CPU's state of `e`.
    fn read(&mut self, e: &sys::MapEntry<'_>, value_size: usize, offset: usize) -> &[u64] {
        self.unsigned.clear();
        self.unsigned
            .extend(e.per_cpu(value_size).map(|s| u64_at(s, offset)));
        &self.unsigned
    }

    /// [`Slots::read`], as i64s.
    fn read_signed(&mut self, e: &sys::MapEntry<'_>, value_size: usize, offset: usize) -> &[i64] {
        self.signed.clear();
        self.signed
            .extend(e.per_cpu(value_size).map(|s| u64_at(s, offset) as i64));
        &self.signed
    }
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(src) = bytes.get(offset..) {
        let n = src.len().min(8);
        word[..n].copy_from_slice(&src[..n]);
    }
    u64::from_le_bytes(word)
}
