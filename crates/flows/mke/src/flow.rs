//! The MKE 3 → MKE 4k flow (`reference/mke4-upgrade.md`): gather facts read-only, run the
//! pre-upgrade checks, build the plan (pre-upgrade tasks, managers to k0s one at a time, workers
//! in batches, MKE 4 components, MKE 3 cleanup), and run it with the engine; or resume or roll
//! back a run from its journal. The commands of every step are listed in `docs/upgrade-steps.md`.

pub mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checks::{self, CheckOptions, CheckReport, Facts, HostFacts};
use crate::cluster::ClusterApi;
use crate::engine::join::join_all;
use crate::engine::runner::RollbackTexts;
use crate::engine::{
    Engine, EngineError, Group, Hooks, HostChain, Interrupts, LogSink, Logger, MaxUnavailable,
    Outcome, Phase, Plan, StepRef, Target, batching,
};
use crate::exec::{Cmd, Connector, ExecError, HostExec};
use crate::hosts::HostSpec;
use crate::journal::{Journal, JournalError, Record, Replay};
use crate::lock::{self, LockError, LockOwner, RunLock};
use crate::mke3::Mke3Api;
use steps::{Kind, MkeStep};

/// The flow's name in plans and journals.
pub const FLOW: &str = "mke3-to-mke4";
/// The k0s release MKE 4k 4.1 runs.
pub const K0S_VERSION: &str = "v1.31.1+k0s.1";

/// What the operator asked for. Journaled: never holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs {
    pub hosts: Vec<HostSpec>,
    pub mke3_admin_username: String,
    pub external_address: String,
    pub max_unavailable: MaxUnavailable,
    pub image_registry: Option<String>,
    pub chart_registry: Option<String>,
    pub mke3_airgapped: bool,
    pub force: bool,
    pub checks: CheckOptions,
    pub mke4_version: String,
    pub k0s_version: String,
    /// Where a leftover admin kubeconfig of an earlier attempt would be (`~/.mke/mke.kubeconf`).
    pub kubeconf_path: Option<PathBuf>,
}

impl Inputs {
    /// Inputs with the defaults for everything optional.
    pub fn new(hosts: Vec<HostSpec>, username: &str, external_address: &str) -> Self {
        Self {
            hosts,
            mke3_admin_username: username.into(),
            external_address: external_address.into(),
            max_unavailable: MaxUnavailable::default(),
            image_registry: None,
            chart_registry: None,
            mke3_airgapped: false,
            force: false,
            checks: CheckOptions::default(),
            mke4_version: ferry_config_convert::mke4::DEFAULT_VERSION.into(),
            k0s_version: K0S_VERSION.into(),
            kubeconf_path: None,
        }
    }

    /// The conversion options for these inputs and the detected roles.
    pub fn convert_options(&self, d: &Discovered) -> ferry_config_convert::Options {
        let managers: BTreeSet<&str> = d
            .hosts
            .iter()
            .filter(|h| h.manager)
            .map(|h| h.name.as_str())
            .collect();
        ferry_config_convert::Options {
            external_address: Some(self.external_address.clone()),
            image_registry: self.image_registry.clone(),
            chart_registry: self.chart_registry.clone(),
            airgapped: self.mke3_airgapped,
            version: self.mke4_version.clone(),
            hosts: self
                .hosts
                .iter()
                .map(|h| ferry_config_convert::HostInput {
                    address: h.address.clone(),
                    port: h.port,
                    user: h.user.clone(),
                    key_path: h.key_path.clone().unwrap_or_default(),
                    private_address: h.private_address.clone(),
                    private_interface: h.private_interface.clone(),
                    manager: managers.contains(h.name().as_str()),
                    profile: None,
                })
                .collect(),
            ..ferry_config_convert::Options::default()
        }
    }
}

/// A host as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedHost {
    pub name: String,
    /// The Kubernetes node name.
    pub hostname: String,
    pub manager: bool,
}

