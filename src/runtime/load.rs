//! Loading: create the maps, point each map reference at its map's fd, and hand every
//! program to the kernel (where the verifier checks it).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use super::error::RuntimeError;
use crate::abi::insn::{Insn, BPF_DW, BPF_IMM, BPF_LD, PSEUDO_MAP_FD};
use crate::abi::map_type;
use crate::codegen::{standard_maps, Compiled, MapRole, MapSpec, ProgramCode, ProgramType};
use crate::sys;

/// The first half of a 16-byte `LD_IMM64`.
const LD_IMM64: u8 = BPF_LD | BPF_DW | BPF_IMM;

/// Helpers such as `bpf_probe_read_kernel` are GPL-only, as for bpftrace.
const LICENSE: &str = "GPL";

/// Maps and programs in the kernel, owned by their fds (closing them unloads them).
#[derive(Debug)]
pub struct Loaded {
    /// One fd per [`Compiled::maps`] entry, same order.
    pub maps: Vec<OwnedFd>,
    /// One fd per [`Compiled::programs`] entry, same order.
    pub programs: Vec<OwnedFd>,
}

/// The kernel program type for a codegen program type.
pub fn kernel_prog_type(t: ProgramType) -> u32 {
    t.kernel_type()
}

/// The creation flags for the map `spec` on the kernel of release `kernel`.
///
/// Per-CPU hash maps (the aggregations) are not preallocated where the kernel allocates
/// hash elements safely from any tracing program, `perf_event` ones included (its
/// `bpf_mem_alloc`, Linux 6.1): preallocating 4096 entries on every CPU was ~5 ms, most
/// of a `count()` script's startup. Full maps refuse new keys the same way either way
/// (`E2BIG` at `max_entries`), and their iteration order is the same. Older kernels
/// refuse such maps in `perf_event` programs, so they keep the preallocation.
///
/// The status array (lost events, the `exit()` flag) is mmapable from Linux 5.5, so the
/// runtime reads it after each drain without a syscall (see `sys::ArrayMemory`); older
/// kernels refuse the flag, and the runtime looks the values up instead.
fn map_flags(spec: &MapSpec, kernel: &str) -> u32 {
    let mut release = kernel.trim().split(|c: char| !c.is_ascii_digit());
    let mut next = || release.next().and_then(|n| n.parse::<u32>().ok());
    let at_least = (next().unwrap_or(0), next().unwrap_or(0));
    match (spec.map_type, &spec.role) {
        (map_type::PERCPU_HASH, _) if at_least >= (6, 1) => crate::abi::BPF_F_NO_PREALLOC,
        (map_type::ARRAY, MapRole::Lost) if at_least >= (5, 5) => crate::abi::BPF_F_MMAPABLE,
        _ => 0,
    }
}

/// Creates every map and loads every program of `compiled`.
pub fn load(compiled: &Compiled) -> Result<Loaded, RuntimeError> {
    load_with(compiled, &Premade::default())
}

/// [`load`], taking from `premade` the maps created while the script compiled.
pub fn load_with(compiled: &Compiled, premade: &Premade) -> Result<Loaded, RuntimeError> {
    let mut maps = Vec::with_capacity(compiled.maps.len());
    let kernel = premade.kernel.clone().unwrap_or_else(kernel_release);
    for spec in &compiled.maps {
        let fd = match premade.take(spec) {
            Some(fd) => fd,
            None => create_map(spec, &kernel)?,
        };
        maps.push(fd);
    }
    let mut stacks = Vec::new();
    for (spec, fd) in compiled.maps.iter().zip(&maps) {
        if let MapRole::Stack(stack) = spec.role {
            let fd = fd.try_clone().map_err(|source| RuntimeError::MapCreate {
                map: spec.name.clone(),
                source,
            })?;
            stacks.push((stack, fd));
        }
    }
    // Printing reads stacks from these maps.
    crate::symbols::set_stack_maps(stacks);
    for (spec, fd) in compiled.maps.iter().zip(&maps) {
        if let MapRole::ProbeNames(names) = &spec.role {
            fill_probe_names(spec, names, fd)?;
        }
    }
    crate::timings::phase("create maps");
    let programs = load_programs(&compiled.programs, &maps)?;
    Ok(Loaded { maps, programs })
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default()
}

