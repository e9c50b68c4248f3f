//! `reg("name")`: a register the probe saved in its context (`struct pt_regs`; the
//! perf-event context of profile/interval/software probes starts with one too), named
//! as bpftrace 0.17 names x86-64's registers.

use super::{Builtin, Checked, Form, Site};
use crate::abi::arch::PT_REGS_NAMES;
use crate::ast::ExprKind;
use crate::codegen::builder::{Size, R_CTX};
use crate::codegen::Dest;
use crate::probes::Context;
use crate::sema::{value, Checker, Payload, Type};

pub static REG: Builtin = Builtin {
    name: "reg",
    form: Form::Function,
    numbered: false,
    check: check_reg,
    lower: |g, call, dest| match (dest, &call.payload) {
        (Dest::Reg(reg), Payload::Index(offset)) => g.b.ldx(Size::DW, reg, R_CTX, *offset as i16),
        _ => g.misplaced(call, dest),
    },
    pure: true,
};

fn check_reg(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.requires(Context::Regs, site)?;
    let [arg] = site.args else {
        ck.error(
            site.span,
            format!("reg() requires one argument ({} provided)", site.args.len()),
        );
        return None;
    };
    let ExprKind::Str(name) = &arg.kind else {
        ck.error(site.span, "reg() expects a string literal");
        return None;
    };
    let Some(index) = PT_REGS_NAMES.iter().position(|r| r == name) else {
        ck.error(
            site.span,
            format!("'{name}' is not a valid register on this architecture (x86_64)"),
        );
        return None;
    };
    value(
        &REG,
        Vec::new(),
        Payload::Index(index as u32 * 8),
        Type::U64,
        site.span,
    )
}
