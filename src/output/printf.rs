//! The printf engine: renders a [`PrintfFormat`] with decoded arguments exactly as
//! bpftrace 0.17 does, which hands each piece to glibc's `snprintf` with the value widened
//! to 64 bits (`int64_t` for signed sources, `uint64_t` otherwise). C's varargs then
//! decide what is printed: `%d` reads the low 32 bits as `int`, `%hhx` one byte, `%lu` all
//! 64 bits, so `(uint32)-1` under `%d` prints `-1` and `(int8)-1` under `%lu` prints
//! `18446744073709551615`.

use std::io::{self, Write};

use crate::format::{ConvSpec, Piece, PrintfFormat};

/// One decoded printf argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// The value widened to 64 bits as bpftrace widens it (sign- or zero-extended).
    Int(u64),
    /// String bytes, already cut at the first NUL.
    Str(&'a [u8]),
    /// A `buf()` value's bytes (its length, NULs included).
    Buf(&'a [u8]),
}

impl Arg<'_> {
    /// Widens a little-endian integer of 1, 2, 4 or 8 bytes like bpftrace's `get_arg_values`.
    pub fn int(bytes: &[u8], signed: bool) -> Arg<'static> {
        let mut raw = [0u8; 8];
        raw[..bytes.len()].copy_from_slice(bytes);
        let value = u64::from_le_bytes(raw);
        let bits = bytes.len() * 8;
        let widened = if signed && bits < 64 {
            let shift = 64 - bits;
            (((value << shift) as i64) >> shift) as u64
        } else {
            value
        };
        Arg::Int(widened)
    }
}

/// A rendered message. Padding is kept as a count rather than as bytes, so a width or
/// precision of up to `INT_MAX` (what C's printf accepts) costs no memory: bpftrace
/// 0.17 prints `%1000000000d` as a billion bytes, and so does rbt, in chunks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Bytes(Vec<u8>),
    /// `count` copies of the byte (a space or `0`, never a newline or NUL).
    Fill(u8, usize),
}

/// How many fill bytes are written at a time.
const FILL_CHUNK: usize = 8192;

impl Rendered {
    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.segments.last_mut() {
            Some(Segment::Bytes(last)) => last.extend_from_slice(bytes),
            _ => self.segments.push(Segment::Bytes(bytes.to_vec())),
        }
    }

    pub fn fill(&mut self, byte: u8, count: usize) {
        if count > 0 {
            self.segments.push(Segment::Fill(byte, count));
        }
    }

    pub fn append(&mut self, other: Rendered) {
        for segment in other.segments {
            match segment {
                Segment::Bytes(b) => self.push(&b),
                Segment::Fill(byte, count) => self.fill(byte, count),
            }
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.segments.iter().fold(0usize, |n, s| {
            n.saturating_add(match s {
                Segment::Bytes(b) => b.len(),
                Segment::Fill(_, count) => *count,
            })
        })
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The bytes, all in memory (for tests and small messages).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Bytes(b) => out.extend_from_slice(b),
                Segment::Fill(byte, count) => out.resize(out.len() + count, *byte),
            }
        }
        out
    }

    /// Drops everything from the first NUL on.
    fn truncate_at_nul(&mut self) {
        for (i, segment) in self.segments.iter_mut().enumerate() {
            if let Segment::Bytes(b) = segment {
                if let Some(nul) = b.iter().position(|&c| c == 0) {
                    b.truncate(nul);
                    self.segments.truncate(i + 1);
                    return;
                }
            }
        }
    }

    /// The offset just past the last newline, if there is one.
    pub fn after_last_newline(&self) -> Option<usize> {
        let mut at = 0usize;
        let mut found = None;
        for segment in &self.segments {
            match segment {
                Segment::Bytes(b) => {
                    if let Some(nl) = b.iter().rposition(|&c| c == b'\n') {
                        found = Some(at + nl + 1);
                    }
                    at = at.saturating_add(b.len());
                }
                Segment::Fill(_, count) => at = at.saturating_add(*count),
            }
        }
        found
    }

    /// Writes bytes `start..end` of the message.
    pub fn write_range(&self, w: &mut dyn Write, start: usize, end: usize) -> io::Result<()> {
        let mut at = 0usize;
        for segment in &self.segments {
            let len = match segment {
                Segment::Bytes(b) => b.len(),
                Segment::Fill(_, count) => *count,
            };
            let (from, to) = (start.max(at), end.min(at.saturating_add(len)));
            if from < to {
                let (from, to) = (from - at, to - at);
                match segment {
                    Segment::Bytes(b) => w.write_all(&b[from..to])?,
                    Segment::Fill(byte, _) => write_fill(w, *byte, to - from)?,
                }
            }
            at = at.saturating_add(len);
        }
        Ok(())
    }

    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        self.write_range(w, 0, usize::MAX)
    }

    /// The message with every byte passed through `escape` (fill bytes are a space or
    /// `0`, which no escaping changes).
    pub fn map_bytes(&self, escape: impl Fn(&[u8], &mut Vec<u8>)) -> Rendered {
        let mut out = Rendered::default();
        for segment in &self.segments {
            match segment {
                Segment::Bytes(b) => {
                    let mut escaped = Vec::with_capacity(b.len());
                    escape(b, &mut escaped);
                    out.push(&escaped);
                }
                Segment::Fill(byte, count) => out.fill(*byte, *count),
            }
        }
        out
    }
}

impl From<&[u8]> for Rendered {
    fn from(bytes: &[u8]) -> Rendered {
        let mut out = Rendered::default();
        out.push(bytes);
        out
    }
}

