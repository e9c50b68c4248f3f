//! kprobe_multi (issue 13/15): whether this kernel has it, decided as bpftrace 0.17
//! decides it (checked against `bpftrace --info`), and which attach points attach
//! together: one wildcard's matches, unless the probe needs one program per attach point
//! (`probe`, a tracepoint's `args`), as bpftrace's `need_expansion`. The attachments
//! themselves run in the VM (this host has no fprobe): tests/vm, scripts in the report.

mod codegen_common;
mod support;

use codegen_common::pinned_btf;
use rbt::ast::AttachPoint;
use rbt::diag::Span;
use rbt::probes::{self, Provider};
use rbt::{diag, parser, sema};

fn kprobe() -> &'static Provider {
    probes::lookup("kprobe").expect("kprobe is registered")
}

fn point(
    provider: &'static Provider,
    func: &str,
    span: usize,
    wildcard: Option<&str>,
) -> AttachPoint {
    AttachPoint {
        provider,
        target: vec![func.to_string()],
        span: Span::new(span, span + 1),
        wildcard: wildcard.map(str::to_string),
    }
}

fn sizes(groups: &[&[AttachPoint]]) -> Vec<usize> {
    groups.iter().map(|g| g.len()).collect()
}

#[test]
fn the_feature_test_agrees_with_bpftrace() {
    const TEST: &str = "the_feature_test_agrees_with_bpftrace";
    if support::skip_if(TEST, support::not_root()).is_some() {
        return;
    }
    let Some(out) =
        support::output_or_skip(TEST, std::process::Command::new("bpftrace").arg("--info"))
    else {
        return;
    };
    let info =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let Some(line) = info
        .lines()
        .find(|l| l.trim_start().starts_with("kprobe_multi:"))
    else {
        panic!("bpftrace --info names no kprobe_multi feature:\n{info}");
    };
    let theirs = line.trim().ends_with("yes");
    let ours = probes::multi_available(kprobe())
        && probes::multi_available(probes::lookup("kretprobe").unwrap());
    assert_eq!(ours, theirs, "bpftrace --info says {line:?}");
    // The other probe types never attach matches together.
    for name in ["tracepoint", "uprobe", "software", "profile"] {
        assert!(
            !probes::multi_available(probes::lookup(name).unwrap()),
            "{name}"
        );
    }
}

#[test]
fn one_wildcards_matches_form_one_attachment() {
    let k = kprobe();
    let kr = probes::lookup("kretprobe").unwrap();
    let points = [
        point(k, "vfs_read", 1, Some("vfs_*")),
        point(k, "vfs_write", 1, Some("vfs_*")),
        // The same pattern written again is a second attachment (bpftrace: a second probe).
        point(k, "vfs_read", 2, Some("vfs_*")),
        // A function written out attaches on its own.
        point(k, "ksys_read", 3, None),
        point(kr, "vfs_open", 4, Some("vfs_o*")),
        // A wildcard with one match is still a multi-attachment of one function.
        point(k, "do_sys_open", 5, Some("do_sys_o*")),
    ];
    let multi = probes::attach_groups(&points, &|_| true);
    assert_eq!(sizes(&multi), [2, 1, 1, 1, 1]);
    assert_eq!(multi[0][1].target, ["vfs_write"]);
    // Without kprobe_multi (Linux 6.1 without CONFIG_FPROBE, this host): one each.
    let single = probes::attach_groups(&points, &|_| false);
    assert_eq!(sizes(&single), [1; 6]);
}

fn analyze(src: &str) -> sema::TypedProgram {
    let ast = parser::parse(src).unwrap_or_else(|d| panic!("{}", diag::render("t.bt", src, &d)));
    sema::analyze(&ast, &pinned_btf().into())
        .unwrap_or_else(|d| panic!("{}", diag::render("t.bt", src, &d)))
}

/// Expansion marks each match with its wildcard, which a body using `probe` clears
/// (tracepoint wildcards: this host cannot read `available_filter_functions`).
#[test]
fn probe_builtin_makes_matches_attach_one_by_one() {
    const TEST: &str = "probe_builtin_makes_matches_attach_one_by_one";
    if support::skip_if(TEST, support::not_root()).is_some() {
        return;
    }
    if !std::path::Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_read").exists() {
        support::skip(TEST, "no syscall tracepoints in /sys/kernel/tracing");
        return;
    }
    let pattern = "tracepoint:syscalls:sys_enter_read*";
    let together = analyze(&format!("{pattern} {{ @ = count(); }}"));
    let [probe] = together.probes.as_slice() else {
        panic!("one program expected, got {}", together.probes.len());
    };
    assert!(
        probe.attach_points.len() > 1,
        "{pattern} matches several tracepoints"
    );
    for p in &probe.attach_points {
        assert_eq!(p.wildcard.as_deref(), Some("syscalls:sys_enter_read*"));
    }
    let groups = probes::attach_groups(&probe.attach_points, &|_| true);
    assert_eq!(groups.len(), 1);

    // One program per match, or where the kernel has attach cookies one program for
    // all of them that reads `probe` by cookie; either way each attaches on its own.
    let apart = analyze(&format!("{pattern} {{ @[probe] = count(); }}"));
    if probes::names_by_cookie(probes::lookup("tracepoint").unwrap()) {
        let [shared] = apart.probes.as_slice() else {
            panic!("one program by cookie expected, got {}", apart.probes.len());
        };
        assert_eq!(shared.probe_names, sema::ProbeNames::Cookie);
        assert_eq!(shared.attach_points.len(), probe.attach_points.len());
    } else {
        assert_eq!(apart.probes.len(), probe.attach_points.len());
    }
    for p in apart.probes.iter().flat_map(|p| &p.attach_points) {
        assert_eq!(p.wildcard, None, "{}", p.name());
    }
}
