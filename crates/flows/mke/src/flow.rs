//! The MKE 3 → MKE 4k flow on the core lifecycle: gather facts read-only, run the pre-upgrade
//! checks, build the plan (pre-upgrade tasks, managers to k0s one at a time behind the quorum
//! gate, workers in a sliding window, MKE 4 components, MKE 3 cleanup), and hand the engine one
//! step per planned step. The commands of every step are listed in `docs/upgrade-steps.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use ferry_core::checks::CheckReport;
use ferry_core::cluster::ClusterError;
use ferry_core::engine::{
    Deadline, Gate, Group, HostChain, MaxUnavailable, Phase, Plan, Step, StepError, StepKey,
    StepRef, Target, Texts, slowest_first,
};
use ferry_core::exec::ExecError;
use ferry_core::facts::{self, InitSystem};
use ferry_core::hosts::HostSpec;
use ferry_core::k0s::K0sBinary;
use ferry_core::node::NodesReadyGate;
use ferry_core::run::{Flow, Planned, RunContext, RunTexts};

use crate::checks::{self, CheckOptions, Facts, HostFacts};
use crate::mke3::{Mke3Api, Mke3Error};
use crate::results::{self, Results, ResultsError};
use crate::steps::{self, Ctx, Kind};

/// The flow's name in plans and journals.
pub const FLOW: &str = "mke3-to-mke4";
/// The k0s release MKE 4k 4.1 runs.
pub const K0S_VERSION: &str = "v1.31.1+k0s.1";
/// The error text of a run stopped by the first interrupt, as mkectl words it.
pub const SIGNAL_ABORT: &str = "aborting upgrade due to signal interrupt";

/// The order workers enter the window in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostOrder {
    /// The slowest hosts first, by how long their facts took to gather.
    #[default]
    SlowestFirst,
    /// As the hosts file lists them.
    AsListed,
}

/// What the operator asked for. Journaled (without the hosts, which the journal header keeps):
/// never holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs {
    #[serde(skip)]
    pub hosts: Vec<HostSpec>,
    pub mke3_admin_username: String,
    pub external_address: String,
    pub max_unavailable: MaxUnavailable,
    #[serde(default)]
    pub host_order: HostOrder,
    pub image_registry: Option<String>,
    pub chart_registry: Option<String>,
    /// The registries' CA (PEM), as `--image-registry-ca-file` and `--chart-registry-ca-file`
    /// gave it (a CA certificate is no secret).
    #[serde(default)]
    pub image_registry_ca: Option<String>,
    #[serde(default)]
    pub chart_registry_ca: Option<String>,
    /// The Envoy gateway's node ports and whether ingress-nginx is left behind (4.1.5 flags).
    #[serde(default)]
    pub gateway_http_node_port: Option<u16>,
    #[serde(default)]
    pub gateway_https_node_port: Option<u16>,
    #[serde(default)]
    pub remove_ingress_nginx: bool,
    pub mke3_airgapped: bool,
    pub force: bool,
    pub checks: CheckOptions,
    pub mke4_version: String,
    /// Where the k0s binary comes from.
    pub k0s: K0sBinary,
    /// Where a leftover admin kubeconfig of an earlier attempt would be (`~/.mke/mke.kubeconf`).
    pub kubeconf_path: Option<PathBuf>,
    /// `--timeout-minutes`: the whole run, from its first change; it rolls back when it runs out.
    #[serde(default = "sixty")]
    pub timeout_minutes: u32,
    /// `--upgrade-timeout-minutes`: the node migration (managers and workers to k0s).
    #[serde(default = "sixty")]
    pub upgrade_timeout_minutes: u32,
    /// `--cni-check-timeout`: minutes an unmanaged CNI has to bring the network up.
    #[serde(default = "ten")]
    pub cni_check_timeout: u32,
    /// `--cni-check-port`: the port the CNI check reaches every checked host at.
    #[serde(default = "eighty")]
    pub cni_check_port: u16,
}

