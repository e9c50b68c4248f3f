//! Per-phase startup timing, for benchmarks: with `RBT_TIMINGS=1` in the environment,
//! each [`phase`] call prints to stderr the milliseconds spent since the previous one on
//! the same thread (and since the process started), so a slow startup can be pinned on
//! one phase. Without the variable every call is one check of a cached flag.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

/// `Some(start)` when timing is on; the first access starts the clock.
static CLOCK: OnceLock<Option<Instant>> = OnceLock::new();

thread_local! {
    /// This thread's previous mark (phases on other threads overlap it).
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

fn clock() -> Option<Instant> {
    *CLOCK.get_or_init(|| {
        let on = std::env::var_os("RBT_TIMINGS").is_some_and(|v| !v.is_empty() && v != "0");
        on.then(Instant::now)
    })
}

/// Starts the clock (call first thing in `main`); a no-op unless `RBT_TIMINGS` is set.
pub fn start() {
    let _ = clock();
}

/// Ends the phase `name`: prints `rbt: timing: NAME X.XX ms (total Y.YY ms)` to stderr.
pub fn phase(name: &str) {
    let Some(start) = clock() else { return };
    let now = Instant::now();
    let last = LAST.with(|l| l.replace(Some(now))).unwrap_or(start);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "rbt: timing: {name} {:.2} ms (total {:.2} ms)",
        ms(now - last),
        ms(now - start)
    );
}
