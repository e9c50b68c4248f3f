//! The typed program: what semantic analysis hands codegen. Every name is resolved,
//! every kernel member access is folded into a memory read at a known offset, and every
//! expression carries its value type, so codegen never looks at BTF again.

pub use super::records::{Field, Record, Shape};
use crate::ast::{AttachPoint, BinOp, Span};
use crate::btf::TypeId;
use crate::builtins::Builtin;
pub use crate::event::{StackMode, StackType};
use crate::format::PrintfFormat;
use crate::probes::Provider;

#[derive(Clone, Debug)]
pub struct TypedProgram {
    pub probes: Vec<TypedProbe>,
    /// The `@maps`, indexed by [`MapId`].
    pub maps: Vec<TypedMap>,
    /// For stderr: what the script runs without (attach points bpftrace drops).
    pub warnings: Vec<crate::diag::Diagnostic>,
    /// Attach points dropped from a probe of several (a kernel function the kernel
    /// lacks) that bpftrace still counts in "Attaching N probes...": it drops them only
    /// when attaching them fails.
    pub unattached: usize,
}

/// A `@map`: BPF hash map state shared by all probes. Scalar keys are stored as u64;
/// scalar values as u64 holding a value of type `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedMap {
    /// Without the `@`.
    pub name: String,
    /// Used with `[...]` (else its one key is 0).
    pub keyed: bool,
    /// The key parts' types (empty for a map without `[...]`).
    pub key: Vec<Type>,
    /// A name for each key part (metrics labels), as `sema::maps::key_names` gives them.
    pub labels: Vec<String>,
    pub value: Type,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapId(pub usize);

#[derive(Clone, Debug)]
pub struct TypedProbe {
    pub provider: &'static Provider,
    pub attach_points: Vec<AttachPoint>,
    pub predicate: Option<TExpr>,
    pub body: Vec<TStmt>,
    /// The probe's `$variables`, indexed by [`VarId`]; each has the type of its first assignment.
    pub vars: Vec<Var>,
    /// Where its `probe` comes from.
    pub probe_names: ProbeNames,
    /// The script's probe has several attach points or a wildcard: as in bpftrace, one
    /// that fails to attach is warned of and skipped (bpftrace's `orig_name != name`).
    pub one_of_several: bool,
    pub span: Span,
}

/// Where a program's `probe` comes from (see `sema::Plan`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeNames {
    /// A constant: the program serves one attach point, or never reads `probe`.
    #[default]
    Constant,
    /// The attach cookie, indexing a table of its attach points' names: one program
    /// serves all of them (`codegen::ProgramCode::cookie_base`).
    Cookie,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    pub name: String,
    pub ty: Type,
    /// The address space of its first value (an integer holding a user address stays
    /// one: bpftrace keeps the space in the variable's type).
    pub space: Space,
    /// It holds `ctx` (bpftrace keeps a variable's context access): reads of it are
    /// the context pointer, so members through it are direct context loads.
    pub ctx: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarId(pub usize);

/// bpftrace 0.17's string size (`STRING_SIZE` in types.h): string literals in values
/// are at most 63 characters.
pub const STRING_SIZE: usize = 64;

/// The type of a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// An integer of `size` bytes (1, 2, 4, 8); in registers always widened to 64 bits
    /// by its signedness.
    Int { size: u8, signed: bool },
    /// A pointer: `depth` levels of `*` over BTF type `target` (`struct sock *` is
    /// `{ target: struct sock, depth: 1 }`); `name` as the user would write it; `space`
    /// says which probe_read helper reads through it.
    Ptr {
        target: TypeId,
        depth: u8,
        name: String,
        space: Space,
    },
    /// An aggregation's state in a map (`count()`, `hist(x)`): only ever a map value.
    Agg(AggKind),
    /// A NUL-padded string buffer of `size` bytes (`comm`: 16, literals: length + 1).
    Str { size: usize },
    /// The result of `buf()`: a length byte, then `size` bytes of data.
    Buf { size: usize },
    /// The result of `ntop()`: address family + 16 address bytes.
    Inet,
    /// The result of `macaddr()`: 6 bytes, printed `XX:XX:XX:XX:XX:XX`.
    MacAddr,
    /// The result of `strftime()`: u64 nanoseconds since boot, then the format,
    /// NUL-padded, in `size - 8` bytes (the value carries its format).
    Timestamp { size: usize },
    /// The result of `cgroup_path()`: the u64 cgroup id, then the NUL-padded hierarchy
    /// filter, in `size - 8` bytes (the value carries its filter, as a timestamp its
    /// format); user space finds the paths when it prints it.
    CgroupPath { size: usize },
    /// `username`: a uid (u64) kept in memory, printed as the user's name.
    Username,
    /// `strerror(n)`: an error number (u64) kept in memory, printed as its description.
    Strerror,
    /// `kstack`/`ustack`: a stack id (u64) kept in memory, printed as the stack.
    Stack { user: bool, stack: StackType },
    /// `ksym(addr)`: a kernel address (u64) kept in memory, printed as its symbol.
    Ksym,
    /// `usym(addr)`: address and pid (2 × u64) kept in memory, printed as the symbol.
    Usym,
    /// A struct, union or array that stays in (kernel or context) memory: the operand
    /// of `.`/`->`, `[]` or `ntop()`; where a value is wanted it is copied out as a
    /// [`Type::Record`] (`sema::records`).
    Mem { ty: TypeId, name: String, size: u32 },
    /// A struct, union or array held as a value (copied out of memory): in variables,
    /// maps, tuples and `print()`; its layout in the [`Record`].
    Record(Box<Record>),
    /// A tuple `(a, b, ...)`: its elements laid out as a C struct (see [`tuple_layout`]).
    Tuple(Vec<Type>),
    /// The value of a call that returns nothing (`printf`, `exit`).
    Void,
}

