//! The `-c` command: started held at a gate until every probe is attached, killed with
//! everything it started if the session ends first.

use std::os::fd::AsFd;
use std::process::{Child, Command};

use super::error::RuntimeError;
use crate::sys;

/// Starts `sh` for the `-c` command and waits until it is set up (it says so on
/// descriptor 4, so its own start-up is never traced); it then waits on descriptor 3
/// (a pipe) before it execs the command: writing a line to the returned end lets it go
/// (closing it unwritten makes it exit). The command's words are split on single
/// spaces and exec'd as they are, as bpftrace 0.17 does (`split_string(cmd, ' ')`, no
/// shell: quotes stay in the arguments), so the child's pid is the command's (`cpid`).
pub(super) fn spawn_gated(command: &str) -> Result<(Child, std::io::PipeWriter), RuntimeError> {
    let failed = |source| RuntimeError::Command {
        command: command.to_string(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(failed)?;
    let (mut ready, ready_writer) = std::io::pipe().map_err(failed)?;
    let script = "echo >&4; exec 4>&-; read _ <&3 || exit 1; exec 3<&-; exec \"$@\"";
    let spawned = sys::spawn_with_default_signals(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg("rbt")
            .args(command.split(' ')),
        &[reader.as_fd(), ready_writer.as_fd()],
    )
    .map_err(failed)?;
    drop(ready_writer);
    // One line when it is ready, or end of file if it died first (its exit is seen later).
    let mut line = [0u8; 1];
    let _ = std::io::Read::read(&mut ready, &mut line);
    Ok((spawned, writer))
}

/// Whether `path` is an executable file.
pub fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `name` is an executable file in one of the `PATH` directories.
pub fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name))))
}

/// The `-c` command while it runs. Dropped while it still runs (Ctrl-C, `exit()`, a
/// closed or failing output, an error), it is killed with every process it started
/// (`sh -c` forks the command), as bpftrace 0.17 SIGKILLs its child on the way out.
pub(super) struct CommandChild(pub(super) Option<Child>);

impl Drop for CommandChild {
    fn drop(&mut self) {
        let Some(child) = &mut self.0 else {
            return;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        // Stop the whole tree first so nothing forks while it is being killed, then
        // look again for anything that was forked in between.
        let first = descendants(child.id());
        for &pid in &first {
            let _ = sys::kill(pid, libc::SIGSTOP);
        }
        let mut all = descendants(child.id());
        all.extend(first);
        all.sort_unstable();
        all.dedup();
        for &pid in &all {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

/// `root` and all its descendants, from the parent pids in /proc/PID/stat.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|&&(pid, ppid)| ppid == parent && !tree.contains(&pid))
                .map(|&(pid, _)| pid)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    tree
}