/// What discovery found that the steps need; journaled with the inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    pub mke3_version: String,
    /// The first manager: it goes first, takes the etcd backup and issues join tokens.
    pub leader: String,
    pub hosts: Vec<PlannedHost>,
}

impl Discovered {
    pub fn host(&self, name: &str) -> Option<&PlannedHost> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// The journal header's `inputs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journaled {
    inputs: Inputs,
    discovered: Discovered,
}

/// The backends of a run.
#[derive(Debug, Clone)]
pub struct Backends {
    pub connector: Arc<dyn Connector>,
    pub cluster: Arc<dyn ClusterApi>,
    pub mke3: Arc<dyn Mke3Api>,
}

/// Everything a run needs besides the inputs.
#[derive(Debug, Clone)]
pub struct Session {
    pub backends: Backends,
    pub state_dir: PathBuf,
    pub log: Arc<dyn LogSink>,
    pub interrupts: Interrupts,
    pub hooks: Arc<dyn Hooks>,
}

/// How a command ended.
#[derive(Debug, Clone)]
pub enum Finish {
    /// `--dry-run`: the checks and the plan; nothing was changed.
    DryRun { checks: CheckReport, plan: Plan },
    /// Every step applied.
    Completed {
        summary: String,
        mke4_yaml: String,
        checks: Option<CheckReport>,
    },
    /// The run failed or was interrupted and everything was undone (or `ferry rollback`
    /// finished).
    RolledBack { error: String },
    /// The rollback stopped; the journal holds what is left.
    RollbackIncomplete {
        error: String,
        failure: String,
        remaining: Vec<String>,
    },
    /// Second interrupt: stopped at once; the journal is kept.
    Interrupted,
}

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum MkeError {
    #[error("pre-upgrade checks failed: {}", .0.failures().iter().map(|f| format!("{} ({}): {}", f.check, f.subject, f.message)).collect::<Vec<_>>().join("; "))]
    Checks(CheckReport),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot connect to {host}")]
    Connect {
        host: String,
        #[source]
        source: ExecError,
    },
    #[error("cannot gather facts: {0}")]
    Discover(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("state directory {path}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {0} was written by another flow")]
    WrongFlow(String),
}

fn new_run_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:05}",
        t.as_secs(),
        (t.subsec_nanos() / 10_000) % 100_000
    )
}

async fn connect_all(
    connector: &Arc<dyn Connector>,
    hosts: &[HostSpec],
) -> Result<BTreeMap<String, Arc<dyn HostExec>>, MkeError> {
    let futs: Vec<_> = hosts
        .iter()
        .map(|h| async move { (h.name(), connector.connect(h).await) })
        .collect();
    let mut out = BTreeMap::new();
    for (name, r) in join_all(futs).await {
        let exec = r.map_err(|source| MkeError::Connect {
            host: name.clone(),
            source,
        })?;
        out.insert(name, exec);
    }
    Ok(out)
}

async fn text(h: &dyn HostExec, cmd: Cmd) -> Result<String, String> {
    let shown = cmd.to_string();
    let out = h.run(&cmd).await.map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "{}: `{shown}` exited with {:?}: {}",
            h.host(),
            out.code,
            out.stderr_text().trim()
        ));
    }
    Ok(out.stdout_text())
}

