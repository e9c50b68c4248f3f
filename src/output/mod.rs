//! Output: decode event records and print them exactly like bpftrace 0.17 (text and JSON).
//!
//! What bpftrace 0.17 prints, measured on the development host:
//! - text: `Attaching 1 probe...` / `Attaching N probes...`, `Lost N events`, printf and
//!   time messages as they are (no newline added), and `"\n\n"` on stdout at exit (after
//!   `exit()` and after Ctrl-C, also with `-f json`);
//! - JSON: one line per message, `{"type": "printf", "data": "..."}` (see [`json`]).
//!
//! Buffering follows bpftrace's `-B`: line-buffered stdout by default (whether or not it is
//! a tty), and because bpftrace ends its JSON lines and announcements with `std::endl`,
//! those are flushed even under `-B full`.

mod capture;
mod cat;
pub mod cgroup;
pub mod envelope;
pub mod helper_error;
mod inet;
mod json;
pub mod maps;
mod printf;
mod sink;
mod system;
mod time;
mod username;

use std::io::{self, BufWriter, Write};

use crate::event::{EventCatalog, EventKind, MapOp, ValueLayout, EVENT_ID_SIZE};

pub use capture::Capture;
pub use cat::DEFAULT_BYTES_MAX as CAT_BYTES_MAX;
pub use inet::ntop;
pub use printf::{render, Arg, Rendered};
pub use time::{format_now, strftime, timestamp};
pub use username::username;

/// libc's description of error number `errno` (`strerror`).
pub fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// `-f text|json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// `-B none|line|full`: when stdout is flushed, as glibc's `setvbuf` modes in bpftrace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BufferMode {
    /// Every message is written at once.
    None,
    /// Flushed through the last newline of each message (bpftrace's default).
    #[default]
    Line,
    /// Flushed when the 8 KiB buffer fills, at announcements, JSON lines and at exit.
    Full,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    /// `-f`'s values; the error is bpftrace 0.17's message.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(OutputFormat::Text),
            "json" => Ok(OutputFormat::Json),
            _ => Err(format!(
                "Invalid output format \"{s}\"\nValid formats: 'text', 'json'"
            )),
        }
    }
}

impl std::str::FromStr for BufferMode {
    type Err = String;

    /// `-B`'s values; the error is bpftrace 0.17's message.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(BufferMode::None),
            "line" => Ok(BufferMode::Line),
            "full" => Ok(BufferMode::Full),
            _ => Err("USAGE: -B must be either 'line', 'full', or 'none'.".to_string()),
        }
    }
}

/// What the runtime does after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `exit()` ran: stop tracing (bpftrace ignores the events still queued), run END.
    Exit,
    /// The runtime is to print, clear or zero map `.0` (an index into `Compiled::maps`).
    MapOp(usize, MapOp),
}

/// glibc's `BUFSIZ`, the buffer bpftrace gives stdout.
const BUFSIZ: usize = 8192;

pub struct Printer {
    out: BufWriter<Box<dyn Write>>,
    format: OutputFormat,
    buffer: BufferMode,
    /// `-q`: no "Attaching N probes..." announcement (bpftrace's `bt_quiet`).
    quiet: bool,
    /// `--json-envelope` (with `-f json`): every line wrapped, no blank lines.
    envelope: Option<envelope::Envelope>,
    /// Bytes `cat()` prints of a file at most (`BPFTRACE_CAT_BYTES_MAX`).
    cat_bytes_max: u64,
    /// The script, where `-k`'s helper errors point.
    script: helper_error::Script,
}

impl Printer {
    pub fn new(out: Box<dyn Write>, format: OutputFormat) -> Printer {
        Printer {
            out: BufWriter::with_capacity(BUFSIZ, out),
            format,
            buffer: BufferMode::Line,
            quiet: false,
            envelope: None,
            cat_bytes_max: cat::DEFAULT_BYTES_MAX,
            script: helper_error::Script::default(),
        }
    }

    /// Wraps every JSON line in `envelope` (docs/JSON.md); only with `-f json`.
    pub fn set_envelope(&mut self, envelope: envelope::Envelope) {
        if self.format == OutputFormat::Json {
            self.envelope = Some(envelope);
        }
    }

    /// `BPFTRACE_CAT_BYTES_MAX`.
    pub fn set_cat_bytes_max(&mut self, max: u64) {
        self.cat_bytes_max = max;
    }

