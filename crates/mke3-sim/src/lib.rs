//! # ferry-mke3-sim
//!
//! An in-process MKE 3 API server for tests (never shipped in the binary). It serves a model
//! loaded from an `mke3-rbac-export.json` ([`ferry_rbac::export::Export`]) over HTTPS on
//! `127.0.0.1` with a random port, with the JSON shapes of `reference/mke3-api.md`:
//!
//! - `POST /auth/login` and bearer auth on every other call (401 with the eNZi error shape);
//! - `GET /_ping`, `GET /version` (`{"Version": "ucp/<version>", ...}`);
//! - `GET`/`PUT /api/ucp/config-toml` (the PUT answers `{"message": ...}`);
//! - `GET /api/clientbundle`: the zip given in [`SimOptions::client_bundle`] (see
//!   [`client_bundle`] to make one), 404 when none was given;
//! - accounts, organisation members, teams, team members under both `/accounts/...` and
//!   `/enzi/v0/accounts/...`, `GET /roles`, `GET /collections` (plain array, marker in the
//!   `X-Next-Page-Start` header only) and `GET /collectionGrants`;
//! - paging with `start`/`limit` (default **10**), the marker in `nextPageStart` and in the
//!   `X-Next-Page-Start` header. Markers are as documented: the account name for accounts, the
//!   team name for teams, the user ID for members; the collection ID for collections and
//!   `subjectID:objectID:roleID` for grants.
//!
//! The served model is canonical: accounts and teams sorted by name, members by user ID,
//! collections by ID, grants by (subject, object, role), roles by ID. [`Sim::model`] returns it,
//! so an export read back from the server can be compared to it with `==`.
//!
//! Faults ([`Fault`]) are injected at run time: an HTTP status (500, 503, 429, 401, 403...), a
//! slow answer, a dropped connection (closed without any answer), a page with a wrong shape, or a
//! truncated body. Each fault matches a path prefix and optionally a query substring, lets `skip`
//! matching requests through first, and then fires `times` times.

mod tls;

/// An MKE 3 admin client bundle as `GET /api/clientbundle` answers it: a zip holding `ca.pem`,
/// `cert.pem`, `key.pem`, `cert.pub`, `env.sh`, `meta.json` and `kube.yml`, whose paths are
/// relative to the bundle. `kube.yml` points at `kube_url` with `kube_ca_pem` as its CA; the
/// client certificate is a fresh self-signed one, and `token` (when given) is added for test API
/// servers that authenticate by bearer token.
pub fn client_bundle(
    kube_url: &str,
    kube_ca_pem: &str,
    token: Option<&str>,
) -> Result<Vec<u8>, SimError> {
    use std::io::Write as _;
    let tls = |e: rcgen::Error| SimError::Tls(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    let cert = params.self_signed(&key).map_err(tls)?;
    let name = "ucp_mke.example.com:6443_admin";
    let token_line = token
        .map(|t| format!("    token: {t}\n"))
        .unwrap_or_default();
    let kube = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority: ca.pem\n    server: {kube_url}\n  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\ncurrent-context: {name}\nkind: Config\npreferences: {{}}\nusers:\n- name: {name}\n  user:\n    client-certificate: cert.pem\n    client-key: key.pem\n{token_line}"
    );
    let files: [(&str, String); 7] = [
        ("ca.pem", kube_ca_pem.to_string()),
        ("cert.pem", cert.pem()),
        ("key.pem", key.serialize_pem()),
        ("cert.pub", key.public_key_pem()),
        ("env.sh", "export KUBECONFIG=\"${PWD}/kube.yml\"\n".into()),
        (
            "meta.json",
            "{\"Name\":\"admin\",\"Description\":\"ferry test bundle\"}\n".into(),
        ),
        ("kube.yml", kube),
    ];
    let io = |e: std::io::Error| SimError::Bundle(e.to_string());
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (n, body) in files {
        w.start_file(n, opts)
            .map_err(|e| SimError::Bundle(e.to_string()))?;
        w.write_all(body.as_bytes()).map_err(io)?;
    }
    let cursor = w.finish().map_err(|e| SimError::Bundle(e.to_string()))?;
    Ok(cursor.into_inner())
}

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_rbac::export::{Account, Export, Member};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use tls::TestPki;

