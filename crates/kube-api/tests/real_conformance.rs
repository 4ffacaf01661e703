//! `KubeCluster` against the **real** kube-apiserver, controller manager and scheduler of
//! `testenv/k8s` passes core's `ClusterApi` conformance suite, the same suite the in-process
//! server and the in-memory fake pass.
//!
//! How the suite's seed becomes a real cluster (fresh for every case):
//! - Nodes are created with the seed's labels, then their status (Ready condition, InternalIP,
//!   kubelet version) is written through the status subresource, as a kubelet would. They carry
//!   no kwok annotation: nothing else writes their status during a case.
//! - Pods are created bound to their node (`spec.nodeName`), with the seed's labels and
//!   volumes, no service-account token (so no injected volume), a scheduler name no scheduler
//!   serves (the seed's unscheduled pod stays Pending) and a termination grace of 0 (so an
//!   evicted pod is gone at once, as kubelet would make it after its grace); their phase and
//!   Ready condition are written through the status subresource.
//! - The seed's owners must exist, or the real garbage collector deletes the pods. The model
//!   the suite checks has no controller that recreates evicted pods, so the owners are custom
//!   resources of kinds named like the built-in ones (`ReplicaSet`, `StatefulSet`,
//!   `DaemonSet` in group `conformance.ferry.test`) that no controller acts on; the mirror pod's
//!   owner is its real Node. (The real Deployment, ReplicaSet and DaemonSet controllers are
//!   exercised by `real_cluster.rs`.)
//! - PodDisruptionBudgets are created with an integer `minAvailable` that makes the **real
//!   disruption controller** compute the seeded `disruptionsAllowed`; the case starts only once
//!   it has (status observed at the PDB's generation). Evictions then get their 429 from the
//!   real API server.
//! - The server's version cannot be seeded: the suite expects the one it reports.
//!
//! Every object the suite makes carries the annotation `ferry.test/conformance` (labels cannot:
//! the suite compares them) and is deleted before each case and at the end. The suite lists
//! every node and pod of the cluster, so it refuses to run while objects it did not make are
//! there, naming them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::ClusterApi;
use ferry_core::cluster::{Pdb, Pod, Volume};
use ferry_kube_api::testing::real::{RealServer, announce, eventually};
use ferry_kube_api::testing::{resources_json, taints_json, tolerations_json};
use ferry_testing::conformance::cluster::{ClusterSeed, ClusterSetup, run_suite};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The annotation that marks what this suite made.
const MARK: &str = "ferry.test/conformance";
/// The group of the owner kinds.
const GROUP: &str = "conformance.ferry.test";
/// Owner kinds that have no controller in the real cluster here.
const OWNER_KINDS: [&str; 3] = ["ReplicaSet", "StatefulSet", "DaemonSet"];
/// Namespaces the seed uses that a fresh cluster lacks.
const NAMESPACES: [&str; 1] = ["shop"];

struct RealSetup {
    server: RealServer,
    client: kube::Client,
    /// `(kind, name)` of an owner custom resource -> its uid; made once, kept across cases.
    owners: Mutex<BTreeMap<(String, String), String>>,
}

fn marked(meta: &kube::api::ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MARK))
}

fn owner_resource(kind: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: "v1".into(),
        api_version: format!("{GROUP}/v1"),
        kind: kind.into(),
        plural: format!("{}s", kind.to_ascii_lowercase()),
    }
}

fn grace0() -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    }
}

fn volume_spec(v: &Volume) -> Value {
    match v {
        Volume::EmptyDir { name } => json!({"name": name, "emptyDir": {}}),
        Volume::HostPath { name, path } => json!({"name": name, "hostPath": {"path": path}}),
        Volume::PersistentVolumeClaim { name, claim } => {
            json!({"name": name, "persistentVolumeClaim": {"claimName": claim}})
        }
        Volume::Other { name } => json!({"name": name, "configMap": {"name": name}}),
    }
}

