//! What fleet wrappers rely on: `--version` in the form PCP's pmdabpftrace parses, the
//! binary answering to `pidof bpftrace` and printing its maps on SIGINT (kubectl-trace's
//! preStop), and `--json-envelope` around bpftrace's unchanged `-f json` lines.

mod bpftrace_ref;
mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use bpftrace_ref::{run_bpftrace, run_rbt, skip_reason};

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The version as PCP's pmdabpftrace reads it: older releases match
/// `bpftrace v(\d+)\.(\d+)\.(\d+)` at the start of the output, newer ones drop the first
/// word and match `v(\d+)\.(\d+)\.(\d+)`.
fn pcp_versions(output: &str) -> (Option<String>, Option<String>) {
    let first = fancy_regex::Regex::new(r"^bpftrace v(\d+)\.(\d+)\.(\d+)").expect("regex");
    let second = fancy_regex::Regex::new(r"^v(\d+)\.(\d+)\.(\d+)").expect("regex");
    let text = output.trim();
    let dotted = |re: &fancy_regex::Regex, s: &str| {
        re.captures(s).ok().flatten().map(|c| {
            (1..=3)
                .map(|i| c.get(i).map_or("", |m| m.as_str()))
                .collect::<Vec<_>>()
                .join(".")
        })
    };
    let after_word = text.find(' ').map_or(text, |i| &text[i + 1..]);
    (dotted(&first, text), dotted(&second, after_word))
}

#[test]
fn version_parses_as_the_bpftrace_it_is_compatible_with() {
    let rbt = env!("CARGO_BIN_EXE_rbt");
    for flag in ["--version", "-V"] {
        let got = stdout(Command::new(rbt).arg(flag));
        assert!(
            got.contains(&format!("rbt v{}", env!("CARGO_PKG_VERSION"))),
            "{got}"
        );
        assert_eq!(got.lines().count(), 1, "{got}");
        let (old, new) = pcp_versions(&got);
        assert_eq!(old.as_deref(), Some("0.17.0"), "{got}");
        assert_eq!(old, new, "{got}");
        match Command::new("bpftrace").arg(flag).output() {
            Ok(out) => assert_eq!(
                pcp_versions(&String::from_utf8_lossy(&out.stdout)),
                (old.clone(), new),
                "bpftrace {flag} parses differently"
            ),
            Err(e) => support::skip(
                "version_parses_as_the_bpftrace_it_is_compatible_with",
                &format!("cannot run bpftrace: {e}"),
            ),
        }
    }
}

/// Runs `tracer` copied as `DIR/bpftrace`; once attached, `pidof bpftrace` must list it
/// and SIGINT (kubectl-trace's preStop sends it to `$(pidof bpftrace)`) must print the
/// maps and exit 0. Its stdout.
fn as_bpftrace(tracer: &std::path::Path, script: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "rbt-fleet-{}-{}",
        std::process::id(),
        tracer
            .file_name()
            .map_or("x".into(), |n| n.to_string_lossy())
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let bin = dir.join("bpftrace");
    std::fs::copy(tracer, &bin).expect("copy the binary");
    let mut child = Command::new(&bin)
        .args(["-e", script])
        .env("__BPFTRACE_NOTIFY_PROBES_ATTACHED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("__BPFTRACE_NOTIFY_PROBES_ATTACHED") {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => panic!("{bin:?} ended: {}", String::from_utf8_lossy(&seen)),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let pids = stdout(Command::new("pidof").arg("bpftrace"));
    assert!(
        pids.split_whitespace().any(|p| p == child.id().to_string()),
        "pidof bpftrace: {pids:?}, not {}",
        child.id()
    );
    // Only this process: other bpftrace sessions may run on this machine.
    assert!(Command::new("kill")
        .args(["-SIGINT", &child.id().to_string()])
        .status()
        .expect("kill")
        .success());
    let out = child.wait_with_output().expect("wait");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{bin:?} exited {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lists the image archive's files (argv[1]: `docker save` or scripts/image.sh output,
/// both with a `manifest.json`) and extracts `usr/bin/bpftrace` to argv[2].
const EXTRACT_IMAGE: &str = r#"
import io, json, sys, tarfile
outer = tarfile.open(sys.argv[1])
plain = lambda name: name[2:] if name.startswith("./") else name
member = lambda name: next(m for m in outer.getmembers() if plain(m.name) == name)
manifest = json.load(outer.extractfile(member("manifest.json")))
for layer in manifest[0]["Layers"]:
    inner = tarfile.open(fileobj=io.BytesIO(outer.extractfile(member(layer)).read()))
    for m in inner.getmembers():
        if m.isfile():
            name = plain(m.name)
            print(name)
            if name == "usr/bin/bpftrace":
                with open(sys.argv[2], "wb") as out:
                    out.write(inner.extractfile(m).read())
"#;

/// Whether an ELF file has no `PT_INTERP` program header: statically linked.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    assert_eq!(&bytes[..5], b"\x7fELF\x02", "not a 64-bit ELF");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) != PT_INTERP
    })
}

