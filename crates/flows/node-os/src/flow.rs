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

/// How a host runs k0s, as re-adding it needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl NodeOsFlow {
    pub fn new() -> Self {
        Self::default()
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
    let workers: Vec<HostChain> = j
        .hosts
        .iter()
        .filter(|h| !h.controller)
        .map(|h| chain(h, j.order))
        .collect();
    let controllers: Vec<HostChain> = j
        .hosts
        .iter()
        .filter(|h| h.controller)
        .map(|h| chain(h, j.order))
        .collect();
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
                });
            }
        }
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
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((report, cap));

        let journaled = Journaled {
            order: inputs.order,
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
        Some(Arc::new(steps::ControllersGate::new(j.clone(), cx.clone())))
    }

    async fn report(&self, j: &Journaled, _cx: &RunContext) -> Result<ReplaceReport, NodeOsError> {
        let replaced = j
            .hosts
            .iter()
            .map(|h| {
                let what = match (&h.replaced_by, j.order) {
                    (Some(n), Order::AddBeforeRemove) => format!("replaced by {n}"),
                    _ => format!("{} -> reinstalled", h.os_pretty_name),
                };
                (h.name.clone(), what)
            })
            .collect();
        Ok(ReplaceReport {
            order: j.order,
            replaced,
        })
    }
}
