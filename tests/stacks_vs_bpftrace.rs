//! Stacks and symbols against the real bpftrace 0.17 on this host: `kstack` (every
//! form) over the deterministic workload's getppid syscalls (a syscall's kernel stack is
//! the same each time), `ksym`/`kaddr`, and `ustack`, `func`, `usym`/`uaddr` in uprobes
//! of a test program built with frame pointers and symbols (tests/data/stacks/rbtstk.c),
//! non-PIE and PIE, alive while the tracers print — and exited before they print, when
//! addresses stay raw. Both tracers must print the same bytes, text and `-f json`; only
//! perf mode's raw addresses of randomized mappings (PIE, libc) are masked.
//! Needs root, bpftrace 0.17, tracefs, the uprobe PMU and gcc (skips otherwise, fails
//! under CI).

mod bpftrace_ref;
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn rbt() -> &'static str {
    env!("CARGO_BIN_EXE_rbt")
}

/// Both tracers' outputs of `script` (with `args`), or why one failed.
fn both(args: &[&str], script: &str) -> Result<(String, String), String> {
    let expected = bpftrace_ref::run_tracer("bpftrace", args, script, &[])?;
    let got = bpftrace_ref::run_tracer(rbt(), args, script, &[])?;
    Ok((expected, got))
}

/// The workload, built once under a name unique to this test process.
fn workload() -> Option<&'static PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| bpftrace_ref::build_workload(&format!("rbtstk{}", std::process::id())))
        .as_ref()
}

