//! The runner: executes a plan group by group, journals before and after every apply and undo,
//! and on a failure or the first interrupt undoes every completed step in reverse order, grouped
//! by phase, logging `Step i of n: [Rollback <phase>]`. A second interrupt stops at once and
//! leaves the journal.
//!
//! How groups run:
//! - `Steps`: one after the other.
//! - `Serial` (control plane): one host at a time, its whole chain; before each host the
//!   engine's [`Gate`] (if any) waits until every other controller is healthy.
//! - `Window` (workers): at most `width` hosts in flight; a host that finishes its chain frees
//!   its slot for the next one; no barrier between steps.
//! - `Batched`: lockstep batches with a barrier after every step (the older schedule, kept for
//!   comparison).
//!
//! A failure (or the first interrupt) stops new starts; hosts in flight finish the step they are
//! in, then everything done is rolled back.
//!
//! A [`Deadline`] that runs out stops the run too, but does not wait for the steps in flight (a
//! step that outlasts its deadline is what the deadline is for): they are cut off, journaled as
//! failed, and undone as partially applied along with everything done. The rollback itself has
//! no deadline: it runs to its end (a second interrupt still stops it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;

use super::join::join_all;
use super::log::Logger;
use super::plan::{Group, HostChain, Plan, StepRef};
use super::signals::Interrupts;
use super::step::{Step, StepError};
use super::{Reversibility, StepKey, in_step};
use crate::journal::{Journal, JournalError, Record, Replay, StepState};

/// Waits, before a control-plane host starts, until it is safe to take it out: every other
/// controller is healthy (the quorum gate). An error stops the run and rolls it back.
#[async_trait::async_trait]
pub trait Gate: Send + Sync + fmt::Debug {
    /// Returns once `host` may start; `others` are the other hosts of its serial group.
    async fn wait(&self, host: &str, others: &[String]) -> Result<(), StepError>;
}

/// Test and instrumentation hooks around every apply.
#[async_trait::async_trait]
pub trait Hooks: Send + Sync + fmt::Debug {
    /// Called before a step's `prepare`; an error fails the step before it changed anything.
    fn before_apply(&self, _key: &StepKey) -> Result<(), StepError> {
        Ok(())
    }

    /// Called after a step's apply has been journaled.
    async fn after_apply(&self, _key: &StepKey) {}
}

/// No hooks.
#[derive(Debug, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every step applied.
    Completed,
    /// A step failed (or the operator interrupted) and every completed step was undone.
    RolledBack { error: String, undone: Vec<StepKey> },
    /// The rollback stopped at `failed`; `remaining` (in undo order) are still applied.
    RollbackIncomplete {
        error: String,
        undone: Vec<StepKey>,
        failed: StepKey,
        failure: String,
        remaining: Vec<StepKey>,
    },
    /// Second interrupt: stopped at once, the journal holds what is left.
    Interrupted,
}

impl Outcome {
    /// The journal word for a finished run.
    fn word(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::RolledBack { .. } => "rolled-back",
            Outcome::RollbackIncomplete { .. } => "rollback-incomplete",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Failures of the engine itself (not of a step).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the plan names step {0} but the flow has no implementation for it")]
    MissingStep(StepKey),
    #[error("run {0} is being rolled back; finish it with `ferry rollback`")]
    RollbackInProgress(String),
    #[error("run {run_id} already finished ({outcome}); there is nothing to {what}")]
    Finished {
        run_id: String,
        outcome: String,
        what: &'static str,
    },
}

/// The words of a run, which belong to its flow (mkectl's for the MKE flow).
#[derive(Debug, Clone)]
pub struct Texts {
    /// The error of a run stopped by the first interrupt.
    pub signal_abort: String,
    /// The warning that starts a rollback after a failure, before the error.
    pub rollback_because: String,
    /// Logged when a rollback starts, after [`Texts::rollback_because`].
    pub rollback_start: Option<String>,
    /// Logged when a rollback finished cleanly.
    pub rollback_done: Option<String>,
}

impl Default for Texts {
    fn default() -> Self {
        Self {
            signal_abort: "stopped by an interrupt".into(),
            rollback_because: "Rolling back because of a failure: ".into(),
            rollback_start: None,
            rollback_done: None,
        }
    }
}

/// A completed (or partially applied) step waiting for a possible undo.
#[derive(Debug, Clone)]
struct Done {
    key: StepKey,
    phase: usize,
    data: Value,
    partial: bool,
}

/// A time limit on the run or on one of its phases, counted from when the run (or the phase)
/// starts changing things in this process (a resumed run starts its clocks again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// What the log calls it, e.g. `the node migration (--upgrade-timeout-minutes 60)`.
    pub name: String,
    pub limit: Duration,
    /// The phase it bounds, by name; `None`: the whole run.
    pub phase: Option<String>,
}

