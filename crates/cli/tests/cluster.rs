//! `ferry cluster check` against the in-process Kubernetes API server.
#![allow(clippy::unwrap_used)]

mod common;

use common::{run, runtime};
use ferry_kube_api::testing::{KubeSeed, KubeServer, TOKEN};
use ferry_testing::conformance::cluster::standard_seed;

fn server(rt: &tokio::runtime::Runtime, all_ready: bool) -> KubeServer {
    let mut s = standard_seed();
    if all_ready {
        for n in &mut s.nodes {
            n.ready = true;
        }
    }
    rt.block_on(KubeServer::start(&KubeSeed {
        version: s.version,
        nodes: s.nodes,
        pods: s.pods,
        pdbs: s.pdbs,
    }))
    .unwrap()
}

#[test]
fn check_prints_every_node_and_its_readiness() {
    let rt = runtime();
    let server = server(&rt, false);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(TOKEN)).unwrap();
    let r = run(common::ferry()
        .args(["cluster", "check", "--kubeconfig"])
        .arg(&kc));
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "Kubernetes v1.31.4-mirantis-1\n\
         NAME        STATUS     ROLES                  VERSION              INTERNAL-IP\n\
         manager-0   Ready      control-plane,master   v1.31.4-mirantis-1   10.0.0.10\n\
         worker-1    Ready      worker                 v1.31.4-mirantis-1   10.0.0.21\n\
         worker-2    Ready      <none>                 v1.31.4-mirantis-1   <none>\n\
         worker-3    NotReady   <none>                 v1.31.4-mirantis-1   10.0.0.23\n\
         worker-4    Ready      worker                 v1.31.4-mirantis-1   10.0.0.24\n\
         4 of 5 nodes ready\n"
    );

    let r = run(common::ferry()
        .args(["cluster", "check", "-o", "json", "--kubeconfig"])
        .arg(&kc));
    assert_eq!(r.code, Some(3));
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["serverVersion"], "v1.31.4-mirantis-1");
    assert_eq!(doc["ready"], false);
    assert_eq!(doc["nodes"].as_array().unwrap().len(), 5);
}

#[test]
fn check_exits_0_when_every_node_is_ready() {
    let rt = runtime();
    let server = server(&rt, true);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(TOKEN)).unwrap();
    let r = run(common::ferry()
        .args(["cluster", "check", "--kubeconfig"])
        .arg(&kc));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.ends_with("5 of 5 nodes ready\n"), "{}", r.stdout);
}

#[test]
fn refused_credentials_and_bad_kubeconfigs_are_clear() {
    let rt = runtime();
    let server = server(&rt, true);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig("wrong")).unwrap();
    let r = run(common::ferry()
        .args(["cluster", "check", "--kubeconfig"])
        .arg(&kc));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "Error: cannot check the cluster at {}/: unauthorized: the credentials were refused",
            server.url()
        )
    );

    let r = run(common::ferry()
        .args(["cluster", "check", "--kubeconfig"])
        .arg(dir.path()));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("not an MKE 3 client bundle"),
        "{}",
        r.stderr
    );

    let missing = dir.path().join("missing");
    let r = run(common::ferry()
        .args(["cluster", "check", "--kubeconfig"])
        .arg(&missing));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!("Error: {}: no such file or directory", missing.display())
    );
}
