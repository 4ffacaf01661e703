//! The flow: the start read and checked (S0), the plan of states, and the flow on ferry-core's
//! engine.
//!
//! | state | step | edit | verified from the downstream cluster |
//! |---|---|---|---|
//! | S0 | `cloud.record` | none | the start's checks ([`checks::start_report`]) |
//! | S1 | `cloud.lease-access` | Role/RoleBinding if needed | both managers may get and update the migration Lease |
//! | S1 | `cloud.kcm-leader-migration` | control-plane `kube-controller-manager-arg` + `enable-leader-migration` | every control-plane KCM runs with it; the Lease held by one |
//! | S2 | `cloud.cordon-control-plane` | cordon | control-plane nodes cordoned |
//! | S3 | `cloud.ccm-install` | the CCM's HelmChart in `additionalManifest` | DaemonSet rolled out, its Lease held |
//! | S4 | `cloud.external-provider` | `cloud-provider-name: external`, the KCM argument gone | KCMs external; the migration Lease renewed by the CCM; no node uninitialised; LoadBalancers kept |
//! | S5 | `cloud.ccm-leader-migration-off` | the CCM's `--enable-leader-migration=true` gone | rolled out again |
//! | S6 | `cloud.restore-cordon`, `cloud.verify` | cordon states of the start | provider IDs and names as at the start, no Node twice |
//! | — | `cloud.kubernetes-version` | `kubernetesVersion` | every node on it (irreversible) |

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ferry_core::checks::{CheckReport, Status};
use ferry_core::engine::{Group, Phase, Plan, Step, StepKey, StepRef, Target, Texts};
use ferry_core::hosts::HostSpec;
use ferry_core::run::{Flow, Planned, RunContext, RunTexts};
use ferry_core::{ClusterApi, ClusterError};
use serde::{Deserialize, Serialize};

use crate::chart::{self, Ccm};
use crate::checks::{self, Start};
use crate::facts::{self, Distro};
use crate::leader::{self, Version};
use crate::rke2::{self, Fields};
use crate::steps::{self, Kind, StateStep};

/// The flow's name in plans and journals.
pub const FLOW: &str = "cloud-provider";

/// A Rancher `provisioning.cattle.io/v1` `Cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRef {
    pub name: String,
    pub namespace: String,
}

/// What the operator gives a run.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub distro: Distro,
    /// `aws`: the one provider so far.
    pub provider: String,
    /// RKE2: the `Cluster` in the management cluster.
    pub cluster: Option<ClusterRef>,
    /// RKE2: the management cluster's kubeconfig (a path, never its content).
    pub management_kubeconfig: Option<PathBuf>,
    /// RKE: `cluster.yml` and the command that applies it.
    pub rke: Option<RkeInputs>,
    /// The downstream cluster's kubeconfig (a path).
    pub downstream_kubeconfig: PathBuf,
    /// A new `kubernetesVersion` once the migration is done.
    pub kubernetes_version: Option<String>,
    /// Leave `--enable-leader-migration=true` on the cloud-controller-manager (skip S5).
    pub keep_leader_migration: bool,
    /// The cloud-controller-manager image; by default the cluster's minor's.
    pub ccm_image: Option<String>,
    /// How long each state may take to show.
    pub state_timeout_secs: u64,
    /// How often the downstream cluster is read while waiting.
    pub poll_ms: u64,
}

/// An RKE cluster: its `cluster.yml` and the command that applies it (`rke up --config …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RkeInputs {
    /// An absolute path: ferry edits this file in place.
    pub cluster_yml: PathBuf,
    /// Run with `sh -c` in the file's directory after each edit; `FERRY_CLUSTER_YML` names the
    /// file.
    pub apply_command: String,
}

/// A control-plane node of `cluster.yml` and the connection ferry reads it through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RkeHost {
    /// The Node's name.
    pub node: String,
    /// The connection's name (`address` or `address:port`).
    pub host: String,
}

