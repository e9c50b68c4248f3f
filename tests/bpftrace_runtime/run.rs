//! Running one case under one tracer (upstream's `runner.py`) and scheduling the
//! jobs.

use super::*;

// runner.py: running one case under one tracer

/// A tracer under test, reachable as `<dir>/bpftrace` (a symlink): `{{BPFTRACE}}` becomes
/// that path, `<dir>` leads PATH so a bare `bpftrace` is the tracer too, and its process
/// is named `bpftrace` so the cases' `pidof bpftrace` / `pkill bpftrace` find it.
pub(crate) struct Tracer {
    pub(crate) label: &'static str,
    pub(crate) dir: PathBuf,
}

impl Tracer {
    pub(crate) fn new(label: &'static str, binary: &Path, workdir: &Path) -> Tracer {
        let dir = workdir.join("tracers").join(label);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(binary, dir.join("bpftrace")).unwrap();
        Tracer { label, dir }
    }
    pub(crate) fn path(&self) -> String {
        self.dir.join("bpftrace").display().to_string()
    }
    pub(crate) fn search_path(&self) -> String {
        format!("{}:{SH_DEFAULT_PATH}", self.dir.display())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pass,
    Fail,
    Timeout,
    /// The engine's SKIP_AOT_NOT_SUPPORTED: the output carried the AOT notice.
    AotSkip,
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) output: String,
    pub(crate) exit: Option<i32>,
    pub(crate) attached: bool,
    /// The failure the engine would print, in one line.
    pub(crate) note: String,
    pub(crate) command: String,
    pub(crate) elapsed: Duration,
}

pub(crate) fn kill_group(pgid: u32, signal: &str) {
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
pub(crate) struct Group(Vec<Child>);

impl Drop for Group {
    fn drop(&mut self) {
        for child in &mut self.0 {
            kill_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }
}

/// `sh -c cmd` in its own process group (the engine: `shell=True, preexec_fn=os.setsid`).
pub(crate) fn shell(cmd: &str, workdir: &Path) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .process_group(0);
    c
}

pub(crate) fn pidof(name: &str) -> Option<String> {
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
pub(crate) fn bpf_call(case: &Case, tracer: &Tracer) -> String {
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

pub(crate) enum Chunk {
    Line(String),
    Eof,
}

/// Python's universal newlines: "\r\n" and "\r" read as "\n"; lines keep their "\n".
pub(crate) fn decode_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// `Runner.run_test` from the BEFORE step on (the skips are decided once, in `host_skip`).
pub(crate) fn run_case(case: &Case, tracer: &Tracer, host: &Host) -> Outcome {
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

pub(crate) struct Job {
    pub(crate) case: usize,
    pub(crate) tracer: usize,
    pub(crate) resources: Vec<String>,
    pub(crate) alone: bool,
}

pub(crate) fn resources_of(case: &Case, host: &Host) -> (Vec<String>, bool) {
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

pub(crate) struct Pool {
    pub(crate) pending: VecDeque<usize>,
    pub(crate) busy: HashMap<String, usize>,
    pub(crate) running: usize,
    pub(crate) alone_running: bool,
}

pub(crate) fn run_jobs(
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
