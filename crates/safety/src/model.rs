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
    /// `status.allocatable`: what the scheduler may place on the node. `None` when the node
    /// reports none (a kubelet that has not posted its status yet).
    #[serde(default)]
    pub allocatable: Option<Resources>,
    /// `spec.taints`.
    #[serde(default)]
    pub taints: Vec<Taint>,
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
    /// What the scheduler reserves for the pod: per resource the larger of the sum of its
    /// containers' requests and the largest init container's request (the pod's overhead
    /// added).
    #[serde(default)]
    pub requests: Resources,
    /// `spec.nodeSelector`.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// `spec.tolerations`.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
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

/// CPU, memory and pod slots: a node's allocatable or a pod's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Millicores (`500m` is 500, `2` is 2000).
    #[serde(default)]
    pub cpu_millis: u64,
    /// Bytes.
    #[serde(default)]
    pub memory_bytes: u64,
    /// Pod slots (a node's `pods`, 110 by default); 0 in a pod's requests.
    #[serde(default)]
    pub pods: u64,
}

impl Resources {
    /// Reads the `cpu`, `memory` and `pods` entries of a resource list; other resources are
    /// not weighed. An entry that is not a Kubernetes quantity is an error naming it.
    pub fn from_list<'a>(
        list: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Resources, QuantityError> {
        let mut r = Resources::default();
        for (name, q) in list {
            match name {
                "cpu" => r.cpu_millis = quantity_millis(q)?,
                "memory" => r.memory_bytes = quantity_units(q)?,
                "pods" => r.pods = quantity_units(q)?,
                _ => {}
            }
        }
        Ok(r)
    }

    /// What the scheduler reserves for a pod: per resource the larger of the sum of its
    /// containers and its largest init container, plus the pod's overhead.
    pub fn of_pod(
        containers: impl IntoIterator<Item = Resources>,
        init_containers: impl IntoIterator<Item = Resources>,
        overhead: Resources,
    ) -> Resources {
        let sum = containers
            .into_iter()
            .fold(Resources::default(), Resources::plus);
        let init = init_containers
            .into_iter()
            .fold(Resources::default(), Resources::max);
        let mut r = sum.max(init).plus(overhead);
        r.pods = 0;
        r
    }

    /// Per resource, the larger of the two.
    pub fn max(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(o.cpu_millis),
            memory_bytes: self.memory_bytes.max(o.memory_bytes),
            pods: self.pods.max(o.pods),
        }
    }

    /// Per resource, the sum (saturating).
    pub fn plus(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
            pods: self.pods.saturating_add(o.pods),
        }
    }
}

/// A value that is not a Kubernetes quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Kubernetes quantity (like 250m, 2, 1.5, 512Mi, 1G or 1e3)")]
pub struct QuantityError(pub String);

/// A quantity as a number and its scale: `(mantissa as a decimal string split, multiplier)`.
fn split_quantity(q: &str) -> Result<(f64, f64), QuantityError> {
    let bad = || QuantityError(q.to_string());
    let t = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let more: [(&str, f64); 2] = [("P", 1e15), ("E", 1e18)];
    let (num, mult) = suffixes
        .iter()
        .chain(more.iter())
        .find_map(|(s, m)| t.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((t, 1.0));
    // a decimal exponent (`1e3`, `1E-3`) is a number of its own
    let ok = !num.is_empty()
        && num
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'));
    if !ok {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n, mult))
}

/// A quantity in thousandths, rounded up (`250m` → 250, `0.5` → 500, `2` → 2000): CPU.
pub fn quantity_millis(q: &str) -> Result<u64, QuantityError> {
    let (n, mult) = split_quantity(q)?;
    Ok((n * mult * 1000.0 - 1e-6).ceil().max(0.0) as u64)
}

/// A quantity in whole units, rounded up (`1Ki` → 1024, `1.5G` → 1500000000): memory, pods.
pub fn quantity_units(q: &str) -> Result<u64, QuantityError> {
    let (n, mult) = split_quantity(q)?;
    Ok((n * mult - 1e-9).ceil().max(0.0) as u64)
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A pod's toleration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// Empty with operator `Exists`: tolerates every taint.
    #[serde(default)]
    pub key: String,
    /// `Equal` (the default when empty) or `Exists`.
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub value: String,
    /// Empty: every effect.
    #[serde(default)]
    pub effect: String,
}

