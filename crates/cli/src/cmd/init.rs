//! `ferry init`: the MKE 4k configuration, default or converted from MKE 3.

use std::path::PathBuf;

use crate::{CliError, Format, Output};

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The MKE 3 config-toml to convert (as exported by `GET /api/ucp/config-toml`).
    #[arg(long, value_name = "FILE")]
    pub mke3_config: Option<PathBuf>,
    /// Write the MKE 4k YAML here (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// Output format of the report.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

pub fn run(_args: &InitArgs, _out: &mut Output<'_>) -> Result<u8, CliError> {
    Err(CliError::Usage("ferry init is being built".into()))
}
