//! `cargo bench -p ferry-mke3-api --bench export`: the export of 5,000 users, 500 teams (in 50
//! organisations) and 10,000 grants from the in-process MKE 3 server over HTTPS, at MKE's
//! default page size of 10, checked equal to the served model.
//!
//! Peers measured in the same run: the same export at page size 100 (what public clients use),
//! and a JSON serialise + parse of the whole model (the cost of the data alone, no HTTP).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use ferry_core::Secret;
use ferry_flow_mke::export_rbac;
use ferry_mke3_api::{Mke3Client, Options};
use ferry_mke3_sim::{Sim, SimOptions, generated_model};
use ferry_rbac::export::Export;

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let model = generated_model(5_000, 50, 500, 10_000);
    let users = model.accounts.iter().filter(|a| !a.is_org).count();
    let teams: usize = model.orgs.values().map(|o| o.teams.len()).sum();
    println!(
        "model: {users} users, {} orgs, {teams} teams, {} grants, {} collections",
        model.orgs.len(),
        model.grants.len(),
        model.collections.len()
    );
    rt.block_on(async {
        let sim = Sim::start(model, SimOptions::default()).await.unwrap();
        let mut o = Options::new(sim.url());
        o.ca_cert_pem = Some(sim.ca_pem().as_bytes().to_vec());
        let so = SimOptions::default();
        let client = Mke3Client::login(o, &so.username, &Secret::new(so.password))
            .await
            .unwrap();
        let served = sim.model();
        let mut results = Vec::new();
        for page in [10u32, 100] {
            let before = sim.requests().len();
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let t = Instant::now();
                let export = export_rbac(&client, page).await.unwrap();
                times.push(t.elapsed());
                assert!(export == served, "the export differs from the served model");
            }
            let requests = (sim.requests().len() - before) / RUNS;
            let m = median(times);
            println!("export at page size {page:>3}: median {m:>9.2?} over {RUNS} runs, {requests} requests each, round-trip equal");
            results.push(m);
        }
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let text = serde_json::to_string(&served).unwrap();
            let back = Export::from_json(&text).unwrap();
            times.push(t.elapsed());
            assert!(back == served);
        }
        let json = median(times);
        println!("JSON serialise + parse of the model: median {json:>9.2?}");
        println!(
            "ratios: page 10 / page 100 = {:.2}, page 10 / JSON alone = {:.1}",
            results[0].as_secs_f64() / results[1].as_secs_f64(),
            results[0].as_secs_f64() / json.as_secs_f64()
        );
    });
}
