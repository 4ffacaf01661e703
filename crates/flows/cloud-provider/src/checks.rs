//! The checks of every state, pure functions of [`Facts`]: the start's (S0) findings, and for
//! each later state what is still missing, one line per node or object, so that a wait that
//! runs out says exactly what it waited for.

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::checks::{CheckReport, Status};
use serde::{Deserialize, Serialize};

use crate::chart;
use crate::facts::{Facts, LeaseFact, Manager, NodeFact, UNINITIALIZED};
use crate::leader::{self, Version};

/// What the start looked like (S0), kept in the journal: the states after it are compared with
/// it, and a rollback must give it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub nodes: Vec<NodeFact>,
    /// The control-plane kube-controller-managers' flags, by node.
    pub kcm: BTreeMap<String, Vec<String>>,
    pub load_balancers: BTreeMap<String, Vec<String>>,
    /// The cluster's Kubernetes version (the distribution's configuration, else the nodes').
    pub version: Version,
}

impl Start {
    pub fn control_plane(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.control_plane)
            .map(|n| n.name.as_str())
            .collect()
    }
}

/// The newest kubelet version of the nodes.
pub fn nodes_version(facts: &Facts) -> Option<Version> {
    facts
        .nodes
        .iter()
        .filter_map(|n| Version::parse(&n.kubelet_version))
        .max()
}

/// A node name the AWS cloud-controller-manager can find its instance by: the private DNS name
/// (`ip-10-0-1-23.ec2.internal`, `ip-10-0-1-23.<region>.compute.internal`) or the resource name
/// (`i-0abc…`).
fn aws_name(name: &str) -> bool {
    let first = name.split('.').next().unwrap_or("");
    let ip = first.strip_prefix("ip-").is_some_and(|r| {
        r.split('-').count() == 4 && r.split('-').all(|p| p.parse::<u8>().is_ok())
    });
    let resource = first
        .strip_prefix("i-")
        .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_hexdigit()));
    ip || resource
}

/// The start's checks (S0): a version that still has the in-tree provider, more than one
/// control-plane node, each control-plane kube-controller-manager found, running the in-tree
/// provider with leader election on, every node with a provider ID.
pub fn start_report(facts: &Facts, version: Version, kcm_found_by: &str) -> CheckReport {
    let mut r = CheckReport::new("Cloud provider migration checks (S0)");
    if version > Version::minor_of(1, 26).with_patch(u32::MAX) {
        r.push(
            "version",
            "cluster",
            Status::Fail,
            format!("the cluster runs {version}: the in-tree AWS provider is gone from 1.27, so there is nothing to migrate from (migrate on 1.26 or earlier, then upgrade)"),
        );
    } else if version < Version::minor_of(1, 22) {
        r.push(
            "version",
            "cluster",
            Status::Fail,
            format!("the cluster runs {version}: leader migration without a configuration file needs 1.22 or later"),
        );
    } else {
        r.push(
            "version",
            "cluster",
            Status::Ok,
            format!("{version} has the in-tree provider and leader migration"),
        );
    }
    let cp: Vec<&NodeFact> = facts.control_plane().collect();
    if cp.len() < 2 {
        r.push(
            "control-plane",
            "cluster",
            Status::Fail,
            format!("{} control-plane node(s): leader migration hands the cloud controllers from one manager to the other without a gap only with more than one", cp.len()),
        );
    } else {
        r.push(
            "control-plane",
            "cluster",
            Status::Ok,
            format!("{} control-plane nodes", cp.len()),
        );
    }
    for n in &cp {
        let Some(m) = facts.kcm.iter().find(|m| m.node == n.name) else {
            r.push(
                "kube-controller-manager",
                &n.name,
                Status::Fail,
                format!("no kube-controller-manager found ({kcm_found_by})"),
            );
            continue;
        };
        if m.flag("leader-elect").as_deref() == Some("false") {
            r.push(
                "leader-election",
                &n.name,
                Status::Fail,
                format!(
                    "{} runs with --leader-elect=false: leader migration needs leader election",
                    m.source
                ),
            );
        }
        match m.cloud_provider().as_str() {
            "aws" => r.push(
                "in-tree-provider",
                &n.name,
                Status::Ok,
                format!("{} runs --cloud-provider=aws", m.source),
            ),
            other => r.push(
                "in-tree-provider",
                &n.name,
                Status::Fail,
                format!(
                    "{} runs --cloud-provider={other:?}, not the in-tree aws provider",
                    m.source
                ),
            ),
        }
        if !m.running {
            r.push(
                "kube-controller-manager",
                &n.name,
                Status::Fail,
                format!("{} is not running and ready", m.source),
            );
        }
    }
    for n in &facts.nodes {
        if n.provider_id.is_empty() {
            r.push(
                "provider-id",
                &n.name,
                Status::Fail,
                "has no spec.providerID: the in-tree provider did not initialise it, and a cloud-controller-manager only initialises new nodes".into(),
            );
        } else if !n.provider_id.starts_with("aws://") {
            r.push(
                "provider-id",
                &n.name,
                Status::Fail,
                format!("provider ID {} is not an AWS one", n.provider_id),
            );
        }
        if n.taints.iter().any(|t| t.starts_with(UNINITIALIZED)) {
            r.push(
                "uninitialized",
                &n.name,
                Status::Fail,
                format!("already has the {UNINITIALIZED} taint"),
            );
        }
        if !aws_name(&n.name) {
            r.push(
                "node-name",
                &n.name,
                Status::Warn,
                "is neither the instance's private DNS name nor its resource name: a node that registers again under the external provider may get another name or no instance (rancher #43175, cloud-provider-aws #72)".into(),
            );
        }
    }
    if r.passed() && !facts.nodes.iter().any(|n| n.provider_id.is_empty()) {
        r.push(
            "provider-id",
            "cluster",
            Status::Ok,
            format!("{} nodes, each with its provider ID", facts.nodes.len()),
        );
    }
    r
}

