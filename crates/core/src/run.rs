//! The run lifecycle, written once for every flow: connect to the hosts, let the flow gather its
//! facts, run its checks and build its plan (read-only), then take the run lock and the host
//! locks, write the journal header (the flow's name, its inputs, the hosts, the plan), run the
//! engine with the host locks refreshed, release them, and let the flow report. [`resume`] and
//! [`rollback`] start from the journal alone: the header says which flow, which hosts and which
//! inputs.
//!
//! A flow implements [`Flow`]: its name, the hosts of its inputs, [`Flow::plan`] (facts, checks
//! and plan, never changing anything), [`Flow::steps`] (one implementation per planned step,
//! from the journaled inputs), its [`Texts`], an optional quorum [`Gate`], and its report.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checks::CheckReport;
use crate::cluster::ClusterApi;
use crate::engine::join::join_all;
use crate::engine::{
    Deadline, Engine, EngineError, Gate, Hooks, Interrupts, LogSink, Logger, Outcome, Plan, Step,
    StepError, Texts,
};
use crate::exec::{Connector, ExecError, HostExec};
use crate::hosts::HostSpec;
use crate::journal::{Journal, JournalError, Record, Replay};
use crate::lock::{self, LockError, LockOwner, RunLock};
use crate::state::{StateDir, StateError};

/// What every flow's run needs besides its inputs.
#[derive(Debug, Clone)]
pub struct Session {
    pub connector: Arc<dyn Connector>,
    pub cluster: Arc<dyn ClusterApi>,
    pub state_dir: PathBuf,
    pub log: Arc<dyn LogSink>,
    pub interrupts: Interrupts,
    /// Test and instrumentation hooks of the engine.
    pub hooks: Arc<dyn Hooks>,
    /// Asked before a run whose plan has steps that cannot be taken back
    /// ([`Plan::one_way`]); without it such a run is refused.
    pub confirm: Option<Arc<dyn Confirm>>,
}

/// The operator's yes to a plan with one-way steps (`--yes`, or a question on the terminal).
pub trait Confirm: Send + Sync + fmt::Debug {
    /// `Ok` to go on; `Err(why not)` stops the run before anything changed.
    fn confirm(&self, plan: &Plan, one_way: &[crate::engine::StepRef]) -> Result<(), String>;
}

/// What a flow is given while it plans and while its steps run.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Every host, connected, by its name in the hosts file.
    pub hosts: Arc<BTreeMap<String, Arc<dyn HostExec>>>,
    /// The hosts file's entries, in its order.
    pub specs: Arc<Vec<HostSpec>>,
    pub cluster: Arc<dyn ClusterApi>,
    pub state: StateDir,
    pub log: Logger,
    /// The owner of this run's locks: a step that gives a host a new disk takes its lock again.
    pub owner: LockOwner,
}

impl RunContext {
    /// The connection to `name`.
    pub fn host(&self, name: &str) -> Result<&Arc<dyn HostExec>, StepError> {
        self.hosts
            .get(name)
            .ok_or_else(|| StepError::new(format!("no connection to host {name}")))
    }

    /// Every host's entry with its connection, in the hosts file's order.
    pub fn connected(&self) -> Vec<(HostSpec, Arc<dyn HostExec>)> {
        self.specs
            .iter()
            .filter_map(|s| self.hosts.get(&s.name()).map(|h| (s.clone(), h.clone())))
            .collect()
    }
}

/// What [`Flow::plan`] found: the checks, the plan, and what the journal must keep.
#[derive(Debug, Clone)]
pub struct Planned<J> {
    pub checks: CheckReport,
    pub plan: Plan,
    pub journaled: J,
}

/// One migration job on the engine.
#[async_trait::async_trait]
pub trait Flow: Send + Sync + fmt::Debug {
    /// What the operator gives a new run.
    type Inputs: Send + Sync;
    /// What the journal keeps besides the hosts: everything [`Flow::steps`] needs for a resume
    /// or a rollback in another process. Never a secret.
    type Journaled: Serialize + DeserializeOwned + Clone + Send + Sync + fmt::Debug;
    /// What a completed run reports.
    type Report: Send;
    /// Why the flow cannot go on (its facts, its inputs, its report).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The flow's name in plans and journals (`mke3-to-mke4`).
    fn name(&self) -> &'static str;

    /// The hosts a new run connects to.
    fn hosts(&self, inputs: &Self::Inputs) -> Vec<HostSpec>;

