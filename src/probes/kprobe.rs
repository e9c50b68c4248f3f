//! `kprobe:FUNCTION` and `kretprobe:FUNCTION`: dynamic probes on kernel function entry
//! and return. The function must be in BTF (sema) and in kallsyms (preflight). Attached
//! through the kprobe PMU (Linux 4.17+, no global tracefs state) or, without it, through
//! named tracefs `kprobe_events`, which are removed again at exit (and stale ones of dead
//! rbt processes at the next start).

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::{Context, Expand, Multi, NoMatch, Provider, Resolved, Timing, Unresolved};
use crate::abi::{paths, perf_type, BPF_F_KPROBE_MULTI_RETURN, BPF_TRACE_KPROBE_MULTI};
use crate::ast::AttachPoint;
use crate::btf::Lazy;
use crate::codegen::ProgramType;
use crate::runtime::{Attacher, Attachment, RuntimeError};
use crate::sema::Space;
use crate::sys;

pub static KPROBE: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    name: "kprobe",
    aliases: &["k"],
    usage: "kprobe:FUNCTION",
    parts: (1, 2),
    malformed: "missing or malformed function in attach point",
    timing: Timing::Attached,
    prog_type: ProgramType::Kprobe,
    prog_prefix: "kp",
    context: &[Context::ArgRegs, Context::Regs, Context::Signal],
    space: Space::Kernel,
    absent: None,
    resolve,
    check,
    attach: attach_kprobe,
    expand: Some(FUNCTIONS),
    exists: None,
    early: Some(open_early),
    cookies: false,
    multi: Some(Multi {
        available: has_kprobe_multi,
        attach_type: BPF_TRACE_KPROBE_MULTI,
        attach: |attacher, points, prog| attach_multi(attacher, points, false, prog),
    }),
};

pub static KRETPROBE: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    name: "kretprobe",
    aliases: &["kr"],
    usage: "kretprobe:FUNCTION",
    parts: (1, 2),
    malformed: "missing or malformed function in attach point",
    timing: Timing::Attached,
    prog_type: ProgramType::Kprobe,
    prog_prefix: "kr",
    context: &[Context::Retval, Context::Regs, Context::Signal],
    space: Space::Kernel,
    absent: None,
    resolve,
    check,
    attach: attach_kprobe,
    expand: Some(FUNCTIONS),
    exists: None,
    early: Some(open_early),
    cookies: false,
    multi: Some(Multi {
        available: has_kprobe_multi,
        attach_type: BPF_TRACE_KPROBE_MULTI,
        attach: |attacher, points, prog| attach_multi(attacher, points, true, prog),
    }),
};

/// Kernel functions that can be probed, as bpftrace expands `kprobe:` wildcards: tracefs
/// `available_filter_functions`, modules stripped (`func [mod]`).
const FUNCTIONS: Expand = Expand {
    candidates: || super::tracefs_file("available_filter_functions"),
    strip_module: true,
    none_found: NoMatch::Skip(|point| {
        format!(
            "no kernel function matches '{}': attach point skipped, as bpftrace skips it",
            point.name()
        )
    }),
    params: None,
};

/// Functions whose return probe can deadlock the kernel (bpftrace's `banned_kretprobes`:
/// the kretprobe handler itself takes these locks).
const BANNED_KRETPROBES: &[&str] = &[
    "_raw_spin_lock",
    "_raw_spin_lock_irqsave",
    "_raw_spin_unlock_irqrestore",
    "queued_spin_lock_slowpath",
];

/// A `kretprobe` (the two types share their code).
fn is_return(point: &AttachPoint) -> bool {
    point.provider.name == KRETPROBE.name
}

