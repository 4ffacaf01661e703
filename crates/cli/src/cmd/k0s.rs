//! `ferry k0s ...`: a k0s (or MKE 4k) cluster. `ferry k0s check` prints the safety and
//! availability report of an online upgrade, computed from the live cluster, without changing
//! anything.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::{Connector, HostExec};
use ferry_flow_k0s_upgrade::{CheckOptions, Readiness, discover, discover_api};
use ferry_kube_api::KubeOptions;
use ferry_safety::{NodeSelector, Options};
use ferry_ssh_exec::{HostsFileError, SshConnector};

use crate::cmd::cluster::open_kubeconfig;
use crate::cmd::hosts::SshArgs;
use crate::exit::Ending;
use crate::session::{LogArgs, Runtime, drive_with};
use crate::{CliError, Format, Output, exit, fsio};

#[derive(Debug, clap::Subcommand)]
pub enum K0sCommand {
    /// Print the safety and availability report of an online upgrade: per node, what an upgrade
    /// would lose (data, the last ready replica of a workload, etcd quorum, the only
    /// controller or worker, a PodDisruptionBudget's room) and, with --hosts-path, whether
    /// each host is ready (k0s running, free disk). Changes nothing. Exits 3 when a node has
    /// a finding.
    Check(CheckArgs),
    /// Upgrade k0s on every host, one node at a time: controllers strictly one at a time (each
    /// backed up first, each only while the others run and etcd answers), then workers in a
    /// window; online mode checks safety first and cordons and drains each node. Rolled back on
    /// any failure or Ctrl-C; journaled for `ferry resume` and `ferry rollback`.
    Upgrade(UpgradeArgs),
}

/// What the checks treat specially (shared with `ferry k0s upgrade`).
#[derive(Debug, Clone, clap::Args)]
pub struct SafetyArgs {
    /// Node labels of ingress nodes (`key` or `key=value`, comma-separated, all required).
    #[arg(
        long,
        value_name = "SELECTOR",
        default_value = "node-role.kubernetes.io/ingress"
    )]
    pub ingress_nodes: String,
    /// Node labels of storage nodes (`key` or `key=value`, comma-separated, all required).
    #[arg(
        long,
        value_name = "SELECTOR",
        default_value = "node-role.kubernetes.io/storage"
    )]
    pub storage_nodes: String,
    /// Namespaces whose pods are not checked (repeat the flag for several).
    #[arg(long = "skip-namespace", value_name = "NAMESPACE", default_values_t = ["kube-system".to_string()])]
    pub skip_namespaces: Vec<String>,
    /// Free space each host needs on / and on k0s's data directory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    pub min_free_disk_mib: u64,
}

