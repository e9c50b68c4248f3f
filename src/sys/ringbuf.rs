//! The shared memory of a BPF ring buffer map.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::abi::map_type;

/// `BPF_RINGBUF_HDR_SZ`: each record starts with `u32 len` (plus flag bits) and `u32 pg_off`.
pub const RINGBUF_HDR_SIZE: u64 = 8;

/// The mmapped pages of a `BPF_MAP_TYPE_RINGBUF` map: the consumer page (read-write)
/// and the producer page followed by the data area mapped twice (read-only), so a
/// record that wraps around the end is still contiguous in memory.
#[derive(Debug)]
pub struct RingBufMemory {
    consumer: *mut u8,
    producer: *mut u8,
    page: usize,
    size: usize,
}

impl RingBufMemory {
    /// Maps the ring buffer `map` (its size is asked from the kernel).
    pub fn map(map: BorrowedFd<'_>) -> io::Result<RingBufMemory> {
        let page = page_size();
        let info = super::map_info(map)?;
        let size = info.max_entries as usize;
        if info.map_type != map_type::RINGBUF || !size.is_power_of_two() || size < page {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a BPF ring buffer map",
            ));
        }
        let consumer = mmap(map, page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = match mmap(map, page + 2 * size, libc::PROT_READ, page) {
            Ok(p) => p,
            Err(e) => {
                munmap(consumer, page);
                return Err(e);
            }
        };
        Ok(RingBufMemory {
            consumer,
            producer,
            page,
            size,
        })
    }

    fn consumer_atomic(&self) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: `consumer` is a live, page-aligned mapping of at least 8 bytes whose first
        // u64 is the kernel's `consumer_pos`; it is only ever accessed atomically.
        unsafe { &*(self.consumer as *const std::sync::atomic::AtomicU64) }
    }

    /// Our read position.
    pub fn consumer_pos(&self) -> u64 {
        self.consumer_atomic()
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Hands the space up to `pos` back to the kernel (release: our reads of the records
    /// happen before the kernel may overwrite them).
    pub fn set_consumer_pos(&self, pos: u64) {
        self.consumer_atomic()
            .store(pos, std::sync::atomic::Ordering::Release)
    }

    /// The kernel's write position (acquire: record headers up to it are visible).
    pub fn producer_pos(&self) -> u64 {
        // SAFETY: `producer` is a live, page-aligned read-only mapping whose first u64 is
        // the kernel's `producer_pos`, written atomically by the kernel.
        let p = unsafe { &*(self.producer as *const std::sync::atomic::AtomicU64) };
        p.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The length word of the record header at position `pos` (with its BUSY/DISCARD
    /// bits), read with acquire so the record body it commits is visible.
    pub fn header(&self, pos: u64) -> u32 {
        // Record positions advance in multiples of 8; anything else is a caller bug, and
        // would make the atomic reference below misaligned.
        assert!(
            pos.is_multiple_of(8),
            "ring buffer position {pos} is not 8-byte aligned"
        );
        let offset = self.page + (pos as usize & (self.size - 1));
        // SAFETY: `offset` + 4 lies inside the mapping (page + 2*size bytes), is 8-byte
        // aligned (checked above; page and size are multiples of 8), and the kernel
        // publishes the header word with an atomic store.
        let word = unsafe { &*(self.producer.add(offset) as *const std::sync::atomic::AtomicU32) };
        word.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Copies the `len`-byte body of the committed record at `pos` into `out`.
    pub fn read_record(&self, pos: u64, len: usize, out: &mut Vec<u8>) {
        out.clear();
        // A committed record never exceeds the data area; clamp so a corrupt length
        // cannot read past the double mapping.
        let len = len.min(self.size - RINGBUF_HDR_SIZE as usize);
        let offset = self.page + (pos as usize & (self.size - 1)) + RINGBUF_HDR_SIZE as usize;
        out.reserve(len);
        // SAFETY: offset + len <= page + 2*size, inside the mapping (data is mapped twice).
        // The record is committed (BUSY clear, observed with acquire), and the kernel does
        // not reuse its space until we advance consumer_pos past it, so nobody writes it now.
        unsafe {
            std::ptr::copy_nonoverlapping(self.producer.add(offset), out.as_mut_ptr(), len);
            out.set_len(len);
        }
    }
}

impl Drop for RingBufMemory {
    fn drop(&mut self) {
        munmap(self.producer, self.page + 2 * self.size);
        munmap(self.consumer, self.page);
    }
}

pub(super) fn mmap(
    fd: BorrowedFd<'_>,
    len: usize,
    prot: libc::c_int,
    offset: usize,
) -> io::Result<*mut u8> {
    // SAFETY: a fresh shared mapping chosen by the kernel (addr NULL) aliases no Rust
    // object; the result is checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p as *mut u8)
    }
}

pub(super) fn munmap(p: *mut u8, len: usize) {
    // SAFETY: only called from `RingBufMemory` and `ArrayMemory` with a mapping the caller
    // created with this length and no longer hands out.
    unsafe { libc::munmap(p as *mut libc::c_void, len) };
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}
