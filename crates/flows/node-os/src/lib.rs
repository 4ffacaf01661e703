//! # ferry-flow-node-os
//!
//! In-place node OS replacement without downtime: every node of a cluster gets a new operating
//! system while the workloads keep running, one window of workers at a time, then the
//! controllers one at a time, the first controller (the one the others joined) last.
//!
//! - [`flow`]: discovery, the capacity and safety report of every node in the order it goes
//!   (`ferry_safety::capacity` and the k0s upgrade's checks), the plan, and the flow on
//!   ferry-core's engine.
//! - [`steps`]: per host, remove-before-add (keep its configuration, drain, remove it from the
//!   cluster, reinstall, add it back, wait Ready, restore its cordon state) or add-before-remove
//!   (the new host joins first, then the old one is drained and removed); the quorum gate.
//!
//! A reinstall cannot be taken back: that step is one-way. A rollback adds every removed host
//! back, on whatever OS it has by then, and removes every new host it added.

pub mod flow;
pub mod kubean;
pub mod steps;

pub use ferry_safety::Order;
pub use flow::{
    Backend, FLOW, Inputs, Journaled, K0sSetup, KubeanInputs, NodeOsError, NodeOsFlow, PlannedHost,
    ReplaceReport, TargetOs,
};
