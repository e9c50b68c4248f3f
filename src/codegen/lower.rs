//! Lowering typed probes to programs: the prologue (context, variables, `-p` filter,
//! predicate), statements, and event records written on the stack and sent to the
//! ring buffer (with a lost-event counter when the ring buffer is full).
//!
//! Stack layout of every program: the `$variables` first (8 bytes for scalars, the
//! rounded-up size for strings and inet values, zeroed in the prologue so every path
//! the verifier explores reads initialized memory), then LIFO temporaries: event records,
//! spilled operands, probe_read destinations.

use super::builder::*;
use super::{
    map_index, runtime_value, CompileOptions, Compiled, Dest, MapRole, MapSpec, ProgramCode,
};
use crate::abi::insn::{helper, *};
use crate::abi::map_type;
use crate::diag::Diagnostic;
use crate::event::{ArgLayout, EventCatalog, EventKind, StackType, ValueLayout, EVENT_ID_SIZE};
use crate::probes::Timing;
use crate::sema::{
    Call, Record, Shape, TStmt, TStmtKind, Type, TypedMap, TypedProbe, TypedProgram,
};

/// Size of the event ring buffer.
pub const RINGBUF_BYTES: u32 = 1 << 20;

/// Compile every probe to a program, plus the maps and event layouts the runtime needs.
pub fn compile(
    program: &TypedProgram,
    options: &CompileOptions,
) -> Result<Compiled, Vec<Diagnostic>> {
    let mut events = Vec::new();
    let mut programs = Vec::new();
    let mut diags = Vec::new();
    let scratch_map = map_index::scratch(program.maps.len());
    let mut scratch_size = 0;
    let mut uses_runtime = false;
    let mut stacks = Vec::new();
    let names = super::maps::ProbeNameTable::of(program);
    for (index, probe) in program.probes.iter().enumerate() {
        let shared = Shared {
            events: &mut events,
            stacks: &mut stacks,
            probe_names: names.map_index.zip(Some(names.value_size())),
        };
        match lower_probe(probe, &program.maps, options, shared, scratch_map) {
            Ok((b, scratch, elapsed)) => {
                scratch_size = scratch_size.max(scratch);
                uses_runtime |= elapsed;
                programs.push(ProgramCode {
                    name: program_name(probe, index),
                    prog_type: probe.provider.prog_type,
                    attach_points: probe.attach_points.clone(),
                    cookie_base: names.bases[index],
                    one_of_several: probe.one_of_several,
                    insns: b.insns,
                    lines: b.lines,
                })
            }
            Err(msg) => diags.push(Diagnostic::error(probe.span, msg)),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let mut maps = standard_maps();
    let entries = match options.map_entries {
        0 => super::maps::MAP_ENTRIES,
        n => n,
    };
    maps.extend(super::maps::map_specs(&program.maps, entries));
    // The stack maps and the probe-names map follow the runtime-values map, which
    // follows scratch: both exist when either does.
    uses_runtime |= !stacks.is_empty() || names.map_index.is_some();
    // The runtime-values map is the one after scratch, so scratch exists when it does.
    if uses_runtime {
        scratch_size = scratch_size.max(8);
    }
    if scratch_size > 0 {
        maps.push(MapSpec {
            name: "scratch".into(),
            map_type: map_type::PERCPU_ARRAY,
            key_size: 4,
            value_size: scratch_size,
            max_entries: 1,
            role: MapRole::Scratch,
        });
    }
    if uses_runtime {
        maps.push(MapSpec {
            name: "runtime".into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: runtime_value::COUNT,
            role: MapRole::Runtime,
        });
    }
    maps.extend(names.map_spec());
    maps.extend(stacks.into_iter().map(stack_map_spec));
    Ok(Compiled {
        programs,
        maps,
        events: EventCatalog { events },
        unattached: program.unattached,
    })
}

/// A `BPF_MAP_TYPE_STACK_TRACE` map as bpftrace 0.17 creates it (`Map::Map(SizedType)`):
/// u32 stack id → `limit` u64 addresses, 128Ki entries.
fn stack_map_spec(stack: StackType) -> MapSpec {
    MapSpec {
        name: "stack".into(),
        map_type: map_type::STACK_TRACE,
        key_size: 4,
        value_size: 8 * stack.limit,
        max_entries: 128 << 10,
        role: MapRole::Stack(stack),
    }
}

/// The maps every compiled program has: the event ring buffer (index 0) and the
/// lost-event counter (index 1).
pub fn standard_maps() -> Vec<MapSpec> {
    vec![
        MapSpec {
            name: "events".into(),
            map_type: map_type::RINGBUF,
            key_size: 0,
            value_size: 0,
            max_entries: RINGBUF_BYTES,
            role: MapRole::Events,
        },
        MapSpec {
            name: "lost".into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: 2,
            role: MapRole::Lost,
        },
    ]
}

/// A kernel-acceptable program name (alphanumerics, `_`, `.`; 15 chars), unique by index.
fn program_name(probe: &TypedProbe, index: usize) -> String {
    let first = &probe.attach_points[0];
    // Named by the last part of the target: the function, the event.
    let stem = match first.provider.timing {
        Timing::Attached => format!(
            "{}_{}",
            first.provider.prog_prefix,
            first.target.last().cloned().unwrap_or_default()
        ),
        Timing::Start | Timing::End => first.provider.prog_prefix.to_string(),
    };
    let suffix = format!("_{index}");
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(15 - suffix.len())
        .collect();
    clean + &suffix
}

/// How a value of type `ty` is laid out in an event record (`None`: it has no value
/// representation, e.g. a struct left in memory).
pub fn value_layout(ty: &Type) -> Option<ValueLayout> {
    if let Type::Tuple(elems) = ty {
        let layout = crate::sema::tuple_layout(elems);
        let elems = elems
            .iter()
            .zip(&layout.offsets)
            .map(|(e, &offset)| {
                Some(ArgLayout {
                    offset: offset as usize,
                    value: value_layout(e)?,
                })
            })
            .collect::<Option<_>>()?;
        return Some(ValueLayout::Tuple {
            size: layout.size as usize,
            elems,
        });
    }
    if let Type::Record(r) = ty {
        return record_layout(r);
    }
    Some(match *ty {
        Type::Int { size, signed } => ValueLayout::Int {
            size: size as usize,
            signed,
        },
        Type::Ptr { .. } => ValueLayout::Int {
            size: 8,
            signed: false,
        },
        Type::Str { size } => ValueLayout::Str { size },
        Type::Buf { size } => ValueLayout::Buf { size },
        Type::Inet => ValueLayout::Inet,
        Type::MacAddr => ValueLayout::MacAddr,
        Type::Timestamp { size } => ValueLayout::Timestamp { size },
        Type::CgroupPath { size } => ValueLayout::CgroupPath { size },
        Type::Username => ValueLayout::Username,
        Type::Strerror => ValueLayout::Strerror,
        Type::Stack { user, stack } => ValueLayout::Stack { user, stack },
        Type::Ksym => ValueLayout::Ksym,
        Type::Usym => ValueLayout::Usym,
        Type::Mem { .. } | Type::Void | Type::Agg(_) | Type::Tuple(_) | Type::Record(_) => {
            return None
        }
    })
}

/// A struct's fields or an array's elements, each at its offset.
fn record_layout(r: &Record) -> Option<ValueLayout> {
    let size = r.size as usize;
    let at = |offset: u32, ty: &Type| {
        let value = match ty {
            Type::Ptr { .. } => ValueLayout::Pointer,
            ty => value_layout(ty)?,
        };
        Some(ArgLayout {
            offset: offset as usize,
            value,
        })
    };
    Some(match &r.shape {
        Shape::Fields(fields) => ValueLayout::Struct {
            size,
            fields: fields
                .iter()
                .map(|f| Some((f.name.clone(), at(f.offset, &f.ty)?)))
                .collect::<Option<_>>()?,
        },
        Shape::Array { elem, len } => ValueLayout::Array {
            size,
            elems: (0..*len)
                .map(|i| at(i * elem.size() as u32, elem))
                .collect::<Option<_>>()?,
        },
    })
}

/// Per-program lowering state, handed to each builtin's lowering.
pub struct Gen<'a> {
    pub b: Builder,
    /// The stack slot of each `$variable`, by `VarId`.
    pub vars: Vec<Slot>,
    /// Where `return`, `exit()`, a failed predicate or `-p` mismatch go: `return 0`.
    pub done: Label,
    /// The program's `@maps`, by `MapId`.
    pub maps: &'a [TypedMap],
    events: &'a mut Vec<EventKind>,
    /// The stack maps' types, shared by all programs: the k-th is map
    /// [`super::map_index::stacks`] + k.
    stacks: &'a mut Vec<StackType>,
    /// The probe-names map's index and value size, when a program reads `probe` by cookie.
    probe_names: Option<(u32, u32)>,
    /// Index of the per-CPU scratch map, and the bytes of it this program uses.
    scratch_map: u32,
    scratch_size: u32,
    /// Whether the program reads the runtime-values map (`elapsed`, `cpid`), at
    /// `scratch_map + 1`.
    uses_runtime: bool,
    /// Internal errors (a builtin lowered where its type rule never puts it).
    pub(super) errors: Vec<String>,
    /// The stack slot counting this run's failed map updates (when the script has
    /// maps, so the drops map exists); see `Gen::flush_drops`.
    pub(super) drops: Option<Slot>,
    /// `-k`/`-kk`: [`CompileOptions::helper_checks`].
    pub(super) helper_checks: u8,
}

/// What all programs of a script add to or share: event kinds, stack maps, the
/// probe-names map.
struct Shared<'s> {
    events: &'s mut Vec<EventKind>,
    stacks: &'s mut Vec<StackType>,
    probe_names: Option<(u32, u32)>,
}

