//! # ferry-mke3-api
//!
//! The MKE 3 backend of ferry. It will implement `ferry-core`'s `Mke3Api` over the MKE 3 HTTPS
//! API: login with a bearer token held as a secret, version, config TOML (GET, and PUT for the
//! calico KDD switch), accounts, org and team members, roles, collections and grants, following
//! every page, with TLS verification on by default and retries on transient errors only.
