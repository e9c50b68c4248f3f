//! `--metrics ADDR`: the live `@maps` as Prometheus metrics on `http://ADDR/metrics`
//! while the script runs (format in `text.rs`). The socket is bound at startup, so a bad
//! address or a port in use is one error before anything is loaded; serving starts once
//! the probes are attached, on threads of its own (tracing never waits for a scrape,
//! except `print`/`clear`/`zero`, which share [`Serving::lock`] with the scrapes), and
//! stops before the maps are printed at exit, so that output is untouched.

mod http;
mod text;

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::codegen::{Compiled, MapRole, MapSpec};
use crate::runtime::maps::dump_with_sums;
use crate::sys;

/// Series per map by default (`--metrics-max-series`).
pub const DEFAULT_MAX_SERIES: usize = 10_000;

/// A bound `--metrics` socket, waiting for the session.
#[derive(Debug)]
pub struct Endpoint {
    listener: TcpListener,
    /// Keys per map exported in one scrape; the rest are counted as dropped.
    pub max_series: usize,
}

/// Binds `ADDR`: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every interface (as Go's
/// listeners, which ebpf_exporter uses). The error is the whole message.
pub fn bind(addr: &str, max_series: usize) -> Result<Endpoint, String> {
    let bad = |why: &str| {
        format!(
            "rbt: --metrics {addr}: {why} (expected HOST:PORT, [IPv6]:PORT or :PORT, e.g. :9435)\n"
        )
    };
    let candidates: Vec<SocketAddr> = match addr.strip_prefix(':') {
        Some(port) => {
            let port: u16 = port.parse().map_err(|_| bad("not a port number"))?;
            // Dual-stack where IPv6 exists, else IPv4 only.
            vec![
                SocketAddr::from(([0u16; 8], port)),
                SocketAddr::from(([0u8; 4], port)),
            ]
        }
        None => addr
            .to_socket_addrs()
            .map_err(|e| bad(&format!("not an address: {e}")))?
            .collect(),
    };
    let mut last = None;
    for candidate in &candidates {
        match TcpListener::bind(candidate) {
            Ok(listener) => {
                listener
                    .set_nonblocking(true)
                    .map_err(|e| format!("rbt: --metrics {addr}: {e}\n"))?;
                return Ok(Endpoint {
                    listener,
                    max_series,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => format!("rbt: --metrics {addr}: cannot listen: {e}\n"),
        None => bad("resolves to no address"),
    })
}

impl Endpoint {
    /// Where it listens (`:0` picks a free port).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// What a scrape reads: copies of the map descriptors, so the server owns what it uses.
struct Sources {
    maps: Vec<(MapSpec, OwnedFd)>,
    probes: usize,
    max_series: usize,
    /// Series left out of scrapes so far, per map name.
    dropped: Mutex<HashMap<String, u64>>,
}

/// State shared by the accept thread, the connections and the session.
struct Shared {
    sources: Sources,
    /// Held while maps are read; set `stopped` under it and no scrape reads again.
    lock: Mutex<()>,
    stopped: AtomicBool,
}

/// The running server; dropping it stops it (see [`Serving::stop`]).
pub struct Serving {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Serving {
    /// Starts serving `compiled`'s maps (`fds` in catalog order) on `endpoint`.
    pub fn start(
        endpoint: &Endpoint,
        compiled: &Compiled,
        fds: &[OwnedFd],
        probes: usize,
    ) -> std::io::Result<Serving> {
        let mut maps = Vec::new();
        for (spec, fd) in compiled.maps.iter().zip(fds) {
            if matches!(spec.role, MapRole::User(_) | MapRole::Lost | MapRole::Drops) {
                maps.push((spec.clone(), fd.try_clone()?));
            }
        }
        let shared = Arc::new(Shared {
            sources: Sources {
                maps,
                probes,
                max_series: endpoint.max_series,
                dropped: Mutex::new(HashMap::new()),
            },
            lock: Mutex::new(()),
            stopped: AtomicBool::new(false),
        });
        let listener = endpoint.listener.try_clone()?;
        let for_thread = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("rbt-metrics".into())
            .spawn(move || http::accept_loop(listener, for_thread))?;
        Ok(Serving {
            shared,
            accept: Some(accept),
        })
    }

    /// Excludes scrapes while the session changes or prints maps.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.shared.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops accepting and waits for a scrape in progress to finish reading maps; after
    /// this no scrape reads them (connections still open get 503).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        {
            let _held = self.lock();
            self.shared.stopped.store(true, Ordering::SeqCst);
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The whole exposition now; `None` once stopped. The maps are read under the lock,
/// the text is written after it is released, so `print`/`clear` wait only for reads.
fn scrape(shared: &Shared) -> Option<String> {
    let src = &shared.sources;
    let (mut lost, mut drops) = (0u64, 0u64);
    let mut read = Vec::new();
    {
        let _held = shared.lock.lock().unwrap_or_else(|p| p.into_inner());
        if shared.stopped.load(Ordering::SeqCst) {
            return None;
        }
        for (spec, fd) in &src.maps {
            match &spec.role {
                MapRole::User(user) => read.push((user, dump_with_sums(spec, user, fd.as_fd()))),
                MapRole::Lost => lost = read_sum(spec, fd, 0),
                MapRole::Drops => drops = read_sum(spec, fd, 0),
                // Not copied by `start`: nothing of them is exported.
                MapRole::Events
                | MapRole::Scratch
                | MapRole::Runtime
                | MapRole::Stack(_)
                | MapRole::ProbeNames(_) => {}
            }
        }
    }
    let mut out = String::new();
    let mut taken = std::collections::HashSet::new();
    let mut dropped = src.dropped.lock().unwrap_or_else(|p| p.into_inner());
    for (user, dumped) in read {
        let name = text::metric_name(&user.name, &mut taken);
        match dumped {
            Ok((dump, sums)) => {
                let labels = &user.labels;
                let left_out = text::family(&mut out, &name, &dump, labels, &sums, src.max_series);
                *dropped.entry(user.name.clone()).or_insert(0) += left_out;
            }
            Err(e) => {
                let _ = writeln!(out, "# {name}: cannot read {}: {e}", user.name);
            }
        }
    }
    own_metrics(&mut out, src.probes, lost, drops, &dropped);
    Some(out)
}

fn own_metrics(
    out: &mut String,
    probes: usize,
    lost: u64,
    drops: u64,
    dropped: &HashMap<String, u64>,
) {
    let version = env!("CARGO_PKG_VERSION");
    let bpftrace = crate::BPFTRACE_COMPAT;
    let _ = write!(
        out,
        "# HELP rbt_build_info rbt's version and the bpftrace version it is compatible with\n\
         # TYPE rbt_build_info gauge\n\
         rbt_build_info{{version=\"{version}\",bpftrace=\"{bpftrace}\"}} 1\n\
         # HELP rbt_probes_attached Attach points of the running script\n\
         # TYPE rbt_probes_attached gauge\n\
         rbt_probes_attached {probes}\n\
         # HELP rbt_lost_events_total Events the kernel could not queue (ring buffer full)\n\
         # TYPE rbt_lost_events_total counter\n\
         rbt_lost_events_total {lost}\n\
         # HELP rbt_map_update_drops_total Map updates lost because a map was full\n\
         # TYPE rbt_map_update_drops_total counter\n\
         rbt_map_update_drops_total {drops}\n\
         # HELP rbt_metrics_dropped_series_total Series left out of scrapes by --metrics-max-series\n\
         # TYPE rbt_metrics_dropped_series_total counter\n"
    );
    let mut names: Vec<_> = dropped.iter().collect();
    names.sort();
    for (map, n) in names {
        let _ = writeln!(
            out,
            "rbt_metrics_dropped_series_total{{map=\"{}\"}} {n}",
            map.replace('\\', "\\\\").replace('"', "\\\"")
        );
    }
}

/// A u64 slot summed over CPUs (the lost and drops counters); 0 if unreadable.
fn read_sum(spec: &MapSpec, fd: &OwnedFd, key: u32) -> u64 {
    let slots = if spec.map_type == crate::abi::map_type::PERCPU_ARRAY {
        sys::possible_cpus()
    } else {
        1
    };
    let mut value = vec![0u8; spec.value_size.max(8) as usize * slots];
    match sys::map_lookup_elem(fd.as_fd(), &key.to_ne_bytes(), &mut value) {
        Ok(true) => value
            .chunks_exact(spec.value_size.max(8) as usize)
            .map(|c| u64::from_ne_bytes(c[..8].try_into().unwrap_or_default()))
            .sum(),
        // Not there yet, or unreadable: nothing counted to report.
        Ok(false) | Err(_) => 0,
    }
}
