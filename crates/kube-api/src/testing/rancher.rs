//! A double of Rancher's RKE2 provisioning and of what the downstream cluster does with it, for
//! tests on two real control planes of `testenv/k8s`: the management cluster holds Rancher's
//! `provisioning.cattle.io/v1` `Cluster` (Rancher's own CRD, `testenv/rancher/crds`), the
//! downstream cluster the nodes (Ready through kwok), the controller managers and their Leases,
//! and RKE2's `HelmChart` objects (the helm controller's CRD).
//!
//! **Provisioning** (Rancher's planner and rke2): each generation of the `Cluster` gives every
//! machine its configuration as Rancher renders it: `machineGlobalConfig`, then each
//! `machineSelectorConfig` entry whose `machineLabelSelector` matches the machine's labels
//! (`rke.cattle.io/control-plane-role`, `…/etcd-role`, `…/worker-role`), in order, a key of a later
//! entry replacing the earlier value. The control-plane machines are then rolled one at a time:
//! a machine whose kube-controller-manager arguments changed gets a new static pod (its mirror
//! pod `kube-system/kube-controller-manager-<node>`: `--cloud-provider` from
//! `cloud-provider-name`, each `kube-controller-manager-arg` `k=v` as `--k=v` and `k` as
//! `--k=true`), and the next waits until it runs. `additionalManifest` is applied to the
//! downstream cluster, and what an earlier manifest held and this one does not is deleted. The
//! status follows: `observedGeneration`, `ready` and the `Updated`/`Ready` conditions.
//!
//! **Helm controller**: a `HelmChart` in `kube-system` named `aws-cloud-controller-manager` is
//! installed as the chart renders it (ServiceAccount, ClusterRole and its binding, the
//! authentication reader binding, the DaemonSet with the values' image, args, node selector,
//! tolerations, host network and extra volumes); the real DaemonSet controller, scheduler and
//! kwok run its pods. A chart that is deleted is uninstalled.
//!
//! **Controller managers** (what their processes would do): each running kube-controller-manager
//! with `--enable-leader-migration` and a cloud provider other than `external`, and each running
//! cloud-controller-manager pod with `--enable-leader-migration=true`, may hold the migration
//! Lease `kube-system/cloud-provider-extraction-migration`; a holder that still may keeps and
//! renews it (every poll); another takes it over only once it has not been renewed for its
//! `leaseDurationSeconds` (15), as client-go's leader election does. Each renews its own Lease
//! (`kube-controller-manager`, `cloud-controller-manager`). Identities are `<node>_<pod uid>`.
//! The cloud-controller-manager that holds the migration Lease (or runs without migration)
//! initialises nodes with the `node.cloudprovider.kubernetes.io/uninitialized` taint: sets
//! their provider ID (from the machines' instances) and removes the taint.
//!
//! **Kubelets**: a machine whose kubelet changes from the in-tree provider to `external` keeps
//! its Node (a kubelet never taints a Node it finds), unless a fault says otherwise. A mirror pod
//! that disappears (kwok, finishing the deletion of its predecessor of the same name, can delete
//! it) is made again from the machine's static pod, as a kubelet does.
//!
//! Failures on purpose: the ConfigMap `rancher-double-faults` in the `Cluster`'s namespace, keys
//! `keep-taint` and `no-provider-id` (node names, one per line), `rollout-stuck`, `stall` and
//! `uncordon` (any value):
//! - `keep-taint`: when its kubelet goes external, the node registers again (a new Node without
//!   a provider ID, tainted `uninitialized`) and the cloud-controller-manager cannot find its
//!   instance, so the taint stays (rke2 #7822);
//! - `no-provider-id`: the node registers again without a provider ID and without the taint
//!   (its kubelet was not told it is external), so nothing ever initialises it
//!   (cloud-provider-aws #72);
//! - `rollout-stuck`: the chart's pods ask for a resource no node has, so they stay Pending and
//!   the DaemonSet never rolls out;
//! - `stall`: Rancher's planner is stuck: a new generation is not rolled out (nor its status
//!   updated) while the key is there;
//! - `uncordon`: something else keeps uncordoning the control-plane nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Map, Value, json};