async fn host_facts(h: &dyn HostExec) -> Result<HostFacts, String> {
    let hostname = text(h, Cmd::new("hostname")).await?.trim().to_lowercase();
    let swarm = text(
        h,
        Cmd::new("docker")
            .args(["info", "--format", "{{json .Swarm}}"])
            .sudo(),
    )
    .await?;
    let swarm: serde_json::Value = serde_json::from_str(swarm.trim())
        .map_err(|e| format!("{}: docker info: {e}", h.host()))?;
    let cpus = text(h, Cmd::new("nproc"))
        .await?
        .trim()
        .parse()
        .map_err(|_| format!("{}: nproc printed no number", h.host()))?;
    let mem = text(h, Cmd::new("cat").arg("/proc/meminfo")).await?;
    let mem_kib = mem
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{}: no MemTotal in /proc/meminfo", h.host()))?;
    let df = text(
        h,
        Cmd::new("df").args(["-B1", "--output=avail", "/var/lib"]),
    )
    .await?;
    let disk_free = df
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next()
        .ok_or_else(|| format!("{}: df printed no number", h.host()))?;
    let ss = text(h, Cmd::new("ss").arg("-Htln")).await?;
    let listening = ss
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .collect();
    Ok(HostFacts {
        host: h.host().to_string(),
        hostname,
        swarm_state: swarm["LocalNodeState"]
            .as_str()
            .unwrap_or("inactive")
            .into(),
        manager: swarm["ControlAvailable"].as_bool().unwrap_or(false),
        cpus,
        mem_kib,
        disk_free,
        listening,
    })
}

/// Gathers everything the checks and the plan need, read-only.
pub async fn discover(
    inputs: &Inputs,
    backends: &Backends,
    hosts: &BTreeMap<String, Arc<dyn HostExec>>,
) -> Result<(Facts, Discovered), MkeError> {
    let mke3_version = backends
        .mke3
        .version()
        .await
        .map_err(|e| MkeError::Discover(format!("mke 3: {e}")))?;
    let toml = backends
        .mke3
        .config_toml()
        .await
        .map_err(|e| MkeError::Discover(format!("mke 3: {e}")))?;
    let nodes = backends
        .cluster
        .nodes()
        .await
        .map_err(|e| MkeError::Discover(format!("kubernetes: {e}")))?;
    let futs: Vec<_> = inputs
        .hosts
        .iter()
        .filter_map(|spec| hosts.get(&spec.name()))
        .map(|h| host_facts(h.as_ref()))
        .collect();
    let mut facts_hosts = Vec::new();
    for r in join_all(futs).await {
        facts_hosts.push(r.map_err(MkeError::Discover)?);
    }
    let planned: Vec<PlannedHost> = facts_hosts
        .iter()
        .map(|f| PlannedHost {
            name: f.host.clone(),
            hostname: f.hostname.clone(),
            manager: f.manager,
        })
        .collect();
    let leader = planned
        .iter()
        .find(|h| h.manager)
        .map(|h| h.name.clone())
        .unwrap_or_default();
    let discovered = Discovered {
        mke3_version: mke3_version.clone(),
        leader,
        hosts: planned,
    };
    let options = inputs.convert_options(&discovered);
    options
        .validate()
        .map_err(|e| MkeError::Input(e.to_string()))?;
    let config_blockers = match ferry_config_convert::analyze(&toml, &options) {
        Ok(c) => c.blockers,
        Err(e) => vec![format!("the MKE 3 configuration cannot be read: {e}")],
    };
    let leftover_kubeconfig = inputs.kubeconf_path.clone().filter(|p| p.exists());
    Ok((
        Facts {
            mke3_version,
            config_blockers,
            nodes,
            hosts: facts_hosts,
            leftover_kubeconfig,
        },
        discovered,
    ))
}

fn sref(kind: Kind, target: Target) -> StepRef {
    StepRef {
        key: crate::engine::StepKey::new(kind.id(), target),
        description: kind.description().into(),
        reversibility: kind.reversibility(),
    }
}

fn chain(h: &PlannedHost, kinds: &[Kind]) -> HostChain {
    HostChain {
        host: h.name.clone(),
        role: if h.manager { "manager" } else { "worker" }.into(),
        steps: kinds
            .iter()
            .map(|k| sref(*k, Target::Host(h.name.clone())))
            .collect(),
    }
}

