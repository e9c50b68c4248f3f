//! Printer tests: whole records in, bytes out, expectations measured with bpftrace 0.17.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use super::*;
use crate::event::ArgLayout;
use crate::format::PrintfFormat;

/// What was printed, which must be UTF-8.
fn text(out: &Capture) -> String {
    String::from_utf8(out.bytes()).unwrap()
}

fn printer(format: OutputFormat) -> (Printer, Capture) {
    let out = Capture::default();
    (Printer::new(Box::new(out.clone()), format), out)
}

/// The catalog of tcpaccept's event printf: `printf("%-6d %-14s ", pid, comm)`, then
/// `printf("%-39s %-5d\n", ntop, port)`, then `exit()`.
fn catalog() -> EventCatalog {
    let int = |offset, size, signed| ArgLayout {
        offset,
        value: ValueLayout::Int { size, signed },
    };
    EventCatalog {
        events: vec![
            EventKind::Printf {
                format: PrintfFormat::parse("%-6d %-14s ").unwrap(),
                args: vec![
                    int(8, 4, false),
                    ArgLayout {
                        offset: 12,
                        value: ValueLayout::Str { size: 16 },
                    },
                ],
            },
            EventKind::Printf {
                format: PrintfFormat::parse("%-39s %-5d\n").unwrap(),
                args: vec![
                    ArgLayout {
                        offset: 8,
                        value: ValueLayout::Inet,
                    },
                    int(32, 2, false),
                ],
            },
            EventKind::Exit,
        ],
    }
}

fn record(id: u64, payload: &[u8]) -> Vec<u8> {
    let mut r = id.to_le_bytes().to_vec();
    r.extend_from_slice(payload);
    r
}

fn comm_record() -> Vec<u8> {
    let mut payload = 4242u32.to_le_bytes().to_vec();
    let mut comm = *b"sshd\0garbage\0\0\0\0";
    comm[15] = 0;
    payload.extend_from_slice(&comm);
    record(0, &payload)
}

fn inet_record() -> Vec<u8> {
    let mut payload = 10u64.to_le_bytes().to_vec();
    payload.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    payload.extend_from_slice(&8080u16.to_le_bytes());
    record(1, &payload)
}

#[test]
fn text_session() {
    let (mut p, out) = printer(OutputFormat::Text);
    let cat = catalog();
    p.attached(1).unwrap();
    assert_eq!(p.event(&cat, &comm_record()).unwrap(), Flow::Continue);
    assert_eq!(p.event(&cat, &inet_record()).unwrap(), Flow::Continue);
    assert_eq!(p.event(&cat, &record(2, &[])).unwrap(), Flow::Exit);
    p.lost(3).unwrap();
    p.finish().unwrap();
    // bpftrace -e 'BEGIN{printf("x\n"); exit()}' | od -c  ->  "Attaching 1 probe...\nx\n\n\n"
    let ntop_col = format!("{:<39}", "::1");
    assert_eq!(
        text(&out),
        format!(
            "Attaching 1 probe...\n4242   sshd           {ntop_col} 8080 \nLost 3 events\n\n\n"
        )
    );
    let (mut p, out) = printer(OutputFormat::Text);
    p.attached(2).unwrap();
    assert_eq!(text(&out), "Attaching 2 probes...\n");
}

#[test]
fn json_session() {
    let (mut p, out) = printer(OutputFormat::Json);
    let cat = catalog();
    p.attached(2).unwrap();
    p.event(&cat, &comm_record()).unwrap();
    p.lost(5).unwrap();
    p.finish().unwrap();
    // bpftrace -f json /tmp/m4.bt: attached_probes line, one line per printf, then "\n\n"
    assert_eq!(
        text(&out),
        "{\"type\": \"attached_probes\", \"data\": {\"probes\": 2}}\n\
         {\"type\": \"printf\", \"data\": \"4242   sshd           \"}\n\
         {\"type\": \"lost_events\", \"data\": {\"events\": 5}}\n\n\n"
    );
}

