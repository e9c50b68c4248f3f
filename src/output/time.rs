//! `time(fmt)`: bpftrace 0.17 formats the local wall-clock time when the event arrives,
//! with glibc's `strftime` into a 64-byte buffer; an empty or too long result prints
//! nothing and logs `ERROR: strftime returned 0` on stderr (measured with `time("")`).
//! Conversions are rendered with chrono one at a time so that glibc's behaviours around
//! them hold: unknown conversions (`%Q`, `%:z`, `%+`) stay as written, `%5H` pads to the
//! width, `^` upper-cases, `%Z` is the zone abbreviation from the TZ database.

use std::fmt::Write;
use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone};

/// bpftrace's `STRING_SIZE`: strftime's buffer, NUL included.
const TIME_BUFFER: usize = 64;

/// The glibc conversions chrono renders identically in the C locale.
const CHRONO_CONVERSIONS: &str = "aAbBhcCdDeFgGHIjklmMnprRsStTuUVwWxXyYz";
/// Conversions whose value is a number (zero-padded when a width is given).
const NUMERIC: &str = "CdegGHIjklmMsSuUVwWyY";

/// Formats the current local time, or `None` where bpftrace prints nothing.
pub fn format_now(format: &str) -> Option<String> {
    let now = Local::now();
    let now = now.with_timezone(&now.offset().fix());
    let zone = if format.contains('Z') {
        zone_abbreviation(now.offset().local_minus_utc())
    } else {
        String::new()
    };
    strftime(format, &now, &zone)
}

/// bpftrace 0.17's `resolve_timestamp`: `nsecs` since boot as local wall-clock time,
/// boot time being the realtime clock minus the boot clock (read once); `%f` is
/// replaced by the microseconds first (every `%f`, as its regex does). `None` where
/// bpftrace prints `(?)`.
pub fn format_timestamp(format: &str, nsecs: u64) -> Option<String> {
    static BOOT: OnceLock<Option<(i64, i64)>> = OnceLock::new();
    let (sec, nsec) = (*BOOT.get_or_init(boot_realtime))?;
    // bpftrace computes the seconds through a double, as here.
    let time = sec + ((nsec as f64 + nsecs as f64) / 1e9) as i64;
    let usecs = ((nsec as u64).wrapping_add(nsecs) % 1_000_000_000) / 1000;
    let format = format.replace("%f", &format!("{usecs:06}"));
    let local = Local.timestamp_opt(time, 0).single()?;
    let t = local.with_timezone(&local.offset().fix());
    let zone = if format.contains('Z') {
        zone_abbreviation(t.offset().local_minus_utc())
    } else {
        String::new()
    };
    strftime(&format, &t, &zone)
}

/// A `strftime()` value (u64 nanoseconds since boot, then the NUL-padded format) as
/// bpftrace prints it: `(?)`, after an error on stderr, when strftime fails.
pub fn timestamp(bytes: &[u8]) -> String {
    let mut nsecs = [0u8; 8];
    let n = bytes.len().min(8);
    nsecs[..n].copy_from_slice(&bytes[..n]);
    let format = bytes.get(8..).unwrap_or_default();
    let end = format.iter().position(|&b| b == 0).unwrap_or(format.len());
    let format = String::from_utf8_lossy(&format[..end]);
    format_timestamp(&format, u64::from_le_bytes(nsecs)).unwrap_or_else(|| {
        eprintln!("ERROR: strftime returned 0");
        "(?)".to_string()
    })
}

/// The realtime clock at boot, `(seconds, nanoseconds)`.
fn boot_realtime() -> Option<(i64, i64)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let boot = crate::sys::boottime_ns().ok()?;
    let real = now.as_nanos() as i64;
    let at_boot = real - boot as i64;
    Some((
        at_boot.div_euclid(1_000_000_000),
        at_boot.rem_euclid(1_000_000_000),
    ))
}

/// glibc's `strftime` into bpftrace's 64-byte buffer; `zone` is what `%Z` prints.
pub fn strftime(format: &str, t: &DateTime<FixedOffset>, zone: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let spec = &rest[at..];
        let (text, used) = conversion(spec, t, zone);
        out.push_str(&text);
        rest = &spec[used..];
    }
    out.push_str(rest);
    (!out.is_empty() && out.len() < TIME_BUFFER).then_some(out)
}

