//! The cluster as the checks see it: plain data read from the live cluster (nodes, pods, their
//! controllers, claims and volumes, disruption budgets, etcd members). The Kubernetes backend
//! fills these in; the fakes keep them; the checks read them. No client types leak in here, so
//! this crate stays pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A node as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub name: String,
    /// From `node-role.kubernetes.io/<role>` labels (`master`, `control-plane`, ...).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The `Ready` condition is `True`.
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub unschedulable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `InternalIP` address, if reported.
    #[serde(default)]
    pub internal_ip: Option<String>,
    /// `status.nodeInfo.kubeletVersion`.
    #[serde(default)]
    pub kubelet_version: String,
}

impl Node {
    /// A control-plane node by its role labels (`control-plane`, or the older `master`).
    pub fn is_control_plane(&self) -> bool {
        self.roles
            .iter()
            .any(|r| r == "control-plane" || r == "master")
    }
}

/// The controller that owns a pod or a controller: its `ownerReferences` entry with
/// `controller: true` (the first entry when none says so), in the owned object's namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// A volume of a pod, as far as a drain cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Volume {
    EmptyDir { name: String },
    HostPath { name: String, path: String },
    PersistentVolumeClaim { name: String, claim: String },
    Other { name: String },
}

/// A pod as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `None` for a bare pod (nothing recreates it after an eviction).
    #[serde(default)]
    pub owner: Option<Owner>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// `status.phase`: `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    #[serde(default)]
    pub phase: String,
    /// The `Ready` condition is `True`.
    #[serde(default)]
    pub ready: bool,
}

impl Pod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Still holds its node: not `Succeeded` or `Failed`.
    pub fn is_active(&self) -> bool {
        self.phase != "Succeeded" && self.phase != "Failed"
    }
}

/// A label selector requirement (`matchExpressions` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`, ANDed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// A selector of `matchLabels` only.
    pub fn labels<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        LabelSelector {
            match_labels: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            match_expressions: Vec::new(),
        }
    }

    /// Selects nothing or everything? For a PodDisruptionBudget (policy/v1) an empty selector
    /// selects every pod of the namespace; this says whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// `labels` satisfy every part of the selector. An operator this code does not know selects
    /// nothing (the API server rejects such selectors, so it cannot be seen on a real object).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => v.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => v.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
    }
}

/// A PodDisruptionBudget with the numbers its controller keeps in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub selector: LabelSelector,
    /// `status.disruptionsAllowed`.
    #[serde(default)]
    pub disruptions_allowed: i32,
    /// `status.currentHealthy`.
    #[serde(default)]
    pub current_healthy: i32,
    /// `status.desiredHealthy`.
    #[serde(default)]
    pub desired_healthy: i32,
    /// `status.expectedPods`.
    #[serde(default)]
    pub expected_pods: i32,
}

impl Pdb {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The budget covers `pod`: same namespace, selector matches. An empty selector covers every
    /// pod of the namespace (policy/v1).
    pub fn covers(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace && self.selector.matches(&pod.labels)
    }
}

/// A workload controller: Deployment, ReplicaSet, StatefulSet, ReplicationController, DaemonSet
/// or Job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Controller {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Who owns this controller (a ReplicaSet's Deployment, a Job's CronJob).
    #[serde(default)]
    pub owner: Option<Owner>,
    /// Desired pods: `spec.replicas`; for a DaemonSet `status.desiredNumberScheduled`; for a Job
    /// `spec.parallelism`.
    #[serde(default)]
    pub desired: i32,
    /// Ready pods: `status.readyReplicas`; for a DaemonSet `status.numberReady`; for a Job
    /// `status.ready`.
    #[serde(default)]
    pub ready: i32,
}

impl Controller {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A PersistentVolumeClaim.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    /// `spec.volumeName` once bound.
    #[serde(default)]
    pub volume: Option<String>,
}

/// Where a PersistentVolume keeps its data, as far as an upgrade cares.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum VolumeSource {
    /// `hostPath`: a directory on whichever node the pod runs on.
    HostPath { path: String },
    /// `local`: a disk of one node; the pod cannot move without losing it.
    Local { path: String },
    /// Network or CSI storage that follows the pod.
    #[default]
    Other,
}

