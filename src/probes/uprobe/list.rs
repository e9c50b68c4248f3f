//! `rbt -l 'uprobe:PATH:FUNCTION'` (and `uretprobe`): the function symbols of the files
//! `PATH` names, matched against the pattern, as bpftrace 0.17 lists them
//! (`AttachPointParser::uprobe_parser`, the semantic analyser's `resolve_binary_path`,
//! `ProbeMatcher::get_func_symbols_from_file`). With `-p PID` a target-less
//! `uprobe:FUNCTION` is the process's executable, seen through `/proc/PID/root`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{integer, ldcache};
use crate::ast::AttachPoint;
use crate::dwarf;
use crate::elf::functions::functions;
use crate::probes::wildcard;
use crate::probes::{ListQuery, Listed};

/// Whether bcc would take `path` for a uprobe target (`bcc_elf_is_exe ||
/// bcc_elf_is_shared_obj`): a shared object, or an ELF file with an execute bit.
fn listable(path: &str) -> bool {
    let mut head = [0u8; 18];
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    let read = fs::File::open(path).and_then(|f| std::io::Read::read_exact(&mut &f, &mut head));
    if !meta.is_file() || read.is_err() || !crate::elf::has_magic(&head) {
        return false;
    }
    match u16::from_le_bytes([head[16], head[17]]) {
        0 => false,
        3 => true,
        _ => meta.permissions().mode() & 0o111 != 0,
    }
}

/// glob(3) with `GLOB_NOCHECK`, for `*` and `?`: the existing paths matching `pattern`
/// in byte order, or the pattern itself when none does. Names starting with `.` match
/// only a pattern component starting with `.`.
fn glob(pattern: &str) -> Vec<String> {
    let mut paths = vec![if pattern.starts_with('/') {
        "/".to_string()
    } else {
        String::new()
    }];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let join = |base: &str, name: &str| match base {
            "" => name.to_string(),
            "/" => format!("/{name}"),
            _ => format!("{base}/{name}"),
        };
        if !part.contains(['*', '?']) {
            paths = paths.iter().map(|b| join(b, part)).collect();
            continue;
        }
        let mut next = Vec::new();
        for base in &paths {
            let Ok(dir) = fs::read_dir(if base.is_empty() { "." } else { base }) else {
                continue;
            };
            let mut names: Vec<String> = dir
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| fnmatch(part.as_bytes(), n.as_bytes()))
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .collect();
            names.sort();
            next.extend(names.iter().map(|n| join(base, n)));
        }
        paths = next;
    }
    paths.retain(|p| fs::symlink_metadata(p).is_ok());
    if paths.is_empty() {
        vec![pattern.to_string()]
    } else {
        paths
    }
}

/// `*` (any run) and `?` (one byte), with backtracking, as fnmatch(3) matches them.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| fnmatch(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && fnmatch(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && fnmatch(rest, &name[1..]),
    }
}

/// The library `libNAME` that process `pid` has mapped (bcc's `bcc_procutils_which_so`
/// with a pid looks there before the loader cache): the first mapped file whose path
/// holds `/libNAME.` or `/libNAME-`.
pub(super) fn mapped_library(pid: u32, name: &str) -> Option<String> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let (dot, dash) = (format!("/lib{name}."), format!("/lib{name}-"));
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains(&dot) || path.contains(&dash))
        .map(str::to_string)
}

/// Whether process `pid` sees another mount namespace than rbt's.
fn other_mount_ns(pid: u32) -> bool {
    let ns = |p: String| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (
        ns("/proc/self/ns/mnt".into()),
        ns(format!("/proc/{pid}/ns/mnt")),
    ) {
        (Some(own), Some(theirs)) => own != theirs,
        _ => false,
    }
}