    /// The script's name and text, for locating helper errors.
    pub fn set_script(&mut self, script: helper_error::Script) {
        self.script = script;
    }

    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    pub fn set_buffer_mode(&mut self, mode: BufferMode) {
        self.buffer = mode;
    }

    /// `Attaching N probes...` (BEGIN and END count).
    pub fn attached(&mut self, probes: usize) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let text = match self.format {
            OutputFormat::Json => {
                self.wrap(json::counter("attached_probes", "probes", probes as u64))
            }
            OutputFormat::Text if probes == 1 => b"Attaching 1 probe...\n".to_vec(),
            OutputFormat::Text => format!("Attaching {probes} probes...\n").into_bytes(),
        };
        self.write(&text, true)
    }

    /// Decodes and prints one event record.
    pub fn event(&mut self, catalog: &EventCatalog, record: &[u8]) -> io::Result<Flow> {
        let Some(id) = record.get(..EVENT_ID_SIZE) else {
            return Err(invalid(format!(
                "event record of {} bytes is shorter than its {EVENT_ID_SIZE}-byte id",
                record.len()
            )));
        };
        let id = u64::from_le_bytes(id.try_into().expect("8 bytes"));
        let kind = usize::try_from(id).ok().and_then(|i| catalog.events.get(i));
        let Some(kind) = kind else {
            return Err(invalid(format!(
                "unknown event id {id} (the program has {} events)",
                catalog.events.len()
            )));
        };
        match kind {
            EventKind::Printf { format, args } => {
                let text = formatted(id, format, args, record)?;
                self.message("printf", &text)?;
            }
            EventKind::System { format, args } => {
                let command = formatted(id, format, args, record)?.to_vec();
                self.out.flush()?;
                let text = system::run(&command);
                self.message("syscall", &Rendered::from(&text[..]))?;
            }
            EventKind::Cat { format, args } => {
                let path = formatted(id, format, args, record)?.to_vec();
                let (text, error) = cat::read(&path, self.cat_bytes_max);
                if let Some(error) = error {
                    self.out.flush()?;
                    eprintln!("{error}");
                }
                self.message("cat", &Rendered::from(&text[..]))?;
            }
            EventKind::Time { format } => match time::format_now(format) {
                Some(text) => self.message("time", &Rendered::from(text.as_bytes()))?,
                None => eprintln!("ERROR: strftime returned 0"),
            },
            EventKind::Join { delim } => {
                // bpftrace ends the text line with `std::endl`: flushed in any mode.
                let mut text = join(record, delim.as_bytes());
                match self.format {
                    OutputFormat::Text => {
                        text.push(b'\n');
                        self.write(&text, true)?;
                    }
                    OutputFormat::Json => self.message("join", &Rendered::from(&text[..]))?,
                }
            }
            EventKind::Exit => return Ok(Flow::Exit),
            EventKind::MapOp { map, op } => return Ok(Flow::MapOp(*map, *op)),
            EventKind::PrintValue { value } => {
                let size = value.size();
                let Some(bytes) = record.get(EVENT_ID_SIZE..EVENT_ID_SIZE + size) else {
                    return Err(invalid(format!(
                        "event {id}: a {size}-byte print() value is outside the {}-byte record",
                        record.len()
                    )));
                };
                let json = self.format == OutputFormat::Json;
                let mut text = String::new();
                maps::print_value(&maps::decode(value, bytes, true), json, &mut text);
                self.write(text.as_bytes(), json)?;
            }
            EventKind::HelperError { helper, span } => {
                let Some(code) = record.get(EVENT_ID_SIZE..EVENT_ID_SIZE + 8) else {
                    return Err(invalid(format!(
                        "event {id}: a helper error record of {} bytes has no return code",
                        record.len()
                    )));
                };
                // The helper's int, as bpftrace truncates it.
                let code = i64::from_le_bytes(code.try_into().expect("8 bytes")) as i32;
                let name = crate::abi::insn::helper::name(*helper);
                // Both end with std::endl: flushed in any mode.
                let text = match self.format {
                    OutputFormat::Text => {
                        helper_error::text(&self.script, *span, name, code).into_bytes()
                    }
                    OutputFormat::Json => {
                        self.wrap(helper_error::json(&self.script, *span, name, code).into_bytes())
                    }
                };
                self.write(&text, true)?;
            }
        }
        Ok(Flow::Continue)
    }

    /// `Lost N events`: records the kernel could not queue.
    pub fn lost(&mut self, count: u64) -> io::Result<()> {
        let text = match self.format {
            OutputFormat::Json => self.wrap(json::counter("lost_events", "events", count)),
            OutputFormat::Text => format!("Lost {count} events\n").into_bytes(),
        };
        self.write(&text, true)
    }

    /// What bpftrace prints when tracing ends (two newlines, in both formats); flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.envelope.is_none() {
            self.out.write_all(b"\n\n")?;
        }
        self.out.flush()
    }

    /// `print(@map, top, div)`: the map as bpftrace prints it, in text or one JSON line.
    pub fn print_map(&mut self, map: &maps::MapDump, top: u64, div: u64) -> io::Result<()> {
        let mut text = String::new();
        let top = usize::try_from(top).unwrap_or(usize::MAX);
        match self.format {
            OutputFormat::Text => maps::print_text(map, top, div, &mut text),
            OutputFormat::Json => maps::print_json(map, top, div, &mut text),
        }
        if self.envelope.is_some() {
            let wrapped = self.wrap_map(map, top, div, &text);
            return self.write(&wrapped, true);
        }
        self.write(text.as_bytes(), self.format == OutputFormat::Json)
    }

    /// Every map at exit (after [`Printer::finish`]'s newlines), in bpftrace's order; flushes.
    pub fn exit_maps(&mut self, all: &[maps::MapDump]) -> io::Result<()> {
        let mut text = String::new();
        if self.envelope.is_some() {
            for map in maps::exit_order(all) {
                let mut line = String::new();
                maps::print_json(map, 0, 0, &mut line);
                let wrapped = self.wrap_map(map, 0, 0, &line);
                self.out.write_all(&wrapped)?;
            }
            return self.out.flush();
        }
        maps::print_all_at_exit(all, &mut text, self.format == OutputFormat::Json);
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// A printf or time message: as it is in text, one JSON line otherwise.
    fn message(&mut self, kind: &str, text: &Rendered) -> io::Result<()> {
        match self.format {
            OutputFormat::Text => self.write_rendered(text, false),
            OutputFormat::Json if self.envelope.is_some() => {
                let line = self.wrap(json::message(kind, text).to_vec());
                self.write(&line, true)
            }
            OutputFormat::Json => self.write_rendered(&json::message(kind, text), true),
        }
    }

    /// One JSON line in the envelope, if there is one.
    fn wrap(&self, line: Vec<u8>) -> Vec<u8> {
        match &self.envelope {
            Some(e) => e.wrap(&line, None),
            None => line,
        }
    }

    /// A map's JSON `line` in the envelope with its typed entries (empty map: nothing).
    fn wrap_map(&self, map: &maps::MapDump, top: usize, div: u64, line: &str) -> Vec<u8> {
        let (Some(e), false) = (&self.envelope, line.is_empty()) else {
            return line.as_bytes().to_vec();
        };
        let mut entries = String::new();
        maps::print_json_entries(map, top, div, &mut entries);
        e.wrap(line.as_bytes(), Some((&map.name, &entries)))
    }

    /// Writes `bytes`; `endl` marks bpftrace's `std::endl` messages, which flush in any mode.
    fn write(&mut self, bytes: &[u8], endl: bool) -> io::Result<()> {
        self.write_rendered(&Rendered::from(bytes), endl)
    }

    fn write_rendered(&mut self, text: &Rendered, endl: bool) -> io::Result<()> {
        match self.buffer {
            BufferMode::None => {
                text.write_to(&mut self.out)?;
                self.out.flush()
            }
            BufferMode::Line => match text.after_last_newline() {
                Some(split) => {
                    text.write_range(&mut self.out, 0, split)?;
                    self.out.flush()?;
                    text.write_range(&mut self.out, split, usize::MAX)
                }
                None => text.write_to(&mut self.out),
            },
            BufferMode::Full => {
                text.write_to(&mut self.out)?;
                if endl {
                    self.out.flush()?;
                }
                Ok(())
            }
        }
    }
}

