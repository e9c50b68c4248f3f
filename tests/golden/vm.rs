//! Runs the golden scenarios in a VM (tests/vm/vmrun.sh boots a Debian kernel
//! with kprobes under qemu TCG) and brings back every tracer's output.

use super::scenarios::{MapScenario, Scenario};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Modules every boot loads (vmrun.sh -m), for the tools that trace them: xfs for
/// xfsdist.bt (on a ram disk), md and raid1 for mdflush.bt (a mirror of two more).
pub const MODULES: &[&str] = &[
    "lib/libcrc32c",
    "fs/xfs/xfs",
    "drivers/md/md-mod",
    "drivers/md/raid1",
    "drivers/block/brd rd_nr=3 rd_size=320000",
];

/// Debian cloud kernels the suite boots (one boot each runs every scenario).
pub const KERNELS: &[&str] = &[
    "linux-image-6.1.0-56-cloud-amd64",
    "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
];

/// What the VM needs from the host; None when everything is there.
pub fn missing_facility() -> Option<String> {
    if uid() != 0 {
        return Some("not root (bpftrace's header walk and the VM cache need root)".into());
    }
    for tool in [
        "qemu-system-x86_64",
        "bpftrace",
        "busybox",
        "cpio",
        "gcc",
        "apt-get",
        "dpkg-deb",
    ] {
        if !in_path(tool) {
            return Some(format!("{tool} not installed (apt-get install qemu-system-x86 busybox-static bpftrace cpio gcc libc6-dev)"));
        }
    }
    if !Path::new("/usr/sbin/tcpaccept.bt").exists() {
        return Some("/usr/sbin/tcpaccept.bt missing (Debian's bpftrace package ships it)".into());
    }
    None
}

fn uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).and_then(|u| u.parse().ok()))
        })
        .unwrap_or(u32::MAX)
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the static accept workload into the test's scratch dir.
pub fn build_acceptload() -> Result<PathBuf, String> {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("acceptload");
    let st = Command::new("gcc")
        .args(["-O2", "-Wall", "-static", "-o"])
        .arg(&out)
        .arg(repo().join("tests/vm/acceptload.c"))
        .status()
        .map_err(|e| format!("gcc: {e}"))?;
    if !st.success() {
        return Err(format!("gcc failed building acceptload: {st}"));
    }
    Ok(out)
}

/// The upstream script versions rbt runs (tests/data/upstream/<version>.bt).
pub fn versions() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("tests/data/upstream"))
        .expect("tests/data/upstream")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".bt")
                .map(String::from)
        })
        .collect();
    v.sort();
    v
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The /run.sh the VM executes: every scenario, in order.
pub fn run_script(
    rbt_name: &str,
    versions: &[String],
    scenarios: &[Scenario],
    map_scenarios: &[MapScenario],
) -> String {
    let mut s = format!(
        ". /bin/golden.sh\nRBT=/bin/{rbt_name}\nVERSIONS={}\n",
        shell_quote(&versions.join(" "))
    );
    for sc in scenarios {
        s += &format!(
            "scenario {} {} {}\n",
            sc.name,
            sc.accepts,
            shell_quote(sc.workload)
        );
    }
    for sc in map_scenarios {
        s += &format!(
            "map_scenario {} {} {}\n",
            sc.name,
            sc.script,
            shell_quote(sc.workload)
        );
    }
    s
}

/// One kernel boot's results: scenario -> file name -> contents.
pub struct Boot {
    pub console: String,
    pub ok: bool,
    pub elapsed: Duration,
    pub results: BTreeMap<String, BTreeMap<String, String>>,
}

