//! The node OS replacement on the core lifecycle: discover the cluster read-only (each host's
//! facts and k0s state, the etcd members, the Kubernetes objects), check capacity and safety for
//! every node in the order it goes, build the plan (workers in the window, then the controllers
//! one at a time behind the quorum gate, the first controller last), and hand the engine one
//! step per planned step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use ferry_core::checks::{CheckReport, Status};
use ferry_core::engine::{
    Gate, Group, HostChain, MaxUnavailable, Phase, Plan, Step, StepError, StepKey, StepRef, Target,
    Texts,
};
use ferry_core::facts::InitSystem;
use ferry_core::hosts::HostSpec;
use ferry_core::k0s::{K0sBinary, K0sHost};
use ferry_core::run::{Flow, Planned, RunContext, RunTexts};
use ferry_flow_k0s_upgrade::{CheckOptions, DiscoverError, Discovered, HostState, discover};
use ferry_safety::{CapacityReport, Order, Report, capacity};

use crate::kubean::{CmRef, Inventory, KubeanSetup};
use crate::steps::{self, Ctx, Kind};

/// The flow's name in plans and journals.
pub const FLOW: &str = "node-os-replace";

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Every host of the cluster (the hosts file).
    pub hosts: Vec<HostSpec>,
    /// Add-before-remove: the new machines, the i-th taking the place of the i-th host.
    pub new_hosts: Vec<HostSpec>,
    pub order: Order,
    /// Where a re-added host's k0s binary comes from; by default each host downloads the
    /// release it ran.
    pub k0s_binary: Option<K0sBinary>,
    /// `None`: a k0s cluster; else the kubean cluster that owns the nodes.
    pub kubean: Option<KubeanInputs>,
    /// The OS the hosts move to: hosts already on it are left alone, and a reinstall counts
    /// once the host runs it. `None`: every host is reinstalled, and any other OS counts.
    pub target_os: Option<TargetOs>,
    pub max_unavailable: MaxUnavailable,
    /// Run on this machine to reinstall a host (`{host}`, `{address}`, `{hostname}`, `{node}`
    /// are replaced; without any, the host is appended). `None`: wait for the operator.
    pub reinstall_command: Option<String>,
    pub reinstall_timeout: Duration,
    pub drain_timeout: Duration,
    pub ready_timeout: Duration,
    pub delete_emptydir_data: bool,
    pub force_bare_pods: bool,
    pub checks: CheckOptions,
    /// The kubeconfig of the run (a path, never its content), for `ferry resume` and
    /// `ferry rollback`.
    pub kubeconfig: Option<PathBuf>,
}

/// The OS the hosts are moved to: `ID` and `VERSION_ID` of `/etc/os-release` (`debian:13`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOs {
    pub id: String,
    pub version_id: String,
}

impl TargetOs {
    /// `ID:VERSION_ID`, as `--target-os` takes it.
    pub fn parse(text: &str) -> Result<TargetOs, String> {
        let (id, v) = text.split_once(':').ok_or_else(|| {
            format!(
                "{text:?}: give ID:VERSION_ID of /etc/os-release, like debian:13 or ubuntu:22.04"
            )
        })?;
        if id.is_empty() || v.is_empty() || text.contains(char::is_whitespace) {
            return Err(format!(
                "{text:?}: give ID:VERSION_ID of /etc/os-release, like debian:13 or ubuntu:22.04"
            ));
        }
        Ok(TargetOs {
            id: id.to_string(),
            version_id: v.to_string(),
        })
    }

    pub fn matches(&self, id: &str, version_id: &str) -> bool {
        self.id == id && self.version_id == version_id
    }
}

impl std::fmt::Display for TargetOs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.version_id)
    }
}

/// A kubean cluster, as the operator names it.
#[derive(Debug, Clone)]
pub struct KubeanInputs {
    /// The `clusters.kubean.io` object.
    pub cluster: String,
    /// The spray-job image of the operations (the one the cluster was deployed with).
    pub image: String,
    pub management_kubeconfig: Option<PathBuf>,
    pub operation_timeout: Duration,
}

/// Who removes and adds nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Backend {
    /// ferry itself, over SSH, with k0s's commands.
    #[default]
    K0s,
    /// kubean's operator, through ClusterOperations in the management cluster.
    Kubean(Box<KubeanSetup>),
}

