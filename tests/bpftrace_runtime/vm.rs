//! The cases this host skips only for want of kprobes, run in Debian's 6.1 cloud kernel
//! under qemu (tests/vm/vmrun.sh, as the golden suite): the runner boots the VM once,
//! runs itself there on just those cases (`RBT_CONFORMANCE_KPROBE_CASES=1`, with the same
//! engine rules, tracers side by side and second tries), and reads back each case's skip
//! reason or both tracers' outcomes, which then count as if run here.

use super::*;

/// The kernel the VM boots (its kprobes serve these cases; one boot keeps CI short).
pub const KERNEL: &str = "linux-image-6.1.0-56-cloud-amd64";

/// `RBT_CONFORMANCE_RESULTS=FILE`: where the runner inside the VM writes its results.
pub const RESULTS_ENV: &str = "RBT_CONFORMANCE_RESULTS";
/// `RBT_CONFORMANCE_PREBUILT=DIR`: the helpers as the host built them (the VM has no gcc).
pub const PREBUILT_ENV: &str = "RBT_CONFORMANCE_PREBUILT";

/// What the boot gave: the kernel release, per case id a skip reason in the VM, and
/// per (tracer label, case id) an outcome.
#[derive(Default)]
pub struct VmResults {
    pub release: String,
    pub skips: HashMap<String, String>,
    pub outcomes: HashMap<(String, String), Outcome>,
}

/// What the host lacks to boot the VM (vmrun.sh's needs), or None.
pub fn missing_facility() -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let tools = [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "gcc",
        "apt-get",
        "dpkg-deb",
    ];
    tools
        .iter()
        .find(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .map(|t| format!("{t} not installed (scripts/setup.sh installs what the VM needs)"))
}

/// Boots the VM and runs the kprobe cases there under both tracers; the console is
/// echoed with a `vm: ` prefix as it comes, so a long boot shows progress.
pub fn run(root: &Path, rbt: &Path, workdir: &Path) -> Result<VmResults, String> {
    let scratch = std::env::temp_dir().join(format!("rbt-conformance-vm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    // Under its own name: the cases' `pkill bpftrace` must not match the runner.
    let runner = scratch.join("spec-runner");
    let exe = std::env::current_exe().map_err(|e| format!("the runner's path: {e}"))?;
    std::fs::copy(&exe, &runner).map_err(|e| format!("copy {}: {e}", exe.display()))?;
    let cases = scratch.join("conformance.tar");
    let tar = Command::new("tar")
        .arg("-cf")
        .arg(&cases)
        .arg("-C")
        .arg(root.join("tests"))
        .args(["--exclude=*.rs", "bpftrace_runtime"])
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !tar.success() {
        return Err(format!("tar of the cases failed: {tar}"));
    }
    let helpers = scratch.join("helpers.tar");
    let tar = Command::new("tar")
        .arg("-cf")
        .arg(&helpers)
        .arg("-C")
        .arg(workdir)
        .args(["testprogs", "testlibs"])
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !tar.success() {
        return Err(format!("tar of the helpers failed: {tar}"));
    }
    // The cases' REQUIRES name bpftool by its Debian path.
    let bpftool = Path::new("/usr/sbin/bpftool");
    let filter: String = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| format!(" '{}'", a.replace('\'', "")))
        .collect();
    let verbose = std::env::var("RBT_CONFORMANCE_VERBOSE").unwrap_or_default();
    let rbt_name = rbt.file_name().and_then(|n| n.to_str()).unwrap_or("rbt");
    let script = scratch.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "mkdir -p /tmp/conformance/tests /tmp/conformance/helpers /usr/sbin\n\
             tar -xf /bin/conformance.tar -C /tmp/conformance/tests\n\
             tar -xf /bin/helpers.tar -C /tmp/conformance/helpers\n\
             if [ -x /bin/bpftool ]; then ln -sf /bin/bpftool /usr/sbin/bpftool; fi\n\
             RBT_CONFORMANCE_ROOT=/tmp/conformance RBT_CONFORMANCE_KPROBE_CASES=1 \
             RBT_CONFORMANCE_RBT=/bin/{rbt_name} RBT_CONFORMANCE_BPFTRACE=$(command -v bpftrace) \
             RBT_CONFORMANCE_VERBOSE='{verbose}' {PREBUILT_ENV}=/tmp/conformance/helpers \
             RBT_CONFORMANCE_JOBS=1 \
             {RESULTS_ENV}=/tmp/results spec-runner{filter}\n\
             cat /tmp/results > /dev/ttyS1\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", script.display()))?;
    let data = scratch.join("results");
    // A hung boot ends after 10 minutes (the cases take ~4), not vmrun.sh's 20.
    let timeout = std::env::var("RBT_VM_TIMEOUT").unwrap_or_else(|_| "600".into());
    let mut vm = Command::new("bash")
        .env("RBT_VM_TIMEOUT", timeout)
        .arg(root.join("tests/vm/vmrun.sh"))
        .args(["-k", KERNEL, "-f"])
        .arg(&runner)
        .arg("-f")
        .arg(rbt)
        .arg("-f")
        .arg(&cases)
        .arg("-f")
        .arg(&helpers)
        .args(bpftool.exists().then_some("-f"))
        .args(bpftool.exists().then_some(bpftool))
        .arg("-o")
        .arg(&data)
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("vmrun.sh: {e}"))?;
    let mut release = String::new();
    for line in BufReader::new(vm.stdout.take().expect("piped")).lines() {
        let line = line.unwrap_or_default();
        if let Some(r) = line.strip_prefix("@@VM-BEGIN ") {
            release = r.trim().to_string();
        }
        println!("vm: {line}");
    }
    let status = vm.wait().map_err(|e| format!("vmrun.sh: {e}"))?;
    let text = std::fs::read_to_string(&data).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&scratch);
    if text.is_empty() {
        return Err(format!("the VM sent no results (vmrun.sh: {status})"));
    }
    let mut results = parse(&text)?;
    results.release = release;
    Ok(results)
}

