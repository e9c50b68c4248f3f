//! Probes, attach points, predicates, blocks and statements, with error recovery:
//! a bad statement is skipped up to the next `;` or `}`, a bad probe header up to
//! the end of its block, so one run reports the independent errors of a script.

use super::error::{PError, PResult};
use super::expr::{cut, lvalue};
use super::{lex, P};
use crate::ast::{AttachPoint, BinOp, Block, Probe, Program, Stmt, StmtKind};
use crate::diag::{Diagnostic, Span};
use crate::probes;

fn compound_op(p: &str) -> Option<Option<BinOp>> {
    use BinOp::*;
    Some(Some(match p {
        "=" => return Some(None),
        "+=" => Add,
        "-=" => Sub,
        "*=" => Mul,
        "/=" => Div,
        "%=" => Mod,
        "&=" => BitAnd,
        "|=" => BitOr,
        "^=" => BitXor,
        "<<=" => Shl,
        ">>=" => Shr,
        _ => return None,
    }))
}

impl<'s> P<'s> {
    pub(super) fn program(&self) -> Program {
        let mut probes = Vec::new();
        let (mut i, types) = self.c_definitions(self.text);
        // Skipping stray tokens after an error: they are not reported one by one.
        let mut recovering = false;
        loop {
            i = match self.ws(i) {
                Ok((rest, ())) => rest,
                Err(e) => {
                    self.record(e);
                    break;
                }
            };
            if i.is_empty() {
                break;
            }
            let errors_before = self.sh.diags.borrow().len();
            match self.probe(i) {
                Ok((rest, probe)) => {
                    if self.sh.diags.borrow().len() == errors_before {
                        probes.push(probe);
                    }
                    i = rest;
                    recovering = false;
                }
                Err(e) => {
                    if !recovering {
                        self.record(e);
                    }
                    let (rest, skipped_block) = self.skip_probe(i);
                    i = rest;
                    recovering = !skipped_block;
                }
            }
        }
        if probes.is_empty() && self.sh.diags.borrow().is_empty() {
            let e = PError::msg(
                i,
                0,
                "no probes: a script needs at least one probe, e.g. BEGIN { ... }",
            );
            self.record(nom::Err::Failure(e));
        }
        Program {
            types,
            probes,
            params: Vec::new(),
            str_size: crate::sema::STRING_SIZE,
            child: false,
            allow_unsafe: false,
            pid: None,
            span: Span::new(0, self.text.len()),
        }
    }

    /// Error recovery: skip to the end of the next top-level block. The flag says
    /// whether a whole `{ ... }` was skipped (rather than a stray `}` or the end).
    fn skip_probe(&self, i: &'s str) -> (&'s str, bool) {
        let mut depth = 0usize;
        let mut rest = i;
        loop {
            let (p, r) = lex::skip_token(rest);
            if r.len() == rest.len() {
                return (r, false);
            }
            rest = r;
            match p {
                Some("{") => depth += 1,
                Some("}") if depth <= 1 => return (rest, depth == 1),
                Some("}") => depth -= 1,
                _ => {}
            }
        }
    }

