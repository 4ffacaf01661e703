//! # ferry-flow-mke
//!
//! The MKE 3.7/3.8 → MKE 4k flow on `ferry-core`'s engine and lifecycle ([`MkeFlow`]): gather
//! facts read-only, run the pre-upgrade checks ([`checks`]), back up MKE 3's etcd, export the
//! configuration and the access model ([`export_rbac`]), convert and translate them once, move the
//! managers to k0s one at a time and the workers in a sliding window, install the MKE 4
//! components, remove MKE 3, and print the Upgrade Summary ([`summary`]).
//!
//! The MKE 3 API is a backend only this flow reads, so its trait ([`mke3::Mke3Api`]) lives
//! here; `ferry-mke3-api` implements it over HTTPS and `ferry-testing` fakes it.

pub mod checks;
pub mod export;
pub mod flow;
pub mod mke3;
pub mod results;
pub mod steps;
pub mod summary;

pub use export::export_rbac;
pub use flow::{
    Discovered, FLOW, HostOrder, Inputs, Journaled, K0S_VERSION, MkeError, MkeFlow, MkeReport,
    SIGNAL_ABORT,
};
