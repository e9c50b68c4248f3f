//! bpftrace v0.17.0's runtime spec suite, run here under real bpftrace and under rbt.
//!
//! The cases are upstream's `tests/runtime/` files, vendored unmodified in
//! `tests/bpftrace_runtime/cases/` (see tests/bpftrace_runtime/PROVENANCE.md). This runner re-implements
//! upstream's engine (`tests/runtime/engine/{parser,runner}.py` at v0.17.0) rule by rule:
//! the file format, `{{BPFTRACE}}`/`{{BEFORE_PID}}` substitution, the `BEFORE` wait on
//! `pidof`, the 5 s attach timeout that ends at `__BPFTRACE_NOTIFY_PROBES_ATTACHED`, the
//! per-case `TIMEOUT` after it, `AFTER`, SIGTERM on timeout, the exit-code and
//! `WILL_FAIL` rules and the Python-regex `EXPECT` match. Where it departs from the engine
//! the comment at the spot says so.
//!
//! On top of the engine it decides which cases this host can serve (no kprobes, kfunc,
//! hardware PMU, USDT or watchpoints here), runs every runnable case under both tracers
//! at most two at a time, runs those that need only kprobes in one 6.1 VM boot
//! (`bpftrace_runtime/vm.rs`), prints a per-suite table and gates on
//! `tests/bpftrace_runtime/rbt_passing.txt`: a case listed there that fails under rbt
//! fails this test. `RBT_CONFORMANCE_WRITE=1` regenerates `docs/CONFORMANCE.md`.
//!
//! Knobs (environment): `RBT_CONFORMANCE_WRITE=1` (write docs/CONFORMANCE.md),
//! `RBT_CONFORMANCE_ADD=1` (append newly passing cases to the gate list),
//! `RBT_CONFORMANCE_BPFTRACE=PATH|none` (default /usr/bin/bpftrace),
//! `RBT_CONFORMANCE_JOBS=1|2` (default 2), `RBT_CONFORMANCE_VM=0` (no VM: the kprobe
//! cases stay skipped), `RBT_CONFORMANCE_VERBOSE=1` (print command and
//! output of each failure), `RBT_CONFORMANCE_DUMP=DIR` (keep every output),
//! `RUNTIME_TEST_DISABLE=suite.name,...` (the engine's own). A positional argument
//! filters cases: a glob on `suite.name` (the engine's `--filter`) or, without `*?[`, a
//! substring, as `cargo test NAME` passes it.

#[path = "bpftrace_runtime/case.rs"]
mod case;
#[path = "bpftrace_runtime/host.rs"]
mod host;
#[path = "bpftrace_runtime/report.rs"]
mod report;
#[path = "bpftrace_runtime/run.rs"]
mod run;
#[path = "bpftrace_runtime/vm.rs"]
mod vm;

use case::*;
use host::*;
use report::*;
use run::*;
use vm::run_kprobe_cases_in_vm;

use fancy_regex::Regex;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// runner.py: `ATTACH_TIMEOUT = 5`, `DEFAULT_TIMEOUT = 5`.
pub(crate) const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_TIMEOUT: u64 = 5;
pub(crate) const NOTIFY_ATTACHED: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED\n";
pub(crate) const NOTIFY_AOT: &str = "__BPFTRACE_NOTIFY_AOT_PORTABILITY_DISABLED";
/// dash's built-in search path, which the engine's tracer command gets: it passes an
/// environment without PATH. We put the tracer's own directory in front (see `Tracer`).
pub(crate) const SH_DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The skip reason of the cases run in the VM instead.
pub(crate) const NEEDS_KPROBES: &str = "needs kprobes";
/// After SIGTERM on timeout the engine waits for the tracer without limit; we give it
/// this long, then SIGKILL (a hung tracer must not hang the suite).
pub(crate) const TERM_GRACE: Duration = Duration::from_secs(10);
/// parser.py's REQUIRES_FEATURE vocabulary.
pub(crate) const FEATURES: &[&str] = &[
    "loop",
    "btf",
    "kfunc",
    "probe_read_kernel",
    "dpath",
    "uprobe_refcount",
    "signal",
    "iter:task",
    "iter:task_file",
    "libpath_resolv",
    "dwarf",
    "aot",
    "kprobe_multi",
    "skboutput",
];

