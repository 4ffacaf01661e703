//! The one conformance suite for [`ClusterApi`] implementations.
//!
//! Every implementation runs it: the in-memory fake (this crate), and `ferry-kube-api`'s
//! kube-rs client both against its in-process Kubernetes API server
//! (`crates/kube-api/tests/conformance.rs`) and against the real kube-apiserver, controller
//! manager and scheduler of `testenv/k8s` (`crates/kube-api/tests/real_conformance.rs`, where
//! the real PodDisruptionBudget controller computes the seeded `disruptions_allowed` and the
//! real API server answers the evictions). A runner implements [`ClusterSetup`]: given a
//! [`ClusterSeed`] (nodes, pods, PDBs and a server version), it returns a backend whose cluster
//! holds exactly that, fresh for each case. [`run_suite`] returns a
//! [`SuiteReport`](super::mke3::SuiteReport) with one result per case; it never panics on a
//! failing case.
//!
//! # The cluster a backend must model
//!
//! - A node's roles are the `<role>` of its `node-role.kubernetes.io/<role>` labels (the seed's
//!   labels already carry them); every field of [`Node`] reads back as seeded.
//! - Pods and PDBs read back as seeded. `pods(Some(node))` is the pods whose `node` is `node`
//!   (empty for an unknown node).
//! - An eviction of a pod covered by a PDB (same namespace, every `selector` label on the pod)
//!   succeeds while the PDB's `disruptions_allowed` is above 0 and takes one from it; at 0 it is
//!   refused (HTTP 429 for the real API server), and stays refused (no controller recreates
//!   pods here). An evicted pod disappears.
//! - A pod owned by a `DaemonSet` is left by a drain and listed in `skipped_daemonset`; a pod
//!   owned by kind `Node` (a static pod's mirror) is left silently.
//!
//! # The behaviour checked
//!
//! - `server_version` is the seeded version.
//! - `cordon`/`uncordon` set `unschedulable`, are idempotent, and are `NotFound` for a missing
//!   node.
//! - `drain` cordons; evicts every other pod of the node and reports them sorted as
//!   `namespace/name`; refuses bare pods and pods with `emptyDir` volumes with
//!   [`ClusterError::DrainRefused`] **before evicting anything**, unless the options allow them;
//!   gives up on a PDB-blocked eviction after `timeout` with [`ClusterError::EvictionBlocked`]
//!   naming the pod and the PDB; is `NotFound` for a missing node; never touches other nodes.
//! - `apply` creates and updates (namespaced and cluster-scoped kinds); `get` returns the object
//!   (with its `apiVersion`, `kind` and `metadata.name`), `None` when missing; `delete` is `true`
//!   once and `false` when missing; an object without `kind` is [`ClusterError::Invalid`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::mke3::SuiteReport;
use ferry_core::cluster::{
    ClusterApi, ClusterError, DrainOptions, LabelSelector, Node, ObjectRef, Owner, Pdb, Pod,
    Resources, Taint, Toleration, Volume,
};

/// What a backend under test must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSeed {
    /// `gitVersion` of the API server.
    pub version: String,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
}

/// How the suite gets a backend.
#[async_trait::async_trait]
pub trait ClusterSetup: Send + Sync {
    /// A backend whose cluster holds exactly `seed`, with no state left from an earlier call
    /// (every case starts one). `Err(text)` fails the case with that text.
    async fn start(&self, seed: &ClusterSeed) -> Result<Arc<dyn ClusterApi>, String>;