/// Default page size of every list call, as documented.
pub const DEFAULT_LIMIT: usize = 10;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("test certificate: {0}")]
    Tls(String),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write the client bundle: {0}")]
    Bundle(String),
}

/// What the simulator serves besides the RBAC model.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub username: String,
    pub password: String,
    /// The MKE version; `/version` answers `ucp/<version>`.
    pub version: String,
    pub config_toml: String,
    /// What `GET /api/clientbundle` answers.
    pub client_bundle: Option<Vec<u8>>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            username: "admin".into(),
            password: "orcaorcaorca".into(),
            version: "3.7.15".into(),
            config_toml: "[cluster_config]\n  calico_kdd = false\n".into(),
            client_bundle: None,
        }
    }
}

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status and an eNZi error body.
    Status(u16),
    /// Answer normally, after this delay.
    Slow(Duration),
    /// Close the connection without answering.
    Drop,
    /// Answer 200 with a body whose first list item lacks every required field.
    BadShape,
    /// Answer 200 with the first half of the real body.
    Truncated,
}

/// A fault rule: requests whose path starts with `path` (and whose query contains `query`, if
/// set) are let through `skip` times, then get `kind` `times` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub path: String,
    pub query: Option<String>,
    pub skip: u32,
    pub times: u32,
    pub kind: FaultKind,
}

impl Fault {
    /// A fault on every request to paths starting with `path`, once.
    pub fn on(path: &str, kind: FaultKind) -> Fault {
        Fault {
            path: path.into(),
            query: None,
            skip: 0,
            times: 1,
            kind,
        }
    }
    /// Only requests whose query string contains `q`.
    pub fn query(mut self, q: &str) -> Fault {
        self.query = Some(q.into());
        self
    }
    /// Let `n` matching requests through first.
    pub fn skip(mut self, n: u32) -> Fault {
        self.skip = n;
        self
    }
    /// Fire `n` times (`u32::MAX`: forever).
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }
}

