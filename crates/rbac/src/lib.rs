//! # ferry-rbac
//!
//! Pure, synchronous translation of an MKE 3 access model (orgs, teams, users, roles,
//! collections and grants, as exported from the MKE 3 API) into Kubernetes RBAC objects:
//! `<org>-org` and `<team>-team` aggregated ClusterRoles and their bindings, with a report of
//! everything that has no Kubernetes equivalent. No IO: the CLI reads and writes the files.
