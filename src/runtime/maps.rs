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
use crate::event::{ArgLayout, MapOp, ValueLayout};
use crate::output::maps::{self as out, MapDump, MapKind, Scalar};
use crate::output::{ntop, username};
use crate::sema::AggKind;
use crate::{symbols, sys};

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

/// One value of `layout`; unsigned integers stay unsigned only where `unsigned_ok`
/// (values, not keys).
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
        ValueLayout::Username => Scalar::Str(username(u64_at(bytes, 0))),
        // bpftrace indents a stack's frames by 4 in a key, 8 in a value.
        ValueLayout::Stack { user, stack } => {
            let indent = if unsigned_ok { 8 } else { 4 };
            Scalar::Str(symbols::stack(u64_at(bytes, 0), user, stack, indent))
        }
        ValueLayout::Ksym => Scalar::Str(symbols::ksym(u64_at(bytes, 0))),
        ValueLayout::Usym => Scalar::Str(symbols::usym(u64_at(bytes, 0), u64_at(bytes, 8) as u32)),
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