/// A PersistentVolume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    pub name: String,
    #[serde(default)]
    pub source: VolumeSource,
}

/// What was read of the live cluster. A list that could not be read is named in `failed`
/// (with the error), and every check that needs it becomes a finding: the checks fail closed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub controllers: Vec<Controller>,
    #[serde(default)]
    pub claims: Vec<Claim>,
    #[serde(default)]
    pub volumes: Vec<PersistentVolume>,
    #[serde(default)]
    pub pdbs: Vec<Pdb>,
    /// Addresses of the `default/kubernetes` endpoints: one per API server (controller).
    #[serde(default)]
    pub api_servers: Vec<String>,
    /// etcd member names (`k0s etcd member-list`), when they were read (needs the hosts).
    #[serde(default)]
    pub etcd_members: Option<Vec<String>>,
    /// Lists that could not be read: [`Lookup`] → the error.
    #[serde(default)]
    pub failed: BTreeMap<Lookup, String>,
}

/// One list the snapshot is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Lookup {
    Nodes,
    Pods,
    Deployments,
    ReplicaSets,
    StatefulSets,
    ReplicationControllers,
    DaemonSets,
    Jobs,
    PersistentVolumeClaims,
    PersistentVolumes,
    PodDisruptionBudgets,
    ApiServers,
    EtcdMembers,
}

impl Lookup {
    /// What the list holds, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Lookup::Nodes => "nodes",
            Lookup::Pods => "pods",
            Lookup::Deployments => "deployments",
            Lookup::ReplicaSets => "replicasets",
            Lookup::StatefulSets => "statefulsets",
            Lookup::ReplicationControllers => "replicationcontrollers",
            Lookup::DaemonSets => "daemonsets",
            Lookup::Jobs => "jobs",
            Lookup::PersistentVolumeClaims => "persistentvolumeclaims",
            Lookup::PersistentVolumes => "persistentvolumes",
            Lookup::PodDisruptionBudgets => "poddisruptionbudgets",
            Lookup::ApiServers => "the API server endpoints",
            Lookup::EtcdMembers => "the etcd members",
        }
    }

    /// The list of controllers of `kind`, for the kinds the checks follow.
    pub fn of_kind(kind: &str) -> Option<Lookup> {
        Some(match kind {
            "Deployment" => Lookup::Deployments,
            "ReplicaSet" => Lookup::ReplicaSets,
            "StatefulSet" => Lookup::StatefulSets,
            "ReplicationController" => Lookup::ReplicationControllers,
            "DaemonSet" => Lookup::DaemonSets,
            "Job" => Lookup::Jobs,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_and_every_operator() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(LabelSelector::labels([("app", "web")]).matches(&l));
        assert!(!LabelSelector::labels([("app", "db")]).matches(&l));
        let expr = |op: &str, key: &str, values: &[&str]| LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: key.into(),
                operator: op.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        };
        assert!(expr("In", "tier", &["front", "back"]).matches(&l));
        assert!(!expr("In", "tier", &["back"]).matches(&l));
        assert!(!expr("In", "zone", &["a"]).matches(&l));
        assert!(expr("NotIn", "tier", &["back"]).matches(&l));
        assert!(expr("NotIn", "zone", &["a"]).matches(&l));
        assert!(!expr("NotIn", "tier", &["front"]).matches(&l));
        assert!(expr("Exists", "app", &[]).matches(&l));
        assert!(!expr("Exists", "zone", &[]).matches(&l));
        assert!(expr("DoesNotExist", "zone", &[]).matches(&l));
        assert!(!expr("DoesNotExist", "app", &[]).matches(&l));
        assert!(!expr("Gt", "app", &["1"]).matches(&l));
        // the empty selector of a PDB covers the whole namespace
        let pdb = Pdb {
            namespace: "shop".into(),
            name: "all".into(),
            ..Pdb::default()
        };
        let pod = Pod {
            namespace: "shop".into(),
            name: "p".into(),
            ..Pod::default()
        };
        assert!(pdb.covers(&pod));
        assert!(!pdb.covers(&Pod {
            namespace: "other".into(),
            ..pod
        }));
    }
}
