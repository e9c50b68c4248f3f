//! `probe`: the full name of the attach point that fired (`tracepoint:syscalls:sys_enter_read`).
//! As in bpftrace 0.17 it is a constant of each expanded attach point, so a probe that
//! uses it gets one program per attach point (bpftrace's `need_expansion`) — unless
//! sema plans one program for all of them (`sema::Plan::ByCookie`): then the program
//! reads the name from the probe-names map at the index its attach cookie gives.

use super::{Builtin, Checked, Form};
use crate::abi::insn::{helper, BPF_JEQ};
use crate::codegen::builder::{Loc, Size, R0, R1, R2, R_CTX, R_FP};
use crate::codegen::{Dest, Gen};
use crate::sema::{value, Call, Payload, ProbeName, TExpr, TExprKind, Type};

pub static PROBE: Builtin = Builtin {
    name: "probe",
    form: Form::Variable,
    numbered: false,
    check: |ck, site| match ck.probe_name() {
        ProbeName::Constant(name) => Some(Checked::Value(TExpr {
            ty: Type::Str {
                size: name.len() + 1,
            },
            kind: TExprKind::Str(name),
            span: site.span,
        })),
        // The widest name: map keys widen to the largest string anyway.
        ProbeName::Cookie { longest } => value(
            &PROBE,
            Vec::new(),
            Payload::None,
            Type::Str { size: longest + 1 },
            site.span,
        ),
    },
    lower: lower_by_cookie,
    pure: false,
};

/// `probe` by cookie: `names[bpf_get_attach_cookie(ctx)]`, copied into the string's
/// place (zeroed first; a missing entry, which attaching never makes, leaves "").
fn lower_by_cookie(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, cap }, Some((names, value_size))) = (dest, g.probe_names_map()) else {
        return g.misplaced(call, dest);
    };
    g.zero(at, cap);
    let mark = g.b.mark();
    let key = g.b.alloc(8);
    g.b.mov(R1, R_CTX);
    g.b.call(helper::GET_ATTACH_COOKIE);
    g.b.stx(Size::W, R_FP, key.off, R0);
    g.b.ld_map(R1, names);
    g.b.stack_addr(R2, key.off);
    g.b.call(helper::MAP_LOOKUP_ELEM);
    let missing = g.b.label();
    g.b.jmp_imm(BPF_JEQ, R0, 0, missing);
    g.copy_bytes(Loc { base: R0, off: 0 }, at, value_size.min(cap));
    g.b.bind(missing);
    g.b.release(mark);
}
