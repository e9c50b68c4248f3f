//! C type definitions before the first probe: `struct Foo { int x; char c[4]; }`,
//! unions, enums, nested definitions and bitfields. bpftrace 0.17 hands this part of a
//! script to clang; rbt parses the subset scripts use and lays the types out itself
//! (sema/ctypes.rs).

use super::error::{PError, PResult};
use super::expr::cut;
use super::{lex, P};
use crate::ast::{CBody, CDef, CField, CKind, CType};

/// Words that make up a C integer type name (`unsigned long long int`).
const INT_WORDS: &[&str] = &[
    "unsigned", "signed", "char", "short", "int", "long", "_Bool",
];

impl<'s> P<'s> {
    /// The definitions at the start of the script, and the text after them.
    pub(super) fn c_definitions(&self, mut i: &'s str) -> (&'s str, Vec<CDef>) {
        let mut defs = Vec::new();
        loop {
            let t = lex::ws_lenient(i);
            if !self.starts_definition(t) {
                return (i, defs);
            }
            match self.c_def(t) {
                Ok((rest, def)) => {
                    defs.push(def);
                    i = match self.sym(rest, ";") {
                        Ok((rest, _)) => rest,
                        Err(_) => rest,
                    };
                }
                Err(e) => {
                    self.record(e);
                    let rest = self.skip_definition(t);
                    let rest = self.sym(rest, ";").map_or(rest, |(r, _)| r);
                    return (rest, defs);
                }
            }
        }
    }

    /// `struct NAME {`, `union NAME {` or `enum NAME {` (a probe never starts so).
    fn starts_definition(&self, t: &str) -> bool {
        let Some((word, rest)) = lex::ident(t) else {
            return false;
        };
        if !matches!(word, "struct" | "union" | "enum") {
            return false;
        }
        let rest = lex::ws_lenient(rest);
        let rest = lex::ident(rest).map_or(rest, |(_, r)| lex::ws_lenient(r));
        rest.starts_with('{')
    }

