//! Tuples in memory, laid out as bpftrace 0.17 lays them out (`sema::tuple_layout`):
//! integers at offsets aligned to their size, strings and nested tuples wherever the
//! layout puts them. Stack accesses must be naturally aligned (the verifier insists),
//! so an element at an offset that is not 8-aligned is built in a temporary and copied
//! in the widest aligned pieces.

use super::builder::*;
use super::lower::Gen;
use crate::sema::{tuple_layout, Bitfield, TExpr, TExprKind, Type};

impl Gen<'_> {
    /// Write the tuple `(elems...)` of type `ty` to `dst`, filling `cap` bytes (padding
    /// zeroed).
    pub fn write_tuple(&mut self, elems: &[TExpr], ty: &Type, dst: Loc, cap: u32) {
        let Type::Tuple(types) = ty else {
            return self.misplaced_tuple(ty);
        };
        let layout = tuple_layout(types);
        self.zero(dst, cap);
        for (elem, &off) in elems.iter().zip(&layout.offsets) {
            let to = dst.at(off);
            let size = elem.ty.size() as u32;
            let mark = self.b.mark();
            if elem.ty.is_scalar() {
                self.scalar(elem);
                self.b.stx(Size::of(size), to.base, to.off, R0);
            } else if aligned(to, 8) && off + size.next_multiple_of(8) <= cap {
                // What spills past the element belongs to later ones, written after it.
                self.write_value(elem, to, size.next_multiple_of(8));
            } else {
                let tmp = Loc::stack(self.b.alloc(size).off);
                self.write_value(elem, tmp, size.next_multiple_of(8));
                self.copy_bytes(tmp, to, size);
            }
            self.b.release(mark);
        }
    }

    /// r0 = scalar element `index` of tuple `base`.
    pub fn tuple_elem_scalar(&mut self, base: &TExpr, index: usize, ty: &Type) {
        let mark = self.b.mark();
        let Some((at, _)) = self.tuple_elem_at(base, index) else {
            return self.misplaced_tuple(&base.ty);
        };
        let size = ty.size() as u32;
        self.b.ldx(Size::of(size), R0, at.base, at.off);
        self.normalize(R0, size, ty.is_signed());
        self.b.release(mark);
    }

    /// Copy in-memory element `index` of tuple `base` (a string, a tuple) to `dst`,
    /// filling `cap` bytes.
    pub fn tuple_elem_into(&mut self, base: &TExpr, index: usize, dst: Loc, cap: u32) {
        let mark = self.b.mark();
        let Some((at, size)) = self.tuple_elem_at(base, index) else {
            return self.misplaced_tuple(&base.ty);
        };
        self.zero(dst, cap);
        self.copy_bytes(at, dst, size.min(cap));
        self.b.release(mark);
    }

    /// Where element `index` of `base` is, and its size: in the variable itself, else
    /// in a temporary holding the whole tuple (released by the caller's mark).
    fn tuple_elem_at(&mut self, base: &TExpr, index: usize) -> Option<(Loc, u32)> {
        let Type::Tuple(types) = &base.ty else {
            return None;
        };
        let layout = tuple_layout(types);
        let off = *layout.offsets.get(index)?;
        let size = types[index].size() as u32;
        Some((self.whole_at(base).at(off), size))
    }

    /// Where value `base` (a tuple, a record) is: in the variable itself, else in a
    /// temporary holding it (released by the caller's mark).
    fn whole_at(&mut self, base: &TExpr) -> Loc {
        match base.kind {
            TExprKind::Var(id) => Loc::stack(self.vars[id.0].off),
            _ => {
                let tmp = self.b.alloc(base.ty.size() as u32);
                self.write_value(base, Loc::stack(tmp.off), tmp.size);
                Loc::stack(tmp.off)
            }
        }
    }

    /// r0 = the scalar of type `ty` at `offset` in record value `base` (a field, an
    /// array element, a bitfield's unit).
    pub fn part_scalar(
        &mut self,
        base: &TExpr,
        offset: u32,
        ty: &Type,
        bitfield: Option<Bitfield>,
    ) {
        let mark = self.b.mark();
        let at = self.whole_at(base).at(offset);
        let size = bitfield.map_or(ty.size() as u32, |b| b.bytes);
        if aligned(at, size) {
            self.b.ldx(Size::of(size), R0, at.base, at.off);
        } else {
            // Stack reads must be aligned: copy the bytes into an aligned temporary.
            let tmp = Loc::stack(self.b.alloc(8).off);
            self.copy_bytes(at, tmp, size);
            self.b.ldx(Size::of(size), R0, tmp.base, tmp.off);
        }
        match bitfield {
            Some(_) => self.finish_load(R0, ty, bitfield),
            None => self.normalize(R0, size, ty.is_signed()),
        }
        self.b.release(mark);
    }

    /// Copy the `size` bytes at `offset` in record value `base` (a string, a nested
    /// record) to `dst`, filling `cap` bytes.
    pub fn part_into(&mut self, base: &TExpr, offset: u32, size: u32, dst: Loc, cap: u32) {
        let mark = self.b.mark();
        let at = self.whole_at(base).at(offset);
        self.zero(dst, cap);
        self.copy_bytes(at, dst, size.min(cap));
        self.b.release(mark);
    }

    /// Copy `n` bytes from `src` to `dst` in the widest pieces aligned at both ends.
    pub fn copy_bytes(&mut self, src: Loc, dst: Loc, n: u32) {
        let mut i = 0;
        while i < n {
            let piece = [8u32, 4, 2, 1]
                .into_iter()
                .find(|&p| i + p <= n && aligned(src.at(i), p) && aligned(dst.at(i), p))
                .unwrap_or(1);
            let (from, to) = (src.at(i), dst.at(i));
            self.b.ldx(Size::of(piece), R1, from.base, from.off);
            self.b.stx(Size::of(piece), to.base, to.off, R1);
            i += piece;
        }
    }

    fn misplaced_tuple(&mut self, ty: &Type) {
        self.errors.push(format!(
            "internal error: '{}' lowered as a tuple",
            ty.describe()
        ));
    }
}

/// Whether `loc` is a multiple of `n` bytes from its (8-aligned) base.
fn aligned(loc: Loc, n: u32) -> bool {
    i32::from(loc.off).rem_euclid(n as i32) == 0
}
