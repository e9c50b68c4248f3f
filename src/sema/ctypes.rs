//! The script's struct/union/enum definitions, laid out by the C rules of x86-64 (the
//! System V ABI, what clang gives bpftrace 0.17): each member at the next multiple of
//! its alignment, bitfields packed into units of their declared type without
//! straddling one, the size rounded up to the largest alignment. The result is
//! appended to the kernel's BTF ([`Btf::extended`]), so every later stage sees the
//! script's types as it sees the kernel's.

use crate::ast::{CBody, CDef, CField, CKind, CType};
use crate::btf::{Btf, NewMember, NewType, TypeId, TypeKind};
use crate::diag::{Diagnostic, Span};

/// Nesting bound for alignment queries on kernel types.
const MAX_DEPTH: usize = 32;

/// Where a script's member types come from: the script and the kernel, or (bpftrace's
/// "BTF conflict") the script alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tags {
    /// `struct`/`union`/`enum` tags the script does not define are the kernel's.
    Kernel,
    /// Only the script's own tags exist. bpftrace 0.17 falls back to this when its
    /// generated BTF header would redefine a type the script defines: clang then
    /// reports `field has incomplete type 'struct thread_info'` for a kernel struct a
    /// definition embeds.
    ScriptOnly,
}

/// The kernel BTF extended with `defs`, or `None` when there are none.
pub fn extend(btf: &Btf, defs: &[CDef], tags: Tags) -> Result<Option<Btf>, Vec<Diagnostic>> {
    if defs.is_empty() {
        return Ok(None);
    }
    let mut flat = Vec::new();
    for d in defs {
        flatten(d, &mut flat);
    }
    let base = btf.type_count();
    let mut b = Builder {
        btf,
        defs: flat.iter().map(|d| (*d).clone()).collect(),
        records: vec![None; flat.len()],
        layouts: vec![None; flat.len()],
        extra: Vec::new(),
        base,
        names: Vec::new(),
        diags: Vec::new(),
        tags,
    };
    for (k, d) in flat.iter().enumerate() {
        if !d.name.is_empty() {
            let name = format!("{} {}", d.kind.keyword(), d.name);
            if b.names.iter().any(|(n, _)| *n == name) {
                // clang's message, which bpftrace 0.17 shows.
                b.diags.push(Diagnostic::error(
                    d.span,
                    format!("redefinition of '{}'", d.name),
                ));
            }
            b.names.push((name, TypeId(base + k as u32)));
        }
    }
    for k in 0..flat.len() {
        b.layout(k, 0);
    }
    if !b.diags.is_empty() {
        return Err(b.diags);
    }
    // Every definition was laid out above, so every record is there.
    let Some(mut added) = b.records.into_iter().collect::<Option<Vec<NewType>>>() else {
        let msg = "internal error: a definition was not laid out";
        return Err(vec![Diagnostic::error(defs[0].span, msg)]);
    };
    added.extend(b.extra);
    btf.extended(&added, &b.names).map(Some).map_err(|e| {
        vec![Diagnostic::error(
            defs[0].span,
            format!("script types: {e}"),
        )]
    })
}

