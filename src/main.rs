//! `rbt`: command line front door. Parses flags (bpftrace-compatible where bpftrace has
//! the flag), runs the pipeline stage by stage, and renders every error once, here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rbt::output::helper_error::Script;
use rbt::output::{BufferMode, OutputFormat, Printer};
use rbt::probes::early::Early;
use rbt::{btf, codegen, diag, parser, runtime, sema, timings};

mod early;
mod limits;

/// The help text: bpftrace's layout (`USAGE:`, then the options), rbt's options.
const HELP: &str = "\
USAGE:
    {usage}
    {bin} [options] - <stdin input>
    {bin} [options] -e 'program'

OPTIONS:
{options}

{about}
";

#[derive(Parser, Debug)]
#[command(
    name = "rbt",
    disable_version_flag = true,
    help_template = HELP,
    about = "A bpftrace-compatible tracer: BTF-typed, emits eBPF directly, no LLVM"
)]
struct Cli {
    /// Script file to run (bpftrace dialect); with -l, the probes to list
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Positional parameters for the script ($1, $2, ...)
    #[arg(value_name = "ARG")]
    params: Vec<String>,
    /// Program text to run instead of a file
    #[arg(short = 'e', value_name = "PROGRAM")]
    program: Option<String>,
    /// Print a compiler stage and exit: `ast` or `codegen`
    #[arg(short = 'd', value_name = "STAGE")]
    debug: Option<DebugStage>,
    /// Write output to FILE instead of stdout
    #[arg(short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format: text or json
    #[arg(short = 'f', value_name = "FORMAT", default_value = "text", value_parser = str::parse::<OutputFormat>)]
    format: OutputFormat,
    /// Output buffering: none, line or full
    #[arg(short = 'B', value_name = "MODE", default_value = "line", value_parser = str::parse::<BufferMode>)]
    buffering: BufferMode,
    /// Keep messages quiet (no "Attaching N probes...")
    #[arg(short = 'q')]
    quiet: bool,
    /// Only trace events of this process id; exit when it exits
    #[arg(short = 'p', value_name = "PID", value_parser = parse_pid)]
    pid: Option<u32>,
    /// Run CMD, trace while it runs, exit when it exits
    #[arg(short = 'c', value_name = "CMD")]
    command: Option<String>,
    /// Report failed helper calls as bpftrace does: -k map updates, deletes and the
    /// like, -kk also reads and map lookups
    #[arg(short = 'k', action = clap::ArgAction::Count)]
    helper_checks: u8,
    /// Include this C header before the script (bpftrace's --include; rbt reads no
    /// header files: a known header gives its macros, as `#include <FILE>` does)
    #[arg(long = "include", value_name = "FILE")]
    include: Vec<String>,
    /// Print what rbt detects of this system and kernel, and exit
    #[arg(long = "info")]
    info: bool,
    /// Load and verify every program, attach nothing, exit
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Allow unsafe builtin functions (system, signal)
    #[arg(long = "unsafe")]
    allow_unsafe: bool,
    /// List the probes FILE names as a pattern (all without one), like bpftrace -l
    #[arg(short = 'l', conflicts_with = "program")]
    list: bool,
    /// Verbose: with -l, each tracepoint's fields
    #[arg(short = 'v')]
    verbose: bool,
    /// Kernel BTF to read types from
    #[arg(
        long = "btf",
        value_name = "FILE",
        default_value = early::DEFAULT_BTF
    )]
    btf: PathBuf,
    /// Serve the maps as Prometheus metrics on http://ADDR/metrics while tracing
    /// (`:9435`, `127.0.0.1:9435`, `[::1]:9435`)
    #[arg(long = "metrics", value_name = "ADDR")]
    metrics: Option<String>,
    /// With --metrics: the most keys of one map exported per scrape (the rest are counted
    /// in rbt_metrics_dropped_series_total)
    #[arg(long = "metrics-max-series", value_name = "N", default_value_t = rbt::metrics::DEFAULT_MAX_SERIES)]
    metrics_max_series: usize,
    /// With -f json: wrap each line with host, timestamps and typed keys (docs/JSON.md)
    #[arg(long = "json-envelope")]
    json_envelope: bool,
    /// Print the version, as bpftrace does (`bpftrace v0.17.0`), with rbt's own
    #[arg(short = 'V', long = "version")]
    version: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DebugStage {
    Ast,
    Codegen,
}

