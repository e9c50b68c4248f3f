//! Reports: the per-suite table, failure reasons, the gate list and
//! docs/CONFORMANCE.md.

use super::*;

// Reports

pub(crate) fn one_line(s: &str, max: usize) -> String {
    let s = s.trim().replace('`', "'");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// Lines of tracer output that are not the engine's notices or bpftrace's chatter.
pub(crate) fn content_lines(output: &str) -> impl Iterator<Item = &str> {
    output.lines().filter(|l| {
        !l.trim().is_empty()
            && !l.starts_with("__BPFTRACE_NOTIFY")
            && !l.starts_with("Attaching ")
            && !l.contains("couldn't set RLIMIT_MEMLOCK")
    })
}

/// Why rbt failed a case that bpftrace passed, in one line.
pub(crate) fn reason(case: &Case, rbt: &Outcome, bpftrace: &Outcome) -> String {
    let error = content_lines(&rbt.output).find(|l| {
        let lower = l.to_lowercase();
        lower.contains("error") || l.starts_with("rbt:") || lower.starts_with("usage:")
    });
    let first = content_lines(&rbt.output).next();
    let wanted = matching_line(&case.expect, &bpftrace.output);
    let mut r = rbt.note.clone();
    if let Some(e) = error {
        let _ = write!(r, "; rbt: `{}`", one_line(e, 140));
    } else {
        match &wanted {
            Some(w) => {
                let _ = write!(r, "; missing `{}`", one_line(w, 80));
            }
            None => {
                let _ = write!(r, "; EXPECT `{}`", one_line(&case.expect, 80));
            }
        }
        if let Some(f) = first {
            let _ = write!(r, ", rbt printed `{}`", one_line(f, 80));
        } else {
            r.push_str(", rbt printed nothing");
        }
    }
    r
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) cases: usize,
    pub(crate) runnable: usize,
    pub(crate) bpftrace: usize,
    pub(crate) rbt: usize,
    pub(crate) both: usize,
}

pub(crate) fn table(rows: &BTreeMap<String, Row>, bpftrace_ran: bool) -> String {
    let mut s = String::from(
        "| suite | cases | runnable here | bpftrace passed | rbt passed | rbt passed of bpftrace's |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let mut total = Row::default();
    let b = |n: usize| {
        if bpftrace_ran {
            n.to_string()
        } else {
            "–".into()
        }
    };
    for (suite, r) in rows {
        let _ = writeln!(
            s,
            "| {suite} | {} | {} | {} | {} | {} |",
            r.cases,
            r.runnable,
            b(r.bpftrace),
            r.rbt,
            b(r.both)
        );
        total.cases += r.cases;
        total.runnable += r.runnable;
        total.bpftrace += r.bpftrace;
        total.rbt += r.rbt;
        total.both += r.both;
    }
    let _ = writeln!(
        s,
        "| **total** | **{}** | **{}** | **{}** | **{}** | **{}** |",
        total.cases,
        total.runnable,
        b(total.bpftrace),
        total.rbt,
        b(total.both)
    );
    s
}

pub(crate) fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

pub(crate) fn gate_path() -> PathBuf {
    root().join("tests/bpftrace_runtime/rbt_passing.txt")
}

/// The gate list: one `suite.name` a line; `#` lines are comments; a line `!suite.name`
/// names a case rbt passes only by accident of the engine's rules (not gated, not
/// reported as new).
pub(crate) fn read_gate() -> (Vec<String>, HashSet<String>) {
    let text = std::fs::read_to_string(gate_path()).unwrap_or_default();
    let mut gated = Vec::new();
    let mut accidental = HashSet::new();
    for l in text.lines().map(str::trim_end) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.strip_prefix('!') {
            Some(id) => accidental.insert(id.to_string()),
            None => {
                gated.push(l.to_string());
                true
            }
        };
    }
    (gated, accidental)
}

