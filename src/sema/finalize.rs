//! The last pass over a checked probe: a string variable is as large as the largest
//! string assigned to it anywhere in the probe (as in bpftrace 0.17, where
//! `$s = "none"; $s = "established";` prints `established`), so every read of it takes
//! the variable's final type, also reads that come before the longer assignment (and
//! likewise a tuple variable, whose string elements grow).

use super::typed::*;

pub(super) fn probe(stmts: &mut [TStmt], mut pred: Option<&mut TExpr>, vars: &mut [Var]) {
    // A tuple holding a variable grows with it, and so does a tuple variable it is
    // assigned to (bpftrace's passes repeat until types settle): repeat until no
    // variable grows. Sizes only grow, up to the largest string, so this ends.
    loop {
        if let Some(pred) = pred.as_mut() {
            expr(pred, vars);
        }
        block(stmts, vars);
        if !widen_tuple_vars(stmts, vars) {
            break;
        }
    }
}

/// Grows each tuple variable to hold the tuples assigned to it; whether any grew.
fn widen_tuple_vars(stmts: &[TStmt], vars: &mut [Var]) -> bool {
    let mut grew = false;
    for s in stmts {
        match &s.kind {
            TStmtKind::Assign { var, value } => {
                if let Some(v) = vars.get_mut(var.0) {
                    let before = v.ty.clone();
                    super::tuples::widen(&mut v.ty, &value.ty);
                    grew |= v.ty != before;
                }
            }
            TStmtKind::If {
                then, otherwise, ..
            } => {
                grew |= widen_tuple_vars(then, vars);
                grew |= widen_tuple_vars(otherwise, vars);
            }
            TStmtKind::While { body, .. } | TStmtKind::Block(body) => {
                grew |= widen_tuple_vars(body, vars)
            }
            TStmtKind::Expr(_)
            | TStmtKind::Return
            | TStmtKind::MapAssign { .. }
            | TStmtKind::Call(_) => {}
        }
    }
    grew
}

fn block(stmts: &mut [TStmt], vars: &[Var]) {
    for s in stmts {
        match &mut s.kind {
            TStmtKind::Expr(e) | TStmtKind::Assign { value: e, .. } => expr(e, vars),
            TStmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                expr(cond, vars);
                block(then, vars);
                block(otherwise, vars);
            }
            TStmtKind::While { cond, body } => {
                expr(cond, vars);
                block(body, vars);
            }
            TStmtKind::Block(body) => block(body, vars),
            TStmtKind::Return => {}
            TStmtKind::MapAssign { key, value, .. } => {
                key.iter_mut().for_each(|k| expr(k, vars));
                expr(value, vars);
            }
            TStmtKind::Call(call) => call.args.iter_mut().for_each(|a| expr(a, vars)),
        }
    }
}

fn expr(e: &mut TExpr, vars: &[Var]) {
    match &mut e.kind {
        TExprKind::Var(id) => {
            if let (Type::Str { .. } | Type::Tuple(_), Some(var)) = (&e.ty, vars.get(id.0)) {
                e.ty = var.ty.clone();
            }
        }
        TExprKind::Int(_) | TExprKind::Str(_) | TExprKind::CtxAddress => {}
        TExprKind::Call(call) => call.args.iter_mut().for_each(|a| expr(a, vars)),
        TExprKind::Load { place, .. } | TExprKind::InMemory(place) => {
            if let Base::Mem { ptr, .. } = &mut place.base {
                expr(ptr, vars);
            }
        }
        TExprKind::Unary { expr: inner, .. } | TExprKind::Cast(inner) => expr(inner, vars),
        TExprKind::Binary { lhs, rhs, .. } => {
            expr(lhs, vars);
            expr(rhs, vars);
        }
        TExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            expr(cond, vars);
            expr(then, vars);
            expr(otherwise, vars);
        }
        TExprKind::MapRead { key, .. } => key.iter_mut().for_each(|k| expr(k, vars)),
        // A tuple holding a variable takes its final type too.
        TExprKind::Tuple(elems) => {
            elems.iter_mut().for_each(|x| expr(x, vars));
            e.ty = Type::Tuple(elems.iter().map(|x| x.ty.clone()).collect());
        }
        TExprKind::TupleElem { expr: base, index } => {
            expr(base, vars);
            if let Type::Tuple(elems) = &base.ty {
                if let Some(ty) = elems.get(*index) {
                    e.ty = ty.clone();
                }
            }
        }
        TExprKind::Effect { stmts, value } => {
            block(stmts, vars);
            expr(value, vars);
        }
        TExprKind::Field { expr: base, .. } => expr(base, vars),
    }
}
