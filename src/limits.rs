//! Limits and sizes bpftrace reads from its environment (`BPFTRACE_*`), with its checks
//! and its messages.

use rbt::sema;

/// bpftrace's words for a value that is not a number it takes.
fn invalid(var: &str) -> String {
    format!("rbt: Env var '{var}' did not contain a valid uint64_t, or was zero-valued.\n")
}

/// A limit from the environment as bpftrace reads one (`get_uint64_env_var`; 0 is taken).
pub fn env_limit(var: &str, default: u64) -> Result<u64, String> {
    match std::env::var(var) {
        Err(_) => Ok(default),
        Ok(v) => v.trim().parse::<u64>().map_err(|_| invalid(var)),
    }
}

/// bpftrace's `BPFTRACE_MAX_PROBES` (default 512): the most attach points a session may
/// have, checked before anything is loaded, with bpftrace's message.
pub fn check_probe_limit(compiled: &rbt::codegen::Compiled) -> Result<(), String> {
    const VAR: &str = "BPFTRACE_MAX_PROBES";
    let limit = env_limit(VAR, 512)?;
    let probes = rbt::runtime::probe_count(&compiled.programs);
    if probes == 0 {
        // bpftrace 0.17 says so on stdout and fails (every attach point was dropped).
        println!("No probes to attach");
        return Err(String::new());
    }
    if probes as u64 > limit {
        return Err(format!(
            "rbt: Can't attach to {probes} probes because it exceeds the current limit of {limit} probes.\n\
             You can increase the limit through the {VAR} environment variable, but BE CAREFUL \
             since a high number of probes attached can cause your system to crash.\n"
        ));
    }
    Ok(())
}

/// `BPFTRACE_STRLEN`: bytes of a `str()` value, as bpftrace 0.17 reads and limits it.
pub fn str_size() -> Result<usize, String> {
    const VAR: &str = "BPFTRACE_STRLEN";
    match std::env::var(VAR) {
        Err(_) => Ok(sema::STRING_SIZE),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 200 => Err(format!(
                "rbt: '{VAR}' {n} exceeds the current maximum of 200 bytes.\n\
                 This limitation is because strings are currently stored on the 512 byte BPF stack.\n\
                 Long strings will be pursued in: https://github.com/iovisor/bpftrace/issues/305\n"
            )),
            Ok(n) if n > 0 => Ok(n as usize),
            _ => Err(invalid(VAR)),
        },
    }
}

/// `BPFTRACE_CAT_BYTES_MAX`: bytes `cat()` prints of a file (bpftrace reads it with
/// `istream >> uint64_t`: leading digits count, zero is allowed).
pub fn cat_bytes_max() -> Result<u64, String> {
    const VAR: &str = "BPFTRACE_CAT_BYTES_MAX";
    match std::env::var(VAR) {
        Err(_) => Ok(rbt::output::CAT_BYTES_MAX),
        Ok(v) => {
            let v = v.trim_start();
            let digits = v.len() - v.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            v[..digits].parse::<u64>().map_err(|_| invalid(VAR))
        }
    }
}

/// `BPFTRACE_MAP_KEYS_MAX`: entries per map, as bpftrace reads it (0: the default).
pub fn map_keys_max() -> Result<u32, String> {
    const VAR: &str = "BPFTRACE_MAP_KEYS_MAX";
    match std::env::var(VAR) {
        Err(_) => Ok(0),
        Ok(v) => match v.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(invalid(VAR)),
        },
    }
}