fn lower_probe(
    probe: &TypedProbe,
    maps: &[TypedMap],
    options: &CompileOptions,
    shared: Shared<'_>,
    scratch_map: u32,
) -> Result<(Builder, u32, bool), String> {
    let mut b = Builder::new();
    let done = b.label();
    let mut g = Gen {
        b,
        vars: Vec::new(),
        done,
        maps,
        events: shared.events,
        stacks: shared.stacks,
        probe_names: shared.probe_names,
        scratch_map,
        scratch_size: 0,
        uses_runtime: false,
        errors: Vec::new(),
        drops: None,
        helper_checks: options.helper_checks,
    };
    g.b.source(probe.span.start);
    g.b.mov(R_CTX, R1);
    for var in &probe.vars {
        let slot = g.b.alloc(var.ty.size().max(8) as u32);
        for i in (0..slot.size).step_by(8) {
            g.b.st_imm(Size::DW, R_FP, slot.at(i), 0);
        }
        g.vars.push(slot);
    }
    if !maps.is_empty() {
        let acc = g.b.alloc(8);
        g.b.st_imm(Size::DW, R_FP, acc.off, 0);
        g.drops = Some(acc);
    }
    if let (Some(pid), false) = (
        options.pid_filter,
        probe.provider.timing != Timing::Attached,
    ) {
        g.b.call(helper::GET_CURRENT_PID_TGID);
        g.b.alu_imm(BPF_RSH, R0, 32);
        g.b.load_const(R1, pid as u64);
        g.b.jmp(BPF_JNE, R0, R1, done);
    }
    if let Some(pred) = &probe.predicate {
        g.b.source(pred.span.start);
        g.branch(pred, done, false);
    }
    g.stmts(&probe.body);
    g.b.bind(done);
    g.flush_drops();
    g.b.mov_imm(R0, 0);
    g.b.exit();
    if let Some(error) = g.errors.into_iter().next() {
        return Err(error);
    }
    Ok((g.b.finish()?, g.scratch_size, g.uses_runtime))
}

