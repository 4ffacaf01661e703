//! [`Mke3Client`]: the MKE 3 HTTPS API with reqwest and rustls.

use std::fmt;
use std::time::Duration;

use ferry_core::Secret;
use ferry_flow_mke::mke3::Page;
use ferry_flow_mke::mke3::{Mke3Api, Mke3Error};
use ferry_rbac::export::{Account, Collection, Grant, Member, Role, Team};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How to reach an MKE 3 manager.
#[derive(Clone)]
pub struct Options {
    /// `https://<mke-host>[:port]`; a path prefix is kept.
    pub url: String,
    /// PEM of the CA (or bundle) that signed the MKE 3 certificate, trusted in addition to the
    /// public web roots.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Turns TLS verification off. Only when asked; logged as a warning.
    pub insecure_skip_tls_verify: bool,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, answer included.
    pub timeout: Duration,
    /// Retries of a transient failure (so at most `retries + 1` attempts).
    pub retries: u32,
    /// First backoff; doubled on each retry up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.url)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|p| p.len()))
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Options {
    /// Defaults: verification on, 10 s to connect, 60 s per request, 4 retries from 250 ms.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            ca_cert_pem: None,
            insecure_skip_tls_verify: false,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Why a client could not be built or log in.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid MKE 3 URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("invalid CA certificate: {0}")]
    CaCert(String),
    #[error("cannot set up the HTTPS client: {0}")]
    Setup(String),
    #[error(transparent)]
    Api(#[from] Mke3Error),
}

/// A logged-in MKE 3 API client.
///
/// MKE 3 sessions end (`auth.sessions.lifetime_minutes`, 60 by default) while a migration runs
/// for hours, and a rollback may need the API late (to put the configuration back). So the
/// client keeps the credentials it logged in with and, when an authenticated call is refused
/// with 401, logs in once more and repeats the call once; a refused login is
/// [`Mke3Error::Unauthorized`].
pub struct Mke3Client {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: Secret<String>,
    /// The bearer token and how many logins produced it (so that calls refused at the same time
    /// log in once, not once each).
    token: std::sync::Mutex<(u64, Secret<String>)>,
    /// Held while logging in again.
    relogin: tokio::sync::Mutex<()>,
    options: Options,
}

impl fmt::Debug for Mke3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mke3Client")
            .field("base", &self.base.as_str())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("token", &self.current_token().1)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct LoginResponse {
    auth_token: String,
}

#[derive(Deserialize)]
struct VersionResponse {
    #[serde(rename = "Version")]
    version: String,
}

#[derive(Deserialize)]
struct MessageResponse {
    message: String,
}

#[derive(Deserialize)]
struct AccountsPage {
    accounts: Vec<Account>,
    #[serde(rename = "nextPageStart", default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct MembersPage {
    members: Vec<Member>,
    #[serde(rename = "nextPageStart", default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct TeamsPage {
    teams: Vec<Team>,
    #[serde(rename = "nextPageStart", default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct GrantsPage {
    grants: Vec<Grant>,
    #[serde(rename = "nextPageStart", default)]
    next: Option<String>,
}

/// The eNZi error shapes: `{"errors": [{code, message}]}` or `{code, message, detail}`.
#[derive(Deserialize)]
struct ApiErrors {
    #[serde(default)]
    errors: Vec<ApiErrorEntry>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ApiErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The message of an eNZi error body, or a cut of the body itself.
fn error_message(body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ApiErrors>(body) {
        let mut parts: Vec<String> = e
            .errors
            .iter()
            .map(|x| match (x.code.is_empty(), x.message.is_empty()) {
                (false, false) => format!("{}: {}", x.code, x.message),
                (true, _) => x.message.clone(),
                (false, true) => x.code.clone(),
            })
            .collect();
        match (e.code, e.message) {
            (Some(c), Some(m)) => parts.push(format!("{c}: {m}")),
            (None, Some(m)) => parts.push(m),
            (Some(c), None) => parts.push(c),
            (None, None) => {}
        }
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no message".into()
    } else {
        text.chars().take(200).collect()
    }
}

/// Decodes `body` as `T`; a wrong shape names the endpoint and the JSON path.
fn decode<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, Mke3Error> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let detail = if inner.is_syntax() || inner.is_eof() {
            format!("body is not valid JSON: {inner}")
        } else if path == "." {
            format!("{inner}")
        } else {
            format!("at `{path}`: {inner}")
        };
        Mke3Error::Shape {
            endpoint: endpoint.to_string(),
            detail,
        }
    })
}

