//! An in-process Kubernetes API server for tests (the `testing` feature): exactly the endpoints
//! `KubeCluster` uses, with the real JSON shapes of the Kubernetes API.
//!
//! - `GET /version`; discovery `GET /api/v1` and `GET /apis/{group}/{version}` for a fixed set
//!   of kinds (ConfigMap, Namespace, Secret, ServiceAccount, Node, Pod, ClusterRole,
//!   ClusterRoleBinding, Role, RoleBinding, Deployment, DaemonSet, PodDisruptionBudget);
//! - list (with `fieldSelector=spec.nodeName=<node>` and `metadata.name=<name>`, `limit` and
//!   `continue`), get, delete,
//!   JSON merge patch and server-side apply (`application/apply-patch+yaml`, `fieldManager`
//!   required, recorded in `metadata.managedFields`) of any of those kinds;
//! - `POST .../pods/{name}/eviction` with the PodDisruptionBudget logic of the API server: a pod
//!   covered by a PDB with `disruptionsAllowed` 0 gets **429** with the `DisruptionBudget` cause
//!   naming the PDB; a successful eviction takes one allowed disruption and deletes the pod;
//!   a pod covered by two PDBs gets 500; completed pods bypass PDBs; with
//!   [`KubeServer::heal_disruptions_after`] the disruption controller gives the disruption back
//!   that long after the eviction (the evicted pod's replacement became ready elsewhere);
//! - bearer-token auth (401 `Status` otherwise) and injectable faults ([`KubeFault`]): a status
//!   code with a `Status` body, or a delay.
//!
//! Errors are `Status` objects (`{"kind":"Status","status":"Failure","reason":...,"code":...}`).
//! Plain HTTP by default; TLS with a given rustls server configuration.

pub mod kubean;
pub mod rancher;
pub mod real;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferry_core::cluster::{Node, Pdb, Pod, Resources, Taint, Toleration, Volume};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The bearer token the server accepts.
pub const TOKEN: &str = "ferry-test-token";

/// What the server holds at start.
#[derive(Debug, Clone, Default)]
pub struct KubeSeed {
    /// `gitVersion` of `/version`.
    pub version: String,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
}

/// An injected fault: requests with this method (any when `None`) whose path starts with
/// `path` get `status` (with a `Status` body) or wait `delay` first, `times` times.
#[derive(Debug, Clone)]
pub struct KubeFault {
    pub method: Option<String>,
    pub path: String,
    pub status: Option<u16>,
    pub delay: Option<Duration>,
    pub times: u32,
}

impl KubeFault {
    /// Every matching request gets `status`, once.
    pub fn status(path: &str, status: u16) -> KubeFault {
        KubeFault {
            method: None,
            path: path.into(),
            status: Some(status),
            delay: None,
            times: 1,
        }
    }
    /// Every matching request waits `delay`, once.
    pub fn delay(path: &str, delay: Duration) -> KubeFault {
        KubeFault {
            method: None,
            path: path.into(),
            status: None,
            delay: Some(delay),
            times: 1,
        }
    }
    pub fn method(mut self, m: &str) -> KubeFault {
        self.method = Some(m.into());
        self
    }
    pub fn times(mut self, n: u32) -> KubeFault {
        self.times = n;
        self
    }
}

