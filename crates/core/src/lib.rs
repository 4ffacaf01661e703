//! # ferry-core
//!
//! The heart of ferry, free of any transport. It will hold:
//!
//! - the **model** of a migration: hosts, roles, cluster snapshots and host facts;
//! - the **engine**: a plan of phases and steps, each step with a stable id, an `apply` that
//!   returns the data needed to undo it, an `undo`, and a reversibility; managers move one at a
//!   time and workers in bounded batches; any failure or the first Ctrl-C rolls every completed
//!   step back in reverse order; a fsynced JSON-lines journal lets `resume` and `rollback` work
//!   after a crash; a run lock keeps one run per cluster;
//! - the **checks**: pure functions over gathered facts that return a report;
//! - the **backend traits** (`HostExec` + `Connector`, `ClusterApi`, `Mke3Api`) that the
//!   `ferry-ssh-exec`, `ferry-kube-api` and `ferry-mke3-api` crates implement, and, behind the
//!   `testing` feature, faithful in-memory fakes of each with one conformance suite per trait.
//!
//! This crate never depends on an SSH, Kubernetes or HTTP client: backends map their native
//! errors into core's error types so the engine can decide about retries and undo without knowing
//! the transport.

pub mod checks;
pub mod cluster;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod engine;
pub mod exec;
pub mod hosts;
pub mod journal;
pub mod lock;
pub mod mke;
pub mod mke3;
pub mod secret;
pub mod summary;
#[cfg(feature = "testing")]
pub mod testing;

pub use cluster::{ClusterApi, ClusterError};
pub use exec::{Cmd, Connector, ExecError, FileSpec, HostExec, Output};
pub use hosts::HostSpec;
pub use mke3::{Mke3Api, Mke3Error};
pub use secret::Secret;