/// Definitions in id order: each one, then those written inside it.
fn flatten<'d>(d: &'d CDef, out: &mut Vec<&'d CDef>) {
    out.push(d);
    if let CBody::Fields(fields) = &d.body {
        for f in fields {
            if let CType::Def(inner) = &f.ty {
                flatten(inner, out);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    size: u32,
    align: u32,
}

struct Builder<'b> {
    btf: &'b Btf,
    defs: Vec<CDef>,
    records: Vec<Option<NewType>>,
    layouts: Vec<Option<Layout>>,
    /// Pointer and array records, after the definitions.
    extra: Vec<NewType>,
    base: u32,
    names: Vec<(String, TypeId)>,
    diags: Vec<Diagnostic>,
    tags: Tags,
}

impl Builder<'_> {
    fn id_of_def(&self, d: &CDef) -> Option<usize> {
        self.defs.iter().position(|x| x == d)
    }

    /// Lay out definition `k` (once), returning its size and alignment.
    fn layout(&mut self, k: usize, depth: usize) -> Layout {
        if let Some(l) = self.layouts[k] {
            return l;
        }
        let d = self.defs[k].clone();
        if depth > MAX_DEPTH {
            self.diags
                .push(Diagnostic::error(d.span, "types nested too deeply"));
            return Layout { size: 0, align: 1 };
        }
        // A struct containing itself by value would recurse: mark it in progress.
        self.layouts[k] = Some(Layout { size: 0, align: 1 });
        let (record, layout) = match &d.body {
            CBody::Enumerators(values) => {
                let signed = values.iter().any(|(_, v)| *v < 0);
                let wide = values
                    .iter()
                    .any(|(_, v)| i32::try_from(*v).is_err() && u32::try_from(*v).is_err());
                let size = if wide { 8 } else { 4 };
                (
                    NewType::Enum {
                        name: d.name.clone(),
                        size,
                        signed,
                        values: values.clone(),
                    },
                    Layout { size, align: size },
                )
            }
            CBody::Fields(fields) => self.aggregate(&d, fields, depth),
        };
        self.records[k] = Some(record);
        self.layouts[k] = Some(layout);
        layout
    }

    fn aggregate(&mut self, d: &CDef, fields: &[CField], depth: usize) -> (NewType, Layout) {
        let union = d.kind == CKind::Union;
        let mut members = Vec::new();
        let mut bit = 0u64;
        let mut align = 1u32;
        let mut size = 0u64;
        for f in fields {
            let Some((ty, l)) = self.field_type(f, depth) else {
                continue;
            };
            let unit = l.align.max(1) as u64 * 8;
            let offset = match f.bits {
                Some(0) if !f.name.is_empty() => {
                    self.diags.push(Diagnostic::error(
                        f.span,
                        format!("named bit-field '{}' has zero width", f.name),
                    ));
                    continue;
                }
                Some(w) => {
                    if w as u64 > l.size as u64 * 8 {
                        self.diags.push(Diagnostic::error(
                            f.span,
                            format!("width of bit-field '{}' ({w} bits) exceeds the width of its type ({} bits)", f.name, l.size * 8),
                        ));
                        continue;
                    }
                    let start = if union { 0 } else { bit };
                    let start = if w == 0 || start / unit != (start + w as u64 - 1) / unit {
                        start.div_ceil(unit) * unit
                    } else {
                        start
                    };
                    if !union {
                        bit = start + w as u64;
                    }
                    size = size.max((start + w as u64).div_ceil(8));
                    start
                }
                None => {
                    let start = if union { 0 } else { bit.div_ceil(unit) * unit };
                    if !union {
                        bit = start + l.size as u64 * 8;
                    }
                    size = size.max(start / 8 + l.size as u64);
                    start
                }
            };
            // Unnamed bitfields pad but do not align the aggregate (x86-64 ABI).
            if f.bits.is_some() && f.name.is_empty() {
                continue;
            }
            align = align.max(l.align);
            members.push(NewMember {
                name: f.name.clone(),
                ty,
                bit_offset: offset as u32,
                bits: f.bits,
            });
        }
        let size = (size.div_ceil(align as u64) * align as u64) as u32;
        (
            NewType::Aggregate {
                name: d.name.clone(),
                union,
                size,
                members,
            },
            Layout { size, align },
        )
    }

    /// The BTF id, size and alignment of a member's declared type.
    fn field_type(&mut self, f: &CField, depth: usize) -> Option<(TypeId, Layout)> {
        let mut ty;
        let mut l;
        if f.pointer_depth > 0 {
            // A pointer needs no layout of its target, which may be incomplete.
            ty = match &f.ty {
                CType::Def(inner) => TypeId(self.base + self.id_of_def(inner)? as u32),
                CType::Named(name, span) => match self.named(name) {
                    Some(id) => id,
                    // `struct Bar *` of a struct defined nowhere: incomplete, as in C.
                    None if ["struct ", "union ", "enum "]
                        .iter()
                        .any(|k| name.starts_with(k)) =>
                    {
                        TypeId::VOID
                    }
                    None => return self.unknown(name, *span),
                },
            };
            for _ in 0..f.pointer_depth {
                ty = self.push(NewType::Ptr { target: ty });
            }
            l = Layout { size: 8, align: 8 };
        } else {
            (ty, l) = match &f.ty {
                CType::Def(inner) => {
                    let k = self.id_of_def(inner)?;
                    let l = self.layout(k, depth + 1);
                    (TypeId(self.base + k as u32), l)
                }
                CType::Named(name, span) => {
                    let Some(id) = self.named(name) else {
                        if ["struct ", "union ", "enum "]
                            .iter()
                            .any(|k| name.starts_with(k))
                        {
                            let msg = format!("field has incomplete type '{name}'");
                            self.diags.push(Diagnostic::error(*span, msg));
                            return None;
                        }
                        return self.unknown(name, *span);
                    };
                    let l = match self.script_def(id) {
                        Some(k) => self.layout(k, depth + 1),
                        None => kernel_layout(self.btf, id, 0)?,
                    };
                    if l.size == 0 && !matches!(self.btf.kind(id), TypeKind::Struct { .. }) {
                        self.diags.push(Diagnostic::error(
                            *span,
                            format!("field has incomplete type '{name}'"),
                        ));
                        return None;
                    }
                    (id, l)
                }
            };
        }
        for &n in f.dims.iter().rev() {
            ty = self.push(NewType::Array { elem: ty, len: n });
            l.size = l.size.saturating_mul(n);
        }
        Some((ty, l))
    }

    fn unknown<T>(&mut self, name: &str, span: Span) -> Option<T> {
        self.diags.push(Diagnostic::error(
            span,
            format!("unknown type name '{name}'"),
        ));
        None
    }

    /// A script type by name, else a kernel one (a kernel tag only under [`Tags::Kernel`]).
    fn named(&self, name: &str) -> Option<TypeId> {
        if name == "void" {
            return Some(TypeId::VOID);
        }
        let tag = ["struct ", "union ", "enum "]
            .iter()
            .any(|k| name.starts_with(k));
        self.names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .or_else(|| match (tag, self.tags) {
                (true, Tags::ScriptOnly) => None,
                _ => self.btf.find_type(name),
            })
    }

    fn script_def(&self, id: TypeId) -> Option<usize> {
        let k = id.0.checked_sub(self.base)? as usize;
        (k < self.defs.len()).then_some(k)
    }

    fn push(&mut self, t: NewType) -> TypeId {
        self.extra.push(t);
        TypeId(self.base + (self.defs.len() + self.extra.len() - 1) as u32)
    }
}