fn ten() -> u32 {
    10
}

fn eighty() -> u16 {
    80
}

fn sixty() -> u32 {
    60
}

/// The phase `--upgrade-timeout-minutes` bounds: the managers and the workers moving to k0s.
pub const NODE_MIGRATION_PHASE: &str = "Upgrade Tasks";

impl Inputs {
    /// Inputs with the defaults for everything optional.
    pub fn new(hosts: Vec<HostSpec>, username: &str, external_address: &str) -> Self {
        Self {
            hosts,
            mke3_admin_username: username.into(),
            external_address: external_address.into(),
            max_unavailable: MaxUnavailable::default(),
            host_order: HostOrder::default(),
            image_registry: None,
            chart_registry: None,
            image_registry_ca: None,
            chart_registry_ca: None,
            gateway_http_node_port: None,
            gateway_https_node_port: None,
            remove_ingress_nginx: false,
            mke3_airgapped: false,
            force: false,
            checks: CheckOptions::default(),
            mke4_version: ferry_config_convert::mke4::DEFAULT_VERSION.into(),
            k0s: K0sBinary::Release {
                version: K0S_VERSION.into(),
            },
            kubeconf_path: None,
            timeout_minutes: 60,
            upgrade_timeout_minutes: 60,
            cni_check_timeout: 10,
            cni_check_port: 80,
        }
    }

    /// The conversion options for these inputs, the hosts and the detected roles.
    pub fn convert_options(
        &self,
        hosts: &[HostSpec],
        d: &Discovered,
    ) -> ferry_config_convert::Options {
        let managers: BTreeSet<&str> = d
            .hosts
            .iter()
            .filter(|h| h.manager)
            .map(|h| h.name.as_str())
            .collect();
        ferry_config_convert::Options {
            external_address: Some(self.external_address.clone()),
            image_registry: self.image_registry.clone(),
            chart_registry: self.chart_registry.clone(),
            image_registry_ca: self.image_registry_ca.clone(),
            chart_registry_ca: self.chart_registry_ca.clone(),
            gateway_http_node_port: self.gateway_http_node_port,
            gateway_https_node_port: self.gateway_https_node_port,
            remove_ingress_nginx: self.remove_ingress_nginx,
            // the 4.1.5 requirement of both node ports is the command line's (ferry upgrade
            // checks it); a library caller gets the configuration's default ports
            airgapped: self.mke3_airgapped,
            version: self.mke4_version.clone(),
            hosts: hosts
                .iter()
                .map(|h| ferry_config_convert::HostInput {
                    address: h.address.clone(),
                    port: h.port,
                    user: h.user.clone(),
                    key_path: h.key_path.clone().unwrap_or_default(),
                    private_address: h.private_address.clone(),
                    private_interface: h.private_interface.clone(),
                    manager: managers.contains(h.name().as_str()),
                    profile: None,
                })
                .collect(),
            ..ferry_config_convert::Options::default()
        }
    }
}

/// A host as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedHost {
    pub name: String,
    /// The Kubernetes node name.
    pub hostname: String,
    pub manager: bool,
    /// `uname -m`, for the k0s binary.
    pub machine: String,
    /// The service manager k0s installs into.
    pub init_system: InitSystem,
}

/// What discovery found that the steps need; journaled with the inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    pub mke3_version: String,
    /// The first manager: it goes first, takes the etcd backup and issues join tokens.
    pub leader: String,
    pub hosts: Vec<PlannedHost>,
    /// The MKE 3 configuration's `cluster_config.unmanaged_cni`: the cluster brings its own CNI,
    /// and the plan checks that it brings the network up on k0s (`mke.cni-check`).
    #[serde(default)]
    pub unmanaged_cni: bool,
}