/// Creates the map `spec` on the kernel of release `kernel`, with the error a user can
/// act on (the privilege, the kernel feature, the stack limit).
fn create_map(spec: &MapSpec, kernel: &str) -> Result<OwnedFd, RuntimeError> {
    sys::map_create_with_flags(
        spec.map_type,
        spec.key_size,
        spec.value_size,
        spec.max_entries,
        map_flags(spec, kernel),
        &spec.name,
    )
    .map_err(|source| match source.raw_os_error() {
        Some(libc::EPERM) => RuntimeError::Permission {
            action: format!("create BPF map {}", spec.name),
        },
        Some(libc::EINVAL) if spec.map_type == map_type::RINGBUF => RuntimeError::KernelTooOld {
            feature: "BPF ring buffers",
            version: "5.8",
        },
        _ => match spec.role {
            MapRole::Stack(stack) => RuntimeError::StackMapCreate {
                limit: stack.limit,
                max: std::fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
                source,
            },
            _ => RuntimeError::MapCreate {
                map: spec.name.clone(),
                source,
            },
        },
    })
}

/// The maps every program has ([`standard_maps`]: the event ring buffer, the status
/// array), created while the script is still compiled, since they need nothing from it.
/// The ring buffer is the slowest map to create: the kernel allocates and maps its 256
/// pages, 0.2 ms natively most of the time and 2-4.6 ms at times (docs/PERFORMANCE.md).
/// A map that could not be made here is created by [`load_with`], which reports why.
#[derive(Debug, Default)]
pub struct Premade {
    made: Mutex<Vec<(MapSpec, OwnedFd)>>,
    /// The kernel release the maps were made for, which loading reuses.
    kernel: Option<String>,
}

impl Premade {
    pub fn create() -> Premade {
        // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones ignore it.
        let _ = sys::raise_memlock_rlimit();
        let kernel = kernel_release();
        let made = standard_maps()
            .into_iter()
            .filter_map(|spec| create_map(&spec, &kernel).ok().map(|fd| (spec, fd)))
            .collect();
        crate::timings::phase("premade maps");
        Premade {
            made: Mutex::new(made),
            kernel: Some(kernel),
        }
    }

    /// How many of the maps made are not taken yet.
    pub fn remaining(&self) -> usize {
        self.made.lock().map(|made| made.len()).unwrap_or(0)
    }

    /// The map made for `spec`, if one was (each is taken once).
    fn take(&self, spec: &MapSpec) -> Option<OwnedFd> {
        let mut made = self.made.lock().ok()?;
        let at = made.iter().position(|(s, _)| s == spec)?;
        Some(made.swap_remove(at).1)
    }
}

