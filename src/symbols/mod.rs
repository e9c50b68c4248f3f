//! Symbolising at print time, as bpftrace 0.17 does it: `ksym`/`usym` values and stacks
//! (`kstack`/`ustack`) are printed from the addresses the kernel recorded, resolved
//! when the record or map is printed — a process that exited by then prints raw
//! addresses. The stack maps' fds are registered by the runtime when it creates them
//! ([`set_stack_maps`]); everything else is read from `/proc`.
//!
//! Formats (measured on the development host): `ksym`/`usym` print the bare name
//! (`0x...` when unknown); a stack is `"\n"` and then one line a frame, `symbol+offset`
//! after `indent` spaces (8 in printf, 4 as a map key, 8 as a map value), or in perf
//! mode `"\tADDR symbol+offset"`, user frames adding ` (module)` (` ([unknown])`).

mod kernel;
mod user;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, OnceLock};

pub use kernel::Kallsyms;
pub use user::{parse_maps, ElfCache, Mapping, UserSymbol};

use crate::event::{StackMode, StackType};
use crate::sys;

#[derive(Default)]
struct State {
    user: ElfCache,
    stacks: Vec<(StackType, OwnedFd)>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// `/proc/kallsyms`, read once: by [`prefetch_kernel`] or at the first kernel symbol.
static KERNEL: OnceLock<Kallsyms> = OnceLock::new();

/// Reads `/proc/kallsyms` on a thread of its own. Reading and sorting its ~100k lines
/// takes ~0.1 s natively and seconds in an emulated VM: done at the first print it
/// delayed that print and bunched an `interval` probe's output (vfsstat.bt). A print
/// that comes first waits for this read instead of starting another.
pub fn prefetch_kernel() {
    std::thread::spawn(|| KERNEL.get_or_init(Kallsyms::load));
}

fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    f(state().get_or_insert_with(State::default))
}

/// The stack maps of the running script, by stack type.
pub fn set_stack_maps(maps: Vec<(StackType, OwnedFd)>) {
    with(|s| s.stacks = maps);
}

/// `ksym(addr)`: the kernel symbol's name (bpftrace prints no offset), else `0x...`.
pub fn ksym(addr: u64) -> String {
    kernel_symbol(addr, false)
}

/// `usym(addr)` of process `pid`: the symbol's name, else `0x...`.
pub fn usym(addr: u64, pid: u32) -> String {
    with(|s| user_symbol(s, addr, pid, false, false))
}

fn kernel_symbol(addr: u64, offset: bool) -> String {
    match KERNEL.get_or_init(Kallsyms::load).resolve(addr) {
        Some((name, off)) if offset => format!("{name}+{off}"),
        Some((name, _)) => name.to_string(),
        None => format!("{addr:#x}"),
    }
}

fn user_symbol(s: &mut State, addr: u64, pid: u32, offset: bool, module: bool) -> String {
    let sym = s.user.resolve(pid, addr);
    let mut text = match &sym {
        Some(sym) if offset => format!("{}+{}", sym.name, sym.offset),
        Some(sym) => sym.name.clone(),
        None => format!("{addr:#x}"),
    };
    if module {
        let module = sym.as_ref().map_or("[unknown]", |s| s.module.as_str());
        text.push_str(&format!(" ({module})"));
    }
    text
}

/// A stack as text: `id_pid` is the recorded value (stack id in the low 32 bits, for
/// user stacks the thread id above), `indent` the spaces before each frame.
pub fn stack(id_pid: u64, user: bool, stack: StackType, indent: usize) -> String {
    let id = id_pid as u32 as i32;
    let pid = (id_pid >> 32) as u32;
    with(|s| {
        let Some((_, fd)) = s.stacks.iter().find(|(t, _)| *t == stack) else {
            return String::new();
        };
        let mut frames = vec![0u8; 8 * stack.limit as usize];
        let errno = match sys::map_lookup_elem(fd.as_fd(), &id.to_le_bytes(), &mut frames) {
            Ok(true) => 0,
            Ok(false) => libc::ENOENT,
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
        };
        // A negative id is the helper's error; -EFAULT (no kernel stack in a uprobe,
        // no user stack in a kernel thread) is silent, as in bpftrace, which reports
        // others with libbpf's -errno.
        if errno != 0 {
            if id != -libc::EFAULT {
                eprintln!("ERROR: failed to look up stack id {id} (pid {pid}): -{errno}");
            }
            return String::new();
        }
        let addrs: Vec<u64> = frames
            .chunks_exact(8)
            .map(|f| u64::from_le_bytes(f.try_into().expect("8 bytes")))
            .collect();
        let perf = stack.mode == StackMode::Perf;
        render(&addrs, stack.mode, indent, |addr| {
            if user {
                user_symbol(s, addr, pid, true, perf)
            } else {
                kernel_symbol(addr, true)
            }
        })
    })
}

/// A stack's frames as bpftrace's `get_stack` prints them: a newline, then one line a
/// frame up to the first zero address, `symbol` giving each frame's text.
pub fn render(
    addrs: &[u64],
    mode: StackMode,
    indent: usize,
    mut symbol: impl FnMut(u64) -> String,
) -> String {
    let mut text = String::from("\n");
    for &addr in addrs.iter().take_while(|&&a| a != 0) {
        let sym = symbol(addr);
        match mode {
            StackMode::Bpftrace => {
                text.extend(std::iter::repeat_n(' ', indent));
                text.push_str(&sym);
            }
            StackMode::Perf => text.push_str(&format!("\t{addr:x} {sym}")),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layouts bpftrace 0.17 printed on the development host for
    /// `@[kstack(2)] = count()`, `printf("%s", ustack)` and `@[ustack(perf)]`.
    #[test]
    fn stacks_render_as_bpftrace_prints_them() {
        let kallsyms = Kallsyms::parse(
            "ffffffff814c2b30 t perf_syscall_enter\nffffffff81424190 T syscall_trace_enter\n",
        );
        let ksym = |addr| {
            let (name, off) = kallsyms.resolve(addr).unwrap();
            format!("{name}+{off}")
        };
        let frames = [0xffffffff814c2d0b, 0xffffffff81424310, 0, 0xdead];
        assert_eq!(
            render(&frames, StackMode::Bpftrace, 4, ksym),
            "\n    perf_syscall_enter+475\n    syscall_trace_enter+384\n"
        );
        assert_eq!(
            render(&frames[..1], StackMode::Perf, 4, ksym),
            "\n\tffffffff814c2d0b perf_syscall_enter+475\n"
        );
        let unknown = |addr: u64| format!("{addr:#x} ([unknown])");
        assert_eq!(
            render(&[0x55dc59116159], StackMode::Perf, 8, unknown),
            "\n\t55dc59116159 0x55dc59116159 ([unknown])\n"
        );
        assert_eq!(
            render(&[0x401136], StackMode::Bpftrace, 8, |_| "stk_inner+0"
                .into()),
            "\n        stk_inner+0\n"
        );
        assert_eq!(render(&[], StackMode::Bpftrace, 4, ksym), "\n");
    }
}
