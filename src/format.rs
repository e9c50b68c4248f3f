//! printf format strings, parsed once: semantic analysis checks arguments against the
//! conversions, output renders with the same pieces (one printf engine for text and JSON).

/// One `%...` conversion: `%-14s` is `{ left: true, width: Some(14), conv: 's' }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvSpec {
    /// `-` flag: pad on the right
    pub left: bool,
    /// `0` flag: pad numbers with zeros
    pub zero: bool,
    /// `+` flag
    pub plus: bool,
    /// ` ` flag
    pub space: bool,
    /// `#` flag
    pub alt: bool,
    pub width: Option<usize>,
    pub precision: Option<usize>,
    /// Length modifier as written (`""`, `"l"`, `"ll"`, `"h"`, `"hh"`, `"z"`, `"j"`, `"t"`).
    pub length: String,
    /// Conversion character: one of `d i u x X o c s p`.
    pub conv: char,
}

/// What kind of argument a conversion takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgClass {
    Integer,
    String,
}

impl ConvSpec {
    pub fn arg_class(&self) -> ArgClass {
        match self.conv {
            's' => ArgClass::String,
            _ => ArgClass::Integer,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
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

impl PrintfFormat {
    pub fn parse(fmt: &str) -> Result<PrintfFormat, FormatError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = fmt.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            if chars.peek().map(|&(_, c)| c) == Some('%') {
                chars.next();
                lit.push('%');
                continue;
            }
            let mut spec = ConvSpec::default();
            while let Some(&(_, f)) = chars.peek() {
                match f {
                    '-' => spec.left = true,
                    '0' => spec.zero = true,
                    '+' => spec.plus = true,
                    ' ' => spec.space = true,
                    '#' => spec.alt = true,
                    _ => break,
                }
                chars.next();
            }
            spec.width = take_number(&mut chars);
            if chars.peek().map(|&(_, c)| c) == Some('.') {
                chars.next();
                spec.precision = Some(take_number(&mut chars).unwrap_or(0));
            }
            while let Some(&(_, l)) = chars.peek() {
                if !matches!(l, 'h' | 'l' | 'z' | 'j' | 't') {
                    break;
                }
                spec.length.push(l);
                chars.next();
            }
            match chars.next() {
                Some((_, conv @ ('d' | 'i' | 'u' | 'x' | 'X' | 'o' | 'c' | 's' | 'p'))) => {
                    spec.conv = conv;
                }
                Some((_, other)) => {
                    return Err(FormatError {
                        offset: at,
                        message: format!("invalid printf conversion '%{other}'"),
                    })
                }
                None => {
                    return Err(FormatError {
                        offset: at,
                        message: "printf format ends inside a conversion".into(),
                    })
                }
            }
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Conv(spec));
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
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

fn take_number(chars: &mut std::iter::Peekable<std::str::CharIndices>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, d)) = chars.peek() {
        let Some(v) = d.to_digit(10) else { break };
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(v as usize));
        chars.next();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(f.pieces.last(), Some(&Piece::Literal(" %\n".into())));
    }

    #[test]
    fn rejects_unknown_conversion() {
        let e = PrintfFormat::parse("ab %q").unwrap_err();
        assert_eq!(e.offset, 3);
    }
}
