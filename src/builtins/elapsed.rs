//! `elapsed`: nanoseconds since tracing started, as bpftrace 0.17 computes it: the
//! boot clock now (`bpf_ktime_get_boot_ns`) minus the boot-clock time user space
//! stored in the runtime-values map just before BEGIN ran.

use super::{Builtin, Form};
use crate::abi::insn::{helper, BPF_SUB};
use crate::codegen::builder::*;
use crate::codegen::runtime_value;
use crate::sema::{value, Payload, Type};

pub static ELAPSED: Builtin = Builtin {
    name: "elapsed",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&ELAPSED, Vec::new(), Payload::None, Type::U64, site.span),
    lower: |g, call, dest| {
        g.into_reg(call, dest, |g| {
            let mark = g.b.mark();
            let start = g.b.alloc(8);
            g.runtime_value(runtime_value::START_NS);
            g.b.stx(Size::DW, R_FP, start.off, R0);
            g.b.call(helper::KTIME_GET_BOOT_NS);
            g.b.ldx(Size::DW, R1, R_FP, start.off);
            g.b.alu(BPF_SUB, R0, R1);
            g.b.release(mark);
        })
    },
    pure: false,
};
