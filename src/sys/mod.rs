//! Every raw system call rbt makes (bpf, perf_event_open, mmap, ioctl, poll, signals),
//! each behind a small safe wrapper. The only module with `unsafe` (this file holds the
//! `bpf()` commands; submodules perf, ringbuf, mapped and process the rest); every block says
//! why it is sound. Kernel structures are declared with only the fields rbt uses: the
//! kernel accepts a shorter `bpf_attr`/`perf_event_attr` and zero-fills the rest.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::abi::insn::Insn;

mod array_memory;
mod map_entries;
mod mapped;
mod perf;
mod process;
mod quiesce;
mod ringbuf;

pub use array_memory::*;
pub use map_entries::*;
pub use mapped::*;
pub use perf::*;
pub use process::*;
pub use quiesce::*;
pub use ringbuf::*;

// `enum bpf_cmd`
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_MAP_GET_NEXT_KEY: u32 = 4;
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
const BPF_LINK_CREATE: u32 = 28;

/// `bpf_attr` for `BPF_MAP_CREATE` (up to `map_name`).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `bpf_attr` for `BPF_PROG_LOAD` (up to `expected_attach_type`).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `bpf_attr` for the `BPF_MAP_*_ELEM` commands.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `bpf_attr` for `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `bpf_attr` for `BPF_LINK_CREATE` (the common part, then the first 8 bytes of the
/// per-type union: the perf-event variant's `bpf_cookie`).
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    bpf_cookie: u64,
}

/// `bpf_attr` for `BPF_LINK_CREATE` of a `BPF_TRACE_KPROBE_MULTI` link (its
/// `kprobe_multi` variant: functions by name, no addresses, no cookies).
#[repr(C)]
#[derive(Default)]
struct KprobeMultiAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    multi_flags: u32,
    cnt: u32,
    syms: u64,
    addrs: u64,
    cookies: u64,
}

/// Marker for the plain-data `bpf_attr` variants above.
trait BpfAttr {}
impl BpfAttr for MapCreateAttr {}
impl BpfAttr for ProgLoadAttr {}
impl BpfAttr for MapElemAttr {}
impl BpfAttr for TestRunAttr {}
impl BpfAttr for LinkCreateAttr {}
impl BpfAttr for KprobeMultiAttr {}
impl BpfAttr for InfoAttr {}

/// `bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_map_info`, the prefix rbt reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapInfo {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map: its type and sizes as the kernel knows them.
pub fn map_info(map: BorrowedFd<'_>) -> io::Result<MapInfo> {
    let mut info = MapInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: map.as_raw_fd() as u32,
        info_len: size_of::<MapInfo>() as u32,
        info: &mut info as *mut MapInfo as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// `struct bpf_link_info`, the prefix rbt reads.
#[repr(C)]
#[derive(Default)]
struct LinkInfo {
    type_: u32,
    id: u32,
    prog_id: u32,
}

/// The id of the program a BPF link runs (`BPF_OBJ_GET_INFO_BY_FD` on the link).
pub fn link_prog_id(link: BorrowedFd<'_>) -> io::Result<u32> {
    let mut info = LinkInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: link.as_raw_fd() as u32,
        info_len: size_of::<LinkInfo>() as u32,
        info: &mut info as *mut LinkInfo as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info.prog_id)
}

/// Bytes a lookup of `info`'s map writes: `value_size`, or for per-CPU maps that
/// rounded up to 8, times the number of possible CPUs.
pub fn map_value_bytes(info: &MapInfo) -> usize {
    if crate::abi::map_type::PER_CPU.contains(&info.map_type) {
        (info.value_size as usize).next_multiple_of(8) * possible_cpus()
    } else {
        info.value_size as usize
    }
}

