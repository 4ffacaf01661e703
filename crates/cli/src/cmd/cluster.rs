//! `ferry cluster ...`: look at a Kubernetes cluster through its API.

use std::path::PathBuf;
use std::time::Duration;

use ferry_core::ClusterApi;
use ferry_core::cluster::Node;
use ferry_kube_api::{KubeCluster, KubeOptions};

use crate::{CliError, Format, Output, exit};

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Print the API server version and every node with its roles and readiness. Exits 3 when
    /// a node is not ready.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A kubeconfig file, or an MKE 3 client bundle directory (its kube.yml is used).
    #[arg(long, value_name = "FILE|DIR")]
    pub kubeconfig: PathBuf,
    /// Seconds allowed for one request.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// text (a table) or json.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot check the cluster at {server}")]
struct CheckError {
    server: String,
    #[source]
    source: ferry_core::ClusterError,
}

pub fn run(c: &ClusterCommand, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        ClusterCommand::Check(args) => check(args, out),
    }
}

fn table(version: &str, nodes: &[Node]) -> String {
    let rows: Vec<[String; 6]> = nodes
        .iter()
        .map(|n| {
            let mut status = if n.ready { "Ready" } else { "NotReady" }.to_string();
            if n.unschedulable {
                status.push_str(",SchedulingDisabled");
            }
            [
                n.name.clone(),
                status,
                if n.roles.is_empty() {
                    "<none>".into()
                } else {
                    n.roles.join(",")
                },
                n.kubelet_version.clone(),
                n.internal_ip.clone().unwrap_or_else(|| "<none>".into()),
                String::new(),
            ]
        })
        .collect();
    let header = ["NAME", "STATUS", "ROLES", "VERSION", "INTERNAL-IP", ""];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().take(5) {
            if i < 4 {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut text = format!("Kubernetes {version}\n");
    text.push_str(&line(header));
    for r in &rows {
        text.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    let ready = nodes.iter().filter(|n| n.ready).count();
    text.push_str(&format!("{ready} of {} nodes ready\n", nodes.len()));
    text
}

/// The Kubernetes client of `--kubeconfig FILE|DIR`; a file that cannot be used is the
/// operator's input error, named with the file.
pub(crate) async fn open_kubeconfig(
    kubeconfig: &std::path::Path,
    options: KubeOptions,
) -> Result<KubeCluster, CliError> {
    KubeCluster::from_kubeconfig(kubeconfig, options)
        .await
        .map_err(|e| CliError::Input {
            path: kubeconfig.to_path_buf(),
            problem: match e {
                ferry_kube_api::KubeApiError::Kubeconfig { path, problem } => {
                    if path == kubeconfig {
                        problem
                    } else {
                        format!("{}: {problem}", path.display())
                    }
                }
                other => other.to_string(),
            },
        })
}

fn check(args: &CheckArgs, out: &mut Output<'_>) -> Result<u8, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the async runtime: {e}")))?;
    let options = KubeOptions {
        read_timeout: Duration::from_secs(args.timeout),
        ..KubeOptions::default()
    };
    let result = runtime.block_on(async {
        let cluster = open_kubeconfig(&args.kubeconfig, options).await?;
        let server = cluster.server().to_string();
        let fail = |source| CheckError {
            server: server.clone(),
            source,
        };
        let version = cluster.server_version().await.map_err(fail);
        let nodes = match &version {
            Ok(_) => cluster.nodes().await.map_err(fail),
            Err(_) => Ok(Vec::new()),
        };
        Ok::<_, CliError>((version, nodes))
    })?;
    let (version, nodes) = match result {
        (Ok(v), Ok(n)) => (v, n),
        (Err(e), _) | (_, Err(e)) => {
            out.error(&e);
            return Ok(exit::code(exit::Ending::Failed));
        }
    };
    match args.output {
        Format::Text => out.result(&table(&version, &nodes)),
        Format::Json => {
            let doc = serde_json::json!({
                "serverVersion": version,
                "nodes": nodes,
                "ready": nodes.iter().all(|n| n.ready),
            });
            out.result(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ));
        }
    }
    Ok(if nodes.iter().all(|n| n.ready) {
        exit::code(exit::Ending::Done)
    } else {
        exit::code(exit::Ending::ChecksFailed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up() {
        let node = |name: &str, ready: bool, roles: &[&str]| Node {
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ready,
            unschedulable: !ready,
            labels: Default::default(),
            internal_ip: Some("10.0.0.1".into()),
            kubelet_version: "v1.31.4".into(),
            ..Node::default()
        };
        let t = table(
            "v1.31.4",
            &[
                node("manager-0", true, &["control-plane", "master"]),
                node("w", false, &[]),
            ],
        );
        assert_eq!(
            t,
            "Kubernetes v1.31.4\n\
             NAME        STATUS                        ROLES                  VERSION   INTERNAL-IP\n\
             manager-0   Ready                         control-plane,master   v1.31.4   10.0.0.1\n\
             w           NotReady,SchedulingDisabled   <none>                 v1.31.4   10.0.0.1\n\
             1 of 2 nodes ready\n"
        );
    }
}