impl Toleration {
    /// The scheduler's rule (`ToleratesTaint` of k8s.io/api's helpers).
    pub fn tolerates(&self, t: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != t.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != t.key {
            return false;
        }
        match self.operator.as_str() {
            "Exists" => true,
            "" | "Equal" => self.value == t.value,
            _ => false,
        }
    }
}

impl Pod {
    /// The pod tolerates every taint of `node` that keeps pods away (`NoSchedule`,
    /// `NoExecute`; `PreferNoSchedule` is only a preference).
    pub fn tolerates_taints_of(&self, node: &Node) -> bool {
        node.taints
            .iter()
            .filter(|t| t.effect != "PreferNoSchedule")
            .all(|t| self.tolerations.iter().any(|tol| tol.tolerates(t)))
    }

    /// `spec.nodeSelector` matches `node`'s labels.
    pub fn selects(&self, node: &Node) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| node.labels.get(k) == Some(v))
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

    #[test]
    fn quantities_read_as_the_api_server_writes_them() {
        assert_eq!(quantity_millis("250m"), Ok(250));
        assert_eq!(quantity_millis("2"), Ok(2000));
        assert_eq!(quantity_millis("0.5"), Ok(500));
        assert_eq!(quantity_millis("1.0001"), Ok(1001)); // rounded up, as the scheduler does
        assert_eq!(quantity_millis("1k"), Ok(1_000_000));
        assert_eq!(quantity_millis("100u"), Ok(1));
        assert_eq!(quantity_units("128Mi"), Ok(128 << 20));
        assert_eq!(quantity_units("1Gi"), Ok(1 << 30));
        assert_eq!(quantity_units("1.5G"), Ok(1_500_000_000));
        assert_eq!(quantity_units("1e3"), Ok(1000));
        assert_eq!(quantity_units("110"), Ok(110));
        assert_eq!(quantity_units("0"), Ok(0));
        for bad in ["", "Mi", "1Qi", "-1", "one", "1 Gi"] {
            assert!(quantity_units(bad).is_err(), "{bad:?}");
        }
        let r = Resources::from_list([
            ("cpu", "3900m"),
            ("memory", "8Gi"),
            ("pods", "110"),
            ("nvidia.com/gpu", "1"),
        ])
        .unwrap();
        assert_eq!(
            r,
            Resources {
                cpu_millis: 3900,
                memory_bytes: 8 << 30,
                pods: 110
            }
        );
        assert!(Resources::from_list([("cpu", "lots")]).is_err());
    }

    #[test]
    fn tolerations_follow_the_schedulers_rule() {
        let taint = Taint {
            key: "dedicated".into(),
            value: "db".into(),
            effect: "NoSchedule".into(),
        };
        let tol = |key: &str, op: &str, value: &str, effect: &str| Toleration {
            key: key.into(),
            operator: op.into(),
            value: value.into(),
            effect: effect.into(),
        };
        assert!(tol("dedicated", "Equal", "db", "NoSchedule").tolerates(&taint));
        assert!(tol("dedicated", "", "db", "").tolerates(&taint));
        assert!(tol("dedicated", "Exists", "", "").tolerates(&taint));
        assert!(tol("", "Exists", "", "").tolerates(&taint));
        assert!(!tol("dedicated", "Equal", "web", "NoSchedule").tolerates(&taint));
        assert!(!tol("dedicated", "Equal", "db", "NoExecute").tolerates(&taint));
        assert!(!tol("other", "Exists", "", "").tolerates(&taint));
        let node = Node {
            taints: vec![
                taint.clone(),
                Taint {
                    key: "soft".into(),
                    value: String::new(),
                    effect: "PreferNoSchedule".into(),
                },
            ],
            ..Node::default()
        };
        let mut pod = Pod::default();
        assert!(!pod.tolerates_taints_of(&node));
        pod.tolerations = vec![tol("dedicated", "Equal", "db", "NoSchedule")];
        assert!(
            pod.tolerates_taints_of(&node),
            "a preference does not keep a pod away"
        );
    }
}
