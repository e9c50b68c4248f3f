//! Per-phase startup timing, for benchmarks: with `RBT_TIMINGS=1` in the environment,
//! each [`phase`] call prints to stderr the milliseconds spent since the previous one
//! (and since the process started), so a slow startup can be pinned on one phase.
//! Without the variable every call is one relaxed check of a cached flag.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// `Some(last mark)` when timing is on; the first access starts the clock.
static CLOCK: OnceLock<Option<Mutex<(Instant, Instant)>>> = OnceLock::new();

fn clock() -> Option<&'static Mutex<(Instant, Instant)>> {
    CLOCK
        .get_or_init(|| {
            let on = std::env::var_os("RBT_TIMINGS").is_some_and(|v| !v.is_empty() && v != "0");
            on.then(|| Mutex::new((Instant::now(), Instant::now())))
        })
        .as_ref()
}

/// Starts the clock (call first thing in `main`); a no-op unless `RBT_TIMINGS` is set.
pub fn start() {
    let _ = clock();
}

/// Ends the phase `name`: prints `rbt: timing: NAME X.XX ms (total Y.YY ms)` to stderr.
pub fn phase(name: &str) {
    let Some(clock) = clock() else { return };
    let Ok(mut marks) = clock.lock() else { return };
    let now = Instant::now();
    let (start, last) = *marks;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "rbt: timing: {name} {:.2} ms (total {:.2} ms)",
        ms(now - last),
        ms(now - start)
    );
    marks.1 = now;
}
