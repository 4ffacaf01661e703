//! The engine's makespan on a simulated 3-manager, 100-worker cluster stays within 5 % of the
//! lower bound of its plan: with a fixed latency per host operation (the whole MKE flow on the
//! fakes), and on heterogeneous hosts (synthetic steps, `ferry_tests::window`).

use std::time::Duration;

use ferry_core::engine::MaxUnavailable;
use ferry_tests::measure_makespan;

#[test]
fn makespan_is_within_five_percent_of_the_critical_path_bound() {
    for limit in [
        MaxUnavailable::Percent(10),
        MaxUnavailable::Count(7),
        MaxUnavailable::Count(25),
    ] {
        let m = measure_makespan(3, 100, limit, Duration::from_secs(1));
        println!(
            "--max-unavailable {}: makespan {:?}, bound {:?}, ratio {:.4}",
            m.limit,
            m.makespan,
            m.lower_bound,
            m.ratio()
        );
        assert!(m.ratio() >= 1.0 - 1e-9, "below the bound: {m:?}");
        assert!(m.ratio() <= 1.05, "{m:?}");
    }
}

#[test]
fn on_heterogeneous_hosts_the_slowest_first_window_stays_near_the_bound_and_beats_lockstep() {
    use ferry_tests::window::{Schedule, measure};
    for limit in [MaxUnavailable::Percent(10), MaxUnavailable::Percent(25)] {
        let lock = measure(100, limit, Schedule::Lockstep, 1);
        let win = measure(100, limit, Schedule::WindowListed, 1);
        let slow = measure(100, limit, Schedule::WindowSlowestFirst, 1);
        println!(
            "--max-unavailable {limit}: bound {:?}, lockstep {:.3}x, window {:.3}x, slowest first {:.3}x",
            slow.bound,
            lock.ratio(),
            win.ratio(),
            slow.ratio()
        );
        assert!(slow.ratio() >= 1.0 - 1e-9, "below the bound: {slow:?}");
        assert!(slow.ratio() <= 1.05, "{slow:?}");
        assert!(
            win.makespan <= lock.makespan,
            "window {win:?} vs lockstep {lock:?}"
        );
        assert!(lock.ratio() > 1.5, "lockstep {lock:?}");
    }
    // One at a time, every schedule is the same serial run: the bound, up to the timer's
    // millisecond per sleep.
    let one = measure(
        100,
        MaxUnavailable::Count(1),
        Schedule::WindowSlowestFirst,
        1,
    );
    assert!((one.ratio() - 1.0).abs() < 1e-3, "{one:?}");
}
