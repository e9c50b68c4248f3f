//! `system()`: run the formatted command as bpftrace 0.17 does (`popen(cmd, "r")`: `sh
//! -c`, stdin and stderr shared with the tracer) and wait for it; what it writes to
//! stdout is the message. Events wait meanwhile, as in bpftrace.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The command's standard output (empty when `sh` cannot be started, after saying so
/// on stderr).
pub fn run(command: &[u8]) -> Vec<u8> {
    // popen's argv: `sh -c CMD`.
    let out = Command::new("/bin/sh")
        .arg0("sh")
        .arg("-c")
        .arg(OsStr::from_bytes(command))
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(out) => out.stdout,
        Err(e) => {
            eprintln!("ERROR: system(): cannot run /bin/sh: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn captures_stdout_through_sh() {
        assert_eq!(super::run(b"echo hi 5; printf x"), b"hi 5\nx");
    }
}
