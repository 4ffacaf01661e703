//! # ferry-kube-api
//!
//! The Kubernetes backend of ferry: [`KubeCluster`] implements `ferry-core`'s [`ClusterApi`]
//! with kube-rs.
//!
//! - **Kubeconfig** from a file, or from an MKE 3 client bundle directory (its `kube.yml`, with
//!   certificate paths relative to the bundle): [`KubeCluster::from_kubeconfig`]; or from the
//!   bundle's zip as the MKE 3 API hands it out, read in memory so that the admin's key never
//!   touches the disk: [`KubeCluster::from_client_bundle`].
//! - **Reads**: server version; nodes with roles (`node-role.kubernetes.io/<role>` labels and
//!   the older `kubernetes.io/role`), readiness, labels, InternalIP and kubelet version; pods
//!   with their controller and volumes; PodDisruptionBudgets. Lists follow `continue` tokens.
//! - **Drain** cordons, refuses bare pods and `emptyDir` data unless allowed (before evicting
//!   anything), leaves DaemonSet and mirror pods, evicts every other pod through the Eviction
//!   API, up to [`EVICTIONS_AT_ONCE`] at once as `kubectl drain` does (a pod waiting for its
//!   budget does not hold back the others), and retries an eviction a PodDisruptionBudget
//!   refuses (HTTP 429) until the timeout, then reports [`ClusterError::EvictionBlocked`] with
//!   the PDB's name; it returns when the evicted pods are gone.
//! - **Apply** is server-side apply with field manager `ferry` (conflicts with other managers
//!   are reported as [`ClusterError::Conflict`], not forced); kinds are resolved through API
//!   discovery. **Get** of a missing object is `None`; **delete** of a missing one is `false`.
//! - **Errors**: 401, 403, 404, 409 and timeouts map to their [`ClusterError`] kinds; 5xx and
//!   connection failures are [`ClusterError::Unavailable`].

mod pb;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::cluster::{
    CONTROLLER_KINDS, Claim, Controller, DrainOptions, DrainReport, LabelSelector, Node, ObjectRef,
    Owner, Pdb, PersistentVolume, Pod, Requirement, Resources, Taint, Toleration, Volume,
    VolumeSource,
};
use ferry_core::{ClusterApi, ClusterError};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "ferry";

/// File name of the kubeconfig inside an MKE 3 client bundle.
pub const BUNDLE_KUBECONFIG: &str = "kube.yml";

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KubeApiError {
    #[error("{path}: {problem}")]
    Kubeconfig { path: PathBuf, problem: String },
    #[error("the MKE 3 client bundle: {0}")]
    Bundle(String),
    #[error("cannot set up the Kubernetes client: {0}")]
    Client(String),
}

/// Timeouts and polling.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    pub connect_timeout: Duration,
    /// Time allowed for one answer.
    pub read_timeout: Duration,
    /// How often a drain retries a blocked eviction and checks that pods are gone.
    pub poll_interval: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// [`ClusterApi`] over kube-rs.
pub struct KubeCluster {
    client: kube::Client,
    server: String,
    options: KubeOptions,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeCluster")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Evictions of one drain in flight at once (each a request, then a retry every
/// `poll_interval` while a PodDisruptionBudget blocks it).
pub const EVICTIONS_AT_ONCE: usize = 16;

/// Where the kubeconfig of `path` is: the file itself, or `kube.yml` of a bundle directory.
pub fn kubeconfig_path(path: &Path) -> Result<PathBuf, KubeApiError> {
    let fail = |problem: String| KubeApiError::Kubeconfig {
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        })
    })?;
    if meta.is_dir() {
        let file = path.join(BUNDLE_KUBECONFIG);
        if file.is_file() {
            Ok(file)
        } else {
            Err(fail(format!(
                "is a directory without {BUNDLE_KUBECONFIG}: not an MKE 3 client bundle"
            )))
        }
    } else {
        Ok(path.to_path_buf())
    }
}

/// The `kube.yml` of a client bundle zip with every file it refers to (`certificate-authority`,
/// `client-certificate`, `client-key`) replaced by its `-data` form, from the same zip.
fn inline_bundle(zip: &[u8]) -> Result<String, KubeApiError> {
    use base64::Engine as _;
    use std::io::Read as _;
    let bad = |m: String| KubeApiError::Bundle(m);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| bad(format!("not a zip archive: {e}")))?;
    // Bundles are small (a few KiB); refuse anything that is not, rather than inflate it.
    const MAX_ENTRY: u64 = 1 << 20;
    let mut read = |name: &str| -> Result<Vec<u8>, KubeApiError> {
        let mut f = archive
            .by_name(name)
            .map_err(|_| bad(format!("{name} is not in the bundle")))?;
        if f.size() > MAX_ENTRY {
            return Err(bad(format!(
                "{name} is {} bytes, more than a bundle holds",
                f.size()
            )));
        }
        let mut v = Vec::new();
        f.by_ref()
            .take(MAX_ENTRY)
            .read_to_end(&mut v)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        Ok(v)
    };
    let text = String::from_utf8(read(BUNDLE_KUBECONFIG)?)
        .map_err(|_| bad(format!("{BUNDLE_KUBECONFIG} is not UTF-8")))?;
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| bad(format!("{BUNDLE_KUBECONFIG}: {e}")))?;
    let mut inline = |section: &str, inner: &str, keys: &[&str]| -> Result<(), KubeApiError> {
        let Some(items) = doc.get_mut(section).and_then(|v| v.as_sequence_mut()) else {
            return Ok(());
        };
        for item in items {
            let Some(map) = item.get_mut(inner).and_then(|v| v.as_mapping_mut()) else {
                continue;
            };
            for key in keys {
                let Some(file) = map.get(*key).and_then(|v| v.as_str()).map(str::to_string) else {
                    continue;
                };
                // Paths in a bundle are relative to it; an absolute one would name a file of
                // the machine that made the bundle.
                let name = file.trim_start_matches("./");
                let data = read(name)?;
                map.remove(*key);
                map.insert(
                    format!("{key}-data").into(),
                    base64::engine::general_purpose::STANDARD
                        .encode(data)
                        .into(),
                );
            }
        }
        Ok(())
    };
    inline("clusters", "cluster", &["certificate-authority"])?;
    inline("users", "user", &["client-certificate", "client-key"])?;
    serde_yaml::to_string(&doc).map_err(|e| bad(format!("{BUNDLE_KUBECONFIG}: {e}")))
}

