//! `ferry cloud-provider migrate`: in-tree → out-of-tree cloud provider with leader migration.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::run::{self, Finish, RunError};
use ferry_flow_cloud_provider::{
    CloudProviderError, CloudProviderFlow, ClusterRef, Distro, Inputs, Journaled, MigrationReport,
    RkeInputs,
};
use ferry_ssh_exec::{SshConnector, SshOptions};

use crate::exit::{self, Ending};
use crate::session::{LogArgs, Runtime, drive_with};
use crate::{CliError, Format, Output};

#[derive(Debug, clap::Subcommand)]
pub enum CloudCommand {
    /// Move a Rancher RKE2 or an RKE cluster from the in-tree AWS cloud provider to the
    /// out-of-tree one with leader migration, state by state (S0–S6), each state verified from
    /// the downstream cluster before the next; rolled back state by state on any failure or
    /// Ctrl-C; journaled for `ferry resume` and `ferry rollback`.
    Migrate(MigrateArgs),
}

/// The cluster's distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DistroArg {
    /// Rancher-provisioned RKE2: edits of the `provisioning.cattle.io/v1` `Cluster` in the
    /// Rancher management cluster (--cluster, --kubeconfig).
    Rke2,
    /// RKE: edits of `cluster.yml` that keep the rest of the file as it was, each applied by
    /// --apply-command (--cluster-yml, --apply-command).
    Rke,
}

/// The cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    Aws,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
States, each verified from the downstream cluster's API (with --state-timeout) before the next:
  S0  the start checked and kept: Kubernetes 1.22-1.26, more than one control-plane node, every \
control-plane kube-controller-manager on --cloud-provider=aws with leader election, every node's \
provider ID and cordon state.
  S1  the control-plane kube-controller-managers get enable-leader-migration (a machineSelectorConfig \
entry for rke.cattle.io/control-plane-role, with their other arguments); both managers must be \
allowed to get and update the Lease kube-system/cloud-provider-extraction-migration \
(SubjectAccessReview; a Role and RoleBinding are added if not); the Lease held by one of them.
  S2  the control-plane nodes cordoned.
  S3  the aws-cloud-controller-manager HelmChart in additionalManifest, with leader migration \
(and, for a 1.28+ manager, a leader migration file naming its controllers); its DaemonSet rolled \
out, its Lease held.
  S4  cloud-provider-name: external, the kube-controller-manager argument removed; every \
kube-controller-manager external, the migration Lease renewed by the cloud-controller-manager, no \
node left with the uninitialized taint, LoadBalancer Services keep their addresses.
  S5  leader migration off in the cloud-controller-manager (not with --keep-leader-migration).
  S6  cordon states as at the start; every node under its name with its provider ID of the start, \
no Node twice.
Then, with --kubernetes-version, the new version (irreversible: Rancher does not downgrade).

The Cluster's fields are changed by server-side apply of exactly those fields, conditional on the \
object not having changed since it was read; a field changed by someone else stops the run. A \
rollback goes back state by state to S0 and puts back what a node lost (its provider ID, its \
cordon state).

RKE (--distro rke): the same states as edits of cluster.yml, which keep its comments, order and \
quoting: S1 services.kube-controller.extra_args.enable-leader-migration: \"true\"; S4 \
cloud_provider.name: external-aws (useInstanceMetadataHostname: true only when every node is \
already named as its instance metadata names it) and the flag removed; with \
--kubernetes-version, kubernetes_version. After each edit ferry runs --apply-command with sh -c in \
the file's directory (FERRY_CLUSTER_YML names the file), logs its output, and stops on a \
non-zero exit; then it puts back the cordon states of the state (rke up uncordons the nodes it \
upgrades). The kube-controller-managers' flags are read over SSH (docker inspect \
kube-controller-manager on each control-plane node of cluster.yml, as rke up reaches them); the \
cloud-controller-manager's objects (the chart's ServiceAccount, RBAC and DaemonSet) are applied by \
ferry to the downstream cluster and removed by a rollback.

