//! Map functions: `delete(@map[key])` in the kernel; `print(@map [, top [, div]])`,
//! `clear(@map)` and `zero(@map)` as records that user space acts on when they arrive
//! (bpftrace's async actions), so they take effect in order with the printed output.
//! `print(value)` of anything else sends the value in its record.

use super::printf::STACK_RECORD_MAX;
use super::{Builtin, Checked, Form, Site};
use crate::ast::{self, ExprKind};
use crate::codegen::builder::*;
use crate::codegen::{map_index, value_layout, Dest, Gen};
use crate::event::{EventKind, MapOp, ValueLayout, EVENT_ID_SIZE};
use crate::sema::{statement, Call, Checker, Payload, TExpr, Type};

pub static DELETE: Builtin = Builtin {
    name: "delete",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| {
        let [arg] = site.args else {
            ck.error(site.span, "delete() expects one argument: a map element");
            return None;
        };
        let (map, key) = ck.map_element(arg)?;
        statement(&DELETE, key, Payload::Map(map))
    },
    lower: |g, call, dest| match (dest, &call.payload) {
        (Dest::Effect, Payload::Map(map)) => g.map_delete(*map, &call.args, call.span),
        _ => g.misplaced(call, dest),
    },
    pure: false,
};

pub static CLEAR: Builtin = Builtin {
    name: "clear",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| whole_map_op(ck, site, &CLEAR, MapOp::Clear),
    lower: lower_map_op,
    pure: false,
};

pub static ZERO: Builtin = Builtin {
    name: "zero",
    form: Form::Statement,
    numbered: false,
    check: |ck, site| whole_map_op(ck, site, &ZERO, MapOp::Zero),
    lower: lower_map_op,
    pure: false,
};

pub static PRINT: Builtin = Builtin {
    name: "print",
    form: Form::Statement,
    numbered: false,
    check: check_print,
    lower: lower_print,
    pure: false,
};

fn whole_map_op(
    ck: &mut Checker<'_, '_>,
    site: &Site<'_>,
    builtin: &'static Builtin,
    op: MapOp,
) -> Option<Checked> {
    let [arg] = site.args else {
        ck.error(
            site.span,
            format!("{}() expects one argument: a map", site.name),
        );
        return None;
    };
    if let ExprKind::Map { keys, .. } = &arg.kind {
        if !keys.is_empty() {
            ck.error(
                site.span,
                format!(
                    "The map passed to {}() should not be indexed by a key",
                    site.name
                ),
            );
            return None;
        }
    }
    let map = ck.whole_map(arg, site.name)?;
    statement(builtin, Vec::new(), Payload::MapOp(map, op))
}

/// `print(@map)`, `print(@map, top)`, `print(@map, top, div)` with integer literals.
fn check_print(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let Some((arg, rest)) = site.args.split_first() else {
        ck.error(site.span, "print() expects a map to be provided");
        return None;
    };
    match &arg.kind {
        ExprKind::Map { keys, .. } if !keys.is_empty() => {
            let msg = "The map passed to print() should not be indexed by a key";
            ck.error(site.span, msg);
            return None;
        }
        ExprKind::Map { .. } => {}
        _ => return check_print_value(ck, site, arg),
    }
    let map = ck.whole_map(arg, "print")?;
    let mut numbers = [0u64; 2];
    if rest.len() > 2 {
        ck.error(
            site.span,
            format!(
                "print() takes up to 3 arguments ({} provided)",
                site.args.len()
            ),
        );
        return None;
    }
    for (slot, e) in numbers.iter_mut().zip(rest) {
        match ck.integer_literal(e)? {
            Some(v) if v >= 0 => *slot = v as u64,
            _ => {
                ck.error(
                    site.span,
                    "print() expects a integer literal (integer provided)",
                );
                return None;
            }
        }
    }
    let [top, div] = numbers;
    statement(
        &PRINT,
        Vec::new(),
        Payload::MapOp(map, MapOp::Print { top, div }),
    )
}

/// `print(value)`: an integer, string or tuple, printed when its record arrives.
fn check_print_value(
    ck: &mut Checker<'_, '_>,
    site: &Site<'_>,
    arg: &ast::Expr,
) -> Option<Checked> {
    if site.args.len() > 1 {
        let n = site.args.len();
        let msg = format!("Non-map print() only takes 1 argument, {n} found");
        ck.error(site.span, msg);
        return None;
    }
    let value = ck.value_expr(arg)?;
    // As bpftrace 0.17: pointers are not printable (inside a tuple they print as ints).
    let printable = matches!(
        value.ty,
        Type::Int { .. }
            | Type::Str { .. }
            | Type::Tuple(_)
            | Type::Inet
            | Type::Username
            | Type::Strerror
            | Type::Record(_)
            | Type::MacAddr
            | Type::Timestamp { .. }
            | Type::CgroupPath { .. }
    );
    if !printable {
        // bpftrace names a context pointer's type `(ctx) T *`.
        let ctx = if crate::sema::is_ctx_pointer(&value) {
            "(ctx) "
        } else {
            ""
        };
        let msg = format!(
            "{ctx}{} type passed to print() is not printable",
            value.ty.describe()
        );
        ck.error(arg.span, msg);
        return None;
    }
    statement(&PRINT, vec![value], Payload::None)
}

fn lower_print(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    match (&call.payload, &call.args[..]) {
        (Payload::None, [value]) if dest == Dest::Effect => lower_print_value(g, value),
        _ => lower_map_op(g, call, dest),
    }
}

/// The value's record: the event id, then the value (a scalar widened to 8 bytes).
fn lower_print_value(g: &mut Gen<'_>, value: &TExpr) {
    let layout = match value_layout(&value.ty) {
        _ if value.ty.is_scalar() => ValueLayout::Int {
            size: 8,
            signed: value.ty.is_signed(),
        },
        Some(layout) => layout,
        None => return g.misplaced_value(value, "a printed value"),
    };
    let cap = layout.size().next_multiple_of(8) as u32;
    let size = EVENT_ID_SIZE as u32 + cap;
    let id = g.event(EventKind::PrintValue { value: layout });
    // A record too big for the stack is built in per-CPU scratch space.
    let rec = if size > STACK_RECORD_MAX {
        g.scratch(size)
    } else {
        Loc::stack(g.b.alloc(size).off)
    };
    g.b.st_imm(Size::DW, rec.base, rec.off, id as i32);
    let at = rec.at(EVENT_ID_SIZE as u32);
    if value.ty.is_scalar() {
        let mark = g.b.mark();
        g.scalar(value);
        g.b.release(mark);
        g.b.stx(Size::DW, at.base, at.off, R0);
    } else {
        g.write_value(value, at, cap);
    }
    g.output_at(rec, size);
}

fn lower_map_op(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Effect, Payload::MapOp(map, op)) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    let id = g.event(EventKind::MapOp {
        map: map_index::user(map.0) as usize,
        op: *op,
    });
    g.emit_bare_event(id);
}