/// How a host runs k0s, as re-adding it needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K0sSetup {
    /// The version it runs (`v1.31.1+k0s.1`): the binary a re-added host gets.
    pub version: String,
    /// `controller` or `worker`.
    pub role: String,
    /// The flags of its service, but `--token-file` and `--config` (a new join token and the
    /// kept configuration are given instead).
    pub flags: Vec<String>,
    /// The configuration file its service names (`--config`), kept in the state directory
    /// before the host is removed.
    pub config: Option<String>,
    /// A controller's etcd peer URL.
    pub peer: Option<String>,
    /// Its service named a join token: it joined the cluster through another controller.
    #[serde(default)]
    pub joined: bool,
}

/// A host as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedHost {
    /// Its name in the hosts file (`address` or `address:port`).
    pub name: String,
    pub address: String,
    pub hostname: String,
    /// Its Kubernetes Node, when it runs workloads.
    pub node: Option<String>,
    pub controller: bool,
    pub worker: bool,
    /// The first controller (the one the others joined): replaced last.
    pub first: bool,
    pub init_system: InitSystem,
    pub machine: String,
    /// `/etc/os-release` when the run was planned: ID, VERSION_ID, PRETTY_NAME.
    pub os_id: String,
    pub os_version_id: String,
    pub os_pretty_name: String,
    /// Cordoned before the run: it is cordoned again after.
    pub cordoned: bool,
    pub k0s: K0sSetup,
    /// Add-before-remove: the hosts-file name of the machine that takes its place.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// kubean: its name in the cluster's inventory (its Node's name).
    #[serde(default)]
    pub inventory: Option<String>,
}

impl PlannedHost {
    pub fn role(&self) -> &'static str {
        match (self.controller, self.worker) {
            (true, true) => "controller+worker",
            (true, false) => "controller",
            _ => "worker",
        }
    }
}

/// What the journal keeps: everything the steps need to resume or roll back in another process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journaled {
    pub order: Order,
    #[serde(default)]
    pub backend: Backend,
    #[serde(default)]
    pub target_os: Option<TargetOs>,
    /// Hosts already on the target OS, left alone.
    #[serde(default)]
    pub at_target: Vec<String>,
    pub k0s_binary: Option<K0sBinary>,
    pub max_unavailable: MaxUnavailable,
    pub reinstall_command: Option<String>,
    pub reinstall_timeout_secs: u64,
    pub drain_timeout_secs: u64,
    pub ready_timeout_secs: u64,
    pub delete_emptydir_data: bool,
    pub force_bare_pods: bool,
    /// The hosts in the order they go: workers, then controllers, the first one last.
    pub hosts: Vec<PlannedHost>,
    /// Add-before-remove: the new machines, as they will run (the role of the host they
    /// replace).
    #[serde(default)]
    pub new_hosts: Vec<PlannedHost>,
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
}

impl Journaled {
    /// A planned host (old or new) by its hosts-file name.
    pub fn host(&self, name: &str) -> Option<&PlannedHost> {
        self.hosts
            .iter()
            .chain(&self.new_hosts)
            .find(|h| h.name == name)
    }
}

/// What a completed replacement reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaceReport {
    pub order: Order,
    /// Host → `before -> after` (its OS, or for add-before-remove the machine that took its
    /// place).
    pub replaced: Vec<(String, String)>,
    /// Hosts already on the target OS, left alone.
    pub left_alone: Vec<String>,
}

impl ReplaceReport {
    pub fn render(&self) -> String {
        let mut s = format!(
            "Node OS replacement completed ({}): {} host(s)\n",
            match self.order {
                Order::RemoveBeforeAdd => "remove-before-add",
                Order::AddBeforeRemove => "add-before-remove",
            },
            self.replaced.len()
        );
        for (h, what) in &self.replaced {
            s.push_str(&format!("  {h}: {what}\n"));
        }
        for h in &self.left_alone {
            s.push_str(&format!("  {h}: already on the target OS, left alone\n"));
        }
        s
    }
}

/// Why the flow cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum NodeOsError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("{0}")]
    Refused(String),
    #[error("the plan names step {0}, which this flow does not have")]
    UnknownStep(StepKey),
    #[error("cannot build step {key}")]
    Step {
        key: StepKey,
        #[source]
        source: StepError,
    },
}

/// The flow. It keeps the reports of its last plan for the command to print.
#[derive(Debug, Default)]
pub struct NodeOsFlow {
    last: Mutex<Option<(Report, CapacityReport)>>,
    /// kubean: the management cluster's API.
    management: Option<Arc<dyn ferry_core::ClusterApi>>,
}

