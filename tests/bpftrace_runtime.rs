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

#[path = "bpftrace_runtime/vm.rs"]
mod vm;

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
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: u64 = 5;
const NOTIFY_ATTACHED: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED\n";
const NOTIFY_AOT: &str = "__BPFTRACE_NOTIFY_AOT_PORTABILITY_DISABLED";
/// dash's built-in search path, which the engine's tracer command gets: it passes an
/// environment without PATH. We put the tracer's own directory in front (see `Tracer`).
const SH_DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The skip reason of the cases run in the VM instead.
const NEEDS_KPROBES: &str = "needs kprobes";
/// After SIGTERM on timeout the engine waits for the tracer without limit; we give it
/// this long, then SIGKILL (a hung tracer must not hang the suite).
const TERM_GRACE: Duration = Duration::from_secs(10);
/// parser.py's REQUIRES_FEATURE vocabulary.
const FEATURES: &[&str] = &[
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
fn root() -> PathBuf {
    std::env::var_os("RBT_CONFORMANCE_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

// ---------------------------------------------------------------------------------------
// parser.py

#[derive(Debug, Clone, Default)]
struct Case {
    suite: String,
    name: String,
    /// `suite.name`, with `#2`, `#3`... for later cases of the same name in one file.
    id: String,
    run: String,
    prog: String,
    expect: String,
    timeout: u64,
    before: String,
    after: String,
    kernel_min: String,
    kernel_max: String,
    requirement: Vec<String>,
    env: Vec<(String, String)>,
    arch: Vec<String>,
    features: Vec<String>,
    neg_features: Vec<String>,
    will_fail: bool,
}

/// `TestParser.read`: `#` lines are dropped (they do not end a case), a line that is
/// exactly "\n" or the file's last line ends one; cases for another ARCH are dropped.
fn parse_file(suite: &str, text: &str, machine: &str) -> Result<Vec<Case>, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut cases = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if *line != "\n" {
            current.push(line);
        }
        if (*line == "\n" || i + 1 == lines.len()) && !current.is_empty() {
            let case = parse_case(&current, suite)?;
            if case.arch.is_empty() || case.arch.iter().any(|a| a == machine) {
                cases.push(case);
            }
            current.clear();
        }
    }
    Ok(cases)
}

/// `TestParser.__read_test_struct`. Every value is the line's words re-joined with one
/// space (`' '.join(item.split()[1:])`), so runs of blanks collapse, as upstream.
fn parse_case(lines: &[&str], suite: &str) -> Result<Case, String> {
    let mut c = Case {
        suite: suite.to_string(),
        ..Case::default()
    };
    let mut timeout = None;
    for item in lines {
        let words: Vec<&str> = item.split_whitespace().collect();
        let Some((&field, rest)) = words.split_first() else {
            return Err(format!("blank-looking line {item:?}. Suite: {suite}"));
        };
        let line = rest.join(" ");
        match field {
            "NAME" => c.name = line,
            "RUN" => c.run = line,
            "PROG" => c.prog = line,
            "EXPECT" => c.expect = line,
            "TIMEOUT" => {
                timeout = Some(
                    line.trim_matches(' ')
                        .parse::<u64>()
                        .map_err(|e| format!("TIMEOUT {line:?}: {e}. Suite: {suite}"))?,
                )
            }
            "BEFORE" => c.before = line,
            "AFTER" => c.after = line,
            "MIN_KERNEL" => c.kernel_min = line,
            "MAX_KERNEL" => c.kernel_max = line,
            "REQUIRES" => c.requirement.push(line),
            "ENV" => {
                for e in line.split_whitespace() {
                    let parts: Vec<&str> = e.split('=').collect();
                    let [k, v] = parts[..] else {
                        return Err(format!("ENV {e:?} is not K=V. Suite: {suite}"));
                    };
                    c.env.push((k.to_string(), v.to_string()));
                }
            }
            "ARCH" => c.arch = line.split('|').map(|a| a.trim().to_string()).collect(),
            "REQUIRES_FEATURE" => {
                for f in line.split(' ') {
                    let f = f.trim();
                    let (list, name) = match f.strip_prefix('!') {
                        Some(n) => (&mut c.neg_features, n),
                        None => (&mut c.features, f),
                    };
                    if !FEATURES.contains(&name) {
                        return Err(format!(
                            "{name} is invalid for REQUIRES_FEATURE. Suite: {suite}"
                        ));
                    }
                    list.push(name.to_string());
                }
            }
            "WILL_FAIL" => c.will_fail = true,
            other => return Err(format!("Field {other} is unknown. Suite: {suite}")),
        }
    }
    if c.name.is_empty() {
        return Err(format!("Test NAME is required. Suite: {suite}"));
    } else if c.run.is_empty() && c.prog.is_empty() {
        return Err(format!("Test RUN or PROG is required. Suite: {suite}"));
    } else if !c.run.is_empty() && !c.prog.is_empty() {
        return Err(format!("Test RUN and PROG both specified. Suite: {suite}"));
    } else if c.expect.is_empty() {
        return Err(format!("Test EXPECT is required. Suite: {suite}"));
    }
    c.timeout = timeout.ok_or_else(|| format!("Test TIMEOUT is required. Suite: {suite}"))?;
    Ok(c)
}

/// `TestParser.read_all`: every file under runtime/ except engine/, scripts/, outputs/
/// and dot files; suites sorted by name, cases by name (main.py sorts both).
fn read_all(cases_dir: &Path, machine: &str) -> Result<Vec<Case>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir)
        .map_err(|e| format!("{}: {e}", cases_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for file in files {
        let suite = file.file_name().unwrap().to_string_lossy().into_owned();
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut cases = parse_file(&suite, &text, machine)?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for c in &mut cases {
            let n = seen.entry(c.name.clone()).or_insert(0);
            *n += 1;
            c.id = match *n {
                1 => format!("{}.{}", c.suite, c.name),
                n => format!("{}.{}#{n}", c.suite, c.name),
            };
        }
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        all.extend(cases);
    }
    Ok(all)
}

// ---------------------------------------------------------------------------------------
// EXPECT: Python `re` patterns, translated for fancy-regex

/// Rewrites a Python `re` pattern into the syntax fancy-regex accepts with the same
/// meaning for what the cases use: `{`/`}` that do not form a quantifier are literals in
/// Python (escaped here), `[` inside a class is a literal, `\Z` is `\z`, `\<`/`\>` are
/// plain `<`/`>`, and without `re.M` Python's `$` also matches before a final newline.
fn translate_regex(pat: &str, multiline: bool) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = String::from(if multiline { "(?m)" } else { "" });
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = 0;
    let push_literal = |out: &mut String, c: char, in_class: bool| {
        let meta: &[char] = if in_class {
            &['\\', ']', '[', '^', '-', '&', '~']
        } else {
            &[
                '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
            ]
        };
        if meta.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            i += 2;
            match n {
                'Z' if !in_class => out.push_str("\\z"),
                'v' => out.push_str("\\x0B"),
                '0' => out.push_str("\\x00"),
                c if c.is_ascii_alphanumeric() => {
                    out.push('\\');
                    out.push(c);
                }
                c => push_literal(&mut out, c, in_class),
            }
            continue;
        }
        if in_class {
            // Python: a `]` right after `[` or `[^` is a literal.
            if c == ']' && i > class_start {
                in_class = false;
                out.push(']');
            } else if c == '-' || (c == '^' && i == class_start) {
                out.push(c);
                if c == '^' {
                    class_start = i + 1;
                }
            } else {
                push_literal(&mut out, c, true);
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = i + 1;
                out.push('[');
            }
            '{' => {
                let rest: String = chars[i + 1..].iter().collect();
                let q = rest.find('}').map(|end| &rest[..end]).filter(|body| {
                    let (lo, hi) = body.split_once(',').unwrap_or((body, ""));
                    lo.chars().all(|c| c.is_ascii_digit())
                        && hi.chars().all(|c| c.is_ascii_digit())
                        && (body.contains(',') || !lo.is_empty())
                });
                match q {
                    Some(body) => {
                        let body = if body.starts_with(',') {
                            format!("0{body}")
                        } else {
                            body.to_string()
                        };
                        let _ = write!(out, "{{{body}}}");
                        i += rest.find('}').unwrap() + 2;
                        continue;
                    }
                    None => out.push_str("\\{"),
                }
            }
            '}' => out.push_str("\\}"),
            '$' if !multiline => out.push_str("(?=\\n?\\z)"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `re.search(expect, output[, re.M])`. A pattern that does not compile is reported.
fn search(pat: &str, output: &str, multiline: bool) -> Result<bool, String> {
    let re = Regex::new(&translate_regex(pat, multiline))
        .map_err(|e| format!("EXPECT {pat:?} does not compile: {e}"))?;
    Ok(re.is_match(output).unwrap_or(false))
}

/// The first line of `output` that holds a match of `pat` (for reports).
fn matching_line(pat: &str, output: &str) -> Option<String> {
    let re = Regex::new(&translate_regex(pat, true)).ok()?;
    let m = re.find(output).ok()??;
    let start = output[..m.start()].rfind('\n').map_or(0, |p| p + 1);
    let end = output[m.end()..]
        .find('\n')
        .map_or(output.len(), |p| m.end() + p);
    Some(output[start..end].to_string())
}

// ---------------------------------------------------------------------------------------
// What this host can serve

struct Host {
    machine: String,
    kernel_release: String,
    features: HashMap<String, bool>,
    /// `testprogs/NAME` or `testlibs/libNAME.so` → build error, for helpers we vendor.
    helpers: HashMap<String, Option<String>>,
    workdir: PathBuf,
    cases_dir: PathBuf,
    disabled: HashSet<String>,
}

fn command_output(cmd: &mut Command) -> String {
    cmd.stdin(Stdio::null())
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .unwrap_or_default()
}

/// `Runner.__get_bpffeature`, read from real bpftrace's `--info`: features are a property
/// of the host here, the same for both tracers (rbt has no `--info`).
fn bpffeatures(bpftrace: Option<&Path>) -> HashMap<String, bool> {
    let info = bpftrace
        .map(|b| command_output(Command::new(b).arg("--info")))
        .unwrap_or_default();
    let has = |s: &str| info.contains(s);
    let pairs = [
        ("loop", has("Loop support: yes")),
        ("probe_read_kernel", has("probe_read_kernel: yes")),
        ("btf", has("btf: yes")),
        ("kfunc", has("kfunc: yes")),
        ("dpath", has("dpath: yes")),
        (
            "uprobe_refcount",
            has("uprobe refcount (depends on Build:bcc bpf_attach_uprobe refcount): yes"),
        ),
        ("signal", has("send_signal: yes")),
        ("iter:task", has("iter:task: yes")),
        ("iter:task_file", has("iter:task_file: yes")),
        ("libpath_resolv", has("bcc library path resolution: yes")),
        ("dwarf", has("libdw (DWARF support): yes")),
        ("kprobe_multi", has("kprobe_multi: yes")),
        ("aot", false),
        ("skboutput", has("skboutput: yes")),
    ];
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Builds the vendored helpers as upstream's CMake does: `-g -O0`, executables
/// `-no-pie`, libraries shared; `HAVE_SYSTEMTAP_SYS_SDT_H` only if the header exists.
fn build_helpers(workdir: &Path) -> HashMap<String, Option<String>> {
    let src = root().join("tests/bpftrace_runtime");
    let sdt = Path::new("/usr/include/sys/sdt.h").exists();
    let sources = |dir: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(src.join(dir))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|e| e == "c"));
        v.sort();
        v
    };
    let libdir = workdir.join("testlibs");
    let progdir = workdir.join("testprogs");
    std::fs::create_dir_all(&libdir).unwrap();
    std::fs::create_dir_all(&progdir).unwrap();
    let prebuilt = std::env::var_os(vm::PREBUILT_ENV).map(PathBuf::from);
    let gcc = |args: Vec<String>| -> Option<String> {
        if let Some(dir) = &prebuilt {
            return vm::copy_prebuilt(dir, workdir, &args);
        }
        match Command::new("gcc")
            .args(&args)
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .find(|l| l.contains("error"))
                    .unwrap_or("gcc failed")
                    .to_string(),
            ),
            Err(e) => Some(format!("gcc: {e}")),
        }
    };
    let mut built = HashMap::new();
    let mut common = vec!["-g".to_string(), "-O0".to_string()];
    if sdt {
        common.push("-DHAVE_SYSTEMTAP_SYS_SDT_H".into());
    }
    for lib in sources("testlibs") {
        let name = lib.file_stem().unwrap().to_string_lossy().into_owned();
        let out = libdir.join(format!("lib{name}.so"));
        let mut args = common.clone();
        args.extend(["-shared".into(), "-fPIC".into(), "-o".into()]);
        args.push(out.display().to_string());
        args.push(lib.display().to_string());
        let err = gcc(args);
        if err.is_none() {
            // upstream clears the executable bit of the libraries
            let _ = Command::new("chmod").arg("-x").arg(&out).status();
        }
        built.insert(format!("testlibs/lib{name}.so"), err);
    }
    let progs = sources("testprogs");
    let results: Vec<(String, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = progs
            .chunks(progs.len().div_ceil(2).max(1))
            .map(|chunk| {
                let common = &common;
                let gcc = &gcc;
                let (libdir, progdir, src) = (&libdir, &progdir, &src);
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|p| {
                            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                            let mut args = common.clone();
                            args.extend(["-no-pie".into(), "-o".into()]);
                            args.push(progdir.join(&name).display().to_string());
                            args.push(p.display().to_string());
                            if name == "usdt_lib" {
                                // CMake: include testlibs/, -fPIC, link usdt_tp (rpath'd).
                                args.push(format!("-I{}", src.join("testlibs").display()));
                                args.push("-fPIC".into());
                                args.push(format!("-L{}", libdir.display()));
                                args.push("-lusdt_tp".into());
                                args.push(format!("-Wl,-rpath,{}", libdir.display()));
                            }
                            (format!("testprogs/{name}"), gcc(args))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    built.extend(results);
    built
}

/// The texts of the programs a case runs: PROG, or a RUN line's quoted words and the
/// scripts it names under runtime/scripts/.
fn program_texts(case: &Case, cases_dir: &Path) -> Vec<String> {
    if !case.prog.is_empty() {
        return vec![case.prog.clone()];
    }
    let mut texts = Vec::new();
    let mut quote = None;
    let mut cur = String::new();
    for c in case.run.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => {
                texts.push(std::mem::take(&mut cur));
                quote = None;
            }
            (Some(_), c) => cur.push(c),
            _ => {}
        }
    }
    for word in case.run.split_whitespace() {
        if let Some(rel) = word.strip_prefix("runtime/") {
            if let Ok(text) = std::fs::read_to_string(cases_dir.join(rel)) {
                texts.push(text);
            }
        }
    }
    texts
}

/// Drops string literals and comments so that only code remains.
fn strip_strings(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// Blanks out everything inside `{...}` (action blocks, struct bodies with their
/// bitfields), keeping the braces: probes stand only at the top level.
fn top_level(code: &str) -> String {
    let mut depth = 0usize;
    code.chars()
        .map(|c| match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    '{'
                } else {
                    ' '
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    '}'
                } else {
                    ' '
                }
            }
            _ if depth > 0 => ' ',
            c => c,
        })
        .collect()
}

