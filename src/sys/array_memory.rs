//! The values of a `BPF_F_MMAPABLE` array map, mapped read-only.
//!
//! The runtime reads its status array (events lost, `exit()` requested) after every
//! drain of the ring buffer. Through `bpf()` lookups that is two syscalls per drain, and
//! a probe on the kernel's BPF path sees them: on Linux 6.1 each `bpf()` calls
//! `capable(CAP_BPF)`, so `kprobe:cap_capable` fired on rbt's own lookups, woke the poll
//! again and traced rbt without end. Loads from the mapping make no syscall.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ringbuf::{mmap, munmap, page_size};
use crate::abi::{map_type, BPF_F_MMAPABLE};

/// A read-only shared mapping of an array map's values, unmapped on drop.
#[derive(Debug)]
pub struct ArrayMemory {
    ptr: *mut u8,
    len: usize,
    entries: u32,
    /// Bytes from one element to the next: the value size rounded up to 8, as the kernel
    /// lays out array elements.
    stride: usize,
}

impl ArrayMemory {
    /// Maps the values of `map`, which must be an mmapable array of values of at least
    /// 8 bytes (its layout is asked from the kernel).
    pub fn map(map: BorrowedFd<'_>) -> io::Result<ArrayMemory> {
        let info = super::map_info(map)?;
        if info.map_type != map_type::ARRAY
            || info.map_flags & BPF_F_MMAPABLE == 0
            || info.value_size < 8
            || info.max_entries == 0
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an mmapable BPF array of 8-byte values",
            ));
        }
        let stride = (info.value_size as usize).next_multiple_of(8);
        let len = (stride * info.max_entries as usize).next_multiple_of(page_size());
        let ptr = mmap(map, len, libc::PROT_READ, 0)?;
        Ok(ArrayMemory {
            ptr,
            len,
            entries: info.max_entries,
            stride,
        })
    }

    /// The first 8 bytes of element `index` as a `u64` (`None` past the end), loaded
    /// with acquire ordering: what a probe wrote before it stored this value (the
    /// records before an `exit()` flag) is visible once the value is.
    pub fn load_u64(&self, index: u32) -> Option<u64> {
        if index >= self.entries {
            return None;
        }
        let offset = index as usize * self.stride;
        // SAFETY: `offset + 8 <= entries * stride <= len` (index checked, stride >= 8), so
        // the word lies inside the live mapping `self` owns; the mapping is page-aligned
        // and `offset` a multiple of 8, so the word is aligned. BPF programs store it with
        // aligned 8-byte stores or atomic adds; we only load it, atomically.
        let word = unsafe { &*(self.ptr.add(offset) as *const AtomicU64) };
        Some(word.load(Ordering::Acquire))
    }
}

impl Drop for ArrayMemory {
    fn drop(&mut self) {
        munmap(self.ptr, self.len);
    }
}
