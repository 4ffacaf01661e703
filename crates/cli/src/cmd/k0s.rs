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
use crate::{CliError, Format, Output, exit};

#[derive(Debug, clap::Subcommand)]
pub enum K0sCommand {
    /// Print the safety and availability report of an online upgrade: per node, what an upgrade
    /// would lose (data, the last ready replica of a workload, etcd quorum, the only
    /// controller or worker, a PodDisruptionBudget's room) and, with --hosts-path, whether
    /// each host is ready (k0s running, free disk). Changes nothing. Exits 3 when a node has
    /// a finding.
    Check(CheckArgs),
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

pub fn run(c: &K0sCommand, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        K0sCommand::Check(args) => check(args, out),
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