Exit codes: 0 migrated (or dry run with passing checks), 2 usage, 3 checks failed and nothing \
changed, 4 failed and rolled back cleanly, 5 failed and the rollback is incomplete (see \
`ferry rollback`), 130 interrupted twice (the journal is kept), 1 anything else.")]
pub struct MigrateArgs {
    /// The cluster's distribution.
    #[arg(long, value_enum)]
    pub distro: DistroArg,
    /// The cloud.
    #[arg(long, value_enum, default_value = "aws")]
    pub provider: ProviderArg,
    /// RKE2: the `provisioning.cattle.io/v1` `Cluster` of the cluster in the management cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Its namespace.
    #[arg(long, value_name = "NAMESPACE", default_value = "fleet-default")]
    pub cluster_namespace: String,
    /// RKE2: the Rancher management cluster, a kubeconfig file.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// RKE: the cluster's cluster.yml, edited in place state by state.
    #[arg(long, value_name = "FILE")]
    pub cluster_yml: Option<PathBuf>,
    /// RKE: what applies cluster.yml after each edit, run with sh -c in its directory (e.g.
    /// "rke up --config cluster.yml").
    #[arg(long, value_name = "CMD")]
    pub apply_command: Option<String>,
    /// The downstream cluster itself: a kubeconfig file.
    #[arg(long, value_name = "FILE")]
    pub downstream_kubeconfig: PathBuf,
    /// Upgrade to this Kubernetes version once migrated (the `kubernetesVersion` Rancher offers,
    /// e.g. v1.27.16+rke2r1).
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// Leave leader migration on in the cloud-controller-manager (skip S5).
    #[arg(long)]
    pub keep_leader_migration: bool,
    /// The cloud-controller-manager image (default: registry.k8s.io/provider-aws/
    /// cloud-controller-manager:v1.<minor>.0 of the cluster's version after the migration).
    #[arg(long, value_name = "IMAGE")]
    pub ccm_image: Option<String>,
    /// Seconds each state may take to show before the run stops and rolls back.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    pub state_timeout: u64,
    /// Milliseconds between two reads of the downstream cluster while a state is awaited.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..))]
    pub poll_interval_ms: u64,
    /// Print each state's edits and checks; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the journal and the lock live (default: $XDG_STATE_HOME/ferry/cloud-provider-<cluster>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub ssh: crate::cmd::hosts::SshArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Format of the result (the checks, the dry-run plan, the summary).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

pub fn run(c: &CloudCommand, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        CloudCommand::Migrate(args) => migrate(args, rt, out),
    }
}

fn absolute(p: &std::path::Path) -> Result<PathBuf, CliError> {
    crate::fsio::check_file(p)?;
    std::path::absolute(p).map_err(|e| CliError::Input {
        path: p.to_path_buf(),
        problem: e.to_string(),
    })
}

fn migrate(args: &MigrateArgs, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    let downstream = absolute(&args.downstream_kubeconfig)?;
    let usage = |m: &str| Err(CliError::Usage(m.into()));
    let (cluster, management, rke) = match args.distro {
        DistroArg::Rke2 => {
            if args.cluster_yml.is_some() || args.apply_command.is_some() {
                return usage(
                    "--cluster-yml and --apply-command are for --distro rke; an RKE2 cluster is edited through --cluster and --kubeconfig",
                );
            }
            let (Some(cluster), Some(kubeconfig)) = (&args.cluster, &args.kubeconfig) else {
                return usage(
                    "--distro rke2 needs --cluster NAME and --kubeconfig (the Rancher management cluster)",
                );
            };
            if cluster.trim().is_empty() || cluster.contains('/') {
                return Err(CliError::Usage(format!(
                    "--cluster {cluster:?} is not a Cluster name (its namespace goes in --cluster-namespace)"
                )));
            }
            let c = ClusterRef {
                name: cluster.clone(),
                namespace: args.cluster_namespace.clone(),
            };
            (Some(c), Some(absolute(kubeconfig)?), None)
        }
        DistroArg::Rke => {
            if args.cluster.is_some() || args.kubeconfig.is_some() {
                return usage(
                    "--cluster and --kubeconfig are for --distro rke2; an RKE cluster is edited through --cluster-yml and --apply-command",
                );
            }
            let (Some(file), Some(cmd)) = (&args.cluster_yml, &args.apply_command) else {
                return usage(
                    "--distro rke needs --cluster-yml FILE and --apply-command CMD (e.g. \"rke up --config cluster.yml\")",
                );
            };
            if cmd.trim().is_empty() {
                return usage("--apply-command is empty");
            }
            let path = absolute(file)?;
            // a file ferry cannot read or edit is refused before anything is reached
            let text = std::fs::read_to_string(&path).map_err(|e| CliError::Input {
                path: path.clone(),
                problem: e.to_string(),
            })?;
            ferry_flow_cloud_provider::rke::nodes(&path.display().to_string(), &text)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let rke = RkeInputs {
                cluster_yml: path,
                apply_command: cmd.clone(),
            };
            (None, None, Some(rke))
        }
    };
    if let Some(v) = &args.kubernetes_version {
        if ferry_flow_cloud_provider::leader::Version::parse(v).is_none() {
            return Err(CliError::Usage(format!(
                "--kubernetes-version {v:?} is not a Kubernetes version (v1.27.16+rke2r1)"
            )));
        }
    }
    if matches!(&args.ccm_image, Some(i) if i.trim().is_empty() || i.contains(char::is_whitespace))
    {
        return Err(CliError::Usage(format!(
            "--ccm-image {:?} is not an image reference",
            args.ccm_image.as_deref().unwrap_or("")
        )));
    }
    let name = match (&cluster, &rke) {
        (Some(c), _) => c.name.clone(),
        (None, Some(r)) => r
            .cluster_yml
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| format!("rke-{}", n.to_string_lossy()))
            .unwrap_or_else(|| "rke".into()),
        (None, None) => "cluster".into(),
    };
    let state = match &args.state_dir {
        Some(d) => d.clone(),
        None => crate::session::state_dir(rt, None, Some(&format!("cloud-provider-{name}")))?,
    };
    let inputs = Inputs {
        distro: match args.distro {
            DistroArg::Rke2 => Distro::Rke2,
            DistroArg::Rke => Distro::Rke,
        },
        provider: match args.provider {
            ProviderArg::Aws => "aws".into(),
        },
        cluster,
        management_kubeconfig: management.clone(),
        rke,
        downstream_kubeconfig: downstream.clone(),
        kubernetes_version: args.kubernetes_version.clone(),
        keep_leader_migration: args.keep_leader_migration,
        ccm_image: args.ccm_image.clone(),
        state_timeout_secs: args.state_timeout,
        poll_ms: args.poll_interval_ms,
    };
    let dry_run = args.dry_run;
    let flow_hosts = {
        use ferry_core::run::Flow as _;
        CloudProviderFlow::default().hosts(&inputs)
    };
    let (ssh, unchecked) = args.ssh.options(&flow_hosts);
    if unchecked {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let r = drive_with(
        rt,
        args.log,
        out,
        || backends(downstream, management, ssh),
        state,
        |mgmt, session| async move {
            let flow = CloudProviderFlow::new(mgmt);
            run::start(&flow, inputs, session, dry_run).await
        },
    );
    Ok(finish(r, args.output, out))
}

