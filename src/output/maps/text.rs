//! Text output (output.cpp `TextOutput`): `@x[k1, k2]: value` lines, hist tables.

use super::bucket::{hist_index_label, lhist_index_label};
use super::{average, MapDump, MapKind, MapValue, Scalar};

/// One map: its shown entries joined by `"\n"`, then `"\n"`, or `"\n\n"` for avg/stats
/// (`TextOutput::map_stats` ends with two `std::endl`s). Hist entries carry their own
/// line ends, so a hist map ends in a blank line.
///
/// Entries are formatted in the order they are stored, then their texts are copied out
/// in `shown` order: each entry's key lives in its own heap block, and visiting 100k of
/// them in sorted (random) order made formatting wait on a cache miss per entry.
pub(super) fn map(map: &MapDump, shown: &[usize], div: u64, out: &mut String) {
    let mut position = vec![usize::MAX; map.entries.len()];
    for (n, &i) in shown.iter().enumerate() {
        position[i] = n;
    }
    let mut texts = String::with_capacity(shown.len() * 24);
    let mut spans = vec![(0, 0); shown.len()];
    for ((key, value), &n) in map.entries.iter().zip(&position) {
        if let Some(span) = spans.get_mut(n) {
            let start = texts.len();
            entry(map, key, value, div, &mut texts);
            *span = (start, texts.len());
        }
    }
    out.reserve(texts.len() + shown.len() + 2);
    for (n, &(start, end)) in spans.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&texts[start..end]);
    }
    out.push('\n');
    if matches!(map.kind, MapKind::Avg | MapKind::Stats) {
        out.push('\n');
    }
}

/// `@x[k1, k2]: value` (no line end).
fn entry(map: &MapDump, key: &[Scalar], value: &MapValue, div: u64, out: &mut String) {
    out.push_str(&map.name);
    if map.keyed {
        out.push('[');
        for (p, part) in key.iter().enumerate() {
            if p > 0 {
                out.push_str(", ");
            }
            key_part(part, out);
        }
        out.push(']');
    }
    out.push_str(": ");
    self::value(value, div, out);
}

/// Key ints print signed whatever their type, structs without spaces
/// (`MapKey::argument_value`).
pub(super) fn key_part(part: &Scalar, out: &mut String) {
    match part {
        Scalar::UInt(u) => push_i64(out, *u as i64),
        Scalar::Struct(fields) => {
            out.push('{');
            for (n, (name, v)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push('.');
                out.push_str(name);
                out.push('=');
                key_part(v, out);
            }
            out.push('}');
        }
        Scalar::Array(elems) => array(elems, out, key_part),
        other => scalar(other, 1, out),
    }
}

/// `[a,b]`, each element by `part`.
pub(super) fn array(elems: &[Scalar], out: &mut String, part: impl Fn(&Scalar, &mut String)) {
    out.push('[');
    for (n, e) in elems.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        part(e, out);
    }
    out.push(']');
}

/// `{ f1, f2 }`, each field by `field`.
pub(super) fn record(
    fields: &[(String, Scalar)],
    out: &mut String,
    field: impl Fn(&str, &Scalar, &mut String),
) {
    out.push_str("{ ");
    for (n, (name, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        field(name, v, out);
    }
    out.push_str(" }");
}

/// A plain value; `div` divides integers, also inside tuples (`Output::value_to_str`).
pub(super) fn scalar(s: &Scalar, div: u64, out: &mut String) {
    match s {
        Scalar::Int(i) => push_i64(out, i / div as i64),
        Scalar::UInt(u) => push_u64(out, u / div),
        Scalar::Str(s) | Scalar::Bare(s) => out.push_str(s),
        Scalar::Tuple(elems) => {
            out.push('(');
            for (n, e) in elems.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                scalar(e, div, out);
            }
            out.push(')');
        }
        Scalar::Struct(fields) => record(fields, out, |name, v, out| {
            out.push('.');
            out.push_str(name);
            out.push_str(" = ");
            scalar(v, div, out);
        }),
        Scalar::Array(elems) => array(elems, out, |e, out| scalar(e, div, out)),
    }
}

