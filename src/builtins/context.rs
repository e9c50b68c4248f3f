//! Builtin variables read from helpers or the probe's context: `pid`, `tid`, `uid`,
//! `gid`, `nsecs`, `cpu`, `comm`, `retval`, `arg0`..`arg5`, `args`. Typed as bpftrace
//! 0.17 types them (integers as uint64, `comm` as string[16]).

use super::{Builtin, Checked, Form, Site};
use crate::abi::arch::{ARG_REGS, PT_REGS_ARGS, PT_REGS_RET};
use crate::abi::insn::helper;
use crate::btf::TypeId;
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::probes::Context;
use crate::sema::{
    pointer_to, value, Args, Base, Call, Checker, Payload, Place, TExpr, TExprKind, Type,
};

pub static PID: Builtin = Builtin {
    name: "pid",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&PID, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| {
        g.into_reg(call, dest, |g| {
            g.half_of(helper::GET_CURRENT_PID_TGID, true)
        })
    },
    pure: false,
};

pub static TID: Builtin = Builtin {
    name: "tid",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&TID, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| {
        g.into_reg(call, dest, |g| {
            g.half_of(helper::GET_CURRENT_PID_TGID, false)
        })
    },
    pure: false,
};

pub static UID: Builtin = Builtin {
    name: "uid",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&UID, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| {
        g.into_reg(call, dest, |g| {
            g.half_of(helper::GET_CURRENT_UID_GID, false)
        })
    },
    pure: false,
};

pub static GID: Builtin = Builtin {
    name: "gid",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&GID, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.half_of(helper::GET_CURRENT_UID_GID, true)),
    pure: false,
};

pub static NSECS: Builtin = Builtin {
    name: "nsecs",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&NSECS, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.b.call(helper::KTIME_GET_NS)),
    pure: false,
};

pub static CPU: Builtin = Builtin {
    name: "cpu",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&CPU, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.b.call(helper::GET_SMP_PROCESSOR_ID)),
    pure: false,
};

/// `numaid`: the NUMA node the probe runs on.
pub static NUMAID: Builtin = Builtin {
    name: "numaid",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&NUMAID, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.b.call(helper::GET_NUMA_NODE_ID)),
    pure: false,
};

/// `cgroup`: the current task's cgroup v2 id.
pub static CGROUP: Builtin = Builtin {
    name: "cgroup",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&CGROUP, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.b.call(helper::GET_CURRENT_CGROUP_ID)),
    pure: false,
};

/// `curtask`: the current `struct task_struct *`, a kernel pointer (bpftrace 0.17 types
/// it so when BTF has the struct).
pub static CURTASK: Builtin = Builtin {
    name: "curtask",
    form: Form::Variable,
    numbered: false,
    check: |ck, site| {
        let ty = match ck.btf().find_type("struct task_struct") {
            Some(task) => pointer_to(ck.btf(), task, 1),
            None => Type::U64,
        };
        value(&CURTASK, Vec::new(), Payload::None, ty, site.span)
    },
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.b.call(helper::GET_CURRENT_TASK)),
    pure: false,
};

/// `username`: the current uid, printed by user space as the user's name.
pub static USERNAME: Builtin = Builtin {
    name: "username",
    form: Form::Variable,
    numbered: false,
    check: |_, site| {
        value(
            &USERNAME,
            Vec::new(),
            Payload::None,
            Type::Username,
            site.span,
        )
    },
    lower: |g, call, dest| {
        let Dest::Mem { at, cap } = dest else {
            return g.misplaced(call, dest);
        };
        g.zero(at.at(8), cap.saturating_sub(8));
        g.half_of(helper::GET_CURRENT_UID_GID, false);
        g.b.stx(Size::DW, at.base, at.off, R0);
    },
    pure: false,
};

/// `comm`: the task's name, 16 bytes as the kernel keeps it.
pub static COMM: Builtin = Builtin {
    name: "comm",
    form: Form::Variable,
    numbered: false,
    check: |_, site| {
        value(
            &COMM,
            Vec::new(),
            Payload::None,
            Type::Str { size: 16 },
            site.span,
        )
    },
    lower: lower_comm,
    pure: false,
};