/// Probe types (bpftrace 0.17's PROBE_LIST, full names and abbreviations) this host
/// cannot serve, with the reason.
/// The kernel's kprobe PMU: kprobes can be attached (the VM's kernels, not the host's).
fn kprobes_here() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

fn unserved_probe(kind: &str, kprobes: bool) -> Option<&'static str> {
    Some(match kind {
        "kprobe" | "k" | "kretprobe" | "kr" if kprobes => return None,
        "kprobe" | "k" | "kretprobe" | "kr" => NEEDS_KPROBES,
        "kfunc" | "f" | "kretfunc" | "fr" => "needs kfunc (fentry)",
        "hardware" | "h" => "needs a hardware PMU",
        "usdt" | "U" => "needs usdt",
        "watchpoint" | "w" | "asyncwatchpoint" | "aw" => "needs watchpoints",
        "iter" | "it" => "needs iter",
        _ => return None,
    })
}

fn probe_skip(case: &Case, cases_dir: &Path) -> Option<String> {
    let reasons = unserved_probes(case, cases_dir, kprobes_here());
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// Why a machine with or without `kprobes` cannot serve the case's probe types.
fn unserved_probes(case: &Case, cases_dir: &Path, kprobes: bool) -> Vec<&'static str> {
    // A probe type stands at the start of a program, after a block's `}`, after `,` in a
    // probe list, after `;` / `>` / `*/` ending a struct, #include or comment.
    let re = Regex::new(r"(?:^|[};,>]|\*/)\s*([A-Za-z]+)\s*:").unwrap();
    let mut reasons: Vec<&str> = Vec::new();
    for text in program_texts(case, cases_dir) {
        let code = top_level(&strip_strings(&text));
        for caps in re.captures_iter(&code).flatten() {
            let kind = caps.get(1).map_or("", |m| m.as_str());
            if let Some(r) = unserved_probe(kind, kprobes) {
                if !reasons.contains(&r) {
                    reasons.push(r);
                }
            }
        }
    }
    reasons
}

