//! A run as a timeline, from its journal alone: one row per host (and one for the cluster's
//! steps), each apply and each undo a bar from its start to its end with its outcome, the phases
//! as bands, the failure that started a rollback, the interrupts and resumes, and the steps the
//! run never reached.

use std::collections::BTreeMap;

use ferry_core::engine::{Plan, StepKey, Target};
use ferry_core::journal::{Entry, Record};
use serde::Serialize;

/// The name of the row of the cluster's steps.
pub const CLUSTER_ROW: &str = "cluster";

/// How a bar ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Applied (an apply bar) or undone (an undo bar).
    Done,
    /// The apply failed.
    Failed,
    /// Applied, then undone by the rollback (its undo is a bar of its own).
    Undone,
    /// The undo failed.
    UndoFailed,
    /// Cut off: ferry was interrupted or killed while it ran.
    Interrupted,
    /// Still running when the journal ends (a run in progress).
    InFlight,
}

/// An apply or an undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BarKind {
    Apply,
    Undo,
}

/// One step's apply or undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bar {
    pub step: String,
    /// The row: a host's name or [`CLUSTER_ROW`].
    pub row: String,
    pub phase: String,
    pub kind: BarKind,
    /// Milliseconds since the run started.
    pub start_ms: u64,
    /// `None` while it runs.
    pub end_ms: Option<u64>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A phase's span: from its first bar's start to its last bar's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Band {
    pub name: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Undo bars (the phase's rollback) or apply bars.
    pub rollback: bool,
}

/// A moment of the run worth a mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    pub at_ms: u64,
    /// `failure`, `rollback`, `interrupt` or `resume`.
    pub kind: String,
    /// The row it belongs to, when it is one step's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub text: String,
}

/// A planned step the run never started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub step: String,
    pub row: String,
    pub phase: String,
}

/// The whole picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub run_id: String,
    pub flow: String,
    pub tool: String,
    /// When the run started (milliseconds since the epoch).
    pub started_unix_ms: u64,
    /// The last line's time, since the start.
    pub end_ms: u64,
    /// `completed`, `rolled-back`, `rollback-incomplete`, `interrupted`, or `in-progress`.
    pub outcome: String,
    pub rows: Vec<String>,
    pub phases: Vec<Band>,
    pub bars: Vec<Bar>,
    pub marks: Vec<Mark>,
    pub skipped: Vec<Skipped>,
}

/// Why a journal cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("the journal does not start with a header")]
    NoHeader,
}

fn row_of(key: &StepKey) -> String {
    match &key.target {
        Target::Cluster => CLUSTER_ROW.to_string(),
        Target::Host(h) => h.clone(),
    }
}