fn write_fill(w: &mut dyn Write, byte: u8, mut count: usize) -> io::Result<()> {
    let chunk = [byte; FILL_CHUNK];
    while count > 0 {
        let n = count.min(FILL_CHUNK);
        w.write_all(&chunk[..n])?;
        count -= n;
    }
    Ok(())
}

/// Renders `format` with `args` (one per conversion, in order; sema guarantees the classes
/// match, a mismatch renders the conversion empty rather than panicking).
pub fn render(format: &PrintfFormat, args: &[Arg]) -> Rendered {
    let mut out = Rendered::default();
    // bpftrace prints each snprintf result up to its first NUL (only `%c` of 0 makes one).
    let mut part = Rendered::default();
    let mut args = args.iter();
    for piece in &format.pieces {
        match piece {
            Piece::Literal(text) => part.push(text.as_bytes()),
            Piece::Conv(spec) => {
                if let Some(arg) = args.next() {
                    convert(spec, arg, &mut part);
                }
                part.truncate_at_nul();
                out.append(std::mem::take(&mut part));
            }
        }
    }
    out.append(part);
    out
}

/// Appends one conversion of `arg` under `spec`, as glibc's printf would.
pub fn convert(spec: &ConvSpec, arg: &Arg, out: &mut Rendered) {
    match (spec.conv, arg) {
        ('s', Arg::Str(s)) => {
            let s = match spec.precision {
                Some(p) if p < s.len() => &s[..p],
                _ => s,
            };
            pad(spec, b"", 0, s, false, out);
        }
        ('r', arg) => match (&spec.verbatim, arg) {
            (Some(text), _) => out.push(text.as_bytes()),
            (None, Arg::Buf(bytes)) => out.push(spec.buffer.format(bytes).as_bytes()),
            (None, _) => {}
        },
        ('c', Arg::Int(v)) => pad(spec, b"", 0, &[*v as u8], false, out),
        ('p', Arg::Int(0)) => pad(spec, b"", 0, b"(nil)", false, out),
        ('p', Arg::Int(v)) => {
            let hex = format!("{v:x}");
            let (zeros, digits) = with_precision(&hex, spec.precision);
            let zero_ok = spec.precision.is_none();
            pad(spec, b"0x", zeros, digits.as_bytes(), zero_ok, out);
        }
        ('d' | 'i', Arg::Int(v)) => {
            let v = signed_arg(*v, &spec.length);
            let sign: &[u8] = if v < 0 {
                b"-"
            } else if spec.plus {
                b"+"
            } else if spec.space {
                b" "
            } else {
                b""
            };
            let abs = v.unsigned_abs().to_string();
            let (zeros, digits) = with_precision(&abs, spec.precision);
            let zero_ok = spec.precision.is_none();
            pad(spec, sign, zeros, digits.as_bytes(), zero_ok, out);
        }
        ('u' | 'o' | 'x' | 'X', Arg::Int(v)) => {
            let v = unsigned_arg(*v, &spec.length);
            let text = match spec.conv {
                'u' => v.to_string(),
                'o' => format!("{v:o}"),
                'x' => format!("{v:x}"),
                _ => format!("{v:X}"),
            };
            let (zeros, digits) = with_precision(&text, spec.precision);
            let prefix: &[u8] = match spec.conv {
                'x' if spec.alt && v != 0 => b"0x",
                'X' if spec.alt && v != 0 => b"0X",
                'o' if spec.alt && zeros == 0 && !digits.starts_with('0') => b"0",
                _ => b"",
            };
            let zero_ok = spec.precision.is_none();
            pad(spec, prefix, zeros, digits.as_bytes(), zero_ok, out);
        }
        _ => {}
    }
}

/// The `int`/`short`/`char`/`long` C reads for a signed conversion.
fn signed_arg(v: u64, length: &str) -> i64 {
    match length {
        "" => v as u32 as i32 as i64,
        "h" => v as u16 as i16 as i64,
        "hh" => v as u8 as i8 as i64,
        _ => v as i64,
    }
}

/// The `unsigned int`/`short`/`char`/`long` C reads for an unsigned conversion.
fn unsigned_arg(v: u64, length: &str) -> u64 {
    match length {
        "" => v as u32 as u64,
        "h" => v as u16 as u64,
        "hh" => v as u8 as u64,
        _ => v,
    }
}

/// C's precision for integers: at least `p` digits, and `.0` prints 0 as nothing. Returns
/// how many zeros go before the digits, and the digits.
fn with_precision(digits: &str, precision: Option<usize>) -> (usize, &str) {
    match precision {
        Some(0) if digits == "0" => (0, ""),
        Some(p) if p > digits.len() => (p - digits.len(), digits),
        _ => (0, digits),
    }
}

/// Pads `prefix` + `zeros` + `body` to the width: spaces on the right for `-`, zeros
/// between prefix and body for `0` (when `zero_ok`), else spaces on the left.
fn pad(
    spec: &ConvSpec,
    prefix: &[u8],
    zeros: usize,
    body: &[u8],
    zero_ok: bool,
    out: &mut Rendered,
) {
    let len = (prefix.len() + body.len()).saturating_add(zeros);
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.left {
        out.push(prefix);
        out.fill(b'0', zeros);
        out.push(body);
        out.fill(b' ', fill);
    } else if spec.zero && zero_ok {
        out.push(prefix);
        out.fill(b'0', fill.saturating_add(zeros));
        out.push(body);
    } else {
        out.fill(b' ', fill);
        out.push(prefix);
        out.fill(b'0', zeros);
        out.push(body);
    }
}

#[cfg(test)]
#[path = "printf_tests.rs"]
mod tests;
