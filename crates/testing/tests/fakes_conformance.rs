//! The fakes pass the conformance suites every backend must pass.

use ferry_testing::conformance::host_exec::run_suite;
use ferry_testing::{FakeFaultControl, Fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_host_passes_the_host_exec_conformance_suite() {
    let world = Fixture {
        managers: 1,
        workers: 4,
        ..Fixture::default()
    }
    .build();
    let report = run_suite(&FakeFaultControl::new(&world)).await;
    println!("{report}");
    report.assert_all_passed();
    assert!(report.passed() >= 25, "{}", report.passed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_cluster_passes_the_cluster_api_conformance_suite() {
    let report =
        ferry_testing::conformance::cluster::run_suite(&ferry_testing::FakeClusterSetup).await;
    println!("{report}");
    report.assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_mke3_passes_the_mke3_api_conformance_suite() {
    let report = ferry_testing::conformance::mke3::run_suite(&ferry_testing::FakeMke3Setup).await;
    println!("{report}");
    report.assert_all_passed();
}