use super::real::KWOK_ANNOTATION;

pub const NAMESPACE: &str = "fleet-default";
pub const FAULTS: &str = "rancher-double-faults";
const MANAGER: &str = "rancher-double";
const KS: &str = "kube-system";
const MIGRATION_LEASE: &str = "cloud-provider-extraction-migration";
const UNINITIALIZED: &str = "node.cloudprovider.kubernetes.io/uninitialized";
const CHART: &str = "aws-cloud-controller-manager";
/// The label the double puts on what it installed from a manifest or a chart.
const OWNED: &str = "rancher-double.ferry.test/owner";

/// One machine of the cluster.
#[derive(Debug, Clone)]
pub struct Machine {
    pub name: String,
    /// What the in-tree provider sets and the AWS API would answer: `aws:///<zone>/<instance>`.
    pub provider_id: String,
    pub control_plane: bool,
    pub worker: bool,
}

/// The double, running until dropped.
#[derive(Debug)]
pub struct RancherDouble {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RancherDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn clusters() -> ApiResource {
    ApiResource {
        group: "provisioning.cattle.io".into(),
        version: "v1".into(),
        api_version: "provisioning.cattle.io/v1".into(),
        kind: "Cluster".into(),
        plural: "clusters".into(),
    }
}

fn helm_charts() -> ApiResource {
    ApiResource {
        group: "helm.cattle.io".into(),
        version: "v1".into(),
        api_version: "helm.cattle.io/v1".into(),
        kind: "HelmChart".into(),
        plural: "helmcharts".into(),
    }
}

/// What the double keeps between rounds.
#[derive(Debug, Default)]
struct Memory {
    generation: Option<i64>,
    /// machine → its kubelet's cloud provider as last rendered
    kubelet_provider: BTreeMap<String, String>,
    /// the objects the last additionalManifest applied
    manifest_objects: BTreeSet<(String, String, Option<String>, String)>,
    /// each control-plane machine's static pod as last rendered: its kubelet makes the mirror
    /// pod again when it is gone
    static_pods: BTreeMap<String, Pod>,
}

impl RancherDouble {
    /// Registers the machines' Nodes in `downstream` and starts the loops on the current tokio
    /// runtime, for the `Cluster` `NAMESPACE/cluster` in `management`, polling every `poll`.
    pub async fn start(
        management: kube::Client,
        downstream: kube::Client,
        cluster: &str,
        machines: Vec<Machine>,
        poll: Duration,
    ) -> Result<RancherDouble, String> {
        let cluster = cluster.to_string();
        let task = tokio::spawn(async move {
            let mut memory = Memory::default();
            loop {
                if let Err(e) =
                    provision(&management, &downstream, &cluster, &machines, &mut memory).await
                {
                    super::real::announce(&format!("rancher double: provisioning: {e}"));
                }
                if let Err(e) = helm(&downstream, &management, &cluster).await {
                    super::real::announce(&format!("rancher double: helm controller: {e}"));
                }
                if let Err(e) = managers(&downstream, &management, &machines).await {
                    super::real::announce(&format!("rancher double: controller managers: {e}"));
                }
                tokio::time::sleep(poll).await;
            }
        });
        Ok(RancherDouble { task })
    }
}

impl RancherDouble {
    /// The downstream half alone, for an RKE cluster (no Rancher `Cluster`): what the
    /// cloud-controller-manager's pods would do (their Leases, taking the migration Lease as
    /// client-go does, and initialising `uninitialized` nodes with the machines' provider IDs),
    /// polling every `poll`. The kube-controller-managers are real processes on the hosts then
    /// (`kcm-standin`, run by `rke-standin`), which take their Leases themselves; this double
    /// leaves a Lease they hold alone until it runs out. Faults (`keep-taint`) come from the
    /// ConfigMap [`FAULTS`] in [`NAMESPACE`] of the downstream cluster.
    pub fn start_cloud(downstream: kube::Client, machines: Vec<Machine>, poll: Duration) -> Self {
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = managers(&downstream, &downstream, &machines).await {
                    super::real::announce(&format!("cloud double: controller managers: {e}"));
                }
                tokio::time::sleep(poll).await;
            }
        });
        RancherDouble { task }
    }
}

