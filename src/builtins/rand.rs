//! `rand`: a pseudo-random 32-bit number (`bpf_get_prandom_u32`), typed uint64 as in
//! bpftrace 0.17 (semantic_analyser.cpp types `rand` with nsecs, pid, ...).

use super::{Builtin, Form};
use crate::abi::insn::helper;
use crate::sema::{value, Payload, Type};

pub static RAND: Builtin = Builtin {
    name: "rand",
    form: Form::Variable,
    numbered: false,
    check: |_, site| value(&RAND, Vec::new(), Payload::None, Type::U64, site.span),
    // The helper returns a u32 in r0; BPF calls zero the upper half.
    lower: |g, call, dest| g.into_reg(call, dest, |g| g.b.call(helper::GET_PRANDOM_U32)),
    pure: false,
};
