//! Can the cluster absorb the pods of the nodes it loses, one batch at a time?
//!
//! A node that is removed (to be reinstalled, or replaced by a new machine) has its pods evicted;
//! their controllers recreate them, and the scheduler must find them room on the nodes left. This
//! module plays that forward, batch by batch, in the order the caller will take the nodes out, on
//! the scheduler's own terms for the things that most often stop a pod from landing: CPU and
//! memory requests against each node's allocatable, the node's pod limit (`maxPods`, 110 by
//! default), the pod's `nodeSelector`, and the node's `NoSchedule` / `NoExecute` taints against
//! the pod's tolerations. Affinity, anti-affinity, topology spread, volumes' zones and host ports
//! are not weighed: a pod with those may still not land where this says it fits, and the report
//! says so.
//!
//! Between batches the cluster changes as the order says:
//! - **remove-before-add**: the batch's nodes come back empty under the same names (their
//!   evicted pods stay where they landed; their DaemonSet and static pods return with them);
//! - **add-before-remove**: a new node joins for each node of the batch before it leaves, assumed
//!   to be like the one it replaces (allocatable, labels, taints), with its DaemonSet pods; the
//!   evicted pods may land on it; the old node is gone after.
//!
//! Placement is greedy (largest pods first, each on the candidate with the most room left, as the
//! default scheduler's `LeastAllocated` scoring spreads them): when it places every pod, that
//! placement exists; when it cannot, a cleverer packing might, so the report names the pods and
//! why no node took them, and suggests the fix.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{Node, Pod, Resources, Snapshot};

/// The order of a replacement: which comes first for each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    RemoveBeforeAdd,
    AddBeforeRemove,
}

/// Why a pod found no node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum NoRoom {
    /// No node is left that is Ready, schedulable and reports its allocatable.
    NoNodes,
    /// No remaining node carries the labels the pod selects.
    NodeSelector { selector: BTreeMap<String, String> },
    /// Every node that matches keeps the pod away with a taint it does not tolerate.
    Taints { taints: Vec<String> },
    /// Every node it may go to is at its pod limit.
    PodLimit { limit: u64 },
    /// Not enough CPU left on any node it may go to.
    Cpu {
        needs_millis: u64,
        most_free_millis: u64,
    },
    /// Not enough memory left on any node it may go to.
    Memory {
        needs_bytes: u64,
        most_free_bytes: u64,
    },
}

impl NoRoom {
    /// One line for the report.
    pub fn describe(&self) -> String {
        match self {
            NoRoom::NoNodes => "no Ready, schedulable node is left to take it".into(),
            NoRoom::NodeSelector { selector } => format!(
                "no other node has the labels it selects ({})",
                selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            NoRoom::Taints { taints } => format!(
                "every node it may go to has a taint it does not tolerate ({})",
                taints.join(", ")
            ),
            NoRoom::PodLimit { limit } => {
                format!("every node it may go to is at its pod limit ({limit} pods)")
            }
            NoRoom::Cpu {
                needs_millis,
                most_free_millis,
            } => format!(
                "not enough CPU: it requests {needs_millis}m, the most any node it may go to has left is {most_free_millis}m"
            ),
            NoRoom::Memory {
                needs_bytes,
                most_free_bytes,
            } => format!(
                "not enough memory: it requests {}, the most any node it may go to has left is {}",
                mib(*needs_bytes),
                mib(*most_free_bytes)
            ),
        }
    }
}

fn mib(b: u64) -> String {
    format!("{}Mi", b.div_ceil(1 << 20))
}

/// A pod that would find no node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stranded {
    /// `namespace/name`.
    pub pod: String,
    #[serde(flatten)]
    pub why: NoRoom,
}

/// One node's turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeTurn {
    pub node: String,
    /// The other nodes out at the same time (the worker window).
    pub with: Vec<String>,
    /// Pods evicted that a controller recreates elsewhere.
    pub moved: usize,
    /// Where they land: node → how many.
    pub placed: BTreeMap<String, usize>,
    /// Pods nothing recreates (no controller): a drain deletes them for good.
    pub bare: Vec<String>,
    /// Pods that would find no node.
    pub stranded: Vec<Stranded>,
    /// The node reports no allocatable: its pods' room cannot be known. Its pods are weighed
    /// only against the others.
    pub unknown_allocatable: bool,
}

