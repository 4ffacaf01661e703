//! The rolling k0s upgrade on the core lifecycle: discover the cluster read-only, run the
//! safety, availability and readiness checks (online mode), work out which nodes move (the
//! version rules, nodes already at the target skipped, `--partial-ok`), build the plan
//! (controllers strictly one at a time behind the quorum gate, each with a `k0s backup` first,
//! then workers in a sliding window), and hand the engine one step per planned step.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use ferry_core::checks::{CheckReport, Status};
use ferry_core::engine::{
    Gate, Group, HostChain, MaxUnavailable, Phase, Plan, Step, StepError, StepKey, StepRef, Target,
    Texts, slowest_first,
};
use ferry_core::facts::InitSystem;
use ferry_core::hosts::HostSpec;
use ferry_core::k0s::{K0sBinary, K0sHost};
use ferry_core::run::{Flow, Planned, RunContext, RunTexts};
use ferry_safety::Report;

use crate::check::{CheckOptions, check};
use crate::discover::{DiscoverError, Discovered, discover};
use crate::steps::{self, BACKUP_DIR, Ctx, Kind};
use crate::version::{self, Version};

/// The flow's name in plans and journals.
pub const FLOW: &str = "k0s-upgrade";

/// Kismatic's two modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Safety and availability checks first; nodes are cordoned and drained.
    Online,
    /// No checks, no drain: for clusters whose availability does not matter.
    Offline,
}

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub hosts: Vec<HostSpec>,
    pub mode: Mode,
    /// Where the new binary comes from.
    pub binary: K0sBinary,
    /// The version it is (`v1.32.6+k0s.0`).
    pub version: String,
    pub ignore_safety_checks: bool,
    pub partial_ok: bool,
    pub max_unavailable: MaxUnavailable,
    pub checks: CheckOptions,
    pub drain_timeout: Duration,
    pub ready_timeout: Duration,
    pub delete_emptydir_data: bool,
    pub force_bare_pods: bool,
    /// The kubeconfig the run used, kept in the journal (a path, never its content) so that
    /// `ferry resume` and `ferry rollback` reach the same cluster without being told.
    pub kubeconfig: Option<std::path::PathBuf>,
}

/// A host as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedHost {
    pub name: String,
    pub hostname: String,
    /// Its Kubernetes Node, when it runs workloads.
    pub node: Option<String>,
    pub controller: bool,
    pub worker: bool,
    pub machine: String,
    pub init_system: InitSystem,
    /// The version it ran when the run was planned.
    pub from_version: String,
    /// Cordoned before the run: it stays cordoned after.
    pub cordoned: bool,
}

/// What the journal keeps: everything the steps need to resume or roll back in another process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journaled {
    pub mode: Mode,
    pub binary: K0sBinary,
    pub version: String,
    pub max_unavailable: MaxUnavailable,
    pub drain_timeout_secs: u64,
    pub ready_timeout_secs: u64,
    pub delete_emptydir_data: bool,
    pub force_bare_pods: bool,
    /// The hosts that move, controllers first.
    pub hosts: Vec<PlannedHost>,
    /// Hosts already at the target version.
    pub at_target: Vec<String>,
    /// Hosts left behind by `--partial-ok`, with why.
    pub left_behind: BTreeMap<String, Vec<String>>,
    /// The kubeconfig of the run (see [`Inputs::kubeconfig`]).
    #[serde(default)]
    pub kubeconfig: Option<std::path::PathBuf>,
}

/// What a completed upgrade reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeReport {
    pub version: String,
    pub upgraded: Vec<String>,
    pub at_target: Vec<String>,
    pub left_behind: BTreeMap<String, Vec<String>>,
    /// Controller -> the `k0s backup` archives kept in [`BACKUP_DIR`].
    pub backups: BTreeMap<String, Vec<String>>,
}

impl UpgradeReport {
    /// The summary printed at the end.
    pub fn render(&self) -> String {
        let mut s = format!(
            "k0s {}: {} host(s) upgraded, {} already at it",
            self.version,
            self.upgraded.len(),
            self.at_target.len()
        );
        if !self.left_behind.is_empty() {
            s.push_str(&format!(", {} left behind", self.left_behind.len()));
        }
        s.push('\n');
        for (host, files) in &self.backups {
            for f in files {
                s.push_str(&format!("etcd backup kept on {host}: {BACKUP_DIR}/{f}\n"));
            }
        }
        if !self.left_behind.is_empty() {
            s.push_str("Partial upgrade: these hosts were not upgraded:\n");
            for (host, why) in &self.left_behind {
                s.push_str(&format!("  {host}: {}\n", why.join("; ")));
            }
            s.push_str(
                "Resolve what the report says and run `ferry k0s upgrade` again (without \
                 --partial-ok, or in offline mode in a maintenance window): hosts already at the \
                 target are skipped.\n",
            );
        }
        s
    }
}