#[derive(Debug)]
struct State {
    model: Export,
    options: SimOptions,
    tokens: Vec<String>,
    faults: Vec<Fault>,
    log: Vec<String>,
    next_token: u64,
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Sim {
    addr: SocketAddr,
    pki: TestPki,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Sorts the model the way the server serves it.
pub fn canonical(mut model: Export) -> Export {
    model.accounts.sort_by(|a, b| a.name.cmp(&b.name));
    for org in model.orgs.values_mut() {
        org.members.sort_by(|a, b| a.member.id.cmp(&b.member.id));
        org.teams.sort_by(|a, b| a.team.name.cmp(&b.team.name));
        for team in &mut org.teams {
            team.members.sort_by(|a, b| a.member.id.cmp(&b.member.id));
        }
    }
    model.roles.sort_by(|a, b| a.id.cmp(&b.id));
    model.collections.sort_by(|a, b| a.id.cmp(&b.id));
    model
        .grants
        .sort_by(|a, b| grant_key(a).cmp(&grant_key(b)).then_with(|| a.cmp(b)));
    model.grants.dedup_by(|a, b| grant_key(a) == grant_key(b));
    model
}

impl Sim {
    /// Starts serving `model` on the current tokio runtime.
    pub async fn start(model: Export, options: SimOptions) -> Result<Sim, SimError> {
        Self::start_on("127.0.0.1:0", model, options).await
    }

    /// Starts serving `model` on `addr` (`host:port`; port 0 picks a free one) on the current
    /// tokio runtime.
    pub async fn start_on(addr: &str, model: Export, options: SimOptions) -> Result<Sim, SimError> {
        let pki = TestPki::generate()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Self::serve(listener, pki, model, options, None)
    }

    /// Starts serving `model` on a runtime of its own (for synchronous tests, such as those
    /// that run the `ferry` binary). Must not be called or dropped inside a runtime.
    pub fn start_standalone(model: Export, options: SimOptions) -> Result<Sim, SimError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(SimError::Runtime)?;
        let pki = TestPki::generate()?;
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .map_err(|source| SimError::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        let _guard = rt.enter();
        Self::serve(listener, pki, model, options, Some(rt))
    }

    fn serve(
        listener: TcpListener,
        pki: TestPki,
        model: Export,
        options: SimOptions,
        runtime: Option<tokio::runtime::Runtime>,
    ) -> Result<Sim, SimError> {
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: "the listener".into(),
            source,
        })?;
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config()?);
        let state = Arc::new(Mutex::new(State {
            model: canonical(model),
            options,
            tokens: Vec::new(),
            faults: Vec::new(),
            log: Vec::new(),
            next_token: 1,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    // A client that refuses our certificate ends the handshake: not our problem.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { handle(state, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Sim {
            addr,
            pki,
            state,
            task,
            runtime,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// PEM of an unrelated CA (for tests of a refused certificate).
    pub fn other_ca_pem(&self) -> &str {
        &self.pki.other_ca_pem
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The served model, in the order it is served.
    pub fn model(&self) -> Export {
        self.lock().model.clone()
    }

    /// The current config TOML (after any PUT).
    pub fn config_toml(&self) -> String {
        self.lock().options.config_toml.clone()
    }

    /// Adds a fault rule.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Forgets every issued token: the next call with an old token gets 401.
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Every request received so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().log.clone()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide every later answer behind a poisoned lock.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

type Body = Full<Bytes>;

enum Answer {
    Respond(Response<Body>),
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(status: StatusCode, value: &Value, next: Option<&str>) -> Response<Body> {
    let mut r = respond(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    );
    if let Some(next) = next.and_then(|n| n.parse().ok()) {
        r.headers_mut().insert("X-Next-Page-Start", next);
    }
    r
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
        None,
    )
}

/// Decodes `%XX` escapes and `+` of a query component or path segment.
fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k, true), decode(v, true)),
            None => (decode(p, true), String::new()),
        })
        .collect()
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(std::io::Error::other(e)),
    };

    // Which fault applies, if any.
    let fault = {
        let mut st = lock(&state);
        st.log.push(if query.is_empty() {
            format!("{method} {path}")
        } else {
            format!("{method} {path}?{query}")
        });
        let mut hit = None;
        for f in st.faults.iter_mut() {
            let matches = path.starts_with(&f.path)
                && f.query.as_ref().is_none_or(|q| query.contains(q.as_str()));
            if !matches || f.times == 0 {
                continue;
            }
            if f.skip > 0 {
                f.skip -= 1;
                continue;
            }
            if f.times != u32::MAX {
                f.times -= 1;
            }
            hit = Some(f.kind.clone());
            break;
        }
        hit
    };

    match fault {
        Some(FaultKind::Drop) => {
            return Err(std::io::Error::other("fault: connection dropped"));
        }
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = api_error(status, "INJECTED_FAULT", "injected fault");
            if code == 429 {
                r.headers_mut()
                    .insert("Retry-After", hyper::header::HeaderValue::from_static("0"));
            }
            return Ok(r);
        }
        Some(FaultKind::Slow(d)) => tokio::time::sleep(d).await,
        _ => {}
    }

    let answer = route(&state, &method, &path, &query, auth.as_deref(), &body);
    let Answer::Respond(response) = answer;
    match fault {
        Some(FaultKind::BadShape) => Ok(break_shape(response).await),
        Some(FaultKind::Truncated) => {
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let half = bytes.slice(0..bytes.len() / 2);
            Ok(Response::from_parts(parts, Full::new(half)))
        }
        _ => Ok(response),
    }
}

