//! The C preprocessor subset bpftrace scripts use: `#include`, object-like
//! `#define`/`#undef`, and conditionals, with `BPFTRACE_HAVE_BTF` defined (rbt always
//! takes types from BTF). Directive lines and lines of inactive branches are blanked
//! with spaces, newlines kept, so byte offsets of the returned text equal those of
//! the script and every span points at the user's file.

use super::headers;
use crate::diag::{Diagnostic, Span};
use std::collections::HashMap;

pub struct Preprocessed {
    pub text: String,
    pub macros: Macros,
    pub diags: Vec<Diagnostic>,
}

/// Object-like macros with their history, so a use sees the definition in force at
/// its position (a later `#define` or `#undef` does not reach back).
#[derive(Default, Debug)]
pub struct Macros {
    defs: HashMap<String, Vec<(usize, Option<String>)>>,
}

impl Macros {
    fn set(&mut self, name: &str, pos: usize, body: Option<String>) {
        self.defs
            .entry(name.to_string())
            .or_default()
            .push((pos, body));
    }
    /// The body of macro `name` as defined at byte offset `pos`.
    pub fn lookup(&self, name: &str, pos: usize) -> Option<&str> {
        let history = self.defs.get(name)?;
        history.iter().rev().find(|(p, _)| *p <= pos)?.1.as_deref()
    }
}

struct Cond {
    span: Span,
    directive: &'static str,
    parent_active: bool,
    taking: bool,
    any_taken: bool,
    seen_else: bool,
}

struct Pre<'a> {
    src: &'a str,
    macros: Macros,
    diags: Vec<Diagnostic>,
    stack: Vec<Cond>,
}

/// `includes`: headers included before the script (`--include`; unknown ones are the
/// caller's error to report, having no place in the script).
pub fn run(src: &str, includes: &[String]) -> Preprocessed {
    let mut pre = Pre {
        src,
        macros: Macros::default(),
        diags: Vec::new(),
        stack: Vec::new(),
    };
    pre.macros.set("BPFTRACE_HAVE_BTF", 0, Some("1".into()));
    for path in includes {
        for (name, value) in headers::lookup(path).unwrap_or_default() {
            pre.macros.set(&name, 0, Some(value));
        }
    }
    let mut text = src.as_bytes().to_vec();
    let mut in_comment = false;
    let mut pos = 0;
    while pos < src.len() {
        let line_end = src[pos..].find('\n').map_or(src.len(), |n| pos + n);
        let line = &src[pos..line_end];
        let active = pre.stack.iter().all(|c| c.taking);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if !in_comment && line.starts_with("#!") {
            blank(&mut text, pos, line_end);
        } else if !in_comment && trimmed.starts_with('#') {
            let mut end = line_end;
            while src[..end].trim_end_matches('\r').ends_with('\\') && end < src.len() {
                end = src[end + 1..].find('\n').map_or(src.len(), |n| end + 1 + n);
            }
            pre.directive(pos + (line.len() - trimmed.len()), end, active);
            blank(&mut text, pos, end);
            pos = end + 1;
            continue;
        } else if !active {
            blank(&mut text, pos, line_end);
        } else {
            in_comment = ends_in_comment(line, in_comment);
        }
        pos = line_end + 1;
    }
    for c in std::mem::take(&mut pre.stack) {
        pre.diags.push(Diagnostic::error(
            c.span,
            format!("unterminated #{}: missing #endif", c.directive),
        ));
    }
    // Blanking replaces whole lines byte for byte, so the text stays valid UTF-8.
    let text = String::from_utf8(text)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Preprocessed {
        text,
        macros: pre.macros,
        diags: pre.diags,
    }
}

fn blank(text: &mut [u8], from: usize, to: usize) {
    for b in &mut text[from..to] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}

/// Whether a `/* */` comment is still open at the end of `line`.
fn ends_in_comment(line: &str, mut in_comment: bool) -> bool {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if in_comment {
            if b[i..].starts_with(b"*/") {
                in_comment = false;
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
        } else if b[i..].starts_with(b"//") {
            return false;
        } else if b[i..].starts_with(b"/*") {
            in_comment = true;
            i += 1;
        }
        i += 1;
    }
    in_comment
}