/// One request, as sent on every attempt.
struct Req {
    method: Method,
    url: Url,
    body: Option<(Vec<u8>, &'static str)>,
    accept: &'static str,
    authed: bool,
}

impl Req {
    fn get(url: Url, accept: &'static str) -> Req {
        Req {
            method: Method::GET,
            url,
            body: None,
            accept,
            authed: true,
        }
    }
}

/// One failed attempt: the error and whether another attempt may succeed.
struct Attempt {
    error: Mke3Error,
    transient: bool,
    retry_after: Option<Duration>,
}

/// Whether a send error came from TLS (certificate refused, handshake failed).
fn tls_failure(error: &reqwest::Error) -> Option<String> {
    // Only while connecting (the handshake): a connection dropped later also carries rustls
    // errors (`close_notify`) and is transient.
    if !error.is_connect() {
        return None;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r.to_string());
            }
        }
        source = e.source();
    }
    // The rustls error is not always reachable through `source()` (an `io::Error` hides its
    // inner error's identity behind a box); its text is distinctive enough.
    let text = chain(error);
    let lower = text.to_ascii_lowercase();
    [
        "invalid peer certificate",
        "certificate",
        "handshake",
        "tls",
    ]
    .iter()
    .any(|k| lower.contains(k))
    .then_some(text)
}