/// `path` as process `pid` sees it (bpftrace's `path_for_pid_mountns`).
fn in_pid_root(pid: u32, path: &str) -> String {
    let root = format!("/proc/{pid}/root");
    match (path.starts_with(&root), path.starts_with('/')) {
        (true, _) => path.to_string(),
        (false, true) => format!("{root}{path}"),
        (false, false) => format!("{root}/{path}"),
    }
}

/// The files `target` names (bpftrace's `resolve_binary_path`): itself and, without a
/// `/`, in each `PATH` directory (the process's `PATH` when it is in another mount
/// namespace), globbed when it has a `*`.
fn resolve(target: &str, pid: Option<u32>) -> Vec<String> {
    let foreign = pid.filter(|&p| other_mount_ns(p));
    let env_path = match foreign {
        Some(p) => fs::read(format!("/proc/{p}/environ"))
            .ok()
            .and_then(|env| {
                env.split(|&b| b == 0)
                    .find_map(|v| v.strip_prefix(b"PATH=").map(<[u8]>::to_vec))
            })
            .map(|v| String::from_utf8_lossy(&v).into_owned()),
        None => std::env::var("PATH").ok(),
    };
    let mut candidates = vec![target.to_string()];
    if let (Some(dirs), false) = (env_path, target.contains('/')) {
        candidates.extend(dirs.split(':').map(|d| format!("{d}/{target}")));
    }
    if target.contains('*') {
        candidates = candidates.iter().flat_map(|c| glob(c)).collect();
    }
    candidates
        .into_iter()
        .map(|c| match foreign {
            Some(p) => in_pid_root(p, &c),
            None => c,
        })
        .filter(|c| listable(c))
        .collect()
}

/// What the function part names: a symbol pattern, or (an address) nothing to expand.
fn function_part(func: &str, retprobe: bool, wild_target: bool) -> Result<&str, String> {
    if func.contains('+') {
        if retprobe {
            return Err("Offset not allowed".into());
        }
        if func.matches('+').count() != 1 {
            return Err("Cannot take more than one offset".into());
        }
        let (name, offset) = func.split_once('+').unwrap_or((func, ""));
        if name.is_empty() || integer(offset).is_none() {
            return Err("Invalid offset".into());
        }
        return Ok(name);
    }
    match integer(func) {
        Some(_) if wild_target => Err("Cannot use wildcards with absolute address".into()),
        Some(_) => Ok(""),
        None => Ok(func),
    }
}