fn resolve(btf: &Lazy, point: &AttachPoint) -> Result<Resolved, Unresolved> {
    let [target] = point.target.as_slice() else {
        // bpftrace 0.17's words (`kprobe:module:function` came in later versions).
        return Err(Unresolved::bpftrace(format!(
            "{} probe type requires 1 argument",
            point.provider.name
        )));
    };
    if is_return(point) && BANNED_KRETPROBES.contains(&target.as_str()) {
        return Err(
            format!("kretprobe:{target} can't be used as it might lock up your system.").into(),
        );
    }
    let func = match super::offset::split(target)? {
        None => target.as_str(),
        // bpftrace's parser: "Offset not allowed" for kretprobes.
        Some(_) if is_return(point) => {
            return Err(format!(
                "kretprobes cannot be attached at a function offset ('{target}'): they attach at the function's return"
            )
            .into())
        }
        Some((func, _)) => func,
    };
    // A kprobe needs no types: a function is probeable when the kernel can trace it,
    // with or without a BTF record (static or inlined-elsewhere functions such as 6.1's
    // `blk_account_io_start` have none; module functions have theirs in module BTF).
    // bpftrace warns and attaches the probe's other attach points (`kprobe:a, kprobe:b`
    // for kernels that have one of the two, as biolatency.bt); alone, it fails.
    if btf.find_func(func).is_none() && !traceable(func) {
        let release = fs::read_to_string(paths::OSRELEASE).unwrap_or_default();
        return Err(Unresolved::skipped(format!(
            "kernel function '{func}' not found: Linux {} has it neither in BTF nor among its traceable functions (absent, renamed, inlined or notrace)",
            release.trim()
        )));
    }
    Ok(Resolved {
        args: None,
        args_space: Space::Kernel,
    })
}

/// Whether the kernel lists `func` as traceable: in tracefs `available_filter_functions`
/// when it can be read (as bpftrace checks), else as a function in kallsyms.
fn traceable(func: &str) -> bool {
    static TRACEABLE: std::sync::OnceLock<Option<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let listed = TRACEABLE.get_or_init(|| {
        let text = super::tracefs_file("available_filter_functions").ok()?;
        Some(
            text.lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect(),
        )
    });
    match listed {
        Some(names) => names.contains(func),
        None => kernel_has_symbol(func),
    }
}

/// The function and the offset into it (0 without `+OFFSET`, which resolve checked).
fn function(point: &AttachPoint) -> &str {
    target(point).0
}

fn target(point: &AttachPoint) -> (&str, u64) {
    let text = point.target.first().map_or("", String::as_str);
    super::offset::split(text)
        .ok()
        .flatten()
        .unwrap_or((text, 0))
}

fn check(attacher: &mut Attacher, point: &AttachPoint) -> Result<(), RuntimeError> {
    let probe = point.name();
    if attacher.tracefs_kprobes || !Path::new(paths::KPROBE_PMU).join("type").exists() {
        legacy_kprobe_events(attacher, &probe)?;
    }
    // A named function (not a wildcard's match, whose list was read to expand it): the
    // kprobe opened here is the check, and attaching uses it. Reading the lists below
    // took ~300 ms of a 500 ms start in the emulated VM (each is ~50k lines the
    // kernel formats on every read); they are read only if the open fails.
    if point.wildcard.is_none() {
        if attacher.opened_perf.contains_key(&probe) {
            return Ok(());
        }
        if let Some(Ok(perf)) = open_pmu_kprobe(attacher, point) {
            attacher.opened_perf.insert(probe, perf);
            return Ok(());
        }
    }
    let function = function(point);
    // Listed as traceable (what wildcards expand from, read already): it exists.
    if !traceable(function) && kernel_symbols_readable() && !kernel_has_symbol(function) {
        return Err(not_found(&probe, function));
    }
    Ok(())
}

/// [`Provider::early`]: a named function's kprobe (not at an offset, which sema
/// checks first).
fn open_early(point: &AttachPoint) -> Option<OwnedFd> {
    match point.target.as_slice() {
        [target] if matches!(super::offset::split(target), Ok(None)) => {
            open_pmu_kprobe(&Attacher::new(), point)?.ok()
        }
        _ => None,
    }
}

/// The kprobe PMU's perf event for `point` (a kretprobe's with the PMU's retprobe bit),
/// or `None` where kprobes go through tracefs `kprobe_events`.
fn open_pmu_kprobe(
    attacher: &Attacher,
    point: &AttachPoint,
) -> Option<Result<OwnedFd, RuntimeError>> {
    if attacher.tracefs_kprobes {
        return None;
    }
    let pmu = Path::new(paths::KPROBE_PMU);
    let pmu_type = read_number(&pmu.join("type"))?;
    let probe = point.name();
    let (function, offset) = target(point);
    let open = || {
        let config = if is_return(point) {
            let bit = retprobe_bit(pmu).ok_or_else(|| RuntimeError::Attach {
                probe: probe.clone(),
                source: io::Error::other("the kprobe PMU does not describe its retprobe bit"),
            })?;
            1u64 << bit
        } else {
            0
        };
        let name = CString::new(function).map_err(|_| not_found(&probe, function))?;
        sys::perf_event_open(pmu_type as u32, config, Some((&name, offset)))
            .map_err(|e| kprobe_error(&probe, function, e))
    };
    Some(open())
}

