//! The golden end-to-end suite: rbt and real bpftrace 0.17 trace the same TCP
//! accepts at the same time inside a VM (this host's kernel has no kprobes),
//! and rbt's output must equal bpftrace's exactly but for the time stamp.
//! One boot per kernel runs every scenario (tests/golden/scenarios.rs) with
//! rbt on every upstream script version (tests/data/upstream/*.bt), each
//! compared with bpftrace running Debian's v0.17.0 tcpaccept.bt.
//!
//! env: RBT_GOLDEN_BIN  the rbt binary to test (default: this build's rbt)
//!      RBT_GOLDEN_STANDIN=1  harness self-check: a stand-in that runs
//!                            bpftrace in rbt's place (every comparison must pass)
//!      RBT_VM_CACHE    where kernels and the base initramfs are cached

mod bpftrace_ref;
mod golden;
mod support;
mod tools;

use golden::compare::compare;
use golden::normalize::normalize;
use golden::scenarios::{Scenario, MAP_SCENARIOS, SCENARIOS};
use golden::vm;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes straight to stderr: the test harness captures print!/eprint!, but
/// these lines are the suite's report and must show even when it passes.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Skips (printing why) or, under CI, fails when a facility is missing.
fn skip_or_fail(test: &str, reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {reason} (CI is set: this must run here)");
    }
    report(&format!("SKIP {test}: {reason}"));
}

struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    /// Reports one check; returns whether it passed.
    fn check(&mut self, what: &str, result: Result<(), String>) -> bool {
        match result {
            Ok(()) => {
                self.passed += 1;
                report(&format!("PASS {what}"));
                true
            }
            Err(why) => {
                report(&format!("FAIL {what}\n{}", indent(&why)));
                self.failed.push(what.to_string());
                false
            }
        }
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn rc_of(meta: &str, tracer: &str) -> Option<i32> {
    let key = format!("{tracer}_rc=");
    meta.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&key)?.parse().ok())
}

