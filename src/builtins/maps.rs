//! Map functions: `delete(@map[key])` in the kernel; `print(@map [, top [, div]])`,
//! `clear(@map)` and `zero(@map)` as records that user space acts on when they arrive
//! (bpftrace's async actions), so they take effect in order with the printed output.

use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::codegen::{map_index, Dest, Gen};
use crate::event::{EventKind, MapOp};
use crate::sema::{statement, Call, Checker, Payload};

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
        (Dest::Effect, Payload::Map(map)) => g.map_delete(*map, &call.args),
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
    lower: lower_map_op,
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
    if !matches!(arg.kind, ExprKind::Map { .. }) {
        ck.error(
            arg.span,
            "print() of a value that is not a map is not supported yet",
        );
        return None;
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
        match e.kind {
            ExprKind::Int(v) => *slot = v,
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