    /// The `gitVersion` of a server that cannot be told which version to report (a real
    /// kube-apiserver reports the version it was built as): the suite seeds and expects that
    /// one instead of [`VERSION`]. `None` (the default) for a backend that serves the seed's.
    async fn fixed_version(&self) -> Option<String> {
        None
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The namespace of the workload pods.
pub const NS: &str = "shop";
/// The seeded server version.
pub const VERSION: &str = "v1.31.4-mirantis-1";

fn node(name: &str, roles: &[&str], ready: bool, ip: &str) -> Node {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".into(), name.into());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    // The deprecated twin every real node still has: the node lifecycle controller adds it
    // to a node that has only `kubernetes.io/os`.
    labels.insert("beta.kubernetes.io/os".into(), "linux".into());
    for r in roles {
        labels.insert(format!("node-role.kubernetes.io/{r}"), String::new());
    }
    Node {
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ready,
        unschedulable: false,
        labels,
        internal_ip: Some(ip.into()),
        kubelet_version: "v1.31.4-mirantis-1".into(),
        // a not-ready kubelet that never posted its status reports no allocatable
        allocatable: ready.then_some(Resources {
            cpu_millis: 3900,
            memory_bytes: 7_800 << 20,
            pods: 110,
        }),
        taints: Vec::new(),
    }
}

fn pod(ns: &str, name: &str, node: &str, app: &str, owner: Option<(&str, &str)>) -> Pod {
    let mut labels = BTreeMap::new();
    if !app.is_empty() {
        labels.insert("app".to_string(), app.to_string());
    }
    Pod {
        namespace: ns.into(),
        name: name.into(),
        node: if node.is_empty() {
            None
        } else {
            Some(node.into())
        },
        labels,
        owner: owner.map(|(kind, name)| Owner {
            kind: kind.into(),
            name: name.into(),
        }),
        volumes: Vec::new(),
        phase: "Running".into(),
        ready: true,
        ..Pod::default()
    }
}

/// The standard seed:
///
/// | node | roles | pods |
/// |---|---|---|
/// | `manager-0` | control-plane, master | mirror pod `kube-system/kube-apiserver-manager-0`, DaemonSet pod `kube-system/calico-node-m0` |
/// | `worker-1` | worker | `shop/web-1`, `shop/web-2` (PDB `web-pdb`, 2 allowed), `shop/db-0` (StatefulSet, PVC), `shop/files-1` (hostPath), DaemonSet pod `kube-system/calico-node-w1` |
/// | `worker-2` | — | bare pod `default/debug` |
/// | `worker-3` | — (not ready) | `shop/cache-1` with an `emptyDir` |
/// | `worker-4` | worker | `shop/api-1`, `shop/api-2` (PDB `api-pdb`, 1 allowed) |
///
/// plus an unscheduled pod `shop/pending-1`. Every ready node reports allocatable 3900m CPU,
/// 7800Mi memory and 110 pods (`worker-3` none); `manager-0` is tainted
/// `node-role.kubernetes.io/master:NoSchedule`, `worker-1` `dedicated=db:NoSchedule` and labelled
/// `disk=ssd`; the web pods request 250m and 64Mi; `db-0` requests 1500m and 2Gi, selects
/// `disk=ssd` and tolerates `dedicated=db`; the calico pods tolerate every taint.
pub fn standard_seed() -> ClusterSeed {
    let mut nodes = vec![
        node("worker-4", &["worker"], true, "10.0.0.24"),
        node("manager-0", &["control-plane", "master"], true, "10.0.0.10"),
        node("worker-1", &["worker"], true, "10.0.0.21"),
        node("worker-2", &[], true, "10.0.0.22"),
        node("worker-3", &[], false, "10.0.0.23"),
    ];
    nodes[3].internal_ip = None;
    nodes[1].taints = vec![Taint {
        key: "node-role.kubernetes.io/master".into(),
        value: String::new(),
        effect: "NoSchedule".into(),
    }];
    nodes[2].taints = vec![Taint {
        key: "dedicated".into(),
        value: "db".into(),
        effect: "NoSchedule".into(),
    }];
    nodes[2].labels.insert("disk".into(), "ssd".into());

    let mut db = pod(NS, "db-0", "worker-1", "db", Some(("StatefulSet", "db")));
    db.requests = Resources {
        cpu_millis: 1500,
        memory_bytes: 2 << 30,
        pods: 0,
    };
    db.node_selector = BTreeMap::from([("disk".to_string(), "ssd".to_string())]);
    db.tolerations = vec![Toleration {
        key: "dedicated".into(),
        operator: "Equal".into(),
        value: "db".into(),
        effect: "NoSchedule".into(),
    }];
    db.volumes = vec![
        Volume::PersistentVolumeClaim {
            name: "data".into(),
            claim: "data-db-0".into(),
        },
        Volume::Other {
            name: "config".into(),
        },
    ];
    let mut files = pod(
        NS,
        "files-1",
        "worker-1",
        "files",
        Some(("ReplicaSet", "files-5d8")),
    );
    files.volumes = vec![Volume::HostPath {
        name: "logs".into(),
        path: "/var/log".into(),
    }];
    let mut cache = pod(
        NS,
        "cache-1",
        "worker-3",
        "cache",
        Some(("ReplicaSet", "cache-7f9")),
    );
    cache.volumes = vec![Volume::EmptyDir {
        name: "scratch".into(),
    }];
    let mut pending = pod(NS, "pending-1", "", "web", Some(("ReplicaSet", "web-6c4")));
    pending.phase = "Pending".into();
    pending.ready = false;
    let web = |name: &str| {
        let mut p = pod(NS, name, "worker-1", "web", Some(("ReplicaSet", "web-6c4")));
        p.requests = Resources {
            cpu_millis: 250,
            memory_bytes: 64 << 20,
            pods: 0,
        };
        p
    };
    let calico = |name: &str, node: &str| {
        let mut p = pod(
            "kube-system",
            name,
            node,
            "calico-node",
            Some(("DaemonSet", "calico-node")),
        );
        p.tolerations = vec![Toleration {
            operator: "Exists".into(),
            ..Toleration::default()
        }];
        p
    };
    let pods = vec![
        web("web-2"),
        web("web-1"),
        db,
        files,
        calico("calico-node-w1", "worker-1"),
        calico("calico-node-m0", "manager-0"),
        pod(
            "kube-system",
            "kube-apiserver-manager-0",
            "manager-0",
            "",
            Some(("Node", "manager-0")),
        ),
        pod("default", "debug", "worker-2", "", None),
        cache,
        pod(
            NS,
            "api-1",
            "worker-4",
            "api",
            Some(("ReplicaSet", "api-9b1")),
        ),
        pod(
            NS,
            "api-2",
            "worker-4",
            "api",
            Some(("ReplicaSet", "api-9b1")),
        ),
        pending,
    ];
    // The numbers the real disruption controller keeps for an integer `minAvailable` of
    // (ready pods - allowed): every matching pod is expected, the ready ones are healthy.
    let pdb = |name: &str, app: &str, allowed: i32| {
        let matching = pods
            .iter()
            .filter(|p| p.namespace == NS && p.labels.get("app").map(String::as_str) == Some(app));
        let expected = matching.clone().count() as i32;
        let healthy = matching.filter(|p| p.ready).count() as i32;
        Pdb {
            namespace: NS.into(),
            name: name.into(),
            selector: LabelSelector::labels([("app", app)]),
            disruptions_allowed: allowed,
            current_healthy: healthy,
            desired_healthy: healthy - allowed,
            expected_pods: expected,
        }
    };
    ClusterSeed {
        version: VERSION.into(),
        nodes,
        pdbs: vec![pdb("web-pdb", "web", 2), pdb("api-pdb", "api", 1)],
        pods,
    }
}

fn pod_key(p: &Pod) -> String {
    format!("{}/{}", p.namespace, p.name)
}

/// The taints and tolerations a real control plane adds by itself: the node lifecycle
/// controller taints a node that is not ready or unschedulable (`node.kubernetes.io/...`), and
/// the `DefaultTolerationSeconds` admission plugin gives every pod a toleration of the
/// not-ready and unreachable taints. A backend reads them; the seed does not hold them.
fn managed_by_control_plane(key: &str) -> bool {
    key.starts_with("node.kubernetes.io/")
}

fn sorted_nodes(mut v: Vec<Node>) -> Vec<Node> {
    v.sort_by(|a, b| a.name.cmp(&b.name));
    for n in &mut v {
        n.roles.sort();
        n.taints.retain(|t| !managed_by_control_plane(&t.key));
    }
    v
}

fn sorted_pods(mut v: Vec<Pod>) -> Vec<Pod> {
    v.sort_by_key(pod_key);
    for p in &mut v {
        p.tolerations.retain(|t| !managed_by_control_plane(&t.key));
    }
    v
}

fn keys(pods: &[Pod]) -> Vec<String> {
    let mut k: Vec<String> = pods.iter().map(pod_key).collect();
    k.sort();
    k
}

async fn backend(
    setup: &dyn ClusterSetup,
    seed: &ClusterSeed,
) -> Result<Arc<dyn ClusterApi>, String> {
    setup
        .start(seed)
        .await
        .map_err(|e| format!("setup failed: {e}"))
}

fn opts(timeout: Duration, emptydir: bool, bare: bool) -> DrainOptions {
    DrainOptions {
        timeout,
        delete_emptydir_data: emptydir,
        force_bare_pods: bare,
    }
}

async fn node_of(api: &dyn ClusterApi, name: &str) -> Result<Node, String> {
    api.nodes()
        .await
        .map_err(|e| format!("nodes: {e}"))?
        .into_iter()
        .find(|n| n.name == name)
        .ok_or(format!("node {name} missing"))
}

async fn pods_on(api: &dyn ClusterApi, node: &str) -> Result<Vec<Pod>, String> {
    api.pods(Some(node))
        .await
        .map_err(|e| format!("pods on {node}: {e}"))
}

async fn version(api: Arc<dyn ClusterApi>, seed: &ClusterSeed) -> Result<(), String> {
    let v = api
        .server_version()
        .await
        .map_err(|e| format!("server_version: {e}"))?;
    ensure!(
        v == seed.version,
        "version {v:?}, seeded {:?}",
        seed.version
    );
    Ok(())
}

async fn nodes(api: Arc<dyn ClusterApi>, seed: &ClusterSeed) -> Result<(), String> {
    let got = sorted_nodes(api.nodes().await.map_err(|e| format!("nodes: {e}"))?);
    let want = sorted_nodes(seed.nodes.clone());
    ensure!(got == want, "nodes:\n{got:#?}\nexpected:\n{want:#?}");
    Ok(())
}

async fn pods(api: Arc<dyn ClusterApi>, seed: &ClusterSeed) -> Result<(), String> {
    let got = sorted_pods(api.pods(None).await.map_err(|e| format!("pods: {e}"))?);
    let want = sorted_pods(seed.pods.clone());
    ensure!(got == want, "pods:\n{got:#?}\nexpected:\n{want:#?}");
    Ok(())
}

async fn pods_per_node(api: Arc<dyn ClusterApi>, seed: &ClusterSeed) -> Result<(), String> {
    for n in &seed.nodes {
        let got = sorted_pods(pods_on(&*api, &n.name).await?);
        let want = sorted_pods(
            seed.pods
                .iter()
                .filter(|p| p.node.as_deref() == Some(n.name.as_str()))
                .cloned()
                .collect(),
        );
        ensure!(
            got == want,
            "pods on {}: {:?}, expected {:?}",
            n.name,
            keys(&got),
            keys(&want)
        );
    }
    let none = pods_on(&*api, "no-such-node").await?;
    ensure!(none.is_empty(), "pods on a missing node: {:?}", keys(&none));
    Ok(())
}

async fn pdbs(api: Arc<dyn ClusterApi>, seed: &ClusterSeed) -> Result<(), String> {
    let mut got = api.pdbs().await.map_err(|e| format!("pdbs: {e}"))?;
    got.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut want = seed.pdbs.clone();
    want.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    ensure!(got == want, "pdbs: {got:?}, expected {want:?}");
    Ok(())
}

async fn cordon(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    for _ in 0..2 {
        api.cordon("worker-2")
            .await
            .map_err(|e| format!("cordon: {e}"))?;
        ensure!(
            node_of(&*api, "worker-2").await?.unschedulable,
            "worker-2 is schedulable after cordon"
        );
    }
    ensure!(
        !node_of(&*api, "worker-1").await?.unschedulable,
        "cordon of worker-2 changed worker-1"
    );
    for _ in 0..2 {
        api.uncordon("worker-2")
            .await
            .map_err(|e| format!("uncordon: {e}"))?;
        ensure!(
            !node_of(&*api, "worker-2").await?.unschedulable,
            "worker-2 is unschedulable after uncordon"
        );
    }
    match api.cordon("no-such-node").await {
        Err(ClusterError::NotFound(_)) => {}
        other => return Err(format!("cordon of a missing node: {other:?}")),
    }
    match api.uncordon("no-such-node").await {
        Err(ClusterError::NotFound(_)) => {}
        other => return Err(format!("uncordon of a missing node: {other:?}")),
    }
    Ok(())
}

async fn drain_evicts(api: Arc<dyn ClusterApi>, seed: &ClusterSeed) -> Result<(), String> {
    let report = api
        .drain("worker-1", &opts(Duration::from_secs(20), false, false))
        .await
        .map_err(|e| format!("drain worker-1: {e}"))?;
    let want = ["shop/db-0", "shop/files-1", "shop/web-1", "shop/web-2"];
    ensure!(
        report.evicted == want,
        "evicted {:?}, expected {want:?}",
        report.evicted
    );
    ensure!(
        report.skipped_daemonset == ["kube-system/calico-node-w1"],
        "skipped {:?}",
        report.skipped_daemonset
    );
    ensure!(
        node_of(&*api, "worker-1").await?.unschedulable,
        "worker-1 is not cordoned after the drain"
    );
    let left = keys(&pods_on(&*api, "worker-1").await?);
    ensure!(
        left == ["kube-system/calico-node-w1"],
        "pods left on worker-1: {left:?}"
    );
    // Nothing else moved.
    let others: Vec<String> = keys(&api.pods(None).await.map_err(|e| format!("pods: {e}"))?);
    let want_others: Vec<String> = keys(
        &seed
            .pods
            .iter()
            .filter(|p| p.node.as_deref() != Some("worker-1") || p.namespace == "kube-system")
            .cloned()
            .collect::<Vec<_>>(),
    );
    ensure!(others == want_others, "pods after the drain: {others:?}");
    for n in ["manager-0", "worker-2", "worker-3", "worker-4"] {
        ensure!(
            !node_of(&*api, n).await?.unschedulable,
            "the drain of worker-1 cordoned {n}"
        );
    }
    Ok(())
}

async fn drain_bare(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    match api
        .drain("worker-2", &opts(Duration::from_secs(20), true, false))
        .await
    {
        Err(ClusterError::DrainRefused { node, reason }) => {
            ensure!(node == "worker-2", "refusal names node {node}");
            ensure!(
                reason.contains("debug"),
                "refusal does not name the pod: {reason}"
            );
        }
        other => return Err(format!("drain with a bare pod: {other:?}")),
    }
    let left = keys(&pods_on(&*api, "worker-2").await?);
    ensure!(
        left == ["default/debug"],
        "a refused drain evicted pods: {left:?}"
    );
    let report = api
        .drain("worker-2", &opts(Duration::from_secs(20), false, true))
        .await
        .map_err(|e| format!("drain allowing bare pods: {e}"))?;
    ensure!(
        report.evicted == ["default/debug"],
        "evicted {:?}",
        report.evicted
    );
    Ok(())
}

async fn drain_emptydir(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    match api
        .drain("worker-3", &opts(Duration::from_secs(20), false, true))
        .await
    {
        Err(ClusterError::DrainRefused { node, reason }) => {
            ensure!(node == "worker-3", "refusal names node {node}");
            ensure!(
                reason.contains("cache-1"),
                "refusal does not name the pod: {reason}"
            );
        }
        other => return Err(format!("drain with emptyDir data: {other:?}")),
    }
    ensure!(
        keys(&pods_on(&*api, "worker-3").await?) == ["shop/cache-1"],
        "a refused drain evicted the emptyDir pod"
    );
    let report = api
        .drain("worker-3", &opts(Duration::from_secs(20), true, false))
        .await
        .map_err(|e| format!("drain allowing emptyDir data: {e}"))?;
    ensure!(
        report.evicted == ["shop/cache-1"],
        "evicted {:?}",
        report.evicted
    );
    Ok(())
}

async fn drain_pdb_blocked(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let result = api.drain("worker-4", &opts(timeout, false, false)).await;
    let elapsed = started.elapsed();
    match result {
        Err(ClusterError::EvictionBlocked { pod, pdb }) => {
            ensure!(pdb == "api-pdb", "blocked by {pdb:?}, expected api-pdb");
            ensure!(
                pod == "shop/api-1" || pod == "shop/api-2",
                "blocked pod {pod:?}"
            );
        }
        other => return Err(format!("drain against a PDB: {other:?}")),
    }
    ensure!(
        elapsed >= timeout.mul_f32(0.9),
        "gave up after {elapsed:?}, before the timeout of {timeout:?}"
    );
    ensure!(
        elapsed < timeout + Duration::from_secs(10),
        "gave up only after {elapsed:?} (timeout {timeout:?})"
    );
    let left = pods_on(&*api, "worker-4").await?;
    ensure!(
        left.len() == 1,
        "the PDB allows one disruption: pods left {:?}",
        keys(&left)
    );
    Ok(())
}

async fn drain_missing(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    match api
        .drain("no-such-node", &opts(Duration::from_secs(5), true, true))
        .await
    {
        Err(ClusterError::NotFound(_)) => Ok(()),
        other => Err(format!("drain of a missing node: {other:?}")),
    }
}

async fn drain_leaves_mirror_pods(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    let report = api
        .drain("manager-0", &opts(Duration::from_secs(20), false, false))
        .await
        .map_err(|e| format!("drain manager-0: {e}"))?;
    ensure!(report.evicted.is_empty(), "evicted {:?}", report.evicted);
    ensure!(
        report.skipped_daemonset == ["kube-system/calico-node-m0"],
        "skipped {:?}",
        report.skipped_daemonset
    );
    let left = keys(&pods_on(&*api, "manager-0").await?);
    ensure!(
        left == [
            "kube-system/calico-node-m0",
            "kube-system/kube-apiserver-manager-0"
        ],
        "pods left on manager-0: {left:?}"
    );
    Ok(())
}

fn cm_ref() -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(NS.into()),
        name: "ferry-state".into(),
    }
}

