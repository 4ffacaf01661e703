//! `ferry rollback`: undo everything a crashed, interrupted or incompletely rolled-back run did,
//! from its journal in the state directory.

use std::path::PathBuf;

use ferry_core::journal::Replay;
use ferry_core::mke::{self, Finish};

use super::upgrade::{
    LogArgs, RemoteArgs, Runtime, drive, journaled_request, report_error, state_dir,
};
use crate::{CliError, Format, Output, exit};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit codes: 0 rolled back (the cluster is back on MKE 3), 5 the rollback is incomplete (the \
journal says what is left; run it again once the cause is fixed), 130 interrupted twice, 1 \
nothing to roll back or another error.")]
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
    let replay = match Replay::read(&state) {
        Ok(r) => r,
        Err(e) => {
            out.error(&e);
            return Ok(exit::FAILED);
        }
    };
    if replay.is_finished() {
        out.info(&format!(
            "run {} already finished ({}); there is nothing to roll back\n",
            replay.run_id,
            replay.finished.as_deref().unwrap_or("")
        ));
        return Ok(exit::FAILED);
    }
    let Some(request) = journaled_request(
        rt,
        &replay,
        &state,
        args.mke3_admin_password.as_deref(),
        &args.remote,
        out,
    )?
    else {
        return Ok(exit::FAILED);
    };
    let r = drive(rt, args.log, out, request, state, mke::rollback);
    Ok(match r {
        Err(e) => {
            out.error(&e);
            exit::FAILED
        }
        Ok(Err(e)) => report_error(e, Format::Text, out),
        Ok(Ok(Finish::RolledBack { .. })) => exit::OK,
        Ok(Ok(Finish::RollbackIncomplete { remaining, .. })) => {
            out.info(&format!(
                "Still applied (undo order): {}\n",
                remaining.join(", ")
            ));
            exit::ROLLBACK_INCOMPLETE
        }
        Ok(Ok(Finish::Interrupted)) => exit::INTERRUPTED,
        Ok(Ok(other)) => {
            out.info(&format!("unexpected outcome of a rollback: {other:?}\n"));
            exit::FAILED
        }
    })
}