/// Where a tuple's elements lie, as bpftrace 0.17 lays them out (struct.cpp
/// `CreateTuple`, LLVM's struct layout): each element at the next multiple of its
/// alignment, the size rounded up to the largest alignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TupleLayout {
    pub offsets: Vec<u32>,
    pub size: u32,
    pub align: u32,
}

pub fn tuple_layout(elems: &[Type]) -> TupleLayout {
    let mut offsets = Vec::with_capacity(elems.len());
    let (mut offset, mut align) = (0u32, 1u32);
    for e in elems {
        let a = e.alignment();
        align = align.max(a);
        offset = offset.next_multiple_of(a);
        offsets.push(offset);
        offset += e.size() as u32;
    }
    TupleLayout {
        offsets,
        size: offset.next_multiple_of(align),
        align,
    }
}

impl Type {
    pub const U64: Type = Type::Int {
        size: 8,
        signed: false,
    };
    pub const I64: Type = Type::Int {
        size: 8,
        signed: true,
    };

    /// Integers and pointers: what fits in a register.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Type::Int { .. } | Type::Ptr { .. })
    }
    pub fn is_signed(&self) -> bool {
        matches!(self, Type::Int { signed: true, .. })
    }
    /// Bytes the value occupies in a record or a variable slot.
    pub fn size(&self) -> usize {
        match self {
            Type::Int { size, .. } => *size as usize,
            Type::Ptr { .. } => 8,
            Type::Str { size } => *size,
            Type::Buf { size } => 1 + *size,
            Type::Inet => 24,
            Type::MacAddr => 6,
            Type::Timestamp { size } | Type::CgroupPath { size } => *size,
            Type::Username | Type::Strerror | Type::Stack { .. } | Type::Ksym => 8,
            Type::Usym => 16,
            Type::Agg(kind) => kind.slot_size() as usize,
            Type::Tuple(elems) => tuple_layout(elems).size as usize,
            Type::Record(r) => r.size as usize,
            Type::Mem { .. } | Type::Void => 0,
        }
    }
    /// Alignment inside a tuple, as bpftrace's `SizedType::GetAlignment`: strings 1,
    /// tuples their largest element's, values of up to 2 bytes their size, byte arrays
    /// (inet) and values up to 4 bytes 4, else 8.
    pub fn alignment(&self) -> u32 {
        match self {
            Type::Str { .. } => 1,
            Type::Inet => 4,
            Type::Tuple(elems) => tuple_layout(elems).align,
            Type::Record(r) => r.align,
            other => match other.size() {
                0 => 1,
                n @ (1 | 2) => n as u32,
                3 | 4 => 4,
                _ => 8,
            },
        }
    }
    /// The type as bpftrace names it in messages.
    pub fn describe(&self) -> String {
        match self {
            Type::Int { size, signed } => {
                format!("{}int{}", if *signed { "" } else { "u" }, *size as u32 * 8)
            }
            Type::Ptr { name, .. } | Type::Mem { name, .. } => name.clone(),
            Type::Str { size } => format!("string[{size}]"),
            Type::Buf { size } => format!("buffer[{}]", size + 1),
            Type::Inet => "inet".into(),
            Type::MacAddr => "mac_address".into(),
            Type::Timestamp { .. } => "timestamp".into(),
            Type::CgroupPath { .. } => "cgroup_path".into(),
            Type::Username => "username".into(),
            Type::Strerror => "strerror".into(),
            Type::Stack { user: false, .. } => "kstack".into(),
            Type::Stack { user: true, .. } => "ustack".into(),
            Type::Ksym => "ksym".into(),
            Type::Usym => "usym".into(),
            Type::Agg(kind) => kind.name().into(),
            Type::Record(r) => r.name.clone(),
            Type::Tuple(elems) => {
                let elems: Vec<_> = elems.iter().map(Type::describe).collect();
                format!("({})", elems.join(","))
            }
            Type::Void => "none".into(),
        }
    }
}

