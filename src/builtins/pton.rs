//! `pton("addr")`: an IP address literal as its network-order bytes, a `uint8[4]` (IPv4)
//! or `uint8[16]` (IPv6) array, as bpftrace 0.17 types it. The text is parsed at compile
//! time (bpftrace picks the family by the first `.`, else `:`, then asks inet_pton), so
//! the program only stores constant bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Builtin, Checked, Form, Site};
use crate::codegen::builder::Size;
use crate::codegen::{Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, Record, Shape, TExprKind, Type};

pub static PTON: Builtin = Builtin {
    name: "pton",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let arg = ck.one_arg(site)?;
    let arg = ck.expr(arg)?;
    // A string literal, or `str($1)` folded into one (bpftrace's first message).
    let TExprKind::Str(text) = &arg.kind else {
        ck.error(
            site.span,
            format!("Expected string literal, got {}", arg.ty.describe()),
        );
        return None;
    };
    let bytes = if text.contains('.') {
        text.parse::<Ipv4Addr>().map(|a| a.octets().to_vec())
    } else if text.contains(':') {
        text.parse::<Ipv6Addr>().map(|a| a.octets().to_vec())
    } else {
        ck.error(
            site.span,
            format!("pton() expects an string argument of an IPv4/IPv6 address, got {text}"),
        );
        return None;
    };
    let Ok(bytes) = bytes else {
        ck.error(
            site.span,
            format!("pton() expects a valid IPv4/IPv6 address, got {text}"),
        );
        return None;
    };
    let len = bytes.len() as u32;
    let ty = Type::Record(Box::new(Record {
        name: format!("uint8[{len}]"),
        size: len,
        align: 1,
        shape: Shape::Array {
            elem: Type::Int {
                size: 1,
                signed: false,
            },
            len,
        },
    }));
    value(&PTON, Vec::new(), Payload::Bytes(bytes), ty, site.span)
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, cap }, Payload::Bytes(bytes)) = (dest, &call.payload) else {
        return g.misplaced(call, dest);
    };
    // Byte stores: the destination may be exactly 4 bytes (a tuple element).
    for i in 0..cap {
        let to = at.at(i);
        let b = bytes.get(i as usize).copied().unwrap_or(0);
        g.b.st_imm(Size::B, to.base, to.off, b.into());
    }
}