/// The image scripts/image.sh builds (the Dockerfile's `rbt` stage): only the static rbt
/// at usr/bin/bpftrace and LICENSE; run from it under that name, `pidof bpftrace` finds
/// it and SIGINT prints what bpftrace prints. scripts/test.sh builds the image first.
#[test]
fn the_image_holds_only_a_static_bpftrace_that_behaves_like_bpftrace() {
    const TEST: &str = "the_image_holds_only_a_static_bpftrace_that_behaves_like_bpftrace";
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/target/image/rbt-image.tar");
    if !std::path::Path::new(image).exists() {
        support::skip(
            TEST,
            "no target/image/rbt-image.tar (scripts/image.sh builds it)",
        );
        return;
    }
    if skip_reason(TEST).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rbt-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let bin = dir.join("rbt-from-image");
    let files = stdout(
        Command::new("python3")
            .args(["-c", EXTRACT_IMAGE, image])
            .arg(&bin),
    );
    let mut files: Vec<&str> = files.lines().collect();
    files.sort_unstable();
    assert_eq!(files, ["LICENSE", "usr/bin/bpftrace"]);
    assert!(
        is_static_elf(&std::fs::read(&bin).expect("read")),
        "not static"
    );
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let which = stdout(Command::new("sh").args(["-c", "command -v bpftrace"]));
    let script = "BEGIN { @started = 1; @c[\"x\"] = count(); }";
    let expected = as_bpftrace(std::path::Path::new(which.trim()), script);
    let got = as_bpftrace(&bin, script);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got, expected);
}

#[test]
fn named_bpftrace_it_answers_pidof_and_prints_maps_on_sigint() {
    const TEST: &str = "named_bpftrace_it_answers_pidof_and_prints_maps_on_sigint";
    if skip_reason(TEST).is_some() {
        return;
    }
    let which = stdout(Command::new("sh").args(["-c", "command -v bpftrace"]));
    let script = "BEGIN { @started = 1; @c[\"x\"] = count(); @h = hist(100); }";
    let expected = as_bpftrace(std::path::Path::new(which.trim()), script);
    let got = as_bpftrace(std::path::Path::new(env!("CARGO_BIN_EXE_rbt")), script);
    assert!(expected.contains("@started: 1"), "{expected}");
    assert_eq!(got, expected);
}

/// Checks rbt's envelope lines (argv[1]) against bpftrace's plain lines (argv[2]): the
/// same `type`/`data` in the same order, the envelope fields, and each map entry's typed
/// key joined by `,` naming bpftrace's key with the same value. Prints `ok` or why not.
const CHECK_ENVELOPE: &str = r#"
import json, sys
wrapped = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
plain = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
host = open("/proc/sys/kernel/hostname").read().strip()
problems = []
if [(w["type"], w["data"]) for w in wrapped] != [(p["type"], p["data"]) for p in plain]:
    problems.append("type/data differ")
last = 0
for w in wrapped:
    if w.get("envelope") != 1 or w.get("host") != host:
        problems.append("envelope/host: %r" % w)
    if not isinstance(w.get("boot_ns"), int) or w["boot_ns"] < last:
        problems.append("boot_ns: %r" % w)
    last = w.get("boot_ns", 0)
    print("time\t%s\t%s" % (w["time"], w["boot_ns"]))
    if w["type"] in ("map", "hist", "stats"):
        (name, data), = w["data"].items()
        if w.get("map") != name:
            problems.append("map: %r" % w)
        for e in w["entries"]:
            key = e["key"]
            if not key:
                ok = data == e["value"]
            else:
                ok = data.get(",".join(str(k) for k in key)) == e["value"]
            if not ok or (key and not isinstance(key[1], int)):
                problems.append("entry %r of %r" % (e, data))
print("\n".join(problems) or "ok")
"#;

fn uptime_ns() -> u128 {
    let text = std::fs::read_to_string("/proc/uptime").expect("uptime");
    let secs: f64 = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("seconds");
    (secs * 1e9) as u128
}

#[test]
fn json_envelope_wraps_bpftrace_lines_unchanged() {
    const TEST: &str = "json_envelope_wraps_bpftrace_lines_unchanged";
    if skip_reason(TEST).is_some() {
        return;
    }
    let script =
        "BEGIN { printf(\"hi %d\\n\", 5); @c[\"a\", 5] = count(); @c[\"a\", 5] = count(); \
                  @c[\"b\", 6] = count(); \
                  @h = hist(100); @x = 3; print(@x); @a = avg(4); exit(); }";
    let expected = run_bpftrace(&["-f", "json"], script);
    assert_eq!(
        run_rbt(&["-f", "json"], script),
        expected,
        "-f json changed"
    );
    let (wall, boot) = (SystemTime::now(), uptime_ns());
    let wrapped = run_rbt(&["-f", "json", "--json-envelope"], script);
    let (wall_after, boot_after) = (SystemTime::now(), uptime_ns());

    let dir = std::env::temp_dir().join(format!("rbt-envelope-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("wrapped"), &wrapped).expect("write");
    std::fs::write(dir.join("plain"), &expected).expect("write");
    let out = Command::new("python3")
        .args(["-c", CHECK_ENVELOPE])
        .arg(dir.join("wrapped"))
        .arg(dir.join("plain"))
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        support::skip(TEST, "python3 cannot check the lines");
        return;
    };
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(report.ends_with("ok\n"), "{report}");
    let slack = Duration::from_millis(20);
    for line in report.lines().filter_map(|l| l.strip_prefix("time\t")) {
        let (time, boot_ns) = line.split_once('\t').expect("time and boot_ns");
        let at = chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339 time");
        let at = SystemTime::from(at);
        assert!(at + slack >= wall && at <= wall_after + slack, "{time}");
        let ns: u128 = boot_ns.parse().expect("boot_ns");
        assert!(ns + slack.as_nanos() >= boot && ns <= boot_after + slack.as_nanos());
    }
    // Without -f json there is nothing to wrap: one clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_rbt"))
        .args(["--json-envelope", "-e", "BEGIN { exit(); }"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "rbt: --json-envelope wraps JSON lines: it needs -f json\n"
    );
}
