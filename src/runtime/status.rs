//! The status array a program shares with the runtime ([`map_index::LOST`]): key 0
//! counts the records the ring buffer refused, key 1 is set by `exit()` before its
//! record is sent (so a full ring buffer cannot lose the exit).
//!
//! Both are read after every drain. Where the kernel made the array mmapable (Linux
//! 5.5, see `load::map_flags`) they are loads from shared memory; otherwise `bpf()`
//! lookups, which a probe on the kernel's BPF path (`kprobe:cap_capable` on 6.1) sees
//! as rbt's own events.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::load::Loaded;
use crate::abi::map_type;
use crate::codegen::{map_index, Compiled, MapRole};
use crate::sys;

const LOST: usize = map_index::LOST as usize;
const LOST_COUNT: u32 = 0;
const EXIT_FLAG: u32 = map_index::LOST_EXIT_FLAG;

/// The status array of one loaded program set; `None` fields where it has none.
pub struct Status<'a> {
    fd: Option<BorrowedFd<'a>>,
    /// Values per key: the possible CPUs for a per-CPU array, else 1.
    slots: usize,
    entries: u32,
    mapped: Option<sys::ArrayMemory>,
}

impl<'a> Status<'a> {
    /// The status array of `loaded`, mapped if the kernel allows it.
    pub fn new(compiled: &Compiled, loaded: &'a Loaded) -> Status<'a> {
        let spec = compiled.maps.get(LOST);
        let fd = loaded.maps.get(LOST).map(|fd| fd.as_fd());
        let Some((spec, fd)) = spec.zip(fd).filter(|(spec, _)| {
            spec.role == MapRole::Lost && spec.key_size == 4 && spec.value_size == 8
        }) else {
            return Status {
                fd: None,
                slots: 0,
                entries: 0,
                mapped: None,
            };
        };
        let per_cpu = spec.map_type == map_type::PERCPU_ARRAY;
        Status {
            fd: Some(fd),
            slots: if per_cpu { sys::possible_cpus() } else { 1 },
            entries: spec.max_entries,
            mapped: (!per_cpu).then(|| sys::ArrayMemory::map(fd).ok()).flatten(),
        }
    }

    /// The value at `key` summed over CPUs; `None` if there is none.
    fn read(&self, key: u32) -> io::Result<Option<u64>> {
        if key >= self.entries {
            return Ok(None);
        }
        if let Some(mapped) = &self.mapped {
            return Ok(mapped.load_u64(key));
        }
        let Some(fd) = self.fd else {
            return Ok(None);
        };
        let mut value = vec![0u8; 8 * self.slots];
        if !sys::map_lookup_elem(fd, &key.to_ne_bytes(), &mut value)? {
            return Ok(None);
        }
        Ok(Some(
            value
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
                .sum(),
        ))
    }

    /// The lost-events counter, summed over CPUs (`None`: the program has none).
    pub fn lost_total(&self) -> io::Result<Option<u64>> {
        self.read(LOST_COUNT)
    }

    /// Whether a probe ran `exit()`.
    pub fn exit_requested(&self) -> bool {
        matches!(self.read(EXIT_FLAG), Ok(Some(flag)) if flag != 0)
    }
}
