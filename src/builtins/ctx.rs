//! `ctx`: a pointer to the probe's context, typed by its BPF program type as bpftrace
//! 0.17 types it (`struct pt_regs *` for kprobes and uprobes, `struct
//! bpf_perf_event_data *` for perf-event probes). Members read through it, also after
//! a cast to another struct pointer, are direct context loads (`sema::kernel::pointee`),
//! as the verifier requires and bpftrace emits.

use super::{Builtin, Checked, Form, Site};
use crate::codegen::ProgramType;
use crate::sema::{pointer_to, Checker, TExpr, TExprKind};

pub static CTX: Builtin = Builtin {
    name: "ctx",
    form: Form::Variable,
    numbered: false,
    check,
    // `ctx` types to the context address itself, never to a call.
    lower: |g, call, dest| g.misplaced(call, dest),
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    // bpftrace types `ctx` once per probe: all its attach points must agree.
    let types: Vec<ProgramType> = ck.written_types().iter().map(|p| p.prog_type).collect();
    if let Some(other) = types.iter().find(|&&t| t != types[0]) {
        let msg = format!(
            "ctx cannot be used in different BPF program types: {} and {}",
            types[0].kernel_name(),
            other.kernel_name()
        );
        ck.error(site.span, msg);
        return None;
    }
    let record = match ck.provider().prog_type {
        ProgramType::Kprobe => "struct pt_regs",
        ProgramType::PerfEvent => "struct bpf_perf_event_data",
        ProgramType::Tracepoint => {
            ck.error(site.span, "Use args instead of ctx in tracepoint");
            return None;
        }
        ProgramType::Special => {
            ck.error(site.span, "invalid program type");
            return None;
        }
    };
    let Some(target) = ck.btf().find_type(record) else {
        ck.error(site.span, format!("the kernel's BTF has no '{record}'"));
        return None;
    };
    Some(Checked::Value(TExpr {
        kind: TExprKind::CtxAddress,
        ty: pointer_to(ck.btf(), target, 1),
        span: site.span,
    }))
}
