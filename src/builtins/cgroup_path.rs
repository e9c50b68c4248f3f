//! `cgroup_path(id [, filter])`: the paths of cgroup `id` in the mounted hierarchies
//! whose names match `filter` (default `*`), as bpftrace 0.17 prints them
//! (`unified:/a,cpu:/b`). The program only records the id, with the filter after it;
//! user space finds the paths when it prints the value (`output::cgroup`).

use super::join::kind_name;
use super::{Builtin, Checked, Form, Site};
use crate::sema::{value, Checker, Payload, TExprKind, Type};

pub static CGROUP_PATH: Builtin = Builtin {
    name: "cgroup_path",
    form: Form::Function,
    numbered: false,
    check,
    // The id, then the filter inline: strftime's layout (integer, then text).
    lower: super::strftime::lower,
    pure: false,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    ck.arg_range(site, 1, 2)?;
    let id = ck.expr(&site.args[0])?;
    if !matches!(id.ty, Type::Int { .. }) {
        ck.error(
            site.span,
            format!(
                "cgroup_path() only supports integer arguments ({} provided)",
                kind_name(&id.ty)
            ),
        );
        return None;
    }
    let filter = match site.args.get(1) {
        None => "*".to_string(),
        Some(arg) => {
            let f = ck.expr(arg)?;
            match (&f.kind, &f.ty) {
                (TExprKind::Str(text), _) => text.clone(),
                // bpftrace 0.17 takes any string here but then filters by an empty
                // pattern, which matches nothing: ask for the literal instead.
                (_, Type::Str { .. }) => {
                    ck.error(f.span, "cgroup_path()'s filter must be a string literal");
                    return None;
                }
                (_, ty) => {
                    ck.error(
                        site.span,
                        format!(
                            "cgroup_path() only supports string arguments ({} provided)",
                            kind_name(ty)
                        ),
                    );
                    return None;
                }
            }
        }
    };
    let size = 8 + (filter.len() + 1).next_multiple_of(8);
    value(
        &CGROUP_PATH,
        vec![id],
        Payload::Text(filter),
        Type::CgroupPath { size },
        site.span,
    )
}
