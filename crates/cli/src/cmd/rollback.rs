//! `ferry rollback`: undo everything a crashed, interrupted or incompletely rolled-back run did,
//! from its journal in the state directory, whichever flow wrote it.

use ferry_core::run::Finish;

use super::resume::{JournaledRun, Mode, journaled};
use super::upgrade::report_error;
use crate::exit::{self, Ending};
use crate::session::{JournalArgs, Runtime};
use crate::{CliError, Format, Output};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit codes: 0 rolled back (the cluster is back where the run found it), 5 the rollback is \
incomplete (the journal says what is left; run it again once the cause is fixed), 130 \
interrupted twice, 1 nothing to roll back or another error.")]
pub struct RollbackArgs {
    #[command(flatten)]
    pub journal: JournalArgs,
}

pub fn run_rollback_with(
    rt: &Runtime,
    args: &RollbackArgs,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    Ok(match journaled(rt, &args.journal, out, Mode::Rollback)? {
        None => exit::code(Ending::Failed),
        Some(JournaledRun::Mke(r)) => outcome(r, out),
        Some(JournaledRun::K0s(r)) => outcome(r, out),
        Some(JournaledRun::NodeOs(r)) => outcome(r, out),
        Some(JournaledRun::Cloud(r)) => outcome(r, out),
    })
}

/// The exit code of a rollback of any flow, after printing what is left when it is incomplete.
fn outcome<R, E: exit::FlowError>(
    r: Result<Result<Finish<R>, ferry_core::run::RunError<E>>, crate::session::DriveError>,
    out: &mut Output<'_>,
) -> u8 {
    match r {
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
    }
}