impl KubeCluster {
    /// Reads a kubeconfig file, or the `kube.yml` of an MKE 3 client bundle directory, and uses
    /// its current context. Relative certificate paths are resolved against the file's
    /// directory.
    pub async fn from_kubeconfig(
        path: &Path,
        options: KubeOptions,
    ) -> Result<KubeCluster, KubeApiError> {
        let file = kubeconfig_path(path)?;
        let fail = |problem: String| KubeApiError::Kubeconfig {
            path: file.clone(),
            problem,
        };
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&file).map_err(|e| fail(error_chain(&e)))?;
        Self::from_parsed(kubeconfig, options, fail).await
    }

    /// Reads an MKE 3 client bundle, the zip that `GET /api/clientbundle` answers, in memory:
    /// its `kube.yml`, with the files it names (`ca.pem`, `cert.pem`, `key.pem`) put inline, so
    /// that the admin's private key never touches the disk.
    pub async fn from_client_bundle(
        zip: &[u8],
        options: KubeOptions,
    ) -> Result<KubeCluster, KubeApiError> {
        let text = inline_bundle(zip)?;
        let fail =
            |problem: String| KubeApiError::Bundle(format!("{BUNDLE_KUBECONFIG}: {problem}"));
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&text).map_err(|e| fail(error_chain(&e)))?;
        Self::from_parsed(kubeconfig, options, fail).await
    }

    /// The client of a parsed kubeconfig's current context, with `options`' timeouts; `fail`
    /// says where the kubeconfig came from.
    async fn from_parsed(
        kubeconfig: kube::config::Kubeconfig,
        options: KubeOptions,
        fail: impl Fn(String) -> KubeApiError,
    ) -> Result<KubeCluster, KubeApiError> {
        let mut config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| fail(error_chain(&e)))?;
        config.connect_timeout = Some(options.connect_timeout);
        config.read_timeout = Some(options.read_timeout);
        config.write_timeout = Some(options.read_timeout);
        Self::from_config(config, options)
    }

    /// A client for an already built kube-rs configuration.
    pub fn from_config(
        config: kube::Config,
        options: KubeOptions,
    ) -> Result<KubeCluster, KubeApiError> {
        let server = config.cluster_url.to_string();
        let client =
            kube::Client::try_from(config).map_err(|e| KubeApiError::Client(error_chain(&e)))?;
        Ok(KubeCluster {
            client,
            server,
            options,
            kinds: Mutex::new(HashMap::new()),
        })
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn map_err(&self, what: &str, e: kube::Error) -> ClusterError {
        map_error(what, e, self.options.read_timeout)
    }

    /// Every item of a list, following `continue` tokens.
    async fn list_all<K>(
        &self,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
    ) -> Result<Vec<K>, ClusterError>
    where
        K: Clone + serde::de::DeserializeOwned + fmt::Debug,
    {
        let mut items = Vec::new();
        let mut lp = lp.limit(500);
        loop {
            let list = api.list(&lp).await.map_err(|e| self.map_err(what, e))?;
            items.extend(list.items);
            match list.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => lp = lp.continue_token(&c),
                None => return Ok(items),
            }
        }
    }

    /// Sends a request made by hand (what kube's typed verbs do not cover) and reads the whole
    /// answer, whatever its status: the caller decides what a status means.
    async fn send(
        &self,
        request: http::Request<kube::client::Body>,
        what: &str,
    ) -> Result<Answer, ClusterError> {
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| self.map_err(what, e))?;
        let code = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| ClusterError::Unavailable(format!("{what}: {}", error_chain(&e))))?;
        Ok(Answer {
            code,
            content_type,
            body,
        })
    }

    /// Every pod `lp` selects, following `continue` tokens, asking for the API server's
    /// protobuf encoding first and JSON second (`pb`): the server answers with the one it has,
    /// and the answer's content type says which. A refusal is decoded from either.
    async fn list_pods(&self, lp: ListParams) -> Result<Vec<Pod>, ClusterError> {
        let what = "list pods";
        let invalid = |e: String| ClusterError::Invalid(format!("{what}: {e}"));
        let mut lp = lp.limit(500);
        let mut pods = Vec::new();
        loop {
            let request = kube::core::Request::new("/api/v1/pods")
                .list(&lp)
                .map_err(|e| invalid(e.to_string()))?;
            let (mut parts, body) = request.into_parts();
            parts.headers.insert(
                http::header::ACCEPT,
                http::HeaderValue::from_static(
                    "application/vnd.kubernetes.protobuf, application/json",
                ),
            );
            let request = http::Request::from_parts(parts, kube::client::Body::from(body));
            let answer = self.send(request, what).await?;
            let (code, bytes) = (answer.code, answer.body);
            let protobuf = answer
                .content_type
                .is_some_and(|t| t.starts_with(pb::MEDIA_TYPE));
            if !(200..300).contains(&code) {
                let message = if protobuf {
                    pb::status_message(&bytes)
                } else {
                    serde_json::from_slice::<kube::core::Status>(&bytes)
                        .ok()
                        .map(|s| s.message)
                }
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
                return Err(status_error(
                    what,
                    code,
                    &message,
                    self.options.read_timeout,
                ));
            }
            let next = if protobuf {
                let (items, next) =
                    pb::pod_list(&bytes).map_err(|e| invalid(format!("unexpected answer: {e}")))?;
                pods.extend(items.into_iter().map(pb_pod));
                next
            } else {
                let list: kube::core::ObjectList<core::Pod> = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("unexpected answer: {e}")))?;
                pods.extend(list.items.into_iter().map(to_pod));
                list.metadata.continue_.filter(|c| !c.is_empty())
            };
            match next {
                Some(c) => lp = lp.continue_token(&c),
                None => return Ok(pods),
            }
        }
    }

    /// Every controller of one kind, its counts read by `counts`: (metadata, desired, ready),
    /// with a missing desired count 1 (the API's default) and a missing ready count 0.
    async fn list_controllers<K>(
        &self,
        kind: &str,
        counts: impl Fn(K) -> (kube::api::ObjectMeta, Option<i32>, Option<i32>),
    ) -> Result<Vec<Controller>, ClusterError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = Api::all(self.client.clone());
        Ok(self
            .list_all(&api, ListParams::default(), &format!("list {kind}s"))
            .await?
            .into_iter()
            .map(|o| {
                let (meta, desired, ready) = counts(o);
                controller(kind, meta, desired.unwrap_or(1), ready.unwrap_or(0))
            })
            .collect())
    }

    /// The API resource of `api_version`/`kind` through discovery, cached.
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, bool), ClusterError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(hit) = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| match e {
                kube::Error::Discovery(_) => ClusterError::Invalid(format!(
                    "the cluster has no kind {kind} in {api_version}"
                )),
                kube::Error::Api(ref r) if r.code == 404 => {
                    ClusterError::Invalid(format!("the cluster does not serve {api_version}"))
                }
                e => self.map_err(&format!("discovery of {api_version}"), e),
            })?;
        let namespaced = matches!(caps.scope, Scope::Namespaced);
        self.kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (ar.clone(), namespaced));
        Ok((ar, namespaced))
    }

    async fn dynamic(&self, object: &ObjectRef) -> Result<Api<DynamicObject>, ClusterError> {
        let (ar, namespaced) = self.resource(&object.api_version, &object.kind).await?;
        Ok(match (namespaced, &object.namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (true, None) => {
                return Err(ClusterError::Invalid(format!(
                    "{object}: {} is namespaced but no namespace was given",
                    object.kind
                )));
            }
            (false, _) => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// Evicts `pod`, retrying while a PodDisruptionBudget blocks it, until `deadline`.
    /// Returns the pod's `namespace/name`.
    async fn evict_until_allowed(
        &self,
        pod: &Pod,
        pdbs: &[Pdb],
        deadline: Instant,
    ) -> Result<String, ClusterError> {
        loop {
            match self.evict(pod, pdbs).await? {
                None => return Ok(key(pod)),
                Some(pdb) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(ClusterError::EvictionBlocked { pod: key(pod), pdb });
                    }
                    tracing::info!(pod = %key(pod), pdb = %pdb, "eviction blocked by a PodDisruptionBudget, retrying");
                    tokio::time::sleep(self.options.poll_interval.min(deadline - now)).await;
                }
            }
        }
    }

    /// One eviction: `Ok(None)` when it went through (or the pod is gone), `Ok(Some(pdb))` when
    /// a PodDisruptionBudget refused it (429).
    async fn evict(&self, pod: &Pod, pdbs: &[Pdb]) -> Result<Option<String>, ClusterError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/eviction",
            pod.namespace, pod.name
        );
        let body = serde_json::json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace}
        });
        let what = format!("eviction of {}/{}", pod.namespace, pod.name);
        let request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(
                serde_json::to_vec(&body).unwrap_or_default(),
            ))
            .map_err(|e| ClusterError::Invalid(format!("{what}: {e}")))?;
        let answer = self.send(request, &what).await?;
        let (code, bytes) = (answer.code, answer.body);
        match code {
            200..=299 | 404 => Ok(None),
            429 => Ok(Some(blocking_pdb(&bytes, pod, pdbs))),
            _ => {
                let status: Option<kube::core::Status> = serde_json::from_slice(&bytes).ok();
                let message = status
                    .map(|s| s.message)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
                Err(status_error(
                    &what,
                    code,
                    &message,
                    self.options.read_timeout,
                ))
            }
        }
    }
}

