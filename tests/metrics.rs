//! `--metrics ADDR`: the endpoint scraped while a tracepoint script counts the
//! workload's writes, each scrape parsed by Prometheus' own Python client parser
//! (`prometheus_client.parser`, installed by scripts/setup.sh); counters grow, histogram
//! buckets are cumulative and, once the workload is done, equal what rbt prints at exit
//! — which stays what bpftrace prints for the same runs. Bad addresses, a port in use,
//! hung clients and garbage requests.

mod bpftrace_ref;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bpftrace_ref::{build_workload, skip_reason, start_attached as start};

/// Prints every sample as `type<TAB>family<TAB>sample<TAB>k=v,...<TAB>value`.
const PARSE_METRICS: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{fam.type}\t{fam.name}\t{s.name}\t{labels}\t{s.value}")
"#;

/// Prints `-f json` hist buckets as `map<TAB>key<TAB>max (or inf)<TAB>count` and plain
/// map entries as `map<TAB>key<TAB>value`.
const PARSE_EXIT_JSON: &str = r#"
import sys, json
for line in sys.stdin:
    if not line.strip():
        continue
    rec = json.loads(line)
    if rec["type"] not in ("hist", "map"):
        continue
    for name, v in rec["data"].items():
        entries = v.items() if isinstance(v, dict) else [("", v)]
        for key, value in entries:
            if rec["type"] == "hist":
                for b in value:
                    print(f"{name}\t{key}\t{b.get('max', 'inf')}\t{b['count']}")
            else:
                print(f"{name}\t{key}\t{value}")
"#;

#[derive(Debug)]
struct Sample {
    kind: String,
    name: String,
    labels: String,
    value: f64,
}

fn python(code: &str, input: &str) -> Result<String, String> {
    let mut child = Command::new("python3")
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why the Prometheus parser cannot run here, if it cannot.
fn parser_missing(test: &str) -> bool {
    let reason = match Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(_) => Some("python3 has no prometheus_client (scripts/setup.sh installs it)".into()),
        Err(e) => Some(format!("cannot run python3: {e}")),
    };
    support::skip_if(test, reason).is_some()
}

/// Samples of one exposition, as the real parser reads it (it fails on bad syntax).
fn parse(text: &str) -> Vec<Sample> {
    let out = python(PARSE_METRICS, text)
        .unwrap_or_else(|e| panic!("prometheus_client rejected the exposition: {e}\n{text}"));
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Sample {
                kind: f[0].into(),
                name: f[2].into(),
                labels: f[3].into(),
                value: f[4].parse().expect("value"),
            }
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels == labels)
        .map(|s| s.value)
}

/// One HTTP exchange: `request` sent as is; the whole response.
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}

