//! The shared state of the fakes, fault injection, the call recorder, the digest, and the
//! MKE 3 cluster fixture.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Notify, watch};

use ferry_core::cluster::{ObjectRef, Owner, Pdb, Resources, Toleration, Volume};
use ferry_core::engine::{Hooks, Interrupts, StepError, StepKey, current_step};
use ferry_core::secret::Secret;
use ferry_rbac::export::{Account, Collection, Grant, Member, Role, Team};

/// A file or directory of a fake host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEntry {
    pub dir: bool,
    pub content: Vec<u8>,
    pub mode: u32,
    pub owner: String,
    /// Modification time, unix seconds (not part of the digest).
    pub mtime: u64,
}

/// A systemd unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub enabled: bool,
    pub active: bool,
}

/// A Docker container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// `(volume, destination)`.
    pub mounts: Vec<(String, String)>,
    pub running: bool,
    /// `no`, `always`, `unless-stopped`.
    pub restart: String,
    /// TCP ports it listens on (host network).
    pub ports: Vec<u16>,
    /// The command after the image (`Config.Cmd`).
    pub cmd: Vec<String>,
    /// `HostConfig.NetworkMode`: `default` (the bridge) or `host`.
    pub network: String,
}

/// One host.
#[derive(Debug, Clone)]
pub struct HostState {
    pub name: String,
    pub hostname: String,
    pub private_ip: String,
    /// The SSH user of the hosts file.
    pub user: String,
    pub files: BTreeMap<String, FsEntry>,
    pub services: BTreeMap<String, Service>,
    pub containers: BTreeMap<String, Container>,
    /// Ports held by processes that are neither Docker nor k0s.
    pub listeners: BTreeSet<u16>,
    pub cpus: u32,
    /// `uname -m`.
    pub arch: String,
    pub mem_kib: u64,
    pub disk_free: u64,
    /// Killed: commands die, connections are refused.
    pub killed: bool,
    /// Cut off the network: nothing answers.
    pub cut: bool,
}

/// The Kubernetes side.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    /// Node name -> host name.
    pub node_host: BTreeMap<String, String>,
    pub node_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub cordoned: BTreeSet<String>,
    pub pods: Vec<PodState>,
    pub pdbs: Vec<Pdb>,
    /// Workload controllers as seeded (Deployments, ReplicaSets, ...), claims, volumes and the
    /// API server addresses, for the safety checks' snapshot.
    pub workloads: Vec<ferry_core::cluster::Controller>,
    pub claims: Vec<ferry_core::cluster::Claim>,
    pub volumes: Vec<ferry_core::cluster::PersistentVolume>,
    pub api_servers: Vec<String>,
    pub objects: BTreeMap<ObjectRef, Value>,
    /// The last `metadata.resourceVersion` stamped on an object.
    pub versions: u64,
    /// Hosts that were MKE 3 managers at the start (the etcd members).
    pub managers: BTreeSet<String>,
    /// Nodes that no fake host backs (a seeded cluster): read back as seeded.
    pub static_nodes: BTreeMap<String, ferry_core::cluster::Node>,
    /// The API server answers whatever the hosts do (a seeded cluster).
    pub always_up: bool,
    /// The seeded `gitVersion`, if any.
    pub version: Option<String>,
    /// Controllers recreate evicted pods that have an owner on another Ready, schedulable node
    /// (a StatefulSet pod keeps its name), which gives a PodDisruptionBudget its disruption
    /// back. Off for a seeded cluster, where an evicted pod just disappears.
    pub controllers: bool,
}

/// A pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodState {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub owner: Option<Owner>,
    pub volumes: Vec<Volume>,
    pub phase: String,
    pub requests: Resources,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
}

/// The MKE 3 API's data.
#[derive(Debug, Clone, Default)]
pub struct Mke3State {
    pub version: String,
    pub config_toml: String,
    pub accounts: Vec<Account>,
    pub org_members: BTreeMap<String, Vec<Member>>,
    pub teams: BTreeMap<String, Vec<Team>>,
    pub team_members: BTreeMap<(String, String), Vec<Member>>,
    pub roles: Vec<Role>,
    pub collections: Vec<Collection>,
    pub grants: Vec<Grant>,
    pub admin_user: String,
    pub admin_password: Option<Secret<String>>,
    /// The API answers whatever the hosts do (a seeded MKE 3).
    pub always_up: bool,
}