impl SafetyArgs {
    pub fn options(&self) -> Result<CheckOptions, CliError> {
        let sel = |flag: &str, text: &str| {
            NodeSelector::parse(text).map_err(|e| CliError::Usage(format!("--{flag}: {e}")))
        };
        let min = self.min_free_disk_mib.saturating_mul(1 << 20);
        Ok(CheckOptions {
            safety: Options {
                ingress: sel("ingress-nodes", &self.ingress_nodes)?,
                storage: sel("storage-nodes", &self.storage_nodes)?,
                skip_namespaces: self
                    .skip_namespaces
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<_>>(),
            },
            readiness: Readiness {
                min_free_root_bytes: min,
                min_free_data_bytes: min,
            },
        })
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --hosts-path the report has one line per Kubernetes node, from the API alone (a k0s
controller that runs no workloads has no node, and etcd membership is not known). With
--hosts-path (mkectl's hosts.yaml) it has one line per host: its roles come from k0s itself
(`k0s status`), etcd membership from `k0s etcd member-list` on a running controller, and each
host's readiness is checked too.

Anything that cannot be read (a list the credentials may not read, an owner, claim or volume
that is gone) is a finding: the report never says OK about what it did not see.")]
pub struct CheckArgs {
    /// A kubeconfig file, or an MKE 3 client bundle directory (its kube.yml is used).
    #[arg(long, value_name = "FILE|DIR")]
    pub kubeconfig: PathBuf,
    /// The hosts file (mkectl's hosts.yaml): adds the controllers, etcd and readiness.
    #[arg(long, value_name = "FILE")]
    pub hosts_path: Option<PathBuf>,
    #[command(flatten)]
    pub safety: SafetyArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Seconds allowed for one Kubernetes request.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// text (Kismatic's report layout) or json.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

pub fn run(c: &K0sCommand, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        K0sCommand::Check(args) => check(args, out),
        K0sCommand::Upgrade(args) => upgrade(args, rt, out),
    }
}

/// The hosts of `--hosts-path`, or a usage error naming the file.
pub(crate) fn read_hosts(path: &std::path::Path) -> Result<Vec<ferry_core::HostSpec>, CliError> {
    ferry_ssh_exec::read_hosts_file(path).map_err(|e| match e {
        HostsFileError::Read { path, problem } => CliError::Input { path, problem },
        other => CliError::InvalidContent {
            path: path.to_path_buf(),
            message: format!(" {other}"),
        },
    })
}

fn check(args: &CheckArgs, out: &mut Output<'_>) -> Result<u8, CliError> {
    let options = args.safety.options()?;
    let specs = match &args.hosts_path {
        Some(p) => {
            let specs = read_hosts(p)?;
            if specs.is_empty() {
                return Err(CliError::InvalidContent {
                    path: p.clone(),
                    message: " lists no host".into(),
                });
            }
            specs
        }
        None => Vec::new(),
    };
    let connector: Option<Arc<dyn Connector>> = if specs.is_empty() {
        None
    } else {
        let (opts, unchecked) = args.ssh.options(&specs);
        if unchecked {
            out.warn(
                "host key checking is OFF for some hosts: their connections can be intercepted",
            );
        }
        Some(Arc::new(
            SshConnector::new(opts).map_err(|e| CliError::Usage(e.to_string()))?,
        ))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the async runtime: {e}")))?;
    let kube = KubeOptions {
        read_timeout: Duration::from_secs(args.timeout),
        ..KubeOptions::default()
    };
    let found = runtime.block_on(async {
        let cluster = open_kubeconfig(&args.kubeconfig, kube).await?;
        let Some(connector) = connector else {
            return Ok::<_, CliError>(discover_api(&cluster).await.map_err(|e| e.into()));
        };
        let hosts = match ferry_core::run::connect_all(&connector, &specs).await {
            Ok(h) => h,
            Err((host, e)) => {
                return Ok(Err(CheckFailed::Connect { host, source: e }));
            }
        };
        let connected: Vec<(ferry_core::HostSpec, Arc<dyn HostExec>)> = specs
            .iter()
            .filter_map(|s| hosts.get(&s.name()).map(|h| (s.clone(), h.clone())))
            .collect();
        let d = discover(&connected, &cluster).await.map_err(|e| e.into());
        for (_, h) in &connected {
            let _ = h.close().await;
        }
        Ok(d)
    })?;
    let d = match found {
        Ok(d) => d,
        Err(e) => {
            out.error(&e);
            return Ok(exit::code(exit::Ending::Failed));
        }
    };
    let report = ferry_flow_k0s_upgrade::check(&d, &options);
    match args.output {
        Format::Text => out.result(&report.render()),
        Format::Json => {
            let doc = serde_json::json!({
                "serverVersion": d.server_version,
                "ok": report.is_ok(),
                "report": report,
                "hosts": d.hosts,
            });
            out.result(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc)
                    .map_err(|e| CliError::Internal(format!("cannot render the report: {e}")))?
            ));
        }
    }
    let bad = report.unsafe_nodes().count();
    out.info(&format!(
        "{} node(s) checked: {} can be upgraded online, {bad} cannot\n",
        report.nodes.len(),
        report.nodes.len() - bad
    ));
    Ok(if report.is_ok() {
        exit::code(exit::Ending::Done)
    } else {
        exit::code(exit::Ending::ChecksFailed)
    })
}

/// Why the check could not be made (not a finding: nothing was read).
#[derive(Debug, thiserror::Error)]
enum CheckFailed {
    #[error("cannot connect to {host}")]
    Connect {
        host: String,
        #[source]
        source: ferry_core::ExecError,
    },
    #[error(transparent)]
    Discover(#[from] ferry_flow_k0s_upgrade::DiscoverError),
}

/// Kismatic's two modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Safety and availability checks first; each node is cordoned and drained.
    Online,
    /// No checks and no drain: for clusters whose availability does not matter.
    Offline,
}

fn parse_max_unavailable(s: &str) -> Result<ferry_core::engine::MaxUnavailable, String> {
    s.parse()
        .map_err(|e: ferry_core::engine::batching::MaxUnavailableError| e.reason)
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The new k0s comes from --k0s-binary FILE (copied to every host; its version is read by running \
it here unless --k0s-version says it) or from --k0s-version V alone (each host downloads the \
release for its architecture). Hosts already at the target are skipped, so running the same \
command again continues where a stopped run left off. A downgrade and a jump of more than one \
minor version are refused.

online: the safety, availability and readiness report (`ferry k0s check`) must be clean, unless \
--ignore-safety-checks (printed as warnings, the run goes on) or --partial-ok (only the hosts \
without findings are upgraded; refused when a controller has one). offline: no checks, no drain.

Before each controller a `k0s backup` is written to /var/lib/ferry/k0s-backups on it and kept. A \
rollback puts every changed node's previous binary back and restarts it, in reverse order; it \
does not restore etcd's data (the backups and `k0s restore` are there for that).

Exit codes: 0 upgraded (or dry run with passing checks), 2 usage, 3 checks failed and nothing \
changed, 4 failed and rolled back cleanly, 5 failed and the rollback is incomplete (see \
`ferry rollback`), 130 interrupted twice (the journal is kept), 1 anything else.")]
pub struct UpgradeArgs {
    /// online (checks, drain) or offline (neither).
    #[arg(value_enum)]
    pub mode: ModeArg,
    /// The hosts file (mkectl's hosts.yaml): every host of the cluster, reachable over SSH.
    #[arg(long, value_name = "FILE")]
    pub hosts_path: PathBuf,
    /// The cluster's Kubernetes API: a kubeconfig file (or an MKE client bundle directory).
    #[arg(long, value_name = "FILE|DIR")]
    pub kubeconfig: PathBuf,
    /// A k0s binary on this machine to copy to every host.
    #[arg(long, value_name = "FILE", required_unless_present = "k0s_version")]
    pub k0s_binary: Option<PathBuf>,
    /// The target version (v1.32.6+k0s.0): downloaded by each host, or the version of
    /// --k0s-binary.
    #[arg(long, value_name = "VERSION")]
    pub k0s_version: Option<String>,
    /// Run the checks and print every step per host; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the findings as warnings and go on.
    #[arg(long)]
    pub ignore_safety_checks: bool,
    /// Upgrade only the hosts without findings; refused when a controller has one.
    #[arg(long)]
    pub partial_ok: bool,
    /// Workers upgraded at once: a count (2) or a percentage of the workers (10%); at least 1.
    #[arg(long, value_name = "N|N%", default_value = "10%", value_parser = parse_max_unavailable)]
    pub max_unavailable: ferry_core::engine::MaxUnavailable,
    /// Where the journal and the lock live (default: $XDG_STATE_HOME/ferry/k0s-<first host>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds a drain may take before the run stops and rolls back.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub drain_timeout: u64,
    /// Seconds a restarted node may take to run the new version and be Ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub ready_timeout: u64,
    /// Let the drain evict pods with emptyDir volumes (their data is lost).
    #[arg(long)]
    pub delete_emptydir_data: bool,
    /// Let the drain evict pods without a controller (nothing recreates them).
    #[arg(long)]
    pub force_bare_pods: bool,
    #[command(flatten)]
    pub safety: SafetyArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Format of the result (the report, the dry-run plan, the summary).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// The version of a k0s binary on this machine (`FILE version`).
fn binary_version(path: &std::path::Path) -> Result<String, CliError> {
    let out = std::process::Command::new(path)
        .arg("version")
        .output()
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot run {} to read its version ({e}): give it with --k0s-version",
                path.display()
            ))
        })?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || v.is_empty() {
        return Err(CliError::Usage(format!(
            "{} version did not print a version: give it with --k0s-version",
            path.display()
        )));
    }
    Ok(v)
}