fn lower_comm(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let Dest::Mem { at, cap } = dest else {
        return g.misplaced(call, dest);
    };
    // Older kernels (6.1) copy the name without zero padding: zero it all first, as
    // bpftrace does, so equal names make equal map keys.
    g.zero(at, cap);
    g.b.addr(R1, at);
    g.b.mov_imm(R2, cap.min(16) as i32);
    g.b.call(helper::GET_CURRENT_COMM);
    g.check_helper(helper::GET_CURRENT_COMM, call.span);
}

/// `retval`: the return value register at a function's return.
pub static RETVAL: Builtin = Builtin {
    name: "retval",
    form: Form::Variable,
    numbered: false,
    check: |ck, site| {
        ck.requires(Context::Retval, site)?;
        value(&RETVAL, Vec::new(), Payload::None, Type::U64, site.span)
    },
    lower: |g, call, dest| context_register(g, call, dest, PT_REGS_RET),
    pure: true,
};

/// `arg0`..`arg5`: the argument registers at a function's entry.
pub static ARG: Builtin = Builtin {
    name: "arg",
    form: Form::Variable,
    numbered: true,
    check: check_arg,
    lower: |g, call, dest| match call.payload {
        Payload::Index(n) if (n as usize) < ARG_REGS => {
            context_register(g, call, dest, PT_REGS_ARGS[n as usize])
        }
        _ => g.misplaced(call, dest),
    },
    pure: true,
};

fn check_arg(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.requires(Context::ArgRegs, site)?;
    let n = site.index?;
    if n as usize >= ARG_REGS {
        ck.error(
            site.span,
            format!(
                "{}: only arg0..arg{} are passed in registers",
                site.name,
                ARG_REGS - 1
            ),
        );
        return None;
    }
    value(&ARG, Vec::new(), Payload::Index(n), Type::U64, site.span)
}

/// Loads a saved register of the probe's `struct pt_regs` context.
fn context_register(g: &mut Gen<'_>, call: &Call, dest: Dest, offset: i16) {
    match dest {
        Dest::Reg(reg) => g.b.ldx(Size::DW, reg, R_CTX, offset),
        _ => g.misplaced(call, dest),
    }
}

/// `args`: the tracepoint's record, left in the context; members are read from it. At
/// a uprobe, the function's parameters from debug info: `args->name` reads its
/// argument register (`sema::access`).
pub static ARGS: Builtin = Builtin {
    name: "args",
    form: Form::Variable,
    numbered: false,
    check: check_args,
    // `args` types to the context memory itself, never to a call.
    lower: |g, call, dest| g.misplaced(call, dest),
    pure: false,
};

fn check_args(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.requires(Context::Args, site)?;
    let in_ctx = |ty, name, size| {
        Some(Checked::Value(TExpr {
            kind: TExprKind::InMemory(Place {
                base: Base::Ctx,
                offset: 0,
            }),
            ty: Type::Mem { ty, name, size },
            span: site.span,
        }))
    };
    // What the record is, without keeping `ck` borrowed.
    let record = ck.args_record().map(|a| match a {
        Args::Btf(record) => Some(*record),
        Args::Format(_) | Args::Params(_) => None,
    });
    let params = matches!(ck.args_record(), Some(Args::Params(_)));
    let (ty, size) = match record {
        // Every attach point reads the same registers: one program serves them all,
        // when their functions' parameters agree (bpftrace 0.17 rejects them else).
        Some(None) if params => {
            if ck.mixed_args() {
                let at = ck.attach_points()[0].span;
                ck.error(at, "Probe has attach points with mixed arguments");
                return None;
            }
            return in_ctx(TypeId::VOID, "(ctx) struct uprobe_args *".into(), 0);
        }
        Some(Some(record)) => (record, ck.btf().size_of(record).unwrap_or(0)),
        // A format record: fields come from the format file (see `sema::access`).
        Some(None) => (TypeId::VOID, 0),
        // The attach point's error is reported already.
        None if ck.provider().debug_info.is_none() => {
            ck.per_attach_point();
            return None;
        }
        None => {
            let point = &ck.attach_points()[0];
            let (at, file) = (point.span, point.target.first().cloned());
            let message = format!("No debuginfo found for {}", file.unwrap_or_default());
            ck.error(at, message);
            return None;
        }
    };
    // Each tracepoint has its own record: one program per attach point, as bpftrace.
    ck.per_attach_point();
    let name = if ty == TypeId::VOID {
        "args".to_string()
    } else {
        ck.btf().name_of(ty)
    };
    in_ctx(ty, name, size)
}
