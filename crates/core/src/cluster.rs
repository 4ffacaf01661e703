//! Kubernetes access as the engine and the checks need it: the [`ClusterApi`] trait.
//!
//! Narrow and domain-shaped on purpose: nodes with roles and readiness, pods with owners and
//! volumes for the safety checks, PDBs, cordon, drain through the Eviction API, server-side
//! apply, get and delete. Objects to apply are plain JSON (any kind), so the trait does not
//! depend on a Kubernetes client crate.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

// The objects as the checks see them live in the pure `ferry-safety` crate, which the checks
// read and every backend fills in; core re-exports them so that backends and flows name them
// from one place.
pub use ferry_safety::model::{
    Claim, Controller, LabelSelector, Lookup, Node, Owner, Pdb, PersistentVolume, Pod, Requirement,
    Resources, Snapshot, Taint, Toleration, Volume, VolumeSource,
};

/// The controller kinds [`ClusterApi::controllers`] lists, in the order a snapshot reads them.
pub const CONTROLLER_KINDS: [&str; 6] = [
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "ReplicationController",
    "DaemonSet",
    "Job",
];

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
/// - `controllers`, `claims`, `persistent_volumes` and `api_servers` read what is there, one
///   list each (following continuation), never one request per object.
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
    /// Every controller of `kind` (one of [`CONTROLLER_KINDS`]) in the cluster, with its owner,
    /// desired and ready counts; another kind is [`ClusterError::Invalid`].
    async fn controllers(&self, kind: &str) -> Result<Vec<Controller>, ClusterError>;
    /// Every PersistentVolumeClaim.
    async fn claims(&self) -> Result<Vec<Claim>, ClusterError>;
    /// Every PersistentVolume.
    async fn persistent_volumes(&self) -> Result<Vec<PersistentVolume>, ClusterError>;
    /// The addresses of the `default/kubernetes` endpoints: one per serving API server.
    async fn api_servers(&self) -> Result<Vec<String>, ClusterError>;
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
    /// Server-side apply that takes the fields it sets from other managers, as `kubectl apply
    /// --server-side --force-conflicts` does: for objects another tool also edits (a Rancher
    /// `Cluster`), where ferry sets values the operator chose. A `metadata.resourceVersion` in
    /// the object makes it conditional: [`ClusterError::Conflict`] when the object changed since
    /// it was read.
    async fn apply_forced(&self, object: &serde_json::Value) -> Result<(), ClusterError>;
    /// Every object of `api_version`/`kind`, in `namespace` or in all of them when `None`,
    /// matching `selector` (a label selector: `key=value`, `key!=value`, `key`, `!key`, joined by
    /// commas), following continuation. Each item carries its `apiVersion` and `kind`. A kind the
    /// cluster does not serve is [`ClusterError::Invalid`].
    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, ClusterError>;
    /// Creates `object` (a POST) and returns what the server answered: the object as stored, or
    /// for a review (`SubjectAccessReview`) the verdict in its `status`. An object that exists
    /// already is [`ClusterError::Conflict`].
    async fn create(&self, object: &serde_json::Value) -> Result<serde_json::Value, ClusterError>;
}

/// `true` when `labels` match `selector` as [`ClusterApi::list`] reads it (an empty selector
/// matches everything): the one reading of label selectors for the fakes and the doubles.
pub fn selector_matches(
    selector: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|t| {
            if let Some((k, v)) = t.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = t.split_once('=') {
                let v = v.trim_start_matches('=');
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = t.strip_prefix('!') {
                !labels.contains_key(k.trim())
            } else {
                labels.contains_key(t)
            }
        })
}