impl NodeOsFlow {
    pub fn new() -> Self {
        Self::default()
    }

    /// The flow for a kubean cluster whose operator runs in the cluster `management` reaches.
    pub fn with_management(management: Arc<dyn ferry_core::ClusterApi>) -> Self {
        Self {
            management: Some(management),
            ..Self::default()
        }
    }

    /// The safety report and the capacity report of the last plan.
    pub fn last_reports(&self) -> Option<(Report, CapacityReport)> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn sref(kind: Kind, host: &str) -> StepRef {
    StepRef {
        key: StepKey::new(kind.id(), Target::Host(host.to_string())),
        description: kind.description().into(),
        reversibility: kind.reversibility(),
    }
}

/// The chain of one host of a kubean cluster (remove-before-add).
fn kubean_chain(h: &PlannedHost) -> HostChain {
    let mut steps = Vec::new();
    if h.node.is_some() {
        steps.push(sref(Kind::Drain, &h.name));
    }
    if h.first {
        steps.push(sref(Kind::KubeanMoveFirstLast, &h.name));
    }
    steps.push(sref(Kind::KubeanRemove, &h.name));
    if h.first {
        steps.push(sref(Kind::KubeanClusterInfo, &h.name));
    }
    steps.push(sref(Kind::Reinstall, &h.name));
    steps.push(sref(Kind::KubeanAdd, &h.name));
    steps.push(sref(Kind::WaitReady, &h.name));
    if h.node.is_some() {
        steps.push(sref(Kind::RestoreCordon, &h.name));
    }
    let role = if h.first {
        format!("{}, master1", h.role())
    } else {
        h.role().to_string()
    };
    HostChain {
        host: h.name.clone(),
        role,
        steps,
    }
}

/// The chain of one host.
fn chain(h: &PlannedHost, order: Order) -> HostChain {
    let mut steps = vec![sref(Kind::Save, &h.name)];
    match (order, &h.replaced_by) {
        (Order::AddBeforeRemove, Some(new)) => {
            steps.push(sref(Kind::Add, new));
            steps.push(sref(Kind::WaitReady, new));
            if h.node.is_some() {
                steps.push(sref(Kind::Drain, &h.name));
            }
            steps.push(sref(Kind::Remove, &h.name));
        }
        _ => {
            if h.node.is_some() {
                steps.push(sref(Kind::Drain, &h.name));
            }
            steps.push(sref(Kind::Remove, &h.name));
            steps.push(sref(Kind::Reinstall, &h.name));
            steps.push(sref(Kind::Join, &h.name));
            steps.push(sref(Kind::WaitReady, &h.name));
            if h.node.is_some() {
                steps.push(sref(Kind::RestoreCordon, &h.name));
            }
        }
    }
    let role = if h.first {
        format!("{}, the first controller", h.role())
    } else {
        h.role().to_string()
    };
    HostChain {
        host: h.name.clone(),
        role,
        steps,
    }
}

/// The plan: workers in the window, then the controllers one at a time, the first last.
pub fn build_plan(j: &Journaled) -> Plan {
    let of = |h: &PlannedHost| match &j.backend {
        Backend::K0s => chain(h, j.order),
        Backend::Kubean(_) => kubean_chain(h),
    };
    let workers: Vec<HostChain> = j.hosts.iter().filter(|h| !h.controller).map(of).collect();
    let controllers: Vec<HostChain> = j.hosts.iter().filter(|h| h.controller).map(of).collect();
    let mut groups = Vec::new();
    if !workers.is_empty() {
        groups.push(Group::Window {
            limit: j.max_unavailable.to_string(),
            width: j.max_unavailable.batch_size(workers.len()),
            order: "in the hosts file's order".into(),
            hosts: workers,
        });
    }
    if !controllers.is_empty() {
        groups.push(Group::Serial { hosts: controllers });
    }
    Plan {
        flow: FLOW.into(),
        phases: vec![Phase {
            name: "Replace the nodes' OS".into(),
            rollback_name: "Rollback node OS replacement".into(),
            groups,
        }],
    }
}

/// The hosts in the order they go: workers as in the hosts file, then the controllers, the
/// first one last.
fn ordered(mut hosts: Vec<PlannedHost>) -> Vec<PlannedHost> {
    // stable: the hosts file's order within each class
    hosts.sort_by_key(|h| (h.controller, h.first));
    hosts
}

/// The batches the capacity check plays: the worker windows, then each controller alone. Node
/// names; a controller without a Node is a turn with nothing to move.
fn batches(hosts: &[PlannedHost], width: usize) -> Vec<Vec<String>> {
    let name = |h: &PlannedHost| h.node.clone().unwrap_or_else(|| h.hostname.clone());
    let workers: Vec<String> = hosts.iter().filter(|h| !h.controller).map(name).collect();
    let mut out: Vec<Vec<String>> = workers
        .chunks(width.max(1))
        .map(<[String]>::to_vec)
        .collect();
    out.extend(hosts.iter().filter(|h| h.controller).map(|h| vec![name(h)]));
    out
}

/// The flags of a k0s service as `k0s install` takes them again: the daemon's arguments after
/// the binary and the role, without `--token-file` and `--config` (and their values).
fn install_flags(args: &[String]) -> (Vec<String>, Option<String>, bool) {
    let mut flags = Vec::new();
    let mut config = None;
    let mut joined = false;
    let mut it = args.iter().skip(2).peekable();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        match name {
            "--token-file" | "--config" | "-c" => {
                let v = inline.or_else(|| it.next().cloned());
                if name == "--token-file" {
                    joined = true;
                } else {
                    config = v;
                }
            }
            _ => flags.push(a.clone()),
        }
    }
    (flags, config, joined)
}

