//! `ferry upgrade`: the MKE 3 → MKE 4k upgrade on the MKE flow, with automatic rollback on
//! failure or Ctrl-C; `--dry-run` checks and prints the plan; `--resume` is `ferry resume`.
//! What every flow command shares (backends, password, state directory, log) is in
//! [`crate::session`].

use std::path::{Path, PathBuf};

use ferry_core::engine::MaxUnavailable;
use ferry_core::k0s::K0sBinary;
use ferry_core::run::{self, Finish, RunError};
use ferry_flow_mke::checks::CheckOptions;
use ferry_flow_mke::results::{self, Results};
use ferry_flow_mke::{HostOrder, Inputs, K0S_VERSION, MkeError, MkeFlow, MkeReport};

use crate::exit::{self, Ending};
use crate::session::{
    Access, BackendRequest, DriveError, JournalArgs, LogArgs, RemoteArgs, Runtime, drive, password,
    state_dir,
};
use crate::{CliError, Format, Output, fsio};

fn parse_max_unavailable(s: &str) -> Result<MaxUnavailable, String> {
    s.parse()
        .map_err(|e: ferry_core::engine::batching::MaxUnavailableError| e.reason)
}

/// `--host-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HostOrderArg {
    /// The slowest hosts first, by how long their facts took to gather.
    SlowestFirst,
    /// As the hosts file lists them.
    AsListed,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The MKE 3 admin password is read from MKE3_ADMIN_PASSWORD, or asked for on the terminal. \
--mke3-admin-password works too but shows the password to every user of this machine.

A run reads the MKE 3 API and the Kubernetes API (through the admin client bundle, or \
--kubeconfig); --dry-run only reads (facts, checks, plan).

Workers move in a sliding window of --max-unavailable hosts, the slowest first (by how long \
their facts took to gather) unless --host-order as-listed; managers move one at a time, each \
only while the other managers' nodes are Ready.

Exit codes: 0 upgraded (or dry run with passing checks), 2 usage, 3 checks failed and nothing \
changed, 4 failed and rolled back cleanly, 5 failed and the rollback is incomplete (see \
`ferry rollback`), 130 interrupted twice (the journal is kept), 1 anything else (nothing changed).")]
pub struct UpgradeArgs {
    /// The hosts file (mkectl's hosts.yaml): every node, reachable over SSH.
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    pub hosts_path: Option<PathBuf>,
    /// MKE 3 admin user name.
    #[arg(long, value_name = "USER", required_unless_present = "resume")]
    pub mke3_admin_username: Option<String>,
    /// MKE 3 admin password (visible to other users of the machine: prefer
    /// MKE3_ADMIN_PASSWORD or the prompt).
    #[arg(long, value_name = "PASSWORD")]
    pub mke3_admin_password: Option<String>,
    /// DNS name of the load balancer in front of the managers (host or host:port).
    #[arg(long, value_name = "ADDRESS", required_unless_present = "resume")]
    pub external_address: Option<String>,
    /// Write the new mke4.yaml here (atomically) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// Run the checks and print every step per host; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Workers upgraded at once: a count (2) or a percentage of the workers (10%); at least 1.
    #[arg(long, value_name = "N|N%", default_value = "10%", value_parser = parse_max_unavailable)]
    pub max_unavailable: MaxUnavailable,
    #[command(flatten)]
    pub target: super::init::TargetArgs,
    /// Do not prompt when settings cannot be migrated.
    #[arg(long)]
    pub force: bool,
    /// Where the journal, the lock and the exports live (default:
    /// $XDG_STATE_HOME/ferry/<external address>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Continue the run recorded in the state directory after a crash or a second Ctrl-C (the
    /// same as `ferry resume`).
    #[arg(long, conflicts_with_all = ["dry_run", "hosts_path"])]
    pub resume: bool,
    /// The order workers enter the window in.
    #[arg(long, value_enum, default_value_t = HostOrderArg::SlowestFirst)]
    pub host_order: HostOrderArg,
    /// A k0s binary on this machine to copy to every host (what an airgapped cluster needs),
    /// instead of downloading the release for each host's architecture.
    #[arg(long, value_name = "FILE")]
    pub k0s_binary: Option<PathBuf>,
    /// Go on when a host has fewer CPU cores than recommended.
    #[arg(long)]
    pub skip_cpu_cores_check: bool,
    /// Go on when a host has less memory than recommended.
    #[arg(long)]
    pub skip_total_memory_check: bool,
    /// Go on when a host has less free disk than recommended.
    #[arg(long)]
    pub skip_disk_space_check: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Write the results folder `mke-upgrade` into DIR (default: the state directory): the MKE
    /// 3 and MKE 4k configurations (secrets redacted), the node, cluster and version pre-checks,
    /// the compatibility checks and a run summary, each as text and JSON; a completed run adds
    /// the Upgrade Summary.
    #[arg(long = "output", value_name = "DIR", num_args = 0..=1, require_equals = true)]
    pub results: Option<Option<PathBuf>>,
    /// The whole run's time limit, from its first change: when it runs out, the steps in flight
    /// are cut off and the run rolls back.
    #[arg(long, value_name = "MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=10080))]
    pub timeout_minutes: u32,
    /// The node migration's time limit (managers and workers to k0s): when it runs out, the
    /// run rolls back.
    #[arg(long, value_name = "MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=10080))]
    pub upgrade_timeout_minutes: u32,
    /// With an unmanaged CNI (MKE 3's unmanaged_cni): how long it has, once every node runs
    /// k0s, to bring the network up on the first two managers and workers before the run rolls
    /// back.
    #[arg(long, value_name = "MINUTES", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub cni_check_timeout: u32,
    /// With an unmanaged CNI: the TCP port at which each checked host must reach the others.
    #[arg(long, value_name = "PORT", default_value_t = 80, value_parser = clap::value_parser!(u16).range(1..))]
    pub cni_check_port: u16,
    /// Format of the result (the dry-run plan, the checks, the summary).
    #[arg(short = 'o', long = "format", value_enum, default_value_t)]
    pub output: Format,
}