/// A whole answer of the API server to a request made by hand.
struct Answer {
    code: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// The PDB named by a 429's `DisruptionBudget` cause, else the PDB whose selector matches.
fn blocking_pdb(body: &[u8], pod: &Pod, pdbs: &[Pdb]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let causes = v
            .pointer("/details/causes")
            .and_then(|c| c.as_array())
            .cloned()
            .unwrap_or_default();
        for c in causes {
            let message = c.get("message").and_then(|m| m.as_str()).unwrap_or("");
            if let Some(rest) = message.strip_prefix("The disruption budget ") {
                if let Some(name) = rest.split_whitespace().next() {
                    return name.to_string();
                }
            }
        }
    }
    pdbs.iter()
        .find(|p| p.covers(pod))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "<unknown>".into())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn status_error(what: &str, code: u16, message: &str, timeout: Duration) -> ClusterError {
    let detail = if message.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {message}")
    };
    match code {
        401 => ClusterError::Unauthorized,
        403 => ClusterError::Forbidden(detail),
        404 => ClusterError::NotFound(detail),
        409 => ClusterError::Conflict(detail),
        408 | 504 => ClusterError::Timeout {
            after: timeout,
            what: detail,
        },
        429 | 500..=599 => ClusterError::Unavailable(format!("HTTP {code}: {detail}")),
        _ => ClusterError::Invalid(format!("HTTP {code}: {detail}")),
    }
}