/// The start to record.
pub fn start_of(facts: &Facts, version: Version) -> Start {
    Start {
        nodes: facts.nodes.clone(),
        kcm: facts
            .kcm
            .iter()
            .map(|m| (m.node.clone(), m.args.clone()))
            .collect(),
        load_balancers: facts.load_balancers.clone(),
        version,
    }
}

fn kcm_on<'a>(facts: &'a Facts, node: &str) -> Option<&'a Manager> {
    facts.kcm.iter().find(|m| m.node == node)
}

/// Every control-plane kube-controller-manager runs, with the provider and leader migration
/// as asked.
pub fn managers(
    facts: &Facts,
    start: &Start,
    provider: &str,
    leader_migration: bool,
) -> Vec<String> {
    let mut missing = Vec::new();
    for n in start.control_plane() {
        match kcm_on(facts, n) {
            None => missing.push(format!("the kube-controller-manager on {n}: not found")),
            Some(m) => {
                let ok = m.running
                    && m.cloud_provider() == provider
                    && m.leader_migration() == leader_migration;
                if !ok {
                    missing.push(format!(
                        "the kube-controller-manager on {n} ({}) to run{} with --cloud-provider={provider}{}: it {}runs {}",
                        m.source,
                        if m.running { "" } else { " and be ready" },
                        if leader_migration { " and --enable-leader-migration" } else { " without leader migration" },
                        if m.running { "" } else { "is not ready and " },
                        m.args.join(" ")
                    ));
                }
            }
        }
    }
    missing
}

/// Every control-plane kube-controller-manager runs with its flags of the start.
pub fn managers_as_at_start(facts: &Facts, start: &Start) -> Vec<String> {
    let mut missing = Vec::new();
    for (node, want) in &start.kcm {
        match kcm_on(facts, node) {
            None => missing.push(format!("the kube-controller-manager on {node}: not found")),
            Some(m) => {
                let sorted = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
                if !m.running || sorted(&m.args) != sorted(want) {
                    missing.push(format!(
                        "the kube-controller-manager on {node} ({}) to run as at the start ({}): it {}runs {}",
                        m.source,
                        want.join(" "),
                        if m.running { "" } else { "is not ready and " },
                        m.args.join(" ")
                    ));
                }
            }
        }
    }
    missing
}

