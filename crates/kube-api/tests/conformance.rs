//! `KubeCluster` against the in-process Kubernetes API server passes core's `ClusterApi`
//! conformance suite.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::ClusterApi;
use ferry_kube_api::testing::{KubeSeed, KubeServer, TOKEN};
use ferry_kube_api::{KubeCluster, KubeOptions};
use ferry_testing::conformance::cluster::{ClusterSeed, ClusterSetup, run_suite};

#[derive(Default)]
struct ServerSetup {
    servers: Mutex<Vec<KubeServer>>,
}

#[async_trait::async_trait]
impl ClusterSetup for ServerSetup {
    async fn start(&self, seed: &ClusterSeed) -> Result<Arc<dyn ClusterApi>, String> {
        let server = KubeServer::start(&KubeSeed {
            version: seed.version.clone(),
            nodes: seed.nodes.clone(),
            pods: seed.pods.clone(),
            pdbs: seed.pdbs.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, server.kubeconfig(TOKEN)).map_err(|e| e.to_string())?;
        let options = KubeOptions {
            poll_interval: Duration::from_millis(100),
            ..KubeOptions::default()
        };
        let cluster = KubeCluster::from_kubeconfig(&path, options)
            .await
            .map_err(|e| e.to_string())?;
        self.servers.lock().unwrap().push(server);
        Ok(Arc::new(cluster))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_cluster_passes_the_conformance_suite() {
    let setup = ServerSetup::default();
    let report = run_suite(&setup).await;
    println!("{report}");
    report.assert_all_passed();
}