impl RealSetup {
    async fn new() -> RealSetup {
        let server = RealServer::from_env("the ClusterApi conformance suite");
        let client = server.client().await;
        let setup = RealSetup {
            server,
            client,
            owners: Mutex::new(BTreeMap::new()),
        };
        setup.clean().await.unwrap();
        setup.refuse_foreign_objects().await;
        setup.install_owner_kinds().await;
        for ns in NAMESPACES {
            let api: Api<core::Namespace> = Api::all(setup.client.clone());
            // An earlier run's namespace may still be terminating: no pod can be made in it.
            eventually(
                &format!("namespace {ns} of an earlier run gone"),
                Duration::from_secs(60),
                || async {
                    match api.get_opt(ns).await {
                        Ok(Some(n)) if n.metadata.deletion_timestamp.is_some() => {
                            Err("terminating".to_string())
                        }
                        Ok(_) => Ok(()),
                        Err(e) => Err(e.to_string()),
                    }
                },
            )
            .await;
            let obj = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "annotations": {MARK: "true"}}});
            api.patch(ns, &PatchParams::apply("ferry-test"), &Patch::Apply(obj))
                .await
                .unwrap();
        }
        // Pods need their namespace's default service account, which the controller manager
        // makes.
        for ns in ["shop", "default", "kube-system"] {
            let sa: Api<core::ServiceAccount> = Api::namespaced(setup.client.clone(), ns);
            eventually(
                &format!("service account {ns}/default"),
                Duration::from_secs(60),
                || async {
                    match sa.get_opt("default").await {
                        Ok(Some(_)) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await;
        }
        setup
    }

    /// Nodes and pods this suite did not make would break every "as seeded" case.
    async fn refuse_foreign_objects(&self) {
        let nodes: Api<core::Node> = Api::all(self.client.clone());
        let pods: Api<core::Pod> = Api::all(self.client.clone());
        let lp = ListParams::default();
        let mut foreign: Vec<String> = nodes
            .list(&lp)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|n| !marked(&n.metadata))
            .map(|n| format!("node {}", n.metadata.name.unwrap_or_default()))
            .collect();
        foreign.extend(
            pods.list(&lp)
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|p| !marked(&p.metadata))
                .map(|p| {
                    format!(
                        "pod {}/{}",
                        p.metadata.namespace.unwrap_or_default(),
                        p.metadata.name.unwrap_or_default()
                    )
                }),
        );
        assert!(
            foreign.is_empty(),
            "the conformance suite needs the cluster of {} to itself (it compares every node and \
             pod), but it holds objects another test left: {}",
            self.server.kubeconfig.display(),
            foreign.join(", ")
        );
    }

    async fn install_owner_kinds(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for kind in OWNER_KINDS {
            let r = owner_resource(kind);
            let name = format!("{}.{GROUP}", r.plural);
            let crd = json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": name, "annotations": {MARK: "true"}},
                "spec": {"group": GROUP, "scope": "Cluster",
                    "names": {"kind": kind, "plural": r.plural, "singular": kind.to_ascii_lowercase(),
                              "listKind": format!("{kind}List")},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object",
                            "x-kubernetes-preserve-unknown-fields": true}}}]}
            });
            crds.patch(&name, &PatchParams::apply("ferry-test"), &Patch::Apply(crd))
                .await
                .unwrap();
            eventually(
                &format!("CRD {name} established"),
                Duration::from_secs(30),
                || async {
                    let c = crds.get(&name).await.map_err(|e| e.to_string())?;
                    let ok = c
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    if ok {
                        Ok(())
                    } else {
                        Err("not established".into())
                    }
                },
            )
            .await;
        }
    }

    /// The uid of the owner custom resource `kind/name`, made on first use.
    async fn owner_uid(&self, kind: &str, name: &str) -> Result<String, String> {
        let mut owners = self.owners.lock().await;
        if let Some(uid) = owners.get(&(kind.to_string(), name.to_string())) {
            return Ok(uid.clone());
        }
        let ar = owner_resource(kind);
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let obj = json!({"apiVersion": ar.api_version, "kind": kind,
            "metadata": {"name": name, "annotations": {MARK: "true"}}});
        // The API server may not serve a just-established kind for a moment.
        let created = eventually(
            &format!("owner {kind}/{name}"),
            Duration::from_secs(30),
            || async {
                api.patch(name, &PatchParams::apply("ferry-test"), &Patch::Apply(&obj))
                    .await
                    .map_err(|e| e.to_string())
            },
        )
        .await;
        let uid = created.metadata.uid.ok_or("owner without uid")?;
        owners.insert((kind.to_string(), name.to_string()), uid.clone());
        Ok(uid)
    }

    /// Deletes what this suite made (but the owner kinds and owners, kept across cases) and
    /// what its cases make (the ConfigMap and ClusterRole of the apply cases), and waits until
    /// it is gone.
    async fn clean(&self) -> Result<(), String> {
        let e = |e: kube::Error| e.to_string();
        let pods: Api<core::Pod> = Api::all(self.client.clone());
        let nodes: Api<core::Node> = Api::all(self.client.clone());
        let pdbs: Api<PodDisruptionBudget> = Api::all(self.client.clone());
        for p in pods.list(&ListParams::default()).await.map_err(e)?.items {
            if marked(&p.metadata) {
                let ns = p.metadata.namespace.unwrap_or_default();
                let name = p.metadata.name.unwrap_or_default();
                let api: Api<core::Pod> = Api::namespaced(self.client.clone(), &ns);
                ignore_missing(api.delete(&name, &grace0()).await.map(|_| ()))?;
            }
        }
        for p in pdbs.list(&ListParams::default()).await.map_err(e)?.items {
            if marked(&p.metadata) {
                let ns = p.metadata.namespace.unwrap_or_default();
                let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &ns);
                let name = p.metadata.name.unwrap_or_default();
                ignore_missing(api.delete(&name, &grace0()).await.map(|_| ()))?;
            }
        }
        for n in nodes.list(&ListParams::default()).await.map_err(e)?.items {
            if marked(&n.metadata) {
                let name = n.metadata.name.unwrap_or_default();
                ignore_missing(nodes.delete(&name, &grace0()).await.map(|_| ()))?;
            }
        }
        let cms: Api<core::ConfigMap> = Api::namespaced(self.client.clone(), "shop");
        ignore_missing(cms.delete("ferry-state", &grace0()).await.map(|_| ()))?;
        let crs: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(self.client.clone());
        ignore_missing(crs.delete("development-team", &grace0()).await.map(|_| ()))?;
        eventually(
            "the suite's objects gone",
            Duration::from_secs(30),
            || async {
                let left: Vec<String> = pods
                    .list(&ListParams::default())
                    .await
                    .map_err(e)?
                    .items
                    .into_iter()
                    .filter(|p| marked(&p.metadata))
                    .map(|p| p.metadata.name.unwrap_or_default())
                    .chain(
                        nodes
                            .list(&ListParams::default())
                            .await
                            .map_err(e)?
                            .items
                            .into_iter()
                            .filter(|n| marked(&n.metadata))
                            .map(|n| n.metadata.name.unwrap_or_default()),
                    )
                    .collect();
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(left.join(", "))
                }
            },
        )
        .await;
        Ok(())
    }

    /// Everything, owners, owner kinds and namespaces too: the cluster as the suite found it.
    async fn remove_all(&self) {
        self.clean().await.unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for kind in OWNER_KINDS {
            let name = format!("{}.{GROUP}", owner_resource(kind).plural);
            ignore_missing(crds.delete(&name, &grace0()).await.map(|_| ())).unwrap();
        }
        let nss: Api<core::Namespace> = Api::all(self.client.clone());
        for ns in NAMESPACES {
            ignore_missing(nss.delete(ns, &DeleteParams::default()).await.map(|_| ())).unwrap();
        }
    }

    async fn seed_node(&self, n: &ferry_core::cluster::Node) -> Result<String, String> {
        let api: Api<core::Node> = Api::all(self.client.clone());
        let obj: core::Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "labels": n.labels, "annotations": {MARK: "true"}},
            "spec": {"unschedulable": n.unschedulable, "taints": taints_json(&n.taints)}
        }))
        .map_err(|e| e.to_string())?;
        let created = api
            .create(&PostParams::default(), &obj)
            .await
            .map_err(|e| format!("create node {}: {e}", n.name))?;
        let now = now_rfc3339();
        let ready = if n.ready { "True" } else { "False" };
        let addresses: Vec<Value> = n
            .internal_ip
            .iter()
            .map(|ip| json!({"type": "InternalIP", "address": ip}))
            .collect();
        let status = json!({"status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": "FerryConformance",
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": addresses,
            "allocatable": n.allocatable.map(|a| resources_json(&a, true)),
            "nodeInfo": {"kubeletVersion": n.kubelet_version, "machineID": "", "systemUUID": "",
                "bootID": "", "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "",
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}
        }});
        api.patch_status(&n.name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .map_err(|e| format!("status of node {}: {e}", n.name))?;
        created
            .metadata
            .uid
            .ok_or_else(|| "node without uid".into())
    }

    async fn seed_pod(&self, p: &Pod, node_uids: &BTreeMap<String, String>) -> Result<(), String> {
        let owner = match &p.owner {
            None => Value::Null,
            Some(o) if o.kind == "Node" => json!([{"apiVersion": "v1", "kind": "Node",
                "name": o.name, "uid": node_uids.get(&o.name).ok_or("owner node not seeded")?,
                "controller": true}]),
            Some(o) => {
                let uid = self.owner_uid(&o.kind, &o.name).await?;
                json!([{"apiVersion": format!("{GROUP}/v1"), "kind": o.kind, "name": o.name,
                    "uid": uid, "controller": true, "blockOwnerDeletion": false}])
            }
        };
        let mut meta = json!({"name": p.name, "namespace": p.namespace, "labels": p.labels,
            "annotations": {MARK: "true"}});
        if !owner.is_null() {
            meta["ownerReferences"] = owner;
        }
        let mut main = json!({"name": "main", "image": "registry.invalid/pause:1"});
        if p.requests != ferry_core::cluster::Resources::default() {
            main["resources"] = json!({"requests": resources_json(&p.requests, false)});
        }
        let mut spec = json!({
            "containers": [main],
            "nodeSelector": p.node_selector,
            "tolerations": tolerations_json(&p.tolerations),
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 0,
            "schedulerName": "ferry-conformance-unscheduled",
            "volumes": p.volumes.iter().map(volume_spec).collect::<Vec<_>>(),
        });
        if let Some(n) = &p.node {
            spec["nodeName"] = json!(n);
        }
        let obj: core::Pod = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}),
        )
        .map_err(|e| e.to_string())?;
        let api: Api<core::Pod> = Api::namespaced(self.client.clone(), &p.namespace);
        api.create(&PostParams::default(), &obj)
            .await
            .map_err(|e| format!("create pod {}/{}: {e}", p.namespace, p.name))?;
        let ready = if p.ready { "True" } else { "False" };
        let status = json!({"status": {"phase": p.phase,
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now_rfc3339()}]}});
        api.patch_status(&p.name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .map_err(|e| format!("status of pod {}/{}: {e}", p.namespace, p.name))?;
        Ok(())
    }

    /// A PDB whose integer `minAvailable` makes the disruption controller allow exactly the
    /// seeded number of disruptions, once it has seen it.
    async fn seed_pdb(&self, pdb: &Pdb, pods: &[Pod]) -> Result<(), String> {
        let healthy = pods.iter().filter(|p| p.ready && pdb.covers(p)).count() as i32;
        let min_available = healthy - pdb.disruptions_allowed;
        if min_available < 0 {
            return Err(format!(
                "PDB {}: {} disruptions seeded but only {healthy} healthy pods",
                pdb.name, pdb.disruptions_allowed
            ));
        }
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &pdb.namespace);
        let obj: PodDisruptionBudget = serde_json::from_value(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": pdb.name, "namespace": pdb.namespace, "annotations": {MARK: "true"}},
            "spec": {"minAvailable": min_available, "selector": pdb.selector}
        }))
        .map_err(|e| e.to_string())?;
        api.create(&PostParams::default(), &obj)
            .await
            .map_err(|e| format!("create PDB {}: {e}", pdb.name))?;
        let want = pdb.disruptions_allowed;
        eventually(
            &format!(
                "the disruption controller allowing {want} disruptions for PDB {}",
                pdb.name
            ),
            Duration::from_secs(30),
            || async {
                let got = api.get(&pdb.name).await.map_err(|e| e.to_string())?;
                let generation = got.metadata.generation;
                let status = got.status.unwrap_or_default();
                if status.observed_generation == generation && status.disruptions_allowed == want {
                    Ok(())
                } else {
                    Err(format!("{status:?}"))
                }
            },
        )
        .await;
        Ok(())
    }
}

