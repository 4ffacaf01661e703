//! # ferry-config-convert
//!
//! Pure, synchronous conversion of an MKE 3 config-toml into an MKE 4k `MkeConfig`, as
//! `mkectl upgrade` and `mkectl init --mke3-config` do, with a report in which every key of the
//! source is accounted for: converted, not supported (with a reason), skipped (default, empty or
//! switched off by its gate), or unknown. Nothing is dropped silently.
//!
//! ```
//! let toml = "[cluster_config]\n  calico_kdd = true\n  kubelet_max_pods = 200\n";
//! let conversion = ferry_config_convert::convert(toml, &Default::default()).unwrap();
//! assert_eq!(conversion.config.spec.kubelet.max_pods, 200);
//! let yaml = ferry_config_convert::to_yaml(&conversion.config).unwrap();
//! assert!(yaml.contains("maxPods: 200"));
//! ```
//!
//! The crate does no IO: callers read the file and write the results. The rules are in
//! `reference/conversion-rules.md`; the MKE 3 keys are data in [`mke3::schema`].

pub mod convert;
mod error;
pub mod flags;
pub mod go;
pub mod kdd;
pub mod kubelet;
pub mod mke3;
pub mod mke4;
pub mod options;
pub mod report;
pub mod yaml;

pub use convert::{
    Conversion, FlagNote, FlagOutcome, KeyReport, Note, NoteKind, Status, analyze, convert,
    default_with_options,
};
pub use error::{Error, ParseError};
pub use mke4::MkeConfig;
pub use options::{HostInput, Options};

/// The MKE 4k YAML of a configuration, as `mkectl` lays it out.
pub fn to_yaml(config: &MkeConfig) -> Result<String, serde_json::Error> {
    yaml::to_string(config)
}

/// Parses an MKE 4k YAML back into the model.
pub fn from_yaml(text: &str) -> Result<MkeConfig, serde_yaml::Error> {
    yaml::from_str(text)
}

/// The default configuration `mkectl init` prints for `version`.
pub fn default_config(version: &str) -> Result<MkeConfig, Error> {
    MkeConfig::defaults(version)
}