/// Why the flow cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum K0sUpgradeError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("invalid target version")]
    Version(#[source] version::VersionError),
    #[error("{host} runs k0s {found}, which is not a k0s version")]
    HostVersion { host: String, found: String },
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

impl K0sUpgradeError {
    /// The operator's input is at fault (exit code 2).
    pub fn is_input(&self) -> bool {
        matches!(self, K0sUpgradeError::Version(_))
    }
}

/// The flow. It keeps the safety report of its last plan for the command to print.
#[derive(Debug, Default)]
pub struct K0sUpgradeFlow {
    report: Mutex<Option<Report>>,
}

impl K0sUpgradeFlow {
    pub fn new() -> Self {
        Self::default()
    }

    /// The safety, availability and readiness report of the last plan (online mode).
    pub fn last_report(&self) -> Option<Report> {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
fn chain(h: &PlannedHost, mode: Mode) -> HostChain {
    let drain = mode == Mode::Online && h.node.is_some();
    let mut kinds = Vec::new();
    if h.controller {
        kinds.push(Kind::Backup);
    }
    if drain {
        kinds.push(Kind::Drain);
    }
    kinds.extend([
        Kind::Stop,
        Kind::ReplaceBinary,
        Kind::Start,
        Kind::WaitReady,
    ]);
    if drain {
        kinds.push(Kind::RestoreCordon);
    }
    HostChain {
        host: h.name.clone(),
        role: match (h.controller, h.worker) {
            (true, true) => "controller+worker",
            (true, false) => "controller",
            _ => "worker",
        }
        .into(),
        steps: kinds.iter().map(|k| sref(*k, &h.name)).collect(),
    }
}

/// The plan: controllers one at a time, then workers in the window (slowest first).
pub fn build_plan(j: &Journaled, took: &BTreeMap<String, Duration>) -> Plan {
    let controllers: Vec<HostChain> = j
        .hosts
        .iter()
        .filter(|h| h.controller)
        .map(|h| chain(h, j.mode))
        .collect();
    let mut workers: Vec<HostChain> = j
        .hosts
        .iter()
        .filter(|h| !h.controller)
        .map(|h| chain(h, j.mode))
        .collect();
    slowest_first(&mut workers, |h| took.get(h).copied().unwrap_or_default());
    let mut groups = Vec::new();
    if !controllers.is_empty() {
        groups.push(Group::Serial { hosts: controllers });
    }
    if !workers.is_empty() {
        groups.push(Group::Window {
            limit: j.max_unavailable.to_string(),
            width: j.max_unavailable.batch_size(workers.len()),
            order: "slowest first".into(),
            hosts: workers,
        });
    }
    Plan {
        flow: FLOW.into(),
        phases: vec![Phase {
            name: format!("Upgrade k0s to {}", j.version),
            rollback_name: "Rollback k0s upgrade".into(),
            groups,
        }],
    }
}

/// Which hosts move, from the discovered cluster, the target and the report.
fn select(
    inputs: &Inputs,
    d: &Discovered,
    target: Version,
    report: Option<&Report>,
    checks: &mut CheckReport,
) -> Result<Journaled, K0sUpgradeError> {
    let nodes: BTreeMap<&str, bool> = d
        .snapshot
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.unschedulable))
        .collect();
    let mut hosts = Vec::new();
    let mut at_target = Vec::new();
    let mut left_behind = BTreeMap::new();
    for h in &d.hosts {
        let Some(found) = &h.version else {
            // not running: readiness says so (online); offline refuses it here
            checks.push(
                "k0s-running",
                &h.name,
                Status::Fail,
                format!(
                    "k0s does not run on {} ({}): start it or remove the host from the hosts file",
                    h.name,
                    h.service.as_deref().unwrap_or("not installed")
                ),
            );
            continue;
        };
        let from: Version = found.parse().map_err(|_| K0sUpgradeError::HostVersion {
            host: h.name.clone(),
            found: found.clone(),
        })?;
        match version::step(from, target) {
            version::Step::AtTarget => {
                at_target.push(h.name.clone());
                continue;
            }
            version::Step::Refused(why) => {
                checks.push("version", &h.name, Status::Fail, why);
                continue;
            }
            version::Step::Upgrade => {}
        }
        if let (true, Some(n)) = (inputs.partial_ok, report.and_then(|r| r.node(&h.name))) {
            if !n.is_ok() {
                left_behind.insert(
                    h.name.clone(),
                    n.findings.iter().map(|f| f.message.clone()).collect(),
                );
                continue;
            }
        }
        let node = h.node().map(str::to_string);
        hosts.push(PlannedHost {
            name: h.name.clone(),
            hostname: h.facts.hostname.clone(),
            cordoned: node
                .as_deref()
                .and_then(|n| nodes.get(n).copied())
                .unwrap_or(false),
            node,
            controller: h.controller,
            worker: h.worker,
            machine: h.facts.arch.clone(),
            init_system: h.facts.init_system,
            from_version: found.clone(),
        });
    }
    // controllers first, in the hosts file's order
    hosts.sort_by_key(|h| !h.controller);
    Ok(Journaled {
        mode: inputs.mode,
        binary: inputs.binary.clone(),
        version: inputs.version.clone(),
        max_unavailable: inputs.max_unavailable,
        drain_timeout_secs: inputs.drain_timeout.as_secs().max(1),
        ready_timeout_secs: inputs.ready_timeout.as_secs().max(1),
        delete_emptydir_data: inputs.delete_emptydir_data,
        force_bare_pods: inputs.force_bare_pods,
        hosts,
        at_target,
        left_behind,
        kubeconfig: inputs.kubeconfig.clone(),
    })
}

/// The safety report as check findings: failures, or warnings when they are ignored.
fn report_findings(report: &Report, inputs: &Inputs, checks: &mut CheckReport) {
    for n in &report.nodes {
        for f in &n.findings {
            let status = if inputs.ignore_safety_checks
                || (inputs.partial_ok && !n.roles.iter().any(|r| r == "controller" || r == "etcd"))
            {
                Status::Warn
            } else {
                Status::Fail
            };
            checks.push("safety", &n.name, status, f.message.clone());
        }
    }
    if inputs.partial_ok && !inputs.ignore_safety_checks {
        for n in report.unsafe_nodes() {
            if n.roles.iter().any(|r| r == "controller" || r == "etcd") {
                checks.push(
                    "partial-ok",
                    &n.name,
                    Status::Fail,
                    "a partial upgrade needs every controller ready and safe: this one is not"
                        .into(),
                );
            }
        }
    }
}

#[async_trait::async_trait]
impl Flow for K0sUpgradeFlow {
    type Inputs = Inputs;
    type Journaled = Journaled;
    type Report = UpgradeReport;
    type Error = K0sUpgradeError;

    fn name(&self) -> &'static str {
        FLOW
    }

    fn hosts(&self, inputs: &Inputs) -> Vec<HostSpec> {
        inputs.hosts.clone()
    }

    async fn plan(
        &self,
        inputs: Inputs,
        cx: &RunContext,
    ) -> Result<Planned<Journaled>, K0sUpgradeError> {
        let target: Version = inputs.version.parse().map_err(K0sUpgradeError::Version)?;
        cx.log.info("==> Running phase: Gather facts");
        let d = discover(&cx.connected(), cx.cluster.as_ref()).await?;
        let mut checks = CheckReport::new("Validate Online Upgrade");
        // A host already at the target is not touched: what it runs is no reason to stop.
        let at_target: std::collections::BTreeSet<&str> = d
            .hosts
            .iter()
            .filter(|h| {
                h.version.as_deref().and_then(|v| v.parse::<Version>().ok()) == Some(target)
            })
            .map(|h| h.name.as_str())
            .collect();
        let report = match inputs.mode {
            Mode::Online => {
                cx.log.info("==> Running phase: Validate Online Upgrade");
                let mut r = check(&d, &inputs.checks);
                r.nodes.retain(|n| !at_target.contains(n.name.as_str()));
                r.set_ignored(inputs.ignore_safety_checks);
                report_findings(&r, &inputs, &mut checks);
                Some(r)
            }
            Mode::Offline => None,
        };
        *self.report.lock().unwrap_or_else(|e| e.into_inner()) = report.clone();
        let journaled = select(&inputs, &d, target, report.as_ref(), &mut checks)?;
        if journaled.hosts.is_empty() && checks.passed() {
            checks.push(
                "nothing-to-do",
                "cluster",
                Status::Ok,
                format!("every host already runs {}", inputs.version),
            );
        }
        let took = d
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.facts.took))
            .collect();
        let plan = build_plan(&journaled, &took);
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
    ) -> Result<Vec<Arc<dyn Step>>, K0sUpgradeError> {
        let ctx = Arc::new(Ctx {
            journaled: j.clone(),
            run: cx.clone(),
        });
        plan.steps()
            .into_iter()
            .map(|s| {
                let kind = Kind::from_id(&s.key.id)
                    .ok_or_else(|| K0sUpgradeError::UnknownStep(s.key.clone()))?;
                steps::step(s.key.clone(), kind, &ctx)
                    .map_err(|source| K0sUpgradeError::Step { key: s.key, source })
            })
            .collect()
    }

    fn texts(&self, j: &Journaled) -> RunTexts {
        RunTexts {
            engine: Texts {
                signal_abort: "upgrade stopped by an interrupt".into(),
                rollback_because: "Rolling back the k0s upgrade because of a failure: ".into(),
                rollback_start: Some(
                    "Rolling back: every changed node gets its previous k0s binary and is restarted, in reverse order"
                        .into(),
                ),
                rollback_done: Some(format!(
                    "Rollback completed: the nodes run their previous k0s again. etcd's data is not \
                     restored automatically (it is still the cluster's live data); the backups taken \
                     before each controller are kept in {BACKUP_DIR} on the controllers, and \
                     `k0s restore <archive>` on a reset controller restores one"
                )),
            },
            starting: format!("Upgrading k0s to {} ({} mode)", j.version, match j.mode {
                Mode::Online => "online",
                Mode::Offline => "offline",
            }),
            completed: format!("Upgrade to k0s {} completed successfully", j.version),
            failed: "Upgrade failed: ".into(),
            rolled_back: "Rollback from the journal completed: the nodes run their previous k0s".into(),
        }
    }

    fn gate(&self, j: &Journaled, cx: &RunContext) -> Option<Arc<dyn Gate>> {
        Some(Arc::new(ControllersGate::new(
            cx.clone(),
            j.hosts
                .iter()
                .map(|h| (h.name.clone(), h.init_system))
                .collect(),
            j.hosts
                .iter()
                .filter_map(|h| h.node.clone().map(|n| (h.name.clone(), n)))
                .collect(),
            Duration::from_secs(j.ready_timeout_secs),
        )))
    }

    async fn report(
        &self,
        j: &Journaled,
        cx: &RunContext,
    ) -> Result<UpgradeReport, K0sUpgradeError> {
        let mut backups = BTreeMap::new();
        for h in j.hosts.iter().filter(|h| h.controller) {
            if let Ok(exec) = cx.host(&h.name) {
                let out = exec
                    .run(&ferry_core::Cmd::new("ls").args(["-1", BACKUP_DIR]).sudo())
                    .await;
                if let Ok(o) = out {
                    if o.success() {
                        backups.insert(
                            h.name.clone(),
                            o.stdout_text().lines().map(str::to_string).collect(),
                        );
                    }
                }
            }
        }
        Ok(UpgradeReport {
            version: j.version.clone(),
            upgraded: j.hosts.iter().map(|h| h.name.clone()).collect(),
            at_target: j.at_target.clone(),
            left_behind: j.left_behind.clone(),
            backups,
        })
    }
}

