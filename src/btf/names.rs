//! C spellings of types for diagnostics and `rbt -d`: "struct sock *", "u8[16]",
//! "const char *", "int (*)(struct sock *, int)".

use super::raw::*;
use super::{Btf, TypeId};

/// Types visited to spell one name: far more than any real C type needs.
const SPELL_BUDGET: usize = 256;

impl Btf {
    /// How C (and bpftrace's messages) would write this type.
    pub fn name_of(&self, id: TypeId) -> String {
        let mut budget = SPELL_BUDGET;
        self.spell(id, &mut budget)
    }

    /// `budget` counts every type visited, bounding both depth and fan-out (a
    /// corrupt function type can refer to itself through each of its parameters).
    fn spell(&self, id: TypeId, budget: &mut usize) -> String {
        if *budget == 0 {
            return "...".into();
        }
        *budget -= 1;
        let Some(t) = self.raw(id) else {
            return format!("<invalid type id {}>", id.0);
        };
        let t = &t;
        let name = self.str_at(t.name_off);
        let target = TypeId(t.size_or_type);
        let tagged = |tag: &str| {
            if name.is_empty() {
                format!("{tag} (anonymous)")
            } else {
                format!("{tag} {name}")
            }
        };
        match t.kind() {
            0 => "void".into(),
            KIND_INT | KIND_TYPEDEF | KIND_FLOAT | KIND_FUNC | KIND_VAR | KIND_DATASEC => {
                name.to_string()
            }
            KIND_STRUCT => tagged("struct"),
            KIND_UNION => tagged("union"),
            KIND_ENUM | KIND_ENUM64 => tagged("enum"),
            KIND_FWD if t.kind_flag() => tagged("union"),
            KIND_FWD => tagged("struct"),
            KIND_PTR => match self.raw(target).map(|p| p.kind()) {
                Some(KIND_FUNC_PROTO) => self.spell_proto(target, "(*)", budget),
                _ => pointer_to(self.spell(target, budget)),
            },
            KIND_ARRAY => {
                let mut dims = String::new();
                let mut cur = *t;
                let mut levels = 0;
                while cur.kind() == KIND_ARRAY && levels <= MAX_DEPTH {
                    dims.push_str(&format!("[{}]", self.word(&cur, 2)));
                    let elem = TypeId(self.word(&cur, 0));
                    match self.raw(elem) {
                        Some(e) if e.kind() == KIND_ARRAY => cur = e,
                        _ => return format!("{}{dims}", self.spell(elem, budget)),
                    }
                    levels += 1;
                }
                format!("...{dims}")
            }
            KIND_CONST | KIND_VOLATILE | KIND_RESTRICT => {
                let q = match t.kind() {
                    KIND_CONST => "const",
                    KIND_VOLATILE => "volatile",
                    _ => "restrict",
                };
                let inner = self.spell(target, budget);
                // `char *const`: a qualified pointer puts the qualifier after the star.
                if self.raw(target).is_some_and(|p| p.kind() == KIND_PTR) {
                    format!("{inner}{q}")
                } else {
                    format!("{q} {inner}")
                }
            }
            KIND_TYPE_TAG | KIND_DECL_TAG => self.spell(target, budget),
            KIND_FUNC_PROTO => self.spell_proto(id, "", budget),
            _ => "?".into(),
        }
    }

    /// `ret (params)`, with `declarator` ("(*)" for a function pointer) before the list.
    fn spell_proto(&self, proto: TypeId, declarator: &str, budget: &mut usize) -> String {
        let ret = self.spell(self.func_return(proto), budget);
        let mut params: Vec<String> = self
            .func_params(proto)
            .iter()
            .map(|(_, ty)| self.spell(*ty, budget))
            .collect();
        if self.func_is_variadic(proto) {
            params.push("...".into());
        }
        if params.is_empty() {
            params.push("void".into());
        }
        let sep = if ret.ends_with('*') { "" } else { " " };
        format!("{ret}{sep}{declarator}({})", params.join(", "))
    }
}

fn pointer_to(inner: String) -> String {
    if inner.ends_with('*') {
        inner + "*"
    } else {
        inner + " *"
    }
}
