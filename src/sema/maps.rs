//! `@maps`: state shared between probes and printed at exit. A map's key and value
//! types come from all its uses across the program (the collect pass learns them, as
//! bpftrace's passes do, so a read may come textually before the assignment). Keys are
//! one or more parts (`@x[a, b]`): integers and pointers stored as 8-byte integers,
//! strings at the largest size used; tuples are not keys. Values are integers, strings,
//! inet values, tuples, or an aggregation's state (`count()`, `hist(x)`, ... — see
//! `builtins/aggregations.rs`). Messages follow bpftrace 0.17's wording.

use super::stmt::convert;
use super::typed::*;
use super::{Analyzer, Pass, ProbeCx};
use crate::ast::{self, ExprKind, Span};

/// What the analysis knows about one map.
#[derive(Clone, Debug)]
pub(super) struct MapState {
    pub name: String,
    pub keyed: bool,
    /// The key parts' types, once known.
    pub key: Option<Vec<Type>>,
    /// Names for the key parts, from the first use's key expressions ([`key_names`]).
    pub labels: Vec<String>,
    pub value: Option<Type>,
}

impl Analyzer<'_> {
    pub(super) fn map_id(&mut self, name: &str, _span: Span) -> MapId {
        if let Some(i) = self.maps.iter().position(|m| m.name == name) {
            return MapId(i);
        }
        self.maps.push(MapState {
            name: name.to_string(),
            keyed: false,
            key: None,
            labels: Vec::new(),
            value: None,
        });
        MapId(self.maps.len() - 1)
    }

    /// The key parts of `@name[keys]`, typed as the map stores them (integers and
    /// pointers as u64; strings at the map's size). A map without `[...]` has no parts.
    pub(super) fn map_key(
        &mut self,
        cx: &mut ProbeCx,
        id: MapId,
        keys: &[ast::Expr],
        span: Span,
    ) -> Option<Vec<TExpr>> {
        self.maps[id.0].keyed |= !keys.is_empty();
        let parts: Vec<_> = keys
            .iter()
            .map(|k| self.expr(cx, k).and_then(|e| self.value_of(e)))
            .collect();
        let parts: Vec<TExpr> = parts.into_iter().collect::<Option<_>>()?;
        let mut types = Vec::with_capacity(parts.len());
        for part in &parts {
            if super::kernel::is_ctx_pointer(part) {
                self.error(span, "context cannot be used as a map key");
                return None;
            }
            types.push(match &part.ty {
                Type::Int { .. } | Type::Ptr { .. } => Type::U64,
                Type::Str { size } => Type::Str { size: *size },
                ty @ (Type::Username | Type::Stack { .. } | Type::Ksym | Type::Usym) => ty.clone(),
                Type::Buf { size } => Type::Buf { size: *size },
                Type::MacAddr => Type::MacAddr,
                Type::Timestamp { size } => Type::Timestamp { size: *size },
                Type::Record(r) => Type::Record(r.clone()),
                Type::Tuple(_) => {
                    self.error(
                        span,
                        "tuple cannot be used as a map key. Try a multi-key associative array instead (eg `@map[$1, $2] = ...)`.",
                    );
                    return None;
                }
                other => {
                    self.error(
                        part.span,
                        format!(
                            "a map key must be an integer, pointer or string, not '{}'",
                            other.describe()
                        ),
                    );
                    return None;
                }
            });
        }
        let state = &mut self.maps[id.0];
        match &mut state.key {
            None => {
                state.key = Some(types.clone());
                state.labels = key_names(keys);
            }
            Some(have) if have.len() == types.len() && have.iter().zip(&types).all(same_kind) => {
                for (h, t) in have.iter_mut().zip(&types) {
                    if let (Type::Str { size: a }, Type::Str { size: b }) = (&*h, t) {
                        *h = Type::Str { size: (*a).max(*b) };
                    }
                }
            }
            Some(have) => {
                let msg = format!(
                    "Argument mismatch for @{}: trying to access with arguments: [{}] when map expects arguments: [{}]",
                    state.name,
                    describe_parts(&types),
                    describe_parts(have)
                );
                self.error(span, msg);
                return None;
            }
        }
        Some(
            parts
                .into_iter()
                .map(|p| match p.ty {
                    Type::Int { .. } | Type::Ptr { .. } => convert(p, &Type::U64),
                    _ => p,
                })
                .collect(),
        )
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
            kind: TExprKind::MapRead { map: id, key },
            ty,
            span,
        })
    }

    /// `@name[key] = value` (and `op=`, `++`, `--`), including `@name[key] = count()`.
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
        // An aggregation may only be the whole value of a plain assignment.
        self.aggregation_allowed = op.is_none();
        let value = self.stored_value(cx, target, op, value, span);
        self.aggregation_allowed = false;
        let value = self.value_of(value?)?;
        let storable = value.ty.is_scalar()
            || matches!(
                value.ty,
                Type::Str { .. }
                    | Type::Buf { .. }
                    | Type::Inet
                    | Type::MacAddr
                    | Type::Timestamp { .. }
                    | Type::CgroupPath { .. }
                    | Type::Username
                    | Type::Strerror
                    | Type::Stack { .. }
                    | Type::Ksym
                    | Type::Usym
                    | Type::Agg(_)
                    | Type::Tuple(_)
                    | Type::Record(_)
            );
        let ctx = super::kernel::is_ctx_pointer(&value);
        if !storable || ctx {
            let context = ctx
                || matches!(
                    value.kind,
                    TExprKind::InMemory(Place {
                        base: Base::Ctx,
                        ..
                    })
                );
            let msg = match context {
                true => "context cannot be assigned to a map".to_string(),
                false => format!(
                    "a map value must be an integer, pointer, string or inet, not '{}'",
                    value.ty.describe()
                ),
            };
            self.error(value.span, msg);
            return None;
        }
        if let (Some(have @ Type::Tuple(_)), Type::Tuple(_)) = (&self.maps[id.0].value, &value.ty) {
            // The value keeps its own layout, written into a zeroed map value (as
            // bpftrace 0.17 copies it).
            let mut ty = have.clone();
            self.store_tuple(&mut ty, &value.ty, target_span)?;
            self.maps[id.0].value = Some(ty);
            return Some(TStmtKind::MapAssign {
                map: id,
                key,
                value,
            });
        }
        let state = &mut self.maps[id.0];
        let stored = match (&state.value, &value.ty) {
            (None, ty) => ty.clone(),
            (Some(Type::Str { size: have }), Type::Str { size }) => Type::Str {
                size: (*have).max(*size),
            },
            (Some(have @ Type::Int { .. }), Type::Int { .. }) => have.clone(),
            (Some(Type::Agg(have)), Type::Agg(new)) if have.same_aggregation(new) => {
                Type::Agg(*have)
            }
            (Some(have), ty) if same_kind((have, ty)) => have.clone(),
            (Some(have), ty) => {
                // As bpftrace 0.17 words it: the stored type's closing quote is
                // missing (`assign_map_type`), doubled for a struct into a struct.
                let struct_value =
                    |t: &Type| matches!(t, Type::Record(r) if matches!(r.shape, Shape::Fields(_)));
                let close = match struct_value(ty) && struct_value(have) {
                    true => "''",
                    false => "",
                };
                let array = |t: &Type| matches!(t, Type::Record(r) if matches!(r.shape, Shape::Array { .. }));
                let msg = match array(ty) && array(have) {
                    true => format!(
                        "Array type mismatch: {} != {}.",
                        have.describe(),
                        ty.describe()
                    ),
                    false => format!(
                        "Type mismatch for @{name}: trying to assign value of type '{}' when map already contains a value of type '{}{close}",
                        ty.describe(),
                        have.describe()
                    ),
                };
                self.error(target_span, msg);
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

    /// The typed maps, in `MapId` order.
    pub(super) fn typed_maps(&self) -> Vec<TypedMap> {
        self.maps
            .iter()
            .map(|m| TypedMap {
                name: m.name.clone(),
                keyed: m.keyed,
                key: m.key.clone().unwrap_or_default(),
                labels: m.labels.clone(),
                value: m.value.clone().unwrap_or(Type::U64),
            })
            .collect()
    }
}

/// Names for a map's key parts, for `--metrics` labels: a builtin (`comm`, `pid`), a
/// variable or a member (`args->filename`: `filename`) names its part; any other
/// expression, or a name used twice, is `keyN` (N the part's position).
fn key_names(keys: &[ast::Expr]) -> Vec<String> {
    let simple = |e: &ast::Expr| match &e.kind {
        ExprKind::Builtin(n) | ExprKind::Var(n) | ExprKind::Member { field: n, .. } => {
            Some(n.clone())
        }
        // No one name to give the part.
        ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Param(_)
        | ExprKind::ParamCount
        | ExprKind::Map { .. }
        | ExprKind::Ident(_)
        | ExprKind::Call { .. }
        | ExprKind::Unary { .. }
        | ExprKind::Binary { .. }
        | ExprKind::Ternary { .. }
        | ExprKind::Cast { .. }
        | ExprKind::Index { .. }
        | ExprKind::IncDec { .. }
        | ExprKind::Tuple(_)
        | ExprKind::TupleElem { .. } => None,
    };
    let names: Vec<Option<String>> = keys.iter().map(simple).collect();
    names
        .iter()
        .enumerate()
        .map(|(i, n)| match n {
            Some(n) if names.iter().filter(|m| m.as_ref() == Some(n)).count() == 1 => n.clone(),
            _ => format!("key{i}"),
        })
        .collect()
}

/// Whether two key part types are the same kind (strings of any size agree).
/// Stacks agree when both are kernel or both user stacks: bpftrace compares no stack
/// type, and the first one's is kept.
fn same_kind((a, b): (&Type, &Type)) -> bool {
    match (a, b) {
        (Type::Str { .. }, Type::Str { .. }) => true,
        (Type::Stack { user: a, .. }, Type::Stack { user: b, .. }) => a == b,
        _ => a == b,
    }
}

/// Key part types as bpftrace lists them: `unsigned int64, string[16]`.
fn describe_parts(parts: &[Type]) -> String {
    parts
        .iter()
        .map(|t| match t {
            Type::Int {
                size: 8,
                signed: false,
            } => "unsigned int64".to_string(),
            other => other.describe(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
