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

mod golden;

use golden::compare::compare;
use golden::normalize::normalize;
use golden::scenarios::SCENARIOS;
use golden::vm;
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
    fn check(&mut self, what: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                report(&format!("PASS {what}"));
            }
            Err(why) => {
                report(&format!("FAIL {what}\n{}", indent(&why)));
                self.failed.push(what.to_string());
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

#[test]
fn golden_vm() {
    if let Some(reason) = vm::missing_facility() {
        return skip_or_fail("golden_vm", &reason);
    }
    let standin = std::env::var_os("RBT_GOLDEN_STANDIN").is_some_and(|v| v == "1");
    let rbt: PathBuf = if standin {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/bpftrace-as-rbt.sh")
    } else {
        std::env::var_os("RBT_GOLDEN_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rbt")), PathBuf::from)
    };
    let rbt_name = rbt.file_name().unwrap().to_str().unwrap().to_string();
    report(&format!(
        "golden_vm: testing {}{}",
        rbt.display(),
        if standin {
            " (stand-in self-check)"
        } else {
            ""
        }
    ));
    let acceptload = vm::build_acceptload().unwrap_or_else(|e| panic!("{e}"));
    let versions = vm::versions();
    let mut files = vec![
        rbt.clone(),
        acceptload,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/golden.sh"),
    ];
    files.extend(versions.iter().map(|v| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/upstream/{v}.bt"))
    }));
    let script = vm::run_script(&rbt_name, &versions, SCENARIOS);

    let mut tally = Tally {
        passed: 0,
        failed: vec![],
    };
    let mut reference: Vec<(String, String)> = Vec::new(); // (scenario, normalized bpftrace output) of the first kernel
    for (k, kernel) in vm::KERNELS.iter().enumerate() {
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
        tally.check(
            &format!("{release} vm"),
            if boot.ok {
                Ok(())
            } else {
                Err(format!("the VM run failed; console:\n{}", boot.console))
            },
        );
        let mut timings = Vec::new();
        for sc in SCENARIOS {
            let Some(files) = boot.results.get(sc.name) else {
                tally.check(
                    &format!("{release} {} results", sc.name),
                    Err("no results from the VM".into()),
                );
                continue;
            };
            let get = |f: &str| files.get(f).map(String::as_str).unwrap_or("");
            let meta = get("meta");
            timings.push(format!("{} {}", sc.name, scenario_seconds(meta)));
            let bt = get("bpftrace.out");
            // The reference must itself be right: every accept, in order.
            tally.check(&format!("{release} {} bpftrace-reference", sc.name), {
                let rc = rc_of(meta, "bpftrace");
                if rc != Some(0) {
                    Err(format!(
                        "bpftrace exited {rc:?}; stderr:\n{}",
                        head(get("bpftrace.err"), 20)
                    ))
                } else if rc_of(meta, "workload") != Some(0)
                    || accepts_made(get("workload.out")) != sc.accepts
                {
                    Err(format!(
                        "the workload made {} accepts, not {} (exit {:?}):\n{}",
                        accepts_made(get("workload.out")),
                        sc.accepts,
                        rc_of(meta, "workload"),
                        head(get("workload.out"), 20)
                    ))
                } else {
                    vm::check_ground_truth(bt, get("workload.out"))
                }
            });
            for v in &versions {
                let t = format!("rbt-{v}");
                tally.check(&format!("{release} {} {v}", sc.name), {
                    let rc = rc_of(meta, &t);
                    match compare(bt, get(&format!("{t}.out"))) {
                        Err(m) => Err(format!(
                            "{m}\n  rbt exit {rc:?}; stderr:\n{}",
                            indent(&head(get(&format!("{t}.err")), 10))
                        )),
                        Ok(()) if rc != Some(0) => {
                            Err(format!("output matches but rbt exited {rc:?}"))
                        }
                        Ok(()) => Ok(()),
                    }
                });
            }
            let n = normalize(bt);
            if k == 0 {
                reference.push((sc.name.to_string(), n));
            } else if let Some((_, first)) = reference.iter().find(|(s, _)| s == sc.name) {
                tally.check(
                    &format!("{release} {} bpftrace-same-as-first-kernel", sc.name),
                    compare(first, &n).map_err(|m| m.to_string()),
                );
            }
        }
        report(&format!(
            "TIME {release}: boot + {} scenarios {:.1} s (per scenario, start to stop in the VM: {})",
            SCENARIOS.len(),
            boot.elapsed.as_secs_f64(),
            timings.join(", ")
        ));
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
    for (name, out) in &reference {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("vm-bpftrace-{name}"), out)
        });
    }
    assert!(
        tally.failed.is_empty(),
        "golden_vm failures: {}",
        tally.failed.join("; ")
    );
}

/// Accepts the workload reports ("accept PID RPORT LPORT" lines).
fn accepts_made(workload_out: &str) -> usize {
    workload_out
        .lines()
        .filter(|l| l.starts_with("accept "))
        .count()
}

/// "12.3 s" from a scenario's VM-side time stamps.
fn scenario_seconds(meta: &str) -> String {
    let get = |k: &str| {
        meta.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}="))?.parse::<f64>().ok())
    };
    match (get("start"), get("headers"), get("end")) {
        (Some(s), Some(h), Some(e)) => format!("{:.1} s (tracers up in {:.1} s)", e - s, h - s),
        _ => "?".into(),
    }
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
