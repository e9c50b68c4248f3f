//! Aggregations: `count()`, `sum(x)`, `min(x)`, `max(x)`, `avg(x)`, `stats(x)`,
//! `hist(x)`, `lhist(x, min, max, step)`, assigned to a map (`@[comm] = count()`). Their
//! state lives in a per-CPU hash map, updated without atomics and merged in user space
//! (`output::maps::merge`), as bpftrace 0.17 does. Per key and CPU (bpftrace's layout):
//! - count: u64 `+= 1`; sum: `+= x` (64-bit);
//! - min: stores `0xffffffff - x` when that is `>=` the slot (signed), so the largest
//!   slot is the smallest value; max: stores `x` when `x >=` the slot (signed);
//! - avg, stats: a u64 count then a u64 total (16 bytes);
//! - hist, lhist: the key gets a u64 bucket index appended; the value is a u64 count.
//!   hist's index is bpftrace's log2 (`output::maps::log2_bucket`), lhist's its linear
//!   index (`output::maps::linear_bucket`).
//!
//! Messages are bpftrace 0.17's.

use super::{Builtin, Checked, Form, Site};
use crate::abi::insn::*;
use crate::codegen::builder::*;
use crate::codegen::{Dest, Gen};
use crate::sema::{value, AggKind, Call, Checker, Payload, Type};

/// lhist's bucket limit.
const LHIST_MAX_BUCKETS: i64 = 1000;

macro_rules! aggregation {
    ($static:ident, $name:literal, $check:expr) => {
        pub static $static: Builtin = Builtin {
            name: $name,
            form: Form::Function,
            numbered: false,
            check: $check,
            lower,
            pure: false,
        };
    };
}

aggregation!(COUNT, "count", |ck, site| {
    if !site.args.is_empty() {
        let n = site.args.len();
        ck.error(
            site.span,
            format!("count() requires no arguments ({n} provided)"),
        );
        return None;
    }
    aggregate(&COUNT, Vec::new(), AggKind::Count, site)
});
aggregation!(SUM, "sum", |ck, site| {
    let arg = integer_operand(ck, site)?;
    let signed = arg.ty.is_signed();
    aggregate(&SUM, vec![arg], AggKind::Sum { signed }, site)
});
aggregation!(MIN, "min", |ck, site| {
    let arg = integer_operand(ck, site)?;
    aggregate(&MIN, vec![arg], AggKind::Min, site)
});
aggregation!(MAX, "max", |ck, site| {
    let arg = integer_operand(ck, site)?;
    aggregate(&MAX, vec![arg], AggKind::Max, site)
});
aggregation!(AVG, "avg", |ck, site| {
    let arg = integer_operand(ck, site)?;
    aggregate(&AVG, vec![arg], AggKind::Avg, site)
});
aggregation!(STATS, "stats", |ck, site| {
    let arg = integer_operand(ck, site)?;
    aggregate(&STATS, vec![arg], AggKind::Stats, site)
});
aggregation!(HIST, "hist", |ck, site| {
    let arg = integer_operand(ck, site)?;
    aggregate(&HIST, vec![arg], AggKind::Hist, site)
});
aggregation!(LHIST, "lhist", check_lhist);

fn aggregate(
    builtin: &'static Builtin,
    args: Vec<crate::sema::TExpr>,
    kind: AggKind,
    site: &Site<'_>,
) -> Option<Checked> {
    value(
        builtin,
        args,
        Payload::Agg(kind),
        Type::Agg(kind),
        site.span,
    )
}

/// The one integer argument of sum/min/max/avg/stats/hist.
fn integer_operand(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<crate::sema::TExpr> {
    let [arg] = site.args else {
        let n = site.args.len();
        ck.error(
            site.span,
            format!("{}() requires one argument ({n} provided)", site.name),
        );
        return None;
    };
    let arg = ck.expr(arg)?;
    if !arg.ty.is_scalar() {
        ck.error(
            site.span,
            format!(
                "{}() only supports integer arguments ({} provided)",
                site.name,
                provided(&arg.ty)
            ),
        );
        return None;
    }
    Some(arg)
}

/// How bpftrace names a provided argument's type in these messages.
fn provided(ty: &Type) -> &'static str {
    match ty {
        Type::Str { .. } => "string",
        Type::Int { .. } => "integer",
        Type::Ptr { .. } => "pointer",
        _ => "none",
    }
}

