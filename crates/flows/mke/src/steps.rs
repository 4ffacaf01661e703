//! The steps of the MKE 3 → MKE 4k flow. Every host command is a real one (docker, etcdctl in
//! the `ucp-kv` container, k0s, the service manager, tar); `docs/upgrade-steps.md` lists them per
//! step with their undo. Every undo is idempotent and also cleans up after a partial apply; every
//! step's undo data is a typed struct.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::checks;
use crate::flow::{Discovered, Inputs, PlannedHost};
use crate::mke3::Mke3Api;
use ferry_core::cluster::{ClusterApi, DrainOptions, ObjectRef};
use ferry_core::engine::{Reversibility, Step, StepError, StepKey, from_data, to_data};
use ferry_core::exec::{Cmd, FileSpec, HostExec, Output};
use ferry_core::k0s::{K0S_BIN, K0S_CONFIG, K0S_DIR, K0S_TOKEN, K0sHost, Role, exists, ok};
use ferry_core::node::{DrainStep, UncordonStep, wait_ready};
use ferry_core::run::RunContext;
use ferry_core::state::StateDir;

/// Where ferry keeps its files on a host.
pub const HOST_DIR: &str = "/var/lib/ferry";
/// The etcd snapshot on the leader.
pub const HOST_SNAPSHOT: &str = "/var/lib/ferry/etcd-snapshot.db";
/// The snapshot as the `ucp-kv` container sees it while writing it.
pub const KV_SNAPSHOT: &str = "/data/ferry-etcd-snapshot.db";
/// The same file seen from the host.
pub const KV_SNAPSHOT_ON_HOST: &str = "/var/lib/docker/volumes/ucp-kv/_data/ferry-etcd-snapshot.db";
/// The MKE 3 data archive written before the cleanup.
pub const HOST_ARCHIVE: &str = "/var/lib/ferry/mke3-data.tar.gz";
/// The configuration of the removed MKE 3 containers (`docker container inspect`), root-only.
pub const HOST_SPECS: &str = "/var/lib/ferry/mke3-containers.json";
/// The snapshot uploaded to restore a manager's etcd.
pub const HOST_RESTORE: &str = "/var/lib/ferry/etcd-restore.db";

/// The files of the state directory.
pub const SNAPSHOT_FILE: &str = "etcd-snapshot.db";
pub const TOML_FILE: &str = "mke3.toml";
pub const EXPORT_FILE: &str = "mke3-rbac-export.json";
pub const MKE4_FILE: &str = "mke4.yaml";
pub const RBAC_FILE: &str = "rbac.yaml";
pub const SUMMARY_FILE: &str = "upgrade-summary.txt";
/// The "Configuration file" section of the summary, kept by the conversion step.
pub const CONFIG_SUMMARY_FILE: &str = "summary-configuration.txt";
/// The Authentication and Authorization sections, kept by the translation step.
pub const RBAC_SUMMARY_FILE: &str = "summary-rbac.txt";

const ETCD_FLAGS: [&str; 4] = [
    "--endpoints=https://127.0.0.1:12379",
    "--cacert=/etc/docker/ssl/ca.pem",
    "--cert=/etc/docker/ssl/cert.pem",
    "--key=/etc/docker/ssl/key.pem",
];

/// How many more times (1 s apart, each try up to etcdctl's 5 s) the undo of the leader's stop
/// asks the restarted ucp-kv cluster for its health.
const ETCD_HEALTH_TRIES: u32 = 20;

/// How many more times (1 s apart) the cleanup's undo asks a restarted Docker engine to answer.
const DOCKER_START_TRIES: u32 = 60;

/// The step kinds, with their stable ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BackupEtcd,
    ExportConfig,
    ExportRbac,
    ConvertConfig,
    TranslateRbac,
    Drain,
    StopMke3,
    InstallK0s,
    StartK0s,
    Uncordon,
    ApplyMke4Config,
    ApplyRbac,
    RemoveMke3,
    CniCheck,
}

const ALL: [Kind; 14] = [
    Kind::BackupEtcd,
    Kind::ExportConfig,
    Kind::ExportRbac,
    Kind::ConvertConfig,
    Kind::TranslateRbac,
    Kind::Drain,
    Kind::StopMke3,
    Kind::InstallK0s,
    Kind::StartK0s,
    Kind::Uncordon,
    Kind::ApplyMke4Config,
    Kind::ApplyRbac,
    Kind::RemoveMke3,
    Kind::CniCheck,
];

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::BackupEtcd => "mke.backup-etcd",
            Kind::ExportConfig => "mke.export-config",
            Kind::ExportRbac => "mke.export-rbac",
            Kind::ConvertConfig => "mke.convert-config",
            Kind::TranslateRbac => "mke.translate-rbac",
            Kind::Drain => "mke.node.drain",
            Kind::StopMke3 => "mke.node.stop-mke3",
            Kind::InstallK0s => "mke.node.install-k0s",
            Kind::StartK0s => "mke.node.start-k0s",
            Kind::Uncordon => "mke.node.uncordon",
            Kind::ApplyMke4Config => "mke.apply-mke4-config",
            Kind::ApplyRbac => "mke.apply-rbac",
            Kind::RemoveMke3 => "mke.node.remove-mke3",
            Kind::CniCheck => "mke.cni-check",
        }
    }

    pub fn from_id(id: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.id() == id)
    }

    pub fn description(self) -> &'static str {
        match self {
            Kind::BackupEtcd => {
                "snapshot MKE 3's etcd (ucp-kv) and keep a copy in the state directory"
            }
            Kind::ExportConfig => "read the MKE 3 config-toml into the state directory",
            Kind::ExportRbac => "export MKE 3 accounts, orgs, teams, roles, collections and grants",
            Kind::ConvertConfig => "convert the MKE 3 configuration to mke4.yaml",
            Kind::TranslateRbac => "translate orgs and teams to Kubernetes RBAC",
            Kind::Drain => "cordon and drain the node (PodDisruptionBudgets respected)",
            Kind::StopMke3 => "stop the node's MKE 3 containers",
            Kind::InstallK0s => "install k0s (binary, config, join token, k0s install)",
            Kind::StartK0s => "start k0s and wait for the node to be Ready",
            Kind::Uncordon => "uncordon the node",
            Kind::ApplyMke4Config => "apply the MKE 4 configuration to the cluster",
            Kind::ApplyRbac => "apply the translated RBAC objects",
            Kind::RemoveMke3 => {
                "archive and remove MKE 3's containers and volumes, leave the swarm"
            }
            Kind::CniCheck => {
                "check that the unmanaged CNI brought the network up on the first two managers and workers"
            }
        }
    }

    pub fn reversibility(self) -> Reversibility {
        match self {
            Kind::ExportConfig
            | Kind::ExportRbac
            | Kind::ConvertConfig
            | Kind::TranslateRbac
            | Kind::CniCheck => Reversibility::NoOp,
            _ => Reversibility::Reversible,
        }
    }
}

