//! `strftime(format, nsecs)`: `nsecs` since boot (as `nsecs` gives) printed as local
//! wall-clock time in the strftime `format`, bpftrace 0.17's `%f` (microseconds)
//! included. The value is the nanoseconds followed by the format text, so it can be
//! printed wherever it goes (printf `%s`, map keys and values); user space formats it
//! (`output::timestamp`).

use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, Type};

pub static STRFTIME: Builtin = Builtin {
    name: "strftime",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.arg_range(site, 2, 2)?;
    let format = match &site.args[0].kind {
        ExprKind::Str(f) => f.clone(),
        _ => {
            let e = ck.expr(&site.args[0])?;
            ck.error(
                site.span,
                format!(
                    "strftime() expects a string literal ({} provided)",
                    super::join::kind_name(&e.ty)
                ),
            );
            return None;
        }
    };
    let nsecs = ck.expr(&site.args[1])?;
    if !matches!(nsecs.ty, Type::Int { .. }) {
        ck.error(
            site.span,
            format!(
                "strftime() only supports integer arguments ({} provided)",
                super::join::kind_name(&nsecs.ty)
            ),
        );
        return None;
    }
    let size = 8 + (format.len() + 1).next_multiple_of(8);
    value(
        &STRFTIME,
        vec![nsecs],
        Payload::Text(format),
        Type::Timestamp { size },
        site.span,
    )
}

/// The value's integer (nsecs here, a cgroup id for cgroup_path) in the first 8 bytes,
/// then the payload's text, NUL-padded to the slot.
pub(super) fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, cap }, Payload::Text(format)) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    let mut text = format.as_bytes().to_vec();
    text.resize((cap as usize).saturating_sub(8), 0);
    let mark = g.b.mark();
    g.scalar(&call.args[0]);
    g.b.stx(Size::DW, at.base, at.off, R0);
    g.b.release(mark);
    for (i, word) in text.chunks(4).enumerate() {
        let mut w = [0u8; 4];
        w[..word.len()].copy_from_slice(word);
        let to = at.at(8 + 4 * i as u32);
        g.b.st_imm(Size::W, to.base, to.off, i32::from_le_bytes(w));
    }
}
