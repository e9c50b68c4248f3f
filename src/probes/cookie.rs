//! BPF attach cookies (Linux 5.15+): a value each perf-event link gives its program
//! (`bpf_get_attach_cookie`), so one program attached to many events can tell which
//! one fired. rbt uses it for `probe` (sema's `Plan::ByCookie`).

use crate::abi::insn::{helper, Insn, BPF_ALU64, BPF_CALL, BPF_EXIT, BPF_JMP, BPF_K, BPF_MOV};
use crate::sys;

/// Whether this kernel has `bpf_get_attach_cookie` for tracing programs: a two-
/// instruction tracepoint program calling it loads (once per process, ~0.1 ms).
pub fn available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let insns = [
            Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper::GET_ATTACH_COOKIE),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        let tracepoint = crate::abi::prog_type::TRACEPOINT;
        sys::prog_load(tracepoint, &insns, "GPL", "rbt_cookie", 0).is_ok()
    })
}