fn cr_ref() -> ObjectRef {
    ObjectRef {
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: "ClusterRole".into(),
        namespace: None,
        name: "development-team".into(),
    }
}

async fn apply_get(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    let r = cm_ref();
    ensure!(
        api.get(&r)
            .await
            .map_err(|e| format!("get: {e}"))?
            .is_none(),
        "the ConfigMap exists before apply"
    );
    let cm = |data: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "ferry-state", "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "ferry"}},
               "data": data})
    };
    api.apply(&cm(json!({"a": "1"})))
        .await
        .map_err(|e| format!("apply (create): {e}"))?;
    let got = api
        .get(&r)
        .await
        .map_err(|e| format!("get: {e}"))?
        .ok_or("get after apply: None")?;
    ensure!(
        got["apiVersion"] == "v1" && got["kind"] == "ConfigMap",
        "get lacks apiVersion/kind: {got}"
    );
    ensure!(got["metadata"]["name"] == "ferry-state", "name: {got}");
    ensure!(got["data"] == json!({"a": "1"}), "data after create: {got}");
    ensure!(
        got["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ferry",
        "labels: {got}"
    );
    api.apply(&cm(json!({"a": "2", "b": "3"})))
        .await
        .map_err(|e| format!("apply (update): {e}"))?;
    let got = api
        .get(&r)
        .await
        .map_err(|e| format!("get: {e}"))?
        .ok_or("get after update: None")?;
    ensure!(
        got["data"] == json!({"a": "2", "b": "3"}),
        "data after update: {got}"
    );

    // A cluster-scoped kind.
    let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "development-team"},
                    "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"ferry.io/role": "none"}}]},
                    "rules": []});
    api.apply(&cr)
        .await
        .map_err(|e| format!("apply ClusterRole: {e}"))?;
    let got = api
        .get(&cr_ref())
        .await
        .map_err(|e| format!("get ClusterRole: {e}"))?
        .ok_or("get ClusterRole after apply: None")?;
    ensure!(
        got["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["ferry.io/role"] == "none",
        "ClusterRole: {got}"
    );
    Ok(())
}