/// The `TARGET:FUNCTION` matches of `rest` for a probe type called `kind`.
fn list(kind: &str, retprobe: bool, rest: &str, query: &ListQuery) -> Result<Listed, String> {
    // bpftrace names both types `uprobe` in its target-file messages.
    let mut parts: Vec<String> = rest.split(':').map(str::to_string).collect();
    if let (1, Some(pid)) = (parts.len(), query.pid) {
        let exe = fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        parts.insert(0, in_pid_root(pid, &exe));
    }
    let [target, func] = parts.as_slice() else {
        if query.ignore_invalid {
            return Ok(Listed {
                invalid: true,
                ..Listed::default()
            });
        }
        return Err(format!("{kind} probe type requires 2 arguments"));
    };
    let mut target = target.clone();
    let wild = wildcard::has_wildcard(&target);
    if let Some(name) = target.clone().strip_prefix("lib").filter(|_| !wild) {
        let mapped = query.pid.and_then(|pid| mapped_library(pid, name));
        let cached = || ldcache::which_so(name).map(|p| p.to_string_lossy().into_owned());
        if let Some(lib) = mapped.or_else(cached) {
            target = lib;
        }
    }
    let func = function_part(func, retprobe, target.contains('*'))?;
    let mut listed = Listed::default();
    let paths = resolve(&target, query.pid);
    match paths.as_slice() {
        [] => {
            return Err(format!(
                "uprobe target file '{target}' does not exist or is not executable"
            ))
        }
        [one] => target = one.clone(),
        [first, ..] if !target.contains('*') => {
            listed.spanned.push(format!(
                "attaching to uprobe target file '{first}' but matched {} binaries",
                paths.len()
            ));
            target = first.clone();
        }
        _ => {}
    }
    if func.is_empty() {
        listed.matches.insert(format!("{target}:"));
        return Ok(listed);
    }
    let files = if target.contains('*') {
        resolve(&target, None)
    } else {
        vec![target.clone()]
    };
    let mut candidates = String::new();
    // Where each file's DWARF is, if anywhere.
    let mut dwarf_of = std::collections::HashMap::new();
    for file in &files {
        let Some(found) = functions(Path::new(file)) else {
            listed
                .messages
                .push(format!("WARNING: Could not list function symbols: {file}"));
            continue;
        };
        for name in &found.names {
            candidates.push_str(&format!("{file}:{name}\n"));
        }
        let source = match found.has_dwarf {
            true => Some(Path::new(file).to_path_buf()),
            false => found.debug_file,
        };
        dwarf_of.insert(file.as_str(), source);
    }
    listed.matches = wildcard::matching_lines(&format!("{target}:{func}"), &candidates, false);
    // bpftrace 0.17 shows a uprobe's parameters from DWARF (`get_uprobe_params`).
    if query.verbose && !retprobe {
        let mut warned = std::collections::HashSet::new();
        for m in &listed.matches {
            let Some((file, function)) = m.split_once(':') else {
                continue;
            };
            let source = dwarf_of.get(file).cloned().flatten();
            let info = dwarf::load_from(Path::new(file), source.as_deref());
            match info {
                Some(info) => {
                    listed.params.insert(m.clone(), info.param_lines(function));
                }
                // Once per file (bpftrace's `warned_paths`).
                None if warned.insert(file) => listed.messages.push(format!(
                    "WARNING: No DWARF found for \"{file}\", cannot show parameter info"
                )),
                None => {}
            }
        }
    }
    Ok(listed)
}

/// A uprobe's file as process `pid` sees it (bpftrace resolves the target with the
/// pid): a `libNAME` the process has mapped; in another mount namespace, the first file
/// of that name under `/proc/PID/root` (its `PATH` for a bare name).
pub(super) fn in_process(point: &AttachPoint, pid: u32) -> Option<AttachPoint> {
    let [target, func] = point.target.as_slice() else {
        return None;
    };
    if wildcard::has_wildcard(target) {
        return None;
    }
    let file = match target.strip_prefix("lib").filter(|_| !target.contains('/')) {
        Some(name) => mapped_library(pid, name)?,
        None if other_mount_ns(pid) => resolve(target, Some(pid)).into_iter().next()?,
        None => return None,
    };
    Some(AttachPoint {
        target: vec![file, func.clone()],
        ..point.clone()
    })
}

pub(super) fn list_entry(rest: &str, query: &ListQuery) -> Result<Listed, String> {
    list("uprobe", false, rest, query)
}

pub(super) fn list_return(rest: &str, query: &ListQuery) -> Result<Listed, String> {
    list("uretprobe", true, rest, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_backtracks_and_globs_keep_unmatched_patterns() {
        assert!(fnmatch(b"a*b", b"abab"));
        assert!(fnmatch(b"lib?.so", b"libc.so"));
        assert!(!fnmatch(b"lib*.so", b"libc.so.6"));
        assert_eq!(glob("/nonexistent/*"), ["/nonexistent/*"]);
        assert_eq!(in_pid_root(7, "/bin/sh"), "/proc/7/root/bin/sh");
        assert_eq!(in_pid_root(7, "/proc/7/root/x"), "/proc/7/root/x");
    }

    #[test]
    fn function_parts_as_bpftrace_parses_them() {
        assert_eq!(function_part("main+4", false, false), Ok("main"));
        assert_eq!(function_part("0x10", false, false), Ok(""));
        assert!(function_part("0x10", false, true).is_err());
        assert!(function_part("main+1+2", false, false).is_err());
        assert!(function_part("main+1", true, false).is_err());
    }
}