/// A line on the test's standard error when `FERRY_DOUBLE_DEBUG` is set.
fn debug(line: &str) {
    if std::env::var_os("FERRY_DOUBLE_DEBUG").is_some() {
        super::real::announce(&format!("rancher double: {line}"));
    }
}

/// RFC 3339 with microseconds (a Lease's MicroTime).
fn micro_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = super::kubean::now();
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), d.subsec_micros())
}

async fn faults(management: &kube::Client, key: &str) -> Vec<String> {
    let cms: Api<ConfigMap> = Api::namespaced(management.clone(), NAMESPACE);
    let Ok(Some(cm)) = cms.get_opt(FAULTS).await else {
        return Vec::new();
    };
    cm.data
        .and_then(|d| d.get(key).cloned())
        .map(|v| {
            v.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn labels_of(m: &Machine) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    if m.control_plane {
        l.insert("rke.cattle.io/control-plane-role".into(), "true".into());
        l.insert("rke.cattle.io/etcd-role".into(), "true".into());
    }
    if m.worker {
        l.insert("rke.cattle.io/worker-role".into(), "true".into());
    }
    l
}

/// A `metav1.LabelSelector` against labels.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if selector.is_null() {
        return true;
    }
    if let Some(m) = selector["matchLabels"].as_object() {
        for (k, v) in m {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = selector["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let have = labels.get(key).map(String::as_str);
            let ok = match e["operator"].as_str().unwrap_or("") {
                "In" => have.is_some_and(|h| values.contains(&h)),
                "NotIn" => !have.is_some_and(|h| values.contains(&h)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// A machine's RKE2 configuration as Rancher renders it.
fn machine_config(rke: &Value, m: &Machine) -> Map<String, Value> {
    let mut cfg = rke["machineGlobalConfig"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let labels = labels_of(m);
    for e in rke["machineSelectorConfig"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if selects(&e["machineLabelSelector"], &labels) {
            if let Some(c) = e["config"].as_object() {
                for (k, v) in c {
                    cfg.insert(k.clone(), v.clone());
                }
            }
        }
    }
    cfg
}

fn list_of(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// rke2's kube-controller-manager flags for a configuration.
fn kcm_args(cfg: &Map<String, Value>) -> Vec<String> {
    let mut args = vec![
        "--flex-volume-plugin-dir=/var/lib/kubelet/volumeplugins".to_string(),
        "--terminated-pod-gc-threshold=1000".to_string(),
        "--kubeconfig=/var/lib/rancher/rke2/server/cred/controller.kubeconfig".to_string(),
        "--leader-elect=true".to_string(),
    ];
    let provider = cfg
        .get("cloud-provider-name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !provider.is_empty() {
        args.push(format!("--cloud-provider={provider}"));
    }
    for a in list_of(
        cfg.get("kube-controller-manager-arg")
            .unwrap_or(&Value::Null),
    ) {
        let a = a.trim_start_matches('-');
        if a.contains('=') {
            args.push(format!("--{a}"));
        } else {
            args.push(format!("--{a}=true"));
        }
    }
    args
}

fn kubelet_provider(cfg: &Map<String, Value>) -> String {
    let mut p = cfg
        .get("cloud-provider-name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    for a in list_of(cfg.get("kubelet-arg").unwrap_or(&Value::Null)) {
        if let Some(v) = a.trim_start_matches('-').strip_prefix("cloud-provider=") {
            p = v.to_string();
        }
    }
    p
}

async fn register(
    nodes: &Api<Node>,
    m: &Machine,
    version: &str,
    provider_id: bool,
    taint: bool,
) -> Result<(), String> {
    let mut labels = json!({
        "kubernetes.io/hostname": m.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    });
    let mut taints = Vec::new();
    if m.control_plane {
        labels["node-role.kubernetes.io/control-plane"] = "true".into();
        labels["node-role.kubernetes.io/etcd"] = "true".into();
        labels["node-role.kubernetes.io/master"] = "true".into();
        if !m.worker {
            taints.push(json!({"key": "node-role.kubernetes.io/control-plane", "value": "true", "effect": "NoSchedule"}));
            taints.push(json!({"key": "node-role.kubernetes.io/etcd", "value": "true", "effect": "NoExecute"}));
        }
    }
    if m.worker {
        labels["node-role.kubernetes.io/worker"] = "true".into();
    }
    if taint {
        taints.push(json!({"key": UNINITIALIZED, "value": "true", "effect": "NoSchedule"}));
    }
    let mut node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": m.name, "labels": labels, "annotations": {KWOK_ANNOTATION.0: KWOK_ANNOTATION.1}},
        "spec": {"taints": taints},
    });
    if provider_id {
        node["spec"]["providerID"] = m.provider_id.clone().into();
    }
    let n: Node = serde_json::from_value(node).map_err(|e| e.to_string())?;
    nodes
        .create(&PostParams::default(), &n)
        .await
        .map_err(|e| format!("register node {}: {e}", m.name))?;
    nodes
        .patch_status(
            &m.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"nodeInfo": {"kubeletVersion": version}}})),
        )
        .await
        .map_err(|e| format!("node {} version: {e}", m.name))?;
    Ok(())
}

/// The kubelet of a re-registering machine: the old Node goes, a new one comes (its old Lease
/// must go first, or kwok would not take up the new Node).
async fn reregister(
    downstream: &kube::Client,
    m: &Machine,
    version: &str,
    taint: bool,
) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(downstream.clone());
    let _ = nodes.delete(&m.name, &DeleteParams::default()).await;
    let leases: Api<Lease> = Api::namespaced(downstream.clone(), "kube-node-lease");
    for _ in 0..60 {
        let node_gone = nodes.get_opt(&m.name).await.ok().flatten().is_none();
        let _ = leases.delete(&m.name, &DeleteParams::default()).await;
        if node_gone && leases.get_opt(&m.name).await.ok().flatten().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    register(&nodes, m, version, false, taint).await
}

fn kcm_pod(m: &Machine, args: &[String], version: &str) -> Result<Pod, String> {
    let tag = version.replace('+', "-");
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("kube-controller-manager-{}", m.name),
            "namespace": KS,
            "labels": {"component": "kube-controller-manager", "tier": "control-plane"},
            "annotations": {"kubernetes.io/config.source": "file"},
        },
        "spec": {
            "nodeName": m.name,
            "hostNetwork": true,
            "priorityClassName": "system-cluster-critical",
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "kube-controller-manager",
                "image": format!("index.docker.io/rancher/hardened-kubernetes:{tag}"),
                "command": ["kube-controller-manager"],
                "args": args,
            }],
        },
    }))
    .map_err(|e| e.to_string())
}