/// The plan for the discovered cluster.
pub fn build_plan(inputs: &Inputs, d: &Discovered) -> Plan {
    let mut managers: Vec<&PlannedHost> = d.hosts.iter().filter(|h| h.manager).collect();
    // The leader goes first.
    managers.sort_by_key(|h| h.name != d.leader);
    let workers: Vec<&PlannedHost> = d.hosts.iter().filter(|h| !h.manager).collect();
    let node_steps = [
        Kind::Drain,
        Kind::StopMke3,
        Kind::InstallK0s,
        Kind::StartK0s,
        Kind::Uncordon,
    ];
    let limit = inputs.max_unavailable;
    let worker_chains: Vec<HostChain> = workers.iter().map(|h| chain(h, &node_steps)).collect();
    let cleanup_workers: Vec<HostChain> = workers
        .iter()
        .map(|h| chain(h, &[Kind::RemoveMke3]))
        .collect();
    let mut cleanup_managers: Vec<HostChain> = managers
        .iter()
        .map(|h| chain(h, &[Kind::RemoveMke3]))
        .collect();
    // The leader, which took the backup, is cleaned last.
    cleanup_managers.reverse();
    Plan {
        flow: FLOW.into(),
        phases: vec![
            Phase {
                name: "Pre Upgrade Tasks".into(),
                rollback_name: "Rollback Pre Upgrade Tasks".into(),
                groups: vec![Group::Steps {
                    steps: vec![
                        sref(Kind::BackupEtcd, Target::Host(d.leader.clone())),
                        sref(Kind::ExportConfig, Target::Cluster),
                        sref(Kind::ExportRbac, Target::Cluster),
                        sref(Kind::ConvertConfig, Target::Cluster),
                        sref(Kind::TranslateRbac, Target::Cluster),
                    ],
                }],
            },
            Phase {
                name: "Upgrade Tasks".into(),
                rollback_name: "Rollback Upgrade Tasks".into(),
                groups: vec![
                    Group::Serial {
                        hosts: managers.iter().map(|h| chain(h, &node_steps)).collect(),
                    },
                    Group::Batched {
                        limit: limit.to_string(),
                        batches: batching::batches(&worker_chains, limit),
                    },
                ],
            },
            Phase {
                name: "Install MKE 4 Components".into(),
                rollback_name: "Rollback MKE 4 Components".into(),
                groups: vec![Group::Steps {
                    steps: vec![
                        sref(Kind::ApplyMke4Config, Target::Cluster),
                        sref(Kind::ApplyRbac, Target::Cluster),
                    ],
                }],
            },
            Phase {
                name: "Post Upgrade Cleanup".into(),
                rollback_name: "Rollback Post Upgrade Cleanup".into(),
                groups: vec![
                    Group::Batched {
                        limit: limit.to_string(),
                        batches: batching::batches(&cleanup_workers, limit),
                    },
                    Group::Serial {
                        hosts: cleanup_managers,
                    },
                ],
            },
        ],
    }
}

struct Prepared {
    _lock: RunLock,
    engine: Engine,
    ctx: Arc<steps::Ctx>,
}

fn build_engine(
    session: &Session,
    journaled: &Journaled,
    plan: Plan,
    hosts: BTreeMap<String, Arc<dyn HostExec>>,
    journal: Journal,
    log: Logger,
) -> Result<(Engine, Arc<steps::Ctx>), MkeError> {
    let ctx = Arc::new(steps::Ctx {
        inputs: journaled.inputs.clone(),
        discovered: journaled.discovered.clone(),
        hosts,
        cluster: session.backends.cluster.clone(),
        mke3: session.backends.mke3.clone(),
        state_dir: session.state_dir.clone(),
        log: log.clone(),
    });
    let steps: Vec<Arc<dyn crate::engine::Step>> = plan
        .steps()
        .into_iter()
        .filter_map(|s| {
            Kind::from_id(&s.key.id).map(|k| {
                Arc::new(MkeStep::new(s.key.clone(), k, ctx.clone()))
                    as Arc<dyn crate::engine::Step>
            })
        })
        .collect();
    let v = &journaled.discovered.mke3_version;
    let engine = Engine::new(plan, steps, journal, log, session.interrupts.clone())?
        .with_hooks(session.hooks.clone())
        .with_rollback_texts(RollbackTexts {
            start: Some(format!("Initiating rollback of MKE to version: {v}")),
            done: Some(format!(
                "Rollback to MKE version {v} completed successfully ..."
            )),
        });
    Ok((engine, ctx))
}

