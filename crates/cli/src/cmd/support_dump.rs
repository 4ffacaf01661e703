//! `ferry support-dump`: the support bundle of a run on demand, from its state directory's
//! journal alone (any flow, any outcome): per host the MKE 3 and k0s logs, `docker ps -a`,
//! `docker info`, the k0s status, the ferry host lock and disk usage, plus the journal and the
//! summaries, every secret redacted ([`ferry_core::support`]). A failed, rolled-back or
//! interrupted run makes the same bundle by itself.

use std::path::PathBuf;

use ferry_core::journal::Replay;
use ferry_core::support::{self, SupportError};

use crate::cmd::hosts::SshArgs;
use crate::exit::{self, Ending};
use crate::session::{DriveError, LogArgs, PASSWORD_ENV, Runtime, known_secrets, with_log};
use crate::{CliError, Output};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The dump goes into <state-dir>/support-dump-<UTC time>/: a directory per host of the journal \
(docker-ps-a.txt, docker-info.txt, k0s-status.txt, k0s-version.txt, df.txt, host-lock.txt, \
k0s-logs.txt, mke3-logs/<ucp container>.txt), the journal, the summaries, and index.txt, which \
lists what was collected and what failed. A host that cannot be reached is recorded as such. \
Every file is redacted: the MKE 3 admin password (MKE3_ADMIN_PASSWORD or \
--mke3-admin-password, never asked for), private keys, password, secret and token values, \
bearer tokens and k0s join tokens. Nothing is changed on the hosts.

Exit codes: 0 the dump was made (even when hosts were unreachable), 2 no journal in the state \
directory or a bad flag, 1 the dump could not be written.")]
pub struct SupportDumpArgs {
    /// The run's state directory (default: the one of --external-address, or else the one under
    /// $XDG_STATE_HOME/ferry, or ~/.local/state/ferry, whose journal changed last).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The external address of the cluster, to find the default state directory.
    #[arg(long, value_name = "ADDRESS")]
    pub external_address: Option<String>,
    /// The MKE 3 admin password, only to redact it from the dump (MKE3_ADMIN_PASSWORD works
    /// too; it is never asked for).
    #[arg(long, value_name = "PASSWORD")]
    pub mke3_admin_password: Option<String>,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `ferry support-dump`.
pub fn run_with(
    rt: &Runtime,
    args: &SupportDumpArgs,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    let dir = match (&args.state_dir, &args.external_address) {
        (None, None) => super::report::latest_state_dir(rt)?,
        (flag, addr) => crate::session::state_dir(rt, flag.as_deref(), addr.as_deref())?,
    };
    // The journal names the hosts; without one there is no run to dump (nothing contacted).
    let replay = Replay::read(&dir).map_err(|e| SupportError::of_journal(&dir, e))?;
    if args.mke3_admin_password.is_some() {
        out.warn(&format!(
            "--mke3-admin-password is visible to other users of this machine (process list, shell history); prefer {PASSWORD_ENV}"
        ));
    }
    let secrets = known_secrets(rt, args.mke3_admin_password.as_deref());
    let (_, unchecked) = args.ssh.options(&replay.hosts);
    if unchecked {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let factory = rt.backends.clone();
    let hosts = replay.hosts.clone();
    let made = with_log(args.log, out, |log| async move {
        let connector = factory
            .connector(&hosts, &args.ssh)
            .await
            .map_err(DriveError::Backends)?;
        Ok::<_, DriveError>(support::collect(&connector, &dir, &secrets, &log).await)
    });
    let bundle = match made {
        Ok(Ok(r)) => r?,
        Ok(Err(e)) | Err(e) => {
            out.error(&e);
            return Ok(exit::code(Ending::Failed));
        }
    };
    let away = bundle.unreachable();
    if !away.is_empty() {
        out.warn(&format!(
            "the support dump has nothing from unreachable host(s) {}",
            away.join(", ")
        ));
    }
    out.result(&format!("Support dump: {}\n", bundle.dir.display()));
    Ok(exit::code(Ending::Done))
}
