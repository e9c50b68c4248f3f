//! `@maps` as BPF maps: plain values in a hash map, aggregations in a per-CPU hash map
//! (each CPU updates its own state without atomics; user space merges them). Keys are
//! built on the stack: each part at an 8-aligned offset (integers as u64, strings at
//! their size rounded up to 8), a keyless map's one key is a u64 0, and hist/lhist
//! append a u64 bucket index. An update that fails (the map is full) is counted in the
//! drops map, which the runtime reports.

use super::builder::*;
use super::lower::Gen;
use super::{map_index, value_layout, Dest, MapRole, MapSpec, MapValue, UserMap};
use crate::abi::insn::{helper, *};
use crate::abi::map_type;
use crate::diag::Span;
use crate::event::{ArgLayout, ValueLayout};
use crate::sema::{
    AggKind, Call, MapId, ProbeNames, TExpr, TExprKind, Type, TypedMap, TypedProgram,
};

/// Entries per map, as bpftrace's default (`BPFTRACE_MAP_KEYS_MAX`).
pub const MAP_ENTRIES: u32 = 4096;
/// `map_update_elem` flag: create or replace.
const BPF_ANY: i32 = 0;

/// Bytes a key part or value of type `ty` takes in a map.
fn stored_size(ty: &Type) -> u32 {
    if ty.is_scalar() {
        8
    } else {
        (ty.size() as u32).next_multiple_of(8).max(8)
    }
}

/// The offsets and layouts of a key's parts, and the key's size.
fn key_layout(parts: &[Type]) -> (Vec<ArgLayout>, u32) {
    let mut offset = 0;
    let mut layout = Vec::with_capacity(parts.len());
    for part in parts {
        if let Some(value) = stored_layout(part) {
            layout.push(ArgLayout {
                offset: offset as usize,
                value,
            });
        }
        offset += stored_size(part);
    }
    (layout, offset.max(8))
}

/// How a key part or value of type `ty` is laid out in a map: scalars widened to 8 bytes.
fn stored_layout(ty: &Type) -> Option<ValueLayout> {
    match value_layout(ty)? {
        ValueLayout::Int { signed, .. } => Some(ValueLayout::Int { size: 8, signed }),
        ValueLayout::Str { .. } => Some(ValueLayout::Str {
            size: stored_size(ty) as usize,
        }),
        other => Some(other),
    }
}

/// The kernel map for each `@map`, then the drops counter when there are any.
pub fn map_specs(maps: &[TypedMap], entries: u32) -> Vec<MapSpec> {
    let mut specs: Vec<MapSpec> = maps
        .iter()
        .map(|m| {
            let (key, user_key_size) = key_layout(&m.key);
            let (map_type, key_size, value) = match &m.value {
                Type::Agg(kind) => {
                    let bucket = if kind.bucketed() { 8 } else { 0 };
                    let size = if m.keyed { user_key_size } else { 8 };
                    (
                        map_type::PERCPU_HASH,
                        size + bucket,
                        MapValue::Aggregate(*kind),
                    )
                }
                ty => (
                    map_type::HASH,
                    user_key_size,
                    MapValue::Plain(stored_layout(ty).unwrap_or(ValueLayout::Int {
                        size: 8,
                        signed: false,
                    })),
                ),
            };
            MapSpec {
                name: format!("@{}", m.name),
                map_type,
                key_size,
                value_size: stored_size(&m.value),
                max_entries: entries,
                role: MapRole::User(UserMap {
                    name: format!("@{}", m.name),
                    keyed: m.keyed,
                    key,
                    labels: m.labels.clone(),
                    value,
                }),
            }
        })
        .collect();
    if !specs.is_empty() {
        specs.push(MapSpec {
            name: "drops".into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            role: MapRole::Drops,
        });
    }
    specs
}

