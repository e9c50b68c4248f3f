//! Lowering typed probes to programs: the prologue (context, variables, `-p` filter,
//! predicate), statements, and event records written on the stack and sent to the
//! ring buffer (with a lost-event counter when the ring buffer is full).
//!
//! Stack layout of every program: the `$variables` first (8 bytes for scalars, the
//! rounded-up size for strings and inet values, zeroed in the prologue so every path
//! the verifier explores reads initialized memory), then LIFO temporaries: event records,
//! spilled operands, probe_read destinations.

use super::builder::*;
use super::insn::{helper, *};
use super::{CompileOptions, Compiled, MapSpec, ProgramCode, ProgramType};
use crate::ast::ProbeKind;
use crate::diag::Diagnostic;
use crate::event::{ArgLayout, EventCatalog, EventKind, ValueLayout, EVENT_ID_SIZE};
use crate::sema::{TExpr, TStmt, TStmtKind, Type, TypedMap, TypedProbe, TypedProgram};

/// Map indexes (the `imm` of map loads): the event ring buffer and the lost-event counter.
pub const MAP_EVENTS: u32 = 0;
pub const MAP_LOST: u32 = 1;
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
    for (index, probe) in program.probes.iter().enumerate() {
        match lower_probe(probe, &program.maps, options, &mut events) {
            Ok(b) => programs.push(ProgramCode {
                name: program_name(probe, index),
                prog_type: match probe.kind {
                    ProbeKind::Begin | ProbeKind::End => ProgramType::Special,
                    ProbeKind::Kprobe | ProbeKind::Kretprobe => ProgramType::Kprobe,
                    ProbeKind::Tracepoint => ProgramType::Tracepoint,
                },
                attach_points: probe.attach_points.clone(),
                insns: b.insns,
                lines: b.lines,
            }),
            Err(msg) => diags.push(Diagnostic::error(probe.span, msg)),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let mut maps = standard_maps();
    maps.extend(super::maps::map_specs(&program.maps));
    Ok(Compiled {
        programs,
        maps,
        events: EventCatalog { events },
    })
}

/// The maps every compiled program has: the event ring buffer (index 0) and the
/// lost-event counter (index 1).
pub fn standard_maps() -> Vec<MapSpec> {
    vec![
        MapSpec {
            name: "events".into(),
            map_type: BPF_MAP_TYPE_RINGBUF,
            key_size: 0,
            value_size: 0,
            max_entries: RINGBUF_BYTES,
        },
        MapSpec {
            name: "lost".into(),
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
        },
    ]
}

/// A kernel-acceptable program name (alphanumerics, `_`, `.`; 15 chars), unique by index.
fn program_name(probe: &TypedProbe, index: usize) -> String {
    let first = &probe.attach_points[0];
    let stem = match first.kind {
        ProbeKind::Begin => "BEGIN".to_string(),
        ProbeKind::End => "END".to_string(),
        ProbeKind::Kprobe => format!("kp_{}", first.target.join("_")),
        ProbeKind::Kretprobe => format!("kr_{}", first.target.join("_")),
        ProbeKind::Tracepoint => format!("tp_{}", first.target.last().cloned().unwrap_or_default()),
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

/// Per-program lowering state.
pub(super) struct Gen<'a> {
    pub b: Builder,
    /// The stack slot of each `$variable`, by `VarId`.
    pub vars: Vec<Slot>,
    /// Where `return`, `exit()`, a failed predicate or `-p` mismatch go: `return 0`.
    pub done: Label,
    /// The program's `@maps`, by `MapId`.
    pub maps: &'a [TypedMap],
    events: &'a mut Vec<EventKind>,
}

fn lower_probe(
    probe: &TypedProbe,
    maps: &[TypedMap],
    options: &CompileOptions,
    events: &mut Vec<EventKind>,
) -> Result<Builder, String> {
    let mut b = Builder::new();
    let done = b.label();
    let mut g = Gen {
        b,
        vars: Vec::new(),
        done,
        maps,
        events,
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
    if let (Some(pid), false) = (
        options.pid_filter,
        matches!(probe.kind, ProbeKind::Begin | ProbeKind::End),
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
    g.b.mov_imm(R0, 0);
    g.b.exit();
    g.b.finish()
}

impl Gen<'_> {
    fn stmts(&mut self, stmts: &[TStmt]) {
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
                } else {
                    self.write_value(value, slot.off, slot.size);
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
            TStmtKind::Return => self.b.ja(self.done),
            TStmtKind::Printf { format, args } => self.printf(format, args),
            TStmtKind::MapAssign { map, key, value } => self.map_assign(*map, key, value),
            TStmtKind::MapDelete { map, key } => self.map_delete(*map, key),
            // Maps are not printed at exit, so clearing them there changes nothing.
            TStmtKind::ClearMap { .. } => {}
            TStmtKind::Time { format } => {
                let id = self.event(EventKind::Time {
                    format: format.clone(),
                });
                self.emit_bare_event(id);
            }
            TStmtKind::Exit => {
                let id = self.event(EventKind::Exit);
                self.emit_bare_event(id);
                self.b.ja(self.done);
            }
        }
        self.b.release(mark);
    }

    fn event(&mut self, kind: EventKind) -> usize {
        self.events.push(kind);
        self.events.len() - 1
    }

    /// A record with only the event id (`time`, `exit`).
    fn emit_bare_event(&mut self, id: usize) {
        let rec = self.b.alloc(EVENT_ID_SIZE as u32);
        self.b.st_imm(Size::DW, R_FP, rec.off, id as i32);
        self.output(rec);
    }

    fn printf(&mut self, format: &crate::format::PrintfFormat, args: &[TExpr]) {
        let mut layout = Vec::new();
        let mut offset = EVENT_ID_SIZE;
        for arg in args {
            let value = match arg.ty {
                Type::Int { size, signed } => ValueLayout::Int {
                    size: size as usize,
                    signed,
                },
                Type::Ptr { .. } => ValueLayout::Int {
                    size: 8,
                    signed: false,
                },
                Type::Str { size } => ValueLayout::Str { size },
                _ => ValueLayout::Inet,
            };
            let align = if matches!(value, ValueLayout::Int { .. }) {
                value.size()
            } else {
                8
            };
            offset = offset.next_multiple_of(align);
            layout.push(ArgLayout { offset, value });
            offset += value.size().next_multiple_of(align);
        }
        let size = offset.next_multiple_of(8) as u32;
        let id = self.event(EventKind::Printf {
            format: format.clone(),
            args: layout.clone(),
        });
        let rec = self.b.alloc(size);
        // The whole record goes to the kernel, padding included: it must be initialized.
        self.b.st_imm(Size::DW, R_FP, rec.off, id as i32);
        // Strings and inet values fill their whole (8-aligned) space; zero the rest.
        let filled = |word: usize| {
            layout.iter().any(|a| {
                !matches!(a.value, ValueLayout::Int { .. })
                    && (a.offset..a.offset + a.value.size().next_multiple_of(8)).contains(&word)
            })
        };
        for i in (EVENT_ID_SIZE..size as usize)
            .step_by(8)
            .filter(|&w| !filled(w))
        {
            self.b.st_imm(Size::DW, R_FP, rec.at(i as u32), 0);
        }
        for (arg, at) in args.iter().zip(&layout) {
            let off = rec.at(at.offset as u32);
            if arg.ty.is_scalar() {
                let mark = self.b.mark();
                self.scalar(arg);
                self.b.release(mark);
                self.b.stx(Size::of(at.value.size() as u32), R_FP, off, R0);
            } else {
                self.write_value(arg, off, at.value.size().next_multiple_of(8) as u32);
            }
        }
        self.output(rec);
    }

    /// `bpf_ringbuf_output(events, record)`; on failure count the loss in the `lost` map.
    fn output(&mut self, rec: Slot) {
        let ok = self.b.label();
        self.b.ld_map(R1, MAP_EVENTS);
        self.b.stack_addr(R2, rec.off);
        self.b.mov_imm(R3, rec.size as i32);
        self.b.mov_imm(R4, 0);
        self.b.call(helper::RINGBUF_OUTPUT);
        self.b.jmp_imm(BPF_JEQ, R0, 0, ok);
        let key = self.b.alloc(8);
        self.b.st_imm(Size::DW, R_FP, key.off, 0);
        self.b.ld_map(R1, MAP_LOST);
        self.b.stack_addr(R2, key.off);
        self.b.call(helper::MAP_LOOKUP_ELEM);
        self.b.jmp_imm(BPF_JEQ, R0, 0, ok);
        self.b.mov_imm(R1, 1);
        self.b.atomic_add64(R0, 0, R1);
        self.b.bind(ok);
    }
}
