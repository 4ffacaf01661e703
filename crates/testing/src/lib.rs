//! # ferry-testing
//!
//! Faithful in-memory fakes of every backend trait, and the conformance suites that the fakes and
//! every real backend pass ([`conformance`]). A dev-dependency only: nothing here reaches the
//! `ferry` binary.
//!
//! One [`World`] holds the state a real MKE 3 cluster has: per host the files, systemd services
//! and Docker containers (MCR with the `ucp-*` containers, volumes under
//! `/var/lib/docker/volumes`, swarm membership in `/var/lib/docker/swarm`), and k0s once
//! installed; the Kubernetes side (nodes with readiness derived from the hosts, pods with owners,
//! PDBs, cordon state, applied objects); and the MKE 3 API (version, config TOML, accounts, orgs,
//! teams, roles, collections, grants). The fakes keep that state and fail as the real systems do:
//! a container cannot start on a port k0s holds, the Kubernetes API is down when no API server
//! runs, MKE 3 answers only while `ucp-controller` runs with an etcd quorum.
//!
//! On top: fault injection (fail or interrupt the Nth call of a step, of a host, or overall;
//! unreachable hosts), a recorder of every call with its argv, and a [`World::digest`] of the
//! whole state for "the cluster ends where it started" assertions.

pub mod cluster;
pub mod conformance;
pub mod host;
pub mod mke3;
pub mod world;

pub use cluster::{FakeCluster, FakeClusterSetup};
pub use host::{FakeConnector, FakeFaultControl, FakeHost};
pub use mke3::{FakeMke3, FakeMke3Setup};
pub use world::{Call, Fault, FaultAction, FaultHooks, FaultWhen, Fixture, World, WorldState};
