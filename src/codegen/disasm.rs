//! `rbt -d codegen`: every program as readable eBPF (in the style of `bpftool prog dump
//! xlated`), each block headed by the script line it came from, then the maps and the
//! event catalog.

use super::{Compiled, ProgramType};
use crate::abi::insn::{helper, *};
use crate::abi::map_type;
use crate::diag::line_col;
use crate::event::{EventKind, ValueLayout};
use crate::format::{Piece, PrintfFormat};
use std::fmt::Write as _;

pub fn disasm(compiled: &Compiled, src: &str) -> String {
    let mut out = String::new();
    for p in &compiled.programs {
        let kind = match p.prog_type {
            ProgramType::Kprobe => "kprobe",
            ProgramType::Tracepoint => "tracepoint",
            ProgramType::Special => "raw_tracepoint, run once",
            ProgramType::PerfEvent => "perf_event",
        };
        let points: Vec<_> = p.attach_points.iter().map(|a| a.name()).collect();
        let _ = writeln!(
            out,
            "program {} ({kind}) for {}: {} insns",
            p.name,
            points.join(", "),
            p.insns.len()
        );
        let mut last_line = 0;
        let mut lines = p.lines.iter().peekable();
        let mut i = 0;
        while i < p.insns.len() {
            while let Some(&&(at, offset)) = lines.peek() {
                if at > i {
                    break;
                }
                lines.next();
                let (line, _) = line_col(src, offset as usize);
                if line != last_line {
                    last_line = line;
                    let text = src.lines().nth(line - 1).unwrap_or("").trim();
                    let _ = writeln!(out, "; {text}  // line {line}");
                }
            }
            let (text, width) = insn_text(&p.insns[i..], compiled);
            let _ = writeln!(out, "{i:4}: {text}");
            i += width;
        }
        out.push('\n');
    }
    out.push_str("maps:\n");
    for (i, m) in compiled.maps.iter().enumerate() {
        let kind = match m.map_type {
            map_type::RINGBUF => "ringbuf".to_string(),
            map_type::ARRAY => "array".to_string(),
            map_type::PERCPU_ARRAY => "percpu_array".to_string(),
            1 => "hash".to_string(),
            t => format!("type {t}"),
        };
        let _ = writeln!(
            out,
            "  {i}: {} {kind} key {} value {} max_entries {}",
            m.name, m.key_size, m.value_size, m.max_entries
        );
    }
    out.push_str("events:\n");
    for (i, e) in compiled.events.events.iter().enumerate() {
        let _ = match e {
            EventKind::Printf { format, args } => {
                let args: Vec<_> = args
                    .iter()
                    .map(|a| format!("{}@{}", value_text(&a.value), a.offset))
                    .collect();
                writeln!(
                    out,
                    "  {i}: printf {:?} [{}]",
                    format_text(format),
                    args.join(", ")
                )
            }
            EventKind::Time { format } => writeln!(out, "  {i}: time {format:?}"),
            EventKind::System { format, .. } => {
                writeln!(out, "  {i}: system {:?}", format_text(format))
            }
            EventKind::Cat { format, .. } => {
                writeln!(out, "  {i}: cat {:?}", format_text(format))
            }
            EventKind::Join { delim } => writeln!(out, "  {i}: join {delim:?}"),
            EventKind::Exit => writeln!(out, "  {i}: exit"),
            EventKind::MapOp { map, op } => writeln!(out, "  {i}: {op:?} map {map}"),
            EventKind::PrintValue { value } => {
                writeln!(out, "  {i}: print {}@8", value_text(value))
            }
            EventKind::HelperError { helper, span } => writeln!(
                out,
                "  {i}: helper_error {} at {}..{}",
                crate::abi::insn::helper::name(*helper),
                span.start,
                span.end
            ),
        };
    }
    out
}