/// `format` rendered with the arguments of `record` laid out as `args`.
fn formatted(
    id: u64,
    format: &crate::format::PrintfFormat,
    args: &[crate::event::ArgLayout],
    record: &[u8],
) -> io::Result<Rendered> {
    if args.len() != format.conversions().count() {
        return Err(invalid(format!(
            "event {id}: {} arguments for {} printf conversions",
            args.len(),
            format.conversions().count()
        )));
    }
    let values = args
        .iter()
        .enumerate()
        .map(|(n, arg)| {
            let size = arg.value.size();
            let bytes = arg
                .offset
                .checked_add(size)
                .and_then(|end| record.get(arg.offset..end));
            let bytes = bytes.ok_or_else(|| {
                invalid(format!(
                    "event {id}: argument {n} ({size} bytes at offset {}) is outside the {}-byte record",
                    arg.offset,
                    record.len()
                ))
            })?;
            decode(id, n, &arg.value, bytes)
        })
        .collect::<io::Result<Vec<Value>>>()?;
    let args: Vec<Arg> = values.iter().map(Value::arg).collect();
    Ok(render(format, &args))
}

/// A decoded argument that owns what [`Arg`] borrows.
enum Value {
    Int(Arg<'static>),
    Text(Vec<u8>),
    Buf(Vec<u8>),
}

impl Value {
    fn arg(&self) -> Arg<'_> {
        match self {
            Value::Int(arg) => *arg,
            Value::Text(bytes) => Arg::Str(bytes),
            Value::Buf(bytes) => Arg::Buf(bytes),
        }
    }
}

