//! Reading a whole map: `BPF_MAP_LOOKUP_BATCH` into two flat buffers, or key by key on
//! kernels without it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{bpf, elem_op, map_info, map_value_bytes, BpfAttr, MapInfo};
use super::{BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_ELEM};
use crate::abi::map_type::{HASH, LRU_PERCPU_HASH, PERCPU_HASH};

const BPF_MAP_LOOKUP_BATCH: u32 = 24;

/// `bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

impl BpfAttr for BatchAttr {}

/// Every entry with `BPF_MAP_LOOKUP_BATCH` (Linux 5.6+): thousands of entries per
/// system call instead of two calls per entry, read straight into one flat buffer for
/// keys and one for values (no allocation per entry). A big hash map is read by one
/// thread per CPU, each over its own range of buckets: the kernel's cost is cache misses
/// on every element, which several CPUs take in parallel.
fn map_entries_batch(map: BorrowedFd<'_>, info: &MapInfo, ways: usize) -> io::Result<MapEntries> {
    let (key_size, value_size) = (info.key_size.max(1) as usize, map_value_bytes(info));
    let ways = if BUCKETED.contains(&info.map_type) {
        ways.clamp(1, MAX_WAYS)
    } else {
        1
    };
    if ways < 2 {
        return read_buckets(map, key_size, value_size, 0, u32::MAX).map(|r| r.entries);
    }
    // The kernel's bucket count; only the balance between the threads depends on it.
    let buckets = u64::from(info.max_entries.next_power_of_two());
    let bound = |i: usize| match i {
        _ if i >= ways => u32::MAX,
        _ => (buckets * i as u64 / ways as u64) as u32,
    };
    let ranges: Vec<io::Result<Range>> = std::thread::scope(|s| {
        let read = move |i: usize| read_buckets(map, key_size, value_size, bound(i), bound(i + 1));
        let threads: Vec<_> = (1..ways)
            .map(|i| {
                let spawned = std::thread::Builder::new()
                    .name("rbt-map-read".into())
                    .spawn_scoped(s, move || read(i));
                (i, spawned)
            })
            .collect();
        let mut ranges = vec![read(0)];
        for (i, spawned) in threads {
            ranges.push(match spawned {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a map reading thread panicked"))),
                // No thread to be had: this one reads the range itself.
                Err(_) => read(i),
            });
        }
        ranges
    });
    let mut ranges = ranges.into_iter().collect::<io::Result<Vec<_>>>()?;
    // A range's last batch may run on past its end (the kernel returns whole buckets
    // until the batch is full): those entries are the first ones the following ranges
    // read, so each range is cut at the first key of everything after it. Keys are
    // unique and the map no longer changes, so the result is exactly one sequential read.
    let mut following: Option<Vec<u8>> = None;
    for range in ranges.iter_mut().rev() {
        if let Some(key) = &following {
            range.cut_at(key);
        }
        if let Some(first) = range.entries.keys.get(..key_size) {
            following = Some(first.to_vec());
        }
    }
    let mut entries = MapEntries::new(key_size, value_size);
    let total: usize = ranges.iter().map(|r| r.entries.len()).sum();
    entries.keys.reserve_exact(total * key_size);
    entries.values.reserve_exact(total * value_size);
    for range in &ranges {
        entries.keys.extend_from_slice(&range.entries.keys);
        entries.values.extend_from_slice(&range.entries.values);
    }
    Ok(entries)
}

/// Map types whose batch position token is the index (a `u32`) of the next bucket to
/// read, buckets visited in index order (`__htab_map_lookup_and_delete_batch`).
const BUCKETED: [u32; 3] = [HASH, PERCPU_HASH, LRU_PERCPU_HASH];
/// Below this `max_entries` a map is read by one thread: it fits in a few batches.
const PARALLEL_MIN: u32 = 16384;
const MAX_WAYS: usize = 4;

/// The entries of the buckets from `start` on, until a batch ends at or past bucket
/// `stop`; `last_batch` is the index of that batch's first entry.
struct Range {
    entries: MapEntries,
    last_batch: usize,
}

impl Range {
    /// Drops `key` and what follows it, if the last batch holds it.
    fn cut_at(&mut self, key: &[u8]) {
        let size = self.entries.key_size;
        let found = (self.last_batch..self.entries.len())
            .find(|&i| &self.entries.keys[i * size..(i + 1) * size] == key);
        if let Some(i) = found {
            self.entries.keys.truncate(i * size);
            self.entries.values.truncate(i * self.entries.value_size);
        }
    }
}