fn main() -> ExitCode {
    timings::start();
    let btf = early::prefetch_btf(std::env::args_os());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return flag_error(&e),
    };
    match run(cli, btf) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { text, code }) => {
            eprint!("{text}");
            ExitCode::from(code)
        }
    }
}

/// An error's text for stderr and the exit code (bpftrace's: 1, or 255 for a script
/// file it cannot open).
struct Failure {
    text: String,
    code: u8,
}

impl From<String> for Failure {
    fn from(text: String) -> Failure {
        Failure { text, code: 1 }
    }
}

/// The help text, printed on stderr as bpftrace prints its usage.
fn usage() -> String {
    use clap::CommandFactory;
    Cli::command().render_help().to_string()
}

/// Fails with `message` (if any) and the usage, as bpftrace does for a wrong command line.
fn usage_failure(message: &str) -> Failure {
    Failure {
        text: format!("{message}{}", usage()),
        code: 1,
    }
}

/// A command line clap rejects: `-h` is the usage on stderr (exit 0); a bad value is
/// bpftrace's one-line `ERROR:` (`-p`, `-f`, `-B`); anything else its first line and
/// the usage (exit 1).
fn flag_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp => {
            eprint!("{}", usage());
            return ExitCode::SUCCESS;
        }
        ErrorKind::ValueValidation => {
            if let Some(why) = std::error::Error::source(e) {
                eprintln!("ERROR: {why}");
                return ExitCode::from(1);
            }
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprint!("{}", usage_failure(&format!("rbt: {first}\n\n")).text);
    ExitCode::from(1)
}

/// The script's text. Invalid UTF-8 is accepted inside comments (as bpftrace does);
/// in a string literal it is a spanned error (bpftrace keeps such bytes raw, rbt's
/// strings are UTF-8), anywhere else the file is taken for not being text.
fn decode_script(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    let shown = parser::source::lossy(&bytes);
    match parser::source::decode(bytes) {
        Ok(text) => Ok(text),
        Err(e) if e.in_string => {
            let message = "invalid UTF-8 in a string literal (rbt's strings must be UTF-8 text)";
            let at = diag::Span::new(e.offset, e.offset + 1);
            Err(diag::render(
                name,
                &shown,
                &[diag::Diagnostic::error(at, message)],
            ))
        }
        Err(e) => Err(format!(
            "rbt: {name}: not a text file (invalid UTF-8 at byte {})\n",
            e.offset
        )),
    }
}

/// bpftrace 0.17's `parse_pid` (src/utils.cpp): a decimal in `[1, 4194304]` (the
/// kernel's `PID_MAX_LIMIT`), with its messages.
fn parse_pid(s: &str) -> Result<u32, String> {
    const PID_MAX: i64 = 4 * 1024 * 1024;
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("pid '{s}' is not a valid decimal number"));
    }
    let pid: i64 = s
        .parse()
        .map_err(|_| format!("pid '{s}' outside of integer range"))?;
    if !(1..=PID_MAX).contains(&pid) {
        // `-p 0`, `-p -5`: bpftrace's words.
        return Err(format!("pid '{s}' out of valid pid range [1,{PID_MAX}]"));
    }
    Ok(pid as u32)
}

/// The `-p` process, as a pidfd the session polls to end when the process exits.
/// Checked before the script is read, as bpftrace does.
fn watch_pid(pid: u32) -> Result<std::os::fd::OwnedFd, String> {
    rbt::sys::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => format!("rbt: -p {pid}: no such process\n"),
        _ => format!("rbt: -p {pid}: cannot watch the process: {e}\n"),
    })
}