#[test]
fn kernel_stacks_match_bpftrace() {
    let test = "kernel_stacks_match_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let Some(workload) = workload() else {
        return support::skip(test, "cannot build the workload with gcc -static");
    };
    let comm = workload.file_name().unwrap().to_string_lossy().into_owned();
    let workload = workload.to_string_lossy().into_owned();
    let filter = format!("tracepoint:syscalls:sys_enter_getppid /comm == \"{comm}\"/");
    // Each tracer run costs seconds: few scripts, each with many cases.
    let scripts = [
        // Every form as a map key, keys with several parts, of hist and stats, stack
        // values; stacks that differ only in limit (bpftrace keeps the first one's
        // type, and cannot find the later stack's id in that map).
        format!(
            "{filter} {{ @[kstack] = count(); @b[kstack(3)] = count(); @c[kstack(perf)] = count(); \
             @d[kstack(bpftrace, 2)] = count(); @e[kstack(perf, 1)] = count(); @v = kstack(2); \
             @w[kstack(1), comm] = count(); @u = ustack(1); @m[kstack(3), ustack(3)] = count(); \
             @t[1] = kstack(1); @h[@t[1]] = count(); @x[kstack(1)] = 1; @x[kstack(2)] = 2; \
             @y = kstack(1); @y = kstack(2); }} \
             tracepoint:syscalls:sys_enter_write /comm == \"{comm}\"/ {{ \
             @hist[kstack(2)] = hist(args->count); @st[ustack(1), kstack(1)] = stats(args->count); }}"
        ),
        // printf, ksym and kaddr, through variables too.
        format!(
            "{filter} {{ printf(\"%s|\\n\", kstack(3)); printf(\"[%s]\\n\", kstack(perf, 2)); \
             printf(\"%s|%s|%x\\n\", ksym(kaddr(\"do_sys_openat2\")), ksym(kaddr(\"do_sys_openat2\") + 5), kaddr(\"do_sys_openat2\")); \
             @k[ksym(kaddr(\"do_syscall_64\") + 1)] = count(); @s = ksym(1); \
             $s = kstack(2); @[$s] = count(); printf(\"%s|\\n\", $s); $k = ksym(kaddr(\"do_syscall_64\")); \
             @kk[$k] = count(); printf(\"%s\\n\", $k); $x = kstack(1); $x = kstack(2); printf(\"%s\", $x); }}"
        ),
        // Reading through an integer address, as loads.bt does with kaddr("avenrun").
        "BEGIN { $a = kaddr(\"get_avenrun\"); printf(\"%x\\n\", *$a); exit(); }".to_string(),
    ];
    let mut failures = Vec::new();
    for script in &scripts {
        for json in [false, true] {
            let mut args = vec!["-c", workload.as_str()];
            if json {
                args.extend(["-f", "json"]);
            }
            match both(&args, script) {
                Ok((expected, got)) if expected == got => {}
                Ok((expected, got)) => failures.push(format!(
                    "{args:?} {script}\n--- bpftrace\n{expected}--- rbt\n{got}"
                )),
                Err(e) => failures.push(format!("{args:?} {script}\n{e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The stack target built non-PIE and PIE, once; `Err` says what is missing.
fn targets() -> Result<&'static Path, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("rbt-stacks-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/stacks/rbtstk.c");
            for (name, pie) in [("rbtstk", "-no-pie"), ("rbtstk_pie", "-pie")] {
                let status = Command::new("gcc")
                    .args(["-O0", "-fno-omit-frame-pointer", pie, "-o", name, src])
                    .current_dir(&dir)
                    .status()
                    .map_err(|e| format!("cannot run gcc: {e}"))?;
                if !status.success() {
                    return Err(format!("gcc {name} failed: {status}"));
                }
            }
            Ok(dir)
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

fn setup(test: &str) -> Option<&'static Path> {
    if bpftrace_ref::skip_reason(test).is_some() {
        return None;
    }
    if !Path::new("/sys/bus/event_source/devices/uprobe/type").exists() {
        support::skip(test, "the kernel has no uprobe PMU");
        return None;
    }
    match targets() {
        Ok(dir) => Some(dir),
        Err(e) => {
            support::skip(test, &e);
            None
        }
    }
}

/// Starts the target (it waits for the tracer's uprobes), stdin a pipe it reads to EOF.
fn start_target(bin: &Path) -> Child {
    Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the stack target")
}

/// Lets the target finish and checks it ran its calls.
fn finish_target(mut child: Child) {
    drop(child.stdin.take());
    let status = child.wait().expect("wait for the target");
    assert!(status.success(), "the stack target failed: {status}");
}

/// Perf mode's raw addresses (`\tADDR symbol`): random for PIE and libc mappings. JSON
/// escapes are undone first, so its frames are lines too.
fn mask_perf_addresses(text: &str) -> String {
    let text = text.replace("\\n", "\n").replace("\\t", "\t");
    text.split_inclusive('\n')
        .map(
            |line| match line.strip_prefix('\t').and_then(|l| l.split_once(' ')) {
                Some((addr, rest)) if addr.bytes().all(|c| c.is_ascii_hexdigit()) => {
                    format!("\tADDR {rest}")
                }
                _ => line.to_string(),
            },
        )
        .collect()
}

#[test]
fn user_stacks_and_symbols_match_bpftrace() {
    let test = "user_stacks_and_symbols_match_bpftrace";
    let Some(dir) = setup(test) else { return };
    let mut failures = Vec::new();
    for name in ["rbtstk", "rbtstk_pie"] {
        let bin = dir.join(name);
        let bin = bin.to_string_lossy();
        let done = format!("uprobe:{bin}:stk_done {{ exit(); }}");
        let mut scripts = vec![
            format!("uprobe:{bin}:stk_inner {{ @[ustack] = count(); @p[ustack(perf)] = count(); @f[func] = count(); @k[kstack] = count(); }} {done}"),
            format!("uprobe:{bin}:stk_inner {{ printf(\"%s|\\n\", ustack(2)); printf(\"%s [%s]\\n\", func, kstack); @v = ustack(perf, 3); @w = func; }} {done}"),
        ];
        // ssllatency.bt's pattern: func kept in a map at entry, used as a key at return.
        scripts.push(format!("uprobe:{bin}:stk_inner {{ @fn[1] = func; }} uretprobe:{bin}:stk_inner {{ @r[@fn[1]] = count(); $f = func; @ret[$f] = count(); }} {done}"));
        if name == "rbtstk" {
            // uaddr gives the file's address: the run-time one only without PIE. A
            // variable is outside executable mappings: usym() leaves it raw.
            scripts.push(format!("uprobe:{bin}:stk_inner {{ printf(\"%d %d %s %s\\n\", *uaddr(\"stk_counter\"), uaddr(\"stk_counter\"), usym(uaddr(\"stk_counter\")), usym(1)); @u[usym(uaddr(\"stk_counter\"))] = count(); }} {done}"));
        }
        for script in &scripts {
            // JSON prints the same strings: checked on one binary only, to save time.
            let formats: &[bool] = if name == "rbtstk" {
                &[false, true]
            } else {
                &[false]
            };
            for &json in formats {
                let args: &[&str] = if json { &["-f", "json"] } else { &[] };
                let mut outputs = Vec::new();
                for tracer in ["bpftrace", rbt()] {
                    let target = start_target(Path::new(&*bin));
                    let out = bpftrace_ref::run_tracer(tracer, args, script, &[]);
                    finish_target(target);
                    outputs.push(out.map(|o| mask_perf_addresses(&o)));
                }
                match (&outputs[0], &outputs[1]) {
                    (Ok(expected), Ok(got)) if expected == got => {}
                    (Ok(expected), Ok(got)) => failures.push(format!(
                        "{args:?} {script}\n--- bpftrace\n{expected}--- rbt\n{got}"
                    )),
                    (Err(e), _) | (_, Err(e)) => failures.push(format!("{script}\n{e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `tracer` on `script` while the target runs to its end and exits; then stops the
/// tracer with SIGINT (its maps are printed after the process is gone).
fn trace_exited(tracer: &str, script: &str, bin: &Path) -> Result<String, String> {
    let mut child = Command::new(tracer)
        .args(["-e", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {tracer}: {e}"))?;
    let target = start_target(bin);
    finish_target(target);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    assert!(status.success(), "kill -INT {tracer} failed");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{tracer} did not stop on SIGINT"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn stacks_of_an_exited_process_match_bpftrace() {
    let test = "stacks_of_an_exited_process_match_bpftrace";
    let Some(dir) = setup(test) else { return };
    let bin = dir.join("rbtstk");
    let b = bin.to_string_lossy();
    // Two frames: both in the non-PIE binary, so their addresses are fixed.
    let script = format!(
        "uprobe:{b}:stk_inner {{ @[ustack(2)] = count(); @p[ustack(perf, 2)] = count(); @f[func] = count(); }} uprobe:{b}:stk_done {{ @done = count(); }}"
    );
    let expected = trace_exited("bpftrace", &script, &bin).unwrap();
    let got = trace_exited(rbt(), &script, &bin).unwrap();
    assert!(
        expected.contains("@done: 1"),
        "bpftrace saw no run:\n{expected}"
    );
    assert_eq!(got, expected, "script: {script}");
}

#[test]
fn stack_argument_errors_match_bpftrace() {
    let test = "stack_argument_errors_match_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let probe = "tracepoint:syscalls:sys_enter_getppid";
    for call in [
        "kstack(2000)",
        "kstack(perf, 3, 4)",
        "kstack(3, perf)",
        "kstack(\"x\")",
        "ustack(pid)",
        "usym()",
        "kaddr(1)",
        "kaddr(\"rbt_no_such_symbol\")",
        "func",
        "uaddr(\"x\")",
    ] {
        let script = format!("{probe} {{ @[{call}] = count(); exit(); }}");
        let mut messages = Vec::new();
        for tracer in ["bpftrace", rbt()] {
            let out = Command::new(tracer)
                .args(["-e", &script])
                .stdin(Stdio::null())
                .output()
                .expect("run tracer");
            assert!(!out.status.success(), "{tracer} accepted {script}");
            // bpftrace reports kaddr()'s failure from codegen, as "Failed to compile: ...".
            let message = bpftrace_ref::error_message(&out.stderr)
                .map(|m| m.trim_start_matches("Failed to compile: ").to_string());
            messages.push(message);
        }
        assert_eq!(messages[1], messages[0], "{script}");
    }
}

/// A stack deeper than the kernel's `kernel.perf_event_max_stack`: the stack map cannot
/// be created; both tracers fail, rbt naming the sysctl and its value.
#[test]
fn stacks_deeper_than_the_kernel_allows_fail_as_in_bpftrace() {
    let test = "stacks_deeper_than_the_kernel_allows_fail_as_in_bpftrace";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
        .expect("read kernel.perf_event_max_stack")
        .trim()
        .parse()
        .expect("a number");
    if max >= 1024 {
        return support::skip(
            test,
            "kernel.perf_event_max_stack allows bpftrace's largest stacks",
        );
    }
    let script = format!(
        "tracepoint:syscalls:sys_enter_getppid {{ @[kstack({})] = count(); exit(); }}",
        max + 1
    );
    let mut stderrs = Vec::new();
    for tracer in ["bpftrace", rbt()] {
        let out = Command::new(tracer)
            .args(["-e", &script])
            .stdin(Stdio::null())
            .output()
            .expect("run tracer");
        assert!(!out.status.success(), "{tracer} ran {script}");
        stderrs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    assert!(
        stderrs[0].contains("failed to create stack id map"),
        "{}",
        stderrs[0]
    );
    let want = format!("kernel.perf_event_max_stack is {max}");
    assert!(stderrs[1].contains(&want), "{}", stderrs[1]);
}

/// bpftrace 0.17 matches a uprobe's function like a pattern: one its binary lacks
/// attaches nothing, silently, while the script has other probes (ssllatency.bt lists
/// libcrypto functions only debug symbols have); with nothing left, both fail.
#[test]
fn uprobes_on_missing_functions_attach_nothing_as_in_bpftrace() {
    let test = "uprobes_on_missing_functions_attach_nothing_as_in_bpftrace";
    let Some(dir) = setup(test) else { return };
    let bin = dir.join("rbtstk");
    let b = bin.to_string_lossy();
    let script = format!(
        "uprobe:{b}:stk_inner, uprobe:{b}:rbt_nosuch {{ @in = count(); }} \
         uprobe:{b}:rbt_nosuch2 {{ @none = count(); }} uprobe:{b}:stk_done {{ exit(); }}"
    );
    let mut outputs = Vec::new();
    for tracer in ["bpftrace", rbt()] {
        let target = start_target(&bin);
        let out = bpftrace_ref::run_tracer(tracer, &[], &script, &[]);
        finish_target(target);
        outputs.push(out.unwrap());
    }
    assert!(outputs[0].contains("@in: 3"), "bpftrace: {}", outputs[0]);
    assert_eq!(outputs[1], outputs[0], "script: {script}");
    let only_missing = format!("uprobe:{b}:rbt_nosuch {{ @ = count(); }}");
    for tracer in ["bpftrace", rbt()] {
        let out = Command::new(tracer)
            .args(["-e", &only_missing])
            .stdin(Stdio::null())
            .output()
            .expect("run tracer");
        assert!(!out.status.success(), "{tracer} ran {only_missing}");
    }
}

/// The bpftrace tools that use stacks and symbols check under rbt: tcpdrop.bt (kstack),
/// ssllatency.bt and sslsnoop.bt (func, uprobes on missing functions), xfsdist.bt;
/// loads.bt fails only as bpftrace fails here: this kernel's kallsyms lists no data
/// symbols, so kaddr("avenrun") cannot resolve.
#[test]
fn stack_and_symbol_tools_check() {
    let test = "stack_and_symbol_tools_check";
    if bpftrace_ref::skip_reason(test).is_some() {
        return;
    }
    let tools = ["tcpdrop", "ssllatency", "sslsnoop", "xfsdist", "loads"];
    let path = |tool: &str| format!("/usr/sbin/{tool}.bt");
    if let Some(missing) = tools.iter().find(|t| !Path::new(&path(t)).exists()) {
        return support::skip(test, &format!("{} is not installed", path(missing)));
    }
    let avenrun = std::fs::read_to_string("/proc/kallsyms")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("avenrun"));
    for tool in tools {
        let out = Command::new(rbt())
            .args(["--dry-run", &path(tool)])
            .stdin(Stdio::null())
            .output()
            .expect("run rbt");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if tool == "loads" && !avenrun {
            assert!(
                stderr.contains("Failed to resolve kernel symbol: avenrun"),
                "{tool}: {stderr}"
            );
            let theirs = Command::new("bpftrace")
                .arg(path(tool))
                .stdin(Stdio::null())
                .output()
                .expect("run bpftrace");
            let theirs = String::from_utf8_lossy(&theirs.stderr);
            assert!(
                theirs.contains("Failed to resolve kernel symbol: avenrun"),
                "{theirs}"
            );
        } else {
            assert!(out.status.success(), "{tool}: {stderr}");
        }
    }
}