/// Directive text without comments; a line continuation becomes a space.
fn strip_comments(s: &str) -> String {
    let s = s.replace("\\\r\n", "  ").replace("\\\n", " ");
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find('/') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("//") {
            return out;
        } else if let Some(after) = tail.strip_prefix("/*") {
            out.push(' ');
            rest = after.find("*/").map_or("", |n| &after[n + 2..]);
        } else {
            out.push('/');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn ident(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let n = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (n > 0 && !s.starts_with(|c: char| c.is_ascii_digit())).then(|| &s[..n])
}

impl Pre<'_> {
    fn error(&mut self, from: usize, to: usize, msg: impl Into<String>) {
        let end = self.src.len();
        self.diags.push(Diagnostic::error(
            Span::new(from.min(end), to.min(end)),
            msg,
        ));
    }

    /// One directive: `#` at `hash`, the logical line ending at `end`.
    fn directive(&mut self, hash: usize, end: usize, active: bool) {
        let after_hash = &self.src[hash + 1..end];
        let name_at =
            hash + 1 + (after_hash.len() - after_hash.trim_start_matches([' ', '\t']).len());
        let name = ident(&self.src[name_at..end]).unwrap_or("");
        let name_end = name_at + name.len();
        let args = strip_comments(&self.src[name_end..end]);
        let args = args.trim();
        let dspan = (hash, name_end.max(hash + 1));
        match name {
            "ifdef" | "ifndef" | "if" => {
                let directive = if name == "ifdef" {
                    "ifdef"
                } else if name == "ifndef" {
                    "ifndef"
                } else {
                    "if"
                };
                let cond = active && self.condition(directive, args, hash, dspan);
                self.stack.push(Cond {
                    span: Span::new(dspan.0, dspan.1),
                    directive,
                    parent_active: active,
                    taking: cond,
                    any_taken: cond,
                    seen_else: false,
                });
            }
            "elif" | "else" => {
                let Some(top) = self.stack.last() else {
                    return self.error(dspan.0, dspan.1, format!("#{name} without #if"));
                };
                if top.seen_else {
                    return self.error(dspan.0, dspan.1, format!("#{name} after #else"));
                }
                let (parent_active, any_taken) = (top.parent_active, top.any_taken);
                let cond = parent_active
                    && !any_taken
                    && (name == "else" || self.condition("elif", args, hash, dspan));
                let top = self.stack.last_mut().expect("checked above");
                top.taking = cond;
                top.any_taken |= cond;
                top.seen_else = name == "else";
            }
            "endif" => {
                if self.stack.pop().is_none() {
                    self.error(dspan.0, dspan.1, "#endif without #if");
                }
            }
            _ if !active => {}
            "define" | "undef" => {
                let Some(macro_name) = ident(&self.src[name_end..end]) else {
                    return self.error(dspan.0, end, format!("#{name} needs a macro name"));
                };
                let m_at = name_end + self.src[name_end..end].find(macro_name).unwrap_or(0);
                let m_end = m_at + macro_name.len();
                if name == "undef" {
                    return self.macros.set(macro_name, hash, None);
                }
                if self.src[m_end..end].starts_with('(') {
                    return self.error(m_at, m_end, format!("function-like macro '{macro_name}' is not supported (only object-like macros: #define NAME VALUE)"));
                }
                let body = strip_comments(&self.src[m_end..end]).trim().to_string();
                self.macros.set(macro_name, hash, Some(body));
            }
            "include" => self.include(args, name_end, end, hash),
            "error" => self.error(hash, end, format!("#error {args}")),
            "warning" | "pragma" | "line" | "" => {}
            _ => self.error(
                dspan.0,
                dspan.1,
                format!("invalid preprocessing directive '#{name}'"),
            ),
        }
    }

    fn include(&mut self, args: &str, from: usize, end: usize, hash: usize) {
        let at = from
            + self.src[from..end]
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(0);
        let path = match args.chars().next() {
            Some('<') => args[1..].split_once('>').map(|(p, _)| p),
            Some('"') => args[1..].split_once('"').map(|(p, _)| p),
            _ => None,
        };
        let Some(path) = path else {
            return self.error(at, end.max(at + 1), "#include expects <FILE> or \"FILE\"");
        };
        let span_end = (at + path.len() + 2).min(end);
        match headers::lookup(path.trim()) {
            Some(defs) => {
                for (name, value) in defs {
                    self.macros.set(&name, hash, Some(value));
                }
            }
            None => {
                let d = Diagnostic::error(
                    Span::new(at, span_end.min(self.src.len())),
                    format!("'{path}' file not found"),
                )
                .with_note(super::headers_note());
                self.diags.push(d);
            }
        }
    }

    /// The truth of `#ifdef X`, `#ifndef X`, `#if EXPR`, `#elif EXPR`.
    fn condition(
        &mut self,
        directive: &str,
        args: &str,
        pos: usize,
        dspan: (usize, usize),
    ) -> bool {
        if directive == "ifdef" || directive == "ifndef" {
            let Some(name) = ident(args) else {
                self.error(dspan.0, dspan.1, format!("#{directive} needs a macro name"));
                return false;
            };
            return (self.macros.lookup(name, pos).is_some()) == (directive == "ifdef");
        }
        let mut ev = CondEval {
            s: args,
            macros: &self.macros,
            pos,
            depth: 0,
        };
        match ev.or().filter(|_| ev.s.trim().is_empty()) {
            Some(v) => v != 0,
            None => {
                self.error(dspan.0, dspan.1, format!("invalid #{directive} expression '{args}' (supported: integers, defined(NAME), macros, ! && || == != < > <= >= ( ))"));
                false
            }
        }
    }
}

/// A small evaluator for `#if` expressions.
struct CondEval<'a> {
    s: &'a str,
    macros: &'a Macros,
    pos: usize,
    depth: usize,
}

