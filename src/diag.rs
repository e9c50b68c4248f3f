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
    /// Printed as `warning:`; tracing goes on (an attach point bpftrace drops, ...).
    pub warning: bool,
    /// An error in bpftrace's own words, printed with its severity word, `ERROR:`, as
    /// its tests and users' scripts match it (`ERROR: tracepoint not found: ...`).
    pub bpftrace_severity: bool,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            notes: Vec::new(),
            warning: false,
            bpftrace_severity: false,
        }
    }
    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            warning: true,
            ..Diagnostic::error(span, message)
        }
    }
    /// Marks an error as bpftrace's own message ([`Diagnostic::bpftrace_severity`]).
    pub fn in_bpftrace_words(mut self, yes: bool) -> Diagnostic {
        self.bpftrace_severity = yes;
        self
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

/// Source lines longer than this many characters are shown as a window around the error.
const MAX_LINE_SHOWN: usize = 120;

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
        let severity = match (d.warning, d.bpftrace_severity) {
            (true, _) => "warning",
            (false, true) => "ERROR",
            (false, false) => "error",
        };
        let _ = writeln!(out, "{file}:{line}:{col}: {severity}: {}", d.message);
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let end = floor_char_boundary(src, (d.span.end as usize).clamp(start, line_end));
        // A very long line (generated or minified scripts) is cut to a window around the
        // error, so one diagnostic stays a few lines of output.
        let line: Vec<char> = src[line_start..line_end].chars().collect();
        let at = col - 1;
        let (from, to) = if line.len() > MAX_LINE_SHOWN {
            let from = at.saturating_sub(MAX_LINE_SHOWN / 2);
            (from, (from + MAX_LINE_SHOWN).min(line.len()))
        } else {
            (0, line.len())
        };
        let (lead, tail) = (
            if from > 0 { "..." } else { "" },
            if to < line.len() { "..." } else { "" },
        );
        let text: String = line[from..to].iter().collect();
        let width = src[start..end].chars().count().clamp(1, (to - at).max(1));
        let pad: String = lead
            .chars()
            .chain(line[from..at].iter().copied())
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        // A blank line (an empty file) has nothing to point at.
        if !text.trim().is_empty() {
            let _ = writeln!(out, "{lead}{text}{tail}");
            let _ = writeln!(out, "{pad}^{}", "~".repeat(width - 1));
        }
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

    #[test]
    fn blank_lines_get_no_caret() {
        let d = Diagnostic::error(Span::new(0, 0), "no probes");
        assert_eq!(render("t.bt", "", &[d]), "t.bt:1:1: error: no probes\n");
    }

    #[test]
    fn long_lines_are_cut_around_the_error() {
        let src = format!("BEGIN {{ {}foo(); }}", "1;".repeat(500));
        let d = Diagnostic::error(Span::new(1008, 1011), "unknown function 'foo'");
        let text = render("t.bt", &src, &[d]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "t.bt:1:1009: error: unknown function 'foo'");
        assert_eq!(lines[1], format!("...{}foo(); }}", "1;".repeat(30)));
        assert_eq!(lines[2], format!("{}^~~", " ".repeat(63)));
    }
}