/// The migration Lease held, by a manager on a control-plane node.
pub fn migration_lease_held(facts: &Facts, start: &Start) -> Vec<String> {
    match &facts.migration_lease {
        None => vec![format!(
            "the Lease {}/{} to exist",
            leader::NAMESPACE,
            leader::LEASE
        )],
        Some(l) if l.holder.is_empty() => vec![format!(
            "the Lease {}/{} to be held",
            leader::NAMESPACE,
            leader::LEASE
        )],
        Some(l) if !start.control_plane().contains(&l.holder_node()) => vec![format!(
            "the Lease {}/{} to be held by a manager on a control-plane node: its holder is {}",
            leader::NAMESPACE,
            leader::LEASE,
            l.holder
        )],
        Some(_) => Vec::new(),
    }
}

/// The control-plane nodes cordoned.
pub fn cordoned(facts: &Facts, start: &Start) -> Vec<String> {
    start
        .control_plane()
        .into_iter()
        .filter(|n| !facts.node(n).is_some_and(|f| f.unschedulable))
        .map(|n| format!("node {n} to be cordoned"))
        .collect()
}

/// Every node's cordon state as at the start.
pub fn cordon_as_at_start(facts: &Facts, start: &Start) -> Vec<String> {
    start
        .nodes
        .iter()
        .filter_map(|n| {
            let now = facts.node(&n.name)?;
            (now.unschedulable != n.unschedulable).then(|| {
                format!(
                    "node {} to be {} as at the start",
                    n.name,
                    if n.unschedulable {
                        "cordoned"
                    } else {
                        "schedulable"
                    }
                )
            })
        })
        .collect()
}

/// The cloud-controller-manager's DaemonSet rolled out on every control-plane node, its pods
/// running with leader migration as asked, and its own Lease held.
pub fn ccm_running(facts: &Facts, start: &Start, leader_migration: bool) -> Vec<String> {
    let mut missing = Vec::new();
    let ds = format!("DaemonSet {}/{}", leader::NAMESPACE, chart::NAME);
    let cp = start.control_plane().len() as i64;
    match &facts.daemon_set {
        None => missing.push(format!("{ds} to exist")),
        Some(d) => {
            if d.desired < cp {
                missing.push(format!(
                    "{ds} to schedule a pod on each of the {cp} control-plane nodes: it wants {}",
                    d.desired
                ));
            }
            if !d.rolled_out() {
                missing.push(format!(
                    "{ds} to roll out: {} of {} pods updated, {} available (generation {}, observed {})",
                    d.updated, d.desired, d.available, d.generation, d.observed_generation
                ));
            }
        }
    }
    for p in &facts.ccm {
        let has = p.args.iter().any(|a| a == chart::MIGRATION_ARG);
        if has != leader_migration {
            missing.push(format!(
                "{} to run {} leader migration",
                p.source,
                if leader_migration { "with" } else { "without" }
            ));
        }
    }
    match &facts.ccm_lease {
        Some(l) if !l.holder.is_empty() => {}
        _ => missing.push(format!(
            "the Lease {}/{} to be held by the cloud-controller-manager",
            leader::NAMESPACE,
            chart::OWN_LEASE
        )),
    }
    missing
}

/// No cloud-controller-manager left.
pub fn ccm_gone(facts: &Facts) -> Vec<String> {
    let mut missing = Vec::new();
    if facts.daemon_set.is_some() {
        missing.push(format!(
            "DaemonSet {}/{} to be gone",
            leader::NAMESPACE,
            chart::NAME
        ));
    }
    for p in &facts.ccm {
        missing.push(format!("{} to be gone", p.source));
    }
    missing
}

/// No node with the `uninitialized` taint.
pub fn initialised(facts: &Facts) -> Vec<String> {
    facts
        .nodes
        .iter()
        .filter(|n| n.taints.iter().any(|t| t.starts_with(UNINITIALIZED)))
        .map(|n| format!("node {} to lose the {UNINITIALIZED} taint (the cloud-controller-manager has not initialised it)", n.name))
        .collect()
}

/// Every LoadBalancer Service of the start still has its addresses.
pub fn load_balancers_kept(facts: &Facts, start: &Start) -> Vec<String> {
    start
        .load_balancers
        .iter()
        .filter_map(|(svc, want)| match facts.load_balancers.get(svc) {
            None => Some(format!("Service {svc} (LoadBalancer) to exist")),
            Some(have) if have != want => Some(format!(
                "Service {svc} to keep its load balancer {}: it has {}",
                want.join(", "),
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )),
            Some(_) => None,
        })
        .collect()
}