fn check_lhist(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let [value_arg, bounds @ ..] = site.args else {
        return lhist_arity(ck, site);
    };
    if bounds.len() != 3 {
        return lhist_arity(ck, site);
    }
    let operand = ck.expr(value_arg)?;
    if !operand.ty.is_scalar() {
        let what = provided(&operand.ty);
        ck.error(
            site.span,
            format!("lhist() only supports integer arguments ({what} provided)"),
        );
        return None;
    }
    let mut literals = [0i64; 3];
    for (slot, e) in literals.iter_mut().zip(bounds) {
        *slot = match ck.integer_literal(e)? {
            Some(v) => v,
            None => {
                ck.error(
                    site.span,
                    "lhist() expects a integer literal (integer provided)",
                );
                return None;
            }
        };
    }
    let [min, max, step] = literals;
    let problem = if min < 0 {
        Some(format!(
            "lhist() min must be non-negative (provided min {min})"
        ))
    } else if min >= max {
        Some(format!(
            "lhist() min must be less than max (provided min {min} and max {max})"
        ))
    } else if step < 1 {
        Some(format!("lhist() step must be >= 1 ({step} provided)"))
    } else if (max - min) / step > LHIST_MAX_BUCKETS {
        Some(format!(
            "lhist() too many buckets, must be <= {LHIST_MAX_BUCKETS} (would need {})",
            (max - min) / step
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        ck.error(site.span, message);
        return None;
    }
    aggregate(
        &LHIST,
        vec![operand],
        AggKind::Lhist { min, max, step },
        site,
    )
}

fn lhist_arity(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let n = site.args.len();
    ck.error(
        site.span,
        format!("lhist() requires 4 arguments ({n} provided)"),
    );
    None
}

/// Both phases of an aggregation update (see [`Dest::BucketKey`] and [`Dest::State`]).
fn lower(g: &mut Gen<'_>, call: &Call, dest: Dest) {
    let Payload::Agg(kind) = call.payload else {
        return g.misplaced(call, dest);
    };
    match dest {
        Dest::Prepare { operand, at, skip } => prepare(g, kind, operand, at, skip),
        Dest::State { operand } => update(g, kind, operand),
        _ => g.misplaced(call, dest),
    }
}

/// hist/lhist: the operand's bucket index, stored at `at`. min/max: skip the update
/// when it would store a negative value, which no slot (starting at 0) takes, as
/// bpftrace's `min(0x100000000)` and `max(-3)` create no entry.
fn prepare(g: &mut Gen<'_>, kind: AggKind, operand: i16, at: Loc, skip: Label) {
    let done = g.b.label();
    g.b.ldx(Size::DW, R2, R_FP, operand);
    match kind {
        AggKind::Max => return g.b.jmp_imm(BPF_JSLT, R2, 0, skip),
        AggKind::Min => {
            g.b.load_const(R3, 0xffff_ffff);
            g.b.alu(BPF_SUB, R3, R2);
            return g.b.jmp_imm(BPF_JSLT, R3, 0, skip);
        }
        AggKind::Hist => {
            // 0 for negative values, 1 for 0, else 2 + floor(log2) found by bpftrace's
            // binary search over shifts 16, 8, 4, 2, 1 (so 2^31 and up share bucket 33).
            g.b.mov_imm(R1, 0);
            g.b.jmp_imm(BPF_JSLT, R2, 0, done);
            g.b.mov_imm(R1, 1);
            g.b.jmp_imm(BPF_JEQ, R2, 0, done);
            g.b.mov_imm(R1, 2);
            for shift in [16, 8, 4, 2, 1] {
                let skip = g.b.label();
                g.b.jmp_imm(BPF_JLT, R2, 1 << shift, skip);
                g.b.alu_imm(BPF_RSH, R2, shift);
                g.b.alu_imm(BPF_ADD, R1, shift);
                g.b.bind(skip);
            }
        }
        AggKind::Lhist { min, max, step } => {
            // 0 below min (signed), else 1 + (min(x, max) - min) / step.
            g.b.mov_imm(R1, 0);
            g.b.load_const(R3, min as u64);
            g.b.jmp(BPF_JSLT, R2, R3, done);
            let in_range = g.b.label();
            g.b.load_const(R3, max as u64);
            g.b.jmp(BPF_JSLE, R2, R3, in_range);
            g.b.mov(R2, R3);
            g.b.bind(in_range);
            g.b.load_const(R3, min as u64);
            g.b.alu(BPF_SUB, R2, R3);
            g.b.load_const(R3, step as u64);
            g.b.alu(BPF_DIV, R2, R3);
            g.b.mov(R1, R2);
            g.b.alu_imm(BPF_ADD, R1, 1);
        }
        _ => return,
    }
    g.b.bind(done);
    g.b.stx(Size::DW, at.base, at.off, R1);
}

/// Fold the operand into the state r0 points at.
fn update(g: &mut Gen<'_>, kind: AggKind, operand: i16) {
    let add = |g: &mut Gen<'_>, off: i16, from_operand: bool| {
        g.b.ldx(Size::DW, R1, R0, off);
        if from_operand {
            g.b.ldx(Size::DW, R2, R_FP, operand);
            g.b.alu(BPF_ADD, R1, R2);
        } else {
            g.b.alu_imm(BPF_ADD, R1, 1);
        }
        g.b.stx(Size::DW, R0, off, R1);
    };
    match kind {
        AggKind::Count => add(g, 0, false),
        AggKind::Sum { .. } => add(g, 0, true),
        AggKind::Avg | AggKind::Stats | AggKind::Hist | AggKind::Lhist { .. } => {
            add(g, 0, false);
            add(g, 8, true);
        }
        AggKind::Min | AggKind::Max => {
            let keep = g.b.label();
            g.b.ldx(Size::DW, R2, R_FP, operand);
            if kind == AggKind::Min {
                g.b.load_const(R3, 0xffff_ffff);
                g.b.alu(BPF_SUB, R3, R2);
                g.b.mov(R2, R3);
            }
            g.b.ldx(Size::DW, R1, R0, 0);
            g.b.jmp(BPF_JSLT, R2, R1, keep);
            g.b.stx(Size::DW, R0, 0, R2);
            g.b.bind(keep);
        }
    }
}