/// Writes each name, NUL-padded, at its index (the cookie its attach point gets).
fn fill_probe_names(spec: &MapSpec, names: &[String], fd: &OwnedFd) -> Result<(), RuntimeError> {
    let mut value = vec![0u8; spec.value_size as usize];
    for (index, name) in names.iter().enumerate() {
        value.fill(0);
        let len = name.len().min(value.len().saturating_sub(1));
        value[..len].copy_from_slice(&name.as_bytes()[..len]);
        let key = (index as u32).to_ne_bytes();
        sys::map_update_elem(fd.as_fd(), &key, &value, 0).map_err(|source| {
            RuntimeError::MapCreate {
                map: spec.name.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Loads `programs` in order, from a few threads at once when there are many (a
/// 300-match wildcard whose body reads `args` makes one program per match, and the
/// verifier runs in parallel for privileged loads); the first failure in program order
/// is the error, as when loading one after another.
fn load_programs(programs: &[ProgramCode], maps: &[OwnedFd]) -> Result<Vec<OwnedFd>, RuntimeError> {
    const SERIAL_BELOW: usize = 16;
    let one = |prog: &ProgramCode| load_program(prog, maps, super::attach::load_attach_type(prog));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if programs.len() < SERIAL_BELOW || threads < 2 {
        return programs.iter().map(one).collect();
    }
    let chunk = programs.len().div_ceil(threads);
    let loaded: Vec<Result<Vec<OwnedFd>, RuntimeError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = programs
            .chunks(chunk)
            .map(|part| {
                let work = move || part.iter().map(one).collect::<Result<Vec<_>, _>>();
                // A thread that cannot start leaves its part to this one.
                std::thread::Builder::new()
                    .spawn_scoped(scope, work)
                    .map_err(|_| part)
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle {
                Ok(thread) => thread.join().unwrap_or_else(|_| {
                    Err(RuntimeError::Internal(
                        "a program-loading thread panicked".into(),
                    ))
                }),
                Err(part) => part.iter().map(one).collect(),
            })
            .collect()
    });
    let mut all = Vec::with_capacity(programs.len());
    for part in loaded {
        all.extend(part?);
    }
    Ok(all)
}

/// Loads one program, its map references pointing at `maps` (also used to load a
/// second copy: the kernel attaches a program to an event only once, and bpftrace runs
/// a probe once per listed attach point, duplicates included; and a program attached
/// both singly and with a multi link needs one copy for each `expected_attach_type`).
pub fn load_program(
    prog: &ProgramCode,
    maps: &[OwnedFd],
    expected_attach_type: u32,
) -> Result<OwnedFd, RuntimeError> {
    let insns = patch_map_fds(&prog.insns, maps, &prog.name)?;
    let probe = probe_label(prog);
    sys::prog_load(
        kernel_prog_type(prog.prog_type),
        &insns,
        LICENSE,
        &prog.name,
        expected_attach_type,
    )
    .map_err(|e| {
        if e.errno.raw_os_error() == Some(libc::EPERM) {
            RuntimeError::Permission {
                action: format!("load the BPF program for {probe}"),
            }
        } else if sys::out_of_fds(&e.errno) {
            // Not the verifier's verdict: the new program's fd could not be made.
            RuntimeError::sys(format!("load the BPF program for {probe}"), e.errno)
        } else {
            RuntimeError::Verifier {
                probe,
                source: e.errno,
                log: e.verifier_log,
            }
        }
    })
}

/// The attach points a program serves, as bpftrace spells them (`kprobe:a,kprobe:b`).
pub(crate) fn probe_label(prog: &ProgramCode) -> String {
    if prog.attach_points.is_empty() {
        return prog.name.clone();
    }
    prog.attach_points
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// Replaces each map index in a `LD_IMM64` map reference with the map's fd.
fn patch_map_fds(insns: &[Insn], maps: &[OwnedFd], prog: &str) -> Result<Vec<Insn>, RuntimeError> {
    let mut out = insns.to_vec();
    let mut i = 0;
    while i < out.len() {
        if out[i].code == LD_IMM64 {
            if out[i].src() == PSEUDO_MAP_FD {
                let index = out[i].imm;
                let fd = usize::try_from(index).ok().and_then(|ix| maps.get(ix)).ok_or_else(|| {
                    RuntimeError::Internal(format!("program {prog}: instruction {i} refers to map {index}, which does not exist"))
                })?;
                out[i].imm = std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd());
            }
            i += 2; // the second half of LD_IMM64 carries the upper 32 bits
        } else {
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(map_type: u32, role: MapRole) -> MapSpec {
        MapSpec {
            name: "m".into(),
            map_type,
            key_size: 4,
            value_size: 8,
            max_entries: 2,
            role,
        }
    }

    #[test]
    fn per_cpu_hashes_are_not_preallocated_from_linux_6_1() {
        let no_prealloc = crate::abi::BPF_F_NO_PREALLOC;
        let hash = spec(map_type::PERCPU_HASH, MapRole::Events);
        assert_eq!(map_flags(&hash, "6.1.0-56-cloud-amd64\n"), no_prealloc);
        assert_eq!(map_flags(&hash, "6.18.44-fc-v1045"), no_prealloc);
        assert_eq!(map_flags(&hash, "5.15.0-91-generic"), 0);
        assert_eq!(map_flags(&hash, "6.0.19"), 0);
        assert_eq!(map_flags(&hash, ""), 0);
        assert_eq!(
            map_flags(&spec(map_type::HASH, MapRole::Events), "6.12.1"),
            0
        );
    }

    #[test]
    fn the_status_array_is_mmapable_from_linux_5_5() {
        let status = spec(map_type::ARRAY, MapRole::Lost);
        let mmapable = crate::abi::BPF_F_MMAPABLE;
        assert_eq!(map_flags(&status, "5.5.0"), mmapable);
        assert_eq!(map_flags(&status, "6.1.0-56-cloud-amd64"), mmapable);
        assert_eq!(map_flags(&status, "5.4.290"), 0);
        assert_eq!(
            map_flags(&spec(map_type::ARRAY, MapRole::Events), "6.12.1"),
            0
        );
    }
}