/// Renders the conversion at the start of `spec` (which begins with `%`); returns the text
/// and how many bytes of `spec` it used.
fn conversion(spec: &str, t: &DateTime<FixedOffset>, zone: &str) -> (String, usize) {
    let b = spec.as_bytes();
    let mut i = 1;
    let mut flag = None;
    while let Some(&f @ (b'_' | b'-' | b'0' | b'^' | b'#')) = b.get(i) {
        flag = Some(f);
        i += 1;
    }
    let digits = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    // Anything as wide as the buffer makes strftime fail anyway, so the width is capped
    // there (an unbounded one would be an unbounded allocation).
    let width = spec[digits..i]
        .parse::<usize>()
        .map_or(TIME_BUFFER, |w| w.min(TIME_BUFFER));
    let width = if digits == i { 0 } else { width };
    if let Some(b'E' | b'O') = b.get(i) {
        i += 1;
    }
    let Some(conv) = spec[i..].chars().next() else {
        return (spec.to_string(), spec.len());
    };
    let used = i + conv.len_utf8();
    let raw = || (spec[..used].to_string(), used);
    let mut text = match conv {
        '%' => "%".to_string(),
        'P' => t.format("%p").to_string().to_lowercase(),
        'Z' => zone.to_string(),
        c if CHRONO_CONVERSIONS.contains(c) => {
            let padding = match flag {
                Some(f @ (b'_' | b'-' | b'0')) if NUMERIC.contains(c) => format!("{}", f as char),
                _ => String::new(),
            };
            let items = format!("%{padding}{c}");
            let mut s = String::new();
            if write!(s, "{}", t.format(&items)).is_err() {
                return raw();
            }
            s
        }
        _ => return raw(),
    };
    match flag {
        Some(b'^') => text = text.to_uppercase(),
        Some(b'#') if conv == 'Z' => text = text.to_lowercase(),
        Some(b'#') if "aAbBh".contains(conv) => text = text.to_uppercase(),
        _ => {}
    }
    if text.len() < width {
        let fill = if NUMERIC.contains(conv) && flag != Some(b'_') && !"ekl".contains(conv) {
            '0'
        } else {
            ' '
        };
        let pad: String = std::iter::repeat_n(fill, width - text.len()).collect();
        let at = usize::from(text.starts_with('-') && fill == '0');
        text.insert_str(at, &pad);
    }
    (text, used)
}

/// The local zone's abbreviation (`UTC`, `CET`, `CEST`) for `%Z`, from the POSIX TZ rule
/// that ends TZif files (or `TZ` itself); a numeric offset when there is none.
fn zone_abbreviation(offset_secs: i32) -> String {
    static RULE: OnceLock<Option<String>> = OnceLock::new();
    RULE.get_or_init(local_rule)
        .as_deref()
        .and_then(|r| abbreviation_from_rule(r, offset_secs))
        .unwrap_or_else(|| {
            FixedOffset::east_opt(offset_secs).map_or_else(String::new, |o| o.to_string())
        })
}

/// The local zone's POSIX TZ rule, found the way glibc finds the zone.
fn local_rule() -> Option<String> {
    match std::env::var("TZ") {
        Ok(tz) if tz.is_empty() => Some("UTC0".to_string()),
        Ok(tz) => {
            let name = tz.strip_prefix(':').unwrap_or(&tz);
            let path = if name.starts_with('/') {
                name.to_string()
            } else {
                format!("/usr/share/zoneinfo/{name}")
            };
            tzif_rule(&path).or(Some(name.to_string()))
        }
        // glibc falls back to UTC without /etc/localtime.
        Err(_) => tzif_rule("/etc/localtime").or(Some("UTC0".to_string())),
    }
}

/// The POSIX TZ string on the last line of a TZif (version 2+) file.
fn tzif_rule(path: &str) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let text = data.strip_suffix(b"\n")?;
    let start = text.iter().rposition(|&c| c == b'\n')? + 1;
    String::from_utf8(text[start..].to_vec())
        .ok()
        .filter(|r| !r.is_empty())
}

/// `CET-1CEST,M3.5.0,M10.5.0/3` at offset +3600 is `CET`, at +7200 `CEST`.
fn abbreviation_from_rule(rule: &str, offset_secs: i32) -> Option<String> {
    let (std_name, rest) = take_zone_name(rule)?;
    let sign_len = rest
        .find(|c: char| !"+-0123456789:".contains(c))
        .unwrap_or(rest.len());
    let (std_offset, rest) = rest.split_at(sign_len);
    let std_east = -posix_offset_secs(std_offset)?;
    match take_zone_name(rest) {
        Some((dst_name, _)) if offset_secs != std_east => Some(dst_name),
        _ => Some(std_name),
    }
}

