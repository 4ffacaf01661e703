//! What the downstream cluster's API shows about the migration, read in one go: the nodes
//! (provider IDs, cordon state, taints), the controller managers and their arguments, the
//! Leases, the cloud-controller-manager's DaemonSet and its pods, and the LoadBalancer
//! Services' addresses. The checks of every state ([`crate::checks`]) are pure functions of it.

use std::collections::BTreeMap;

use ferry_core::ClusterApi;
use ferry_core::cluster::{ClusterError, ObjectRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use ferry_core::{Cmd, ExecError, HostExec};

use crate::chart;
use crate::leader;
use crate::rke;

/// The taint a kubelet started with `--cloud-provider=external` registers its node with, until
/// a cloud-controller-manager initialises it.
pub const UNINITIALIZED: &str = "node.cloudprovider.kubernetes.io/uninitialized";

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFact {
    pub name: String,
    pub uid: String,
    /// `spec.providerID` (`aws:///<zone>/<instance>`), empty when unset.
    pub provider_id: String,
    pub unschedulable: bool,
    pub control_plane: bool,
    pub ready: bool,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// `key=value:effect` of each taint.
    pub taints: Vec<String>,
}

/// A controller manager process as the cluster shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manager {
    /// The node it runs on.
    pub node: String,
    /// Where it was read: `Pod kube-system/…` or `container kube-controller-manager on …`.
    pub source: String,
    /// Its command-line flags.
    pub args: Vec<String>,
    /// Running and ready.
    pub running: bool,
}

impl Manager {
    /// The value of `--name` (`Some("")` for a flag without a value), the last one winning.
    pub fn flag(&self, name: &str) -> Option<String> {
        flag(&self.args, name)
    }

    /// `--enable-leader-migration` given and not false.
    pub fn leader_migration(&self) -> bool {
        matches!(
            self.flag("enable-leader-migration").as_deref(),
            Some("" | "true")
        )
    }

    /// `--cloud-provider`, empty when not given.
    pub fn cloud_provider(&self) -> String {
        self.flag("cloud-provider").unwrap_or_default()
    }
}

/// The value of `--name` in `args` (`Some("")` for a bare flag), the last one winning.
pub fn flag(args: &[String], name: &str) -> Option<String> {
    let mut found = None;
    for a in args {
        let t = a.trim_start_matches('-');
        if t == name {
            found = Some(String::new());
        } else if let Some(v) = t.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

/// A Lease's holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseFact {
    pub holder: String,
    /// `spec.renewTime` as the holder wrote it: it changes while the holder renews.
    pub renew_time: String,
}

impl LeaseFact {
    /// The node part of the holder identity (`<node>_<uuid>`).
    pub fn holder_node(&self) -> &str {
        self.holder.split('_').next().unwrap_or("")
    }
}

/// The cloud-controller-manager's DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetFact {
    pub generation: i64,
    pub observed_generation: i64,
    pub desired: i64,
    pub updated: i64,
    pub available: i64,
}

impl DaemonSetFact {
    /// What `kubectl rollout status daemonset` waits for.
    pub fn rolled_out(&self) -> bool {
        self.observed_generation >= self.generation
            && self.updated >= self.desired
            && self.available >= self.desired
    }
}

/// Everything the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub nodes: Vec<NodeFact>,
    /// The kube-controller-managers of the control-plane nodes.
    pub kcm: Vec<Manager>,
    /// The cloud-controller-manager's pods.
    pub ccm: Vec<Manager>,
    pub daemon_set: Option<DaemonSetFact>,
    pub migration_lease: Option<LeaseFact>,
    pub ccm_lease: Option<LeaseFact>,
    /// `namespace/name` of each LoadBalancer Service → its ingress addresses.
    pub load_balancers: BTreeMap<String, Vec<String>>,
}

impl Facts {
    pub fn control_plane(&self) -> impl Iterator<Item = &NodeFact> {
        self.nodes.iter().filter(|n| n.control_plane)
    }

    pub fn node(&self, name: &str) -> Option<&NodeFact> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// Which distribution's labels and processes to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    Rke2,
    Rke,
}