async fn delete(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    let r = cm_ref();
    let gone = api.delete(&r).await.map_err(|e| format!("delete: {e}"))?;
    ensure!(!gone, "delete of a missing object returned true");
    api.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "ferry-state", "namespace": NS}, "data": {}}))
        .await
        .map_err(|e| format!("apply: {e}"))?;
    ensure!(
        api.delete(&r).await.map_err(|e| format!("delete: {e}"))?,
        "delete of an existing object returned false"
    );
    ensure!(
        api.get(&r)
            .await
            .map_err(|e| format!("get: {e}"))?
            .is_none(),
        "the object is still there after delete"
    );
    ensure!(
        !api.delete(&r).await.map_err(|e| format!("delete: {e}"))?,
        "a second delete returned true"
    );
    ensure!(
        !api.delete(&cr_ref())
            .await
            .map_err(|e| format!("delete ClusterRole: {e}"))?,
        "delete of a missing ClusterRole returned true"
    );
    Ok(())
}

async fn apply_invalid(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    match api
        .apply(&json!({"apiVersion": "v1", "metadata": {"name": "x", "namespace": NS}}))
        .await
    {
        Err(ClusterError::Invalid(_)) => Ok(()),
        other => Err(format!("apply without kind: {other:?}")),
    }
}

async fn list(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    for (name, tier) in [
        ("ferry-l-a", Some("cp")),
        ("ferry-l-b", Some("worker")),
        ("ferry-l-c", None),
    ] {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name, "namespace": NS}, "data": {}});
        if let Some(t) = tier {
            cm["metadata"]["labels"] = json!({ "ferry.test/tier": t });
        }
        api.apply(&cm)
            .await
            .map_err(|e| format!("apply {name}: {e}"))?;
    }
    let names = |items: Vec<serde_json::Value>| -> Result<Vec<String>, String> {
        let mut v = Vec::new();
        for o in items {
            ensure!(
                o["apiVersion"] == "v1" && o["kind"] == "ConfigMap",
                "a listed item lacks apiVersion/kind: {o}"
            );
            let n = o["metadata"]["name"].as_str().unwrap_or("").to_string();
            if n.starts_with("ferry-l-") {
                v.push(n);
            }
        }
        v.sort();
        Ok(v)
    };
    let l = |sel: Option<&'static str>| {
        let api = api.clone();
        async move {
            api.list("v1", "ConfigMap", Some(NS), sel)
                .await
                .map_err(|e| format!("list {sel:?}: {e}"))
        }
    };
    let all = names(l(None).await?)?;
    ensure!(
        all == ["ferry-l-a", "ferry-l-b", "ferry-l-c"],
        "list without selector: {all:?}"
    );
    let cp = names(l(Some("ferry.test/tier=cp")).await?)?;
    ensure!(cp == ["ferry-l-a"], "tier=cp: {cp:?}");
    let any = names(l(Some("ferry.test/tier")).await?)?;
    ensure!(any == ["ferry-l-a", "ferry-l-b"], "tier (exists): {any:?}");
    let none = names(l(Some("!ferry.test/tier")).await?)?;
    ensure!(none == ["ferry-l-c"], "!tier: {none:?}");
    let not_cp = names(l(Some("ferry.test/tier!=cp")).await?)?;
    ensure!(not_cp == ["ferry-l-b", "ferry-l-c"], "tier!=cp: {not_cp:?}");
    let elsewhere = api
        .list("v1", "ConfigMap", Some("default"), Some("ferry.test/tier"))
        .await
        .map_err(|e| format!("list in default: {e}"))?;
    ensure!(
        elsewhere.is_empty(),
        "another namespace's list: {elsewhere:?}"
    );
    let nodes = api
        .list(
            "v1",
            "Node",
            None,
            Some("node-role.kubernetes.io/control-plane"),
        )
        .await
        .map_err(|e| format!("list nodes: {e}"))?;
    let nodes: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    ensure!(nodes == ["manager-0"], "control-plane nodes: {nodes:?}");
    match api.list("ferry.test/v1", "Nothing", None, None).await {
        Err(ClusterError::Invalid(_)) => Ok(()),
        other => Err(format!("list of a kind not served: {other:?}")),
    }
}

