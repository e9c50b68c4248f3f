//! Front end: preprocess (`#include`, `#define`, `#ifndef`...) then parse with nom.
//!
//! The grammar follows bpftrace's parser.yy (v0.17): operator precedence and
//! associativity, casts, probes with attach points and predicates. Errors are
//! recovered at statement and probe boundaries so one run reports several.

mod cdefs;
mod dump;
mod errno;
mod error;
mod expr;
mod headers;
mod lex;
mod preprocess;
pub mod source;
mod stmt;

pub use dump::dump;

use crate::ast::Program;
use crate::diag::{Diagnostic, Span};
use error::{words, PError, PResult};
use preprocess::Macros;
use std::cell::{Cell, RefCell};

/// Reserved words: never identifiers in expressions.
const KEYWORDS: &[&str] = &[
    "if", "else", "while", "return", "unroll", "for", "break", "continue", "struct", "union",
    "enum",
];

/// Builtin variables (bpftrace's lexer `builtin` and `call_and_builtin` classes).
const BUILTINS: &[&str] = &[
    "args", "cgroup", "comm", "cpid", "numaid", "cpu", "ctx", "curtask", "elapsed", "func", "gid",
    "jiffies", "nsecs", "pid", "probe", "rand", "retval", "tid", "uid", "username", "kstack",
    "ustack",
];

/// Limit on real nesting: parentheses, unary operators and casts, blocks, macro
/// expansions, `?:` branches (each costs the recursive descent a level of its stack).
/// bpftrace has no such limit (5000 nested parentheses work); this one is far beyond
/// any real script and keeps the parser's stack bounded.
const MAX_DEPTH: usize = 256;

/// Limit on the height of the AST: the nesting above plus the links of left-leaning
/// chains (`1 + 1 + ...`, `a || b || ...`, `$s->a.b[0]`, `else if` branches), which
/// the parser reads in a loop but later recursive passes walk one level per link.
/// bpftrace 0.17 runs a 5000-term `1+1+...` and crashes (SIGSEGV) on 10000.
const MAX_HEIGHT: usize = 4096;

/// At most this many diagnostics are reported; later ones are usually follow-ups.
const MAX_DIAGS: usize = 20;

pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
        || ["arg", "sarg"].iter().any(|p| {
            name.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// `text`, all of it, as an integer literal (`_` separators, hex, octal, `1e6`, C
/// suffixes: bpftrace reads the numbers in attach points such as `interval:ms:100` with
/// its literal parser). The error says why it is not one.
pub fn integer_literal(text: &str) -> Result<u64, String> {
    let not_integer = || format!("'{text}' is not an integer");
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(not_integer());
    }
    match lex::integer(text) {
        Ok(("", value)) => Ok(value),
        Ok(_) => Err(not_integer()),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.msg.unwrap_or_else(not_integer)),
        Err(nom::Err::Incomplete(_)) => Err(not_integer()),
    }
}

/// Stack for the parser thread: nesting up to [`MAX_DEPTH`] needs about 6 MiB in a
/// debug build (nom's results make large frames), more than a test thread has.
const PARSER_STACK: usize = 32 << 20;

/// Parse a whole script. Diagnostics' spans are byte offsets into `src`.
pub fn parse(src: &str) -> Result<Program, Vec<Diagnostic>> {
    parse_script(src, &[], &[])
}

/// Whether `#include <path>` (or `--include path`) names a header rbt knows.
pub fn known_header(path: &str) -> bool {
    headers::lookup(path).is_some()
}

/// What the "file not found" error of an unknown header adds.
pub fn headers_note() -> String {
    "rbt reads no C headers (kernel types come from BTF); known headers: ".to_string()
        + &headers::known().join(", ")
}

/// Parse a whole script whose attach points may name positional parameters
/// (`interval:ms:$1`, `BEG$1`): bpftrace 0.17 substitutes their text there, a missing
/// one as "". `includes` are `--include` headers, included before the script (known
/// ones: see [`known_header`]).
pub fn parse_script(
    src: &str,
    params: &[String],
    includes: &[String],
) -> Result<Program, Vec<Diagnostic>> {
    // The recursive descent runs on its own thread so its depth never depends on
    // the caller's stack; if no thread can be made, parse right here.
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("rbt-parser".into())
            .stack_size(PARSER_STACK);
        match worker.spawn_scoped(scope, || parse_here(src, params, includes)) {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => parse_here(src, params, includes),
        }
    })
}

fn parse_here(
    src: &str,
    params: &[String],
    includes: &[String],
) -> Result<Program, Vec<Diagnostic>> {
    let pre = preprocess::run(src, includes);
    let shared = Shared {
        macros: &pre.macros,
        params,
        depth: Cell::new(0),
        height: Cell::new(0),
        expanding: RefCell::new(Vec::new()),
        diags: RefCell::new(Vec::new()),
    };
    let p = P {
        text: &pre.text,
        span_override: None,
        macro_pos: None,
        sh: &shared,
    };
    let program = p.program();
    let mut diags = pre.diags;
    diags.extend(shared.diags.into_inner());
    if diags.is_empty() {
        return Ok(program);
    }
    diags.sort_by_key(|d| d.span.start);
    diags.dedup_by(|a, b| a.span == b.span);
    diags.truncate(MAX_DIAGS);
    Err(diags)
}

