//! The step trait: what one planned step does on its target, and how it is undone.

use std::fmt;

use serde_json::Value;

use super::{Reversibility, StepKey};
use crate::cluster::ClusterError;
use crate::exec::ExecError;
use crate::mke3::Mke3Error;

/// Why a step (or its undo) failed. The message is a lowercase fragment that never holds a
/// secret; `transient` says whether trying again may succeed without anyone doing anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub transient: bool,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }

    /// Prefixes the message with some context.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self {
            message: format!("{what}: {}", self.message),
            transient: self.transient,
        }
    }
}

impl From<ExecError> for StepError {
    fn from(e: ExecError) -> Self {
        Self {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

impl From<ClusterError> for StepError {
    fn from(e: ClusterError) -> Self {
        Self {
            transient: e.is_transient(),
            message: format!("kubernetes: {e}"),
        }
    }
}

impl From<Mke3Error> for StepError {
    fn from(e: Mke3Error) -> Self {
        Self {
            transient: e.is_transient(),
            message: format!("mke 3: {e}"),
        }
    }
}

/// One step instance of a plan.
///
/// The engine journals the result of [`Step::prepare`] before it calls [`Step::apply`], and the
/// result of `apply` (the undo data) after it. Contract:
/// - `prepare` only reads; it records what `undo` needs to restore the state before the step.
/// - `apply` changes the target and returns the undo data (often the prepared data).
/// - `undo` restores the state before `apply`. It is **idempotent** and must also work after a
///   partial `apply` (a failure or a crash in the middle): then it gets the prepared data and
///   `partial = true`, and undoes whatever part was done, checking the current state.
#[async_trait::async_trait]
pub trait Step: Send + Sync + fmt::Debug {
    fn key(&self) -> &StepKey;

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    async fn prepare(&self) -> Result<Value, StepError> {
        Ok(Value::Null)
    }

    async fn apply(&self, prepared: &Value) -> Result<Value, StepError>;

    async fn undo(&self, data: &Value, partial: bool) -> Result<(), StepError>;
}
