//! `-k`/`-kk`'s report of a failed helper call, as bpftrace 0.17 prints it
//! (`TextOutput::helper_error` through `LOG(WARNING, loc, out)`, `JsonOutput::helper_error`):
//!
//! ```text
//! stdin:1:22-34: WARNING: Failed to map_delete_elem: No such file or directory (-2)
//! i:ms:100 { @[1] = 1; delete(@[2]); exit(); }
//!                      ~~~~~~~~~~~~
//! ```
//!
//! Lines and columns count bytes (bison's) as bpftrace's lexer counts them, the end
//! column one past the span; a span over several lines prints only
//! `FILE:L1-L2: WARNING: ...`.

use crate::diag::Span;

/// The script a program was compiled from, for locating its helper errors.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// `stdin` for `-e` and `-`, else the path as given.
    pub name: String,
    pub text: String,
}

/// bpftrace's `location`: 1-based line and column of the span's first byte and of the
/// byte after it, with its lexer's drift (see [`recounted`]).
fn location(src: &str, span: Span) -> ((usize, usize), (usize, usize)) {
    let drift = recounted(src);
    let at = |offset: u32| {
        let offset = (offset as usize).min(src.len());
        let before = &src.as_bytes()[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let extra = drift
            .iter()
            .filter(|&&p| p >= line_start && p <= offset)
            .count();
        (line, offset - line_start + 1 + extra)
    };
    (at(span.start), at(span.end))
}

/// Offsets whose byte bpftrace 0.17's lexer counts twice: in a cast's type name
/// (`(struct foo *)`, `sizeof(union u)`) the `*` or `)` ending it is counted, put
/// back and lexed again (lexer.l's `unput`), so every later column of that line is
/// one more per such cast.
fn recounted(src: &str) -> Vec<usize> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !bytes[i..].starts_with(b"*/") {
                    i += 1;
                }
                i += 2;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if matches!(&src[start..i], "struct" | "union" | "enum") {
                    i = type_name_end(bytes, i, &mut out);
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// lexer.l's STRUCT state from `i`: a cast's name ends at `*` or `)` (recounted), a
/// definition's body at its closing brace. Returns where lexing goes on.
fn type_name_end(bytes: &[u8], mut i: usize, out: &mut Vec<usize>) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'*' | b')' if depth == 0 => {
                out.push(i);
                return i;
            }
            b'{' => depth += 1,
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The text form, with its newlines.
pub fn text(script: &Script, span: Span, helper: &str, retcode: i32) -> String {
    let message = if retcode < 0 {
        format!(
            "Failed to {helper}: {} ({retcode})",
            super::strerror(-retcode)
        )
    } else {
        format!("Failed to {helper}: {retcode}")
    };
    let ((line, col), (end_line, end_col)) = location(&script.text, span);
    if line < end_line {
        return format!("{}:{line}-{end_line}: WARNING: {message}\n", script.name);
    }
    let mut out = format!(
        "{}:{line}:{col}-{end_col}: WARNING: {message}\n",
        script.name
    );
    let source = script.text.split('\n').nth(line - 1).unwrap_or("");
    if source.is_empty() {
        return out;
    }
    out.push_str(&source.replace('\t', "    "));
    out.push('\n');
    for (x, c) in source.bytes().enumerate().take(end_col.saturating_sub(1)) {
        let marker = if x < col - 1 { ' ' } else { '~' };
        let width = if c == b'\t' { 4 } else { 1 };
        out.extend(std::iter::repeat_n(marker, width));
    }
    out.push('\n');
    out
}

/// The `-f json` form, with its newline: only the first line and column.
pub fn json(script: &Script, span: Span, helper: &str, retcode: i32) -> String {
    let ((line, col), _) = location(&script.text, span);
    format!(
        "{{\"type\": \"helper_error\", \"helper\": \"{helper}\", \"retcode\": {retcode}, \"line\": {line}, \"col\": {col}}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(text: &str) -> Script {
        Script {
            name: "stdin".into(),
            text: text.into(),
        }
    }

    #[test]
    fn text_as_bpftrace_prints_it() {
        // bpftrace -k -e 'i:ms:100 { @[1] = 1; delete(@[2]); exit(); }' printed this.
        let s = script("i:ms:100 { @[1] = 1; delete(@[2]); exit(); }");
        assert_eq!(
            text(&s, Span::new(21, 33), "map_delete_elem", -2),
            "stdin:1:22-34: WARNING: Failed to map_delete_elem: No such file or directory (-2)\n\
             i:ms:100 { @[1] = 1; delete(@[2]); exit(); }\n                     ~~~~~~~~~~~~\n"
        );
        // bpftrace -kk -e 'i:ms:100 { @[1] = 1; printf("%d\n", @[2]); exit(); }'
        let s = script("i:ms:100 { @[1] = 1; printf(\"%d\\n\", @[2]); exit(); }");
        assert!(text(&s, Span::new(36, 40), "map_lookup_elem", 0)
            .starts_with("stdin:1:37-41: WARNING: Failed to map_lookup_elem: 0\n"));
    }

    #[test]
    fn casts_shift_later_columns() {
        // bpftrace -kk -e 'BEGIN { $t = ((struct task_struct *)0)->pid; @x[1] = 1;
        // $y = @x[1]; $z = @x[2]; ... }' located the read at 1:14-45 and `@x[2]` at 1:75.
        let s = script("BEGIN { $t = ((struct task_struct *)0)->pid; @x[1] = 1; $y = @x[1]; $z = @x[2]; exit(); }");
        assert_eq!(location(&s.text, Span::new(13, 43)), ((1, 14), (1, 45)));
        assert_eq!(location(&s.text, Span::new(73, 78)).0, (1, 75));
        // A definition's body is not a cast: `struct foo {int a;};` shifts nothing.
        assert!(recounted("struct foo {int a;}; BEGIN { }").is_empty());
    }

    #[test]
    fn json_line() {
        // bpftrace -kk -q -f json -e 'struct foo {int a;}; BEGIN { $tmp = ((struct foo*) 0)->a; exit(); }'
        let s = script("struct foo {int a;}; BEGIN { $tmp = ((struct foo*) 0)->a; exit(); }");
        assert_eq!(
            json(&s, Span::new(36, 56), "probe_read", -14),
            "{\"type\": \"helper_error\", \"helper\": \"probe_read\", \"retcode\": -14, \"line\": 1, \"col\": 37}\n"
        );
    }
}
