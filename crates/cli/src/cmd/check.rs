//! `ferry check ...`: offline checks of input files.

use std::path::PathBuf;

use crate::{CliError, Output};

#[derive(Debug, clap::Subcommand)]
pub enum CheckCommand {
    /// Check an MKE 3 config-toml for MKE 4k compatibility and write both reports.
    Mke3Config {
        /// The MKE 3 config-toml.
        file: PathBuf,
        /// Directory for the two reports.
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
}

pub fn run(_c: &CheckCommand, _out: &mut Output<'_>) -> Result<u8, CliError> {
    Err(CliError::Usage("ferry check is being built".into()))
}
