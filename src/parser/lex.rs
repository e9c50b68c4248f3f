//! Character-level pieces of the grammar, written with nom over `&str`: whitespace
//! and comments, identifiers, punctuators, integer and string literals. None of
//! these skip leading whitespace except [`ws`] itself.

use super::error::{PError, PResult};
use nom::bytes::complete::{take_until, take_while, take_while1};
use nom::sequence::preceded;

/// Skip spaces, newlines, `// line` and `/* block */` comments.
pub fn ws(mut i: &str) -> PResult<'_, ()> {
    loop {
        i = i.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        if let Some(rest) = i.strip_prefix("//") {
            i = rest.find('\n').map_or("", |n| &rest[n..]);
        } else if i.starts_with("/*") {
            match preceded(
                nom::bytes::complete::tag::<_, _, PError>("/*"),
                take_until("*/"),
            )(i)
            {
                Ok((rest, _)) => i = &rest[2..],
                Err(_) => {
                    return PError::msg(
                        i,
                        2,
                        "unterminated comment: this '/*' has no matching '*/'",
                    )
                    .fail()
                }
            }
        } else {
            return Ok((i, ()));
        }
    }
}

/// Like [`ws`], but an unterminated comment just swallows the rest of the text.
pub fn ws_lenient(i: &str) -> &str {
    ws(i).map_or("", |(rest, ())| rest)
}

pub fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `[_a-zA-Z][_a-zA-Z0-9]*`
pub fn ident(i: &str) -> Option<(&str, &str)> {
    if !i.starts_with(is_ident_start) {
        return None;
    }
    let r: PResult<'_, &str> = take_while1(is_ident_char)(i);
    r.ok().map(|(rest, name)| (name, rest))
}

/// Every punctuator, longest first so the first prefix match is the maximal munch.
const PUNCTS: [&str; 45] = [
    "<<=", ">>=", "->", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "==", "!=",
    "<=", ">=", "<<", ">>", "&&", "||", "+", "-", "*", "/", "%", "&", "|", "^", "!", "~", "<", ">",
    "=", "?", ":", ";", ",", ".", "(", ")", "[", "]", "{", "}",
];

/// The punctuator at the start of `i`, if any.
pub fn punct(i: &str) -> Option<(&'static str, &str)> {
    PUNCTS
        .iter()
        .find(|p| i.starts_with(**p))
        .map(|p| (*p, &i[p.len()..]))
}

/// A `/` that ends a predicate: followed (after whitespace) by `{` or `/`, as bpftrace's lexer decides.
pub fn is_end_predicate(i: &str) -> bool {
    i.starts_with('/') && i[1..].trim_start().starts_with(['{', '/'])
}

/// An integer literal: decimal with `_` separators, `0x` hex, `0` octal, `1e6`
/// scientific, with an optional C size suffix (`u`, `l`, `ul`, `ll`, `ull`).
pub fn integer(i: &str) -> PResult<'_, u64> {
    let (rest, word) = take_while1(is_ident_char)(i)?;
    let bad = |why: String| {
        PError::msg(
            i,
            word.len(),
            format!("invalid integer literal '{word}': {why}"),
        )
    };
    let too_big = || {
        PError::msg(
            i,
            word.len(),
            format!(
                "integer literal '{word}' is too large (the maximum is {})",
                u64::MAX
            ),
        )
    };
    if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        if hex.is_empty() {
            return bad("no digits after '0x'".into()).fail();
        }
        if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return bad(format!("'{c}' is not a hexadecimal digit")).fail();
        }
        return match u64::from_str_radix(hex, 16) {
            Ok(v) => Ok((rest, v)),
            Err(_) => too_big().fail(),
        };
    }
    let digits_end = word
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(word.len());
    let (digits, tail) = word.split_at(digits_end);
    if digits.ends_with('_') {
        return bad("'_' must separate digits".into()).fail();
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let lower = tail.to_ascii_lowercase();
    let (mantissa_ok, exponent) = match lower.strip_prefix('e') {
        Some(exp) if !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit()) => {
            (true, Some(exp.to_string()))
        }
        _ => (false, None),
    };
    if exponent.is_none()
        && !matches!(
            lower.as_str(),
            "" | "u" | "l" | "ul" | "ll" | "ull" | "lu" | "llu"
        )
    {
        return bad(format!("unexpected '{tail}' after the digits")).fail();
    }
    let value = if clean.len() > 1 && clean.starts_with('0') && exponent.is_none() {
        if let Some(c) = clean.chars().find(|c| !('0'..='7').contains(c)) {
            return bad(format!(
                "'{c}' is not an octal digit (a leading 0 means octal)"
            ))
            .fail();
        }
        u64::from_str_radix(&clean, 8).map_err(|_| nom::Err::Failure(too_big()))?
    } else {
        clean
            .parse::<u64>()
            .map_err(|_| nom::Err::Failure(too_big()))?
    };
    if mantissa_ok {
        let exp: u32 = exponent.unwrap_or_default().parse().unwrap_or(u32::MAX);
        if !(1..=9).contains(&value) {
            return bad("the coefficient of a scientific literal must be 1-9".into()).fail();
        }
        return match 10u64.checked_pow(exp).and_then(|p| p.checked_mul(value)) {
            Some(v) => Ok((rest, v)),
            None => too_big().fail(),
        };
    }
    Ok((rest, value))
}