/// (api version, plural, kind, namespaced)
const KINDS: &[(&str, &str, &str, bool)] = &[
    ("v1", "configmaps", "ConfigMap", true),
    ("v1", "namespaces", "Namespace", false),
    ("v1", "secrets", "Secret", true),
    ("v1", "serviceaccounts", "ServiceAccount", true),
    ("v1", "nodes", "Node", false),
    ("v1", "pods", "Pod", true),
    (
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", true),
    (
        "authorization.k8s.io/v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        "RoleBinding",
        true,
    ),
    (
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
    ),
    (
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
    ),
    ("v1", "persistentvolumes", "PersistentVolume", false),
    ("apps/v1", "deployments", "Deployment", true),
    ("apps/v1", "replicasets", "ReplicaSet", true),
    ("apps/v1", "statefulsets", "StatefulSet", true),
    ("apps/v1", "daemonsets", "DaemonSet", true),
    ("batch/v1", "jobs", "Job", true),
    (
        "discovery.k8s.io/v1",
        "endpointslices",
        "EndpointSlice",
        true,
    ),
    (
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
    ),
];

type Key = (String, String, String, String); // (api version, plural, namespace, name)

#[derive(Debug)]
struct State {
    objects: BTreeMap<Key, Value>,
    version: String,
    faults: Vec<KubeFault>,
    log: Vec<String>,
    next_uid: u64,
    resource_version: u64,
    /// See [`KubeServer::heal_disruptions_after`].
    heal_after: Option<Duration>,
    /// Disruptions to give back: the PDB and when.
    heals: Vec<(Key, Instant)>,
}

impl State {
    /// Gives back the disruptions whose time has come.
    fn heal(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.heals.drain(..).partition(|(_, at)| *at <= now);
        self.heals = later;
        for (k, _) in due {
            if let Some(pdb) = self.objects.get_mut(&k) {
                let allowed = pdb
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                pdb["status"]["disruptionsAllowed"] = json!(allowed + 1);
            }
        }
    }
}

/// A running server. Dropping it stops it.
#[derive(Debug)]
pub struct KubeServer {
    addr: SocketAddr,
    tls: bool,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn owner_api_version(kind: &str) -> &'static str {
    match kind {
        "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Deployment" => "apps/v1",
        "Job" => "batch/v1",
        _ => "v1",
    }
}

/// The Kubernetes JSON of a node.
pub fn node_json(n: &Node) -> Value {
    let mut labels: Map<String, Value> = n
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    for r in &n.roles {
        labels
            .entry(format!("node-role.kubernetes.io/{r}"))
            .or_insert(json!(""));
    }
    let mut addresses = Vec::new();
    if let Some(ip) = &n.internal_ip {
        addresses.push(json!({"type": "InternalIP", "address": ip}));
    }
    addresses.push(json!({"type": "Hostname", "address": n.name}));
    let mut spec = json!({"podCIDR": "10.244.0.0/24"});
    if n.unschedulable {
        spec["unschedulable"] = json!(true);
    }
    if !n.taints.is_empty() {
        spec["taints"] = taints_json(&n.taints);
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name, "labels": labels},
        "spec": spec,
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "message": "kubelet has sufficient memory available",
                 "lastHeartbeatTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "Ready", "status": if n.ready { "True" } else { "False" },
                 "reason": if n.ready { "KubeletReady" } else { "KubeletNotReady" },
                 "message": if n.ready { "kubelet is posting ready status" } else { "container runtime is down" },
                 "lastHeartbeatTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}
            ],
            "addresses": addresses,
            "allocatable": n.allocatable.map(|a| resources_json(&a, true)),
            "nodeInfo": {
                "architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "containerd://1.7.20",
                "kernelVersion": "5.15.0", "kubeProxyVersion": n.kubelet_version,
                "kubeletVersion": n.kubelet_version, "machineID": "m", "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.4 LTS", "systemUUID": "s"
            }
        }
    })
}

/// A node's `spec.taints`.
pub fn taints_json(taints: &[Taint]) -> Value {
    taints
        .iter()
        .map(|t| {
            let mut v = json!({"key": t.key, "effect": t.effect});
            if !t.value.is_empty() {
                v["value"] = json!(t.value);
            }
            v
        })
        .collect()
}

/// A resource list as the API server writes it (`cpu` in millicores, the rest in units);
/// `pods` only for a node.
pub fn resources_json(r: &Resources, node: bool) -> Value {
    let mut v = json!({
        "cpu": format!("{}m", r.cpu_millis),
        "memory": r.memory_bytes.to_string(),
    });
    if node {
        v["pods"] = json!(r.pods.to_string());
    }
    v
}

/// A pod's `spec.tolerations`.
pub fn tolerations_json(tolerations: &[Toleration]) -> Value {
    tolerations
        .iter()
        .map(|t| {
            let mut v = serde_json::Map::new();
            for (k, val) in [
                ("key", &t.key),
                ("operator", &t.operator),
                ("value", &t.value),
                ("effect", &t.effect),
            ] {
                if !val.is_empty() {
                    v.insert(k.into(), json!(val));
                }
            }
            Value::Object(v)
        })
        .collect()
}