fn upgrade(args: &UpgradeArgs, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    use ferry_core::k0s::K0sBinary;
    use ferry_core::run;
    use ferry_flow_k0s_upgrade::{Inputs, K0sUpgradeFlow, Mode};

    let options = args.safety.options()?;
    let hosts = read_hosts(&args.hosts_path)?;
    let (binary, version) = match (&args.k0s_binary, &args.k0s_version) {
        (Some(p), v) => {
            fsio::check_file(p)?;
            let path = std::path::absolute(p).map_err(|e| CliError::Input {
                path: p.clone(),
                problem: e.to_string(),
            })?;
            let v = match v {
                Some(v) => v.clone(),
                None => binary_version(&path)?,
            };
            (K0sBinary::File { path }, v)
        }
        (None, Some(v)) => (K0sBinary::Release { version: v.clone() }, v.clone()),
        (None, None) => {
            return Err(CliError::Usage(
                "give --k0s-binary FILE or --k0s-version VERSION".into(),
            ));
        }
    };
    if let Err(e) = version.parse::<ferry_flow_k0s_upgrade::version::Version>() {
        return Err(CliError::Usage(format!("--k0s-version: {e}")));
    }
    let state = match &args.state_dir {
        Some(d) => d.clone(),
        None => {
            let first = hosts.first().map(|h| h.address.clone()).unwrap_or_default();
            crate::session::state_dir(rt, None, Some(&format!("k0s-{first}")))?
        }
    };
    let (ssh, unchecked) = args.ssh.options(&hosts);
    if unchecked {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let connector = SshConnector::new(ssh).map_err(|e| CliError::Usage(e.to_string()))?;
    let inputs = Inputs {
        hosts,
        mode: match args.mode {
            ModeArg::Online => Mode::Online,
            ModeArg::Offline => Mode::Offline,
        },
        binary,
        version,
        ignore_safety_checks: args.ignore_safety_checks,
        partial_ok: args.partial_ok,
        max_unavailable: args.max_unavailable,
        checks: options,
        drain_timeout: Duration::from_secs(args.drain_timeout),
        ready_timeout: Duration::from_secs(args.ready_timeout),
        delete_emptydir_data: args.delete_emptydir_data,
        force_bare_pods: args.force_bare_pods,
        kubeconfig: std::path::absolute(&args.kubeconfig).ok(),
    };
    let flow = K0sUpgradeFlow::new();
    let kubeconfig = args.kubeconfig.clone();
    let dry_run = args.dry_run;
    let r = drive_with(
        rt,
        args.log,
        out,
        || backends(kubeconfig, connector),
        state,
        |(), session| run::start(&flow, inputs, session, dry_run),
    );
    // The report first: it says why the run goes on, stops, or leaves hosts behind.
    let report = flow.last_report();
    if let (Some(report), Format::Text) = (&report, args.output) {
        out.result(&report.render());
        out.result("\n");
        if args.ignore_safety_checks && !report.is_ok() {
            out.info("Ignoring safety checks and continuing with the upgrade\n");
        }
    }
    Ok(finish(r, report, args.output, out))
}

/// The backends of a k0s upgrade: OpenSSH to the hosts and the Kubernetes API of `kubeconfig`.
pub(crate) async fn backends(
    kubeconfig: PathBuf,
    connector: SshConnector,
) -> Result<(Arc<dyn Connector>, Arc<dyn ferry_core::ClusterApi>, ()), String> {
    let cluster = open_kubeconfig(&kubeconfig, KubeOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(connector), Arc::new(cluster), ()))
}

