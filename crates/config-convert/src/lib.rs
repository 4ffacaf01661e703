//! # ferry-config-convert
//!
//! Pure, synchronous conversion of an MKE 3 config-toml into an MKE 4k `MkeConfig`.

pub mod flags;
pub mod kubelet;
