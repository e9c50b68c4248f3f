//! Tracepoint records described by tracefs `format` files, for events whose record type
//! is not in BTF under its own name: events defined from a shared class
//! (`DEFINE_EVENT`, e.g. `sched:sched_wakeup`) and the syscall tracepoints. This is where
//! bpftrace itself takes tracepoint arguments from.

use super::kernel;
use super::typed::Type;
use crate::btf::{Btf, TypeId};

use crate::abi::paths::TRACEFS_DIRS;

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    /// Byte offset in the record (the program's context).
    pub offset: u32,
    /// The value type, or why the field cannot be read yet.
    pub ty: Result<Type, String>,
    /// A `__data_loc` field: a u32 whose low half is the offset of the data from the
    /// record's start; the field's value is that address (bpftrace 0.17: an int64).
    pub data_loc: bool,
}

/// Why a tracepoint's format could not be read.
pub enum Unreadable {
    /// tracefs is readable and has no such event.
    Missing,
    /// tracefs is unreadable or absent: what to do about it.
    Why(String),
}

/// The format file of `category:event` (parse its fields with [`parse_format`]).
pub fn read_format(category: &str, event: &str) -> Result<String, Unreadable> {
    let mut mounted = false;
    let mut denied = false;
    for root in TRACEFS_DIRS {
        let events = format!("{root}/events");
        match std::fs::metadata(&events) {
            Ok(m) if m.is_dir() => mounted = true,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                denied = true;
                continue;
            }
            _ => continue,
        }
        match std::fs::read_to_string(format!("{events}/{category}/{event}/format")) {
            Ok(text) => return Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => denied = true,
            // Not a missing event: no descriptor was left to open it with.
            Err(e) if crate::sys::out_of_fds(&e) => {
                let why = crate::sys::describe_io(&e);
                return Err(Unreadable::Why(format!(
                    "its format file cannot be read: {why}"
                )));
            }
            Err(_) => {}
        }
    }
    Err(if denied {
        // /sys/kernel/tracing is mode 0700: an unprivileged user cannot even see it.
        Unreadable::Why("its record is not in BTF and tracefs (/sys/kernel/tracing) cannot be read: permission denied (run as root)".into())
    } else if mounted {
        Unreadable::Missing
    } else {
        Unreadable::Why("its record is not in BTF and tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)".into())
    })
}

/// Parse `field:<decl>;\toffset:N;\tsize:N;\tsigned:N;` lines.
pub fn parse_format(btf: &Btf, text: &str) -> Vec<Field> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("field:") else {
            continue;
        };
        let parts: Vec<&str> = rest.split(';').map(str::trim).collect();
        let number = |key: &str| {
            parts
                .iter()
                .find_map(|p| p.strip_prefix(key))
                .and_then(|v| v.parse::<u32>().ok())
        };
        let (Some(offset), Some(size)) = (number("offset:"), number("size:")) else {
            continue;
        };
        let signed = number("signed:") == Some(1);
        let decl = parts[0];
        let Some((ty_text, name)) = split_decl(decl) else {
            continue;
        };
        if name.starts_with("common_") {
            continue;
        }
        let data_loc = ty_text.starts_with("__data_loc");
        let ty = match data_loc {
            true => Ok(Type::I64),
            false => field_type(btf, ty_text, name, size, signed),
        };
        let name = name.split('[').next().unwrap_or(name).to_string();
        fields.push(Field {
            name,
            offset,
            ty,
            data_loc,
        });
    }
    fields
}

/// `const char * filename` -> (`const char *`, `filename`); `char comm[16]` -> (`char`, `comm[16]`).
fn split_decl(decl: &str) -> Option<(&str, &str)> {
    let at = decl.rfind([' ', '*'])?;
    Some((decl[..=at].trim(), decl[at + 1..].trim()))
}

fn field_type(
    btf: &Btf,
    ty_text: &str,
    name: &str,
    size: u32,
    signed: bool,
) -> Result<Type, String> {
    let base = ty_text.replace("const ", "").replace("volatile ", "");
    let depth = base.matches('*').count() as u8;
    let base = base.trim_end_matches(['*', ' ']).trim();
    if depth > 0 {
        let target = btf.find_type(base).unwrap_or(TypeId::VOID);
        return Ok(kernel::pointer_to(btf, target, depth));
    }
    if name.contains('[') {
        if base == "char" {
            return Ok(Type::Str {
                size: size as usize,
            });
        }
        // `u8 saddr[4]`: an array as BTF has one (bpftrace indexes it, ntop() reads it).
        let array = btf.find_type(base).and_then(|elem| {
            let elem_size = btf.size_of(elem).filter(|&s| s > 0)?;
            btf.find_array(elem, size / elem_size)
        });
        return match array.map(|id| kernel::value_type(btf, id)) {
            Some(Ok(ty)) => Ok(ty),
            _ => Err(format!(
                "array field '{name}' of '{base}' is not supported yet"
            )),
        };
    }
    // Syscall records widen every argument to an 8-byte unsigned slot; like bpftrace, read
    // the declared C type (`int dfd` is a signed 4-byte int at the slot's start).
    let declared = btf
        .find_type(base)
        .and_then(|id| kernel::value_type(btf, id).ok());
    match (declared, size) {
        (
            Some(Type::Int {
                size: width,
                signed,
            }),
            _,
        ) if width as u32 <= size => Ok(Type::Int {
            size: width,
            signed,
        }),
        (_, 1 | 2 | 4 | 8) => Ok(Type::Int {
            size: size as u8,
            signed,
        }),
        _ => Err(format!("{size}-byte field '{name}' is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sys_enter_openat` and `block_rq_issue` as the 6.18 host's tracefs shows them.
    const OPENAT: &str = "name: sys_enter_openat\nID: 782\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n";
    const RQ_ISSUE: &str = "format:\n\tfield:char rwbs[10];\toffset:34;\tsize:10;\tsigned:0;\n\tfield:__data_loc char[] cmd;\toffset:60;\tsize:4;\tsigned:0;\n\tfield:u8 raw[4];\toffset:64;\tsize:4;\tsigned:0;\n";

    fn btf() -> Btf {
        Btf::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vmlinux-6.18.btf"),
        )
        .unwrap()
    }

    #[test]
    fn syscall_fields_have_their_declared_types() {
        let fields = parse_format(&btf(), OPENAT);
        let got: Vec<(&str, u32, String)> = fields
            .iter()
            .map(|f| (f.name.as_str(), f.offset, f.ty.as_ref().unwrap().describe()))
            .collect();
        assert_eq!(
            got,
            [
                ("__syscall_nr", 8, "int32".to_string()),
                ("dfd", 16, "int32".to_string()),
                ("filename", 24, "char *".to_string()),
                ("mode", 40, "uint16".to_string()),
            ]
        );
    }

    #[test]
    fn char_arrays_are_strings_other_arrays_and_data_locs_are_typed() {
        let fields = parse_format(&btf(), RQ_ISSUE);
        assert_eq!(fields[0].ty, Ok(Type::Str { size: 10 }));
        assert_eq!(fields[1].name, "cmd");
        assert_eq!((&fields[1].ty, fields[1].data_loc), (&Ok(Type::I64), true));
        assert_eq!(fields[2].name, "raw");
        assert!(
            matches!(fields[2].ty, Ok(Type::Mem { size: 4, .. })),
            "{:?}",
            fields[2].ty
        );
    }
}
