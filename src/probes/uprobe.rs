//! `uprobe:PATH:FUNCTION` and `uretprobe:PATH:FUNCTION`: dynamic probes on user-space
//! function entry and return. The target is found as bpftrace 0.17 finds it: a `libNAME`
//! through the dynamic loader's cache, a name without `/` through `PATH`; the function
//! is a symbol (or, as a number, an address) of that ELF file, turned into the file
//! offset the kernel wants (`elf::Elf::file_offset`). Attached through the uprobe PMU
//! (Linux 4.17+), for every process: `-p PID` is the programs' pid filter.

mod ldcache;
mod list;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::offset::integer;
use super::{Context, Provider, Resolved, Timing, Unresolved};
use crate::abi::paths;
use crate::ast::AttachPoint;
use crate::btf::Lazy;
use crate::codegen::ProgramType;
use crate::elf::{self, ObjectKind};
use crate::runtime::{Attacher, Attachment, RuntimeError};
use crate::sema::Space;
use crate::sys;

pub static UPROBE: Provider = Provider {
    space: Space::User,
    name: "uprobe",
    aliases: &["u"],
    usage: "uprobe:PATH:FUNCTION",
    parts: (2, 2),
    malformed: "missing binary or function in attach point",
    timing: Timing::Attached,
    prog_type: ProgramType::Kprobe,
    prog_prefix: "up",
    context: &[
        Context::ArgRegs,
        Context::Args,
        Context::Regs,
        Context::Signal,
    ],
    absent: Some(absent_entry),
    resolve: resolve_entry,
    check,
    expand: None,
    list: Some(list::list_entry),
    in_process: Some(list::in_process),
    debug_info: Some(debug_info),
    exists: None,
    early: None,
    cookies: true,
    multi: None,
    attach: attach_entry,
};

pub static URETPROBE: Provider = Provider {
    space: Space::User,
    name: "uretprobe",
    aliases: &["ur"],
    usage: "uretprobe:PATH:FUNCTION",
    parts: (2, 2),
    malformed: "missing binary or function in attach point",
    timing: Timing::Attached,
    prog_type: ProgramType::Kprobe,
    prog_prefix: "ur",
    context: &[Context::Retval, Context::Regs, Context::Signal],
    absent: Some(absent_return),
    resolve: resolve_return,
    check,
    expand: None,
    list: Some(list::list_return),
    in_process: Some(list::in_process),
    debug_info: None,
    exists: None,
    early: None,
    cookies: true,
    multi: None,
    attach: attach_return,
};

/// Where a uprobe goes: a file and an offset in it.
#[derive(Debug)]
struct Location {
    path: PathBuf,
    offset: u64,
}

/// What the function part of the target names.
enum Function<'a> {
    Symbol(&'a str, u64),
    Address(u64),
}

fn function(text: &str, retprobe: bool) -> Result<Function<'_>, String> {
    let Some((name, offset)) = super::offset::split(text)? else {
        return Ok(match integer(text) {
            Some(addr) => Function::Address(addr),
            None => Function::Symbol(text, 0),
        });
    };
    if retprobe {
        return Err(format!(
            "uretprobes cannot be attached at a function offset ('{text}'): they attach at the function's start"
        ));
    }
    Ok(Function::Symbol(name, offset))
}

/// Why a target file is not usable.
enum Unusable {
    Missing,
    NotElf,
}