/// A host as the plan keeps it, from what discovery found.
async fn planned_host(
    h: &HostState,
    spec: &HostSpec,
    cx: &RunContext,
    cordoned: &BTreeMap<&str, bool>,
    members: &BTreeMap<String, String>,
) -> Result<PlannedHost, NodeOsError> {
    let exec = cx
        .host(&h.name)
        .map_err(|e| NodeOsError::Refused(e.chain()))?;
    let k = K0sHost::new(exec.as_ref(), h.facts.init_system);
    let args = k
        .daemon_args()
        .await
        .map_err(|e| NodeOsError::Refused(e.chain()))?
        .unwrap_or_default();
    let (flags, config, joined) = install_flags(&args);
    let node = h.node().map(str::to_string);
    let peer = members
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(&h.facts.hostname))
        .map(|(_, p)| p.clone());
    Ok(PlannedHost {
        name: h.name.clone(),
        address: spec.address.clone(),
        hostname: h.facts.hostname.clone(),
        cordoned: node
            .as_deref()
            .and_then(|n| cordoned.get(n).copied())
            .unwrap_or(false),
        node,
        controller: h.controller,
        worker: h.worker,
        first: false,
        init_system: h.facts.init_system,
        machine: h.facts.arch.clone(),
        os_id: h.facts.os.id.clone(),
        os_version_id: h.facts.os.version_id.clone(),
        os_pretty_name: h.facts.os.pretty_name.clone(),
        k0s: K0sSetup {
            version: h.version.clone().unwrap_or_default(),
            role: if h.controller { "controller" } else { "worker" }.into(),
            flags,
            config,
            peer: if h.controller { peer } else { None },
            joined,
        },
        replaced_by: None,
        inventory: None,
    })
}

#[async_trait::async_trait]
impl Flow for NodeOsFlow {
    type Inputs = Inputs;
    type Journaled = Journaled;
    type Report = ReplaceReport;
    type Error = NodeOsError;