fn head(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join("\n")
}

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn golden_vm() {
    if let Some(reason) = vm::missing_facility() {
        return skip_or_fail("golden_vm", &reason);
    }
    let standin = std::env::var_os("RBT_GOLDEN_STANDIN").is_some_and(|v| v == "1");
    let rbt: PathBuf = if standin {
        repo_path("tests/vm/bpftrace-as-rbt.sh")
    } else {
        std::env::var_os("RBT_GOLDEN_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rbt")), PathBuf::from)
    };
    let rbt_name = rbt.file_name().unwrap().to_str().unwrap().to_string();
    let note = if standin {
        " (stand-in self-check)"
    } else {
        ""
    };
    report(&format!("golden_vm: testing {}{note}", rbt.display()));
    let acceptload = vm::build_acceptload().unwrap_or_else(|e| panic!("{e}"));
    let versions = vm::versions();
    let mut files = vec![
        rbt.clone(),
        acceptload,
        repo_path("tests/vm/golden.sh"),
        repo_path("tests/vm/vfsread.bt"),
    ];
    files.extend(
        versions
            .iter()
            .map(|v| repo_path(&format!("tests/data/upstream/{v}.bt"))),
    );
    files.extend(golden::tools::files().unwrap_or_else(|e| panic!("{e}")));
    let script =
        vm::run_script(&rbt_name, &versions, SCENARIOS, MAP_SCENARIOS) + &golden::tools::script();
    let tool_gate = tools::outcome::gate(golden::tools::GATE);
    let mut tool_results = String::new();

    let mut tally = Tally {
        passed: 0,
        failed: vec![],
    };
    // scenario -> (kernel, bpftrace's normalized output), valid references only
    let mut references: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for kernel in vm::KERNELS {
        let boot = match vm::boot(kernel, &files, &script) {
            Ok(b) => b,
            Err(e) => {
                tally.check(&format!("{kernel} boot"), Err(e));
                continue;
            }
        };
        let release = boot
            .console
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("@@VM-BEGIN "))
            .unwrap_or(kernel)
            .to_string();
        let vm_result = match boot.ok {
            true => Ok(()),
            false => Err(format!("the VM run failed; console:\n{}", boot.console)),
        };
        tally.check(&format!("{release} vm"), vm_result);
        let mut timings = Vec::new();
        for sc in SCENARIOS {
            let Some(files) = boot.results.get(sc.name) else {
                let what = format!("{release} {} results", sc.name);
                tally.check(&what, Err("no results from the VM".into()));
                continue;
            };
            let run = Run(files);
            let get = |f| run.get(f);
            timings.push(format!("{} {}", sc.name, scenario_seconds(get("meta"))));
            let what = format!("{release} {} bpftrace-reference", sc.name);
            let reference_ok = tally.check(&what, check_reference(sc, &run));
            for v in &versions {
                let what = format!("{release} {} {v}", sc.name);
                tally.check(&what, check_rbt(&format!("rbt-{v}"), reference_ok, &run));
            }
            if reference_ok {
                let n = normalize(get("bpftrace.out"));
                references
                    .entry(sc.name)
                    .or_default()
                    .push((release.clone(), n));
            }
        }
        for sc in MAP_SCENARIOS {
            let what = format!("{release} {}", sc.name);
            let result = match boot.results.get(sc.name) {
                None => Err("no results from the VM".to_string()),
                Some(files) => check_map_scenario(sc.workload_key, &Run(files)),
            };
            tally.check(&what, result);
        }
        let series = golden::tools::kernel_series(&release);
        for tool in golden::tools::vm_tools() {
            let name = golden::tools::scenario_name(tool);
            let outcome = golden::tools::judge(tool, boot.results.get(&name));
            let line = format!("{release} {name}: {} {}", outcome.cell(), outcome.summary());
            if tool_gate.iter().any(|g| g == tool.name) {
                let result = if outcome.passed() {
                    Ok(())
                } else {
                    Err(outcome.summary())
                };
                tally.check(&format!("{release} {name}"), result);
            } else {
                report(&format!("TOOL {line} (not gated)"));
            }
            tool_results += &format!("{}\t{series}\t{}\n", tool.name, outcome.cell());
        }
        report(&format!(
            "TIME {release}: boot + {} scenarios {:.1} s (per scenario, start to stop in the VM: {})",
            SCENARIOS.len(),
            boot.elapsed.as_secs_f64(),
            timings.join(", ")
        ));
    }
    // bpftrace's output must not depend on the kernel: one snapshot each.
    for sc in SCENARIOS {
        let refs = references
            .get(sc.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let [(first_kernel, first), rest @ ..] = refs {
            for (kernel, out) in rest {
                let what = format!("{kernel} {} bpftrace-same-as-{first_kernel}", sc.name);
                tally.check(&what, compare(first, out).map_err(|m| m.to_string()));
            }
        }
    }
    report(&format!(
        "golden_vm: {} passed, {} failed ({} kernels x {} scenarios x {} versions, plus reference checks)",
        tally.passed,
        tally.failed.len(),
        vm::KERNELS.len(),
        SCENARIOS.len(),
        versions.len()
    ));
    // Snapshots of the reference's normalized output: bpftrace's, never rbt's.
    for sc in SCENARIOS {
        if let Some((_, out)) = references.get(sc.name).and_then(|r| r.first()) {
            insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(format!("vm-bpftrace-{}", sc.name), out)
            });
        }
    }
    if std::env::var_os("RBT_TOOLS_WRITE").is_some() {
        std::fs::write(repo_path(golden::tools::RESULTS), &tool_results).expect("write vm results");
    }
    assert!(
        tally.failed.is_empty(),
        "golden_vm failures: {}",
        tally.failed.join("; ")
    );
}

/// One scenario's files from the VM (missing ones read as empty).
struct Run<'a>(&'a BTreeMap<String, String>);

impl Run<'_> {
    fn get(&self, file: &str) -> &str {
        self.0.get(file).map_or("", String::as_str)
    }
}

/// The reference run is valid: bpftrace exited cleanly on SIGINT, the
/// workload made its accepts, and bpftrace printed each of them, in order.
fn check_reference(sc: &Scenario, run: &Run) -> Result<(), String> {
    let get = |f| run.get(f);
    let meta = get("meta");
    let rc = rc_of(meta, "bpftrace");
    if rc != Some(0) {
        let err = head(get("bpftrace.err"), 60);
        return Err(format!("bpftrace exited {rc:?}; stderr:\n{err}"));
    }
    let made = accepts_made(get("workload.out"));
    if rc_of(meta, "workload") != Some(0) || made != sc.accepts {
        return Err(format!(
            "the workload made {made} accepts, not {} (exit {:?}):\n{}",
            sc.accepts,
            rc_of(meta, "workload"),
            head(get("workload.out"), 20)
        ));
    }
    vm::check_ground_truth(get("bpftrace.out"), get("workload.out"))
}

