//! The step trait: what one planned step does on its target, and how it is undone.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Reversibility, StepKey};
use crate::cluster::ClusterError;
use crate::exec::ExecError;

/// Why a step (or its undo) failed: what was being done (a lowercase fragment that never holds a
/// secret) and, when another error caused it, that error as [`Error::source`]; `transient` says
/// whether trying again may succeed without anyone doing anything. [`StepError::chain`] is the
/// whole story in one line, as the journal and the log keep it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub transient: bool,
    #[source]
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
            source: None,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            ..Self::new(message)
        }
    }

    /// `message`, caused by `source` (transient when the source is).
    pub fn caused(
        message: impl Into<String>,
        source: impl Error + Send + Sync + 'static,
        transient: bool,
    ) -> Self {
        Self {
            message: message.into(),
            transient,
            source: Some(Arc::new(source)),
        }
    }

    /// Wraps the error in what was being done; the error becomes the source.
    pub fn context(self, what: impl fmt::Display) -> Self {
        let transient = self.transient;
        Self {
            message: what.to_string(),
            transient,
            source: Some(Arc::new(self)),
        }
    }

    /// The message and every cause, `a: b: c`.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// An error and every cause, `a: b: c`.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl From<ExecError> for StepError {
    fn from(e: ExecError) -> Self {
        let transient = e.is_transient();
        Self::caused("host command", e, transient)
    }
}

impl From<ClusterError> for StepError {
    fn from(e: ClusterError) -> Self {
        let transient = e.is_transient();
        Self::caused("kubernetes", e, transient)
    }
}

/// A step's undo data (or prepared data) to JSON, for the journal.
pub fn to_data<T: Serialize>(v: &T) -> Result<Value, StepError> {
    serde_json::to_value(v)
        .map_err(|e| StepError::caused("cannot record the step's undo data", e, false))
}

/// A step's undo data back from the journal: a typed struct, never loose keys.
pub fn from_data<T: DeserializeOwned>(v: &Value) -> Result<T, StepError> {
    T::deserialize(v)
        .map_err(|e| StepError::caused("the journaled undo data is not valid", e, false))
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

    /// `apply` picks up where a cut-off `apply` of its own left off (it checks what is done
    /// first): a resumed run applies it again without undoing it first. For steps whose undo
    /// would throw away work that cannot be redone cheaply, or safely (a reinstall).
    fn resumes_by_reapplying(&self) -> bool {
        false
    }
}