/// The Kubernetes JSON of a pod.
pub fn pod_json(p: &Pod) -> Value {
    let volumes: Vec<Value> = p
        .volumes
        .iter()
        .map(|v| match v {
            Volume::EmptyDir { name } => json!({"name": name, "emptyDir": {}}),
            Volume::HostPath { name, path } => {
                json!({"name": name, "hostPath": {"path": path, "type": ""}})
            }
            Volume::PersistentVolumeClaim { name, claim } => {
                json!({"name": name, "persistentVolumeClaim": {"claimName": claim}})
            }
            Volume::Other { name } => {
                json!({"name": name, "configMap": {"name": "some-config", "defaultMode": 420}})
            }
        })
        .collect();
    let mut metadata = json!({"name": p.name, "namespace": p.namespace, "labels": p.labels});
    if let Some(o) = &p.owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": owner_api_version(&o.kind), "kind": o.kind, "name": o.name,
            "uid": format!("uid-{}", o.name), "controller": true, "blockOwnerDeletion": true
        }]);
    }
    let mut main = json!({"name": "main", "image": "registry.example/app:1"});
    if p.requests != Resources::default() {
        main["resources"] = json!({"requests": resources_json(&p.requests, false)});
    }
    let mut spec = json!({
        "containers": [main],
        "volumes": volumes, "restartPolicy": "Always"
    });
    if let Some(n) = &p.node {
        spec["nodeName"] = json!(n);
    }
    if !p.node_selector.is_empty() {
        spec["nodeSelector"] = json!(p.node_selector);
    }
    if !p.tolerations.is_empty() {
        spec["tolerations"] = tolerations_json(&p.tolerations);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
        "status": {"phase": p.phase, "conditions": [
            {"type": "Ready", "status": if p.ready { "True" } else { "False" }}
        ]}
    })
}

/// The Kubernetes JSON of a PodDisruptionBudget.
pub fn pdb_json(p: &Pdb) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": p.name, "namespace": p.namespace},
        "spec": {"selector": p.selector, "minAvailable": p.desired_healthy},
        "status": {"disruptionsAllowed": p.disruptions_allowed, "currentHealthy": p.current_healthy,
                   "desiredHealthy": p.desired_healthy, "expectedPods": p.expected_pods,
                   "observedGeneration": 1}
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    })
}

fn respond(code: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(body).unwrap_or_default(),
    )));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) =
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
}

impl KubeServer {
    /// Serves `seed` over plain HTTP on 127.0.0.1.
    pub async fn start(seed: &KubeSeed) -> std::io::Result<KubeServer> {
        Self::start_inner(seed, None).await
    }

    /// Serves `seed` over HTTPS with `tls`.
    pub async fn start_tls(
        seed: &KubeSeed,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<KubeServer> {
        Self::start_inner(seed, Some(tls)).await
    }

    async fn start_inner(
        seed: &KubeSeed,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<KubeServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut state = State {
            objects: BTreeMap::new(),
            version: seed.version.clone(),
            faults: Vec::new(),
            log: Vec::new(),
            next_uid: 1,
            resource_version: 1,
            heal_after: None,
            heals: Vec::new(),
        };
        for n in &seed.nodes {
            state.insert(node_json(n));
        }
        for p in &seed.pods {
            state.insert(pod_json(p));
        }
        for p in &seed.pdbs {
            state.insert(pdb_json(p));
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(s), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        Ok(KubeServer {
            addr,
            tls: tls.is_some(),
            state,
            task,
        })
    }

    /// `http://127.0.0.1:<port>` (or `https://`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A kubeconfig for this server with the accepted token (or `token`).
    pub fn kubeconfig(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\nusers:\n- name: test\n  user:\n    token: {token}\n",
            self.url()
        )
    }

    pub fn inject(&self, fault: KubeFault) {
        lock(&self.state).faults.push(fault);
    }

    /// From now on, a disruption an eviction took from a PDB comes back `after` later, as the
    /// disruption controller does once the evicted pod's replacement is ready. Without this a
    /// disruption never comes back (no controller runs here).
    pub fn heal_disruptions_after(&self, after: Duration) {
        lock(&self.state).heal_after = Some(after);
    }

    /// Every request so far as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).log.clone()
    }

    /// The stored object, if any.
    pub fn object(&self, api_version: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        lock(&self.state)
            .objects
            .get(&(api_version.into(), plural.into(), ns.into(), name.into()))
            .cloned()
    }

    /// Stores `object` as is (for tests that need a shape the seed types cannot express).
    pub fn put(&self, object: Value) {
        lock(&self.state).insert(object);
    }
}

fn kind_info(api_version: &str, kind: &str) -> Option<(&'static str, bool)> {
    KINDS
        .iter()
        .find(|(gv, _, k, _)| *gv == api_version && *k == kind)
        .map(|(_, plural, _, ns)| (*plural, *ns))
}

