//! `ntop([af, ] addr)`: an IP address as text. bpftrace 0.17 decides the family by the
//! operand's width: an integer is IPv4, a 4-byte array IPv4, a 16-byte array IPv6; an
//! explicit `af` must be the constant AF_INET or AF_INET6 and agree with it. The value
//! is laid out as bpftrace's inet type: u64 family, then 16 address bytes.

use super::{Builtin, Checked, Form, Site};
use crate::btf::TypeKind;
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::sema::{value, Call, Checker, Payload, Shape, TExprKind, Type};

const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;

pub static NTOP: Builtin = Builtin {
    name: "ntop",
    form: Form::Function,
    numbered: false,
    check,
    lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let (family, arg) = match site.args {
        [arg] => (None, arg),
        [af, arg] => {
            let af = ck.expr(af)?;
            match af.kind {
                TExprKind::Int(f @ (AF_INET | AF_INET6)) => (Some(f), arg),
                _ => {
                    ck.error(
                        af.span,
                        "ntop(af, addr): af must be the constant AF_INET or AF_INET6",
                    );
                    return None;
                }
            }
        }
        _ => {
            ck.error(site.span, "ntop() takes exactly one argument");
            return None;
        }
    };
    let arg = ck.expr(arg)?;
    let implied = match &arg.ty {
        Type::Int { .. } => Some(AF_INET),
        Type::Mem { ty, .. } => match ck.btf().kind(*ty) {
            TypeKind::Array { elem, len } => {
                match ck.btf().size_of(elem).unwrap_or(0) as u64 * len as u64 {
                    4 => Some(AF_INET),
                    16 => Some(AF_INET6),
                    _ => None,
                }
            }
            _ => None,
        },
        // An array value (`pton()`, a variable holding one).
        Type::Record(r) if matches!(r.shape, Shape::Array { .. }) => match r.size {
            4 => Some(AF_INET),
            16 => Some(AF_INET6),
            _ => None,
        },
        _ => None,
    };
    let Some(implied) = implied else {
        ck.error(
            arg.span,
            format!(
                "ntop() expects an integer (IPv4) or a 4- or 16-byte array, not '{}'",
                arg.ty.describe()
            ),
        );
        return None;
    };
    if family.is_some_and(|f| f != implied) {
        let (want, got) = if family == Some(AF_INET) {
            ("AF_INET", "an IPv6")
        } else {
            ("AF_INET6", "an IPv4")
        };
        ck.error(
            arg.span,
            format!(
                "ntop({want}, ...) given {got} address ('{}')",
                arg.ty.describe()
            ),
        );
        return None;
    }
    value(&NTOP, vec![arg], Payload::None, Type::Inet, site.span)
}

fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let (Dest::Mem { at, .. }, [addr]) = (dest, call.args.as_slice()) else {
        return g.misplaced(call, dest);
    };
    g.zero(at.at(8), 16);
    match (&addr.kind, &addr.ty) {
        // sema admits only 4- and 16-byte arrays.
        (TExprKind::InMemory(place), Type::Mem { size, .. }) => {
            let family = if *size == 16 { AF_INET6 } else { AF_INET };
            g.b.st_imm(Size::DW, at.base, at.off, family as i32);
            g.read_memory(place, at.at(8), *size, call.span);
        }
        (_, Type::Record(r)) => {
            let family = if r.size == 16 { AF_INET6 } else { AF_INET };
            g.b.st_imm(Size::DW, at.base, at.off, family as i32);
            g.write_value(addr, at.at(8), 16);
        }
        _ => {
            g.b.st_imm(Size::DW, at.base, at.off, AF_INET as i32);
            g.scalar(addr);
            g.b.stx(Size::W, at.base, at.off + 8, R0);
        }
    }
}
