//! `@maps` as state shared between probes: reads, assignments, `delete()`, and `clear()`
//! in END. A map's key and value types come from its uses across the whole program (a
//! first pass collects them, as bpftrace's passes do, so a read may come textually before
//! the assignment). bpftrace prints every map left non-empty at exit; rbt cannot print
//! maps yet, so a program must `clear()` each map in an END probe — then nothing is
//! printed by bpftrace either, and scripts such as tcplife.bt and tcpretrans.bt run.

use super::stmt::convert;
use super::typed::*;
use super::{Analyzer, Pass, ProbeCx};
use crate::ast::{self, ExprKind, Span};

/// What the analysis knows about one map.
#[derive(Clone, Debug)]
pub(super) struct MapState {
    pub name: String,
    pub keyed: bool,
    pub key: Option<Type>,
    pub value: Option<Type>,
    /// Where the map is first used, for "never cleared" errors.
    pub first_use: Span,
    pub cleared_in_end: bool,
}

impl Analyzer<'_> {
    pub(super) fn map_id(&mut self, name: &str, span: Span) -> MapId {
        if let Some(i) = self.maps.iter().position(|m| m.name == name) {
            return MapId(i);
        }
        self.maps.push(MapState {
            name: name.to_string(),
            keyed: false,
            key: None,
            value: None,
            first_use: span,
            cleared_in_end: false,
        });
        MapId(self.maps.len() - 1)
    }

    /// The key expression of `@name[keys]`, with the map's key type (scalars are keyed as
    /// u64; a map without `[...]` has the single key 0).
    pub(super) fn map_key(
        &mut self,
        cx: &mut ProbeCx,
        id: MapId,
        keys: &[ast::Expr],
        span: Span,
    ) -> Option<TExpr> {
        self.maps[id.0].keyed |= !keys.is_empty();
        let key = match keys {
            [] => TExpr {
                kind: TExprKind::Int(0),
                ty: Type::U64,
                span,
            },
            [key] => self.expr(cx, key)?,
            [_, second, ..] => {
                self.error(
                    second.span,
                    "maps with more than one key are not supported yet",
                );
                return None;
            }
        };
        let key_ty = match &key.ty {
            Type::Int { .. } | Type::Ptr { .. } => Type::U64,
            Type::Str { size } => Type::Str { size: *size },
            other => {
                self.error(
                    key.span,
                    format!(
                        "a map key must be an integer, pointer or string, not '{}'",
                        other.describe()
                    ),
                );
                return None;
            }
        };
        let state = &mut self.maps[id.0];
        match (&state.key, &key_ty) {
            (None, _) => state.key = Some(key_ty.clone()),
            (Some(Type::Str { size: have }), Type::Str { size }) => {
                let size = (*have).max(*size);
                state.key = Some(Type::Str { size });
            }
            (Some(have), new) if have == new => {}
            (Some(have), new) => {
                let msg = format!(
                    "map @{} is keyed by '{}' elsewhere, not '{}'",
                    state.name,
                    have.describe(),
                    new.describe()
                );
                self.error(key.span, msg);
                return None;
            }
        }
        Some(match key_ty {
            Type::U64 => convert(key, &Type::U64),
            _ => key,
        })
    }

    /// `@name[key]` read: the stored value, or zero/empty when the key is absent.
    pub(super) fn map_read(
        &mut self,
        cx: &mut ProbeCx,
        name: &str,
        keys: &[ast::Expr],
        span: Span,
    ) -> Option<TExpr> {
        let id = self.map_id(name, span);
        let key = self.map_key(cx, id, keys, span)?;
        let Some(ty) = self.maps[id.0].value.clone() else {
            if self.pass == Pass::Check {
                self.error(span, format!("map @{name} is read but never assigned"));
            }
            return None;
        };
        Some(TExpr {
            kind: TExprKind::MapRead {
                map: id,
                key: Box::new(key),
            },
            ty,
            span,
        })
    }

    /// `@name[key] = value` (and `op=`, `++`, `--`).
    pub(super) fn map_assign(
        &mut self,
        cx: &mut ProbeCx,
        target: (&str, &[ast::Expr], Span),
        op: Option<ast::BinOp>,
        value: &ast::Expr,
        span: Span,
    ) -> Option<TStmtKind> {
        let (name, keys, target_span) = target;
        let id = self.map_id(name, target_span);
        let key = self.map_key(cx, id, keys, target_span)?;
        if op.is_some() {
            // `@n++` / `@n += x` on a fresh map starts from an int64 zero.
            self.maps[id.0].value.get_or_insert(Type::I64);
        }
        let target = ast::Expr {
            kind: ExprKind::Map {
                name: name.to_string(),
                keys: keys.to_vec(),
            },
            span: target_span,
        };
        let value = self.stored_value(cx, target, op, value, span)?;
        if !(value.ty.is_scalar() || matches!(value.ty, Type::Str { .. } | Type::Inet)) {
            self.error(
                value.span,
                format!(
                    "a map value must be an integer, pointer, string or inet, not '{}'",
                    value.ty.describe()
                ),
            );
            return None;
        }
        let state = &mut self.maps[id.0];
        let stored = match (&state.value, &value.ty) {
            (None, ty) => ty.clone(),
            (Some(Type::Str { size: have }), Type::Str { size }) => Type::Str {
                size: (*have).max(*size),
            },
            (Some(have @ Type::Int { .. }), Type::Int { .. }) => have.clone(),
            (Some(have), ty) if have == ty => have.clone(),
            (Some(have), ty) => {
                let msg = format!(
                    "type mismatch for @{name}: trying to assign value of type '{}' when map already contains a value of type '{}'",
                    ty.describe(),
                    have.describe()
                );
                self.error(span, msg);
                return None;
            }
        };
        state.value = Some(stored.clone());
        let value = match stored {
            Type::Int { .. } => convert(value, &stored),
            _ => value,
        };
        Some(TStmtKind::MapAssign {
            map: id,
            key,
            value,
        })
    }

    /// bpftrace would print maps left at exit; until rbt can, each must be cleared in END.
    pub(super) fn check_maps_cleared(&mut self) {
        for m in self.maps.clone() {
            if !m.cleared_in_end {
                self.error(
                    m.first_use,
                    format!(
                        "printing maps at exit is not supported yet, and @{0} would be printed; \
                         if @{0} only holds state, add `clear(@{0});` to an END probe",
                        m.name
                    ),
                );
            }
        }
    }

    /// The typed maps, in `MapId` order.
    pub(super) fn typed_maps(&self) -> Vec<TypedMap> {
        self.maps
            .iter()
            .map(|m| TypedMap {
                name: m.name.clone(),
                keyed: m.keyed,
                key: m.key.clone().unwrap_or(Type::U64),
                value: m.value.clone().unwrap_or(Type::U64),
            })
            .collect()
    }
}