/// The quorum gate of the controllers: before a controller is taken out, every other controller
/// runs k0s (and its Node, if it has one, is Ready), and the etcd member list answers on one of
/// them (a read that needs etcd's quorum).
#[derive(Debug)]
pub struct ControllersGate {
    cx: RunContext,
    init: BTreeMap<String, InitSystem>,
    nodes: BTreeMap<String, String>,
    timeout: Duration,
}

impl ControllersGate {
    /// The gate over the controllers of `init` (host → its service manager); `nodes` maps the
    /// controllers that run workloads to their Node.
    pub fn new(
        cx: RunContext,
        init: BTreeMap<String, InitSystem>,
        nodes: BTreeMap<String, String>,
        timeout: Duration,
    ) -> Self {
        Self {
            cx,
            init,
            nodes,
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl Gate for ControllersGate {
    async fn wait(&self, host: &str, others: &[String]) -> Result<(), StepError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut listed = false;
        for o in others {
            let exec = self.cx.host(o)?;
            let k = K0sHost::new(
                exec.as_ref(),
                self.init.get(o).copied().unwrap_or(InitSystem::Systemd),
            );
            loop {
                if k.running().await? {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(StepError::new(format!(
                        "controller {o} does not run k0s: {host} is not taken out while it is down"
                    )));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if let Some(node) = self.nodes.get(o) {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                ferry_core::node::wait_ready(
                    self.cx.cluster.as_ref(),
                    node,
                    left.max(Duration::from_secs(1)),
                    Duration::from_secs(1),
                )
                .await
                .map_err(|e| e.context(format!("controller {o}")))?;
            }
            if !listed {
                k.etcd_members()
                    .await
                    .map_err(|e| e.context(format!("etcd quorum, asked on {o}")))?;
                listed = true;
            }
        }
        Ok(())
    }
}