/// A run of the k0s upgrade flow as the CLI drives it.
pub(crate) type K0sRun = Result<
    Result<
        ferry_core::run::Finish<ferry_flow_k0s_upgrade::UpgradeReport>,
        ferry_core::run::RunError<ferry_flow_k0s_upgrade::K0sUpgradeError>,
    >,
    crate::session::DriveError,
>;

/// Prints what a run of the k0s upgrade came to (after its report, when there is one); its exit
/// code.
pub(crate) fn finish(
    r: K0sRun,
    report: Option<ferry_safety::Report>,
    format: Format,
    out: &mut Output<'_>,
) -> u8 {
    use ferry_core::run::{Finish, RunError};
    let fin = match r {
        Err(e) => {
            out.error(&e);
            return exit::code(Ending::Failed);
        }
        Ok(Err(e)) => {
            if let RunError::Checks(checks) = &e {
                match format {
                    Format::Json => out.result(&format!(
                        "{}\n",
                        serde_json::json!({ "report": report, "checks": checks, "error": e.to_string() })
                    )),
                    Format::Text if report.is_none() => out.info(&checks.render()),
                    Format::Text => {}
                }
                if report.as_ref().is_some_and(|r| !r.is_ok()) {
                    out.info(
                        "Unable to perform an online upgrade due to the unsafe conditions detected.\n",
                    );
                }
            }
            out.error(&e);
            return exit::code(Ending::of_run_error(&e));
        }
        Ok(Ok(f)) => f,
    };
    let code = exit::code(Ending::of_finish(&fin));
    match (&fin, format) {
        (Finish::DryRun { checks, plan }, Format::Text) => {
            if report.is_none() {
                out.result(&checks.render());
            }
            out.result("Plan (dry run: nothing was changed)\n---------------\n");
            out.result(&plan.render());
        }
        (Finish::DryRun { checks, plan }, Format::Json) => out.result(&format!(
            "{}\n",
            serde_json::json!({ "report": report, "checks": checks, "plan": plan })
        )),
        (
            Finish::Completed {
                report: summary, ..
            },
            Format::Text,
        ) => out.result(&summary.render()),
        (
            Finish::Completed {
                report: summary, ..
            },
            Format::Json,
        ) => out.result(&format!(
            "{}\n",
            serde_json::json!({ "report": report, "summary": summary })
        )),
        (Finish::RollbackIncomplete { remaining, .. }, _) => out.info(&format!(
            "Still applied (undo order): {}\n",
            remaining.join(", ")
        )),
        (Finish::RolledBack { .. } | Finish::Interrupted, _) => {}
    }
    code
}

