//! Discovery: what the k0s cluster is, read only. Nothing here changes a host or the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use ferry_core::cluster::{ClusterApi, ClusterError, Lookup, Snapshot};
use ferry_core::exec::{ExecError, HostExec};
use ferry_core::facts::{self, HostFacts};
use ferry_core::hosts::HostSpec;
use ferry_core::k0s::K0sHost;

/// A host of the cluster as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostState {
    /// The host's name in the hosts file (`address` or `address:port`).
    pub name: String,
    pub facts: HostFacts,
    /// The k0s service installed (`k0scontroller` or `k0sworker`), if any.
    pub service: Option<String>,
    /// `k0s status` answered: k0s runs.
    pub running: bool,
    /// The version k0s reports while it runs (`v1.31.1+k0s.1`).
    pub version: Option<String>,
    pub controller: bool,
    /// A worker, or a controller that also runs workloads (`--enable-worker`).
    pub worker: bool,
}

impl HostState {
    /// The name of the host's Kubernetes Node: k0s registers its lowercased hostname.
    pub fn node(&self) -> Option<&str> {
        self.worker.then_some(self.facts.hostname.as_str())
    }
}

/// Everything the checks and the plan read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    /// In the hosts file's order; empty when only the API was read.
    pub hosts: Vec<HostState>,
    pub snapshot: Snapshot,
    /// `gitVersion` of the API server.
    pub server_version: String,
}

/// Why discovery could not finish.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot read the cluster")]
    Cluster(#[source] ClusterError),
    #[error("cannot gather the facts of {host}")]
    Host {
        host: String,
        #[source]
        source: ExecError,
    },
    #[error("cannot read the k0s state of {host}")]
    K0s {
        host: String,
        #[source]
        source: ferry_core::engine::StepError,
    },
}

/// The Kubernetes side only (no hosts): the snapshot and the server version.
pub async fn discover_api(cluster: &dyn ClusterApi) -> Result<Discovered, DiscoverError> {
    let (version, snapshot) = tokio::join!(
        cluster.server_version(),
        ferry_core::cluster::snapshot(cluster)
    );
    Ok(Discovered {
        hosts: Vec::new(),
        snapshot: snapshot.map_err(DiscoverError::Cluster)?,
        server_version: version.map_err(DiscoverError::Cluster)?,
    })
}

/// Hosts and API together: each host's facts (its data dir is k0s's) and k0s state, the etcd
/// members read on the first running controller, and the snapshot.
pub async fn discover(
    connected: &[(HostSpec, Arc<dyn HostExec>)],
    cluster: &dyn ClusterApi,
) -> Result<Discovered, DiscoverError> {
    let (api, hosts) = tokio::join!(discover_api(cluster), discover_hosts(connected));
    let mut d = api?;
    d.hosts = hosts?;
    let first_controller = d
        .hosts
        .iter()
        .zip(connected)
        .find(|(h, _)| h.controller && h.running);
    d.snapshot.etcd_members = match first_controller {
        None => {
            d.snapshot.failed.insert(
                Lookup::EtcdMembers,
                "no controller of the hosts file runs k0s".into(),
            );
            None
        }
        Some((h, (_, exec))) => {
            match K0sHost::new(exec.as_ref(), h.facts.init_system)
                .etcd_members()
                .await
            {
                Ok(m) => Some(member_hosts(&m, &d.hosts)),
                Err(e) => {
                    d.snapshot.failed.insert(Lookup::EtcdMembers, e.chain());
                    None
                }
            }
        }
    };
    Ok(d)
}

/// The etcd members named as hosts of the hosts file where one matches (by hostname, or by the
/// address of its peer URL); a member no host matches keeps its own name, so that it still
/// counts.
fn member_hosts(members: &BTreeMap<String, String>, hosts: &[HostState]) -> Vec<String> {
    members
        .iter()
        .map(|(name, url)| {
            let ip = url
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .rsplit_once(':')
                .map_or(url.as_str(), |(a, _)| a)
                .trim_matches(['[', ']']);
            hosts
                .iter()
                .find(|h| {
                    h.facts.hostname == name.to_ascii_lowercase()
                        || h.facts.private_address.as_deref() == Some(ip)
                        || h.name == ip
                })
                .map_or_else(|| name.clone(), |h| h.name.clone())
        })
        .collect()
}

async fn discover_hosts(
    connected: &[(HostSpec, Arc<dyn HostExec>)],
) -> Result<Vec<HostState>, DiscoverError> {
    let gathered = facts::gather_all(connected, facts::DEFAULT_DATA_DIR).await;
    let states = ferry_core::engine::join::join_all(
        connected
            .iter()
            .zip(&gathered)
            .map(|((_, exec), f)| async move {
                let init = f.as_ref().map(|f| f.init_system).ok()?;
                let k = K0sHost::new(exec.as_ref(), init);
                Some((k.installed().await, k.status().await))
            })
            .collect(),
    )
    .await;
    let mut out = Vec::new();
    for (((spec, _), f), state) in connected.iter().zip(gathered).zip(states) {
        let facts = f.map_err(|source| DiscoverError::Host {
            host: spec.name(),
            source,
        })?;
        let (service, status) = match state {
            Some((Ok(service), Ok(status))) => (service.map(str::to_string), status),
            Some((Err(source), _)) | Some((_, Err(source))) => {
                return Err(DiscoverError::K0s {
                    host: spec.name(),
                    source,
                });
            }
            None => (None, None),
        };
        let (controller, worker) = match (&status, service.as_deref()) {
            (Some(s), _) => (
                s.role == "controller",
                s.role != "controller" || s.workloads,
            ),
            (None, Some("k0scontroller")) => (true, false),
            (None, Some(_)) => (false, true),
            (None, None) => (false, false),
        };
        out.push(HostState {
            name: spec.name(),
            facts,
            running: status.is_some(),
            version: status.map(|s| s.version),
            service,
            controller,
            worker,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, hostname: &str, private: &str) -> HostState {
        HostState {
            name: name.into(),
            facts: HostFacts {
                host: name.into(),
                hostname: hostname.into(),
                os: Default::default(),
                arch: "x86_64".into(),
                cpus: 2,
                memory_bytes: 0,
                private_interface: None,
                private_address: Some(private.into()),
                root_disk: Default::default(),
                data_dir_disk: Default::default(),
                sudo: true,
                listening: Default::default(),
                init_system: ferry_core::facts::InitSystem::Sysv,
                notes: vec![],
                took: Default::default(),
            },
            service: Some("k0scontroller".into()),
            running: true,
            version: None,
            controller: true,
            worker: false,
        }
    }

    #[test]
    fn members_are_named_by_their_hosts() {
        let hosts = [
            host("10.0.0.1", "ctl-a", "192.168.0.1"),
            host("10.0.0.2", "ctl-b", "192.168.0.2"),
        ];
        let members = BTreeMap::from([
            ("CTL-A".to_string(), "https://192.168.0.9:2380".to_string()),
            ("other".to_string(), "https://192.168.0.2:2380".to_string()),
            ("gone".to_string(), "https://[fd00::5]:2380".to_string()),
        ]);
        assert_eq!(
            member_hosts(&members, &hosts),
            vec!["10.0.0.1", "gone", "10.0.0.2"]
        );
    }
}
