//! The steps of a node OS replacement on a k0s cluster, per host.
//!
//! Remove-before-add: keep the host's k0s configuration in the state directory; cordon and
//! drain its Node; remove it from the cluster (its etcd member removed through another
//! controller, k0s stopped and reset, its Node deleted); reinstall its OS and wait until it
//! answers with a changed `/etc/os-release` (its new host key recorded for it); add it back
//! (the k0s binary, the configuration, a join token made on a healthy controller, `k0s install`
//! with the flags its service had); wait until it is Ready (a controller: its etcd member
//! listed); restore its cordon state.
//!
//! Add-before-remove: the new host joins with the role, flags and configuration of the host it
//! replaces and is waited for; then the old host is drained and removed.
//!
//! Undo: a removed host is added back, on whatever OS it has by then (a reinstall cannot be
//! taken back: that step is one-way, and its undo finishes adding the host back); an added new
//! host is removed again. Every undo checks the current state first, so it is idempotent and
//! works after a partial apply. `docs/node-os.md` lists the commands of each step.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use ferry_core::cluster::{DrainOptions, ObjectRef};
use ferry_core::engine::{Gate, Reversibility, Step, StepError, StepKey, from_data, to_data};
use ferry_core::exec::{Cmd, ExecError, FileSpec, HostExec, shell_quote};
use ferry_core::facts::{self, InitSystem};
use ferry_core::k0s::{K0S_BIN, K0S_TOKEN, K0sBinary, K0sHost, Role, exists, ok};
use ferry_core::node::{DrainStep, wait_ready};
use ferry_core::run::RunContext;

use crate::flow::{Backend, Journaled, PlannedHost};
use crate::kubean::{self as kb, KubeanSetup, Op};

/// How often a host or a node is polled.
const POLL: Duration = Duration::from_secs(1);
/// How often a host that is being reinstalled is probed. Slow on purpose: OpenSSH 9.8+ counts
/// connections that end without a login against the source address (`PerSourcePenalties`).
const REINSTALL_POLL: Duration = Duration::from_secs(5);
/// Where the hosts' k0s configuration files are kept, inside the state directory.
pub const CONFIG_DIR: &str = "k0s-config";

/// The step kinds, with their stable ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Save,
    Drain,
    Remove,
    Reinstall,
    Join,
    Add,
    WaitReady,
    RestoreCordon,
    KubeanMoveFirstLast,
    KubeanRemove,
    KubeanClusterInfo,
    KubeanAdd,
}

const ALL: [Kind; 12] = [
    Kind::Save,
    Kind::Drain,
    Kind::Remove,
    Kind::Reinstall,
    Kind::Join,
    Kind::Add,
    Kind::WaitReady,
    Kind::RestoreCordon,
    Kind::KubeanMoveFirstLast,
    Kind::KubeanRemove,
    Kind::KubeanClusterInfo,
    Kind::KubeanAdd,
];

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::Save => "os.node.save-config",
            Kind::Drain => "os.node.drain",
            Kind::Remove => "os.k0s.remove",
            Kind::Reinstall => "os.node.reinstall",
            Kind::Join => "os.k0s.join",
            Kind::Add => "os.k0s.add",
            Kind::WaitReady => "os.node.wait-ready",
            Kind::RestoreCordon => "os.node.restore-cordon",
            Kind::KubeanMoveFirstLast => "os.kubean.move-master1-last",
            Kind::KubeanRemove => "os.kubean.remove",
            Kind::KubeanClusterInfo => "os.kubean.cluster-info",
            Kind::KubeanAdd => "os.kubean.add",
        }
    }

    pub fn from_id(id: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.id() == id)
    }

    pub fn description(self) -> &'static str {
        match self {
            Kind::Save => "keep the host's k0s configuration file in the state directory",
            Kind::Drain => "cordon and drain the node (PodDisruptionBudgets respected)",
            Kind::Remove => {
                "remove the host from the cluster: stop k0s, remove its etcd member through another controller, k0s reset, delete its Node"
            }
            Kind::Reinstall => {
                "reinstall the OS (--reinstall-command, or wait for the operator) until the host answers on SSH with a changed /etc/os-release; its new host key is recorded for it alone"
            }
            Kind::Join => {
                "add the host back: the k0s binary and configuration, a join token made on a healthy controller, k0s install with its former flags, start"
            }
            Kind::Add => {
                "add the new host with the role, flags and configuration of the host it replaces (join token from a healthy controller), start"
            }
            Kind::WaitReady => {
                "wait until the node is Ready (a controller: its etcd member listed)"
            }
            Kind::RestoreCordon => {
                "uncordon the node (cordon it again if it was cordoned before the run)"
            }
            Kind::KubeanMoveFirstLast => {
                "point the cluster's kubeconfig in the management cluster at the second master, and move master1 last in kube_control_plane, kube_node and etcd of the hosts-conf ConfigMap"
            }
            Kind::KubeanRemove => {
                "ClusterOperation remove-node.yml -e node=NAME, post-hooks clean-kube-apiserver.yml (ConfigMap pb-clean-kube-apiserver) and cluster-info.yml; watched until it succeeds"
            }
            Kind::KubeanClusterInfo => {
                "kube-public/cluster-info's server and kube-system/kubeadm-config's controlPlaneEndpoint: the second master"
            }
            Kind::KubeanAdd => {
                "ClusterOperation cluster.yml --limit=etcd,kube_control_plane (a control-plane node; pre-hook disable-firewalld.yml, post-hooks upgrade-cluster.yml, cluster-info.yml) or scale.yml --limit=NAME (a worker); watched until it succeeds"
            }
        }
    }

    pub fn reversibility(self) -> Reversibility {
        match self {
            Kind::Save | Kind::Join | Kind::WaitReady | Kind::RestoreCordon | Kind::KubeanAdd => {
                Reversibility::NoOp
            }
            Kind::Reinstall => Reversibility::OneWay {
                why: "the old OS is gone once the host is reinstalled; a rollback adds the host back on its new OS".into(),
            },
            Kind::Drain
            | Kind::Remove
            | Kind::Add
            | Kind::KubeanMoveFirstLast
            | Kind::KubeanRemove
            | Kind::KubeanClusterInfo => Reversibility::Reversible,
        }
    }
}