impl Deadline {
    /// The failure a run stopped by this deadline reports (and the journal keeps).
    pub fn expired(&self) -> String {
        format!(
            "deadline exceeded: {} ran longer than {}",
            self.name,
            minutes(self.limit)
        )
    }
}

/// `60 minutes`, `1 minute`, or seconds when not whole minutes.
fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    match (s % 60, s / 60) {
        (0, 1) => "1 minute".into(),
        (0, m) if m > 0 => format!("{m} minutes"),
        _ => format!("{:.1} s", d.as_secs_f64()),
    }
}

/// Runs one plan.
pub struct Engine {
    plan: Plan,
    steps: BTreeMap<StepKey, Arc<dyn Step>>,
    phase_of: BTreeMap<StepKey, usize>,
    journal: Mutex<Journal>,
    log: Logger,
    interrupts: Interrupts,
    hooks: Arc<dyn Hooks>,
    texts: Texts,
    gate: Option<Arc<dyn Gate>>,
    undo_attempts: u32,
    deadlines: Vec<Deadline>,
}

/// What the hosts in flight share: the steps done so far (in the order they finished), the
/// first failure, and what the progress display shows.
#[derive(Debug, Default)]
struct RunState {
    completed: Vec<Done>,
    failure: Option<String>,
    shown: super::log::Progress,
    /// Steps started (journaled `Started`) and not yet applied or failed: what a deadline cuts
    /// off.
    /// `(phase, undo data, partial)`: partial until the apply is journaled.
    in_flight: BTreeMap<StepKey, (usize, Value, bool)>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("flow", &self.plan.flow)
            .field("steps", &self.steps.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for `plan`, with one implementation per planned step.
    pub fn new(
        plan: Plan,
        steps: Vec<Arc<dyn Step>>,
        journal: Journal,
        log: Logger,
        interrupts: Interrupts,
    ) -> Result<Self, EngineError> {
        let steps: BTreeMap<StepKey, Arc<dyn Step>> =
            steps.into_iter().map(|s| (s.key().clone(), s)).collect();
        for s in plan.steps() {
            if !steps.contains_key(&s.key) {
                return Err(EngineError::MissingStep(s.key));
            }
        }
        let phase_of = plan.phase_of();
        Ok(Self {
            plan,
            steps,
            phase_of,
            journal: Mutex::new(journal),
            log,
            interrupts,
            hooks: Arc::new(NoHooks),
            texts: Texts::default(),
            gate: None,
            undo_attempts: 3,
            deadlines: Vec::new(),
        })
    }

    pub fn with_hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks = hooks;
        self
    }

    pub fn with_texts(mut self, texts: Texts) -> Self {
        self.texts = texts;
        self
    }