/// Whether `path` is an ELF executable or shared object (what bpftrace accepts).
fn usable(path: &Path) -> Result<(), Unusable> {
    let mut head = [0u8; 18];
    let n = fs::File::open(path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .map_err(|_| Unusable::Missing)?;
    if !path.is_file() {
        return Err(Unusable::Missing);
    }
    if n < head.len() || !elf::has_magic(&head) {
        return Err(Unusable::NotElf);
    }
    match u16::from_le_bytes([head[16], head[17]]) {
        2 | 3 => Ok(()),
        _ => Err(Unusable::NotElf),
    }
}

/// The file a target names, as bpftrace's `resolve_binary_path` finds it: `libNAME`
/// through the loader cache, then the target itself and, without a `/`, each `PATH`
/// directory; the first ELF executable or shared object wins.
fn binary(target: &str) -> Result<PathBuf, Unusable> {
    let mut candidates = Vec::new();
    if let Some(name) = target.strip_prefix("lib").filter(|_| !target.contains('/')) {
        candidates.extend(ldcache::which_so(name));
    }
    candidates.push(PathBuf::from(target));
    if !target.contains('/') {
        if let Some(dirs) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&dirs).map(|d| d.join(target)));
        }
    }
    let mut why = Unusable::Missing;
    for path in candidates {
        match usable(&path) {
            Ok(()) => return Ok(path),
            Err(Unusable::NotElf) => why = Unusable::NotElf,
            Err(Unusable::Missing) => {}
        }
    }
    Err(why)
}

/// How `locate` ends the message for a symbol the binary lacks.
const NO_SYMBOL: &str = ": attach point skipped, as bpftrace skips it";

/// Finds the file and offset `point` names; the message is the script's error.
fn locate(point: &AttachPoint, retprobe: bool) -> Result<Location, String> {
    let kind = point.provider.name;
    let [target, func] = point.target.as_slice() else {
        return Err(format!("expected '{kind}:<binary>:<function>'"));
    };
    let func = function(func, retprobe)?;
    let path = binary(target).map_err(|why| match why {
        Unusable::Missing if target.contains('/') => {
            format!("{kind} target file '{target}' does not exist")
        }
        Unusable::Missing if target.starts_with("lib") => format!(
            "{kind} target file '{target}' does not exist (nor is it a library in {} or a file in PATH)",
            ldcache::LD_SO_CACHE
        ),
        Unusable::Missing => {
            format!("{kind} target file '{target}' does not exist (nor in PATH)")
        }
        Unusable::NotElf => {
            format!("{kind} target file '{target}' is not an ELF executable or shared object")
        }
    })?;
    let shown = path.display();
    let elf = elf::load(&path).map_err(|e| match e {
        elf::LoadError::Read(e) => format!("cannot read '{shown}': {e}"),
        elf::LoadError::Elf(e) => format!("'{shown}': {e}"),
    })?;
    if let ObjectKind::Other(t) = elf.kind {
        return Err(format!(
            "'{shown}' is ELF type {t}, not an executable or shared object"
        ));
    }
    let (symbol, func_offset) = match func {
        Function::Symbol(name, offset) => {
            let symbol = elf
                .symbol(name)
                .ok_or_else(|| format!("'{shown}' has no symbol '{name}'{NO_SYMBOL}"))?;
            (symbol, offset)
        }
        Function::Address(addr) => {
            let symbol = elf
                .symbol_at(addr)
                .ok_or_else(|| format!("Could not resolve address: {shown}:{addr:#x}"))?;
            if retprobe && addr != symbol.value {
                return Err(format!(
                    "uretprobes cannot be attached at a function offset (address {addr:#x} is {}+{})",
                    symbol.name,
                    addr - symbol.value
                ));
            }
            (symbol, addr - symbol.value)
        }
    };
    if func_offset >= symbol.size {
        return Err(format!(
            "Offset outside the function bounds ('{}' size is {})",
            symbol.name, symbol.size
        ));
    }
    if func_offset != 0 {
        return Err(format!(
            "cannot check that {shown}:{}+{func_offset} is on an instruction boundary (no disassembler, as in this host's bpftrace): probe the function's start",
            symbol.name
        ));
    }
    let offset = elf
        .file_offset(symbol.value)
        .ok_or_else(|| format!("'{}' in '{shown}' is not in a loaded segment", symbol.name))?;
    Ok(Location { path, offset })
}

/// bpftrace 0.17 looks a symbol the binary lacks up as C++ overloads (`name(...)`), and
/// runs without the attach point when none matches; rbt has no demangler, so it drops
/// the attach point whenever the symbol is missing.
fn absent(point: &AttachPoint, retprobe: bool) -> Option<String> {
    match locate(point, retprobe) {
        Err(why) if why.ends_with(NO_SYMBOL) => Some(why),
        _ => None,
    }
}

