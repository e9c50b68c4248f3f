//! Waiting until no CPU is still inside a tracing program that began before now, by
//! running this thread on every online CPU in turn.

use std::io;

use crate::abi::paths;

/// An affinity mask as the kernel reads it: bits in `unsigned long` words (1024 CPUs).
type Mask = [libc::c_ulong; 1024 / libc::c_ulong::BITS as usize];
const WORD: usize = libc::c_ulong::BITS as usize;

/// Returns once every online CPU has left the preemption-disabled section it was in when
/// this was called: a CPU switches to another task (this thread, moved there with
/// `sched_setaffinity`) only outside such sections, and tracepoint and perf-event
/// programs run entirely inside one (see `runtime::attach::detach_all`). The same
/// guarantee as [`super::synchronize_rcu`] for those programs, in well under a
/// millisecond on an idle system instead of an RCU grace period (8-25 ms measured
/// here). Fails, for the caller to fall back on the grace period, when this thread may
/// not run on some online CPU (a `taskset` or cpuset), when a move does not land where
/// asked, and on PREEMPT_RT kernels, whose tracing paths may be preempted. The
/// thread's affinity is restored before returning.
pub fn visit_every_cpu() -> io::Result<()> {
    let refuse = || io::Error::from_raw_os_error(libc::EOPNOTSUPP);
    if std::fs::read_to_string("/sys/kernel/realtime").is_ok_and(|t| t.trim() == "1") {
        return Err(refuse());
    }
    let online =
        parse_cpu_list(&std::fs::read_to_string(paths::ONLINE_CPUS)?).ok_or_else(refuse)?;
    let mut original: Mask = [0; 1024 / WORD];
    get_affinity(&mut original)?;
    if online.iter().any(|&cpu| !is_set(&original, cpu)) {
        return Err(refuse());
    }
    let visited = online.iter().try_for_each(|&cpu| {
        let mut only: Mask = [0; 1024 / WORD];
        only[cpu / WORD] |= 1 << (cpu % WORD);
        set_affinity(&only)?;
        // Running now, so on `cpu` (the only one allowed); checked all the same.
        if current_cpu() != Some(cpu) {
            return Err(refuse());
        }
        Ok(())
    });
    let restored = set_affinity(&original);
    visited.and(restored)
}

fn is_set(mask: &Mask, cpu: usize) -> bool {
    mask.get(cpu / WORD)
        .is_some_and(|w| w & (1 << (cpu % WORD)) != 0)
}

/// A CPU list such as `0-3,6` (sysfs's format); `None` if malformed or past the mask.
fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (first, last): (usize, usize) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => (part.parse().ok()?, part.parse().ok()?),
        };
        if first > last || last >= 1024 {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

fn get_affinity(mask: &mut Mask) -> io::Result<()> {
    // SAFETY: `mask` is a writable buffer of exactly the size passed; the kernel writes
    // at most that many bytes (EINVAL if its CPU mask is larger).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            0,
            std::mem::size_of::<Mask>(),
            mask.as_mut_ptr(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_affinity(mask: &Mask) -> io::Result<()> {
    // SAFETY: `mask` is a readable buffer of exactly the size passed; the kernel only
    // reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0,
            std::mem::size_of::<Mask>(),
            mask.as_ptr(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments and only returns an integer.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("0-2000"), None);
        assert_eq!(parse_cpu_list(""), None);
    }

    /// Succeeds wherever this thread may run on every online CPU, and leaves its
    /// affinity as it was either way.
    #[test]
    fn visits_and_restores_affinity() {
        let mut before: Mask = [0; 1024 / WORD];
        get_affinity(&mut before).expect("sched_getaffinity");
        let online = std::fs::read_to_string(paths::ONLINE_CPUS).expect("online CPUs");
        let online = parse_cpu_list(&online).expect("online CPU list");
        let allowed = online.iter().all(|&cpu| is_set(&before, cpu));
        let realtime =
            std::fs::read_to_string("/sys/kernel/realtime").is_ok_and(|t| t.trim() == "1");
        assert_eq!(visit_every_cpu().is_ok(), allowed && !realtime);
        let mut after: Mask = [0; 1024 / WORD];
        get_affinity(&mut after).expect("sched_getaffinity");
        assert_eq!(before, after);
    }
}