/// When a fault fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultWhen {
    /// The `nth` (1-based) backend call made while step `key` runs.
    Step { key: StepKey, nth: usize },
    /// Before step `key` starts (for steps that make no backend call), through [`FaultHooks`].
    StepStart { key: StepKey },
    /// The `nth` call to `host`.
    Host { host: String, nth: usize },
    /// The `nth` call overall.
    Call { nth: usize },
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// The call fails for good: a lost connection (hosts), a refused request (Kubernetes,
    /// MKE 3). Not worth retrying.
    Fail,
    /// The call fails in a way worth retrying (an unavailable API, a timeout).
    FailTransient,
    /// The operator presses Ctrl-C; the call itself goes on.
    Interrupt,
}

/// A fault to inject once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub when: FaultWhen,
    pub action: FaultAction,
}

impl Fault {
    /// `action` at the `nth` (1-based) backend call of step `key` (`<id>@<target>`).
    ///
    /// # Panics
    /// When `key` is not a step key: a mistake in the test itself.
    pub fn at_step(key: &str, nth: usize, action: FaultAction) -> Self {
        Self {
            when: FaultWhen::Step {
                key: key.parse().unwrap_or_else(|e| panic!("{key}: {e}")),
                nth,
            },
            action,
        }
    }
}

/// One recorded backend call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    pub seq: usize,
    /// `host`, `cluster` or `mke3`.
    pub backend: &'static str,
    pub host: Option<String>,
    /// The program or method.
    pub op: String,
    /// Arguments as sent (not redacted: tests scan them for secrets).
    pub args: Vec<String>,
    pub sudo: bool,
    /// Bytes sent: stdin or a file's content.
    pub data: Option<Vec<u8>>,
    pub mutating: bool,
    pub step: Option<String>,
}

/// Everything the fakes share.
#[derive(Debug, Default)]
pub struct WorldState {
    pub hosts: BTreeMap<String, HostState>,
    pub cluster: ClusterState,
    pub mke3: Mke3State,
    /// k0s join tokens issued and not expired (ephemeral: not part of the digest).
    pub k0s_tokens: BTreeSet<String>,
    pub faults: Vec<(Fault, bool)>,
    pub calls: Vec<Call>,
    pub step_calls: BTreeMap<StepKey, usize>,
    pub host_calls: BTreeMap<String, usize>,
    pub latency: Duration,
    pub counter: u64,
    /// Unix time at the start of the world.
    pub epoch: u64,
    /// MKE 3 config PUT answer texts, for checks.
    pub airgapped: bool,
}

/// A handle on the shared state; clones share it.
#[derive(Debug, Clone)]
pub struct World {
    inner: Arc<Mutex<WorldState>>,
    start: tokio::time::Instant,
    interrupts: Arc<Mutex<Option<Interrupts>>>,
    /// Per host, bumped on kill and cut so that running commands notice.
    breaks: Arc<Mutex<BTreeMap<String, watch::Sender<u64>>>>,
    pub(crate) crash: Arc<Notify>,
}

/// A call refused by an injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// The failure is worth retrying.
    pub transient: bool,
}

impl World {
    pub fn new(state: WorldState) -> Self {
        let breaks = state
            .hosts
            .keys()
            .map(|h| (h.clone(), watch::channel(0).0))
            .collect();
        Self {
            inner: Arc::new(Mutex::new(state)),
            start: tokio::time::Instant::now(),
            interrupts: Arc::default(),
            breaks: Arc::new(Mutex::new(breaks)),
            crash: Arc::new(Notify::new()),
        }
    }

    /// Locks the state.
    pub fn state(&self) -> MutexGuard<'_, WorldState> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The interrupt source that [`FaultAction::Interrupt`] triggers.
    pub fn set_interrupts(&self, i: Interrupts) {
        if let Ok(mut g) = self.interrupts.lock() {
            *g = Some(i);
        }
    }