/// A run of the MKE flow as the CLI drives it.
pub type MkeRun = Result<Result<Finish<MkeReport>, RunError<MkeError>>, DriveError>;

/// Prints an error of a run and returns its exit code.
pub(crate) fn report_error<E: exit::FlowError>(
    e: &RunError<E>,
    format: Format,
    out: &mut Output<'_>,
) -> u8 {
    if let RunError::Checks(report) = e {
        match format {
            Format::Text => out.info(&report.render()),
            Format::Json => out.result(&format!(
                "{}\n",
                serde_json::json!({ "checks": report, "error": e.to_string() })
            )),
        }
    }
    out.error(e);
    exit::code(Ending::of_run_error(e))
}

/// `ferry upgrade [--resume]`.
pub fn run_upgrade_with(
    rt: &Runtime,
    args: &UpgradeArgs,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    if args.resume {
        let journal = JournalArgs {
            state_dir: args.state_dir.clone(),
            external_address: args.external_address.clone(),
            mke3_admin_password: args.mke3_admin_password.clone(),
            remote: args.remote.clone(),
            log: args.log,
        };
        let r = super::resume::journaled(rt, &journal, out, super::resume::Mode::Resume)?;
        return super::resume::finish_any(r, args.config_out.as_deref(), args.output, out);
    }
    // clap enforces these unless --resume.
    let (Some(hosts_path), Some(username), Some(external)) = (
        args.hosts_path.as_deref(),
        args.mke3_admin_username.as_deref(),
        args.external_address.as_deref(),
    ) else {
        return Err(CliError::Usage(
            "--hosts-path, --mke3-admin-username and --external-address are required".into(),
        ));
    };
    let hosts =
        ferry_ssh_exec::read_hosts_file(hosts_path).map_err(|e| CliError::InvalidContent {
            path: hosts_path.to_path_buf(),
            message: format!(" {e}"),
        })?;
    let state = state_dir(rt, args.state_dir.as_deref(), Some(external))?;
    let home = (rt.env)("HOME").map(PathBuf::from);
    let mut inputs = Inputs::new(hosts, username, external);
    inputs.max_unavailable = args.max_unavailable;
    inputs.host_order = match args.host_order {
        HostOrderArg::SlowestFirst => HostOrder::SlowestFirst,
        HostOrderArg::AsListed => HostOrder::AsListed,
    };
    inputs.image_registry = args.target.image_registry.clone();
    inputs.chart_registry = args.target.chart_registry.clone();
    (inputs.image_registry_ca, inputs.chart_registry_ca) = args.target.ca_data()?;
    inputs.mke3_airgapped = args.target.mke3_airgapped;
    inputs.gateway_http_node_port = args.target.gateway_http_node_port;
    inputs.gateway_https_node_port = args.target.gateway_https_node_port;
    inputs.remove_ingress_nginx = args.target.remove_ingress_nginx;
    inputs.mke4_version = args.target.mke4_version.clone();
    inputs.force = args.force;
    inputs.checks = CheckOptions {
        skip_cpu_cores_check: args.skip_cpu_cores_check,
        skip_total_memory_check: args.skip_total_memory_check,
        skip_disk_space_check: args.skip_disk_space_check,
    };
    inputs.kubeconf_path = home.map(|h| h.join(".mke/mke.kubeconf"));
    inputs.timeout_minutes = args.timeout_minutes;
    inputs.upgrade_timeout_minutes = args.upgrade_timeout_minutes;
    inputs.cni_check_timeout = args.cni_check_timeout;
    inputs.cni_check_port = args.cni_check_port;
    // `--output` alone: the folder goes beside the journal.
    let results = args
        .results
        .as_ref()
        .map(|d| Results::in_dir(d.as_deref().unwrap_or(&state)));
    if let Some(r) = &results {
        usable_folder(r.path())?;
    }
    inputs.k0s = match &args.k0s_binary {
        Some(p) => {
            // Read once now so that a wrong path fails before anything is contacted.
            fsio::check_file(p)?;
            let path = std::path::absolute(p).map_err(|e| CliError::Input {
                path: p.clone(),
                problem: e.to_string(),
            })?;
            K0sBinary::File { path }
        }
        None => K0sBinary::Release {
            version: K0S_VERSION.into(),
        },
    };
    // Validate the options before asking for anything.
    let mut options = args.target.options(Some(external))?;
    options.upgrade = true;
    options
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let access = if args.dry_run {
        Access::ReadOnly
    } else {
        Access::Run
    };
    if let Err(m) = rt.backends.serves(access) {
        out.error(&DriveError::Backends(m));
        return Ok(exit::code(Ending::Failed));
    }
    if args.remote.ssh.options(&inputs.hosts).1 {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let pw = password(rt, args.mke3_admin_password.as_deref(), out)?;
    let dry_run = args.dry_run;
    let request = BackendRequest {
        hosts: inputs.hosts.clone(),
        username: username.to_string(),
        password: pw,
        external_address: external.to_string(),
        remote: args.remote.clone(),
        access,
    };
    let flow_results = results.clone();
    let r = drive(
        rt,
        args.log,
        out,
        request,
        state,
        |backends, session| async move {
            let mut flow = MkeFlow::new(backends.mke3);
            if let Some(r) = flow_results {
                flow = flow.with_results(r);
            }
            run::start(&flow, inputs, session, dry_run).await
        },
    );
    if let Some(folder) = &results {
        write_run_summary(folder, &r, out);
    }
    finish(r, args.config_out.as_deref(), args.output, out)
}

/// Refuses a results folder that cannot be one (a file in its place, or under a file) before
/// anything is read or asked for.
fn usable_folder(p: &Path) -> Result<(), CliError> {
    let mut at = Some(p);
    while let Some(a) = at {
        if a.exists() {
            if !a.is_dir() {
                return Err(CliError::Usage(format!(
                    "--output: {} is not a directory",
                    a.display()
                )));
            }
            return Ok(());
        }
        at = a.parent();
    }
    Ok(())
}

/// The results folder's run summary (`summary.txt` and `summary.json`): how the run ended, the
/// checks that failed, the plan of a dry run, the error of a failed run. A folder the flow never
/// created (the run stopped before its checks) is left alone.
fn write_run_summary(folder: &Results, r: &MkeRun, out: &mut Output<'_>) {
    if !folder.path().is_dir() {
        return;
    }
    let failed_checks = |c: &ferry_core::checks::CheckReport| {
        c.failures()
            .iter()
            .map(|f| format!("{} ({}): {}", f.check, f.subject, f.message))
            .collect::<Vec<_>>()
    };
    let (outcome, text, json) = match r {
        Ok(Ok(Finish::DryRun { checks, plan })) => {
            let outcome = if checks.passed() {
                "dry-run"
            } else {
                "dry-run-checks-failed"
            };
            let mut text = format!(
                "Dry run: nothing was changed.\nPre-upgrade checks: {}\n",
                if checks.passed() { "passed" } else { "FAILED" }
            );
            for f in failed_checks(checks) {
                text.push_str(&format!("  {f}\n"));
            }
            text.push_str("\nPlan\n---------------\n");
            text.push_str(&plan.render());
            let json = serde_json::json!({
                "checksPassed": checks.passed(),
                "failedChecks": failed_checks(checks),
                "plan": plan,
            });
            (outcome, text, json)
        }
        Ok(Ok(Finish::Completed { report, .. })) => (
            "completed",
            format!(
                "The upgrade completed.\n\n{}",
                report.summary
            ),
            serde_json::json!({ "upgradeSummary": report.summary }),
        ),
        Ok(Ok(Finish::RolledBack { error })) => (
            "rolled-back",
            format!("The upgrade failed and was rolled back: {error}\n"),
            serde_json::json!({ "error": error }),
        ),
        Ok(Ok(Finish::RollbackIncomplete {
            error,
            failure,
            remaining,
        })) => (
            "rollback-incomplete",
            format!(
                "The upgrade failed ({error}) and its rollback is incomplete ({failure}); still applied: {}\n",
                remaining.join(", ")
            ),
            serde_json::json!({ "error": error, "rollbackFailure": failure, "remaining": remaining }),
        ),
        Ok(Ok(Finish::Interrupted)) => (
            "interrupted",
            "Interrupted twice: stopped at once; the journal is kept (`ferry resume` or `ferry rollback`).\n".to_string(),
            serde_json::json!({}),
        ),
        Ok(Err(RunError::Checks(checks))) => (
            "checks-failed",
            format!(
                "Pre-upgrade checks failed: nothing was changed.\n{}",
                failed_checks(checks)
                    .iter()
                    .map(|f| format!("  {f}\n"))
                    .collect::<String>()
            ),
            serde_json::json!({ "failedChecks": failed_checks(checks) }),
        ),
        Ok(Err(e)) => (
            "failed",
            format!("The upgrade failed: {e}\n"),
            serde_json::json!({ "error": e.to_string() }),
        ),
        Err(e) => (
            "failed",
            format!("The upgrade failed: {e}\n"),
            serde_json::json!({ "error": e.to_string() }),
        ),
    };
    let mut json = json;
    json["outcome"] = outcome.into();
    let text = format!("Outcome: {outcome}\n{text}");
    let written = folder
        .write(&format!("{}.txt", results::SUMMARY), text.as_bytes())
        .and_then(|()| folder.write_json(results::SUMMARY, &json));
    match written {
        Ok(()) => out.info(&format!("Results: {}\n", folder.path().display())),
        Err(e) => out.warn(&e.to_string()),
    }
}

/// Prints what a run of the MKE flow came to and returns its exit code.
pub(crate) fn finish(
    r: MkeRun,
    config_out: Option<&Path>,
    format: Format,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    let fin = match r {
        Err(e) => {
            out.error(&e);
            return Ok(exit::code(Ending::Failed));
        }
        Ok(Err(e)) => return Ok(report_error(&e, format, out)),
        Ok(Ok(f)) => f,
    };
    let code = exit::code(Ending::of_finish(&fin));
    match &fin {
        Finish::DryRun { checks, plan } => match format {
            Format::Text => {
                out.result(&checks.render());
                out.result("\nPlan (dry run: nothing was changed)\n---------------\n");
                out.result(&plan.render());
            }
            Format::Json => out.result(&format!(
                "{}\n",
                serde_json::json!({ "checks": checks, "plan": plan })
            )),
        },
        Finish::Completed {
            report: MkeReport { summary, mke4_yaml },
            ..
        } => {
            if let Some(dest) = config_out {
                fsio::write_atomic(dest, mke4_yaml.as_bytes())?;
                out.info(&format!(
                    "MKE 4 configuration written to {}\n",
                    dest.display()
                ));
            }
            match format {
                Format::Text => {
                    if config_out.is_none() {
                        out.info("Below is your new MKE 4 config. Save it to a file and use it to configure the MKE 4 cluster with mkectl apply:\n");
                        out.result(mke4_yaml);
                        out.result("\n");
                    }
                    out.result(summary);
                }
                Format::Json => out.result(&format!(
                    "{}\n",
                    serde_json::json!({
                        "summary": summary,
                        "yaml": config_out.is_none().then_some(mke4_yaml),
                    })
                )),
            }
        }
        Finish::RolledBack { .. } | Finish::Interrupted => {}
        Finish::RollbackIncomplete { remaining, .. } => {
            out.info(&format!(
                "Still applied (undo order): {}\n",
                remaining.join(", ")
            ));
        }
    }
    Ok(code)
}
