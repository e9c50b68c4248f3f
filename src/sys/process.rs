//! Polling, signals, child processes, resource limits, mounts.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::owned_fd;

/// `poll(2)` on `fds` for readability. Returns which are readable (or hung up); an
/// interrupted wait counts as a timeout.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a live array of exactly `pfds.len()` pollfd structs.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
        .collect())
}

/// Signals delivered as readable data on a file descriptor (`signalfd`) instead of
/// handlers, so no work happens in signal context. Creating it blocks the signals on
/// the calling thread; dropping it restores the previous mask.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initializes the zeroed set; sigaddset only writes into it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

impl SignalFd {
    pub fn new(signals: &[libc::c_int]) -> io::Result<SignalFd> {
        let set = sigset(signals);
        // SAFETY: a zeroed sigset_t is a valid out-parameter for pthread_sigmask.
        let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: both sets are live, initialized sigset_t values.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // A signal inherited as ignored (as `cmd &` in a non-interactive shell leaves
        // SIGINT) is discarded, not queued for the signalfd: take the default disposition.
        for &signal in signals {
            // SAFETY: SIG_DFL installs no handler code, and the signal is blocked, so its
            // default action cannot run before the signalfd consumes it.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        // SAFETY: `set` is initialized; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: restores the mask saved above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
            return Err(e);
        }
        Ok(SignalFd {
            fd: owned_fd(fd as libc::c_long),
            old_mask,
        })
    }

    /// The next pending signal's number, if any (non-blocking).
    pub fn read(&self) -> io::Result<Option<i32>> {
        // SAFETY: signalfd_siginfo is plain data; zeroed is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let len = size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is a live, writable buffer of exactly `len` bytes.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok((n as usize == len).then_some(info.ssi_signo as i32))
    }

    /// Whether one of `signals` is pending (blocked, not yet read): a peek, which
    /// leaves it for [`SignalFd::read`].
    pub fn pending(&self, signals: &[libc::c_int]) -> io::Result<bool> {
        // SAFETY: a zeroed sigset_t is a valid out-parameter for sigpending.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live, writable sigset_t.
        if unsafe { libc::sigpending(&mut set) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let member = |signal| {
            // SAFETY: `set` was filled by sigpending; sigismember only reads it.
            unsafe { libc::sigismember(&set, signal) == 1 }
        };
        Ok(signals.iter().any(|&s| member(s)))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        // Consume signals that arrived after the last read (a second Ctrl-C during END):
        // unblocked, their default action would kill the process on its way out.
        while let Ok(Some(_)) = self.read() {}
        // SAFETY: restores the initialized mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// Spawns `cmd` with an empty signal mask, undoing the blocking [`SignalFd`] did (a
/// blocked mask is inherited across exec and would make the child ignore Ctrl-C).
/// The child gets a copy of `extra[i]` as its descriptor `3 + i` (the `-c` gates).
pub fn spawn_with_default_signals(
    cmd: &mut std::process::Command,
    extra: &[BorrowedFd<'_>],
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let fds: Vec<i32> = extra.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: the closure runs between fork and exec and only calls sigemptyset,
    // pthread_sigmask (on a local set) and dup2 (of descriptors the parent keeps open
    // until spawn returns, onto 3.. which no other source uses), all
    // async-signal-safe; it allocates nothing (`fds` was built before the fork).
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for (i, &fd) in fds.iter().enumerate() {
                if libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// The soft `RLIMIT_NOFILE` (`getrlimit` needs no descriptor, unlike /proc/self/limits,
/// which matters when none is left).
pub fn open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// Whether `e` means no file descriptor was left.
pub fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// `e` as rbt shows a failed system call; running out of file descriptors (`EMFILE`,
/// `ENFILE`), which rbt does under a low `ulimit -n` (every map, program and probe is
/// one), says what to do.
pub fn describe_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) => {
            let limit = open_files_limit().map_or(String::new(), |n| format!(" is {n}:"));
            format!("out of file descriptors (too many open files; the limit{limit} raise it with `ulimit -n`)")
        }
        Some(libc::ENFILE) => {
            "out of file descriptors (the system-wide limit on open files is reached)".to_string()
        }
        _ => e.to_string(),
    }
}

/// Raises `RLIMIT_MEMLOCK` to unlimited (kernels before 5.11 charge BPF maps to it).
pub fn raise_memlock_rlimit() -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `lim` is a live, initialized rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Mounts tracefs at `target` (an existing, empty directory).
pub fn mount_tracefs(target: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fstype = c"tracefs";
    // SAFETY: all strings are NUL-terminated and outlive the call; data is NULL.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `pidfd_open(pid, 0)`: a descriptor that polls readable once process `pid` has exited.
/// `ESRCH` when there is no such process.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags by value and touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned_fd(ret))
}

/// `kill(pid, signal)` for one process (never a group: `pid` must be positive).
pub fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: kill takes integers and touches no memory of ours; `pid > 0` names one
    // process, so no process group or broadcast (`-1`) is signalled.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `clock_gettime(CLOCK_BOOTTIME)` in nanoseconds: the clock `bpf_ktime_get_boot_ns`
/// reads, so user space can hand programs a start time (`elapsed`).
pub fn boottime_ns() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, initialized timespec the call only writes.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// `struct file_handle` with room for 8 bytes of handle: a cgroup's handle is its
/// 64-bit id (bpftrace 0.17's `cgid_file_handle`; a longer handle fails `EOVERFLOW`).
#[repr(C)]
struct CgroupHandle {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    id: u64,
}

/// `name_to_handle_at(AT_FDCWD, path)` read as a cgroup id (`cgroupid()`), as
/// bpftrace 0.17 resolves it.
pub fn cgroup_id(path: &std::ffi::CStr) -> io::Result<u64> {
    let mut handle = CgroupHandle {
        handle_bytes: 8,
        handle_type: 0,
        id: 0,
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `path` is NUL-terminated and alive for the call; `handle` is a live
    // `file_handle` whose `handle_bytes` (8) is the room after its header, and
    // `mount_id` a live int; the kernel writes only within them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut handle as *mut CgroupHandle,
            &mut mount_id as *mut libc::c_int,
            0 as libc::c_int,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(handle.id)
}

/// `capget` for this process: its effective capabilities (bit N is capability N). A
/// system call where reading `/proc/self/status` had the kernel format ~60 lines (2-5 ms
/// in the emulated VMs).
pub fn effective_capabilities() -> io::Result<u64> {
    /// `struct __user_cap_header_struct`.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    /// `struct __user_cap_data_struct`; version 3 takes two (capabilities 0-31, 32-63).
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: a live header and two live data records, as version 3 of capget writes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(data[0].effective) | u64::from(data[1].effective) << 32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn capabilities_are_those_proc_reports() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap();
        let proc = u64::from_str_radix(hex.trim(), 16).unwrap();
        assert_eq!(super::effective_capabilities().unwrap(), proc);
    }
}
