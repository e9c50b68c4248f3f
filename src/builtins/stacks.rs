//! `kstack`, `ustack` and their call forms `kstack(limit)`, `kstack(mode)`,
//! `kstack(mode, limit)` (mode `bpftrace` or `perf`): the stack of the probed kernel or
//! user context, as bpftrace 0.17 takes it — `bpf_get_stackid` into the stack map of
//! its [`StackType`] (`BPF_F_USER_STACK` for user stacks), the u64 value being the id
//! and, for `ustack`, the thread id in the upper 32 bits (bpftrace shifts the whole
//! pid_tgid, whose low half is the thread id) so user space can symbolise later.

use super::{Builtin, Checked, Form, Site};
use crate::abi::insn::{helper, BPF_LSH, BPF_OR};
use crate::ast::{Expr, ExprKind};
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, StackMode, StackType, TExprKind, Type};

/// `BPF_F_USER_STACK`.
const USER_STACK: i32 = 1 << 8;

pub static KSTACK: Builtin = stack_builtin("kstack", Form::Variable);
pub static KSTACK_CALL: Builtin = stack_builtin("kstack", Form::Function);
pub static USTACK: Builtin = stack_builtin("ustack", Form::Variable);
pub static USTACK_CALL: Builtin = stack_builtin("ustack", Form::Function);

const fn stack_builtin(name: &'static str, form: Form) -> Builtin {
    Builtin {
        name,
        form,
        numbered: false,
        check,
        lower,
        pure: false,
    }
}

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let user = site.name == "ustack";
    let builtin = match (user, site.args.is_empty()) {
        (false, true) => &KSTACK,
        (false, false) => &KSTACK_CALL,
        (true, true) => &USTACK,
        (true, false) => &USTACK_CALL,
    };
    let mut stack = StackType {
        limit: StackType::DEFAULT_LIMIT,
        mode: StackMode::Bpftrace,
    };
    match site.args {
        [] => {}
        [arg] => match mode_of(arg) {
            Some(mode) => stack.mode = mode,
            None => stack.limit = limit(ck, site, arg)?,
        },
        [mode, lim] => {
            let Some(m) = mode_of(mode) else {
                let what = provided(ck, mode)?;
                let msg = format!(
                    "{}() expects a stack mode literal ({what} provided)",
                    site.name
                );
                ck.error(mode.span, msg);
                return None;
            };
            stack.mode = m;
            stack.limit = limit(ck, site, lim)?;
        }
        more => {
            let msg = format!(
                "{}() takes up to 2 arguments ({} provided)",
                site.name,
                more.len()
            );
            ck.error(site.span, msg);
            return None;
        }
    }
    if stack.limit > StackType::MAX_LIMIT {
        let msg = format!(
            "{}([int limit]): limit shouldn't exceed {}, {} given",
            site.name,
            StackType::MAX_LIMIT,
            stack.limit
        );
        ck.error(site.span, msg);
        return None;
    }
    value(
        builtin,
        Vec::new(),
        Payload::Stack { user, stack },
        Type::Stack { user, stack },
        site.span,
    )
}

/// The stack mode an argument names (`perf`, `bpftrace`), if it is one.
fn mode_of(arg: &Expr) -> Option<StackMode> {
    match &arg.kind {
        ExprKind::Ident(name) | ExprKind::Builtin(name) => match name.as_str() {
            "bpftrace" => Some(StackMode::Bpftrace),
            "perf" => Some(StackMode::Perf),
            _ => None,
        },
        _ => None,
    }
}

/// The frame limit: an integer literal.
fn limit(ck: &mut Checker<'_, '_>, site: &Site<'_>, arg: &Expr) -> Option<u32> {
    if mode_of(arg).is_some() {
        let msg = format!(
            "{}() expects a integer literal (stack mode provided)",
            site.name
        );
        ck.error(arg.span, msg);
        return None;
    }
    if let Some(n) = ck.integer_literal(arg)? {
        return Some(u32::try_from(n).unwrap_or(u32::MAX));
    }
    let what = provided(ck, arg)?;
    let msg = format!(
        "{}() expects a integer literal ({what} provided)",
        site.name
    );
    ck.error(arg.span, msg);
    None
}

/// What a non-literal argument is, in bpftrace's words.
fn provided(ck: &mut Checker<'_, '_>, arg: &Expr) -> Option<&'static str> {
    if mode_of(arg).is_some() {
        return Some("stack mode");
    }
    let typed = ck.expr(arg)?;
    Some(match (&typed.kind, &typed.ty) {
        (_, Type::Str { .. }) => "string",
        (TExprKind::Int(_), _) | (_, Type::Int { .. }) => "integer",
        _ => "other",
    })
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, cap }, Payload::Stack { user, stack }) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    let (user, stack) = (*user, *stack);
    g.zero(at.at(8), cap.saturating_sub(8));
    let map = g.stack_map(stack);
    g.b.mov(R1, R_CTX);
    g.b.ld_map(R2, map);
    g.b.mov_imm(R3, if user { USER_STACK } else { 0 });
    g.b.call(helper::GET_STACKID);
    g.check_helper(helper::GET_STACKID, call.span);
    g.b.stx(Size::DW, at.base, at.off, R0);
    if user {
        g.b.call(helper::GET_CURRENT_PID_TGID);
        g.b.alu_imm(BPF_LSH, R0, 32);
        g.b.ldx(Size::DW, R1, at.base, at.off);
        g.b.alu(BPF_OR, R0, R1);
        g.b.stx(Size::DW, at.base, at.off, R0);
    }
}
