//! A double of kubean's operator, for tests on the real control plane of `testenv/k8s` with
//! kubean's own CRDs (`testenv/kubean/crds`) installed. The one control plane is both the
//! management cluster (the `Cluster` and `ClusterOperation` objects, the ConfigMaps in
//! `kubean-system`) and the workload cluster (its Nodes, kept Ready by kwok).
//!
//! What it does as kubean v0.37 does (`pkg/controllers/clusterops`): it takes each
//! `ClusterOperation` whose `status.status` is empty, oldest first; one that names a `Cluster`
//! that does not exist, a builtin playbook it does not know, or a ConfigMap hook that is missing
//! goes straight to `Failed` without a job; otherwise it is `Running` with a `jobRef`
//! (`kubean-<name>-job` in `kubean-system`) and a `startTime`, and after the job's run it is
//! `Succeeded` or `Failed` with an `endTime` and the label `hasCompleted=done`; it is never run
//! again. At most one operation of a cluster runs at a time (kubean's webhook refuses a second
//! one; here it waits).
//!
//! What the job does is played on the workload cluster, as kubespray would leave it:
//! `remove-node.yml -e node=X` deletes the Node X (X must be in the inventory); `cluster.yml` and
//! `scale.yml` make a Node, Ready through kwok, for every host of the inventory in their
//! `--limit` (all without one) that is in `kube_node` or `kube_control_plane` and has none, once
//! the host answers on port 22 (ansible's UNREACHABLE fails the job otherwise), with the
//! `node_taints` of its inventory entry. Other builtin
//! playbooks change nothing. Not played: the pods of the job itself (no `Job` object is made),
//! etcd, and anything on the hosts.
//!
//! Failures on purpose: the ConfigMap `kubean-double-faults` in `kubean-system`, key `fail`, one
//! line per failure: `ACTION` or `ACTION NODE` (the node named by `-e node=` or `--limit=`); the
//! first matching line fails the job and is removed.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

pub const NAMESPACE: &str = "kubean-system";
pub const FAULTS: &str = "kubean-double-faults";
const MANAGER: &str = "kubean-double";
/// kubean's builtin playbooks (`spray-job`'s image), those the operator runs.
const BUILTIN: [&str; 13] = [
    "cluster.yml",
    "scale.yml",
    "remove-node.yml",
    "reset.yml",
    "upgrade-cluster.yml",
    "cluster-info.yml",
    "ping.yml",
    "disable-firewalld.yml",
    "enable-repo.yml",
    "kubeconfig.yml",
    "config-for-kube-vip.yml",
    "precheck.yml",
    "recover-control-plane.yml",
];

fn ops_resource() -> ApiResource {
    ApiResource {
        group: "kubean.io".into(),
        version: "v1alpha1".into(),
        api_version: "kubean.io/v1alpha1".into(),
        kind: "ClusterOperation".into(),
        plural: "clusteroperations".into(),
    }
}

fn clusters_resource() -> ApiResource {
    ApiResource {
        group: "kubean.io".into(),
        version: "v1alpha1".into(),
        api_version: "kubean.io/v1alpha1".into(),
        kind: "Cluster".into(),
        plural: "clusters".into(),
    }
}

/// The operator double, running until dropped.
#[derive(Debug)]
pub struct KubeanDouble {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeanDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeanDouble {
    /// Starts the loop on the current tokio runtime; it polls every `poll`, and a job takes
    /// `job` before it ends.
    pub fn start(client: kube::Client, poll: Duration, job: Duration) -> KubeanDouble {
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = round(&client, job).await {
                    super::real::announce(&format!("kubean double: {e}"));
                }
                tokio::time::sleep(poll).await;
            }
        });
        KubeanDouble { task }
    }
}

pub(crate) fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    // RFC 3339 in UTC without a date library: days since the epoch to a civil date
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

async fn set_status(api: &Api<DynamicObject>, name: &str, status: Value) -> Result<(), String> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("status of {name}: {e}"))
}

