//! The export of a large cluster (5,000 users, 500 teams, 10,000 grants) at the default page size
//! of 10 completes and round-trips equal to the served model. The timed run for
//! `docs/benchmarks.md` is `cargo bench -p ferry-mke3-api --bench export`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use ferry_core::Secret;
use ferry_flow_mke::export_rbac;
use ferry_mke3_api::{Mke3Client, Options};
use ferry_mke3_sim::{Sim, SimOptions, generated_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_users_five_hundred_teams_ten_thousand_grants_round_trip() {
    let model = generated_model(5_000, 50, 500, 10_000);
    assert_eq!(model.accounts.iter().filter(|a| !a.is_org).count(), 5_000);
    assert_eq!(
        model.orgs.values().map(|o| o.teams.len()).sum::<usize>(),
        500
    );
    assert_eq!(model.grants.len(), 10_000);
    let sim = Sim::start(model, SimOptions::default()).await.unwrap();
    let mut o = Options::new(sim.url());
    o.ca_cert_pem = Some(sim.ca_pem().as_bytes().to_vec());
    let so = SimOptions::default();
    let client = Mke3Client::login(o, &so.username, &Secret::new(so.password))
        .await
        .unwrap();
    let started = Instant::now();
    let export = export_rbac(&client, 10).await.unwrap();
    let elapsed = started.elapsed();
    let requests = sim.requests().len();
    println!("export: {requests} requests in {elapsed:.2?}");
    assert!(
        export == sim.model(),
        "the export differs from the served model"
    );
    // Every request asked for a page of 10 (the default) or was a single call.
    assert!(
        sim.requests()
            .iter()
            .filter(|r| r.contains("limit="))
            .all(|r| r.contains("limit=10")),
    );
}