impl CondEval<'_> {
    fn eat(&mut self, tok: &str) -> bool {
        self.s = self.s.trim_start();
        let ok = self.s.starts_with(tok);
        if ok {
            self.s = &self.s[tok.len()..];
        }
        ok
    }
    fn or(&mut self) -> Option<i64> {
        let mut v = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            v = (v != 0 || r != 0) as i64;
        }
        Some(v)
    }
    fn and(&mut self) -> Option<i64> {
        let mut v = self.cmp()?;
        while self.eat("&&") {
            let r = self.cmp()?;
            v = (v != 0 && r != 0) as i64;
        }
        Some(v)
    }
    fn cmp(&mut self) -> Option<i64> {
        let mut v = self.unary()?;
        loop {
            let op: fn(i64, i64) -> bool = if self.eat("==") {
                |a, b| a == b
            } else if self.eat("!=") {
                |a, b| a != b
            } else if self.eat("<=") {
                |a, b| a <= b
            } else if self.eat(">=") {
                |a, b| a >= b
            } else if self.eat("<") {
                |a, b| a < b
            } else if self.eat(">") {
                |a, b| a > b
            } else {
                return Some(v);
            };
            let r = self.unary()?;
            v = op(v, r) as i64;
        }
    }
    fn unary(&mut self) -> Option<i64> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let v = self.atom();
        self.depth -= 1;
        v
    }
    fn atom(&mut self) -> Option<i64> {
        if self.eat("!") {
            return Some((self.unary()? == 0) as i64);
        }
        if self.eat("(") {
            let v = self.or()?;
            return self.eat(")").then_some(v);
        }
        self.s = self.s.trim_start();
        if self.s.starts_with(|c: char| c.is_ascii_digit()) {
            let n = self
                .s
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(self.s.len());
            let (_, v) = super::lex::integer(&self.s[..n]).ok()?;
            self.s = &self.s[n..];
            return i64::try_from(v).ok();
        }
        let name = ident(self.s)?;
        self.s = &self.s.trim_start()[name.len()..];
        if name == "defined" {
            let paren = self.eat("(");
            let m = ident(self.s)?;
            self.s = &self.s.trim_start()[m.len()..];
            if paren && !self.eat(")") {
                return None;
            }
            return Some(self.macros.lookup(m, self.pos).is_some() as i64);
        }
        // As in C, an identifier that is not a macro counts as 0.
        match self.macros.lookup(name, self.pos) {
            Some(body) => {
                let mut inner = CondEval {
                    s: body,
                    macros: self.macros,
                    pos: self.pos,
                    depth: self.depth + 8,
                };
                inner.or().filter(|_| inner.s.trim().is_empty())
            }
            None => Some(0),
        }
    }
}
