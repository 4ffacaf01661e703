//! `ferry node replace-os`: give every node of a cluster a new OS without downtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::engine::{Plan, StepRef};
use ferry_core::k0s::K0sBinary;
use ferry_core::run::{self, Confirm, Finish, RunError};
use ferry_flow_node_os::{Inputs, Journaled, NodeOsError, NodeOsFlow, Order, ReplaceReport};
use ferry_ssh_exec::SshConnector;

use crate::cmd::hosts::SshArgs;
use crate::cmd::k0s::{SafetyArgs, read_hosts};
use crate::exit::{self, Ending};
use crate::session::{LogArgs, Runtime, drive_with};
use crate::{CliError, Format, Output, fsio};

#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Give every node a new operating system without downtime: capacity and safety checked for
    /// each node first; workers in a window, then the controllers one at a time, the first
    /// controller last; each node drained, removed, reinstalled and added back
    /// (remove-before-add), or replaced by a new machine that joins first (add-before-remove).
    /// Rolled back on any failure or Ctrl-C (a reinstalled node is added back on its new OS);
    /// journaled for `ferry resume` and `ferry rollback`.
    ReplaceOs(ReplaceOsArgs),
}

/// Which node comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OrderArg {
    /// Remove the node, reinstall it, add it back under the same name and address.
    RemoveBeforeAdd,
    /// A new machine (--new-hosts-path) joins first, then the old node is removed (k0s).
    AddBeforeRemove,
}

/// The cluster's distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// A k0s (or MKE 4k) cluster: ferry removes and adds nodes itself over SSH.
    K0s,
    /// A kubean (kubespray) cluster: kubean's operator removes and adds nodes, through
    /// ClusterOperations ferry creates in the management cluster.
    Kubean,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Before anything changes, every node is weighed in the order it goes: can the other nodes take its \
pods (CPU and memory requests against allocatable, the pod limit, node selectors and taints), \
would its drain break a PodDisruptionBudget or take the last ready replica of a workload? Exit 3 \
when not, with the reason per pod and what would fix it (raise maxPods, add a node first, \
add-before-remove).

remove-before-add: per node, cordon and drain; a controller's etcd member is removed through \
another controller; k0s is stopped and reset and the Node deleted; then the reinstall: \
--reinstall-command runs on this machine ({host}, {address}, {hostname} and {node} are replaced; \
without them the host is appended), or, without it, ferry waits for the operator; either way until \
the host answers on SSH at the same address with another /etc/os-release. The new host key it then \
presents is recorded in known_hosts for that host at that moment only; any other changed key is \
still refused. Then k0s is put back (--k0s-binary, or the release the host ran, downloaded), with \
its former flags and configuration and a join token made on a healthy controller; ferry waits until \
the node is Ready and uncordons it. The first controller (the one the others joined) goes last and \
joins again through another controller.

A reinstall cannot be undone: the plan marks it one-way and the run asks for confirmation (--yes). \
A rollback adds every removed node back, on whatever OS it has by then.

