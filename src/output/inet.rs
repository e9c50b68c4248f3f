//! `ntop()` values as text, as bpftrace 0.17 prints them: glibc's `inet_ntop` for
//! `AF_INET` and `AF_INET6`, and an empty string for any other family.

use std::fmt::Write;

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

/// Formats the 24-byte inet value: `u64` family (read as C `int`, as bpftrace does) then
/// 16 address bytes in network order (IPv4 uses the first four).
pub fn ntop(value: &[u8; 24]) -> String {
    let family = i32::from_le_bytes([value[0], value[1], value[2], value[3]]);
    let addr = &value[8..];
    match family {
        AF_INET => ipv4(&addr[..4]),
        AF_INET6 => ipv6(addr.try_into().expect("16 address bytes")),
        _ => String::new(),
    }
}

fn ipv4(a: &[u8]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

/// glibc's `inet_ntop6`: lowercase hex groups without leading zeros, the first longest
/// run of two or more zero groups written `::`, and an embedded dotted quad for
/// IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) addresses.
fn ipv6(a: &[u8; 16]) -> String {
    let words: Vec<u16> = a
        .chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]))
        .collect();
    // (start, len) of the first longest zero run.
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < 8 {
        if words[i] != 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < 8 && words[i] == 0 {
            i += 1;
        }
        let len = i - start;
        if len >= 2 && best.is_none_or(|(_, l)| len > l) {
            best = Some((start, len));
        }
    }
    let embedded_v4 = best == Some((0, 6)) || (best == Some((0, 5)) && words[5] == 0xffff);
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some((start, len)) = best {
            if i == start {
                if i == 0 {
                    out.push(':');
                }
                out.push(':');
                i += len;
                continue;
            }
        }
        if i == 6 && embedded_v4 {
            out.push_str(&ipv4(&a[12..]));
            return out;
        }
        let _ = write!(out, "{:x}", words[i]);
        if i < 7 {
            out.push(':');
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(addr: [u8; 4]) -> String {
        let mut v = [0u8; 24];
        v[0] = 2;
        v[8..12].copy_from_slice(&addr);
        ntop(&v)
    }

    fn v6(text: &str) -> String {
        let addr: std::net::Ipv6Addr = text.parse().unwrap();
        let mut v = [0u8; 24];
        v[0] = 10;
        v[8..].copy_from_slice(&addr.octets());
        ntop(&v)
    }

    #[test]
    fn ipv4() {
        // printf("%s|%s|%s|%s\n", ntop(0x0100007f), ntop(2, 0), ntop(0), ntop(0xffffffff))
        //   -> 127.0.0.1|0.0.0.0|0.0.0.0|255.255.255.255
        assert_eq!(v4([127, 0, 0, 1]), "127.0.0.1");
        assert_eq!(v4([0; 4]), "0.0.0.0");
        assert_eq!(v4([255; 4]), "255.255.255.255");
    }

    #[test]
    fn ipv6_like_glibc() {
        // Each measured as printf("%s\n", ntop(pton("<input>"))) with bpftrace 0.17
        // (pton() rejects dotted forms, so the mapped inputs are written in hex).
        for (input, printed) in [
            ("::1", "::1"),
            ("::", "::"),
            ("::ffff:7f00:1", "::ffff:127.0.0.1"),
            ("::2", "::2"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("fe80::abcd:0:0:1", "fe80::abcd:0:0:1"),
            ("::102:304", "::1.2.3.4"),
            ("1::", "1::"),
            ("0:0:1::", "0:0:1::"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("::ffff:0:0", "::ffff:0.0.0.0"),
            ("2001:DB8::FFFF", "2001:db8::ffff"),
        ] {
            assert_eq!(v6(input), printed, "ntop(pton(\"{input}\"))");
        }
    }

    #[test]
    fn unknown_family_is_empty() {
        let mut v = [0u8; 24];
        v[0] = 7;
        assert_eq!(ntop(&v), "");
    }
}
