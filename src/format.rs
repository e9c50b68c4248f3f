//! printf format strings, parsed once: semantic analysis checks arguments against the
//! conversions, output renders with the same pieces (one printf engine for text and JSON).
//!
//! The split follows bpftrace 0.17 exactly (src/format_string.cpp, src/printf.h): a
//! conversion is what its regex `%-?[0-9]*(\.[0-9]+)?(s|c|[hh|h|l|ll|j|z|t]?[duoxXp])`
//! matches; every other `%` is not one. bpftrace hands the text up to and including each
//! conversion to `snprintf` (so `%%` there prints `%`), but prints the text after the last
//! conversion as it is: `printf("%d%%\n", 5)` prints `5%%` (measured with bpftrace 0.17).
//! Flags `+`, ` `, `#` and `%i` are not conversions to bpftrace 0.17.
//!
//! `%r`, `%rx` and `%rh` take a `buf()` value. bpftrace swaps them for `%s` only when
//! written bare; with a flag, width or precision glibc meets an unknown conversion and
//! prints it as written (`printf("%5r", buf(...))` prints `%5r`, measured).

/// One `%...` conversion: `%-14s` is `{ left: true, width: Some(14), conv: 's' }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvSpec {
    /// `-` flag: pad on the right
    pub left: bool,
    /// `0` flag: pad numbers with zeros
    pub zero: bool,
    /// `+` flag (C semantics; bpftrace 0.17's parser never produces it)
    pub plus: bool,
    /// ` ` flag (C semantics; bpftrace 0.17's parser never produces it)
    pub space: bool,
    /// `#` flag (C semantics; bpftrace 0.17's parser never produces it)
    pub alt: bool,
    pub width: Option<usize>,
    pub precision: Option<usize>,
    /// Length modifier as written (`""`, `"l"`, `"ll"`, `"h"`, `"hh"`, `"z"`, `"j"`, `"t"`).
    pub length: String,
    /// Conversion character: one of `d i u x X o c s p`, or `r` (a buffer).
    pub conv: char,
    /// For `r`: how the buffer's bytes are written.
    pub buffer: BufferStyle,
    /// For `r` with a flag, width or precision: the text printed instead (as written).
    pub verbatim: Option<String>,
}

/// `%r`: printable bytes as they are, others `\xNN`; `%rx`: every byte `\xNN`;
/// `%rh`: every byte as two hex digits, separated by spaces (bpftrace's
/// `hex_format_buffer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BufferStyle {
    #[default]
    Ascii,
    EscapedHex,
    Hex,
}

impl BufferStyle {
    /// `bytes` as bpftrace's `hex_format_buffer` writes them in this style.
    pub fn format(self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() * 4);
        for (i, &b) in bytes.iter().enumerate() {
            match self {
                BufferStyle::Ascii if (32..=126).contains(&b) => out.push(b as char),
                BufferStyle::Ascii | BufferStyle::EscapedHex => {
                    out.push_str(&format!("\\x{b:02x}"))
                }
                BufferStyle::Hex if i + 1 == bytes.len() => out.push_str(&format!("{b:02x}")),
                BufferStyle::Hex => out.push_str(&format!("{b:02x} ")),
            }
        }
        out
    }
}

/// What kind of argument a conversion takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgClass {
    Integer,
    String,
    Buffer,
}