fn running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
}

async fn set_status(
    api: &Api<DynamicObject>,
    name: &str,
    generation: i64,
    ready: bool,
) -> Result<(), String> {
    let status = if ready { "True" } else { "False" };
    let now = super::kubean::now();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "observedGeneration": generation,
            "ready": ready,
            "conditions": [
                {"type": "Updated", "status": status, "lastUpdateTime": now},
                {"type": "Ready", "status": status, "lastUpdateTime": now},
            ],
        }})),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("status of Cluster {name}: {e}"))
}

/// One provisioning pass: a new generation rolls the machines.
async fn provision(
    management: &kube::Client,
    downstream: &kube::Client,
    cluster: &str,
    machines: &[Machine],
    memory: &mut Memory,
) -> Result<(), String> {
    let api: Api<DynamicObject> = Api::namespaced_with(management.clone(), NAMESPACE, &clusters());
    let Some(c) = api
        .get_opt(cluster)
        .await
        .map_err(|e| format!("get Cluster {cluster}: {e}"))?
    else {
        return Ok(());
    };
    let generation = c.metadata.generation.unwrap_or(0);
    // the kubelets: a mirror pod deleted (by anyone) is made again from the static pod
    let pods: Api<Pod> = Api::namespaced(downstream.clone(), KS);
    for (node, pod) in &memory.static_pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pods
            .get_opt(&name)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            debug(&format!(
                "{name}: gone from {node}, the kubelet makes it again"
            ));
            let _ = pods.create(&PostParams::default(), pod).await;
        }
    }
    if memory.generation == Some(generation) {
        return Ok(());
    }
    if !faults(management, "stall").await.is_empty() {
        // Rancher's planner stuck: nothing rolls, the status stays as it was
        return Ok(());
    }
    set_status(&api, cluster, generation, false).await?;
    let rke = c.data["spec"]["rkeConfig"].clone();
    let version = c.data["spec"]["kubernetesVersion"]
        .as_str()
        .unwrap_or("v1.26.15+rke2r1")
        .to_string();
    let nodes: Api<Node> = Api::all(downstream.clone());
    for m in machines {
        let cfg = machine_config(&rke, m);
        let provider = kubelet_provider(&cfg);
        // the kubelet
        match nodes.get_opt(&m.name).await.map_err(|e| e.to_string())? {
            None => {
                register(
                    &nodes,
                    m,
                    &version,
                    provider != "external",
                    provider == "external",
                )
                .await?
            }
            Some(n) => {
                let before = memory
                    .kubelet_provider
                    .get(&m.name)
                    .cloned()
                    .unwrap_or_default();
                if before != "external" && provider == "external" && memory.generation.is_some() {
                    if faults(management, "keep-taint").await.contains(&m.name) {
                        reregister(downstream, m, &version, true).await?;
                    } else if faults(management, "no-provider-id").await.contains(&m.name) {
                        reregister(downstream, m, &version, false).await?;
                    }
                }
                let have = n
                    .status
                    .and_then(|s| s.node_info)
                    .map(|i| i.kubelet_version);
                if have.as_deref() != Some(version.as_str()) {
                    let _ = nodes
                        .patch_status(
                            &m.name,
                            &PatchParams::default(),
                            &Patch::Merge(
                                json!({"status": {"nodeInfo": {"kubeletVersion": version}}}),
                            ),
                        )
                        .await;
                }
            }
        }
        memory.kubelet_provider.insert(m.name.clone(), provider);
        if !m.control_plane {
            continue;
        }
        // the control plane's static pod, one machine at a time
        let args = kcm_args(&cfg);
        let want = kcm_pod(m, &args, &version)?;
        memory.static_pods.insert(m.name.clone(), want.clone());
        let name = want.metadata.name.clone().unwrap_or_default();
        let current = pods.get_opt(&name).await.map_err(|e| e.to_string())?;
        let same = current.as_ref().is_some_and(|p| {
            let c = p.spec.as_ref().map(|s| &s.containers[0]);
            c.and_then(|c| c.args.clone()) == Some(args.clone())
                && c.and_then(|c| c.image.clone())
                    == want
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers[0].image.clone())
        });
        if same {
            continue;
        }
        debug(&format!("{name}: replacing (generation {generation})"));
        if current.is_some() {
            pods.delete(
                &name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("delete {name}: {e}"))?;
            for _ in 0..60 {
                if pods.get_opt(&name).await.ok().flatten().is_none() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        debug(&format!("{name}: deleted, creating"));
        pods.create(&PostParams::default(), &want)
            .await
            .map_err(|e| format!("create {name}: {e}"))?;
        debug(&format!("{name}: created"));
        for _ in 0..120 {
            if pods
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .as_ref()
                .is_some_and(running)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // additionalManifest, what it no longer holds deleted
    let text = rke["additionalManifest"].as_str().unwrap_or("");
    let mut applied = BTreeSet::new();
    // parsed before any await: the YAML deserializer is not Send
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).map_err(|e| format!("additionalManifest: {e}")))
        .collect::<Result<_, String>>()?;
    for v in docs {
        if v.is_null() {
            continue;
        }
        let key = apply_downstream(downstream, &v, cluster).await?;
        applied.insert(key);
    }
    for gone in memory.manifest_objects.difference(&applied) {
        delete_downstream(downstream, gone).await?;
    }
    memory.manifest_objects = applied;
    memory.generation = Some(generation);
    set_status(&api, cluster, generation, true).await
}