/// `LooseVersion` for kernel releases: the leading numeric components.
fn version(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .take_while(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect()
}

/// The helpers (`testprogs/X`, `testlibs/libX.so`) a case names.
fn helpers_of(case: &Case) -> Vec<String> {
    let re = Regex::new(r"(testprogs/[A-Za-z0-9_]+|testlibs/[A-Za-z0-9_]+\.so)").unwrap();
    let mut out = Vec::new();
    for text in fields_text(case) {
        for m in re.find_iter(&text).flatten() {
            if !out.contains(&m.as_str().to_string()) {
                out.push(m.as_str().to_string());
            }
        }
    }
    out
}

fn fields_text(case: &Case) -> Vec<String> {
    let mut v = vec![
        case.run.clone(),
        case.prog.clone(),
        case.before.clone(),
        case.after.clone(),
    ];
    v.extend(case.requirement.iter().cloned());
    v
}

fn shell_ok(cmd: &str, host: &Host, path: &str) -> bool {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(&host.workdir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why this host cannot serve `case`, or None. The engine's skips in its order (kernel
/// version, RUNTIME_TEST_DISABLE, REQUIRES, REQUIRES_FEATURE), with ours (probe types,
/// helpers that did not build) before REQUIRES: REQUIRES often runs a helper.
fn host_skip(case: &Case, host: &Host, requires_path: &str) -> Option<String> {
    let kernel = version(&host.kernel_release);
    if !case.kernel_min.is_empty() && version(&case.kernel_min) > kernel {
        return Some(format!("min Kernel: {}", case.kernel_min));
    }
    if !case.kernel_max.is_empty() && version(&case.kernel_max) < kernel {
        return Some(format!("max Kernel: {}", case.kernel_max));
    }
    if host
        .disabled
        .contains(&format!("{}.{}", case.suite, case.name))
    {
        return Some("disabled by environment variable".into());
    }
    if let Some(r) = probe_skip(case, &host.cases_dir) {
        return Some(r);
    }
    for h in helpers_of(case) {
        if let Some(Some(err)) = host.helpers.get(&h) {
            return Some(format!("helper {h} does not build here: {err}"));
        }
    }
    if case
        .requirement
        .iter()
        .any(|r| !shell_ok(r, host, requires_path))
    {
        return Some(format!(
            "unmet condition: '{}'",
            case.requirement.join(" && ")
        ));
    }
    let missing = case
        .features
        .iter()
        .any(|f| !host.features.get(f).copied().unwrap_or(false))
        || case
            .neg_features
            .iter()
            .any(|f| host.features.get(f).copied().unwrap_or(false));
    if missing {
        let mut all: Vec<String> = case.neg_features.iter().map(|f| format!("!{f}")).collect();
        all.extend(case.features.iter().cloned());
        return Some(format!("missed feature: '{}'", all.join(",")));
    }
    None
}

// ---------------------------------------------------------------------------------------
// runner.py: running one case under one tracer

/// A tracer under test, reachable as `<dir>/bpftrace` (a symlink): `{{BPFTRACE}}` becomes
/// that path, `<dir>` leads PATH so a bare `bpftrace` is the tracer too, and its process
/// is named `bpftrace` so the cases' `pidof bpftrace` / `pkill bpftrace` find it.
struct Tracer {
    label: &'static str,
    dir: PathBuf,
}

impl Tracer {
    fn new(label: &'static str, binary: &Path, workdir: &Path) -> Tracer {
        let dir = workdir.join("tracers").join(label);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(binary, dir.join("bpftrace")).unwrap();
        Tracer { label, dir }
    }
    fn path(&self) -> String {
        self.dir.join("bpftrace").display().to_string()
    }
    fn search_path(&self) -> String {
        format!("{}:{SH_DEFAULT_PATH}", self.dir.display())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Fail,
    Timeout,
    /// The engine's SKIP_AOT_NOT_SUPPORTED: the output carried the AOT notice.
    AotSkip,
}

#[derive(Debug, Clone)]
struct Outcome {
    status: Status,
    output: String,
    exit: Option<i32>,
    attached: bool,
    /// The failure the engine would print, in one line.
    note: String,
    command: String,
    elapsed: Duration,
}

fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Processes started for a case; on drop, their process groups get SIGKILL (the
/// engine's `finally`), then they are reaped.
#[derive(Default)]
struct Group(Vec<Child>);

impl Drop for Group {
    fn drop(&mut self) {
        for child in &mut self.0 {
            kill_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }
}

/// `sh -c cmd` in its own process group (the engine: `shell=True, preexec_fn=os.setsid`).
fn shell(cmd: &str, workdir: &Path) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .process_group(0);
    c
}

fn pidof(name: &str) -> Option<String> {
    let out = Command::new("pidof")
        .arg(name)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// `Runner.prepare_bpf_call`.
fn bpf_call(case: &Case, tracer: &Tracer) -> String {
    let bin = tracer.path();
    if !case.run.is_empty() {
        let aotrt = tracer.dir.join("aot/bpftrace-aotrt").display().to_string();
        case.run
            .replace("{{BPFTRACE}}", &bin)
            .replace("{{BPFTRACE_AOTRT}}", &aotrt)
    } else {
        format!("{bin} -e '{}'", case.prog)
    }
}

enum Chunk {
    Line(String),
    Eof,
}

/// Python's universal newlines: "\r\n" and "\r" read as "\n"; lines keep their "\n".
fn decode_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// `Runner.run_test` from the BEFORE step on (the skips are decided once, in `host_skip`).
fn run_case(case: &Case, tracer: &Tracer, host: &Host) -> Outcome {
    let started = Instant::now();
    let timeout = Duration::from_secs(if case.timeout == 0 {
        DEFAULT_TIMEOUT
    } else {
        case.timeout
    });
    let mut group = Group::default();
    let mut out = Outcome {
        status: Status::Fail,
        output: String::new(),
        exit: None,
        attached: false,
        note: String::new(),
        command: String::new(),
        elapsed: Duration::ZERO,
    };
    let finish = |mut out: Outcome| {
        out.elapsed = started.elapsed();
        out
    };

    // BEFORE: start it, then poll `pidof <basename of its last word>` every 0.1 s for at
    // most TIMEOUT seconds.
    let mut child_name = String::new();
    if !case.before.is_empty() {
        match shell(&case.before, &host.workdir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => group.0.push(c),
            Err(e) => {
                out.note = format!("BEFORE did not start: {e}");
                return finish(out);
            }
        }
        let last = case.before.split_whitespace().last().unwrap_or("");
        child_name = last.rsplit('/').next().unwrap_or(last).to_string();
        let mut waited = 0.0;
        while pidof(&child_name).is_none() {
            std::thread::sleep(Duration::from_millis(100));
            waited += 0.1;
            if waited > case.timeout as f64 {
                // The engine crashes here (TimeoutError with no tracer started): a timeout.
                out.status = Status::Timeout;
                out.note = format!("timed out waiting for BEFORE {}", case.before);
                return finish(out);
            }
        }
    }

    let mut cmd = bpf_call(case, tracer);
    if !case.before.is_empty() && cmd.contains("{{BEFORE_PID}}") {
        let pid = pidof(&child_name).unwrap_or_default();
        cmd = cmd.replace("{{BEFORE_PID}}", &pid);
    }
    out.command = cmd.clone();

    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            out.note = format!("pipe: {e}");
            return finish(out);
        }
    };
    let mut command = shell(&cmd, &host.workdir);
    command
        .env_clear()
        .env("test", &case.name)
        .env("__BPFTRACE_NOTIFY_PROBES_ATTACHED", "1")
        .env("__BPFTRACE_NOTIFY_AOT_PORTABILITY_DISABLED", "1")
        .env("BPFTRACE_VERIFY_LLVM_IR", "1")
        .env("PATH", tracer.search_path())
        .envs(case.env.iter().map(|(k, v)| (k, v)))
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    let tracer_child = command.spawn();
    drop(command); // closes our copies of the pipe's write end
    let tracer_child = match tracer_child {
        Ok(c) => c,
        Err(e) => {
            out.note = format!("could not start: {e}");
            return finish(out);
        }
    };
    let pgid = tracer_child.id();
    let tracer_index = group.0.len();
    group.0.push(tracer_child);

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    for line in decode_lines(&buf) {
                        if tx.send(Chunk::Line(line)).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let _ = tx.send(Chunk::Eof);
    });

    // signal.alarm(ATTACH_TIMEOUT); read lines until the attach notice (then the alarm
    // is re-armed to TIMEOUT and AFTER starts) or until the tracer is done.
    let mut deadline = Instant::now() + ATTACH_TIMEOUT;
    let mut timed_out = false;
    let mut eof = false;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Chunk::Line(line)) => {
                let notice = line == NOTIFY_ATTACHED;
                out.output.push_str(&line);
                if notice {
                    out.attached = true;
                    deadline = Instant::now() + timeout;
                    if !case.after.is_empty() {
                        if let Ok(c) = shell(&case.after, &host.workdir)
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .spawn()
                        {
                            group.0.push(c);
                        }
                    }
                    break;
                }
            }
            Ok(Chunk::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                eof = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
        }
    }
    // p.communicate() under the alarm: the rest of the output, then the exit.
    while !eof && !timed_out {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Chunk::Line(line)) => out.output.push_str(&line),
            Ok(Chunk::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => eof = true,
            Err(mpsc::RecvTimeoutError::Timeout) => timed_out = true,
        }
    }
    let mut status = None;
    while !timed_out {
        match group.0[tracer_index].try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => timed_out = true,
            Err(_) => break,
        }
    }

    let result;
    if timed_out {
        // SIGTERM the tracer's group (it prints its maps and exits), take what it still
        // writes, and search without re.M. The exit code is not looked at.
        if group.0[tracer_index].try_wait().ok().flatten().is_none() {
            kill_group(pgid, "TERM");
        }
        let grace = Instant::now() + TERM_GRACE;
        while !eof {
            match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
                Ok(Chunk::Line(line)) => out.output.push_str(&line),
                _ => eof = true,
            }
        }
        result = search(&case.expect, &out.output, false);
        if !matches!(result, Ok(true)) {
            out.status = Status::Timeout;
            out.note = match (&result, out.attached) {
                (Err(e), _) => e.clone(),
                (_, false) => format!(
                    "TIMEOUT: no {} within {} s",
                    NOTIFY_ATTACHED.trim(),
                    ATTACH_TIMEOUT.as_secs()
                ),
                (_, true) => format!("TIMEOUT: {} s after attaching", timeout.as_secs()),
            };
            return finish(out);
        }
    } else {
        out.exit = status.and_then(|s| s.code());
        if out.exit != Some(0) && !case.will_fail {
            out.status = Status::Fail;
            out.note = match out.exit {
                Some(c) => format!("unclean exit code {c}"),
                None => "killed by a signal".to_string(),
            };
            return finish(out);
        }
        result = search(&case.expect, &out.output, true);
    }
    match result {
        Ok(true) => out.status = Status::Pass,
        Ok(false) if out.output.contains(NOTIFY_AOT) => out.status = Status::AotSkip,
        Ok(false) => {
            out.status = Status::Fail;
            out.note = "EXPECT not found".into();
        }
        Err(e) => {
            out.status = Status::Fail;
            out.note = e;
        }
    }
    finish(out)
}