/// The number of possible CPUs, from `/sys/devices/system/cpu/possible` (`0-3`, `0,2-5`).
pub fn possible_cpus() -> usize {
    let text = std::fs::read_to_string(crate::abi::paths::POSSIBLE_CPUS).unwrap_or_default();
    let n: usize = text
        .trim()
        .split(',')
        .filter_map(|r| match r.split_once('-') {
            Some((a, b)) => Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?),
            None => r.parse::<usize>().ok().map(|_| 1),
        })
        .sum();
    n.max(1)
}

/// Checks that `key` and `value` are at least as large as the kernel will access.
fn check_elem_sizes(map: BorrowedFd<'_>, key: &[u8], value: usize) -> io::Result<()> {
    check_sizes(map, key, Some(value))
}

/// Checks that `key` is at least as large as the map's keys.
fn check_key_size(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<()> {
    check_sizes(map, key, None)
}

fn check_sizes(map: BorrowedFd<'_>, key: &[u8], value: Option<usize>) -> io::Result<()> {
    let info = map_info(map)?;
    let value_short = value.is_some_and(|v| v < map_value_bytes(&info) || v == 0);
    if key.len() < info.key_size as usize || key.is_empty() || value_short {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "key or value buffer smaller than the map's",
        ));
    }
    Ok(())
}

