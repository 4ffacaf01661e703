//! # ferry-core
//!
//! The engine every ferry flow runs on, free of any transport and of any one flow:
//!
//! - the **engine** ([`engine`]): a plan of phases and steps, each step with a stable id, an
//!   `apply` that returns typed undo data, an `undo`, and a reversibility; control-plane hosts one
//!   at a time behind a quorum gate, workers in a sliding window; any failure or the first Ctrl-C
//!   rolls every completed step back in reverse order;
//! - the **run lifecycle** ([`run`]): the [`run::Flow`] trait each flow implements, and connect,
//!   run lock, host locks, journal, resume and rollback written once for all of them;
//! - the **journal** ([`journal`]) and the **locks** ([`lock`]);
//! - **reusable node operations** ([`node`]: drain, uncordon, wait for Ready) and **k0s host
//!   operations** ([`k0s`]);
//! - **host facts** ([`facts`]) and **check reports** ([`checks`]);
//! - the **support dump** ([`support`]): per host logs and state, the journal and the summary,
//!   every secret redacted, for a run that failed, was rolled back or was interrupted;
//! - the **backend traits** [`HostExec`] + [`Connector`] and [`ClusterApi`], which
//!   `ferry-ssh-exec` and `ferry-kube-api` implement; `ferry-testing` has their fakes and the
//!   conformance suites every implementation passes.
//!
//! This crate never depends on an SSH, Kubernetes or HTTP client, nor on a flow: backends map
//! their native errors into core's error types so the engine can decide about retries and undo
//! without knowing the transport.

pub mod checks;
pub mod cluster;
pub mod engine;
pub mod exec;
pub mod facts;
pub mod hosts;
pub mod journal;
pub mod k0s;
pub mod lock;
pub mod node;
pub mod run;
pub mod secret;
pub mod state;
pub mod support;

pub use cluster::{ClusterApi, ClusterError};
pub use exec::{Cmd, Connector, ExecError, FileSpec, HostExec, HostKeyChange, Output, Reinstalled};
pub use hosts::HostSpec;
pub use secret::Secret;
