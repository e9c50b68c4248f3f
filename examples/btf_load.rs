//! Measures BTF load (parse + validate + index) time:
//! `cargo run --release --example btf_load [FILE]` (default: tests/data/vmlinux-6.18.btf).

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("tests/data/vmlinux-6.18.btf"));
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    const RUNS: u32 = 10;
    for _ in 0..RUNS {
        let start = Instant::now();
        let btf = match rbt::btf::Btf::load(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("btf_load: {e}");
                std::process::exit(1);
            }
        };
        let took = start.elapsed();
        std::hint::black_box(&btf);
        best = best.min(took);
        total += took;
    }
    println!(
        "{}: best {:.2?}, mean {:.2?} over {RUNS} loads",
        path.display(),
        best,
        total / RUNS
    );
}
