//! The steps of the MKE 3 → MKE 4k flow. Every host command is a real one (docker, etcdctl in
//! the `ucp-kv` container, k0s, systemctl, tar); `docs/upgrade-steps.md` lists them per step
//! with their undo. Every undo is idempotent and also cleans up after a partial apply.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Discovered, Inputs};
use crate::cluster::{ClusterApi, DrainOptions, ObjectRef};
use crate::engine::{Logger, Reversibility, Step, StepError, StepKey};
use crate::exec::{Cmd, FileSpec, HostExec, Output};
use crate::mke3::Mke3Api;
use crate::secret::Secret;

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
pub const K0S_BIN: &str = "/usr/local/bin/k0s";
pub const K0S_DIR: &str = "/etc/k0s";
pub const K0S_CONFIG: &str = "/etc/k0s/k0s.yaml";
pub const K0S_TOKEN: &str = "/etc/k0s/join-token";

/// The files of the state directory.
pub const SNAPSHOT_FILE: &str = "etcd-snapshot.db";
pub const TOML_FILE: &str = "mke3.toml";
pub const EXPORT_FILE: &str = "mke3-rbac-export.json";
pub const MKE4_FILE: &str = "mke4.yaml";
pub const RBAC_FILE: &str = "rbac.yaml";
pub const SUMMARY_FILE: &str = "upgrade-summary.txt";

const ETCD_FLAGS: [&str; 4] = [
    "--endpoints=https://127.0.0.1:12379",
    "--cacert=/etc/docker/ssl/ca.pem",
    "--cert=/etc/docker/ssl/cert.pem",
    "--key=/etc/docker/ssl/key.pem",
];

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
}

const ALL: [Kind; 13] = [
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
        }
    }

    pub fn reversibility(self) -> Reversibility {
        match self {
            Kind::ExportConfig | Kind::ExportRbac | Kind::ConvertConfig | Kind::TranslateRbac => {
                Reversibility::NoOp
            }
            _ => Reversibility::Reversible,
        }
    }
}

/// What the steps share.
#[derive(Debug)]
pub struct Ctx {
    pub inputs: Inputs,
    pub discovered: Discovered,
    pub hosts: BTreeMap<String, Arc<dyn HostExec>>,
    pub cluster: Arc<dyn ClusterApi>,
    pub mke3: Arc<dyn Mke3Api>,
    pub state_dir: PathBuf,
    pub log: Logger,
}