impl Discovered {
    pub fn host(&self, name: &str) -> Option<&PlannedHost> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// The journal header's `inputs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journaled {
    pub inputs: Inputs,
    pub discovered: Discovered,
}

/// What a completed upgrade reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkeReport {
    /// The Upgrade Summary, as mkectl prints it (also kept in the state directory).
    pub summary: String,
    /// The MKE 4k configuration that was applied.
    pub mke4_yaml: String,
}

/// Why the MKE flow cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum MkeError {
    #[error("cannot read {what} from MKE 3")]
    Mke3 {
        what: &'static str,
        #[source]
        source: Mke3Error,
    },
    #[error("cannot list the cluster's nodes")]
    Nodes(#[source] ClusterError),
    #[error("cannot gather the facts of {host}")]
    Host {
        host: String,
        #[source]
        source: ExecError,
    },
    #[error("cannot read the swarm state of {host}")]
    Swarm {
        host: String,
        #[source]
        source: StepError,
    },
    /// The operator's options cannot make a valid MKE 4k configuration.
    #[error("invalid options")]
    Options(#[source] ferry_config_convert::Error),
    #[error("the plan names step {0}, which this flow does not have")]
    UnknownStep(StepKey),
    #[error("cannot assemble the Upgrade Summary")]
    Report(#[source] StepError),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

impl MkeError {
    /// The operator's input is at fault (exit code 2), not the cluster or ferry.
    pub fn is_input(&self) -> bool {
        matches!(self, MkeError::Options(_))
    }
}

/// The MKE 3 → MKE 4k flow, with the one backend only it needs: the MKE 3 API.
#[derive(Debug, Clone)]
pub struct MkeFlow {
    pub mke3: Arc<dyn Mke3Api>,
    /// The results folder (`--output`), written when the checks have run.
    pub results: Option<Results>,
}

impl MkeFlow {
    pub fn new(mke3: Arc<dyn Mke3Api>) -> Self {
        Self {
            mke3,
            results: None,
        }
    }

    /// Writes the results folder `results` once the checks have run: the MKE 3 and MKE 4k
    /// configurations (secrets redacted), the compatibility checks and the pre-checks.
    pub fn with_results(mut self, results: Results) -> Self {
        self.results = Some(results);
        self
    }

    /// The results folder's inputs and checks (see [`crate::results`]).
    async fn write_results(
        &self,
        r: &Results,
        inputs: &Inputs,
        d: &Discovered,
        checks: &CheckReport,
        cx: &RunContext,
    ) -> Result<(), MkeError> {
        let toml = self
            .mke3
            .config_toml()
            .await
            .map_err(|source| MkeError::Mke3 {
                what: "the configuration",
                source,
            })?;
        r.create()?;
        let redacted = results::redact_toml(&toml)
            .unwrap_or_else(|e| format!("# the MKE 3 configuration cannot be read as TOML: {e}\n"));
        r.write(results::MKE3_TOML, redacted.as_bytes())?;
        let mut options = inputs.convert_options(&cx.specs, d);
        options.redact_reports = true;
        match ferry_config_convert::analyze(&toml, &options) {
            Ok(c) => {
                let mut config = serde_json::to_value(&c.config).unwrap_or_default();
                results::redact_json(&mut config);
                let yaml = ferry_config_convert::yaml::to_string(&config).unwrap_or_default();
                r.write(results::MKE4_YAML, yaml.as_bytes())?;
                let human = ferry_config_convert::report::human_readable(&c);
                r.write(&format!("{}.txt", results::COMPATIBILITY), human.as_bytes())?;
                let sorted = ferry_config_convert::report::sorted_toml(&c);
                r.write(
                    &format!("{}.sorted.toml", results::COMPATIBILITY),
                    sorted.as_bytes(),
                )?;
                r.write_json(
                    results::COMPATIBILITY,
                    &serde_json::json!({
                        "blockers": c.blockers,
                        "keys": c.keys,
                        "flags": c.flags,
                    }),
                )?;
            }
            Err(e) => {
                let text = format!("The MKE 3 configuration cannot be converted: {e}\n");
                r.write(&format!("{}.txt", results::COMPATIBILITY), text.as_bytes())?;
                r.write_json(
                    results::COMPATIBILITY,
                    &serde_json::json!({ "error": e.to_string() }),
                )?;
            }
        }
        r.write_checks(checks)?;
        cx.log
            .info(format!("Results written to {}", r.path().display()));
        Ok(())
    }
}

/// Gathers everything the checks and the plan need, read-only: the host facts (with the swarm
/// state), the nodes, the MKE 3 version and configuration.
pub async fn discover(
    inputs: &Inputs,
    mke3: &dyn Mke3Api,
    cx: &RunContext,
) -> Result<(Facts, Discovered, BTreeMap<String, Duration>), MkeError> {
    let mke3_err = |what| move |source| MkeError::Mke3 { what, source };
    let mke3_version = mke3.version().await.map_err(mke3_err("the version"))?;
    let toml = mke3
        .config_toml()
        .await
        .map_err(mke3_err("the configuration"))?;
    let nodes = cx.cluster.nodes().await.map_err(MkeError::Nodes)?;
    let connected = cx.connected();
    let gathered = facts::gather_all(&connected, "/var/lib").await;
    let swarms = ferry_core::engine::join::join_all(
        connected
            .iter()
            .map(|(_, h)| steps::swarm_info(h.as_ref()))
            .collect(),
    )
    .await;
    let mut all = Vec::new();
    let mut hosts_facts = Vec::new();
    let mut planned = Vec::new();
    let mut took = BTreeMap::new();
    for (((spec, _), f), swarm) in connected.iter().zip(gathered).zip(swarms) {
        let f = f.map_err(|source| MkeError::Host {
            host: spec.name(),
            source,
        })?;
        let swarm = swarm.map_err(|source| MkeError::Swarm {
            host: spec.name(),
            source,
        })?;
        hosts_facts.push(HostFacts {
            host: f.host.clone(),
            hostname: f.hostname.clone(),
            swarm_state: swarm.local_node_state.clone(),
            manager: swarm.control_available,
            cpus: f.cpus,
            mem_kib: f.memory_bytes / 1024,
            disk_free: f.data_dir_disk.available_bytes,
            listening: f.listening.clone(),
            // filled in below, once the leader is known
            mke3_data_bytes: None,
            mke3_data_error: None,
            kube_proxy: checks::KubeProxy::Absent,
        });
        planned.push(PlannedHost {
            name: f.host.clone(),
            hostname: f.hostname.clone(),
            manager: swarm.control_available,
            machine: f.arch.clone(),
            init_system: f.init_system,
        });
        took.insert(f.host.clone(), f.took);
        all.push(f);
    }
    let duplicates = facts::duplicates(&all.iter().map(Some).collect::<Vec<_>>());
    let leader = planned
        .iter()
        .find(|h| h.manager)
        .map(|h| h.name.clone())
        .unwrap_or_default();
    let discovered = Discovered {
        mke3_version: mke3_version.clone(),
        leader,
        hosts: planned,
        unmanaged_cni: unmanaged_cni(&toml),
    };
    let options = inputs.convert_options(&cx.specs, &discovered);
    options.validate().map_err(MkeError::Options)?;
    let (config_blockers, mke4_quota) = match ferry_config_convert::analyze(&toml, &options) {
        Ok(c) => (c.blockers, c.config.spec.etcd.storage_quota),
        Err(e) => (
            vec![format!("the MKE 3 configuration cannot be read: {e}")],
            None,
        ),
    };
    let leftover_kubeconfig = inputs.kubeconf_path.clone().filter(|p| p.exists());
    // The checks MKE 4k 4.1.x added, read-only: on every host what the cleanup would archive and
    // the running kube-proxy, on the leader the MKE 3 etcd, in the cluster Calico's dataplane.
    let in_swarm: Vec<bool> = hosts_facts
        .iter()
        .map(|h| h.swarm_state == "active")
        .collect();
    let extras = ferry_core::engine::join::join_all(
        connected
            .iter()
            .zip(in_swarm)
            .map(|((_, h), in_swarm)| async move {
                let h = h.as_ref();
                (
                    steps::mke3_data_size(h, in_swarm).await,
                    steps::kube_proxy(h).await,
                )
            })
            .collect(),
    );
    let leader_exec = connected
        .iter()
        .zip(&hosts_facts)
        .find(|(_, f)| f.host == discovered.leader)
        .map(|((_, h), _)| h.clone());
    let etcd = async {
        match &leader_exec {
            Some(h) => Some(steps::etcd_facts(h.as_ref()).await),
            None => None,
        }
    };
    let (extras, etcd, calico) =
        tokio::join!(extras, etcd, steps::calico_facts(cx.cluster.as_ref()));
    for (h, (data, proxy)) in hosts_facts.iter_mut().zip(extras) {
        match data {
            Ok(bytes) => h.mke3_data_bytes = Some(bytes),
            Err(e) => h.mke3_data_error = Some(e.chain()),
        }
        h.kube_proxy = proxy.unwrap_or_else(|e| checks::KubeProxy::Unreadable { error: e.chain() });
    }
    let mut etcd = match etcd {
        Some(Ok(e)) => e,
        Some(Err(e)) => checks::EtcdFacts {
            error: Some(e.chain()),
            ..checks::EtcdFacts::default()
        },
        None => checks::EtcdFacts {
            error: Some("no MKE 3 manager to ask".into()),
            ..checks::EtcdFacts::default()
        },
    };
    etcd.host = discovered.leader.clone();
    etcd.mke4_quota = mke4_quota;
    // A file that cannot be read now fails the k0s installation later; here it counts as much
    // as a release.
    let k0s_binary_bytes = match &inputs.k0s {
        K0sBinary::File { path } => std::fs::metadata(path)
            .map(|m| m.len())
            .unwrap_or(checks::K0S_RELEASE_ESTIMATE),
        K0sBinary::Release { .. } => checks::K0S_RELEASE_ESTIMATE,
    };
    Ok((
        Facts {
            mke3_version,
            config_blockers,
            nodes,
            hosts: hosts_facts,
            leftover_kubeconfig,
            duplicates,
            etcd,
            calico,
            k0s_binary_bytes,
        },
        discovered,
        took,
    ))
}

/// `cluster_config.unmanaged_cni` of an MKE 3 configuration (`false` when absent or unreadable:
/// the conversion's own checks name an unreadable file).
pub fn unmanaged_cni(toml: &str) -> bool {
    toml::from_str::<toml::Value>(toml)
        .ok()
        .and_then(|v| v.get("cluster_config")?.get("unmanaged_cni")?.as_bool())
        .unwrap_or(false)
}

fn sref(kind: Kind, target: Target) -> StepRef {
    StepRef {
        key: StepKey::new(kind.id(), target),
        description: kind.description().into(),
        reversibility: kind.reversibility(),
    }
}

fn chain(h: &PlannedHost, kinds: &[Kind]) -> HostChain {
    HostChain {
        host: h.name.clone(),
        role: if h.manager { "manager" } else { "worker" }.into(),
        steps: kinds
            .iter()
            .map(|k| sref(*k, Target::Host(h.name.clone())))
            .collect(),
    }
}

/// The plan for the discovered cluster; workers enter their windows slowest first by `took`
/// (how long each host's facts took), unless the inputs keep the hosts file's order.
pub fn build_plan(inputs: &Inputs, d: &Discovered, took: &BTreeMap<String, Duration>) -> Plan {
    let mut managers: Vec<&PlannedHost> = d.hosts.iter().filter(|h| h.manager).collect();
    // The leader goes first.
    managers.sort_by_key(|h| h.name != d.leader);
    let workers: Vec<&PlannedHost> = d.hosts.iter().filter(|h| !h.manager).collect();
    let node_steps = [
        Kind::Drain,
        Kind::StopMke3,
        Kind::InstallK0s,
        Kind::StartK0s,
        Kind::Uncordon,
    ];
    let limit = inputs.max_unavailable;
    let window = |mut hosts: Vec<HostChain>| {
        let order = match inputs.host_order {
            HostOrder::SlowestFirst => {
                slowest_first(&mut hosts, |h| took.get(h).copied().unwrap_or_default());
                "slowest first"
            }
            HostOrder::AsListed => "as listed",
        };
        Group::Window {
            limit: limit.to_string(),
            width: limit.batch_size(hosts.len()),
            order: order.into(),
            hosts,
        }
    };
    let worker_chains: Vec<HostChain> = workers.iter().map(|h| chain(h, &node_steps)).collect();
    let cleanup_workers: Vec<HostChain> = workers
        .iter()
        .map(|h| chain(h, &[Kind::RemoveMke3]))
        .collect();
    let mut cleanup_managers: Vec<HostChain> = managers
        .iter()
        .map(|h| chain(h, &[Kind::RemoveMke3]))
        .collect();
    // The leader, which took the backup, is cleaned last.
    cleanup_managers.reverse();
    Plan {
        flow: FLOW.into(),
        phases: vec![
            Phase {
                name: "Pre Upgrade Tasks".into(),
                rollback_name: "Rollback Pre Upgrade Tasks".into(),
                groups: vec![Group::Steps {
                    steps: vec![
                        sref(Kind::BackupEtcd, Target::Host(d.leader.clone())),
                        sref(Kind::ExportConfig, Target::Cluster),
                        sref(Kind::ExportRbac, Target::Cluster),
                        sref(Kind::ConvertConfig, Target::Cluster),
                        sref(Kind::TranslateRbac, Target::Cluster),
                    ],
                }],
            },
            Phase {
                name: NODE_MIGRATION_PHASE.into(),
                rollback_name: "Rollback Upgrade Tasks".into(),
                groups: {
                    let mut g = vec![
                        Group::Serial {
                            hosts: managers.iter().map(|h| chain(h, &node_steps)).collect(),
                        },
                        window(worker_chains),
                    ];
                    if d.unmanaged_cni {
                        g.push(Group::Steps {
                            steps: vec![sref(Kind::CniCheck, Target::Cluster)],
                        });
                    }
                    g
                },
            },
            Phase {
                name: "Install MKE 4 Components".into(),
                rollback_name: "Rollback MKE 4 Components".into(),
                groups: vec![Group::Steps {
                    steps: vec![
                        sref(Kind::ApplyMke4Config, Target::Cluster),
                        sref(Kind::ApplyRbac, Target::Cluster),
                    ],
                }],
            },
            Phase {
                name: "Post Upgrade Cleanup".into(),
                rollback_name: "Rollback Post Upgrade Cleanup".into(),
                groups: vec![
                    window(cleanup_workers),
                    Group::Serial {
                        hosts: cleanup_managers,
                    },
                ],
            },
        ],
    }
}

#[async_trait::async_trait]
impl Flow for MkeFlow {
    type Inputs = Inputs;
    type Journaled = Journaled;
    type Report = MkeReport;
    type Error = MkeError;

    fn name(&self) -> &'static str {
        FLOW
    }

    fn hosts(&self, inputs: &Inputs) -> Vec<HostSpec> {
        inputs.hosts.clone()
    }

    async fn plan(&self, inputs: Inputs, cx: &RunContext) -> Result<Planned<Journaled>, MkeError> {
        cx.log.info("==> Running phase: Gather facts");
        let (facts, discovered, took) = discover(&inputs, self.mke3.as_ref(), cx).await?;
        cx.log.info("==> Running phase: Pre-upgrade checks");
        let checks: CheckReport = checks::run(&facts, &inputs.checks);
        if let Some(r) = &self.results {
            self.write_results(r, &inputs, &discovered, &checks, cx)
                .await?;
        }
        let plan = build_plan(&inputs, &discovered, &took);
        Ok(Planned {
            checks,
            plan,
            journaled: Journaled { inputs, discovered },
        })
    }

    fn steps(
        &self,
        j: &Journaled,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Vec<Arc<dyn Step>>, MkeError> {
        let ctx = Arc::new(Ctx {
            inputs: j.inputs.clone(),
            discovered: j.discovered.clone(),
            run: cx.clone(),
            mke3: self.mke3.clone(),
        });
        plan.steps()
            .into_iter()
            .map(|s| {
                let kind = Kind::from_id(&s.key.id).ok_or(MkeError::UnknownStep(s.key.clone()))?;
                Ok(steps::step(s.key, kind, &ctx))
            })
            .collect()
    }

    fn texts(&self, j: &Journaled) -> RunTexts {
        let v = &j.discovered.mke3_version;
        RunTexts {
            engine: Texts {
                signal_abort: SIGNAL_ABORT.into(),
                rollback_because: "Initiating rollback because of upgrade failure. upgradeErr = "
                    .into(),
                rollback_start: Some(format!("Initiating rollback of MKE to version: {v}")),
                rollback_done: Some(format!(
                    "Rollback to MKE version {v} completed successfully ..."
                )),
            },
            starting: format!("Upgrading MKE {v} to MKE 4k {}", j.inputs.mke4_version),
            completed: "Upgrade to MKE 4k completed successfully".into(),
            failed: "Upgrade failed due to error: ".into(),
            rolled_back: "Rollback from the journal completed: the cluster is back on MKE 3".into(),
        }
    }

    fn gate(&self, j: &Journaled, cx: &RunContext) -> Option<Arc<dyn Gate>> {
        let nodes = j
            .discovered
            .hosts
            .iter()
            .filter(|h| h.manager)
            .map(|h| (h.name.clone(), h.hostname.clone()))
            .collect();
        Some(Arc::new(NodesReadyGate {
            cluster: cx.cluster.clone(),
            nodes,
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(2),
        }))
    }

    fn deadlines(&self, j: &Journaled) -> Vec<Deadline> {
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        vec![
            Deadline {
                name: format!(
                    "the upgrade (--timeout-minutes {})",
                    j.inputs.timeout_minutes
                ),
                limit: minutes(j.inputs.timeout_minutes),
                phase: None,
            },
            Deadline {
                name: format!(
                    "the node migration [{NODE_MIGRATION_PHASE}] (--upgrade-timeout-minutes {})",
                    j.inputs.upgrade_timeout_minutes
                ),
                limit: minutes(j.inputs.upgrade_timeout_minutes),
                phase: Some(NODE_MIGRATION_PHASE.into()),
            },
        ]
    }

    async fn report(&self, j: &Journaled, cx: &RunContext) -> Result<MkeReport, MkeError> {
        let (summary, mke4_yaml) =
            steps::summary(&cx.state, &j.discovered.mke3_version).map_err(MkeError::Report)?;
        // Kept with the run's other files, as mkectl's output folder keeps its summary.
        if let Err(e) = cx.state.write(steps::SUMMARY_FILE, summary.as_bytes()) {
            cx.log.warn(format!(
                "cannot keep the summary in the state directory: {e}"
            ));
        }
        if let Some(r) = &self.results {
            if let Err(e) = r.write(results::UPGRADE_SUMMARY, summary.as_bytes()) {
                cx.log.warn(e.to_string());
            }
        }
        Ok(MkeReport { summary, mke4_yaml })
    }
}
