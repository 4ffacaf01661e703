//! The safety and availability checks of a rolling upgrade, over a snapshot of the live cluster.
//!
//! Pure and synchronous: the caller reads the cluster (nodes, pods, controllers, claims,
//! volumes, disruption budgets, the API server endpoints, etcd members) into a
//! [`model::Snapshot`], names the machines of the upgrade as [`checks::Target`]s, and gets a
//! [`report::Report`] with one line per node and one finding per problem, in the layout
//! Kismatic's users know (`Validate Online Upgrade`) or as JSON.
//!
//! ```
//! use ferry_safety::{check, model::*, Options, Target};
//!
//! let snapshot = Snapshot {
//!     nodes: vec![Node { name: "w1".into(), ready: true, ..Node::default() }],
//!     pods: vec![Pod {
//!         namespace: "shop".into(),
//!         name: "cart".into(),
//!         node: Some("w1".into()),
//!         phase: "Running".into(),
//!         ready: true,
//!         ..Pod::default()
//!     }],
//!     ..Snapshot::default()
//! };
//! let targets = ferry_safety::targets_from_nodes(&snapshot);
//! let report = check(&snapshot, &targets, &Options::default());
//! assert!(!report.is_ok());
//! assert!(report.render().contains(r#"The pod "shop/cart" is not being managed by a controller."#));
//! ```

pub mod capacity;
pub mod checks;
pub mod model;
pub mod report;

pub use capacity::{CapacityReport, NoRoom, NodeTurn, Order, capacity};
pub use checks::{NodeSelector, Options, SelectorError, Target, check, targets_from_nodes};
pub use report::{Class, Finding, Kind, NodeReport, Report, Status};