impl Gen<'_> {
    fn map_index(&self, map: MapId) -> u32 {
        map_index::user(map.0)
    }

    /// Builds `@map[parts]`'s key in a fresh stack slot, with `extra` more bytes after it
    /// (a bucket index).
    fn map_key(&mut self, map: MapId, parts: &[TExpr], extra: u32) -> (Slot, u32) {
        let types = self.maps[map.0].key.clone();
        let (layout, size) = key_layout(&types);
        let key = self.b.alloc(size + extra);
        if parts.is_empty() {
            self.b.st_imm(Size::DW, R_FP, key.off, 0);
        }
        for ((part, at), ty) in parts.iter().zip(&layout).zip(&types) {
            let to = key.at(at.offset as u32);
            if part.ty.is_scalar() {
                let mark = self.b.mark();
                self.scalar(part);
                self.b.release(mark);
                self.b.stx(Size::DW, R_FP, to, R0);
            } else {
                self.write_value(part, Loc::stack(to), stored_size(ty));
            }
        }
        (key, size)
    }

    /// Write `value` (scalar or in-memory) into a fresh stack slot of `size` bytes.
    fn stored(&mut self, value: &TExpr, size: u32) -> Slot {
        let slot = self.b.alloc(size);
        if value.ty.is_scalar() {
            self.scalar(value);
            self.b.stx(Size::DW, R_FP, slot.off, R0);
        } else {
            self.write_value(value, Loc::stack(slot.off), slot.size);
        }
        slot
    }

    /// r0 = pointer to the value stored under `key`, or 0 (`-kk` reports that at
    /// `span`, the read's).
    fn map_lookup(&mut self, map: MapId, parts: &[TExpr], span: Span) {
        let mark = self.b.mark();
        let (key, _) = self.map_key(map, parts, 0);
        self.b.ld_map(R1, self.map_index(map));
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        self.check_lookup(span, 1);
        self.b.release(mark);
    }

    /// r0 = the scalar stored under `key`, or 0.
    pub fn map_read_scalar(&mut self, map: MapId, key: &[TExpr], span: Span) {
        let absent = self.b.label();
        let end = self.b.label();
        self.map_lookup(map, key, span);
        self.b.jmp_imm(BPF_JEQ, R0, 0, absent);
        self.b.ldx(Size::DW, R0, R0, 0);
        self.b.ja(end);
        self.b.bind(absent);
        self.b.mov_imm(R0, 0);
        self.b.bind(end);
    }

    /// Copy the string/inet value stored under `key` to `dst` (`cap` bytes, zeros when
    /// absent).
    pub fn map_read_into(&mut self, map: MapId, key: &[TExpr], span: Span, dst: Loc, cap: u32) {
        let stored = stored_size(&self.maps[map.0].value);
        self.zero(dst, cap);
        let absent = self.b.label();
        self.map_lookup(map, key, span);
        self.b.jmp_imm(BPF_JEQ, R0, 0, absent);
        for i in (0..cap.min(stored)).step_by(8) {
            let to = dst.at(i);
            self.b.ldx(Size::DW, R1, R0, i as i16);
            self.b.stx(Size::DW, to.base, to.off, R1);
        }
        self.b.bind(absent);
    }

    /// `@map[key] = value`; an aggregation value updates the map's state instead.
    /// `-k` reports a failed update at `span`, the statement (bpftrace: its `=`).
    pub fn map_assign(&mut self, map: MapId, key: &[TExpr], value: &TExpr, span: Span) {
        if let TExprKind::Call(call) = &value.kind {
            if matches!(value.ty, Type::Agg(_)) {
                return self.map_aggregate(map, key, call);
            }
        }
        let size = stored_size(&self.maps[map.0].value);
        // bpftrace evaluates the value before the key: visible only with side effects.
        let (key, value) = if value.has_effect() || key.iter().any(TExpr::has_effect) {
            let value = self.stored(value, size);
            (self.map_key(map, key, 0).0, value)
        } else {
            let (key, _) = self.map_key(map, key, 0);
            (key, self.stored(value, size))
        };
        self.b.ld_map(R1, self.map_index(map));
        self.b.stack_addr(R2, key.off);
        self.b.stack_addr(R3, value.off);
        self.b.mov_imm(R4, BPF_ANY);
        self.b.call(helper::MAP_UPDATE_ELEM);
        self.check_helper(helper::MAP_UPDATE_ELEM, span);
        // Branch-free: r0 is 0 or a negative errno, so its sign bit is the failure.
        // A branch per update made the verifier's cost grow with each one (1000
        // updates took seconds to verify, ~4000 exceeded its limit on pending jumps).
        self.b.alu_imm(BPF_RSH, R0, 63);
        self.add_drops(R0);
    }

    /// `@map[key] = agg(x)`: find (or create, zeroed) this CPU's state for the key and
    /// let the aggregation fold the operand into it.
    fn map_aggregate(&mut self, map: MapId, key: &[TExpr], call: &Call) {
        let Type::Agg(kind) = self.maps[map.0].value else {
            return self.misplaced(call, Dest::Effect);
        };
        let operand = self.b.alloc(8);
        match call.args.first() {
            Some(arg) => {
                let mark = self.b.mark();
                self.scalar(arg);
                self.b.release(mark);
                self.b.stx(Size::DW, R_FP, operand.off, R0);
            }
            None => self.b.st_imm(Size::DW, R_FP, operand.off, 0),
        }
        let bucket = if kind.bucketed() { 8 } else { 0 };
        let (key, user_size) = self.map_key(map, key, bucket);
        let found = self.b.label();
        let end = self.b.label();
        (call.builtin.lower)(
            self,
            call,
            Dest::Prepare {
                operand: operand.off,
                at: Loc::stack(key.at(user_size)),
                skip: end,
            },
        );
        let index = self.map_index(map);
        let lookup = |g: &mut Self| {
            g.b.ld_map(R1, index);
            g.b.stack_addr(R2, key.off);
            g.b.call(helper::MAP_LOOKUP_ELEM);
        };
        lookup(self);
        // bpftrace keeps a keyless count() in an array, whose lookups never miss, and
        // reads avg/stats state with two lookups.
        let lookups = match kind {
            AggKind::Count if !self.maps[map.0].keyed => 0,
            AggKind::Avg | AggKind::Stats => 2,
            _ => 1,
        };
        self.check_lookup(call.span, lookups);
        self.b.jmp_imm(BPF_JNE, R0, 0, found);
        // A new key: fold the operand into a zeroed state on the stack and store that
        // (BPF_ANY: if another CPU created the key meanwhile, a per-CPU update still
        // writes only this CPU's slot, which was zero). One branch per update, as in
        // bpftrace: a second lookup made three paths per aggregation whose states in
        // a `while` loop never pruned (exponential, over the verifier's limit by 25
        // iterations).
        let zero = self.b.alloc(kind.slot_size());
        self.zero(Loc::stack(zero.off), zero.size);
        self.b.stack_addr(R0, zero.off);
        (call.builtin.lower)(
            self,
            call,
            Dest::State {
                operand: operand.off,
            },
        );
        self.b.ld_map(R1, index);
        self.b.stack_addr(R2, key.off);
        self.b.stack_addr(R3, zero.off);
        self.b.mov_imm(R4, BPF_ANY);
        self.b.call(helper::MAP_UPDATE_ELEM);
        self.check_helper(helper::MAP_UPDATE_ELEM, call.span);
        // Branch-free, as for plain updates: r0's sign bit is a failure (map full).
        self.b.alu_imm(BPF_RSH, R0, 63);
        self.add_drops(R0);
        self.b.ja(end);
        self.b.bind(found);
        (call.builtin.lower)(
            self,
            call,
            Dest::State {
                operand: operand.off,
            },
        );
        self.b.bind(end);
    }

    /// `delete(@map[key])`; `-k` reports a failure (no such key) at `span`, the call.
    pub fn map_delete(&mut self, map: MapId, key: &[TExpr], span: Span) {
        let (key, _) = self.map_key(map, key, 0);
        self.b.ld_map(R1, self.map_index(map));
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_DELETE_ELEM);
        self.check_helper(helper::MAP_DELETE_ELEM, span);
    }

    /// Adds `count` (a register holding 0 or 1) to this run's count of failed map
    /// updates (the map is full), kept on the stack: [`Gen::flush_drops`] adds it to
    /// the drops map once, at the program's end.
    fn add_drops(&mut self, count: Reg) {
        let Some(acc) = self.drops else {
            return self
                .errors
                .push("internal error: a map update in a program with no drops counter".into());
        };
        self.b.ldx(Size::DW, R1, R_FP, acc.off);
        self.b.alu(BPF_ADD, R1, count);
        self.b.stx(Size::DW, R_FP, acc.off, R1);
    }

    /// At the program's end: adds the run's failed updates, if any, to the drops map.
    pub(super) fn flush_drops(&mut self) {
        let Some(acc) = self.drops else { return };
        let mark = self.b.mark();
        let done = self.b.label();
        self.b.ldx(Size::DW, R1, R_FP, acc.off);
        self.b.jmp_imm(BPF_JEQ, R1, 0, done);
        let key = self.b.alloc(8);
        self.b.st_imm(Size::DW, R_FP, key.off, 0);
        self.b.ld_map(R1, map_index::drops(self.maps.len()));
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        self.b.jmp_imm(BPF_JEQ, R0, 0, done);
        self.b.ldx(Size::DW, R1, R_FP, acc.off);
        self.b.atomic_add64(R0, 0, R1);
        self.b.bind(done);
        self.b.release(mark);
    }
}