    /// Whether a run needs hosts: a flow that works through Kubernetes APIs alone (the cloud
    /// provider migration) runs without any. `true` (the default): an empty hosts list is
    /// refused.
    fn needs_hosts(&self) -> bool {
        true
    }

    /// A resumed or rolled-back run may find hosts away (down, or with a new host key) because
    /// a step of the flow reinstalls them; they are not refused at connect time, and their
    /// steps wait for them. `false` (the default): every host must answer.
    fn hosts_may_be_away(&self) -> bool {
        false
    }

    /// Gathers facts, runs the checks and builds the plan. Only reads: a dry run stops here.
    async fn plan(
        &self,
        inputs: Self::Inputs,
        cx: &RunContext,
    ) -> Result<Planned<Self::Journaled>, Self::Error>;

    /// One implementation per step of `plan`.
    fn steps(
        &self,
        journaled: &Self::Journaled,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Vec<Arc<dyn Step>>, Self::Error>;

    /// The words of the run.
    fn texts(&self, journaled: &Self::Journaled) -> RunTexts {
        let _ = journaled;
        RunTexts::default()
    }

    /// The gate before every control-plane host, if the flow has one.
    fn gate(&self, journaled: &Self::Journaled, cx: &RunContext) -> Option<Arc<dyn Gate>> {
        let _ = (journaled, cx);
        None
    }

    /// The time limits of a run (the whole run, or a phase by name): when one runs out, the steps
    /// in flight are cut off and everything is rolled back, as after a failure. None by default.
    fn deadlines(&self, journaled: &Self::Journaled) -> Vec<Deadline> {
        let _ = journaled;
        Vec::new()
    }

    /// The report of a completed run (the flow may keep it in the state directory too).
    async fn report(
        &self,
        journaled: &Self::Journaled,
        cx: &RunContext,
    ) -> Result<Self::Report, Self::Error>;
}

/// The words of a run: the engine's, and the lifecycle's around it.
#[derive(Debug, Clone)]
pub struct RunTexts {
    pub engine: Texts,
    /// Logged when the run starts changing things (the run id is appended).
    pub starting: String,
    /// Logged when every step applied.
    pub completed: String,
    /// Before the error of a failed run.
    pub failed: String,
    /// Logged when `ferry rollback` finished cleanly.
    pub rolled_back: String,
}

impl Default for RunTexts {
    fn default() -> Self {
        Self {
            engine: Texts::default(),
            starting: "Starting".into(),
            completed: "Completed successfully".into(),
            failed: "Failed: ".into(),
            rolled_back: "Rollback from the journal completed".into(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Finish<R> {
    /// `--dry-run`: the checks and the plan; nothing was changed.
    DryRun { checks: CheckReport, plan: Plan },
    /// Every step applied.
    Completed {
        report: R,
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

/// Why a run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E: std::error::Error + 'static> {
    #[error("checks failed: {}", failures(.0))]
    Checks(CheckReport),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot connect to {host}")]
    Connect {
        host: String,
        #[source]
        source: ExecError,
    },
    #[error("the hosts file lists no host")]
    NoHosts,
    #[error("not confirmed: {0}")]
    NotConfirmed(String),
    #[error("the journal in {dir} belongs to flow {found}, not {want}")]
    WrongFlow {
        dir: PathBuf,
        found: String,
        want: &'static str,
    },
    #[error("the journal's inputs are not those of flow {flow}")]
    JournaledInputs {
        flow: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot record the run's inputs in the journal")]
    RecordInputs(#[source] serde_json::Error),
    #[error(transparent)]
    Flow(E),
}

fn failures(r: &CheckReport) -> String {
    r.failures()
        .iter()
        .map(|f| format!("{} ({}): {}", f.check, f.subject, f.message))
        .collect::<Vec<_>>()
        .join("; ")
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

/// Connects to every host concurrently; the first failure names its host.
pub async fn connect_all(
    connector: &Arc<dyn Connector>,
    hosts: &[HostSpec],
) -> Result<BTreeMap<String, Arc<dyn HostExec>>, (String, ExecError)> {
    let futs: Vec<_> = hosts
        .iter()
        .map(|h| async move { (h.name(), connector.connect(h).await) })
        .collect();
    let mut out = BTreeMap::new();
    for (name, r) in join_all(futs).await {
        out.insert(name.clone(), r.map_err(|e| (name, e))?);
    }
    Ok(out)
}

async fn context<E: std::error::Error + 'static>(
    session: &Session,
    specs: &[HostSpec],
    log: &Logger,
    owner: &LockOwner,
    away_ok: bool,
) -> Result<RunContext, RunError<E>> {
    log.info("==> Running phase: Connect to hosts");
    let hosts = if away_ok {
        connect_or_wait(&session.connector, specs, log).await?
    } else {
        connect_all(&session.connector, specs)
            .await
            .map_err(|(host, source)| RunError::Connect { host, source })?
    };
    Ok(RunContext {
        hosts: Arc::new(hosts),
        specs: Arc::new(specs.to_vec()),
        cluster: session.cluster.clone(),
        state: StateDir::new(&session.state_dir),
        log: log.clone(),
        owner: owner.clone(),
    })
}

/// [`connect_all`] for a resumed or rolled-back run of a flow that reinstalls hosts: a host
/// that does not answer, or answers with a key that is not the recorded one, may be in the
/// middle of its reinstall; it gets a connection that is made when a step first needs it (the
/// flow's steps wait for it and take its new key), and a warning.
async fn connect_or_wait<E: std::error::Error + 'static>(
    connector: &Arc<dyn Connector>,
    hosts: &[HostSpec],
    log: &Logger,
) -> Result<BTreeMap<String, Arc<dyn HostExec>>, RunError<E>> {
    let futs: Vec<_> = hosts
        .iter()
        .map(|h| async move { (h, connector.connect(h).await) })
        .collect();
    let mut out = BTreeMap::new();
    for (spec, r) in join_all(futs).await {
        let name = spec.name();
        let h = match r {
            Ok(h) => h,
            Err(
                e @ (ExecError::Unreachable { .. }
                | ExecError::Timeout { .. }
                | ExecError::HostKey { .. }),
            ) => {
                log.warn(format!(
                    "{name} does not answer as recorded ({e}); it may be in the middle of its reinstall: the run goes on and its steps wait for it"
                ));
                connector
                    .handle(spec)
                    .await
                    .map_err(|source| RunError::Connect {
                        host: name.clone(),
                        source,
                    })?
            }
            Err(source) => return Err(RunError::Connect { host: name, source }),
        };
        out.insert(name, h);
    }
    Ok(out)
}

/// A new run of `flow`: facts, checks and plan, and, unless `dry_run`, the run itself.
pub async fn start<F: Flow>(
    flow: &F,
    inputs: F::Inputs,
    session: Session,
    dry_run: bool,
) -> Result<Finish<F::Report>, RunError<F::Error>> {
    let log = Logger::new(session.log.clone());
    let specs = flow.hosts(&inputs);
    if specs.is_empty() && flow.needs_hosts() {
        return Err(RunError::NoHosts);
    }
    let run_id = new_run_id();
    let owner = LockOwner::current(&run_id);
    let state = StateDir::new(&session.state_dir);
    // A dry run takes no lock and writes nothing.
    let run_lock = if dry_run {
        None
    } else {
        state.create()?;
        let l = RunLock::acquire(state.path(), &owner)?;
        // Refuse early when an unfinished run is recorded.
        if Journal::path_in(state.path()).exists() {
            let r = Replay::read(state.path())?;
            if !r.is_finished() {
                return Err(JournalError::Unfinished {
                    path: Journal::path_in(state.path()),
                    run_id: r.run_id,
                }
                .into());
            }
        }
        Some(l)
    };
    let cx = context(&session, &specs, &log, &owner, false).await?;
    let Planned {
        checks,
        plan,
        journaled,
    } = flow.plan(inputs, &cx).await.map_err(RunError::Flow)?;
    for f in &checks.findings {
        if f.status != crate::checks::Status::Ok {
            log.warn(format!("{} ({}): {}", f.check, f.subject, f.message));
        }
    }
    let Some(run_lock) = run_lock else {
        return Ok(Finish::DryRun { checks, plan });
    };
    if !checks.passed() {
        return Err(RunError::Checks(checks));
    }
    let one_way = plan.one_way();
    if !one_way.is_empty() {
        match &session.confirm {
            Some(c) => c.confirm(&plan, &one_way).map_err(RunError::NotConfirmed)?,
            None => {
                return Err(RunError::NotConfirmed(format!(
                    "the plan has {} step(s) that cannot be taken back ({}), and nobody was asked",
                    one_way.len(),
                    one_way
                        .iter()
                        .map(|s| s.key.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    let inputs = serde_json::to_value(&journaled).map_err(RunError::RecordInputs)?;
    let journal = Journal::create(
        state.path(),
        Record::Header {
            run_id: run_id.clone(),
            flow: flow.name().into(),
            tool: format!("ferry {}", env!("CARGO_PKG_VERSION")),
            inputs,
            hosts: specs,
            plan: plan.clone(),
        },
    )?;
    let engine = engine(flow, &journaled, plan, &cx, journal, &session)?;
    if let Err(e) = lock_hosts(&cx, &owner).await {
        // Nothing was changed: the journal says so.
        let (mut j, _) = Journal::open(state.path())?;
        j.append(Record::Finished {
            outcome: "rolled-back".into(),
        })?;
        return Err(e.into());
    }
    log.info(format!(
        "{} (run {run_id})",
        flow.texts(&journaled).starting
    ));
    let mut fin = drive(flow, &journaled, engine, &cx, Mode::Run, run_lock).await?;
    if let Finish::Completed { checks: c, .. } = &mut fin {
        *c = Some(checks);
    }
    Ok(fin)
}

/// Continues the run recorded in the session's state directory.
pub async fn resume<F: Flow>(
    flow: &F,
    session: Session,
) -> Result<Finish<F::Report>, RunError<F::Error>> {
    reopen(flow, session, false).await
}

/// Undoes everything the run recorded in the session's state directory did.
pub async fn rollback<F: Flow>(
    flow: &F,
    session: Session,
) -> Result<Finish<F::Report>, RunError<F::Error>> {
    reopen(flow, session, true).await
}

/// The journal of the state directory `dir`, read without a lock: what `ferry resume` and
/// `ferry rollback` pick the flow by.
pub fn journaled_run(dir: &std::path::Path) -> Result<Replay, JournalError> {
    Replay::read(dir)
}

async fn reopen<F: Flow>(
    flow: &F,
    session: Session,
    undo: bool,
) -> Result<Finish<F::Report>, RunError<F::Error>> {
    let log = Logger::new(session.log.clone());
    let state = StateDir::new(&session.state_dir);
    state.create()?;
    let (first, replay) = Journal::open(state.path())?;
    drop(first);
    let owner = LockOwner::current(&replay.run_id);
    let run_lock = RunLock::acquire(state.path(), &owner)?;
    // Read again under the lock.
    let (journal, replay) = Journal::open(state.path())?;
    if replay.flow != flow.name() {
        return Err(RunError::WrongFlow {
            dir: state.path().to_path_buf(),
            found: replay.flow,
            want: flow.name(),
        });
    }
    let journaled: F::Journaled =
        serde_json::from_value(replay.inputs.clone()).map_err(|source| {
            RunError::JournaledInputs {
                flow: flow.name(),
                source,
            }
        })?;
    if undo {
        log.warn(format!(
            "Rolling back run {} from its journal",
            replay.run_id
        ));
    }
    let cx = context(
        &session,
        &replay.hosts,
        &log,
        &owner,
        flow.hosts_may_be_away(),
    )
    .await?;
    let engine = engine(
        flow,
        &journaled,
        replay.plan.clone(),
        &cx,
        journal,
        &session,
    )?;
    lock_hosts_tolerant(&cx, &owner, flow.hosts_may_be_away()).await?;
    let mode = if undo {
        Mode::Rollback(&replay)
    } else {
        Mode::Resume(&replay)
    };
    drive(flow, &journaled, engine, &cx, mode, run_lock).await
}

fn engine<F: Flow>(
    flow: &F,
    journaled: &F::Journaled,
    plan: Plan,
    cx: &RunContext,
    journal: Journal,
    session: &Session,
) -> Result<Engine, RunError<F::Error>> {
    let steps = flow.steps(journaled, &plan, cx).map_err(RunError::Flow)?;
    let mut engine = Engine::new(
        plan,
        steps,
        journal,
        cx.log.clone(),
        session.interrupts.clone(),
    )?
    .with_hooks(session.hooks.clone())
    .with_texts(flow.texts(journaled).engine);
    if let Some(g) = flow.gate(journaled, cx) {
        engine = engine.with_gate(g);
    }
    let deadlines = flow.deadlines(journaled);
    if !deadlines.is_empty() {
        engine = engine.with_deadlines(deadlines);
    }
    Ok(engine)
}

enum Mode<'a> {
    Run,
    Resume(&'a Replay),
    Rollback(&'a Replay),
}

async fn drive<F: Flow>(
    flow: &F,
    journaled: &F::Journaled,
    engine: Engine,
    cx: &RunContext,
    mode: Mode<'_>,
    run_lock: RunLock,
) -> Result<Finish<F::Report>, RunError<F::Error>> {
    let from_journal = matches!(mode, Mode::Rollback(_));
    let run = async {
        match mode {
            Mode::Run => engine.run().await,
            Mode::Resume(r) => engine.resume(r).await,
            Mode::Rollback(r) => engine.rollback_journal(r).await,
        }
    };
    let outcome = tokio::select! {
        o = run => o?,
        never = refresh_forever(cx) => match never {},
    };
    let texts = flow.texts(journaled);
    let log = &cx.log;
    let fin = match outcome {
        Outcome::Completed => {
            release_hosts(cx).await;
            let report = flow.report(journaled, cx).await.map_err(RunError::Flow)?;
            log.info(texts.completed);
            Finish::Completed {
                report,
                checks: None,
            }
        }
        Outcome::RolledBack { error, .. } => {
            release_hosts(cx).await;
            if from_journal {
                log.info(texts.rolled_back);
            } else {
                log.fatal(format!("{}{error}", texts.failed));
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
                "{}{error}; the rollback is incomplete ({failure}), run `ferry rollback` once the cause is fixed",
                texts.failed
            ));
            Finish::RollbackIncomplete {
                error,
                failure,
                remaining: remaining.iter().map(ToString::to_string).collect(),
            }
        }
        Outcome::Interrupted => Finish::Interrupted,
    };
    drop(run_lock);
    Ok(fin)
}

/// [`lock_hosts`], but with `away_ok` a host that does not answer (or not with its recorded
/// key) is left unlocked with a warning: the step that reinstalls it takes its lock.
async fn lock_hosts_tolerant(
    cx: &RunContext,
    owner: &LockOwner,
    away_ok: bool,
) -> Result<(), LockError> {
    if !away_ok {
        return lock_hosts(cx, owner).await;
    }
    cx.log
        .info("==> Running phase: Acquire exclusive host lock");
    for h in cx.hosts.values() {
        match lock::acquire_host(h.as_ref(), owner, lock::HOST_LOCK_STALE).await {
            Ok(_) => {}
            Err(LockError::Exec(
                e @ (ExecError::Unreachable { .. }
                | ExecError::Timeout { .. }
                | ExecError::HostKey { .. }),
            )) => cx.log.warn(format!(
                "[ssh] {}: not locked now ({e}); it is locked once it answers",
                h.host()
            )),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn lock_hosts(cx: &RunContext, owner: &LockOwner) -> Result<(), LockError> {
    cx.log
        .info("==> Running phase: Acquire exclusive host lock");
    let futs: Vec<_> = cx
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
                    cx.log.warn(format!(
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
        return Err(e);
    }
    Ok(())
}

async fn release_hosts(cx: &RunContext) {
    cx.log
        .info("==> Running phase: Release exclusive host lock");
    let futs: Vec<_> = cx
        .hosts
        .values()
        .map(|h| async move { (h.host().to_string(), lock::release_host(h.as_ref()).await) })
        .collect();
    for (h, r) in join_all(futs).await {
        if let Err(e) = r {
            cx.log
                .warn(format!("[ssh] {h}: cannot release the host lock: {e}"));
        }
    }
}

/// Refreshes the host locks until dropped; never returns. A host that cannot be refreshed is
/// named once, until it can be again (a host being reinstalled is away for minutes).
async fn refresh_forever(cx: &RunContext) -> std::convert::Infallible {
    let mut failing = std::collections::BTreeSet::new();
    loop {
        tokio::time::sleep(lock::HOST_LOCK_REFRESH).await;
        let futs: Vec<_> = cx
            .hosts
            .values()
            .map(|h| async move { (h.host().to_string(), lock::refresh_host(h.as_ref()).await) })
            .collect();
        for (host, r) in join_all(futs).await {
            match r {
                Ok(()) => {
                    failing.remove(&host);
                }
                Err(e) => {
                    if failing.insert(host) {
                        cx.log.warn(format!(
                            "cannot refresh a host lock: {e} (said once until it works again)"
                        ));
                    }
                }
            }
        }
    }
}