fn read_buckets(
    map: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    start: u32,
    stop: u32,
) -> io::Result<Range> {
    // The kernel's cost is per bucket, not per call: a bigger batch only saves calls.
    const BATCH: usize = 8192;
    let mut entries = MapEntries::new(key_size, value_size);
    // The position token: a bucket index (u32) for hash maps; 8 bytes is enough.
    let (mut token, mut next_token) = ([0u8; 8], [0u8; 8]);
    token[..4].copy_from_slice(&start.to_ne_bytes());
    let mut first = start == 0;
    loop {
        let n = entries.len();
        entries.keys.resize((n + BATCH) * key_size, 0);
        entries.values.resize((n + BATCH) * value_size, 0);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token.as_ptr() as u64 },
            out_batch: next_token.as_mut_ptr() as u64,
            keys: entries.keys[n * key_size..].as_mut_ptr() as u64,
            values: entries.values[n * value_size..].as_mut_ptr() as u64,
            count: BATCH as u32,
            map_fd: map.as_raw_fd() as u32,
            ..Default::default()
        };
        let result = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let count = (attr.count as usize).min(BATCH);
        entries.keys.truncate((n + count) * key_size);
        entries.values.truncate((n + count) * value_size);
        let done = Range {
            entries,
            last_batch: n,
        };
        match result {
            Ok(_) => {}
            // ENOENT: that was the last batch.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(done),
            Err(e) => return Err(e),
        }
        token = next_token;
        first = false;
        let reached = u32::from_ne_bytes([token[0], token[1], token[2], token[3]]);
        if reached >= stop {
            return Ok(done);
        }
        entries = done.entries;
    }
}

/// Every entry of a hash or array map, keys and values each in one flat buffer: for
/// per-CPU maps a value is one slot of `value_size` rounded up to 8 bytes per possible CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntries {
    key_size: usize,
    value_size: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
}

/// One entry of [`MapEntries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl MapEntries {
    fn new(key_size: usize, value_size: usize) -> MapEntries {
        MapEntries {
            key_size,
            value_size,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len() / self.key_size.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The entries in the kernel's iteration order.
    pub fn iter(&self) -> impl Iterator<Item = MapEntry<'_>> {
        self.keys
            .chunks(self.key_size.max(1))
            .zip(self.values.chunks(self.value_size.max(1)))
            .map(|(key, value)| MapEntry { key, value })
    }

    /// The bytes of one whole value (all CPUs' slots for a per-CPU map).
    pub fn value_bytes(&self) -> usize {
        self.value_size
    }
}

impl MapEntry<'_> {
    /// The per-CPU values of a per-CPU map's entry (`value_size` bytes each).
    pub fn per_cpu(&self, value_size: usize) -> impl Iterator<Item = &[u8]> {
        let slot = value_size.next_multiple_of(8).max(1);
        self.value
            .chunks(slot)
            .map(move |c| &c[..value_size.min(c.len())])
    }
}

/// Every entry of `map`, read with `BPF_MAP_LOOKUP_BATCH` where the kernel has it, else
/// with `BPF_MAP_GET_NEXT_KEY` and `BPF_MAP_LOOKUP_ELEM`. Keys deleted while iterating
/// are skipped.
pub fn map_entries(map: BorrowedFd<'_>) -> io::Result<MapEntries> {
    // Buffers sized from the map's own info once: no per-entry size checks (which
    // would cost a syscall each on maps of 100k entries).
    let info = map_info(map)?;
    let ways = if info.max_entries >= PARALLEL_MIN {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    };
    map_entries_in(map, &info, ways)
}

/// [`map_entries`] of a hash map read by `ways` threads (at most 4), each over its own
/// range of buckets; in the same order as one thread's read (tests compare the two).
pub fn map_entries_split(map: BorrowedFd<'_>, ways: usize) -> io::Result<MapEntries> {
    map_entries_in(map, &map_info(map)?, ways)
}

fn map_entries_in(map: BorrowedFd<'_>, info: &MapInfo, ways: usize) -> io::Result<MapEntries> {
    match map_entries_batch(map, info, ways) {
        // Kernels before 5.6, and map types without batch support.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::EOPNOTSUPP | 524)
            ) => {}
        done => return done,
    }
    let mut entries = MapEntries::new(info.key_size.max(1) as usize, map_value_bytes(info));
    let mut key: Option<Vec<u8>> = None;
    let mut value = vec![0u8; entries.value_size];
    loop {
        let mut next = vec![0u8; entries.key_size];
        let found = elem_op(
            BPF_MAP_GET_NEXT_KEY,
            map,
            key.as_deref().map_or(0, |k| k.as_ptr() as u64),
            next.as_mut_ptr() as u64,
        )?;
        if !found {
            return Ok(entries);
        }
        if elem_op(
            BPF_MAP_LOOKUP_ELEM,
            map,
            next.as_ptr() as u64,
            value.as_mut_ptr() as u64,
        )? {
            entries.keys.extend_from_slice(&next);
            entries.values.extend_from_slice(&value);
        }
        key = Some(next);
    }
}