impl NodeTurn {
    pub fn fits(&self) -> bool {
        self.stranded.is_empty()
    }
}

/// The capacity report: one turn per node, in the order they go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReport {
    pub order: Order,
    pub turns: Vec<NodeTurn>,
    /// What would make the order fit, when it does not.
    pub suggestions: Vec<String>,
}

impl CapacityReport {
    /// Every node's pods find room.
    pub fn fits(&self) -> bool {
        self.turns.iter().all(NodeTurn::fits)
    }

    /// The report in the layout of the other checks.
    pub fn render(&self) -> String {
        let mut s = String::from("Capacity: can the other nodes take each node's pods?\n");
        for t in &self.turns {
            let with = if t.with.is_empty() {
                String::new()
            } else {
                format!(" (out with {})", t.with.join(", "))
            };
            let status = if t.fits() { "[OK]" } else { "[NO ROOM]" };
            let placed = if t.placed.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    t.placed
                        .iter()
                        .map(|(n, c)| format!("{c} to {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            s.push_str(&format!(
                "  {:<24} {status:<10} {} pod(s) to move{placed}{with}\n",
                t.node, t.moved
            ));
            for b in &t.bare {
                s.push_str(&format!(
                    "      - {b}: no controller recreates it; the drain deletes it for good\n"
                ));
            }
            for p in &t.stranded {
                s.push_str(&format!("      - {}: {}\n", p.pod, p.why.describe()));
            }
            if t.unknown_allocatable {
                s.push_str(
                    "      - the node reports no allocatable resources; its pods are weighed against the other nodes only\n",
                );
            }
        }
        for x in &self.suggestions {
            s.push_str(&format!("  Suggestion: {x}\n"));
        }
        s.push_str(
            "  (weighed: CPU and memory requests, pod limits, node selectors, taints; not weighed: affinity, topology spread, volume zones, host ports)\n",
        );
        s
    }
}

/// A node in the simulation: what it offers and what is on it.
#[derive(Debug, Clone)]
struct Slot {
    node: Node,
    allocatable: Option<Resources>,
    used: Resources,
    /// Pods on it (for the pod limit: every pod counts, DaemonSet and static pods too).
    pods: u64,
}

impl Slot {
    fn free(&self) -> Option<Resources> {
        let a = self.allocatable?;
        Some(Resources {
            cpu_millis: a.cpu_millis.saturating_sub(self.used.cpu_millis),
            memory_bytes: a.memory_bytes.saturating_sub(self.used.memory_bytes),
            pods: a.pods.saturating_sub(self.pods),
        })
    }

    fn take(&mut self, r: Resources) {
        self.used = self.used.plus(r);
        self.pods += 1;
    }

    /// The node takes new pods: Ready, not cordoned, its room known.
    fn open(&self) -> bool {
        self.node.ready && !self.node.unschedulable && self.allocatable.is_some()
    }
}

/// Pods that stay with their node: DaemonSet pods and static pods' mirrors.
fn stays(p: &Pod) -> bool {
    p.owner
        .as_ref()
        .is_some_and(|o| o.kind == "DaemonSet" || o.kind == "Node")
}

