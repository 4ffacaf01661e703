//! The safety and availability checks of an online upgrade, computed from a [`Snapshot`] of
//! the live cluster rather than from a plan file. Every condition of Kismatic's table, without
//! its blind spots: counts come from the cluster, the controller owner reference is followed
//! (a ReplicaSet up to its Deployment), ready replicas count rather than desired ones, "all
//! replicas on this node" holds for every replicated kind, local PersistentVolumes are as unsafe
//! as HostPath ones, and PodDisruptionBudgets are read. A list that could not be read, or an
//! owner, claim or volume that cannot be found, is a finding: the checks fail closed.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    Claim, Controller, Lookup, Node, PersistentVolume, Pod, Snapshot, Volume, VolumeSource,
};
use crate::report::{Finding, Kind, NodeReport, Report, status_of};

/// A machine of the upgrade as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The name the operator knows it by (its host name, or its Node's name).
    pub name: String,
    /// Its Kubernetes Node, when it runs a kubelet (a k0s controller without `--enable-worker`
    /// has none).
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub etcd: bool,
    #[serde(default)]
    pub controller: bool,
    #[serde(default)]
    pub worker: bool,
}

impl Target {
    /// `etcd`, `controller`, `worker`, the ones it has.
    pub fn roles(&self) -> Vec<String> {
        [
            (self.etcd, "etcd"),
            (self.controller, "controller"),
            (self.worker, "worker"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, r)| r.to_string())
        .collect()
    }
}

/// The targets of a cluster known only through its API (no hosts): one per Node, a controller
/// when its role labels say so, a worker always (it runs a kubelet), an etcd member when the
/// snapshot's etcd member list names it.
pub fn targets_from_nodes(snapshot: &Snapshot) -> Vec<Target> {
    snapshot
        .nodes
        .iter()
        .map(|n| Target {
            name: n.name.clone(),
            node: Some(n.name.clone()),
            etcd: snapshot
                .etcd_members
                .as_ref()
                .is_some_and(|m| m.contains(&n.name)),
            controller: n.is_control_plane(),
            worker: true,
        })
        .collect()
}

/// Node labels that make a node special: `key` or `key=value`, comma-separated, all required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelector {
    terms: Vec<(String, Option<String>)>,
    text: String,
}

/// A node selector that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node selector {text:?}: {why}")]
pub struct SelectorError {
    pub text: String,
    pub why: String,
}

impl NodeSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let bad = |why: &str| SelectorError {
            text: text.to_string(),
            why: why.to_string(),
        };
        let mut terms = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(bad("an empty term"));
            }
            let (k, v) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
                None => (part, None),
            };
            if k.is_empty() || k.contains(char::is_whitespace) || k.contains('!') {
                return Err(bad("expected `key` or `key=value` terms"));
            }
            terms.push((k.to_string(), v));
        }
        Ok(NodeSelector {
            terms,
            text: text.to_string(),
        })
    }

    pub fn matches(&self, node: &Node) -> bool {
        self.terms.iter().all(|(k, v)| match v {
            Some(v) => node.labels.get(k) == Some(v),
            None => node.labels.contains_key(k),
        })
    }
}

impl std::fmt::Display for NodeSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the checks treat specially.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Ingress nodes (default `node-role.kubernetes.io/ingress`).
    pub ingress: NodeSelector,
    /// Storage nodes (default `node-role.kubernetes.io/storage`).
    pub storage: NodeSelector,
    /// Namespaces whose pods are not checked (default `kube-system`, whose add-ons the upgrade
    /// itself looks after).
    pub skip_namespaces: BTreeSet<String>,
}

impl Default for Options {
    fn default() -> Self {
        let sel = |k: &str| NodeSelector {
            terms: vec![(k.to_string(), None)],
            text: k.to_string(),
        };
        Options {
            ingress: sel("node-role.kubernetes.io/ingress"),
            storage: sel("node-role.kubernetes.io/storage"),
            skip_namespaces: BTreeSet::from(["kube-system".to_string()]),
        }
    }
}

