//! `--json-envelope` (docs/JSON.md): each `-f json` line, unchanged as `type` and `data`,
//! inside an object that adds what a log pipeline needs to merge many hosts' lines —
//! the host, a boot-relative and a wall-clock timestamp, and for maps their entries with
//! the key parts as typed arrays (bpftrace joins them into one string: `"bash,42"`).

use super::json::escape;

/// The schema version written in every line's `envelope` field.
pub const VERSION: u32 = 1;

/// What every line of this session shares.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The host name, already a JSON string.
    host: String,
}

impl Envelope {
    /// The envelope for this host (its name from the kernel, as `uname -n`).
    pub fn new() -> Envelope {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Envelope {
            host: quoted(name.trim()),
        }
    }

    /// Wraps one bpftrace JSON line (`{"type": T, "data": D}\n`); `map` and `entries`
    /// (already JSON) are added for map lines. A line not of that shape is returned as is.
    pub fn wrap(&self, line: &[u8], map: Option<(&str, &str)>) -> Vec<u8> {
        let Some(inner) = line.strip_prefix(b"{").and_then(|l| l.strip_suffix(b"}\n")) else {
            return line.to_vec();
        };
        let boot_ns = crate::sys::boottime_ns().unwrap_or(0);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut out = format!(
            "{{\"envelope\": {VERSION}, \"host\": {}, \"boot_ns\": {boot_ns}, \"time\": \"{time}\", ",
            self.host
        )
        .into_bytes();
        out.extend_from_slice(inner);
        if let Some((name, entries)) = map {
            out.extend_from_slice(
                format!(", \"map\": {}, \"entries\": {entries}", quoted(name)).as_bytes(),
            );
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope::new()
    }
}

fn quoted(s: &str) -> String {
    let mut bytes = Vec::with_capacity(s.len() + 2);
    escape(s.as_bytes(), &mut bytes);
    format!("\"{}\"", String::from_utf8_lossy(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_a_line_keeping_type_and_data() {
        let e = Envelope {
            host: quoted("h\"1"),
        };
        let line = b"{\"type\": \"map\", \"data\": {\"@x\": 5}}\n";
        let got = String::from_utf8(e.wrap(line, Some(("@x", "[{\"key\": [], \"value\": 5}]"))))
            .unwrap_or_default();
        assert!(
            got.starts_with("{\"envelope\": 1, \"host\": \"h\\\"1\", \"boot_ns\": "),
            "{got}"
        );
        assert!(
            got.ends_with(", \"type\": \"map\", \"data\": {\"@x\": 5}, \"map\": \"@x\", \"entries\": [{\"key\": [], \"value\": 5}]}\n"),
            "{got}"
        );
        assert_eq!(e.wrap(b"\n", None), b"\n");
    }
}
