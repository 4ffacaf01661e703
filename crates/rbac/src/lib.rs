//! # ferry-rbac
//!
//! Pure, synchronous translation of an MKE 3 access model (orgs, teams, users, roles,
//! collections and grants, as exported from the MKE 3 API) into Kubernetes RBAC objects:
//! `<org>-org` and `<team>-team` aggregated ClusterRoles and their bindings, with a report of
//! everything that has no Kubernetes equivalent. No IO: the CLI reads and writes the files.
//!
//! The design is `reference/rbac-mapping.md`. Modules:
//! * [`export`]: the `mke3-rbac-export.json` input, in the MKE 3 API's own JSON shapes;
//! * [`translate`]: the translation ([`translate()`], [`Options`], [`Translation`]);
//! * [`names`]: DNS-1123 sanitisation and deterministic collision resolution, shared with other
//!   crates that name generated objects;
//! * [`k8s`]: the `rbac.authorization.k8s.io/v1` objects emitted;
//! * [`emit`]: the only YAML code (write the multi-document stream, read it back);
//! * [`report`]: counts, per-grant results, notes and the Upgrade Summary sections.
//!
//! ```
//! let export = ferry_rbac::Export::from_json(r#"{"version": 1, "accounts": []}"#)?;
//! let t = ferry_rbac::translate(&export, &ferry_rbac::Options::default())?;
//! assert!(t.to_yaml()?.contains("name: none"));
//! # Ok::<(), ferry_rbac::RbacError>(())
//! ```

pub mod emit;
pub mod error;
pub mod export;
pub mod k8s;
pub mod names;
pub mod report;
pub mod translate;

pub use error::RbacError;
pub use export::Export;
pub use report::Report;
pub use translate::{Options, Translation, translate};