/// Who stands behind a pod, followed to the controller a user knows (a ReplicaSet's
/// Deployment).
enum Behind<'a> {
    Bare,
    /// A static pod, mirrored by the kubelet (owner kind `Node`): a drain leaves it alone.
    Static,
    Replicated(&'a Controller),
    DaemonSet(&'a Controller),
    Job(&'a Controller),
    UnknownKind(String),
    Missing {
        kind: String,
        name: String,
    },
    NotRead(Lookup),
}

/// The snapshot's lists keyed for lookups: a check of 1,000 nodes and 30,000 pods looks up an
/// owner, claim, volume or budget per pod, and a scan of the list each time made it quadratic.
struct Index<'a> {
    snapshot: &'a Snapshot,
    controllers: BTreeMap<(&'a str, &'a str, &'a str), &'a Controller>,
    claims: BTreeMap<(&'a str, &'a str), &'a Claim>,
    volumes: BTreeMap<&'a str, &'a PersistentVolume>,
    /// Positions in `snapshot.pdbs` per namespace: a budget covers pods of its own namespace.
    pdbs: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let controllers = snapshot
            .controllers
            .iter()
            .map(|c| ((c.kind.as_str(), c.namespace.as_str(), c.name.as_str()), c))
            .collect();
        let mut claims = BTreeMap::new();
        for c in &snapshot.claims {
            // The first of a repeated key wins, as the scan this replaces found it.
            claims
                .entry((c.namespace.as_str(), c.name.as_str()))
                .or_insert(c);
        }
        let mut volumes = BTreeMap::new();
        for v in &snapshot.volumes {
            volumes.entry(v.name.as_str()).or_insert(v);
        }
        let mut pdbs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, b) in snapshot.pdbs.iter().enumerate() {
            pdbs.entry(b.namespace.as_str()).or_default().push(i);
        }
        Index {
            snapshot,
            controllers,
            claims,
            volumes,
            pdbs,
        }
    }

    fn failed(&self, l: Lookup) -> Option<&'a String> {
        self.snapshot.failed.get(&l)
    }

    fn find(&self, kind: &str, ns: &str, name: &str) -> Result<Option<&'a Controller>, Lookup> {
        match Lookup::of_kind(kind) {
            Some(l) if self.failed(l).is_some() => Err(l),
            _ => Ok(self.controllers.get(&(kind, ns, name)).copied()),
        }
    }

    fn behind(&self, pod: &Pod) -> Behind<'a> {
        let Some(o) = &pod.owner else {
            return Behind::Bare;
        };
        let ns = pod.namespace.as_str();
        let missing = |kind: &str, name: &str| Behind::Missing {
            kind: kind.to_string(),
            name: name.to_string(),
        };
        match o.kind.as_str() {
            "Node" => Behind::Static,
            k @ ("ReplicaSet" | "StatefulSet" | "ReplicationController" | "DaemonSet" | "Job") => {
                let c = match self.find(k, ns, &o.name) {
                    Err(l) => return Behind::NotRead(l),
                    Ok(None) => return missing(k, &o.name),
                    Ok(Some(c)) => c,
                };
                match k {
                    "DaemonSet" => Behind::DaemonSet(c),
                    "Job" => Behind::Job(c),
                    "ReplicaSet" => match &c.owner {
                        Some(d) if d.kind == "Deployment" => {
                            match self.find("Deployment", ns, &d.name) {
                                Err(l) => Behind::NotRead(l),
                                Ok(None) => missing("Deployment", &d.name),
                                Ok(Some(d)) => Behind::Replicated(d),
                            }
                        }
                        _ => Behind::Replicated(c),
                    },
                    _ => Behind::Replicated(c),
                }
            }
            other => Behind::UnknownKind(other.to_string()),
        }
    }
}

/// Collects one node's findings without repeating one.
#[derive(Default)]
struct Findings {
    list: Vec<Finding>,
    seen: BTreeSet<String>,
}

impl Findings {
    fn add(&mut self, kind: Kind, message: String) {
        if self.seen.insert(message.clone()) {
            self.list.push(Finding::new(kind, message));
        }
    }

    fn lookup(&mut self, snapshot: &Snapshot, l: Lookup) {
        let err = snapshot.failed.get(&l).map_or("", String::as_str);
        self.add(
            Kind::LookupFailed,
            format!("Unable to determine upgrade safety: reading {l} failed: {err}"),
        );
    }
}

