//! `Mke3Client` against the in-process MKE 3 server passes core's `Mke3Api` conformance suite.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use ferry_core::Secret;
use ferry_flow_mke::mke3::Mke3Api;
use ferry_mke3_api::{Mke3Client, Options};
use ferry_mke3_sim::{Sim, SimOptions};
use ferry_testing::conformance::mke3::{Mke3Seed, Mke3Setup, run_suite};

/// Starts one simulator per case and keeps them alive until the suite ends.
#[derive(Default)]
struct SimSetup {
    sims: Mutex<Vec<Sim>>,
}

#[async_trait::async_trait]
impl Mke3Setup for SimSetup {
    async fn start(&self, seed: &Mke3Seed) -> Result<Arc<dyn Mke3Api>, String> {
        let options = SimOptions {
            version: seed.version.clone(),
            config_toml: seed.config_toml.clone(),
            ..SimOptions::default()
        };
        let sim = Sim::start(seed.export.clone(), options.clone())
            .await
            .map_err(|e| e.to_string())?;
        let mut o = Options::new(sim.url());
        o.ca_cert_pem = Some(sim.ca_pem().as_bytes().to_vec());
        let client = Mke3Client::login(o, &options.username, &Secret::new(options.password))
            .await
            .map_err(|e| e.to_string())?;
        self.sims.lock().unwrap().push(sim);
        Ok(Arc::new(client))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mke3_client_passes_the_conformance_suite() {
    let setup = SimSetup::default();
    let report = run_suite(&setup).await;
    println!("{report}");
    report.assert_all_passed();
}