    fn name(&self) -> &'static str {
        FLOW
    }

    fn hosts(&self, inputs: &Inputs) -> Vec<HostSpec> {
        inputs
            .hosts
            .iter()
            .chain(&inputs.new_hosts)
            .cloned()
            .collect()
    }

    fn hosts_may_be_away(&self) -> bool {
        true
    }

    async fn plan(
        &self,
        inputs: Inputs,
        cx: &RunContext,
    ) -> Result<Planned<Journaled>, NodeOsError> {
        if let Some(k) = inputs.kubean.clone() {
            let mgmt = self.management.clone().ok_or_else(|| {
                NodeOsError::Refused("a kubean cluster needs the management cluster's API".into())
            })?;
            return self.plan_kubean(inputs, k, mgmt, cx).await;
        }
        let mut checks = CheckReport::new("Validate node OS replacement");
        if inputs.order == Order::AddBeforeRemove && inputs.new_hosts.len() != inputs.hosts.len() {
            return Err(NodeOsError::Refused(format!(
                "add-before-remove needs one new host per host: the hosts file lists {}, the new hosts file {}",
                inputs.hosts.len(),
                inputs.new_hosts.len()
            )));
        }
        cx.log.info("==> Running phase: Gather facts");
        let all = cx.connected();
        let old_names: BTreeSet<String> = inputs.hosts.iter().map(HostSpec::name).collect();
        let (old, new): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|(s, _)| old_names.contains(&s.name()));
        let d: Discovered = discover(&old, cx.cluster.as_ref()).await?;
        let new_d = if new.is_empty() {
            Vec::new()
        } else {
            discover(&new, cx.cluster.as_ref()).await?.hosts
        };

        cx.log
            .info("==> Running phase: Validate node OS replacement");
        let cordoned: BTreeMap<&str, bool> = d
            .snapshot
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.unschedulable))
            .collect();
        let members: BTreeMap<String, String> = match (
            &d.snapshot.etcd_members,
            d.hosts.iter().find(|h| h.controller && h.running),
        ) {
            (Some(_), Some(c)) => {
                let exec = cx
                    .host(&c.name)
                    .map_err(|e| NodeOsError::Refused(e.chain()))?;
                K0sHost::new(exec.as_ref(), c.facts.init_system)
                    .etcd_members()
                    .await
                    .unwrap_or_default()
            }
            _ => BTreeMap::new(),
        };
        let mut hosts = Vec::new();
        for (h, (spec, _)) in d.hosts.iter().zip(&old) {
            if !h.running || h.version.is_none() {
                checks.push(
                    "k0s-running",
                    &h.name,
                    Status::Fail,
                    format!(
                        "k0s does not run on {} ({}): every host must run k0s before its OS is replaced",
                        h.name,
                        h.service.as_deref().unwrap_or("not installed")
                    ),
                );
                continue;
            }
            hosts.push(planned_host(h, spec, cx, &cordoned, &members).await?);
        }
        // the first controller: the one that joined nobody (its service names no join token),
        // else the first controller of the hosts file
        let first = hosts
            .iter()
            .position(|p| p.controller && !p.k0s.joined)
            .or_else(|| hosts.iter().position(|p| p.controller));
        if let Some(i) = first {
            hosts[i].first = true;
        }
        let controllers = hosts.iter().filter(|h| h.controller).count();
        if inputs.order == Order::RemoveBeforeAdd && controllers == 1 {
            checks.push(
                "controllers",
                "cluster",
                Status::Fail,
                "the cluster has one controller: removing it takes the cluster down. Use --order add-before-remove with a new host for it".into(),
            );
        }
        if let Some(m) = &d.snapshot.etcd_members {
            if m.len() % 2 == 0 {
                checks.push(
                    "etcd",
                    "cluster",
                    Status::Warn,
                    format!(
                        "etcd has {} members, an even number: one member down already leaves it without room for another",
                        m.len()
                    ),
                );
            }
        }
        // add-before-remove: the new hosts, each with the role of the one it replaces
        let mut new_hosts = Vec::new();
        if inputs.order == Order::AddBeforeRemove {
            for (i, nh) in new_d.iter().enumerate() {
                if nh.service.is_some() {
                    checks.push(
                        "new-host",
                        &nh.name,
                        Status::Fail,
                        format!(
                            "{} already has a k0s service ({}): a new host must be a fresh machine",
                            nh.name,
                            nh.service.as_deref().unwrap_or("")
                        ),
                    );
                }
                let Some(old_spec) = inputs.hosts.get(i) else {
                    continue;
                };
                let Some(o) = hosts.iter_mut().find(|h| h.name == old_spec.name()) else {
                    continue;
                };
                o.replaced_by = Some(nh.name.clone());
                let spec = inputs
                    .new_hosts
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| old_spec.clone());
                new_hosts.push(PlannedHost {
                    name: nh.name.clone(),
                    address: spec.address.clone(),
                    hostname: nh.facts.hostname.clone(),
                    node: o.worker.then(|| nh.facts.hostname.clone()),
                    controller: o.controller,
                    worker: o.worker,
                    first: false,
                    init_system: nh.facts.init_system,
                    machine: nh.facts.arch.clone(),
                    os_id: nh.facts.os.id.clone(),
                    os_version_id: nh.facts.os.version_id.clone(),
                    os_pretty_name: nh.facts.os.pretty_name.clone(),
                    cordoned: false,
                    k0s: K0sSetup {
                        peer: None,
                        joined: true,
                        ..o.k0s.clone()
                    },
                    replaced_by: None,
                    inventory: None,
                });
            }
        }
        let (hosts, at_target) = split_at_target(hosts, inputs.target_os.as_ref(), &mut checks);
        let hosts = ordered(hosts);

        // safety (PDBs, last replicas, etcd, readiness) and capacity, node by node
        let mut report = ferry_flow_k0s_upgrade::check(&d, &inputs.checks);
        report
            .nodes
            .retain(|n| hosts.iter().any(|h| h.name == n.name));
        for n in &report.nodes {
            for f in &n.findings {
                checks.push("safety", &n.name, Status::Fail, f.message.clone());
            }
        }
        let workers = hosts.iter().filter(|h| !h.controller).count();
        let width = inputs.max_unavailable.batch_size(workers.max(1));
        let cap = capacity(&d.snapshot, &batches(&hosts, width), inputs.order);
        capacity_findings(&cap, &mut checks);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((report, cap));

        let journaled = Journaled {
            order: inputs.order,
            backend: Backend::K0s,
            target_os: inputs.target_os.clone(),
            at_target,
            k0s_binary: inputs.k0s_binary.clone(),
            max_unavailable: inputs.max_unavailable,
            reinstall_command: inputs.reinstall_command.clone(),
            reinstall_timeout_secs: inputs.reinstall_timeout.as_secs().max(1),
            drain_timeout_secs: inputs.drain_timeout.as_secs().max(1),
            ready_timeout_secs: inputs.ready_timeout.as_secs().max(1),
            delete_emptydir_data: inputs.delete_emptydir_data,
            force_bare_pods: inputs.force_bare_pods,
            hosts,
            new_hosts,
            kubeconfig: inputs.kubeconfig.clone(),
        };
        let plan = build_plan(&journaled);
        Ok(Planned {
            checks,
            plan,
            journaled,
        })
    }

    fn steps(
        &self,
        j: &Journaled,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Vec<Arc<dyn Step>>, NodeOsError> {
        let ctx = Arc::new(Ctx {
            journaled: j.clone(),
            run: cx.clone(),
            management: self.management.clone(),
        });
        plan.steps()
            .into_iter()
            .map(|s| {
                let kind = Kind::from_id(&s.key.id)
                    .ok_or_else(|| NodeOsError::UnknownStep(s.key.clone()))?;
                steps::step(s.key.clone(), kind, &ctx)
                    .map_err(|source| NodeOsError::Step { key: s.key, source })
            })
            .collect()
    }

    fn texts(&self, j: &Journaled) -> RunTexts {
        let order = match j.order {
            Order::RemoveBeforeAdd => "remove-before-add",
            Order::AddBeforeRemove => "add-before-remove",
        };
        RunTexts {
            engine: Texts {
                signal_abort: "node OS replacement stopped by an interrupt".into(),
                rollback_because: "Rolling back the node OS replacement because of a failure: ".into(),
                rollback_start: Some(
                    "Rolling back: every node removed is added back (a reinstalled one on its new OS, which cannot be undone), uncordoned, its etcd member back, in reverse order"
                        .into(),
                ),
                rollback_done: Some(
                    "Rollback completed: every node is a member of the cluster again. Nodes already reinstalled keep their new OS"
                        .into(),
                ),
            },
            starting: format!(
                "Replacing the OS of {} host(s) ({order})",
                j.hosts.len()
            ),
            completed: "Node OS replacement completed successfully".into(),
            failed: "Node OS replacement failed: ".into(),
            rolled_back: "Rollback from the journal completed: every node is a member of the cluster again".into(),
        }
    }

    fn gate(&self, j: &Journaled, cx: &RunContext) -> Option<Arc<dyn Gate>> {
        Some(Arc::new(steps::ControllersGate::new(
            j.clone(),
            cx.clone(),
            self.management.clone(),
        )))
    }

    async fn report(&self, j: &Journaled, _cx: &RunContext) -> Result<ReplaceReport, NodeOsError> {
        let replaced = j
            .hosts
            .iter()
            .map(|h| {
                let what = match (&h.replaced_by, j.order) {
                    (Some(n), Order::AddBeforeRemove) => format!("replaced by {n}"),
                    _ => match &j.target_os {
                        Some(t) => format!("{} -> {t}", h.os_pretty_name),
                        None => format!("{} -> reinstalled", h.os_pretty_name),
                    },
                };
                (h.name.clone(), what)
            })
            .collect();
        Ok(ReplaceReport {
            order: j.order,
            replaced,
            left_alone: j.at_target.clone(),
        })
    }
}

