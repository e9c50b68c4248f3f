//! `-k`/`-kk`: bpftrace 0.17's helper error checks (`IRBuilderBPF::CreateHelperErrorCond`).
//! After a checked helper call fails, the program sends an [`EventKind::HelperError`]
//! record (the event id names the helper and the script location, the return code
//! follows) and goes on with the helper's result unchanged; user space prints
//! `stdin:L:C-C: WARNING: Failed to HELPER: ...` (`output/helper_error.rs`).
//!
//! Which helpers are checked at which level is bpftrace's `return_zero_if_err`: under
//! `-k` every checked helper except the reads and map lookups, whose failure leaves a
//! zero the script can see; `-kk` checks those too.

use super::builder::*;
use super::lower::Gen;
use crate::abi::insn::{helper, *};
use crate::diag::Span;
use crate::event::{EventKind, EVENT_ID_SIZE};

/// Whether `-k` (level 1) leaves `helper` unchecked: a failed read or lookup yields
/// zero, which bpftrace leaves to `-kk`.
fn only_under_kk(id: i32) -> bool {
    matches!(
        id,
        helper::PROBE_READ
            | helper::PROBE_READ_STR
            | helper::PROBE_READ_KERNEL
            | helper::PROBE_READ_KERNEL_STR
            | helper::PROBE_READ_USER
            | helper::PROBE_READ_USER_STR
            | helper::MAP_LOOKUP_ELEM
    )
}

impl Gen<'_> {
    /// Whether `-k`/`-kk` asks for `helper`'s failures.
    fn checks(&self, id: i32) -> bool {
        match self.helper_checks {
            0 => false,
            1 => !only_under_kk(id),
            _ => true,
        }
    }

    /// After a call of `id` (result in r0, negative on failure): report a failure at
    /// `span`. r0 is kept; r1-r5 are clobbered (as by any call).
    pub fn check_helper(&mut self, id: i32, span: Span) {
        if !self.checks(id) {
            return;
        }
        let ok = self.b.label();
        self.b.jmp_imm(BPF_JSGE, R0, 0, ok);
        self.report_helper_error(id, span, true);
        self.b.bind(ok);
    }

    /// After a `map_lookup_elem` of a script's map (r0: the value or null): report a
    /// miss at `span` `times` times (bpftrace reads avg/stats state with two lookups).
    /// On a miss r0 stays 0.
    pub fn check_lookup(&mut self, span: Span, times: usize) {
        if times == 0 || !self.checks(helper::MAP_LOOKUP_ELEM) {
            return;
        }
        let ok = self.b.label();
        self.b.jmp_imm(BPF_JNE, R0, 0, ok);
        for _ in 0..times {
            self.report_helper_error(helper::MAP_LOOKUP_ELEM, span, false);
        }
        self.b.mov_imm(R0, 0);
        self.b.bind(ok);
    }

    /// Sends the record: the event id, then r0 (the return code) as an i64; reloads r0
    /// from it when `keep` (sending clobbers r0).
    fn report_helper_error(&mut self, id: i32, span: Span, keep: bool) {
        let event = self.event(EventKind::HelperError { helper: id, span });
        let mark = self.b.mark();
        let rec = self.b.alloc(EVENT_ID_SIZE as u32 + 8);
        self.b.st_imm(Size::DW, R_FP, rec.off, event as i32);
        self.b.stx(Size::DW, R_FP, rec.at(8), R0);
        self.output(rec);
        if keep {
            self.b.ldx(Size::DW, R0, R_FP, rec.at(8));
        }
        self.b.release(mark);
    }
}
