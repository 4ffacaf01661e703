//! Conformance suites: one per backend trait, run against the in-memory fakes and against every
//! real implementation. Every backend crate runs them in its tests.

pub mod cluster;
pub mod host_exec;
pub mod mke3;