    /// The quorum gate before every host of a `Serial` group.
    pub fn with_gate(mut self, gate: Arc<dyn Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Time limits of the run and of its phases.
    pub fn with_deadlines(mut self, deadlines: Vec<Deadline>) -> Self {
        self.deadlines = deadlines;
        self
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn record(&self, r: Record) -> Result<(), JournalError> {
        match self.journal.lock() {
            Ok(mut j) => j.append(r),
            Err(poisoned) => poisoned.into_inner().append(r),
        }
    }

    fn step(&self, key: &StepKey) -> Result<&Arc<dyn Step>, EngineError> {
        self.steps
            .get(key)
            .ok_or_else(|| EngineError::MissingStep(key.clone()))
    }

    /// Runs `f` unless a second interrupt comes first (`None`).
    async fn unless_second_interrupt<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            _ = self.interrupts.wait_for(2) => None,
            v = f => Some(v),
        }
    }

    fn interrupted(&self) -> Result<Outcome, EngineError> {
        self.log
            .error("Interrupted again: stopping now. The journal is kept; run `ferry rollback` to undo what was done, or `ferry resume` to continue.");
        self.record(Record::Interrupted)?;
        Ok(Outcome::Interrupted)
    }

    /// Runs the plan from the start.
    pub async fn run(&self) -> Result<Outcome, EngineError> {
        self.execute(Vec::new(), &BTreeSet::new()).await
    }

    /// Continues the run recorded in `replay`: undoes the steps that were in the middle of being
    /// applied, then runs every step that is not applied yet.
    pub async fn resume(&self, replay: &Replay) -> Result<Outcome, EngineError> {
        if replay.is_finished() {
            return Err(EngineError::Finished {
                run_id: replay.run_id.clone(),
                outcome: replay.finished.clone().unwrap_or_default(),
                what: "resume",
            });
        }
        if replay.rollback_reason.is_some() {
            return Err(EngineError::RollbackInProgress(replay.run_id.clone()));
        }
        self.record(Record::Resumed)?;
        let mut completed = Vec::new();
        let mut in_doubt = Vec::new();
        let mut applied = BTreeSet::new();
        for key in &replay.order {
            let phase = self.phase_of.get(key).copied().unwrap_or(0);
            match replay.steps.get(key) {
                Some(StepState::Applied { undo }) => {
                    applied.insert(key.clone());
                    completed.push(Done {
                        key: key.clone(),
                        phase,
                        data: undo.clone(),
                        partial: false,
                    });
                }
                Some(s) => {
                    if let Some((data, partial)) = s.pending_undo() {
                        in_doubt.push(Done {
                            key: key.clone(),
                            phase,
                            data,
                            partial,
                        });
                    }
                }
                None => {}
            }
        }
        self.log.info(format!(
            "Resuming run {}: {} step(s) already applied",
            replay.run_id,
            applied.len()
        ));
        // Steps cut off in the middle are undone first, so that they run again from a clean
        // state.
        while let Some(d) = in_doubt.pop() {
            let step = self.step(&d.key)?.clone();
            if step.reversibility() == Reversibility::NoOp {
                continue;
            }
            if step.resumes_by_reapplying() {
                self.log.info(format!(
                    "The unfinished step {} picks up where it was cut off",
                    d.key
                ));
                continue;
            }
            self.log.info(format!(
                "Undoing the unfinished step {} before resuming",
                d.key
            ));
            self.record(Record::UndoStarted {
                key: d.key.clone(),
                data: d.data.clone(),
                partial: true,
            })?;
            let Some(r) = self
                .unless_second_interrupt(self.undo_with_retries(&step, &d))
                .await
            else {
                return self.interrupted();
            };
            match r {
                Ok(()) => self.record(Record::Undone { key: d.key.clone() })?,
                Err(e) => {
                    self.record(Record::UndoFailed {
                        key: d.key.clone(),
                        error: e.chain(),
                    })?;
                    let mut all = completed;
                    all.extend(in_doubt);
                    all.push(d);
                    return self
                        .rollback(
                            all,
                            format!("cannot clean up an unfinished step: {}", e.chain()),
                        )
                        .await;
                }
            }
        }
        self.execute(completed, &applied).await
    }

