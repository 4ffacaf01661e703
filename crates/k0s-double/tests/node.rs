//! Node registration against the real control plane of `testenv/k8s` (kwok plays the kubelet):
//! panics, naming the control plane, when it is not running.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

mod common;

use std::time::Duration;

use common::Host;

use ferry_kube_api::testing::real::{RealServer, eventually};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

async fn ready(api: &Api<Node>, name: &str) -> Result<Node, String> {
    let node = api
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no node")?;
    let is_ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if is_ready {
        Ok(node)
    } else {
        Err(format!("not Ready: {:?}", node.status))
    }
}

#[tokio::test]
async fn nodes_register_become_ready_go_not_ready_on_stop_and_stay_after_reset() {
    let server = RealServer::from_env("the k0s double's node registration");
    let api: Api<Node> = Api::all(server.client().await);
    let tag = std::process::id();

    let c = Host::registering(format!("k0s-double-c-{tag}"), 22200, &server.kubeconfig);
    c.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--config",
        "/etc/k0s/k0s.yaml",
    ]);
    c.ok(&["start"]);
    let node = eventually(
        "the controller's node is Ready",
        Duration::from_secs(30),
        || ready(&api, &c.name),
    )
    .await;
    let labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("node-role.kubernetes.io/control-plane")
            .map(String::as_str),
        Some("true")
    );
    let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "node-role.kubernetes.io/master" && t.effect == "NoSchedule"),
        "{taints:?}"
    );

    let w = Host::registering(format!("k0s-double-w-{tag}"), 22300, &server.kubeconfig);
    std::fs::write(
        w.root.path().join("etc/k0s/join-token"),
        c.ok(&["token", "create", "--role=worker"]),
    )
    .unwrap();
    w.ok(&["install", "worker", "--token-file", "/etc/k0s/join-token"]);
    w.ok(&["start"]);
    let node = eventually(
        "the worker's node is Ready",
        Duration::from_secs(30),
        || ready(&api, &w.name),
    )
    .await;
    let labels = node.metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("node-role.kubernetes.io/control-plane"));

    // Stopped: kwok lets the node go.
    w.ok(&["stop"]);
    let node = api.get(&w.name).await.unwrap();
    assert!(
        !node
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("kwok.x-k8s.io/node")
    );
    // Reset leaves the Node object, as k0s does; this test removes its nodes itself.
    w.ok(&["reset"]);
    assert!(api.get_opt(&w.name).await.unwrap().is_some());
    c.ok(&["stop"]);
    c.ok(&["reset"]);
    for n in [&w.name, &c.name] {
        api.delete(n, &Default::default()).await.unwrap();
    }
}