impl Gen<'_> {
    /// Reports a builtin lowered into a destination its type rule does not produce.
    pub fn misplaced(&mut self, call: &Call, dest: Dest) {
        self.errors.push(format!(
            "internal error: {} cannot be lowered into {dest:?}",
            call.builtin.name
        ));
    }

    /// Lowers a scalar builtin that `emit`s its value into r0, into `dest`'s register.
    pub fn into_reg(&mut self, call: &Call, dest: Dest, emit: impl FnOnce(&mut Self)) {
        match dest {
            Dest::Reg(reg) => {
                emit(self);
                if reg != R0 {
                    self.b.mov(reg, R0);
                }
            }
            _ => self.misplaced(call, dest),
        }
    }

    pub(super) fn stmts(&mut self, stmts: &[TStmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &TStmt) {
        self.b.source(s.span.start);
        let mark = self.b.mark();
        match &s.kind {
            TStmtKind::Expr(e) => {
                if e.ty.is_scalar() {
                    self.scalar(e);
                }
            }
            TStmtKind::Assign { var, value } => {
                let slot = self.vars[var.0];
                if value.ty.is_scalar() {
                    self.scalar(value);
                    self.b.stx(Size::DW, R_FP, slot.off, R0);
                } else if let Type::Tuple(_) = value.ty {
                    // As bpftrace 0.17 copies a tuple: its own bytes (a narrower one in
                    // its own layout) over the start of the variable, the rest kept.
                    let cap = (value.ty.size() as u32).next_multiple_of(8).min(slot.size);
                    self.write_value(value, Loc::stack(slot.off), cap);
                } else {
                    self.write_value(value, Loc::stack(slot.off), slot.size);
                }
            }
            TStmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let otherwise =
                    (!otherwise.is_empty()).then_some(|g: &mut Self| g.stmts(otherwise));
                self.if_else(cond, |g| g.stmts(then), otherwise);
            }
            TStmtKind::While { cond, body } => {
                let top = self.b.label();
                let end = self.b.label();
                self.b.bind(top);
                self.branch(cond, end, false);
                self.stmts(body);
                self.b.ja(top);
                self.b.bind(end);
            }
            TStmtKind::Block(body) => self.stmts(body),
            TStmtKind::Return => self.b.ja(self.done),
            TStmtKind::MapAssign { map, key, value } => self.map_assign(*map, key, value, s.span),
            TStmtKind::Call(call) => (call.builtin.lower)(self, call, Dest::Effect),
        }
        self.b.release(mark);
    }

    /// Adds an event record kind to the catalog; its id goes first in the record.
    pub fn event(&mut self, kind: EventKind) -> usize {
        self.events.push(kind);
        self.events.len() - 1
    }

    /// Sets the exit flag in the status array (`exit()`), before its record is sent.
    pub fn request_exit(&mut self) {
        let mark = self.b.mark();
        let done = self.b.label();
        let key = self.b.alloc(8);
        self.b
            .st_imm(Size::DW, R_FP, key.off, map_index::LOST_EXIT_FLAG as i32);
        self.b.ld_map(R1, map_index::LOST);
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        self.b.jmp_imm(BPF_JEQ, R0, 0, done);
        self.b.st_imm(Size::DW, R0, 0, 1);
        self.b.bind(done);
        self.b.release(mark);
    }

    /// A record with only the event id (`time`, `exit`).
    pub fn emit_bare_event(&mut self, id: usize) {
        let rec = self.b.alloc(EVENT_ID_SIZE as u32);
        self.b.st_imm(Size::DW, R_FP, rec.off, id as i32);
        self.output(rec);
    }

    /// `size` bytes of per-CPU scratch space for building one statement's value when it
    /// would not fit the 512-byte stack: points [`R_SCRATCH`] at it. Scratch is one
    /// region per program, used by one statement at a time.
    pub fn scratch(&mut self, size: u32) -> Loc {
        self.scratch_size = self.scratch_size.max(size.next_multiple_of(8));
        let mark = self.b.mark();
        let key = self.b.alloc(8);
        self.b.st_imm(Size::DW, R_FP, key.off, 0);
        self.b.ld_map(R1, self.scratch_map);
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        // An array's key 0 always exists; the verifier still wants the check.
        self.b.jmp_imm(BPF_JEQ, R0, 0, self.done);
        self.b.mov(R_SCRATCH, R0);
        self.b.release(mark);
        Loc {
            base: R_SCRATCH,
            off: 0,
        }
    }

    /// r0 = slot `index` of the values user space stores before BEGIN (0 if unset;
    /// see [`super::runtime_value`]); the map is created because this is called.
    pub fn runtime_value(&mut self, index: u32) {
        self.uses_runtime = true;
        let mark = self.b.mark();
        let key = self.b.alloc(8);
        self.b.st_imm(Size::DW, R_FP, key.off, index as i32);
        self.b.ld_map(R1, self.scratch_map + 1);
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        let missing = self.b.label();
        self.b.jmp_imm(BPF_JEQ, R0, 0, missing);
        self.b.ldx(Size::DW, R0, R0, 0);
        self.b.bind(missing);
        self.b.release(mark);
    }

    /// The map index of the stack map for `stack` (created because this is called).
    pub fn stack_map(&mut self, stack: StackType) -> u32 {
        let k = match self.stacks.iter().position(|s| *s == stack) {
            Some(k) => k,
            None => {
                self.stacks.push(stack);
                self.stacks.len() - 1
            }
        };
        map_index::stacks(self.maps.len(), self.probe_names.is_some()) + k as u32
    }

    /// The probe-names map's index and value size ([`MapRole::ProbeNames`]), for a
    /// program whose `probe` is read by cookie.
    pub fn probe_names_map(&self) -> Option<(u32, u32)> {
        self.probe_names
    }

    /// `bpf_ringbuf_output(events, record)`; on failure count the loss in the `lost` map.
    pub fn output(&mut self, rec: Slot) {
        self.output_at(Loc::stack(rec.off), rec.size);
    }

    /// [`Gen::output`] of the `size`-byte record at `rec`.
    pub fn output_at(&mut self, rec: Loc, size: u32) {
        let ok = self.b.label();
        self.b.ld_map(R1, map_index::EVENTS);
        self.b.addr(R2, rec);
        self.b.mov_imm(R3, size as i32);
        self.b.mov_imm(R4, 0);
        self.b.call(helper::RINGBUF_OUTPUT);
        self.b.jmp_imm(BPF_JEQ, R0, 0, ok);
        let key = self.b.alloc(8);
        self.b.st_imm(Size::DW, R_FP, key.off, 0);
        self.b.ld_map(R1, map_index::LOST);
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        self.b.jmp_imm(BPF_JEQ, R0, 0, ok);
        self.b.mov_imm(R1, 1);
        self.b.atomic_add64(R0, 0, R1);
        self.b.bind(ok);
    }
}
