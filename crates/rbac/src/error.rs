//! The crate's one error type. Findings that are not failures (grants not converted, renames,
//! inactive users, dangling references) are not errors: they are notes in the
//! [`crate::report::Report`].

/// Every way reading an export or writing manifests can fail.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The export is not valid JSON or does not have the export's shape. `path` is the JSON path
    /// of the offending value (`accounts[3].isOrg`; `.` for the document itself).
    #[error("invalid export at {path} (line {line}, column {column}): {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// The export declares a format version this crate does not read.
    #[error("unsupported export version {found} (this ferry reads version {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },

    /// Manifests could not be written or read back as YAML.
    #[error("yaml: {0}")]
    Yaml(String),
}
