//! `printf(format, args...)`: checked against the format as bpftrace 0.17 checks it
//! (argument count, integer vs string conversions); the arguments travel in one record
//! laid out by [`crate::event::ArgLayout`] and are formatted in user space.

use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::codegen::builder::*;
use crate::codegen::{value_layout, Dest, Gen};
use crate::event::{ArgLayout, EventKind, ValueLayout, EVENT_ID_SIZE};
use crate::format::{ArgClass, PrintfFormat};
use crate::sema::{statement, Call, Checker, Payload};

/// Records up to this size are built on the stack (leaving room for the operands'
/// temporaries); larger ones in scratch space.
const STACK_RECORD_MAX: u32 = 256;

pub static PRINTF: Builtin = Builtin {
    name: "printf",
    form: Form::Statement,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let Some((fmt, rest)) = site.args.split_first() else {
        ck.error(site.span, "printf() needs a format string");
        return None;
    };
    let ExprKind::Str(text) = &fmt.kind else {
        ck.error(fmt.span, "printf's first argument must be a string literal");
        return None;
    };
    let args: Vec<_> = rest.iter().map(|a| ck.expr(a)).collect();
    let format = match PrintfFormat::parse(text) {
        Ok(f) => f,
        Err(e) => {
            ck.error(fmt.span, format!("printf: {}", e.message));
            return None;
        }
    };
    let convs: Vec<_> = format.conversions().cloned().collect();
    if convs.len() != args.len() {
        let which = if args.len() > convs.len() {
            "Too many"
        } else {
            "Not enough"
        };
        ck.error(
            site.span,
            format!(
                "printf: {which} arguments for format string ({} supplied, {} expected)",
                args.len(),
                convs.len()
            ),
        );
        return None;
    }
    let args: Vec<_> = args.into_iter().collect::<Option<_>>()?;
    let mut ok = true;
    for (conv, arg) in convs.iter().zip(&args) {
        let fits = match conv.arg_class() {
            ArgClass::Integer => arg.ty.is_scalar(),
            ArgClass::String => !arg.ty.is_scalar() && value_layout(&arg.ty).is_some(),
        };
        if !fits {
            let expected = match conv.arg_class() {
                ArgClass::Integer => "integer",
                ArgClass::String => "string",
            };
            ck.error(
                arg.span,
                format!(
                    "printf: %{} specifier expects a value of type {expected} ({} supplied)",
                    conv.conv,
                    crate::sema::kind_name(ck.btf(), &arg.ty)
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    statement(&PRINTF, args, Payload::Format(format))
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Effect, Payload::Format(format)) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    let args = &call.args;
    let mut layout = Vec::new();
    let mut offset = EVENT_ID_SIZE;
    for arg in args {
        let Some(value) = value_layout(&arg.ty) else {
            return g.misplaced(call, dest);
        };
        let align = if matches!(value, ValueLayout::Int { .. }) {
            value.size()
        } else {
            8
        };
        offset = offset.next_multiple_of(align);
        layout.push(ArgLayout { offset, value });
        offset += value.size().next_multiple_of(align);
    }
    let size = offset.next_multiple_of(8) as u32;
    let id = g.event(EventKind::Printf {
        format: format.clone(),
        args: layout.clone(),
    });
    // A record too big for the stack is built in per-CPU scratch space.
    let rec = if size > STACK_RECORD_MAX {
        g.scratch(size)
    } else {
        Loc::stack(g.b.alloc(size).off)
    };
    // The whole record goes to the kernel, padding included: it must be initialized.
    g.b.st_imm(Size::DW, rec.base, rec.off, id as i32);
    // Strings and inet values fill their whole (8-aligned) space; zero the rest.
    let filled = |word: usize| {
        layout.iter().any(|a| {
            !matches!(a.value, ValueLayout::Int { .. })
                && (a.offset..a.offset + a.value.size().next_multiple_of(8)).contains(&word)
        })
    };
    for i in (EVENT_ID_SIZE..size as usize)
        .step_by(8)
        .filter(|&w| !filled(w))
    {
        g.zero(rec.at(i as u32), 8);
    }
    for (arg, at) in args.iter().zip(&layout) {
        let to = rec.at(at.offset as u32);
        if arg.ty.is_scalar() {
            let mark = g.b.mark();
            g.scalar(arg);
            g.b.release(mark);
            g.b.stx(Size::of(at.value.size() as u32), to.base, to.off, R0);
        } else {
            g.write_value(arg, to, at.value.size().next_multiple_of(8) as u32);
        }
    }
    g.output_at(rec, size);
}