/// Maps a kube-rs error to core's kinds.
fn map_error(what: &str, e: kube::Error, timeout: Duration) -> ClusterError {
    match e {
        kube::Error::Api(r) => status_error(what, r.code, &r.message, timeout),
        kube::Error::SerdeError(e) => {
            ClusterError::Invalid(format!("{what}: unexpected answer: {e}"))
        }
        kube::Error::Auth(e) => ClusterError::Invalid(format!("{what}: credentials: {e}")),
        other => {
            let text = error_chain(&other);
            let lower = text.to_ascii_lowercase();
            if lower.contains("timed out") || lower.contains("timeout") || lower.contains("elapsed")
            {
                ClusterError::Timeout {
                    after: timeout,
                    what: what.to_string(),
                }
            } else {
                ClusterError::Unavailable(format!("{what}: {text}"))
            }
        }
    }
}

fn to_node(n: core::Node) -> Node {
    let labels: BTreeMap<String, String> = n.metadata.labels.unwrap_or_default();
    let mut roles: Vec<String> = labels
        .keys()
        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(r) = labels.get("kubernetes.io/role").filter(|r| !r.is_empty()) {
        roles.push(r.clone());
    }
    roles.sort();
    roles.dedup();
    let status = n.status.unwrap_or_default();
    let spec = n.spec;
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let internal_ip = status
        .addresses
        .unwrap_or_default()
        .into_iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address);
    Node {
        name: n.metadata.name.unwrap_or_default(),
        roles,
        ready,
        unschedulable: spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        labels,
        internal_ip,
        kubelet_version: status
            .node_info
            .map(|i| i.kubelet_version)
            .unwrap_or_default(),
        allocatable: status.allocatable.as_ref().and_then(|a| {
            // the API server accepts only quantities: one that does not read is "unknown"
            Resources::from_list(a.iter().map(|(k, q)| (k.as_str(), q.0.as_str()))).ok()
        }),
        taints: spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .into_iter()
            .map(|t| Taint {
                key: t.key,
                value: t.value.unwrap_or_default(),
                effect: t.effect,
            })
            .collect(),
    }
}

/// A resource list as [`Resources`]; a quantity the API server let through always reads.
fn resources_of(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Resources {
    list.and_then(|l| Resources::from_list(l.iter().map(|(k, q)| (k.as_str(), q.0.as_str()))).ok())
        .unwrap_or_default()
}

/// The owner reference with `controller: true`, else the first one.
fn controller_of(meta: &kube::api::ObjectMeta) -> Option<Owner> {
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
        .map(|o| Owner {
            kind: o.kind.clone(),
            name: o.name.clone(),
        })
}

fn to_pod(p: core::Pod) -> Pod {
    let owner = controller_of(&p.metadata);
    let spec = p.spec.unwrap_or_default();
    let of =
        |c: &core::Container| resources_of(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let requests = Resources::of_pod(
        spec.containers.iter().map(of),
        spec.init_containers.iter().flatten().map(of),
        resources_of(spec.overhead.as_ref()),
    );
    let volumes = spec
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            if v.empty_dir.is_some() {
                Volume::EmptyDir { name: v.name }
            } else if let Some(h) = v.host_path {
                Volume::HostPath {
                    name: v.name,
                    path: h.path,
                }
            } else if let Some(c) = v.persistent_volume_claim {
                Volume::PersistentVolumeClaim {
                    name: v.name,
                    claim: c.claim_name,
                }
            } else {
                Volume::Other { name: v.name }
            }
        })
        .collect();
    let status = p.status.unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Pod {
        namespace: p.metadata.namespace.unwrap_or_default(),
        name: p.metadata.name.unwrap_or_default(),
        node: spec.node_name,
        labels: p.metadata.labels.unwrap_or_default(),
        owner,
        volumes,
        phase: status.phase.unwrap_or_default(),
        ready,
        requests,
        node_selector: spec.node_selector.unwrap_or_default(),
        tolerations: spec
            .tolerations
            .unwrap_or_default()
            .into_iter()
            .map(|t| Toleration {
                key: t.key.unwrap_or_default(),
                operator: t.operator.unwrap_or_default(),
                value: t.value.unwrap_or_default(),
                effect: t.effect.unwrap_or_default(),
            })
            .collect(),
    }
}