    fn interrupt(&self) {
        if let Ok(g) = self.interrupts.lock() {
            if let Some(i) = g.as_ref() {
                i.trigger();
            }
        }
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push((fault, false));
    }

    /// Removes every fault not yet fired and every fired one.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Whether every injected fault has fired.
    pub fn faults_fired(&self) -> bool {
        self.state().faults.iter().all(|(_, f)| *f)
    }

    /// A fixed latency of every host operation (`run`, `put_file`), on tokio time.
    pub fn set_latency(&self, d: Duration) {
        self.state().latency = d;
    }

    /// The recorded calls.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    pub fn clear_calls(&self) {
        let mut s = self.state();
        s.calls.clear();
        s.step_calls.clear();
        s.host_calls.clear();
    }

    /// Recorded calls that change something.
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.mutating).collect()
    }

    /// Unix seconds now, on the world's clock (tokio time, so it follows paused time).
    pub fn now_unix(&self) -> u64 {
        let epoch = self.state().epoch;
        epoch + self.start.elapsed().as_secs()
    }

    pub(crate) fn break_receiver(&self, host: &str) -> Option<watch::Receiver<u64>> {
        self.breaks
            .lock()
            .ok()
            .and_then(|b| b.get(host).map(watch::Sender::subscribe))
    }

    fn bump_break(&self, host: &str) {
        if let Ok(b) = self.breaks.lock() {
            if let Some(tx) = b.get(host) {
                tx.send_modify(|n| *n += 1);
            }
        }
    }

    /// Crashes a host: running commands die, connections are refused.
    pub fn kill_host(&self, host: &str) {
        if let Some(h) = self.state().hosts.get_mut(host) {
            h.killed = true;
        }
        self.bump_break(host);
    }

    /// Cuts a host off the network.
    pub fn cut_host(&self, host: &str) {
        if let Some(h) = self.state().hosts.get_mut(host) {
            h.cut = true;
        }
        self.bump_break(host);
    }

    /// Undoes a kill or a cut.
    pub fn restore_host(&self, host: &str) {
        if let Some(h) = self.state().hosts.get_mut(host) {
            h.killed = false;
            h.cut = false;
        }
    }

    /// Makes a host unreachable (cut) or reachable again.
    pub fn set_unreachable(&self, host: &str, unreachable: bool) {
        if unreachable {
            self.cut_host(host);
        } else {
            self.restore_host(host);
        }
    }

    /// Records a call and applies the faults that match it.
    pub(crate) fn record(&self, mut call: Call) -> Result<(), Injected> {
        let step = current_step();
        let mut interrupt = false;
        let mut fail = None;
        {
            let mut s = self.state();
            call.seq = s.calls.len() + 1;
            call.step = step.as_ref().map(ToString::to_string);
            let total = call.seq;
            let host_n = match &call.host {
                Some(h) => {
                    let n = s.host_calls.entry(h.clone()).or_insert(0);
                    *n += 1;
                    Some(*n)
                }
                None => None,
            };
            let step_n = match &step {
                Some(k) => {
                    let n = s.step_calls.entry(k.clone()).or_insert(0);
                    *n += 1;
                    Some(*n)
                }
                None => None,
            };
            for (fault, fired) in s.faults.iter_mut() {
                if *fired {
                    continue;
                }
                let hit = match &fault.when {
                    FaultWhen::Step { key, nth } => {
                        step.as_ref() == Some(key) && step_n == Some(*nth)
                    }
                    FaultWhen::StepStart { .. } => false,
                    FaultWhen::Host { host, nth } => {
                        call.host.as_deref() == Some(host.as_str()) && host_n == Some(*nth)
                    }
                    FaultWhen::Call { nth } => total == *nth,
                };
                if hit {
                    *fired = true;
                    match fault.action {
                        FaultAction::Fail => fail = Some(false),
                        FaultAction::FailTransient => fail = Some(true),
                        FaultAction::Interrupt => interrupt = true,
                    }
                }
            }
            s.calls.push(call);
        }
        if interrupt {
            self.interrupt();
        }
        match fail {
            Some(transient) => Err(Injected { transient }),
            None => Ok(()),
        }
    }

    /// A SHA-256 of everything that matters: every host's files (content, mode, owner),
    /// services, containers and extra listeners; the cluster's nodes, cordon state, workloads
    /// (pods counted per owner; placement and generated pod names are left out because a drain
    /// reschedules pods), PDBs and applied objects; the whole MKE 3 side. Left out: call
    /// records, faults, clocks, file times and k0s join tokens (they expire).
    pub fn digest(&self) -> String {
        let v = self.digest_value();
        let text = serde_json::to_string(&v).unwrap_or_default();
        let hash = Sha256::digest(text.as_bytes());
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The value [`World::digest`] hashes, for diffs in failing tests.
    pub fn digest_value(&self) -> Value {
        let s = self.state();
        let hosts: BTreeMap<&String, Value> = s
            .hosts
            .iter()
            .map(|(n, h)| {
                let files: BTreeMap<&String, Value> = h
                    .files
                    .iter()
                    .map(|(p, f)| {
                        let sum: String = Sha256::digest(&f.content)
                            .iter()
                            .take(8)
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        (
                            p,
                            json!([
                                if f.dir { "d" } else { "f" },
                                format!("{:o}", f.mode),
                                f.owner,
                                sum
                            ]),
                        )
                    })
                    .collect();
                (
                    n,
                    json!({
                        "files": files,
                        "services": h.services,
                        "containers": h.containers,
                        "listeners": h.listeners,
                    }),
                )
            })
            .collect();
        let mut workloads: BTreeMap<String, usize> = BTreeMap::new();
        for p in &s.cluster.pods {
            let k = match &p.owner {
                Some(o) => format!("{}/{} {}", p.namespace, o.kind, o.name),
                None => format!("{}/bare {}", p.namespace, p.name),
            };
            *workloads.entry(k).or_insert(0) += 1;
        }
        // the content, not the resourceVersion every write stamps
        let objects: BTreeMap<String, Value> = s
            .cluster
            .objects
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                (k.to_string(), v)
            })
            .collect();
        let m = &s.mke3;
        let team_members: BTreeMap<String, &Vec<Member>> = m
            .team_members
            .iter()
            .map(|((o, t), v)| (format!("{o}/{t}"), v))
            .collect();
        json!({
            "hosts": hosts,
            "cluster": {
                "nodes": s.cluster.node_labels,
                "cordoned": s.cluster.cordoned,
                "workloads": workloads,
                "pdbs": s.cluster.pdbs,
                "objects": objects,
            },
            "mke3": {
                "version": m.version,
                "config": m.config_toml,
                "accounts": m.accounts,
                "orgMembers": m.org_members,
                "teams": m.teams,
                "teamMembers": team_members,
                "roles": m.roles,
                "collections": m.collections,
                "grants": m.grants,
            }
        })
    }
}