async fn apply_forced(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    let cm = |data: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "ferry-state", "namespace": NS}, "data": data})
    };
    api.apply(&cm(json!({"a": "1"})))
        .await
        .map_err(|e| format!("apply: {e}"))?;
    let read = api
        .get(&cm_ref())
        .await
        .map_err(|e| format!("get: {e}"))?
        .ok_or("get after apply: None")?;
    let version = read["metadata"]["resourceVersion"].clone();
    ensure!(version.is_string(), "no resourceVersion: {read}");
    let mut at = cm(json!({"a": "2"}));
    at["metadata"]["resourceVersion"] = version.clone();
    api.apply_forced(&at)
        .await
        .map_err(|e| format!("forced apply at the version read: {e}"))?;
    let got = api
        .get(&cm_ref())
        .await
        .map_err(|e| format!("get: {e}"))?
        .ok_or("get after forced apply: None")?;
    ensure!(
        got["data"] == json!({"a": "2"}),
        "data after forced apply: {got}"
    );
    let mut stale = cm(json!({"a": "3"}));
    stale["metadata"]["resourceVersion"] = version;
    match api.apply_forced(&stale).await {
        Err(ClusterError::Conflict(_)) => {}
        other => return Err(format!("forced apply at a stale version: {other:?}")),
    }
    let got = api
        .get(&cm_ref())
        .await
        .map_err(|e| format!("get: {e}"))?
        .ok_or("get after the refused apply: None")?;
    ensure!(
        got["data"] == json!({"a": "2"}),
        "a refused apply changed the object: {got}"
    );
    Ok(())
}

