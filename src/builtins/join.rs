//! `join(char *arr[] [, delim])`: print the strings of a NULL-terminated array, as
//! bpftrace 0.17 does (codegen_llvm.cpp, bpftrace.cpp): it always reads
//! [`JOIN_ARGS`] elements of the array, each string up to [`JOIN_ARG_SIZE`] bytes
//! (a read that fails leaves an empty string), into one record; user space prints the
//! strings up to the first empty one, separated by `delim` (default `" "`), and a
//! newline (a JSON `"join"` message with `-f json`).

use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::codegen::builder::*;
use crate::codegen::{probe_read_helper, Dest, Gen};
use crate::event::{EventKind, EVENT_ID_SIZE};
use crate::sema::{statement, Call, Checker, Payload, Shape, Type};

/// bpftrace 0.17's `join_argnum_`: array elements read.
pub const JOIN_ARGS: usize = 16;
/// bpftrace 0.17's `join_argsize_`: bytes read of each string, NUL included.
pub const JOIN_ARG_SIZE: usize = 1024;
/// The record: the event id, then the strings.
const RECORD_SIZE: usize = EVENT_ID_SIZE + JOIN_ARGS * JOIN_ARG_SIZE;

pub static JOIN: Builtin = Builtin {
    name: "join",
    form: Form::Statement,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.arg_range(site, 1, 2)?;
    let arr = ck.expr(&site.args[0])?;
    if !arr.ty.is_scalar() {
        // bpftrace 0.17's wording: the function's name is missing.
        ck.error(
            site.span,
            format!(
                "() only supports int or pointer arguments ({} provided)",
                kind_name(&arr.ty)
            ),
        );
        return None;
    }
    let delim = match site.args.get(1) {
        None => " ".to_string(),
        Some(d) => match &d.kind {
            ExprKind::Str(text) => text.clone(),
            _ => {
                let d = ck.expr(d)?;
                ck.error(
                    site.span,
                    format!(
                        "join() expects a string literal ({} provided)",
                        kind_name(&d.ty)
                    ),
                );
                return None;
            }
        },
    };
    let space = ck.space_of(&arr);
    statement(&JOIN, vec![arr], Payload::Join { delim, space })
}

/// A type as bpftrace's `Type` enum names it in messages (`string`, `record`, ...).
pub fn kind_name(ty: &Type) -> &'static str {
    match ty {
        Type::Int { .. } => "integer",
        Type::Ptr { .. } => "pointer",
        Type::Str { .. } => "string",
        Type::Buf { .. } => "buffer",
        Type::Inet => "inet",
        Type::MacAddr => "mac_address",
        Type::Timestamp { .. } => "timestamp",
        Type::CgroupPath { .. } => "cgroup_path",
        Type::Username => "username",
        Type::Strerror => "strerror",
        Type::Agg(kind) => kind.name(),
        Type::Mem { name, .. } if name.ends_with(']') => "array",
        Type::Mem { .. } => "record",
        Type::Record(r) => match r.shape {
            Shape::Array { .. } => "array",
            Shape::Fields(_) => "record",
        },
        Type::Tuple(_) => "tuple",
        Type::Stack { user: false, .. } => "kstack",
        Type::Stack { user: true, .. } => "ustack",
        Type::Ksym => "ksym",
        Type::Usym => "usym",
        Type::Void => "none",
    }
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Effect, Payload::Join { delim, space }) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    let id = g.event(EventKind::Join {
        delim: delim.clone(),
    });
    let array = g.b.alloc(8);
    let elem = g.b.alloc(8);
    g.scalar(&call.args[0]);
    g.b.stx(Size::DW, R_FP, array.off, R0);
    let rec = g.scratch(RECORD_SIZE as u32);
    g.b.st_imm(Size::DW, rec.base, rec.off, id as i32);
    for i in 0..JOIN_ARGS {
        // elem = arr[i]; then the string it points at into slot i.
        g.b.stack_addr(R1, elem.off);
        g.b.mov_imm(R2, 8);
        g.b.ldx(Size::DW, R3, R_FP, array.off);
        g.b.alu_imm(crate::abi::insn::BPF_ADD, R3, (i * 8) as i32);
        g.b.call(probe_read_helper(*space, false));
        g.check_helper(probe_read_helper(*space, false), call.span);
        g.b.addr(R1, rec.at((EVENT_ID_SIZE + i * JOIN_ARG_SIZE) as u32));
        g.b.mov_imm(R2, JOIN_ARG_SIZE as i32);
        g.b.ldx(Size::DW, R3, R_FP, elem.off);
        g.b.call(probe_read_helper(*space, true));
        g.check_helper(probe_read_helper(*space, true), call.span);
    }
    g.output_at(rec, RECORD_SIZE as u32);
}