/// Boots `kernel` with `files` in /bin and runs `script`.
pub fn boot(kernel: &str, files: &[PathBuf], script: &str) -> Result<Boot, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("golden-{kernel}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (run, data) = (dir.join("run.sh"), dir.join("data.out"));
    std::fs::write(&run, script).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/vm/vmrun.sh"))
        .args(["-k", kernel, "-o"])
        .arg(&data);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    for m in MODULES {
        cmd.arg("-m").arg(m);
    }
    let start = Instant::now();
    let out = cmd
        .arg(&run)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("vmrun.sh: {e}"))?;
    let elapsed = start.elapsed();
    let raw = std::fs::read_to_string(&data).unwrap_or_default();
    let results = decode_chunks(&raw)?;
    // Keep every output for inspection: target/tmp/golden-<kernel>/results/.
    for (scenario, files) in &results {
        let d = dir.join("results").join(scenario);
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        for (name, text) in files {
            std::fs::write(d.join(name), text).map_err(|e| e.to_string())?;
        }
    }
    Ok(Boot {
        console: String::from_utf8_lossy(&out.stdout).into_owned(),
        ok: out.status.success(),
        elapsed,
        results,
    })
}

/// Splits the data channel into scenario chunks, un-base64s and gunzips each
/// (with the host's coreutils and gzip) and parses its `@@FILE` frames.
fn decode_chunks(raw: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut results = BTreeMap::new();
    let mut lines = raw.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("@@CHUNK ") else {
            continue;
        };
        let b64: String = lines
            .by_ref()
            .take_while(|l| *l != "@@CHUNK-END")
            .map(|l| format!("{l}\n"))
            .collect();
        let mut child = Command::new("sh")
            .args(["-c", "base64 -d | gzip -dc"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("base64/gzip: {e}"))?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b64.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("scenario {name}: corrupt data chunk"));
        }
        results.insert(name.to_string(), parse_frames(&out.stdout)?);
    }
    Ok(results)
}

/// Parses "@@FILE <name> <bytes>\n<bytes>\n" frames.
fn parse_frames(mut b: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    while !b.is_empty() {
        let nl = b
            .iter()
            .position(|&c| c == b'\n')
            .ok_or("truncated frame header")?;
        let header = String::from_utf8_lossy(&b[..nl]).into_owned();
        let mut parts = header
            .strip_prefix("@@FILE ")
            .ok_or(format!("bad frame header {header:?}"))?
            .split(' ');
        let (name, len) = (
            parts.next().unwrap_or(""),
            parts.next().and_then(|n| n.parse::<usize>().ok()),
        );
        let len = len.ok_or(format!("bad frame header {header:?}"))?;
        let body = b
            .get(nl + 1..nl + 1 + len)
            .ok_or(format!("truncated file {name}"))?;
        files.insert(name.to_string(), String::from_utf8_lossy(body).into_owned());
        b = b.get(nl + 2 + len..).unwrap_or(&[]);
    }
    Ok(files)
}

/// Checks the reference against the workload's own record of its accepts:
/// same events, same order, same PIDs and ports.
pub fn check_ground_truth(tracer_out: &str, workload_out: &str) -> Result<(), String> {
    let traced: Vec<(String, String, String)> = tracer_out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 8 && f[0].as_bytes().get(2) == Some(&b':'))
        .map(|f| (f[1].to_string(), f[4].to_string(), f[6].to_string()))
        .collect();
    let truth: Vec<(String, String, String)> = workload_out
        .lines()
        .filter_map(|l| l.strip_prefix("accept "))
        .map(|l| l.split(' ').map(String::from).collect::<Vec<_>>())
        .filter(|f| f.len() == 3)
        .map(|f| (f[0].clone(), f[1].clone(), f[2].clone()))
        .collect();
    if traced == truth {
        return Ok(());
    }
    let i = traced
        .iter()
        .zip(&truth)
        .position(|(a, b)| a != b)
        .unwrap_or(traced.len().min(truth.len()));
    Err(format!(
        "{} accepts traced, {} made; first difference at accept {}: traced {:?}, made {:?}",
        traced.len(),
        truth.len(),
        i + 1,
        traced.get(i),
        truth.get(i)
    ))
}