fn absent_entry(point: &AttachPoint) -> Option<String> {
    absent(point, false)
}

fn absent_return(point: &AttachPoint) -> Option<String> {
    absent(point, true)
}

fn resolve_entry(_: &Lazy, point: &AttachPoint) -> Result<Resolved, Unresolved> {
    locate(point, false)?;
    Ok(Resolved {
        args: None,
        args_space: Space::User,
    })
}

fn resolve_return(_: &Lazy, point: &AttachPoint) -> Result<Resolved, Unresolved> {
    locate(point, true)?;
    Ok(Resolved {
        args: None,
        args_space: Space::User,
    })
}

/// The binary and function whose DWARF gives `args` (bpftrace 0.17 reads the target's
/// debug info for the function named, before any offset).
fn debug_info(point: &AttachPoint) -> Option<(PathBuf, String)> {
    let [target, func] = point.target.as_slice() else {
        return None;
    };
    let name = func.split('+').next().unwrap_or_default();
    if name.is_empty() || integer(name).is_some() || super::wildcard::has_wildcard(target) {
        return None;
    }
    Some((binary(target).ok()?, name.to_string()))
}

fn no_pmu(probe: String) -> RuntimeError {
    RuntimeError::Attach {
        probe,
        source: io::Error::other(format!(
            "the kernel has no uprobe PMU ({}/type: CONFIG_UPROBE_EVENTS, Linux 4.17+)",
            paths::UPROBE_PMU
        )),
    }
}

fn check(_: &mut Attacher, point: &AttachPoint) -> Result<(), RuntimeError> {
    if !Path::new(paths::UPROBE_PMU).join("type").exists() {
        return Err(no_pmu(point.name()));
    }
    Ok(())
}

fn attach_entry(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    attach_uprobe(attacher, point, false, prog)
}

fn attach_return(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    attach_uprobe(attacher, point, true, prog)
}

fn attach_uprobe(
    attacher: &Attacher,
    point: &AttachPoint,
    retprobe: bool,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let probe = point.name();
    let fail = |probe: &str, message: String| RuntimeError::Attach {
        probe: probe.to_string(),
        source: io::Error::other(message),
    };
    let location = locate(point, retprobe).map_err(|m| fail(&probe, m))?;
    let pmu = Path::new(paths::UPROBE_PMU);
    let pmu_type = read_number(&pmu.join("type")).ok_or_else(|| no_pmu(probe.clone()))?;
    let config = if retprobe {
        let bit = retprobe_bit(pmu).ok_or_else(|| {
            fail(
                &probe,
                "the uprobe PMU does not describe its retprobe bit".into(),
            )
        })?;
        1u64 << bit
    } else {
        0
    };
    let path = CString::new(location.path.as_os_str().as_bytes())
        .map_err(|_| fail(&probe, "the target path holds a NUL byte".into()))?;
    let perf = sys::perf_event_open_uprobe(pmu_type as u32, config, &path, location.offset, -1)
        .map_err(|source| RuntimeError::Attach {
            probe: probe.clone(),
            source,
        })?;
    let perf = attacher
        .attach_perf(perf, prog)
        .map_err(|source| RuntimeError::Attach { probe, source })?;
    Ok(Attachment::perf(perf))
}

/// The `config` bit that makes a uprobe PMU event a return probe (`format/retprobe`
/// holds e.g. `config:0`).
fn retprobe_bit(pmu: &Path) -> Option<u32> {
    let text = fs::read_to_string(pmu.join("format/retprobe")).ok()?;
    text.trim().strip_prefix("config:")?.parse().ok()
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_offsets() {
        assert!(matches!(
            function("f+0x4", false),
            Ok(Function::Symbol("f", 4))
        ));
        assert!(matches!(function("0x10", false), Ok(Function::Address(16))));
        assert!(function("f+1", true).is_err());
        assert!(function("f+1+2", false).is_err());
        assert!(function("f+x", false).is_err());
        assert!(function("+1", false).is_err());
    }
}