impl Timeline {
    /// The timeline of a journal's entries ([`ferry_core::journal::read_entries`]).
    pub fn of(entries: &[Entry]) -> Result<Timeline, TimelineError> {
        let (first, rest) = entries.split_first().ok_or(TimelineError::NoHeader)?;
        let Record::Header {
            run_id,
            flow,
            tool,
            hosts,
            plan,
            ..
        } = &first.record
        else {
            return Err(TimelineError::NoHeader);
        };
        let t0 = first.unix_ms;
        let at = |e: &Entry| e.unix_ms.saturating_sub(t0);
        let phase_of = plan.phase_of();
        let phase_name = |k: &StepKey| {
            phase_of
                .get(k)
                .and_then(|i| plan.phases.get(*i))
                .map(|p| p.name.clone())
                .unwrap_or_default()
        };
        let rows = rows(plan, hosts.iter().map(|h| h.name()).collect());
        let mut bars: Vec<Bar> = Vec::new();
        // the bar each step has open, and its last apply bar
        let mut open: BTreeMap<StepKey, usize> = BTreeMap::new();
        let mut last_apply: BTreeMap<StepKey, usize> = BTreeMap::new();
        let mut marks: Vec<Mark> = Vec::new();
        let mut last_failed: Option<(u64, StepKey, String)> = None;
        let mut outcome = String::from("in-progress");
        let mut end = 0;
        let mut previous = 0;
        for e in rest {
            let t = at(e);
            end = end.max(t);
            match &e.record {
                Record::Header { .. } => {}
                Record::Started { key, .. } => {
                    close(
                        &mut bars,
                        &mut open,
                        key,
                        previous,
                        Outcome::Interrupted,
                        None,
                    );
                    bars.push(Bar {
                        step: key.id.clone(),
                        row: row_of(key),
                        phase: phase_name(key),
                        kind: BarKind::Apply,
                        start_ms: t,
                        end_ms: None,
                        outcome: Outcome::InFlight,
                        error: None,
                    });
                    open.insert(key.clone(), bars.len() - 1);
                    last_apply.insert(key.clone(), bars.len() - 1);
                    outcome = "in-progress".into();
                }
                Record::Applied { key, .. } => {
                    close(&mut bars, &mut open, key, t, Outcome::Done, None);
                }
                Record::Failed { key, error } => {
                    close(&mut bars, &mut open, key, t, Outcome::Failed, Some(error));
                    last_failed = Some((t, key.clone(), error.clone()));
                }
                Record::RollbackStarted { reason } => {
                    if let Some((ft, key, error)) = last_failed.take() {
                        marks.push(Mark {
                            at_ms: ft,
                            kind: "failure".into(),
                            row: Some(row_of(&key)),
                            step: Some(key.id.clone()),
                            text: error,
                        });
                    }
                    marks.push(Mark {
                        at_ms: t,
                        kind: "rollback".into(),
                        row: None,
                        step: None,
                        text: reason.clone(),
                    });
                }
                Record::UndoStarted { key, .. } => {
                    close(
                        &mut bars,
                        &mut open,
                        key,
                        previous,
                        Outcome::Interrupted,
                        None,
                    );
                    if let Some(i) = last_apply.get(key) {
                        if let Some(b) = bars.get_mut(*i) {
                            if b.outcome == Outcome::Done {
                                b.outcome = Outcome::Undone;
                            }
                        }
                    }
                    bars.push(Bar {
                        step: key.id.clone(),
                        row: row_of(key),
                        phase: phase_name(key),
                        kind: BarKind::Undo,
                        start_ms: t,
                        end_ms: None,
                        outcome: Outcome::InFlight,
                        error: None,
                    });
                    open.insert(key.clone(), bars.len() - 1);
                }
                Record::Undone { key } => {
                    close(&mut bars, &mut open, key, t, Outcome::Done, None);
                }
                Record::UndoFailed { key, error } => {
                    close(
                        &mut bars,
                        &mut open,
                        key,
                        t,
                        Outcome::UndoFailed,
                        Some(error),
                    );
                }
                Record::Resumed => {
                    // what ran when ferry stopped was cut off then; the journal's last line
                    // before this one is the last sign of it
                    cut_off(&mut bars, &mut open, previous);
                    marks.push(Mark {
                        at_ms: t,
                        kind: "resume".into(),
                        row: None,
                        step: None,
                        text: "ferry resume or rollback took the run over".into(),
                    });
                    outcome = "in-progress".into();
                }
                Record::Interrupted => {
                    cut_off(&mut bars, &mut open, t);
                    marks.push(Mark {
                        at_ms: t,
                        kind: "interrupt".into(),
                        row: None,
                        step: None,
                        text: "interrupted twice: stopped at once".into(),
                    });
                    outcome = "interrupted".into();
                }
                Record::Finished { outcome: o } => outcome = o.clone(),
            }
            previous = t;
        }
        let started: std::collections::BTreeSet<(String, String)> = bars
            .iter()
            .map(|b| (b.step.clone(), b.row.clone()))
            .collect();
        let skipped = plan
            .steps()
            .iter()
            .filter(|s| !started.contains(&(s.key.id.clone(), row_of(&s.key))))
            .map(|s| Skipped {
                step: s.key.id.clone(),
                row: row_of(&s.key),
                phase: phase_name(&s.key),
            })
            .collect();
        let phases = bands(plan, &bars, end);
        Ok(Timeline {
            run_id: run_id.clone(),
            flow: flow.clone(),
            tool: tool.clone(),
            started_unix_ms: t0,
            end_ms: end,
            outcome,
            rows,
            phases,
            bars,
            marks,
            skipped,
        })
    }

    /// The failure that started the rollback, if any.
    pub fn failure(&self) -> Option<&Mark> {
        self.marks.iter().find(|m| m.kind == "failure")
    }
}

fn close(
    bars: &mut [Bar],
    open: &mut BTreeMap<StepKey, usize>,
    key: &StepKey,
    t: u64,
    outcome: Outcome,
    error: Option<&String>,
) {
    if let Some(i) = open.remove(key) {
        if let Some(b) = bars.get_mut(i) {
            b.end_ms = Some(t.max(b.start_ms));
            b.outcome = outcome;
            b.error = error.cloned();
        }
    }
}

/// Every bar still open ends at `t`, cut off.
fn cut_off(bars: &mut [Bar], open: &mut BTreeMap<StepKey, usize>, t: u64) {
    let keys: Vec<StepKey> = open.keys().cloned().collect();
    for k in keys {
        close(bars, open, &k, t, Outcome::Interrupted, None);
    }
}