/// Runs every check for every target, in the targets' order.
pub fn check(snapshot: &Snapshot, targets: &[Target], options: &Options) -> Report {
    let index = Index::new(snapshot);
    let etcd = snapshot.etcd_members.as_ref().map(Vec::len);
    let controllers = targets
        .iter()
        .filter(|t| t.controller)
        .count()
        .max(snapshot.api_servers.len());
    let workers = targets.iter().filter(|t| t.worker).count();

    // A replicated owner's pods that are Ready, per node: "all replicas on this node" is "no
    // ready replica anywhere else".
    let mut ready_on: BTreeMap<(&str, &str, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut by_node: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for p in snapshot.pods.iter().filter(|p| p.is_active()) {
        let Some(node) = p.node.as_deref() else {
            continue;
        };
        by_node.entry(node).or_default().push(p);
        if let (true, Behind::Replicated(c)) = (p.ready, index.behind(p)) {
            ready_on
                .entry((c.kind.as_str(), c.namespace.as_str(), c.name.as_str()))
                .or_default()
                .insert(node);
        }
    }
    for pods in by_node.values_mut() {
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    }

    let nodes: BTreeMap<&str, &Node> = snapshot
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();

    let reports = targets
        .iter()
        .map(|t| {
            let mut f = Findings::default();
            if t.etcd {
                match etcd {
                    Some(n) if n < 3 => f.add(
                        Kind::EtcdQuorum,
                        "This node is part of an etcd cluster that has less than 3 members. \
                         Upgrading it may make the cluster unavailable."
                            .into(),
                    ),
                    _ => {}
                }
            }
            if t.controller && snapshot.failed.contains_key(&Lookup::EtcdMembers) {
                f.lookup(snapshot, Lookup::EtcdMembers);
            }
            if t.controller && controllers < 2 {
                f.add(
                    Kind::OnlyController,
                    "This is the only controller node in the cluster. Upgrading it may make \
                     the cluster unavailable."
                        .into(),
                );
            }
            if t.worker && workers < 2 {
                f.add(
                    Kind::OnlyWorker,
                    "This is the only worker node in the cluster. Upgrading it may make \
                     cluster features unavailable."
                        .into(),
                );
            }
            if let Some(name) = &t.node {
                if snapshot.failed.contains_key(&Lookup::Nodes) {
                    f.lookup(snapshot, Lookup::Nodes);
                } else if let Some(node) = nodes.get(name.as_str()) {
                    if options.ingress.matches(node) {
                        f.add(
                            Kind::IngressNode,
                            "Upgrading this node may result in service unavailability if \
                             clients are accessing services directly through this ingress \
                             point."
                                .into(),
                        );
                    }
                    if options.storage.matches(node) {
                        f.add(
                            Kind::StorageNode,
                            "Upgrading this node may result in storage volumes becoming \
                             temporarily unavailable."
                                .into(),
                        );
                    }
                } else {
                    f.add(
                        Kind::NodeMissing,
                        format!(
                            "No Kubernetes node named \"{name}\" is registered: the pods this \
                             node runs cannot be checked."
                        ),
                    );
                }
                if snapshot.failed.contains_key(&Lookup::Pods) {
                    f.lookup(snapshot, Lookup::Pods);
                } else {
                    let pods: Vec<&Pod> = by_node
                        .get(name.as_str())
                        .map(|v| v.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .copied()
                        .filter(|p| !options.skip_namespaces.contains(&p.namespace))
                        .collect();
                    for p in &pods {
                        check_pod(&index, &ready_on, name, p, &mut f);
                    }
                    check_budgets(&index, &pods, &mut f);
                }
            }
            NodeReport {
                name: t.name.clone(),
                roles: t.roles(),
                status: status_of(&f.list, false),
                findings: f.list,
            }
        })
        .collect();
    Report {
        nodes: reports,
        ignored: false,
    }
}

fn check_pod(
    index: &Index<'_>,
    ready_on: &BTreeMap<(&str, &str, &str), BTreeSet<&str>>,
    node: &str,
    p: &Pod,
    f: &mut Findings,
) {
    let snapshot = index.snapshot;
    let pod = p.key();
    for v in &p.volumes {
        match v {
            Volume::EmptyDir { name } => f.add(
                Kind::EmptyDir,
                format!(
                    "Pod \"{pod}\" is using EmptyDir volume \"{name}\", which is unsafe for upgrades."
                ),
            ),
            Volume::HostPath { name, .. } => f.add(
                Kind::HostPath,
                format!(
                    "Pod \"{pod}\" is using HostPath volume \"{name}\", which is unsafe for upgrades."
                ),
            ),
            Volume::PersistentVolumeClaim { name, claim } => {
                if snapshot
                    .failed
                    .contains_key(&Lookup::PersistentVolumeClaims)
                {
                    f.lookup(snapshot, Lookup::PersistentVolumeClaims);
                    continue;
                }
                let Some(c) = index
                    .claims
                    .get(&(p.namespace.as_str(), claim.as_str()))
                    .copied()
                else {
                    f.add(
                        Kind::ClaimMissing,
                        format!(
                            "Unable to determine upgrade safety for pod \"{pod}\": its volume \
                             \"{name}\" claims \"{claim}\", which was not found."
                        ),
                    );
                    continue;
                };
                // A claim not bound yet holds no data.
                let Some(pv) = &c.volume else { continue };
                if snapshot.failed.contains_key(&Lookup::PersistentVolumes) {
                    f.lookup(snapshot, Lookup::PersistentVolumes);
                    continue;
                }
                match index.volumes.get(pv.as_str()).copied() {
                    None => f.add(
                        Kind::VolumeMissing,
                        format!(
                            "Unable to determine upgrade safety for pod \"{pod}\": its volume \
                             \"{name}\" is bound to PersistentVolume \"{pv}\", which was not found."
                        ),
                    ),
                    Some(v) => match &v.source {
                        VolumeSource::HostPath { .. } => f.add(
                            Kind::HostPathVolume,
                            format!(
                                "Pod \"{pod}\" is using volume \"{name}\", which is backed by a \
                                 HostPath PersistentVolume. This kind of volume is unsafe for upgrades."
                            ),
                        ),
                        VolumeSource::Local { .. } => f.add(
                            Kind::LocalVolume,
                            format!(
                                "Pod \"{pod}\" is using volume \"{name}\", which is backed by a \
                                 local PersistentVolume. This kind of volume is unsafe for upgrades."
                            ),
                        ),
                        VolumeSource::Other => {}
                    },
                }
            }
            Volume::Other { .. } => {}
        }
    }
    match index.behind(p) {
        Behind::Bare => f.add(
            Kind::Unmanaged,
            format!(
                "The pod \"{pod}\" is not being managed by a controller. Upgrading this node \
                 might result in data or availability loss."
            ),
        ),
        Behind::Static => {}
        Behind::NotRead(l) => f.lookup(snapshot, l),
        Behind::UnknownKind(kind) => f.add(
            Kind::UnknownOwner,
            format!(
                "Unable to determine upgrade safety for pod \"{pod}\", managed by a controller \
                 of type \"{kind}\"."
            ),
        ),
        Behind::Missing { kind, name } => f.add(
            Kind::OwnerMissing,
            format!(
                "Unable to determine upgrade safety for pod \"{pod}\": its {kind} \"{}/{name}\" \
                 was not found.",
                p.namespace
            ),
        ),
        Behind::Job(c) => f.add(
            Kind::Job,
            format!(
                "Pod that belongs to job \"{}\" is running on this node.",
                c.key()
            ),
        ),
        Behind::DaemonSet(c) => {
            if c.desired < 2 {
                f.add(
                    Kind::SingleDaemonSet,
                    format!(
                        "Pod managed by DaemonSet \"{}\" is running on this node, and no other \
                         nodes are capable of hosting this daemon. Upgrading it may make the \
                         daemon unavailable.",
                        c.key()
                    ),
                );
            }
        }
        Behind::Replicated(c) => {
            if c.ready < 2 {
                f.add(
                    Kind::FewReplicas,
                    format!(
                        "Pod managed by {kind} \"{key}\" is running on this node, and the {kind} \
                         does not have a ready replica count greater than 1 ({ready} ready of {desired}).",
                        kind = c.kind,
                        key = c.key(),
                        ready = c.ready,
                        desired = c.desired,
                    ),
                );
            } else {
                let elsewhere = ready_on
                    .get(&(c.kind.as_str(), c.namespace.as_str(), c.name.as_str()))
                    .is_some_and(|nodes| nodes.iter().any(|n| *n != node));
                if !elsewhere {
                    f.add(
                        Kind::AllReplicasHere,
                        format!(
                            "All the replicas that belong to the {} \"{}\" are running on this node.",
                            c.kind,
                            c.key()
                        ),
                    );
                }
            }
        }
    }
}

/// Beyond Kismatic: a drain evicts through the Eviction API one pod at a time and waits while a
/// budget refuses, so a budget matters when it would hold the drain up for good or be broken by
/// a forced one: it allows no disruption now (the drain blocks at once, waiting for something
/// nobody promised), or this node holds more of its healthy pods that nothing recreates (bare
/// pods, unknown owners) than it allows (each such eviction spends the allowance for good).
/// Pods of a replicated controller come back elsewhere and give the allowance back; DaemonSet
/// and static pods are not evicted at all.
fn check_budgets(index: &Index<'_>, pods: &[&Pod], f: &mut Findings) {
    let snapshot = index.snapshot;
    let evicted: Vec<(&Pod, bool)> = pods
        .iter()
        .filter_map(|p| match index.behind(p) {
            Behind::DaemonSet(_) | Behind::Static => None,
            Behind::Replicated(_) | Behind::Job(_) => Some((*p, true)),
            _ => Some((*p, false)),
        })
        .collect();
    if evicted.is_empty() {
        return;
    }
    if snapshot.failed.contains_key(&Lookup::PodDisruptionBudgets) {
        f.lookup(snapshot, Lookup::PodDisruptionBudgets);
        return;
    }
    // Only the budgets of the evicted pods' namespaces, in the snapshot's order.
    let namespaces: BTreeSet<&str> = evicted.iter().map(|(p, _)| p.namespace.as_str()).collect();
    let mut budgets: Vec<usize> = namespaces
        .iter()
        .filter_map(|ns| index.pdbs.get(ns))
        .flatten()
        .copied()
        .collect();
    budgets.sort_unstable();
    for b in budgets.iter().map(|&i| &snapshot.pdbs[i]) {
        let covered: Vec<&(&Pod, bool)> = evicted.iter().filter(|(p, _)| b.covers(p)).collect();
        if covered.is_empty() {
            continue;
        }
        let healthy = covered.iter().filter(|(p, _)| p.ready).count();
        let lost = covered.iter().filter(|(p, back)| p.ready && !back).count();
        let allowed = usize::try_from(b.disruptions_allowed.max(0)).unwrap_or(0);
        if healthy > 0 && allowed == 0 {
            f.add(
                Kind::DisruptionBudget,
                format!(
                    "Draining this node would be blocked by PodDisruptionBudget \"{}\": it allows \
                     no disruption now ({} of {} desired pods healthy) and covers {healthy} \
                     healthy pod(s) here.",
                    b.key(),
                    b.current_healthy,
                    b.desired_healthy
                ),
            );
        } else if lost > allowed {
            f.add(
                Kind::DisruptionBudget,
                format!(
                    "Draining this node would take PodDisruptionBudget \"{}\" below its minimum: \
                     {lost} of its healthy pods here are not recreated by a controller, and it \
                     allows {allowed} disruption(s).",
                    b.key()
                ),
            );
        } else if healthy < covered.len() && b.current_healthy < b.desired_healthy {
            // The eviction of an unhealthy pod is refused too while the budget is not met
            // (unhealthyPodEvictionPolicy IfHealthyBudget, the default).
            f.add(
                Kind::DisruptionBudget,
                format!(
                    "Draining this node would be blocked by PodDisruptionBudget \"{}\": {} of \
                     {} desired pods are healthy, so its unready pods on this node cannot be \
                     evicted.",
                    b.key(),
                    b.current_healthy,
                    b.desired_healthy
                ),
            );
        }
    }
}
