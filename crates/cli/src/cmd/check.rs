//! `ferry check ...`: offline checks of input files.

use std::path::PathBuf;

use ferry_config_convert::{self as convert, Options};

use crate::{CliError, Output, exit, fsio};

/// File names of the two compatibility reports in `--output`.
pub const SORTED_REPORT: &str = "mke3-compatibility.sorted.toml";
pub const HUMAN_REPORT: &str = "mke3-compatibility.txt";

#[derive(Debug, clap::Subcommand)]
pub enum CheckCommand {
    /// Check an MKE 3 config-toml for MKE 4k compatibility, as `mkectl check mke3` does. Prints
    /// the human-readable report; with --output writes both reports (the TOML regrouped by
    /// status, and the tree of setting titles). Exits 3 when the upgrade is blocked.
    Mke3Config {
        /// The MKE 3 config-toml.
        file: PathBuf,
        /// Directory for the two reports (created if missing).
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Print secrets (passwords, passphrases, client secrets) in clear in the reports.
        #[arg(long)]
        show_secrets: bool,
    },
}

pub fn run(c: &CheckCommand, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        CheckCommand::Mke3Config {
            file,
            output,
            show_secrets,
        } => {
            let text = fsio::read_text_input(file)?;
            let options = Options {
                redact_reports: !show_secrets,
                ..Options::default()
            };
            let conversion = convert::analyze(&text, &options)
                .map_err(|e| super::init::conversion_error(file, &e))?;
            let sorted = convert::report::sorted_toml(&conversion);
            let human = convert::report::human_readable(&conversion);
            match output {
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(|source| CliError::Output {
                        path: dir.clone(),
                        source,
                    })?;
                    fsio::write_atomic(&dir.join(SORTED_REPORT), sorted.as_bytes())?;
                    fsio::write_atomic(&dir.join(HUMAN_REPORT), human.as_bytes())?;
                    out.info(&format!(
                        "wrote {} and {}\n",
                        dir.join(SORTED_REPORT).display(),
                        dir.join(HUMAN_REPORT).display()
                    ));
                }
                None => out.result(&human),
            }
            out.info(&convert::report::configuration_summary(&conversion));
            let errors = conversion
                .flags
                .iter()
                .any(|f| matches!(f.outcome, convert::FlagOutcome::Error { .. }));
            if let Some(b) = conversion.blockers.first() {
                out.error(&CliError::Blocked(format!(
                    "unable to generate upgrade config: unsupported configuration for mke4 upgrade: {b}"
                )));
                return Ok(exit::code(exit::Ending::ChecksFailed));
            }
            if errors {
                out.error(&CliError::Blocked(
                    "repeated flags: see \"Custom flags not converted\"".into(),
                ));
                return Ok(exit::code(exit::Ending::ChecksFailed));
            }
            Ok(exit::code(exit::Ending::Done))
        }
    }
}
