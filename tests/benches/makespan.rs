//! Makespan of the engine on a simulated 3-manager, 100-worker cluster: every host operation
//! takes a fixed 1 s of (paused, virtual) tokio time; the Kubernetes and MKE 3 APIs answer at
//! once. For each `--max-unavailable`, prints the makespan of the plan, the critical-path lower
//! bound, their ratio, and the speed-up over upgrading workers one at a time (the peer). Exits
//! non-zero when a ratio is above 1.05.
//!
//! `cargo bench -p ferry-tests --bench makespan`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use ferry_core::engine::MaxUnavailable;
use ferry_tests::measure_makespan;

fn main() {
    let latency = Duration::from_secs(1);
    let t = Instant::now();
    let serial = measure_makespan(3, 100, MaxUnavailable::Count(1), latency);
    println!(
        "3 managers, 100 workers, {latency:?} per host operation ({} host operations per run)",
        serial.host_ops
    );
    println!(
        "{:>18} {:>6} {:>12} {:>12} {:>8} {:>10} {:>8}",
        "--max-unavailable", "batch", "makespan", "bound", "ratio", "vs 1-by-1", "wall"
    );
    let mut worst: f64 = 0.0;
    for limit in [
        MaxUnavailable::Count(1),
        MaxUnavailable::Percent(5),
        MaxUnavailable::Count(7),
        MaxUnavailable::Percent(10),
        MaxUnavailable::Count(25),
        MaxUnavailable::Percent(100),
    ] {
        let started = Instant::now();
        let m = measure_makespan(3, 100, limit, latency);
        worst = worst.max(m.ratio());
        println!(
            "{:>18} {:>6} {:>11}s {:>11}s {:>8.4} {:>9.2}x {:>7.2?}",
            m.limit.to_string(),
            m.batch,
            m.makespan.as_secs(),
            m.lower_bound.as_secs(),
            m.ratio(),
            serial.makespan.as_secs_f64() / m.makespan.as_secs_f64(),
            started.elapsed()
        );
    }
    println!("worst ratio {worst:.4}; total {:.2?}", t.elapsed());
    if worst > 1.05 {
        eprintln!("makespan is more than 5% above the critical-path bound");
        std::process::exit(1);
    }
}
