//! C spellings of types for diagnostics and `rbt -d`: "struct sock *", "u8[16]",
//! "const char *", "int (*)(struct sock *, int)".

use super::raw::*;
use super::{Btf, TypeId};

impl Btf {
    /// How C (and bpftrace's messages) would write this type.
    pub fn name_of(&self, id: TypeId) -> String {
        self.spell(id, 0)
    }

    fn spell(&self, id: TypeId, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "...".into();
        }
        let Some(t) = self.raw(id) else {
            return format!("<invalid type id {}>", id.0);
        };
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
                Some(KIND_FUNC_PROTO) => self.spell_proto(target, "(*)", depth + 1),
                _ => pointer_to(self.spell(target, depth + 1)),
            },
            KIND_ARRAY => {
                let mut dims = String::new();
                let mut cur = *t;
                let mut levels = 0;
                while cur.kind() == KIND_ARRAY && levels <= MAX_DEPTH {
                    dims.push_str(&format!("[{}]", self.word(&cur, 2)));
                    let elem = TypeId(self.word(&cur, 0));
                    match self.raw(elem) {
                        Some(e) if e.kind() == KIND_ARRAY => cur = *e,
                        _ => return format!("{}{dims}", self.spell(elem, depth + 1)),
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
                let inner = self.spell(target, depth + 1);
                // `char *const`: a qualified pointer puts the qualifier after the star.
                if self.raw(target).is_some_and(|p| p.kind() == KIND_PTR) {
                    format!("{inner}{q}")
                } else {
                    format!("{q} {inner}")
                }
            }
            KIND_TYPE_TAG | KIND_DECL_TAG => self.spell(target, depth + 1),
            KIND_FUNC_PROTO => self.spell_proto(id, "", depth),
            _ => "?".into(),
        }
    }

    /// `ret (params)`, with `declarator` ("(*)" for a function pointer) before the list.
    fn spell_proto(&self, proto: TypeId, declarator: &str, depth: usize) -> String {
        let ret = self.spell(self.func_return(proto), depth + 1);
        let mut params: Vec<String> = self
            .func_params(proto)
            .iter()
            .map(|(_, ty)| self.spell(*ty, depth + 1))
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
