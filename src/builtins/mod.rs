//! The builtin registry: one entry per builtin variable or function (learned from ply's
//! `struct func` and bpftrace's `call_spec`). An entry is the whole feature: its name and
//! form, its type rule (sema calls [`Builtin::check`] with the call site) and its
//! lowering (codegen calls [`Builtin::lower`] with the typed call and where the value
//! goes). What it prints travels as an [`crate::event::EventKind`] record. Neither sema
//! nor codegen knows any builtin by name.
//!
//! To add a builtin: write `builtins/<name>.rs` with one `Builtin` (or add it to its
//! group's file) and list it in [`REGISTRY`].

mod addrspace;
mod aggregations;
mod bswap;
mod buf;
mod cat;
mod cgroup_path;
mod cgroupid;
mod context;
mod cpid;
mod ctx;
mod elapsed;
mod exit;
mod join;
mod macaddr;
mod maps;
mod ntop;
mod printf;
mod probe;
mod pton;
mod rand;
mod registers;
mod signal;
mod sizeof;
mod stacks;
mod str;
mod strcontains;
mod strerror;
mod strftime;
mod strncmp;
mod symbols;
mod system;
mod time;

pub use join::{kind_name as type_kind_name, JOIN_ARGS, JOIN_ARG_SIZE};

use std::fmt;

use crate::ast::{Expr, Span};
use crate::codegen::{Dest, Gen};
use crate::sema::{Call, Checker, TExpr, TStmtKind};

/// Every builtin rbt implements.
pub static REGISTRY: &[&Builtin] = &[
    &context::PID,
    &context::TID,
    &context::UID,
    &context::GID,
    &context::NSECS,
    &elapsed::ELAPSED,
    &cpid::CPID,
    &context::CPU,
    &context::COMM,
    &context::USERNAME,
    &context::NUMAID,
    &context::CGROUP,
    &context::CURTASK,
    &context::RETVAL,
    &context::ARG,
    &context::ARGS,
    &ctx::CTX,
    &registers::REG,
    &registers::SARG,
    &probe::PROBE,
    &stacks::KSTACK,
    &stacks::KSTACK_CALL,
    &stacks::USTACK,
    &stacks::USTACK_CALL,
    &symbols::FUNC,
    &symbols::KSYM,
    &symbols::USYM,
    &symbols::KADDR,
    &symbols::UADDR,
    &rand::RAND,
    &ntop::NTOP,
    &pton::PTON,
    &macaddr::MACADDR,
    &str::STR,
    &buf::BUF,
    &addrspace::KPTR,
    &addrspace::UPTR,
    &strcontains::STRCONTAINS,
    &strncmp::STRNCMP,
    &bswap::BSWAP,
    &strerror::STRERROR,
    &sizeof::SIZEOF,
    &cgroupid::CGROUPID,
    &cgroup_path::CGROUP_PATH,
    &printf::PRINTF,
    &cat::CAT,
    &system::SYSTEM,
    &signal::SIGNAL,
    &time::TIME,
    &strftime::STRFTIME,
    &exit::EXIT,
    &join::JOIN,
    &maps::DELETE,
    &maps::CLEAR,
    &maps::ZERO,
    &maps::PRINT,
    &aggregations::COUNT,
    &aggregations::SUM,
    &aggregations::MIN,
    &aggregations::MAX,
    &aggregations::AVG,
    &aggregations::STATS,
    &aggregations::HIST,
    &aggregations::LHIST,
];

/// How a builtin is written and what it yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A bare name with a value: `pid`, `comm`, `arg0`.
    Variable,
    /// `name(args)` with a value: `ntop(a)`.
    Function,
    /// `name(args)` as a statement only: `printf(...)`, `exit()`.
    Statement,
}

/// A use of a builtin, as sema hands it to the entry's type rule.
pub struct Site<'a> {
    pub name: &'a str,
    /// For numbered builtins (`arg3`): the number.
    pub index: Option<u32>,
    /// The call's arguments (empty for variables).
    pub args: &'a [Expr],
    pub span: Span,
}

/// What a type rule produces: a value, or (for statements) a statement.
pub enum Checked {
    Value(TExpr),
    Stmt(TStmtKind),
}

pub type CheckFn = fn(&mut Checker<'_, '_>, &Site<'_>) -> Option<Checked>;
pub type LowerFn = fn(&mut Gen<'_>, &Call, Dest);

pub struct Builtin {
    pub name: &'static str,
    pub form: Form,
    /// `name` followed by a number (`arg0`..`arg5`).
    pub numbered: bool,
    /// The type rule: check the site, report errors through the checker.
    pub check: CheckFn,
    /// Emit the instructions for a call the type rule produced.
    pub lower: LowerFn,
    /// Lowering calls no helper and needs no temporary, so it may target any register
    /// (lets codegen load it straight into an operand register).
    pub pure: bool,
}

impl fmt::Debug for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Builtin {
    fn eq(&self, other: &Builtin) -> bool {
        std::ptr::eq(self, other)
    }
}

/// The builtin `name` denotes in `form` (a bare name is a variable, a call a function
/// or statement), with the number of a numbered builtin.
pub fn lookup(name: &str, call: bool) -> Option<(&'static Builtin, Option<u32>)> {
    REGISTRY.iter().copied().find_map(|b| {
        if (b.form == Form::Variable) == call {
            return None;
        }
        if b.numbered {
            let digits = name.strip_prefix(b.name)?;
            let n = (!digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()))
                .then(|| digits.parse().ok())??;
            Some((b, Some(n)))
        } else {
            (b.name == name).then_some((b, None))
        }
    })
}

/// The registered name closest to `name` (for "did you mean"), if one is close.
pub fn similar(name: &str, call: bool) -> Option<&'static str> {
    let limit = (name.len() / 3).max(1);
    REGISTRY
        .iter()
        .filter(|b| (b.form == Form::Variable) != call && !b.numbered)
        .map(|b| (edit_distance(name, b.name), b.name))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_builtins_take_their_number() {
        let (b, n) = lookup("arg3", false).unwrap();
        assert_eq!((b.name, n), ("arg", Some(3)));
        assert!(lookup("arg", false).is_none());
        assert!(lookup("argx", false).is_none());
    }

    #[test]
    fn variables_and_functions_are_separate() {
        assert_eq!(lookup("pid", false).unwrap().0.name, "pid");
        assert!(lookup("pid", true).is_none());
        assert_eq!(lookup("printf", true).unwrap().0.name, "printf");
        assert!(lookup("printf", false).is_none());
    }

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(similar("printff", true), Some("printf"));
        assert_eq!(similar("hisst", true), Some("hist"));
        assert_eq!(similar("commm", false), Some("comm"));
        assert_eq!(similar("foo", true), None);
        assert_eq!(similar("nosuchvar", false), None);
    }

    #[test]
    fn every_name_is_registered_once() {
        let mut names: Vec<_> = REGISTRY
            .iter()
            .map(|b| (b.name, b.form == Form::Variable))
            .collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
