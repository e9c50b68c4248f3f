//! `cpid`: the pid of the `-c` command (uint32, as bpftrace 0.17 types it). bpftrace
//! compiles it in as a constant; rbt's runtime starts the command (held at a gate)
//! before BEGIN and stores its pid in the runtime-values map.

use super::{Builtin, Form};
use crate::codegen::runtime_value;
use crate::sema::{value, Payload, Type};

pub static CPID: Builtin = Builtin {
    name: "cpid",
    form: Form::Variable,
    numbered: false,
    check: |ck, site| {
        if !ck.has_child() {
            ck.error(site.span, "cpid cannot be used without child command");
            return None;
        }
        let ty = Type::Int {
            size: 4,
            signed: false,
        };
        value(&CPID, Vec::new(), Payload::None, ty, site.span)
    },
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.runtime_value(runtime_value::CHILD_PID)),
    pure: false,
};