fn take_zone_name(s: &str) -> Option<(String, &str)> {
    if let Some(quoted) = s.strip_prefix('<') {
        let end = quoted.find('>')?;
        return Some((quoted[..end].to_string(), &quoted[end + 1..]));
    }
    let end = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    (end >= 3).then(|| (s[..end].to_string(), &s[end..]))
}

/// `-1` → -3600, `5` → 18000, `-5:30` → -19800 (seconds west of UTC, as POSIX writes it).
fn posix_offset_secs(s: &str) -> Option<i32> {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => (-1, d),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut secs = 0;
    let mut unit = 3600;
    for part in digits.split(':') {
        secs += part.parse::<i32>().ok()? * unit;
        unit /= 60;
    }
    Some(sign * secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// 2026-11-26 02:27:18 UTC, a Thursday (the time of the measuring runs).
    fn at() -> DateTime<FixedOffset> {
        FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 26, 2, 27, 18)
            .unwrap()
    }

    fn fmt(f: &str) -> Option<String> {
        strftime(f, &at(), "UTC")
    }

    #[test]
    fn tcpaccept_and_default_formats() {
        // time("%H:%M:%S ") printed `02:27:07 `; time() printed `02:27:07\n`
        assert_eq!(fmt("%H:%M:%S ").as_deref(), Some("02:27:18 "));
        assert_eq!(fmt("%H:%M:%S\n").as_deref(), Some("02:27:18\n"));
    }

    #[test]
    fn glibc_conversions() {
        // time("%Y-%m-%d %a %b %j %p %Z %z %%|") at 2026-11-26 02:27 UTC printed
        // `2026-11-26 Thu Nov 330 AM UTC +0000 %|`
        assert_eq!(
            fmt("%Y-%m-%d %a %b %j %p %Z %z %%|").as_deref(),
            Some("2026-11-26 Thu Nov 330 AM UTC +0000 %|")
        );
        // time("%Q|%5H|%-H|%e|%k|%l|%I|%y|%C|%G|%V|%u|%w|\n") printed
        // `%Q|00002|2|26| 2| 2|02|26|20|2026|48|4|4|`
        assert_eq!(
            fmt("%Q|%5H|%-H|%e|%k|%l|%I|%y|%C|%G|%V|%u|%w|\n").as_deref(),
            Some("%Q|00002|2|26| 2| 2|02|26|20|2026|48|4|4|\n")
        );
        // time("%c %c\n") printed `Thu Nov 26 02:27:18 2026 Thu Nov 26 02:27:18 2026`
        assert_eq!(
            fmt("%c %c\n").as_deref(),
            Some("Thu Nov 26 02:27:18 2026 Thu Nov 26 02:27:18 2026\n")
        );
        // time("%s %q %E %O %Ey %Od %:z %P %+ %v %#Z\n") printed (at epoch 1795660038)
        // `1795660038 %q %E %O 26 26 %:z am %+ %v utc`
        assert_eq!(
            fmt("%s %q %E %O %Ey %Od %:z %P %+ %v %#Z\n").as_deref(),
            Some("1795660038 %q %E %O 26 26 %:z am %+ %v utc\n")
        );
    }

    #[test]
    fn empty_or_overlong_results_print_nothing() {
        // time("") and time("%c %c %c\n") (73 bytes) both logged `ERROR: strftime returned 0`
        assert_eq!(fmt(""), None);
        assert_eq!(fmt("%c %c %c\n"), None);
    }

    #[test]
    fn zone_abbreviations_from_posix_rules() {
        // TZ=Europe/Berlin bpftrace -e 'BEGIN{time("%Z %z\n"); exit()}' printed `CET +0100`
        let rule = "CET-1CEST,M3.5.0,M10.5.0/3";
        assert_eq!(abbreviation_from_rule(rule, 3600).as_deref(), Some("CET"));
        assert_eq!(abbreviation_from_rule(rule, 7200).as_deref(), Some("CEST"));
        assert_eq!(abbreviation_from_rule("UTC0", 0).as_deref(), Some("UTC"));
        assert_eq!(
            abbreviation_from_rule("<+0530>-5:30", 19800).as_deref(),
            Some("+0530")
        );
    }
}
