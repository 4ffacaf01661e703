//! Kubernetes access as the engine and the checks need it: the [`ClusterApi`] trait.
//!
//! Narrow and domain-shaped on purpose: nodes with roles and readiness, pods with owners and
//! volumes for the safety checks, PDBs, cordon, drain through the Eviction API, server-side
//! apply, get and delete. Objects to apply are plain JSON (any kind), so the trait does not
//! depend on a Kubernetes client crate.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A node as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    /// From `node-role.kubernetes.io/<role>` labels (`master`, `control-plane`, ...).
    pub roles: Vec<String>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    pub unschedulable: bool,
    pub labels: BTreeMap<String, String>,
    /// `InternalIP` address, if reported.
    pub internal_ip: Option<String>,
    pub kubelet_version: String,
}

/// The controller that owns a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// A volume kind that matters for a drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Volume {
    EmptyDir { name: String },
    HostPath { name: String, path: String },
    PersistentVolumeClaim { name: String, claim: String },
    Other { name: String },
}

/// A pod as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `None` for a bare pod (nothing recreates it after an eviction).
    pub owner: Option<Owner>,
    pub volumes: Vec<Volume>,
    pub phase: String,
}

/// A PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    /// `matchLabels` of the selector.
    pub selector: BTreeMap<String, String>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
}

/// A reference to any object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The reference of an object to apply (JSON with apiVersion, kind and metadata.name): the one
    /// reader every backend and flow uses.
    pub fn of(object: &serde_json::Value) -> Result<Self, ClusterError> {
        let field = |ptr: &str| {
            object
                .pointer(ptr)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        };
        let missing = |f: &str| ClusterError::Invalid(format!("the object to apply has no {f}"));
        Ok(ObjectRef {
            api_version: field("/apiVersion")
                .ok_or_else(|| missing("apiVersion"))?
                .to_string(),
            kind: field("/kind").ok_or_else(|| missing("kind"))?.to_string(),
            namespace: field("/metadata/namespace").map(str::to_string),
            name: field("/metadata/name")
                .ok_or_else(|| missing("metadata.name"))?
                .to_string(),
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// How to drain a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOptions {
    /// Give up when the pods are not gone after this long.
    pub timeout: Duration,
    /// Evict pods that use `emptyDir` volumes (their data is lost).
    pub delete_emptydir_data: bool,
    /// Evict pods without a controller (nothing recreates them).
    pub force_bare_pods: bool,
}

/// What a drain did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DrainReport {
    /// `namespace/name` of the evicted pods.
    pub evicted: Vec<String>,
    /// DaemonSet pods, which a drain leaves in place.
    pub skipped_daemonset: Vec<String>,
}

/// Why a Kubernetes call failed. The engine decides on retries from the kind alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("unauthorized: the credentials were refused")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("timed out after {after:?}: {what}")]
    Timeout { after: Duration, what: String },
    /// An eviction refused because of a PodDisruptionBudget, after retrying until the timeout.
    #[error("eviction of {pod} is blocked by PodDisruptionBudget {pdb}")]
    EvictionBlocked { pod: String, pdb: String },
    /// A pod a drain must not evict without being told (bare pod, emptyDir data).
    #[error("cannot drain {node}: {reason}")]
    DrainRefused { node: String, reason: String },
    /// The API server could not be reached or answered with a server error.
    #[error("API server unavailable: {0}")]
    Unavailable(String),
    /// A request or response that does not have the expected shape.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl ClusterError {
    /// Worth retrying with backoff.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClusterError::Unavailable(_) | ClusterError::Timeout { .. } | ClusterError::Conflict(_)
        )
    }
}

/// The Kubernetes API of the cluster being migrated.
///
/// Behaviour every implementation must have (checked by the conformance suite):
/// - `cordon` / `uncordon` are idempotent; a missing node is [`ClusterError::NotFound`].
/// - `drain` cordons, then evicts every pod on the node except DaemonSet pods through the
///   Eviction API, respecting PDBs: a blocked eviction is retried until `timeout` and then
///   reported as [`ClusterError::EvictionBlocked`] naming the PDB. Bare pods and pods with
///   `emptyDir` data are refused unless the options allow them. It returns when the pods are gone.
/// - `apply` is a server-side apply with field manager `ferry`: creating or updating.
/// - `get` of a missing object is `Ok(None)`; `delete` of a missing object is `Ok(false)`;
///   `merge_patch` of a missing object is [`ClusterError::NotFound`].
#[async_trait::async_trait]
pub trait ClusterApi: Send + Sync + fmt::Debug {
    /// `gitVersion` of the API server, e.g. `v1.27.7-mirantis-1`.
    async fn server_version(&self) -> Result<String, ClusterError>;
    async fn nodes(&self) -> Result<Vec<Node>, ClusterError>;
    /// Pods on `node`, or in the whole cluster when `None`.
    async fn pods(&self, node: Option<&str>) -> Result<Vec<Pod>, ClusterError>;
    async fn pdbs(&self) -> Result<Vec<Pdb>, ClusterError>;
    async fn cordon(&self, node: &str) -> Result<(), ClusterError>;
    async fn uncordon(&self, node: &str) -> Result<(), ClusterError>;
    async fn drain(&self, node: &str, options: &DrainOptions) -> Result<DrainReport, ClusterError>;
    /// Server-side apply of one object (JSON with apiVersion, kind and metadata).
    async fn apply(&self, object: &serde_json::Value) -> Result<(), ClusterError>;
    async fn get(&self, object: &ObjectRef) -> Result<Option<serde_json::Value>, ClusterError>;
    /// Deletes `object`; `Ok(false)` when it did not exist.
    async fn delete(&self, object: &ObjectRef) -> Result<bool, ClusterError>;
    /// A JSON merge patch (RFC 7386: `null` removes a key) of an existing object, by no field
    /// manager: what sets a Node's labels and taints back to what they were, whoever added the
    /// others. A missing object is [`ClusterError::NotFound`].
    async fn merge_patch(
        &self,
        object: &ObjectRef,
        patch: &serde_json::Value,
    ) -> Result<(), ClusterError>;
}