/// The names programs read `probe` from by cookie ([`crate::sema::ProbeNames::Cookie`]):
/// each such program's attach points in order, one table for the script.
pub(super) struct ProbeNameTable {
    names: Vec<String>,
    /// Per probe: the index of its first attach point's name (`None`: not by cookie).
    pub bases: Vec<Option<u64>>,
    /// The map's index, when any program reads it.
    pub map_index: Option<u32>,
}

impl ProbeNameTable {
    pub fn of(program: &TypedProgram) -> ProbeNameTable {
        let mut names = Vec::new();
        let bases: Vec<Option<u64>> = program
            .probes
            .iter()
            .map(|probe| {
                (probe.probe_names == ProbeNames::Cookie).then(|| {
                    let base = names.len() as u64;
                    names.extend(probe.attach_points.iter().map(|p| p.name()));
                    base
                })
            })
            .collect();
        let map_index = (!names.is_empty()).then(|| map_index::probe_names(program.maps.len()));
        ProbeNameTable {
            names,
            bases,
            map_index,
        }
    }

    /// Each name NUL-padded to the longest's size (8-byte rounded).
    pub fn value_size(&self) -> u32 {
        let longest = self.names.iter().map(String::len).max().unwrap_or(0);
        (longest as u32 + 1).next_multiple_of(8)
    }

    /// An array of the names, by cookie.
    pub fn map_spec(self) -> Option<MapSpec> {
        self.map_index?;
        Some(MapSpec {
            name: "probe_names".into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: self.value_size(),
            max_entries: self.names.len() as u32,
            role: MapRole::ProbeNames(self.names),
        })
    }
}