/// What the steps share.
#[derive(Debug)]
pub struct Ctx {
    pub journaled: Journaled,
    pub run: RunContext,
    /// kubean: the management cluster's API.
    pub management: Option<Arc<dyn ferry_core::ClusterApi>>,
}

impl Ctx {
    fn planned(&self, host: &str) -> Result<&PlannedHost, StepError> {
        self.journaled
            .host(host)
            .ok_or_else(|| StepError::new(format!("host {host} is not in the run's plan")))
    }

    fn exec(&self, host: &str) -> Result<&Arc<dyn HostExec>, StepError> {
        self.run.host(host)
    }

    /// k0s on `host`, with the service manager the host has now (a reinstalled host may have
    /// another one).
    async fn k0s(&self, host: &str) -> Result<(Arc<dyn HostExec>, InitSystem), StepError> {
        let exec = self.exec(host)?.clone();
        let init = facts::init_system(exec.as_ref()).await?;
        Ok((exec, init))
    }

    /// A controller other than `except` that runs k0s and whose etcd answers: where tokens are
    /// made and members removed. The hosts of the plan first, then new hosts already added.
    async fn healthy_controller(
        &self,
        except: &[&str],
    ) -> Result<(String, Arc<dyn HostExec>, InitSystem), StepError> {
        let mut why = Vec::new();
        for h in self
            .journaled
            .hosts
            .iter()
            .chain(&self.journaled.new_hosts)
            .filter(|h| h.controller && !except.contains(&h.name.as_str()))
        {
            let Ok(exec) = self.exec(&h.name) else {
                continue;
            };
            let init = match facts::init_system(exec.as_ref()).await {
                Ok(i) => i,
                Err(e) => {
                    why.push(format!("{}: {e}", h.name));
                    continue;
                }
            };
            let k = K0sHost::new(exec.as_ref(), init);
            match k.etcd_members().await {
                Ok(_) => return Ok((h.name.clone(), exec.clone(), init)),
                Err(e) => why.push(format!("{}: {}", h.name, e.chain())),
            }
        }
        Err(StepError::new(format!(
            "no healthy controller besides {} (k0s running, etcd answering): {}",
            except.join(", "),
            if why.is_empty() {
                "there is none".to_string()
            } else {
                why.join("; ")
            }
        )))
    }

    /// The host whose configuration file `host` gets: itself, or for a new host the one it
    /// replaces.
    fn config_owner<'a>(&'a self, host: &'a str) -> &'a str {
        self.journaled
            .hosts
            .iter()
            .find(|h| h.replaced_by.as_deref() == Some(host))
            .map_or(host, |h| h.name.as_str())
    }

    fn config_file(&self, host: &str) -> std::path::PathBuf {
        let safe: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.run
            .state
            .path()
            .join(CONFIG_DIR)
            .join(format!("{safe}.yaml"))
    }
}

/// One step instance.
pub fn step(key: StepKey, kind: Kind, cx: &Arc<Ctx>) -> Result<Arc<dyn Step>, StepError> {
    let host = key
        .host()
        .ok_or_else(|| StepError::new(format!("{key} has no host")))?
        .to_string();
    if kind == Kind::Drain {
        let node = cx
            .planned(&host)?
            .node
            .clone()
            .ok_or_else(|| StepError::new(format!("host {host} has no node to drain")))?;
        return Ok(Arc::new(DrainStep::new(
            key,
            node,
            cx.run.cluster.clone(),
            DrainOptions {
                timeout: Duration::from_secs(cx.journaled.drain_timeout_secs),
                delete_emptydir_data: cx.journaled.delete_emptydir_data,
                force_bare_pods: cx.journaled.force_bare_pods,
            },
            cx.run.log.clone(),
        )));
    }
    Ok(Arc::new(NodeStep {
        key,
        kind,
        host,
        cx: cx.clone(),
    }))
}

#[derive(Debug)]
struct NodeStep {
    key: StepKey,
    kind: Kind,
    host: String,
    cx: Arc<Ctx>,
}

/// What the reinstall found: the new OS and key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reinstalled {
    pretty_name: String,
    old_keys: Vec<String>,
    new_keys: Vec<String>,
}

fn sudo(program: &str, args: &[&str]) -> Cmd {
    Cmd::new(program).args(args.iter().copied()).sudo()
}

/// The address in an etcd peer URL (`https://10.0.0.1:2380` → `10.0.0.1`).
fn peer_address(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
    Some(host.trim_start_matches('[').trim_end_matches(']'))
}