/// Engine hooks that apply [`FaultWhen::StepStart`] faults and can simulate a crash right after
/// a step: the run hangs in the hook (and [`FaultHooks::crashed`] resolves) so that the test can
/// drop it, as a killed process would stop.
#[derive(Debug)]
pub struct FaultHooks {
    world: World,
    crash_after: Mutex<Option<StepKey>>,
}

impl FaultHooks {
    pub fn new(world: &World) -> Arc<Self> {
        Arc::new(Self {
            world: world.clone(),
            crash_after: Mutex::new(None),
        })
    }

    /// Crash right after `key` is applied and journaled.
    pub fn crash_after(&self, key: StepKey) {
        if let Ok(mut g) = self.crash_after.lock() {
            *g = Some(key);
        }
    }

    /// Resolves when the crash point is reached.
    pub async fn crashed(&self) {
        self.world.crash.notified().await;
    }
}

#[async_trait::async_trait]
impl Hooks for FaultHooks {
    fn before_apply(&self, key: &StepKey) -> Result<(), StepError> {
        let mut fail = false;
        let mut interrupt = false;
        {
            let mut s = self.world.state();
            for (fault, fired) in s.faults.iter_mut() {
                if *fired {
                    continue;
                }
                if let FaultWhen::StepStart { key: k } = &fault.when {
                    if k == key {
                        *fired = true;
                        match fault.action {
                            FaultAction::Fail | FaultAction::FailTransient => fail = true,
                            FaultAction::Interrupt => interrupt = true,
                        }
                    }
                }
            }
        }
        if interrupt {
            self.world.interrupt();
        }
        if fail {
            Err(StepError::new(format!("injected fault before {key}")))
        } else {
            Ok(())
        }
    }

