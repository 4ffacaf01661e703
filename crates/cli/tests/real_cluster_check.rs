//! `ferry cluster check` against the REAL control plane of `testenv/k8s`: nodes kwok makes Ready
//! are Ready, and a node kwok let go of, which the node lifecycle controller turned NotReady,
//! makes the check fail (exit 3).
//!
//! The check lists every node of the cluster, and nodes of other runs may be there: it asserts
//! on its own nodes only (and that the exit code agrees with what the command printed). It
//! panics, naming the control plane, when it is not running: it never passes without it. The
//! nodes it makes carry `ferry.test/real-cluster=check`, are deleted at the end, passed or
//! failed, and left-overs of a killed run are deleted first.
//!
//! kwok 0.8 lets go of a node whose Lease (`kube-node-lease/<node>`) somebody else holds: the test
//! replaces the node's lease by one held by `ferry-test-not-kwok` for an hour, keeping kwok's last
//! renewal time, so that the heartbeats stop (see `crates/kube-api/tests/real_cluster.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Run, run, runtime};
use ferry_core::ClusterApi;
use ferry_core::cluster::{ClusterError, ObjectRef};
use ferry_kube_api::KubeCluster;
use ferry_kube_api::testing::real::{KWOK_ANNOTATION, RealServer, eventually};
use serde_json::{Value, json};

const OWNER_LABEL: &str = "ferry.test/real-cluster";
const TEST: &str = "check";
const NOT_KWOK: &str = "ferry-test-not-kwok";

fn node_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Node".into(),
        namespace: None,
        name: name.into(),
    }
}

fn lease_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        namespace: Some("kube-node-lease".into()),
        name: name.into(),
    }
}

async fn ready(cluster: &KubeCluster, name: &str) -> Result<bool, String> {
    let nodes = cluster.nodes().await.map_err(|e| e.to_string())?;
    nodes
        .iter()
        .find(|n| n.name == name)
        .map(|n| n.ready)
        .ok_or_else(|| format!("no node {name}"))
}

/// Deletes `nodes` and their leases and waits until the nodes are gone.
async fn delete_nodes(cluster: &KubeCluster, nodes: &[String]) -> Result<(), String> {
    for n in nodes {
        cluster
            .delete(&node_ref(n))
            .await
            .map_err(|e| e.to_string())?;
        cluster
            .delete(&lease_ref(n))
            .await
            .map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in nodes {
        while cluster.get(&node_ref(n)).await != Ok(None) {
            if Instant::now() >= deadline {
                return Err(format!("node {n} still there"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // kwok may have written the lease again before it heard of the deletion.
        cluster
            .delete(&lease_ref(n))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Makes kwok let go of `node`: its lease, replaced by one that `ferry-test-not-kwok` holds for
/// an hour, with kwok's last renewal time (so the heartbeats stop there). Replaced rather than
/// changed because a server-side apply may not take fields kwok wrote over; a renewal by kwok
/// between the delete and the apply makes the apply a conflict, and the test tries again.
async fn take_from_kwok(cluster: &KubeCluster, node: &str) {
    eventually(
        &format!("the lease of {node} taken over from kwok"),
        Duration::from_secs(30),
        || async {
            let lease = cluster
                .get(&lease_ref(node))
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no lease yet")?;
            if lease["spec"]["holderIdentity"] == NOT_KWOK {
                return Ok(());
            }
            let renewed = lease["spec"]["renewTime"].clone();
            if !renewed.is_string() {
                return Err(format!("not renewed yet: {lease}"));
            }
            cluster
                .delete(&lease_ref(node))
                .await
                .map_err(|e| e.to_string())?;
            let ours = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": NOT_KWOK, "leaseDurationSeconds": 3600,
                         "renewTime": renewed},
            });
            match cluster.apply(&ours).await {
                Ok(()) => Err("applied; checking".into()),
                Err(ClusterError::Conflict(m)) => Err(m),
                Err(e) => panic!("apply lease {node}: {e}"),
            }
        },
    )
    .await;
}

/// The row of `node` in the table: NAME STATUS ROLES VERSION INTERNAL-IP.
fn row<'a>(stdout: &'a str, node: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&node))
        .unwrap_or_else(|| panic!("no row for {node}:\n{stdout}"))
}

fn check(kubeconfig: &Path, json: bool) -> Run {
    let mut cmd = common::ferry();
    cmd.args(["cluster", "check", "--kubeconfig"])
        .arg(kubeconfig);
    if json {
        cmd.args(["-o", "json"]);
    }
    run(&mut cmd)
}

/// The JSON report's `ready` of `node`.
fn json_ready(doc: &Value, node: &str) -> bool {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("{node} not in {doc}"))["ready"]
        .as_bool()
        .unwrap()
}

