//! bpftrace 0.17's JSON lines (`-f json`), written by hand: one object per message,
//! `{"type": "<type>", "data": ...}` with a space after each colon and comma.

use super::Rendered;

/// bpftrace's `json_escape`: `"` `\` `\n` `\r` `\t` escaped by name, other bytes up to
/// 0x1f as `\u00XX` — and, because it tests a signed `char`, every byte from 0x80 too, as
/// `\u` plus the 8 hex digits of the sign-extended value (`é` is `\uffffffc3\uffffffa9`).
pub fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            0x80.. => out.extend_from_slice(format!("\\u{:04x}", b as i8 as i32).as_bytes()),
            _ => out.push(b),
        }
    }
}

/// `{"type": "printf", "data": "<escaped text>"}` and the like, with its newline.
pub fn message(kind: &str, text: &Rendered) -> Rendered {
    let mut out = Rendered::from(format!("{{\"type\": \"{kind}\", \"data\": \"").as_bytes());
    out.append(text.map_bytes(escape));
    out.push(b"\"}\n");
    out
}

/// `{"type": "attached_probes", "data": {"probes": 2}}` and the like, with its newline.
pub fn counter(kind: &str, field: &str, value: u64) -> Vec<u8> {
    format!("{{\"type\": \"{kind}\", \"data\": {{\"{field}\": {value}}}}}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_bpftrace() {
        // bpftrace -f json -e 'BEGIN { printf("a\"b\\c\td\re\x01f é\n"); exit(); }' printed
        // {"type": "printf", "data": "a\"b\\c\td\re\u0001f \uffffffc3\uffffffa9\n"}
        assert_eq!(
            String::from_utf8(message("printf", &"a\"b\\c\td\re\x01f é\n".as_bytes().into()).to_vec())
                .unwrap(),
            "{\"type\": \"printf\", \"data\": \"a\\\"b\\\\c\\td\\re\\u0001f \\uffffffc3\\uffffffa9\\n\"}\n"
        );
        // time("%H:%M:%S ") under -f json printed {"type": "time", "data": "02:27:08 "}
        assert_eq!(
            message("time", &b"02:27:08 "[..].into()).to_vec(),
            b"{\"type\": \"time\", \"data\": \"02:27:08 \"}\n"
        );
        let mut out = Vec::new();
        escape(b"\x7f\x1f", &mut out);
        assert_eq!(out, b"\x7f\\u001f");
    }

    #[test]
    fn counters() {
        // bpftrace -f json (BEGIN + END) printed {"type": "attached_probes", "data": {"probes": 2}}
        assert_eq!(
            counter("attached_probes", "probes", 2),
            b"{\"type\": \"attached_probes\", \"data\": {\"probes\": 2}}\n"
        );
        // from bpftrace 0.17 src/output.cpp JsonOutput::lost_events (not reproducible on demand)
        assert_eq!(
            counter("lost_events", "events", 7),
            b"{\"type\": \"lost_events\", \"data\": {\"events\": 7}}\n"
        );
    }
}