/// One pass: the oldest waiting operation of each cluster whose other operations are done.
async fn round(client: &kube::Client, job: Duration) -> Result<(), String> {
    let ops: Api<DynamicObject> = Api::all_with(client.clone(), &ops_resource());
    let mut list = ops
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list ClusterOperations: {e}"))?
        .items;
    list.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let status = |o: &DynamicObject| {
        o.data["status"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let mut busy: Vec<String> = list
        .iter()
        .filter(|o| status(o) == "Running")
        .filter_map(|o| o.data["spec"]["cluster"].as_str().map(str::to_string))
        .collect();
    for op in &list {
        if !status(op).is_empty() {
            continue;
        }
        let cluster = op.data["spec"]["cluster"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if busy.contains(&cluster) {
            continue;
        }
        busy.push(cluster.clone());
        let name = op.metadata.name.clone().unwrap_or_default();
        let client = client.clone();
        let op = op.clone();
        tokio::spawn(async move {
            if let Err(e) = run_op(&client, &op, job).await {
                super::real::announce(&format!("kubean double: {name}: {e}"));
            }
        });
    }
    Ok(())
}

/// The hosts, their groups and their addresses of a `hosts.yml` inventory.
#[derive(Debug, Default)]
struct Inventory {
    /// name → ansible_host (or ip)
    hosts: BTreeMap<String, String>,
    /// name → kubespray's `node_taints` (`key=value:Effect`)
    taints: BTreeMap<String, Vec<String>>,
    groups: BTreeMap<String, Vec<String>>,
}

fn inventory(text: &str) -> Result<Inventory, String> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| format!("hosts.yml: {e}"))?;
    let all = &v["all"];
    let mut inv = Inventory::default();
    if let Some(m) = all["hosts"].as_mapping() {
        for (k, h) in m {
            let name = k.as_str().unwrap_or_default().to_string();
            let addr = h["ansible_host"]
                .as_str()
                .or_else(|| h["ip"].as_str())
                .unwrap_or(&name)
                .to_string();
            let taints = h["node_taints"]
                .as_sequence()
                .map(|t| {
                    t.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            inv.taints.insert(name.clone(), taints);
            inv.hosts.insert(name, addr);
        }
    }
    if let Some(m) = all["children"].as_mapping() {
        for (g, body) in m {
            let names = body["hosts"]
                .as_mapping()
                .map(|h| {
                    h.keys()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            inv.groups
                .insert(g.as_str().unwrap_or_default().to_string(), names);
        }
    }
    Ok(inv)
}

/// `--limit=a,b` of an extraArgs string, groups expanded to their hosts.
fn limit(extra: &str, inv: &Inventory) -> Option<Vec<String>> {
    let words: Vec<&str> = extra.split_whitespace().collect();
    let raw = words.iter().enumerate().find_map(|(i, w)| {
        w.strip_prefix("--limit=").map(str::to_string).or_else(|| {
            (*w == "--limit")
                .then(|| words.get(i + 1).map(|s| s.to_string()))
                .flatten()
        })
    })?;
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match inv.groups.get(part) {
            Some(hosts) => out.extend(hosts.iter().cloned()),
            None => out.push(part.to_string()),
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// `-e node=X` of an extraArgs string.
fn node_arg(extra: &str) -> Option<String> {
    extra
        .split_whitespace()
        .find_map(|w| w.strip_prefix("node=").map(str::to_string))
}

async fn fault(client: &kube::Client, action: &str, node: Option<&str>) -> Option<String> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let cm = cms.get_opt(FAULTS).await.ok()??;
    let text = cm.data.as_ref()?.get("fail")?.clone();
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some(action) && w.next().is_none_or(|n| Some(n) == node)
    })?;
    let hit = lines.remove(at).to_string();
    let rest = lines.join("\n");
    let _ = cms
        .patch(
            FAULTS,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"fail": rest}})),
        )
        .await;
    Some(hit)
}

async fn run_op(client: &kube::Client, op: &DynamicObject, job: Duration) -> Result<(), String> {
    let ops: Api<DynamicObject> = Api::all_with(client.clone(), &ops_resource());
    let clusters: Api<DynamicObject> = Api::all_with(client.clone(), &clusters_resource());
    let cms_all = |ns: &str| -> Api<ConfigMap> { Api::namespaced(client.clone(), ns) };
    let name = op.metadata.name.clone().unwrap_or_default();
    let spec = &op.data["spec"];
    let action = spec["action"].as_str().unwrap_or("").to_string();
    let extra = spec["extraArgs"].as_str().unwrap_or("").to_string();
    let failed = |why: String| json!({"status": "Failed", "action": action, "endTime": now(), "message": why});
    // what kubean refuses before it makes a job
    let cluster = match clusters
        .get_opt(spec["cluster"].as_str().unwrap_or(""))
        .await
    {
        Ok(Some(c)) => c,
        _ => {
            return set_status(
                &ops,
                &name,
                failed(format!("cluster {} not found", spec["cluster"])),
            )
            .await;
        }
    };
    let mut actions = vec![(spec.clone(), false)];
    for h in spec["preHook"].as_array().into_iter().flatten() {
        actions.push((h.clone(), true));
    }
    for h in spec["postHook"].as_array().into_iter().flatten() {
        actions.push((h.clone(), true));
    }
    for (a, _) in &actions {
        let act = a["action"].as_str().unwrap_or("");
        match a["actionSource"].as_str().unwrap_or("builtin") {
            "configmap" => {
                let r = &a["actionSourceRef"];
                let cm = cms_all(r["namespace"].as_str().unwrap_or(NAMESPACE))
                    .get_opt(r["name"].as_str().unwrap_or(""))
                    .await
                    .ok()
                    .flatten();
                if !cm.and_then(|c| c.data).is_some_and(|d| d.contains_key(act)) {
                    return set_status(
                        &ops,
                        &name,
                        failed(format!("configmap playbook {act} not found")),
                    )
                    .await;
                }
            }
            _ if !BUILTIN.contains(&act) => {
                return set_status(
                    &ops,
                    &name,
                    failed(format!("builtin playbook {act} not found")),
                )
                .await;
            }
            _ => {}
        }
    }
    set_status(
        &ops,
        &name,
        json!({"status": "Running", "action": action, "startTime": now(),
               "jobRef": {"name": format!("kubean-{name}-job"), "namespace": NAMESPACE}}),
    )
    .await?;
    tokio::time::sleep(job).await;
    let result = play(client, &cluster, &action, &extra).await;
    let end = match result {
        Ok(()) => json!({"status": "Succeeded", "endTime": now()}),
        Err(why) => json!({"status": "Failed", "endTime": now(), "message": why}),
    };
    set_status(&ops, &name, end).await?;
    ops.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"hasCompleted": "done"}}})),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("label {name}: {e}"))
}

