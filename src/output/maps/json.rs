//! `-f json` output (output.cpp `JsonOutput`): one line per map,
//! `{"type": "map"|"hist"|"stats", "data": {"@x": ...}}`, nothing for an empty map.

use super::text::{hist_range, lhist_range};
use super::{average, MapDump, MapKind, MapValue, Scalar};

/// `{"type": T, "data": {"@x": V}}` for a keyless map, `{"@x": {"k": V, ...}}` with keys
/// (parts joined by `,` into one escaped string); entries joined by `, `.
pub(super) fn map(map: &MapDump, shown: &[usize], div: u64, out: &mut String) {
    if map.entries.is_empty() {
        return;
    }
    let kind = match map.kind {
        MapKind::Hist | MapKind::Lhist => "hist",
        MapKind::Avg | MapKind::Stats => "stats",
        _ => "map",
    };
    out.push_str(&format!("{{\"type\": \"{kind}\", \"data\": {{"));
    string(&map.name, out);
    out.push_str(": ");
    if map.keyed {
        out.push('{');
    }
    for (n, &i) in shown.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let (key, value) = &map.entries[i];
        if !key.is_empty() {
            let mut joined = String::new();
            for (p, part) in key.iter().enumerate() {
                if p > 0 {
                    joined.push(',');
                }
                super::text::key_part(part, &mut joined);
            }
            string(&joined, out);
            out.push_str(": ");
        }
        self::value(value, div, out);
    }
    if map.keyed {
        out.push('}');
    }
    out.push_str("}}\n");
}

/// `--json-envelope`'s `entries`: `[{"key": [part, ...], "value": V}, ...]`, key parts
/// typed (ints bare, strings quoted; `[]` for a keyless map), values as in [`map`].
pub(super) fn entries(map: &MapDump, shown: &[usize], div: u64, out: &mut String) {
    out.push('[');
    for (n, &i) in shown.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let (key, value) = &map.entries[i];
        out.push_str("{\"key\": [");
        for (p, part) in key.iter().enumerate() {
            if p > 0 {
                out.push_str(", ");
            }
            scalar(part, 1, out);
        }
        out.push_str("], \"value\": ");
        self::value(value, div, out);
        out.push('}');
    }
    out.push(']');
}

/// A quoted string with bpftrace's `json_escape` (bytes from 0x80 as `\uffffffXX`).
fn string(s: &str, out: &mut String) {
    let mut escaped = Vec::with_capacity(s.len() + 2);
    crate::output::json::escape(s.as_bytes(), &mut escaped);
    out.push('"');
    out.push_str(&String::from_utf8_lossy(&escaped));
    out.push('"');
}

/// Ints bare (divided), strings quoted, tuples as `[a,b]` without spaces.
pub(super) fn scalar(s: &Scalar, div: u64, out: &mut String) {
    match s {
        Scalar::Str(s) => string(s, out),
        Scalar::Bare(s) => out.push_str(s),
        Scalar::Tuple(elems) => {
            out.push('[');
            for (n, e) in elems.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                scalar(e, div, out);
            }
            out.push(']');
        }
        Scalar::Struct(fields) => super::text::record(fields, out, |name, v, out| {
            string(name, out);
            out.push_str(": ");
            scalar(v, div, out);
        }),
        Scalar::Array(elems) => super::text::array(elems, out, |e, out| scalar(e, div, out)),
        int => super::text::scalar(int, div, out),
    }
}

fn value(v: &MapValue, div: u64, out: &mut String) {
    let d = div as i64;
    match v {
        MapValue::Scalar(s) => scalar(s, div, out),
        MapValue::Count(c) | MapValue::USum(c) | MapValue::Max(c) => {
            out.push_str(&(c / div).to_string())
        }
        MapValue::Sum(s) | MapValue::Min(s) => out.push_str(&(s / d).to_string()),
        MapValue::Avg { sum, count } => out.push_str(&(average(*sum, *count) / d).to_string()),
        MapValue::Stats { sum, count } => out.push_str(&format!(
            "{{\"count\": {}, \"average\": {}, \"total\": {sum}}}",
            *count as i64,
            average(*sum, *count)
        )),
        MapValue::Hist(b) => hist(b, div, out),
        MapValue::Lhist {
            min,
            max,
            step,
            buckets,
        } => lhist(buckets, *min as i32, *max as i32, *step as i32, out),
    }
}

/// `[{"min": 2, "max": 3, "count": 1}, ...]` over the same buckets as text; the bounds
/// are `int` shifts, so bucket 33 reads `"min": -2147483648, "max": 0` (measured).
fn hist(b: &[u64], div: u64, out: &mut String) {
    let Some((lo, hi, _)) = hist_range(b) else {
        out.push_str("[]");
        return;
    };
    out.push('[');
    for (i, &count) in b.iter().enumerate().take(hi + 1).skip(lo) {
        if i > lo {
            out.push_str(", ");
        }
        out.push('{');
        match i {
            0 => out.push_str("\"max\": -1, "),
            1 => out.push_str("\"min\": 0, \"max\": 0, "),
            2 => out.push_str("\"min\": 1, \"max\": 1, "),
            _ => {
                let p = i as u32 - 2;
                let low = 1i32.wrapping_shl(p);
                let high = 1i32.wrapping_shl(p + 1).wrapping_sub(1);
                out.push_str(&format!("\"min\": {low}, \"max\": {high}, "));
            }
        }
        out.push_str(&format!("\"count\": {}}}", count / div));
    }
    out.push(']');
}

/// `[{"max": min-1, ...}, {"min": a, "max": b-1, ...}, {"min": max, ...}]`, counts as is.
fn lhist(b: &[u64], min: i32, max: i32, step: i32, out: &mut String) {
    let Some((lo, hi, _)) = lhist_range(b, min, max, step) else {
        out.push_str("[]");
        return;
    };
    let buckets = max.wrapping_sub(min).checked_div(step).unwrap_or(0);
    out.push('[');
    for i in lo..=hi {
        if i > lo {
            out.push_str(", ");
        }
        let n = i as i32;
        out.push('{');
        if i == 0 {
            out.push_str(&format!("\"max\": {}, ", min.wrapping_sub(1)));
        } else if n == buckets.wrapping_add(1) {
            out.push_str(&format!("\"min\": {max}, "));
        } else {
            let low = (n - 1).wrapping_mul(step).wrapping_add(min);
            let high = n.wrapping_mul(step).wrapping_add(min).wrapping_sub(1);
            out.push_str(&format!("\"min\": {low}, \"max\": {high}, "));
        }
        let count = b.get(i).copied().unwrap_or(0);
        out.push_str(&format!("\"count\": {count}}}"));
    }
    out.push(']');
}
