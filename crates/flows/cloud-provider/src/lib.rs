//! # ferry-flow-cloud-provider
//!
//! In-tree → out-of-tree cloud provider migration with leader migration, for Rancher RKE2 and
//! RKE clusters on AWS: the cluster moves state by state, each state verified from the
//! downstream cluster's API before the next, and every state can be left back to the one
//! before it.
//!
//! - [`leader`]: the `LeaderMigrationConfiguration` each controller manager needs, by version.
//! - [`chart`]: the AWS cloud-controller-manager as installed (HelmChart, values, RBAC).
//! - [`rke2`]: the fields of Rancher's `Cluster` each state sets.
//! - [`rke`], [`yaml_edit`]: RKE's `cluster.yml` of each state, edited in place.
//! - [`facts`], [`checks`]: what the downstream cluster shows, and what each state needs.
//! - [`flow`], [`steps`]: the plan of states and the steps that move between them.

pub mod chart;
pub mod checks;
pub mod facts;
pub mod flow;
pub mod leader;
pub mod rke;
pub mod rke2;
pub mod steps;
pub mod yaml_edit;

pub use facts::Distro;
pub use flow::{
    CloudProviderError, CloudProviderFlow, ClusterRef, FLOW, Inputs, Journaled, MigrationReport,
    RkeInputs, RkeJournaled, StatePlan,
};