/// Writes the results of a run in the VM: `skip\tID\tREASON` and
/// `outcome\tTRACER\tID\tSTATUS\tEXIT\tATTACHED\tMS\tNOTE\tOUTPUT`, fields escaped.
pub fn write(
    path: &Path,
    cases: &[Case],
    skips: &[Option<String>],
    outcome: &HashMap<(usize, usize), Outcome>,
    labels: &[&str],
) -> std::io::Result<()> {
    let mut text = String::new();
    for (i, case) in cases.iter().enumerate() {
        if let Some(reason) = &skips[i] {
            let _ = writeln!(text, "skip\t{}\t{}", escape(&case.id), escape(reason));
            continue;
        }
        for (t, label) in labels.iter().enumerate() {
            let Some(o) = outcome.get(&(i, t)) else {
                continue;
            };
            let _ = writeln!(
                text,
                "outcome\t{label}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                escape(&case.id),
                status_name(o.status),
                o.exit.map_or("-".to_string(), |c| c.to_string()),
                u8::from(o.attached),
                o.elapsed.as_millis(),
                escape(&o.note),
                escape(&o.output)
            );
        }
    }
    std::fs::write(path, text)
}

fn parse(text: &str) -> Result<VmResults, String> {
    let mut r = VmResults::default();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["skip", id, reason] => {
                r.skips.insert(unescape(id), unescape(reason));
            }
            ["outcome", label, id, status, exit, attached, ms, note, output] => {
                let o = Outcome {
                    status: parse_status(status).ok_or(format!("status {status:?}"))?,
                    output: unescape(output),
                    exit: exit.parse().ok(),
                    attached: *attached == "1",
                    note: unescape(note),
                    command: String::new(),
                    elapsed: Duration::from_millis(ms.parse().unwrap_or(0)),
                };
                r.outcomes.insert((label.to_string(), unescape(id)), o);
            }
            _ => return Err(format!("a results line the VM garbled: {line:?}")),
        }
    }
    Ok(r)
}

const STATUSES: [(Status, &str); 4] = [
    (Status::Pass, "pass"),
    (Status::Fail, "fail"),
    (Status::Timeout, "timeout"),
    (Status::AotSkip, "aot-skip"),
];

fn status_name(s: Status) -> &'static str {
    STATUSES
        .iter()
        .find(|(st, _)| *st == s)
        .map_or("fail", |(_, n)| n)
}

fn parse_status(name: &str) -> Option<Status> {
    STATUSES.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// In the VM, instead of gcc: the output (`-o PATH` in `args`, under `workdir`) copied
/// from the host's build under `dir`; None when copied, else why not.
pub fn copy_prebuilt(dir: &Path, workdir: &Path, args: &[String]) -> Option<String> {
    let out = args.iter().skip_while(|a| *a != "-o").nth(1)?;
    let rel = Path::new(out).strip_prefix(workdir).ok()?;
    match std::fs::copy(dir.join(rel), out) {
        Ok(_) => None,
        Err(e) => Some(format!("not built on the host ({}: {e})", rel.display())),
    }
}

/// Runs the cases skipped here only for want of kprobes in the VM ([`vm`]) and counts
/// their results as this run's: the indices run there and the VM's kernel release.
/// `RBT_CONFORMANCE_VM=0` leaves them skipped; so does a host that has kprobes itself
/// or lacks what the VM needs (then CI fails: there, everything is installed).
pub(crate) fn run_kprobe_cases_in_vm(
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
    if let Some(reason) = missing_facility() {
        println!("bpftrace_runtime: the kprobe cases are not run in a VM: {reason}");
        assert!(std::env::var_os("CI").is_none(), "CI has the VM: {reason}");
        return (HashSet::new(), None);
    }
    println!(
        "bpftrace_runtime: {} kprobe cases, run in a {} VM",
        wanted.len(),
        KERNEL
    );
    // One case at a time there: with two tracers attaching and detaching kprobes on
    // the same functions at once (kprobe:ksys_*), the 6.1 kernel once oopsed (a NULL
    // call in ksys_read, 2026-12-02 15:12) and then hung. A boot that sends nothing
    // back is tried once more.
    let results = run(&root(), rbt, workdir)
        .or_else(|e| {
            println!("bpftrace_runtime: the VM failed ({e}); booting it once more");
            run(&root(), rbt, workdir)
        })
        .unwrap_or_else(|e| panic!("kprobe cases in the VM: {e}"));
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