/// [`to_pod`] for a pod read as protobuf.
fn pb_pod(p: pb::Pod) -> Pod {
    let meta = p.metadata.unwrap_or_default();
    let owners = &meta.owner_references;
    let owner = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
        .map(|o| Owner {
            kind: o.kind.clone().unwrap_or_default(),
            name: o.name.clone().unwrap_or_default(),
        });
    let spec = p.spec.unwrap_or_default();
    let volumes = spec
        .volumes
        .into_iter()
        .map(|v| {
            let name = v.name.unwrap_or_default();
            let source = v.volume_source.unwrap_or_default();
            if source.empty_dir.is_some() {
                Volume::EmptyDir { name }
            } else if let Some(h) = source.host_path {
                Volume::HostPath {
                    name,
                    path: h.path.unwrap_or_default(),
                }
            } else if let Some(c) = source.persistent_volume_claim {
                Volume::PersistentVolumeClaim {
                    name,
                    claim: c.claim_name.unwrap_or_default(),
                }
            } else {
                Volume::Other { name }
            }
        })
        .collect();
    let quantities = |l: &BTreeMap<String, pb::Quantity>| {
        Resources::from_list(
            l.iter()
                .map(|(k, q)| (k.as_str(), q.string.as_deref().unwrap_or("0"))),
        )
        .unwrap_or_default()
    };
    let of = |c: &pb::Container| {
        c.resources
            .as_ref()
            .map(|r| quantities(&r.requests))
            .unwrap_or_default()
    };
    let requests = Resources::of_pod(
        spec.containers.iter().map(of),
        spec.init_containers.iter().map(of),
        quantities(&spec.overhead),
    );
    let tolerations = spec
        .tolerations
        .into_iter()
        .map(|t| Toleration {
            key: t.key.unwrap_or_default(),
            operator: t.operator.unwrap_or_default(),
            value: t.value.unwrap_or_default(),
            effect: t.effect.unwrap_or_default(),
        })
        .collect();
    let status = p.status.unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .any(|c| c.r#type.as_deref() == Some("Ready") && c.status.as_deref() == Some("True"));
    Pod {
        namespace: meta.namespace.unwrap_or_default(),
        name: meta.name.unwrap_or_default(),
        // protobuf carries a string field even when it is empty (JSON leaves it out): a pod
        // not yet scheduled has the node name ""
        node: spec.node_name.filter(|n| !n.is_empty()),
        labels: meta.labels,
        owner,
        volumes,
        phase: status.phase.unwrap_or_default(),
        ready,
        requests,
        node_selector: spec.node_selector,
        tolerations,
    }
}

fn to_selector(
    s: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> LabelSelector {
    let s = s.unwrap_or_default();
    LabelSelector {
        match_labels: s.match_labels.unwrap_or_default(),
        match_expressions: s
            .match_expressions
            .unwrap_or_default()
            .into_iter()
            .map(|r| Requirement {
                key: r.key,
                operator: r.operator,
                values: r.values.unwrap_or_default(),
            })
            .collect(),
    }
}

fn controller(kind: &str, meta: kube::api::ObjectMeta, desired: i32, ready: i32) -> Controller {
    Controller {
        kind: kind.to_string(),
        owner: controller_of(&meta),
        namespace: meta.namespace.unwrap_or_default(),
        name: meta.name.unwrap_or_default(),
        desired,
        ready,
    }
}

fn to_pdb(p: PodDisruptionBudget) -> Pdb {
    let status = p.status.unwrap_or_default();
    Pdb {
        namespace: p.metadata.namespace.unwrap_or_default(),
        name: p.metadata.name.unwrap_or_default(),
        selector: to_selector(p.spec.and_then(|s| s.selector)),
        disruptions_allowed: status.disruptions_allowed,
        current_healthy: status.current_healthy,
        desired_healthy: status.desired_healthy,
        expected_pods: status.expected_pods,
    }
}

fn key(p: &Pod) -> String {
    format!("{}/{}", p.namespace, p.name)
}

#[async_trait]
impl ClusterApi for KubeCluster {
    async fn server_version(&self) -> Result<String, ClusterError> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| self.map_err("server version", e))?;
        Ok(info.git_version)
    }

    async fn nodes(&self) -> Result<Vec<Node>, ClusterError> {
        let api: Api<core::Node> = Api::all(self.client.clone());
        let mut nodes: Vec<Node> = self
            .list_all(&api, ListParams::default(), "list nodes")
            .await?
            .into_iter()
            .map(to_node)
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }

    async fn pods(&self, node: Option<&str>) -> Result<Vec<Pod>, ClusterError> {
        let lp = match node {
            Some(n) => ListParams::default().fields(&format!("spec.nodeName={n}")),
            None => ListParams::default(),
        };
        let mut pods = self.list_pods(lp).await?;
        pods.sort_by_key(key);
        Ok(pods)
    }

    async fn pdbs(&self) -> Result<Vec<Pdb>, ClusterError> {
        let api: Api<PodDisruptionBudget> = Api::all(self.client.clone());
        let mut pdbs: Vec<Pdb> = self
            .list_all(&api, ListParams::default(), "list PodDisruptionBudgets")
            .await?
            .into_iter()
            .map(to_pdb)
            .collect();
        pdbs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(pdbs)
    }

    async fn controllers(&self, kind: &str) -> Result<Vec<Controller>, ClusterError> {
        // (metadata, desired, ready) of each kind: replicas and ready replicas; a DaemonSet's
        // scheduled and ready counts; a Job's parallelism and ready pods.
        let mut v: Vec<Controller> = match kind {
            "Deployment" => {
                self.list_controllers(kind, |d: apps::Deployment| {
                    let ready = d.status.and_then(|s| s.ready_replicas);
                    (d.metadata, d.spec.and_then(|s| s.replicas), ready)
                })
                .await?
            }
            "ReplicaSet" => {
                self.list_controllers(kind, |r: apps::ReplicaSet| {
                    let ready = r.status.and_then(|s| s.ready_replicas);
                    (r.metadata, r.spec.and_then(|s| s.replicas), ready)
                })
                .await?
            }
            "StatefulSet" => {
                self.list_controllers(kind, |r: apps::StatefulSet| {
                    let ready = r.status.and_then(|s| s.ready_replicas);
                    (r.metadata, r.spec.and_then(|s| s.replicas), ready)
                })
                .await?
            }
            "ReplicationController" => {
                self.list_controllers(kind, |r: core::ReplicationController| {
                    let ready = r.status.and_then(|s| s.ready_replicas);
                    (r.metadata, r.spec.and_then(|s| s.replicas), ready)
                })
                .await?
            }
            "DaemonSet" => {
                self.list_controllers(kind, |d: apps::DaemonSet| {
                    let st = d.status.unwrap_or_default();
                    (
                        d.metadata,
                        Some(st.desired_number_scheduled),
                        Some(st.number_ready),
                    )
                })
                .await?
            }
            "Job" => {
                self.list_controllers(kind, |j: Job| {
                    let ready = j.status.and_then(|s| s.ready);
                    (j.metadata, j.spec.and_then(|s| s.parallelism), ready)
                })
                .await?
            }
            other => {
                return Err(ClusterError::Invalid(format!(
                    "{other} is not a controller kind ferry reads (one of {})",
                    CONTROLLER_KINDS.join(", ")
                )));
            }
        };
        v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(v)
    }

    async fn claims(&self) -> Result<Vec<Claim>, ClusterError> {
        let api: Api<core::PersistentVolumeClaim> = Api::all(self.client.clone());
        let mut v: Vec<Claim> = self
            .list_all(&api, ListParams::default(), "list PersistentVolumeClaims")
            .await?
            .into_iter()
            .map(|c| Claim {
                namespace: c.metadata.namespace.unwrap_or_default(),
                name: c.metadata.name.unwrap_or_default(),
                volume: c.spec.and_then(|s| s.volume_name).filter(|v| !v.is_empty()),
            })
            .collect();
        v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(v)
    }

    async fn persistent_volumes(&self) -> Result<Vec<PersistentVolume>, ClusterError> {
        let api: Api<core::PersistentVolume> = Api::all(self.client.clone());
        let mut v: Vec<PersistentVolume> = self
            .list_all(&api, ListParams::default(), "list PersistentVolumes")
            .await?
            .into_iter()
            .map(|pv| {
                let spec = pv.spec.unwrap_or_default();
                let source = if let Some(h) = spec.host_path {
                    VolumeSource::HostPath { path: h.path }
                } else if let Some(l) = spec.local {
                    VolumeSource::Local { path: l.path }
                } else {
                    VolumeSource::Other
                };
                PersistentVolume {
                    name: pv.metadata.name.unwrap_or_default(),
                    source,
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn api_servers(&self) -> Result<Vec<String>, ClusterError> {
        // The EndpointSlices of the `kubernetes` service (v1 Endpoints is deprecated since
        // 1.33); each API server adds its own address.
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), "default");
        let lp = ListParams::default().labels("kubernetes.io/service-name=kubernetes");
        let mut v: Vec<String> = self
            .list_all(&api, lp, "list EndpointSlices of default/kubernetes")
            .await?
            .into_iter()
            .flat_map(|s| s.endpoints)
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .flat_map(|e| e.addresses)
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    async fn cordon(&self, node: &str) -> Result<(), ClusterError> {
        let api: Api<core::Node> = Api::all(self.client.clone());
        api.cordon(node)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(&format!("cordon node {node}"), e))
    }

    async fn uncordon(&self, node: &str) -> Result<(), ClusterError> {
        let api: Api<core::Node> = Api::all(self.client.clone());
        api.uncordon(node)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(&format!("uncordon node {node}"), e))
    }

    async fn drain(&self, node: &str, options: &DrainOptions) -> Result<DrainReport, ClusterError> {
        let deadline = Instant::now() + options.timeout;
        self.cordon(node).await?;
        let pods = self.pods(Some(node)).await?;
        let mut report = DrainReport::default();
        let mut to_evict = Vec::new();
        let mut refused = Vec::new();
        for pod in pods {
            let owner_kind = pod.owner.as_ref().map(|o| o.kind.as_str());
            if owner_kind == Some("DaemonSet") {
                report.skipped_daemonset.push(key(&pod));
                continue;
            }
            // Mirror pods of static pods: the kubelet owns them, the API cannot evict them.
            if owner_kind == Some("Node") {
                continue;
            }
            let completed = pod.phase == "Succeeded" || pod.phase == "Failed";
            if pod.owner.is_none() && !options.force_bare_pods && !completed {
                refused.push(format!(
                    "pod {} has no controller (allow bare pods to evict it)",
                    key(&pod)
                ));
                continue;
            }
            if !options.delete_emptydir_data
                && !completed
                && pod
                    .volumes
                    .iter()
                    .any(|v| matches!(v, Volume::EmptyDir { .. }))
            {
                refused.push(format!(
                    "pod {} has emptyDir data (allow deleting emptyDir data to evict it)",
                    key(&pod)
                ));
                continue;
            }
            to_evict.push(pod);
        }
        if !refused.is_empty() {
            return Err(ClusterError::DrainRefused {
                node: node.to_string(),
                reason: refused.join("; "),
            });
        }
        let pdbs = if to_evict.is_empty() {
            Vec::new()
        } else {
            self.pdbs().await?
        };
        // Every pod at once, each retrying its own PodDisruptionBudget, as `kubectl drain` does:
        // one after another, a pod waiting for its budget (a replacement becoming ready
        // elsewhere, often tens of seconds) would hold back every pod behind it. The first
        // error ends the drain and drops the other evictions in flight.
        {
            use futures_util::stream::{self, StreamExt, TryStreamExt};
            let pdbs = &pdbs;
            // Built up front: a closure inside the stream trips async-trait's `Send` check.
            let evictions: Vec<_> = to_evict
                .iter()
                .map(|pod| self.evict_until_allowed(pod, pdbs, deadline))
                .collect();
            let evicted: Vec<String> = stream::iter(evictions)
                .buffer_unordered(EVICTIONS_AT_ONCE)
                .try_collect()
                .await?;
            report.evicted.extend(evicted);
        }
        // Wait until the evicted pods are gone from the node.
        let api: Api<core::Pod> = Api::all(self.client.clone());
        loop {
            let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
            let left: Vec<String> = self
                .list_all(&api, lp, "list pods")
                .await?
                .into_iter()
                .map(to_pod)
                .map(|p| key(&p))
                .filter(|k| report.evicted.contains(k))
                .collect();
            if left.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClusterError::Timeout {
                    after: options.timeout,
                    what: format!("drain of {node}: pods still there: {}", left.join(", ")),
                });
            }
            tokio::time::sleep(self.options.poll_interval.min(deadline - now)).await;
        }
        report.evicted.sort();
        report.skipped_daemonset.sort();
        Ok(report)
    }

    async fn apply(&self, object: &serde_json::Value) -> Result<(), ClusterError> {
        let r = ObjectRef::of(object)?;
        let api = self.dynamic(&r).await?;
        let params = PatchParams::apply(FIELD_MANAGER);
        api.patch(&r.name, &params, &Patch::Apply(object))
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(&format!("apply {r}"), e))
    }

    async fn get(&self, object: &ObjectRef) -> Result<Option<serde_json::Value>, ClusterError> {
        let api = self.dynamic(object).await?;
        let found = api
            .get_opt(&object.name)
            .await
            .map_err(|e| self.map_err(&format!("get {object}"), e))?;
        match found {
            None => Ok(None),
            Some(o) => serde_json::to_value(o)
                .map(Some)
                .map_err(|e| ClusterError::Invalid(format!("get {object}: {e}"))),
        }
    }

    async fn merge_patch(
        &self,
        object: &ObjectRef,
        patch: &serde_json::Value,
    ) -> Result<(), ClusterError> {
        let api = self.dynamic(object).await?;
        api.patch(&object.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(&format!("patch {object}"), e))
    }

    async fn apply_forced(&self, object: &serde_json::Value) -> Result<(), ClusterError> {
        let r = ObjectRef::of(object)?;
        let api = self.dynamic(&r).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&r.name, &params, &Patch::Apply(object))
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(&format!("apply {r}"), e))
    }

    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, ClusterError> {
        let (ar, namespaced) = self.resource(api_version, kind).await?;
        let api: Api<DynamicObject> = match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        };
        let mut lp = ListParams::default();
        if let Some(s) = selector.filter(|s| !s.is_empty()) {
            lp = lp.labels(s);
        }
        let items = self.list_all(&api, lp, &format!("list {kind}s")).await?;
        items
            .into_iter()
            .map(|mut o| {
                // list items come without their type; the callers read it like a get
                o.types = Some(kube::core::TypeMeta {
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                });
                serde_json::to_value(o)
                    .map_err(|e| ClusterError::Invalid(format!("list {kind}s: {e}")))
            })
            .collect()
    }

    async fn create(&self, object: &serde_json::Value) -> Result<serde_json::Value, ClusterError> {
        let api_version = object
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                ClusterError::Invalid("the object to create has no apiVersion".into())
            })?;
        let kind = object
            .get("kind")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ClusterError::Invalid("the object to create has no kind".into()))?;
        let (ar, namespaced) = self.resource(api_version, kind).await?;
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str());
        let api: Api<DynamicObject> = match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (true, None) => {
                return Err(ClusterError::Invalid(format!(
                    "create {kind}: it is namespaced but no namespace was given"
                )));
            }
            (false, _) => Api::all_with(self.client.clone(), &ar),
        };
        let mut object = object.clone();
        if object.get("metadata").is_none() {
            // a review has no metadata; the client's object type wants one
            object["metadata"] = serde_json::json!({});
        }
        let o: DynamicObject = serde_json::from_value(object)
            .map_err(|e| ClusterError::Invalid(format!("create {kind}: {e}")))?;
        let created = api
            .create(&kube::api::PostParams::default(), &o)
            .await
            .map_err(|e| self.map_err(&format!("create {kind}"), e))?;
        serde_json::to_value(created)
            .map_err(|e| ClusterError::Invalid(format!("create {kind}: {e}")))
    }

    async fn delete(&self, object: &ObjectRef) -> Result<bool, ClusterError> {
        let api = self.dynamic(object).await?;
        match api.delete(&object.name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(r)) if r.code == 404 => Ok(false),
            Err(e) => Err(self.map_err(&format!("delete {object}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod read as protobuf is the pod read as JSON: protobuf carries empty strings that JSON
    /// leaves out (an unscheduled pod's node name), and those mean "none".
    #[test]
    fn an_unscheduled_pod_read_as_protobuf_has_no_node() {
        let p = pb::Pod {
            metadata: Some(pb::ObjectMeta {
                name: Some("pending-1".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            }),
            spec: Some(pb::PodSpec {
                node_name: Some(String::new()),
                ..Default::default()
            }),
            status: Some(pb::PodStatus {
                phase: Some("Pending".into()),
                conditions: Vec::new(),
            }),
        };
        let json: core::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pending-1", "namespace": "shop"},
            "spec": {"containers": []},
            "status": {"phase": "Pending"},
        }))
        .unwrap();
        assert_eq!(pb_pod(p), to_pod(json));
    }

    /// What the scheduler reserves reads the same from protobuf and JSON: the containers'
    /// requests summed, the largest init container when it is larger, the overhead on top.
    #[test]
    fn requests_selector_and_tolerations_read_the_same_from_protobuf_and_json() {
        let q = |s: &str| pb::Quantity {
            string: Some(s.into()),
        };
        let c = |cpu: &str, mem: &str| pb::Container {
            resources: Some(pb::ResourceRequirements {
                requests: [("cpu".to_string(), q(cpu)), ("memory".to_string(), q(mem))].into(),
            }),
        };
        let p = pb::Pod {
            metadata: Some(pb::ObjectMeta {
                name: Some("db-0".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            }),
            spec: Some(pb::PodSpec {
                node_name: Some("w1".into()),
                containers: vec![c("250m", "64Mi"), c("1", "1Gi")],
                init_containers: vec![c("2", "128Mi")],
                node_selector: [("disk".to_string(), "ssd".to_string())].into(),
                tolerations: vec![pb::Toleration {
                    key: Some("dedicated".into()),
                    operator: Some("Equal".into()),
                    value: Some("db".into()),
                    effect: Some("NoSchedule".into()),
                }],
                overhead: [("cpu".to_string(), q("100m"))].into(),
                ..Default::default()
            }),
            status: None,
        };
        let json: core::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db-0", "namespace": "shop"},
            "spec": {
                "nodeName": "w1",
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
                ],
                "initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "2", "memory": "128Mi"}}}
                ],
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
                "overhead": {"cpu": "100m"}
            }
        }))
        .unwrap();
        let from_pb = pb_pod(p);
        assert_eq!(from_pb, to_pod(json));
        // cpu: max(250m + 1, 2) + 100m; memory: max(64Mi + 1Gi, 128Mi)
        assert_eq!(
            from_pb.requests,
            Resources {
                cpu_millis: 2100,
                memory_bytes: (64 << 20) + (1 << 30),
                pods: 0
            }
        );
        assert_eq!(from_pb.tolerations[0].value, "db");
    }

    #[test]
    fn node_allocatable_and_taints_are_read() {
        let n: core::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "w1"},
            "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "3900m", "memory": "7990Mi", "pods": "110",
                                        "ephemeral-storage": "50Gi"}}
        }))
        .unwrap();
        let n = to_node(n);
        assert_eq!(
            n.allocatable,
            Some(Resources {
                cpu_millis: 3900,
                memory_bytes: 7990 << 20,
                pods: 110
            })
        );
        assert_eq!(n.taints[0].key, "dedicated");
        assert_eq!(to_node(core::Node::default()).allocatable, None);
    }

    #[test]
    fn the_pdb_name_comes_from_the_disruption_budget_cause() {
        let body = br#"{"kind":"Status","code":429,"details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]}}"#;
        let pod = Pod {
            namespace: "ns".into(),
            name: "p".into(),
            node: None,
            labels: BTreeMap::new(),
            owner: None,
            volumes: Vec::new(),
            phase: "Running".into(),
            ready: true,
            ..Pod::default()
        };
        assert_eq!(blocking_pdb(body, &pod, &[]), "web-pdb");
        // Without a cause, the PDB whose selector matches.
        let mut labeled = pod.clone();
        labeled.labels.insert("app".into(), "web".into());
        let pdb = Pdb {
            namespace: "ns".into(),
            name: "by-selector".into(),
            selector: LabelSelector::labels([("app", "web")]),
            ..Pdb::default()
        };
        assert_eq!(blocking_pdb(b"{}", &labeled, &[pdb]), "by-selector");
        assert_eq!(blocking_pdb(b"{}", &pod, &[]), "<unknown>");
    }

    #[test]
    fn roles_come_from_both_label_styles() {
        let mut n = core::Node::default();
        n.metadata.labels = Some(
            [
                ("node-role.kubernetes.io/control-plane", ""),
                ("node-role.kubernetes.io/master", ""),
                ("kubernetes.io/role", "worker"),
                ("node-role.kubernetes.io/", ""),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        assert_eq!(to_node(n).roles, ["control-plane", "master", "worker"]);
    }

    #[test]
    fn status_codes_map_to_core_kinds() {
        let t = Duration::from_secs(1);
        assert_eq!(status_error("x", 401, "", t), ClusterError::Unauthorized);
        assert!(matches!(
            status_error("x", 403, "no", t),
            ClusterError::Forbidden(_)
        ));
        assert!(matches!(
            status_error("x", 404, "no", t),
            ClusterError::NotFound(_)
        ));
        assert!(matches!(
            status_error("x", 409, "no", t),
            ClusterError::Conflict(_)
        ));
        assert!(matches!(
            status_error("x", 504, "no", t),
            ClusterError::Timeout { .. }
        ));
        assert!(matches!(
            status_error("x", 503, "no", t),
            ClusterError::Unavailable(_)
        ));
        assert!(matches!(
            status_error("x", 422, "no", t),
            ClusterError::Invalid(_)
        ));
    }
}