/// Without the kprobe PMU: the tracefs mount and its `kprobe_events`, if the kernel
/// has kprobes at all (`register_kprobe` exists exactly when CONFIG_KPROBES is set).
fn legacy_kprobe_events(
    attacher: &mut Attacher,
    probe: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf), RuntimeError> {
    if kernel_symbols_readable() && !kernel_has_symbol("register_kprobe") {
        return Err(RuntimeError::NoKprobes {
            probe: probe.to_string(),
            config: "CONFIG_KPROBES",
        });
    }
    let tracefs = attacher.tracefs(probe)?;
    let kprobe_events = tracefs.join("kprobe_events");
    if !kprobe_events.exists() {
        return Err(RuntimeError::NoKprobes {
            probe: probe.to_string(),
            config: "CONFIG_KPROBE_EVENTS",
        });
    }
    Ok((tracefs, kprobe_events))
}

fn attach_kprobe(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let probe = point.name();
    let (function, offset) = target(point);
    let function = function.to_string();
    // Opened by the preflight, or now.
    let perf = match attacher.opened_perf.remove(&probe) {
        Some(perf) => Some(Ok(perf)),
        None => open_pmu_kprobe(attacher, point),
    };
    if let Some(perf) = perf {
        let perf = attacher
            .attach_perf(perf?, prog)
            .map_err(|source| RuntimeError::Attach { probe, source })?;
        return Ok(Attachment::perf(perf));
    }
    let (tracefs, kprobe_events) = legacy_kprobe_events(attacher, &probe)?;
    if !attacher.stale_removed {
        remove_stale_kprobe_events(&kprobe_events);
        attacher.stale_removed = true;
    }
    let event = format!("rbt_{}_{}", std::process::id(), attacher.legacy_count);
    attacher.legacy_count += 1;
    let definition = format!(
        "{}:kprobes/{event} {function}+{offset}",
        if is_return(point) { 'r' } else { 'p' }
    );
    append_line(&kprobe_events, &definition).map_err(|e| kprobe_error(&probe, &function, e))?;
    // From here on, dropping `attachment` removes the event again.
    let remove = format!("-:kprobes/{event}");
    let mut attachment = Attachment::cleanup(move || {
        let _ = append_line(&kprobe_events, &remove);
    });
    let id_path = tracefs.join("events/kprobes").join(&event).join("id");
    let id = read_number(&id_path).ok_or_else(|| RuntimeError::Attach {
        probe: probe.clone(),
        source: io::Error::other(format!("cannot read {}", id_path.display())),
    })?;
    let perf = sys::perf_event_open(perf_type::TRACEPOINT, id, None).map_err(|source| {
        RuntimeError::Attach {
            probe: probe.clone(),
            source,
        }
    })?;
    attachment.set_perf(
        attacher
            .attach_perf(perf, prog)
            .map_err(|source| RuntimeError::Attach { probe, source })?,
    );
    Ok(attachment)
}

/// bpftrace 0.17's `has_kprobe_multi` (bpffeature.cpp), once per process: a program
/// `r0 = 0; exit` loaded for `BPF_TRACE_KPROBE_MULTI` and linked to `ksys_read`. Linux
/// 5.18+ built with CONFIG_FPROBE passes (Debian's 6.12 does, its 6.1 does not).
fn has_kprobe_multi() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| kprobe_multi_probe().is_ok())
}

