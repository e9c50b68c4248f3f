//! Diagnostics as data: a message, a primary span, notes. Rendered once, at the edge
//! (`file:line:col: error: message`, the source line, a caret underline).

use std::fmt::Write as _;

/// Byte range `[start, end)` in the original script text (before preprocessing;
/// the preprocessor keeps byte offsets stable so spans always point at the user's file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            notes: Vec::new(),
        }
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Render diagnostics the way a compiler does:
/// ```text
/// file.bt:3:5: error: unknown member 'foo' in struct sock
///     $x = $sk->foo;
///          ~~~~~~~~
/// ```
pub fn render(file: &str, src: &str, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let start = floor_char_boundary(src, (d.span.start as usize).min(src.len()));
        let (line, col) = line_col(src, start);
        let _ = writeln!(out, "{file}:{line}:{col}: error: {}", d.message);
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let text = &src[line_start..line_end];
        let end = floor_char_boundary(src, (d.span.end as usize).clamp(start, line_end));
        let width = src[start..end].chars().count().max(1);
        let pad: String = src[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{text}");
        let _ = writeln!(out, "{pad}^{}", "~".repeat(width - 1));
        for n in &d.notes {
            let _ = writeln!(out, "note: {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_span() {
        let src = "BEGIN {\n  foo();\n}\n";
        let d = Diagnostic::error(Span::new(10, 13), "unknown function 'foo'");
        assert_eq!(
            render("t.bt", src, &[d]),
            "t.bt:2:3: error: unknown function 'foo'\n  foo();\n  ^~~\n"
        );
    }
}