/// The project root: where the cases are (`RBT_CONFORMANCE_ROOT` inside the VM, where
/// they are unpacked elsewhere).
pub(crate) fn root() -> PathBuf {
    std::env::var_os("RBT_CONFORMANCE_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn main() {
    reexec_under_safe_name();
    if let Ok(list) = std::env::var("RBT_CONFORMANCE_REGEX_CHECK") {
        regex_check(&list);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("bpftrace_runtime: test");
        return;
    }
    let mut filter = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--skip" {
            it.next();
        } else if !a.starts_with('-') {
            filter = Some(a.clone());
        }
    }
    let uid = command_output(Command::new("id").arg("-u"));
    if uid.trim() != "0" || !Path::new("/sys/kernel/tracing/events").exists() {
        println!("bpftrace_runtime: needs root and tracefs; not run");
        println!("0 passed, 0 failed");
        return;
    }
    let wall = Instant::now();
    let cases_dir = root().join("tests/bpftrace_runtime/cases");
    let machine = command_output(Command::new("uname").arg("-m"))
        .trim()
        .to_lowercase();
    let mut cases = read_all(&cases_dir, &machine).unwrap_or_else(|e| panic!("{e}"));
    let total_parsed = cases.len();
    if let Some(f) = &filter {
        let is_glob = f.contains(['*', '?']);
        cases.retain(|c| {
            let full = format!("{}.{}", c.suite, c.name);
            if is_glob {
                glob(f.as_bytes(), full.as_bytes())
            } else {
                full.contains(f.as_str())
            }
        });
    }

    // In the VM: only what the host skips for want of kprobes alone.
    let in_vm = env_on("RBT_CONFORMANCE_KPROBE_CASES");
    if in_vm {
        cases.retain(|c| unserved_probes(c, &cases_dir, false) == [NEEDS_KPROBES]);
    }
    let selected = filter.is_some() || in_vm;

    let bpftrace_bin = match std::env::var("RBT_CONFORMANCE_BPFTRACE") {
        Ok(v) if v == "none" || v.is_empty() => None,
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) => Some(PathBuf::from("/usr/bin/bpftrace")),
    }
    .filter(|p| p.exists());
    let rbt_bin = std::env::var("RBT_CONFORMANCE_RBT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_rbt")));
    let workers: usize = std::env::var("RBT_CONFORMANCE_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .clamp(1, 2);
    let verbose = env_on("RBT_CONFORMANCE_VERBOSE");
    let dump = std::env::var("RBT_CONFORMANCE_DUMP")
        .ok()
        .map(PathBuf::from);

    let workdir = std::env::temp_dir().join(format!("rbt-bpftrace-runtime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&workdir);
    std::fs::create_dir_all(&workdir).unwrap();
    std::os::unix::fs::symlink(&cases_dir, workdir.join("runtime")).unwrap();
    let t0 = Instant::now();
    let helpers = build_helpers(&workdir);
    let built = helpers.values().filter(|e| e.is_none()).count();
    println!(
        "bpftrace_runtime: {} of {} cases selected ({machine}); {built}/{} helpers built in {:.1}s",
        cases.len(),
        total_parsed,
        helpers.len(),
        t0.elapsed().as_secs_f64()
    );
    let host = Host {
        machine: machine.clone(),
        kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        features: bpffeatures(bpftrace_bin.as_deref()),
        helpers,
        workdir: workdir.clone(),
        cases_dir: cases_dir.clone(),
        disabled: std::env::var("RUNTIME_TEST_DISABLE")
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect(),
    };

    let mut tracers = Vec::new();
    if let Some(b) = &bpftrace_bin {
        tracers.push(Tracer::new("bpftrace", b, &workdir));
    }
    tracers.push(Tracer::new("rbt", &rbt_bin, &workdir));
    let rbt_ix = tracers.len() - 1;
    let bpf_ix = bpftrace_bin.as_ref().map(|_| 0);
    // REQUIRES runs with the engine's PATH: the tested build's directory first. We use
    // real bpftrace's, so that "runnable here" is the same for both tracers.
    let requires_path = format!(
        "{}:{}",
        tracers[0].dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut skips: Vec<Option<String>> = cases
        .iter()
        .map(|c| host_skip(c, &host, &requires_path))
        .collect();
    for (c, s) in cases.iter().zip(&skips) {
        if let Some(s) = s {
            println!("[  SKIP  ] {} ({})", c.id, one_line(s, 120));
        }
    }
    let mut jobs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if skips[i].is_some() {
            continue;
        }
        let (resources, alone) = resources_of(c, &host);
        for t in 0..tracers.len() {
            jobs.push(Job {
                case: i,
                tracer: t,
                resources: resources.clone(),
                alone,
            });
        }
    }
    println!(
        "bpftrace_runtime: {} runnable here, {} jobs on {} ({workers} at a time)",
        skips.iter().filter(|s| s.is_none()).count(),
        jobs.len(),
        tracers
            .iter()
            .map(|t| t.label)
            .collect::<Vec<_>>()
            .join(" + ")
    );

    let done = Mutex::new(0usize);
    let total_jobs = jobs.len();
    let run = |job: &Job| {
        let case = &cases[job.case];
        let tracer = &tracers[job.tracer];
        let o = run_case(case, tracer, &host);
        let n = {
            let mut d = done.lock().unwrap();
            *d += 1;
            *d
        };
        let tag = match o.status {
            Status::Pass => "  OK  ",
            Status::Fail => "FAILED",
            Status::Timeout => "TIMEOUT",
            Status::AotSkip => " SKIP ",
        };
        println!(
            "[{n:>4}/{total_jobs}] [{tag}] {:<8} {} ({:.1}s){}",
            tracer.label,
            case.id,
            o.elapsed.as_secs_f64(),
            if o.note.is_empty() {
                String::new()
            } else {
                format!(" {}", o.note)
            }
        );
        if verbose && o.status != Status::Pass {
            println!("\tCommand: {}\n\tExpected: {}", o.command, case.expect);
            println!("\tOutput: {}", o.output.escape_default());
        }
        if let Some(dir) = &dump {
            let d = dir.join(tracer.label);
            let _ = std::fs::create_dir_all(&d);
            let file = d.join(case.id.replace(['/', ' '], "_"));
            let _ = std::fs::write(&file, &o.output);
            let line = format!(
                "{}\t{}\t{}\t{}\t{}\n",
                tracer.label,
                o.status == Status::Pass,
                o.exit.map_or("-".into(), |c| c.to_string()),
                file.display(),
                case.expect
            );
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("index.tsv"))
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        }
        o
    };
    let mut results = run_jobs(&jobs, workers, &run);

    // Per case and tracer.
    let mut outcome: HashMap<(usize, usize), Outcome> = HashMap::new();
    for (job, r) in jobs.iter().zip(results.iter_mut()) {
        if let Some(o) = r.take() {
            outcome.insert((job.case, job.tracer), o);
        }
    }
    let labels: Vec<&str> = tracers.iter().map(|t| t.label).collect();
    let (vm_ran, vm_release) = run_kprobe_cases_in_vm(
        &cases,
        &mut skips,
        &mut outcome,
        &labels,
        &rbt_bin,
        &workdir,
    );
    let passed = |outcome: &HashMap<(usize, usize), Outcome>, c: usize, t: Option<usize>| {
        t.and_then(|t| outcome.get(&(c, t)))
            .is_some_and(|o| o.status == Status::Pass)
    };

    // Second tries, alone: a gate case that rbt failed, and every case bpftrace failed
    // (system-wide probes see the other job's processes).
    let (gate, accidental) = read_gate();
    let index: HashMap<&str, usize> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let alone = |case, tracer| Job {
        case,
        tracer,
        resources: Vec::new(),
        alone: true,
    };
    let mut retry: Vec<Job> = gate
        .iter()
        .filter_map(|id| index.get(id.as_str()).copied())
        .filter(|&i| skips[i].is_none() && !vm_ran.contains(&i))
        .filter(|&i| !passed(&outcome, i, Some(rbt_ix)))
        .map(|i| alone(i, rbt_ix))
        .collect();
    if let Some(b) = bpf_ix {
        retry.extend(
            (0..cases.len())
                .filter(|&i| skips[i].is_none() && !vm_ran.contains(&i))
                .filter(|&i| !passed(&outcome, i, Some(b)))
                .map(|i| alone(i, b)),
        );
    }
    let mut flaky = Vec::new();
    if !retry.is_empty() {
        println!(
            "bpftrace_runtime: second try, alone, for {} failed job(s)",
            retry.len()
        );
        for (job, r) in retry.iter().zip(run_jobs(&retry, 1, &run)) {
            let r = r.unwrap();
            if r.status == Status::Pass {
                flaky.push(format!(
                    "{} {}",
                    tracers[job.tracer].label, cases[job.case].id
                ));
                outcome.insert((job.case, job.tracer), r);
            }
        }
    }
    let elapsed = wall.elapsed();

    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        let row = rows.entry(c.suite.clone()).or_default();
        row.cases += 1;
        if skips[i].is_none() {
            row.runnable += 1;
        }
        let b = passed(&outcome, i, bpf_ix);
        let r = passed(&outcome, i, Some(rbt_ix));
        row.bpftrace += b as usize;
        row.rbt += r as usize;
        row.both += (b && r) as usize;
    }
    let table = table(&rows, bpf_ix.is_some());
    println!("\n{table}");
    println!(
        "bpftrace_runtime: wall time {:.0}s ({workers} at a time)",
        elapsed.as_secs_f64()
    );

    let mut regressions = Vec::new();
    let mut gate_passed = 0;
    let mut gate_skipped = Vec::new();
    for id in &gate {
        match index.get(id.as_str()) {
            Some(&i) if skips[i].is_none() => {
                if passed(&outcome, i, Some(rbt_ix)) {
                    gate_passed += 1;
                } else {
                    let o = &outcome[&(i, rbt_ix)];
                    regressions.push(format!("{id}: {}", one_line(&o.note, 160)));
                }
            }
            Some(&i) => gate_skipped.push(format!("{id} ({})", skips[i].as_deref().unwrap())),
            None if !selected => gate_skipped.push(format!("{id} (no such case)")),
            None => {}
        }
    }
    let gate_set: HashSet<&str> = gate.iter().map(String::as_str).collect();
    let new: Vec<&str> = cases
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            passed(&outcome, *i, Some(rbt_ix))
                && !gate_set.contains(c.id.as_str())
                && !accidental.contains(&c.id)
        })
        .map(|(_, c)| c.id.as_str())
        .collect();
    if !new.is_empty() {
        println!(
            "bpftrace_runtime: {} case(s) now pass under rbt and are not in {}; add them:",
            new.len(),
            gate_path().strip_prefix(root()).unwrap().display()
        );
        for id in &new {
            println!("  {id}");
        }
        if env_on("RBT_CONFORMANCE_ADD") {
            let mut text = std::fs::read_to_string(gate_path()).unwrap_or_default();
            for id in &new {
                text.push_str(id);
                text.push('\n');
            }
            std::fs::write(gate_path(), text).unwrap();
            println!("bpftrace_runtime: added them (RBT_CONFORMANCE_ADD)");
        }
    }
    for id in &flaky {
        println!("bpftrace_runtime: flaky: {id} failed beside another job, passed alone");
    }
    for s in &gate_skipped {
        println!("bpftrace_runtime: gate case not run here: {s}");
    }
    for r in &regressions {
        println!("bpftrace_runtime: REGRESSION: {r}");
    }

    if let Some(path) = std::env::var_os(vm::RESULTS_ENV) {
        vm::write(Path::new(&path), &cases, &skips, &outcome, &labels).unwrap();
    }
    if env_on("RBT_CONFORMANCE_WRITE") {
        match (&filter, bpf_ix, bpftrace_bin.as_deref()) {
            (None, Some(bpf), Some(bpftrace)) => {
                let doc = conformance_doc(
                    &cases,
                    &skips,
                    &outcome,
                    bpf,
                    rbt_ix,
                    &table,
                    &host,
                    bpftrace,
                    elapsed,
                    workers,
                    total_parsed,
                    &accidental,
                    vm_release.as_deref(),
                );
                std::fs::write(root().join("docs/CONFORMANCE.md"), doc).unwrap();
                println!("bpftrace_runtime: wrote docs/CONFORMANCE.md");
            }
            _ => println!(
                "bpftrace_runtime: not writing docs/CONFORMANCE.md: needs all cases and bpftrace"
            ),
        }
    }

    let _ = std::fs::remove_dir_all(&workdir);
    if let Some(r) = &vm_release {
        println!(
            "bpftrace_runtime: the {} kprobe cases ran in the {r} VM",
            vm_ran.len()
        );
    }
    println!("{gate_passed} passed, {} failed", regressions.len());
    if !regressions.is_empty() {
        std::process::exit(1);
    }
}
