//! The printf engine: renders a [`PrintfFormat`] with decoded arguments exactly as
//! bpftrace 0.17 does, which hands each piece to glibc's `snprintf` with the value widened
//! to 64 bits (`int64_t` for signed sources, `uint64_t` otherwise). C's varargs then
//! decide what is printed: `%d` reads the low 32 bits as `int`, `%hhx` one byte, `%lu` all
//! 64 bits, so `(uint32)-1` under `%d` prints `-1` and `(int8)-1` under `%lu` prints
//! `18446744073709551615`.

use crate::format::{ConvSpec, Piece, PrintfFormat};

/// One decoded printf argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// The value widened to 64 bits as bpftrace widens it (sign- or zero-extended).
    Int(u64),
    /// String bytes, already cut at the first NUL.
    Str(&'a [u8]),
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

/// Renders `format` with `args` (one per conversion, in order; sema guarantees the classes
/// match, a mismatch renders the conversion empty rather than panicking).
pub fn render(format: &PrintfFormat, args: &[Arg]) -> Vec<u8> {
    let mut out = Vec::new();
    // bpftrace prints each snprintf result up to its first NUL (only `%c` of 0 makes one).
    let mut part = Vec::new();
    let mut args = args.iter();
    for piece in &format.pieces {
        match piece {
            Piece::Literal(text) => part.extend_from_slice(text.as_bytes()),
            Piece::Conv(spec) => {
                if let Some(arg) = args.next() {
                    convert(spec, arg, &mut part);
                }
                let end = part.iter().position(|&b| b == 0).unwrap_or(part.len());
                out.extend_from_slice(&part[..end]);
                part.clear();
            }
        }
    }
    out.extend_from_slice(&part);
    out
}

/// Appends one conversion of `arg` under `spec`, as glibc's printf would.
pub fn convert(spec: &ConvSpec, arg: &Arg, out: &mut Vec<u8>) {
    match (spec.conv, arg) {
        ('s', Arg::Str(s)) => {
            let s = match spec.precision {
                Some(p) if p < s.len() => &s[..p],
                _ => s,
            };
            pad(spec, b"", s, false, out);
        }
        ('c', Arg::Int(v)) => pad(spec, b"", &[*v as u8], false, out),
        ('p', Arg::Int(0)) => pad(spec, b"", b"(nil)", false, out),
        ('p', Arg::Int(v)) => {
            let digits = with_precision(format!("{v:x}"), spec.precision);
            pad(
                spec,
                b"0x",
                digits.as_bytes(),
                spec.precision.is_none(),
                out,
            );
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
            let digits = with_precision(v.unsigned_abs().to_string(), spec.precision);
            pad(spec, sign, digits.as_bytes(), spec.precision.is_none(), out);
        }
        ('u' | 'o' | 'x' | 'X', Arg::Int(v)) => {
            let v = unsigned_arg(*v, &spec.length);
            let mut digits = match spec.conv {
                'u' => v.to_string(),
                'o' => format!("{v:o}"),
                'x' => format!("{v:x}"),
                _ => format!("{v:X}"),
            };
            digits = with_precision(digits, spec.precision);
            let prefix: &[u8] = match spec.conv {
                'x' if spec.alt && v != 0 => b"0x",
                'X' if spec.alt && v != 0 => b"0X",
                _ => b"",
            };
            if spec.conv == 'o' && spec.alt && !digits.starts_with('0') {
                digits.insert(0, '0');
            }
            pad(
                spec,
                prefix,
                digits.as_bytes(),
                spec.precision.is_none(),
                out,
            );
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

/// C's precision for integers: at least `p` digits, and `.0` prints 0 as nothing.
fn with_precision(digits: String, precision: Option<usize>) -> String {
    match precision {
        Some(0) if digits == "0" => String::new(),
        Some(p) if p > digits.len() => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    }
}

/// Pads `prefix` + `body` to the width: spaces on the right for `-`, zeros between prefix
/// and body for `0` (when `zero_ok`), else spaces on the left.
fn pad(spec: &ConvSpec, prefix: &[u8], body: &[u8], zero_ok: bool, out: &mut Vec<u8>) {
    let len = prefix.len() + body.len();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.left {
        out.extend_from_slice(prefix);
        out.extend_from_slice(body);
        out.resize(out.len() + fill, b' ');
    } else if spec.zero && zero_ok {
        out.extend_from_slice(prefix);
        out.resize(out.len() + fill, b'0');
        out.extend_from_slice(body);
    } else {
        out.resize(out.len() + fill, b' ');
        out.extend_from_slice(prefix);
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
#[path = "printf_tests.rs"]
mod tests;