    /// Skip to just past the next `}` at depth 0 after an error.
    fn skip_definition(&self, i: &'s str) -> &'s str {
        let mut depth = 0usize;
        let mut rest = i;
        loop {
            let (p, r) = lex::skip_token(rest);
            if r.len() == rest.len() {
                return r;
            }
            rest = r;
            match p {
                Some("{") => depth += 1,
                Some("}") if depth <= 1 => return rest,
                Some("}") => depth -= 1,
                _ => {}
            }
        }
    }

    /// One definition: keyword, optional tag, `{ body }`.
    fn c_def(&self, i: &'s str) -> PResult<'s, CDef> {
        let _depth = self.enter(i)?;
        let (rest, (word, _)) = self.name(i, "struct, union or enum")?;
        let kind = match word {
            "struct" => CKind::Struct,
            "union" => CKind::Union,
            "enum" => CKind::Enum,
            _ => return PError::expected(i, "struct, union or enum").backtrack(),
        };
        let mut rest = rest;
        let mut name = String::new();
        if self.peek(rest) != Some("{") {
            let (r, (tag, _)) = self.name(rest, "a type name").map_err(cut)?;
            name = tag.to_string();
            rest = r;
        }
        let (rest, _) = self.sym(rest, "{").map_err(cut)?;
        let (rest, body) = match kind {
            CKind::Enum => self.enumerators(rest)?,
            CKind::Struct | CKind::Union => self.fields(rest)?,
        };
        let (rest, _) = self.sym(rest, "}").map_err(cut)?;
        let span = self.span(i, rest);
        Ok((
            rest,
            CDef {
                kind,
                name,
                body,
                span,
            },
        ))
    }

    /// `A, B = 5, C` up to the closing brace.
    fn enumerators(&self, mut i: &'s str) -> PResult<'s, CBody> {
        let mut values = Vec::new();
        let mut next = 0i64;
        while self.peek(i) != Some("}") {
            let (r, (name, _)) = self.name(i, "an enumerator name").map_err(cut)?;
            i = r;
            if self.peek(i) == Some("=") {
                let (r, _) = self.sym(i, "=")?;
                let r = lex::ws_lenient(r);
                let (r, negative) = match r.strip_prefix('-') {
                    Some(r) => (lex::ws_lenient(r), true),
                    None => (r, false),
                };
                if !r.starts_with(|c: char| c.is_ascii_digit()) {
                    return PError::expected(r, "an integer").fail();
                }
                let (r, v) = lex::integer(r).map_err(cut)?;
                next = if negative {
                    (v as i64).wrapping_neg()
                } else {
                    v as i64
                };
                i = r;
            }
            values.push((name.to_string(), next));
            next = next.wrapping_add(1);
            match self.sym(i, ",") {
                Ok((r, _)) => i = r,
                Err(_) => break,
            }
        }
        Ok((i, CBody::Enumerators(values)))
    }

    /// Member declarations up to the closing brace.
    fn fields(&self, mut i: &'s str) -> PResult<'s, CBody> {
        let mut fields = Vec::new();
        while self.peek(i) != Some("}") {
            let (r, ty) = self.c_type(i)?;
            i = r;
            loop {
                let (r, field) = self.declarator(i, ty.clone())?;
                fields.push(field);
                i = r;
                match self.sym(i, ",") {
                    Ok((r, _)) => i = r,
                    Err(_) => break,
                }
            }
            // clang (so bpftrace) takes a last member without its `;`.
            if self.peek(i) == Some("}") {
                break;
            }
            let (r, _) = self.sym(i, ";").map_err(cut)?;
            i = r;
        }
        Ok((i, CBody::Fields(fields)))
    }

    /// A member's base type: a nested definition, a tagged name, C integer words, or
    /// one identifier (a typedef). `const`/`volatile` are dropped.
    fn c_type(&self, i: &'s str) -> PResult<'s, CType> {
        let mut t = lex::ws_lenient(i);
        while let Some((q @ ("const" | "volatile"), r)) = lex::ident(t) {
            let _ = q;
            t = lex::ws_lenient(r);
        }
        if self.starts_definition(t) {
            let (rest, def) = self.c_def(t)?;
            return Ok((rest, CType::Def(Box::new(def))));
        }
        let Some((word, rest)) = lex::ident(t) else {
            return PError::expected(t, "a member type").fail();
        };
        if matches!(word, "struct" | "union" | "enum") {
            let (rest, (tag, _)) = self.name(rest, "a type name").map_err(cut)?;
            let span = self.span(t, rest);
            return Ok((rest, CType::Named(format!("{word} {tag}"), span)));
        }
        let mut words = vec![word];
        let mut rest = rest;
        if INT_WORDS.contains(&word) {
            while let Some((w, r)) = lex::ident(lex::ws_lenient(rest)) {
                if !INT_WORDS.contains(&w) {
                    break;
                }
                words.push(w);
                rest = r;
            }
        }
        let span = self.span(t, rest);
        Ok((rest, CType::Named(words.join(" "), span)))
    }

    /// `*name[N] : bits` after a member's type.
    fn declarator(&self, i: &'s str, ty: CType) -> PResult<'s, CField> {
        let mut i = lex::ws_lenient(i);
        let start = i;
        let mut pointer_depth = 0u8;
        while let Some(r) = i.strip_prefix('*') {
            pointer_depth = pointer_depth.saturating_add(1);
            i = lex::ws_lenient(r);
        }
        // An unnamed bitfield (`int :0;`) only pads.
        let (mut i, name) = match i.starts_with(':') {
            true => (i, ""),
            false => {
                let (r, (name, _)) = self.name(i, "a member name").map_err(cut)?;
                (r, name)
            }
        };
        let mut dims = Vec::new();
        while self.peek(i) == Some("[") {
            let (r, _) = self.sym(i, "[")?;
            let (r, n) = self.c_count(r)?;
            let (r, _) = self.sym(r, "]").map_err(cut)?;
            dims.push(n);
            i = r;
        }
        let mut bits = None;
        if self.peek(i) == Some(":") {
            let (r, _) = self.sym(i, ":")?;
            let (r, n) = self.c_count(r)?;
            bits = Some(n);
            i = r;
        }
        let span = self.span(start, i);
        Ok((
            i,
            CField {
                ty,
                name: name.to_string(),
                pointer_depth,
                dims,
                bits,
                span,
            },
        ))
    }

    /// An array length or bitfield width: a literal integer (or an object-like macro
    /// whose body is one).
    fn c_count(&self, i: &'s str) -> PResult<'s, u32> {
        let t = lex::ws_lenient(i);
        if let Some((name, rest)) = lex::ident(t) {
            if let Some(v) = self
                .macro_body(name, t)
                .and_then(|b| super::integer_literal(b.trim()).ok())
            {
                return match u32::try_from(v) {
                    Ok(v) => Ok((rest, v)),
                    Err(_) => PError::msg(t, name.len(), "the number is too large").fail(),
                };
            }
        }
        if !t.starts_with(|c: char| c.is_ascii_digit()) {
            return PError::expected(t, "an integer").fail();
        }
        let (rest, v) = lex::integer(t).map_err(cut)?;
        match u32::try_from(v) {
            Ok(v) => Ok((rest, v)),
            Err(_) => PError::msg(t, t.len() - rest.len(), "the number is too large").fail(),
        }
    }
}