async fn create_and_review(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "ferry-created", "namespace": NS}, "data": {"k": "v"}});
    let made = api.create(&cm).await.map_err(|e| format!("create: {e}"))?;
    ensure!(
        made["metadata"]["name"] == "ferry-created" && made["data"]["k"] == "v",
        "create answered {made}"
    );
    match api.create(&cm).await {
        Err(ClusterError::Conflict(_)) => {}
        other => return Err(format!("a second create: {other:?}")),
    }
    const USER: &str = "ferry-conformance-lease-user";
    let review = |name: &str, verb: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": USER, "resourceAttributes": {
                   "namespace": NS, "verb": verb, "group": "coordination.k8s.io",
                   "resource": "leases", "name": name}}})
    };
    let allowed = |api: Arc<dyn ClusterApi>, name: &'static str, verb: &'static str| async move {
        let a = api
            .create(&review(name, verb))
            .await
            .map_err(|e| format!("review {verb} {name}: {e}"))?;
        a["status"]["allowed"]
            .as_bool()
            .ok_or(format!("review {verb} {name}: no status.allowed in {a}"))
    };
    ensure!(
        !allowed(api.clone(), "migration", "update").await?,
        "allowed before any grant"
    );
    api.apply(
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "ferry-lease", "namespace": NS},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                   "resourceNames": ["migration"], "verbs": ["get", "update"]}]}),
    )
    .await
    .map_err(|e| format!("apply Role: {e}"))?;
    api.apply(
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "ferry-lease", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ferry-lease"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]}),
    )
    .await
    .map_err(|e| format!("apply RoleBinding: {e}"))?;
    // the real authorizer reads the grant from a cache
    let mut granted = false;
    for _ in 0..50 {
        if allowed(api.clone(), "migration", "update").await? {
            granted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(granted, "update of the lease not allowed after the grant");
    ensure!(
        allowed(api.clone(), "migration", "get").await?,
        "get of the lease not allowed after the grant"
    );
    ensure!(
        !allowed(api.clone(), "other", "update").await?,
        "a lease the Role does not name is allowed"
    );
    ensure!(
        !allowed(api.clone(), "migration", "delete").await?,
        "a verb the Role does not grant is allowed"
    );
    Ok(())
}

async fn merge_patch(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    let node = ObjectRef {
        api_version: "v1".into(),
        kind: "Node".into(),
        namespace: None,
        name: "worker-1".into(),
    };
    let label = |v: &serde_json::Value| v["metadata"]["labels"]["ferry.test/patched"].clone();
    api.merge_patch(
        &node,
        &json!({"metadata": {"labels": {"ferry.test/patched": "yes"}}}),
    )
    .await
    .map_err(|e| format!("merge_patch node (add label): {e}"))?;
    let got = api
        .get(&node)
        .await
        .map_err(|e| format!("get node: {e}"))?
        .ok_or("get node: None")?;
    ensure!(label(&got) == "yes", "label not added: {got}");
    ensure!(
        got["metadata"]["labels"]["kubernetes.io/hostname"] == "worker-1",
        "other labels lost: {got}"
    );
    api.merge_patch(
        &node,
        &json!({"metadata": {"labels": {"ferry.test/patched": null}}}),
    )
    .await
    .map_err(|e| format!("merge_patch node (remove label): {e}"))?;
    let got = api
        .get(&node)
        .await
        .map_err(|e| format!("get node: {e}"))?
        .ok_or("get node: None")?;
    ensure!(label(&got).is_null(), "label not removed: {got}");
    ensure!(
        got["metadata"]["labels"]["kubernetes.io/hostname"] == "worker-1",
        "other labels lost: {got}"
    );
    // An object: keys set, keys removed by null, the rest kept.
    api.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "ferry-state", "namespace": NS},
                       "data": {"a": "1", "b": "2"}}))
        .await
        .map_err(|e| format!("apply: {e}"))?;
    api.merge_patch(&cm_ref(), &json!({"data": {"a": null, "c": "3"}}))
        .await
        .map_err(|e| format!("merge_patch ConfigMap: {e}"))?;
    let got = api
        .get(&cm_ref())
        .await
        .map_err(|e| format!("get: {e}"))?
        .ok_or("get: None")?;
    ensure!(got["data"] == json!({"b": "2", "c": "3"}), "data: {got}");
    let missing = ObjectRef {
        name: "ferry-missing".into(),
        ..cm_ref()
    };
    match api
        .merge_patch(&missing, &json!({"data": {"a": "1"}}))
        .await
    {
        Err(ClusterError::NotFound(_)) => Ok(()),
        other => Err(format!("merge_patch of a missing object: {other:?}")),
    }
}