/// `/etc/os-release` differs from what the plan recorded (ID or VERSION_ID).
/// `/etc/os-release` is the new OS: the target's ID and VERSION_ID when the run names one,
/// else any other ID or VERSION_ID than the plan recorded.
fn is_new_os(p: &PlannedHost, target: Option<&crate::flow::TargetOs>, text: &str) -> bool {
    let o = facts::parse_os_release(text);
    match target {
        Some(t) => t.matches(&o.id, &o.version_id),
        None => {
            (o.id.as_str(), o.version_id.as_str()) != (p.os_id.as_str(), p.os_version_id.as_str())
        }
    }
}

impl NodeStep {
    fn planned(&self) -> Result<&PlannedHost, StepError> {
        self.cx.planned(&self.host)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cx.journaled.ready_timeout_secs)
    }

    fn log(&self, msg: impl std::fmt::Display) {
        self.cx.run.log.info(format!("[{}] {msg}", self.host));
    }

    /// Keeps the host's k0s configuration file in the state directory.
    async fn save(&self) -> Result<(), StepError> {
        let p = self.planned()?;
        let Some(path) = &p.k0s.config else {
            return Ok(());
        };
        let dest = self.cx.config_file(&self.host);
        let out = self.cx.exec(&self.host)?.run(&sudo("cat", &[path])).await?;
        if !out.success() {
            // kept by an earlier attempt of this run (the host may be reinstalled by now)
            if dest.is_file() {
                return Ok(());
            }
            return Err(StepError::new(format!(
                "{}: cannot read its k0s configuration {path}: {}",
                self.host,
                out.stderr_text().trim()
            )));
        }
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = dest.with_extension("yaml.tmp");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&out.stdout)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dest)
        };
        write().map_err(|e| {
            StepError::caused(
                format!("cannot keep {path} of {} in {}", self.host, dest.display()),
                e,
                false,
            )
        })?;
        self.log(format!(
            "k0s configuration {path} kept in {}",
            dest.display()
        ));
        Ok(())
    }

    /// Stops k0s on `host`, removes its etcd member through another controller, resets it and
    /// deletes its Node. Each part checks first: it runs again safely.
    async fn remove(&self, host: &str) -> Result<(), StepError> {
        let p = self.cx.planned(host)?;
        let (exec, init) = self.cx.k0s(host).await?;
        let k = K0sHost::new(exec.as_ref(), init);
        k.stop_if_running().await?;
        if p.controller {
            let (via, vexec, vinit) = self.cx.healthy_controller(&[host]).await?;
            let v = K0sHost::new(vexec.as_ref(), vinit);
            let members = v.etcd_members().await?;
            if let Some(url) = members
                .iter()
                .find(|(m, _)| m.eq_ignore_ascii_case(&p.hostname))
                .map(|(_, u)| u.clone())
            {
                let addr = peer_address(&url).ok_or_else(|| {
                    StepError::new(format!("etcd peer URL {url} names no address"))
                })?;
                v.etcd_leave(addr).await?;
                self.cx.run.log.info(format!(
                    "[{host}] etcd member {} ({url}) removed through {via}",
                    p.hostname
                ));
            }
        }
        if k.installed().await?.is_some() {
            k.reset().await?;
        }
        if let Some(node) = &p.node {
            let gone = self
                .cx
                .run
                .cluster
                .delete(&ObjectRef {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    namespace: None,
                    name: node.clone(),
                })
                .await?;
            if gone {
                self.cx
                    .run
                    .log
                    .info(format!("[{host}] Node {node} deleted"));
            }
        }
        Ok(())
    }

    /// The k0s binary the host should run: in place, or copied / downloaded.
    async fn ensure_binary(
        &self,
        host: &str,
        exec: &dyn HostExec,
        init: InitSystem,
    ) -> Result<(), StepError> {
        let p = self.cx.planned(host)?;
        let have = if exists(exec, "-x", K0S_BIN).await? {
            exec.run(&Cmd::new(K0S_BIN).arg("version"))
                .await?
                .stdout_text()
                .trim()
                .to_string()
        } else {
            String::new()
        };
        if have == p.k0s.version {
            return Ok(());
        }
        let from = self
            .cx
            .journaled
            .k0s_binary
            .clone()
            .unwrap_or(K0sBinary::Release {
                version: p.k0s.version.clone(),
            });
        K0sHost::new(exec, init)
            .put_binary(&from, &p.machine)
            .await?;
        let got = exec
            .run(&Cmd::new(K0S_BIN).arg("version"))
            .await?
            .stdout_text()
            .trim()
            .to_string();
        if got != p.k0s.version {
            return Err(StepError::new(format!(
                "{host}: the k0s binary put in place says it is {got:?}, not {} (the version the host ran)",
                p.k0s.version
            )));
        }
        Ok(())
    }

    /// Makes `host` a member of the cluster again (or for the first time, a new host), as the
    /// plan describes it: whatever part is already done is kept.
    async fn ensure_joined(&self, host: &str) -> Result<(), StepError> {
        let p = self.cx.planned(host)?;
        let (exec, init) = self.cx.k0s(host).await?;
        let k = K0sHost::new(exec.as_ref(), init);
        if k.running().await? {
            if !p.controller {
                return Ok(());
            }
            match k.etcd_members().await {
                Ok(m) if m.keys().any(|n| n.eq_ignore_ascii_case(&p.hostname)) => return Ok(()),
                // running but no member (removed, or never joined): start over
                _ => k.stop().await?,
            }
        }
        if k.installed().await?.is_some() {
            let keep = if p.controller {
                let (_, vexec, vinit) = self.cx.healthy_controller(&[host]).await?;
                K0sHost::new(vexec.as_ref(), vinit)
                    .etcd_members()
                    .await?
                    .keys()
                    .any(|n| n.eq_ignore_ascii_case(&p.hostname))
            } else {
                true
            };
            if keep {
                // stopped, not removed: it starts as it was
                k.start().await?;
                return self.wait_running(host, &k, &p.k0s.version).await;
            }
            k.reset().await?;
        }
        self.ensure_binary(host, exec.as_ref(), init).await?;
        let mut flags = p.k0s.flags.clone();
        if let Some(path) = &p.k0s.config {
            let owner = self.cx.config_owner(host);
            let file = self.cx.config_file(owner);
            let mut bytes = std::fs::read(&file).map_err(|e| {
                StepError::caused(
                    format!(
                        "the k0s configuration of {owner} kept in {} cannot be read",
                        file.display()
                    ),
                    e,
                    false,
                )
            })?;
            if owner != host {
                bytes = readdress(&bytes, &self.cx.planned(owner)?.address, &p.address);
            }
            if let Some((dir, _)) = path.rsplit_once('/') {
                if !dir.is_empty() {
                    ok(exec.as_ref(), sudo("mkdir", &["-p", dir])).await?;
                }
            }
            exec.put_file(path, &bytes, &FileSpec::root(0o600)).await?;
            flags.push(format!("--config={path}"));
        }
        let (via, vexec, vinit) = self.cx.healthy_controller(&[host]).await?;
        let v = K0sHost::new(vexec.as_ref(), vinit);
        if p.controller {
            // a member left behind with this host's address would refuse the join
            let members = v.etcd_members().await?;
            if let Some(url) = members
                .iter()
                .find(|(m, _)| m.eq_ignore_ascii_case(&p.hostname))
                .map(|(_, u)| u.clone())
            {
                if let Some(addr) = peer_address(&url) {
                    v.etcd_leave(addr).await?;
                }
            }
        }
        let role = if p.controller {
            Role::Controller { worker: p.worker }
        } else {
            Role::Worker
        };
        let token = v.token_create(role, "1h").await?;
        let dir = K0S_TOKEN.rsplit_once('/').map_or("/etc/k0s", |(d, _)| d);
        ok(exec.as_ref(), sudo("mkdir", &["-p", "-m", "0700", dir])).await?;
        k.put_token(&token).await?;
        flags.push(format!("--token-file={K0S_TOKEN}"));
        k.install_with(&p.k0s.role, &flags).await?;
        k.start().await?;
        self.cx.run.log.info(format!(
            "[{host}] k0s {} installed as a {} with a join token made on {via}, started",
            p.k0s.version,
            p.role()
        ));
        self.wait_running(host, &k, &p.k0s.version).await
    }

    /// Waits until `k0s status` answers with `version`.
    async fn wait_running(
        &self,
        host: &str,
        k: &K0sHost<'_>,
        version: &str,
    ) -> Result<(), StepError> {
        let deadline = tokio::time::Instant::now() + self.timeout();
        loop {
            let s = k.status().await?;
            match &s {
                Some(s) if s.version == version => return Ok(()),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(StepError::new(format!(
                        "{host}: k0s did not run {version} within {}s (k0s status: {})",
                        self.timeout().as_secs(),
                        s.map_or("not running".to_string(), |s| format!(
                            "version {}",
                            s.version
                        ))
                    )));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The node is Ready and, for a controller, its etcd member is listed.
    async fn wait_ready(&self, host: &str) -> Result<(), StepError> {
        let p = self.cx.planned(host)?;
        if let Some(node) = &p.node {
            wait_ready(self.cx.run.cluster.as_ref(), node, self.timeout(), POLL).await?;
        }
        if p.controller && self.cx.journaled.backend == Backend::K0s {
            let (exec, init) = self.cx.k0s(host).await?;
            let k = K0sHost::new(exec.as_ref(), init);
            let deadline = tokio::time::Instant::now() + self.timeout();
            loop {
                match k.etcd_members().await {
                    Ok(m) if m.keys().any(|n| n.eq_ignore_ascii_case(&p.hostname)) => break,
                    r if tokio::time::Instant::now() >= deadline => {
                        return Err(StepError::new(format!(
                            "{host}: etcd does not list member {} within {}s ({})",
                            p.hostname,
                            self.timeout().as_secs(),
                            match r {
                                Ok(m) => format!(
                                    "members: {}",
                                    m.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                                Err(e) => e.chain(),
                            }
                        )));
                    }
                    _ => tokio::time::sleep(POLL).await,
                }
            }
        }
        Ok(())
    }

    /// The node's cordon state as before the run.
    async fn restore_cordon(&self, host: &str) -> Result<(), StepError> {
        let p = self.cx.planned(host)?;
        if let Some(node) = &p.node {
            if p.cordoned {
                self.cx.run.cluster.cordon(node).await?;
            } else {
                self.cx.run.cluster.uncordon(node).await?;
            }
        }
        Ok(())
    }

    /// Probes the host with whatever key it presents: `Some` when it answers with a changed
    /// os-release (and its key is then recorded for it).
    async fn probe_new_os(&self) -> Result<Option<Reinstalled>, StepError> {
        let p = self.planned()?.clone();
        let exec = self.cx.exec(&self.host)?;
        let target = self.cx.journaled.target_os.clone();
        let check = move |t: &str| is_new_os(&p, target.as_ref(), t);
        match exec.read_after_reinstall("/etc/os-release", &check).await {
            Ok(r) if r.accepted => Ok(Some(Reinstalled {
                pretty_name: facts::parse_os_release(&r.content).pretty_name,
                old_keys: r.key.old,
                new_keys: r.key.new,
            })),
            Ok(_) => Ok(None),
            // down, booting, or up without our login yet: keep waiting
            Err(
                ExecError::Unreachable { .. }
                | ExecError::Timeout { .. }
                | ExecError::Auth { .. }
                | ExecError::Disconnected { .. }
                | ExecError::Io { .. }
                | ExecError::Sudo { .. },
            ) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs the reinstall command on this machine, its output logged.
    async fn run_reinstall_command(
        &self,
        command: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(), StepError> {
        let p = self.planned()?;
        let node = p.node.clone().unwrap_or_else(|| p.hostname.clone());
        let subs = [
            ("{host}", p.name.as_str()),
            ("{address}", p.address.as_str()),
            ("{hostname}", p.hostname.as_str()),
            ("{node}", node.as_str()),
        ];
        let mut line = command.to_string();
        let mut used = false;
        for (k, v) in subs {
            if line.contains(k) {
                used = true;
                line = line.replace(k, &shell_quote(v));
            }
        }
        if !used {
            line = format!("{line} {}", shell_quote(&p.name));
        }
        self.log(format!("reinstalling: {line}"));
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .env("FERRY_HOST", &p.name)
            .env("FERRY_HOST_ADDRESS", &p.address)
            .env("FERRY_NODE", &node)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                StepError::caused(
                    format!("cannot run the reinstall command {line:?}"),
                    e,
                    false,
                )
            })?;
        let log = self.cx.run.log.clone();
        let host = self.host.clone();
        let pipe = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
            let log = log.clone();
            let host = host.clone();
            async move {
                use tokio::io::AsyncBufReadExt as _;
                let Some(r) = r else { return };
                let mut lines = tokio::io::BufReader::new(r).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    log.info(format!("[{host}] reinstall: {l}"));
                }
            }
        };
        let out = pipe(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        );
        let err = pipe(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        );
        let waited = tokio::time::timeout_at(deadline, async {
            let (_, _, status) = tokio::join!(out, err, child.wait());
            status
        })
        .await;
        match waited {
            Err(_) => Err(StepError::new(format!(
                "{}: the reinstall command did not finish within --reinstall-timeout",
                self.host
            ))),
            Ok(Err(e)) => Err(StepError::caused("the reinstall command", e, false)),
            Ok(Ok(st)) if st.success() => Ok(()),
            Ok(Ok(st)) => Err(StepError::new(format!(
                "{}: the reinstall command failed ({st})",
                self.host
            ))),
        }
    }

    /// The reinstall: run the command (or wait for the operator), then wait until the host
    /// answers with a changed os-release; take its lock again.
    async fn reinstall(&self) -> Result<Value, StepError> {
        let p = self.planned()?.clone();
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.cx.journaled.reinstall_timeout_secs);
        // a resumed run: the reinstall may be done already
        let mut found = self.probe_new_os().await?;
        if found.is_none() {
            match &self.cx.journaled.reinstall_command {
                Some(c) => self.run_reinstall_command(c, deadline).await?,
                None => self.log(format!(
                    "waiting for the host to be reinstalled (it now runs {}): the run goes on once it answers on SSH with another /etc/os-release, within {}s",
                    p.os_pretty_name, self.cx.journaled.reinstall_timeout_secs
                )),
            }
        }
        let mut said_old = false;
        let r = loop {
            if let Some(r) = found.take() {
                break r;
            }
            found = self.probe_new_os().await?;
            if found.is_some() {
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StepError::new(format!(
                    "{}: not back with a new OS within {}s (it should answer on SSH at {} with an /etc/os-release other than {})",
                    self.host,
                    self.cx.journaled.reinstall_timeout_secs,
                    p.address,
                    p.os_pretty_name
                )));
            }
            if !said_old && self.cx.journaled.reinstall_command.is_some() {
                self.log("the reinstall command finished; waiting for the host to answer with its new OS");
                said_old = true;
            }
            tokio::time::sleep(REINSTALL_POLL).await;
        };
        let exec = self.cx.exec(&self.host)?;
        ferry_core::lock::acquire_host(
            exec.as_ref(),
            &self.cx.run.owner,
            ferry_core::lock::HOST_LOCK_STALE,
        )
        .await
        .map_err(|e| {
            StepError::new(format!(
                "{}: cannot lock the reinstalled host: {e}",
                self.host
            ))
        })?;
        self.log(format!(
            "reinstalled: {} -> {}; host key {} replaced by {} (for this host only)",
            p.os_pretty_name,
            r.pretty_name,
            r.old_keys.join(", "),
            r.new_keys.join(", ")
        ));
        to_data(&r)
    }

    /// For an undo: waits until the host answers, with its recorded key, or with a new one
    /// and a changed os-release (reinstalled meanwhile).
    async fn wait_back(&self, host: &str) -> Result<(), StepError> {
        let p = self.cx.planned(host)?.clone();
        let exec = self.cx.exec(host)?.clone();
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.cx.journaled.reinstall_timeout_secs);
        loop {
            match exec.run(&Cmd::new("true")).await {
                Ok(_) => return Ok(()),
                Err(ExecError::HostKey { .. }) => {
                    let target = self.cx.journaled.target_os.clone();
                    let check = |t: &str| is_new_os(&p, target.as_ref(), t);
                    let r = exec.read_after_reinstall("/etc/os-release", &check).await?;
                    if r.accepted {
                        self.cx.run.log.info(format!(
                            "[{host}] answers as {}, reinstalled: its new key is recorded",
                            facts::parse_os_release(&r.content).pretty_name
                        ));
                        let _ = ferry_core::lock::acquire_host(
                            exec.as_ref(),
                            &self.cx.run.owner,
                            ferry_core::lock::HOST_LOCK_STALE,
                        )
                        .await;
                        return Ok(());
                    }
                    return Err(StepError::new(format!(
                        "{host} presents another host key but still runs {}: not a reinstall ferry can vouch for; check the host and its key",
                        p.os_pretty_name
                    )));
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(StepError::new(format!(
                        "{host} does not answer ({e}); once it is back, run `ferry rollback` (or `ferry resume`) again"
                    )));
                }
                Err(_) => tokio::time::sleep(REINSTALL_POLL).await,
            }
        }
    }

    /// Adds a removed host back (on whatever OS it runs now) and brings its node back into
    /// service as it was.
    async fn add_back(&self, host: &str) -> Result<(), StepError> {
        self.wait_back(host).await?;
        match &self.cx.journaled.backend {
            Backend::K0s => self.ensure_joined(host).await?,
            Backend::Kubean(_) => self.kubean_add(host, "readd").await?,
        }
        self.wait_ready(host).await?;
        self.restore_cordon(host).await
    }
}