/// Replaces the first item of the answer's list with an object lacking every required field.
async fn break_shape(response: Response<Body>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let broken = json!({"unexpected": true});
    match &mut value {
        Value::Array(items) => match items.first_mut() {
            Some(first) => *first = broken,
            None => items.push(broken),
        },
        Value::Object(map) => {
            let list = map.iter_mut().find_map(|(_, v)| match v {
                Value::Array(a) => Some(a),
                _ => None,
            });
            match list {
                Some(items) => match items.first_mut() {
                    Some(first) => *first = broken,
                    None => items.push(broken),
                },
                None => value = Value::Array(vec![broken]),
            }
        }
        _ => value = Value::Array(vec![broken]),
    }
    Response::from_parts(
        parts,
        Full::new(Bytes::from(serde_json::to_vec(&value).unwrap_or_default())),
    )
}

/// One page of `items` (already sorted by `key`): the items whose key is at least `start`, at
/// most `limit` of them, and the key of the next item.
fn page<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> String,
    start: Option<&str>,
    limit: usize,
) -> (&'a [T], Option<String>) {
    let from = match start {
        Some(s) if !s.is_empty() => items.partition_point(|i| key(i).as_str() < s),
        _ => 0,
    };
    let to = (from + limit).min(items.len());
    let next = items.get(to).map(&key);
    (&items[from..to], next)
}

fn grant_key(g: &ferry_rbac::export::Grant) -> String {
    format!("{}:{}:{}", g.subject_id, g.object_id, g.role_id)
}