// ---------------------------------------------------------------------------------------
// Scheduling: at most `workers` jobs at once, never two that share a helper program, a
// /tmp file or ftrace's buffer; jobs that signal `bpftrace` by name run alone.

struct Job {
    case: usize,
    tracer: usize,
    resources: Vec<String>,
    alone: bool,
}

fn resources_of(case: &Case, host: &Host) -> (Vec<String>, bool) {
    let mut texts = fields_text(case);
    texts.extend(program_texts(case, &host.cases_dir));
    let all = texts.join("\n");
    let mut res: Vec<String> = helpers_of(case);
    let tmp = Regex::new(r"/tmp/[A-Za-z0-9_.\-]+").unwrap();
    for m in tmp.find_iter(&all).flatten() {
        res.push(m.as_str().to_string());
    }
    if all.contains("tracing/trace") {
        res.push("ftrace".into());
    }
    let alone = all.contains("pidof bpftrace")
        || all.contains("pkill")
        || all.contains("killall")
        || all.contains("$(pidof");
    res.sort();
    res.dedup();
    (res, alone)
}

struct Pool {
    pending: VecDeque<usize>,
    busy: HashMap<String, usize>,
    running: usize,
    alone_running: bool,
}

fn run_jobs(
    jobs: &[Job],
    workers: usize,
    run: &(dyn Fn(&Job) -> Outcome + Sync),
) -> Vec<Option<Outcome>> {
    let state = Mutex::new(Pool {
        pending: (0..jobs.len()).collect(),
        busy: HashMap::new(),
        running: 0,
        alone_running: false,
    });
    let cv = Condvar::new();
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let mut st = state.lock().unwrap();
                let picked = loop {
                    if st.pending.is_empty() {
                        return;
                    }
                    let free = |j: &Job| {
                        !st.alone_running
                            && if j.alone {
                                st.running == 0
                            } else {
                                j.resources.iter().all(|r| !st.busy.contains_key(r))
                            }
                    };
                    if let Some(pos) = st.pending.iter().position(|&i| free(&jobs[i])) {
                        break st.pending.remove(pos).unwrap();
                    }
                    st = cv.wait(st).unwrap();
                };
                let job = &jobs[picked];
                st.running += 1;
                st.alone_running |= job.alone;
                for r in &job.resources {
                    *st.busy.entry(r.clone()).or_insert(0) += 1;
                }
                drop(st);
                let outcome = run(job);
                results.lock().unwrap()[picked] = Some(outcome);
                let mut st = state.lock().unwrap();
                st.running -= 1;
                if job.alone {
                    st.alone_running = false;
                }
                for r in &job.resources {
                    if let Some(n) = st.busy.get_mut(r) {
                        *n -= 1;
                        if *n == 0 {
                            st.busy.remove(r);
                        }
                    }
                }
                cv.notify_all();
            });
        }
    });
    results.into_inner().unwrap()
}

