//! `ferry resume`: continue the run recorded in a state directory, whichever flow wrote it; and
//! what `ferry rollback` shares with it: the journal picks the flow (by its name) and the hosts,
//! the password is asked again (it is never journaled).

use std::path::{Path, PathBuf};

use ferry_core::journal::Replay;
use ferry_core::run;
use ferry_flow_mke::{Journaled, MkeFlow};

use super::k0s::K0sRun;
use super::upgrade::{MkeRun, finish};
use crate::exit::{self, Ending};
use crate::session::{
    Access, BackendRequest, DriveError, JournalArgs, RemoteArgs, Runtime, drive, password,
    state_dir,
};
use crate::{CliError, Format, Output};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The run's journal names its flow, its hosts and its inputs: nothing else is needed but the \
password (MKE3_ADMIN_PASSWORD, or the prompt).

Exit codes: 0 completed, 4 failed and rolled back cleanly, 5 failed and the rollback is \
incomplete, 130 interrupted twice, 1 nothing to resume or another error.")]
pub struct ResumeArgs {
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Write the new mke4.yaml here (atomically) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// Format of the result.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// What to do with a journaled run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Resume,
    Rollback,
}

/// A journaled run, by the flow that wrote it.
pub(crate) enum JournaledRun {
    Mke(MkeRun),
    K0s(K0sRun),
    NodeOs(super::node::NodeOsRun),
    Cloud(super::cloud::CloudRun),
}

/// Prints what a resumed run of any flow came to; its exit code.
pub(crate) fn finish_any(
    r: Option<JournaledRun>,
    config_out: Option<&Path>,
    format: Format,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    match r {
        Some(JournaledRun::Mke(r)) => finish(r, config_out, format, out),
        Some(JournaledRun::K0s(r)) => Ok(super::k0s::finish(r, None, format, out)),
        Some(JournaledRun::NodeOs(r)) => Ok(super::node::finish(r, None, format, out)),
        Some(JournaledRun::Cloud(r)) => Ok(super::cloud::finish(r, format, out)),
        None => Ok(exit::code(Ending::Failed)),
    }
}

/// Runs the journaled run of the state directory forward or back, with the flow its journal
/// names. `None` after the reason it cannot was printed.
pub(crate) fn journaled(
    rt: &Runtime,
    args: &JournalArgs,
    out: &mut Output<'_>,
    mode: Mode,
) -> Result<Option<JournaledRun>, CliError> {
    let state = state_dir(
        rt,
        args.state_dir.as_deref(),
        args.external_address.as_deref(),
    )?;
    let state = state.as_path();
    let replay = match run::journaled_run(state) {
        Ok(r) => r,
        Err(e) => {
            out.error(&e);
            return Ok(None);
        }
    };
    if replay.is_finished() {
        let what = match mode {
            Mode::Resume => "resume",
            Mode::Rollback => "roll back",
        };
        out.info(&format!(
            "run {} already finished ({}); there is nothing to {what}\n",
            replay.run_id,
            replay.finished.as_deref().unwrap_or("")
        ));
        return Ok(None);
    }
    if replay.flow == ferry_flow_node_os::FLOW {
        return super::node::journaled(rt, args, &replay, state, out, mode)
            .map(|r| r.map(JournaledRun::NodeOs));
    }
    if replay.flow == ferry_flow_cloud_provider::FLOW {
        return super::cloud::journaled(rt, args, &replay, state, out, mode)
            .map(|r| r.map(JournaledRun::Cloud));
    }
    if replay.flow == ferry_flow_k0s_upgrade::FLOW {
        return super::k0s::journaled(rt, args, &replay, state, out, mode)
            .map(|r| r.map(JournaledRun::K0s));
    }
    let password_flag = args.mke3_admin_password.as_deref();
    let Some(request) = request(rt, &replay, state, password_flag, &args.remote, out)? else {
        return Ok(None);
    };
    let r = drive(
        rt,
        args.log,
        out,
        request,
        state.to_path_buf(),
        |backends, session| async move {
            let flow = MkeFlow::new(backends.mke3);
            match mode {
                Mode::Resume => run::resume(&flow, session).await,
                Mode::Rollback => run::rollback(&flow, session).await,
            }
        },
    );
    Ok(Some(JournaledRun::Mke(r)))
}

/// The backend request of a journaled run: the flow its journal names, its hosts and inputs read
/// back, the password asked again. `None` after the reason was printed.
/// The flow's journaled inputs, or `None` after saying that the journal does not hold them.
pub(crate) fn journaled_inputs<T: serde::de::DeserializeOwned>(
    replay: &Replay,
    state: &Path,
    out: &mut Output<'_>,
) -> Option<T> {
    match serde_json::from_value(replay.inputs.clone()) {
        Ok(j) => Some(j),
        Err(e) => {
            out.error(&CliError::Usage(format!(
                "the journal in {} does not hold the inputs of flow {}: {e}",
                state.display(),
                replay.flow
            )));
            None
        }
    }
}

fn request(
    rt: &Runtime,
    replay: &Replay,
    state: &Path,
    password_flag: Option<&str>,
    remote: &RemoteArgs,
    out: &mut Output<'_>,
) -> Result<Option<BackendRequest>, CliError> {
    if replay.flow != ferry_flow_mke::FLOW {
        out.error(&CliError::Usage(format!(
            "the journal in {} was written by flow {:?}, which this ferry does not know",
            state.display(),
            replay.flow
        )));
        return Ok(None);
    }
    let Some(journaled) = journaled_inputs::<Journaled>(replay, state, out) else {
        return Ok(None);
    };
    if let Err(m) = rt.backends.serves(Access::Journal) {
        out.error(&DriveError::Backends(m));
        return Ok(None);
    }
    let pw = password(rt, password_flag, out)?;
    Ok(Some(BackendRequest {
        hosts: replay.hosts.clone(),
        username: journaled.inputs.mke3_admin_username,
        password: pw,
        external_address: journaled.inputs.external_address,
        remote: remote.clone(),
        access: Access::Journal,
    }))
}

/// `ferry resume`.
pub fn run_resume_with(
    rt: &Runtime,
    args: &ResumeArgs,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    let r = journaled(rt, &args.journal, out, Mode::Resume)?;
    finish_any(r, args.config_out.as_deref(), args.output, out)
}