/// Refuses a `-c` command whose program does not exist or is not executable, before
/// anything is attached, as bpftrace 0.17 does (`ERROR: Failed to fork child: path
/// '/nonexistent' does not exist or is not executable`). Its first word (split on
/// single spaces, as the command is run) is the program.
fn check_command(command: &str) -> Result<(), String> {
    let program = command.split(' ').next().unwrap_or_default();
    if program.is_empty() {
        return Err("rbt: -c: the command is empty\n".into());
    }
    let found = if program.contains('/') {
        runtime::is_executable(Path::new(program))
    } else {
        runtime::on_path(program)
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "rbt: -c: path '{program}' does not exist or is not executable\n"
        ))
    }
}

/// Writes a `-d` stage's text to `-o FILE` or stdout. A closed pipe ends quietly, as
/// during tracing; any other write error (a full disk) is an error.
fn write_stage(output: Option<&Path>, text: &str) -> Result<(), String> {
    let written = match output {
        Some(path) => std::fs::File::create(path)
            .map_err(|e| format!("rbt: cannot write output file {}: {e}\n", path.display()))?
            .write_all(text.as_bytes())
            .map_err(|e| (e, Some(path))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| (e, None))
        }
    };
    match written {
        Ok(()) => Ok(()),
        Err((e, _)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err((e, Some(path))) => Err(format!(
            "rbt: cannot write output file {}: {e}\n",
            path.display()
        )),
        Err((e, None)) => Err(format!("rbt: cannot write output: {e}\n")),
    }
}

/// `--version`: bpftrace's form first, which wrappers match at the start of the output
/// (PCP's pmdabpftrace: `bpftrace v(\d+)\.(\d+)\.(\d+)`, or `v(\d+)...` after the first
/// word), so they read the bpftrace version rbt is compatible with; then rbt's own.
fn version_line() -> String {
    format!(
        "bpftrace v{} (rbt v{}, compatible with bpftrace {})\n",
        rbt::BPFTRACE_COMPAT,
        env!("CARGO_PKG_VERSION"),
        rbt::BPFTRACE_COMPAT
    )
}

/// The command-line checks bpftrace makes after reading its flags, with its messages.
fn check_flags(cli: &Cli) -> Result<(), Failure> {
    if cli.helper_checks >= 3 {
        return Err(usage_failure(""));
    }
    if cli.command.is_some() && cli.pid.is_some() {
        return Err(usage_failure("ERROR: USAGE: Cannot use both -c and -p.\n"));
    }
    if cli.list && !cli.params.is_empty() {
        return Err(usage_failure("")); // -l takes one pattern at most
    }
    if !cli.list && cli.file.is_none() && cli.program.is_none() {
        if std::env::args_os().len() == 1 {
            return Err(usage_failure(""));
        }
        return Err("ERROR: USAGE: filename or -e 'program' required.\n"
            .to_string()
            .into());
    }
    if let (Some(path), None, false) = (&cli.file, &cli.program, cli.list) {
        if path.as_os_str() != "-" {
            if let Err(e) = std::fs::File::open(path) {
                let e = e.to_string();
                let e = e.split(" (os error").next().unwrap_or(&e);
                return Err(Failure {
                    text: format!("ERROR: failed to open file '{}': {e}\n", path.display()),
                    code: 255,
                });
            }
        }
    }
    Ok(())
}