/// The safety checks' snapshot reads every list without a failure, and what it read of nodes,
/// pods and budgets is the seed (the numbers of each budget's status included).
async fn snapshot(api: Arc<dyn ClusterApi>, seed: &ClusterSeed) -> Result<(), String> {
    let s = ferry_core::cluster::snapshot(&*api)
        .await
        .map_err(|e| format!("snapshot: {e}"))?;
    ensure!(s.failed.is_empty(), "lists that failed: {:?}", s.failed);
    ensure!(
        sorted_nodes(s.nodes.clone()) == sorted_nodes(seed.nodes.clone()),
        "nodes: {:?}",
        s.nodes
    );
    ensure!(
        sorted_pods(s.pods.clone()) == sorted_pods(seed.pods.clone()),
        "pods: {:?}",
        keys(&s.pods)
    );
    let by_name = |v: &mut Vec<Pdb>| {
        v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    };
    let (mut got, mut want) = (s.pdbs.clone(), seed.pdbs.clone());
    by_name(&mut got);
    by_name(&mut want);
    ensure!(got == want, "pdbs: {got:?}, expected {want:?}");
    ensure!(
        s.etcd_members.is_none(),
        "etcd members do not come from the API"
    );
    // the seed's owners are not controllers of the built-in kinds the checks read
    ensure!(
        !s.controllers
            .iter()
            .any(|c| c.namespace == NS || c.namespace == "kube-system"),
        "controllers nobody seeded: {:?}",
        s.controllers
    );
    Ok(())
}

