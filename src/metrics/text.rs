//! The Prometheus text exposition format (0.0.4, which OpenMetrics scrapers also
//! accept) of the live `@maps`, following Cloudflare ebpf_exporter's conventions:
//! `count()`/`sum()` are counters (`_total`), plain integers, `min()` and `max()` gauges,
//! `avg()`/`stats()` summaries (`_sum`, `_count`), `hist()`/`lhist()` histograms with
//! every bucket, cumulative. Key parts become labels. Strings as values have no number
//! to export and are left out.

use std::collections::HashSet;
use std::fmt::Write;

use crate::output::maps::{MapDump, MapValue, Scalar, LOG2_MAX_BUCKET};

/// Names rbt's own metrics take; a map sanitised to one of them gets a suffix.
pub const OWN_NAMES: [&str; 5] = [
    "rbt_build_info",
    "rbt_probes_attached",
    "rbt_lost_events",
    "rbt_map_update_drops",
    "rbt_metrics_dropped_series",
];

/// A metric name for `@map`: `rbt_` + the name without `@` (`rbt_at` for `@`), every
/// character outside `[a-zA-Z0-9_]` as `_`, a trailing `_total` dropped (counters get
/// it back); a name already `taken` gets `_map`, `_map2`, ... appended.
pub fn metric_name(map: &str, taken: &mut HashSet<String>) -> String {
    let bare = map.strip_prefix('@').unwrap_or(map);
    let bare = if bare.is_empty() { "at" } else { bare };
    let clean: String = bare
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let base = format!("rbt_{}", clean.strip_suffix("_total").unwrap_or(&clean));
    let mut name = base.clone();
    let mut n = 1;
    while !taken.insert(name.clone()) || OWN_NAMES.contains(&name.as_str()) {
        name = if n == 1 {
            format!("{base}_map")
        } else {
            format!("{base}_map{n}")
        };
        n += 1;
    }
    name
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, never the reserved `__` prefix nor `le`.
pub fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out.starts_with("__") {
        out.insert(0, 'k');
    }
    if out == "le" || out == "quantile" {
        out.push('_');
    }
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Int(v) => v.to_string(),
        Scalar::UInt(v) => v.to_string(),
        Scalar::Str(v) | Scalar::Bare(v) => v.clone(),
        Scalar::Tuple(parts) => parts.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        Scalar::Struct(_) | Scalar::Array(_) => crate::output::maps::key_text(s),
    }
}

/// `{a="1",b="x"` (open: the caller closes it, or adds `le`).
fn labels(names: &[String], key: &[Scalar]) -> String {
    let mut out = String::from("{");
    for (i, part) in key.iter().enumerate() {
        let name = names.get(i).cloned().unwrap_or_else(|| format!("key{i}"));
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{}=\"{}\"",
            label_name(&name),
            escape(&scalar_text(part))
        );
    }
    out
}

fn close(open: &str) -> String {
    if open == "{" {
        String::new()
    } else {
        format!("{open}}}")
    }
}

/// The buckets of a hist/lhist as (`le`, count): `le` is the largest integer bpftrace
/// puts in the bucket (its `[lo, hi)` holds `lo..=hi-1`; `-f json` prints the same as
/// `max`), the last bucket (hist: 2^31 and up, which bpftrace labels `[2G, 4G)`; lhist:
/// `[max, ...)`) is `+Inf`. Every bucket is listed, zero or not.
fn buckets(value: &MapValue) -> Option<Vec<(String, u64)>> {
    let at = |b: &[u64], i: usize| b.get(i).copied().unwrap_or(0);
    match value {
        MapValue::Hist(b) => Some(
            (0..=LOG2_MAX_BUCKET)
                .map(|i| {
                    let le = match i {
                        LOG2_MAX_BUCKET => "+Inf".to_string(),
                        0 => "-1".to_string(),
                        _ => ((1i64 << (i - 1)) - 1).to_string(),
                    };
                    (le, at(b, i))
                })
                .collect(),
        ),
        MapValue::Lhist {
            min,
            max,
            step,
            buckets,
        } => {
            let top = 1 + (max.wrapping_sub(*min) as u64 / (*step).max(1) as u64) as usize;
            Some(
                (0..=top)
                    .map(|i| {
                        let le = if i == top {
                            "+Inf".to_string()
                        } else {
                            (min + i as i64 * step - 1).to_string()
                        };
                        (le, at(buckets, i))
                    })
                    .collect(),
            )
        }
        MapValue::Scalar(_)
        | MapValue::Count(_)
        | MapValue::Sum(_)
        | MapValue::USum(_)
        | MapValue::Min(_)
        | MapValue::Max(_)
        | MapValue::Avg { .. }
        | MapValue::Stats { .. } => None,
    }
}

