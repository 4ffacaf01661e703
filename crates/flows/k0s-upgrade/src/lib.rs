//! # ferry-flow-k0s-upgrade
//!
//! The rolling version upgrade of a k0s cluster (an MKE 4k cluster is one), with the safety and
//! availability checks Kismatic gave its users, computed from the live cluster.
//!
//! - [`discover`]: what the cluster is, read-only: each host's facts and k0s state (`k0s
//!   status`: role, version, whether it runs workloads), the etcd members (`k0s etcd
//!   member-list` on a running controller), and a snapshot of the Kubernetes objects the checks
//!   need (one list per kind, see `ferry_core::cluster::snapshot`).
//! - [`check`]: the targets of the upgrade (one per host, or one per Node without hosts), the
//!   safety report of `ferry-safety`, and each host's readiness (k0s running, free disk) in
//!   the same report.

pub mod check;
pub mod discover;

pub use check::{CheckOptions, Readiness, check};
pub use discover::{DiscoverError, Discovered, HostState, discover, discover_api};
