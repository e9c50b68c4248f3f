//! The last pass over a checked probe: a string variable is as large as the largest
//! string assigned to it anywhere in the probe (as in bpftrace 0.17, where
//! `$s = "none"; $s = "established";` prints `established`), so every read of it takes
//! the variable's final type, also reads that come before the longer assignment.

use super::typed::*;

pub(super) fn probe(stmts: &mut [TStmt], pred: Option<&mut TExpr>, vars: &[Var]) {
    if let Some(pred) = pred {
        expr(pred, vars);
    }
    block(stmts, vars);
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
            if let (Type::Str { .. }, Some(var)) = (&e.ty, vars.get(id.0)) {
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
        TExprKind::Effect { stmts, value } => {
            block(stmts, vars);
            expr(value, vars);
        }
    }
}