fn value(v: &MapValue, div: u64, out: &mut String) {
    let d = div as i64;
    match v {
        MapValue::Scalar(s) => scalar(s, div, out),
        MapValue::Count(c) | MapValue::USum(c) | MapValue::Max(c) => push_u64(out, c / div),
        MapValue::Sum(s) | MapValue::Min(s) => push_i64(out, s / d),
        MapValue::Avg { sum, count } => push_i64(out, average(*sum, *count) / d),
        MapValue::Stats { sum, count } => out.push_str(&format!(
            "count {}, average {}, total {sum}",
            *count as i64,
            average(*sum, *count)
        )),
        MapValue::Hist(b) => {
            out.push('\n');
            hist(b, div, out);
        }
        MapValue::Lhist {
            min,
            max,
            step,
            buckets,
        } => {
            out.push('\n');
            lhist(buckets, *min as i32, *max as i32, *step as i32, out);
        }
    }
}

/// Appends `v` in decimal: map printing formats ~100k integers at exit, and
/// `to_string()` would allocate a String for each.
pub(super) fn push_u64(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// [`push_u64`] for signed values.
pub(super) fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

/// One table row: label padded to 16, count right-aligned in 8, a 52-wide bar of `@`
/// scaled (in `float`, truncated) to the largest bucket.
fn row(label: &str, count: u64, shown_count: u64, max_value: i32, out: &mut String) {
    const WIDTH: usize = 52;
    let bar = (count as f32 / max_value as f32 * WIDTH as f32) as i32;
    let bar = "@".repeat(bar.max(0) as usize);
    out.push_str(&format!("{label:<16}{shown_count:>8} |{bar:<WIDTH$}|\n"));
}

/// bpftrace's `hist_prepare`: first and last bucket above 0 and the largest count, all
/// read through an `int` (as bpftrace does).
pub(super) fn hist_range(b: &[u64]) -> Option<(usize, usize, i32)> {
    let mut range = None;
    let mut max_value = 0;
    for (i, &v) in b.iter().enumerate() {
        let v = v as i32;
        if v > 0 {
            range = Some((range.map_or(i, |(lo, _)| lo), i));
        }
        max_value = max_value.max(v);
    }
    range.map(|(lo, hi)| (lo, hi, max_value))
}

/// hist rows from the first to the last non-empty bucket (inner empty ones included);
/// the count column is divided by `div`, the bar is not.
fn hist(b: &[u64], div: u64, out: &mut String) {
    let Some((lo, hi, max_value)) = hist_range(b) else {
        return;
    };
    for (i, &count) in b.iter().enumerate().take(hi + 1).skip(lo) {
        let label = match i {
            0 => "(..., 0)".to_string(),
            1 => "[0]".to_string(),
            2 => "[1]".to_string(),
            _ => format!(
                "[{}, {})",
                hist_index_label(i as i32 - 2),
                hist_index_label(i as i32 - 1)
            ),
        };
        row(&label, count, count / div, max_value, out);
    }
}

/// lhist's `lhist_prepare`: the largest count, and the first and last bucket above 0
/// among the `(max - min) / step + 2` real ones; `None` when every bucket is 0.
pub(super) fn lhist_range(b: &[u64], min: i32, max: i32, step: i32) -> Option<(usize, usize, i32)> {
    let mut any = false;
    let mut max_value = 0;
    for &v in b {
        let v = v as i32;
        any |= v != 0;
        max_value = max_value.max(v);
    }
    if !any {
        return None;
    }
    let buckets = max.wrapping_sub(min).checked_div(step).unwrap_or(0);
    let last = (buckets as u32).wrapping_add(1) as usize;
    let mut range: Option<(usize, usize)> = None;
    for (i, &v) in b.iter().enumerate().take(last.saturating_add(1)) {
        if v > 0 {
            range = Some((range.map_or(i, |r| r.0), i));
        }
    }
    let (lo, hi) = range.unwrap_or((0, 0));
    Some((lo, hi, max_value))
}

/// lhist rows: `(..., min)`, `[a, b)`, `[max, ...)`; counts are never divided.
fn lhist(b: &[u64], min: i32, max: i32, step: i32, out: &mut String) {
    let Some((lo, hi, max_value)) = lhist_range(b, min, max, step) else {
        return;
    };
    let buckets = max.wrapping_sub(min).checked_div(step).unwrap_or(0);
    for i in lo..=hi {
        let count = b.get(i).copied().unwrap_or(0);
        let n = i as i32;
        let label = if i == 0 {
            format!("(..., {})", lhist_index_label(min))
        } else if n == buckets.wrapping_add(1) {
            format!("[{}, ...)", lhist_index_label(max))
        } else {
            format!(
                "[{}, {})",
                lhist_index_label((n - 1).wrapping_mul(step).wrapping_add(min)),
                lhist_index_label(n.wrapping_mul(step).wrapping_add(min))
            )
        };
        row(&label, count, count, max_value, out);
    }
}
