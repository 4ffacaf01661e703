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
//! - [`flow`]: the upgrade on ferry-core's engine: controllers one at a time behind a quorum
//!   gate, each backed up first, then workers in a window; per node cordon and drain (online),
//!   stop, swap the binary, start, wait for the new version, restore the cordon state; every
//!   step undone on failure or Ctrl-C, journaled for resume and rollback.

pub mod check;
pub mod discover;
pub mod flow;
pub mod steps;
pub mod version;

pub use check::{CheckOptions, Readiness, check};
pub use discover::{DiscoverError, Discovered, HostState, discover, discover_api};
pub use flow::{FLOW, Inputs, Journaled, K0sUpgradeError, K0sUpgradeFlow, Mode, UpgradeReport};