impl Ctx {
    fn host(&self, name: &str) -> Result<&Arc<dyn HostExec>, StepError> {
        self.hosts
            .get(name)
            .ok_or_else(|| StepError::new(format!("no connection to host {name}")))
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

    fn read_state(&self, file: &str) -> Result<Vec<u8>, StepError> {
        let p = self.state_dir.join(file);
        std::fs::read(&p).map_err(|e| StepError::new(format!("cannot read {}: {e}", p.display())))
    }

    pub(crate) fn write_state(&self, file: &str, data: &[u8]) -> Result<(), StepError> {
        let p = self.state_dir.join(file);
        let tmp = self.state_dir.join(format!(".{file}.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        };
        write().map_err(|e| StepError::new(format!("cannot write {}: {e}", p.display())))
    }
}

/// One step instance.
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
}

// ---------------------------------------------------------------------------------------------
// Command helpers.

fn sudo(program: &str, args: &[&str]) -> Cmd {
    Cmd::new(program).args(args.iter().copied()).sudo()
}

async fn run(h: &dyn HostExec, cmd: Cmd) -> Result<Output, StepError> {
    Ok(h.run(&cmd).await?)
}

async fn ok(h: &dyn HostExec, cmd: Cmd) -> Result<Output, StepError> {
    let shown = cmd.to_string();
    let out = h.run(&cmd).await?;
    if out.success() {
        Ok(out)
    } else {
        Err(StepError::new(format!(
            "{}: `{shown}` exited with {}: {}",
            h.host(),
            out.code.map_or("a signal".to_string(), |c| c.to_string()),
            out.stderr_text().trim()
        )))
    }
}

async fn exists(h: &dyn HostExec, flag: &str, path: &str) -> Result<bool, StepError> {
    Ok(run(h, sudo("test", &[flag, path])).await?.success())
}

fn lines(o: &Output) -> Vec<String> {
    o.stdout_text()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn flag(v: &Value, key: &str) -> bool {
    v[key].as_bool().unwrap_or(false)
}

fn root_file(mode: u32) -> FileSpec {
    FileSpec {
        mode,
        owner: Some("root".into()),
        group: None,
        sudo: true,
    }
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
            Kind::BackupEtcd => {
                let h = self.cx.host(self.target_host()?)?;
                Ok(json!({"dirExisted": exists(h.as_ref(), "-d", HOST_DIR).await?}))
            }
            Kind::Drain | Kind::Uncordon => {
                let node = self.cx.node(self.target_host()?)?;
                let nodes = self.cx.cluster.nodes().await?;
                let n = nodes
                    .iter()
                    .find(|n| n.name == node)
                    .ok_or_else(|| StepError::new(format!("node {node} not found")))?;
                Ok(json!({"node": node, "unschedulable": n.unschedulable}))
            }
            Kind::StopMke3 => {
                let h = self.cx.host(self.target_host()?)?;
                let out = ok(
                    h.as_ref(),
                    sudo(
                        "docker",
                        &["ps", "--filter", "name=ucp-", "--format", "{{.Names}}"],
                    ),
                )
                .await?;
                Ok(json!({"running": lines(&out)}))
            }
            Kind::InstallK0s => {
                let h = self.cx.host(self.target_host()?)?;
                Ok(json!({
                    "dirExisted": exists(h.as_ref(), "-d", K0S_DIR).await?,
                    "binaryExisted": exists(h.as_ref(), "-f", K0S_BIN).await?,
                }))
            }
            Kind::ApplyMke4Config | Kind::ApplyRbac => {
                let objects = self.objects()?;
                let mut previous = Vec::new();
                for o in &objects {
                    let r = object_ref(o)?;
                    previous.push(json!({"ref": r, "before": self.cx.cluster.get(&r).await?}));
                }
                Ok(json!({"objects": previous}))
            }
            Kind::RemoveMke3 => self.prepare_remove().await,
            _ => Ok(Value::Null),
        }
    }

    async fn apply(&self, prepared: &Value) -> Result<Value, StepError> {
        match self.kind {
            Kind::BackupEtcd => self.backup_etcd(prepared).await,
            Kind::ExportConfig => {
                let toml = self.cx.mke3.config_toml().await?;
                self.cx
                    .write_state(super::steps::TOML_FILE, toml.as_bytes())?;
                Ok(Value::Null)
            }
            Kind::ExportRbac => {
                let export = export_rbac(self.cx.mke3.as_ref()).await?;
                let text = serde_json::to_vec_pretty(&export)
                    .map_err(|e| StepError::new(format!("cannot write the export: {e}")))?;
                self.cx.write_state(EXPORT_FILE, &text)?;
                Ok(Value::Null)
            }
            Kind::ConvertConfig => {
                let c = conversion(&self.cx)?;
                let yaml = ferry_config_convert::to_yaml(&c.config)
                    .map_err(|e| StepError::new(format!("cannot render mke4.yaml: {e}")))?;
                self.cx.write_state(MKE4_FILE, yaml.as_bytes())?;
                Ok(Value::Null)
            }
            Kind::TranslateRbac => {
                let t = translation(&self.cx)?;
                let yaml = t
                    .to_yaml()
                    .map_err(|e| StepError::new(format!("cannot render the RBAC objects: {e}")))?;
                self.cx.write_state(RBAC_FILE, yaml.as_bytes())?;
                Ok(Value::Null)
            }
            Kind::Drain => {
                let node = self.cx.node(self.target_host()?)?;
                let r = self
                    .cx
                    .cluster
                    .drain(
                        &node,
                        &DrainOptions {
                            timeout: Duration::from_secs(300),
                            delete_emptydir_data: true,
                            force_bare_pods: false,
                        },
                    )
                    .await?;
                self.cx.log.info(format!(
                    "[{}] drained node {node}: {} pod(s) evicted",
                    self.target_host()?,
                    r.evicted.len()
                ));
                Ok(prepared.clone())
            }
            Kind::StopMke3 => {
                let h = self.cx.host(self.target_host()?)?;
                let names = strs(prepared, "running");
                if !names.is_empty() {
                    let mut args = vec!["container", "stop"];
                    args.extend(names.iter().map(String::as_str));
                    ok(h.as_ref(), sudo("docker", &args)).await?;
                }
                Ok(prepared.clone())
            }
            Kind::InstallK0s => self.install_k0s(prepared).await,
            Kind::StartK0s => self.start_k0s().await,
            Kind::Uncordon => {
                let node = self.cx.node(self.target_host()?)?;
                self.cx.cluster.uncordon(&node).await?;
                Ok(prepared.clone())
            }
            Kind::ApplyMke4Config | Kind::ApplyRbac => {
                for o in self.objects()? {
                    self.cx.cluster.apply(&o).await?;
                }
                Ok(prepared.clone())
            }
            Kind::RemoveMke3 => self.remove_mke3(prepared).await,
        }
    }

    async fn undo(&self, data: &Value, partial: bool) -> Result<(), StepError> {
        match self.kind {
            Kind::ExportConfig | Kind::ExportRbac | Kind::ConvertConfig | Kind::TranslateRbac => {
                Ok(())
            }
            Kind::BackupEtcd => {
                let h = self.cx.host(self.target_host()?)?;
                ok(
                    h.as_ref(),
                    sudo("rm", &["-f", KV_SNAPSHOT_ON_HOST, HOST_SNAPSHOT]),
                )
                .await?;
                if !flag(data, "dirExisted") && exists(h.as_ref(), "-d", HOST_DIR).await? {
                    ok(
                        h.as_ref(),
                        sudo("rmdir", &["--ignore-fail-on-non-empty", HOST_DIR]),
                    )
                    .await?;
                }
                Ok(())
            }
            Kind::Drain => {
                if !flag(data, "unschedulable") {
                    let node = self.cx.node(self.target_host()?)?;
                    self.cx.cluster.uncordon(&node).await?;
                }
                Ok(())
            }
            Kind::Uncordon => {
                let node = self.cx.node(self.target_host()?)?;
                if !partial || !flag(data, "unschedulable") {
                    self.cx.cluster.cordon(&node).await?;
                }
                Ok(())
            }
            Kind::StopMke3 => self.undo_stop(data).await,
            Kind::InstallK0s => self.undo_install(data).await,
            Kind::StartK0s => {
                let h = self.cx.host(self.target_host()?)?;
                if run(h.as_ref(), sudo("k0s", &["status"])).await?.success() {
                    ok(h.as_ref(), sudo("k0s", &["stop"])).await?;
                }
                Ok(())
            }
            Kind::ApplyMke4Config | Kind::ApplyRbac => {
                let items = data["objects"].as_array().cloned().unwrap_or_default();
                for item in items.iter().rev() {
                    let r: ObjectRef = serde_json::from_value(item["ref"].clone())
                        .map_err(|e| StepError::new(format!("bad undo data: {e}")))?;
                    match &item["before"] {
                        Value::Null => {
                            self.cx.cluster.delete(&r).await?;
                        }
                        before => self.cx.cluster.apply(before).await?,
                    }
                }
                Ok(())
            }
            Kind::RemoveMke3 => self.undo_remove(data).await,
        }
    }
}

/// The reference of an object to apply (apiVersion, kind, namespace, name).
fn object_ref(v: &Value) -> Result<ObjectRef, StepError> {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    match (s("/apiVersion"), s("/kind"), s("/metadata/name")) {
        (Some(api_version), Some(kind), Some(name)) => Ok(ObjectRef {
            api_version,
            kind,
            namespace: s("/metadata/namespace"),
            name,
        }),
        _ => Err(StepError::new("an object without apiVersion, kind or name")),
    }
}

impl MkeStep {
    fn objects(&self) -> Result<Vec<Value>, StepError> {
        match self.kind {
            Kind::ApplyMke4Config => {
                let c = conversion(&self.cx)?;
                let spec = serde_json::to_value(&c.config).map_err(|e| {
                    StepError::new(format!("cannot serialise the MKE 4 config: {e}"))
                })?;
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
            Kind::ApplyRbac => Ok(translation(&self.cx)?.manifests.to_json_values()),
            _ => Ok(Vec::new()),
        }
    }

    async fn backup_etcd(&self, prepared: &Value) -> Result<Value, StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        self.cx.log.info(format!(
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
        self.cx.write_state(SNAPSHOT_FILE, &out.stdout)?;
        Ok(prepared.clone())
    }

    async fn install_k0s(&self, prepared: &Value) -> Result<Value, StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let manager = self.cx.manager(host);
        let leader = host == self.cx.discovered.leader;
        let v = &self.cx.inputs.k0s_version;
        ok(h, sudo("mkdir", &["-p", K0S_DIR])).await?;
        if !flag(prepared, "binaryExisted") {
            let url =
                format!("https://github.com/k0sproject/k0s/releases/download/{v}/k0s-{v}-amd64");
            ok(h, sudo("curl", &["-sSLf", "-o", K0S_BIN, &url])).await?;
            ok(h, sudo("chmod", &["755", K0S_BIN])).await?;
        }
        if manager {
            h.put_file(
                K0S_CONFIG,
                k0s_config(&self.cx).as_bytes(),
                &root_file(0o600),
            )
            .await?;
        }
        let mut args: Vec<String> = if manager {
            vec![
                "install".into(),
                "controller".into(),
                "--enable-worker".into(),
                "--config".into(),
                K0S_CONFIG.into(),
            ]
        } else {
            vec!["install".into(), "worker".into()]
        };
        if !leader {
            // A join token from the leader; it passes through memory and a 0600 file only.
            let l = self.cx.host(&self.cx.discovered.leader)?.as_ref();
            let role = if manager {
                "--role=controller"
            } else {
                "--role=worker"
            };
            let out = ok(l, sudo("k0s", &["token", "create", role, "--expiry=1h"])).await?;
            let token = Secret::new(out.stdout_text().trim().to_string());
            h.put_file(K0S_TOKEN, token.expose().as_bytes(), &root_file(0o600))
                .await?;
            args.extend(["--token-file".to_string(), K0S_TOKEN.to_string()]);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = ok(h, sudo("k0s", &a)).await;
        // The token file is not needed once installed, and must not stay around.
        let cleanup = ok(h, sudo("rm", &["-f", K0S_TOKEN])).await;
        r?;
        cleanup?;
        Ok(prepared.clone())
    }

    async fn undo_install(&self, data: &Value) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let installed = exists(h, "-f", "/etc/systemd/system/k0scontroller.service").await?
            || exists(h, "-f", "/etc/systemd/system/k0sworker.service").await?;
        if installed && exists(h, "-f", K0S_BIN).await? {
            self.cx.log.info(format!("Resetting k0s on {host} ..."));
            if run(h, sudo("k0s", &["status"])).await?.success() {
                ok(h, sudo("k0s", &["stop"])).await?;
            }
            ok(h, sudo("k0s", &["reset"])).await?;
            self.cx.log.info(format!("[ssh] {host}: reset"));
        }
        ok(h, sudo("rm", &["-f", K0S_CONFIG, K0S_TOKEN])).await?;
        if !flag(data, "binaryExisted") {
            ok(h, sudo("rm", &["-f", K0S_BIN])).await?;
        }
        if !flag(data, "dirExisted") && exists(h, "-d", K0S_DIR).await? {
            ok(h, sudo("rmdir", &["--ignore-fail-on-non-empty", K0S_DIR])).await?;
        }
        ok(h, sudo("systemctl", &["daemon-reload"])).await?;
        self.cx
            .log
            .info(format!("[ssh] {host}: reloading service manager"));
        Ok(())
    }

    async fn start_k0s(&self) -> Result<Value, StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        ok(h, sudo("k0s", &["start"])).await?;
        let node = self.cx.node(host)?;
        // Wait for the node to come back Ready under k0s.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let ready = match self.cx.cluster.nodes().await {
                Ok(nodes) => nodes.iter().any(|n| n.name == node && n.ready),
                Err(e) if e.is_transient() => false,
                Err(e) => return Err(e.into()),
            };
            if ready {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StepError::new(format!(
                    "node {node} did not become Ready under k0s within 10 minutes"
                )));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if self.cx.manager(host) {
            ok(h, sudo("k0s", &["status"])).await?;
        }
        self.cx
            .log
            .info(format!("[{host}] node {node} is Ready on k0s"));
        Ok(Value::Null)
    }