/// Plays the batches forward. `batches` holds node names; names not in the snapshot are turns
/// with nothing to move (a controller without a Node).
pub fn capacity(snapshot: &Snapshot, batches: &[Vec<String>], order: Order) -> CapacityReport {
    let mut slots: BTreeMap<String, Slot> = snapshot
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                Slot {
                    node: n.clone(),
                    allocatable: n.allocatable,
                    used: Resources::default(),
                    pods: 0,
                },
            )
        })
        .collect();
    // pods by node (only active pods hold room)
    let mut on: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in snapshot.pods.iter().filter(|p| p.is_active()) {
        if let Some(n) = &p.node {
            if let Some(s) = slots.get_mut(n) {
                s.take(p.requests);
            }
            on.entry(n.clone()).or_default().push(p.clone());
        }
    }
    let mut turns = Vec::new();
    let mut short = BTreeSet::new();
    for batch in batches {
        let out: BTreeSet<&str> = batch.iter().map(String::as_str).collect();
        // add-before-remove: the new nodes join first, each like the one it replaces, with
        // that node's DaemonSet pods
        if order == Order::AddBeforeRemove {
            for name in batch {
                let Some(old) = slots.get(name).cloned() else {
                    continue;
                };
                let new_name = format!("{name} (new)");
                let mut node = old.node.clone();
                node.name = new_name.clone();
                node.unschedulable = false;
                let mut slot = Slot {
                    node,
                    allocatable: old.allocatable,
                    used: Resources::default(),
                    pods: 0,
                };
                let ds: Vec<Pod> = on
                    .get(name)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.owner.as_ref().is_some_and(|o| o.kind == "DaemonSet"))
                    .cloned()
                    .collect();
                for p in &ds {
                    slot.take(p.requests);
                }
                on.insert(new_name.clone(), ds);
                slots.insert(new_name, slot);
            }
        }
        // every node of the batch is out before any of its pods land
        let mut moving: Vec<(String, Pod)> = Vec::new();
        let mut turn_of: BTreeMap<String, NodeTurn> = BTreeMap::new();
        for name in batch {
            let pods = on.get(name).cloned().unwrap_or_default();
            let mut t = NodeTurn {
                node: name.clone(),
                with: batch.iter().filter(|n| *n != name).cloned().collect(),
                moved: 0,
                placed: BTreeMap::new(),
                bare: Vec::new(),
                stranded: Vec::new(),
                unknown_allocatable: slots.get(name).is_some_and(|s| s.allocatable.is_none()),
            };
            for p in pods.into_iter().filter(|p| !stays(p)) {
                if p.owner.is_none() {
                    t.bare.push(p.key());
                } else {
                    t.moved += 1;
                    moving.push((name.clone(), p));
                }
            }
            turn_of.insert(name.clone(), t);
        }
        // largest first: CPU, then memory
        moving.sort_by(|(_, a), (_, b)| {
            (b.requests.cpu_millis, b.requests.memory_bytes, a.key()).cmp(&(
                a.requests.cpu_millis,
                a.requests.memory_bytes,
                b.key(),
            ))
        });
        let mut landed: Vec<(String, Pod)> = Vec::new();
        for (from, p) in moving {
            let candidates: Vec<&Slot> = slots
                .values()
                .filter(|s| !out.contains(s.node.name.as_str()) && s.open())
                .collect();
            match place(&p, &candidates) {
                Ok(to) => {
                    if let Some(s) = slots.get_mut(&to) {
                        s.take(p.requests);
                    }
                    if let Some(t) = turn_of.get_mut(&from) {
                        *t.placed.entry(to.clone()).or_default() += 1;
                    }
                    landed.push((to, p));
                }
                Err(why) => {
                    match &why {
                        NoRoom::PodLimit { .. } => short.insert("pods"),
                        NoRoom::Cpu { .. } | NoRoom::Memory { .. } | NoRoom::NoNodes => {
                            short.insert("resources")
                        }
                        NoRoom::NodeSelector { .. } | NoRoom::Taints { .. } => {
                            short.insert("placement")
                        }
                    };
                    if let Some(t) = turn_of.get_mut(&from) {
                        t.stranded.push(Stranded { pod: p.key(), why });
                    }
                }
            }
        }
        for (to, p) in landed {
            on.entry(to).or_default().push(p);
        }
        // after the batch
        for name in batch {
            let Some(pods) = on.remove(name) else {
                if order == Order::AddBeforeRemove {
                    slots.remove(name);
                }
                continue;
            };
            match order {
                Order::RemoveBeforeAdd => {
                    // back, empty but for what stays with a node
                    let stay: Vec<Pod> = pods.into_iter().filter(stays).collect();
                    if let Some(s) = slots.get_mut(name) {
                        s.used = Resources::default();
                        s.pods = 0;
                        for p in &stay {
                            s.take(p.requests);
                        }
                    }
                    on.insert(name.clone(), stay);
                }
                Order::AddBeforeRemove => {
                    slots.remove(name);
                }
            }
        }
        for name in batch {
            if let Some(t) = turn_of.remove(name) {
                turns.push(t);
            }
        }
    }
    let mut suggestions = Vec::new();
    if short.contains("pods") {
        suggestions.push(
            "raise the kubelet's pod limit on the other nodes (maxPods; kubelet_max_pods in kubespray, 110 by default) before the run".into(),
        );
    }
    if short.contains("resources") {
        suggestions.push(match order {
            Order::RemoveBeforeAdd => "add a node to the cluster first, or use --order add-before-remove (each new node joins before the old one leaves)".into(),
            Order::AddBeforeRemove => "add a node to the cluster first: even with each new node joining first, the pods do not fit".into(),
        });
        if batches.iter().any(|b| b.len() > 1) {
            suggestions.push("take fewer workers out at once (--max-unavailable 1)".into());
        }
    }
    if short.contains("placement") {
        suggestions.push(
            "give another node the labels and taints those pods need (or relax their nodeSelector / add tolerations), so that they have somewhere to go".into(),
        );
    }
    CapacityReport {
        order,
        turns,
        suggestions,
    }
}