async fn controllers_unknown_kind(api: Arc<dyn ClusterApi>) -> Result<(), String> {
    match api.controllers("CronJob").await {
        Err(ClusterError::Invalid(m)) => {
            ensure!(
                m.contains("CronJob"),
                "the error does not name the kind: {m}"
            );
            Ok(())
        }
        other => Err(format!("controllers(CronJob): {other:?}, expected Invalid")),
    }
}

/// Runs every case against fresh backends from `setup` and reports each one.
pub async fn run_suite(setup: &dyn ClusterSetup) -> SuiteReport {
    let mut seed = standard_seed();
    if let Some(v) = setup.fixed_version().await {
        seed.version = v;
    }
    let mut report = SuiteReport::new("ClusterApi");
    macro_rules! case {
        ($name:literal, |$api:ident| $body:expr) => {
            report
                .case($name, async {
                    let $api = backend(setup, &seed).await?;
                    $body.await
                })
                .await;
        };
    }
    case!("server-version", |api| version(api, &seed));
    case!("nodes.as-seeded", |api| nodes(api, &seed));
    case!("pods.as-seeded", |api| pods(api, &seed));
    case!("pods.per-node", |api| pods_per_node(api, &seed));
    case!("pdbs.as-seeded", |api| pdbs(api, &seed));
    case!("cordon.idempotent", |api| cordon(api));
    case!("drain.evicts-and-skips-daemonsets", |api| drain_evicts(
        api, &seed
    ));
    case!("drain.bare-pod", |api| drain_bare(api));
    case!("drain.emptydir", |api| drain_emptydir(api));
    case!("drain.pdb-blocked", |api| drain_pdb_blocked(api));
    case!("drain.missing-node", |api| drain_missing(api));
    case!("drain.mirror-pods", |api| drain_leaves_mirror_pods(api));
    case!("apply.create-update-get", |api| apply_get(api));
    case!("delete.missing-is-false", |api| delete(api));
    case!("apply.invalid", |api| apply_invalid(api));
    case!("merge-patch.labels-and-objects", |api| merge_patch(api));
    case!("list.namespace-and-selector", |api| list(api));
    case!("apply-forced.conditional", |api| apply_forced(api));
    case!("create.conflict-and-review", |api| create_and_review(api));
    case!("snapshot.every-list-read", |api| snapshot(api, &seed));
    case!("controllers.unknown-kind", |api| controllers_unknown_kind(
        api
    ));
    report
}