    async fn undo_stop(&self, data: &Value) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let names = strs(data, "running");
        if names.is_empty() {
            return Ok(());
        }
        // Start ucp-kv first: the other MKE 3 components need it.
        let mut ordered: Vec<&str> = names.iter().map(String::as_str).collect();
        ordered.sort_by_key(|n| *n != "ucp-kv");
        let mut args = vec!["container", "start"];
        args.extend(ordered.iter().copied());
        ok(h, sudo("docker", &args)).await?;
        if names.iter().any(|n| n == "ucp-kv") {
            self.cx.log.info("Waiting for etcd to be healthy ...");
            let mut a = vec!["exec", "ucp-kv", "etcdctl"];
            a.extend(ETCD_FLAGS);
            a.extend(["endpoint", "health"]);
            ok(h, sudo("docker", &a)).await?;
            self.cx.log.info("etcd health check succeeded!");
        }
        Ok(())
    }

    async fn prepare_remove(&self) -> Result<Value, StepError> {
        let h = self.cx.host(self.target_host()?)?.as_ref();
        let names = lines(
            &ok(
                h,
                sudo(
                    "docker",
                    &[
                        "ps",
                        "-a",
                        "--filter",
                        "name=ucp-",
                        "--format",
                        "{{.Names}}",
                    ],
                ),
            )
            .await?,
        );
        let volumes = lines(
            &ok(
                h,
                sudo(
                    "docker",
                    &[
                        "volume",
                        "ls",
                        "--filter",
                        "name=ucp-",
                        "--format",
                        "{{.Name}}",
                    ],
                ),
            )
            .await?,
        );
        let swarm = ok(h, sudo("docker", &["info", "--format", "{{json .Swarm}}"])).await?;
        let swarm: Value = serde_json::from_slice(&swarm.stdout).unwrap_or(Value::Null);
        // Only names go to the journal: the containers' full configuration (which may hold
        // secrets in its environment) stays on the host, in a root-only file.
        Ok(json!({
            "containers": names,
            "volumes": volumes,
            "swarm": swarm["LocalNodeState"] == "active",
            "dirExisted": exists(h, "-d", HOST_DIR).await?,
        }))
    }

    async fn remove_mke3(&self, prepared: &Value) -> Result<Value, StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let names = strs(prepared, "containers");
        let volumes = strs(prepared, "volumes");
        let swarm = flag(prepared, "swarm");
        self.cx
            .log
            .info(format!("[{host}] removing MKE 3 components"));
        ok(h, sudo("mkdir", &["-p", HOST_DIR])).await?;
        if !names.is_empty() {
            let mut args = vec!["container", "inspect"];
            args.extend(names.iter().map(String::as_str));
            let specs = ok(h, sudo("docker", &args)).await?;
            h.put_file(HOST_SPECS, &specs.stdout, &root_file(0o600))
                .await?;
        }
        // Everything removed below is archived first (ucp-kv is restored from the snapshot).
        let mut paths: Vec<String> = volumes
            .iter()
            .filter(|v| v.as_str() != "ucp-kv")
            .map(|v| format!("volumes/{v}"))
            .collect();
        if swarm {
            paths.push("swarm".into());
        }
        if !paths.is_empty() {
            let mut args = vec!["-C", "/var/lib/docker", "-czf", HOST_ARCHIVE];
            args.extend(paths.iter().map(String::as_str));
            ok(h, sudo("tar", &args)).await?;
        }
        if !names.is_empty() {
            let mut args = vec!["container", "rm", "-f"];
            args.extend(names.iter().map(String::as_str));
            ok(h, sudo("docker", &args)).await?;
        }
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm"];
            args.extend(volumes.iter().map(String::as_str));
            ok(h, sudo("docker", &args)).await?;
        }
        if swarm {
            ok(h, sudo("docker", &["swarm", "leave", "--force"])).await?;
        }
        Ok(prepared.clone())
    }

    async fn undo_remove(&self, data: &Value) -> Result<(), StepError> {
        let host = self.target_host()?;
        let h = self.cx.host(host)?.as_ref();
        let volumes = strs(data, "volumes");
        if exists(h, "-f", HOST_ARCHIVE).await? {
            ok(
                h,
                sudo("tar", &["-C", "/var/lib/docker", "-xzf", HOST_ARCHIVE]),
            )
            .await?;
        }
        if volumes.iter().any(|v| v == "ucp-kv")
            && !exists(
                h,
                "-f",
                "/var/lib/docker/volumes/ucp-kv/_data/datav3/member/snap/db",
            )
            .await?
        {
            self.cx.log.info("Running etcd cleanup service ...");
            ok(
                h,
                sudo(
                    "rm",
                    &["-rf", "/var/lib/docker/volumes/ucp-kv/_data/datav3"],
                ),
            )
            .await?;
            self.cx
                .log
                .info("MKE3 etcd directories successfully cleaned up ...");
            self.cx
                .log
                .info("Restoring etcd from the previously taken system backup ...");
            let snapshot = self.cx.read_state(SNAPSHOT_FILE)?;
            ok(h, sudo("mkdir", &["-p", HOST_DIR])).await?;
            h.put_file(HOST_RESTORE, &snapshot, &root_file(0o600))
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
            self.cx.log.info(format!(
                "Successfully restored etcd with output: {}",
                out.stdout_text().trim()
            ));
        }
        if flag(data, "swarm") {
            // Docker reads the swarm state back at start.
            ok(h, sudo("systemctl", &["restart", "docker"])).await?;
        }
        let present: BTreeSet<String> = lines(
            &ok(
                h,
                sudo(
                    "docker",
                    &[
                        "ps",
                        "-a",
                        "--filter",
                        "name=ucp-",
                        "--format",
                        "{{.Names}}",
                    ],
                ),
            )
            .await?,
        )
        .into_iter()
        .collect();
        let specs: Vec<Value> = if exists(h, "-f", HOST_SPECS).await? {
            let out = ok(h, sudo("cat", &[HOST_SPECS])).await?;
            serde_json::from_slice(&out.stdout)
                .map_err(|e| StepError::new(format!("{host}: {HOST_SPECS}: {e}")))?
        } else {
            // Written before anything was removed: without it, no container was removed.
            Vec::new()
        };
        let mut start = Vec::new();
        for c in &specs {
            let Some(name) = c["Name"]
                .as_str()
                .map(|n| n.trim_start_matches('/').to_string())
            else {
                continue;
            };
            if present.contains(&name) {
                continue;
            }
            if name == "ucp-kv" {
                self.cx.log.info("Deploying etcd server ...");
            }
            let mut args: Vec<String> = vec![
                "container".into(),
                "create".into(),
                "--name".into(),
                name.clone(),
            ];
            if let Some(p) = c["HostConfig"]["RestartPolicy"]["Name"].as_str() {
                args.extend(["--restart".into(), p.to_string()]);
            }
            if let Some(labels) = c["Config"]["Labels"].as_object() {
                for (k, v) in labels {
                    args.extend([
                        "--label".into(),
                        format!("{k}={}", v.as_str().unwrap_or("")),
                    ]);
                }
            }
            for m in c["Mounts"].as_array().cloned().unwrap_or_default() {
                if let (Some(n), Some(d)) = (m["Name"].as_str(), m["Destination"].as_str()) {
                    args.extend(["-v".into(), format!("{n}:{d}")]);
                }
            }
            if let Some(ports) = c["HostConfig"]["PortBindings"].as_object() {
                for p in ports.keys() {
                    let p = p.trim_end_matches("/tcp");
                    args.extend(["-p".into(), format!("{p}:{p}")]);
                }
            }
            args.push(
                c["Config"]["Image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(h, sudo("docker", &a)).await?;
            if c["State"]["Running"].as_bool().unwrap_or(false) {
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
        if !flag(data, "dirExisted") && exists(h, "-d", HOST_DIR).await? {
            ok(h, sudo("rmdir", &["--ignore-fail-on-non-empty", HOST_DIR])).await?;
        }
        Ok(())
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

/// Reads every page of every list the RBAC export needs.
pub async fn export_rbac(api: &dyn Mke3Api) -> Result<ferry_rbac::Export, StepError> {
    const LIMIT: u32 = 100;
    let mut accounts = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let p = api.accounts(start.as_deref(), LIMIT).await?;
        accounts.extend(p.items);
        match p.next {
            Some(n) if !n.is_empty() => start = Some(n),
            _ => break,
        }
    }
    let mut orgs = std::collections::BTreeMap::new();
    for org in accounts.iter().filter(|a| a.is_org) {
        let mut members = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let p = api.org_members(&org.name, start.as_deref(), LIMIT).await?;
            members.extend(p.items);
            match p.next {
                Some(n) if !n.is_empty() => start = Some(n),
                _ => break,
            }
        }
        let mut teams = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let p = api.teams(&org.name, start.as_deref(), LIMIT).await?;
            teams.extend(p.items);
            match p.next {
                Some(n) if !n.is_empty() => start = Some(n),
                _ => break,
            }
        }
        let mut team_exports = Vec::new();
        for team in teams {
            let mut tm = Vec::new();
            let mut start: Option<String> = None;
            loop {
                let p = api
                    .team_members(&org.name, &team.name, start.as_deref(), LIMIT)
                    .await?;
                tm.extend(p.items);
                match p.next {
                    Some(n) if !n.is_empty() => start = Some(n),
                    _ => break,
                }
            }
            team_exports.push(ferry_rbac::export::TeamExport { team, members: tm });
        }
        orgs.insert(
            org.name.clone(),
            ferry_rbac::export::OrgExport {
                members,
                teams: team_exports,
            },
        );
    }
    let roles = api.roles().await?;
    let mut collections = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let p = api.collections(start.as_deref(), LIMIT).await?;
        collections.extend(p.items);
        match p.next {
            Some(n) if !n.is_empty() => start = Some(n),
            _ => break,
        }
    }
    let mut grants = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let p = api.grants(start.as_deref(), LIMIT).await?;
        grants.extend(p.items);
        match p.next {
            Some(n) if !n.is_empty() => start = Some(n),
            _ => break,
        }
    }
    Ok(ferry_rbac::Export {
        version: ferry_rbac::export::EXPORT_VERSION,
        accounts,
        orgs,
        roles,
        collections,
        grants,
    })
}

