//! Where a run stands, from its state directory: the flow, the phase it is in, per host what
//! is done, in flight and left, whether the run lock is held and by whom, and the commands that
//! continue it or roll it back.

use std::collections::BTreeMap;
use std::path::Path;

use ferry_core::journal::{Replay, StepState};
use ferry_core::lock::RunLock;
use serde::Serialize;

use crate::timeline::{CLUSTER_ROW, Timeline};

/// One row's steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowStatus {
    pub row: String,
    /// Applied (and not undone).
    pub done: Vec<String>,
    /// Started and not finished: running now, or cut off when ferry stopped.
    pub in_flight: Vec<String>,
    pub failed: Vec<String>,
    /// Undone by a rollback.
    pub undone: Vec<String>,
    /// Planned and not started.
    pub left: Vec<String>,
}

/// The whole status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub run_id: String,
    pub flow: String,
    /// `completed`, `rolled-back`, `rollback-incomplete`, `interrupted`, `rolling-back` or
    /// `in-progress` (which is also what a run killed mid-way looks like: see `lock`).
    pub state: String,
    /// The phase of the step that started last.
    pub phase: Option<String>,
    pub started_unix_ms: u64,
    pub elapsed_ms: u64,
    pub rows: Vec<RowStatus>,
    /// Who holds the run lock, when someone does: a ferry working on the run now.
    pub lock_holder: Option<String>,
    /// The rollback's reason, once one started.
    pub rollback_reason: Option<String>,
    /// What the operator can run next.
    pub next: Vec<String>,
}

/// Why the status cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Journal(#[from] ferry_core::journal::JournalError),
    #[error(transparent)]
    Lock(#[from] ferry_core::lock::LockError),
    #[error(transparent)]
    Timeline(#[from] crate::timeline::TimelineError),
}

impl Status {
    /// The status of the run in `dir`.
    pub fn of(dir: &Path) -> Result<Status, StatusError> {
        // one read of the journal for both views of it
        let (lines, path) = ferry_core::journal::read_lines(dir)?;
        let replay = Replay::parse(&lines, &path)?;
        let entries = ferry_core::journal::entries(&lines, &path)?;
        let timeline = Timeline::of(&entries)?;
        let lock_holder = RunLock::holder(dir)?;
        let phase_of = replay.plan.phase_of();
        let phase = replay
            .order
            .last()
            .and_then(|k| phase_of.get(k))
            .and_then(|i| replay.plan.phases.get(*i))
            .map(|p| {
                if replay.rollback_reason.is_some() {
                    p.rollback_name.clone()
                } else {
                    p.name.clone()
                }
            });
        let mut rows: BTreeMap<String, RowStatus> = timeline
            .rows
            .iter()
            .map(|r| {
                (
                    r.clone(),
                    RowStatus {
                        row: r.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        for s in replay.plan.steps() {
            let row = match s.key.host() {
                Some(h) => h.to_string(),
                None => CLUSTER_ROW.to_string(),
            };
            let r = rows.entry(row.clone()).or_insert_with(|| RowStatus {
                row,
                ..Default::default()
            });
            let id = s.key.id.clone();
            match replay.steps.get(&s.key) {
                None => r.left.push(id),
                Some(StepState::Applied { .. }) => r.done.push(id),
                Some(StepState::Started { .. } | StepState::UndoStarted { .. }) => {
                    r.in_flight.push(id)
                }
                Some(StepState::Failed { .. } | StepState::UndoFailed { .. }) => r.failed.push(id),
                Some(StepState::Undone) => r.undone.push(id),
            }
        }
        let state = match (
            &replay.finished,
            replay.interrupted,
            &replay.rollback_reason,
        ) {
            (Some(o), _, _) => o.clone(),
            (None, true, _) => "interrupted".into(),
            (None, false, Some(_)) => "rolling-back".into(),
            (None, false, None) => "in-progress".into(),
        };
        let d = dir.display();
        let next = match (state.as_str(), &lock_holder) {
            ("completed" | "rolled-back", _) => Vec::new(),
            (_, Some(holder)) => vec![format!(
                "{holder} is working on this run now: wait for it (Ctrl-C there rolls back)"
            )],
            ("rollback-incomplete", None) => vec![format!("ferry rollback --state-dir {d}")],
            _ => vec![
                format!("ferry resume --state-dir {d}"),
                format!("ferry rollback --state-dir {d}"),
            ],
        };
        let order: Vec<String> = timeline.rows.clone();
        let mut out: Vec<RowStatus> = Vec::new();
        for r in order {
            if let Some(s) = rows.remove(&r) {
                out.push(s);
            }
        }
        out.extend(rows.into_values());
        Ok(Status {
            run_id: replay.run_id.clone(),
            flow: replay.flow.clone(),
            state,
            phase,
            started_unix_ms: timeline.started_unix_ms,
            elapsed_ms: timeline.end_ms,
            rows: out,
            lock_holder,
            rollback_reason: replay.rollback_reason.clone(),
            next,
        })
    }

    /// For people.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Run {} of {}: {}, started {}, last entry {} later",
            self.run_id,
            self.flow,
            self.state,
            crate::draw::utc(self.started_unix_ms),
            crate::draw::elapsed(self.elapsed_ms)
        );
        if let Some(p) = &self.phase {
            let _ = writeln!(s, "Phase: {p}");
        }
        if let Some(r) = &self.rollback_reason {
            let _ = writeln!(s, "Rolling back because: {r}");
        }
        let _ = writeln!(
            s,
            "Run lock: {}",
            self.lock_holder
                .as_deref()
                .map(|h| format!("held by {h}"))
                .unwrap_or_else(|| "free (no ferry is working on this run)".into())
        );
        let w = self
            .rows
            .iter()
            .map(|r| r.row.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "\n{:<w$}  {:>4}  {:>9}  {:>6}  {:>6}  {:>4}  now",
            "host", "done", "in flight", "failed", "undone", "left"
        );
        for r in &self.rows {
            let now = r
                .in_flight
                .iter()
                .chain(&r.failed)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "{:<w$}  {:>4}  {:>9}  {:>6}  {:>6}  {:>4}  {}",
                r.row,
                r.done.len(),
                r.in_flight.len(),
                r.failed.len(),
                r.undone.len(),
                r.left.len(),
                if now.is_empty() {
                    r.left
                        .first()
                        .map(|l| format!("next: {l}"))
                        .unwrap_or_default()
                } else {
                    now
                }
            );
        }
        if !self.next.is_empty() {
            let _ = writeln!(s, "\nNext:");
            for n in &self.next {
                let _ = writeln!(s, "  {n}");
            }
        }
        s
    }
}