/// What the journal keeps of an RKE cluster (the file's text is in the state directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RkeJournaled {
    pub cluster_yml: PathBuf,
    pub apply_command: String,
    /// SHA-256 of `cluster.yml` at the start.
    pub text_digest: String,
    pub control_plane: Vec<RkeHost>,
    /// `cloud_provider.useInstanceMetadataHostname` with the external provider: set only when
    /// every node is already named as the instance metadata names it, so no node is renamed.
    pub instance_metadata_hostname: Option<bool>,
}

/// What the journal keeps (never a secret: the `Cluster`'s fields are in the state directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journaled {
    pub distro: Distro,
    pub provider: String,
    pub cluster: Option<ClusterRef>,
    pub management_kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub rke: Option<RkeJournaled>,
    pub downstream_kubeconfig: PathBuf,
    pub kubernetes_version: Option<String>,
    pub keep_leader_migration: bool,
    pub ccm: Ccm,
    pub state_timeout_secs: u64,
    pub poll_ms: u64,
    pub start: Start,
    /// SHA-256 of the start's fields as planned.
    pub fields_digest: String,
    /// What each state edits and checks, for the dry run and the summary.
    pub states: Vec<StatePlan>,
}

/// One state as planned: its edits and its checks, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePlan {
    pub state: String,
    pub edits: Vec<String>,
    pub checks: Vec<String>,
}

/// Why the flow cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum CloudProviderError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot read {what}")]
    Cluster {
        what: String,
        #[source]
        source: ClusterError,
    },
    #[error("cannot read {what}")]
    Host {
        what: String,
        #[source]
        source: ferry_core::ExecError,
    },
    #[error("the plan names step {0}, which this flow does not have")]
    UnknownStep(StepKey),
}

/// What a completed run reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationReport {
    pub distro: Distro,
    pub cluster: Option<ClusterRef>,
    pub nodes: usize,
    pub control_plane: usize,
    pub states: Vec<StatePlan>,
    pub kubernetes_version: Option<String>,
}

/// The flow.
#[derive(Debug, Default)]
pub struct CloudProviderFlow {
    /// RKE2: the management cluster's API.
    management: Option<Arc<dyn ClusterApi>>,
    last: Mutex<Option<CheckReport>>,
}

impl CloudProviderFlow {
    pub fn new(management: Option<Arc<dyn ClusterApi>>) -> Self {
        Self {
            management,
            last: Mutex::new(None),
        }
    }
}

fn step(kind: Kind, description: String, version: &str) -> StepRef {
    StepRef {
        key: StepKey::new(kind.id(), Target::Cluster),
        description,
        reversibility: kind.reversibility(version),
    }
}

fn phase(name: &str, rollback: &str, steps: Vec<StepRef>) -> Phase {
    Phase {
        name: name.into(),
        rollback_name: rollback.into(),
        groups: vec![Group::Steps { steps }],
    }
}

