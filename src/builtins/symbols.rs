//! Addresses and symbols: `ksym(addr)` and `usym(addr)` (printed by user space as the
//! symbol's name: bpftrace 0.17 prints no offset), `func` (the probed function: the
//! instruction pointer, as a ksym in kprobes, a usym in uprobes), and the compile-time
//! lookups `kaddr("name")` (first `/proc/kallsyms` entry of that name) and
//! `uaddr("name")` (a variable, `STT_OBJECT`, of the uprobe's binary, as a pointer to
//! it; bpftrace looks up no other kind). A usym value is the address and then the pid (`pid_tgid >> 32`).

use super::{Builtin, Checked, Form, Site};
use crate::abi::arch::PT_REGS_IP;
use crate::abi::insn::{helper, BPF_RSH};
use crate::ast::{ExprKind, Span};
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::probes::Context;
use crate::sema::{
    in_space, pointer_to, value, Call, Checker, Payload, Space, TExpr, TExprKind, Type,
};
use crate::symbols::Kallsyms;

pub static KSYM: Builtin = Builtin {
    name: "ksym",
    form: Form::Function,
    numbered: false,
    check: |ck, site| check_sym(ck, site, &KSYM, Type::Ksym),
    lower: |g, call, dest| lower_sym(g, call, dest, false),
    pure: false,
};

pub static USYM: Builtin = Builtin {
    name: "usym",
    form: Form::Function,
    numbered: false,
    check: |ck, site| check_sym(ck, site, &USYM, Type::Usym),
    lower: |g, call, dest| lower_sym(g, call, dest, true),
    pure: false,
};

fn check_sym(
    ck: &mut Checker<'_, '_>,
    site: &Site<'_>,
    builtin: &'static Builtin,
    ty: Type,
) -> Option<Checked> {
    let arg = ck.one_arg(site)?;
    let arg = ck.expr(arg)?;
    if !arg.ty.is_scalar() {
        let msg = format!("{}() expects an integer or pointer argument", site.name);
        ck.error(site.span, msg);
        return None;
    }
    value(builtin, vec![arg], Payload::None, ty, site.span)
}

fn lower_sym(g: &mut Gen<'_>, call: &Call, dest: Dest, user: bool) {
    let (Dest::Mem { at, cap }, [addr]) = (dest, call.args.as_slice()) else {
        return g.misplaced(call, dest);
    };
    g.zero(at.at(8), cap.saturating_sub(8));
    g.scalar(addr);
    g.b.stx(Size::DW, at.base, at.off, R0);
    if user {
        store_pid(g, at);
    }
}

/// The current process id at `at + 8` (the second half of a usym).
fn store_pid(g: &mut Gen<'_>, at: Loc) {
    g.b.call(helper::GET_CURRENT_PID_TGID);
    g.b.alu_imm(BPF_RSH, R0, 32);
    g.b.stx(Size::DW, at.base, at.off + 8, R0);
}

/// `func`: kprobes and kretprobes give a ksym, uprobes and uretprobes a usym.
pub static FUNC: Builtin = Builtin {
    name: "func",
    form: Form::Variable,
    numbered: false,
    check: check_func,
    lower: lower_func,
    pure: false,
};

fn check_func(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let provider = ck.provider();
    let functions = provider.offers(Context::ArgRegs) || provider.offers(Context::Retval);
    let ty = match provider.space {
        Space::Kernel if functions => Type::Ksym,
        Space::User if functions => Type::Usym,
        _ => {
            let msg = format!(
                "The func builtin can not be used with '{}' probes",
                provider.name
            );
            ck.error(site.span, msg);
            return None;
        }
    };
    value(&FUNC, Vec::new(), Payload::None, ty, site.span)
}

fn lower_func(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let Dest::Mem { at, cap } = dest else {
        return g.misplaced(call, dest);
    };
    g.zero(at.at(8), cap.saturating_sub(8));
    g.b.ldx(Size::DW, R0, R_CTX, PT_REGS_IP);
    g.b.stx(Size::DW, at.base, at.off, R0);
    if cap >= 16 {
        store_pid(g, at);
    }
}

/// `kaddr("name")`: the kernel symbol's address, a constant.
pub static KADDR: Builtin = Builtin {
    name: "kaddr",
    form: Form::Function,
    numbered: false,
    check: |ck, site| {
        let name = literal(ck, site)?;
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        let Some(addr) = Kallsyms::address_of(&text, &name) else {
            ck.error(
                site.span,
                format!("Failed to resolve kernel symbol: {name}"),
            );
            return None;
        };
        constant(addr, site.span)
    },
    lower: |g, call, dest| g.misplaced(call, dest),
    pure: false,
};

/// `uaddr("name")`: the address of a variable of the uprobe's binary, a constant.
pub static UADDR: Builtin = Builtin {
    name: "uaddr",
    form: Form::Function,
    numbered: false,
    check: |ck, site| {
        let name = literal(ck, site)?;
        let provider = ck.provider();
        if provider.space != Space::User || !provider.offers(Context::ArgRegs) {
            let msg = format!("uaddr can not be used with \"{}\" probes", provider.name);
            ck.error(site.span, msg);
            return None;
        }
        // The binary differs per attach point: one program for each.
        let path = ck
            .per_attach_point()
            .target
            .first()
            .cloned()
            .unwrap_or_default();
        let sym = std::fs::read(&path)
            .ok()
            .and_then(|bytes| crate::elf::parse(&bytes).ok())
            .and_then(|elf| {
                elf.symbols()
                    .find(|s| s.object && s.name == name)
                    .map(|s| (s.value, s.size))
            });
        let Some((addr, size)) = sym else {
            ck.error(
                site.span,
                format!("Could not resolve symbol: {path}:{name}"),
            );
            return None;
        };
        // bpftrace types it a user pointer to a signed integer of the variable's size
        // (1, 2 or 4 bytes, else 8), so `*uaddr("x")` reads the variable.
        let pointee = match size {
            1 => "signed char",
            2 => "short",
            4 => "int",
            _ => "long long int",
        };
        let ty = match ck.btf().find_type(pointee) {
            Some(target) => in_space(pointer_to(ck.btf(), target, 1), Space::User),
            None => Type::U64,
        };
        Some(Checked::Value(TExpr {
            kind: TExprKind::Int(addr),
            ty,
            span: site.span,
        }))
    },
    lower: |g, call, dest| g.misplaced(call, dest),
    pure: false,
};

/// The one string-literal argument of `kaddr`/`uaddr`.
fn literal(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<String> {
    let arg = ck.one_arg(site)?;
    if let ExprKind::Str(name) = &arg.kind {
        return Some(name.clone());
    }
    let typed = ck.expr(arg)?;
    // `str($1)` is a literal too: bpftrace substitutes the parameter's text first.
    if let TExprKind::Str(name) = typed.kind {
        return Some(name);
    }
    let what = match typed.ty {
        Type::Int { .. } => "integer",
        _ => "other",
    };
    let msg = format!("{}() expects a string literal ({what} provided)", site.name);
    ck.error(arg.span, msg);
    None
}

fn constant(addr: u64, span: Span) -> Option<Checked> {
    Some(Checked::Value(TExpr {
        kind: TExprKind::Int(addr),
        ty: Type::U64,
        span,
    }))
}
