//! `tracepoint:CATEGORY:EVENT`: a static kernel tracepoint. `args` is its record, typed
//! from BTF's `struct trace_event_raw_<event>` or, without one, the tracefs format file;
//! attached as a `PERF_TYPE_TRACEPOINT` perf event on the tracefs event id.

use std::fs;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use super::{Context, Expand, NoMatch, Provider, Resolved, Timing, Unresolved};
use crate::abi::paths::TRACEFS_DIRS;
use crate::abi::perf_type;
use crate::ast::AttachPoint;
use crate::btf::Lazy;
use crate::codegen::ProgramType;
use crate::runtime::{Attacher, Attachment, RuntimeError};
use crate::sema::{tracefs, Args, Space};
use crate::sys;

pub static TRACEPOINT: Provider = Provider {
    list: None,
    in_process: None,
    debug_info: None,
    name: "tracepoint",
    aliases: &["t"],
    usage: "tracepoint:CATEGORY:EVENT",
    parts: (2, 2),
    malformed: "malformed attach point",
    timing: Timing::Attached,
    prog_type: ProgramType::Tracepoint,
    prog_prefix: "tp",
    context: &[Context::Args, Context::Signal],
    space: Space::Kernel,
    absent: None,
    resolve,
    check,
    attach,
    expand: Some(Expand {
        candidates: || super::tracefs_file("available_events"),
        strip_module: false,
        none_found: NoMatch::Error(|point| {
            format!("tracepoints not found: {}", point.target.join(":"))
        }),
        params: Some(format_params),
    }),
    exists: Some(exists),
    early: None,
    cookies: true,
    multi: None,
};

/// `-lv`: the `field:` declarations of the event's format file, after its header (as
/// bpftrace's `get_tracepoints_params`): `int __syscall_nr`, `const char * filename`.
fn format_params(target: &str) -> Vec<String> {
    let Some((category, event)) = target.split_once(':') else {
        return Vec::new();
    };
    let text = TRACEFS_DIRS.iter().find_map(|root| {
        fs::read_to_string(format!("{root}/events/{category}/{event}/format")).ok()
    });
    let Some(text) = text else {
        return Vec::new();
    };
    text.lines()
        .skip_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("\tfield:"))
        .map(|l| l.split(';').next().unwrap_or(l).to_string())
        .collect()
}

fn resolve(btf: &Lazy, point: &AttachPoint) -> Result<Resolved, Unresolved> {
    let (category, event) = category_event(point)?;
    let record = match btf.find_type(&format!("struct trace_event_raw_{event}")) {
        Some(id) => Args::Btf(id),
        None => {
            let text = format_text(category, event)?;
            Args::Format(tracefs::parse_format(btf, &text))
        }
    };
    // bpftrace 0.17: the syscalls category's pointer arguments point into user memory.
    let args_space = if category == "syscalls" {
        Space::User
    } else {
        Space::Kernel
    };
    Ok(Resolved {
        args: Some(record),
        args_space,
    })
}

/// The tracepoint exists: tracefs has its format file (without BTF, see
/// [`Provider::exists`]). Where tracefs cannot be read (not root, not mounted) that is
/// left to `resolve` if `args` is read, else to the runtime's privilege check and
/// preflight, as before.
fn exists(point: &AttachPoint) -> Result<(), Unresolved> {
    let (category, event) = category_event(point)?;
    match tracefs::read_format(category, event) {
        Err(missing @ tracefs::Unreadable::Missing) => Err(unreadable(category, event, missing)),
        _ => Ok(()),
    }
}

fn category_event(point: &AttachPoint) -> Result<(&str, &str), Unresolved> {
    match point.target.as_slice() {
        [category, event] => Ok((category, event)),
        _ => Err("expected 'tracepoint:<category>:<event>'".into()),
    }
}

/// The event's tracefs format file, or why it cannot be read.
fn format_text(category: &str, event: &str) -> Result<String, Unresolved> {
    tracefs::read_format(category, event).map_err(|why| unreadable(category, event, why))
}

fn unreadable(category: &str, event: &str, why: tracefs::Unreadable) -> Unresolved {
    match why {
        // bpftrace 0.17's words.
        tracefs::Unreadable::Missing => {
            Unresolved::bpftrace(format!("tracepoint not found: {category}:{event}"))
        }
        tracefs::Unreadable::Why(why) => {
            format!("tracepoint '{category}:{event}' not found: {why}").into()
        }
    }
}

/// `events/<category>/<name>` of the tracepoint in tracefs.
fn event_dir(attacher: &mut Attacher, point: &AttachPoint) -> Result<PathBuf, RuntimeError> {
    let probe = point.name();
    let [category, name] = point.target.as_slice() else {
        return Err(RuntimeError::TracepointNotFound { probe });
    };
    Ok(attacher
        .tracefs(&probe)?
        .join("events")
        .join(category)
        .join(name))
}

/// Preflight: reads the event's id (the event exists), kept for [`attach`].
fn check(attacher: &mut Attacher, point: &AttachPoint) -> Result<(), RuntimeError> {
    let id = read_id(attacher, point)?;
    attacher.tracepoint_ids.insert(point.name(), id);
    Ok(())
}

/// The tracefs id of the event: open, one read, close (361 matches of `sys_enter_*`
/// read theirs at startup).
fn read_id(attacher: &mut Attacher, point: &AttachPoint) -> Result<u64, RuntimeError> {
    use std::io::Read;
    let probe = point.name();
    let path = event_dir(attacher, point)?.join("id");
    let mut text = [0u8; 32];
    let read = fs::File::open(path).and_then(|mut file| file.read(&mut text));
    match read {
        Ok(n) => std::str::from_utf8(&text[..n])
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or(RuntimeError::TracepointNotFound { probe }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(RuntimeError::TracepointNotFound { probe })
        }
        Err(source) => Err(RuntimeError::Attach { probe, source }),
    }
}

fn attach(
    attacher: &mut Attacher,
    point: &AttachPoint,
    prog: BorrowedFd<'_>,
) -> Result<Attachment, RuntimeError> {
    let probe = point.name();
    let id = match attacher.tracepoint_ids.get(&probe) {
        Some(&id) => id,
        None => read_id(attacher, point)?,
    };
    let perf = sys::perf_event_open(perf_type::TRACEPOINT, id, None).map_err(|source| {
        RuntimeError::Attach {
            probe: probe.clone(),
            source,
        }
    })?;
    let perf = attacher
        .attach_perf(perf, prog)
        .map_err(|source| RuntimeError::Attach { probe, source })?;
    Ok(Attachment::perf(perf).runs_unpreempted())
}