fn value_text(v: &ValueLayout) -> String {
    match *v {
        ValueLayout::Int { size, signed } => {
            format!("{}{}", if signed { "s" } else { "u" }, size * 8)
        }
        ValueLayout::Str { size } => format!("str[{size}]"),
        ValueLayout::Buf { size } => format!("buf[{size}]"),
        ValueLayout::Inet => "inet".into(),
        ValueLayout::MacAddr => "macaddr".into(),
        ValueLayout::Timestamp { size } => format!("timestamp[{size}]"),
        ValueLayout::CgroupPath { size } => format!("cgroup_path[{size}]"),
        ValueLayout::Username => "username".into(),
        ValueLayout::Strerror => "strerror".into(),
        ValueLayout::Pointer => "ptr".into(),
        ValueLayout::Tuple { ref elems, .. } => {
            let elems: Vec<_> = elems
                .iter()
                .map(|e| format!("{}@{}", value_text(&e.value), e.offset))
                .collect();
            format!("({})", elems.join(", "))
        }
        ValueLayout::Struct { ref fields, .. } => {
            let fields: Vec<_> = fields
                .iter()
                .map(|(n, e)| format!(".{n}={}@{}", value_text(&e.value), e.offset))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        ValueLayout::Array { ref elems, .. } => match elems.first() {
            Some(e) => format!("{}[{}]", value_text(&e.value), elems.len()),
            None => "[0]".into(),
        },
        ValueLayout::Stack { user: false, .. } => "kstack".into(),
        ValueLayout::Stack { user: true, .. } => "ustack".into(),
        ValueLayout::Ksym => "ksym".into(),
        ValueLayout::Usym => "usym".into(),
    }
}

/// The format string back in printf syntax.
fn format_text(f: &PrintfFormat) -> String {
    let mut s = String::new();
    for piece in &f.pieces {
        match piece {
            Piece::Literal(l) => s.push_str(&l.replace('%', "%%")),
            Piece::Conv(c) => {
                s.push('%');
                for (on, flag) in [
                    (c.left, '-'),
                    (c.zero, '0'),
                    (c.plus, '+'),
                    (c.space, ' '),
                    (c.alt, '#'),
                ] {
                    if on {
                        s.push(flag);
                    }
                }
                if let Some(w) = c.width {
                    let _ = write!(s, "{w}");
                }
                if let Some(p) = c.precision {
                    let _ = write!(s, ".{p}");
                }
                s.push_str(&c.length);
                s.push(c.conv);
            }
        }
    }
    s
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        BPF_B => "u8",
        BPF_H => "u16",
        BPF_W => "u32",
        _ => "u64",
    }
}

fn alu_symbol(op: u8) -> &'static str {
    match op {
        BPF_ADD => "+=",
        BPF_SUB => "-=",
        BPF_MUL => "*=",
        BPF_DIV => "/=",
        BPF_OR => "|=",
        BPF_AND => "&=",
        BPF_LSH => "<<=",
        BPF_RSH => ">>=",
        BPF_MOD => "%=",
        BPF_XOR => "^=",
        BPF_ARSH => "s>>=",
        _ => "?=",
    }
}

fn jmp_symbol(op: u8) -> &'static str {
    match op {
        BPF_JEQ => "==",
        BPF_JGT => ">",
        BPF_JGE => ">=",
        BPF_JSET => "&",
        BPF_JNE => "!=",
        BPF_JSGT => "s>",
        BPF_JSGE => "s>=",
        BPF_JLT => "<",
        BPF_JLE => "<=",
        BPF_JSLT => "s<",
        BPF_JSLE => "s<=",
        _ => "?",
    }
}

fn mem(code: u8, reg: u8, off: i16) -> String {
    format!("*({} *)(r{reg} {off:+})", size_name(code))
}

/// One instruction as text, and how many instruction slots it takes (2 for `ld_imm64`).
fn insn_text(insns: &[Insn], compiled: &Compiled) -> (String, usize) {
    let i = insns[0];
    let (dst, src, off, imm) = (i.dst(), i.src(), i.off, i.imm);
    let text = match i.code & 0x07 {
        class @ (BPF_ALU | BPF_ALU64) => {
            let r = if class == BPF_ALU64 { 'r' } else { 'w' };
            let operand = if i.code & BPF_X != 0 {
                format!("{r}{src}")
            } else {
                imm.to_string()
            };
            match i.code & 0xf0 {
                BPF_MOV => format!("{r}{dst} = {operand}"),
                BPF_NEG => format!("{r}{dst} = -{r}{dst}"),
                BPF_END => {
                    let order = if i.code & BPF_X != 0 { "be" } else { "le" };
                    format!("r{dst} = {order}{imm} r{dst}")
                }
                op => format!("{r}{dst} {} {operand}", alu_symbol(op)),
            }
        }
        BPF_LDX => format!("r{dst} = {}", mem(i.code, src, off)),
        BPF_STX if i.code & 0xe0 == BPF_ATOMIC => {
            format!("lock {} += r{src}", mem(i.code, dst, off))
        }
        BPF_STX => format!("{} = r{src}", mem(i.code, dst, off)),
        BPF_ST => format!("{} = {imm}", mem(i.code, dst, off)),
        BPF_LD if i.code == BPF_LD | BPF_DW | BPF_IMM => {
            let text = if src == PSEUDO_MAP_FD {
                let name = compiled
                    .maps
                    .get(imm as usize)
                    .map_or("?", |m| m.name.as_str());
                format!("r{dst} = map[{name}]")
            } else {
                let hi = insns.get(1).map_or(0, |n| n.imm as u32 as u64);
                format!("r{dst} = {:#x} ll", (hi << 32) | imm as u32 as u64)
            };
            return (text, 2);
        }
        BPF_JMP => match i.code & 0xf0 {
            BPF_JA => format!("goto pc{off:+}"),
            BPF_CALL => format!("call bpf_{}#{imm}", helper::name(imm)),
            BPF_EXIT => "exit".into(),
            op => {
                let operand = if i.code & BPF_X != 0 {
                    format!("r{src}")
                } else {
                    format!("{imm:#x}")
                };
                format!("if r{dst} {} {operand} goto pc{off:+}", jmp_symbol(op))
            }
        },
        _ => format!("(unknown opcode {:#04x})", i.code),
    };
    (text, 1)
}
