//! Work begun from a guess at what the command line asks for, before it is parsed.
//!
//! In the emulated 6.1/6.12 VMs, `main()` takes ~30 ms to reach the script (parsing
//! flags is code run for the first time, which TCG translates first), and reading
//! kernel BTF is the longest step of a kprobe script's start. A wrong guess costs time
//! and memory, never a result.

use std::ffi::OsString;
use std::path::PathBuf;

use rbt::btf;

/// `--btf`'s default.
pub const DEFAULT_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Short options that take a value (`-o FILE`), whose value is not the script.
const VALUED: &[&str] = &["-d", "-o", "-f", "-B", "-p", "-c"];
const VALUED_LONG: &[&str] = &["--include", "--metrics", "--metrics-max-series"];

/// Kernel BTF being read (and the file it is read from), if the raw arguments name a
/// script (`-e PROGRAM`, else the first operand) that likely reads kernel types.
pub fn prefetch_btf(
    args: impl IntoIterator<Item = OsString>,
) -> Option<(PathBuf, btf::Lazy<'static>)> {
    let mut args = args.into_iter().skip(1);
    let (mut path, mut program, mut file) = (PathBuf::from(DEFAULT_BTF), None, None);
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            file = file.or(Some(PathBuf::from(arg)));
            continue;
        };
        match text {
            "--" => break,
            "-e" => program = args.next().and_then(|a| a.into_string().ok()),
            "--btf" => path = args.next().map(PathBuf::from)?,
            _ if text.starts_with("--btf=") => path = PathBuf::from(&text[6..]),
            _ if VALUED.contains(&text) || VALUED_LONG.contains(&text) => {
                args.next();
            }
            _ if text.starts_with('-') => {}
            _ => file = file.or_else(|| Some(PathBuf::from(text))),
        }
    }
    let text = match (program, file) {
        (Some(program), _) => program,
        // A script is a few KB; anything large is not one worth guessing from.
        (None, Some(file))
            if std::fs::metadata(&file).is_ok_and(|m| m.is_file() && m.len() < 1 << 20) =>
        {
            std::fs::read_to_string(&file).ok()?
        }
        _ => return None,
    };
    likely_reads_kernel_types(&text).then(|| (path.clone(), btf::Lazy::prefetch(path)))
}

/// Whether the script text names a kprobe (whose function sema looks up in BTF), reads
/// a tracepoint's `args` (typed from BTF), `curtask` or a struct: a guess made before
/// parsing, to start reading BTF early ([`btf::Lazy::prefetch`]).
pub fn likely_reads_kernel_types(src: &str) -> bool {
    let (mut probes, mut args) = (false, false);
    for w in src.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if ["kprobe:", "kretprobe:", "k:", "kr:"]
            .iter()
            .any(|p| w.starts_with(p))
            || w == "curtask"
            || w == "struct"
        {
            return true;
        }
        probes |= w.starts_with("tracepoint:") || w.starts_with("t:");
        args |= w == "args";
        if probes && args {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(args: &[&str]) -> Option<PathBuf> {
        let args = std::iter::once("rbt").chain(args.iter().copied());
        prefetch_btf(args.map(OsString::from)).map(|(path, _)| path)
    }

    #[test]
    fn guesses_from_the_program_or_the_script_operand() {
        let missing = "/nonexistent/vmlinux";
        assert_eq!(guess(&["-e", "kprobe:f { }"]), Some(DEFAULT_BTF.into()));
        assert_eq!(
            guess(&["--btf", missing, "-e", "t:a:b { print(args->x) }"]),
            Some(missing.into())
        );
        assert_eq!(guess(&["-e", "BEGIN { exit() }"]), None);
        assert_eq!(guess(&["-l", "kprobe:*"]), None);
        let dir = std::env::temp_dir().join(format!("rbt-early-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (script, other) = (dir.join("s.bt"), dir.join("o.bt"));
        std::fs::write(&script, "kretprobe:inet_csk_accept { }").unwrap();
        std::fs::write(&other, "BEGIN { }").unwrap();
        let (script, other) = (script.to_str().unwrap(), other.to_str().unwrap());
        // An option's value is not the script; the first operand is.
        assert_eq!(guess(&["-o", other, script]), Some(DEFAULT_BTF.into()));
        assert_eq!(guess(&[other, script]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
