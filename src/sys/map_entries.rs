//! Reading a whole map: `BPF_MAP_LOOKUP_BATCH` into two flat buffers, or key by key on
//! kernels without it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{bpf, elem_op, map_info, map_value_bytes, BpfAttr, MapInfo};
use super::{BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_ELEM};

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
/// keys and one for values (no allocation per entry).
fn map_entries_batch(map: BorrowedFd<'_>, info: &MapInfo) -> io::Result<MapEntries> {
    // The kernel's cost is per bucket, not per call: a bigger batch only saves calls.
    const BATCH: usize = 8192;
    let mut entries = MapEntries::new(info.key_size.max(1) as usize, map_value_bytes(info));
    let (key_size, value_size) = (entries.key_size, entries.value_size);
    // The position token: a bucket index (u32) for hash maps; 8 bytes is enough.
    let (mut token, mut next_token) = ([0u8; 8], [0u8; 8]);
    let mut first = true;
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
        match result {
            Ok(_) => {}
            // ENOENT: that was the last batch.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(entries),
            Err(e) => return Err(e),
        }
        token = next_token;
        first = false;
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
    match map_entries_batch(map, &info) {
        // Kernels before 5.6, and map types without batch support.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::EOPNOTSUPP | 524)
            ) => {}
        done => return done,
    }
    let mut entries = MapEntries::new(info.key_size.max(1) as usize, map_value_bytes(&info));
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
