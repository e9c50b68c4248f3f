//! Re-measures the printf engine against the real bpftrace 0.17: one BEGIN block prints a
//! table of cases, and rbt's renderer must print every line identically. Also compares
//! whole text and JSON sessions (announcement, escaping, exit newlines). Needs root and
//! bpftrace 0.17 (skips otherwise, fails under CI).

mod bpftrace_ref;
mod support;

use rbt::event::{EventCatalog, EventKind};
use rbt::format::PrintfFormat;
use rbt::output::{ntop, render, Arg, Capture, OutputFormat, Printer};

/// A printf argument: how bpftrace writes it and what rbt decodes.
enum Val {
    /// An integer literal (`int64` in bpftrace).
    Lit(i64),
    /// `(type)value`: bpftrace cast name, value, size in bytes, signedness.
    Cast(&'static str, i64, usize, bool),
    Str(&'static str),
    /// `ntop(pton("..."))`.
    Ntop(&'static str),
}

impl Val {
    fn bpftrace(&self) -> String {
        match self {
            Val::Lit(v) => v.to_string(),
            Val::Cast(ty, v, _, _) => format!("({ty}){v}"),
            Val::Str(s) => format!("{s:?}"),
            Val::Ntop(a) => format!("ntop(pton(\"{a}\"))"),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Val::Lit(v) => v.to_le_bytes().to_vec(),
            Val::Cast(_, v, size, _) => v.to_le_bytes()[..*size].to_vec(),
            Val::Str(s) => s.as_bytes().to_vec(),
            Val::Ntop(a) => {
                let mut inet = [0u8; 24];
                match a.parse::<std::net::IpAddr>().unwrap() {
                    std::net::IpAddr::V4(v4) => {
                        inet[0] = 2;
                        inet[8..12].copy_from_slice(&v4.octets());
                    }
                    std::net::IpAddr::V6(v6) => {
                        inet[0] = 10;
                        inet[8..].copy_from_slice(&v6.octets());
                    }
                }
                ntop(&inet).into_bytes()
            }
        }
    }

    fn arg<'a>(&self, bytes: &'a [u8]) -> Arg<'a> {
        match self {
            Val::Lit(_) => Arg::int(bytes, true),
            Val::Cast(_, _, _, signed) => Arg::int(bytes, *signed),
            Val::Str(_) | Val::Ntop(_) => Arg::Str(bytes),
        }
    }
}

fn cases() -> Vec<(&'static str, Vec<Val>)> {
    use Val::*;
    let u32m1 = || Cast("uint32", -1, 4, false);
    let s8m1 = || Cast("int8", -1, 1, true);
    let u16max = || Cast("uint16", 65535, 2, false);
    vec![
        (
            "%5d|%-5d|%05d|%x|%X|%lu|%s|%-4s|%c|%%|%o",
            vec![
                Lit(42),
                Lit(42),
                Lit(42),
                Lit(255),
                Lit(255),
                Lit(123456789012),
                Str("str"),
                Str("ab"),
                Lit(65),
                Lit(8),
            ],
        ),
        ("100%%", vec![]),
        ("%d %%", vec![Lit(1)]),
        (
            "%d|%u|%x|%ld|%lu|%lx|%hd|%hhu|%o",
            vec![
                u32m1(),
                u32m1(),
                u32m1(),
                u32m1(),
                u32m1(),
                u32m1(),
                u32m1(),
                u32m1(),
                u32m1(),
            ],
        ),
        (
            "%d|%u|%x|%ld|%lu|%lx|%hd|%hhu|%o",
            vec![
                s8m1(),
                s8m1(),
                s8m1(),
                s8m1(),
                s8m1(),
                s8m1(),
                s8m1(),
                s8m1(),
                s8m1(),
            ],
        ),
        (
            "%d|%u|%x|%hd|%hhd|%hu",
            vec![u16max(), u16max(), u16max(), u16max(), u16max(), u16max()],
        ),
        (
            "%d|%u|%lx|%lld|%llu",
            vec![
                Cast("int32", -5, 4, true),
                Cast("int16", -300, 2, true),
                Cast("int16", -300, 2, true),
                Cast("int32", i32::MIN as i64, 4, true),
                Cast("uint8", 200, 1, false),
            ],
        ),
        (
            "%d|%u|%x|%ld|%lu|%lx",
            vec![
                Lit(123456789012),
                Lit(123456789012),
                Lit(123456789012),
                Lit(123456789012),
                Lit(123456789012),
                Lit(123456789012),
            ],
        ),
        (
            "%hhx|%hho|%ho|%o|%lo|%jd|%zd|%td|%zu|%lld|%llx|%X",
            (0..12).map(|_| Lit(-1)).collect(),
        ),
        (
            "%p|%p|%lp|%08p|%-8p|%8p|%.4p|%20p|",
            vec![
                Lit(0),
                Lit(4096),
                Lit(255),
                Lit(255),
                Lit(255),
                Lit(0),
                Lit(255),
                Lit(-1),
            ],
        ),
        (
            "%c|%c|%c|%05c|%-3c|%3c|",
            vec![Lit(322), Lit(0x263a), Lit(9), Lit(65), Lit(65), Lit(65)],
        ),
        ("a%cb", vec![Lit(0)]),
        ("%c|%5c|%-5c|x", vec![Lit(0), Lit(0), Lit(0)]),
        (
            "%.3d|%8.3d|%-8.3d|%.0d|%5.0d|%.0x|",
            vec![Lit(5), Lit(5), Lit(5), Lit(0), Lit(0), Lit(0)],
        ),
        (
            "%-05d|%005d|%0d|%.5x|%08.3d|%-8.3x|%.10d",
            vec![
                Lit(-42),
                Lit(-42),
                Lit(7),
                Lit(255),
                Lit(-7),
                Lit(255),
                Lit(-123),
            ],
        ),
        (
            "%.2s|%8.2s|%-8.2s|%05s|%.0s|%3.1s|%s|",
            vec![
                Str("hello"),
                Str("hello"),
                Str("hello"),
                Str("ab"),
                Str("ab"),
                Str("ab"),
                Str(""),
            ],
        ),
        (
            "%-6d %-14s %-39s %-5d",
            vec![
                Cast("uint32", 4242, 4, false),
                Str("sshd"),
                Ntop("127.0.0.1"),
                Cast("uint16", 8080, 2, false),
            ],
        ),
        (
            "%s|%s|%s|%s|%s",
            vec![
                Ntop("::1"),
                Ntop("::"),
                Ntop("::ffff:7f00:1"),
                Ntop("1:0:0:2:0:0:3:4"),
                Ntop("fe80::abcd:0:0:1"),
            ],
        ),
        (
            "%s|%s|%s|%s",
            vec![
                Ntop("::102:304"),
                Ntop("1:2:3:4:5:6:7:8"),
                Ntop("0.0.0.0"),
                Ntop("10.1.2.3"),
            ],
        ),
    ]
}

#[test]
fn printf_table_matches_bpftrace() {
    if bpftrace_ref::skip_reason("printf_table_matches_bpftrace").is_some() {
        return;
    }
    let cases = cases();
    let mut script = String::from("BEGIN {\n");
    let mut expected = Vec::new();
    for (fmt, vals) in &cases {
        let args: String = vals.iter().map(|v| format!(", {}", v.bpftrace())).collect();
        script.push_str(&format!("  printf(\"{fmt}\\n\"{args});\n"));
        let format = PrintfFormat::parse(&format!("{fmt}\n")).unwrap();
        let bytes: Vec<Vec<u8>> = vals.iter().map(Val::bytes).collect();
        let args: Vec<Arg> = vals.iter().zip(&bytes).map(|(v, b)| v.arg(b)).collect();
        expected.push(String::from_utf8(render(&format, &args).to_vec()).unwrap());
    }
    script.push_str("  exit();\n}\n");
    let out = String::from_utf8(bpftrace_ref::run_bpftrace(&[], &script)).unwrap();
    let body = out
        .strip_prefix("Attaching 1 probe...\n")
        .expect("announcement");
    let body = body.strip_suffix("\n\n").expect("exit newlines");
    let got: Vec<&str> = body.split_inclusive('\n').collect();
    assert_eq!(got.len(), expected.len(), "bpftrace printed:\n{body}");
    for ((line, want), (fmt, _)) in got.iter().zip(&expected).zip(&cases) {
        assert_eq!(line, want, "format {fmt:?}");
    }
}

/// rbt's whole session for printfs without arguments, BEGIN and END attached.
fn rbt_session(format: OutputFormat, texts: &[&str]) -> Vec<u8> {
    let out = Capture::default();
    let mut printer = Printer::new(Box::new(out.clone()), format);
    let events = texts
        .iter()
        .map(|t| EventKind::Printf {
            format: PrintfFormat::parse(t).unwrap(),
            args: vec![],
        })
        .collect();
    let catalog = EventCatalog { events };
    printer.attached(2).unwrap();
    for id in 0..texts.len() as u64 {
        printer.event(&catalog, &id.to_le_bytes()).unwrap();
    }
    printer.finish().unwrap();
    out.bytes()
}

#[test]
fn sessions_match_bpftrace() {
    if bpftrace_ref::skip_reason("sessions_match_bpftrace").is_some() {
        return;
    }
    let texts = ["a\"b\\c\td\re\x01f é\n", "no newline", "|100%%\n", "end\n"];
    let escaped: Vec<String> = texts
        .iter()
        .map(|t| {
            t.escape_default()
                .to_string()
                .replace("\\u{1}", "\\x01")
                .replace("\\u{e9}", "é")
        })
        .collect();
    let script = format!(
        "BEGIN {{ printf(\"{}\"); printf(\"{}\"); printf(\"{}\"); exit(); }} END {{ printf(\"{}\"); }}",
        escaped[0], escaped[1], escaped[2], escaped[3]
    );
    for (flag, format) in [("text", OutputFormat::Text), ("json", OutputFormat::Json)] {
        let want = bpftrace_ref::run_bpftrace(&["-f", flag], &script);
        let got = rbt_session(format, &texts);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "-f {flag}\n{script}"
        );
    }
}

#[test]
fn time_matches_bpftrace() {
    if bpftrace_ref::skip_reason("time_matches_bpftrace").is_some() {
        return;
    }
    // Fields that change at most daily (a run across midnight is retried once); each
    // result must fit strftime's 64-byte buffer.
    let formats = [
        "%Y-%m-%d %a %A %b %B %e %j %Z %z|\n",
        "%u %w %C %y %G %V %D %%|\n",
    ];
    let calls: String = formats.iter().map(|f| format!("time({f:?}); ")).collect();
    let script = format!("BEGIN {{ {calls}exit(); }}");
    for attempt in 1..=2 {
        let out = String::from_utf8(bpftrace_ref::run_bpftrace(&[], &script)).unwrap();
        let got: String = formats
            .iter()
            .map(|f| rbt::output::format_now(f).expect("fits strftime's buffer"))
            .collect();
        let want = out.strip_prefix("Attaching 1 probe...\n").unwrap();
        let want = want.strip_suffix("\n\n").unwrap();
        if got == want || attempt == 2 {
            assert_eq!(got, want);
            break;
        }
    }
}