/// `ferry resume` / `ferry rollback` of a k0s upgrade: the hosts and inputs from the journal,
/// the kubeconfig from `--kubeconfig` or, when not given, the one the run used.
pub(crate) fn journaled(
    rt: &Runtime,
    args: &crate::session::JournalArgs,
    replay: &ferry_core::journal::Replay,
    state: &std::path::Path,
    out: &mut Output<'_>,
    mode: super::resume::Mode,
) -> Result<Option<K0sRun>, CliError> {
    use ferry_core::run;
    use ferry_flow_k0s_upgrade::{Journaled, K0sUpgradeFlow};
    let Some(j) = super::resume::journaled_inputs::<Journaled>(replay, state, out) else {
        return Ok(None);
    };
    let Some(kubeconfig) = args.remote.kubeconfig.clone().or(j.kubeconfig) else {
        out.error(&CliError::Usage(
            "the journal names no kubeconfig: give --kubeconfig".into(),
        ));
        return Ok(None);
    };
    let (ssh, unchecked) = args.remote.ssh.options(&replay.hosts);
    if unchecked {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let connector = SshConnector::new(ssh).map_err(|e| CliError::Usage(e.to_string()))?;
    let r = drive_with(
        rt,
        args.log,
        out,
        || backends(kubeconfig, connector),
        state.to_path_buf(),
        |(), session| async move {
            let flow = K0sUpgradeFlow::new();
            match mode {
                super::resume::Mode::Resume => run::resume(&flow, session).await,
                super::resume::Mode::Rollback => run::rollback(&flow, session).await,
            }
        },
    );
    Ok(Some(r))
}
