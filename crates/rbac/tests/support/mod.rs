//! Shared test support: a Kubernetes RBAC evaluator, the reference access model and the checks
//! every translation must pass.

#![allow(dead_code)]

pub mod checks;
pub mod evaluator;
pub mod model;