    async fn after_apply(&self, key: &StepKey) {
        let hit = self
            .crash_after
            .lock()
            .map(|g| g.as_ref() == Some(key))
            .unwrap_or(false);
        if hit {
            self.world.crash.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

// -------------------------------------------------------------------------------------------
// The fixture: an MKE 3.7 cluster as it runs before the upgrade.

/// The MKE 3 version of the default fixture.
pub const FIXTURE_MKE3_VERSION: &str = "3.7.15";
/// The admin password of the fixture (tests scan everything for it).
pub const FIXTURE_ADMIN_PASSWORD: &str = "Adm1n-s3cret-7b91";

/// Builds worlds.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub managers: usize,
    pub workers: usize,
    pub mke3_version: String,
    /// Users besides `admin`, orgs and teams (per org).
    pub users: usize,
    pub orgs: usize,
    pub teams_per_org: usize,
    pub calico_kdd: bool,
}

impl Default for Fixture {
    fn default() -> Self {
        Self {
            managers: 3,
            workers: 5,
            mke3_version: FIXTURE_MKE3_VERSION.into(),
            users: 2,
            orgs: 1,
            teams_per_org: 1,
            calico_kdd: true,
        }
    }
}

fn dir(owner: &str) -> FsEntry {
    FsEntry {
        dir: true,
        content: Vec::new(),
        mode: 0o755,
        owner: owner.into(),
        mtime: 0,
    }
}

fn file(content: &str, mode: u32) -> FsEntry {
    FsEntry {
        dir: false,
        content: content.as_bytes().to_vec(),
        mode,
        owner: "root".into(),
        mtime: 0,
    }
}

/// Inserts `path` and all its parents as root directories.
pub(crate) fn mkdirs(files: &mut BTreeMap<String, FsEntry>, path: &str, owner: &str) {
    let mut cur = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        files.entry(cur.clone()).or_insert_with(|| dir(owner));
    }
    files.entry("/".into()).or_insert_with(|| dir("root"));
}

/// Host name of manager `i`.
pub fn manager_host(i: usize) -> String {
    format!("10.0.0.{}", i + 11)
}

/// Host name of worker `i`.
pub fn worker_host(i: usize) -> String {
    format!("10.0.1.{}", i + 21)
}

fn ucp(name: &str, version: &str, mounts: &[(&str, &str)], ports: &[u16]) -> (String, Container) {
    (
        name.to_string(),
        Container {
            image: format!("mirantis/{name}:{version}"),
            labels: BTreeMap::from([("com.docker.ucp.version".to_string(), version.to_string())]),
            mounts: mounts
                .iter()
                .map(|(v, d)| (v.to_string(), d.to_string()))
                .collect(),
            running: true,
            restart: "unless-stopped".into(),
            ports: ports.to_vec(),
            cmd: Vec::new(),
            network: "default".into(),
        },
    )
}

/// The config TOML an MKE 3 cluster serves (a small, realistic subset).
pub fn fixture_config_toml(calico_kdd: bool) -> String {
    format!(
        "[auth]\n  default_new_user_role = \"restrictedcontrol\"\n  backend = \"managed\"\n\n[auth.sessions]\n  lifetime_minutes = 60\n\n[cluster_config]\n  controller_port = 443\n  kube_apiserver_port = 12388\n  calico_kdd = {calico_kdd}\n  kubelet_max_pods = 110\n  cluster_label = \"prod\"\n"
    )
}

impl Fixture {
    fn host(&self, name: String, hostname: String, manager: bool, idx: usize) -> HostState {
        let v = &self.mke3_version;
        let mut files = BTreeMap::new();
        for d in [
            "/etc/systemd/system",
            "/usr/local/bin",
            "/var/lib/docker/volumes",
            "/var/lib/docker/swarm",
            "/run/lock",
            "/run/systemd/system",
            "/proc",
        ] {
            mkdirs(&mut files, d, "root");
        }
        let mut tmp = dir("root");
        tmp.mode = 0o1777;
        files.insert("/tmp".into(), tmp);
        mkdirs(&mut files, "/home/docker", "root");
        if let Some(h) = files.get_mut("/home/docker") {
            h.owner = "docker".into();
        }
        files.insert(
            "/etc/hostname".into(),
            file(&format!("{hostname}\n"), 0o644),
        );
        files.insert(
            "/etc/os-release".into(),
            file(
                "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nID=ubuntu\nVERSION_ID=\"22.04\"\n",
                0o644,
            ),
        );
        files.insert(
            "/var/lib/docker/swarm/state.json".into(),
            file(
                &format!(
                    "{{\"cluster\":\"swarm-7f3a\",\"node_id\":\"node-{hostname}\",\"role\":\"{}\"}}\n",
                    if manager { "manager" } else { "worker" }
                ),
                0o600,
            ),
        );
        let mut volumes: Vec<(&str, String)> =
            vec![("ucp-node-certs", format!("cert.pem:node-cert-{hostname}"))];
        let mut containers: BTreeMap<String, Container> = BTreeMap::new();
        if manager {
            volumes.push((
                "ucp-kv",
                format!("datav3/member/snap/db:etcd-data:cluster-swarm-7f3a:mke-{v}"),
            ));
            volumes.push((
                "ucp-auth-store-data",
                format!("rethinkdb/data:auth-store-{hostname}"),
            ));
            for c in [
                ucp("ucp-agent", v, &[], &[]),
                ucp(
                    "ucp-proxy",
                    v,
                    &[("ucp-node-certs", "/etc/certs")],
                    &[443, 6443, 12376],
                ),
                ucp("ucp-kv", v, &[("ucp-kv", "/data")], &[12379, 12380]),
                ucp(
                    "ucp-controller",
                    v,
                    &[("ucp-node-certs", "/etc/certs")],
                    &[12381, 12382],
                ),
                ucp(
                    "ucp-auth-store",
                    v,
                    &[("ucp-auth-store-data", "/var/data")],
                    &[12383, 12384],
                ),
                ucp(
                    "ucp-kube-apiserver",
                    v,
                    &[("ucp-node-certs", "/etc/certs")],
                    &[12388],
                ),
                ucp(
                    "ucp-kubelet",
                    v,
                    &[("ucp-node-certs", "/etc/certs")],
                    &[10250],
                ),
            ] {
                containers.insert(c.0, c.1);
            }
        } else {
            for c in [
                ucp("ucp-agent", v, &[], &[]),
                ucp(
                    "ucp-proxy",
                    v,
                    &[("ucp-node-certs", "/etc/certs")],
                    &[12376],
                ),
                ucp(
                    "ucp-kubelet",
                    v,
                    &[("ucp-node-certs", "/etc/certs")],
                    &[10250],
                ),
            ] {
                containers.insert(c.0, c.1);
            }
            if idx == 0 {
                // A workload that is not MKE's: the upgrade must leave it alone.
                volumes.push(("app-data", "pgdata/PG_VERSION:16".into()));
                containers.insert(
                    "app-db".into(),
                    Container {
                        image: "postgres:16".into(),
                        labels: BTreeMap::new(),
                        mounts: vec![("app-data".into(), "/var/lib/postgresql/data".into())],
                        running: true,
                        restart: "always".into(),
                        ports: vec![5432],
                        cmd: vec!["postgres".into()],
                        network: "default".into(),
                    },
                );
            }
        }
        for (vol, spec) in volumes {
            let (rel, content) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
            let path = format!("/var/lib/docker/volumes/{vol}/_data/{rel}");
            if let Some((parent, _)) = path.rsplit_once('/') {
                mkdirs(&mut files, parent, "root");
            }
            files.insert(path, file(content, 0o600));
        }
        let services = BTreeMap::from([
            (
                "docker".to_string(),
                Service {
                    enabled: true,
                    active: true,
                },
            ),
            (
                "containerd".to_string(),
                Service {
                    enabled: true,
                    active: true,
                },
            ),
        ]);
        HostState {
            name,
            hostname,
            private_ip: String::new(),
            user: "docker".into(),
            files,
            services,
            containers,
            listeners: BTreeSet::from([22]),
            cpus: 8,
            mem_kib: 32 * 1024 * 1024,
            disk_free: 100 << 30,
            killed: false,
            cut: false,
            arch: "x86_64".into(),
        }
    }