#[test]
fn time_event_prints_local_time() {
    let (mut p, out) = printer(OutputFormat::Text);
    let cat = EventCatalog {
        events: vec![EventKind::Time {
            format: "%H:%M:%S ".into(),
        }],
    };
    p.event(&cat, &record(0, &[])).unwrap();
    p.finish().unwrap();
    let text = text(&out);
    let b = text.as_bytes();
    assert_eq!(b.len(), 11, "{text:?}");
    assert!(b[..8].iter().enumerate().all(|(i, c)| if i % 3 == 2 {
        *c == b':'
    } else {
        c.is_ascii_digit()
    }));
}

#[test]
fn bad_records_are_invalid_data() {
    let (mut p, _) = printer(OutputFormat::Text);
    let cat = catalog();
    for (rec, needle) in [
        (vec![1u8, 0, 0], "shorter than its 8-byte id"),
        (record(9, &[]), "unknown event id 9"),
        (record(0, &[1, 2, 3]), "outside the 11-byte record"),
        (record(1, &[0; 10]), "outside the 18-byte record"),
    ] {
        let err = p.event(&cat, &rec).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(needle), "{err}");
    }
    let odd = EventCatalog {
        events: vec![EventKind::Printf {
            format: PrintfFormat::parse("%d").unwrap(),
            args: vec![ArgLayout {
                offset: 8,
                value: ValueLayout::Int {
                    size: 3,
                    signed: false,
                },
            }],
        }],
    };
    let err = p.event(&odd, &record(0, &[0; 3])).unwrap_err();
    assert!(err.to_string().contains("3-byte integer"), "{err}");
}

/// A writer that records when flushes happen, to check the `-B` modes.
#[derive(Clone, Default)]
struct Flushes(Rc<RefCell<(Vec<u8>, Vec<String>)>>);

impl Write for Flushes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        let mut inner = self.0.borrow_mut();
        let seen = String::from_utf8(std::mem::take(&mut inner.0)).unwrap();
        if !seen.is_empty() {
            inner.1.push(seen);
        }
        Ok(())
    }
}

fn flushed_chunks(mode: BufferMode, format: OutputFormat) -> Vec<String> {
    let out = Flushes::default();
    let mut p = Printer::new(Box::new(out.clone()), format);
    p.set_buffer_mode(mode);
    let cat = EventCatalog {
        events: vec![
            EventKind::Printf {
                format: PrintfFormat::parse("a\nb").unwrap(),
                args: vec![],
            },
            EventKind::Printf {
                format: PrintfFormat::parse("c\n").unwrap(),
                args: vec![],
            },
        ],
    };
    p.attached(1).unwrap();
    p.event(&cat, &record(0, &[])).unwrap();
    p.event(&cat, &record(1, &[])).unwrap();
    let chunks = out.0.borrow().1.clone();
    chunks
}

#[test]
fn buffer_modes() {
    // glibc line buffering writes through the last newline of each write
    assert_eq!(
        flushed_chunks(BufferMode::Line, OutputFormat::Text),
        ["Attaching 1 probe...\n", "a\n", "bc\n"]
    );
    assert_eq!(
        flushed_chunks(BufferMode::None, OutputFormat::Text),
        ["Attaching 1 probe...\n", "a\nb", "c\n"]
    );
    // std::endl flushes the announcement; printf text waits for the buffer or exit
    assert_eq!(
        flushed_chunks(BufferMode::Full, OutputFormat::Text),
        ["Attaching 1 probe...\n"]
    );
    // every JSON line ends with std::endl in bpftrace
    assert_eq!(
        flushed_chunks(BufferMode::Full, OutputFormat::Json).len(),
        3
    );
}

#[test]
fn cli_values() {
    assert_eq!("json".parse(), Ok(OutputFormat::Json));
    assert_eq!("full".parse(), Ok(BufferMode::Full));
    // bpftrace -f yaml -e 'BEGIN{}' / bpftrace -B x -e 'BEGIN{}' (messages after "ERROR: ")
    assert_eq!(
        "yaml".parse::<OutputFormat>(),
        Err("Invalid output format \"yaml\"\nValid formats: 'text', 'json'".to_string())
    );
    assert_eq!(
        "x".parse::<BufferMode>(),
        Err("USAGE: -B must be either 'line', 'full', or 'none'.".to_string())
    );
}
