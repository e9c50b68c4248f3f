//! rbt: a bpftrace-compatible tracer. The pipeline, one module per stage:
//!
//! ```text
//! script.bt ─► parser   preprocess, parse (nom) ─► ast::Program (spans on every node)
//!           ─► sema     names and kernel types (btf), type-check ─► sema::TypedProgram
//!           ─► codegen  eBPF instructions, maps, event layouts ─► codegen::Compiled
//!           ─► runtime  load, attach, poll the ring buffer, BEGIN/END, signals (sys: raw syscalls)
//!           ─► output   decode events; printf/time/ntop; text and JSON
//! ```

/// The bpftrace release whose language, output and options rbt reproduces.
pub const BPFTRACE_COMPAT: &str = "0.17.0";

pub mod abi;
pub mod ast;
pub mod btf;
pub mod builtins;
pub mod codegen;
pub mod diag;
pub mod dwarf;
pub mod elf;
pub mod event;
pub mod format;
pub mod info;
pub mod metrics;
pub mod output;
pub mod parser;
pub mod probes;
pub mod runtime;
pub mod sema;
pub mod symbols;
pub mod sys;
pub mod timings;
