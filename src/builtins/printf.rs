//! `printf(format, args...)`: checked against the format as bpftrace 0.17 checks it
//! (argument count, integer vs string conversions); the arguments travel in one record
//! laid out by [`crate::event::ArgLayout`] and are formatted in user space.

use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::codegen::builder::*;
use crate::codegen::{value_layout, Dest, Gen};
use crate::event::{ArgLayout, EventKind, ValueLayout, EVENT_ID_SIZE};
use crate::format::{ArgClass, BufferStyle, PrintfFormat};
use crate::sema::{statement, Call, Checker, Payload, Type};

/// Records up to this size are built on the stack (leaving room for the operands'
/// temporaries); larger ones in scratch space.
pub(super) const STACK_RECORD_MAX: u32 = 256;

pub static PRINTF: Builtin = Builtin {
    name: "printf",
    form: Form::Statement,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    check_format(ck, site, &PRINTF)
}

/// The type rule of a statement taking a printf-style format and its arguments
/// (`printf`, `cat`, `system`), worded as bpftrace 0.17's (`NAME: Too many arguments`).
pub(super) fn check_format(
    ck: &mut Checker<'_, '_>,
    site: &Site<'_>,
    builtin: &'static Builtin,
) -> Option<Checked> {
    let name = site.name;
    let Some((fmt, rest)) = site.args.split_first() else {
        ck.error(
            site.span,
            format!("{name}() requires at least one argument (0 provided)"),
        );
        return None;
    };
    let ExprKind::Str(text) = &fmt.kind else {
        let fmt = ck.expr(fmt)?;
        ck.error(
            site.span,
            format!(
                "{name}() expects a string literal ({} provided)",
                super::join::kind_name(&fmt.ty)
            ),
        );
        return None;
    };
    let args: Vec<_> = rest.iter().map(|a| ck.expr(a)).collect();
    let format = match PrintfFormat::parse(text) {
        Ok(f) => f,
        Err(e) => {
            ck.error(fmt.span, format!("{name}: {}", e.message));
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
                "{name}: {which} arguments for format string ({} supplied, {} expected)",
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
            ArgClass::String => {
                !arg.ty.is_scalar()
                    && !matches!(arg.ty, Type::Tuple(_) | Type::Buf { .. } | Type::Record(_))
                    && value_layout(&arg.ty).is_some()
            }
            ArgClass::Buffer => matches!(arg.ty, Type::Buf { .. }),
        };
        if !fits {
            let expected = match conv.arg_class() {
                ArgClass::Integer => "integer",
                ArgClass::String => "string",
                ArgClass::Buffer => "buffer",
            };
            ck.error(
                arg.span,
                format!(
                    "{name}: %{}{} specifier expects a value of type {expected} ({} supplied)",
                    conv.conv,
                    buffer_suffix(conv),
                    crate::sema::kind_name(ck.btf(), &arg.ty)
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    statement(builtin, args, Payload::Format(format))
}

/// `x` of `%rx`, `h` of `%rh` (bpftrace names the conversion as written).
fn buffer_suffix(conv: &crate::format::ConvSpec) -> &'static str {
    match (conv.conv, conv.buffer) {
        ('r', BufferStyle::EscapedHex) => "x",
        ('r', BufferStyle::Hex) => "h",
        _ => "",
    }
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    lower_format(g, call, dest, |format, args| EventKind::Printf {
        format,
        args,
    });
}

/// Lowers a formatted statement: one record with the arguments laid out for the
/// format, of the kind `kind` makes.
pub(super) fn lower_format(
    g: &mut Gen<'_>,
    call: &Call,
    dest: Dest,
    kind: fn(PrintfFormat, Vec<ArgLayout>) -> EventKind,
) {
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
        let size = value.size();
        layout.push(ArgLayout { offset, value });
        offset += size.next_multiple_of(align);
    }
    let size = offset.next_multiple_of(8) as u32;
    let id = g.event(kind(format.clone(), layout.clone()));
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
