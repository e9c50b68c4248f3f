//! A read-only mapping of a sysfs file: the kernel's BTF without copying it.
//!
//! Since Linux 6.16 `/sys/kernel/btf/*` can be mmapped; the pages are the kernel's own
//! BTF, shared and not counted in the process's RSS, and mapping costs no read(2) of
//! 4 KiB at a time (sysfs's limit). Older kernels refuse the mmap and callers read.

use std::fs::File;
use std::os::fd::AsRawFd;

/// `SYSFS_MAGIC` from include/uapi/linux/magic.h.
const SYSFS_MAGIC: u64 = 0x6265_6572;

/// The bytes of a mapped file, unmapped on drop.
pub struct MappedFile {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only (PROT_READ, MAP_PRIVATE) and never written through, and
// sysfs files cannot shrink under it, so sharing or moving the pointer between threads
// is sharing immutable memory.
unsafe impl Send for MappedFile {}
// SAFETY: as for Send: `&MappedFile` only ever gives out `&[u8]` of immutable memory.
unsafe impl Sync for MappedFile {}

impl std::ops::Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of exactly `len` readable bytes (see `map_sysfs`),
        // alive until drop, and nothing writes to it.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping `map_sysfs` created with this length; no slice of it
        // outlives `self` (they borrow it).
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Whether `file` is on sysfs: its contents come from the kernel.
pub fn is_sysfs(file: &File) -> bool {
    // SAFETY: `fs` is a live, zero-initialized statfs the call writes into.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid open descriptor and a pointer to the live `fs`.
    let statted = unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } == 0;
    statted && fs.f_type as u64 == SYSFS_MAGIC
}

/// Map `len` bytes of `file` read-only if it is a sysfs file the kernel lets us map;
/// `None` otherwise (another file system, an older kernel, an empty file): read instead.
/// Only sysfs: a regular file could be truncated while mapped, which would fault.
pub fn map_sysfs(file: &File, len: usize) -> Option<MappedFile> {
    if len == 0 || !is_sysfs(file) {
        return None;
    }
    // SAFETY: a fresh private read-only mapping chosen by the kernel (addr NULL) aliases no
    // Rust object; MAP_FAILED is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(MappedFile {
        ptr: p as *const u8,
        len,
    })
}