/// `GET /metrics`: the body (asserting 200).
fn scrape(addr: &str) -> String {
    let response = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// A loopback address with a port free a moment ago.
fn free_addr() -> String {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = probe.local_addr().expect("addr").to_string();
    drop(probe);
    addr
}

/// SIGINT, then its stdout (asserting a clean exit).
fn interrupt(child: Child) -> String {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "exited {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const RUNS: usize = 3;

fn script(comm: &str) -> String {
    format!(
        "tracepoint:syscalls:sys_enter_write /comm == \"{comm}\"/ {{ @writes[comm] = count(); \
         @bytes = sum(args->count); @size = hist(args->count); \
         @lsize[comm] = lhist(args->count, 0, 1000, 100); }}"
    )
}

/// Runs the workload `RUNS` times under `tracer`, calling `after_run` after each run.
fn trace_runs(
    tracer: &str,
    args: &[&str],
    script: &str,
    workload: &std::path::Path,
    mut after_run: impl FnMut(usize),
) -> String {
    let child = start(tracer, args, script);
    for run in 1..=RUNS {
        let status = Command::new(workload).status().expect("workload");
        assert!(status.success(), "workload failed: {status}");
        after_run(run);
    }
    interrupt(child)
}

#[test]
fn scrapes_follow_the_maps_and_agree_with_the_exit_print() {
    const TEST: &str = "scrapes_follow_the_maps_and_agree_with_the_exit_print";
    if skip_reason(TEST).is_some() || parser_missing(TEST) {
        return;
    }
    let comm = "rbtwlmetrics";
    let Some(workload) = build_workload(comm) else {
        support::skip(TEST, "gcc cannot build the workload");
        return;
    };
    let script = script(comm);
    let expected = trace_runs("bpftrace", &["-f", "json"], &script, &workload, |_| {});

    let addr = free_addr();
    let args = ["-f", "json", "--metrics", addr.as_str()];
    let mut scrapes: Vec<Vec<Sample>> = Vec::new();
    let mut hung: Vec<TcpStream> = Vec::new();
    let got = trace_runs(
        env!("CARGO_BIN_EXE_rbt"),
        &args,
        &script,
        &workload,
        |run| {
            // Clients that never finish their request: one silent, one half a request line.
            hung.push(TcpStream::connect(&addr).expect("connect"));
            let mut half = TcpStream::connect(&addr).expect("connect");
            half.write_all(b"GET /metr").expect("send");
            hung.push(half);
            let garbage = exchange(&addr, b"\x16\x03\x01\x00garbage\r\n\r\n");
            assert!(
                garbage.starts_with("HTTP/1.1 400"),
                "garbage got: {garbage}"
            );
            let begun = Instant::now();
            let samples = parse(&scrape(&addr));
            assert!(
                begun.elapsed() < Duration::from_secs(3),
                "scrape {run} waited for hung clients: {:?}",
                begun.elapsed()
            );
            scrapes.push(samples);
        },
    );
    drop(hung);
    let _ = std::fs::remove_dir_all(workload.parent().expect("dir"));
    assert_eq!(got, expected, "--metrics changed what is printed at exit");

    // Counters only grow, and grow with every run.
    let label = format!("comm={comm}");
    let writes: Vec<f64> = scrapes
        .iter()
        .map(|s| value(s, "rbt_writes_total", &label).expect("rbt_writes_total"))
        .collect();
    assert!(writes.windows(2).all(|w| w[0] < w[1]), "{writes:?}");
    for s in &scrapes {
        let kind = |n: &str| s.iter().find(|x| x.name == n).map(|x| x.kind.clone());
        assert_eq!(kind("rbt_writes_total").as_deref(), Some("counter"));
        assert_eq!(kind("rbt_size_count").as_deref(), Some("histogram"));
        assert_eq!(value(s, "rbt_probes_attached", ""), Some(1.0));
        assert_eq!(value(s, "rbt_lost_events_total", ""), Some(0.0));
        // Every hist bucket, cumulative, ending in +Inf = _count; _sum kept in the kernel.
        let buckets: Vec<&Sample> = s.iter().filter(|x| x.name == "rbt_size_bucket").collect();
        assert_eq!(buckets.len(), 34, "{buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
        assert_eq!(buckets.last().map(|b| b.labels.as_str()), Some("le=+Inf"));
        assert_eq!(Some(buckets[33].value), value(s, "rbt_size_count", ""));
        assert_eq!(
            value(s, "rbt_size_sum", ""),
            value(s, "rbt_bytes_total", "")
        );
    }

    // The last scrape (after the last run) against the exit print's buckets.
    let last = scrapes.last().expect("scrapes");
    let exit = python(PARSE_EXIT_JSON, &got).expect("parse the exit JSON");
    let mut cumulative: BTreeMap<String, f64> = BTreeMap::new();
    let mut checked = 0;
    for line in exit.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match (f[0], f.len()) {
            ("@writes", 3) => {
                assert_eq!(value(last, "rbt_writes_total", &label), f[2].parse().ok())
            }
            ("@size" | "@lsize", 4) => {
                let total = cumulative.entry(f[0].to_string()).or_default();
                *total += f[3].parse::<f64>().expect("count");
                let le = if f[2] == "inf" { "+Inf" } else { f[2] };
                let (metric, labels) = if f[0] == "@size" {
                    ("rbt_size_bucket", format!("le={le}"))
                } else {
                    ("rbt_lsize_bucket", format!("{label},le={le}"))
                };
                assert_eq!(value(last, metric, &labels), Some(*total), "{line}");
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 5, "too few buckets compared:\n{exit}");
}

/// Bad addresses and a port in use: one line naming the flag, exit 1, nothing traced.
#[test]
fn bad_addresses_and_ports_in_use_are_one_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let in_use = taken.local_addr().expect("addr").to_string();
    let cases = [
        ("nonsense", "expected HOST:PORT"),
        (":99999", "not a port number"),
        ("256.1.1.1:80", "not an address"),
        (in_use.as_str(), "cannot listen: Address already in use"),
    ];
    for (addr, message) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_rbt"))
            .args(["--metrics", addr, "-e", "BEGIN { exit(); }"])
            .output()
            .expect("run rbt");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{addr}: {stderr}");
        assert!(out.stdout.is_empty(), "{addr}: printed {:?}", out.stdout);
        assert_eq!(stderr.lines().count(), 1, "{addr}: {stderr}");
        assert!(
            stderr.starts_with(&format!("rbt: --metrics {addr}: ")),
            "{stderr}"
        );
        assert!(stderr.contains(message), "{addr}: {stderr}");
    }
}

/// `--metrics-max-series`: keys past the cap are left out and counted; labels of literal
/// keys are `key0`; other paths get 404 and other methods 405.
#[test]
fn series_past_the_cap_are_counted_as_dropped() {
    const TEST: &str = "series_past_the_cap_are_counted_as_dropped";
    if support::skip_if(TEST, support::not_root()).is_some() || parser_missing(TEST) {
        return;
    }
    let addr = free_addr();
    let child = start(
        env!("CARGO_BIN_EXE_rbt"),
        &["--metrics", &addr, "--metrics-max-series", "2"],
        "BEGIN { @k[1] = 10; @k[2] = 20; @k[3] = 30; @name = \"x\"; }",
    );
    let first = parse(&scrape(&addr));
    let second = parse(&scrape(&addr));
    let not_found = exchange(&addr, b"GET / HTTP/1.1\r\n\r\n");
    let not_allowed = exchange(&addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    interrupt(child);
    let kept: Vec<&Sample> = first.iter().filter(|s| s.name == "rbt_k").collect();
    assert_eq!(kept.len(), 2, "{first:?}");
    assert!(kept
        .iter()
        .all(|s| s.kind == "gauge" && s.labels.starts_with("key0=")));
    let dropped = |s: &[Sample]| value(s, "rbt_metrics_dropped_series_total", "map=@k");
    assert_eq!(dropped(&first), Some(1.0));
    assert_eq!(dropped(&second), Some(2.0));
    assert!(
        !first.iter().any(|s| s.name.starts_with("rbt_name")),
        "strings are not numbers"
    );
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
    assert!(not_allowed.starts_with("HTTP/1.1 405"), "{not_allowed}");
}

/// `:PORT` (every interface), `127.0.0.1:PORT` and `[::1]:PORT` (where this host has
/// IPv6 loopback) all serve.
#[test]
fn address_forms_serve() {
    const TEST: &str = "address_forms_serve";
    if support::skip_if(TEST, support::not_root()).is_some() || parser_missing(TEST) {
        return;
    }
    let port = |host: &str| {
        let probe = TcpListener::bind(format!("{host}:0")).ok()?;
        Some(probe.local_addr().ok()?.port())
    };
    let mut forms = Vec::new();
    if let Some(p) = port("127.0.0.1") {
        forms.push((format!(":{p}"), format!("127.0.0.1:{p}")));
    }
    if let Some(p) = port("127.0.0.1") {
        forms.push((format!("127.0.0.1:{p}"), format!("127.0.0.1:{p}")));
    }
    match port("[::1]") {
        Some(p) => forms.push((format!("[::1]:{p}"), format!("[::1]:{p}"))),
        None => support::skip(TEST, "no IPv6 loopback: [::1] not tried"),
    }
    for (flag, connect) in forms {
        let child = start(
            env!("CARGO_BIN_EXE_rbt"),
            &["--metrics", &flag],
            "BEGIN { @x = 42; }",
        );
        let samples = parse(&scrape(&connect));
        interrupt(child);
        assert_eq!(value(&samples, "rbt_x", ""), Some(42.0), "--metrics {flag}");
    }
}

/// A client that sends nothing, and one that sends a byte a second (never finishing its
/// request), are both closed about 5 s after connecting; scrapes meanwhile are served.
#[test]
fn hung_clients_are_cut_off() {
    const TEST: &str = "hung_clients_are_cut_off";
    if support::skip_if(TEST, support::not_root()).is_some() || parser_missing(TEST) {
        return;
    }
    let addr = free_addr();
    let child = start(
        env!("CARGO_BIN_EXE_rbt"),
        &["--metrics", &addr],
        "BEGIN { @x = 1; }",
    );
    let begun = Instant::now();
    let silent = TcpStream::connect(&addr).expect("connect");
    let mut trickle = TcpStream::connect(&addr).expect("connect");
    let closed_after = |mut s: TcpStream| {
        std::thread::spawn(move || {
            s.set_read_timeout(Some(Duration::from_secs(15)))
                .expect("timeout");
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf); // EOF or reset when the server closes it
            begun.elapsed()
        })
    };
    let writer = trickle.try_clone().expect("clone");
    let silent = closed_after(silent);
    let trickled = closed_after(writer);
    for _ in 0..8 {
        if trickle.write_all(b"G").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let samples = parse(&scrape(&addr));
    let (silent, trickled) = (silent.join().expect("join"), trickled.join().expect("join"));
    interrupt(child);
    assert_eq!(value(&samples, "rbt_x", ""), Some(1.0));
    for (what, after) in [("silent", silent), ("trickling", trickled)] {
        assert!(
            after >= Duration::from_secs(4) && after < Duration::from_secs(8),
            "{what} client closed after {after:?}"
        );
    }
}