impl NodeOsFlow {
    /// The plan of a kubean cluster: the hosts by their inventory names, master1 (the first of
    /// `kube_control_plane`) last, the same safety and capacity checks.
    async fn plan_kubean(
        &self,
        inputs: Inputs,
        k: KubeanInputs,
        mgmt: Arc<dyn ferry_core::ClusterApi>,
        cx: &RunContext,
    ) -> Result<Planned<Journaled>, NodeOsError> {
        use ferry_core::cluster::ObjectRef;
        let refuse = NodeOsError::Refused;
        let mut checks = CheckReport::new("Validate node OS replacement");
        if inputs.order != Order::RemoveBeforeAdd {
            return Err(refuse(
                "the kubean backend replaces nodes remove-before-add (a new machine joins a kubean cluster through its inventory, which ferry does not edit)".into(),
            ));
        }
        cx.log.info("==> Running phase: Gather facts");
        let connected = cx.connected();
        let facts = ferry_core::facts::gather_all(&connected, "/var/lib/kubelet").await;
        let cluster = mgmt
            .get(&ObjectRef {
                api_version: "kubean.io/v1alpha1".into(),
                kind: "Cluster".into(),
                namespace: None,
                name: k.cluster.clone(),
            })
            .await
            .map_err(|e| refuse(format!("cannot read the kubean cluster {}: {e}", k.cluster)))?
            .ok_or_else(|| {
                refuse(format!(
                    "the management cluster has no kubean cluster {:?} (clusters.kubean.io)",
                    k.cluster
                ))
            })?;
        let cm_ref = |v: &serde_json::Value| -> Option<CmRef> {
            Some(CmRef {
                name: v["name"].as_str()?.to_string(),
                namespace: v["namespace"].as_str()?.to_string(),
            })
        };
        let hosts_conf = cm_ref(&cluster["spec"]["hostsConfRef"]).ok_or_else(|| {
            refuse(format!(
                "kubean cluster {} has no spec.hostsConfRef",
                k.cluster
            ))
        })?;
        let text = crate::kubean::cm_data(mgmt.as_ref(), &hosts_conf, "hosts.yml")
            .await
            .map_err(|e| refuse(e.chain()))?
            .ok_or_else(|| {
                refuse(format!(
                    "ConfigMap {}/{} (the hosts-conf of kubean cluster {}) has no hosts.yml",
                    hosts_conf.namespace, hosts_conf.name, k.cluster
                ))
            })?;
        let inv = Inventory::parse(&text).map_err(|e| {
            refuse(format!(
                "ConfigMap {}/{}: {e}",
                hosts_conf.namespace, hosts_conf.name
            ))
        })?;
        let master1 = inv
            .groups
            .get("kube_control_plane")
            .and_then(|g| g.first())
            .cloned()
            .ok_or_else(|| {
                refuse(format!(
                    "the inventory of kubean cluster {} has no kube_control_plane host",
                    k.cluster
                ))
            })?;
        let snapshot = ferry_core::cluster::snapshot(cx.cluster.as_ref())
            .await
            .map_err(|e| refuse(format!("cannot read the cluster: {e}")))?;
        let mut hosts = Vec::new();
        for ((spec, _), f) in connected.iter().zip(facts) {
            let f =
                f.map_err(|e| refuse(format!("cannot gather the facts of {}: {e}", spec.name())))?;
            let Some(name) = inv.name_of(&spec.address, &f.hostname) else {
                checks.push(
                    "inventory",
                    &spec.name(),
                    Status::Fail,
                    format!(
                        "{} is not in the inventory of kubean cluster {} (by ansible_host, ip, access_ip or name)",
                        spec.name(),
                        k.cluster
                    ),
                );
                continue;
            };
            let node = snapshot.nodes.iter().find(|n| n.name == name);
            hosts.push(PlannedHost {
                name: spec.name(),
                address: spec.address.clone(),
                hostname: f.hostname.clone(),
                node: node.map(|n| n.name.clone()),
                controller: inv.in_group("kube_control_plane", &name),
                worker: inv.in_group("kube_node", &name),
                first: name == master1,
                init_system: f.init_system,
                machine: f.arch.clone(),
                os_id: f.os.id.clone(),
                os_version_id: f.os.version_id.clone(),
                os_pretty_name: f.os.pretty_name.clone(),
                cordoned: node.is_some_and(|n| n.unschedulable),
                k0s: K0sSetup::default(),
                replaced_by: None,
                inventory: Some(name),
            });
        }
        if !hosts.iter().any(|h| h.first) {
            checks.push(
                "inventory",
                "cluster",
                Status::Fail,
                format!(
                    "master1 ({master1}, the first host of kube_control_plane) is not in the hosts file"
                ),
            );
        }
        if hosts.iter().filter(|h| h.controller).count() < 2 {
            checks.push(
                "controllers",
                "cluster",
                Status::Fail,
                "master1 is replaced through another control-plane node: the cluster needs at least two".into(),
            );
        }
        let cp_order = inv
            .groups
            .get("kube_control_plane")
            .cloned()
            .unwrap_or_default();
        let second = hosts
            .iter()
            .filter(|h| h.controller && !h.first)
            .min_by_key(|h| {
                cp_order
                    .iter()
                    .position(|n| Some(n) == h.inventory.as_ref())
            })
            .map(|h| h.address.clone());
        let (hosts, at_target) = split_at_target(hosts, inputs.target_os.as_ref(), &mut checks);
        let hosts = ordered(hosts);
        let targets: Vec<ferry_safety::Target> = ferry_safety::targets_from_nodes(&snapshot)
            .into_iter()
            .filter(|t| {
                hosts
                    .iter()
                    .any(|h| h.node.is_some() && h.node.as_deref() == t.node.as_deref())
            })
            .collect();
        let report = ferry_safety::check(&snapshot, &targets, &inputs.checks.safety);
        for n in &report.nodes {
            for f in &n.findings {
                checks.push("safety", &n.name, Status::Fail, f.message.clone());
            }
        }
        let workers = hosts.iter().filter(|h| !h.controller).count();
        let width = inputs.max_unavailable.batch_size(workers.max(1));
        let cap = capacity(&snapshot, &batches(&hosts, width), inputs.order);
        capacity_findings(&cap, &mut checks);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((report, cap));
        let setup = KubeanSetup {
            cluster: k.cluster.clone(),
            image: k.image.clone(),
            hosts_conf,
            kubeconf: cm_ref(&cluster["spec"]["kubeconfRef"]),
            management_kubeconfig: k.management_kubeconfig.clone(),
            suffix: cx.owner.run_id.clone(),
            operation_timeout_secs: k.operation_timeout.as_secs().max(1),
            second,
        };
        let journaled = Journaled {
            order: inputs.order,
            backend: Backend::Kubean(Box::new(setup)),
            target_os: inputs.target_os.clone(),
            at_target,
            k0s_binary: None,
            max_unavailable: inputs.max_unavailable,
            reinstall_command: inputs.reinstall_command.clone(),
            reinstall_timeout_secs: inputs.reinstall_timeout.as_secs().max(1),
            drain_timeout_secs: inputs.drain_timeout.as_secs().max(1),
            ready_timeout_secs: inputs.ready_timeout.as_secs().max(1),
            delete_emptydir_data: inputs.delete_emptydir_data,
            force_bare_pods: inputs.force_bare_pods,
            hosts,
            new_hosts: Vec::new(),
            kubeconfig: inputs.kubeconfig.clone(),
        };
        let plan = build_plan(&journaled);
        Ok(Planned {
            checks,
            plan,
            journaled,
        })
    }
}