/// A string literal at `i` (which starts with `"`), escapes decoded.
pub fn string(i: &str) -> PResult<'_, String> {
    let mut out = String::new();
    let mut rest = &i[1..];
    loop {
        let (r, chunk) = take_while(|c| c != '"' && c != '\\' && c != '\n')(rest)?;
        out.push_str(chunk);
        rest = r;
        let Some(c) = rest.chars().next() else {
            let len = i.find('\n').unwrap_or(i.len());
            return PError::msg(i, len, "unterminated string literal: missing closing '\"'").fail();
        };
        match c {
            '"' => return Ok((&rest[1..], out)),
            '\n' => {
                return PError::msg(
                    i,
                    i.len() - rest.len(),
                    "unterminated string literal: missing closing '\"' before the end of the line",
                )
                .fail()
            }
            _ => {
                let (r, ch) = escape(rest)?;
                out.push(ch);
                rest = r;
            }
        }
    }
}

/// One escape sequence at `i` (which starts with `\`).
fn escape(i: &str) -> PResult<'_, char> {
    let body = &i[1..];
    let simple = match body.chars().next() {
        Some('n') => Some('\n'),
        Some('t') => Some('\t'),
        Some('r') => Some('\r'),
        Some('"') => Some('"'),
        Some('\\') => Some('\\'),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((&body[1..], c));
    }
    let (digits, radix, skip) = if body.starts_with(['x', 'X']) {
        let n = body[1..]
            .chars()
            .take(2)
            .take_while(char::is_ascii_hexdigit)
            .count();
        (&body[1..1 + n], 16, 1)
    } else {
        let n = body
            .chars()
            .take(3)
            .take_while(|c| ('0'..='7').contains(c))
            .count();
        (&body[..n], 8, 0)
    };
    let len = 1 + skip + digits.len();
    if digits.is_empty() {
        let shown: String = i.chars().take(2).collect();
        let what = if radix == 16 {
            "'\\x' needs one or two hexadecimal digits".to_string()
        } else {
            format!("invalid escape sequence '{shown}'")
        };
        let len = shown.len().max(1);
        return PError::msg(i, len, what)
            .note("valid escapes: \\n \\t \\r \\\" \\\\ \\NNN (octal) \\xNN (hex)")
            .fail();
    }
    let value = u32::from_str_radix(digits, radix).unwrap_or(u32::MAX);
    if value > 0xff {
        return PError::msg(
            i,
            len,
            format!("octal escape sequence out of range '{}'", &i[..len]),
        )
        .fail();
    }
    if value > 0x7f {
        return PError::msg(
            i,
            len,
            format!(
                "escape '{}' is not supported: string literals must be valid UTF-8 (at most \\x7f)",
                &i[..len]
            ),
        )
        .fail();
    }
    Ok((&i[len..], char::from(value as u8)))
}

/// Words for the token at `i` (after whitespace) for "unexpected X": the text to
/// show, how many bytes of whitespace precede it, and its length.
pub fn describe(i: &str) -> (String, usize, usize) {
    let t = ws_lenient(i);
    let skip = i.len() - t.len();
    let Some(c) = t.chars().next() else {
        return ("end of file".into(), skip, 0);
    };
    let (what, len) = if let Some((name, rest)) = ident(t) {
        let kind = if super::KEYWORDS.contains(&name) {
            "keyword"
        } else {
            "identifier"
        };
        (format!("{kind} '{name}'"), t.len() - rest.len())
    } else if c.is_ascii_digit() {
        let n = t.find(|c: char| !is_ident_char(c)).unwrap_or(t.len());
        (format!("integer '{}'", &t[..n]), n)
    } else if c == '"' {
        let n = t[1..]
            .find(['"', '\n'])
            .map_or(t.len(), |n| n + 2)
            .min(t.len());
        ("string literal".into(), n)
    } else if c == '$' || c == '@' {
        let n = 1 + ident(&t[1..]).map_or(0, |(name, _)| name.len());
        let kind = if c == '$' { "variable" } else { "map" };
        (format!("{kind} '{}'", &t[..n]), n)
    } else if let Some((p, _)) = punct(t) {
        (format!("'{p}'"), p.len())
    } else {
        (format!("character '{}'", c.escape_debug()), c.len_utf8())
    };
    (what, skip, len)
}

/// Skip one token leniently (for error recovery), returning the punctuator if it was one.
pub fn skip_token(i: &str) -> (Option<&'static str>, &str) {
    let t = ws_lenient(i);
    let Some(c) = t.chars().next() else {
        return (None, t);
    };
    if c == '"' {
        let end = t[1..]
            .find(['"', '\n'])
            .map_or(t.len(), |n| n + 2)
            .min(t.len());
        return (None, &t[end..]);
    }
    if is_ident_char(c) {
        let n = t.find(|c: char| !is_ident_char(c)).unwrap_or(t.len());
        return (None, &t[n..]);
    }
    match punct(t) {
        Some((p, rest)) => (Some(p), rest),
        None => (None, &t[c.len_utf8()..]),
    }
}