/// rbt's output equals the reference (time masked) and rbt exited 0.
fn check_rbt(tracer: &str, reference_ok: bool, run: &Run) -> Result<(), String> {
    let get = |f: &str| run.get(f);
    if !reference_ok {
        return Err("no valid reference output to compare with (see bpftrace-reference)".into());
    }
    let rc = rc_of(get("meta"), tracer);
    match compare(get("bpftrace.out"), get(&format!("{tracer}.out"))) {
        Err(m) => {
            let err = indent(&head(get(&format!("{tracer}.err")), 10));
            Err(format!("{m}\n  rbt exit {rc:?}; stderr:\n{err}"))
        }
        Ok(()) if rc != Some(0) => Err(format!("output matches but rbt exited {rc:?}")),
        Ok(()) if get(&format!("{tracer}.err")).contains("after SIGINT") => Err(format!(
            "output matches but rbt did not stop on the first SIGINT:\n{}",
            head(get(&format!("{tracer}.err")), 20)
        )),
        Ok(()) => Ok(()),
    }
}

/// Both tracers exited cleanly and printed the same maps (see tests/golden/maps.rs).
fn check_map_scenario(workload_key: &str, run: &Run) -> Result<(), String> {
    let get = |f: &str| run.get(f);
    for tracer in ["bpftrace", "rbt"] {
        let rc = rc_of(get("meta"), tracer);
        if rc != Some(0) {
            let err = head(get(&format!("{tracer}.err")), 20);
            return Err(format!("{tracer} exited {rc:?}; stderr:\n{err}"));
        }
    }
    golden::maps::compare(get("bpftrace.out"), get("rbt.out"), workload_key).map_err(|e| {
        format!(
            "{e}\n--- bpftrace\n{}\n--- rbt\n{}",
            head(get("bpftrace.out"), 40),
            head(get("rbt.out"), 40)
        )
    })
}

fn accepts_made(workload_out: &str) -> usize {
    workload_out
        .lines()
        .filter(|l| l.starts_with("accept "))
        .count()
}

/// "31.2 s (bpftrace up in 20.1 s, rbt in 3.2-4.0 s)" from a scenario's
/// VM-side time stamps (seconds since boot).
fn scenario_seconds(meta: &str) -> String {
    let get = |k: &str| {
        let key = format!("{k}=");
        meta.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&key)?.parse::<f64>().ok())
    };
    let Some(start) = get("start") else {
        return "?".into();
    };
    let rbt: Vec<f64> = meta
        .split_whitespace()
        .filter(|kv| kv.starts_with("rbt-") && kv.contains("_up="))
        .filter_map(|kv| kv.split_once('=')?.1.parse::<f64>().ok())
        .map(|t| t - start)
        .collect();
    let (lo, hi) = rbt
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    format!(
        "{:.1} s (bpftrace up in {}, rbt in {})",
        get("end").map_or(0.0, |e| e - start),
        get("bpftrace_up").map_or("?".into(), |t| format!("{:.1} s", t - start)),
        if rbt.is_empty() {
            "?".into()
        } else {
            format!("{lo:.1}-{hi:.1} s")
        }
    )
}

/// On a host without kprobes, rbt must say so by name and exit non-zero.
#[test]
fn host_without_kprobes_is_a_clear_error() {
    if Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        report("SKIP host_without_kprobes_is_a_clear_error: this host has kprobes (the golden VM suite covers it)");
        return;
    }
    if vm::missing_facility().is_some_and(|r| r.starts_with("not root")) {
        return skip_or_fail(
            "host_without_kprobes_is_a_clear_error",
            "not root (rbt needs root for BPF)",
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tcpaccept.bt");
    let out = Command::new(env!("CARGO_BIN_EXE_rbt"))
        .arg(&script)
        .output()
        .expect("run rbt");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "rbt succeeded without kprobes; stderr: {stderr}"
    );
    assert!(
        stderr.contains("CONFIG_KPROBES"),
        "no CONFIG_KPROBES in rbt's error: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "rbt panicked: {stderr}");
}