impl ConvSpec {
    pub fn arg_class(&self) -> ArgClass {
        match self.conv {
            's' => ArgClass::String,
            'r' => ArgClass::Buffer,
            _ => ArgClass::Integer,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text printed exactly as stored (already un-escaped where bpftrace un-escapes).
    Literal(String),
    Conv(ConvSpec),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintfFormat {
    pub pieces: Vec<Piece>,
}

/// A malformed format: byte offset of the offending `%` within the format string and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub offset: usize,
    pub message: String,
}

/// The largest width or precision C's printf takes: glibc fails with `EOVERFLOW` past it,
/// and bpftrace 0.17 then aborts after attaching (`FATAL: format() error occurred: Value
/// too large for defined data type`, measured with `printf("%2147483648d", 1)`).
const C_INT_MAX: usize = i32::MAX as usize;

/// Length modifiers bpftrace accepts before `d u o x X p`.
const LENGTHS: [&str; 8] = ["hh", "h", "ll", "l", "j", "z", "t", ""];

impl PrintfFormat {
    pub fn parse(fmt: &str) -> Result<PrintfFormat, FormatError> {
        let mut pieces = Vec::new();
        let mut rest = 0;
        let mut search = 0;
        while let Some(found) = fmt[search..].find('%') {
            let at = search + found;
            let Some((spec, end)) = match_conversion(fmt, at)? else {
                search = at + 1;
                continue;
            };
            let text = unescape_before_conversion(&fmt[rest..at], rest)?;
            if !text.is_empty() {
                pieces.push(Piece::Literal(text));
            }
            pieces.push(Piece::Conv(spec));
            rest = end;
            search = end;
        }
        if rest < fmt.len() {
            pieces.push(Piece::Literal(fmt[rest..].to_string()));
        }
        Ok(PrintfFormat { pieces })
    }

    pub fn conversions(&self) -> impl Iterator<Item = &ConvSpec> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Conv(c) => Some(c),
            Piece::Literal(_) => None,
        })
    }
}

/// bpftrace's conversion regex at `at` (which holds a `%`): the spec and the end offset.
fn match_conversion(fmt: &str, at: usize) -> Result<Option<(ConvSpec, usize)>, FormatError> {
    let found = match_spec(fmt, at)?;
    if let Some((spec, end)) = &found {
        for (what, value) in [("width", spec.width), ("precision", spec.precision)] {
            if value.is_some_and(|v| v > C_INT_MAX) {
                return Err(FormatError {
                    offset: at,
                    message: format!(
                        "the {what} of '{}' is larger than C's printf allows ({C_INT_MAX})",
                        &fmt[at..*end]
                    ),
                });
            }
        }
    }
    Ok(found)
}

fn match_spec(fmt: &str, at: usize) -> Result<Option<(ConvSpec, usize)>, FormatError> {
    let b = fmt.as_bytes();
    let mut i = at + 1;
    let mut spec = ConvSpec::default();
    if b.get(i) == Some(&b'-') {
        spec.left = true;
        i += 1;
    }
    // Leading zeros of the width are C's `0` flag.
    while b.get(i) == Some(&b'0') {
        spec.zero = true;
        i += 1;
    }
    (spec.width, i) = take_number(b, i);
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        let (precision, next) = take_number(b, i + 1);
        spec.precision = precision;
        i = next;
    }
    let tail = &b[i..];
    if let Some(rest) = tail.strip_prefix(b"r") {
        let (style, len) = match rest.first() {
            Some(b'x') => (BufferStyle::EscapedHex, 2),
            Some(b'h') => (BufferStyle::Hex, 2),
            _ => (BufferStyle::Ascii, 1),
        };
        spec.conv = 'r';
        spec.buffer = style;
        let end = i + len;
        if end - at > len + 1 {
            spec.verbatim = Some(fmt[at..end].to_string());
        }
        return Ok(Some((spec, end)));
    }
    if let Some(&conv @ (b's' | b'c')) = tail.first() {
        spec.conv = conv as char;
        return Ok(Some((spec, i + 1)));
    }
    for length in LENGTHS {
        let Some(&conv) = tail.get(length.len()) else {
            continue;
        };
        if tail.starts_with(length.as_bytes()) && b"duoxXp".contains(&conv) {
            spec.length = length.to_string();
            spec.conv = conv as char;
            return Ok(Some((spec, i + length.len() + 1)));
        }
    }
    Ok(None)
}

/// The text before a conversion goes through C's printf in bpftrace: `%%` prints `%`, and
/// any other `%` would read a missing argument, so it is an error here.
fn unescape_before_conversion(text: &str, base: usize) -> Result<String, FormatError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '%')) => out.push('%'),
            Some((_, other)) => {
                return Err(FormatError {
                    offset: base + at,
                    message: format!("invalid printf conversion '%{other}'"),
                })
            }
            None => {
                return Err(FormatError {
                    offset: base + at,
                    message: "'%' right before a conversion makes it literal text".into(),
                })
            }
        }
    }
    Ok(out)
}