Exit codes: 0 replaced (or dry run with passing checks), 2 usage, 3 checks failed and nothing \
changed, 4 failed and rolled back cleanly, 5 failed and the rollback is incomplete (see \
`ferry rollback`), 130 interrupted twice (the journal is kept), 1 anything else.")]
pub struct ReplaceOsArgs {
    /// The hosts file (mkectl's hosts.yaml): every host of the cluster, reachable over SSH.
    #[arg(long, value_name = "FILE")]
    pub hosts_path: PathBuf,
    /// remove-before-add (same names and addresses) or add-before-remove (new machines).
    #[arg(long, value_enum)]
    pub order: OrderArg,
    /// add-before-remove: the new machines, the i-th taking the place of the i-th host.
    #[arg(
        long,
        value_name = "FILE",
        required_if_eq("order", "add-before-remove")
    )]
    pub new_hosts_path: Option<PathBuf>,
    /// The cluster's distribution.
    #[arg(long, value_enum, default_value = "k0s")]
    pub backend: BackendArg,
    /// The cluster's Kubernetes API: a kubeconfig file.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,
    /// kubean: the `clusters.kubean.io` object of the cluster.
    #[arg(long, value_name = "NAME", required_if_eq("backend", "kubean"))]
    pub kubean_cluster: Option<String>,
    /// kubean: the management cluster (where kubean's operator runs): a kubeconfig file.
    #[arg(long, value_name = "FILE", required_if_eq("backend", "kubean"))]
    pub management_kubeconfig: Option<PathBuf>,
    /// kubean: the spray-job image of the operations, the one the cluster was deployed with.
    #[arg(long, value_name = "IMAGE", required_if_eq("backend", "kubean"))]
    pub spray_image: Option<String>,
    /// kubean: seconds an operation may run before the run stops and rolls back.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub operation_timeout: u64,
    /// Workers out at once: a count (2) or a percentage of the workers (10%); at least 1.
    #[arg(long, value_name = "N|N%", default_value = "1", value_parser = parse_max_unavailable)]
    pub max_unavailable: ferry_core::engine::MaxUnavailable,
    /// Reinstalls a host, run on this machine by `sh -c`; see below. Without it ferry waits
    /// for the operator.
    #[arg(long, value_name = "CMD")]
    pub reinstall_command: Option<String>,
    /// Seconds a reinstall may take until the host answers with its new OS.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub reinstall_timeout: u64,
    /// The k0s binary a re-added host gets (default: each host downloads the release it ran).
    #[arg(long, value_name = "FILE")]
    pub k0s_binary: Option<PathBuf>,
    /// The OS the hosts move to, as ID:VERSION_ID of /etc/os-release (debian:13,
    /// ubuntu:22.04): hosts already on it are left alone, and a reinstall counts once the host
    /// runs it. Without it every host is reinstalled and any other OS counts.
    #[arg(long, value_name = "ID:VERSION_ID", value_parser = parse_target_os)]
    pub target_os: Option<ferry_flow_node_os::TargetOs>,
    /// Print the order, the capacity and safety report and every step; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm the one-way steps (the reinstalls) without being asked.
    #[arg(long)]
    pub yes: bool,
    /// Where the journal and the lock live (default: $XDG_STATE_HOME/ferry/node-os-<first host>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds a drain may take before the run stops and rolls back.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub drain_timeout: u64,
    /// Seconds a re-added node may take to run k0s and be Ready.
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
    /// Format of the result (the reports, the dry-run plan, the summary).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

fn parse_target_os(s: &str) -> Result<ferry_flow_node_os::TargetOs, String> {
    ferry_flow_node_os::TargetOs::parse(s)
}

fn parse_max_unavailable(s: &str) -> Result<ferry_core::engine::MaxUnavailable, String> {
    s.parse()
        .map_err(|e: ferry_core::engine::batching::MaxUnavailableError| e.reason)
}

pub fn run(c: &NodeCommand, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        NodeCommand::ReplaceOs(args) => replace_os(args, rt, out),
    }
}

/// `--yes`, or a question on the terminal; refused without either.
#[derive(Debug)]
struct AskOrYes {
    yes: bool,
}

impl Confirm for AskOrYes {
    fn confirm(&self, _plan: &Plan, one_way: &[StepRef]) -> Result<(), String> {
        if self.yes {
            return Ok(());
        }
        let hosts: Vec<String> = one_way
            .iter()
            .filter_map(|s| s.key.host().map(str::to_string))
            .collect();
        let what = format!(
            "{} host(s) will be reinstalled, which cannot be undone: {}",
            hosts.len(),
            hosts.join(", ")
        );
        crate::session::ask_yes(&format!("{what} (--dry-run shows every step)"))
    }
}

