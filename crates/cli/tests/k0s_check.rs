//! `ferry k0s check` against the in-process Kubernetes API server: the report in Kismatic's
//! layout computed from the objects the server holds, exit 3 on a finding, a list the server
//! refuses becomes a finding (never an OK), and bad selectors are usage errors.
#![allow(clippy::unwrap_used)]

mod common;

use common::{run, runtime};
use ferry_kube_api::testing::{KubeFault, KubeSeed, KubeServer, TOKEN};
use ferry_testing::conformance::cluster::standard_seed;
use serde_json::json;

/// The standard seed (five nodes, the shop's pods and budgets) with the controllers its pods
/// name (their status says ready, but each has ready pods on one node only: `web` both on
/// worker-1, `api`, with a Deployment above its ReplicaSet, both on worker-4, the StatefulSet
/// `db` one pod on worker-1), a claim bound to a local volume.
fn server(rt: &tokio::runtime::Runtime) -> KubeServer {
    let s = standard_seed();
    let server = rt
        .block_on(KubeServer::start(&KubeSeed {
            version: s.version,
            nodes: s.nodes,
            pods: s.pods,
            pdbs: s.pdbs,
        }))
        .unwrap();
    let rs = |name: &str, owner: Option<&str>, desired: i32, ready: i32| {
        let mut meta = json!({"name": name, "namespace": "shop"});
        if let Some(d) = owner {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": d, "uid": format!("uid-{d}"), "controller": true}]);
        }
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
               "spec": {"replicas": desired}, "status": {"replicas": desired, "readyReplicas": ready}})
    };
    server.put(rs("web-6c4", None, 3, 2));
    server.put(rs("files-5d8", None, 2, 2));
    server.put(rs("cache-7f9", None, 2, 2));
    server.put(rs("api-9b1", Some("api"), 2, 2));
    server.put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 2}}));
    server.put(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 3}}));
    server.put(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-db-0", "namespace": "shop"},
        "spec": {"volumeName": "pv-db-0"}}));
    server.put(json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pv-db-0"},
        "spec": {"local": {"path": "/mnt/disks/db"}}}));
    server
}

fn kubeconfig(server: &KubeServer) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(TOKEN)).unwrap();
    (dir, kc)
}

#[test]
fn the_report_names_what_each_node_would_lose() {
    let rt = runtime();
    let server = server(&rt);
    let (_dir, kc) = kubeconfig(&server);
    let r = run(common::ferry()
        .args(["k0s", "check", "--kubeconfig"])
        .arg(&kc));
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let want = "
Validate Online Upgrade=============================================================
manager-0 [controller worker]                                                   [ERROR]
- This is the only controller node in the cluster. Upgrading it may make the cluster unavailable.
worker-1 [worker]                                                               [ERROR]
- Pod \"shop/db-0\" is using volume \"data\", which is backed by a local PersistentVolume. This kind of volume is unsafe for upgrades.
- All the replicas that belong to the StatefulSet \"shop/db\" are running on this node.
- Pod \"shop/files-1\" is using HostPath volume \"logs\", which is unsafe for upgrades.
- All the replicas that belong to the ReplicaSet \"shop/files-5d8\" are running on this node.
- All the replicas that belong to the ReplicaSet \"shop/web-6c4\" are running on this node.
worker-2 [worker]                                                               [ERROR]
- The pod \"default/debug\" is not being managed by a controller. Upgrading this node might result in data or availability loss.
worker-3 [worker]                                                               [ERROR]
- Pod \"shop/cache-1\" is using EmptyDir volume \"scratch\", which is unsafe for upgrades.
- All the replicas that belong to the ReplicaSet \"shop/cache-7f9\" are running on this node.
worker-4 [worker]                                                               [ERROR]
- All the replicas that belong to the Deployment \"shop/api\" are running on this node.
";
    assert_eq!(r.stdout, want, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("5 node(s) checked: 0 can be upgraded online, 5 cannot"),
        "{}",
        r.stderr
    );
    // one list per kind: never a request per owner
    let gets: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|q| q.starts_with("GET "))
        .collect();
    assert!(gets.len() <= 13, "{gets:#?}");
    assert!(
        !gets.iter().any(|q| q.contains("/replicasets/")),
        "{gets:#?}"
    );

    let r = run(common::ferry()
        .args(["k0s", "check", "-o", "json", "--kubeconfig"])
        .arg(&kc));
    assert_eq!(r.code, Some(3));
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["serverVersion"], "v1.31.4-mirantis-1");
    assert_eq!(doc["report"]["nodes"][1]["name"], "worker-1");
    assert_eq!(doc["report"]["nodes"][1]["status"], "error");
    assert_eq!(
        doc["report"]["nodes"][1]["findings"][0]["kind"],
        "localVolume"
    );
    assert_eq!(doc["report"]["nodes"][1]["findings"][0]["class"], "unsafe");
}

#[test]
fn a_list_the_server_refuses_is_a_finding_not_an_ok() {
    let rt = runtime();
    let server = server(&rt);
    let (_dir, kc) = kubeconfig(&server);
    server.inject(KubeFault::status("/apis/apps/v1/replicasets", 403).times(10));
    let r = run(common::ferry()
        .args([
            "k0s",
            "check",
            "--skip-namespace",
            "kube-system",
            "--kubeconfig",
        ])
        .arg(&kc));
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    // worker-4's pods belong to a ReplicaSet: unknown, so the node is not OK
    let worker4 = r.stdout.split("worker-4").nth(1).unwrap();
    assert!(
        worker4.contains(
            "[ERROR]\n- Unable to determine upgrade safety: reading replicasets failed: forbidden"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_selectors_and_kubeconfigs_are_usage_errors() {
    let r = run(common::ferry().args([
        "k0s",
        "check",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--ingress-nodes",
        "role!=edge",
    ]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("--ingress-nodes"), "{}", r.stderr);
    assert!(r.stderr.contains("\"role!=edge\""), "{}", r.stderr);

    let r = run(common::ferry().args(["k0s", "check", "--kubeconfig", "/nonexistent/kubeconfig"]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/kubeconfig"), "{}", r.stderr);
}