/// Runs the pipeline; an `Err` is the complete text to print on stderr.
///
/// `btf`: kernel BTF [`early::prefetch_btf`] began reading, and its file.
fn run(cli: Cli, btf: Option<(PathBuf, btf::Lazy<'static>)>) -> Result<(), Failure> {
    if cli.version {
        return Ok(write_stage(None, &version_line())?);
    }
    if cli.info {
        // On stderr, where bpftrace prints it.
        eprint!("{}", rbt::info::report(&cli.btf));
        return Ok(());
    }
    check_flags(&cli)?;
    limits::env_limit("BPFTRACE_MAX_BPF_PROGS", 512)?;
    if cli.json_envelope && cli.format != OutputFormat::Json {
        return Err("rbt: --json-envelope wraps JSON lines: it needs -f json\n"
            .to_string()
            .into());
    }
    if cli.list {
        return Ok(list_probes(&cli)?);
    }
    let metrics = cli
        .metrics
        .as_deref()
        .map(|addr| rbt::metrics::bind(addr, cli.metrics_max_series))
        .transpose()?;
    let watch = cli.pid.map(watch_pid).transpose()?;
    if let Some(command) = &cli.command {
        check_command(command)?;
    }
    // The later passes recurse once per level of the AST, which the parser lets grow
    // to thousands of levels (long operator and `else if` chains), so they run on a
    // thread with room for that; the session stays on the main thread (signals).
    let mut premade = runtime::Premade::default();
    let compiled = std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("rbt-compile".into())
            .stack_size(COMPILE_STACK);
        match worker.spawn_scoped(scope, || compile(&cli, btf)) {
            Ok(handle) => {
                // Meanwhile this thread creates the maps every program has.
                if cli.debug.is_none() {
                    premade = runtime::Premade::create();
                }
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }
            Err(_) => compile(&cli, None),
        }
    })?;
    let Some((compiled, script, early)) = compiled else {
        return Ok(()); // -d printed its stage
    };
    limits::check_probe_limit(&compiled)?;

    let writer: Box<dyn std::io::Write> = match &cli.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| format!("rbt: cannot write output file {}: {e}\n", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut printer = Printer::new(writer, cli.format);
    printer.set_buffer_mode(cli.buffering);
    printer.set_quiet(cli.quiet);
    printer.set_script(script);
    if cli.json_envelope {
        printer.set_envelope(rbt::output::envelope::Envelope::new());
    }
    printer.set_cat_bytes_max(limits::cat_bytes_max()?);
    let options = runtime::RunOptions {
        dry_run: cli.dry_run,
        command: cli.command.clone(),
        watch,
        metrics,
        early,
        premade,
    };
    runtime::run(&compiled, &options, &mut printer).map_err(|e| {
        Failure::from(match (e, &cli.output) {
            (runtime::RuntimeError::Output(e), Some(path)) => {
                format!("rbt: cannot write output file {}: {e}\n", path.display())
            }
            (e, _) => format!("rbt: {e}\n"),
        })
    })
}

/// Stack for [`compile`]: sema and codegen of a 4096-level AST need about 30 MiB in a
/// debug build. Only the pages used are ever touched.
const COMPILE_STACK: usize = 256 << 20;

