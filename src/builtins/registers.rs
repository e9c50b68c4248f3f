//! `reg("name")`: a register the probe saved in its context (`struct pt_regs`; the
//! perf-event context of profile/interval/software probes starts with one too), named
//! as bpftrace 0.17 names x86-64's registers. `sarg0`..`sarg9`: arguments passed on the
//! stack, read above the saved stack pointer.

use super::{Builtin, Checked, Form, Site};
use crate::abi::arch::PT_REGS_NAMES;
use crate::ast::ExprKind;
use crate::codegen::builder::{Size, R_CTX};
use crate::codegen::builder::{R1, R2, R3, R_FP};
use crate::codegen::probe_read_helper;
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
    let arg = ck.one_arg(site)?;
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

pub static SARG: Builtin = Builtin {
    name: "sarg",
    form: Form::Variable,
    numbered: true,
    check: check_sarg,
    lower: |g, call, dest| {
        let (Dest::Reg(reg), Payload::StackArg { index, space }) = (dest, &call.payload) else {
            return g.misplaced(call, dest);
        };
        let sp = PT_REGS_NAMES.iter().position(|r| *r == "sp").unwrap_or(0) as i16 * 8;
        let mark = g.b.mark();
        let slot = g.b.alloc(8);
        g.b.ldx(Size::DW, R3, R_CTX, sp);
        // Above the return address at the stack pointer.
        g.b.alu_imm(crate::abi::insn::BPF_ADD, R3, ((index + 1) * 8) as i32);
        g.b.stack_addr(R1, slot.off);
        g.b.mov_imm(R2, 8);
        g.b.call(probe_read_helper(*space, false));
        g.check_helper(probe_read_helper(*space, false), call.span);
        g.b.ldx(Size::DW, reg, R_FP, slot.off);
        g.b.release(mark);
    },
    pure: false,
};

fn check_sarg(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let index = site.index?;
    // bpftrace: entry probes only, one digit.
    if !ck.provider().offers(Context::ArgRegs) || index > 9 {
        ck.error(
            site.span,
            format!(
                "The {} builtin can only be used with 'kprobes' and 'uprobes' probes",
                site.name
            ),
        );
        return None;
    }
    let space = ck.provider().space;
    value(
        &SARG,
        Vec::new(),
        Payload::StackArg { index, space },
        Type::U64,
        site.span,
    )
}
