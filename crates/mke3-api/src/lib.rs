//! # ferry-mke3-api
//!
//! The MKE 3 backend of ferry: [`Mke3Client`] implements the MKE flow's [`Mke3Api`] over the
//! MKE 3 HTTPS API (`ferry_flow_mke::export_rbac` reads the whole access model through it).
//!
//! - **Login.** `POST /auth/login`; the bearer token (and the password, kept to log in again)
//!   are held as [`Secret`]s and never logged. When an authenticated call is refused with 401
//!   (the MKE 3 session ended: 60 minutes by default, and a migration runs for hours) the client
//!   logs in once more and repeats the call once; calls refused together share that login.
//! - **TLS.** Verification is always on, against the public web roots plus the CA given with
//!   [`Options::ca_cert_pem`] (MKE 3 clusters usually have their own CA). Only
//!   [`Options::insecure_skip_tls_verify`] turns it off, with a warning.
//! - **Timeouts and retries.** Every request has a connect timeout and a total timeout.
//!   Transient failures (connection errors, dropped connections, timeouts, 5xx, 429) are retried
//!   with exponential backoff (429 honours `Retry-After`, capped); nothing else is retried.
//! - **Errors.** 401, 403 and 404 map to their [`Mke3Error`] kinds; a body without the
//!   documented shape is [`Mke3Error::Shape`] naming the endpoint and the JSON path.

mod client;

pub use client::{ClientError, Mke3Client, Options};
pub use ferry_core::Secret;
pub use ferry_flow_mke::mke3::{Mke3Api, Mke3Error};
