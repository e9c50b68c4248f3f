//! The kernel ABI, at the bottom of the crate: instruction encoding, `bpf_*` and
//! `perf_*` enumerations, x86-64 register offsets and the filesystem paths the kernel
//! exposes. Both codegen (which builds programs) and sys/runtime (which hand them to the
//! kernel) import from here, so each constant has exactly one definition. Nothing here
//! imports anything else of rbt.

pub mod arch;
pub mod insn;

/// The signal names bpftrace 0.17's `signal()` knows (src/ast/signal.cpp), with their
/// x86-64 Linux numbers.
pub const SIGNALS: [(&str, u32); 28] = [
    ("SIGABRT", 6),
    ("SIGALRM", 14),
    ("SIGBUS", 7),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGFPE", 8),
    ("SIGHUP", 1),
    ("SIGILL", 4),
    ("SIGINT", 2),
    ("SIGKILL", 9),
    ("SIGPIPE", 13),
    ("SIGPOLL", 29),
    ("SIGQUIT", 3),
    ("SIGSEGV", 11),
    ("SIGSTOP", 19),
    ("SIGSYS", 31),
    ("SIGTERM", 15),
    ("SIGTRAP", 5),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGUSR1", 10),
    ("SIGUSR2", 12),
    ("SIGVTALRM", 26),
    ("SIGWINCH", 28),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
];

/// `enum bpf_map_type` values rbt creates or inspects.
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    /// Not used by rbt (its events go through a ring buffer); `--info` reports it.
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const PERCPU_CGROUP_STORAGE: u32 = 21;
    pub const RINGBUF: u32 = 27;
    /// Types whose lookups return one value per possible CPU.
    pub const PER_CPU: [u32; 4] = [
        PERCPU_HASH,
        PERCPU_ARRAY,
        LRU_PERCPU_HASH,
        PERCPU_CGROUP_STORAGE,
    ];
}

/// `enum bpf_prog_type` values rbt loads.
pub mod prog_type {
    pub const KPROBE: u32 = 2;
    pub const TRACEPOINT: u32 = 5;
    pub const PERF_EVENT: u32 = 7;
    pub const RAW_TRACEPOINT: u32 = 17;
}

/// `BPF_PERF_EVENT` (`enum bpf_attach_type`): attach through a perf-event link.
pub const BPF_PERF_EVENT: u32 = 41;

/// `BPF_TRACE_KPROBE_MULTI` (`enum bpf_attach_type`, Linux 5.18, fprobe-based): one link
/// attaches a kprobe program to many functions; the program must be loaded with it as
/// its `expected_attach_type`.
pub const BPF_TRACE_KPROBE_MULTI: u32 = 42;

/// `BPF_F_NO_PREALLOC`: a hash map's elements are allocated on update, not at creation.
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// `BPF_F_MMAPABLE` (Linux 5.5): an array map's values can be mmapped and read without
/// a `bpf()` call.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// `BPF_F_KPROBE_MULTI_RETURN`: a kprobe_multi link on function returns.
pub const BPF_F_KPROBE_MULTI_RETURN: u32 = 1;

/// `enum perf_type_id`.
pub mod perf_type {
    pub const HARDWARE: u32 = 0;
    pub const SOFTWARE: u32 = 1;
    /// `config` is a tracefs event id.
    pub const TRACEPOINT: u32 = 2;
}

/// `enum perf_sw_ids`: `config` of `PERF_TYPE_SOFTWARE` events.
pub mod perf_sw {
    pub const CPU_CLOCK: u64 = 0;
    pub const TASK_CLOCK: u64 = 1;
    pub const PAGE_FAULTS: u64 = 2;
    pub const CONTEXT_SWITCHES: u64 = 3;
    pub const CPU_MIGRATIONS: u64 = 4;
    pub const PAGE_FAULTS_MIN: u64 = 5;
    pub const PAGE_FAULTS_MAJ: u64 = 6;
    pub const ALIGNMENT_FAULTS: u64 = 7;
    pub const EMULATION_FAULTS: u64 = 8;
    pub const DUMMY: u64 = 9;
    pub const BPF_OUTPUT: u64 = 10;
}

/// `enum perf_hw_id`: `config` of `PERF_TYPE_HARDWARE` events.
pub mod perf_hw {
    pub const CPU_CYCLES: u64 = 0;
    pub const INSTRUCTIONS: u64 = 1;
    pub const CACHE_REFERENCES: u64 = 2;
    pub const CACHE_MISSES: u64 = 3;
    pub const BRANCH_INSTRUCTIONS: u64 = 4;
    pub const BRANCH_MISSES: u64 = 5;
    pub const BUS_CYCLES: u64 = 6;
    pub const STALLED_CYCLES_FRONTEND: u64 = 7;
    pub const STALLED_CYCLES_BACKEND: u64 = 8;
    pub const REF_CPU_CYCLES: u64 = 9;
}

/// Where the kernel exposes tracing state.
pub mod paths {
    /// tracefs mount points, preferred first.
    pub const TRACEFS_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    /// The kprobe PMU (Linux 4.17+): kprobes without tracefs state.
    pub const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";
    /// The uprobe PMU (Linux 4.17+): uprobes without tracefs state.
    pub const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";
    pub const KALLSYMS: &str = "/proc/kallsyms";
    pub const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";
    /// CPUs that run now: per-CPU perf events (profile, software) open one per CPU here.
    pub const ONLINE_CPUS: &str = "/sys/devices/system/cpu/online";
    /// The highest `sample_freq` the kernel accepts for perf events.
    pub const PERF_MAX_SAMPLE_RATE: &str = "/proc/sys/kernel/perf_event_max_sample_rate";
    pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
    /// The running kernel's release (`6.1.0-56-cloud-amd64`), named in errors.
    pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
}
