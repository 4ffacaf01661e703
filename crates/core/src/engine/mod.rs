//! The migration engine: a [`plan::Plan`] of phases and steps, run by [`runner::Engine`] with
//! control-plane hosts one at a time behind a quorum gate and workers in a sliding window,
//! journaled before and after every apply and undo, rolled back in reverse order grouped by
//! phase on any failure or on the first interrupt.
//!
//! The engine knows no flow: a flow builds the plan and hands the engine one [`step::Step`]
//! implementation per planned step (see [`crate::run`]).

pub mod batching;
pub mod join;
pub mod log;
pub mod plan;
pub mod runner;
pub mod signals;
pub mod step;

#[cfg(test)]
mod runner_tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use batching::{MaxUnavailable, slowest_first};
pub use log::{Level, LogLine, LogSink, Logger, MemoryLog, Progress};
pub use plan::{Group, HostChain, Phase, Plan, StepRef};
pub use runner::{Deadline, Engine, EngineError, Gate, Hooks, NoHooks, Outcome, Texts};
pub use signals::Interrupts;
pub use step::{Step, StepError, from_data, to_data};

/// What a step acts on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The cluster as a whole (its APIs, or the local machine).
    Cluster,
    /// One host, by its name in the hosts file.
    Host(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Cluster => f.write_str("cluster"),
            Target::Host(h) => write!(f, "host:{h}"),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "cluster" {
            Ok(Target::Cluster)
        } else if let Some(h) = s.strip_prefix("host:") {
            if h.is_empty() {
                Err("empty host name in target".into())
            } else {
                Ok(Target::Host(h.to_string()))
            }
        } else {
            Err(format!(
                "invalid target {s:?}: expected `cluster` or `host:<name>`"
            ))
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The identity of one step instance: a stable step id (`node.drain`) on a target. Written
/// as `<id>@<target>` in journals and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepKey {
    pub id: String,
    pub target: Target,
}

impl StepKey {
    pub fn new(id: impl Into<String>, target: Target) -> Self {
        Self {
            id: id.into(),
            target,
        }
    }

    /// The host the step acts on, if any.
    pub fn host(&self) -> Option<&str> {
        match &self.target {
            Target::Host(h) => Some(h),
            Target::Cluster => None,
        }
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.target)
    }
}

impl FromStr for StepKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, target) = s
            .split_once('@')
            .ok_or_else(|| format!("invalid step key {s:?}: expected `<id>@<target>`"))?;
        if id.is_empty() {
            return Err(format!("invalid step key {s:?}: empty id"));
        }
        Ok(StepKey::new(id, target.parse()?))
    }
}

impl Serialize for StepKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether and how a step can be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reversibility {
    /// `undo` restores the state before `apply`.
    Reversible,
    /// Cannot be undone; a rollback past it is incomplete and says why.
    Irreversible { why: String },
    /// Changes nothing that needs undoing (reads, local artifacts).
    NoOp,
    /// The change itself cannot be taken back (a reinstalled disk), so its undo brings the
    /// target back into service in its new state instead: a rollback rolls this target
    /// forward and the others back. A run whose plan has such a step needs the operator's
    /// confirmation.
    OneWay { why: String },
}

impl fmt::Display for Reversibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reversibility::Reversible => f.write_str("reversible"),
            Reversibility::Irreversible { why } => write!(f, "irreversible: {why}"),
            Reversibility::NoOp => f.write_str("no-op"),
            Reversibility::OneWay { why } => write!(f, "one-way: {why}"),
        }
    }
}

tokio::task_local! {
    static CURRENT_STEP: StepKey;
}

/// The step whose `prepare`, `apply` or `undo` is running in this task, if any. Fakes use it to
/// inject faults "during step X"; real backends may use it to tag their debug logs.
pub fn current_step() -> Option<StepKey> {
    CURRENT_STEP.try_with(Clone::clone).ok()
}

/// Runs `fut` with [`current_step`] returning `key`.
pub async fn in_step<F: std::future::Future>(key: StepKey, fut: F) -> F::Output {
    CURRENT_STEP.scope(key, fut).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for s in ["node.drain@host:10.0.0.1", "flow.export@cluster"] {
            let k: StepKey = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
            let j = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<StepKey>(&j).unwrap(), k);
        }
        assert!("nope".parse::<StepKey>().is_err());
        assert!("x@host:".parse::<StepKey>().is_err());
        assert!("x@elsewhere".parse::<StepKey>().is_err());
    }
}