/// Whether the migration Lease was renewed since `before` was read (a changed holder or a
/// changed renew time): someone holds it now.
pub fn renewed_since(before: Option<&LeaseFact>, now: Option<&LeaseFact>) -> bool {
    match (before, now) {
        (_, None) => false,
        (None, Some(n)) => !n.holder.is_empty(),
        (Some(b), Some(n)) => {
            !n.holder.is_empty() && (n.holder != b.holder || n.renew_time != b.renew_time)
        }
    }
}

/// The end (S6): every node of the start there under its name with its provider ID, none
/// twice, cordon states as at the start.
pub fn end(facts: &Facts, start: &Start) -> Vec<String> {
    let mut missing = Vec::new();
    for n in &start.nodes {
        match facts.node(&n.name) {
            None => missing.push(format!("node {} to be there under its name", n.name)),
            Some(now) if now.provider_id.is_empty() => missing.push(format!(
                "node {} to have a provider ID (it had {})",
                n.name, n.provider_id
            )),
            Some(now) if now.provider_id != n.provider_id => missing.push(format!(
                "node {} to keep its provider ID {}: it has {}",
                n.name, n.provider_id, now.provider_id
            )),
            Some(_) => {}
        }
    }
    let mut by_id: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in &facts.nodes {
        if !n.provider_id.is_empty() {
            by_id.entry(&n.provider_id).or_default().push(&n.name);
        }
    }
    for (id, names) in by_id {
        if names.len() > 1 {
            missing.push(format!(
                "one Node for instance {id}: there are {}",
                names.join(", ")
            ));
        }
    }
    let known: BTreeSet<&str> = start.nodes.iter().map(|n| n.name.as_str()).collect();
    for n in &facts.nodes {
        if !known.contains(n.name.as_str()) && n.provider_id.is_empty() {
            missing.push(format!(
                "node {} (new since the start) to have a provider ID",
                n.name
            ));
        }
    }
    missing.extend(cordon_as_at_start(facts, start));
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::DaemonSetFact;

    fn node(name: &str, cp: bool, id: &str) -> NodeFact {
        NodeFact {
            name: name.into(),
            uid: format!("uid-{name}"),
            provider_id: id.into(),
            unschedulable: false,
            control_plane: cp,
            ready: true,
            kubelet_version: "v1.26.15+rke2r1".into(),
            taints: Vec::new(),
        }
    }

    fn kcm(node: &str, args: &[&str]) -> Manager {
        Manager {
            node: node.into(),
            source: format!("Pod kube-system/kube-controller-manager-{node}"),
            args: args.iter().map(|s| s.to_string()).collect(),
            running: true,
        }
    }

    fn facts() -> Facts {
        Facts {
            nodes: vec![
                node("ip-10-0-1-1.ec2.internal", true, "aws:///us-east-1a/i-01"),
                node("ip-10-0-1-2.ec2.internal", true, "aws:///us-east-1b/i-02"),
                node("ip-10-0-2-1.ec2.internal", false, "aws:///us-east-1a/i-03"),
            ],
            kcm: vec![
                kcm(
                    "ip-10-0-1-1.ec2.internal",
                    &["--cloud-provider=aws", "--leader-elect=true"],
                ),
                kcm("ip-10-0-1-2.ec2.internal", &["--cloud-provider=aws"]),
            ],
            load_balancers: BTreeMap::from([(
                "shop/web".to_string(),
                vec!["a1.elb.amazonaws.com".to_string()],
            )]),
            ..Default::default()
        }
    }

    fn v126() -> Version {
        Version::parse("v1.26.15").unwrap()
    }

    #[test]
    fn a_healthy_in_tree_cluster_passes_the_start() {
        let r = start_report(&facts(), v126(), "mirror pods");
        assert!(r.passed(), "{}", r.render());
    }

    #[test]
    fn the_start_names_what_stops_the_migration() {
        let mut f = facts();
        f.nodes[2].provider_id.clear();
        f.kcm[1].args.push("--leader-elect=false".into());
        f.kcm.remove(0);
        let r = start_report(&f, Version::parse("v1.27.1").unwrap(), "mirror pods");
        let fails: Vec<(String, &str)> = r
            .failures()
            .iter()
            .map(|f| (f.subject.clone(), f.check))
            .collect();
        assert_eq!(
            fails,
            [
                ("cluster".to_string(), "version"),
                (
                    "ip-10-0-1-1.ec2.internal".to_string(),
                    "kube-controller-manager"
                ),
                ("ip-10-0-1-2.ec2.internal".to_string(), "leader-election"),
                ("ip-10-0-2-1.ec2.internal".to_string(), "provider-id"),
            ]
        );
        let mut one = facts();
        one.nodes[1].control_plane = false;
        assert!(!start_report(&one, v126(), "").passed());
    }

    #[test]
    fn node_names_the_ccm_can_find_are_told_apart() {
        assert!(aws_name("ip-10-0-1-1.ec2.internal"));
        assert!(aws_name("ip-10-0-1-1.eu-west-1.compute.internal"));
        assert!(aws_name("i-0abc123def"));
        assert!(!aws_name("worker-1"));
        assert!(!aws_name("ip-10-0-1.ec2.internal"));
    }

    #[test]
    fn each_state_lists_what_it_still_waits_for() {
        let f = facts();
        let start = start_of(&f, v126());
        let m = managers(&f, &start, "aws", true);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(
            m[0].contains("ip-10-0-1-1.ec2.internal") && m[0].contains("--enable-leader-migration"),
            "{}",
            m[0]
        );
        assert!(managers(&f, &start, "aws", false).is_empty());
        assert!(managers_as_at_start(&f, &start).is_empty());
        assert_eq!(migration_lease_held(&f, &start).len(), 1);
        assert_eq!(cordoned(&f, &start).len(), 2);
        let ccm = ccm_running(&f, &start, true);
        assert_eq!(ccm.len(), 2, "{ccm:?}");

        let mut g = f.clone();
        for n in &mut g.nodes[..2] {
            n.unschedulable = true;
        }
        g.daemon_set = Some(DaemonSetFact {
            generation: 1,
            observed_generation: 1,
            desired: 2,
            updated: 2,
            available: 1,
        });
        g.migration_lease = Some(LeaseFact {
            holder: "ip-10-0-1-2.ec2.internal_4f1c".into(),
            renew_time: "t1".into(),
        });
        assert!(cordoned(&g, &start).is_empty());
        assert_eq!(cordon_as_at_start(&g, &start).len(), 2);
        assert!(migration_lease_held(&g, &start).is_empty());
        let ccm = ccm_running(&g, &start, true);
        assert!(ccm[0].contains("1 available"), "{ccm:?}");
        g.nodes[2]
            .taints
            .push(format!("{UNINITIALIZED}=true:NoSchedule"));
        assert_eq!(
            initialised(&g),
            [format!(
                "node ip-10-0-2-1.ec2.internal to lose the {UNINITIALIZED} taint (the cloud-controller-manager has not initialised it)"
            )]
        );
        g.load_balancers.insert("shop/web".into(), Vec::new());
        assert_eq!(
            load_balancers_kept(&g, &start),
            ["Service shop/web to keep its load balancer a1.elb.amazonaws.com: it has none"]
        );
    }

    #[test]
    fn the_end_finds_lost_renamed_and_doubled_nodes() {
        let f = facts();
        let start = start_of(&f, v126());
        assert!(end(&f, &start).is_empty());
        let mut g = f.clone();
        // the worker registered again under its instance name, the old Node left behind
        let mut renamed = node("i-03", false, "aws:///us-east-1a/i-03");
        renamed.uid = "uid-new".into();
        g.nodes.push(renamed);
        g.nodes[1].provider_id.clear();
        let e = end(&g, &start);
        assert_eq!(
            e,
            [
                "node ip-10-0-1-2.ec2.internal to have a provider ID (it had aws:///us-east-1b/i-02)".to_string(),
                "one Node for instance aws:///us-east-1a/i-03: there are ip-10-0-2-1.ec2.internal, i-03".to_string(),
            ]
        );
    }

    #[test]
    fn a_lease_is_renewed_when_its_time_or_holder_moves() {
        let a = LeaseFact {
            holder: "cp-1_1".into(),
            renew_time: "t1".into(),
        };
        let b = LeaseFact {
            holder: "cp-1_1".into(),
            renew_time: "t2".into(),
        };
        assert!(!renewed_since(Some(&a), Some(&a)));
        assert!(renewed_since(Some(&a), Some(&b)));
        assert!(renewed_since(None, Some(&a)));
        assert!(!renewed_since(Some(&a), None));
    }
}
