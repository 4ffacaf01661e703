//! Conformance suites: one per backend trait, run against the in-memory fakes and against every
//! real implementation. Available with the `testing` feature.

pub mod cluster;
pub mod host_exec;
pub mod mke3;