/// Reads everything the safety checks need, all lists at once. A list that fails is recorded in
/// [`Snapshot::failed`] rather than failing the whole read, so that the checks can fail closed
/// exactly where it matters; an unreachable or refusing API server ([`ClusterError::Unauthorized`],
/// [`ClusterError::Unavailable`] on the node list) is an error, because nothing could be read.
/// `etcd_members` is left as `None`: the members come from the hosts, not from the API.
pub async fn snapshot(api: &dyn ClusterApi) -> Result<Snapshot, ClusterError> {
    use futures_util::future::join_all;
    let (nodes, pods, pdbs, claims, volumes, api_servers, controllers) = tokio::join!(
        api.nodes(),
        api.pods(None),
        api.pdbs(),
        api.claims(),
        api.persistent_volumes(),
        api.api_servers(),
        join_all(CONTROLLER_KINDS.iter().map(|k| api.controllers(k))),
    );
    if let Err(e @ (ClusterError::Unauthorized | ClusterError::Unavailable(_))) = &nodes {
        return Err(e.clone());
    }
    let mut s = Snapshot::default();
    fn take<T>(s: &mut Snapshot, l: Lookup, r: Result<Vec<T>, ClusterError>) -> Vec<T> {
        r.unwrap_or_else(|e| {
            s.failed.insert(l, e.to_string());
            Vec::new()
        })
    }
    s.nodes = take(&mut s, Lookup::Nodes, nodes);
    s.pods = take(&mut s, Lookup::Pods, pods);
    s.pdbs = take(&mut s, Lookup::PodDisruptionBudgets, pdbs);
    s.claims = take(&mut s, Lookup::PersistentVolumeClaims, claims);
    s.volumes = take(&mut s, Lookup::PersistentVolumes, volumes);
    s.api_servers = take(&mut s, Lookup::ApiServers, api_servers);
    for (kind, r) in CONTROLLER_KINDS.iter().zip(controllers) {
        if let Some(l) = Lookup::of_kind(kind) {
            let mut v = take(&mut s, l, r);
            s.controllers.append(&mut v);
        }
    }
    Ok(s)
}

/// What an API server's RBAC authorizer answers to a `SubjectAccessReview`, over the RBAC objects
/// among `objects` (`(kind, namespace, object)` of `rbac.authorization.k8s.io/v1` Roles,
/// ClusterRoles and their bindings): members of `system:masters` may do anything; a rule allows
/// a request when its API group, resource, verb and, when it names some, resource name match.
/// For the fakes and the in-process server; a real server has bootstrap roles besides.
pub fn rbac_allows<'a>(
    objects: impl Iterator<Item = (&'a str, Option<&'a str>, &'a serde_json::Value)> + Clone,
    review: &serde_json::Value,
) -> bool {
    use serde_json::Value;
    fn strs(v: Option<&Value>) -> Vec<&str> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
    fn matches(list: &[&str], want: &str) -> bool {
        list.iter().any(|x| *x == "*" || *x == want)
    }
    let spec = &review["spec"];
    let user = spec["user"].as_str().unwrap_or("");
    let groups = strs(spec.get("groups"));
    if groups.contains(&"system:masters") {
        return true;
    }
    let a = &spec["resourceAttributes"];
    let field = |k: &str| a[k].as_str().unwrap_or("");
    let (namespace, verb, group, resource, name) = (
        field("namespace"),
        field("verb"),
        field("group"),
        field("resource"),
        field("name"),
    );
    let is_subject = |s: &Value| match s["kind"].as_str() {
        Some("User") => s["name"].as_str() == Some(user),
        Some("Group") => s["name"].as_str().is_some_and(|g| groups.contains(&g)),
        Some("ServiceAccount") => {
            format!(
                "system:serviceaccount:{}:{}",
                s["namespace"].as_str().unwrap_or(""),
                s["name"].as_str().unwrap_or("")
            ) == user
        }
        _ => false,
    };
    let allows = |role: &Value| {
        role["rules"].as_array().is_some_and(|rules| {
            rules.iter().any(|r| {
                let names = strs(r.get("resourceNames"));
                matches(&strs(r.get("apiGroups")), group)
                    && matches(&strs(r.get("resources")), resource)
                    && matches(&strs(r.get("verbs")), verb)
                    && (names.is_empty() || names.contains(&name))
            })
        })
    };
    objects.clone().any(|(kind, ns, binding)| {
        let in_scope = match kind {
            "ClusterRoleBinding" => true,
            "RoleBinding" => ns == Some(namespace) && !namespace.is_empty(),
            _ => false,
        };
        if !in_scope
            || !binding["subjects"]
                .as_array()
                .is_some_and(|s| s.iter().any(is_subject))
        {
            return false;
        }
        let role_kind = binding["roleRef"]["kind"].as_str().unwrap_or("");
        let role_name = binding["roleRef"]["name"].as_str().unwrap_or("");
        objects.clone().any(|(k, n, role)| {
            k == role_kind
                && role["metadata"]["name"].as_str() == Some(role_name)
                && (role_kind == "ClusterRole" || n == ns)
                && allows(role)
        })
    })
}
