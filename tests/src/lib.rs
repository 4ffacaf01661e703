//! # ferry-tests
//!
//! Library-level end-to-end scenarios: whole migrations driven through the engine of
//! `ferry-core` against its in-memory fakes, with fault injection at every step, and conversions
//! chained with RBAC translation. The scenarios live in `tests/`; this library holds their shared
//! fixtures.
