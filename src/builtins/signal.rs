//! `signal(SIG | n)`: send a signal to the current task with `bpf_send_signal` (only
//! with `--unsafe`, and only in probe types that run in a task, as in bpftrace 0.17).
//! A name (`"KILL"`, `"SIGUSR1"`, any case) or a literal number 1..64 is checked at
//! compile time; any other integer is sent as it is.

use super::{Builtin, Checked, Form, Site};
use crate::abi::insn::helper;
use crate::abi::SIGNALS;
use crate::ast::ExprKind;
use crate::codegen::builder::*;
use crate::codegen::Dest;
use crate::probes::Context;
use crate::sema::{statement, Checker, Payload, TExprKind, Type};

pub static SIGNAL: Builtin = Builtin {
    name: "signal",
    form: Form::Statement,
    numbered: false,
    check,
    lower: |g, call, dest| {
        if dest != Dest::Effect {
            return g.misplaced(call, dest);
        }
        match (&call.payload, call.args.first()) {
            (&Payload::Count(sig), None) => g.b.mov_imm(R1, sig as i32),
            (Payload::None, Some(sig)) => {
                g.scalar(sig);
                g.b.mov(R1, R0);
                // The helper takes a u32.
                g.b.zext32(R1);
            }
            _ => return g.misplaced(call, dest),
        }
        g.b.call(helper::SEND_SIGNAL);
        g.check_helper(helper::SEND_SIGNAL, call.span);
    },
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.unsafe_allowed(site)?;
    if !ck.provider().offers(Context::Signal) {
        let name = ck.provider().name;
        ck.error(
            site.span,
            format!("signal can not be used with \"{name}\" probes"),
        );
        return None;
    }
    ck.arg_range(site, 1, 1)?;
    let arg = &site.args[0];
    if let ExprKind::Str(name) = &arg.kind {
        let Some(sig) = signal_number(name) else {
            ck.error(site.span, format!("{name} is not a valid signal"));
            return None;
        };
        return statement(&SIGNAL, Vec::new(), Payload::Count(sig.into()));
    }
    let sig = ck.expr(arg)?;
    match (&sig.ty, &sig.kind) {
        (Type::Int { .. }, TExprKind::Int(n)) if matches!(arg.kind, ExprKind::Int(_)) => {
            if !(1..=64).contains(n) {
                ck.error(
                    site.span,
                    format!("{} is not a valid signal, allowed range: [1,64]", *n as i64),
                );
                return None;
            }
            statement(&SIGNAL, Vec::new(), Payload::Count(*n))
        }
        (Type::Int { .. }, _) => statement(&SIGNAL, vec![sig], Payload::None),
        _ => {
            ck.error(site.span, "signal only accepts string literals or integers");
            None
        }
    }
}

/// bpftrace's `signal_name_to_num`: any case, `SIG` optional.
fn signal_number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with('S') {
        upper
    } else {
        format!("SIG{upper}")
    };
    SIGNALS.iter().find(|(n, _)| *n == full).map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::signal_number;

    #[test]
    fn names_as_bpftrace_reads_them() {
        assert_eq!(signal_number("KILL"), Some(9));
        assert_eq!(signal_number("sigusr1"), Some(10));
        assert_eq!(signal_number("Term"), Some(15));
        assert_eq!(signal_number("FOO"), None);
        assert_eq!(signal_number(""), None);
        // A leading S is taken for "SIG" already written, as in bpftrace.
        assert_eq!(signal_number("SEGV"), None);
    }
}