fn replace_os(args: &ReplaceOsArgs, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    let checks = args.safety.options()?;
    let hosts = read_hosts(&args.hosts_path)?;
    let new_hosts = match (&args.new_hosts_path, args.order) {
        (Some(p), OrderArg::AddBeforeRemove) => read_hosts(p)?,
        (Some(_), OrderArg::RemoveBeforeAdd) => {
            return Err(CliError::Usage(
                "--new-hosts-path is for --order add-before-remove: remove-before-add keeps every host".into(),
            ));
        }
        (None, OrderArg::AddBeforeRemove) => {
            return Err(CliError::Usage(
                "--order add-before-remove needs --new-hosts-path".into(),
            ));
        }
        (None, OrderArg::RemoveBeforeAdd) => Vec::new(),
    };
    if args.order == OrderArg::AddBeforeRemove && new_hosts.len() != hosts.len() {
        return Err(CliError::Usage(format!(
            "--new-hosts-path lists {} host(s) and --hosts-path {}: one new host per host, in the same order",
            new_hosts.len(),
            hosts.len()
        )));
    }
    if let Some(h) = new_hosts
        .iter()
        .find(|n| hosts.iter().any(|o| o.name() == n.name()))
    {
        return Err(CliError::Usage(format!(
            "{} is in both hosts files: a new host is another machine",
            h.name()
        )));
    }
    let k0s_binary = match &args.k0s_binary {
        Some(p) => {
            fsio::check_file(p)?;
            Some(K0sBinary::File {
                path: std::path::absolute(p).map_err(|e| CliError::Input {
                    path: p.clone(),
                    problem: e.to_string(),
                })?,
            })
        }
        None => None,
    };
    if matches!(&args.reinstall_command, Some(c) if c.trim().is_empty()) {
        return Err(CliError::Usage("--reinstall-command is empty".into()));
    }
    let state = match &args.state_dir {
        Some(d) => d.clone(),
        None => {
            let first = hosts.first().map(|h| h.address.clone()).unwrap_or_default();
            crate::session::state_dir(rt, None, Some(&format!("node-os-{first}")))?
        }
    };
    let all: Vec<_> = hosts.iter().chain(&new_hosts).cloned().collect();
    let (ssh, unchecked) = args.ssh.options(&all);
    if unchecked {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let connector = SshConnector::new(ssh).map_err(|e| CliError::Usage(e.to_string()))?;
    let kubean = match args.backend {
        BackendArg::K0s => {
            if args.kubean_cluster.is_some()
                || args.spray_image.is_some()
                || args.management_kubeconfig.is_some()
            {
                return Err(CliError::Usage(
                    "--kubean-cluster, --spray-image and --management-kubeconfig are for --backend kubean".into(),
                ));
            }
            None
        }
        BackendArg::Kubean => {
            if args.order == OrderArg::AddBeforeRemove {
                return Err(CliError::Usage(
                    "--backend kubean replaces nodes --order remove-before-add".into(),
                ));
            }
            let image = args.spray_image.clone().unwrap_or_default();
            if image.trim().is_empty() || image.contains(char::is_whitespace) {
                return Err(CliError::Usage(format!(
                    "--spray-image {image:?} is not an image reference"
                )));
            }
            Some(ferry_flow_node_os::KubeanInputs {
                cluster: args.kubean_cluster.clone().unwrap_or_default(),
                image,
                management_kubeconfig: args
                    .management_kubeconfig
                    .as_ref()
                    .and_then(|p| std::path::absolute(p).ok()),
                operation_timeout: Duration::from_secs(args.operation_timeout),
            })
        }
    };
    let inputs = Inputs {
        kubean,
        target_os: args.target_os.clone(),
        hosts,
        new_hosts,
        order: match args.order {
            OrderArg::RemoveBeforeAdd => Order::RemoveBeforeAdd,
            OrderArg::AddBeforeRemove => Order::AddBeforeRemove,
        },
        k0s_binary,
        max_unavailable: args.max_unavailable,
        reinstall_command: args.reinstall_command.clone(),
        reinstall_timeout: Duration::from_secs(args.reinstall_timeout),
        drain_timeout: Duration::from_secs(args.drain_timeout),
        ready_timeout: Duration::from_secs(args.ready_timeout),
        delete_emptydir_data: args.delete_emptydir_data,
        force_bare_pods: args.force_bare_pods,
        checks,
        kubeconfig: std::path::absolute(&args.kubeconfig).ok(),
    };
    let kubeconfig = args.kubeconfig.clone();
    let management = args.management_kubeconfig.clone();
    let dry_run = args.dry_run;
    let yes = args.yes;
    let mut reports = None;
    let r = drive_with(
        rt,
        args.log,
        out,
        || backends(kubeconfig, management, connector),
        state,
        |mgmt, mut session| {
            session.confirm = Some(Arc::new(AskOrYes { yes }));
            let reports = &mut reports;
            async move {
                let flow = match mgmt {
                    Some(m) => NodeOsFlow::with_management(m),
                    None => NodeOsFlow::new(),
                };
                let r = run::start(&flow, inputs, session, dry_run).await;
                *reports = flow.last_reports();
                r
            }
        },
    );
    if let (Some((safety, cap)), Format::Text) = (&reports, args.output) {
        out.result(&safety.render());
        out.result("\n");
        out.result(&cap.render());
        out.result("\n");
    }
    Ok(finish(r, reports, args.output, out))
}

/// The backends of a node OS replacement: OpenSSH to the hosts, the cluster's Kubernetes API,
/// and (kubean) the management cluster's.
async fn backends(
    kubeconfig: PathBuf,
    management: Option<PathBuf>,
    connector: SshConnector,
) -> Result<
    (
        Arc<dyn ferry_core::Connector>,
        Arc<dyn ferry_core::ClusterApi>,
        Option<Arc<dyn ferry_core::ClusterApi>>,
    ),
    String,
> {
    let (c, cluster, ()) = super::k0s::backends(kubeconfig, connector).await?;
    let mgmt = match management {
        Some(m) => {
            let api =
                crate::cmd::cluster::open_kubeconfig(&m, ferry_kube_api::KubeOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            let api: Arc<dyn ferry_core::ClusterApi> = Arc::new(api);
            Some(api)
        }
        None => None,
    };
    Ok((c, cluster, mgmt))
}

/// A run of the node OS flow as the CLI drives it.
pub(crate) type NodeOsRun =
    Result<Result<Finish<ReplaceReport>, RunError<NodeOsError>>, crate::session::DriveError>;

/// Prints what a run came to (after its reports); its exit code.
pub(crate) fn finish(
    r: NodeOsRun,
    reports: Option<(ferry_safety::Report, ferry_safety::CapacityReport)>,
    format: Format,
    out: &mut Output<'_>,
) -> u8 {
    let json_reports = reports
        .as_ref()
        .map(|(s, c)| serde_json::json!({ "safety": s, "capacity": c }));
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
                        serde_json::json!({ "reports": json_reports, "checks": checks, "error": e.to_string() })
                    )),
                    Format::Text => out.info(&checks.render()),
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
            out.result(&checks.render());
            out.result("Plan (dry run: nothing was changed)\n---------------\n");
            out.result(&plan.render());
        }
        (Finish::DryRun { checks, plan }, Format::Json) => out.result(&format!(
            "{}\n",
            serde_json::json!({ "reports": json_reports, "checks": checks, "plan": plan })
        )),
        (Finish::Completed { report, .. }, Format::Text) => out.result(&report.render()),
        (Finish::Completed { report, .. }, Format::Json) => out.result(&format!(
            "{}\n",
            serde_json::json!({ "reports": json_reports, "summary": report })
        )),
        (Finish::RollbackIncomplete { remaining, .. }, _) => out.info(&format!(
            "Still applied (undo order): {}\n",
            remaining.join(", ")
        )),
        (Finish::RolledBack { .. } | Finish::Interrupted, _) => {}
    }
    code
}

/// `ferry resume` / `ferry rollback` of a node OS replacement: the hosts and inputs from the
/// journal, the kubeconfig from `--kubeconfig` or, when not given, the one the run used.
pub(crate) fn journaled(
    rt: &Runtime,
    args: &crate::session::JournalArgs,
    replay: &ferry_core::journal::Replay,
    state: &std::path::Path,
    out: &mut Output<'_>,
    mode: super::resume::Mode,
) -> Result<Option<NodeOsRun>, CliError> {
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
    let management = match &j.backend {
        ferry_flow_node_os::Backend::Kubean(k) => k.management_kubeconfig.clone(),
        ferry_flow_node_os::Backend::K0s => None,
    };
    let r = drive_with(
        rt,
        args.log,
        out,
        || backends(kubeconfig, management, connector),
        state.to_path_buf(),
        |mgmt, session| async move {
            let flow = match mgmt {
                Some(m) => NodeOsFlow::with_management(m),
                None => NodeOsFlow::new(),
            };
            match mode {
                super::resume::Mode::Resume => run::resume(&flow, session).await,
                super::resume::Mode::Rollback => run::rollback(&flow, session).await,
            }
        },
    );
    Ok(Some(r))
}
