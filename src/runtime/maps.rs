//! `@maps` from user space: read every entry, merge the per-CPU states of aggregations
//! and decode keys and values into what `output::maps` prints (at exit and for
//! `print()`); `clear()` and `zero()` as bpftrace does them, from user space.

use std::collections::HashMap;
use std::io;
use std::os::fd::BorrowedFd;

use crate::codegen::{MapRole, MapSpec, MapValue, UserMap};
use crate::event::{ArgLayout, ValueLayout};
use crate::output::maps::{self as out, MapDump, MapKind, Scalar};
use crate::output::ntop;
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
    let entries = sys::map_entries(fd)?;
    let kind = kind_of(user.value);
    let mut dump = MapDump {
        name: user.name.clone(),
        kind,
        keyed: user.keyed,
        entries: Vec::with_capacity(entries.len()),
    };
    let value_size = spec.value_size as usize;
    match user.value {
        MapValue::Plain(layout) => {
            for e in &entries {
                let value = out::MapValue::Scalar(scalar(layout, &e.value, true));
                dump.entries.push((key_parts(user, &e.key), value));
            }
        }
        MapValue::Aggregate(agg) if agg.bucketed() => {
            // One entry per (key, bucket): gather each key's buckets.
            let mut by_key: HashMap<Vec<u8>, usize> = HashMap::new();
            let user_size = (spec.key_size as usize).saturating_sub(8);
            for e in &entries {
                let (user_key, bucket) = e.key.split_at(user_size.min(e.key.len()));
                let bucket = u64_at(bucket, 0) as usize;
                let count = out::merge_count(&slots(e, value_size, 0));
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
                    dump.entries.len() - 1
                });
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
            for e in &entries {
                let first = slots(e, value_size, 0);
                let value = match agg {
                    AggKind::Count => out::MapValue::Count(out::merge_count(&first)),
                    AggKind::Sum { signed: true } => {
                        out::MapValue::Sum(out::merge_sum(&signed(&first)))
                    }
                    AggKind::Sum { signed: false } => out::MapValue::USum(out::merge_count(&first)),
                    AggKind::Min => out::MapValue::Min(out::merge_min(&signed(&first))),
                    AggKind::Max => out::MapValue::Max(out::merge_max(&first)),
                    AggKind::Avg | AggKind::Stats => {
                        let count = out::merge_count(&first);
                        let sum = out::merge_sum(&signed(&slots(e, value_size, 8)));
                        if agg == AggKind::Avg {
                            out::MapValue::Avg { sum, count }
                        } else {
                            out::MapValue::Stats { sum, count }
                        }
                    }
                    AggKind::Hist | AggKind::Lhist { .. } => continue,
                };
                dump.entries.push((key_parts(user, &e.key), value));
            }
            // bpftrace keeps a keyless count() in a one-entry array: it always prints.
            if agg == AggKind::Count && !user.keyed && dump.entries.is_empty() {
                dump.entries.push((Vec::new(), out::MapValue::Count(0)));
            }
        }
    }
    Ok(dump)
}

/// `clear(@map)`: delete every entry.
pub fn clear(fd: BorrowedFd<'_>) -> io::Result<()> {
    for e in sys::map_entries(fd)? {
        sys::map_delete_elem(fd, &e.key)?;
    }
    Ok(())
}

/// `zero(@map)`: every entry's value (on every CPU) set to 0.
pub fn zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    for e in sys::map_entries(fd)? {
        sys::map_update_elem(fd, &e.key, &vec![0u8; e.value.len()], 0)?;
    }
    Ok(())
}

fn kind_of(value: MapValue) -> MapKind {
    match value {
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
fn key_parts(user: &UserMap, key: &[u8]) -> Vec<Scalar> {
    if !user.keyed {
        return Vec::new();
    }
    user.key
        .iter()
        .map(|part| field(part, key, false))
        .collect()
}

fn field(part: &ArgLayout, bytes: &[u8], unsigned_ok: bool) -> Scalar {
    let end = (part.offset + part.value.size()).min(bytes.len());
    scalar(part.value, &bytes[part.offset.min(end)..end], unsigned_ok)
}

/// One value of `layout`; unsigned integers stay unsigned only where `unsigned_ok`.
fn scalar(layout: ValueLayout, bytes: &[u8], unsigned_ok: bool) -> Scalar {
    match layout {
        ValueLayout::Int { signed, .. } => {
            let v = u64_at(bytes, 0);
            if signed || !unsigned_ok {
                Scalar::Int(v as i64)
            } else {
                Scalar::UInt(v)
            }
        }
        ValueLayout::Str { .. } => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Scalar::Str(String::from_utf8_lossy(&bytes[..end]).into_owned())
        }
        ValueLayout::Inet => match <&[u8; 24]>::try_from(&bytes[..bytes.len().min(24)]) {
            Ok(inet) => Scalar::Str(ntop(inet)),
            Err(_) => Scalar::Str(String::new()),
        },
    }
}

/// The u64 at `offset` of each CPU's state.
fn slots(e: &sys::MapEntry, value_size: usize, offset: usize) -> Vec<u64> {
    e.per_cpu(value_size).map(|s| u64_at(s, offset)).collect()
}

fn signed(values: &[u64]) -> Vec<i64> {
    values.iter().map(|&v| v as i64).collect()
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(src) = bytes.get(offset..) {
        let n = src.len().min(8);
        word[..n].copy_from_slice(&src[..n]);
    }
    u64::from_le_bytes(word)
}
