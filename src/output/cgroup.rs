//! `cgroup_path()` values as text, found as bpftrace 0.17 finds them when it prints one
//! (`utils.cpp` `get_cgroup_paths`): every cgroup hierarchy mounted (`/proc/mounts`
//! lines whose device is `cgroup` or `cgroup2`), named by its mount directory (cgroup
//! v1) or `unified` (v2), kept when the name matches the filter (a wildcard pattern),
//! searched for the directory whose inode is the cgroup id; `name:path` for each found,
//! `unified` first then by name, joined by `,`.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Paths found before, by (cgroup id, hierarchy root): checked again before use, as
/// bpftrace's cache is (a cgroup may be removed and its inode reused).
static FOUND: Mutex<Option<HashMap<(u64, PathBuf), PathBuf>>> = Mutex::new(None);

/// A `cgroup_path()` value (u64 cgroup id, then the NUL-padded filter) as text.
pub fn paths(bytes: &[u8]) -> String {
    let id = bytes
        .get(..8)
        .map_or(0, |w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
    let filter = bytes.get(8..).unwrap_or_default();
    let end = filter.iter().position(|&b| b == 0).unwrap_or(filter.len());
    let filter = String::from_utf8_lossy(&filter[..end]);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut roots: Vec<(String, PathBuf)> = hierarchies(&mounts)
        .into_iter()
        .filter(|(name, _)| crate::probes::wildcard::matches(&filter, name))
        .collect();
    roots.sort_by(|a, b| (a.0 != "unified", &a.0).cmp(&(b.0 != "unified", &b.0)));
    let found: Vec<String> = roots
        .iter()
        .filter_map(|(name, root)| Some(format!("{name}:{}", path_in(id, root)?)))
        .collect();
    found.join(",")
}

/// The mounted hierarchies: (name, mount point).
fn hierarchies(mounts: &str) -> Vec<(String, PathBuf)> {
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let device = fields.next()?;
            let dir = PathBuf::from(fields.next()?);
            let name = match device {
                "cgroup2" => "unified".to_string(),
                "cgroup" => dir.file_name()?.to_string_lossy().into_owned(),
                _ => return None,
            };
            Some((name, dir))
        })
        .collect()
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The path below `root` of the cgroup whose directory has inode `id` (`/` for the
/// root itself), searched depth first in directory order as bpftrace searches.
fn path_in(id: u64, root: &Path) -> Option<String> {
    let key = (id, root.to_path_buf());
    let mut cache = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(dir) = cache.get(&key) {
        if inode(dir) == Some(id) {
            return Some(relative(dir, root));
        }
    }
    let dir = if inode(root) == Some(id) {
        root.to_path_buf()
    } else {
        search(id, root)?
    };
    let text = relative(&dir, root);
    cache.insert(key, dir);
    Some(text)
}

fn relative(dir: &Path, root: &Path) -> String {
    match dir.strip_prefix(root) {
        Ok(rest) if rest.as_os_str().is_empty() => "/".to_string(),
        Ok(rest) => format!("/{}", rest.display()),
        Err(_) => dir.display().to_string(),
    }
}

fn search(id: u64, dir: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if inode(&path) == Some(id) {
            return Some(path);
        }
        // Directories only, not followed through symlinks (as the C++ iterator walks).
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(found) = search(id, &path) {
                return Some(found);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_are_named_as_bpftrace_names_them() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
                      cgroup2x /x cgroup2 rw 0 0\n";
        let names: Vec<String> = hierarchies(mounts).into_iter().map(|h| h.0).collect();
        assert_eq!(names, ["cpu", "unified"]);
    }
}
