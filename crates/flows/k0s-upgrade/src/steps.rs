//! The steps of a rolling k0s upgrade, per node: back up etcd (controllers), cordon and drain
//! (nodes that run workloads, online mode), stop k0s, replace the binary (the previous one kept
//! beside it), start k0s, wait until the node runs the new release, and restore the node's own
//! earlier cordon state. Every undo is idempotent and works after a partial apply; undo data is
//! a typed struct. `docs/k0s-upgrade.md` lists the commands of each step.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use ferry_core::cluster::DrainOptions;
use ferry_core::engine::{Reversibility, Step, StepError, StepKey, from_data, to_data};
use ferry_core::exec::{Cmd, HostExec};
use ferry_core::k0s::{K0S_BIN, K0sHost, exists, ok};
use ferry_core::node::{DrainStep, wait_ready};
use ferry_core::run::RunContext;

use crate::flow::{Journaled, PlannedHost};

/// Where ferry keeps its files on a host: the previous k0s binary and the etcd backups. Not
/// under k0s's data directory, which `k0s reset` removes.
pub const HOST_DIR: &str = "/var/lib/ferry";
/// The `k0s backup` archives taken before each controller, kept after the run.
pub const BACKUP_DIR: &str = "/var/lib/ferry/k0s-backups";
/// The binary a node ran before the upgrade, put back by a rollback.
pub const PREVIOUS_BIN: &str = "/var/lib/ferry/k0s.previous";

/// How often and how long a started node is waited for.
const POLL: Duration = Duration::from_secs(1);

/// The step kinds, with their stable ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backup,
    Drain,
    Stop,
    ReplaceBinary,
    Start,
    WaitReady,
    RestoreCordon,
}

const ALL: [Kind; 7] = [
    Kind::Backup,
    Kind::Drain,
    Kind::Stop,
    Kind::ReplaceBinary,
    Kind::Start,
    Kind::WaitReady,
    Kind::RestoreCordon,
];

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::Backup => "k0s.node.backup",
            Kind::Drain => "k0s.node.drain",
            Kind::Stop => "k0s.node.stop",
            Kind::ReplaceBinary => "k0s.node.replace-binary",
            Kind::Start => "k0s.node.start",
            Kind::WaitReady => "k0s.node.wait-ready",
            Kind::RestoreCordon => "k0s.node.restore-cordon",
        }
    }

    pub fn from_id(id: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.id() == id)
    }

    pub fn description(self) -> &'static str {
        match self {
            Kind::Backup => "k0s backup into /var/lib/ferry/k0s-backups (kept after the run)",
            Kind::Drain => "cordon and drain the node (PodDisruptionBudgets respected)",
            Kind::Stop => "stop k0s",
            Kind::ReplaceBinary => {
                "keep the running k0s binary as /var/lib/ferry/k0s.previous, put the new one in place"
            }
            Kind::Start => "start k0s and wait until it runs the new version",
            Kind::WaitReady => {
                "wait until the node is Ready with the new kubelet version (a controller: its etcd member listed)"
            }
            Kind::RestoreCordon => "uncordon the node, unless it was cordoned before the run",
        }
    }

    pub fn reversibility(self) -> Reversibility {
        match self {
            // The archive is kept on purpose: a rollback does not delete a backup.
            Kind::Backup | Kind::WaitReady => Reversibility::NoOp,
            _ => Reversibility::Reversible,
        }
    }
}

/// What the steps share.
#[derive(Debug)]
pub struct Ctx {
    pub journaled: Journaled,
    pub run: RunContext,
}

impl Ctx {
    fn planned(&self, host: &str) -> Result<&PlannedHost, StepError> {
        self.journaled
            .hosts
            .iter()
            .find(|h| h.name == host)
            .ok_or_else(|| StepError::new(format!("host {host} is not in the run's plan")))
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

/// The undo data of the stop: whether k0s ran before.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WasRunning {
    running: bool,
}

/// The undo data of the binary swap: whether ferry's directory and the kept copy existed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Swap {
    dir_existed: bool,
    /// A copy kept by an earlier attempt of this step (a resumed run): it is the original.
    previous_existed: bool,
}