fn decode(id: u64, n: usize, layout: &ValueLayout, bytes: &[u8]) -> io::Result<Value> {
    Ok(match *layout {
        ValueLayout::Int {
            size: 1 | 2 | 4 | 8,
            signed,
        } => Value::Int(Arg::int(bytes, signed)),
        ValueLayout::Int { size, .. } => {
            return Err(invalid(format!(
                "event {id}: argument {n} is a {size}-byte integer"
            )))
        }
        ValueLayout::Str { .. } => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Value::Text(bytes[..end].to_vec())
        }
        ValueLayout::Buf { .. } => Value::Buf(ValueLayout::buffer(bytes).to_vec()),
        ValueLayout::Timestamp { .. } => Value::Text(timestamp(bytes).into_bytes()),
        ValueLayout::CgroupPath { .. } => Value::Text(cgroup::paths(bytes).into_bytes()),
        ValueLayout::MacAddr => Value::Text(ValueLayout::mac_address(bytes).into_bytes()),
        ValueLayout::Inet => Value::Text(ntop(bytes.try_into().expect("24 bytes")).into_bytes()),
        ValueLayout::Username => Value::Text(username(word(bytes, 0)).into_bytes()),
        ValueLayout::Strerror => Value::Text(strerror(word(bytes, 0) as i32).into_bytes()),
        ValueLayout::Pointer => Value::Int(Arg::int(bytes, false)),
        ValueLayout::Stack { user, stack } => {
            Value::Text(crate::symbols::stack(word(bytes, 0), user, stack, 8).into_bytes())
        }
        ValueLayout::Ksym => Value::Text(crate::symbols::ksym(word(bytes, 0)).into_bytes()),
        ValueLayout::Usym => {
            Value::Text(crate::symbols::usym(word(bytes, 0), word(bytes, 8) as u32).into_bytes())
        }
        ValueLayout::Tuple { .. } | ValueLayout::Struct { .. } | ValueLayout::Array { .. } => {
            return Err(invalid(format!(
                "event {id}: argument {n} is a tuple, record or array, which printf does not take"
            )))
        }
    })
}

/// A `join()` record's strings up to the first empty one, `delim` between them.
fn join(record: &[u8], delim: &[u8]) -> Vec<u8> {
    use crate::builtins::{JOIN_ARGS, JOIN_ARG_SIZE};
    let strings = record.get(EVENT_ID_SIZE..).unwrap_or_default();
    let mut out = Vec::new();
    for (i, arg) in strings.chunks(JOIN_ARG_SIZE).take(JOIN_ARGS).enumerate() {
        let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
        if end == 0 {
            break;
        }
        if i > 0 {
            out.extend_from_slice(delim);
        }
        out.extend_from_slice(&arg[..end]);
    }
    out
}

/// The little-endian u64 at `at` (0 past the end).
fn word(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map_or(0, |w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests;
