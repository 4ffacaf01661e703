//! The worker schedules side by side on heterogeneous hosts (3 managers, 100 workers, per-host
//! latency from a fixed-seed lognormal with σ = 0.6, one host in twenty ten times slower, five
//! steps per host; paused tokio time): the older lockstep batches, the sliding window in list
//! order, the window slowest first (by an estimate off by up to ±30 %), and the lower bound
//! `managers + max(longest worker chain, total worker work / width)`. Exits non-zero when the
//! slowest-first window is more than 5 % above the bound.
//!
//! `cargo bench -p ferry-tests --bench window`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use ferry_core::engine::MaxUnavailable;
use ferry_tests::window::{Schedule, measure};

fn main() {
    let started = std::time::Instant::now();
    println!(
        "3 managers, 100 workers, lognormal(sigma 0.6) per-host latency, 1 in 20 hosts x10, seeds 1-5"
    );
    println!(
        "{:>18} {:>6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "--max-unavailable",
        "seed",
        "bound",
        "lockstep",
        "window",
        "slowest1st",
        "lock/bnd",
        "win/bnd",
        "slow/bnd"
    );
    let mut worst: f64 = 0.0;
    for limit in [
        MaxUnavailable::Count(1),
        MaxUnavailable::Percent(10),
        MaxUnavailable::Percent(25),
    ] {
        for seed in 1..=5u64 {
            let lock = measure(100, limit, Schedule::Lockstep, seed);
            let win = measure(100, limit, Schedule::WindowListed, seed);
            let slow = measure(100, limit, Schedule::WindowSlowestFirst, seed);
            worst = worst.max(slow.ratio());
            println!(
                "{:>18} {:>6} {:>9.0}s {:>9.0}s {:>9.0}s {:>9.0}s {:>9.3} {:>9.3} {:>9.3}",
                limit.to_string(),
                seed,
                slow.bound.as_secs_f64(),
                lock.makespan.as_secs_f64(),
                win.makespan.as_secs_f64(),
                slow.makespan.as_secs_f64(),
                lock.ratio(),
                win.ratio(),
                slow.ratio()
            );
        }
    }
    println!(
        "worst slowest-first window / bound: {worst:.4}; wall {:.2?}",
        started.elapsed()
    );
    if worst > 1.05 {
        eprintln!("the slowest-first window is more than 5% above the bound");
        std::process::exit(1);
    }
}