/// The undo data of the cordon restore: whether this step uncordoned the node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Uncordoned {
    node: Option<String>,
    uncordoned: bool,
}

fn sudo(program: &str, args: &[&str]) -> Cmd {
    Cmd::new(program).args(args.iter().copied()).sudo()
}

impl NodeStep {
    fn exec(&self) -> Result<&dyn HostExec, StepError> {
        Ok(self.cx.run.host(&self.host)?.as_ref())
    }

    fn k0s(&self) -> Result<K0sHost<'_>, StepError> {
        Ok(K0sHost::new(
            self.exec()?,
            self.cx.planned(&self.host)?.init_system,
        ))
    }

    fn target(&self) -> &str {
        &self.cx.journaled.version
    }

    /// `k0s version` of the binary in place.
    async fn binary_version(&self) -> Result<String, StepError> {
        Ok(ok(self.exec()?, Cmd::new("k0s").arg("version"))
            .await?
            .stdout_text()
            .trim()
            .to_string())
    }

    /// Waits until `k0s status` answers with `version`.
    async fn wait_running(&self, version: &str) -> Result<(), StepError> {
        let timeout = Duration::from_secs(self.cx.journaled.ready_timeout_secs);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.k0s()?.status().await?;
            match &s {
                Some(s) if s.version == version => return Ok(()),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(StepError::new(format!(
                        "{}: k0s did not run {version} within {}s (k0s status: {})",
                        self.host,
                        timeout.as_secs(),
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

    async fn backup(&self) -> Result<(), StepError> {
        let h = self.exec()?;
        ok(h, sudo("mkdir", &["-p", "-m", "0700", BACKUP_DIR])).await?;
        self.k0s()?.backup(BACKUP_DIR).await?;
        let newest = ok(h, sudo("ls", &["-1t", BACKUP_DIR])).await?.stdout_text();
        self.cx.run.log.info(format!(
            "[{}] etcd backed up: {BACKUP_DIR}/{} (kept after the run)",
            self.host,
            newest.lines().next().unwrap_or("?")
        ));
        Ok(())
    }

    async fn swap(&self, prepared: &Swap) -> Result<(), StepError> {
        let h = self.exec()?;
        if !prepared.previous_existed {
            ok(h, sudo("mkdir", &["-p", "-m", "0700", HOST_DIR])).await?;
            ok(h, sudo("cp", &["-p", K0S_BIN, PREVIOUS_BIN])).await?;
        }
        let planned = self.cx.planned(&self.host)?;
        self.k0s()?
            .put_binary(&self.cx.journaled.binary, &planned.machine)
            .await?;
        let got = self.binary_version().await?;
        if got != self.target() {
            return Err(StepError::new(format!(
                "{}: the new k0s binary says it is {got}, not {}",
                self.host,
                self.target()
            )));
        }
        Ok(())
    }

    async fn unswap(&self, prepared: &Swap) -> Result<(), StepError> {
        let h = self.exec()?;
        // A host that died during the upload keeps the temporary file beside the binary.
        ferry_core::exec::discard_partial_uploads(h, K0S_BIN).await?;
        if exists(h, "-f", PREVIOUS_BIN).await? {
            // Copied next to the target and renamed over it: never a half-written binary,
            // and no "text file busy" if a k0s process still runs the replaced file.
            let tmp = format!("{K0S_BIN}.ferry-restore");
            ok(h, sudo("cp", &["-p", PREVIOUS_BIN, &tmp])).await?;
            ok(h, sudo("mv", &["-f", &tmp, K0S_BIN])).await?;
            ok(h, sudo("rm", &["-f", PREVIOUS_BIN])).await?;
        }
        if !prepared.dir_existed && exists(h, "-d", HOST_DIR).await? {
            ok(h, sudo("rmdir", &["--ignore-fail-on-non-empty", HOST_DIR])).await?;
        }
        Ok(())
    }

    async fn wait_ready(&self) -> Result<(), StepError> {
        let planned = self.cx.planned(&self.host)?;
        let timeout = Duration::from_secs(self.cx.journaled.ready_timeout_secs);
        if let Some(node) = &planned.node {
            let cluster = self.cx.run.cluster.as_ref();
            wait_ready(cluster, node, timeout, POLL).await?;
            let want = crate::version::Version::kubelet_of(self.target());
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let nodes = cluster.nodes().await?;
                let got = nodes
                    .iter()
                    .find(|n| &n.name == node)
                    .map(|n| n.kubelet_version.clone())
                    .unwrap_or_default();
                if got == want {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(StepError::new(format!(
                        "node {node} reports kubelet {got}, not {want}, after {}s",
                        timeout.as_secs()
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        if planned.controller {
            let members = self.k0s()?.etcd_members().await?;
            let me = &planned.hostname;
            if !members.keys().any(|m| m.eq_ignore_ascii_case(me)) {
                return Err(StepError::new(format!(
                    "{}: etcd does not list member {me} after the restart (members: {})",
                    self.host,
                    members.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        self.cx
            .run
            .log
            .info(format!("[{}] runs k0s {}", self.host, self.target()));
        Ok(())
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
            Kind::Stop => to_data(&WasRunning {
                running: self.k0s()?.running().await?,
            }),
            Kind::ReplaceBinary => {
                let h = self.exec()?;
                to_data(&Swap {
                    dir_existed: exists(h, "-d", HOST_DIR).await?,
                    previous_existed: exists(h, "-f", PREVIOUS_BIN).await?,
                })
            }
            _ => Ok(Value::Null),
        }
    }

    async fn apply(&self, prepared: &Value) -> Result<Value, StepError> {
        match self.kind {
            Kind::Backup => self.backup().await?,
            Kind::Stop => self.k0s()?.stop_if_running().await?,
            Kind::ReplaceBinary => self.swap(&from_data(prepared)?).await?,
            Kind::Start => {
                let k = self.k0s()?;
                if !k.running().await? {
                    k.start().await?;
                }
                self.wait_running(self.target()).await?;
            }
            Kind::WaitReady => self.wait_ready().await?,
            Kind::RestoreCordon => {
                let planned = self.cx.planned(&self.host)?;
                let uncordon = planned.node.is_some() && !planned.cordoned;
                if let (true, Some(node)) = (uncordon, &planned.node) {
                    self.cx.run.cluster.uncordon(node).await?;
                }
                return to_data(&Uncordoned {
                    node: planned.node.clone(),
                    uncordoned: uncordon,
                });
            }
            Kind::Drain => return Err(StepError::new("the drain is core's step")),
        }
        Ok(prepared.clone())
    }

    async fn undo(&self, data: &Value, partial: bool) -> Result<(), StepError> {
        match self.kind {
            Kind::Backup | Kind::WaitReady | Kind::Drain => Ok(()),
            Kind::Stop => {
                let before: WasRunning = from_data(data)?;
                let k = self.k0s()?;
                if before.running && !k.running().await? {
                    k.start().await?;
                    // the binary in place is the previous one again by now (undone first)
                    let v = self.binary_version().await?;
                    self.wait_running(&v).await?;
                }
                Ok(())
            }
            Kind::ReplaceBinary => self.unswap(&from_data(data)?).await,
            Kind::Start => self.k0s()?.stop_if_running().await,
            Kind::RestoreCordon => {
                // After a partial apply the data is the prepared `null`: the uncordon may or
                // may not have happened, and the node was meant to be uncordoned, so it is
                // cordoned again only when the plan said ferry would uncordon it.
                let planned = self.cx.planned(&self.host)?;
                let did = if partial || data.is_null() {
                    planned.node.is_some() && !planned.cordoned
                } else {
                    from_data::<Uncordoned>(data)?.uncordoned
                };
                if let (true, Some(node)) = (did, &planned.node) {
                    self.cx.run.cluster.cordon(node).await?;
                }
                Ok(())
            }
        }
    }
}