pub(crate) fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Cases end the tracer with `pkill -SIGINT bpftrace`, which matches any process whose
/// name contains "bpftrace" — this binary's too (`bpftrace_runtime-<hash>`). So the
/// runner first re-executes itself under a name without it, through a symlink.
pub(crate) fn reexec_under_safe_name() {
    const MARK: &str = "RBT_CONFORMANCE_RUNNER_LINK";
    if let Ok(dir) = std::env::var(MARK) {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("rbt-spec-runner-{}", std::process::id()));
    let link = dir.join("spec-runner");
    if std::fs::create_dir_all(&dir).is_err() || std::os::unix::fs::symlink(&exe, &link).is_err() {
        return;
    }
    let err = Command::new(&link)
        .args(std::env::args_os().skip(1))
        .env(MARK, &dir)
        .exec();
    eprintln!(
        "bpftrace_runtime: could not re-execute as {}: {err}",
        link.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `RBT_CONFORMANCE_REGEX_CHECK=FILE`: for each `PATTERN<TAB>OUTPUT_FILE` line of FILE,
/// print whether the pattern matches with and without `re.M` (1/0/E), so that
/// `tests/bpftrace_runtime/check_regex.py` can compare the translation with Python's `re`.
pub(crate) fn regex_check(list: &str) {
    let text = std::fs::read_to_string(list).unwrap();
    for line in text.lines() {
        let (pat, file) = line.split_once('\t').unwrap();
        let output = std::fs::read_to_string(file).unwrap_or_default();
        let show = |r: Result<bool, String>| match r {
            Ok(true) => "1",
            Ok(false) => "0",
            Err(_) => "E",
        };
        println!(
            "{}\t{}",
            show(search(pat, &output, true)),
            show(search(pat, &output, false))
        );
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn conformance_doc(
    cases: &[Case],
    skips: &[Option<String>],
    outcome: &HashMap<(usize, usize), Outcome>,
    bpf: usize,
    rbt: usize,
    table: &str,
    host: &Host,
    bpftrace: &Path,
    elapsed: Duration,
    workers: usize,
    total: usize,
    accidental: &HashSet<String>,
    vm_release: Option<&str>,
) -> String {
    let version = command_output(Command::new(bpftrace).arg("--version"));
    let version = version
        .lines()
        .find(|l| l.starts_with("bpftrace"))
        .unwrap_or("bpftrace ?");
    let mut d = String::new();
    let _ = writeln!(
        d,
        "# Conformance: bpftrace v0.17.0's runtime spec suite\n\n\
         Generated by `RBT_CONFORMANCE_WRITE=1 cargo test --test bpftrace_runtime`\n\
         (`tests/bpftrace_runtime.rs`); do not edit by hand. The cases are upstream's\n\
         `tests/runtime/` files, vendored unmodified (`tests/bpftrace_runtime/PROVENANCE.md`),\n\
         run with the rules of upstream's engine (`tests/runtime/engine/runner.py`) under\n\
         real {version} (`{}`) and under rbt (the debug build `cargo test` makes).\n\n\
         Host: Linux {} {}: tracepoints, uprobes and software/interval/profile events, but\n\
         no kprobes, kfunc, hardware PMU; helpers built with gcc (no `sys/sdt.h`, so no USDT).\n\
         {total} cases for this architecture; wall time {:.0} s, {workers} cases at a time.\n",
        bpftrace.display(),
        host.kernel_release,
        host.machine,
        elapsed.as_secs_f64()
    );
    if let Some(release) = vm_release {
        let _ = writeln!(
            d,
            "The cases that need kprobes (and nothing else this host lacks) ran in Debian's\n\
             {release} kernel under qemu, both tracers there, with the same rules\n\
             (`tests/bpftrace_runtime/vm.rs`); they count in the table as cases of this run.\n"
        );
    }
    let _ = writeln!(d, "{table}");
    let _ = writeln!(
        d,
        "The regression gate is `tests/bpftrace_runtime/rbt_passing.txt`: the test fails\n\
         when a case listed there fails under rbt.\n"
    );

    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for s in skips.iter().flatten() {
        *reasons.entry(s.clone()).or_default() += 1;
    }
    let _ = writeln!(d, "## Not runnable here\n\n| reason | cases |\n|---|---:|");
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (r, n) in reasons {
        let _ = writeln!(d, "| {} | {n} |", one_line(&r, 120).replace('|', "\\|"));
    }

    let status = |i: usize, t: usize| outcome.get(&(i, t)).map(|o| o.status);
    let _ = writeln!(d, "\n## Failing under rbt while bpftrace passes");
    let mut suite = "";
    for (i, c) in cases.iter().enumerate() {
        if status(i, bpf) != Some(Status::Pass) || status(i, rbt) == Some(Status::Pass) {
            continue;
        }
        if c.suite != suite {
            suite = &c.suite;
            let _ = writeln!(d, "\n### {suite}\n");
        }
        let _ = writeln!(
            d,
            "- `{}` — {}",
            c.id,
            reason(c, &outcome[&(i, rbt)], &outcome[&(i, bpf)])
        );
    }
    let _ = writeln!(d, "\n## Passing under rbt while bpftrace fails\n");
    let mut any = false;
    for (i, c) in cases.iter().enumerate() {
        if status(i, rbt) == Some(Status::Pass) && status(i, bpf) != Some(Status::Pass) {
            any = true;
            let o = &outcome[&(i, bpf)];
            let line = content_lines(&o.output).next().unwrap_or("");
            let _ = writeln!(
                d,
                "- `{}` — bpftrace: {}; `{}`",
                c.id,
                o.note,
                one_line(line, 100)
            );
        }
    }
    if !any {
        let _ = writeln!(d, "None.");
    }
    let _ = writeln!(
        d,
        "\n## Passing under rbt by accident\n\n\
         Counted above (the engine's rules pass them), marked `!` in the gate list, not gated:\n"
    );
    let mut any = false;
    for (i, c) in cases.iter().enumerate() {
        if accidental.contains(&c.id) && status(i, rbt) == Some(Status::Pass) {
            any = true;
            let line = matching_line(&c.expect, &outcome[&(i, rbt)].output).unwrap_or_default();
            let _ = writeln!(
                d,
                "- `{}` — EXPECT `{}` matched rbt's `{}`",
                c.id,
                one_line(&c.expect, 60),
                one_line(&line, 80)
            );
        }
    }
    if !any {
        let _ = writeln!(d, "None.");
    }
    d
}
