//! # ferry-kube-api
//!
//! The Kubernetes backend of ferry. It will implement `ferry-core`'s `ClusterApi` with kube-rs:
//! server version, nodes with roles and readiness, pods with owners for the safety checks, PDBs,
//! cordon, drain through the Eviction API (PDBs respected), server-side apply with field manager
//! `ferry`, get, and delete where a missing object is not an error.