/// The rows: the cluster's when the plan has cluster steps, then the hosts of the hosts file in
/// its order, then any other step target in the plan's order.
fn rows(plan: &Plan, hosts: Vec<String>) -> Vec<String> {
    let steps = plan.steps();
    let mut rows = Vec::new();
    if steps.iter().any(|s| s.key.target == Target::Cluster) {
        rows.push(CLUSTER_ROW.to_string());
    }
    for h in hosts {
        if !rows.contains(&h) {
            rows.push(h);
        }
    }
    for s in steps {
        let r = row_of(&s.key);
        if !rows.contains(&r) {
            rows.push(r);
        }
    }
    rows
}

/// Each phase's span over its apply bars, and its rollback's over its undo bars.
fn bands(plan: &Plan, bars: &[Bar], end: u64) -> Vec<Band> {
    let mut out = Vec::new();
    for rollback in [false, true] {
        for p in &plan.phases {
            let kind = if rollback {
                BarKind::Undo
            } else {
                BarKind::Apply
            };
            let mine: Vec<&Bar> = bars
                .iter()
                .filter(|b| b.phase == p.name && b.kind == kind)
                .collect();
            let (Some(start), Some(stop)) = (
                mine.iter().map(|b| b.start_ms).min(),
                mine.iter().map(|b| b.end_ms.unwrap_or(end)).max(),
            ) else {
                continue;
            };
            out.push(Band {
                name: if rollback {
                    p.rollback_name.clone()
                } else {
                    p.name.clone()
                },
                start_ms: start,
                end_ms: stop,
                rollback,
            });
        }
    }
    out.sort_by_key(|b| (b.start_ms, b.end_ms));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::engine::{Group, HostChain, Phase, Reversibility, StepRef};
    use ferry_core::hosts::HostSpec;

    fn step(id: &str, target: Target) -> StepRef {
        StepRef {
            key: StepKey::new(id, target),
            description: String::new(),
            reversibility: Reversibility::Reversible,
        }
    }

    fn host(a: &str) -> HostSpec {
        serde_json::from_value(serde_json::json!({"address": a, "user": "root"})).unwrap()
    }

    fn plan() -> Plan {
        let h = |a: &str| Target::Host(a.into());
        Plan {
            flow: "test".into(),
            phases: vec![
                Phase {
                    name: "Checks".into(),
                    rollback_name: "Rollback Checks".into(),
                    groups: vec![Group::Steps {
                        steps: vec![step("backup", Target::Cluster)],
                    }],
                },
                Phase {
                    name: "Nodes".into(),
                    rollback_name: "Rollback Nodes".into(),
                    groups: vec![Group::Window {
                        limit: "2".into(),
                        width: 2,
                        order: "as listed".into(),
                        hosts: ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
                            .iter()
                            .map(|a| HostChain {
                                host: a.to_string(),
                                role: "worker".into(),
                                steps: vec![step("install", h(a)), step("start", h(a))],
                            })
                            .collect(),
                    }],
                },
            ],
        }
    }

    fn e(seq: u64, ms: u64, record: Record) -> Entry {
        Entry {
            seq,
            unix_ms: 1_000_000 + ms,
            record,
        }
    }

    fn k(id: &str, h: &str) -> StepKey {
        StepKey::new(id, Target::Host(h.into()))
    }

    #[test]
    fn a_failed_run_shows_its_bars_failure_undo_and_the_steps_never_reached() {
        let c = StepKey::new("backup", Target::Cluster);
        let null = serde_json::Value::Null;
        let entries = vec![
            e(
                1,
                0,
                Record::Header {
                    run_id: "r1".into(),
                    flow: "test".into(),
                    tool: "ferry 0.1.0".into(),
                    inputs: null.clone(),
                    hosts: vec![host("10.0.0.1"), host("10.0.0.2"), host("10.0.0.3")],
                    plan: plan(),
                },
            ),
            e(
                2,
                10,
                Record::Started {
                    key: c.clone(),
                    prepared: null.clone(),
                },
            ),
            e(
                3,
                2_000,
                Record::Applied {
                    key: c.clone(),
                    undo: null.clone(),
                },
            ),
            e(
                4,
                2_100,
                Record::Started {
                    key: k("install", "10.0.0.1"),
                    prepared: null.clone(),
                },
            ),
            e(
                5,
                2_200,
                Record::Started {
                    key: k("install", "10.0.0.2"),
                    prepared: null.clone(),
                },
            ),
            e(
                6,
                9_000,
                Record::Applied {
                    key: k("install", "10.0.0.1"),
                    undo: null.clone(),
                },
            ),
            e(
                7,
                9_500,
                Record::Failed {
                    key: k("install", "10.0.0.2"),
                    error: "k0s install: exit 1".into(),
                },
            ),
            e(
                8,
                9_600,
                Record::RollbackStarted {
                    reason: "install@host:10.0.0.2 failed".into(),
                },
            ),
            e(
                9,
                9_700,
                Record::UndoStarted {
                    key: k("install", "10.0.0.2"),
                    data: null.clone(),
                    partial: true,
                },
            ),
            e(
                10,
                9_900,
                Record::Undone {
                    key: k("install", "10.0.0.2"),
                },
            ),
            e(
                11,
                10_000,
                Record::UndoStarted {
                    key: k("install", "10.0.0.1"),
                    data: null.clone(),
                    partial: false,
                },
            ),
            e(
                12,
                12_000,
                Record::Undone {
                    key: k("install", "10.0.0.1"),
                },
            ),
            e(
                13,
                12_100,
                Record::UndoStarted {
                    key: c.clone(),
                    data: null.clone(),
                    partial: false,
                },
            ),
            e(14, 13_000, Record::Undone { key: c.clone() }),
            e(
                15,
                13_100,
                Record::Finished {
                    outcome: "rolled-back".into(),
                },
            ),
        ];
        let t = Timeline::of(&entries).unwrap();
        assert_eq!(t.rows, ["cluster", "10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(t.outcome, "rolled-back");
        assert_eq!(t.end_ms, 13_100);
        let apply: Vec<(&str, &str, Outcome)> = t
            .bars
            .iter()
            .filter(|b| b.kind == BarKind::Apply)
            .map(|b| (b.step.as_str(), b.row.as_str(), b.outcome))
            .collect();
        assert_eq!(
            apply,
            [
                ("backup", "cluster", Outcome::Undone),
                ("install", "10.0.0.1", Outcome::Undone),
                ("install", "10.0.0.2", Outcome::Failed),
            ]
        );
        // the two installs overlap: the window
        assert!(
            t.bars[1].start_ms < t.bars[2].start_ms
                && t.bars[2].start_ms < t.bars[1].end_ms.unwrap()
        );
        let undos = t.bars.iter().filter(|b| b.kind == BarKind::Undo).count();
        assert_eq!(undos, 3);
        let f = t.failure().unwrap();
        assert_eq!(
            (f.at_ms, f.row.as_deref(), f.text.as_str()),
            (9_500, Some("10.0.0.2"), "k0s install: exit 1")
        );
        assert!(
            t.marks
                .iter()
                .any(|m| m.kind == "rollback" && m.at_ms == 9_600)
        );
        let skipped: Vec<(&str, &str)> = t
            .skipped
            .iter()
            .map(|s| (s.step.as_str(), s.row.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("start", "10.0.0.1"),
                ("start", "10.0.0.2"),
                ("install", "10.0.0.3"),
                ("start", "10.0.0.3")
            ]
        );
        let names: Vec<&str> = t.phases.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            ["Checks", "Nodes", "Rollback Nodes", "Rollback Checks"]
        );
    }

    #[test]
    fn a_killed_run_resumed_shows_the_cut_off_bar_and_the_resume() {
        let null = serde_json::Value::Null;
        let entries = vec![
            e(
                1,
                0,
                Record::Header {
                    run_id: "r2".into(),
                    flow: "test".into(),
                    tool: "ferry".into(),
                    inputs: null.clone(),
                    hosts: vec![host("10.0.0.1")],
                    plan: plan(),
                },
            ),
            e(
                2,
                100,
                Record::Started {
                    key: k("install", "10.0.0.1"),
                    prepared: null.clone(),
                },
            ),
            // ferry killed here; resumed a minute later
            e(3, 60_000, Record::Resumed),
            e(
                4,
                60_100,
                Record::Started {
                    key: k("install", "10.0.0.1"),
                    prepared: null.clone(),
                },
            ),
        ];
        let t = Timeline::of(&entries).unwrap();
        assert_eq!(t.outcome, "in-progress");
        assert_eq!(t.bars[0].outcome, Outcome::Interrupted);
        assert_eq!(t.bars[0].end_ms, Some(100));
        assert_eq!(t.bars[1].outcome, Outcome::InFlight);
        assert_eq!(t.bars[1].end_ms, None);
        assert!(
            t.marks
                .iter()
                .any(|m| m.kind == "resume" && m.at_ms == 60_000)
        );
        assert!(Timeline::of(&[]).is_err());
    }
}