/// The words of an RKE state's edits: the keys of `cluster.yml` that change, then the apply
/// command; for the states that change the cloud-controller-manager, what ferry applies.
fn rke_edits(j: &Journaled, rke: &RkeJournaled, start_text: &str, k: Kind) -> Vec<String> {
    let keys = crate::rke::Keys::of(start_text).ok();
    let key = |p: Vec<&str>| p.join(".");
    let before = steps::rke_marks(j, k.marks_before(j).unwrap_or_default());
    let after = steps::rke_marks(j, k.marks(j).unwrap_or_default());
    let mut e = Vec::new();
    if let Some(keys) = keys {
        if before.kcm_flag != after.kcm_flag {
            e.push(if after.kcm_flag {
                format!("cluster.yml: {}: \"true\"", key(keys.kcm_flag()))
            } else {
                format!("cluster.yml: {} removed", key(keys.kcm_flag()))
            });
        }
        if before.external != after.external {
            e.push(format!(
                "cluster.yml: {}: {}",
                key(keys.provider()),
                crate::rke::EXTERNAL
            ));
            match after.instance_metadata_hostname {
                Some(b) => e.push(format!("cluster.yml: {}: {b}", key(keys.instance_metadata_hostname()))),
                None => e.push(format!("cluster.yml: {} left unset (the nodes are not named by their instance metadata, so it would rename them)", key(keys.instance_metadata_hostname()))),
            }
        }
        if before.version != after.version {
            e.push(format!(
                "cluster.yml: {}: {}",
                key(keys.version()),
                after.version.clone().unwrap_or_default()
            ));
        }
    }
    if !e.is_empty() {
        e.push(format!(
            "run `{}` in {}",
            rke.apply_command,
            rke.cluster_yml
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    match k {
        Kind::CcmInstall | Kind::CcmMigrationOff => {
            let mut c = j.ccm.clone();
            c.leader_migration = k == Kind::CcmInstall;
            let objs: Vec<String> = c
                .objects()
                .iter()
                .map(|o| {
                    let ns = o["metadata"]["namespace"]
                        .as_str()
                        .map(|n| format!("{n}/"))
                        .unwrap_or_default();
                    format!(
                        "{} {ns}{}",
                        o["kind"].as_str().unwrap_or(""),
                        o["metadata"]["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            e.push(format!(
                "apply to the downstream cluster, as the {} chart makes them: {} (image {}, {})",
                chart::NAME,
                objs.join(", "),
                c.image,
                if c.leader_migration {
                    "with --enable-leader-migration=true"
                } else {
                    "without leader migration"
                }
            ));
        }
        Kind::Switch => e.push(
            "cordon the control-plane nodes again (rke up uncordons the nodes it upgrades)".into(),
        ),
        _ => {}
    }
    e
}

/// Where each state's edits go.
#[derive(Clone, Copy)]
enum Source<'a> {
    Rke2(&'a Fields),
    Rke(&'a RkeJournaled, &'a str),
}

/// The words of each state's edits and checks.
fn state_plans(j: &Journaled, source: Source<'_>) -> Result<Vec<StatePlan>, CloudProviderError> {
    let empty = Fields::default();
    let start_fields = match source {
        Source::Rke2(f) => f,
        Source::Rke(..) => &empty,
    };
    let cp = j.start.control_plane().join(", ");
    let lease = format!("{}/{}", leader::NAMESPACE, leader::LEASE);
    let ds = format!("DaemonSet {}/{}", leader::NAMESPACE, chart::NAME);
    let desired = |k: Kind| -> Result<Option<Fields>, CloudProviderError> {
        k.marks(j)
            .map(|m| {
                rke2::desired(start_fields, &m, &j.ccm)
                    .map_err(|e| CloudProviderError::Refused(e.to_string()))
            })
            .transpose()
    };
    let edits_of = |k: Kind, before: &Fields| -> Result<Vec<String>, CloudProviderError> {
        if let Source::Rke(rke, text) = &source {
            return Ok(rke_edits(j, rke, text, k));
        }
        let Some(after) = desired(k)? else {
            return Ok(Vec::new());
        };
        Ok(after
            .differences(before)
            .into_iter()
            .map(|f| {
                let value = match f {
                    "spec.rkeConfig.machineSelectorConfig" => {
                        after.machine_selector_config.as_ref().map(|v| {
                            v.as_array()
                                .and_then(|a| a.last())
                                .map(|e| {
                                    format!(
                                        "entry for {} In ['true']: kube-controller-manager-arg {}",
                                        rke2::CONTROL_PLANE_ROLE,
                                        e["config"]["kube-controller-manager-arg"]
                                    )
                                })
                                .unwrap_or_default()
                        })
                    }
                    "spec.rkeConfig.machineGlobalConfig" => {
                        after.machine_global_config.as_ref().map(|g| {
                            format!(
                                "cloud-provider-name: {}",
                                g["cloud-provider-name"].as_str().unwrap_or("")
                            )
                        })
                    }
                    "spec.rkeConfig.additionalManifest" => Some(format!(
                        "HelmChart {}/{} (image {}, {})",
                        leader::NAMESPACE,
                        chart::NAME,
                        j.ccm.image,
                        if after
                            .additional_manifest
                            .as_deref()
                            .unwrap_or("")
                            .contains(chart::MIGRATION_ARG)
                        {
                            "with --enable-leader-migration=true"
                        } else {
                            "without leader migration"
                        }
                    )),
                    "spec.kubernetesVersion" => after.kubernetes_version.clone(),
                    _ => None,
                };
                format!("{f}: {}", value.unwrap_or_else(|| "as at the start".into()))
            })
            .collect())
    };
    let rke2 = |k: Kind| -> Result<Fields, CloudProviderError> {
        Ok(match source {
            Source::Rke2(_) => desired(k)?.unwrap_or_default(),
            Source::Rke(..) => Fields::default(),
        })
    };
    let s1 = rke2(Kind::LeaderMigration)?;
    let s3 = rke2(Kind::CcmInstall)?;
    let s4 = rke2(Kind::Switch)?;
    let mut v = vec![
        StatePlan {
            state: "S1 leader migration".into(),
            edits: {
                let mut e = vec![format!("Role and RoleBinding {}/{} if a manager may not use Lease {lease}", leader::NAMESPACE, steps::LEASE_ROLE)];
                e.extend(edits_of(Kind::LeaderMigration, start_fields)?);
                e
            },
            checks: vec![
                format!("{} and the cloud-controller-manager's service account may get and update Lease {lease} (SubjectAccessReview)", steps::KCM_USER),
                format!("the kube-controller-manager on each of {cp} runs --cloud-provider=aws --enable-leader-migration"),
                format!("Lease {lease} exists and is held by a manager on a control-plane node"),
            ],
        },
        StatePlan {
            state: "S2 control plane cordoned".into(),
            edits: vec![format!("cordon {cp}")],
            checks: vec![format!("{cp} unschedulable; earlier cordon states kept for S6")],
        },
        StatePlan {
            state: "S3 cloud-controller-manager".into(),
            edits: edits_of(Kind::CcmInstall, &s1)?,
            checks: vec![
                format!("{ds} rolled out on every control-plane node, its pods with --enable-leader-migration=true"),
                format!("Lease {}/{} held", leader::NAMESPACE, chart::OWN_LEASE),
            ],
        },
        StatePlan {
            state: "S4 external provider".into(),
            edits: edits_of(Kind::Switch, &s3)?,
            checks: vec![
                "every control-plane kube-controller-manager runs --cloud-provider=external without leader migration".into(),
                format!("Lease {lease} renewed after that by the cloud-controller-manager"),
                format!("no node with the {} taint", facts::UNINITIALIZED),
                format!("{} LoadBalancer Service(s) keep their addresses", j.start.load_balancers.len()),
            ],
        },
    ];
    if !j.keep_leader_migration {
        v.push(StatePlan {
            state: "S5 leader migration off".into(),
            edits: edits_of(Kind::CcmMigrationOff, &s4)?,
            checks: vec![format!("{ds} rolled out again without leader migration")],
        });
    }
    v.push(StatePlan {
        state: "S6 end".into(),
        edits: vec!["every node's cordon state as at the start".into()],
        checks: vec![
            format!(
                "each of the {} nodes under its name with its provider ID of the start",
                j.start.nodes.len()
            ),
            "no two Nodes for one instance".into(),
            "cordon states as at the start".into(),
        ],
    });
    if let Some(version) = &j.kubernetes_version {
        v.push(StatePlan {
            state: "Kubernetes upgrade".into(),
            edits: match &source {
                Source::Rke2(_) => vec![format!("spec.kubernetesVersion: {version}")],
                Source::Rke(rke, text) => rke_edits(j, rke, text, Kind::Upgrade),
            },
            checks: vec![format!("every node runs {version}")],
        });
    }
    Ok(v)
}

impl CloudProviderFlow {
    async fn plan_rke2(
        &self,
        inputs: Inputs,
        cx: &RunContext,
    ) -> Result<Planned<Journaled>, CloudProviderError> {
        let mgmt = self.management.clone().ok_or_else(|| {
            CloudProviderError::Refused(
                "an RKE2 cluster needs the management cluster's API (--kubeconfig)".into(),
            )
        })?;
        let c = inputs
            .cluster
            .clone()
            .ok_or_else(|| CloudProviderError::Refused("an RKE2 cluster needs --cluster".into()))?;
        let r = ferry_core::cluster::ObjectRef {
            api_version: "provisioning.cattle.io/v1".into(),
            kind: "Cluster".into(),
            namespace: Some(c.namespace.clone()),
            name: c.name.clone(),
        };
        let object = mgmt
            .get(&r)
            .await
            .map_err(|source| CloudProviderError::Cluster {
                what: format!("{r} from the management cluster"),
                source,
            })?
            .ok_or_else(|| {
                CloudProviderError::Refused(format!("the management cluster has no {r}"))
            })?;
        let start_fields = Fields::read(&object);
        let facts = facts::gather(cx.cluster.as_ref(), Distro::Rke2)
            .await
            .map_err(|source| CloudProviderError::Cluster {
                what: "the downstream cluster".into(),
                source,
            })?;
        let configured = start_fields
            .kubernetes_version
            .as_deref()
            .and_then(Version::parse);
        let version = start_version(configured, &facts, || {
            format!("{r} has no spec.kubernetesVersion and no node reports a kubelet version")
        })?;
        let mut report = checks::start_report(
            &facts,
            version,
            "no mirror pod kube-system/kube-controller-manager-<node> (label component=kube-controller-manager)",
        );
        match rke2::provider(&start_fields).as_deref() {
            Some("aws") => report.push("cloud-provider-name", "cluster", Status::Ok, format!("{r}: machineGlobalConfig.cloud-provider-name is aws")),
            other => report.push(
                "cloud-provider-name",
                "cluster",
                Status::Fail,
                format!("{r}: machineGlobalConfig.cloud-provider-name is {}, not aws: there is no in-tree AWS provider to migrate from", other.map(|o| format!("{o:?}")).unwrap_or_else(|| "not set".into())),
            ),
        }
        if let Err(e) = rke2::control_plane_kcm_args(&start_fields) {
            report.push("machine-config", "cluster", Status::Fail, e.to_string());
        }
        let target = target_version(&inputs, version, "Rancher")?;
        let ccm = ccm_for(&inputs, Distro::Rke2, target);
        let mut j = Journaled {
            distro: Distro::Rke2,
            provider: inputs.provider.clone(),
            cluster: Some(c.clone()),
            management_kubeconfig: inputs.management_kubeconfig.clone(),
            rke: None,
            downstream_kubeconfig: inputs.downstream_kubeconfig.clone(),
            kubernetes_version: inputs.kubernetes_version.clone(),
            keep_leader_migration: inputs.keep_leader_migration,
            ccm,
            state_timeout_secs: inputs.state_timeout_secs,
            poll_ms: inputs.poll_ms,
            start: checks::start_of(&facts, version),
            fields_digest: steps::digest(&start_fields),
            states: Vec::new(),
        };
        if report.passed() {
            j.states = state_plans(&j, Source::Rke2(&start_fields))?;
        }
        let plan = build_plan(&j);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        Ok(Planned {
            checks: report,
            plan,
            journaled: j,
        })
    }
}

/// A node's name and the connection to it.
pub type NodeConnection = (String, Arc<dyn ferry_core::HostExec>);

/// The connections to `cluster.yml`'s control-plane nodes.
pub fn rke_connections(
    cx: &RunContext,
    cp: &[RkeHost],
) -> Result<Vec<NodeConnection>, ferry_core::engine::StepError> {
    cp.iter()
        .map(|h| Ok((h.node.clone(), cx.host(&h.host)?.clone())))
        .collect()
}

/// Whether `name` is what an EC2 instance's metadata names it (`ip-10-0-1-1.ec2.internal`,
/// `ip-10-0-1-1.eu-west-1.compute.internal`).
fn metadata_hostname(name: &str) -> bool {
    name.starts_with("ip-")
        && (name.ends_with(".ec2.internal") || name.ends_with(".compute.internal"))
}

impl CloudProviderFlow {
    async fn plan_rke(
        &self,
        inputs: Inputs,
        cx: &RunContext,
    ) -> Result<Planned<Journaled>, CloudProviderError> {
        let ri = inputs.rke.clone().ok_or_else(|| {
            CloudProviderError::Refused(
                "an RKE cluster needs --cluster-yml and --apply-command".into(),
            )
        })?;
        let file = ri.cluster_yml.display().to_string();
        let text = std::fs::read_to_string(&ri.cluster_yml)
            .map_err(|e| CloudProviderError::Refused(format!("cannot read {file}: {e}")))?;
        let refused = |e: crate::rke::RkeError| CloudProviderError::Refused(e.to_string());
        let nodes = crate::rke::nodes(&file, &text).map_err(refused)?;
        let default_key = crate::rke::default_ssh_key(&text);
        let cp: Vec<RkeHost> = nodes
            .iter()
            .filter(|n| n.control_plane())
            .map(|n| RkeHost {
                node: n.name.clone(),
                host: crate::rke::host_spec(n, default_key.as_deref()).name(),
            })
            .collect();
        let conns =
            rke_connections(cx, &cp).map_err(|e| CloudProviderError::Refused(e.to_string()))?;
        let mut facts = facts::gather(cx.cluster.as_ref(), Distro::Rke)
            .await
            .map_err(|source| CloudProviderError::Cluster {
                what: "the downstream cluster".into(),
                source,
            })?;
        facts.kcm =
            facts::rke_managers(&conns)
                .await
                .map_err(|source| CloudProviderError::Host {
                    what: "the control-plane nodes' kube-controller-manager containers".into(),
                    source,
                })?;
        let keys = crate::rke::Keys::of(&text).map_err(|source| {
            refused(crate::rke::RkeError::Edit {
                file: file.clone(),
                source,
            })
        })?;
        let configured = crate::yaml_edit::get(&text, &keys.version())
            .ok()
            .flatten()
            .and_then(|v| v.as_str().and_then(Version::parse));
        let version = start_version(configured, &facts, || {
            format!("{file} has no kubernetes_version and no node reports a kubelet version")
        })?;
        let mut report = checks::start_report(
            &facts,
            version,
            &format!(
                "no container {} (docker inspect on the node)",
                crate::rke::KCM_CONTAINER
            ),
        );
        match crate::rke::check_start(&file, &text) {
            Ok(()) => report.push(
                "cloud-provider-name",
                "cluster",
                Status::Ok,
                format!("{file}: cloud_provider.name is aws"),
            ),
            Err(e) => report.push(
                "cloud-provider-name",
                "cluster",
                Status::Fail,
                format!("{e}: there is no in-tree AWS provider to migrate from"),
            ),
        }
        for n in &nodes {
            if facts.node(&n.name).is_none() {
                report.push(
                    "nodes",
                    &n.name,
                    Status::Fail,
                    format!(
                        "{file} names node {} ({}), which the downstream cluster has no Node of (hostname_override?)",
                        n.name, n.address
                    ),
                );
            }
        }
        let target = target_version(&inputs, version, "RKE")?;
        let ccm = ccm_for(&inputs, Distro::Rke, target);
        let rke = RkeJournaled {
            cluster_yml: ri.cluster_yml.clone(),
            apply_command: ri.apply_command.clone(),
            text_digest: steps::digest_text(&text),
            control_plane: cp,
            instance_metadata_hostname: nodes
                .iter()
                .all(|n| metadata_hostname(&n.name))
                .then_some(true),
        };
        let mut j = Journaled {
            distro: Distro::Rke,
            provider: inputs.provider.clone(),
            cluster: None,
            management_kubeconfig: None,
            rke: Some(rke.clone()),
            downstream_kubeconfig: inputs.downstream_kubeconfig.clone(),
            kubernetes_version: inputs.kubernetes_version.clone(),
            keep_leader_migration: inputs.keep_leader_migration,
            ccm,
            state_timeout_secs: inputs.state_timeout_secs,
            poll_ms: inputs.poll_ms,
            start: checks::start_of(&facts, version),
            fields_digest: String::new(),
            states: Vec::new(),
        };
        if report.passed() {
            j.states = state_plans(&j, Source::Rke(&rke, &text))?;
        }
        let plan = build_plan(&j);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        Ok(Planned {
            checks: report,
            plan,
            journaled: j,
        })
    }
}

/// The cluster's version at the start: the newest of the configured one and the kubelets'.
fn start_version(
    configured: Option<Version>,
    facts: &facts::Facts,
    none: impl FnOnce() -> String,
) -> Result<Version, CloudProviderError> {
    configured
        .into_iter()
        .chain(checks::nodes_version(facts))
        .max()
        .ok_or_else(|| CloudProviderError::Refused(none()))
}

/// The version the cluster ends on: `--kubernetes-version`, never older than `version`
/// (`who` does not downgrade), or `version`.
fn target_version(
    inputs: &Inputs,
    version: Version,
    who: &str,
) -> Result<Version, CloudProviderError> {
    let Some(v) = &inputs.kubernetes_version else {
        return Ok(version);
    };
    let t = Version::parse(v).ok_or_else(|| {
        CloudProviderError::Refused(format!(
            "--kubernetes-version {v:?} is not a Kubernetes version"
        ))
    })?;
    if t < version {
        return Err(CloudProviderError::Refused(format!(
            "--kubernetes-version {v} is older than the cluster's {version}: {who} does not downgrade"
        )));
    }
    Ok(t)
}

/// The cloud-controller-manager for a cluster that ends on `target`.
fn ccm_for(inputs: &Inputs, distro: Distro, target: Version) -> Ccm {
    let image = inputs
        .ccm_image
        .clone()
        .unwrap_or_else(|| Ccm::default_image(target));
    let version = image
        .rsplit_once(':')
        .and_then(|(_, t)| Version::parse(t))
        .unwrap_or(target);
    Ccm {
        control_plane_label: distro.control_plane_label().into(),
        image,
        version,
        leader_migration: true,
    }
}

/// The plan of a journal: one phase per state.
pub fn build_plan(j: &Journaled) -> Plan {
    let version = j.kubernetes_version.clone().unwrap_or_default();
    let desc = |i: usize| -> String {
        j.states
            .get(i)
            .map(|s| {
                let mut d = s.edits.join("; ");
                if !s.checks.is_empty() {
                    d.push_str(" — then wait for: ");
                    d.push_str(&s.checks.join("; "));
                }
                d
            })
            .unwrap_or_default()
    };
    let n = j.states.len();
    let find = |prefix: &str| {
        j.states
            .iter()
            .position(|s| s.state.starts_with(prefix))
            .unwrap_or(n)
    };
    let mut phases = vec![
        phase(
            "S0 Start",
            "Rollback S0",
            vec![step(Kind::Record, format!("keep the start: {} nodes, provider IDs and cordon states", j.start.nodes.len()), &version)],
        ),
        phase(
            "S1 Leader migration",
            "Rollback S1 Leader migration",
            vec![
                step(Kind::LeaseAccess, "let both controller managers get and update the migration Lease (RBAC added only if missing)".into(), &version),
                step(Kind::LeaderMigration, desc(find("S1")), &version),
            ],
        ),
        phase("S2 Cordon control plane", "Rollback S2 Cordon control plane", vec![step(Kind::Cordon, desc(find("S2")), &version)]),
        phase("S3 Cloud controller manager", "Rollback S3 Cloud controller manager", vec![step(Kind::CcmInstall, desc(find("S3")), &version)]),
        phase("S4 External provider", "Rollback S4 External provider", vec![step(Kind::Switch, desc(find("S4")), &version)]),
    ];
    if !j.keep_leader_migration {
        phases.push(phase(
            "S5 Leader migration off",
            "Rollback S5 Leader migration off",
            vec![step(Kind::CcmMigrationOff, desc(find("S5")), &version)],
        ));
    }
    phases.push(phase(
        "S6 End",
        "Rollback S6 End",
        vec![
            step(
                Kind::Uncordon,
                "every node's cordon state as at the start".into(),
                &version,
            ),
            step(Kind::Verify, desc(find("S6")), &version),
        ],
    ));
    if j.kubernetes_version.is_some() {
        phases.push(phase(
            "Kubernetes upgrade",
            "Rollback Kubernetes upgrade",
            vec![step(Kind::Upgrade, desc(find("Kubernetes")), &version)],
        ));
    }
    Plan {
        flow: FLOW.into(),
        phases,
    }
}

#[async_trait::async_trait]
impl Flow for CloudProviderFlow {
    type Inputs = Inputs;
    type Journaled = Journaled;
    type Report = MigrationReport;
    type Error = CloudProviderError;

    fn name(&self) -> &'static str {
        FLOW
    }

    /// RKE: the control-plane nodes of `cluster.yml`, whose kube-controller-manager containers
    /// ferry reads (a file that cannot be read gives none; the plan then says why).
    fn hosts(&self, inputs: &Inputs) -> Vec<HostSpec> {
        let Some(rke) = inputs.rke.as_ref().filter(|_| inputs.distro == Distro::Rke) else {
            return Vec::new();
        };
        let file = rke.cluster_yml.display().to_string();
        let Ok(text) = std::fs::read_to_string(&rke.cluster_yml) else {
            return Vec::new();
        };
        let key = crate::rke::default_ssh_key(&text);
        crate::rke::nodes(&file, &text)
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|n| n.control_plane())
                    .map(|n| crate::rke::host_spec(n, key.as_deref()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn needs_hosts(&self) -> bool {
        false
    }

    async fn plan(
        &self,
        inputs: Inputs,
        cx: &RunContext,
    ) -> Result<Planned<Journaled>, CloudProviderError> {
        if inputs.provider != "aws" {
            return Err(CloudProviderError::Refused(format!(
                "--provider {}: only aws is supported",
                inputs.provider
            )));
        }
        match inputs.distro {
            Distro::Rke2 => self.plan_rke2(inputs, cx).await,
            Distro::Rke => self.plan_rke(inputs, cx).await,
        }
    }

    fn steps(
        &self,
        j: &Journaled,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Vec<Arc<dyn Step>>, CloudProviderError> {
        plan.steps()
            .into_iter()
            .map(|s| {
                let kind = Kind::of(&s.key.id)
                    .ok_or_else(|| CloudProviderError::UnknownStep(s.key.clone()))?;
                Ok(Arc::new(StateStep {
                    key: s.key.clone(),
                    kind,
                    j: j.clone(),
                    cx: cx.clone(),
                    management: self.management.clone(),
                    rollout: std::sync::Mutex::new(None),
                }) as Arc<dyn Step>)
            })
            .collect()
    }

    fn texts(&self, j: &Journaled) -> RunTexts {
        let what = match (&j.cluster, &j.rke) {
            (Some(c), _) => format!("RKE2 cluster {}/{}", c.namespace, c.name),
            (None, Some(r)) => format!("RKE cluster of {}", r.cluster_yml.display()),
            (None, None) => format!("{} cluster", j.distro.name()),
        };
        RunTexts {
            engine: Texts {
                signal_abort: "cloud provider migration stopped by an interrupt".into(),
                rollback_because: "Rolling back the cloud provider migration because of a failure: ".into(),
                rollback_start: Some("Rolling back state by state to S0: each state's edit taken back and the state before it waited for".into()),
                rollback_done: Some("Rollback completed: the cluster is back at S0 (in-tree provider, no cloud-controller-manager, cordon states and provider IDs as at the start)".into()),
            },
            starting: format!("Migrating {what} from the in-tree to the out-of-tree {} cloud provider, state by state", j.provider),
            completed: "Cloud provider migration completed successfully".into(),
            failed: "Cloud provider migration failed: ".into(),
            rolled_back: "Rollback from the journal completed: the cluster is back at S0".into(),
        }
    }

    async fn report(
        &self,
        j: &Journaled,
        _cx: &RunContext,
    ) -> Result<MigrationReport, CloudProviderError> {
        Ok(MigrationReport {
            distro: j.distro,
            cluster: j.cluster.clone(),
            nodes: j.start.nodes.len(),
            control_plane: j.start.control_plane().len(),
            states: j.states.clone(),
            kubernetes_version: j.kubernetes_version.clone(),
        })
    }
}

impl CloudProviderFlow {
    /// The start's check report of the last plan (a dry run prints it).
    pub fn last_checks(&self) -> Option<CheckReport> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