/// The script's structs and unions that the kernel also has under the same tag. A
/// member access through one makes bpftrace 0.17 generate that kernel type too, which
/// conflicts with the script's ([`Tags::ScriptOnly`]); measured: `struct task_struct
/// { struct thread_info x; int pid; }` fails at `curtask->pid` and at
/// `((struct task_struct *)curtask)->pid`, not where no member is read.
pub fn shadowing(kernel: &Btf, extended: &Btf, kernel_types: u32) -> Vec<TypeId> {
    (kernel_types..extended.type_count())
        .map(TypeId)
        .filter(|&id| {
            matches!(
                extended.kind(id),
                TypeKind::Struct { .. } | TypeKind::Union { .. }
            ) && !extended.type_name(id).is_empty()
                && kernel.find_type(&extended.name_of(id)).is_some()
        })
        .collect()
}

/// Size and alignment of a kernel type: scalars align to their size, aggregates and
/// arrays to their strictest member.
fn kernel_layout(btf: &Btf, id: TypeId, depth: usize) -> Option<Layout> {
    let size = btf.size_of(id).unwrap_or(0);
    let align = match btf.kind(id) {
        TypeKind::Int { size, .. } | TypeKind::Enum { size, .. } | TypeKind::Float { size } => {
            size.clamp(1, 16)
        }
        TypeKind::Ptr { .. } => 8,
        TypeKind::Array { elem, .. } if depth < MAX_DEPTH => {
            kernel_layout(btf, elem, depth + 1)?.align
        }
        TypeKind::Struct { .. } | TypeKind::Union { .. } if depth < MAX_DEPTH => btf
            .members(btf.resolve(id))
            .iter()
            .filter_map(|m| kernel_layout(btf, m.type_id, depth + 1))
            .map(|l| l.align)
            .max()
            .unwrap_or(1),
        // Byte-aligned: nothing to align (void, declarations only), or nested too deep.
        TypeKind::Array { .. }
        | TypeKind::Struct { .. }
        | TypeKind::Union { .. }
        | TypeKind::Void
        | TypeKind::Fwd { .. }
        | TypeKind::Func
        | TypeKind::FuncProto
        | TypeKind::Var
        | TypeKind::Datasec
        | TypeKind::DeclTag => 1,
    };
    Some(Layout { size, align })
}