/// What the job's playbook leaves on the workload cluster.
async fn play(
    client: &kube::Client,
    cluster: &DynamicObject,
    action: &str,
    extra: &str,
) -> Result<(), String> {
    let r = &cluster.data["spec"]["hostsConfRef"];
    let cms: Api<ConfigMap> =
        Api::namespaced(client.clone(), r["namespace"].as_str().unwrap_or(NAMESPACE));
    let text = cms
        .get(r["name"].as_str().unwrap_or(""))
        .await
        .map_err(|e| format!("hosts-conf: {e}"))?
        .data
        .and_then(|d| d.get("hosts.yml").cloned())
        .ok_or("hosts-conf has no hosts.yml")?;
    let inv = inventory(&text)?;
    let nodes: Api<Node> = Api::all(client.clone());
    match action {
        "remove-node.yml" => {
            let node = node_arg(extra).ok_or("remove-node.yml needs -e node=NAME")?;
            if let Some(hit) = fault(client, action, Some(&node)).await {
                return Err(format!("fatal: [{node}]: FAILED! (injected: {hit})"));
            }
            if !inv.hosts.contains_key(&node) {
                return Err(format!("node {node} is not in the inventory"));
            }
            match nodes.delete(&node, &Default::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(format!("delete node {node}: {e}")),
            }
        }
        "cluster.yml" | "scale.yml" => {
            let targets = limit(extra, &inv).unwrap_or_else(|| inv.hosts.keys().cloned().collect());
            let in_group =
                |g: &str, h: &str| inv.groups.get(g).is_some_and(|v| v.iter().any(|x| x == h));
            for h in &targets {
                if let Some(hit) = fault(client, action, Some(h)).await {
                    return Err(format!("fatal: [{h}]: FAILED! (injected: {hit})"));
                }
            }
            for h in targets {
                let control = in_group("kube_control_plane", &h);
                if !control && !in_group("kube_node", &h) {
                    continue;
                }
                if nodes
                    .get_opt(&h)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    continue;
                }
                let addr = inv
                    .hosts
                    .get(&h)
                    .cloned()
                    .ok_or(format!("{h} is not in the inventory"))?;
                let reach = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::TcpStream::connect((addr.as_str(), 22)),
                )
                .await;
                if !matches!(reach, Ok(Ok(_))) {
                    return Err(format!(
                        "fatal: [{h}]: UNREACHABLE! => ssh: connect to host {addr} port 22"
                    ));
                }
                let mut labels = json!({"kubernetes.io/hostname": h, "kubernetes.io/os": "linux"});
                if control {
                    labels["node-role.kubernetes.io/control-plane"] = json!("");
                }
                // kubespray's node_taints: `key=value:Effect` or `key:Effect`
                let taints: Vec<Value> = inv
                    .taints
                    .get(&h)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        let (kv, effect) = t.rsplit_once(':')?;
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        Some(json!({"key": k, "value": v, "effect": effect}))
                    })
                    .collect();
                let node = json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": h, "labels": labels,
                                 "annotations": {"kwok.x-k8s.io/node": "fake"}},
                    "spec": {"taints": taints},
                });
                nodes
                    .patch(
                        &h,
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(&node),
                    )
                    .await
                    .map_err(|e| format!("register node {h}: {e}"))?;
                let status = json!({"status": {
                    "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                    "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                    "nodeInfo": {"kubeletVersion": "v1.31.4"},
                    "addresses": [{"type": "InternalIP", "address": addr}],
                }});
                nodes
                    .patch_status(&h, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .map_err(|e| format!("status of node {h}: {e}"))?;
            }
            Ok(())
        }
        other => match fault(client, other, None).await {
            Some(hit) => Err(format!("fatal: FAILED! (injected: {hit})")),
            None => Ok(()),
        },
    }
}
