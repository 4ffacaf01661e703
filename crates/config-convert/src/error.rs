//! Errors of the conversion. Findings that are not failures (notes, unconverted flags) are data
//! in [`crate::Conversion`], not errors.

use std::fmt;

/// Where and why the input could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem.
    pub column: usize,
    /// The dotted key path the problem is in, when one can be named.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(
                f,
                "{}:{}: key `{}`: {}",
                self.line, self.column, key, self.message
            ),
            None => write!(f, "{}:{}: {}", self.line, self.column, self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TOML is malformed or a key has the wrong type.
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// A command-line option is invalid (the message is the documented validation text).
    #[error("{0}")]
    InvalidOption(String),

    /// A blocking condition: the cluster cannot be upgraded as it is. The whole report is in
    /// `conversion`, so a caller can still print it; no MKE 4 file may be written.
    #[error(
        "unable to generate upgrade config: unsupported configuration for mke4 upgrade: {reason}"
    )]
    Blocked {
        reason: String,
        conversion: Box<crate::Conversion>,
    },

    /// Flags that would be written twice to the same map. Every occurrence is in
    /// `conversion.flags`.
    #[error("repeated flags: {}", names.join(", "))]
    RepeatedFlags {
        names: Vec<String>,
        conversion: Box<crate::Conversion>,
    },

    /// The target MKE 4k version is not one ferry has defaults for.
    #[error("unsupported target MKE 4k version {version:?}: supported are {}", crate::mke4::SUPPORTED_VERSIONS.join(", "))]
    UnsupportedVersion { version: String },
}

impl Error {
    /// The full report of a conversion that was refused after it was produced.
    pub fn conversion(&self) -> Option<&crate::Conversion> {
        match self {
            Error::Blocked { conversion, .. } | Error::RepeatedFlags { conversion, .. } => {
                Some(conversion)
            }
            _ => None,
        }
    }
}