type Key = (String, String, Option<String>, String);

async fn dynamic(client: &kube::Client, key: &Key) -> Result<Api<DynamicObject>, String> {
    let (group, version) = key.0.split_once('/').unwrap_or(("", key.0.as_str()));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &key.1);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("discovery of {} {}: {e}", key.0, key.1))?;
    Ok(match &key.2 {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    })
}

async fn apply_downstream(client: &kube::Client, v: &Value, owner: &str) -> Result<Key, String> {
    let key: Key = (
        v["apiVersion"].as_str().unwrap_or("").to_string(),
        v["kind"].as_str().unwrap_or("").to_string(),
        v["metadata"]["namespace"].as_str().map(str::to_string),
        v["metadata"]["name"].as_str().unwrap_or("").to_string(),
    );
    let mut v = v.clone();
    v["metadata"]["labels"][OWNED] = owner.into();
    dynamic(client, &key)
        .await?
        .patch(
            &key.3,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&v),
        )
        .await
        .map_err(|e| format!("apply {} {}: {e}", key.1, key.3))?;
    Ok(key)
}

async fn delete_downstream(client: &kube::Client, key: &Key) -> Result<(), String> {
    match dynamic(client, key)
        .await?
        .delete(&key.3, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(r)) if r.code == 404 => Ok(()),
        Err(e) => Err(format!("delete {} {}: {e}", key.1, key.3)),
    }
}