/// What the steps share.
#[derive(Debug)]
pub struct Ctx {
    pub inputs: Inputs,
    pub discovered: Discovered,
    pub run: RunContext,
    pub mke3: Arc<dyn Mke3Api>,
}

impl Ctx {
    fn host(&self, name: &str) -> Result<&Arc<dyn HostExec>, StepError> {
        self.run.host(name)
    }

    fn node(&self, host: &str) -> Result<String, StepError> {
        self.discovered
            .host(host)
            .map(|h| h.hostname.clone())
            .ok_or_else(|| StepError::new(format!("host {host} is not in the plan")))
    }

    fn manager(&self, host: &str) -> bool {
        self.discovered.host(host).is_some_and(|h| h.manager)
    }

    fn k0s<'a>(&'a self, host: &str, h: &'a dyn HostExec) -> Result<K0sHost<'a>, StepError> {
        let init = self
            .discovered
            .host(host)
            .map(|p| p.init_system)
            .ok_or_else(|| StepError::new(format!("host {host} is not in the plan")))?;
        Ok(K0sHost::new(h, init))
    }

    fn log(&self) -> &ferry_core::engine::Logger {
        &self.run.log
    }
}

/// The step implementation for `key`: the node steps of core for drain and uncordon, this
/// flow's own for the rest.
pub fn step(key: StepKey, kind: Kind, cx: &Arc<Ctx>) -> Arc<dyn Step> {
    let node = key.host().and_then(|h| cx.node(h).ok()).unwrap_or_default();
    match kind {
        Kind::Drain => Arc::new(DrainStep::new(
            key,
            node,
            cx.run.cluster.clone(),
            DrainOptions {
                timeout: Duration::from_secs(300),
                delete_emptydir_data: true,
                force_bare_pods: false,
            },
            cx.run.log.clone(),
        )),
        Kind::Uncordon => Arc::new(UncordonStep::new(key, node, cx.run.cluster.clone())),
        _ => Arc::new(MkeStep::new(key, kind, cx.clone())),
    }
}

/// Whether a directory existed before a step made it (so that its undo removes only its own).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirState {
    pub dir_existed: bool,
}

/// The MKE 3 containers a step stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    pub running: Vec<String>,
}

/// A Node's labels and taints before k0s started on it (`null` when it had none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeMeta {
    pub labels: Value,
    pub taints: Value,
}

fn node_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Node".into(),
        namespace: None,
        name: name.into(),
    }
}

/// What a k0s install found before it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallState {
    pub dir_existed: bool,
    pub binary_existed: bool,
}

/// An object as it was before an apply (`None`: it did not exist).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Previous {
    #[serde(rename = "ref")]
    pub object: ObjectRef,
    pub before: Option<Value>,
}

/// Every object an apply step touches, with its earlier state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Applied {
    pub objects: Vec<Previous>,
}

/// What the MKE 3 cleanup removes (names only: the containers' configuration, which may hold
/// secrets in its environment, stays on the host in a root-only file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveState {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub swarm: bool,
    pub dir_existed: bool,
}

/// `docker info --format {{json .Swarm}}`, the parts ferry reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(default)]
    pub local_node_state: String,
    /// A swarm manager.
    #[serde(default)]
    pub control_available: bool,
}

