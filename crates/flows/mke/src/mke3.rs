//! Reading (and the one write: the Calico KDD switch) of an MKE 3 cluster: the [`Mke3Api`]
//! trait, a backend only the MKE flow reads (so it lives with the flow). Shapes are those of the MKE 3 API (`reference/mke3-api.md`), as `ferry-rbac`'s export
//! model holds them, so an export can be filled page by page without reshaping.

use std::fmt;

use ferry_rbac::export::{Account, Collection, Grant, Member, Role, Team};

/// One page of a paged list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `start` of the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Why an MKE 3 call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mke3Error {
    /// 401: bad credentials or an expired token.
    #[error("MKE 3 refused the credentials (401)")]
    Unauthorized,
    /// 403: the user is not an admin.
    #[error("MKE 3 refused the request (403): {0}")]
    Forbidden(String),
    #[error("not found (404): {0}")]
    NotFound(String),
    /// Connection failures, 5xx and 429 after the retries.
    #[error("MKE 3 unavailable: {0}")]
    Unavailable(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// TLS verification failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// A body that does not have the documented shape; names the JSON path.
    #[error("unexpected response from {endpoint}: {detail}")]
    Shape { endpoint: String, detail: String },
}

impl Mke3Error {
    pub fn is_transient(&self) -> bool {
        matches!(self, Mke3Error::Unavailable(_) | Mke3Error::Timeout(_))
    }
}

/// The MKE 3 API. Paged methods take `start` (`None` for the first page) and a page size.
///
/// Behaviour every implementation must have (checked by the conformance suite): every page is
/// returned in order and following `next` until `None` yields each item exactly once; errors are
/// the kinds above; `put_config_toml` returns the server's message.
#[async_trait::async_trait]
pub trait Mke3Api: Send + Sync + fmt::Debug {
    /// `GET /_ping` succeeds.
    async fn ping(&self) -> Result<(), Mke3Error>;
    /// The MKE version, e.g. `3.7.15`.
    async fn version(&self) -> Result<String, Mke3Error>;
    /// `GET /api/ucp/config-toml`.
    async fn config_toml(&self) -> Result<String, Mke3Error>;
    /// `PUT /api/ucp/config-toml`; returns the `message` of the answer.
    async fn put_config_toml(&self, toml: &str) -> Result<String, Mke3Error>;
    /// `GET /enzi/v0/accounts?filter=all`.
    async fn accounts(&self, start: Option<&str>, limit: u32) -> Result<Page<Account>, Mke3Error>;
    /// `GET /enzi/v0/accounts/{org}/members`.
    async fn org_members(
        &self,
        org: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Member>, Mke3Error>;
    /// `GET /enzi/v0/accounts/{org}/teams`.
    async fn teams(
        &self,
        org: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Team>, Mke3Error>;
    /// `GET /enzi/v0/accounts/{org}/teams/{team}/members`.
    async fn team_members(
        &self,
        org: &str,
        team: &str,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Member>, Mke3Error>;
    /// `GET /roles`.
    async fn roles(&self) -> Result<Vec<Role>, Mke3Error>;
    /// `GET /collections`, all pages.
    async fn collections(
        &self,
        start: Option<&str>,
        limit: u32,
    ) -> Result<Page<Collection>, Mke3Error>;
    /// `.grants` of `GET /collectionGrants?subjectType=all&showPaths=true`.
    async fn grants(&self, start: Option<&str>, limit: u32) -> Result<Page<Grant>, Mke3Error>;
}

impl From<Mke3Error> for ferry_core::engine::StepError {
    fn from(e: Mke3Error) -> Self {
        let transient = e.is_transient();
        ferry_core::engine::StepError::caused("mke 3", e, transient)
    }
}