/// The chart's objects for a HelmChart's values.
fn render(values: &Value, stuck: bool) -> Vec<Value> {
    let owner = json!({ OWNED: format!("helmchart-{CHART}") });
    let sa = "cloud-controller-manager";
    let image = format!(
        "{}:{}",
        values["image"]["repository"]
            .as_str()
            .unwrap_or("registry.k8s.io/provider-aws/cloud-controller-manager"),
        values["image"]["tag"].as_str().unwrap_or("v1.35.0")
    );
    // stuck: a resource no node has, so the pods stay Pending
    let requests = if stuck {
        json!({"cpu": "200m", "rancher-double.ferry.test/never": "1"})
    } else {
        json!({"cpu": "200m"})
    };
    let mut pod_spec = json!({
        "serviceAccountName": sa,
        "priorityClassName": "system-node-critical",
        "dnsPolicy": "Default",
        "nodeSelector": values.get("nodeSelector").cloned().unwrap_or(json!({"node-role.kubernetes.io/control-plane": ""})),
        "tolerations": values.get("tolerations").cloned().unwrap_or(json!([])),
        "containers": [{
            "name": CHART,
            "image": image,
            "args": values.get("args").cloned().unwrap_or(json!(["--v=2", "--cloud-provider=aws"])),
            "resources": {"requests": requests.clone(), "limits": if stuck { json!({"rancher-double.ferry.test/never": "1"}) } else { json!({}) }},
            "volumeMounts": values.get("extraVolumeMounts").cloned().unwrap_or(json!([])),
        }],
        "volumes": values.get("extraVolumes").cloned().unwrap_or(json!([])),
    });
    if values["hostNetworking"].as_bool() == Some(true) {
        pod_spec["hostNetwork"] = true.into();
    }
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": sa, "namespace": KS, "labels": owner}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "system:cloud-controller-manager", "labels": owner},
               "rules": values.get("clusterRoleRules").cloned().unwrap_or(json!([]))}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "system:cloud-controller-manager", "labels": owner},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:cloud-controller-manager"},
               "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": KS}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "cloud-controller-manager:apiserver-authentication-reader", "namespace": KS, "labels": owner},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": KS}]}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": CHART, "namespace": KS, "labels": owner},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": CHART}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": {"k8s-app": CHART}}, "spec": pod_spec},
        }}),
    ]
}