    /// The world of this fixture.
    pub fn build(&self) -> World {
        let mut st = WorldState {
            epoch: 1_790_000_000,
            ..WorldState::default()
        };
        for i in 0..self.managers {
            let name = manager_host(i);
            let mut h = self.host(name.clone(), format!("mke-manager-{i}"), true, i);
            h.private_ip = name.clone();
            st.cluster.managers.insert(name.clone());
            st.hosts.insert(name, h);
        }
        for i in 0..self.workers {
            let name = worker_host(i);
            let mut h = self.host(name.clone(), format!("mke-worker-{i}"), false, i);
            h.private_ip = name.clone();
            st.hosts.insert(name, h);
        }
        for (name, h) in &st.hosts {
            let mut labels = BTreeMap::from([
                ("kubernetes.io/hostname".to_string(), h.hostname.clone()),
                ("kubernetes.io/os".to_string(), "linux".to_string()),
            ]);
            if st.cluster.managers.contains(name) {
                labels.insert("node-role.kubernetes.io/master".into(), String::new());
            }
            st.cluster
                .node_host
                .insert(h.hostname.clone(), name.clone());
            st.cluster.node_labels.insert(h.hostname.clone(), labels);
        }
        // Workloads: calico on every node, CoreDNS on managers, a web ReplicaSet and a database
        // StatefulSet on workers.
        let nodes: Vec<String> = st.cluster.node_host.keys().cloned().collect();
        let workers: Vec<String> = nodes
            .iter()
            .filter(|n| n.contains("worker"))
            .cloned()
            .collect();
        let managers: Vec<String> = nodes
            .iter()
            .filter(|n| n.contains("manager"))
            .cloned()
            .collect();
        let owner = |kind: &str, name: &str| {
            Some(Owner {
                kind: kind.into(),
                name: name.into(),
            })
        };
        for (i, n) in nodes.iter().enumerate() {
            st.cluster.pods.push(PodState {
                namespace: "kube-system".into(),
                name: format!("calico-node-{i:05}"),
                node: Some(n.clone()),
                labels: BTreeMap::from([("k8s-app".into(), "calico-node".into())]),
                owner: owner("DaemonSet", "calico-node"),
                volumes: vec![Volume::HostPath {
                    name: "lib-modules".into(),
                    path: "/lib/modules".into(),
                }],
                phase: "Running".into(),
                ..PodState::default()
            });
        }
        for (i, n) in managers.iter().take(2).enumerate() {
            st.cluster.pods.push(PodState {
                namespace: "kube-system".into(),
                name: format!("coredns-5d78c9869d-{i:05}"),
                node: Some(n.clone()),
                labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
                owner: owner("ReplicaSet", "coredns-5d78c9869d"),
                volumes: vec![],
                phase: "Running".into(),
                ..PodState::default()
            });
        }
        for i in 0..3 {
            let node = workers.get(i % workers.len().max(1)).cloned();
            st.cluster.pods.push(PodState {
                namespace: "default".into(),
                name: format!("web-7d9f8b-{i:05}"),
                node: node.or_else(|| managers.first().cloned()),
                labels: BTreeMap::from([("app".into(), "web".into())]),
                owner: owner("ReplicaSet", "web-7d9f8b"),
                volumes: vec![Volume::EmptyDir {
                    name: "cache".into(),
                }],
                phase: "Running".into(),
                ..PodState::default()
            });
        }
        st.cluster.pods.push(PodState {
            namespace: "default".into(),
            name: "db-0".into(),
            node: workers
                .first()
                .cloned()
                .or_else(|| managers.first().cloned()),
            labels: BTreeMap::from([("app".into(), "db".into())]),
            owner: owner("StatefulSet", "db"),
            volumes: vec![Volume::PersistentVolumeClaim {
                name: "data".into(),
                claim: "data-db-0".into(),
            }],
            phase: "Running".into(),
            ..PodState::default()
        });
        st.cluster.pdbs.push(Pdb {
            namespace: "default".into(),
            name: "web".into(),
            selector: ferry_core::cluster::LabelSelector::labels([("app", "web")]),
            disruptions_allowed: 1,
            current_healthy: 2,
            desired_healthy: 1,
            expected_pods: 2,
        });
        st.cluster.controllers = true;
        st.mke3 = self.mke3();
        World::new(st)
    }