/// The hosts to reinstall, and those already on the target OS (named in the checks).
fn split_at_target(
    hosts: Vec<PlannedHost>,
    target: Option<&TargetOs>,
    checks: &mut CheckReport,
) -> (Vec<PlannedHost>, Vec<String>) {
    let Some(t) = target else {
        return (hosts, Vec::new());
    };
    let (done, todo): (Vec<_>, Vec<_>) = hosts
        .into_iter()
        .partition(|h| t.matches(&h.os_id, &h.os_version_id));
    for h in &done {
        checks.push(
            "target-os",
            &h.name,
            Status::Ok,
            format!("already runs {} ({t}): left alone", h.os_pretty_name),
        );
    }
    (todo, done.into_iter().map(|h| h.name).collect())
}

/// The capacity report's failures and suggestions as check findings.
fn capacity_findings(cap: &CapacityReport, checks: &mut CheckReport) {
    for t in cap.turns.iter().filter(|t| !t.fits()) {
        checks.push(
            "capacity",
            &t.node,
            Status::Fail,
            format!(
                "{} pod(s) would find no node while {} is out: {}",
                t.stranded.len(),
                t.node,
                t.stranded
                    .iter()
                    .map(|s| format!("{} ({})", s.pod, s.why.describe()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
    }
    for s in &cap.suggestions {
        checks.push(
            "capacity",
            "cluster",
            Status::Warn,
            format!("suggestion: {s}"),
        );
    }
}