/// The aggregation functions, as a map value's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggKind {
    Count,
    Sum { signed: bool },
    Min,
    Max,
    Avg,
    Stats,
    Hist,
    Lhist { min: i64, max: i64, step: i64 },
}

impl AggKind {
    /// The name bpftrace gives the type in messages.
    pub fn name(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum { .. } => "sum",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Avg => "avg",
            AggKind::Stats => "stats",
            AggKind::Hist => "hist",
            AggKind::Lhist { .. } => "lhist",
        }
    }

    /// Bytes of state per key and CPU: one u64, or a count and a total (avg, stats;
    /// hist and lhist keep each bucket's total for `--metrics`' `_sum`).
    pub fn slot_size(self) -> u32 {
        match self {
            AggKind::Avg | AggKind::Stats | AggKind::Hist | AggKind::Lhist { .. } => 16,
            _ => 8,
        }
    }

    /// Whether the map's key gets a u64 bucket index appended (hist, lhist).
    pub fn bucketed(self) -> bool {
        matches!(self, AggKind::Hist | AggKind::Lhist { .. })
    }

    /// Two uses agree on the aggregation (a sum's signedness and lhist's bounds are
    /// taken from the first use).
    pub fn same_aggregation(&self, other: &AggKind) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// A use of a registered builtin (variable, function or statement), typed by its entry
/// in [`crate::builtins`], which also lowers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub builtin: &'static Builtin,
    pub args: Vec<TExpr>,
    pub payload: Payload,
    /// The call in the script (`-k` reports a failed helper of it here).
    pub span: Span,
}

/// What a builtin's type rule resolved at compile time, beyond its arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    None,
    /// A numbered builtin's number (`arg3`).
    Index(u32),
    /// A checked printf-style format.
    Format(PrintfFormat),
    /// A literal text argument (`time()`'s strftime format).
    Text(String),
    /// The map a map function works on.
    Map(MapId),
    /// A map operation done by user space.
    MapOp(MapId, crate::event::MapOp),
    /// An aggregation function's kind (lhist's bounds included).
    Agg(AggKind),
    /// The address space a builtin puts its value in (`kptr()`, `uptr()`).
    InSpace(Space),
    /// Where and how many bytes a builtin reads at its operand (`str()`).
    Read {
        space: Space,
        size: usize,
    },
    /// A constant byte count (`strncmp()`'s length).
    Count(u64),
    /// Constant bytes the value is made of (`pton()`'s address).
    Bytes(Vec<u8>),
    /// `join()`: the delimiter, and the space the array and its strings are read in.
    Join {
        delim: String,
        space: Space,
    },
    /// A stack argument: the `index`th 8-byte slot above the return address, read from
    /// `space` (`sarg1` at a uprobe).
    StackArg {
        index: u32,
        space: Space,
    },
    /// Which stack a stack builtin takes: user or kernel, and its stack type.
    Stack {
        user: bool,
        stack: StackType,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct TExpr {
    pub kind: TExprKind,
    pub ty: Type,
    pub span: Span,
}

/// The address space a pointer points into (bpftrace's `AddrSpace`): it picks the read
/// helper. Syscall tracepoint arguments are user pointers, kprobe and other tracepoint
/// data kernel ones; `Unset` (bpftrace's `none`, e.g. BEGIN casting an integer) reads
/// with the legacy `bpf_probe_read`, as bpftrace does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Space {
    Kernel,
    User,
    #[default]
    Unset,
}

impl Space {
    /// bpftrace's rule for a binary operation: the left side's space unless it is
    /// unset; two different set spaces give unset.
    pub fn combine(self, other: Space) -> Space {
        match (self, other) {
            (Space::Unset, s) => s,
            (s, Space::Unset) => s,
            (a, b) if a == b => a,
            _ => Space::Unset,
        }
    }
}

/// Where a value in memory lives.
#[derive(Clone, Debug, PartialEq)]
pub enum Base {
    /// Memory at the pointer this expression computes, read with the probe_read helper
    /// of its address space.
    Mem { ptr: Box<TExpr>, space: Space },
    /// The probe's context (a tracepoint's `args`, what `ctx` points at), read directly.
    Ctx,
}