/// The candidate with the most room left after taking `p`, or why none takes it.
fn place(p: &Pod, candidates: &[&Slot]) -> Result<String, NoRoom> {
    if candidates.is_empty() {
        return Err(NoRoom::NoNodes);
    }
    let selected: Vec<&&Slot> = candidates.iter().filter(|s| p.selects(&s.node)).collect();
    if selected.is_empty() {
        return Err(NoRoom::NodeSelector {
            selector: p.node_selector.clone(),
        });
    }
    let tolerated: Vec<&&Slot> = selected
        .iter()
        .copied()
        .filter(|s| p.tolerates_taints_of(&s.node))
        .collect();
    if tolerated.is_empty() {
        let mut taints: Vec<String> = selected
            .iter()
            .flat_map(|s| s.node.taints.iter())
            .filter(|t| t.effect != "PreferNoSchedule")
            .filter(|t| !p.tolerations.iter().any(|tol| tol.tolerates(t)))
            .map(|t| {
                if t.value.is_empty() {
                    format!("{}:{}", t.key, t.effect)
                } else {
                    format!("{}={}:{}", t.key, t.value, t.effect)
                }
            })
            .collect();
        taints.sort();
        taints.dedup();
        return Err(NoRoom::Taints { taints });
    }
    let frees: Vec<(&Slot, Resources)> = tolerated
        .iter()
        .filter_map(|s| s.free().map(|f| (**s, f)))
        .collect();
    let with_slot: Vec<&(&Slot, Resources)> = frees.iter().filter(|(_, f)| f.pods >= 1).collect();
    if with_slot.is_empty() {
        let limit = tolerated
            .iter()
            .filter_map(|s| s.allocatable.map(|a| a.pods))
            .max()
            .unwrap_or(0);
        return Err(NoRoom::PodLimit { limit });
    }
    let cpu_ok: Vec<&&(&Slot, Resources)> = with_slot
        .iter()
        .filter(|(_, f)| f.cpu_millis >= p.requests.cpu_millis)
        .collect();
    if cpu_ok.is_empty() {
        return Err(NoRoom::Cpu {
            needs_millis: p.requests.cpu_millis,
            most_free_millis: with_slot
                .iter()
                .map(|(_, f)| f.cpu_millis)
                .max()
                .unwrap_or(0),
        });
    }
    let fit: Vec<&&&(&Slot, Resources)> = cpu_ok
        .iter()
        .filter(|(_, f)| f.memory_bytes >= p.requests.memory_bytes)
        .collect();
    let Some(best) = fit.iter().max_by(|(a, fa), (b, fb)| {
        // the most room left, as a share of the node (CPU and memory averaged), then by name
        let score = |s: &Slot, f: &Resources| {
            let a = s.allocatable.unwrap_or_default();
            let share = |free: u64, total: u64| {
                if total == 0 {
                    0.0
                } else {
                    free as f64 / total as f64
                }
            };
            share(f.cpu_millis, a.cpu_millis) + share(f.memory_bytes, a.memory_bytes)
        };
        score(a, fa)
            .total_cmp(&score(b, fb))
            .then_with(|| b.node.name.cmp(&a.node.name))
    }) else {
        return Err(NoRoom::Memory {
            needs_bytes: p.requests.memory_bytes,
            most_free_bytes: cpu_ok
                .iter()
                .map(|(_, f)| f.memory_bytes)
                .max()
                .unwrap_or(0),
        });
    };
    Ok(best.0.node.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Owner, Taint, Toleration};

    fn node(name: &str, cpu: u64, mem_gi: u64, pods: u64) -> Node {
        Node {
            name: name.into(),
            ready: true,
            labels: [("kubernetes.io/hostname".to_string(), name.to_string())].into(),
            allocatable: Some(Resources {
                cpu_millis: cpu,
                memory_bytes: mem_gi << 30,
                pods,
            }),
            ..Node::default()
        }
    }

    fn pod(name: &str, node: &str, kind: &str, cpu: u64, mem_mi: u64) -> Pod {
        Pod {
            namespace: "shop".into(),
            name: name.into(),
            node: Some(node.into()),
            owner: (!kind.is_empty()).then(|| Owner {
                kind: kind.into(),
                name: "owner".into(),
            }),
            phase: "Running".into(),
            ready: true,
            requests: Resources {
                cpu_millis: cpu,
                memory_bytes: mem_mi << 20,
                pods: 0,
            },
            ..Pod::default()
        }
    }

    fn one_by_one(names: &[&str]) -> Vec<Vec<String>> {
        names.iter().map(|n| vec![n.to_string()]).collect()
    }

    #[test]
    fn pods_spread_over_the_nodes_left_and_the_node_comes_back_empty() {
        let s = Snapshot {
            nodes: vec![
                node("w1", 2000, 4, 110),
                node("w2", 2000, 4, 110),
                node("w3", 2000, 4, 110),
            ],
            pods: vec![
                pod("a", "w1", "ReplicaSet", 500, 256),
                pod("b", "w1", "ReplicaSet", 500, 256),
                pod("ds-w1", "w1", "DaemonSet", 100, 64),
                pod("mirror", "w1", "Node", 100, 64),
                pod("debug", "w1", "", 10, 10),
                pod("c", "w2", "ReplicaSet", 1500, 256),
            ],
            ..Snapshot::default()
        };
        let r = capacity(&s, &one_by_one(&["w1", "w2"]), Order::RemoveBeforeAdd);
        assert!(r.fits(), "{}", r.render());
        let w1 = &r.turns[0];
        assert_eq!(
            w1.moved, 2,
            "DaemonSet and static pods stay with their node"
        );
        assert_eq!(w1.bare, vec!["shop/debug".to_string()]);
        // w2 holds 1500m: both go to w3, which has the most room
        assert_eq!(w1.placed, BTreeMap::from([("w3".to_string(), 2)]));
        // w1 is back and empty but for its DaemonSet and static pods: w2's pod goes there
        assert_eq!(r.turns[1].placed, BTreeMap::from([("w1".to_string(), 1)]));
    }

    #[test]
    fn the_pod_limit_strands_pods_and_says_raise_max_pods() {
        let s = Snapshot {
            nodes: vec![node("w1", 8000, 16, 110), node("w2", 8000, 16, 2)],
            pods: vec![
                pod("a", "w1", "ReplicaSet", 10, 10),
                pod("b", "w1", "ReplicaSet", 10, 10),
                pod("c", "w2", "ReplicaSet", 10, 10),
            ],
            ..Snapshot::default()
        };
        let r = capacity(&s, &one_by_one(&["w1"]), Order::RemoveBeforeAdd);
        assert!(!r.fits());
        assert_eq!(r.turns[0].placed.get("w2"), Some(&1));
        assert_eq!(r.turns[0].stranded.len(), 1);
        assert_eq!(r.turns[0].stranded[0].why, NoRoom::PodLimit { limit: 2 });
        assert!(r.suggestions[0].contains("maxPods"), "{:?}", r.suggestions);
        assert!(
            r.render()
                .contains("every node it may go to is at its pod limit (2 pods)")
        );
    }

    #[test]
    fn too_little_cpu_suggests_add_before_remove_which_fits() {
        let s = Snapshot {
            nodes: vec![node("w1", 4000, 8, 110), node("w2", 4000, 8, 110)],
            pods: vec![
                pod("big", "w1", "StatefulSet", 3000, 512),
                pod("other", "w2", "ReplicaSet", 2000, 512),
            ],
            ..Snapshot::default()
        };
        let r = capacity(&s, &one_by_one(&["w1", "w2"]), Order::RemoveBeforeAdd);
        assert!(!r.fits());
        assert_eq!(
            r.turns[0].stranded[0].why,
            NoRoom::Cpu {
                needs_millis: 3000,
                most_free_millis: 2000
            }
        );
        assert!(r.suggestions[0].contains("--order add-before-remove"));
        let r = capacity(&s, &one_by_one(&["w1", "w2"]), Order::AddBeforeRemove);
        assert!(r.fits(), "{}", r.render());
        assert_eq!(
            r.turns[0].placed,
            BTreeMap::from([("w1 (new)".to_string(), 1)])
        );
    }

    #[test]
    fn the_window_takes_its_nodes_out_together() {
        let s = Snapshot {
            nodes: vec![
                node("w1", 1000, 2, 110),
                node("w2", 1000, 2, 110),
                node("w3", 1000, 2, 110),
            ],
            pods: vec![
                pod("a", "w1", "ReplicaSet", 600, 10),
                pod("b", "w2", "ReplicaSet", 600, 10),
            ],
            ..Snapshot::default()
        };
        let r = capacity(
            &s,
            &[vec!["w1".into(), "w2".into()]],
            Order::RemoveBeforeAdd,
        );
        assert!(!r.fits(), "both need w3, which has room for one");
        assert_eq!(r.turns[0].with, vec!["w2".to_string()]);
        assert!(
            r.suggestions
                .iter()
                .any(|x| x.contains("--max-unavailable 1"))
        );
        assert!(capacity(&s, &one_by_one(&["w1", "w2"]), Order::RemoveBeforeAdd).fits());
    }

    #[test]
    fn selectors_taints_and_cordons_keep_pods_off_nodes() {
        let mut ssd = node("w1", 4000, 8, 110);
        ssd.labels.insert("disk".into(), "ssd".into());
        let mut tainted = node("w2", 4000, 8, 110);
        tainted.taints = vec![Taint {
            key: "dedicated".into(),
            value: "db".into(),
            effect: "NoSchedule".into(),
        }];
        let mut cordoned = node("w3", 4000, 8, 110);
        cordoned.unschedulable = true;
        let mut db = pod("db-0", "w1", "StatefulSet", 100, 100);
        db.node_selector = [("disk".to_string(), "ssd".to_string())].into();
        let web = pod("web", "w1", "ReplicaSet", 100, 100);
        let s = Snapshot {
            nodes: vec![ssd, tainted, cordoned],
            pods: vec![db, web],
            ..Snapshot::default()
        };
        let r = capacity(&s, &one_by_one(&["w1"]), Order::RemoveBeforeAdd);
        let why: BTreeMap<&str, &NoRoom> = r.turns[0]
            .stranded
            .iter()
            .map(|x| (x.pod.as_str(), &x.why))
            .collect();
        assert!(matches!(why["shop/db-0"], NoRoom::NodeSelector { .. }));
        assert_eq!(
            why["shop/web"],
            &NoRoom::Taints {
                taints: vec!["dedicated=db:NoSchedule".into()]
            }
        );
        // a toleration opens the tainted node
        let mut s2 = s.clone();
        s2.pods[1].tolerations = vec![Toleration {
            key: "dedicated".into(),
            operator: "Exists".into(),
            ..Toleration::default()
        }];
        let r = capacity(&s2, &one_by_one(&["w1"]), Order::RemoveBeforeAdd);
        assert_eq!(r.turns[0].placed, BTreeMap::from([("w2".to_string(), 1)]));
    }

    #[test]
    fn a_controller_without_a_node_has_nothing_to_move() {
        let s = Snapshot {
            nodes: vec![node("w1", 1000, 1, 110)],
            ..Snapshot::default()
        };
        let r = capacity(&s, &one_by_one(&["c1", "w1"]), Order::RemoveBeforeAdd);
        assert!(r.fits());
        assert_eq!(r.turns[0].node, "c1");
        assert_eq!(r.turns[0].moved, 0);
    }
}
