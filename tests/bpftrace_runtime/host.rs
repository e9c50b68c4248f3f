//! What this host can serve: its features, the helpers built as upstream's CMake
//! builds them, and each case's skip reason.

use super::*;

// What this host can serve

pub(crate) struct Host {
    pub(crate) machine: String,
    pub(crate) kernel_release: String,
    pub(crate) features: HashMap<String, bool>,
    /// `testprogs/NAME` or `testlibs/libNAME.so` → build error, for helpers we vendor.
    pub(crate) helpers: HashMap<String, Option<String>>,
    pub(crate) workdir: PathBuf,
    pub(crate) cases_dir: PathBuf,
    pub(crate) disabled: HashSet<String>,
}

pub(crate) fn command_output(cmd: &mut Command) -> String {
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
pub(crate) fn bpffeatures(bpftrace: Option<&Path>) -> HashMap<String, bool> {
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
pub(crate) fn build_helpers(workdir: &Path) -> HashMap<String, Option<String>> {
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
pub(crate) fn program_texts(case: &Case, cases_dir: &Path) -> Vec<String> {
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
pub(crate) fn strip_strings(text: &str) -> String {
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
pub(crate) fn top_level(code: &str) -> String {
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
pub(crate) fn kprobes_here() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

pub(crate) fn unserved_probe(kind: &str, kprobes: bool) -> Option<&'static str> {
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

pub(crate) fn probe_skip(case: &Case, cases_dir: &Path) -> Option<String> {
    let reasons = unserved_probes(case, cases_dir, kprobes_here());
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// Why a machine with or without `kprobes` cannot serve the case's probe types.
pub(crate) fn unserved_probes(case: &Case, cases_dir: &Path, kprobes: bool) -> Vec<&'static str> {
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
pub(crate) fn version(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .take_while(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect()
}

/// The helpers (`testprogs/X`, `testlibs/libX.so`) a case names.
pub(crate) fn helpers_of(case: &Case) -> Vec<String> {
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

pub(crate) fn fields_text(case: &Case) -> Vec<String> {
    let mut v = vec![
        case.run.clone(),
        case.prog.clone(),
        case.before.clone(),
        case.after.clone(),
    ];
    v.extend(case.requirement.iter().cloned());
    v
}

pub(crate) fn shell_ok(cmd: &str, host: &Host, path: &str) -> bool {
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
pub(crate) fn host_skip(case: &Case, host: &Host, requires_path: &str) -> Option<String> {
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
