//! Type names as bpftrace 0.17's `-lv` prints a uprobe's parameters
//! (`Dwarf::get_type_name`): base types and typedefs by name, `T*` for pointers (`void*`
//! without a target), `struct`/`union`/`enum` with their tag (`<anonymous>` without),
//! `const T` (`T* const` for a const pointer), and `<unknown type>` for anything else
//! (volatile, function types, a missing type).

use super::{DebugInfo, DieRef};
use gimli::constants as dw;

/// Bound on the chain of pointers and qualifiers followed.
const MAX_DEPTH: usize = 32;

pub fn type_name(info: &DebugInfo, ty: Option<DieRef>) -> String {
    name(info, ty, 0)
}

fn name(info: &DebugInfo, ty: Option<DieRef>, depth: usize) -> String {
    const UNKNOWN: &str = "<unknown type>";
    let Some(die) = ty.and_then(|at| info.die(at)) else {
        return UNKNOWN.into();
    };
    if depth > MAX_DEPTH {
        return UNKNOWN.into();
    }
    let tag = dw::DwTag(die.tag);
    let tagged = |prefix: &str| match &die.name {
        Some(n) => format!("{prefix} {n}"),
        None => format!("{prefix} <anonymous>"),
    };
    match tag {
        dw::DW_TAG_base_type | dw::DW_TAG_typedef => die.name.clone().unwrap_or_default(),
        dw::DW_TAG_pointer_type => match die.ty {
            Some(_) => format!("{}*", name(info, die.ty, depth + 1)),
            None => "void*".into(),
        },
        dw::DW_TAG_structure_type => tagged("struct"),
        dw::DW_TAG_union_type => tagged("union"),
        dw::DW_TAG_enumeration_type => tagged("enum"),
        dw::DW_TAG_const_type => {
            let inner = die.ty.and_then(|at| info.die(at));
            match inner.map(|d| dw::DwTag(d.tag)) {
                Some(dw::DW_TAG_pointer_type) => {
                    format!("{} const", name(info, die.ty, depth + 1))
                }
                _ => format!("const {}", name(info, die.ty, depth + 1)),
            }
        }
        _ => UNKNOWN.into(),
    }
}