/// State shared by the parser of the script and of each macro body it expands.
struct Shared<'s> {
    macros: &'s Macros,
    /// Positional parameters, for attach points.
    params: &'s [String],
    /// Real nesting, bounded by [`MAX_DEPTH`].
    depth: Cell<usize>,
    /// Nesting plus chain links on the way here, bounded by [`MAX_HEIGHT`].
    height: Cell<usize>,
    /// Macros being expanded: a macro is not expanded inside itself (as in C).
    expanding: RefCell<Vec<String>>,
    diags: RefCell<Vec<Diagnostic>>,
}

/// The parser over one text: the preprocessed script, or a macro body (then every
/// node gets the span of the identifier that named the macro).
struct P<'s> {
    text: &'s str,
    span_override: Option<Span>,
    /// Inside a macro body: where in the script the macro was used.
    macro_pos: Option<usize>,
    sh: &'s Shared<'s>,
}

/// Gives back what [`P::enter`] or [`P::link`] counted when the construct is done.
struct DepthGuard<'a> {
    depth: Option<&'a Cell<usize>>,
    height: &'a Cell<usize>,
}

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        if let Some(depth) = self.depth {
            depth.set(depth.get() - 1);
        }
        self.height.set(self.height.get() - 1);
    }
}

impl<'s> P<'s> {
    /// Byte offset of the remaining input `i` in this parser's text.
    fn off(&self, i: &str) -> usize {
        self.text.len().saturating_sub(i.len())
    }

    /// The span from where `start` begins to where `end` begins.
    fn span(&self, start: &str, end: &str) -> Span {
        self.span_override
            .unwrap_or_else(|| Span::new(self.off(start), self.off(end)))
    }

    fn ws(&self, i: &'s str) -> PResult<'s, ()> {
        lex::ws(i)
    }

    /// The punctuator that comes next, if any (ignoring whitespace and comments).
    fn peek(&self, i: &'s str) -> Option<&'static str> {
        lex::punct(lex::ws_lenient(i)).map(|(p, _)| p)
    }

    /// Expect punctuator `s`; returns its span.
    fn sym(&self, i: &'s str, s: &'static str) -> PResult<'s, Span> {
        let (i, ()) = self.ws(i)?;
        match lex::punct(i) {
            Some((p, rest)) if p == s => Ok((rest, self.span(i, rest))),
            _ => PError::expected(i, s).backtrack(),
        }
    }

    /// An identifier (any, keywords included) and its span.
    fn name(&self, i: &'s str, what: &'static str) -> PResult<'s, (&'s str, Span)> {
        let (i, ()) = self.ws(i)?;
        match lex::ident(i) {
            Some((name, rest)) => Ok((rest, (name, self.span(i, rest)))),
            None => PError::expected(i, what).backtrack(),
        }
    }

    /// One level of real nesting (the parser recurses): counts against both limits.
    fn enter(&self, i: &'s str) -> Result<DepthGuard<'s>, nom::Err<PError>> {
        let d = self.sh.depth.get() + 1;
        if d > MAX_DEPTH {
            return self.too_deep(
                i,
                format!("the limit is {MAX_DEPTH} levels of parentheses, blocks and macros"),
            );
        }
        let mut guard = self.link(i)?;
        self.sh.depth.set(d);
        guard.depth = Some(&self.sh.depth);
        Ok(guard)
    }

    /// One link of a chain the parser reads in a loop: counts against the height only.
    fn link(&self, i: &'s str) -> Result<DepthGuard<'s>, nom::Err<PError>> {
        let h = self.sh.height.get() + 1;
        if h > MAX_HEIGHT {
            return self.too_deep(
                i,
                format!("the limit is {MAX_HEIGHT} levels of operators, accesses and branches"),
            );
        }
        self.sh.height.set(h);
        Ok(DepthGuard {
            depth: None,
            height: &self.sh.height,
        })
    }

    fn too_deep<T>(&self, i: &'s str, limit: String) -> Result<T, nom::Err<PError>> {
        let len = lex::describe(i).2.max(1);
        PError::msg(i, len, format!("nested too deeply ({limit})")).fail()
    }

    /// Turn a parse error into a diagnostic pointing into the script.
    fn to_diag(&self, e: PError) -> Diagnostic {
        let at = self.text.len().saturating_sub(e.rest_len);
        let rest = self.text.get(at..).unwrap_or("");
        let (found, skip, len) = lex::describe(rest);
        let span = e
            .span
            .or(self.span_override)
            .unwrap_or_else(|| match e.len {
                Some(len) => Span::new(at, at + len),
                // At the end of the file, point just past the last token, not at a blank line.
                None if found == "end of file" => {
                    let end = self.text[..at].trim_end().len();
                    Span::new(end, end)
                }
                None => Span::new(at + skip, at + skip + len),
            });
        let message = e.msg.unwrap_or_else(|| {
            let expected: Vec<String> = e
                .expected
                .iter()
                .map(|w| {
                    if lex::punct(w).is_some_and(|(_, rest)| rest.is_empty()) {
                        format!("'{w}'")
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
            match expected.is_empty() {
                true => format!("syntax error: unexpected {found}"),
                false => format!(
                    "syntax error: unexpected {found}, expecting {}",
                    words(&expected)
                ),
            }
        });
        let mut d = Diagnostic::error(span, message);
        d.notes = e.notes;
        d
    }

    fn record(&self, e: nom::Err<PError>) {
        let d = self.to_diag(error::inner(e));
        self.sh.diags.borrow_mut().push(d);
    }
}