fn plural_info(api_version: &str, plural: &str) -> Option<(&'static str, bool)> {
    KINDS
        .iter()
        .find(|(gv, p, _, _)| *gv == api_version && *p == plural)
        .map(|(_, _, kind, ns)| (*kind, *ns))
}

impl State {
    fn stamp(&mut self, obj: &mut Value, existing: Option<&Value>) {
        self.resource_version += 1;
        let uid = existing
            .and_then(|e| e.pointer("/metadata/uid").cloned())
            .unwrap_or_else(|| {
                self.next_uid += 1;
                json!(format!("00000000-0000-0000-0000-{:012}", self.next_uid))
            });
        let created = existing
            .and_then(|e| e.pointer("/metadata/creationTimestamp").cloned())
            .unwrap_or(json!("2024-01-01T00:00:00Z"));
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("uid".into(), uid);
            m.insert("creationTimestamp".into(), created);
            m.insert(
                "resourceVersion".into(),
                json!(self.resource_version.to_string()),
            );
        }
    }

    fn insert(&mut self, mut obj: Value) {
        let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let Some((plural, namespaced)) = kind_info(&api_version, &kind) else {
            return;
        };
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ns = if namespaced {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        self.stamp(&mut obj, None);
        self.objects
            .insert((api_version, plural.to_string(), ns, name), obj);
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    let (fault_status, delay) = {
        let mut st = lock(&state);
        st.log.push(if query.is_empty() {
            format!("{method} {path}")
        } else {
            format!("{method} {path}?{query}")
        });
        let mut hit = (None, None);
        for f in st.faults.iter_mut() {
            let m_ok = f.method.as_deref().is_none_or(|m| m == method.as_str());
            if m_ok && path.starts_with(&f.path) && f.times > 0 {
                if f.times != u32::MAX {
                    f.times -= 1;
                }
                hit = (f.status, f.delay);
                break;
            }
        }
        hit
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(code) = fault_status {
        return respond(code, &status(code, reason_of(code), "injected fault"));
    }
    if !authorized {
        return respond(401, &status(401, "Unauthorized", "Unauthorized"));
    }
    let q: BTreeMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect();
    let mut st = lock(&state);
    st.heal();
    route(&mut st, &method, &path, &q, &content_type, &body)
}

fn route(
    st: &mut State,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if method == Method::GET && segs == ["version"] {
        return respond(
            200,
            &json!({"major": "1", "minor": "32", "gitVersion": st.version, "gitCommit": "abc",
                    "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z",
                    "goVersion": "go1.23.1", "compiler": "gc", "platform": "linux/amd64"}),
        );
    }
    let (api_version, rest): (String, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ((*v).to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => {
            return respond(
                404,
                &status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
        }
    };
    if rest.is_empty() {
        if method != Method::GET {
            return respond(405, &status(405, "MethodNotAllowed", "method not allowed"));
        }
        let resources: Vec<Value> = KINDS
            .iter()
            .filter(|(gv, ..)| *gv == api_version)
            .flat_map(|(_, plural, kind, ns)| {
                let mut v = vec![json!({
                    "name": plural, "singularName": kind.to_lowercase(), "namespaced": ns,
                    "kind": kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
                })];
                if *plural == "pods" {
                    v.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true,
                                  "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
                }
                v
            })
            .collect();
        if resources.is_empty() {
            return respond(
                404,
                &status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
        }
        return respond(
            200,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version, "resources": resources}),
        );
    }
    // (namespace, plural, name, subresource)
    let (ns, plural, name, sub): (Option<&str>, &str, Option<&str>, Option<&str>) = match rest {
        [plural] => (None, plural, None, None),
        ["namespaces", ns, plural] => (Some(ns), plural, None, None),
        ["namespaces", ns, plural, name] => (Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => (Some(ns), plural, Some(name), Some(sub)),
        [plural, name] => (None, plural, Some(name), None),
        _ => {
            return respond(
                404,
                &status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
        }
    };
    let Some((kind, namespaced)) = plural_info(&api_version, plural) else {
        return respond(
            404,
            &status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    };
    let ns_key = if namespaced {
        ns.unwrap_or("").to_string()
    } else {
        String::new()
    };

    match (method.clone(), name, sub) {
        (Method::GET, None, None) => {
            let field = q.get("fieldSelector").cloned().unwrap_or_default();
            // `labelSelector`: `key=value`, `key!=value`, `key`, `!key` terms.
            let label = q.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> =
                st.objects
                    .iter()
                    .filter(|((gv, p, n, _), _)| {
                        *gv == api_version && *p == plural && (ns.is_none() || *n == ns_key)
                    })
                    .map(|(_, v)| v.clone())
                    .filter(|v| {
                        field.split(',').filter(|f| !f.is_empty()).all(|f| {
                            match f.split_once('=') {
                                Some(("spec.nodeName", node)) => {
                                    v.pointer("/spec/nodeName").and_then(Value::as_str)
                                        == Some(node)
                                }
                                Some(("metadata.name", n)) => {
                                    v.pointer("/metadata/name").and_then(Value::as_str) == Some(n)
                                }
                                _ => true,
                            }
                        }) && {
                            let labels: BTreeMap<String, String> = v
                                .pointer("/metadata/labels")
                                .and_then(Value::as_object)
                                .map(|m| {
                                    m.iter()
                                        .filter_map(|(k, v)| {
                                            Some((k.clone(), v.as_str()?.to_string()))
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            ferry_core::cluster::selector_matches(&label, &labels)
                        }
                    })
                    .collect();
            // `limit` and `continue` as the API server pages: the token is opaque to clients
            // (here, the index of the next item).
            let from: usize = match q.get("continue").filter(|c| !c.is_empty()) {
                None => 0,
                Some(c) => match c.parse() {
                    Ok(i) => i,
                    Err(_) => {
                        return respond(
                            410,
                            &status(410, "Expired", "the provided continue parameter is too old"),
                        );
                    }
                },
            };
            let limit = q
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX);
            let to = from.saturating_add(limit).min(items.len());
            let page: Vec<Value> = items
                .get(from..to)
                .map(<[Value]>::to_vec)
                .unwrap_or_default();
            let mut metadata = json!({"resourceVersion": st.resource_version.to_string()});
            if to < items.len() {
                metadata["continue"] = json!(to.to_string());
                metadata["remainingItemCount"] = json!(items.len() - to);
            }
            respond(
                200,
                &json!({"kind": format!("{kind}List"), "apiVersion": api_version,
                        "metadata": metadata, "items": page}),
            )
        }
        (Method::GET, Some(name), None) => {
            let key = (
                api_version.clone(),
                plural.to_string(),
                ns_key,
                name.to_string(),
            );
            match st.objects.get(&key) {
                Some(v) => respond(200, v),
                None => not_found(plural, name),
            }
        }
        (Method::DELETE, Some(name), None) => {
            let key = (
                api_version.clone(),
                plural.to_string(),
                ns_key,
                name.to_string(),
            );
            match st.objects.remove(&key) {
                Some(v) => respond(200, &v),
                None => not_found(plural, name),
            }
        }
        (Method::PATCH, Some(name), None) => {
            let key = (
                api_version.clone(),
                plural.to_string(),
                ns_key.clone(),
                name.to_string(),
            );
            let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                return respond(400, &status(400, "BadRequest", "the body is not JSON"));
            };
            if content_type.starts_with("application/apply-patch") {
                let Some(manager) = q.get("fieldManager").filter(|m| !m.is_empty()) else {
                    return respond(
                        400,
                        &status(
                            400,
                            "BadRequest",
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        ),
                    );
                };
                if patch["apiVersion"] != json!(api_version) || patch["kind"] != json!(kind) {
                    return respond(
                        400,
                        &status(400, "BadRequest", "apiVersion and kind must match the URL"),
                    );
                }
                if patch.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
                    return respond(
                        400,
                        &status(400, "BadRequest", "metadata.name must match the URL"),
                    );
                }
                let existing = st.objects.get(&key).cloned();
                // a resourceVersion in the applied object is a precondition
                if let Some(want) = patch.pointer("/metadata/resourceVersion") {
                    if existing
                        .as_ref()
                        .and_then(|e| e.pointer("/metadata/resourceVersion"))
                        != Some(want)
                    {
                        return respond(
                            409,
                            &status(
                                409,
                                "Conflict",
                                &format!(
                                    "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                                ),
                            ),
                        );
                    }
                }
                let mut obj = patch.clone();
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    if namespaced {
                        m.insert("namespace".into(), json!(ns_key));
                    } else {
                        m.remove("namespace");
                    }
                    m.insert(
                        "managedFields".into(),
                        json!([{"manager": manager, "operation": "Apply", "apiVersion": api_version,
                                "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {}}]),
                    );
                }
                if let Some(s) = existing.as_ref().and_then(|e| e.get("status")) {
                    obj["status"] = s.clone();
                }
                st.stamp(&mut obj, existing.as_ref());
                st.objects.insert(key, obj.clone());
                return respond(if existing.is_some() { 200 } else { 201 }, &obj);
            }
            let Some(existing) = st.objects.get(&key).cloned() else {
                return not_found(plural, name);
            };
            let mut obj = existing.clone();
            merge_patch(&mut obj, &patch);
            st.stamp(&mut obj, Some(&existing));
            st.objects.insert(key, obj.clone());
            respond(200, &obj)
        }
        (Method::POST, Some(name), Some("eviction")) if plural == "pods" => {
            evict(st, &ns_key, name)
        }
        (Method::POST, None, None) => {
            let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
                return respond(400, &status(400, "BadRequest", "the body is not JSON"));
            };
            if plural == "subjectaccessreviews" {
                let rbac = st
                    .objects
                    .iter()
                    .filter(|((gv, ..), _)| gv == "rbac.authorization.k8s.io/v1")
                    .filter_map(|((_, p, n, _), o)| {
                        let kind = match p.as_str() {
                            "roles" => "Role",
                            "rolebindings" => "RoleBinding",
                            "clusterroles" => "ClusterRole",
                            "clusterrolebindings" => "ClusterRoleBinding",
                            _ => return None,
                        };
                        Some((kind, (!n.is_empty()).then_some(n.as_str()), o))
                    });
                let allowed = ferry_core::cluster::rbac_allows(rbac, &obj);
                obj["status"] = json!({ "allowed": allowed });
                return respond(201, &obj);
            }
            let Some(name) = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                return respond(
                    400,
                    &status(400, "BadRequest", "metadata.name: Required value"),
                );
            };
            let key = (
                api_version.clone(),
                plural.to_string(),
                ns_key.clone(),
                name.clone(),
            );
            if st.objects.contains_key(&key) {
                let mut s = status(
                    409,
                    "AlreadyExists",
                    &format!("{plural} \"{name}\" already exists"),
                );
                s["details"] = json!({"name": name, "kind": plural});
                return respond(409, &s);
            }
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                if namespaced {
                    m.insert("namespace".into(), json!(ns_key));
                }
            }
            st.stamp(&mut obj, None);
            st.objects.insert(key, obj.clone());
            respond(201, &obj)
        }
        _ => respond(405, &status(405, "MethodNotAllowed", "method not allowed")),
    }
}

fn not_found(plural: &str, name: &str) -> Response<Full<Bytes>> {
    let resource = plural.trim_end_matches('s');
    let mut s = status(404, "NotFound", &format!("{plural} \"{name}\" not found"));
    s["details"] = json!({"name": name, "kind": plural});
    let _ = resource;
    respond(404, &s)
}

fn evict(st: &mut State, ns: &str, name: &str) -> Response<Full<Bytes>> {
    let key = (
        "v1".to_string(),
        "pods".to_string(),
        ns.to_string(),
        name.to_string(),
    );
    let Some(pod) = st.objects.get(&key).cloned() else {
        return not_found("pods", name);
    };
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let labels = pod
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    let pdbs: Vec<Key> = st
        .objects
        .iter()
        .filter(|((gv, p, n, _), v)| {
            gv == "policy/v1"
                && p == "poddisruptionbudgets"
                && n == ns
                && labels_match(
                    v.pointer("/spec/selector/matchLabels")
                        .unwrap_or(&Value::Null),
                    &labels,
                )
        })
        .map(|(k, _)| k.clone())
        .collect();
    let completed = phase == "Succeeded" || phase == "Failed";
    if !completed {
        if pdbs.len() > 1 {
            return respond(
                500,
                &status(
                    500,
                    "InternalError",
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ),
            );
        }
        if let Some(k) = pdbs.first() {
            let allowed = st.objects[k]
                .pointer("/status/disruptionsAllowed")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if allowed <= 0 {
                let mut s = status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                );
                s["details"] = json!({"causes": [{
                    "reason": "DisruptionBudget",
                    "message": format!("The disruption budget {} needs 1 healthy pods and has 1 currently", k.3)
                }]});
                return respond(429, &s);
            }
            if let Some(pdb) = st.objects.get_mut(k) {
                pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
            }
            if let Some(after) = st.heal_after {
                st.heals.push((k.clone(), Instant::now() + after));
            }
        }
    }
    st.objects.remove(&key);
    respond(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}