fn route(
    state: &Mutex<State>,
    method: &Method,
    path: &str,
    query: &str,
    auth: Option<&str>,
    body: &[u8],
) -> Answer {
    let q = query_map(query);
    let mut st = lock(state);

    if method == Method::POST && path == "/auth/login" {
        #[derive(serde::Deserialize)]
        struct Credentials {
            #[serde(default)]
            username: String,
            #[serde(default)]
            password: String,
        }
        let Ok(c) = serde_json::from_slice::<Credentials>(body) else {
            return Answer::Respond(api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_JSON",
                "invalid JSON",
            ));
        };
        if c.username != st.options.username || c.password != st.options.password {
            return Answer::Respond(api_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "Invalid username or password.",
            ));
        }
        let token = format!("sim-token-{:08}", st.next_token);
        st.next_token += 1;
        st.tokens.push(token.clone());
        return Answer::Respond(json_response(
            StatusCode::OK,
            &json!({"auth_token": token, "token_id": "sim", "user_agent": "ferry"}),
            None,
        ));
    }

    let authorized = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| st.tokens.iter().any(|k| k == t));
    if !authorized {
        return Answer::Respond(api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        ));
    }

    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(0)) => DEFAULT_LIMIT,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Answer::Respond(api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER",
                "limit must be a number",
            ));
        }
    };
    let start = q.get("start").map(String::as_str);

    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| decode(s, false))
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    // `/enzi/v0/accounts/...` and `/accounts/...` are the same endpoints.
    let segs: &[&str] = match segs.as_slice() {
        ["enzi", "v0", rest @ ..] => rest,
        s => s,
    };

    let ok =
        |v: Value, next: Option<&str>| Answer::Respond(json_response(StatusCode::OK, &v, next));
    let not_found = |what: &str| {
        Answer::Respond(api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("{what} not found"),
        ))
    };
    let members_page = |members: &[Member]| {
        let (items, next) = page(members, |m| m.member.id.clone(), start, limit);
        let next_s = next.clone().unwrap_or_default();
        ok(
            json!({"members": items, "nextPageStart": next_s, "resourceCount": members.len()}),
            next.as_deref(),
        )
    };

    match (method.clone(), segs) {
        (Method::GET, ["_ping"]) => {
            Answer::Respond(respond(StatusCode::OK, "text/plain", b"OK".to_vec()))
        }
        (Method::GET, ["version"]) => ok(
            json!({
                "Version": format!("ucp/{}", st.options.version),
                "ApiVersion": "1.41", "MinAPIVersion": "1.20", "GitCommit": "sim",
                "GoVersion": "go1.21", "Os": "linux", "Arch": "amd64",
                "KernelVersion": "5.15.0", "Experimental": false, "BuildTime": "",
                "Platform": {"Name": format!("Mirantis Kubernetes Engine {}", st.options.version)},
                "Components": [{"Name": "Kubernetes", "Version": "1.27.7", "Details": {}}]
            }),
            None,
        ),
        (Method::GET, ["api", "clientbundle"]) => {
            Answer::Respond(match &st.options.client_bundle {
                Some(zip) => respond(StatusCode::OK, "application/zip", zip.clone()),
                None => api_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "no client bundle in this simulator",
                ),
            })
        }
        (Method::GET, ["api", "ucp", "config-toml"]) => Answer::Respond(respond(
            StatusCode::OK,
            "application/toml",
            st.options.config_toml.clone().into_bytes(),
        )),
        (Method::PUT, ["api", "ucp", "config-toml"]) => {
            let Ok(text) = std::str::from_utf8(body) else {
                return Answer::Respond(api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_CONFIG",
                    "not UTF-8",
                ));
            };
            // MKE 3 parses the file: invalid TOML is refused and nothing changes
            if let Err(e) = text.parse::<toml::Table>() {
                return Answer::Respond(api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_CONFIG",
                    &format!("invalid TOML: {e}"),
                ));
            }
            let kdd = |t: &str| {
                t.parse::<toml::Table>().ok().is_some_and(|t| {
                    t.get("cluster_config")
                        .and_then(|c| c.get("calico_kdd"))
                        .and_then(toml::Value::as_bool)
                        == Some(true)
                })
            };
            let message = if kdd(text) && !kdd(&st.options.config_toml) {
                "Calico datastore upgrade from etcd to kdd successful"
            } else {
                "Configuration updated successfully"
            };
            st.options.config_toml = text.to_string();
            ok(json!({"message": message}), None)
        }
        (Method::GET, ["accounts"]) => {
            let filter = q.get("filter").map(String::as_str).unwrap_or("all");
            let keep = |a: &&Account| match filter {
                "users" => !a.is_org,
                "orgs" => a.is_org,
                "admins" => !a.is_org && a.is_admin,
                "non-admins" => !a.is_org && !a.is_admin,
                "active-users" => !a.is_org && a.is_active,
                "inactive-users" => !a.is_org && !a.is_active,
                _ => true,
            };
            let selected: Vec<Account> = st.model.accounts.iter().filter(keep).cloned().collect();
            let (items, next) = page(&selected, |a| a.name.clone(), start, limit);
            let users = st.model.accounts.iter().filter(|a| !a.is_org).count();
            ok(
                json!({
                    "accounts": items, "nextPageStart": next.clone().unwrap_or_default(),
                    "orgsCount": st.model.accounts.len() - users, "usersCount": users,
                    "resourceCount": selected.len()
                }),
                next.as_deref(),
            )
        }
        (Method::GET, ["accounts", org, "members"]) => match st.model.orgs.get(*org) {
            Some(o) => members_page(&o.members),
            None => not_found(&format!("organization {org}")),
        },
        (Method::GET, ["accounts", org, "teams"]) => match st.model.orgs.get(*org) {
            Some(o) => {
                let teams: Vec<_> = o.teams.iter().map(|t| t.team.clone()).collect();
                let (items, next) = page(&teams, |t| t.name.clone(), start, limit);
                ok(
                    json!({"teams": items, "nextPageStart": next.clone().unwrap_or_default(),
                           "resourceCount": teams.len()}),
                    next.as_deref(),
                )
            }
            None => not_found(&format!("organization {org}")),
        },
        (Method::GET, ["accounts", org, "teams", team, "members"]) => {
            match st.model.orgs.get(*org) {
                Some(o) => match o.teams.iter().find(|t| t.team.name == *team) {
                    Some(t) => members_page(&t.members),
                    None => not_found(&format!("team {org}/{team}")),
                },
                None => not_found(&format!("organization {org}")),
            }
        }
        (Method::GET, ["roles"]) => ok(json!(st.model.roles), None),
        (Method::GET, ["collections"]) => {
            let (items, next) = page(&st.model.collections, |c| c.id.clone(), start, limit);
            ok(json!(items), next.as_deref())
        }
        (Method::GET, ["collectionGrants"]) => {
            let show_paths = q.get("showPaths").is_some_and(|v| v == "true");
            let (items, next) = page(&st.model.grants, grant_key, start, limit);
            let grants: Vec<Value> = items
                .iter()
                .map(|g| {
                    let mut g = g.clone();
                    if !show_paths {
                        g.collection_path = None;
                    }
                    json!(g)
                })
                .collect();
            let subjects: Vec<Value> = items
                .iter()
                .filter_map(|g| subject(&st.model, &g.subject_id))
                .collect();
            ok(
                json!({"grants": grants, "subjects": subjects,
                       "nextPageStart": next.clone().unwrap_or_default(),
                       "resourceCount": st.model.grants.len()}),
                next.as_deref(),
            )
        }
        _ => not_found(&format!("{method} {path}")),
    }
}