/// The `bpf(2)` system call with one of the attribute structs above.
fn bpf<A: BpfAttr>(cmd: u32, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` struct laid out like the
    // prefix of the kernel's `union bpf_attr` for `cmd`, and we pass its exact size. Any
    // pointers inside it were set by our callers to buffers that outlive this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut A,
            size_of::<A>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Wraps a new file descriptor returned by a system call.
fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: callers pass only the non-negative return value of a system call that
    // creates a new file descriptor; nothing else owns it yet.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

/// Copies `name` into a kernel object name: at most 15 bytes of `[A-Za-z0-9_.]`, NUL-terminated.
fn object_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let valid = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.');
    for (dst, b) in out.iter_mut().take(15).zip(valid) {
        *dst = b;
    }
    out
}

/// `BPF_MAP_CREATE`.
pub fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    map_create_with_flags(map_type, key_size, value_size, max_entries, 0, name)
}

/// `BPF_MAP_CREATE` with `map_flags` (e.g. `BPF_F_NO_PREALLOC`).
pub fn map_create_with_flags(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        map_name: object_name(name),
        ..Default::default()
    };
    bpf(BPF_MAP_CREATE, &mut attr).map(owned_fd)
}

/// A program the kernel refused to load, with the verifier's explanation.
#[derive(Debug)]
pub struct ProgLoadError {
    pub errno: io::Error,
    /// The verifier log (level 1) of the failed load; empty if the kernel gave none
    /// (e.g. for `EPERM`).
    pub verifier_log: String,
}

impl std::fmt::Display for ProgLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.errno)
    }
}

/// Largest verifier log buffer tried; since 6.4 the kernel keeps the log's tail when it
/// does not fit, which is the part that explains the rejection.
const MAX_LOG_SIZE: usize = 16 << 20;

/// `BPF_PROG_LOAD`. Loads without a log first (fast path); on failure loads again with
/// a level-1 verifier log, growing the buffer while the kernel reports `ENOSPC`.
pub fn prog_load(
    prog_type: u32,
    insns: &[Insn],
    license: &str,
    name: &str,
    expected_attach_type: u32,
) -> Result<OwnedFd, ProgLoadError> {
    let license = CString::new(license).map_err(|_| ProgLoadError {
        errno: io::Error::from(io::ErrorKind::InvalidInput),
        verifier_log: String::new(),
    })?;
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: object_name(name),
        expected_attach_type,
        ..Default::default()
    };
    let first_err = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(owned_fd(fd)),
        Err(e) => e,
    };
    if first_err.raw_os_error() == Some(libc::EPERM) {
        // Missing privileges: the verifier never ran, there is no log to fetch.
        return Err(ProgLoadError {
            errno: first_err,
            verifier_log: String::new(),
        });
    }
    let mut log = vec![0u8; 256 << 10];
    loop {
        log.fill(0);
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
        match bpf(BPF_PROG_LOAD, &mut attr) {
            // Loads fine with a log (should not happen): accept it.
            Ok(fd) => return Ok(owned_fd(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && log.len() < MAX_LOG_SIZE => {
                let bigger = log.len() * 4;
                log.resize(bigger, 0);
            }
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let verifier_log = String::from_utf8_lossy(&log[..end]).into_owned();
                let errno = if e.raw_os_error() == Some(libc::ENOSPC) {
                    first_err
                } else {
                    e
                };
                return Err(ProgLoadError {
                    errno,
                    verifier_log,
                });
            }
        }
    }
}

/// `BPF_MAP_LOOKUP_ELEM`: `Ok(false)` when the key is absent.
pub fn map_lookup_elem(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    // The kernel reads `key_size` bytes of `key` and writes a whole value (per CPU for
    // per-CPU maps) into `value`: make sure both buffers are that large.
    check_elem_sizes(map, key, value.len())?;
    elem_op(
        BPF_MAP_LOOKUP_ELEM,
        map,
        key.as_ptr() as u64,
        value.as_mut_ptr() as u64,
    )
}

/// `BPF_MAP_UPDATE_ELEM` with `flags` = `BPF_ANY` (0), `BPF_NOEXIST` (1) or `BPF_EXIST` (2).
pub fn map_update_elem(
    map: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> io::Result<()> {
    check_elem_sizes(map, key, value.len())?;
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// `BPF_MAP_DELETE_ELEM`: `Ok(false)` when the key is absent.
pub fn map_delete_elem(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<bool> {
    check_key_size(map, key)?;
    elem_op(BPF_MAP_DELETE_ELEM, map, key.as_ptr() as u64, 0)
}

/// A `BPF_MAP_*_ELEM` / `GET_NEXT_KEY` command on buffers the caller sized from the
/// map's info; `Ok(false)` for ENOENT (no such key, or no next key).
fn elem_op(cmd: u32, map: BorrowedFd<'_>, key: u64, value: u64) -> io::Result<bool> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key,
        value,
        ..Default::default()
    };
    match bpf(cmd, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_PROG_TEST_RUN` of a raw-tracepoint program with an empty context, once, on the
/// calling thread. Returns the program's return value.
pub fn prog_test_run(prog: BorrowedFd<'_>) -> io::Result<u32> {
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(attr.retval)
}

/// `BPF_LINK_CREATE`: attach `prog` to `target` (for `BPF_PERF_EVENT`, a perf event fd,
/// with `cookie` as what `bpf_get_attach_cookie` returns there, Linux 5.15+).
/// The link is a kernel object owned by the returned fd: it detaches when the fd closes.
pub fn link_create(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
    cookie: u64,
) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: target.as_raw_fd() as u32,
        attach_type,
        bpf_cookie: cookie,
        ..Default::default()
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned_fd)
}

/// `BPF_LINK_CREATE` of a kprobe_multi link: `prog` (loaded with `expected_attach_type`
/// `BPF_TRACE_KPROBE_MULTI`) runs on entry to (or, with `BPF_F_KPROBE_MULTI_RETURN` in
/// `flags`, return from) every function in `syms`, by name as bpftrace passes them. The
/// link detaches from all of them when its fd closes.
pub fn kprobe_multi_link_create(
    prog: BorrowedFd<'_>,
    syms: &[CString],
    flags: u32,
) -> io::Result<OwnedFd> {
    let ptrs: Vec<*const libc::c_char> = syms.iter().map(|s| s.as_ptr()).collect();
    let mut attr = KprobeMultiAttr {
        prog_fd: prog.as_raw_fd() as u32,
        attach_type: crate::abi::BPF_TRACE_KPROBE_MULTI,
        multi_flags: flags,
        cnt: u32::try_from(ptrs.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        // `ptrs` and the strings it points at outlive the call.
        syms: ptrs.as_ptr() as u64,
        ..Default::default()
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned_fd)
}