/// The conversion of the exported config-toml.
pub fn conversion(cx: &Ctx) -> Result<ferry_config_convert::Conversion, StepError> {
    let toml = String::from_utf8(cx.read_state(TOML_FILE)?)
        .map_err(|_| StepError::new("mke3.toml is not UTF-8"))?;
    ferry_config_convert::convert(&toml, &cx.inputs.convert_options(&cx.discovered))
        .map_err(|e| StepError::new(e.to_string()))
}

/// The RBAC translation of the export.
pub fn translation(cx: &Ctx) -> Result<ferry_rbac::Translation, StepError> {
    let text = String::from_utf8(cx.read_state(EXPORT_FILE)?)
        .map_err(|_| StepError::new("the RBAC export is not UTF-8"))?;
    let export = ferry_rbac::Export::from_json(&text).map_err(|e| StepError::new(e.to_string()))?;
    ferry_rbac::translate(&export, &ferry_rbac::Options::default())
        .map_err(|e| StepError::new(e.to_string()))
}

/// The Upgrade Summary and the MKE 4 YAML of a completed run.
pub fn summary(cx: &Ctx) -> Result<(String, String), StepError> {
    let c = conversion(cx)?;
    let t = translation(cx)?;
    let yaml = ferry_config_convert::to_yaml(&c.config)
        .map_err(|e| StepError::new(format!("cannot render mke4.yaml: {e}")))?;
    Ok((
        crate::summary::upgrade_summary(&c, &t.report, &cx.discovered.mke3_version),
        yaml,
    ))
}