    /// Undoes everything the run recorded in `replay` did, from its journal.
    pub async fn rollback_journal(&self, replay: &Replay) -> Result<Outcome, EngineError> {
        if replay.is_finished() {
            return Err(EngineError::Finished {
                run_id: replay.run_id.clone(),
                outcome: replay.finished.clone().unwrap_or_default(),
                what: "roll back",
            });
        }
        let reason = replay
            .rollback_reason
            .clone()
            .unwrap_or_else(|| "rollback requested".to_string());
        if replay.rollback_reason.is_none() {
            self.record(Record::RollbackStarted {
                reason: reason.clone(),
            })?;
        }
        if let Some(t) = &self.texts.rollback_start {
            self.log.info(t.clone());
        }
        let entries: Vec<Done> = replay
            .to_undo()
            .into_iter()
            .map(|(key, data, partial)| Done {
                phase: self.phase_of.get(&key).copied().unwrap_or(0),
                key,
                data,
                partial,
            })
            .collect();
        self.undo_all(entries, reason).await
    }

    async fn execute(
        &self,
        completed: Vec<Done>,
        skip: &BTreeSet<StepKey>,
    ) -> Result<Outcome, EngineError> {
        let progress = Mutex::new(RunState {
            shown: super::log::Progress {
                phase: String::new(),
                done: skip.len(),
                total: self.steps.len(),
                running: Vec::new(),
                window: None,
            },
            completed,
            failure: None,
            in_flight: BTreeMap::new(),
        });
        let run_started = tokio::time::Instant::now();
        for (pi, phase) in self.plan.phases.iter().enumerate() {
            // The phase's start in the debug log: where the time of a run goes, by phase.
            self.log.debug(format!("phase started: [{}]", phase.name));
            let phase_started = tokio::time::Instant::now();
            // The first of the deadlines that bound this phase.
            let deadline = self
                .deadlines
                .iter()
                .filter_map(|d| match &d.phase {
                    None => Some((run_started + d.limit, d)),
                    Some(p) if *p == phase.name => Some((phase_started + d.limit, d)),
                    Some(_) => None,
                })
                .min_by_key(|(at, _)| *at);
            for g in &phase.groups {
                {
                    let mut p = lock(&progress);
                    p.shown.phase = phase.name.clone();
                    p.shown.window = match g {
                        Group::Window { width, .. } => Some(*width),
                        _ => None,
                    };
                }
                let group = self.group(pi, g, skip, &progress);
                let bounded = async {
                    match deadline {
                        None => Some(group.await),
                        Some((at, _)) => tokio::select! {
                            // A deadline already past starts nothing.
                            biased;
                            () = tokio::time::sleep_until(at) => None,
                            r = group => Some(r),
                        },
                    }
                };
                let Some(r) = self.unless_second_interrupt(bounded).await else {
                    return self.interrupted();
                };
                match (r, deadline) {
                    (Some(r), _) => r?,
                    (None, Some((_, d))) => self.expire(d, &progress)?,
                    (None, None) => {}
                }
                if let Some(stop) = self.stop_reason(&progress) {
                    let completed = take(&progress).completed;
                    return self.rollback(completed, stop).await;
                }
            }
        }
        if let Some(stop) = self.stop_reason(&progress) {
            // The last step finished as the operator interrupted: still roll back, as asked.
            let completed = take(&progress).completed;
            return self.rollback(completed, stop).await;
        }
        self.record(Record::Finished {
            outcome: Outcome::Completed.word().into(),
        })?;
        Ok(Outcome::Completed)
    }