impl Distro {
    /// The label of control-plane nodes.
    pub fn control_plane_label(self) -> &'static str {
        match self {
            Distro::Rke2 => "node-role.kubernetes.io/control-plane",
            Distro::Rke => "node-role.kubernetes.io/controlplane",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Distro::Rke2 => "rke2",
            Distro::Rke => "rke",
        }
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn node_fact(n: &Value, distro: Distro) -> NodeFact {
    let label = &n["metadata"]["labels"][distro.control_plane_label()];
    let ready = n["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    let taints = n["spec"]["taints"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let v = s(&t["value"]);
                    if v.is_empty() {
                        format!("{}:{}", s(&t["key"]), s(&t["effect"]))
                    } else {
                        format!("{}={v}:{}", s(&t["key"]), s(&t["effect"]))
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    NodeFact {
        name: s(&n["metadata"]["name"]),
        uid: s(&n["metadata"]["uid"]),
        provider_id: s(&n["spec"]["providerID"]),
        unschedulable: n["spec"]["unschedulable"].as_bool().unwrap_or(false),
        control_plane: label.as_str().is_some_and(|v| v == "true" || v.is_empty()),
        ready,
        kubelet_version: s(&n["status"]["nodeInfo"]["kubeletVersion"]),
        taints,
    }
}

/// A pod's manager: the container named `container` (or the first), its command after the
/// program and its args.
fn pod_manager(p: &Value, container: &str) -> Manager {
    let containers = p["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let c = containers
        .iter()
        .find(|c| c["name"] == container)
        .or(containers.first())
        .cloned()
        .unwrap_or(Value::Null);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut args: Vec<String> = strings(&c["command"]).into_iter().skip(1).collect();
    args.extend(strings(&c["args"]));
    let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    Manager {
        node: s(&p["spec"]["nodeName"]),
        source: format!(
            "Pod {}/{}",
            s(&p["metadata"]["namespace"]),
            s(&p["metadata"]["name"])
        ),
        args,
        running: p["status"]["phase"] == "Running"
            && ready
            && p["metadata"]["deletionTimestamp"].is_null(),
    }
}

fn lease(v: Option<Value>) -> Option<LeaseFact> {
    let v = v?;
    Some(LeaseFact {
        holder: s(&v["spec"]["holderIdentity"]),
        renew_time: s(&v["spec"]["renewTime"]),
    })
}

fn kube_system(kind: &str, api_version: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: Some(leader::NAMESPACE.into()),
        name: name.into(),
    }
}

/// Reads the facts; the kube-controller-managers from their static pods' mirror pods (RKE2).
/// RKE runs them as Docker containers, which the API does not show: the caller fills
/// [`Facts::kcm`] from the hosts then.
pub async fn gather(api: &dyn ClusterApi, distro: Distro) -> Result<Facts, ClusterError> {
    let nodes: Vec<NodeFact> = api
        .list("v1", "Node", None, None)
        .await?
        .iter()
        .map(|n| node_fact(n, distro))
        .collect();
    let kcm = match distro {
        Distro::Rke2 => api
            .list(
                "v1",
                "Pod",
                Some(leader::NAMESPACE),
                Some("component=kube-controller-manager"),
            )
            .await?
            .iter()
            .map(|p| pod_manager(p, "kube-controller-manager"))
            .collect(),
        Distro::Rke => Vec::new(),
    };
    let ds_ref = kube_system("DaemonSet", "apps/v1", chart::NAME);
    let ds = api.get(&ds_ref).await?;
    let daemon_set = ds.as_ref().map(|d| DaemonSetFact {
        generation: d["metadata"]["generation"].as_i64().unwrap_or(0),
        observed_generation: d["status"]["observedGeneration"].as_i64().unwrap_or(0),
        desired: d["status"]["desiredNumberScheduled"].as_i64().unwrap_or(0),
        updated: d["status"]["updatedNumberScheduled"].as_i64().unwrap_or(0),
        available: d["status"]["numberAvailable"].as_i64().unwrap_or(0),
    });
    let ccm = match &ds {
        None => Vec::new(),
        Some(d) => {
            let selector: Vec<String> = d["spec"]["selector"]["matchLabels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            if selector.is_empty() {
                Vec::new()
            } else {
                api.list(
                    "v1",
                    "Pod",
                    Some(leader::NAMESPACE),
                    Some(&selector.join(",")),
                )
                .await?
                .iter()
                .map(|p| pod_manager(p, chart::NAME))
                .collect()
            }
        }
    };
    let lease_api = "coordination.k8s.io/v1";
    let migration_lease = lease(
        api.get(&kube_system("Lease", lease_api, leader::LEASE))
            .await?,
    );
    let ccm_lease = lease(
        api.get(&kube_system("Lease", lease_api, chart::OWN_LEASE))
            .await?,
    );
    let mut load_balancers = BTreeMap::new();
    for svc in api.list("v1", "Service", None, None).await? {
        if svc["spec"]["type"] != "LoadBalancer" {
            continue;
        }
        let ingress = svc["status"]["loadBalancer"]["ingress"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        let ip = s(&i["ip"]);
                        if ip.is_empty() { s(&i["hostname"]) } else { ip }
                    })
                    .collect()
            })
            .unwrap_or_default();
        load_balancers.insert(
            format!(
                "{}/{}",
                s(&svc["metadata"]["namespace"]),
                s(&svc["metadata"]["name"])
            ),
            ingress,
        );
    }
    Ok(Facts {
        nodes,
        kcm,
        ccm,
        daemon_set,
        migration_lease,
        ccm_lease,
        load_balancers,
    })
}