    fn mke3(&self) -> Mke3State {
        let acct = |name: &str, id: &str, org: bool, admin: bool| Account {
            name: name.into(),
            id: id.into(),
            full_name: String::new(),
            is_org: org,
            is_admin: admin,
            is_active: true,
            is_imported: false,
            members_count: 0,
            teams_count: 0,
            on_demand: None,
            otp_enabled: None,
        };
        let mut accounts = vec![acct("admin", "u-admin", false, true)];
        for i in 0..self.users {
            accounts.push(acct(
                &format!("user{i}"),
                &format!("u-{i:03}"),
                false,
                false,
            ));
        }
        let mut org_members = BTreeMap::new();
        let mut teams = BTreeMap::new();
        let mut team_members = BTreeMap::new();
        let mut grants = Vec::new();
        for o in 0..self.orgs {
            let org = format!("org{o}");
            accounts.push(acct(&org, &format!("o-{o:03}"), true, false));
            let members: Vec<Member> = accounts
                .iter()
                .filter(|a| !a.is_org && a.name != "admin")
                .map(|a| Member {
                    member: a.clone(),
                    is_admin: false,
                })
                .collect();
            org_members.insert(org.clone(), members.clone());
            let mut ts = Vec::new();
            for t in 0..self.teams_per_org {
                let team = Team {
                    org_id: format!("o-{o:03}"),
                    name: format!("team{t}"),
                    id: format!("t-{o:03}-{t:03}"),
                    description: String::new(),
                    members_count: members.len() as u64,
                };
                team_members.insert((org.clone(), team.name.clone()), members.clone());
                grants.push(Grant {
                    subject_id: team.id.clone(),
                    object_id: "default".into(),
                    role_id: "restrictedcontrol".into(),
                    collection_path: None,
                });
                ts.push(team);
            }
            teams.insert(org.clone(), ts);
            grants.push(Grant {
                subject_id: format!("o-{o:03}"),
                object_id: "kubernetesnamespaces".into(),
                role_id: "viewonly".into(),
                collection_path: None,
            });
        }
        accounts.sort_by(|a, b| a.name.cmp(&b.name));
        let role = |id: &str, name: &str| Role {
            id: id.into(),
            name: name.into(),
            system_role: true,
            operations: Value::Null,
        };
        Mke3State {
            version: self.mke3_version.clone(),
            config_toml: fixture_config_toml(self.calico_kdd),
            accounts,
            org_members,
            teams,
            team_members,
            roles: vec![
                role("none", "None"),
                role("viewonly", "View Only"),
                role("restrictedcontrol", "Restricted Control"),
                role("scheduler", "Scheduler"),
                role("fullcontrol", "Full Control"),
            ],
            collections: vec![
                Collection {
                    id: "swarm".into(),
                    name: "Swarm".into(),
                    path: "/".into(),
                    parent_ids: vec![],
                    label_constraints: vec![],
                    legacylabelkey: String::new(),
                    legacylabelvalue: String::new(),
                    created_at: String::new(),
                    updated_at: String::new(),
                },
                Collection {
                    id: "shared".into(),
                    name: "Shared".into(),
                    path: "/Shared".into(),
                    parent_ids: vec!["swarm".into()],
                    label_constraints: vec![],
                    legacylabelkey: String::new(),
                    legacylabelvalue: String::new(),
                    created_at: String::new(),
                    updated_at: String::new(),
                },
            ],
            grants,
            admin_user: "admin".into(),
            admin_password: Some(Secret::new(FIXTURE_ADMIN_PASSWORD.into())),
            always_up: false,
        }
    }
}