    /// `d` ran out: the steps in flight were cut off; they are journaled as failed and undone
    /// first (as partially applied), and the run stops with the deadline's failure.
    fn expire(&self, d: &Deadline, p: &Mutex<RunState>) -> Result<(), EngineError> {
        let why = d.expired();
        self.log.error(format!(
            "{}: the run stops and rolls back",
            why.replacen("deadline exceeded: ", "Deadline exceeded: ", 1)
        ));
        let cut: Vec<(StepKey, (usize, Value, bool))> =
            std::mem::take(&mut lock(p).in_flight).into_iter().collect();
        for (key, (phase, data, partial)) in cut {
            if partial {
                self.log.error(format!("{key} was cut off by the deadline"));
                self.record(Record::Failed {
                    key: key.clone(),
                    error: why.clone(),
                })?;
            }
            lock(p).completed.push(Done {
                key,
                phase,
                data,
                partial,
            });
        }
        let mut g = lock(p);
        g.shown.running.clear();
        g.failure.get_or_insert(why);
        Ok(())
    }

    /// Updates the progress display.
    fn shown(&self, p: &Mutex<RunState>, f: impl FnOnce(&mut super::log::Progress)) {
        let snapshot = {
            let mut g = lock(p);
            f(&mut g.shown);
            g.shown.clone()
        };
        self.log.progress(&snapshot);
    }

    /// Why no new step may start: the first failure, or the first interrupt.
    fn stop_reason(&self, p: &Mutex<RunState>) -> Option<String> {
        let failure = lock(p).failure.clone();
        failure.or_else(|| (self.interrupts.count() >= 1).then(|| self.texts.signal_abort.clone()))
    }