fn ignore_missing(r: Result<(), kube::Error>) -> Result<(), String> {
    match r {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Now as an RFC 3339 UTC timestamp, what Kubernetes' `Time` takes.
fn now_rfc3339() -> String {
    use k8s_openapi::chrono::{DateTime, SecondsFormat};
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    DateTime::from_timestamp(secs, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[async_trait::async_trait]
impl ClusterSetup for RealSetup {
    async fn start(&self, seed: &ClusterSeed) -> Result<Arc<dyn ClusterApi>, String> {
        self.clean().await?;
        let mut node_uids = BTreeMap::new();
        for n in &seed.nodes {
            node_uids.insert(n.name.clone(), self.seed_node(n).await?);
        }
        for p in &seed.pods {
            self.seed_pod(p, &node_uids).await?;
        }
        for pdb in &seed.pdbs {
            self.seed_pdb(pdb, &seed.pods).await?;
        }
        Ok(Arc::new(
            self.server.cluster(Duration::from_millis(200)).await,
        ))
    }

    async fn fixed_version(&self) -> Option<String> {
        let v = self.client.apiserver_version().await.unwrap();
        Some(v.git_version)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_cluster_passes_the_conformance_suite_against_the_real_api_server() {
    let setup = RealSetup::new().await;
    let report = run_suite(&setup).await;
    println!("{report}");
    announce(&format!(
        "ClusterApi conformance against the real kube-apiserver: {} of {} cases passed",
        report.passed(),
        report.cases.len()
    ));
    setup.remove_all().await;
    report.assert_all_passed();
    // Not a hand-made server: the version the real one was built and stamped as.
    let version = setup.fixed_version().await.unwrap();
    assert!(
        version.starts_with("v1.") && !version.contains("master"),
        "{version}"
    );
}
