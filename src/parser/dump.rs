//! `rbt -d ast`: the tree in the indented style of `bpftrace -d`, one node per
//! line, one space of indent per level, no spans (so dumps compare across scripts).

use crate::ast::{BinOp, Block, Expr, ExprKind, LValue, Program, Stmt, StmtKind, UnaryOp};
use std::fmt::Write as _;

pub fn dump(program: &Program) -> String {
    let mut d = Dumper { out: String::new() };
    d.line(0, "Program");
    for probe in &program.probes {
        for ap in &probe.attach_points {
            d.line(1, &ap.name());
        }
        if let Some(pred) = &probe.predicate {
            d.line(2, "pred");
            d.expr(3, pred);
        }
        d.block(2, &probe.body);
    }
    d.out
}

pub fn binop_str(op: BinOp) -> &'static str {
    use BinOp::*;
    match op {
        Add => "+",
        Sub => "-",
        Mul => "*",
        Div => "/",
        Mod => "%",
        BitAnd => "&",
        BitOr => "|",
        BitXor => "^",
        Shl => "<<",
        Shr => ">>",
        Eq => "==",
        Ne => "!=",
        Lt => "<",
        Le => "<=",
        Gt => ">",
        Ge => ">=",
        LogicalAnd => "&&",
        LogicalOr => "||",
    }
}

/// A string literal as bpftrace's dump shows it: escapes re-encoded.
fn escaped(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

struct Dumper {
    out: String,
}

impl Dumper {
    fn line(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.out, "{:depth$}{text}", "");
    }

    fn block(&mut self, depth: usize, block: &Block) {
        for s in &block.stmts {
            self.stmt(depth, s);
        }
    }

    fn stmt(&mut self, depth: usize, stmt: &Stmt) {
        match &stmt.kind {
            StmtKind::Expr(e) => self.expr(depth, e),
            StmtKind::Assign { target, op, value } => {
                self.line(depth, &format!("{}=", op.map_or("", binop_str)));
                self.lvalue(depth + 1, target);
                self.expr(depth + 1, value);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.line(depth, "if");
                self.expr(depth + 1, cond);
                self.line(depth + 1, "then");
                self.block(depth + 2, then);
                if let Some(otherwise) = otherwise {
                    self.line(depth + 1, "else");
                    self.block(depth + 2, otherwise);
                }
            }
            StmtKind::While { cond, body } => {
                self.line(depth, "while");
                self.expr(depth + 1, cond);
                self.line(depth + 1, "do");
                self.block(depth + 2, body);
            }
            StmtKind::Unroll { count, body } => {
                self.line(depth, "unroll");
                self.expr(depth + 1, count);
                self.block(depth + 1, body);
            }
            StmtKind::Return => self.line(depth, "return"),
        }
    }

    fn lvalue(&mut self, depth: usize, lv: &LValue) {
        match lv {
            LValue::Var { name, .. } => self.line(depth, &format!("variable: ${name}")),
            LValue::Map { name, keys, .. } => self.map(depth, name, keys),
        }
    }

    fn map(&mut self, depth: usize, name: &str, keys: &[Expr]) {
        self.line(depth, &format!("map: @{name}"));
        for k in keys {
            self.expr(depth + 1, k);
        }
    }

    fn expr(&mut self, depth: usize, e: &Expr) {
        match &e.kind {
            ExprKind::Int(v) => self.line(depth, &format!("int: {v}")),
            ExprKind::Str(s) => self.line(depth, &format!("string: {}", escaped(s))),
            ExprKind::Var(name) => self.line(depth, &format!("variable: ${name}")),
            ExprKind::Param(n) => self.line(depth, &format!("param: ${n}")),
            ExprKind::ParamCount => self.line(depth, "param: $#"),
            ExprKind::Map { name, keys } => self.map(depth, name, keys),
            ExprKind::Builtin(name) => self.line(depth, &format!("builtin: {name}")),
            ExprKind::Ident(name) => self.line(depth, &format!("identifier: {name}")),
            ExprKind::Call { name, args } => {
                self.line(depth, &format!("call: {name}"));
                for a in args {
                    self.expr(depth + 1, a);
                }
            }
            ExprKind::Unary { op, expr } => {
                let op = match op {
                    UnaryOp::Not => "!",
                    UnaryOp::BitNot => "~",
                    UnaryOp::Neg => "-",
                    UnaryOp::Deref => "dereference",
                    UnaryOp::AddrOf => "&",
                };
                self.line(depth, op);
                self.expr(depth + 1, expr);
            }
            ExprKind::Binary { op, lhs, rhs } => {
                self.line(depth, binop_str(*op));
                self.expr(depth + 1, lhs);
                self.expr(depth + 1, rhs);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.line(depth, "?:");
                self.expr(depth + 1, cond);
                self.expr(depth + 1, then);
                self.expr(depth + 1, otherwise);
            }
            ExprKind::Cast { ty, expr } => {
                self.line(
                    depth,
                    &format!("({}{})", ty.name, "*".repeat(ty.pointer_depth.into())),
                );
                self.expr(depth + 1, expr);
            }
            ExprKind::Member { expr, field, arrow } => {
                self.line(depth, if *arrow { "->" } else { "." });
                self.expr(depth + 1, expr);
                self.line(depth + 1, field);
            }
            ExprKind::Tuple(elems) => {
                self.line(depth, "tuple");
                for e in elems {
                    self.expr(depth + 1, e);
                }
            }
            ExprKind::TupleElem { expr, index } => {
                self.line(depth, &format!(".{index}"));
                self.expr(depth + 1, expr);
            }
            ExprKind::Index { expr, index } => {
                self.line(depth, "[]");
                self.expr(depth + 1, expr);
                self.expr(depth + 1, index);
            }
            ExprKind::IncDec {
                target,
                increment,
                prefix,
            } => {
                let op = if *increment { "++" } else { "--" };
                self.line(
                    depth,
                    &format!("{op} ({})", if *prefix { "pre" } else { "post" }),
                );
                self.lvalue(depth + 1, target);
            }
        }
    }
}