/// Where master1 stood in each group of the hosts-conf before it was moved last.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MovedLast {
    was: std::collections::BTreeMap<String, usize>,
    #[serde(default)]
    kubeconf_changed: bool,
}

impl NodeStep {
    fn kubean(&self) -> Result<(&KubeanSetup, &Arc<dyn ferry_core::ClusterApi>), StepError> {
        let Backend::Kubean(s) = &self.cx.journaled.backend else {
            return Err(StepError::new("a kubean step in a k0s run"));
        };
        let m = self
            .cx
            .management
            .as_ref()
            .ok_or_else(|| StepError::new("the management cluster's API is not connected"))?;
        Ok((s, m))
    }

    fn inventory_name<'a>(&self, p: &'a PlannedHost) -> Result<&'a str, StepError> {
        p.inventory
            .as_deref()
            .ok_or_else(|| StepError::new(format!("{} has no inventory name", p.name)))
    }

    /// Runs the operation `op` on `node` under the name `base` (or, when an operation of that
    /// name failed before, `base-2`, `base-3`...: kubean never runs one twice).
    async fn run_op(&self, base: &str, op: Op, node: &str) -> Result<(), StepError> {
        let (s, m) = self.kubean()?;
        let mut n = 1;
        loop {
            let name = if n == 1 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            };
            let failed = m
                .get(&kb::operation(&name))
                .await?
                .is_some_and(|o| o["status"]["status"] == "Failed");
            if failed {
                n += 1;
                continue;
            }
            let object = kb::operation_object(s, &name, op, node);
            let log = self.cx.run.log.clone();
            return kb::run_operation(m, s, &name, object, &log)
                .await
                .map_err(|e| e.context(format!("[{}]", self.host)));
        }
    }

    async fn kubean_remove(&self, host: &str) -> Result<(), StepError> {
        let (s, m) = self.kubean()?;
        let p = self.cx.planned(host)?;
        let inv = self.inventory_name(p)?;
        kb::ensure_clean_apiserver(m.as_ref(), s).await?;
        let base = kb::dns_name(&[&s.cluster, "ferry-remove", inv, &s.suffix]);
        self.run_op(&base, Op::Remove, inv).await
    }

    /// Adds `host` through kubean unless its Node is there and Ready.
    async fn kubean_add(&self, host: &str, verb: &str) -> Result<(), StepError> {
        let (s, _) = self.kubean()?;
        let p = self.cx.planned(host)?;
        let inv = self.inventory_name(p)?;
        let ready = self
            .cx
            .run
            .cluster
            .nodes()
            .await?
            .iter()
            .any(|n| n.name == inv && n.ready);
        if ready {
            return Ok(());
        }
        let op = if p.controller {
            Op::AddControlPlane
        } else {
            Op::AddWorker
        };
        let base = kb::dns_name(&[&s.cluster, &format!("ferry-{verb}"), inv, &s.suffix]);
        self.run_op(&base, op, inv).await
    }

    /// Where master1 stands in each group now (the prepare of the move).
    async fn kubean_positions(&self) -> Result<Value, StepError> {
        let (s, m) = self.kubean()?;
        let p = self.planned()?;
        let inv = self.inventory_name(p)?;
        let text = kb::cm_data(m.as_ref(), &s.hosts_conf, "hosts.yml")
            .await?
            .ok_or_else(|| StepError::new("the hosts-conf ConfigMap has no hosts.yml"))?;
        let (_, was) = kb::move_host(&text, inv, &Default::default()).map_err(StepError::new)?;
        to_data(&MovedLast {
            was,
            kubeconf_changed: false,
        })
    }

    /// master1's stand-in: the second master's address.
    fn second_address(&self) -> Result<String, StepError> {
        let (s, _) = self.kubean()?;
        s.second
            .clone()
            .ok_or_else(|| StepError::new("no second control-plane node to stand in for master1"))
    }

    async fn kubean_move_first_last(&self) -> Result<Value, StepError> {
        let (s, m) = self.kubean()?;
        let p = self.planned()?;
        let inv = self.inventory_name(p)?;
        let second = self.second_address()?;
        let mut kubeconf_changed = false;
        if let Some(r) = &s.kubeconf {
            if let Some(text) = kb::cm_data(m.as_ref(), r, "config").await? {
                let new = text.replace(&format!("://{}:", p.address), &format!("://{second}:"));
                if new != text {
                    m.merge_patch(
                        &kb::configmap(r),
                        &serde_json::json!({"data": {"config": new}}),
                    )
                    .await?;
                    kubeconf_changed = true;
                    self.log(format!(
                        "the kubeconfig of cluster {} ({}/{}) now points at {second}",
                        s.cluster, r.namespace, r.name
                    ));
                }
            }
        }
        let text = kb::cm_data(m.as_ref(), &s.hosts_conf, "hosts.yml")
            .await?
            .ok_or_else(|| StepError::new("the hosts-conf ConfigMap has no hosts.yml"))?;
        let (new, was) = kb::move_host(&text, inv, &Default::default()).map_err(StepError::new)?;
        if new != text {
            m.merge_patch(
                &kb::configmap(&s.hosts_conf),
                &serde_json::json!({"data": {"hosts.yml": new}}),
            )
            .await?;
            self.log(format!(
                "{inv} moved last in {} of {}/{}",
                kb::REORDERED.join(", "),
                s.hosts_conf.namespace,
                s.hosts_conf.name
            ));
        }
        to_data(&MovedLast {
            was,
            kubeconf_changed,
        })
    }

    async fn kubean_move_back(&self, data: &Value, partial: bool) -> Result<(), StepError> {
        let (s, m) = self.kubean()?;
        let p = self.planned()?;
        let inv = self.inventory_name(p)?;
        let moved: MovedLast = from_data(data)?;
        let text = kb::cm_data(m.as_ref(), &s.hosts_conf, "hosts.yml")
            .await?
            .ok_or_else(|| StepError::new("the hosts-conf ConfigMap has no hosts.yml"))?;
        let (back, _) = kb::move_host(&text, inv, &moved.was).map_err(StepError::new)?;
        if back != text {
            m.merge_patch(
                &kb::configmap(&s.hosts_conf),
                &serde_json::json!({"data": {"hosts.yml": back}}),
            )
            .await?;
        }
        if let (Some(r), true) = (&s.kubeconf, moved.kubeconf_changed || partial) {
            let second = self.second_address()?;
            if let Some(text) = kb::cm_data(m.as_ref(), r, "config").await? {
                let first = format!("://{}:", p.address);
                if partial && text.contains(&first) {
                    return Ok(());
                }
                let new = text.replace(&format!("://{second}:"), &first);
                if new != text {
                    m.merge_patch(
                        &kb::configmap(r),
                        &serde_json::json!({"data": {"config": new}}),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// The workload cluster's `kube-public/cluster-info` and `kube-system/kubeadm-config` name
    /// the second master (or, `back`, master1 again).
    async fn kubean_cluster_info(&self, back: bool) -> Result<Value, StepError> {
        let p = self.planned()?;
        let second = self.second_address()?;
        let (from, to) = if back {
            (second.as_str(), p.address.as_str())
        } else {
            (p.address.as_str(), second.as_str())
        };
        let cluster = self.cx.run.cluster.clone();
        // (namespace, name, key, the text before the address)
        let edits = [
            ("kube-public", "cluster-info", "kubeconfig", "://"),
            (
                "kube-system",
                "kubeadm-config",
                "ClusterConfiguration",
                "controlPlaneEndpoint: ",
            ),
        ];
        for (ns, name, key, before) in edits {
            let r = kb::CmRef {
                name: name.into(),
                namespace: ns.into(),
            };
            let Some(text) = kb::cm_data(cluster.as_ref(), &r, key).await? else {
                continue;
            };
            let new = text.replace(&format!("{before}{from}:"), &format!("{before}{to}:"));
            if new != text {
                cluster
                    .merge_patch(&kb::configmap(&r), &serde_json::json!({"data": {key: new}}))
                    .await?;
                self.log(format!("{ns}/{name} ({key}) now names {to}"));
            }
        }
        Ok(Value::Null)
    }
}

/// A copied k0s configuration with the old host's address replaced by the new host's (its
/// `spec.api.address`, SANs and the like name the machine).
fn readdress(bytes: &[u8], old: &str, new: &str) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) if !old.is_empty() => text.replace(old, new).into_bytes(),
        _ => bytes.to_vec(),
    }
}

#[async_trait::async_trait]
impl Step for NodeStep {
    fn key(&self) -> &StepKey {
        &self.key
    }

    fn reversibility(&self) -> Reversibility {
        self.kind.reversibility()
    }

    async fn prepare(&self) -> Result<Value, StepError> {
        match self.kind {
            Kind::KubeanMoveFirstLast => self.kubean_positions().await,
            _ => Ok(Value::Null),
        }
    }

    fn resumes_by_reapplying(&self) -> bool {
        // the reinstall checks whether it is done before it runs the command again; undoing it
        // first would add the host back only to take it out again
        self.kind == Kind::Reinstall
    }

    async fn apply(&self, prepared: &Value) -> Result<Value, StepError> {
        match self.kind {
            Kind::Save => self.save().await?,
            Kind::Remove => self.remove(&self.host).await?,
            Kind::Reinstall => return self.reinstall().await,
            Kind::Join | Kind::Add => self.ensure_joined(&self.host).await?,
            Kind::WaitReady => {
                self.wait_ready(&self.host).await?;
                let p = self.planned()?;
                self.log(format!(
                    "{} is back: k0s {} as a {}",
                    p.hostname,
                    p.k0s.version,
                    p.role()
                ));
            }
            Kind::RestoreCordon => self.restore_cordon(&self.host).await?,
            Kind::KubeanMoveFirstLast => return self.kubean_move_first_last().await,
            Kind::KubeanRemove => self.kubean_remove(&self.host).await?,
            Kind::KubeanClusterInfo => return self.kubean_cluster_info(false).await,
            Kind::KubeanAdd => self.kubean_add(&self.host, "add").await?,
            Kind::Drain => return Err(StepError::new("the drain is core's step")),
        }
        Ok(prepared.clone())
    }

    async fn undo(&self, data: &Value, partial: bool) -> Result<(), StepError> {
        match self.kind {
            Kind::Save
            | Kind::Join
            | Kind::WaitReady
            | Kind::RestoreCordon
            | Kind::Drain
            | Kind::KubeanAdd => Ok(()),
            // a removed host, reinstalled or not, is added back
            Kind::Remove | Kind::Reinstall | Kind::KubeanRemove => self.add_back(&self.host).await,
            Kind::KubeanMoveFirstLast => self.kubean_move_back(data, partial).await,
            Kind::KubeanClusterInfo => self.kubean_cluster_info(true).await.map(|_| ()),
            // a new host leaves again
            Kind::Add => self.remove(&self.host).await,
        }
    }
}

/// The quorum gate of the controllers: before a controller is taken out, every other controller
/// (or the new host that took its place) runs k0s with its Node Ready, and etcd answers.
#[derive(Debug)]
pub struct ControllersGate {
    j: Journaled,
    cx: RunContext,
    management: Option<Arc<dyn ferry_core::ClusterApi>>,
}

impl ControllersGate {
    pub fn new(
        j: Journaled,
        cx: RunContext,
        management: Option<Arc<dyn ferry_core::ClusterApi>>,
    ) -> Self {
        Self { j, cx, management }
    }

    /// `name` runs k0s and its Node (if any) is Ready.
    async fn serves(&self, name: &str) -> Result<bool, StepError> {
        let Some(p) = self.j.host(name) else {
            return Ok(false);
        };
        if let Backend::Kubean(_) = &self.j.backend {
            // kubean's control-plane hosts are nodes: Ready is what can be seen
            let node = p.inventory.as_deref().unwrap_or(&p.hostname);
            return Ok(self
                .cx
                .cluster
                .nodes()
                .await?
                .iter()
                .any(|n| n.name == node && n.ready));
        }
        let Ok(exec) = self.cx.host(name) else {
            return Ok(false);
        };
        let Ok(init) = facts::init_system(exec.as_ref()).await else {
            return Ok(false);
        };
        if !K0sHost::new(exec.as_ref(), init)
            .running()
            .await
            .unwrap_or(false)
        {
            return Ok(false);
        }
        match &p.node {
            None => Ok(true),
            Some(node) => Ok(self
                .cx
                .cluster
                .nodes()
                .await?
                .iter()
                .any(|n| &n.name == node && n.ready)),
        }
    }
}

#[async_trait::async_trait]
impl Gate for ControllersGate {
    async fn wait(&self, host: &str, others: &[String]) -> Result<(), StepError> {
        let timeout = Duration::from_secs(self.j.ready_timeout_secs);
        let deadline = tokio::time::Instant::now() + timeout;
        for o in others {
            let replacement = self
                .j
                .hosts
                .iter()
                .find(|h| &h.name == o)
                .and_then(|h| h.replaced_by.clone());
            loop {
                let mut up = self.serves(o).await?;
                if !up {
                    if let Some(r) = &replacement {
                        up = self.serves(r).await?;
                    }
                }
                if up {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(StepError::new(format!(
                        "controller {o}{} does not run k0s with its node Ready: {host} is not taken out while it is down",
                        replacement
                            .as_ref()
                            .map(|r| format!(" (nor {r}, which replaces it)"))
                            .unwrap_or_default()
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        // etcd answers (a read needs its quorum)
        let ctx = Ctx {
            journaled: self.j.clone(),
            run: self.cx.clone(),
            management: self.management.clone(),
        };
        if !others.is_empty() && self.j.backend == Backend::K0s {
            ctx.healthy_controller(&[host])
                .await
                .map_err(|e| e.context("etcd quorum"))?;
        }
        Ok(())
    }
}