    fn probe(&self, i: &'s str) -> PResult<'s, Probe> {
        let mut attach_points = Vec::new();
        let mut i = i;
        loop {
            let (rest, ap) = self.attach_point(i)?;
            attach_points.extend(ap);
            i = rest;
            match self.sym(i, ",") {
                Ok((rest, _)) => i = rest,
                Err(_) => break,
            }
        }
        let (mut i, ()) = self.ws(i)?;
        let mut predicate = None;
        if i.starts_with('/') && !i.starts_with("/=") {
            let after = lex::ws_lenient(&i[1..]);
            if after.starts_with('/') {
                return PError::msg(
                    i,
                    i.len() - after.len() + 1,
                    "empty predicate: write /condition/ or leave it out",
                )
                .fail();
            }
            let (rest, e) = self.expr(&i[1..]).map_err(cut)?;
            let (rest, _) = self.sym(rest, "/").map_err(|e| {
                cut(e.map(|e| PError {
                    expected: vec!["'/' to end the predicate"],
                    ..e
                }))
            })?;
            predicate = Some(e);
            i = rest;
        }
        let (_, ()) = self.ws(i)?;
        if self.peek(i) != Some("{") {
            let mut expected = vec!["{"];
            if predicate.is_none() {
                expected.extend([",", "a predicate /.../"]);
            }
            let e = PError {
                expected,
                ..PError::expected(lex::ws_lenient(i), "{")
            };
            return e.fail();
        }
        let (rest, body) = self.block(i)?;
        let start = attach_points
            .first()
            .map_or(body.span, |a: &AttachPoint| a.span);
        let span = start.to(body.span);
        Ok((
            rest,
            Probe {
                attach_points,
                predicate,
                body,
                span,
            },
        ))
    }

    /// One attach point. A malformed one is reported and yields `None`, so the
    /// probe body is still checked.
    fn attach_point(&self, i: &'s str) -> PResult<'s, Option<AttachPoint>> {
        let (i, ()) = self.ws(i)?;
        // Some probe types name files (`uprobe:/bin/sh:f`): take their paths whole.
        let ty = lex::ident(i).map_or("", |(w, _)| w);
        let extra = if probes::takes_path(ty) { "/" } else { "" };
        let len = attach_point_len(i, extra);
        if i[len..].starts_with('"') {
            let line = i[len..].find('\n').unwrap_or(i.len() - len);
            return PError::msg(&i[len..], line, "unterminated string in attach point").fail();
        }
        if len == 0 || !i.starts_with(lex::is_ident_start) {
            let what = if i.starts_with('{') {
                "an attach point (e.g. BEGIN or kprobe:FUNCTION) before '{'"
            } else {
                "a probe"
            };
            return PError::expected(i, what).fail();
        }
        let rest = &i[len..];
        let span = self.span(i, rest);
        let (text, mut parts) = match i[..len].contains('"') {
            true => (
                i[..len].to_string(),
                quoted_parts(&i[..len], self.sh.params),
            ),
            false => {
                let text = substitute_params(&i[..len], self.sh.params);
                let parts = text.split(':').map(str::to_string).collect();
                (text, parts)
            }
        };
        let text = text.as_str();
        let target: Vec<String> = parts.split_off(1.min(parts.len()));
        let ty = parts.first().map_or("", String::as_str);
        let bad = |msg: String| {
            self.sh
                .diags
                .borrow_mut()
                .push(Diagnostic::error(span, msg));
            Ok((rest, None))
        };
        let Some(provider) = probes::lookup(ty) else {
            let supported = probes::supported_list();
            return bad(if probes::NOT_YET.contains(&ty) {
                format!("probe type '{ty}' is not supported by rbt (supported: {supported})")
            } else {
                format!("unknown probe type '{ty}' (expected {supported})")
            });
        };
        let (min, max) = provider.parts;
        if max == 0 && !target.is_empty() {
            return bad(format!("{ty} {}: write just '{ty}'", provider.malformed));
        }
        if target.len() < min || target.len() > max || target.iter().any(String::is_empty) {
            let usage = provider.usage;
            return bad(format!("{} '{text}': write {usage}", provider.malformed));
        }
        Ok((
            rest,
            Some(AttachPoint {
                provider,
                target,
                span,
                wildcard: None,
            }),
        ))
    }

    /// `{ stmt; stmt; ... }`, recovering from bad statements.
    pub(super) fn block(&self, i: &'s str) -> PResult<'s, Block> {
        let (i, open) = self.sym(i, "{")?;
        let _depth = self.enter(i)?;
        let errors_before = self.sh.diags.borrow().len();
        let mut stmts = Vec::new();
        let mut i = i;
        loop {
            let t = match self.ws(i) {
                Ok((t, ())) => t,
                Err(e) => {
                    self.record(e);
                    return Ok(("", Block { stmts, span: open }));
                }
            };
            if t.is_empty() {
                // After an error inside the block, a lost '}' is usually a follow-up.
                if self.sh.diags.borrow().len() == errors_before {
                    let e = PError::msg(t, 0, "unterminated block: this '{' has no matching '}'")
                        .at(open);
                    self.record(nom::Err::Failure(e));
                }
                return Ok((t, Block { stmts, span: open }));
            }
            if let Some(rest) = t.strip_prefix('}') {
                return Ok((
                    rest,
                    Block {
                        stmts,
                        span: open.to(self.span(t, rest)),
                    },
                ));
            }
            if let Some(rest) = t.strip_prefix(';') {
                i = rest;
                continue;
            }
            match self.stmt(t) {
                Ok((rest, (stmt, needs_separator))) => {
                    let looks_like_probe = matches!(&stmt.kind, StmtKind::Expr(e) if matches!(e.kind, crate::ast::ExprKind::Ident(_) | crate::ast::ExprKind::Builtin(_)))
                        && self.peek(rest) == Some(":");
                    stmts.push(stmt);
                    let r = lex::ws_lenient(rest);
                    i = if !needs_separator || r.is_empty() || r.starts_with('}') {
                        rest
                    } else if let Some(after) = r.strip_prefix(';') {
                        after
                    } else {
                        let mut e = PError::expected(r, ";");
                        e.expected.push("}");
                        if looks_like_probe {
                            e = e.note(
                                "a probe cannot start inside a block: is a '}' missing before it?",
                            );
                        }
                        self.record(nom::Err::Failure(e));
                        self.sync(r)
                    };
                }
                Err(e) => {
                    // Resume after the point of failure (never before the statement).
                    let rest_len = super::error::inner(e.clone()).rest_len.min(t.len());
                    self.record(e);
                    i = self.sync(&t[t.len() - rest_len..]);
                }
            }
        }
    }

    /// Error recovery inside a block: skip past the next `;` or up to the `}`
    /// that closes the block, whichever comes first at this nesting level.
    fn sync(&self, i: &'s str) -> &'s str {
        let mut depth = 0usize;
        let mut rest = i;
        loop {
            let (p, r) = lex::skip_token(rest);
            if r.len() == rest.len() {
                return r;
            }
            match p {
                Some("{" | "(" | "[") => depth += 1,
                Some("}") if depth == 0 => return rest,
                // An unmatched ')' or ']' is the tail of the broken statement (say, of a
                // too deeply nested expression): skip it rather than parse it as the
                // next statement and report a follow-up error.
                Some(")" | "]") if depth == 0 => {}
                Some("}" | ")" | "]") => depth -= 1,
                Some(";") if depth == 0 => return r,
                _ => {}
            }
            rest = r;
        }
    }

    /// One statement; the flag says whether it must be followed by `;` or `}`.
    fn stmt(&self, i: &'s str) -> PResult<'s, (Stmt, bool)> {
        if let Some((word, rest)) = lex::ident(i) {
            let kw_span = self.span(i, rest);
            match word {
                "if" => return self.if_stmt(i).map(|(r, s)| (r, (s, false))),
                "while" => {
                    let (r, cond) = self.paren_cond(rest)?;
                    let (r, body) = self.block(r).map_err(cut)?;
                    let span = kw_span.to(body.span);
                    return Ok((
                        r,
                        (
                            Stmt {
                                kind: StmtKind::While { cond, body },
                                span,
                            },
                            false,
                        ),
                    ));
                }
                "return" => {
                    return Ok((
                        rest,
                        (
                            Stmt {
                                kind: StmtKind::Return,
                                span: kw_span,
                            },
                            true,
                        ),
                    ))
                }
                "unroll" => {
                    let (r, _) = self.sym(rest, "(").map_err(cut)?;
                    let t = lex::ws_lenient(r);
                    if !t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '$') {
                        let expected = vec!["$#", "-", "a positional parameter", "an integer"];
                        return PError {
                            expected,
                            ..PError::expected(t, "")
                        }
                        .fail();
                    }
                    let (r, count) = self.expr(r).map_err(cut)?;
                    let (r, close) = self.sym(r, ")").map_err(cut)?;
                    let (r, body) = self.block(r).map_err(cut)?;
                    return Ok((
                        r,
                        (
                            Stmt {
                                kind: StmtKind::Unroll { count, body },
                                span: kw_span.to(close),
                            },
                            false,
                        ),
                    ));
                }
                "for" | "break" | "continue" => {
                    return PError::msg(i, word.len(), format!("'{word}' is not supported by rbt"))
                        .fail();
                }
                "else" => {
                    return PError::msg(i, word.len(), "'else' without a matching 'if'").fail()
                }
                _ => {}
            }
        }
        let (rest, e) = self.expr(i)?;
        let t = lex::ws_lenient(rest);
        let Some((op, value_at)) = lex::punct(t).and_then(|(p, r)| Some((compound_op(p)?, r)))
        else {
            let span = e.span;
            return Ok((
                rest,
                (
                    Stmt {
                        kind: StmtKind::Expr(e),
                        span,
                    },
                    true,
                ),
            ));
        };
        let Some(target) = lvalue(&e) else {
            let msg = "cannot assign to this expression: only variables ($x) and maps (@m, @m[key]) can be assigned";
            return PError::msg(t, 0, msg).at(e.span).fail();
        };
        let (rest, value) = self.expr(value_at).map_err(cut)?;
        let span = e.span.to(value.span);
        Ok((
            rest,
            (
                Stmt {
                    kind: StmtKind::Assign { target, op, value },
                    span,
                },
                true,
            ),
        ))
    }

    /// `( expr )` after `if` or `while`.
    fn paren_cond(&self, i: &'s str) -> PResult<'s, crate::ast::Expr> {
        let (i, _) = self.sym(i, "(").map_err(cut)?;
        let (i, cond) = self.expr(i).map_err(cut)?;
        let (i, _) = self.sym(i, ")").map_err(cut)?;
        Ok((i, cond))
    }

    /// `if (c) { } [else if (c) { }]... [else { }]`. The `else if` branches are read in
    /// a loop (a long chain is not deep nesting), then nested as the AST has them.
    fn if_stmt(&self, i: &'s str) -> PResult<'s, Stmt> {
        let (mut rest, (_, mut kw)) = self.name(i, "if")?;
        // Each `if`'s keyword span, condition and block; the links bound the AST height.
        let mut branches = Vec::new();
        let mut _links = Vec::new();
        let mut otherwise = None;
        loop {
            let (r, cond) = self.paren_cond(rest)?;
            let (r, then) = self.block(r).map_err(cut)?;
            branches.push((kw, cond, then));
            rest = r;
            let Ok((r, ("else", _))) = self.name(rest, "else") else {
                break;
            };
            let t = lex::ws_lenient(r);
            if let Some(("if", after)) = lex::ident(t) {
                _links.push(self.link(t)?);
                kw = self.span(t, after);
                rest = after;
                continue;
            }
            let (r, block) = self.block(t).map_err(|e| {
                cut(e.map(|e| PError {
                    expected: vec!["{", "if"],
                    ..e
                }))
            })?;
            otherwise = Some(block);
            rest = r;
            break;
        }
        let mut branches = branches.into_iter().rev().peekable();
        loop {
            let (kw, cond, then) = branches.next().expect("at least the first if");
            let mut span = kw.to(then.span);
            if let Some(block) = &otherwise {
                span = span.to(block.span);
            }
            let stmt = Stmt {
                kind: StmtKind::If {
                    cond,
                    then,
                    otherwise,
                },
                span,
            };
            if branches.peek().is_none() {
                return Ok((rest, stmt));
            }
            otherwise = Some(Block {
                span: stmt.span,
                stmts: vec![stmt],
            });
        }
    }
}

/// `$N` in an attach point's text replaced by parameter N's text ("" when missing), as
/// bpftrace 0.17's attach point lexer does.
fn substitute_params(text: &str, params: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        match after[..digits].parse::<usize>() {
            Ok(n) if n >= 1 => out.push_str(params.get(n - 1).map_or("", String::as_str)),
            _ => out.push_str(&rest[at..at + 1 + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The length of the attach point at the start of `i`: its characters (`extra` adds
/// `/` for types that name files), and `"..."` strings, which bpftrace 0.17 takes in an
/// attach point (`uprobe:/bin/bash:"echo_builtin"+0`).
fn attach_point_len(i: &str, extra: &str) -> usize {
    let mut chars = i.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '"' {
            // To the closing quote (a backslash escapes the next character).
            let mut closed = false;
            while let Some((_, q)) = chars.next() {
                match q {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !closed {
                return at;
            }
        } else if !(c.is_ascii_alphanumeric() || "_:*.-+$".contains(c) || extra.contains(c)) {
            return at;
        }
    }
    i.len()
}

/// An attach point with quoted strings split at its colons as bpftrace's
/// `lex_attachpoint` splits it: a string's text is taken as written (colons, escapes
/// undone), positional parameters are substituted outside strings.
fn quoted_parts(text: &str, params: &[String]) -> Vec<String> {
    let (mut parts, mut part, mut plain) = (Vec::new(), String::new(), String::new());
    let mut chars = text.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, ':') => {
                part.push_str(&substitute_params(&std::mem::take(&mut plain), params));
                parts.push(std::mem::take(&mut part));
            }
            (false, '"') => {
                part.push_str(&substitute_params(&std::mem::take(&mut plain), params));
                quoted = true;
            }
            (false, c) => plain.push(c),
            (true, '"') => quoted = false,
            (true, '\\') => part.extend(chars.next()),
            (true, c) => part.push(c),
        }
    }
    part.push_str(&substitute_params(&plain, params));
    parts.push(part);
    parts
}