    async fn group(
        &self,
        phase: usize,
        g: &Group,
        skip: &BTreeSet<StepKey>,
        p: &Mutex<RunState>,
    ) -> Result<(), EngineError> {
        match g {
            Group::Steps { steps } => self.chain(phase, steps, skip, p).await,
            Group::Serial { hosts } => {
                for h in hosts {
                    if self.stop_reason(p).is_some() {
                        break;
                    }
                    if h.steps.iter().all(|s| skip.contains(&s.key)) {
                        continue;
                    }
                    if let Some(gate) = &self.gate {
                        let others: Vec<String> = hosts
                            .iter()
                            .filter(|o| o.host != h.host)
                            .map(|o| o.host.clone())
                            .collect();
                        if let Err(e) = gate.wait(&h.host, &others).await {
                            let msg = format!(
                                "{} cannot start: the other controllers are not healthy: {}",
                                h.host,
                                e.chain()
                            );
                            self.log.error(msg.clone());
                            lock(p).failure.get_or_insert(msg);
                            break;
                        }
                    }
                    self.chain(phase, &h.steps, skip, p).await?;
                }
                Ok(())
            }
            Group::Window { width, hosts, .. } => self.window(phase, *width, hosts, skip, p).await,
            Group::Batched { batches, .. } => {
                for batch in batches {
                    let len = batch.iter().map(|h| h.steps.len()).max().unwrap_or(0);
                    for j in 0..len {
                        if self.stop_reason(p).is_some() {
                            return Ok(());
                        }
                        let wave: Vec<StepRef> = batch
                            .iter()
                            .filter_map(|h| h.steps.get(j).cloned())
                            .filter(|s| !skip.contains(&s.key))
                            .collect();
                        let futs: Vec<_> = wave
                            .iter()
                            .map(|s| self.chain(phase, std::slice::from_ref(s), skip, p))
                            .collect();
                        for r in join_all(futs).await {
                            r?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// At most `width` hosts in flight, each through its whole chain; the next host starts as
    /// soon as one finishes, unless the run is stopping.
    async fn window(
        &self,
        phase: usize,
        width: usize,
        hosts: &[HostChain],
        skip: &BTreeSet<StepKey>,
        p: &Mutex<RunState>,
    ) -> Result<(), EngineError> {
        let mut next = hosts
            .iter()
            .filter(|h| h.steps.iter().any(|s| !skip.contains(&s.key)));
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < width.max(1) && self.stop_reason(p).is_none() {
                let Some(h) = next.next() else { break };
                in_flight.push(self.chain(phase, &h.steps, skip, p));
            }
            match in_flight.next().await {
                Some(r) => r?,
                None => return Ok(()),
            }
        }
    }

    /// Runs `steps` in order; stops before a step once the run is stopping.
    async fn chain(
        &self,
        phase: usize,
        steps: &[StepRef],
        skip: &BTreeSet<StepKey>,
        p: &Mutex<RunState>,
    ) -> Result<(), EngineError> {
        for s in steps.iter().filter(|s| !skip.contains(&s.key)) {
            if self.stop_reason(p).is_some() {
                return Ok(());
            }
            self.shown(p, |v| {
                v.running.push((s.key.target.to_string(), s.key.id.clone()))
            });
            let r = self.run_step(phase, s, p).await;
            self.shown(p, |v| {
                v.running
                    .retain(|(t, id)| *id != s.key.id || *t != s.key.target.to_string());
                v.done += 1;
            });
            match r? {
                Ok(undo) => lock(p).completed.push(Done {
                    key: s.key.clone(),
                    phase,
                    data: undo,
                    partial: false,
                }),
                Err((prepared, e)) => {
                    let why = e.chain();
                    self.log.error(format!("{} failed: {why}", s.key));
                    let mut g = lock(p);
                    // A partially applied step is undone first.
                    if let Some(data) = prepared {
                        g.completed.push(Done {
                            key: s.key.clone(),
                            phase,
                            data,
                            partial: true,
                        });
                    }
                    g.failure
                        .get_or_insert_with(|| format!("failed to run step {}: {why}", s.key));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    async fn run_step(
        &self,
        phase: usize,
        s: &StepRef,
        p: &Mutex<RunState>,
    ) -> Result<Result<Value, (Option<Value>, StepError)>, EngineError> {
        let step = self.step(&s.key)?.clone();
        let key = s.key.clone();
        in_step(key.clone(), async {
            self.log.debug(format!("running {key}: {}", s.description));
            if let Err(e) = self.hooks.before_apply(&key) {
                return Ok(Err((None, e)));
            }
            let prepared = match step.prepare().await {
                Ok(p) => p,
                Err(e) => return Ok(Err((None, e))),
            };
            self.record(Record::Started {
                key: key.clone(),
                prepared: prepared.clone(),
            })?;
            lock(p)
                .in_flight
                .insert(key.clone(), (phase, prepared.clone(), true));
            match step.apply(&prepared).await {
                Ok(undo) => {
                    self.record(Record::Applied {
                        key: key.clone(),
                        undo: undo.clone(),
                    })?;
                    lock(p)
                        .in_flight
                        .insert(key.clone(), (phase, undo.clone(), false));
                    self.hooks.after_apply(&key).await;
                    lock(p).in_flight.remove(&key);
                    Ok(Ok(undo))
                }
                Err(e) => {
                    lock(p).in_flight.remove(&key);
                    self.record(Record::Failed {
                        key: key.clone(),
                        error: e.chain(),
                    })?;
                    Ok(Err((Some(prepared), e)))
                }
            }
        })
        .await
    }

    async fn rollback(&self, completed: Vec<Done>, error: String) -> Result<Outcome, EngineError> {
        self.log
            .warn(format!("{}{error}", self.texts.rollback_because));
        if let Some(t) = &self.texts.rollback_start {
            self.log.info(t.clone());
        }
        self.record(Record::RollbackStarted {
            reason: error.clone(),
        })?;
        self.undo_all(completed, error).await
    }

    async fn undo_with_retries(&self, step: &Arc<dyn Step>, d: &Done) -> Result<(), StepError> {
        let mut attempt = 1;
        loop {
            let r = in_step(d.key.clone(), step.undo(&d.data, d.partial)).await;
            match r {
                Err(e) if e.transient && attempt < self.undo_attempts => {
                    self.log.warn(format!(
                        "undo of {} failed (attempt {attempt}), retrying: {e}",
                        d.key
                    ));
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn undo_all(&self, entries: Vec<Done>, error: String) -> Result<Outcome, EngineError> {
        let mut todo: Vec<(Done, Arc<dyn Step>)> = Vec::new();
        for d in entries.into_iter().rev() {
            let step = self.step(&d.key)?.clone();
            if step.reversibility() != Reversibility::NoOp {
                todo.push((d, step));
            }
        }
        // Consecutive runs of the same phase, in undo order.
        type Items = Vec<(Done, Arc<dyn Step>)>;
        let mut groups: Vec<(usize, Items)> = Vec::new();
        for (d, s) in todo {
            match groups.last_mut() {
                Some((p, items)) if *p == d.phase => items.push((d, s)),
                _ => groups.push((d.phase, vec![(d, s)])),
            }
        }
        let n = groups.len();
        let mut undone = Vec::new();
        let mut flat_remaining: Vec<StepKey> = groups
            .iter()
            .flat_map(|(_, items)| items.iter().map(|(d, _)| d.key.clone()))
            .collect();
        flat_remaining.reverse();
        for (i, (phase, items)) in groups.into_iter().enumerate() {
            let name = self
                .plan
                .phases
                .get(phase)
                .map(|p| p.rollback_name.clone())
                .unwrap_or_else(|| format!("Rollback phase {}", phase + 1));
            self.log.info(format!("Step {} of {n}: [{name}]", i + 1));
            for (d, step) in items {
                flat_remaining.pop();
                if let Reversibility::Irreversible { why } = step.reversibility() {
                    let failure = format!("{} cannot be undone: {why}", d.key);
                    self.log.error(failure.clone());
                    self.record(Record::UndoFailed {
                        key: d.key.clone(),
                        error: failure.clone(),
                    })?;
                    let mut remaining = vec![d.key.clone()];
                    remaining.extend(flat_remaining.iter().rev().cloned());
                    return self.incomplete(error, undone, d.key, failure, remaining);
                }
                self.record(Record::UndoStarted {
                    key: d.key.clone(),
                    data: d.data.clone(),
                    partial: d.partial,
                })?;
                let Some(r) = self
                    .unless_second_interrupt(self.undo_with_retries(&step, &d))
                    .await
                else {
                    return self.interrupted();
                };
                match r {
                    Ok(()) => {
                        self.record(Record::Undone { key: d.key.clone() })?;
                        self.log.debug(format!("undid {}", d.key));
                        undone.push(d.key);
                    }
                    Err(e) => {
                        let failure = format!("undo of {} failed: {}", d.key, e.chain());
                        self.log.error(failure.clone());
                        self.record(Record::UndoFailed {
                            key: d.key.clone(),
                            error: e.chain(),
                        })?;
                        let mut remaining = vec![d.key.clone()];
                        remaining.extend(flat_remaining.iter().rev().cloned());
                        return self.incomplete(error, undone, d.key, failure, remaining);
                    }
                }
            }
            self.log.info(format!("[{name}] Completed"));
        }
        if let Some(t) = &self.texts.rollback_done {
            self.log.info(t.clone());
        }
        self.record(Record::Finished {
            outcome: "rolled-back".into(),
        })?;
        Ok(Outcome::RolledBack { error, undone })
    }

    fn incomplete(
        &self,
        error: String,
        undone: Vec<StepKey>,
        failed: StepKey,
        failure: String,
        remaining: Vec<StepKey>,
    ) -> Result<Outcome, EngineError> {
        self.log.error(format!(
            "Rollback incomplete: {} step(s) undone, {} still applied; fix the cause and run `ferry rollback` again",
            undone.len(),
            remaining.len()
        ));
        self.record(Record::Finished {
            outcome: "rollback-incomplete".into(),
        })?;
        Ok(Outcome::RollbackIncomplete {
            error,
            undone,
            failed,
            failure,
            remaining,
        })
    }
}

fn lock(p: &Mutex<RunState>) -> std::sync::MutexGuard<'_, RunState> {
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn take(p: &Mutex<RunState>) -> RunState {
    std::mem::take(&mut *lock(p))
}