/// The error chain of `e` in one line, without the URL (which reqwest prepends).
fn chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.without_url_ref().to_string()
    } else {
        parts.join(": ")
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let text = self.to_string();
        match self.url() {
            Some(u) => text.replace(&format!(" ({u})"), ""),
            None => text,
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn next_marker(json: Option<String>, headers: &HeaderMap) -> Option<String> {
    json.filter(|s| !s.is_empty()).or_else(|| {
        headers
            .get("X-Next-Page-Start")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    })
}

impl Mke3Client {
    /// Builds the HTTPS client and logs in with `POST /auth/login`.
    pub async fn login(
        options: Options,
        username: &str,
        password: &Secret<String>,
    ) -> Result<Mke3Client, ClientError> {
        let url_error = |reason: &str| ClientError::Url {
            url: options.url.clone(),
            reason: reason.into(),
        };
        let mut base = Url::parse(&options.url).map_err(|e| url_error(&e.to_string()))?;
        match base.scheme() {
            "https" => {}
            "http" => return Err(url_error("plain http is refused: use https")),
            _ => return Err(url_error("the scheme must be https")),
        }
        if base.host_str().is_none() {
            return Err(url_error("no host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(url_error("a query or fragment is not allowed"));
        }
        // Keep a path prefix, always ending in `/` so that joined segments append.
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }

        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::CaCert(e.to_string()))?;
            if certs.is_empty() {
                return Err(ClientError::CaCert("no PEM certificate found".into()));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if options.insecure_skip_tls_verify {
            tracing::warn!(
                url = %base,
                "TLS verification of the MKE 3 API is OFF (--insecure-skip-tls-verify): anyone on the path can read the admin password and token"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| ClientError::Setup(chain(&e)))?;

        let client = Mke3Client {
            http,
            base,
            username: username.to_string(),
            password: password.clone(),
            token: std::sync::Mutex::new((0, Secret::new(String::new()))),
            relogin: tokio::sync::Mutex::new(()),
            options,
        };
        client.log_in().await?;
        tracing::debug!(url = %client.base, user = username, "logged in to MKE 3");
        Ok(client)
    }

    /// `POST /auth/login` with the client's credentials; stores the new token.
    async fn log_in(&self) -> Result<(), Mke3Error> {
        let body =
            serde_json::json!({"username": self.username, "password": self.password.expose()});
        let body = serde_json::to_vec(&body).map_err(|e| Mke3Error::Shape {
            endpoint: "POST /auth/login".into(),
            detail: e.to_string(),
        })?;
        let url = self.url(&["auth", "login"], &[])?;
        let (_, bytes) = self
            .call(Req {
                method: Method::POST,
                url,
                body: Some((body, "application/json")),
                accept: "application/json",
                authed: false,
            })
            .await?;
        let login: LoginResponse = decode("POST /auth/login", &bytes)?;
        if login.auth_token.is_empty() {
            return Err(Mke3Error::Shape {
                endpoint: "POST /auth/login".into(),
                detail: "empty `auth_token`".into(),
            });
        }
        let mut token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        *token = (token.0 + 1, Secret::new(login.auth_token));
        Ok(())
    }

    /// The token in use and its login number.
    fn current_token(&self) -> (u64, Secret<String>) {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Logs in again after a 401 on a call made with login number `seen`, unless another call
    /// already did.
    async fn relog_in(&self, seen: u64) -> Result<(), Mke3Error> {
        let _one_at_a_time = self.relogin.lock().await;
        if self.current_token().0 != seen {
            return Ok(());
        }
        tracing::info!(url = %self.base, user = %self.username, "the MKE 3 session ended, logging in again");
        self.log_in().await
    }

    /// The logged-in user's client bundle (`GET /api/clientbundle`): a zip with `kube.yml` and
    /// the certificates it names; for the admin, the key to the cluster, so it stays in memory.
    pub async fn client_bundle(&self) -> Result<Vec<u8>, Mke3Error> {
        let url = self.url(&["api", "clientbundle"], &[])?;
        let (_, bytes) = self.call(Req::get(url, "application/zip")).await?;
        Ok(bytes)
    }

    /// The base URL.
    pub fn url_base(&self) -> &str {
        self.base.as_str()
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, Mke3Error> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| Mke3Error::Shape {
                endpoint: self.base.to_string(),
                detail: "the MKE 3 URL cannot take a path".into(),
            })?;
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// `METHOD /path?query` for messages.
    fn endpoint(method: &Method, url: &Url) -> String {
        match url.query() {
            Some(q) => format!("{method} {}?{q}", url.path()),
            None => format!("{method} {}", url.path()),
        }
    }

    /// One request with retries of transient failures. Returns the headers and body of a 2xx.
    async fn call(&self, req: Req) -> Result<(HeaderMap, Vec<u8>), Mke3Error> {
        let endpoint = Self::endpoint(&req.method, &req.url);
        let mut backoff = self.options.backoff;
        let mut attempt = 0;
        let mut logged_in_again = false;
        loop {
            let (login_no, token) = self.current_token();
            match self.attempt(&req, &endpoint, &token).await {
                Ok(ok) => return Ok(ok),
                Err(a)
                    if req.authed
                        && !logged_in_again
                        && matches!(a.error, Mke3Error::Unauthorized) =>
                {
                    logged_in_again = true;
                    // Boxed: logging in is itself a call.
                    Box::pin(self.relog_in(login_no)).await?;
                }
                Err(a) if a.transient && attempt < self.options.retries => {
                    attempt += 1;
                    let wait = a
                        .retry_after
                        .map(|r| r.min(self.options.max_backoff))
                        .unwrap_or(backoff);
                    tracing::warn!(
                        endpoint = %endpoint,
                        attempt,
                        of = self.options.retries,
                        wait_ms = wait.as_millis() as u64,
                        error = %a.error,
                        "MKE 3 call failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
                Err(a) => return Err(a.error),
            }
        }
    }

    async fn attempt(
        &self,
        req: &Req,
        endpoint: &str,
        token: &Secret<String>,
    ) -> Result<(HeaderMap, Vec<u8>), Attempt> {
        let mut request = self
            .http
            .request(req.method.clone(), req.url.clone())
            .header(reqwest::header::ACCEPT, req.accept);
        if req.authed {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Attempt {
                        error: Mke3Error::Shape {
                            endpoint: "POST /auth/login".into(),
                            detail: "the token is not a valid header value".into(),
                        },
                        transient: false,
                        retry_after: None,
                    }
                })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some((bytes, content_type)) = &req.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(bytes.clone());
        }
        let transient = |error: Mke3Error| Attempt {
            error,
            transient: true,
            retry_after: None,
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(tls) = tls_failure(&e) {
                    return Err(Attempt {
                        error: Mke3Error::Tls(format!("{}: {tls}", self.base)),
                        transient: false,
                        retry_after: None,
                    });
                }
                if e.is_timeout() {
                    return Err(transient(Mke3Error::Timeout(format!(
                        "{endpoint} after {:?}",
                        self.options.timeout
                    ))));
                }
                return Err(transient(Mke3Error::Unavailable(format!(
                    "{endpoint}: {}",
                    chain(&e)
                ))));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) if e.is_timeout() => {
                return Err(transient(Mke3Error::Timeout(format!(
                    "{endpoint} after {:?}",
                    self.options.timeout
                ))));
            }
            Err(e) => {
                return Err(transient(Mke3Error::Unavailable(format!(
                    "{endpoint}: the answer was cut off: {}",
                    chain(&e)
                ))));
            }
        };
        if status.is_success() {
            return Ok((headers, bytes));
        }
        let message = error_message(&bytes);
        let fail = |error: Mke3Error| Attempt {
            error,
            transient: false,
            retry_after: None,
        };
        Err(match status {
            StatusCode::UNAUTHORIZED => fail(Mke3Error::Unauthorized),
            StatusCode::FORBIDDEN => fail(Mke3Error::Forbidden(format!("{endpoint}: {message}"))),
            StatusCode::NOT_FOUND => fail(Mke3Error::NotFound(format!("{endpoint}: {message}"))),
            StatusCode::TOO_MANY_REQUESTS => Attempt {
                error: Mke3Error::Unavailable(format!("{endpoint}: 429 too many requests")),
                transient: true,
                retry_after: retry_after(&headers),
            },
            s if s.is_server_error() => transient(Mke3Error::Unavailable(format!(
                "{endpoint}: HTTP {}: {message}",
                s.as_u16()
            ))),
            s => fail(Mke3Error::Shape {
                endpoint: endpoint.to_string(),
                detail: format!("unexpected HTTP status {}: {message}", s.as_u16()),
            }),
        })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<(HeaderMap, T), Mke3Error> {
        let url = self.url(segments, query)?;
        let endpoint = Self::endpoint(&Method::GET, &url);
        let (headers, bytes) = self.call(Req::get(url, "application/json")).await?;
        Ok((headers, decode(&endpoint, &bytes)?))
    }
}

/// `start`/`limit` query parameters (no `start` on the first page).
fn paging<'a>(
    mut query: Vec<(&'a str, &'a str)>,
    start: Option<&'a str>,
    limit: &'a str,
) -> Vec<(&'a str, &'a str)> {
    query.push(("limit", limit));
    if let Some(s) = start.filter(|s| !s.is_empty()) {
        query.push(("start", s));
    }
    query
}

#[async_trait::async_trait]
impl Mke3Api for Mke3Client {
    async fn ping(&self) -> Result<(), Mke3Error> {
        let url = self.url(&["_ping"], &[])?;
        self.call(Req::get(url, "*/*")).await.map(|_| ())
    }

    async fn version(&self) -> Result<String, Mke3Error> {
        let (_, v): (_, VersionResponse) = self.get_json(&["version"], &[]).await?;
        // MKE answers `ucp/3.7.15`.
        let version = v.version.strip_prefix("ucp/").unwrap_or(&v.version);
        Ok(version.to_string())
    }

    async fn config_toml(&self) -> Result<String, Mke3Error> {
        let url = self.url(&["api", "ucp", "config-toml"], &[])?;
        let endpoint = Self::endpoint(&Method::GET, &url);
        let (_, bytes) = self.call(Req::get(url, "application/toml")).await?;
        String::from_utf8(bytes).map_err(|e| Mke3Error::Shape {
            endpoint,
            detail: format!(
                "the TOML is not valid UTF-8 (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })
    }

    async fn put_config_toml(&self, toml: &str) -> Result<String, Mke3Error> {
        let url = self.url(&["api", "ucp", "config-toml"], &[])?;
        let endpoint = Self::endpoint(&Method::PUT, &url);
        let (_, bytes) = self
            .call(Req {
                method: Method::PUT,
                url,
                body: Some((toml.as_bytes().to_vec(), "application/toml")),
                accept: "application/json",
                authed: true,
            })
            .await?;
        let m: MessageResponse = decode(&endpoint, &bytes)?;
        Ok(m.message)
    }

    async fn accounts(&self, start: Option<&str>, limit: u32) -> Result<Page<Account>, Mke3Error> {
        let limit = limit.to_string();
        let q = paging(vec![("filter", "all")], start, &limit);
        let (headers, p): (_, AccountsPage) =
            self.get_json(&["enzi", "v0", "accounts"], &q).await?;
        Ok(Page {
            items: p.accounts,
            next: next_marker(p.next, &headers),
        })
    }

    async fn org_members(
        &self,
        org: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Member>, Mke3Error> {
        let limit = limit.to_string();
        let q = paging(vec![("filter", "all")], start, &limit);
        let (headers, p): (_, MembersPage) = self
            .get_json(&["enzi", "v0", "accounts", org, "members"], &q)
            .await?;
        Ok(Page {
            items: p.members,
            next: next_marker(p.next, &headers),
        })
    }

    async fn teams(
        &self,
        org: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Team>, Mke3Error> {
        let limit = limit.to_string();
        let q = paging(Vec::new(), start, &limit);
        let (headers, p): (_, TeamsPage) = self
            .get_json(&["enzi", "v0", "accounts", org, "teams"], &q)
            .await?;
        Ok(Page {
            items: p.teams,
            next: next_marker(p.next, &headers),
        })
    }

    async fn team_members(
        &self,
        org: &str,
        team: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Member>, Mke3Error> {
        let limit = limit.to_string();
        let q = paging(vec![("filter", "all")], start, &limit);
        let (headers, p): (_, MembersPage) = self
            .get_json(
                &["enzi", "v0", "accounts", org, "teams", team, "members"],
                &q,
            )
            .await?;
        Ok(Page {
            items: p.members,
            next: next_marker(p.next, &headers),
        })
    }

    async fn roles(&self) -> Result<Vec<Role>, Mke3Error> {
        let (_, roles): (_, Vec<Role>) = self.get_json(&["roles"], &[]).await?;
        Ok(roles)
    }

    async fn collections(
        &self,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Collection>, Mke3Error> {
        let limit = limit.to_string();
        let q = paging(Vec::new(), start, &limit);
        // A plain array: only the header carries the marker.
        let (headers, items): (_, Vec<Collection>) = self.get_json(&["collections"], &q).await?;
        Ok(Page {
            items,
            next: next_marker(None, &headers),
        })
    }

    async fn grants(&self, start: Option<&str>, limit: u32) -> Result<Page<Grant>, Mke3Error> {
        let limit = limit.to_string();
        let q = paging(
            vec![("subjectType", "all"), ("showPaths", "true")],
            start,
            &limit,
        );
        let (headers, p): (_, GrantsPage) = self.get_json(&["collectionGrants"], &q).await?;
        Ok(Page {
            items: p.grants,
            next: next_marker(p.next, &headers),
        })
    }
}