/// The feature test itself; the error says which step the kernel refused.
fn kprobe_multi_probe() -> Result<(), String> {
    use crate::abi::insn::{Insn, BPF_ALU64, BPF_EXIT, BPF_JMP, BPF_K, BPF_MOV};
    let insns = [
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
    let prog = sys::prog_load(
        crate::abi::prog_type::KPROBE,
        &insns,
        "GPL",
        "ksys_read",
        BPF_TRACE_KPROBE_MULTI,
    )
    .map_err(|e| format!("load: {}", e.errno))?;
    let sym = CString::new("ksys_read").map_err(|e| e.to_string())?;
    sys::kprobe_multi_link_create(prog.as_fd(), &[sym], 0)
        .map(drop)
        .map_err(|e| format!("link: {e}"))
}

/// Attaches `prog` (loaded for `BPF_TRACE_KPROBE_MULTI`) to every function of `points`,
/// one wildcard's matches, with one kprobe_multi link, by name, as bpftrace does.
fn attach_multi(
    _: &mut Attacher,
    points: &[AttachPoint],
    retprobe: bool,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    // bpftrace names the probe by its wildcard: `kprobe:vfs_*`.
    let probe = points.first().map_or_else(String::new, |p| {
        format!(
            "{}:{}",
            p.provider.name,
            p.wildcard.as_deref().unwrap_or_default()
        )
    });
    let syms = points
        .iter()
        .map(|p| CString::new(function(p)).map_err(|_| not_found(&probe, function(p))))
        .collect::<Result<Vec<_>, _>>()?;
    let flags = if retprobe {
        BPF_F_KPROBE_MULTI_RETURN
    } else {
        0
    };
    let link = sys::kprobe_multi_link_create(prog, &syms, flags)
        .map_err(|source| RuntimeError::Attach { probe, source })?;
    Ok(Attachment::link(link))
}

fn not_found(probe: &str, function: &str) -> RuntimeError {
    let exists = kernel_has_symbol(function);
    RuntimeError::FunctionNotFound {
        probe: probe.to_string(),
        function: function.to_string(),
        exists,
    }
}

/// Explains a failed kprobe creation: missing or untraceable function, an offset off an
/// instruction boundary, or privileges.
fn kprobe_error(probe: &str, function: &str, source: io::Error) -> RuntimeError {
    match source.raw_os_error() {
        // The kernel decodes the function: the offset is inside an instruction.
        Some(libc::EILSEQ) if probe.contains('+') => RuntimeError::Attach {
            probe: probe.to_string(),
            source: io::Error::other(
                "the offset is in the middle of an instruction: try a different offset",
            ),
        },
        Some(libc::ENOENT)
        | Some(libc::EINVAL)
        | Some(libc::EADDRNOTAVAIL)
        | Some(libc::EILSEQ) => not_found(probe, function),
        _ => RuntimeError::Attach {
            probe: probe.to_string(),
            source,
        },
    }
}

/// Whether `/proc/kallsyms` lists `function` (tells "no such function" from "not traceable").
/// Read once per process: the preflight asks for every attach point, and a wildcard's
/// dozens of matches each rereading the whole file took minutes under emulation.
fn kernel_has_symbol(function: &str) -> bool {
    static FUNCTIONS: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    FUNCTIONS
        .get_or_init(|| {
            let text = fs::read_to_string(paths::KALLSYMS).unwrap_or_default();
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let (_, kind, name) = (f.next(), f.next(), f.next()?);
                    matches!(kind, Some("t") | Some("T")).then(|| name.to_string())
                })
                .collect()
        })
        .contains(function)
}

/// Whether `/proc/kallsyms` can be read and lists functions at all.
fn kernel_symbols_readable() -> bool {
    let mut first = [0u8; 64];
    fs::File::open(paths::KALLSYMS)
        .and_then(|mut f| f.read(&mut first))
        .is_ok_and(|n| n > 0)
}

/// The `config` bit that makes a kprobe PMU event a return probe (`format/retprobe`
/// holds e.g. `config:0`).
fn retprobe_bit(pmu: &Path) -> Option<u32> {
    let text = fs::read_to_string(pmu.join("format/retprobe")).ok()?;
    text.trim().strip_prefix("config:")?.parse().ok()
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// Removes `rbt_<pid>_<n>` kprobe events left behind by rbt processes that died
/// without cleaning up.
fn remove_stale_kprobe_events(kprobe_events: &Path) {
    let Ok(text) = fs::read_to_string(kprobe_events) else {
        return;
    };
    let stale: HashSet<String> = text
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .split_once(':')?
                .1
                .split('/')
                .nth(1)
                .map(str::to_string)
        })
        .filter(|name| {
            let pid = name
                .strip_prefix("rbt_")
                .and_then(|r| r.split('_').next())
                .and_then(|p| p.parse::<u32>().ok());
            pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect();
    for name in stale {
        let _ = append_line(kprobe_events, &format!("-:kprobes/{name}"));
    }
}
