//! How `KubeCluster::drain` paces its evictions against PodDisruptionBudgets that come back
//! only when the evicted pods' replacements are ready.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::ClusterApi;
use ferry_core::cluster::{ClusterError, DrainOptions, LabelSelector, Node, Owner, Pdb, Pod};
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
        ready: true,
        ..Pod::default()
    };
    let pdb = |app: &str| Pdb {
        namespace: "shop".into(),
        name: format!("{app}-pdb"),
        selector: LabelSelector {
            match_labels: labels(app),
            match_expressions: Vec::new(),
        },
        disruptions_allowed: 1,
        current_healthy: 2,
        desired_healthy: 1,
        expected_pods: 2,
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
            ..Node::default()
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

    // Which pod of an app gets its budget's one disruption is a race between concurrent
    // requests. Per app: one pod went at once, the other waited for the budget (refused, then
    // retried); and the pod of the other app that went at once was asked for before the
    // waiting one got through: nothing waited for another app's budget.
    let split = |app: &str| {
        let (one, two) = (
            evictions(&server, &format!("{app}-1")),
            evictions(&server, &format!("{app}-2")),
        );
        assert!(
            (one.len() == 1) != (two.len() == 1) && one.len() + two.len() > 2,
            "{app}: one pod goes at once, the other waits: {one:?} {two:?}"
        );
        if one.len() == 1 {
            (one, two)
        } else {
            (two, one)
        }
    };
    let (a_now, a_waited) = split("a");
    let (b_now, b_waited) = split("b");
    for (now, waited) in [(&b_now, &a_waited), (&a_now, &b_waited)] {
        assert!(
            now[0] < *waited.last().unwrap(),
            "a pod (request {}) waited for another app's budget (last request {})",
            now[0],
            waited.last().unwrap()
        );
    }
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
    // The pods the budgets allowed are gone: one per app, whichever asked first; the others
    // stay, and the error names one of them with its app's budget.
    let mut left: Vec<String> = c
        .pods(Some("w1"))
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left[0].starts_with("a-") && left[1].starts_with("b-"),
        "{left:?}"
    );
    match err {
        ClusterError::EvictionBlocked { pod, pdb } => {
            let name = pod.strip_prefix("shop/").unwrap_or(&pod);
            assert!(
                left.iter().any(|l| l == name),
                "{pod} is not one of {left:?}"
            );
            assert_eq!(pdb, format!("{}-pdb", &name[..1]), "{pod}");
        }
        other => panic!("{other:?}"),
    }
}