async fn lock_hosts(ctx: &steps::Ctx, owner: &LockOwner, log: &Logger) -> Result<(), MkeError> {
    log.info("==> Running phase: Acquire exclusive host lock");
    let futs: Vec<_> = ctx
        .hosts
        .values()
        .map(|h| async move {
            (
                h.clone(),
                lock::acquire_host(h.as_ref(), owner, lock::HOST_LOCK_STALE).await,
            )
        })
        .collect();
    let mut taken = Vec::new();
    let mut failure = None;
    for (h, r) in join_all(futs).await {
        match r {
            Ok(over) => {
                if over {
                    log.warn(format!(
                        "[ssh] {}: took over the lock of an earlier run",
                        h.host()
                    ));
                }
                taken.push(h);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        for h in taken {
            let _ = lock::release_host(h.as_ref()).await;
        }
        return Err(e.into());
    }
    Ok(())
}

async fn release_hosts(ctx: &steps::Ctx, log: &Logger) {
    log.info("==> Running phase: Release exclusive host lock");
    let futs: Vec<_> = ctx
        .hosts
        .values()
        .map(|h| async move { (h.host().to_string(), lock::release_host(h.as_ref()).await) })
        .collect();
    for (h, r) in join_all(futs).await {
        if let Err(e) = r {
            log.warn(format!("[ssh] {h}: cannot release the host lock: {e}"));
        }
    }
}

/// Refreshes the host locks until dropped; never returns.
async fn refresh_forever(ctx: &steps::Ctx) -> std::convert::Infallible {
    loop {
        tokio::time::sleep(lock::HOST_LOCK_REFRESH).await;
        let futs: Vec<_> = ctx
            .hosts
            .values()
            .map(|h| async move { lock::refresh_host(h.as_ref()).await })
            .collect();
        for r in join_all(futs).await {
            if let Err(e) = r {
                ctx.log.warn(format!("cannot refresh a host lock: {e}"));
            }
        }
    }
}

async fn drive(p: Prepared, what: Drive<'_>) -> Result<Finish, MkeError> {
    let Prepared { _lock, engine, ctx } = p;
    let what_kind = match what {
        Drive::Rollback(_) => Kind2::Rollback,
        _ => Kind2::Forward,
    };
    let run = async {
        match what {
            Drive::Run => engine.run().await,
            Drive::Resume(r) => engine.resume(r).await,
            Drive::Rollback(r) => engine.rollback_journal(r).await,
        }
    };
    let rollback_cmd = matches!(what_kind, Kind2::Rollback);
    let outcome = tokio::select! {
        o = run => o?,
        never = refresh_forever(&ctx) => match never {},
    };
    finish(&ctx, outcome, rollback_cmd).await
}

enum Kind2 {
    Forward,
    Rollback,
}

enum Drive<'a> {
    Run,
    Resume(&'a Replay),
    Rollback(&'a Replay),
}

async fn finish(
    ctx: &steps::Ctx,
    outcome: Outcome,
    rollback_cmd: bool,
) -> Result<Finish, MkeError> {
    let log = &ctx.log;
    Ok(match outcome {
        Outcome::Completed => {
            release_hosts(ctx, log).await;
            let (summary, yaml) = steps::summary(ctx).map_err(|e| MkeError::Discover(e.message))?;
            // Kept with the run's other files, as mkectl's output folder keeps its summary.
            if let Err(e) = ctx.write_state(steps::SUMMARY_FILE, summary.as_bytes()) {
                log.warn(format!(
                    "cannot keep the summary in the state directory: {e}"
                ));
            }
            log.info("Upgrade to MKE 4k completed successfully");
            Finish::Completed {
                summary,
                mke4_yaml: yaml,
                checks: None,
            }
        }
        Outcome::RolledBack { error, .. } => {
            release_hosts(ctx, log).await;
            if rollback_cmd {
                log.info("Rollback from the journal completed: the cluster is back on MKE 3");
            } else {
                log.fatal(format!("Upgrade failed due to error: {error}"));
            }
            Finish::RolledBack { error }
        }
        Outcome::RollbackIncomplete {
            error,
            failure,
            remaining,
            ..
        } => {
            log.fatal(format!(
                "Upgrade failed due to error: {error}; the rollback is incomplete ({failure}), run `ferry rollback` once the cause is fixed"
            ));
            Finish::RollbackIncomplete {
                error,
                failure,
                remaining: remaining.iter().map(ToString::to_string).collect(),
            }
        }
        Outcome::Interrupted => Finish::Interrupted,
    })
}

fn state_dir(session: &Session) -> Result<(), MkeError> {
    std::fs::create_dir_all(&session.state_dir).map_err(|source| MkeError::State {
        path: session.state_dir.clone(),
        source,
    })
}

/// `ferry upgrade`: checks, plan, and (unless `dry_run`) the run.
pub async fn upgrade(inputs: Inputs, session: Session, dry_run: bool) -> Result<Finish, MkeError> {
    let log = Logger::new(session.log.clone());
    if inputs.hosts.is_empty() {
        return Err(MkeError::Input("the hosts file lists no host".into()));
    }
    let run_id = new_run_id();
    let owner = LockOwner::current(&run_id);
    let lock = if dry_run {
        None
    } else {
        state_dir(&session)?;
        let l = RunLock::acquire(&session.state_dir, &owner)?;
        // Refuse early when an unfinished run is recorded.
        if Journal::path_in(&session.state_dir).exists() {
            let r = Replay::read(&session.state_dir)?;
            if !r.is_finished() {
                return Err(JournalError::Unfinished {
                    path: Journal::path_in(&session.state_dir),
                    run_id: r.run_id,
                }
                .into());
            }
        }
        Some(l)
    };
    log.info("==> Running phase: Connect to hosts");
    let hosts = connect_all(&session.backends.connector, &inputs.hosts).await?;
    log.info("==> Running phase: Gather facts");
    let (facts, discovered) = discover(&inputs, &session.backends, &hosts).await?;
    log.info("==> Running phase: Pre-upgrade checks");
    let report = checks::run(&facts, &inputs.checks);
    for f in &report.findings {
        if f.status != checks::Status::Ok {
            log.warn(format!("{} ({}): {}", f.check, f.subject, f.message));
        }
    }
    let plan = build_plan(&inputs, &discovered);
    if dry_run {
        return Ok(Finish::DryRun {
            checks: report,
            plan,
        });
    }
    if !report.passed() {
        return Err(MkeError::Checks(report));
    }
    let Some(lock) = lock else {
        return Err(MkeError::Input("internal: no lock".into()));
    };
    let journaled = Journaled { inputs, discovered };
    let inputs_json =
        serde_json::to_value(&journaled).map_err(|e| MkeError::Input(e.to_string()))?;
    let journal = Journal::create(
        &session.state_dir,
        Record::Header {
            run_id: run_id.clone(),
            flow: FLOW.into(),
            tool: format!("ferry {}", env!("CARGO_PKG_VERSION")),
            inputs: inputs_json,
            plan: plan.clone(),
        },
    )?;
    let (engine, ctx) = build_engine(&session, &journaled, plan, hosts, journal, log.clone())?;
    if let Err(e) = lock_hosts(&ctx, &owner, &log).await {
        // Nothing was changed: the journal says so.
        let (mut j, _) = Journal::open(&session.state_dir)?;
        j.append(Record::Finished {
            outcome: "rolled-back".into(),
        })?;
        return Err(e);
    }
    log.info(format!(
        "Upgrading MKE {} to MKE 4k {} (run {run_id})",
        journaled.discovered.mke3_version, journaled.inputs.mke4_version
    ));
    let mut fin = drive(
        Prepared {
            _lock: lock,
            engine,
            ctx,
        },
        Drive::Run,
    )
    .await?;
    if let Finish::Completed { checks, .. } = &mut fin {
        *checks = Some(report);
    }
    Ok(fin)
}

async fn from_journal(
    session: &Session,
) -> Result<(RunLock, Replay, Journal, Journaled, LockOwner), MkeError> {
    state_dir(session)?;
    let (j0, replay) = match Journal::open(&session.state_dir) {
        Ok(x) => x,
        Err(e) => return Err(e.into()),
    };
    drop(j0);
    let owner = LockOwner::current(&replay.run_id);
    let lock = RunLock::acquire(&session.state_dir, &owner)?;
    // Read again under the lock.
    let (journal, replay) = Journal::open(&session.state_dir)?;
    if replay.flow != FLOW {
        return Err(MkeError::WrongFlow(replay.flow));
    }
    let journaled: Journaled = serde_json::from_value(replay.inputs.clone())
        .map_err(|e| MkeError::Input(format!("journal inputs: {e}")))?;
    Ok((lock, replay, journal, journaled, owner))
}

/// `ferry upgrade --resume`: continues the run recorded in the state directory.
pub async fn resume(session: Session) -> Result<Finish, MkeError> {
    let log = Logger::new(session.log.clone());
    let (lock, replay, journal, journaled, owner) = from_journal(&session).await?;
    log.info("==> Running phase: Connect to hosts");
    let hosts = connect_all(&session.backends.connector, &journaled.inputs.hosts).await?;
    let (engine, ctx) = build_engine(
        &session,
        &journaled,
        replay.plan.clone(),
        hosts,
        journal,
        log.clone(),
    )?;
    lock_hosts(&ctx, &owner, &log).await?;
    drive(
        Prepared {
            _lock: lock,
            engine,
            ctx,
        },
        Drive::Resume(&replay),
    )
    .await
}

/// `ferry rollback`: undoes everything the run recorded in the state directory did.
pub async fn rollback(session: Session) -> Result<Finish, MkeError> {
    let log = Logger::new(session.log.clone());
    let (lock, replay, journal, journaled, owner) = from_journal(&session).await?;
    log.warn(format!(
        "Rolling back run {} from its journal",
        replay.run_id
    ));
    log.info("==> Running phase: Connect to hosts");
    let hosts = connect_all(&session.backends.connector, &journaled.inputs.hosts).await?;
    let (engine, ctx) = build_engine(
        &session,
        &journaled,
        replay.plan.clone(),
        hosts,
        journal,
        log.clone(),
    )?;
    lock_hosts(&ctx, &owner, &log).await?;
    drive(
        Prepared {
            _lock: lock,
            engine,
            ctx,
        },
        Drive::Rollback(&replay),
    )
    .await
}

/// The state directory's path for a cluster: `$XDG_STATE_HOME/ferry/<name>` (or
/// `~/.local/state/ferry/<name>`), the name made of the external address.
pub fn default_state_dir(
    external_address: &str,
    xdg_state_home: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    let base = match (xdg_state_home, home) {
        (Some(x), _) if x.is_absolute() => x.to_path_buf(),
        (_, Some(h)) => h.join(".local/state"),
        _ => return None,
    };
    let name: String = external_address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(base.join("ferry").join(name))
}