fn take_number(b: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let mut n: Option<usize> = None;
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        let v = (d - b'0') as usize;
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(v));
        i += 1;
    }
    (n, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convs(fmt: &str) -> Vec<ConvSpec> {
        PrintfFormat::parse(fmt)
            .unwrap()
            .conversions()
            .cloned()
            .collect()
    }

    #[test]
    fn parses_tcpaccept_formats() {
        let f = PrintfFormat::parse("%-6d %-14s %%\n").unwrap();
        let convs: Vec<_> = f.conversions().collect();
        assert_eq!(convs.len(), 2);
        assert_eq!(
            (convs[0].left, convs[0].width, convs[0].conv),
            (true, Some(6), 'd')
        );
        assert_eq!(convs[1].arg_class(), ArgClass::String);
        // bpftrace 0.17 prints the text after the last conversion unprocessed:
        // `bpftrace -e 'BEGIN { printf("%d %%\n", 1); exit(); }'` prints `1 %%`.
        assert_eq!(f.pieces.last(), Some(&Piece::Literal(" %%\n".into())));
    }

    #[test]
    fn percent_before_a_conversion_is_unescaped() {
        let f = PrintfFormat::parse("%%|%o\n").unwrap();
        assert_eq!(f.pieces[0], Piece::Literal("%|".into()));
    }

    #[test]
    fn flags_width_precision_length() {
        let c = &convs("%-05.3lld")[0];
        assert!(c.left && c.zero);
        assert_eq!(
            (c.width, c.precision, c.length.as_str(), c.conv),
            (Some(5), Some(3), "ll", 'd')
        );
        let c = &convs("%0d")[0];
        assert!(c.zero);
        assert_eq!(c.width, None);
        assert_eq!(convs("%hhx%hu%jd%zu%tX%lp%c").len(), 7);
    }

    #[test]
    fn non_conversions_after_the_last_conversion_stay_literal() {
        // `bpftrace -e 'BEGIN { printf("%5%|x\n"); exit(); }'` prints `%5%|x`.
        let f = PrintfFormat::parse("%5%|x\n").unwrap();
        assert_eq!(f.pieces, vec![Piece::Literal("%5%|x\n".into())]);
        // `%i` and `%+d` are not conversions to bpftrace 0.17 ("Too many arguments").
        assert_eq!(convs("%i %+d % d %#x").len(), 0);
    }

    #[test]
    fn rejects_stray_percent_before_a_conversion() {
        let e = PrintfFormat::parse("ab %q %d").unwrap_err();
        assert_eq!(e.offset, 3);
        let e = PrintfFormat::parse("%%%%%d").unwrap();
        assert_eq!(e.pieces[0], Piece::Literal("%%".into()));
        assert!(PrintfFormat::parse("x%%d").is_err());
    }

    #[test]
    fn buffer_conversions() {
        let c = convs("%r%rx%rh%-5rx");
        let styles: Vec<_> = c.iter().map(|c| (c.conv, c.buffer)).collect();
        use BufferStyle::*;
        assert_eq!(
            styles,
            [
                ('r', Ascii),
                ('r', EscapedHex),
                ('r', Hex),
                ('r', EscapedHex)
            ]
        );
        assert_eq!(c[0].verbatim, None);
        assert_eq!(c[3].verbatim.as_deref(), Some("%-5rx"));
        assert_eq!(Ascii.format(b"a\x01~\xff "), "a\\x01~\\xff ");
        assert_eq!(EscapedHex.format(b"ab"), "\\x61\\x62");
        assert_eq!(Hex.format(b"ab\x01"), "61 62 01");
    }

    #[test]
    fn rejects_widths_and_precisions_c_cannot_print() {
        assert_eq!(convs("%2147483647d")[0].width, Some(2147483647));
        assert_eq!(convs("%.2147483647s")[0].precision, Some(2147483647));
        let e = PrintfFormat::parse("ab %99999999999999999999d").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(
            e.message.contains("width of '%99999999999999999999d'"),
            "{}",
            e.message
        );
        let e = PrintfFormat::parse("%-.2147483648lx").unwrap_err();
        assert!(e.message.contains("precision"), "{}", e.message);
        // Not a conversion, so literal text (as in bpftrace).
        assert!(PrintfFormat::parse("%99999999999999999999%").is_ok());
    }
}
