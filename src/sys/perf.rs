//! perf events: the kernel objects BPF programs attach to (tracepoints, kprobes).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::owned_fd;

const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `PERF_ATTR_SIZE_VER5`: the size of the struct below.
const PERF_ATTR_SIZE: u32 = 112;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5`.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    _reserved: u16,
}

/// `perf_event_open(2)` for a BPF attachment: all processes (`pid` -1) on CPU 0, which
/// is how BPF programs attach to tracepoints and kprobes (they then run on every CPU).
/// `kprobe` becomes `config1` and `config2` (the kprobe PMU's function name and the
/// offset into it).
pub fn perf_event_open(
    type_: u32,
    config: u64,
    kprobe: Option<(&std::ffi::CStr, u64)>,
) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_,
        size: PERF_ATTR_SIZE,
        config,
        sample_period: 1,
        wakeup_events: 1,
        config1: kprobe.map_or(0, |(n, _)| n.as_ptr() as u64),
        config2: kprobe.map_or(0, |(_, offset)| offset),
        ..Default::default()
    };
    // The name is borrowed for the whole call.
    open(&attr, -1, 0)
}

/// The one `perf_event_open(2)` call: `attr` for process `pid` (-1: all) on `cpu`
/// (-1: any).
fn open(attr: &PerfEventAttr, pid: libc::c_int, cpu: libc::c_int) -> io::Result<OwnedFd> {
    const _: () = assert!(size_of::<PerfEventAttr>() == PERF_ATTR_SIZE as usize);
    // SAFETY: `attr` is a complete `perf_event_attr` prefix whose `size` field matches
    // its length (asserted above); its only pointer, `config1` (a kprobe function name or
    // a uprobe path), points to a NUL-terminated string the caller borrows across this
    // call; the other arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *const PerfEventAttr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(owned_fd(ret))
    }
}

/// `perf_event_open(2)` on the uprobe PMU (`type_`): a probe at file `offset` of `path`
/// (`config1`/`config2`), in process `pid` or, for -1, every process (on CPU 0, as
/// libbpf attaches: the BPF program then runs wherever the probe is hit).
pub fn perf_event_open_uprobe(
    type_: u32,
    config: u64,
    path: &std::ffi::CStr,
    offset: u64,
    pid: i32,
) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_,
        size: PERF_ATTR_SIZE,
        config,
        sample_period: 1,
        wakeup_events: 1,
        config1: path.as_ptr() as u64,
        config2: offset,
        ..Default::default()
    };
    let cpu = if pid == -1 { 0 } else { -1 };
    // `path` is borrowed for the whole call.
    open(&attr, pid, cpu)
}

fn ioctl_int(fd: BorrowedFd<'_>, request: libc::c_ulong, arg: libc::c_int) -> io::Result<()> {
    // SAFETY: both perf ioctls used here take an integer argument (not a pointer), and
    // `fd` is a live descriptor for the duration of the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `PERF_EVENT_IOC_SET_BPF`: the pre-5.15 way to run `prog` on each event.
pub fn perf_event_set_bpf(perf: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    ioctl_int(perf, PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd())
}

/// `PERF_EVENT_IOC_ENABLE`.
pub fn perf_event_enable(perf: BorrowedFd<'_>) -> io::Result<()> {
    ioctl_int(perf, PERF_EVENT_IOC_ENABLE, 0)
}

/// `perf_event_attr.flags` bit 0: created disabled (enabled once the program is attached).
const ATTR_FLAG_DISABLED: u64 = 1 << 0;
/// `perf_event_attr.flags` bit 10: `sample_period` holds a frequency in Hz.
const ATTR_FLAG_FREQ: u64 = 1 << 10;

/// `perf_event_open(2)` for a sampling event of all processes (`pid` -1) on `cpu`: the
/// BPF program runs every `period` events, or `period` times a second when `freq`
/// (timers, profile, software and hardware counters). Created disabled.
pub fn perf_event_open_sampling(
    type_: u32,
    config: u64,
    period: u64,
    freq: bool,
    cpu: u32,
) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_,
        size: PERF_ATTR_SIZE,
        config,
        sample_period: period,
        flags: ATTR_FLAG_DISABLED | if freq { ATTR_FLAG_FREQ } else { 0 },
        ..Default::default()
    };
    let cpu = libc::c_int::try_from(cpu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    open(&attr, -1, cpu)
}

/// `PERF_EVENT_IOC_QUERY_BPF`: `_IOWR('$', 10, struct perf_event_query_bpf *)`.
const PERF_EVENT_IOC_QUERY_BPF: libc::c_ulong = 0xc008_240a;
/// Program ids asked for at most; more fail with `ENOSPC`.
const QUERY_IDS: usize = 64;

/// `struct perf_event_query_bpf` with room for [`QUERY_IDS`] ids.
#[repr(C)]
struct QueryBpf {
    ids_len: u32,
    prog_cnt: u32,
    ids: [u32; QUERY_IDS],
}

/// The ids of the programs a tracepoint runs now (its `prog_array`, which detaching a
/// program replaces under the same lock this query takes): `PERF_EVENT_IOC_QUERY_BPF`
/// on one of its perf events. Fails for other perf events (`EINVAL`) and beyond 64
/// programs (`ENOSPC`).
pub fn tracepoint_prog_ids(perf: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut query = QueryBpf {
        ids_len: QUERY_IDS as u32,
        prog_cnt: 0,
        ids: [0; QUERY_IDS],
    };
    // SAFETY: the ioctl reads `ids_len` and writes `prog_cnt` and at most `ids_len` ids
    // into `query`, a live, exclusively borrowed `#[repr(C)]` struct with room for them;
    // `perf` is a live descriptor for the duration of the call.
    let ret = unsafe {
        libc::ioctl(
            perf.as_raw_fd(),
            PERF_EVENT_IOC_QUERY_BPF as _,
            &mut query as *mut QueryBpf,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (query.prog_cnt as usize).min(QUERY_IDS);
    Ok(query.ids[..n].to_vec())
}

/// `membarrier(2)` command: a barrier on every CPU of the system (Linux 4.3+, then
/// called `MEMBARRIER_CMD_SHARED`).
const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;

/// Waits until every CPU has passed through a quiescent state: `MEMBARRIER_CMD_GLOBAL`
/// is `synchronize_rcu()` in the kernel (kernel/sched/membarrier.c), so when it returns,
/// every BPF program run that began before this call has ended (tracing programs run
/// with preemption disabled, in an RCU read-side section). Fails (EINVAL) under
/// `nohz_full`, where the kernel refuses the command.
pub fn synchronize_rcu() -> io::Result<()> {
    // SAFETY: membarrier takes two integers (command, flags) and a CPU id it ignores
    // for this command; no pointer is passed.
    let ret = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