/// One map's family, at most `max_series` keys of it; returns how many keys were left out.
pub fn family(
    out: &mut String,
    name: &str,
    map: &MapDump,
    label_names: &[String],
    sums: &[i64],
    max_series: usize,
) -> u64 {
    let Some((_, first)) = map.entries.first() else {
        return 0;
    };
    let kind = match first {
        MapValue::Count(_) | MapValue::Sum(_) | MapValue::USum(_) => "counter",
        MapValue::Scalar(Scalar::Int(_) | Scalar::UInt(_))
        | MapValue::Min(_)
        | MapValue::Max(_) => "gauge",
        MapValue::Avg { .. } | MapValue::Stats { .. } => "summary",
        MapValue::Hist(_) | MapValue::Lhist { .. } => "histogram",
        MapValue::Scalar(
            Scalar::Str(_)
            | Scalar::Bare(_)
            | Scalar::Tuple(_)
            | Scalar::Struct(_)
            | Scalar::Array(_),
        ) => return 0,
    };
    // In text format 0.0.4 a counter's family is named with its `_total`.
    let family = if kind == "counter" {
        format!("{name}_total")
    } else {
        name.to_string()
    };
    let _ = writeln!(out, "# HELP {family} bpftrace map {}", map.name);
    let _ = writeln!(out, "# TYPE {family} {kind}");
    for (i, (key, value)) in map.entries.iter().take(max_series).enumerate() {
        let open = labels(label_names, key);
        let plain = close(&open);
        let line = match value {
            MapValue::Count(v) | MapValue::USum(v) | MapValue::Max(v) => v.to_string(),
            MapValue::Sum(v) | MapValue::Min(v) => v.to_string(),
            MapValue::Scalar(Scalar::Int(v)) => v.to_string(),
            MapValue::Scalar(Scalar::UInt(v)) => v.to_string(),
            MapValue::Scalar(
                Scalar::Str(_)
                | Scalar::Bare(_)
                | Scalar::Tuple(_)
                | Scalar::Struct(_)
                | Scalar::Array(_),
            ) => continue,
            MapValue::Avg { sum, count } | MapValue::Stats { sum, count } => {
                let _ = writeln!(out, "{name}_sum{plain} {sum}");
                let _ = writeln!(out, "{name}_count{plain} {count}");
                continue;
            }
            MapValue::Hist(_) | MapValue::Lhist { .. } => {
                let mut total = 0u64;
                for (le, count) in buckets(value).unwrap_or_default() {
                    total += count;
                    let sep = if open == "{" { "" } else { "," };
                    let _ = writeln!(out, "{name}_bucket{open}{sep}le=\"{le}\"}} {total}");
                }
                let sum = sums.get(i).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}_sum{plain} {sum}");
                let _ = writeln!(out, "{name}_count{plain} {total}");
                continue;
            }
        };
        let suffix = if kind == "counter" { "_total" } else { "" };
        let _ = writeln!(out, "{name}{suffix}{plain} {line}");
    }
    map.entries.len().saturating_sub(max_series) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::maps::MapKind;

    #[test]
    fn names_are_sanitised_prefixed_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(metric_name("@", &mut taken), "rbt_at");
        assert_eq!(metric_name("@bytes_total", &mut taken), "rbt_bytes");
        assert_eq!(metric_name("@bytes", &mut taken), "rbt_bytes_map");
        assert_eq!(
            metric_name("@lost_events", &mut taken),
            "rbt_lost_events_map"
        );
        assert_eq!(label_name("__x"), "k__x");
        assert_eq!(label_name("le"), "le_");
    }

    #[test]
    fn lhist_buckets_end_in_the_overflow_bucket() {
        let value = MapValue::Lhist {
            min: 0,
            max: 10,
            step: 3,
            buckets: vec![0, 1, 0, 0, 2],
        };
        let got = buckets(&value).unwrap_or_default();
        let les: Vec<&str> = got.iter().map(|(le, _)| le.as_str()).collect();
        assert_eq!(les, ["-1", "2", "5", "8", "+Inf"]);
        assert_eq!(got[4].1, 2);
    }

    #[test]
    fn series_beyond_the_cap_are_counted() {
        let map = MapDump {
            name: "@c".into(),
            kind: MapKind::Count,
            keyed: true,
            entries: (0..5)
                .map(|i| (Scalar::Int(i).into(), MapValue::Count(1)))
                .collect(),
        };
        let mut out = String::new();
        let dropped = family(&mut out, "rbt_c", &map, &["pid".into()], &[], 3);
        assert_eq!(dropped, 2);
        assert_eq!(
            out.lines().filter(|l| l.starts_with("rbt_c_total")).count(),
            3
        );
        assert!(out.contains("rbt_c_total{pid=\"0\"} 1\n"), "{out}");
    }
}
