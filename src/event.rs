//! Event records: the contract between codegen (which writes them into the ring buffer)
//! and output (which decodes and prints them).
//!
//! Every record starts with a little-endian `u64` event id, an index into
//! [`EventCatalog::events`]; the arguments follow at the offsets the layout gives
//! (offsets count from the start of the record, so the first argument is at 8).

use crate::format::PrintfFormat;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventCatalog {
    pub events: Vec<EventKind>,
}

impl EventCatalog {
    /// The kind of event `record` is (by its id), if the record names one.
    pub fn kind_of(&self, record: &[u8]) -> Option<&EventKind> {
        let id = u64::from_le_bytes(record.get(..EVENT_ID_SIZE)?.try_into().ok()?);
        self.events.get(usize::try_from(id).ok()?)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// `printf(fmt, args...)`: one [`ArgLayout`] per conversion, in order.
    Printf {
        format: PrintfFormat,
        args: Vec<ArgLayout>,
    },
    /// `cat(fmt, args...)`: laid out as printf; user space prints the file the
    /// formatted text names.
    Cat {
        format: PrintfFormat,
        args: Vec<ArgLayout>,
    },
    /// `system(fmt, args...)`: laid out as printf; user space runs the formatted
    /// command with `sh -c` and prints what it writes to stdout.
    System {
        format: PrintfFormat,
        args: Vec<ArgLayout>,
    },
    /// `time(fmt)`: no payload; userspace formats its local wall-clock time on receipt
    /// (as bpftrace does). `format` is the strftime string (bpftrace's default: `"%H:%M:%S\n"`).
    Time { format: String },
    /// `join(arr, delim)`: `JOIN_ARGS` NUL-terminated strings of `JOIN_ARG_SIZE` bytes
    /// follow the id (see `builtins/join.rs`); printed up to the first empty one.
    Join { delim: String },
    /// `exit()`: stop tracing, run END, exit.
    Exit,
    /// `print(@map)`, `clear(@map)`, `zero(@map)`: done by user space when the record
    /// arrives, as bpftrace's async actions. `map` indexes `Compiled::maps`.
    MapOp { map: usize, op: MapOp },
    /// `print(value)` of a value that is not a map: the value at offset 8, printed as
    /// bpftrace prints a map value (`5`, `(1, abc)`; JSON `{"type": "value", ...}`).
    PrintValue { value: ValueLayout },
    /// `-k`/`-kk`: helper `helper` (a `bpf_func_id`) failed at `span` of the script;
    /// its return code follows the id as an i64 (bpftrace's `AsyncEvent::HelperError`,
    /// the event id standing for its error id).
    HelperError {
        helper: i32,
        span: crate::diag::Span,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOp {
    /// Print the map: the last `top` entries of its order (0: all), values divided by `div`.
    Print { top: u64, div: u64 },
    /// Delete every entry.
    Clear,
    /// Set every entry's value to zero.
    Zero,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgLayout {
    /// Byte offset within the record.
    pub offset: usize,
    pub value: ValueLayout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueLayout {
    /// An integer of `size` bytes (1, 2, 4 or 8), little-endian.
    Int { size: usize, signed: bool },
    /// A NUL-padded string buffer of `size` bytes (e.g. `comm` is 16).
    Str { size: usize },
    /// A `buf()` value: a `u8` length, then `size` bytes of which the first `length`
    /// are the value (bpftrace's `AsyncEvent::Buf`).
    Buf { size: usize },
    /// The result of `ntop()`: `u64` address family (2 or 10) then 16 address bytes
    /// (IPv4 uses the first 4) — 24 bytes in all, as bpftrace lays out its inet type.
    Inet,
    /// The result of `macaddr()`: 6 bytes.
    MacAddr,
    /// The result of `strftime()`: u64 nanoseconds since boot, then the NUL-padded
    /// format (`size` bytes in all).
    Timestamp { size: usize },
    /// The result of `cgroup_path()`: u64 cgroup id, then the NUL-padded hierarchy
    /// filter (`size` bytes in all), printed as the cgroup's paths.
    CgroupPath { size: usize },
    /// A `username`: the u64 uid, printed as the user's name.
    Username,
    /// A `strerror()` value: the u64 error number, printed as libc's description of
    /// its low 32 bits (unquoted in JSON, as bpftrace 0.17 prints it).
    Strerror,
    /// A tuple of `size` bytes: its elements at offsets within it (bpftrace's layout,
    /// `sema::tuple_layout`).
    Tuple { size: usize, elems: Vec<ArgLayout> },
    /// A struct or union value of `size` bytes: each field's name and place, printed
    /// `{ .a = 1, .b = x }` (bpftrace's record).
    Struct {
        size: usize,
        fields: Vec<(String, ArgLayout)>,
    },
    /// A pointer member of a struct value: a u64, printed as a signed integer, in a
    /// key as `0x` and hex (bpftrace's `MapKey::argument_value`).
    Pointer,
    /// An array value of `size` bytes: its elements in order, printed `[1,2]`.
    Array { size: usize, elems: Vec<ArgLayout> },
    /// `kstack`/`ustack`: a u64 stack id from `bpf_get_stackid` (for `ustack` the
    /// thread id in its upper half, as bpftrace packs it), read from the stack map of
    /// its [`StackType`] and symbolised by user space.
    Stack { user: bool, stack: StackType },
    /// `ksym(addr)`, `func` in kprobes: a u64 kernel address, printed as its symbol.
    Ksym,
    /// `usym(addr)`, `func` in uprobes: u64 address then u64 pid, printed as the
    /// symbol in that process.
    Usym,
}

/// How a stack is kept and printed: bpftrace's `StackType`. Stacks of one type share
/// one `BPF_MAP_TYPE_STACK_TRACE` map, kernel and user stacks alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackType {
    /// Frames kept (bpftrace's default 127, at most 1024).
    pub limit: u32,
    pub mode: StackMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StackMode {
    /// `symbol+offset`, one frame a line, indented.
    Bpftrace,
    /// `\tADDR symbol+offset` (user stacks add ` (module)`), as `perf script` prints.
    Perf,
}

impl StackType {
    /// bpftrace's `DEFAULT_STACK_SIZE`.
    pub const DEFAULT_LIMIT: u32 = 127;
    /// bpftrace's `MAX_STACK_SIZE`.
    pub const MAX_LIMIT: u32 = 1024;
}

impl EventKind {
    /// The layouts of the values the event carries.
    pub fn layouts(&self) -> impl Iterator<Item = &ValueLayout> {
        let (args, value): (&[ArgLayout], _) = match self {
            EventKind::Printf { args, .. }
            | EventKind::Cat { args, .. }
            | EventKind::System { args, .. } => (args, None),
            EventKind::PrintValue { value } => (&[], Some(value)),
            _ => (&[], None),
        };
        args.iter().map(|a| &a.value).chain(value)
    }
}

impl ValueLayout {
    /// Whether printing the value resolves kernel addresses (`/proc/kallsyms`).
    pub fn reads_kernel_symbols(&self) -> bool {
        match self {
            ValueLayout::Ksym => true,
            ValueLayout::Stack { user, .. } => !user,
            ValueLayout::Tuple { elems, .. } | ValueLayout::Array { elems, .. } => {
                elems.iter().any(|e| e.value.reads_kernel_symbols())
            }
            ValueLayout::Struct { fields, .. } => {
                fields.iter().any(|(_, f)| f.value.reads_kernel_symbols())
            }
            _ => false,
        }
    }

    pub fn size(&self) -> usize {
        match *self {
            ValueLayout::Int { size, .. } | ValueLayout::Str { size } => size,
            ValueLayout::Buf { size } => 1 + size,
            ValueLayout::Inet => 24,
            ValueLayout::MacAddr => 6,
            ValueLayout::Timestamp { size } | ValueLayout::CgroupPath { size } => size,
            ValueLayout::Username
            | ValueLayout::Strerror
            | ValueLayout::Stack { .. }
            | ValueLayout::Ksym
            | ValueLayout::Pointer => 8,
            ValueLayout::Usym => 16,
            ValueLayout::Tuple { size, .. }
            | ValueLayout::Struct { size, .. }
            | ValueLayout::Array { size, .. } => size,
        }
    }

    /// A `macaddr()` value as bpftrace prints it: `%02X` bytes joined by `:`.
    pub fn mac_address(bytes: &[u8]) -> String {
        let hex: Vec<String> = bytes.iter().take(6).map(|b| format!("{b:02X}")).collect();
        hex.join(":")
    }

    /// The value of a `buf()` record field: its first `length` data bytes.
    pub fn buffer(bytes: &[u8]) -> &[u8] {
        let len = bytes.first().map_or(0, |&n| n as usize);
        bytes.get(1..(1 + len).min(bytes.len())).unwrap_or_default()
    }
}

/// Size of the event-id header at the start of every record.
pub const EVENT_ID_SIZE: usize = 8;
