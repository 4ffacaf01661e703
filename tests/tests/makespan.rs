//! The engine's makespan on a simulated 3-manager, 100-worker cluster with a fixed latency per
//! host operation stays within 5 % of the critical-path lower bound of its plan.

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
