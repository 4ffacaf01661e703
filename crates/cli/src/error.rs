//! The CLI's error type and its mapping to exit codes.

use std::path::PathBuf;

use crate::exit;

/// Every way a ferry command can fail, each with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input file cannot be used (missing, unreadable, a directory, empty, too large).
    #[error("{path}: {problem}")]
    Input { path: PathBuf, problem: String },

    /// The input file was read but its content is invalid. `message` already names the line,
    /// column and key where the library knows them.
    #[error("{path}:{message}")]
    InvalidContent { path: PathBuf, message: String },

    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),

    /// A blocking condition: the operation is refused and nothing was written.
    #[error("{0}")]
    Blocked(String),

    /// Something went wrong that is not the input's fault (a rendering that failed).
    #[error("internal error: {0}")]
    Internal(String),

    /// An output file could not be written; nothing was left half-written.
    #[error("cannot write {path}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// How a command failing with this error ended (see [`crate::exit::code`]).
    pub fn ending(&self) -> exit::Ending {
        match self {
            CliError::Input { .. } | CliError::InvalidContent { .. } | CliError::Usage(_) => {
                exit::Ending::InvalidInput
            }
            CliError::Blocked(_) => exit::Ending::ChecksFailed,
            CliError::Output { .. } | CliError::Internal(_) => exit::Ending::Failed,
        }
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit::code(self.ending())
    }
}

/// A support dump that could not be made: no journal (or an unreadable one) is the input's
/// fault, a bundle that cannot be written is not.
impl From<ferry_core::support::SupportError> for CliError {
    fn from(e: ferry_core::support::SupportError) -> Self {
        use ferry_core::support::SupportError;
        match e {
            SupportError::NoJournal { dir } => CliError::Input {
                path: dir,
                problem: format!(
                    "no journal ({}) in this directory: no run to make a support dump of",
                    ferry_core::journal::JOURNAL_FILE
                ),
            },
            SupportError::Journal { dir, source } => CliError::Input {
                path: dir,
                problem: format!("cannot read the journal: {source}"),
            },
            SupportError::CreateDir { path, source } | SupportError::Write { path, source } => {
                CliError::Output { path, source }
            }
        }
    }
}
