//! Codegen: lower each typed probe to eBPF instructions, plus the maps and the event
//! layouts the runtime needs. No LLVM: instructions are built directly (like ply).

pub mod builder;
mod checks;
mod disasm;
mod expr;
mod lower;
mod maps;
mod tuples;

pub use disasm::disasm;
pub use expr::probe_read_helper;
pub use lower::{compile, standard_maps, value_layout, Gen};

use crate::abi::insn::Insn;
use crate::abi::prog_type;
use crate::ast::AttachPoint;
use crate::event::{ArgLayout, EventCatalog, ValueLayout};
use crate::sema::AggKind;

/// Code generation choices from the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// `-p PID`: every probe except BEGIN/END returns early unless the current process is PID.
    pub pid_filter: Option<u32>,
    /// Entries per `@map` (bpftrace's `BPFTRACE_MAP_KEYS_MAX`; 0 means its default, 4096).
    pub map_entries: u32,
    /// `-k` (1) / `-kk` (2): report failed helper calls (`codegen/checks.rs`).
    pub helper_checks: u8,
}

/// What the runtime gets from codegen: everything needed to load, attach and decode.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub programs: Vec<ProgramCode>,
    /// Maps referenced by `LD_IMM64` instructions with `src` = [`crate::abi::insn::PSEUDO_MAP_FD`]
    /// and `imm` = index into this list. Index 0 is always the event ring buffer.
    pub maps: Vec<MapSpec>,
    pub events: EventCatalog,
    /// Counted in "Attaching N probes..." but not attached (`sema::TypedProgram::unattached`).
    pub unattached: usize,
}

impl Compiled {
    /// Whether anything printed resolves kernel addresses (`ksym`, `func` of kprobes,
    /// `kstack`), so the runtime can read `/proc/kallsyms` before the first print.
    pub fn reads_kernel_symbols(&self) -> bool {
        let in_events = self.events.events.iter().flat_map(|e| e.layouts());
        let users = self.maps.iter().filter_map(|m| match &m.role {
            MapRole::User(user) => Some(user),
            _ => None,
        });
        let in_maps = users.flat_map(|user| {
            let value = match &user.value {
                MapValue::Plain(v) => Some(v),
                MapValue::Aggregate(_) => None,
            };
            user.key.iter().map(|k| &k.value).chain(value)
        });
        in_events
            .chain(in_maps)
            .any(crate::event::ValueLayout::reads_kernel_symbols)
    }
}

/// Where a builtin's lowering puts what it computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A scalar, in this register (r0 unless the builtin is `pure`).
    Reg(builder::Reg),
    /// A string or other in-memory value, filling `cap` bytes at `at`.
    Mem { at: builder::Loc, cap: u32 },
    /// Nothing: a statement, run for its effect.
    Effect,
    /// Before an aggregation's update (the operand is a u64 at `r10 + operand`): write
    /// the bucket index to `at`, the key's last part (`hist`, `lhist`), or jump to `skip`
    /// when the update would store nothing (`min`, `max`), so no entry is created.
    Prepare {
        operand: i16,
        at: builder::Loc,
        skip: builder::Label,
    },
    /// An aggregation's update: r0 points at this CPU's state for the key (zeroed when
    /// new); fold in the operand (a u64 at `r10 + operand`).
    State { operand: i16 },
}

/// How the kernel runs a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramType {
    /// `BPF_PROG_TYPE_KPROBE`: kprobe and kretprobe attach points.
    Kprobe,
    /// `BPF_PROG_TYPE_TRACEPOINT`
    Tracepoint,
    /// `BEGIN`/`END`: `BPF_PROG_TYPE_RAW_TRACEPOINT`, run once from userspace with
    /// `BPF_PROG_TEST_RUN` so it shares the event path with every other probe.
    Special,
    /// `BPF_PROG_TYPE_PERF_EVENT`: sampling perf events (interval, profile, software,
    /// hardware); the context is `struct bpf_perf_event_data`.
    PerfEvent,
}

impl ProgramType {
    /// The kernel's `bpf_prog_type` for it.
    pub fn kernel_type(self) -> u32 {
        match self {
            ProgramType::Kprobe => prog_type::KPROBE,
            ProgramType::Tracepoint => prog_type::TRACEPOINT,
            ProgramType::Special => prog_type::RAW_TRACEPOINT,
            ProgramType::PerfEvent => prog_type::PERF_EVENT,
        }
    }