/// A location in memory: `base + offset` bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub base: Base,
    pub offset: u32,
}

/// A bitfield within the scalar read at a [`Place`]: the read covers `bytes` bytes,
/// the field starts `shift` bits in and is `bits` wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitfield {
    pub bytes: u32,
    pub shift: u32,
    pub bits: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TExprKind {
    Int(u64),
    Str(String),
    Var(VarId),
    /// A builtin variable or function.
    Call(Call),
    /// A scalar read from memory (`ty` gives its width and signedness).
    Load {
        place: Place,
        bitfield: Option<Bitfield>,
    },
    /// An aggregate left in memory (type [`Type::Mem`]).
    InMemory(Place),
    Unary {
        op: crate::ast::UnaryOp,
        expr: Box<TExpr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
    },
    Ternary {
        cond: Box<TExpr>,
        then: Box<TExpr>,
        otherwise: Box<TExpr>,
    },
    /// An integer conversion or pointer reinterpretation to `ty`.
    Cast(Box<TExpr>),
    /// `(a, b, ...)`, laid out as its type's [`tuple_layout`].
    Tuple(Vec<TExpr>),
    /// The part of record value `expr` at `offset` (a field, an array element), of
    /// the expression's type.
    Field {
        expr: Box<TExpr>,
        offset: u32,
        bitfield: Option<Bitfield>,
    },
    /// Element `index` of a tuple value.
    TupleElem {
        expr: Box<TExpr>,
        index: usize,
    },
    /// The address of the probe's context record: as an integer (a tracepoint's
    /// `__data_loc` field is an offset from it), or as `ctx`'s pointer.
    CtxAddress,
    /// `stmts` run first, then `value` is the expression's value: `@a++` used as a
    /// value is `{ tmp = @a; @a = tmp + 1 }` then `tmp`.
    Effect {
        stmts: Vec<TStmt>,
        value: Box<TExpr>,
    },
    /// `@map[key]`: the value, or zero (empty) when the key is absent. `key` holds the
    /// key parts (none for a map without `[...]`).
    MapRead {
        map: MapId,
        key: Vec<TExpr>,
    },
}

impl TExpr {
    /// Whether evaluating it changes state (`@a++` as a value): then evaluation order
    /// is visible, and bpftrace's order must be kept.
    pub fn has_effect(&self) -> bool {
        match &self.kind {
            TExprKind::Effect { .. } => true,
            TExprKind::Int(_) | TExprKind::Str(_) | TExprKind::Var(_) | TExprKind::CtxAddress => {
                false
            }
            TExprKind::Call(call) => call.args.iter().any(TExpr::has_effect),
            TExprKind::Load { place, .. } | TExprKind::InMemory(place) => match &place.base {
                Base::Mem { ptr, .. } => ptr.has_effect(),
                Base::Ctx => false,
            },
            TExprKind::Unary { expr, .. } | TExprKind::Cast(expr) => expr.has_effect(),
            TExprKind::Binary { lhs, rhs, .. } => lhs.has_effect() || rhs.has_effect(),
            TExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => cond.has_effect() || then.has_effect() || otherwise.has_effect(),
            TExprKind::MapRead { key, .. } => key.iter().any(TExpr::has_effect),
            TExprKind::Tuple(elems) => elems.iter().any(TExpr::has_effect),
            TExprKind::TupleElem { expr, .. } | TExprKind::Field { expr, .. } => expr.has_effect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TStmt {
    pub kind: TStmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TStmtKind {
    /// An expression evaluated for nothing but its effects (none, today).
    Expr(TExpr),
    /// `$var = value` (compound assignments and `++`/`--` are desugared to this);
    /// `value` already has the variable's type where it is a scalar.
    Assign {
        var: VarId,
        value: TExpr,
    },
    If {
        cond: TExpr,
        then: Vec<TStmt>,
        otherwise: Vec<TStmt>,
    },
    While {
        cond: TExpr,
        body: Vec<TStmt>,
    },
    /// Statements in sequence (an `unroll` body, repeated).
    Block(Vec<TStmt>),
    Return,
    /// `@map[key] = value`; `value` already has the map's value type where it is a scalar.
    /// An aggregation value (`count()`) updates the map's state instead of replacing it.
    MapAssign {
        map: MapId,
        key: Vec<TExpr>,
        value: TExpr,
    },
    /// A builtin called as a statement (`printf`, `exit`, `delete`, ...).
    Call(Call),
}