fn rendered_keys() -> Vec<Key> {
    render(&Value::Null, false)
        .iter()
        .map(|v| {
            (
                v["apiVersion"].as_str().unwrap_or("").to_string(),
                v["kind"].as_str().unwrap_or("").to_string(),
                v["metadata"]["namespace"].as_str().map(str::to_string),
                v["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The helm controller: the chart installed while its HelmChart is there.
async fn helm(
    downstream: &kube::Client,
    management: &kube::Client,
    _cluster: &str,
) -> Result<(), String> {
    let charts: Api<DynamicObject> = Api::namespaced_with(downstream.clone(), KS, &helm_charts());
    let chart = charts
        .get_opt(CHART)
        .await
        .map_err(|e| format!("get HelmChart: {e}"))?;
    let Some(chart) = chart else {
        for key in rendered_keys() {
            let api = dynamic(downstream, &key).await?;
            if let Ok(Some(o)) = api.get_opt(&key.3).await {
                if o.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(OWNED))
                {
                    delete_downstream(downstream, &key).await?;
                }
            }
        }
        return Ok(());
    };
    let values: Value =
        serde_yaml::from_str(chart.data["spec"]["valuesContent"].as_str().unwrap_or(""))
            .map_err(|e| format!("HelmChart valuesContent: {e}"))?;
    let stuck = !faults(management, "rollout-stuck").await.is_empty();
    for o in render(&values, stuck) {
        apply_downstream(downstream, &o, &format!("helmchart-{CHART}")).await?;
    }
    Ok(())
}

/// A controller manager process: its identity and what it runs with.
struct Process {
    identity: String,
    args: Vec<String>,
}

fn flag(args: &[String], name: &str) -> Option<String> {
    let mut found = None;
    for a in args {
        let t = a.trim_start_matches('-');
        if t == name {
            found = Some("true".to_string());
        } else if let Some(v) = t.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

fn processes(pods: &[Pod]) -> Vec<Process> {
    pods.iter()
        .filter(|p| running(p))
        .map(|p| {
            let c = p.spec.as_ref().map(|s| s.containers[0].clone());
            let mut args: Vec<String> = c
                .as_ref()
                .and_then(|c| c.command.clone())
                .unwrap_or_default()
                .into_iter()
                .skip(1)
                .collect();
            args.extend(c.and_then(|c| c.args).unwrap_or_default());
            Process {
                identity: format!(
                    "{}_{}",
                    p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default(),
                    p.metadata.uid.clone().unwrap_or_default()
                ),
                args,
            }
        })
        .collect()
}

/// Takes or renews `name` for the first of `candidates` (the current holder first, if it is
/// one); leaves it alone when there is none. Returns the holder.
async fn hold(
    leases: &Api<Lease>,
    name: &str,
    candidates: &[&Process],
) -> Result<Option<String>, String> {
    let current = leases
        .get_opt(name)
        .await
        .map_err(|e| format!("get Lease {name}: {e}"))?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let holder = spec
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default();
    // client-go's rule: another holder keeps the Lease until it has not renewed it for its
    // duration (a real process, such as the RKE nodes' kube-controller-managers, may hold it)
    let expired = spec.is_none_or(|s| {
        s.renew_time.as_ref().is_none_or(|t| {
            (k8s_openapi::chrono::Utc::now() - t.0).num_seconds()
                > i64::from(s.lease_duration_seconds.unwrap_or(15))
        })
    });
    let next = match candidates.iter().find(|p| p.identity == holder) {
        Some(p) => p,
        None if holder.is_empty() || expired => match candidates.first() {
            Some(p) => p,
            None => return Ok(None),
        },
        None => return Ok(Some(holder)),
    };
    let now = micro_now();
    let transitions = current
        .as_ref()
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);
    let mut spec = json!({
        "holderIdentity": next.identity,
        "leaseDurationSeconds": 15,
        "renewTime": now,
    });
    if next.identity != holder {
        spec["acquireTime"] = now.clone().into();
        spec["leaseTransitions"] = (transitions + i32::from(!holder.is_empty())).into();
    }
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": name, "namespace": KS}, "spec": spec});
    leases
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&lease),
        )
        .await
        .map_err(|e| format!("Lease {name}: {e}"))?;
    Ok(Some(next.identity.clone()))
}

/// The controller managers' leader election and the cloud-controller-manager's node
/// initialisation.
async fn managers(
    downstream: &kube::Client,
    management: &kube::Client,
    machines: &[Machine],
) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(downstream.clone(), KS);
    let kcm_pods = pods
        .list(&ListParams::default().labels("component=kube-controller-manager"))
        .await
        .map_err(|e| format!("list kube-controller-managers: {e}"))?
        .items;
    let ccm_pods = pods
        .list(&ListParams::default().labels(&format!("k8s-app={CHART}")))
        .await
        .map_err(|e| format!("list cloud-controller-managers: {e}"))?
        .items;
    let kcm = processes(&kcm_pods);
    let ccm = processes(&ccm_pods);
    let leases: Api<Lease> = Api::namespaced(downstream.clone(), KS);
    let migrating = |p: &&Process, ccm: bool| {
        let on = matches!(
            flag(&p.args, "enable-leader-migration").as_deref(),
            Some("true")
        );
        on && (ccm || flag(&p.args, "cloud-provider").as_deref() != Some("external"))
    };
    let mut candidates: Vec<&Process> = kcm.iter().filter(|p| migrating(p, false)).collect();
    candidates.extend(ccm.iter().filter(|p| migrating(p, true)));
    let migration_holder = hold(&leases, MIGRATION_LEASE, &candidates).await?;
    hold(
        &leases,
        "kube-controller-manager",
        &kcm.iter().collect::<Vec<_>>(),
    )
    .await?;
    hold(
        &leases,
        "cloud-controller-manager",
        &ccm.iter().collect::<Vec<_>>(),
    )
    .await?;

    // something else that uncordons the control plane (an upgrade's drain-and-uncordon)
    if !faults(management, "uncordon").await.is_empty() {
        let nodes: Api<Node> = Api::all(downstream.clone());
        for m in machines.iter().filter(|m| m.control_plane) {
            if let Ok(Some(n)) = nodes.get_opt(&m.name).await {
                if n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
                    let _ = nodes
                        .patch(
                            &m.name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"unschedulable": false}})),
                        )
                        .await;
                }
            }
        }
    }
    // the cloud node controller runs in the cloud-controller-manager that holds the migration
    // Lease, or in one without migration
    let ccm_runs_cloud_nodes = ccm.iter().any(|p| {
        Some(&p.identity) == migration_holder.as_ref()
            || !matches!(
                flag(&p.args, "enable-leader-migration").as_deref(),
                Some("true")
            )
    });
    if !ccm_runs_cloud_nodes {
        return Ok(());
    }
    let keep = faults(management, "keep-taint").await;
    let nodes: Api<Node> = Api::all(downstream.clone());
    for n in nodes
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list nodes: {e}"))?
        .items
    {
        let name = n.metadata.name.clone().unwrap_or_default();
        let taints = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if !taints.iter().any(|t| t.key == UNINITIALIZED) || keep.contains(&name) {
            continue;
        }
        let Some(m) = machines.iter().find(|m| m.name == name) else {
            continue;
        };
        let left: Vec<Value> = taints
            .iter()
            .filter(|t| t.key != UNINITIALIZED)
            .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
            .collect();
        let mut spec = json!({"taints": left});
        if n.spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default()
            .is_empty()
        {
            spec["providerID"] = m.provider_id.clone().into();
        }
        nodes
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .map_err(|e| format!("initialise node {name}: {e}"))?;
    }
    Ok(())
}