    /// The kernel's name for it, as bpftrace's messages give it.
    pub fn kernel_name(self) -> &'static str {
        match self {
            ProgramType::Kprobe => "BPF_PROG_TYPE_KPROBE",
            ProgramType::Tracepoint => "BPF_PROG_TYPE_TRACEPOINT",
            ProgramType::Special => "BPF_PROG_TYPE_RAW_TRACEPOINT",
            ProgramType::PerfEvent => "BPF_PROG_TYPE_PERF_EVENT",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ProgramCode {
    /// Stable name for the kernel (`bpf_prog_info.name`, 15 chars max) and for `-d codegen`.
    pub name: String,
    pub prog_type: ProgramType,
    /// The attach points of the probe this program implements (bpftrace counts each one).
    pub attach_points: Vec<AttachPoint>,
    /// For a program that reads `probe` by cookie ([`crate::sema::ProbeNames::Cookie`]):
    /// the cookie its first attach point is attached with, the index of its name in
    /// the probe-names map ([`MapRole::ProbeNames`]); the k-th attach point gets base + k.
    pub cookie_base: Option<u64>,
    /// An attach point that fails to attach is skipped with a warning, not an error
    /// (`sema::TypedProbe::one_of_several`).
    pub one_of_several: bool,
    pub insns: Vec<Insn>,
    /// `(first instruction index, byte offset in the script of the statement it implements)`
    /// for each block of instructions; `disasm` turns offsets into source lines.
    pub lines: Vec<(usize, u32)>,
}

/// The map catalog's layout: which index (the `imm` of a map load) holds which map.
/// Scripts' `@maps` follow in [`crate::sema::MapId`] order, then (when there are any)
/// the drops counter, then (when used) the scratch map, then (when `elapsed` or `cpid`
/// is used) the runtime-values map, then (when `probe` is read by cookie) the
/// probe-names map, then the stack maps.
pub mod map_index {
    /// The event ring buffer.
    pub const EVENTS: u32 = 0;
    /// The status array: the lost-event counter (key 0) and the exit flag (key 1).
    pub const LOST: u32 = 1;
    /// Key of the status array set by `exit()`, so stopping never depends on a record
    /// that a full ring buffer can lose.
    pub const LOST_EXIT_FLAG: u32 = 1;
    /// The first `@map`.
    pub const FIRST_USER: u32 = 2;

    /// Script map `id` (a [`crate::sema::MapId`]'s number).
    pub fn user(id: usize) -> u32 {
        FIRST_USER + id as u32
    }

    /// The drops counter, right after the `user_maps` script maps (present when there
    /// are any).
    pub fn drops(user_maps: usize) -> u32 {
        user(user_maps)
    }

    /// The scratch map, after the drops counter; the runtime-values map follows it.
    pub fn scratch(user_maps: usize) -> u32 {
        drops(user_maps) + u32::from(user_maps > 0)
    }

    /// The probe-names map, after the runtime-values map (scratch and runtime maps
    /// exist when it does).
    pub fn probe_names(user_maps: usize) -> u32 {
        scratch(user_maps) + 2
    }

    /// The first stack map, after the runtime-values map and the probe-names map when
    /// there is one (both scratch and runtime maps exist when a program uses stacks).
    pub fn stacks(user_maps: usize, with_probe_names: bool) -> u32 {
        probe_names(user_maps) + u32::from(with_probe_names)
    }
}

/// The slots of the runtime-values map ([`MapRole::Runtime`]).
pub mod runtime_value {
    /// Boot-clock ns when tracing started.
    pub const START_NS: u32 = 0;
    /// The `-c` command's pid.
    pub const CHILD_PID: u32 = 1;
    /// Number of slots.
    pub const COUNT: u32 = 2;
}

/// One kernel map and what it is for, so the runtime can create, read and print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: String,
    /// Kernel `bpf_map_type` value (e.g. 27 = `BPF_MAP_TYPE_RINGBUF`).
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub role: MapRole,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapRole {
    /// The event ring buffer ([`map_index::EVENTS`]).
    Events,
    /// The status array ([`map_index::LOST`]): lost events, the exit flag.
    Lost,
    /// Per-CPU space for values larger than the 512-byte stack (see `Gen::scratch`).
    Scratch,
    /// Map updates that failed because the map was full (one u64, after the `@maps`).
    Drops,
    /// Values the runtime writes before BEGIN, by [`runtime_value`] index: the
    /// boot-clock start time (`elapsed`, bpftrace's elapsed map) and the `-c` child's
    /// pid (`cpid`). After the scratch map.
    Runtime,
    /// A script's `@map`, read and printed by the runtime.
    User(UserMap),
    /// A stack-trace map (`kstack`, `ustack`), one per stack type, after the
    /// runtime-values map; user space reads it to print stacks.
    Stack(crate::event::StackType),
    /// The names of the attach points of programs that read `probe` by cookie, the
    /// cookie's index (an array of NUL-padded strings); the runtime fills it at load.
    ProbeNames(Vec<String>),
}

/// How a `@map`'s keys and values are laid out in the kernel map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMap {
    /// As the script names it: `@start`, `@`.
    pub name: String,
    /// Used with `[...]`; a map without has the one key u64 0.
    pub keyed: bool,
    /// The key parts' offsets and layouts (hist/lhist keys end with a u64 bucket index).
    pub key: Vec<ArgLayout>,
    /// A name for each key part (the `--metrics` labels).
    pub labels: Vec<String>,
    pub value: MapValue,
}

/// What a `@map`'s value holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapValue {
    /// A plain value (`@x = 1`, `@s = comm`), stored as laid out.
    Plain(ValueLayout),
    /// An aggregation's per-CPU state (layout in `builtins/aggregations.rs`).
    Aggregate(AggKind),
}