/// The backends: the downstream cluster's API (the session's), the management cluster's
/// (RKE2), and the SSH connector (RKE's control-plane nodes).
async fn backends(
    downstream: PathBuf,
    management: Option<PathBuf>,
    ssh: SshOptions,
) -> Result<
    (
        Arc<dyn ferry_core::Connector>,
        Arc<dyn ferry_core::ClusterApi>,
        Option<Arc<dyn ferry_core::ClusterApi>>,
    ),
    String,
> {
    let open = |p: PathBuf| async move {
        crate::cmd::cluster::open_kubeconfig(&p, ferry_kube_api::KubeOptions::default())
            .await
            .map_err(|e| e.to_string())
    };
    let cluster: Arc<dyn ferry_core::ClusterApi> = Arc::new(open(downstream).await?);
    let mgmt = match management {
        Some(m) => Some(Arc::new(open(m).await?) as Arc<dyn ferry_core::ClusterApi>),
        None => None,
    };
    let connector = SshConnector::new(ssh).map_err(|e| e.to_string())?;
    Ok((Arc::new(connector), cluster, mgmt))
}

/// A run of the cloud provider flow as the CLI drives it.
pub(crate) type CloudRun = Result<
    Result<Finish<MigrationReport>, RunError<CloudProviderError>>,
    crate::session::DriveError,
>;

fn render_states(report: &MigrationReport) -> String {
    let mut s = String::new();
    for st in &report.states {
        s.push_str(&format!("{}\n", st.state));
        for e in &st.edits {
            s.push_str(&format!("  edit:  {e}\n"));
        }
        for c in &st.checks {
            s.push_str(&format!("  check: {c}\n"));
        }
    }
    s
}

/// Prints what a run came to; its exit code.
pub(crate) fn finish(r: CloudRun, format: Format, out: &mut Output<'_>) -> u8 {
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
                        serde_json::json!({ "checks": checks, "error": e.to_string() })
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
            serde_json::json!({ "checks": checks, "plan": plan })
        )),
        (Finish::Completed { report, .. }, Format::Text) => {
            out.result("Cloud provider migration summary\n--------------------------------\n");
            out.result(&render_states(report));
        }
        (Finish::Completed { report, .. }, Format::Json) => {
            out.result(&format!("{}\n", serde_json::json!({ "summary": report })))
        }
        (Finish::RollbackIncomplete { remaining, .. }, _) => out.info(&format!(
            "Still applied (undo order): {}\n",
            remaining.join(", ")
        )),
        (Finish::RolledBack { .. } | Finish::Interrupted, _) => {}
    }
    code
}

/// `ferry resume` / `ferry rollback` of a migration: everything from the journal; the
/// downstream kubeconfig from `--kubeconfig` when given.
pub(crate) fn journaled(
    rt: &Runtime,
    args: &crate::session::JournalArgs,
    replay: &ferry_core::journal::Replay,
    state: &std::path::Path,
    out: &mut Output<'_>,
    mode: super::resume::Mode,
) -> Result<Option<CloudRun>, CliError> {
    let Some(j) = super::resume::journaled_inputs::<Journaled>(replay, state, out) else {
        return Ok(None);
    };
    let downstream = args
        .remote
        .kubeconfig
        .clone()
        .unwrap_or(j.downstream_kubeconfig.clone());
    let management = j.management_kubeconfig.clone();
    let (ssh, unchecked) = args.remote.ssh.options(&replay.hosts);
    if unchecked {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let r = drive_with(
        rt,
        args.log,
        out,
        || backends(downstream, management, ssh),
        state.to_path_buf(),
        |mgmt, session| async move {
            let flow = CloudProviderFlow::new(mgmt);
            match mode {
                super::resume::Mode::Resume => run::resume(&flow, session).await,
                super::resume::Mode::Rollback => run::rollback(&flow, session).await,
            }
        },
    );
    Ok(Some(r))
}
