//! `username` values: a uid printed as its name, looked up in /etc/passwd as bpftrace
//! 0.17's `resolve_uid` does (an unknown uid prints as the empty string).

/// The name of user `uid` in /etc/passwd, or "" when it has none.
pub fn username(uid: u64) -> String {
    let uid = uid.to_string();
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_string())
        })
        .unwrap_or_default()
}
