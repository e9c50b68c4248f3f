//! bpftrace's kprobe tools (tests/tools/cases.rs, `Site::Vm`) in the golden VM boots:
//! each runs as a `map_scenario` (both tracers on the unchanged tool at once, the
//! workload, one SIGINT), judged like the host tools. `tests/tools/vm_passing.txt` is
//! the gate; `RBT_TOOLS_WRITE=1` records every result in tests/tools/vm_results.txt
//! for docs/TOOLS.md.

use crate::tools::cases::{Site, Tool, TOOLS, VM_SCRIPTS};
use crate::tools::outcome::Outcome;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const GATE: &str = "tests/tools/vm_passing.txt";
pub const RESULTS: &str = "tests/tools/vm_results.txt";

/// The packaged tools that need kprobes, then the project's own VM scripts.
pub fn vm_tools() -> impl Iterator<Item = &'static Tool> {
    TOOLS
        .iter()
        .filter(|t| t.site == Site::Vm)
        .chain(VM_SCRIPTS)
}

/// Where a tool's script is on the host.
fn source(tool: &Tool) -> PathBuf {
    if VM_SCRIPTS.iter().any(|t| t.name == tool.name) {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm"))
            .join(format!("{}.bt", tool.name))
    } else {
        PathBuf::from(format!("/usr/sbin/{}.bt", tool.name))
    }
}

/// The files the tools need in the VM's /bin: each tool as packaged, the workload
/// program (`rbtmark-wl`, the static deterministic workload), mkfs.xfs and mdadm.
pub fn files() -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = vm_tools().map(source).collect();
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        return Err(format!(
            "{} is not installed (bpftrace's tools)",
            missing.display()
        ));
    }
    files.push(
        crate::bpftrace_ref::build_workload("rbtmark-wl")
            .ok_or("gcc cannot build tests/data/workload/rbtwl.c")?,
    );
    // The file systems and block devices xfsdist's and mdflush's workloads make.
    for tool in ["/usr/sbin/mkfs.xfs", "/usr/sbin/mdadm"] {
        let path = PathBuf::from(tool);
        if !path.exists() {
            return Err(format!("{tool} is not installed (xfsprogs, mdadm)"));
        }
        files.push(path);
    }
    Ok(files)
}

pub fn scenario_name(tool: &Tool) -> String {
    format!("tool-{}", tool.name)
}

/// The lines of the VM's run.sh.
pub fn script() -> String {
    vm_tools()
        .map(|t| {
            format!(
                "map_scenario {} /bin/{}.bt '{}'\n",
                scenario_name(t),
                t.name,
                t.workload.replace('\'', "'\\''")
            )
        })
        .collect()
}

/// One tool's run in one boot (its files: `bpftrace.out`, `rbt.err`, ...).
pub fn judge(tool: &Tool, files: Option<&BTreeMap<String, String>>) -> Outcome {
    let Some(files) = files else {
        return Outcome::Differs("no results from the VM".into());
    };
    let get = |f: &str| files.get(f).map_or("", String::as_str);
    let live =
        |side: &str| get(&format!("{side}.err")).contains("__BPFTRACE_NOTIFY_PROBES_ATTACHED");
    Outcome::judge(
        tool,
        (live("bpftrace"), live("rbt")),
        (get("bpftrace.out"), get("rbt.out")),
        (get("bpftrace.err"), get("rbt.err")),
    )
}

/// `6.1` from `6.1.0-56-cloud-amd64`.
pub fn kernel_series(release: &str) -> String {
    release
        .split(['.', '-'])
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}
