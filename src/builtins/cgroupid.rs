//! `cgroupid("path")`: the id of the cgroup at `path`, resolved at compile time as
//! bpftrace 0.17 does (the 8-byte file handle `name_to_handle_at` gives; on cgroup2
//! that is the id `cgroup` returns), so the program holds a constant.

use std::ffi::CString;

use super::{Builtin, Checked, Form, Site};
use crate::ast::ExprKind;
use crate::sema::{Checker, TExpr, TExprKind, Type};
use crate::sys;

pub static CGROUPID: Builtin = Builtin {
    name: "cgroupid",
    form: Form::Function,
    numbered: false,
    check,
    // Sema folds every use into a constant.
    lower: |g, call, dest| g.misplaced(call, dest),
    pure: true,
};

fn check(ck: &mut Checker<'_, '_>, site: &Site<'_>) -> Option<Checked> {
    let arg = ck.one_arg(site)?;
    let ExprKind::Str(path) = &arg.kind else {
        let e = ck.expr(arg)?;
        ck.error(
            site.span,
            format!(
                "cgroupid() expects a string literal ({} provided)",
                super::join::kind_name(&e.ty)
            ),
        );
        return None;
    };
    let id = CString::new(path.as_str())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
        .and_then(|c| sys::cgroup_id(&c));
    let id = match id {
        Ok(id) => id,
        Err(e) => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            ck.error(
                site.span,
                format!("Failed to get `cgroupid` for path: \"{path}\": {text}"),
            );
            return None;
        }
    };
    Some(Checked::Value(TExpr {
        kind: TExprKind::Int(id),
        ty: Type::U64,
        span: site.span,
    }))
}