/// Reads, parses, checks and compiles the script; `None` when `-d` printed a stage.
fn compile(
    cli: &Cli,
    prefetched: Option<(PathBuf, btf::Lazy<'static>)>,
) -> Result<Option<(codegen::Compiled, Script, Option<Early>)>, String> {
    let str_size = limits::str_size()?;
    // With -e, every word after the options is a parameter (clap gives the first to FILE).
    let params: Vec<String> = match (&cli.program, &cli.file) {
        (Some(_), Some(first)) => std::iter::once(first.to_string_lossy().into_owned())
            .chain(cli.params.iter().cloned())
            .collect(),
        _ => cli.params.clone(),
    };
    let (name, src) = match (&cli.file, &cli.program) {
        (_, Some(program)) => ("stdin".to_string(), program.clone()),
        (Some(path), None) => {
            // `-` is the script on stdin, as in bpftrace (which calls it `stdin`).
            let (name, read) = if path.as_os_str() == "-" {
                let mut bytes = Vec::new();
                let read = std::io::stdin().read_to_end(&mut bytes).map(|_| bytes);
                ("stdin".to_string(), read)
            } else {
                (path.display().to_string(), std::fs::read(path))
            };
            let bytes = read.map_err(|e| format!("rbt: {name}: {e}\n"))?;
            (name.clone(), decode_script(&name, bytes)?)
        }
        (None, None) => return Err("ERROR: USAGE: filename or -e 'program' required.\n".into()),
    };
    let errors = |diags: Vec<diag::Diagnostic>| diag::render(&name, &src, &diags);
    timings::phase("read script");
    // Kernel BTF is read only if the script needs a kernel type (if that read failed,
    // it is the error to report, not the lookups that failed after it); beside parsing
    // (begun before the flags were parsed, or now) for a script that likely will.
    let btf = match prefetched {
        Some((path, btf)) if path == cli.btf => btf,
        _ if early::likely_reads_kernel_types(&src) => btf::Lazy::prefetch(cli.btf.clone()),
        _ => btf::Lazy::file(cli.btf.clone()),
    };

    if let Some(header) = cli.include.iter().find(|h| !parser::known_header(h)) {
        // bpftrace 0.17's (clang's) words.
        return Err(format!(
            "fatal error: '{header}' file not found\nnote: {}\n",
            parser::headers_note()
        ));
    }
    let mut ast = parser::parse_script(&src, &params, &cli.include).map_err(errors)?;
    ast.params = params;
    ast.str_size = str_size;
    ast.child = cli.command.is_some();
    ast.allow_unsafe = cli.allow_unsafe;
    ast.pid = cli.pid;
    timings::phase("parse");
    if let Some(DebugStage::Ast) = cli.debug {
        return write_stage(cli.output.as_deref(), &parser::dump(&ast)).map(|()| None);
    }
    // Kprobes named in the script are registered beside sema and codegen, once the BTF
    // read is over (it is, or will be soon: the script likely reads kernel types).
    let early = match cli.debug.is_none() && !cli.dry_run {
        true => btf.when_read().and_then(|read| Early::start(&ast, read)),
        false => None,
    };
    let mut typed = sema::analyze(&ast, &btf);
    if let Some(e) = btf.error() {
        return Err(format!("rbt: {e}\n"));
    }
    // A kernel type vmlinux lacks may be a module's: bpftrace reads every loaded
    // module's BTF too. rbt appends them to the vmlinux BTF it has read only for a
    // script that fails without them.
    let modules = match typed.is_err() && btf.was_read() {
        true => btf::module_files(&cli.btf),
        false => Vec::new(),
    };
    if !modules.is_empty() {
        let merged = btf
            .with_modules(&modules)
            .map_err(|e| format!("rbt: {e}\n"))?;
        typed = sema::analyze(&ast, &(&merged).into());
    }
    let typed = typed.map_err(errors)?;
    eprint!("{}", diag::render(&name, &src, &typed.warnings));
    timings::phase("sema");
    let options = codegen::CompileOptions {
        pid_filter: cli.pid,
        map_entries: limits::map_keys_max()?,
        helper_checks: cli.helper_checks,
    };
    let compiled = codegen::compile(&typed, &options).map_err(errors)?;
    timings::phase("codegen");
    if let Some(DebugStage::Codegen) = cli.debug {
        return write_stage(cli.output.as_deref(), &codegen::disasm(&compiled, &src))
            .map(|()| None);
    }
    // The kernel types are the biggest allocation; they are freed here, before the
    // session, so they and the ring buffer never count together in the peak RSS.
    Ok(Some((compiled, Script { name, text: src }, early)))
}

/// `-l [PATTERN]`: the matching probes on stdout, warnings (an unreadable list) on stderr.
fn list_probes(cli: &Cli) -> Result<(), String> {
    let pattern = cli.file.as_ref().map(|p| p.to_string_lossy().into_owned());
    if let Some(pid) = cli.pid {
        watch_pid(pid)?;
    }
    let query = rbt::probes::ListQuery {
        pid: cli.pid,
        verbose: cli.verbose,
        ignore_invalid: false,
    };
    let (listing, warnings) = rbt::probes::list::list(pattern.as_deref(), &query)?;
    eprint!("{warnings}");
    write_stage(cli.output.as_deref(), &listing)
}
