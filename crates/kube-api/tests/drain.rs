//! How `KubeCluster::drain` paces its evictions against PodDisruptionBudgets that come back
//! only when the evicted pods' replacements are ready.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::ClusterApi;
use ferry_core::cluster::{ClusterError, DrainOptions, Node, Owner, Pdb, Pod};
use ferry_kube_api::testing::{KubeSeed, KubeServer, TOKEN};
use ferry_kube_api::{KubeCluster, KubeOptions};

/// Two apps of two pods each on `w1`, each app under a budget that allows one disruption.
fn seed() -> KubeSeed {
    let labels = |app: &str| BTreeMap::from([("app".to_string(), app.to_string())]);
    let pod = |name: &str, app: &str| Pod {
        namespace: "shop".into(),
        name: name.into(),
        node: Some("w1".into()),
        labels: labels(app),
        owner: Some(Owner {
            kind: "ReplicaSet".into(),
            name: format!("{app}-rs"),
        }),
        volumes: Vec::new(),
        phase: "Running".into(),
    };
    let pdb = |app: &str| Pdb {
        namespace: "shop".into(),
        name: format!("{app}-pdb"),
        selector: labels(app),
        disruptions_allowed: 1,
    };
    KubeSeed {
        version: "v1.32.5".into(),
        nodes: vec![Node {
            name: "w1".into(),
            roles: Vec::new(),
            ready: true,
            unschedulable: false,
            labels: BTreeMap::new(),
            internal_ip: Some("10.0.0.11".into()),
            kubelet_version: "v1.32.5".into(),
        }],
        pods: vec![
            pod("a-1", "a"),
            pod("a-2", "a"),
            pod("b-1", "b"),
            pod("b-2", "b"),
        ],
        pdbs: vec![pdb("a"), pdb("b")],
    }
}

async fn client(server: &KubeServer, dir: &std::path::Path) -> KubeCluster {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, server.kubeconfig(TOKEN)).unwrap();
    KubeCluster::from_kubeconfig(
        &path,
        KubeOptions {
            read_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(25),
            ..KubeOptions::default()
        },
    )
    .await
    .unwrap()
}

fn drain_options(timeout: Duration) -> DrainOptions {
    DrainOptions {
        timeout,
        delete_emptydir_data: false,
        force_bare_pods: false,
    }
}

/// Positions of the eviction requests for `pod` in the server's log.
fn evictions(server: &KubeServer, pod: &str) -> Vec<usize> {
    let path = format!("POST /api/v1/namespaces/shop/pods/{pod}/eviction");
    server
        .requests()
        .iter()
        .enumerate()
        .filter(|(_, r)| **r == path)
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn a_pod_waiting_for_its_budget_does_not_hold_back_the_others() {
    let server = KubeServer::start(&seed()).await.unwrap();
    server.heal_disruptions_after(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, dir.path()).await;

    let report = c
        .drain("w1", &drain_options(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(
        report.evicted,
        ["shop/a-1", "shop/a-2", "shop/b-1", "shop/b-2"]
    );
    assert!(c.pods(Some("w1")).await.unwrap().is_empty());

    // The second pod of each app waited for its budget (refused, then retried), while the
    // first pod of the other app went at once: b-1 was asked for before a-2 got through.
    let (a2, b1) = (evictions(&server, "a-2"), evictions(&server, "b-1"));
    assert!(a2.len() > 1, "a-2 was never held back: {a2:?}");
    assert_eq!(b1.len(), 1, "b-1 was held back: {b1:?}");
    assert!(
        b1[0] < *a2.last().unwrap(),
        "b-1 (request {}) waited for a-2 (last request {})",
        b1[0],
        a2.last().unwrap()
    );
}

#[tokio::test]
async fn a_budget_that_never_comes_back_blocks_the_drain_at_its_deadline() {
    let server = KubeServer::start(&seed()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, dir.path()).await;
    let err = c
        .drain("w1", &drain_options(Duration::from_millis(400)))
        .await
        .unwrap_err();
    match err {
        ClusterError::EvictionBlocked { pod, pdb } => {
            assert!(
                (pod == "shop/a-2" && pdb == "a-pdb") || (pod == "shop/b-2" && pdb == "b-pdb"),
                "{pod} {pdb}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The pods the budgets allowed are gone; the blocked ones stay.
    let mut left: Vec<String> = c
        .pods(Some("w1"))
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    left.sort();
    assert_eq!(left, ["a-2", "b-2"]);
}
