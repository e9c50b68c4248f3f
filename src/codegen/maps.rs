//! `@maps` as BPF hash maps: keys and values are built on the stack, then
//! `map_lookup_elem` / `map_update_elem` / `map_delete_elem`. Scalar keys and values are
//! 8 bytes (u64); strings and inet values take their size rounded up to 8.

use super::builder::*;
use super::lower::Gen;
use super::{map_index, value_layout, MapRole, MapSpec, MapValue, UserMap};
use crate::abi::insn::{helper, *};
use crate::event::ValueLayout;
use crate::sema::{MapId, TExpr, Type, TypedMap};

/// Entries per map, as bpftrace's default (`BPFTRACE_MAP_KEYS_MAX`).
pub const MAP_ENTRIES: u32 = 4096;
/// `map_update_elem` flag: create or replace.
const BPF_ANY: i32 = 0;

/// Bytes a key or value of type `ty` takes in a map.
fn stored_size(ty: &Type) -> u32 {
    if ty.is_scalar() {
        8
    } else {
        (ty.size() as u32).next_multiple_of(8).max(8)
    }
}

/// The kernel map for each `@map`.
pub fn map_specs(maps: &[TypedMap]) -> Vec<MapSpec> {
    maps.iter()
        .map(|m| MapSpec {
            name: format!("@{}", m.name),
            map_type: crate::abi::map_type::HASH,
            key_size: stored_size(&m.key),
            value_size: stored_size(&m.value),
            max_entries: MAP_ENTRIES,
            role: MapRole::User(UserMap {
                name: format!("@{}", m.name),
                key: m.keyed.then(|| stored_layout(&m.key)).flatten(),
                value: MapValue::Plain(stored_layout(&m.value).unwrap_or(ValueLayout::Int {
                    size: 8,
                    signed: false,
                })),
            }),
        })
        .collect()
}

/// How a key or value of type `ty` is laid out in a map: scalars widened to 8 bytes.
fn stored_layout(ty: &Type) -> Option<ValueLayout> {
    match value_layout(ty)? {
        ValueLayout::Int { signed, .. } => Some(ValueLayout::Int { size: 8, signed }),
        ValueLayout::Str { .. } => Some(ValueLayout::Str {
            size: stored_size(ty) as usize,
        }),
        other => Some(other),
    }
}

impl Gen<'_> {
    fn map_info(&self, map: MapId) -> (u32, Type, Type) {
        let m = &self.maps[map.0];
        (
            map_index::FIRST_USER + map.0 as u32,
            m.key.clone(),
            m.value.clone(),
        )
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

    /// r0 = pointer to the value stored under `key`, or 0.
    fn map_lookup(&mut self, map: MapId, key: &TExpr) {
        let (index, key_ty, _) = self.map_info(map);
        let mark = self.b.mark();
        let key = self.stored(key, stored_size(&key_ty));
        self.b.ld_map(R1, index);
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        self.b.release(mark);
    }

    /// r0 = the scalar stored under `key`, or 0.
    pub fn map_read_scalar(&mut self, map: MapId, key: &TExpr) {
        let absent = self.b.label();
        let end = self.b.label();
        self.map_lookup(map, key);
        self.b.jmp_imm(BPF_JEQ, R0, 0, absent);
        self.b.ldx(Size::DW, R0, R0, 0);
        self.b.ja(end);
        self.b.bind(absent);
        self.b.mov_imm(R0, 0);
        self.b.bind(end);
    }

    /// Copy the string/inet value stored under `key` to `dst` (`cap` bytes, zeros when
    /// absent).
    pub fn map_read_into(&mut self, map: MapId, key: &TExpr, dst: Loc, cap: u32) {
        let (_, _, value_ty) = self.map_info(map);
        self.zero(dst, cap);
        let absent = self.b.label();
        self.map_lookup(map, key);
        self.b.jmp_imm(BPF_JEQ, R0, 0, absent);
        for i in (0..cap.min(stored_size(&value_ty))).step_by(8) {
            let to = dst.at(i);
            self.b.ldx(Size::DW, R1, R0, i as i16);
            self.b.stx(Size::DW, to.base, to.off, R1);
        }
        self.b.bind(absent);
    }

    /// `@map[key] = value`
    pub fn map_assign(&mut self, map: MapId, key: &TExpr, value: &TExpr) {
        let (index, key_ty, value_ty) = self.map_info(map);
        let key = self.stored(key, stored_size(&key_ty));
        let value = self.stored(value, stored_size(&value_ty));
        self.b.ld_map(R1, index);
        self.b.stack_addr(R2, key.off);
        self.b.stack_addr(R3, value.off);
        self.b.mov_imm(R4, BPF_ANY);
        self.b.call(helper::MAP_UPDATE_ELEM);
    }

    /// `delete(@map[key])`
    pub fn map_delete(&mut self, map: MapId, key: &TExpr) {
        let (index, key_ty, _) = self.map_info(map);
        let key = self.stored(key, stored_size(&key_ty));
        self.b.ld_map(R1, index);
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_DELETE_ELEM);
    }
}
