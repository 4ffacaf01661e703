//! `ferry rollback`: undo everything a crashed, interrupted or incompletely rolled-back run did,
//! from its journal in the state directory, whichever flow wrote it.

use std::path::PathBuf;

use ferry_core::run::Finish;

use super::resume::{Mode, journaled};
use super::upgrade::report_error;
use crate::exit::{self, Ending};
use crate::session::{LogArgs, RemoteArgs, Runtime, state_dir};
use crate::{CliError, Format, Output};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit codes: 0 rolled back (the cluster is back where the run found it), 5 the rollback is \
incomplete (the journal says what is left; run it again once the cause is fixed), 130 \
interrupted twice, 1 nothing to roll back or another error.")]
pub struct RollbackArgs {
    /// The state directory of the run (default: $XDG_STATE_HOME/ferry/<external address>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The external address of the cluster, to find the default state directory.
    #[arg(long, value_name = "ADDRESS")]
    pub external_address: Option<String>,
    /// MKE 3 admin password (visible to other users of the machine: prefer
    /// MKE3_ADMIN_PASSWORD or the prompt).
    #[arg(long, value_name = "PASSWORD")]
    pub mke3_admin_password: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

pub fn run_rollback_with(
    rt: &Runtime,
    args: &RollbackArgs,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    let state = state_dir(
        rt,
        args.state_dir.as_deref(),
        args.external_address.as_deref(),
    )?;
    let Some(r) = journaled(
        rt,
        &state,
        args.mke3_admin_password.as_deref(),
        &args.remote,
        args.log,
        out,
        Mode::Rollback,
    )?
    else {
        return Ok(exit::code(Ending::Failed));
    };
    Ok(match r {
        Err(e) => {
            out.error(&e);
            exit::code(Ending::Failed)
        }
        Ok(Err(e)) => report_error(&e, Format::Text, out),
        Ok(Ok(fin)) => {
            if let Finish::RollbackIncomplete { remaining, .. } = &fin {
                out.info(&format!(
                    "Still applied (undo order): {}\n",
                    remaining.join(", ")
                ));
            }
            match fin {
                // Rolled back is what `ferry rollback` was asked for.
                Finish::RolledBack { .. } => exit::code(Ending::Done),
                Finish::RollbackIncomplete { .. } | Finish::Interrupted => {
                    exit::code(Ending::of_finish(&fin))
                }
                other => {
                    out.info(&format!(
                        "unexpected outcome of a rollback: {}\n",
                        match other {
                            Finish::DryRun { .. } => "a dry run",
                            _ => "completed",
                        }
                    ));
                    exit::code(Ending::Failed)
                }
            }
        }
    })
}