/// The kube-controller-managers of an RKE cluster's control-plane nodes, read with `docker
/// inspect` of the container RKE runs them in, over each node's connection (`(node name,
/// connection)`). A node without the container has no entry: the checks name it.
pub async fn rke_managers(
    nodes: &[(String, std::sync::Arc<dyn HostExec>)],
) -> Result<Vec<Manager>, ExecError> {
    let mut out = Vec::new();
    for (node, host) in nodes {
        let o = host
            .run(
                &Cmd::new("docker")
                    .arg("inspect")
                    .arg("--type")
                    .arg("container")
                    .arg(rke::KCM_CONTAINER),
            )
            .await?;
        if !o.success() {
            let err = o.stderr_text();
            if err.contains("No such") {
                continue;
            }
            return Err(ExecError::Io {
                host: host.host().to_string(),
                detail: format!(
                    "docker inspect {} exited with {}: {}",
                    rke::KCM_CONTAINER,
                    o.code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "a signal".into()),
                    err.trim()
                ),
            });
        }
        let Some((args, running)) = rke::kcm_of_inspect(&o.stdout_text()) else {
            return Err(ExecError::Io {
                host: host.host().to_string(),
                detail: format!("docker inspect {} printed no container", rke::KCM_CONTAINER),
            });
        };
        out.push(Manager {
            node: node.clone(),
            source: format!("container {} on {}", rke::KCM_CONTAINER, host.host()),
            args,
            running,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_as_the_managers_read_them() {
        let a: Vec<String> = [
            "--v=2",
            "--cloud-provider=aws",
            "--enable-leader-migration",
            "--cloud-provider=external",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(flag(&a, "cloud-provider").as_deref(), Some("external"));
        assert_eq!(flag(&a, "enable-leader-migration").as_deref(), Some(""));
        assert_eq!(flag(&a, "cloud"), None);
        let m = Manager {
            node: "cp-1".into(),
            source: String::new(),
            args: vec!["--enable-leader-migration=false".into()],
            running: true,
        };
        assert!(!m.leader_migration());
    }

    #[test]
    fn a_mirror_pods_arguments_are_its_command_and_args() {
        let p = serde_json::json!({
            "metadata": {"name": "kube-controller-manager-cp-1", "namespace": "kube-system"},
            "spec": {"nodeName": "cp-1", "containers": [{"name": "kube-controller-manager",
                "command": ["kube-controller-manager"], "args": ["--cloud-provider=aws", "--enable-leader-migration=true"]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let m = pod_manager(&p, "kube-controller-manager");
        assert_eq!(m.node, "cp-1");
        assert_eq!(m.source, "Pod kube-system/kube-controller-manager-cp-1");
        assert!(m.running && m.leader_migration());
        assert_eq!(m.cloud_provider(), "aws");
    }
}