// ---------------------------------------------------------------------------------------
// Reports

fn one_line(s: &str, max: usize) -> String {
    let s = s.trim().replace('`', "'");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// Lines of tracer output that are not the engine's notices or bpftrace's chatter.
fn content_lines(output: &str) -> impl Iterator<Item = &str> {
    output.lines().filter(|l| {
        !l.trim().is_empty()
            && !l.starts_with("__BPFTRACE_NOTIFY")
            && !l.starts_with("Attaching ")
            && !l.contains("couldn't set RLIMIT_MEMLOCK")
    })
}

/// Why rbt failed a case that bpftrace passed, in one line.
fn reason(case: &Case, rbt: &Outcome, bpftrace: &Outcome) -> String {
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
struct Row {
    cases: usize,
    runnable: usize,
    bpftrace: usize,
    rbt: usize,
    both: usize,
}

fn table(rows: &BTreeMap<String, Row>, bpftrace_ran: bool) -> String {
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

fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

fn gate_path() -> PathBuf {
    root().join("tests/bpftrace_runtime/rbt_passing.txt")
}

/// The gate list: one `suite.name` a line; `#` lines are comments; a line `!suite.name`
/// names a case rbt passes only by accident of the engine's rules (not gated, not
/// reported as new).
fn read_gate() -> (Vec<String>, HashSet<String>) {
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

fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Cases end the tracer with `pkill -SIGINT bpftrace`, which matches any process whose
/// name contains "bpftrace" — this binary's too (`bpftrace_runtime-<hash>`). So the
/// runner first re-executes itself under a name without it, through a symlink.
fn reexec_under_safe_name() {
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
fn regex_check(list: &str) {
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

#[allow(clippy::too_many_arguments)]
fn conformance_doc(
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

/// Runs the cases skipped here only for want of kprobes in the VM ([`vm`]) and counts
/// their results as this run's: the indices run there and the VM's kernel release.
/// `RBT_CONFORMANCE_VM=0` leaves them skipped; so does a host that has kprobes itself
/// or lacks what the VM needs (then CI fails: there, everything is installed).
fn run_kprobe_cases_in_vm(
    cases: &[Case],
    skips: &mut [Option<String>],
    outcome: &mut HashMap<(usize, usize), Outcome>,
    labels: &[&str],
    rbt: &Path,
    workdir: &Path,
) -> (HashSet<usize>, Option<String>) {
    let wanted: Vec<usize> = (0..cases.len())
        .filter(|&i| skips[i].as_deref() == Some(NEEDS_KPROBES))
        .collect();
    let off = std::env::var("RBT_CONFORMANCE_VM").is_ok_and(|v| v == "0");
    if wanted.is_empty() || off || kprobes_here() {
        return (HashSet::new(), None);
    }
    if let Some(reason) = vm::missing_facility() {
        println!("bpftrace_runtime: the kprobe cases are not run in a VM: {reason}");
        assert!(std::env::var_os("CI").is_none(), "CI has the VM: {reason}");
        return (HashSet::new(), None);
    }
    println!(
        "bpftrace_runtime: {} kprobe cases, run in a {} VM",
        wanted.len(),
        vm::KERNEL
    );
    let results =
        vm::run(&root(), rbt, workdir).unwrap_or_else(|e| panic!("kprobe cases in the VM: {e}"));
    let mut ran = HashSet::new();
    for i in wanted {
        let id = &cases[i].id;
        if let Some(reason) = results.skips.get(id) {
            skips[i] = Some(format!("in the {} VM: {reason}", results.release));
            continue;
        }
        skips[i] = None;
        ran.insert(i);
        for (t, label) in labels.iter().enumerate() {
            let o = results.outcomes.get(&(label.to_string(), id.clone()));
            let o = o.cloned().unwrap_or_else(|| Outcome {
                status: Status::Fail,
                output: String::new(),
                exit: None,
                attached: false,
                note: "no result from the VM".into(),
                command: String::new(),
                elapsed: Duration::ZERO,
            });
            outcome.insert((i, t), o);
        }
    }
    (ran, Some(results.release))
}