fn subject(model: &Export, id: &str) -> Option<Value> {
    if let Some(a) = model.accounts.iter().find(|a| a.id == id) {
        let kind = if a.is_org { "org" } else { "user" };
        return Some(json!({"id": id, "subject_type": kind, "account": a}));
    }
    model
        .orgs
        .values()
        .flat_map(|o| o.teams.iter())
        .find(|t| t.team.id == id)
        .map(|t| json!({"id": id, "subject_type": "team", "team": t.team}))
}

/// A generated model of the given size, with orgs of `teams / orgs` teams each, every user a
/// member of one org and one team, and grants spread over users, teams and namespaces.
pub fn generated_model(users: usize, orgs: usize, teams: usize, grants: usize) -> Export {
    use ferry_rbac::export::{Collection, Grant, OrgExport, Role, Team, TeamExport};
    let account = |name: String, id: String, is_org: bool| Account {
        full_name: format!("Full {name}"),
        name,
        id,
        is_org,
        is_admin: false,
        is_active: true,
        is_imported: false,
        members_count: 0,
        teams_count: 0,
        on_demand: None,
        otp_enabled: None,
    };
    let mut accounts = Vec::new();
    for u in 0..users {
        let mut a = account(format!("user{u:05}"), format!("uid-{u:05}"), false);
        a.is_admin = u % 1000 == 0;
        a.is_active = u % 97 != 0;
        accounts.push(a);
    }
    let orgs = orgs.max(1);
    let mut org_map = BTreeMap::new();
    let mut team_ids = Vec::new();
    for o in 0..orgs {
        let name = format!("org{o:03}");
        let id = format!("oid-{o:03}");
        let mut org = OrgExport::default();
        let per_org = teams / orgs + usize::from(o < teams % orgs);
        for t in 0..per_org {
            let team = Team {
                org_id: id.clone(),
                name: format!("team{t:03}"),
                id: format!("tid-{o:03}-{t:03}"),
                description: format!("team {t} of {name}"),
                members_count: 0,
            };
            team_ids.push(team.id.clone());
            org.teams.push(TeamExport {
                team,
                members: Vec::new(),
            });
        }
        accounts.push(account(name.clone(), id, true));
        org_map.insert(name, org);
    }
    let org_names: Vec<String> = org_map.keys().cloned().collect();
    for u in 0..users {
        let user = &accounts[u];
        let member = Member {
            member: user.clone(),
            is_admin: u % 50 == 0,
        };
        let org_name = &org_names[u % orgs];
        if let Some(org) = org_map.get_mut(org_name) {
            org.members.push(member.clone());
            if !org.teams.is_empty() {
                let idx = (u / orgs) % org.teams.len();
                org.teams[idx].members.push(member);
            }
        }
    }
    for org in org_map.values_mut() {
        for t in &mut org.teams {
            t.team.members_count = t.members.len() as u64;
        }
    }
    let roles: Vec<Role> = [
        "fullcontrol",
        "none",
        "restrictedcontrol",
        "scheduler",
        "viewonly",
    ]
    .iter()
    .map(|id| Role {
        id: (*id).into(),
        name: (*id).into(),
        system_role: true,
        operations: json!({}),
    })
    .collect();
    let collections: Vec<Collection> = (0..25)
        .map(|c| Collection {
            id: format!("col-{c:03}"),
            name: format!("c{c}"),
            path: format!("/Shared/c{c}"),
            parent_ids: vec!["shared".into()],
            label_constraints: Vec::new(),
            legacylabelkey: String::new(),
            legacylabelvalue: String::new(),
            created_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-01-01T00:00:00Z".into(),
        })
        .collect();
    let mut grant_list = Vec::new();
    for g in 0..grants {
        let subject_id = if g % 3 == 0 && !team_ids.is_empty() {
            team_ids[g % team_ids.len()].clone()
        } else {
            format!("uid-{:05}", g % users.max(1))
        };
        let (object_id, collection_path) = match g % 4 {
            0 => {
                let c = &collections[g % collections.len()];
                (c.id.clone(), Some(c.path.clone()))
            }
            1 => ("kubernetesnamespaces".to_string(), None),
            _ => (format!("ns-{:04}", g), None),
        };
        grant_list.push(Grant {
            subject_id,
            object_id,
            role_id: roles[g % roles.len()].id.clone(),
            collection_path,
        });
    }
    // A grant is keyed by its triple: drop repeats and top up with namespace grants.
    let mut seen = std::collections::BTreeSet::new();
    grant_list.retain(|g| seen.insert(grant_key(g)));
    let mut extra = 0;
    while grant_list.len() < grants {
        grant_list.push(Grant {
            subject_id: format!("uid-{:05}", extra % users.max(1)),
            object_id: format!("ns-extra-{extra:05}"),
            role_id: "viewonly".into(),
            collection_path: None,
        });
        extra += 1;
    }
    canonical(Export {
        version: ferry_rbac::export::EXPORT_VERSION,
        accounts,
        orgs: org_map,
        roles,
        collections,
        grants: grant_list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_key_order() {
        let items = vec!["a", "b", "c", "d", "e"];
        let key = |s: &&str| s.to_string();
        let (p, next) = page(&items, key, None, 2);
        assert_eq!(p, ["a", "b"]);
        assert_eq!(next.as_deref(), Some("c"));
        let (p, next) = page(&items, key, Some("c"), 2);
        assert_eq!(p, ["c", "d"]);
        let (p, next2) = page(&items, key, next.as_deref(), 2);
        assert_eq!(p, ["e"]);
        assert_eq!(next2, None);
        let (p, n) = page(&items, key, Some("zz"), 2);
        assert!(p.is_empty() && n.is_none());
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(decode("a%20b+c", true), "a b c");
        assert_eq!(decode("a%2Fb", false), "a/b");
        assert_eq!(decode("100%", false), "100%");
        assert_eq!(decode("%4", false), "%4");
    }

    #[test]
    fn generated_model_has_the_asked_size() {
        let m = generated_model(100, 5, 20, 300);
        assert_eq!(m.accounts.iter().filter(|a| !a.is_org).count(), 100);
        assert_eq!(m.orgs.len(), 5);
        assert_eq!(m.orgs.values().map(|o| o.teams.len()).sum::<usize>(), 20);
        assert_eq!(m.grants.len(), 300);
    }
}