#[test]
fn cluster_check_shows_kwok_nodes_ready_and_the_node_kwok_let_go_not_ready() {
    let server = RealServer::from_env("`ferry cluster check` against the real kube-apiserver");
    let rt = runtime();
    let cluster = rt.block_on(server.cluster(Duration::from_millis(200)));

    // Left-overs of a killed run of this test.
    let old: Vec<String> = rt
        .block_on(cluster.nodes())
        .unwrap()
        .into_iter()
        .filter(|n| n.labels.get(OWNER_LABEL).map(String::as_str) == Some(TEST))
        .map(|n| n.name)
        .collect();
    rt.block_on(delete_nodes(&cluster, &old)).unwrap();

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let id = format!("rc-{TEST}-{:06x}", nanos & 0xff_ffff);
    let (up, gone) = (format!("{id}-up"), format!("{id}-gone"));
    let nodes = [up.clone(), gone.clone()];

    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        for name in &nodes {
            let node = json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {OWNER_LABEL: TEST, "kubernetes.io/hostname": name},
                    "annotations": {KWOK_ANNOTATION.0: KWOK_ANNOTATION.1},
                },
            });
            rt.block_on(cluster.apply(&node)).unwrap();
        }
        for name in &nodes {
            rt.block_on(eventually(
                &format!("kwok makes {name} Ready"),
                Duration::from_secs(30),
                || async {
                    match ready(&cluster, name).await? {
                        true => Ok(()),
                        false => Err("NotReady".to_string()),
                    }
                },
            ));
        }

        // Both Ready; the exit code is 0 unless some other node is not.
        let r = check(&server.kubeconfig, false);
        assert_eq!(row(&r.stdout, &up)[1], "Ready", "{}", r.stdout);
        assert_eq!(row(&r.stdout, &gone)[1], "Ready", "{}", r.stdout);
        assert!(r.stdout.starts_with("Kubernetes v1."), "{}", r.stdout);
        let j = check(&server.kubeconfig, true);
        let doc: Value = serde_json::from_str(&j.stdout).unwrap();
        assert!(json_ready(&doc, &up) && json_ready(&doc, &gone), "{doc}");
        let all_ready = doc["ready"].as_bool().unwrap();
        let expected = if all_ready { 0 } else { 3 };
        assert_eq!(r.code, Some(expected), "{}{}", r.stdout, r.stderr);
        assert_eq!(j.code, Some(expected), "{}", j.stderr);

        // kwok lets go of one node; the node lifecycle controller turns it NotReady.
        rt.block_on(take_from_kwok(&cluster, &gone));
        rt.block_on(eventually(
            &format!("the node lifecycle controller turns {gone} NotReady"),
            Duration::from_secs(60),
            || async {
                match ready(&cluster, &gone).await? {
                    false => Ok(()),
                    true => Err("still Ready".to_string()),
                }
            },
        ));

        let r = check(&server.kubeconfig, false);
        assert_eq!(r.code, Some(3), "{}{}", r.stdout, r.stderr);
        assert_eq!(row(&r.stdout, &up)[1], "Ready", "{}", r.stdout);
        assert_eq!(row(&r.stdout, &gone)[1], "NotReady", "{}", r.stdout);
        let last: Vec<&str> = r.stdout.lines().last().unwrap().split(' ').collect();
        match last.as_slice() {
            [k, "of", m, "nodes", "ready"] => {
                assert!(k.parse::<usize>().unwrap() < m.parse::<usize>().unwrap())
            }
            other => panic!("{other:?}"),
        }
        let j = check(&server.kubeconfig, true);
        assert_eq!(j.code, Some(3), "{}", j.stderr);
        let doc: Value = serde_json::from_str(&j.stdout).unwrap();
        assert_eq!(doc["ready"], false, "{doc}");
        assert!(json_ready(&doc, &up), "{doc}");
        assert!(!json_ready(&doc, &gone), "{doc}");
    }));

    let cleaned = rt.block_on(delete_nodes(&cluster, &nodes));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    cleaned.unwrap();
}
