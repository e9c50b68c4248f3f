//! Types from the debug info (DWARF) of the files a script's attach points name, as
//! bpftrace 0.17 takes them for uprobes: the probed function's parameters (`args->n`,
//! read from the argument registers) and the structs the script names in casts and
//! `sizeof` (`(struct Foo *)arg0`), found in the binary before the kernel's BTF. They
//! are appended to the BTF once, before type-checking, and only when the script uses
//! them (reading kernel BTF costs startup a plain uprobe script need not pay).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use super::Param;
use crate::ast::{self, Expr, ExprKind, LValue, Stmt, StmtKind};
use crate::btf::{Btf, Lazy};
use crate::dwarf::{self, Converter};

/// What an attach point's provider says describes it (`Provider::debug_info`).
pub type DebugKey = (PathBuf, String);

/// The parameters of each probed function that has debug info.
pub type Params = HashMap<DebugKey, Vec<Param>>;

/// What the script asks of debug info.
#[derive(Default)]
struct Wanted {
    args: bool,
    structs: BTreeSet<String>,
}

/// `btf` extended with the debug-info types the program uses, and the parameters of
/// its probed functions; `None` when it uses none (nothing is read then).
pub fn extend(btf: &Lazy, program: &ast::Program) -> Result<Option<(Btf, Params)>, String> {
    let mut wanted = Wanted::default();
    for p in &program.probes {
        if let Some(pred) = &p.predicate {
            expr(pred, &mut wanted);
        }
        block(&p.body.stmts, &mut wanted);
    }
    if !wanted.args && wanted.structs.is_empty() {
        return Ok(None);
    }
    // The files, and the functions in each, that the attach points name.
    let mut files: Vec<(PathBuf, BTreeSet<String>)> = Vec::new();
    for p in &program.probes {
        for ap in &p.attach_points {
            let ap = crate::probes::for_process(ap, program.pid);
            let Some(describe) = ap.provider.debug_info else {
                continue;
            };
            let points = crate::probes::expand(&ap).unwrap_or_default();
            for point in points {
                let Some((file, function)) = describe(&point) else {
                    continue;
                };
                match files.iter_mut().find(|(f, _)| *f == file) {
                    Some((_, functions)) => {
                        functions.insert(function);
                    }
                    None => files.push((file, BTreeSet::from([function]))),
                }
            }
        }
    }
    let found: Vec<_> = files
        .iter()
        .filter_map(|(file, functions)| Some((file, functions, dwarf::load(file)?)))
        .collect();
    if found.is_empty() {
        return Ok(None);
    }
    // Only now is kernel BTF read (the new records follow its types).
    let mut convert = Converter::new(btf.type_count());
    let mut params = Params::new();
    for (k, (file, functions, info)) in found.iter().enumerate() {
        for name in &wanted.structs {
            convert.name_struct(k, info, name);
        }
        if !wanted.args {
            continue;
        }
        for function in *functions {
            // A function DWARF lacks has no parameters (bpftrace: "Can't find function
            // parameter"), unlike a file without debug info.
            let found = info.params(function).unwrap_or_default();
            let list = found
                .iter()
                .map(|p| Param {
                    name: p.name.clone(),
                    ty: convert.type_id(k, info, p.ty),
                })
                .collect();
            params.insert(((*file).clone(), function.clone()), list);
        }
    }
    if convert.is_empty() && params.is_empty() {
        return Ok(None);
    }
    let converted = convert.finish();
    let extended = btf
        .extended(&converted.added, &converted.names)
        .map_err(|e| format!("debug info types: {e}"))?;
    Ok(Some((extended, params)))
}

fn block(stmts: &[Stmt], w: &mut Wanted) {
    for s in stmts {
        match &s.kind {
            StmtKind::Expr(e) => expr(e, w),
            StmtKind::Assign { target, value, .. } => {
                lvalue(target, w);
                expr(value, w);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                expr(cond, w);
                block(&then.stmts, w);
                if let Some(b) = otherwise {
                    block(&b.stmts, w);
                }
            }
            StmtKind::While { cond, body } => {
                expr(cond, w);
                block(&body.stmts, w);
            }
            StmtKind::Unroll { count, body } => {
                expr(count, w);
                block(&body.stmts, w);
            }
            StmtKind::Return => {}
        }
    }
}

fn lvalue(target: &LValue, w: &mut Wanted) {
    match target {
        LValue::Var { .. } => {}
        LValue::Map { keys, .. } => keys.iter().for_each(|k| expr(k, w)),
    }
}

/// `struct NAME` as the script writes it: the tag.
fn struct_tag(name: &str) -> Option<String> {
    Some(name.strip_prefix("struct ")?.trim().to_string())
}

fn expr(e: &Expr, w: &mut Wanted) {
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Var(_)
        | ExprKind::Param(_)
        | ExprKind::ParamCount
        | ExprKind::Ident(_) => {}
        ExprKind::Builtin(name) => w.args |= name == "args",
        ExprKind::Map { keys, .. } => keys.iter().for_each(|k| expr(k, w)),
        ExprKind::Call { name, args } => {
            for a in args {
                match &a.kind {
                    ExprKind::Ident(t) if name == "sizeof" => w.structs.extend(struct_tag(t)),
                    _ => expr(a, w),
                }
            }
        }
        ExprKind::Unary { expr: inner, .. }
        | ExprKind::Member { expr: inner, .. }
        | ExprKind::TupleElem { expr: inner, .. } => expr(inner, w),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr(lhs, w);
            expr(rhs, w);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            expr(cond, w);
            expr(then, w);
            expr(otherwise, w);
        }
        ExprKind::Cast { ty, expr: inner } => {
            w.structs.extend(struct_tag(&ty.name));
            expr(inner, w);
        }
        ExprKind::Tuple(elems) => elems.iter().for_each(|x| expr(x, w)),
        ExprKind::Index { expr: inner, index } => {
            expr(inner, w);
            expr(index, w);
        }
        ExprKind::IncDec { target, .. } => lvalue(target, w),
    }
}

/// Whether two attach points' parameters agree, as bpftrace's `compare_args` compares
/// them: the same names with types of the same description (the same function in two
/// copies of a binary agrees, though its types are other records).
pub fn same_params(btf: &Btf, a: &[Param], b: &[Param]) -> bool {
    let describe = |p: &Param| super::kernel::value_type(btf, p.ty).map(|t| t.describe());
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.name == y.name && describe(x) == describe(y))
}