/// `docker container inspect`, the parts the cleanup's undo recreates a container from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Inspect {
    pub name: String,
    pub config: InspectConfig,
    pub host_config: InspectHostConfig,
    pub mounts: Vec<InspectMount>,
    pub state: InspectState,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectConfig {
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// The container's command (the image's default when it was started without one).
    pub cmd: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectHostConfig {
    /// `default` (the bridge), `host`, `none` or a network name.
    pub network_mode: String,
    pub restart_policy: InspectRestart,
    // In docker's order (serde_json keeps it), not sorted.
    pub port_bindings: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectRestart {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectMount {
    /// `volume` or `bind`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: Option<bool>,
}

impl InspectMount {
    /// The `-v` argument that mounts it again: a named volume or a bind mount, read-only kept.
    fn volume_arg(&self) -> Option<String> {
        let from = match (self.kind.as_str(), &self.name) {
            ("volume", Some(n)) => n.clone(),
            ("bind", _) if !self.source.is_empty() => self.source.clone(),
            _ => return None,
        };
        let ro = if self.rw == Some(false) { ":ro" } else { "" };
        Some(format!("{from}:{}{ro}", self.destination))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectState {
    pub running: bool,
}

/// The swarm state of a host.
pub async fn swarm_info(h: &dyn HostExec) -> Result<SwarmInfo, StepError> {
    let out = ok(h, sudo("docker", &["info", "--format", "{{json .Swarm}}"])).await?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        StepError::caused(
            format!("{}: docker info printed no swarm state", h.host()),
            e,
            false,
        )
    })
}

/// The names of the host's MKE 3 containers: running ones, or all with `all`.
pub async fn ucp_containers(h: &dyn HostExec, all: bool) -> Result<Vec<String>, StepError> {
    let mut args = vec!["ps"];
    if all {
        args.push("-a");
    }
    args.extend(["--filter", "name=ucp-", "--format", "{{.Names}}"]);
    Ok(lines(&ok(h, sudo("docker", &args)).await?))
}

// ---------------------------------------------------------------------------------------------
// Read-only facts for the pre-upgrade checks (`crate::checks`).

/// `docker container inspect NAME` on the host: `Ok(None)` when there is no such container.
pub async fn inspect_container(h: &dyn HostExec, name: &str) -> Result<Option<Value>, StepError> {
    let cmd = sudo("docker", &["container", "inspect", name]);
    let shown = cmd.to_string();
    let out = h.run(&cmd).await?;
    if !out.success() {
        let err = out.stderr_text();
        if err.contains("No such container") || err.contains("No such object") {
            return Ok(None);
        }
        return Err(StepError::new(format!(
            "{}: `{shown}` exited with {}: {}",
            h.host(),
            out.code.map_or("a signal".to_string(), |c| c.to_string()),
            err.trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map(Some).map_err(|e| {
        StepError::caused(format!("{}: `{shown}` printed no JSON", h.host()), e, false)
    })
}

/// MKE 3's volumes on the host (`docker volume ls --filter name=ucp-`).
async fn ucp_volumes(h: &dyn HostExec) -> Result<Vec<String>, StepError> {
    let args = [
        "volume",
        "ls",
        "--filter",
        "name=ucp-",
        "--format",
        "{{.Name}}",
    ];
    Ok(lines(&ok(h, sudo("docker", &args)).await?))
}

/// The bytes of MKE 3 data `mke.remove-mke3` would archive on the host, uncompressed: its
/// `ucp-*` volumes (`docker volume ls`, as the step lists them) and, in a swarm,
/// `/var/lib/docker/swarm`, measured with `du -sb`.
pub async fn mke3_data_size(h: &dyn HostExec, in_swarm: bool) -> Result<u64, StepError> {
    let volumes = ucp_volumes(h).await?;
    let mut paths: Vec<String> = volumes
        .iter()
        .map(|v| format!("/var/lib/docker/volumes/{v}"))
        .collect();
    if in_swarm {
        paths.push("/var/lib/docker/swarm".into());
    }
    if paths.is_empty() {
        return Ok(0);
    }
    let mut args = vec!["-sb"];
    args.extend(paths.iter().map(String::as_str));
    let cmd = sudo("du", &args);
    let shown = cmd.to_string();
    let out = h.run(&cmd).await?;
    // du also exits 1 when a file vanished while it counted (a live manager's raft log): a size
    // for every path is still a size. A path that does not exist takes no space.
    let stderr = out.stderr_text();
    let missing = paths
        .iter()
        .filter(|p| stderr.contains(&format!("cannot access '{p}': No such file or directory")))
        .count();
    match checks::parse_du(&out.stdout_text(), paths.len() - missing) {
        Ok(n) => Ok(n),
        Err(e) if out.success() => Err(StepError::new(format!("{}: `{shown}`: {e}", h.host()))),
        Err(_) => Err(StepError::new(format!(
            "{}: `{shown}` exited with {}: {}",
            h.host(),
            out.code.map_or("a signal".to_string(), |c| c.to_string()),
            out.stderr_text().trim()
        ))),
    }
}

/// `etcdctl` in the `ucp-kv` container with the backup's TLS flags.
fn etcdctl(tail: &[&str]) -> Cmd {
    let mut args = vec!["exec", "ucp-kv", "etcdctl"];
    args.extend(ETCD_FLAGS);
    args.extend_from_slice(tail);
    sudo("docker", &args)
}

/// The MKE 3 etcd as the host's `ucp-kv` reports it: `etcdctl endpoint status -w json` (its
/// size), `etcdctl alarm list`, and its quota from `docker container inspect ucp-kv`. The host
/// and MKE 4k's quota are the caller's to fill in.
pub async fn etcd_facts(h: &dyn HostExec) -> Result<checks::EtcdFacts, StepError> {
    let on = |e: String| StepError::new(format!("{}: {e}", h.host()));
    let status = ok(h, etcdctl(&["endpoint", "status", "-w", "json"])).await?;
    let status = checks::parse_endpoint_status(&status.stdout_text()).map_err(on)?;
    let listed = ok(h, etcdctl(&["alarm", "list"])).await?;
    let mut alarms = checks::parse_alarms(&listed.stdout_text());
    alarms.extend(checks::parse_alarms(&status.errors.join("\n")));
    alarms.sort();
    alarms.dedup();
    let inspect = inspect_container(h, "ucp-kv")
        .await?
        .ok_or_else(|| on("there is no ucp-kv container".into()))?;
    let mke3_quota = checks::etcd_quota_from_inspect(&inspect).map_err(on)?;
    Ok(checks::EtcdFacts {
        host: h.host().to_string(),
        db_size: Some(status.db_size),
        db_size_in_use: status.db_size_in_use,
        revision: status.revision,
        alarms,
        mke3_quota,
        mke4_quota: None,
        error: None,
    })
}

/// The kube-proxy MKE 3 runs on the host (`docker container inspect ucp-kube-proxy`).
pub async fn kube_proxy(h: &dyn HostExec) -> Result<checks::KubeProxy, StepError> {
    Ok(match inspect_container(h, "ucp-kube-proxy").await? {
        None => checks::KubeProxy::Absent,
        Some(v) => checks::kube_proxy_from_inspect(&v),
    })
}

/// Calico's dataplane settings as the cluster declares them (Kubernetes reads only): every
/// `FelixConfiguration`'s `spec.bpfEnabled`, and `FELIX_BPFENABLED` of the `calico-node`
/// container of DaemonSet `kube-system/calico-node` (a value taken `valueFrom` elsewhere is not
/// followed). What cannot be read is noted in the facts, never an error.
pub async fn calico_facts(cluster: &dyn ClusterApi) -> checks::CalicoFacts {
    let mut f = checks::CalicoFacts::default();
    match cluster
        .list("crd.projectcalico.org/v1", "FelixConfiguration", None, None)
        .await
    {
        Ok(items) => {
            f.felix_bpf = Some(
                items
                    .iter()
                    .filter_map(|o| {
                        let name = o.pointer("/metadata/name")?.as_str()?.to_string();
                        Some((name, o.pointer("/spec/bpfEnabled").and_then(Value::as_bool)))
                    })
                    .collect(),
            );
        }
        Err(e) => f.errors.push(format!("FelixConfigurations: {e}")),
    }
    let ds = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        namespace: Some("kube-system".into()),
        name: "calico-node".into(),
    };
    match cluster.get(&ds).await {
        Ok(Some(o)) => {
            f.bpf_env = o
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c["name"] == "calico-node")
                .filter_map(|c| c["env"].as_array())
                .flatten()
                .find(|e| e["name"] == "FELIX_BPFENABLED")
                .and_then(|e| e["value"].as_str())
                .map(str::to_string);
        }
        Ok(None) => {}
        Err(e) => f
            .errors
            .push(format!("DaemonSet kube-system/calico-node: {e}")),
    }
    f
}

// ---------------------------------------------------------------------------------------------
// Command helpers.

/// One step of this flow's own.
#[derive(Debug)]
pub struct MkeStep {
    key: StepKey,
    kind: Kind,
    cx: Arc<Ctx>,
}

impl MkeStep {
    pub fn new(key: StepKey, kind: Kind, cx: Arc<Ctx>) -> Self {
        Self { key, kind, cx }
    }

    fn target_host(&self) -> Result<&str, StepError> {
        self.key
            .host()
            .ok_or_else(|| StepError::new(format!("{} needs a host target", self.key)))
    }

    fn state(&self) -> &StateDir {
        &self.cx.run.state
    }
}

// ---------------------------------------------------------------------------------------------
// Command helpers.

fn sudo(program: &str, args: &[&str]) -> Cmd {
    Cmd::new(program).args(args.iter().copied()).sudo()
}

/// `tar ARGS` that tries again when a file changed while it was read: the node is still a swarm
/// manager while its data is archived, and the swarm's raft log may take a write at that moment
/// (GNU tar then exits 1, "file changed as we read it", and the archive's copy of that file may be
/// torn). A few tries, a moment apart; a file that keeps changing fails the step as before.
async fn archive(
    h: &dyn HostExec,
    args: &[&str],
    log: &(dyn Fn(String) + Send + Sync),
) -> Result<(), StepError> {
    const TRIES: u32 = 5;
    let tar = sudo("tar", args);
    let mut out = h.run(&tar).await?;
    for _ in 1..TRIES {
        let changed =
            out.code == Some(1) && out.stderr_text().contains("file changed as we read it");
        if !changed {
            break;
        }
        log(format!(
            "[{}] a file changed while it was archived ({}); archiving again",
            h.host(),
            out.stderr_text().trim()
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        out = h.run(&tar).await?;
    }
    if out.success() {
        Ok(())
    } else {
        Err(StepError::new(format!(
            "{}: `{tar}` exited with {}: {}",
            h.host(),
            out.code.map_or("a signal".to_string(), |c| c.to_string()),
            out.stderr_text().trim()
        )))
    }
}

fn lines(o: &Output) -> Vec<String> {
    o.stdout_text()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

async fn rmdir_if_new(h: &dyn HostExec, dir: &str, existed: bool) -> Result<(), StepError> {
    if !existed && exists(h, "-d", dir).await? {
        ok(h, sudo("rmdir", &["--ignore-fail-on-non-empty", dir])).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl Step for MkeStep {
    fn key(&self) -> &StepKey {
        &self.key
    }

    fn reversibility(&self) -> Reversibility {
        self.kind.reversibility()
    }

    async fn prepare(&self) -> Result<Value, StepError> {
        match self.kind {
            Kind::BackupEtcd | Kind::RemoveMke3 | Kind::StopMke3 | Kind::InstallK0s => {
                let h = self.cx.host(self.target_host()?)?.as_ref();
                match self.kind {
                    Kind::BackupEtcd => to_data(&DirState {
                        dir_existed: exists(h, "-d", HOST_DIR).await?,
                    }),
                    Kind::StopMke3 => to_data(&Running {
                        running: ucp_containers(h, false).await?,
                    }),
                    Kind::InstallK0s => to_data(&InstallState {
                        dir_existed: exists(h, "-d", K0S_DIR).await?,
                        binary_existed: exists(h, "-f", K0S_BIN).await?,
                    }),
                    _ => to_data(&RemoveState {
                        containers: ucp_containers(h, true).await?,
                        volumes: ucp_volumes(h).await?,
                        swarm: swarm_info(h).await?.local_node_state == "active",
                        dir_existed: exists(h, "-d", HOST_DIR).await?,
                    }),
                }
            }
            Kind::ApplyMke4Config | Kind::ApplyRbac => {
                let mut objects = Vec::new();
                for o in self.objects()? {
                    let r = ObjectRef::of(&o)?;
                    let before = self.cx.run.cluster.get(&r).await?.map(restorable);
                    objects.push(Previous { object: r, before });
                }
                to_data(&Applied { objects })
            }
            Kind::StartK0s => {
                // The Node's labels and taints as MKE 3 left them: k0s's kubelet adds its own
                // (node.k0sproject.io/role, control-plane, its taint) and leaves them behind
                // when stopped or reset, so the undo sets them back.
                let node = self.cx.node(self.target_host()?)?;
                let found = self.cx.run.cluster.get(&node_ref(&node)).await?;
                to_data(&found.map(|n| {
                    NodeMeta {
                        labels: n
                            .pointer("/metadata/labels")
                            .cloned()
                            .unwrap_or(Value::Null),
                        taints: n.pointer("/spec/taints").cloned().unwrap_or(Value::Null),
                    }
                }))
            }
            _ => Ok(Value::Null),
        }
    }

    async fn apply(&self, prepared: &Value) -> Result<Value, StepError> {
        match self.kind {
            Kind::BackupEtcd => self.backup_etcd().await?,
            Kind::ExportConfig => {
                let toml = self.cx.mke3.config_toml().await?;
                self.state().write(TOML_FILE, toml.as_bytes())?;
            }
            Kind::ExportRbac => {
                let export = crate::export_rbac(self.cx.mke3.as_ref(), 100).await?;
                let text = serde_json::to_vec_pretty(&export)
                    .map_err(|e| StepError::caused("cannot write the export", e, false))?;
                self.state().write(EXPORT_FILE, &text)?;
            }
            Kind::ConvertConfig => {
                // The one conversion of the run: what is kept here is what gets applied.
                let c = self.conversion()?;
                let yaml = ferry_config_convert::to_yaml(&c.config)
                    .map_err(|e| StepError::caused("cannot render mke4.yaml", e, false))?;
                self.state().write(MKE4_FILE, yaml.as_bytes())?;
                let section = ferry_config_convert::report::configuration_summary(&c);
                self.state()
                    .write(CONFIG_SUMMARY_FILE, section.as_bytes())?;
            }
            Kind::TranslateRbac => {
                let t = self.translation()?;
                let yaml = t
                    .to_yaml()
                    .map_err(|e| StepError::caused("cannot render the RBAC objects", e, false))?;
                self.state().write(RBAC_FILE, yaml.as_bytes())?;
                self.state()
                    .write(RBAC_SUMMARY_FILE, t.report.summary_sections().as_bytes())?;
            }
            Kind::StopMke3 => {
                let h = self.cx.host(self.target_host()?)?;
                let names = from_data::<Running>(prepared)?.running;
                if !names.is_empty() {
                    let mut args = vec!["container", "stop"];
                    args.extend(names.iter().map(String::as_str));
                    ok(h.as_ref(), sudo("docker", &args)).await?;
                }
            }
            Kind::InstallK0s => self.install_k0s(&from_data(prepared)?).await?,
            Kind::StartK0s => self.start_k0s().await?,
            Kind::ApplyMke4Config | Kind::ApplyRbac => {
                for o in self.objects()? {
                    self.cx.run.cluster.apply(&applicable(o)).await?;
                }
            }
            Kind::RemoveMke3 => self.remove_mke3(&from_data(prepared)?).await?,
            Kind::CniCheck => cni_check(&self.cx).await?,
            Kind::Drain | Kind::Uncordon => {
                return Err(StepError::new(format!(
                    "{} is a node step of ferry-core",
                    self.key
                )));
            }
        }
        Ok(prepared.clone())
    }

    async fn undo(&self, data: &Value, _partial: bool) -> Result<(), StepError> {
        match self.kind {
            Kind::ExportConfig
            | Kind::ExportRbac
            | Kind::ConvertConfig
            | Kind::TranslateRbac
            | Kind::CniCheck
            | Kind::Drain
            | Kind::Uncordon => Ok(()),
            Kind::BackupEtcd => {
                let h = self.cx.host(self.target_host()?)?.as_ref();
                let before: DirState = from_data(data)?;
                ok(h, sudo("rm", &["-f", KV_SNAPSHOT_ON_HOST, HOST_SNAPSHOT])).await?;
                rmdir_if_new(h, HOST_DIR, before.dir_existed).await
            }
            Kind::StopMke3 => self.undo_stop(&from_data(data)?).await,
            Kind::InstallK0s => self.undo_install(&from_data(data)?).await,
            Kind::StartK0s => {
                let host = self.target_host()?;
                let h = self.cx.host(host)?.as_ref();
                self.cx.k0s(host, h)?.stop_if_running().await?;
                // Journals of earlier builds recorded nothing here (null).
                match from_data::<Option<NodeMeta>>(data)? {
                    Some(before) => self.restore_node(host, &before).await,
                    None => Ok(()),
                }
            }
            Kind::ApplyMke4Config | Kind::ApplyRbac => {
                let applied: Applied = from_data(data)?;
                for p in applied.objects.iter().rev() {
                    match &p.before {
                        None => {
                            self.cx.run.cluster.delete(&p.object).await?;
                        }
                        Some(before) => self.cx.run.cluster.apply(before).await?,
                    }
                }
                Ok(())
            }
            Kind::RemoveMke3 => self.undo_remove(&from_data(data)?).await,
        }
    }
}

fn read_text(state: &StateDir, file: &str) -> Result<String, StepError> {
    String::from_utf8(state.read(file)?)
        .map_err(|_| StepError::new(format!("{file} in the state directory is not UTF-8")))
}

/// The MKE 4 objects of the kept `mke4.yaml`: the `mke` namespace and the `MkeConfig`.
pub fn mke4_objects(state: &StateDir) -> Result<Vec<Value>, StepError> {
    let config = ferry_config_convert::from_yaml(&read_text(state, MKE4_FILE)?)
        .map_err(|e| StepError::caused(format!("cannot read the kept {MKE4_FILE}"), e, false))?;
    let spec = serde_json::to_value(&config)
        .map_err(|e| StepError::caused("cannot serialise the MKE 4 config", e, false))?;
    Ok(vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mke"}}),
        json!({
            "apiVersion": "mke.mirantis.com/v1alpha1",
            "kind": "MkeConfig",
            "metadata": {"name": "mke", "namespace": "mke"},
            "spec": spec.get("spec").cloned().unwrap_or(spec),
        }),
    ])
}

/// An object as read from the API server, made fit to be applied again by the undo: without
/// what the server owns (managed fields, resource version, uid, timestamps, status), which a
/// server-side apply refuses (`metadata.managedFields must be nil`) or ignores.
fn restorable(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
    }
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    applicable(object)
}

/// An object as ferry applies it. An aggregated ClusterRole's `rules` belong to the controller
/// manager's aggregation controller: applying them (even `rules: []`) conflicts with it once it
/// has filled them, so they are left out; so is an empty `rules` list.
fn applicable(mut object: Value) -> Value {
    let aggregated = object.get("kind").and_then(Value::as_str) == Some("ClusterRole")
        && object.get("aggregationRule").is_some_and(|a| !a.is_null());
    // A role replica comes without rules for the operator to fill: applying `rules: []` would
    // claim the list and conflict with the operator's rules on a later run.
    let empty = object
        .get("rules")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    if aggregated || empty {
        if let Some(o) = object.as_object_mut() {
            o.remove("rules");
        }
    }
    object
}

/// The objects of the kept `rbac.yaml`, one per YAML document.
pub fn rbac_objects(state: &StateDir) -> Result<Vec<Value>, StepError> {
    let text = read_text(state, RBAC_FILE)?;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).map_err(|e| {
            StepError::caused(format!("cannot read the kept {RBAC_FILE}"), e, false)
        })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

impl MkeStep {
    fn objects(&self) -> Result<Vec<Value>, StepError> {
        match self.kind {
            Kind::ApplyMke4Config => mke4_objects(self.state()),
            Kind::ApplyRbac => rbac_objects(self.state()),
            _ => Ok(Vec::new()),
        }
    }

    /// The conversion of the exported config-toml.
    fn conversion(&self) -> Result<ferry_config_convert::Conversion, StepError> {
        let toml = read_text(self.state(), TOML_FILE)?;
        let options = self
            .cx
            .inputs
            .convert_options(&self.cx.run.specs, &self.cx.discovered);
        ferry_config_convert::convert(&toml, &options)
            .map_err(|e| StepError::caused("cannot convert the MKE 3 configuration", e, false))
    }

    /// The RBAC translation of the export.
    fn translation(&self) -> Result<ferry_rbac::Translation, StepError> {
        let text = read_text(self.state(), EXPORT_FILE)?;
        let export = ferry_rbac::Export::from_json(&text)
            .map_err(|e| StepError::caused("cannot read the RBAC export", e, false))?;
        ferry_rbac::translate(&export, &ferry_rbac::Options::default())
            .map_err(|e| StepError::caused("cannot translate the RBAC export", e, false))
    }

    async fn backup_etcd(&self) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        self.cx.log().info(format!(
            "[{host}] taking an etcd snapshot of MKE 3 (ucp-kv)"
        ));
        ok(h, sudo("mkdir", &["-p", HOST_DIR])).await?;
        let mut args = vec!["exec", "ucp-kv", "etcdctl"];
        args.extend(ETCD_FLAGS);
        args.extend(["snapshot", "save", KV_SNAPSHOT]);
        ok(h, sudo("docker", &args)).await?;
        let src = format!("ucp-kv:{KV_SNAPSHOT}");
        ok(h, sudo("docker", &["cp", &src, HOST_SNAPSHOT])).await?;
        ok(
            h,
            sudo("docker", &["exec", "ucp-kv", "rm", "-f", KV_SNAPSHOT]),
        )
        .await?;
        let out = ok(h, sudo("cat", &[HOST_SNAPSHOT])).await?;
        self.state().write(SNAPSHOT_FILE, &out.stdout)?;
        Ok(())
    }

    async fn install_k0s(&self, before: &InstallState) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let k0s = self.cx.k0s(host, h)?;
        let manager = self.cx.manager(host);
        let leader = host == self.cx.discovered.leader;
        ok(h, sudo("mkdir", &["-p", K0S_DIR])).await?;
        if !before.binary_existed {
            let machine = self
                .cx
                .discovered
                .host(host)
                .map(|p| p.machine.clone())
                .unwrap_or_default();
            k0s.put_binary(&self.cx.inputs.k0s, &machine).await?;
        }
        if manager {
            h.put_file(
                K0S_CONFIG,
                k0s_config(&self.cx).as_bytes(),
                &FileSpec::root(0o600),
            )
            .await?;
        }
        let role = if manager {
            Role::Controller { worker: true }
        } else {
            Role::Worker
        };
        if !leader {
            // A join token from the leader; it passes through memory and a 0600 file only.
            let l = self.cx.host(&self.cx.discovered.leader)?.as_ref();
            let token = self
                .cx
                .k0s(&self.cx.discovered.leader, l)?
                .token_create(role, "1h")
                .await?;
            k0s.put_token(&token).await?;
        }
        let config = manager.then_some(K0S_CONFIG);
        let token = (!leader).then_some(K0S_TOKEN);
        // The token file stays until k0s has started (k0s reads it at its first start, not at
        // install: `start_k0s` removes it); a failed install leaves no token behind.
        if let Err(e) = k0s.install(role, config, token).await {
            ok(h, sudo("rm", &["-f", K0S_TOKEN])).await?;
            return Err(e);
        }
        Ok(())
    }

    async fn undo_install(&self, before: &InstallState) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let k0s = self.cx.k0s(host, h)?;
        if k0s.installed().await?.is_some() && exists(h, "-f", K0S_BIN).await? {
            self.cx.log().info(format!("Resetting k0s on {host} ..."));
            k0s.stop_if_running().await?;
            k0s.reset().await?;
            self.cx.log().info(format!("[ssh] {host}: reset"));
        }
        ok(h, sudo("rm", &["-f", K0S_CONFIG, K0S_TOKEN])).await?;
        if !before.binary_existed {
            ok(h, sudo("rm", &["-f", K0S_BIN])).await?;
        }
        // A host that died while a file was being uploaded keeps the temporary file.
        for path in [K0S_BIN, K0S_CONFIG, K0S_TOKEN] {
            ferry_core::exec::discard_partial_uploads(h, path).await?;
        }
        rmdir_if_new(h, K0S_DIR, before.dir_existed).await?;
        k0s.reload().await?;
        self.cx
            .log()
            .info(format!("[ssh] {host}: reloading service manager"));
        Ok(())
    }

    async fn start_k0s(&self) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let k0s = self.cx.k0s(host, h)?;
        let node = self.cx.node(host)?;
        let started = async {
            k0s.start().await?;
            // Wait for the node to come back Ready under k0s.
            wait_ready(
                self.cx.run.cluster.as_ref(),
                &node,
                Duration::from_secs(600),
                Duration::from_secs(2),
            )
            .await
            .map_err(|e| e.context(format!("{host} under k0s")))
        }
        .await;
        // The join token has been used (or the start failed and the rollback reinstalls):
        // it must not stay on the host either way, as k0sctl removes it once the node joined.
        let cleanup = ok(h, sudo("rm", &["-f", K0S_TOKEN])).await;
        started?;
        cleanup?;
        if self.cx.manager(host) && !k0s.running().await? {
            return Err(StepError::new(format!(
                "{host}: k0s status failed after start"
            )));
        }
        self.cx
            .log()
            .info(format!("[{host}] node {node} is Ready on k0s"));
        Ok(())
    }

    /// Sets the Node's labels and taints back to `before` (labels added since are removed).
    async fn restore_node(&self, host: &str, before: &NodeMeta) -> Result<(), StepError> {
        let node = self.cx.node(host)?;
        let r = node_ref(&node);
        let Some(now) = self.cx.run.cluster.get(&r).await? else {
            return Ok(());
        };
        let mut labels = serde_json::Map::new();
        if let Some(current) = now.pointer("/metadata/labels").and_then(Value::as_object) {
            for k in current.keys() {
                labels.insert(k.clone(), Value::Null);
            }
        }
        if let Some(old) = before.labels.as_object() {
            for (k, v) in old {
                labels.insert(k.clone(), v.clone());
            }
        }
        let patch = json!({"metadata": {"labels": labels}, "spec": {"taints": before.taints}});
        match self.cx.run.cluster.merge_patch(&r, &patch).await {
            Ok(()) => Ok(()),
            // Gone (deleted by someone): nothing to set back.
            Err(ferry_core::ClusterError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn undo_stop(&self, stopped: &Running) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        if stopped.running.is_empty() {
            return Ok(());
        }
        // Start ucp-kv first: the other MKE 3 components need it.
        let mut ordered: Vec<&str> = stopped.running.iter().map(String::as_str).collect();
        ordered.sort_by_key(|n| *n != "ucp-kv");
        let mut args = vec!["container", "start"];
        args.extend(ordered.iter().copied());
        ok(h, sudo("docker", &args)).await?;
        if stopped.running.iter().any(|n| n == "ucp-kv") {
            // An etcd member that restarts serves clients only once it has published itself
            // through the cluster, which takes a quorum. The managers were stopped leader
            // first, so their stops are undone leader last: the leader's undo is the one at
            // which every other manager's ucp-kv is running again, and the one that waits for
            // the cluster's health. An earlier manager's member cannot be healthy yet.
            if host != self.cx.discovered.leader {
                self.cx.log().info(format!(
                    "[{host}] ucp-kv started; etcd is checked once the first manager is back"
                ));
                return Ok(());
            }
            self.cx.log().info("Waiting for etcd to be healthy ...");
            let mut a = vec!["exec", "ucp-kv", "etcdctl"];
            a.extend(ETCD_FLAGS);
            a.extend(["endpoint", "health", "--cluster"]);
            let mut tries = 0;
            loop {
                match ok(h, sudo("docker", &a)).await {
                    Ok(_) => break,
                    Err(e) if tries >= ETCD_HEALTH_TRIES => return Err(e),
                    Err(_) => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            self.cx.log().info("etcd health check succeeded!");
        }
        Ok(())
    }

    async fn remove_mke3(&self, r: &RemoveState) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        self.cx
            .log()
            .info(format!("[{host}] removing MKE 3 components"));
        ok(h, sudo("mkdir", &["-p", HOST_DIR])).await?;
        if !r.containers.is_empty() {
            let mut args = vec!["container", "inspect"];
            args.extend(r.containers.iter().map(String::as_str));
            let specs = ok(h, sudo("docker", &args)).await?;
            h.put_file(HOST_SPECS, &specs.stdout, &FileSpec::root(0o600))
                .await?;
        }
        // Everything removed below is archived first, ucp-kv's etcd data too: its container is
        // stopped, so the member's data directory is at rest, and the undo gives every member
        // back its own data (a member restored from the snapshot alone would form a cluster of
        // its own, apart from the other managers').
        let mut paths: Vec<String> = r.volumes.iter().map(|v| format!("volumes/{v}")).collect();
        if r.swarm {
            paths.push("swarm".into());
        }
        if !paths.is_empty() {
            let mut args = vec!["-C", "/var/lib/docker", "-czf", HOST_ARCHIVE];
            args.extend(paths.iter().map(String::as_str));
            let log = |m: String| self.cx.log().info(m);
            archive(h, &args, &log).await?;
        }
        if !r.containers.is_empty() {
            let mut args = vec!["container", "rm", "-f"];
            args.extend(r.containers.iter().map(String::as_str));
            ok(h, sudo("docker", &args)).await?;
        }
        if !r.volumes.is_empty() {
            let mut args = vec!["volume", "rm"];
            args.extend(r.volumes.iter().map(String::as_str));
            ok(h, sudo("docker", &args)).await?;
        }
        if r.swarm {
            ok(h, sudo("docker", &["swarm", "leave", "--force"])).await?;
        }
        Ok(())
    }

    async fn restore_etcd(&self, h: &dyn HostExec) -> Result<(), StepError> {
        self.cx.log().info("Running etcd cleanup service ...");
        ok(
            h,
            sudo(
                "rm",
                &["-rf", "/var/lib/docker/volumes/ucp-kv/_data/datav3"],
            ),
        )
        .await?;
        self.cx
            .log()
            .info("MKE3 etcd directories successfully cleaned up ...");
        self.cx
            .log()
            .info("Restoring etcd from the previously taken system backup ...");
        let snapshot = self.state().read(SNAPSHOT_FILE)?;
        ok(h, sudo("mkdir", &["-p", HOST_DIR])).await?;
        h.put_file(HOST_RESTORE, &snapshot, &FileSpec::root(0o600))
            .await?;
        let image = format!("mirantis/ucp-etcd:{}", self.cx.discovered.mke3_version);
        let out = ok(
            h,
            sudo(
                "docker",
                &[
                    "run",
                    "--rm",
                    "-v",
                    "ucp-kv:/data",
                    "-v",
                    "/var/lib/ferry:/backup",
                    &image,
                    "etcdctl",
                    "snapshot",
                    "restore",
                    "/backup/etcd-restore.db",
                    "--data-dir",
                    "/data/datav3",
                ],
            ),
        )
        .await?;
        ok(h, sudo("rm", &["-f", HOST_RESTORE])).await?;
        self.cx.log().info(format!(
            "Successfully restored etcd with output: {}",
            out.stdout_text().trim()
        ));
        Ok(())
    }

    async fn undo_remove(&self, r: &RemoveState) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        if exists(h, "-f", HOST_ARCHIVE).await? {
            ok(
                h,
                sudo("tar", &["-C", "/var/lib/docker", "-xzf", HOST_ARCHIVE]),
            )
            .await?;
        }
        if r.volumes.iter().any(|v| v == "ucp-kv")
            && !exists(
                h,
                "-f",
                "/var/lib/docker/volumes/ucp-kv/_data/datav3/member/snap/db",
            )
            .await?
        {
            self.restore_etcd(h).await?;
        }
        if r.swarm {
            // Docker reads the swarm state back at start. A SysV or OpenRC script returns
            // once dockerd is started, not once it answers: wait for it.
            let init = self.cx.k0s(host, h)?.init;
            ok(h, init.restart("docker")).await?;
            let mut tries = 0;
            while let Err(e) = ok(
                h,
                sudo("docker", &["version", "--format", "{{.Server.Version}}"]),
            )
            .await
            {
                if tries >= DOCKER_START_TRIES {
                    return Err(e);
                }
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let present: BTreeSet<String> = ucp_containers(h, true).await?.into_iter().collect();
        let specs: Vec<Inspect> = if exists(h, "-f", HOST_SPECS).await? {
            let out = ok(h, sudo("cat", &[HOST_SPECS])).await?;
            serde_json::from_slice(&out.stdout)
                .map_err(|e| StepError::caused(format!("{host}: {HOST_SPECS}"), e, false))?
        } else {
            // Written before anything was removed: without it, no container was removed.
            Vec::new()
        };
        let mut start = Vec::new();
        for c in &specs {
            let name = c.name.trim_start_matches('/').to_string();
            if name.is_empty() || present.contains(&name) {
                continue;
            }
            if name == "ucp-kv" {
                self.cx.log().info("Deploying etcd server ...");
            }
            let mut args: Vec<String> = vec![
                "container".into(),
                "create".into(),
                "--name".into(),
                name.clone(),
            ];
            if !c.host_config.restart_policy.name.is_empty() {
                args.extend([
                    "--restart".into(),
                    c.host_config.restart_policy.name.clone(),
                ]);
            }
            for (k, v) in &c.config.labels {
                args.extend(["--label".into(), format!("{k}={v}")]);
            }
            let network = c.host_config.network_mode.as_str();
            if !network.is_empty() && network != "default" {
                args.extend(["--network".into(), network.to_string()]);
            }
            for m in &c.mounts {
                if let Some(v) = m.volume_arg() {
                    args.extend(["-v".into(), v]);
                }
            }
            for p in c.host_config.port_bindings.keys() {
                let p = p.trim_end_matches("/tcp");
                args.extend(["-p".into(), format!("{p}:{p}")]);
            }
            args.push(c.config.image.clone());
            args.extend(c.config.cmd.iter().flatten().cloned());
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(h, sudo("docker", &a)).await?;
            if c.state.running {
                start.push(name);
            }
        }
        if !start.is_empty() {
            let mut args = vec!["container", "start"];
            args.extend(start.iter().map(String::as_str));
            ok(h, sudo("docker", &args)).await?;
        }
        ok(
            h,
            sudo("rm", &["-f", HOST_ARCHIVE, HOST_RESTORE, HOST_SPECS]),
        )
        .await?;
        rmdir_if_new(h, HOST_DIR, r.dir_existed).await
    }
}

/// The k0s configuration of a controller.
fn k0s_config(cx: &Ctx) -> String {
    let ext = &cx.inputs.external_address;
    let host = ext.rsplit_once(':').map_or(ext.as_str(), |(h, _)| h);
    let mut sans = vec![host.to_string()];
    sans.extend(
        cx.discovered
            .hosts
            .iter()
            .filter(|h| h.manager)
            .map(|h| h.name.clone()),
    );
    let mut s = format!(
        "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\nmetadata:\n  name: mke\nspec:\n  api:\n    externalAddress: {host}\n    sans:\n"
    );
    for san in sans {
        s.push_str(&format!("    - {san}\n"));
    }
    s.push_str("  network:\n    provider: calico\n    kubeProxy:\n      mode: iptables\n");
    s
}

/// The Upgrade Summary and the MKE 4 YAML of a completed run, from the files its steps kept.
pub fn summary(state: &StateDir, mke3_version: &str) -> Result<(String, String), StepError> {
    let config = read_text(state, CONFIG_SUMMARY_FILE)?;
    let rbac = read_text(state, RBAC_SUMMARY_FILE)?;
    let yaml = read_text(state, MKE4_FILE)?;
    Ok((crate::summary::assemble(&config, &rbac, mke3_version), yaml))
}

#[cfg(test)]
mod archive_tests {
    use super::*;
    use ferry_core::exec::ExecError;
    use std::sync::Mutex;

    /// A host whose `tar` finds a changing file the first `changing` times.
    #[derive(Debug)]
    struct Host {
        changing: Mutex<u32>,
        runs: Mutex<u32>,
    }

    #[async_trait::async_trait]
    impl HostExec for Host {
        fn host(&self) -> &str {
            "10.0.0.1"
        }
        async fn run(&self, _cmd: &Cmd) -> Result<Output, ExecError> {
            *self.runs.lock().unwrap() += 1;
            let mut left = self.changing.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Ok(Output {
                    code: Some(1),
                    stdout: Vec::new(),
                    stderr:
                        b"tar: swarm/raft/wal-v3-encrypted/0000.wal: file changed as we read it"
                            .to_vec(),
                });
            }
            Ok(Output {
                code: Some(0),
                ..Output::default()
            })
        }
        async fn put_file(&self, _: &str, _: &[u8], _: &FileSpec) -> Result<(), ExecError> {
            Ok(())
        }
        async fn close(&self) -> Result<(), ExecError> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_that_changed_while_archived_is_archived_again_a_few_times() {
        let said = Mutex::new(Vec::new());
        let log = |m: String| said.lock().unwrap().push(m);
        let h = Host {
            changing: Mutex::new(2),
            runs: Mutex::new(0),
        };
        archive(&h, &["-czf", "a.tgz", "swarm"], &log)
            .await
            .unwrap();
        assert_eq!(*h.runs.lock().unwrap(), 3);
        assert_eq!(said.lock().unwrap().len(), 2);
        // a file that keeps changing fails the step, naming the command and tar's words
        let h = Host {
            changing: Mutex::new(99),
            runs: Mutex::new(0),
        };
        let e = archive(&h, &["-czf", "a.tgz", "swarm"], &log)
            .await
            .unwrap_err();
        assert_eq!(*h.runs.lock().unwrap(), 5);
        assert!(e.to_string().contains("file changed as we read it"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// The CNI check.

/// The hosts the CNI check looks at, as mkectl's does: the first two managers (the leader first)
/// and the first two workers of the hosts file.
pub fn cni_checked(d: &Discovered) -> Vec<&PlannedHost> {
    let mut managers: Vec<&PlannedHost> = d.hosts.iter().filter(|h| h.manager).collect();
    managers.sort_by_key(|h| h.name != d.leader);
    let workers = d.hosts.iter().filter(|h| !h.manager);
    managers
        .into_iter()
        .take(2)
        .chain(workers.take(2))
        .collect()
}

/// What the CNI check still waits for, or `None` when the network is up: every checked node
/// Ready and not `NetworkUnavailable`, and every checked host reaching every other one at
/// `--cni-check-port` (`bash`'s `/dev/tcp`, 3 s a try).
async fn cni_not_ready(cx: &Ctx) -> Result<Option<String>, StepError> {
    let checked = cni_checked(&cx.discovered);
    let port = cx.inputs.cni_check_port;
    let nodes = cx.run.cluster.nodes().await?;
    for h in &checked {
        let node = cx.run.cluster.get(&node_ref(&h.hostname)).await?;
        let Some(node) = node else {
            return Ok(Some(format!("node {} is not registered", h.hostname)));
        };
        let condition = |kind: &str| {
            node.pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| c["type"] == kind)
                .and_then(|c| c["status"].as_str())
                .map(str::to_string)
        };
        if condition("NetworkUnavailable").as_deref() == Some("True") {
            return Ok(Some(format!(
                "node {} reports NetworkUnavailable",
                h.hostname
            )));
        }
        if !nodes.iter().any(|n| n.name == h.hostname && n.ready) {
            return Ok(Some(format!("node {} is not Ready", h.hostname)));
        }
    }
    for from in &checked {
        let conn = cx.host(&from.name)?;
        for to in checked.iter().filter(|t| t.name != from.name) {
            let addr = cx
                .run
                .specs
                .iter()
                .find(|s| s.name() == to.name)
                .map(|s| {
                    s.private_address
                        .clone()
                        .unwrap_or_else(|| s.address.clone())
                })
                .unwrap_or_else(|| to.name.clone());
            let probe = Cmd::new("timeout")
                .args([
                    "3",
                    "bash",
                    "-c",
                    &format!("exec 3<>/dev/tcp/{addr}/{port}"),
                ])
                .timeout(Duration::from_secs(10));
            let out = conn.run(&probe).await?;
            if !out.success() {
                return Ok(Some(format!(
                    "{} cannot reach {addr}:{port} ({})",
                    from.name,
                    out.stderr_text().trim()
                )));
            }
        }
    }
    Ok(None)
}

/// Waits up to `--cni-check-timeout` minutes for [`cni_not_ready`] to find nothing; fails the
/// step (and so rolls the run back) when the network is not up by then.
async fn cni_check(cx: &Ctx) -> Result<(), StepError> {
    let limit = Duration::from_secs(u64::from(cx.inputs.cni_check_timeout) * 60);
    let names: Vec<&str> = cni_checked(&cx.discovered)
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    cx.log().info(format!(
        "Checking the unmanaged CNI on {} (port {}, up to {} min)",
        names.join(", "),
        cx.inputs.cni_check_port,
        cx.inputs.cni_check_timeout
    ));
    let start = tokio::time::Instant::now();
    loop {
        let why = match cni_not_ready(cx).await {
            Ok(None) => {
                cx.log().info("CNI check passed");
                return Ok(());
            }
            Ok(Some(why)) => why,
            Err(e) if e.transient => e.chain(),
            Err(e) => return Err(e),
        };
        if start.elapsed() >= limit {
            return Err(StepError::new(format!(
                "the CNI is not ready after {} minute(s) (--cni-check-timeout): {why}",
                cx.inputs.cni_check_timeout
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod cni_tests {
    use super::*;
    use ferry_core::facts::InitSystem;

    fn host(name: &str, manager: bool) -> PlannedHost {
        PlannedHost {
            name: name.into(),
            hostname: format!("node-{name}"),
            manager,
            machine: "x86_64".into(),
            init_system: InitSystem::Systemd,
        }
    }

    #[test]
    fn the_cni_check_looks_at_the_leader_and_one_more_manager_and_the_first_two_workers() {
        let d = Discovered {
            mke3_version: "3.8.2".into(),
            leader: "m2".into(),
            hosts: vec![
                host("w1", false),
                host("m1", true),
                host("m2", true),
                host("m3", true),
                host("w2", false),
                host("w3", false),
            ],
            unmanaged_cni: true,
        };
        let names: Vec<&str> = cni_checked(&d).iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["m2", "m1", "w1", "w2"]);
        let one = Discovered {
            hosts: vec![host("m2", true)],
            ..d
        };
        assert_eq!(cni_checked(&one).len(), 1);
    }

    #[test]
    fn only_an_unmanaged_cni_gets_the_check_in_the_plan() {
        use crate::flow::{build_plan, unmanaged_cni};
        assert!(unmanaged_cni(
            "[cluster_config]\n  unmanaged_cni = true\n  calico_kdd = true\n"
        ));
        assert!(!unmanaged_cni("[cluster_config]\n  calico_kdd = true\n"));
        assert!(!unmanaged_cni("not toml ["));
        let mut d = Discovered {
            mke3_version: "3.8.2".into(),
            leader: "m1".into(),
            hosts: vec![host("m1", true), host("w1", false)],
            unmanaged_cni: false,
        };
        let inputs = Inputs::new(vec![], "admin", "lb");
        let has = |d: &Discovered| {
            build_plan(&inputs, d, &BTreeMap::new())
                .steps()
                .iter()
                .any(|s| s.key.id == "mke.cni-check")
        };
        assert!(!has(&d));
        d.unmanaged_cni = true;
        assert!(has(&d));
        // after the node migration, in its phase
        let plan = build_plan(&inputs, &d, &BTreeMap::new());
        let phase = &plan.phases[1];
        assert_eq!(phase.name, crate::flow::NODE_MIGRATION_PHASE);
        let last = phase.groups.last().unwrap();
        assert!(
            matches!(last, ferry_core::engine::Group::Steps { steps } if steps[0].key.id == "mke.cni-check")
        );
    }
}
