//! The pre-upgrade checks of the MKE flow: pure functions over gathered facts that return a
//! report (ok / warn / fail with a reason per subject). They never mutate anything; the flow
//! gathers the facts read-only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use ferry_core::checks::{CheckReport, Status};
use ferry_core::cluster::Node;

/// The heading of the rendered report, as mkectl prints it.
pub const TITLE: &str = "Pre-upgrade checks";

/// Minimum CPU cores (ferry's threshold: mkectl documents repeated failures with 2 vCPUs and
/// tests with 8).
pub const MIN_CPUS: u32 = 4;
/// Minimum total memory in KiB (16 GiB; failures documented with 8 GB, tested with 32 GB).
pub const MIN_MEM_KIB: u64 = 16 * 1024 * 1024;
/// What every host keeps free under `/var/lib` besides what the upgrade writes there. (Before
/// 4.1.0 mkectl failed under 2 GB free whatever the host needed, BOP-1441; ferry counts what
/// each host needs instead: [`disk_need`].)
pub const DISK_MARGIN: u64 = 512 << 20;
/// What ferry counts for the k0s binary of a release it downloads (its size is known only once
/// downloaded; a k0s binary is a few hundred MiB). k0s unpacks the components it embeds
/// (containerd, kubelet, etcd, ...) into `/var/lib/k0s/bin`, about as much again as the binary.
pub const K0S_RELEASE_ESTIMATE: u64 = 300 << 20;
/// etcd's own quota when `--quota-backend-bytes` is not given (2 GiB).
pub const ETCD_DEFAULT_QUOTA: u64 = 2 << 30;
/// MKE 4k's `etcd.storageQuota` when the configuration sets none (also MKE 3's default of
/// `cluster_config.etcd_storage_quota`).
pub const MKE4_DEFAULT_QUOTA: &str = "2GB";
/// The share of a quota (percent) at which the etcd check warns, and at which it fails for
/// MKE 3's own quota (etcd refuses writes at 100 %, with the `NOSPACE` alarm).
pub const ETCD_WARN_PERCENT: u64 = 80;
pub const ETCD_FAIL_PERCENT: u64 = 95;
/// Ports k0s needs on a controller that MKE 3 does not already hold (6443 and 10250 are MKE 3's
/// own and are freed when its containers stop).
pub const K0S_CONTROLLER_PORTS: [u16; 3] = [2380, 8132, 9443];

/// What the flow gathered about one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFacts {
    /// The host's name in the hosts file.
    pub host: String,
    pub hostname: String,
    /// `active` or `inactive`.
    pub swarm_state: String,
    /// A swarm manager (MKE 3 manager).
    pub manager: bool,
    pub cpus: u32,
    pub mem_kib: u64,
    /// Bytes free under `/var/lib`.
    pub disk_free: u64,
    pub listening: BTreeSet<u16>,
    /// The MKE 3 data the cleanup (`mke.remove-mke3`) archives into
    /// `/var/lib/ferry/mke3-data.tar.gz`: `du -sb` of the host's `ucp-*` volumes and, in a
    /// swarm, `/var/lib/docker/swarm`, uncompressed (an upper bound of the archive). `None` when
    /// it could not be measured ([`HostFacts::mke3_data_error`]).
    pub mke3_data_bytes: Option<u64>,
    pub mke3_data_error: Option<String>,
    /// The kube-proxy MKE 3 runs on the host.
    pub kube_proxy: KubeProxy,
}

/// The kube-proxy of a host, as `docker container inspect ucp-kube-proxy` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum KubeProxy {
    /// No `ucp-kube-proxy` container.
    #[default]
    Absent,
    /// Its `--proxy-mode` (`None`: not given, kube-proxy's default on Linux, iptables) and the
    /// `--config` file it reads, if any (a mode set there is not read).
    Present {
        mode: Option<String>,
        config: Option<String>,
    },
    /// The container could not be inspected.
    Unreadable { error: String },
}

/// The MKE 3 etcd (`ucp-kv`) as the leader reports it, and the quotas it is held against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdFacts {
    /// The host asked: the leader (the first manager), which takes the etcd backup.
    pub host: String,
    /// `etcdctl endpoint status`: the database's size (what etcd's quota counts), the part of
    /// it in use (the rest is freed pages a defragmentation gives back) and the revision.
    pub db_size: Option<u64>,
    pub db_size_in_use: Option<u64>,
    pub revision: Option<u64>,
    /// Raised alarms (`etcdctl alarm list`), e.g. `NOSPACE`.
    pub alarms: Vec<String>,
    /// MKE 3's own quota (`--quota-backend-bytes` or `ETCD_QUOTA_BACKEND_BYTES` of the `ucp-kv`
    /// container); `None`: etcd's default, [`ETCD_DEFAULT_QUOTA`].
    pub mke3_quota: Option<u64>,
    /// `etcd.storageQuota` of the converted configuration (from MKE 3's
    /// `cluster_config.etcd_storage_quota`); `None`: MKE 4k's default, [`MKE4_DEFAULT_QUOTA`].
    pub mke4_quota: Option<String>,
    /// What could not be read, with the command's error.
    pub error: Option<String>,
}

/// Calico's dataplane as the cluster declares it (Calico on KDD keeps its configuration in
/// Kubernetes): read to catch the eBPF dataplane before anything changes, which mkectl notices
/// only about 10 minutes into its upgrade. Felix takes `FELIX_BPFENABLED` from its environment
/// over the node's `FelixConfiguration` (`node.<node>`) over the cluster's (`default`); unset,
/// eBPF is off. (What the hosts hold, such as pinned maps under `/sys/fs/bpf/tc/globals/cali_*`,
/// is no reliable sign, so none is read.) When the settings cannot be read, the configuration's
/// `calico_ebpf_enabled` (a blocker of `mke3-config`) is the only eBPF check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalicoFacts {
    /// `spec.bpfEnabled` of every `FelixConfiguration` (`crd.projectcalico.org/v1`) by name;
    /// `None` when they could not be listed (then the live eBPF state is unknown and the
    /// configuration's `calico_ebpf_enabled`, a blocker of `mke3-config`, is all there is).
    pub felix_bpf: Option<BTreeMap<String, Option<bool>>>,
    /// `FELIX_BPFENABLED` of the `calico-node` container of DaemonSet `kube-system/calico-node`.
    pub bpf_env: Option<String>,
    /// What could not be read.
    pub errors: Vec<String>,
}

impl CalicoFacts {
    /// Whether Felix runs eBPF on node `node`, and why ferry thinks so; `None` when unknown.
    pub fn ebpf(&self, node: &str) -> Option<(bool, String)> {
        if let Some(v) = &self.bpf_env {
            return Some((
                felix_bool(v),
                format!("FELIX_BPFENABLED={v} in DaemonSet kube-system/calico-node"),
            ));
        }
        let felix = self.felix_bpf.as_ref()?;
        let node_cfg = format!("node.{node}");
        for name in [node_cfg.as_str(), "default"] {
            if let Some(Some(b)) = felix.get(name) {
                return Some((*b, format!("FelixConfiguration {name}: bpfEnabled {b}")));
            }
        }
        Some((false, "no FelixConfiguration enables bpfEnabled".into()))
    }
}

/// Felix's reading of a boolean parameter.
fn felix_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "t" | "1" | "yes" | "y"
    )
}

/// Two hosts of the hosts file are the same machine or share a name: k0s names nodes by
/// hostname, so a duplicate breaks the join (from [`ferry_core::facts::duplicates`]).
pub type Duplicate = (String, String);

/// Everything the checks look at.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub mke3_version: String,
    /// Blocking conditions of the configuration (from ferry-config-convert), e.g. the Calico
    /// etcd datastore.
    pub config_blockers: Vec<String>,
    pub nodes: Vec<Node>,
    pub hosts: Vec<HostFacts>,
    /// A leftover `~/.mke/mke.kubeconf`, if found.
    pub leftover_kubeconfig: Option<PathBuf>,
    /// `(host, problem)` for every duplicate hostname or private address.
    pub duplicates: Vec<Duplicate>,
    /// The MKE 3 etcd and its quotas.
    pub etcd: EtcdFacts,
    /// Calico's dataplane.
    pub calico: CalicoFacts,
    /// The size of the k0s binary every host gets: the `--k0s-binary` file's, or
    /// [`K0S_RELEASE_ESTIMATE`] for a release downloaded on the host.
    pub k0s_binary_bytes: u64,
}

/// Switches of the checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOptions {
    pub skip_cpu_cores_check: bool,
    pub skip_total_memory_check: bool,
    pub skip_disk_space_check: bool,
}

/// Whether MKE 3 `version` may be upgraded: 3.7.15 or a later 3.7, or any 3.8.
pub fn version_supported(version: &str) -> bool {
    let v = version.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<u32> = core.split('.').filter_map(|p| p.parse().ok()).collect();
    matches!(parts.as_slice(), [3, 7, p, ..] if *p >= 15) || matches!(parts.as_slice(), [3, 8, ..])
}

/// Runs every check.
pub fn run(facts: &Facts, options: &CheckOptions) -> CheckReport {
    let mut r = CheckReport::new(TITLE);
    if version_supported(&facts.mke3_version) {
        r.push(
            "mke3-version",
            "cluster",
            Status::Ok,
            format!("MKE {} can be upgraded", facts.mke3_version),
        );
    } else {
        r.push(
            "mke3-version",
            "cluster",
            Status::Fail,
            format!(
                "MKE {} cannot be upgraded: only MKE 3.7.15+ and MKE 3.8.x versions can be upgraded to MKE 4k",
                facts.mke3_version
            ),
        );
    }
    if facts.config_blockers.is_empty() {
        r.push(
            "mke3-config",
            "cluster",
            Status::Ok,
            "the configuration can be converted (Calico uses the KDD datastore)".into(),
        );
    }
    for b in &facts.config_blockers {
        r.push(
            "mke3-config",
            "cluster",
            Status::Fail,
            format!("unsupported configuration for mke4 upgrade: {b}"),
        );
    }
    etcd_quota(&mut r, &facts.etcd);
    calico_unknown(&mut r, &facts.calico);
    // Nodes and hosts.
    let by_name: BTreeMap<&str, &Node> = facts.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let hostnames: BTreeSet<&str> = facts.hosts.iter().map(|h| h.hostname.as_str()).collect();
    for n in &facts.nodes {
        if n.ready {
            r.push("nodes-ready", &n.name, Status::Ok, "node is Ready".into());
        } else {
            r.push(
                "nodes-ready",
                &n.name,
                Status::Fail,
                "node is not Ready".into(),
            );
        }
        if !hostnames.contains(n.name.as_str()) {
            r.push(
                "hosts-match",
                &n.name,
                Status::Fail,
                "node is not in the hosts file: every node must be listed".into(),
            );
        }
    }
    for h in &facts.hosts {
        match by_name.get(h.hostname.as_str()) {
            Some(_) => r.push(
                "hosts-match",
                &h.host,
                Status::Ok,
                format!(
                    "host is node {} ({})",
                    h.hostname,
                    if h.manager { "manager" } else { "worker" }
                ),
            ),
            None => r.push(
                "hosts-match",
                &h.host,
                Status::Fail,
                format!(
                    "host (hostname {}) is not a node of the cluster",
                    h.hostname
                ),
            ),
        }
        if h.swarm_state != "active" {
            r.push(
                "roles",
                &h.host,
                Status::Fail,
                format!(
                    "cannot detect the role: the host is not part of the swarm (state {})",
                    h.swarm_state
                ),
            );
        }
        let cpu = if h.cpus >= MIN_CPUS {
            (Status::Ok, format!("{} CPU cores", h.cpus))
        } else if options.skip_cpu_cores_check {
            (
                Status::Warn,
                format!(
                    "{} CPU cores, fewer than {MIN_CPUS} (check skipped)",
                    h.cpus
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{} CPU cores, fewer than {MIN_CPUS} (--skip-cpu-cores-check to go on anyway)",
                    h.cpus
                ),
            )
        };
        r.push("cpu-cores", &h.host, cpu.0, cpu.1);
        let gib = |k: u64| k as f64 / (1024.0 * 1024.0);
        let mem = if h.mem_kib >= MIN_MEM_KIB {
            (Status::Ok, format!("{:.1} GiB memory", gib(h.mem_kib)))
        } else if options.skip_total_memory_check {
            (
                Status::Warn,
                format!(
                    "{:.1} GiB memory, less than 16 GiB (check skipped)",
                    gib(h.mem_kib)
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{:.1} GiB memory, less than 16 GiB (--skip-total-memory-check to go on anyway)",
                    gib(h.mem_kib)
                ),
            )
        };
        r.push("total-memory", &h.host, mem.0, mem.1);
        disk_space(&mut r, facts, h, options);
        dataplane(&mut r, facts, h);
        let busy: Vec<String> = K0S_CONTROLLER_PORTS
            .iter()
            .filter(|p| h.manager && h.listening.contains(p))
            .map(u16::to_string)
            .collect();
        if busy.is_empty() {
            r.push(
                "ports",
                &h.host,
                Status::Ok,
                "ports k0s needs are free".into(),
            );
        } else {
            r.push(
                "ports",
                &h.host,
                Status::Fail,
                format!("ports k0s needs are in use: {}", busy.join(", ")),
            );
        }
    }
    if facts.duplicates.is_empty() {
        r.push(
            "hosts-unique",
            "cluster",
            Status::Ok,
            "every host has its own hostname and private address".into(),
        );
    }
    for (host, problem) in &facts.duplicates {
        r.push("hosts-unique", host, Status::Fail, problem.clone());
    }
    let managers = facts.hosts.iter().filter(|h| h.manager).count();
    if managers % 2 == 1 {
        r.push(
            "manager-count",
            "cluster",
            Status::Ok,
            format!("{managers} manager(s), an odd number"),
        );
    } else {
        r.push(
            "manager-count",
            "cluster",
            Status::Fail,
            format!("{managers} managers: the number of managers must be odd"),
        );
    }
    match &facts.leftover_kubeconfig {
        None => r.push(
            "leftover-kubeconfig",
            "cluster",
            Status::Ok,
            "no kubeconfig left by an earlier attempt".into(),
        ),
        Some(p) => r.push(
            "leftover-kubeconfig",
            "cluster",
            Status::Fail,
            format!(
                "{} exists from an earlier attempt and blocks the upgrade: delete it",
                p.display()
            ),
        ),
    }
    r
}

// ---------------------------------------------------------------------------------------------
// The checks MKE 4k 4.1.x added: the etcd storage quota (4.1.1), the free space each host needs
// (the fixed 2 GB rule was dropped in 4.1.0), and the dataplanes mkectl refuses only about 10
// minutes into its upgrade (IPVS, Calico eBPF).

/// A size as people read it: `512 B`, `12.3 MiB`, `2.0 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A size as MKE's configuration writes one (`2GB`, `8GiB`, `512MB`, `4G`, `1.5GB`,
/// `2147483648`). The SI units (`KB`, `MB`, `GB`, `TB`, or `K`, `M`, `G`, `T`) are read as
/// powers of 1000 and the binary ones (`KiB`/`Ki`, ...) as powers of 1024, in any case. MKE 4k
/// does not document which reading `etcd.storageQuota` gets: the decimal one is the smaller, so
/// the etcd check errs on the side of refusing. `None` for anything else.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut bytes = int.checked_mul(factor)?;
    let digits = &frac[..frac.len().min(12)];
    if !digits.is_empty() {
        let f: u128 = digits.parse().ok()?;
        let part = f * u128::from(factor) / 10u128.pow(digits.len() as u32);
        bytes = bytes.checked_add(u64::try_from(part).ok()?)?;
    }
    Some(bytes)
}

/// One endpoint of `etcdctl endpoint status -w json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    pub endpoint: String,
    pub db_size: u64,
    pub db_size_in_use: Option<u64>,
    pub revision: Option<u64>,
    /// The status's `errors`: etcd lists its raised alarms there (`memberID:… alarm:NOSPACE`).
    pub errors: Vec<String>,
}

/// The local endpoint's status (`127.0.0.1`, else the first) of `etcdctl endpoint status -w
/// json`: `[{"Endpoint": …, "Status": {"header": {"revision": …}, "dbSize": …, "dbSizeInUse": …,
/// "errors": […]}}]`.
pub fn parse_endpoint_status(text: &str) -> Result<EndpointStatus, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        endpoint: String,
        status: Raw,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        #[serde(default)]
        header: Header,
        db_size: Option<u64>,
        db_size_in_use: Option<u64>,
        #[serde(default)]
        errors: Vec<String>,
    }
    #[derive(Default, Deserialize)]
    struct Header {
        revision: Option<u64>,
    }
    let shown = || {
        let t = text.trim();
        if t.is_empty() {
            "nothing".to_string()
        } else if t.chars().count() > 200 {
            format!("{:?}…", t.chars().take(200).collect::<String>())
        } else {
            format!("{t:?}")
        }
    };
    let entries: Vec<Entry> = serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "etcdctl endpoint status printed {} ({e}), not its JSON status",
            shown()
        )
    })?;
    let local = entries
        .iter()
        .position(|e| e.endpoint.contains("127.0.0.1"))
        .unwrap_or(0);
    let Some(e) = entries.into_iter().nth(local) else {
        return Err("etcdctl endpoint status printed no endpoint".into());
    };
    let db_size = e
        .status
        .db_size
        .ok_or_else(|| format!("the status of {} has no dbSize", e.endpoint))?;
    Ok(EndpointStatus {
        endpoint: e.endpoint,
        db_size,
        db_size_in_use: e.status.db_size_in_use,
        revision: e.status.header.revision,
        errors: e.status.errors,
    })
}

/// The alarms in `etcdctl alarm list` output (`memberID:13803658152347727308 alarm:NOSPACE`),
/// or in a status's `errors`: `NOSPACE`, `CORRUPT`, sorted, once each.
pub fn parse_alarms(text: &str) -> Vec<String> {
    let mut alarms: Vec<String> = text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("alarm:"))
        .filter(|a| !a.is_empty() && *a != "NONE")
        .map(str::to_string)
        .collect();
    alarms.sort();
    alarms.dedup();
    alarms
}

/// The total of `du -sb PATH…` over `paths` paths (one `<bytes>\t<path>` line each).
pub fn parse_du(text: &str, paths: usize) -> Result<u64, String> {
    let mut total = 0u64;
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let n = line
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("du printed {line:?}, not a size"))?;
        total = total.saturating_add(n);
        lines += 1;
    }
    if lines == paths {
        Ok(total)
    } else {
        Err(format!("du printed {lines} size(s) for {paths} path(s)"))
    }
}

/// The one container of a `docker container inspect NAME` answer.
fn inspected(inspect: &Value) -> Option<&Value> {
    match inspect {
        Value::Array(items) => items.first(),
        v @ Value::Object(_) => Some(v),
        _ => None,
    }
}

/// A container's command line: `Path` and `Args` (what runs), else `Config.Entrypoint` and
/// `Config.Cmd`.
fn command_line(c: &Value) -> Vec<String> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let args = strings(c.get("Args"));
    if !args.is_empty() {
        let mut line = strings(c.get("Path"));
        line.extend(args);
        return line;
    }
    let mut line = strings(c.pointer("/Config/Entrypoint"));
    line.extend(strings(c.pointer("/Config/Cmd")));
    line
}

/// The value of flag `name` on a command line: `--name=V`, `--name V` (or with one dash, as Go's
/// flag package also reads them); the last one wins, as for both flag parsers.
pub fn flag_value(args: &[String], name: &str) -> Option<String> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(bare) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        if bare == name {
            found = it.next().cloned();
        } else if let Some(v) = bare.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

/// MKE 3's etcd quota from `docker container inspect ucp-kv`: `--quota-backend-bytes` on its
/// command line, else `ETCD_QUOTA_BACKEND_BYTES` in its environment (etcd takes the flag over
/// the variable); `Ok(None)` when neither is set, or set to 0: etcd's default then.
pub fn etcd_quota_from_inspect(inspect: &Value) -> Result<Option<u64>, String> {
    let c = inspected(inspect).ok_or("docker container inspect ucp-kv printed no container")?;
    let from_env = || {
        c.pointer("/Config/Env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|e| e.strip_prefix("ETCD_QUOTA_BACKEND_BYTES="))
            .map(str::to_string)
    };
    let (value, source) = match flag_value(&command_line(c), "quota-backend-bytes") {
        Some(v) => (v, "--quota-backend-bytes"),
        None => match from_env() {
            Some(v) => (v, "ETCD_QUOTA_BACKEND_BYTES"),
            None => return Ok(None),
        },
    };
    let bytes: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("ucp-kv's {source} is {value:?}, not a number of bytes"))?;
    Ok(u64::try_from(bytes).ok().filter(|b| *b > 0))
}

/// The kube-proxy of `docker container inspect ucp-kube-proxy`.
pub fn kube_proxy_from_inspect(inspect: &Value) -> KubeProxy {
    match inspected(inspect) {
        None => KubeProxy::Absent,
        Some(c) => {
            let line = command_line(c);
            KubeProxy::Present {
                mode: flag_value(&line, "proxy-mode"),
                config: flag_value(&line, "config"),
            }
        }
    }
}

/// A quota for MKE 3's `cluster_config.etcd_storage_quota` under which `db` stays below the
/// warning share.
fn suggested_quota(db: u64) -> String {
    let mut gb: u128 = 2;
    while u128::from(db) * 100 >= gb * 1_000_000_000 * u128::from(ETCD_WARN_PERCENT) {
        gb *= 2;
    }
    format!("{gb}GB")
}

/// `etcd-quota`: the MKE 3 etcd's data must fit MKE 4k's etcd quota, and MKE 3's etcd must not
/// be (nearly) out of space.
fn etcd_quota(r: &mut CheckReport, e: &EtcdFacts) {
    const ID: &str = "etcd-quota";
    let subject = if e.host.is_empty() {
        "cluster"
    } else {
        e.host.as_str()
    };
    let db = match (&e.error, e.db_size) {
        (None, Some(db)) => db,
        (error, _) => {
            r.push(
                ID,
                subject,
                Status::Fail,
                format!(
                    "cannot read the size of the MKE 3 etcd (ucp-kv): {} (the etcd backup would fail too)",
                    error.as_deref().unwrap_or("etcdctl reported no dbSize")
                ),
            );
            return;
        }
    };
    let q4_text = e.mke4_quota.as_deref().unwrap_or(MKE4_DEFAULT_QUOTA);
    let Some(q4) = parse_size(q4_text).filter(|q| *q > 0) else {
        r.push(
            ID,
            subject,
            Status::Fail,
            format!(
                "MKE 4k's etcd.storageQuota {q4_text:?} (from cluster_config.etcd_storage_quota) is not a size (e.g. \"4GB\"): the quota k0s's etcd would get is unknown"
            ),
        );
        return;
    };
    let q3 = e.mke3_quota.unwrap_or(ETCD_DEFAULT_QUOTA);
    let percent = |q: u64| u128::from(db) * 100 / u128::from(q);
    let reaches = |q: u64, p: u64| u128::from(db) * 100 >= u128::from(q) * u128::from(p);
    let held = format!(
        "{}{}",
        human(db),
        e.db_size_in_use
            .map(|u| format!(" ({} in use)", human(u)))
            .unwrap_or_default()
    );
    let mut failed = false;
    if db > q4 {
        failed = true;
        let defrag = match e.db_size_in_use {
            Some(u) if u < q4 && u < db => format!(
                "; or defragment the MKE 3 etcd first (`etcdctl defrag`): only {} of it is in use",
                human(u)
            ),
            _ => String::new(),
        };
        r.push(
            ID,
            subject,
            Status::Fail,
            format!(
                "the MKE 3 etcd holds {held}, more than MKE 4k's etcd quota of {} (etcd.storageQuota {q4_text}): k0s's etcd would refuse that much data. Raise cluster_config.etcd_storage_quota in the MKE 3 configuration (to \"{}\" or more) and run the upgrade again{defrag}",
                human(q4),
                suggested_quota(db)
            ),
        );
    }
    let nospace = e.alarms.iter().any(|a| a == "NOSPACE");
    if nospace || reaches(q3, ETCD_FAIL_PERCENT) {
        failed = true;
        let state = if nospace {
            format!(
                "has raised the NOSPACE alarm and refuses writes (it holds {held} of its {} quota)",
                human(q3)
            )
        } else {
            format!(
                "holds {held}, {}% of its {} quota: it is about to refuse writes (NOSPACE)",
                percent(q3),
                human(q3)
            )
        };
        let revision = e
            .revision
            .map_or("<revision>".to_string(), |r| r.to_string());
        r.push(
            ID,
            subject,
            Status::Fail,
            format!(
                "the MKE 3 etcd {state}: free space first, in the ucp-kv container: `etcdctl compaction {revision}`, `etcdctl defrag`, then `etcdctl alarm disarm` (or raise cluster_config.etcd_storage_quota)"
            ),
        );
    }
    for a in e.alarms.iter().filter(|a| *a != "NOSPACE") {
        failed = true;
        r.push(
            ID,
            subject,
            Status::Fail,
            format!(
                "the MKE 3 etcd has raised the {a} alarm (`etcdctl alarm list`): resolve it before the upgrade"
            ),
        );
    }
    if failed {
        return;
    }
    let mut near = Vec::new();
    if reaches(q3, ETCD_WARN_PERCENT) {
        near.push(format!(
            "{}% of its own quota of {}",
            percent(q3),
            human(q3)
        ));
    }
    if reaches(q4, ETCD_WARN_PERCENT) {
        near.push(format!(
            "{}% of MKE 4k's etcd.storageQuota {q4_text} ({})",
            percent(q4),
            human(q4)
        ));
    }
    if near.is_empty() {
        r.push(
            ID,
            subject,
            Status::Ok,
            format!(
                "the MKE 3 etcd holds {held} of {} (its quota) and of {} (MKE 4k's etcd.storageQuota {q4_text})",
                human(q3),
                human(q4)
            ),
        );
    } else {
        r.push(
            ID,
            subject,
            Status::Warn,
            format!(
                "the MKE 3 etcd holds {held}: {}; compact and defragment it (`etcdctl defrag`) or raise cluster_config.etcd_storage_quota before it fills up",
                near.join(" and ")
            ),
        );
    }
}

/// What host `h` needs free under `/var/lib`, part by part: the MKE 3 data archive the cleanup
/// writes, the k0s binary's size (about what k0s unpacks into `/var/lib/k0s/bin`; the binary
/// itself goes to `/usr/local/bin`), on managers the data k0s's etcd will hold, on the leader
/// the etcd snapshot kept in `/var/lib/ferry`, and [`DISK_MARGIN`]. All of them are there at
/// once by the cleanup, so their sum is what the host needs at most.
/// An etcd whose size could not be read is counted at its quota, the most it can hold.
pub fn disk_need(facts: &Facts, h: &HostFacts) -> Result<Vec<(String, u64)>, String> {
    let archive = match (h.mke3_data_bytes, &h.mke3_data_error) {
        (Some(b), None) => b,
        (_, error) => {
            return Err(format!(
                "cannot measure the MKE 3 data the cleanup archives: {}",
                error.as_deref().unwrap_or("no size")
            ));
        }
    };
    let mut parts = vec![
        ("MKE 3 data archive".to_string(), archive),
        ("k0s".to_string(), facts.k0s_binary_bytes),
    ];
    let (etcd, unknown) = match facts.etcd.db_size {
        Some(db) => (db, ""),
        None => (
            facts.etcd.mke3_quota.unwrap_or(ETCD_DEFAULT_QUOTA),
            " (its quota: the size is unknown)",
        ),
    };
    if h.manager {
        parts.push((format!("k0s etcd data{unknown}"), etcd));
    }
    if h.host == facts.etcd.host {
        parts.push((format!("etcd snapshot{unknown}"), etcd));
    }
    parts.push(("margin".to_string(), DISK_MARGIN));
    Ok(parts)
}

/// `disk-space`: what the host has free under `/var/lib` against what the upgrade writes there.
fn disk_space(r: &mut CheckReport, facts: &Facts, h: &HostFacts, options: &CheckOptions) {
    let unless_skipped = |m: String| {
        if options.skip_disk_space_check {
            (Status::Warn, format!("{m} (check skipped)"))
        } else {
            (
                Status::Fail,
                format!("{m} (--skip-disk-space-check to go on anyway)"),
            )
        }
    };
    let free = human(h.disk_free);
    let (status, message) = match disk_need(facts, h) {
        Err(e) => unless_skipped(e),
        Ok(parts) => {
            let need = parts.iter().fold(0u64, |t, (_, b)| t.saturating_add(*b));
            let breakdown = parts
                .iter()
                .map(|(what, b)| format!("{what} {}", human(*b)))
                .collect::<Vec<_>>()
                .join(" + ");
            if h.disk_free >= need {
                (
                    Status::Ok,
                    format!(
                        "{free} free under /var/lib, {} needed: {breakdown}",
                        human(need)
                    ),
                )
            } else {
                unless_skipped(format!(
                    "{free} free under /var/lib, less than the {} needed: {breakdown}",
                    human(need)
                ))
            }
        }
    };
    r.push("disk-space", &h.host, status, message);
}

/// `dataplane` (cluster): when Calico's dataplane settings could not be read, why; the eBPF
/// blocker then rests on the configuration's `calico_ebpf_enabled` (`mke3-config`).
fn calico_unknown(r: &mut CheckReport, calico: &CalicoFacts) {
    if calico.bpf_env.is_none() && calico.felix_bpf.is_none() {
        r.push(
            "dataplane",
            "cluster",
            Status::Ok,
            format!(
                "Calico's eBPF state cannot be read live ({}): mke3-config checks calico_ebpf_enabled",
                if calico.errors.is_empty() {
                    "not gathered".to_string()
                } else {
                    calico.errors.join("; ")
                }
            ),
        );
    }
}

/// `dataplane`: kube-proxy in iptables mode and Calico without eBPF on the host, as they run
/// (the configuration's `kube_proxy_mode` and `calico_ebpf_enabled` are `mke3-config`'s).
fn dataplane(r: &mut CheckReport, facts: &Facts, h: &HostFacts) {
    const ID: &str = "dataplane";
    let node = &h.hostname;
    let mut fine = Vec::new();
    let mut fails = Vec::new();
    match &h.kube_proxy {
        KubeProxy::Absent => fine.push("no kube-proxy container".to_string()),
        KubeProxy::Present { mode, config } => {
            match (mode.as_deref().map(str::trim).filter(|m| !m.is_empty()), config) {
                (Some(m), _) if m.eq_ignore_ascii_case("iptables") => {
                    fine.push("kube-proxy in iptables mode".into());
                }
                (Some(m), _) => fails.push(format!(
                    "kube-proxy on {node} runs in {m} mode (ucp-kube-proxy --proxy-mode={m}): MKE 4k supports iptables only, and mkectl fails about 10 minutes into the upgrade of such a cluster; switch MKE 3 to iptables first (cluster_config.kube_proxy_mode = \"iptables\", no --proxy-mode in custom_kube_proxy_flags)"
                )),
                (None, Some(c)) => fine.push(format!(
                    "kube-proxy reads its mode from {c} (not read here; mke3-config checks kube_proxy_mode)"
                )),
                (None, None) => fine.push("kube-proxy in iptables mode (its default)".into()),
            }
        }
        KubeProxy::Unreadable { error } => {
            fails.push(format!("cannot read the mode of kube-proxy: {error}"));
        }
    }
    match facts.calico.ebpf(node) {
        Some((true, why)) => fails.push(format!(
            "Calico runs the eBPF dataplane on {node} ({why}): MKE 4k cannot upgrade a cluster on Calico eBPF, and mkectl fails about 10 minutes into the upgrade of one; switch Calico back to its iptables dataplane first (cluster_config.calico_ebpf_enabled = false)"
        )),
        Some((false, _)) => fine.push("Calico without eBPF".into()),
        // why: once, in `calico_unknown`'s finding about the cluster
        None => fine.push("Calico's eBPF state not known live".into()),
    }
    if fails.is_empty() {
        r.push(ID, &h.host, Status::Ok, fine.join(", "));
    }
    for f in fails {
        r.push(ID, &h.host, Status::Fail, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: bool) -> Node {
        Node {
            name: name.into(),
            roles: vec![],
            ready,
            unschedulable: false,
            labels: BTreeMap::new(),
            internal_ip: None,
            kubelet_version: "v1.27".into(),
            ..Node::default()
        }
    }

    fn host(h: &str, hostname: &str, manager: bool) -> HostFacts {
        HostFacts {
            host: h.into(),
            hostname: hostname.into(),
            swarm_state: "active".into(),
            manager,
            cpus: 8,
            mem_kib: MIN_MEM_KIB * 2,
            disk_free: 100 << 30,
            listening: BTreeSet::from([22, 6443]),
            mke3_data_bytes: Some(300 << 20),
            mke3_data_error: None,
            kube_proxy: KubeProxy::Present {
                mode: Some("iptables".into()),
                config: None,
            },
        }
    }

    fn facts() -> Facts {
        Facts {
            mke3_version: "3.7.15".into(),
            config_blockers: vec![],
            nodes: vec![node("m0", true), node("w0", true)],
            hosts: vec![host("10.0.0.1", "m0", true), host("10.0.0.2", "w0", false)],
            leftover_kubeconfig: None,
            duplicates: vec![],
            etcd: EtcdFacts {
                host: "10.0.0.1".into(),
                db_size: Some(25_165_824),
                db_size_in_use: Some(12_582_912),
                revision: Some(100),
                alarms: vec![],
                mke3_quota: None,
                mke4_quota: None,
                error: None,
            },
            calico: CalicoFacts {
                felix_bpf: Some(BTreeMap::from([("default".into(), None)])),
                bpf_env: None,
                errors: vec![],
            },
            k0s_binary_bytes: K0S_RELEASE_ESTIMATE,
        }
    }

    fn statuses<'a>(r: &'a CheckReport, check: &str) -> Vec<(&'a str, Status, &'a str)> {
        r.findings
            .iter()
            .filter(|f| f.check == check)
            .map(|f| (f.subject.as_str(), f.status, f.message.as_str()))
            .collect()
    }

    /// The one finding of `check` about `subject`.
    fn one<'a>(r: &'a CheckReport, check: &str, subject: &str) -> (Status, &'a str) {
        let found: Vec<_> = statuses(r, check)
            .into_iter()
            .filter(|(s, _, _)| *s == subject)
            .collect();
        assert_eq!(found.len(), 1, "{check} ({subject}): {}", r.render());
        (found[0].1, found[0].2)
    }

    #[test]
    fn versions() {
        for ok in ["3.7.15", "3.7.16", "v3.7.20", "3.8.0", "3.8.5-rc1"] {
            assert!(version_supported(ok), "{ok}");
        }
        for bad in ["3.7.14", "3.6.9", "3.9.0", "4.0.0", "", "x"] {
            assert!(!version_supported(bad), "{bad}");
        }
    }

    #[test]
    fn a_healthy_cluster_passes() {
        let r = run(&facts(), &CheckOptions::default());
        assert!(r.passed(), "{}", r.render());
    }

    #[test]
    fn each_problem_fails_with_a_reason() {
        let mut f = facts();
        f.mke3_version = "3.6.9".into();
        f.config_blockers =
            vec!["mke3 cluster is using etcdv3 and not kdd backend for calico".into()];
        f.nodes[1].ready = false;
        f.nodes.push(node("stray", true));
        f.hosts.push(host("10.0.0.3", "m1", true));
        f.hosts[0].cpus = 2;
        f.hosts[0].listening.insert(9443);
        f.leftover_kubeconfig = Some("/home/u/.mke/mke.kubeconf".into());
        f.duplicates = vec![("10.0.0.3".into(), "10.0.0.3: duplicate hostname m1".into())];
        f.hosts[1].disk_free = 1 << 20;
        f.hosts[1].kube_proxy = KubeProxy::Present {
            mode: Some("ipvs".into()),
            config: None,
        };
        f.etcd.alarms = vec!["NOSPACE".into()];
        let r = run(&f, &CheckOptions::default());
        let failed: BTreeSet<&str> = r.failures().iter().map(|x| x.check).collect();
        assert_eq!(
            failed,
            BTreeSet::from([
                "mke3-version",
                "mke3-config",
                "nodes-ready",
                "hosts-match",
                "cpu-cores",
                "ports",
                "manager-count",
                "leftover-kubeconfig",
                "hosts-unique",
                "disk-space",
                "dataplane",
                "etcd-quota",
            ]),
            "{}",
            r.render()
        );
        let r = run(
            &f,
            &CheckOptions {
                skip_cpu_cores_check: true,
                ..CheckOptions::default()
            },
        );
        assert!(
            r.findings
                .iter()
                .any(|x| x.check == "cpu-cores" && x.status == Status::Warn)
        );
    }

    // -----------------------------------------------------------------------------------------
    // etcd-quota

    const STATUS: &str = r#"[{"Endpoint":"https://127.0.0.1:12379","Status":{"header":{"cluster_id":1,"member_id":2,"revision":100,"raft_term":3},"version":"3.5.16","dbSize":25165824,"leader":2,"raftIndex":120,"raftTerm":3,"raftAppliedIndex":120,"dbSizeInUse":12582912}}]"#;

    #[test]
    fn the_endpoint_status_of_etcdctl_is_read() {
        assert_eq!(
            parse_endpoint_status(STATUS).unwrap(),
            EndpointStatus {
                endpoint: "https://127.0.0.1:12379".into(),
                db_size: 25_165_824,
                db_size_in_use: Some(12_582_912),
                revision: Some(100),
                errors: vec![],
            }
        );
        // etcd 3.3 has no dbSizeInUse; member ids above i64; an alarm in the status's errors;
        // with two endpoints the local one counts
        let two = r#"[{"Endpoint":"https://10.0.0.12:12379","Status":{"header":{"revision":7},"dbSize":1}},
            {"Endpoint":"https://127.0.0.1:12379","Status":{"header":{"cluster_id":17237436991929493444,"member_id":9372538179322589801,"revision":5},"dbSize":2147483648,"errors":["memberID:9372538179322589801 alarm:NOSPACE "]}}]"#;
        let s = parse_endpoint_status(two).unwrap();
        assert_eq!(
            (s.db_size, s.db_size_in_use, s.revision),
            (2 << 30, None, Some(5))
        );
        assert_eq!(parse_alarms(&s.errors.join("\n")), ["NOSPACE"]);
        for bad in [
            "",
            "Error: context deadline exceeded",
            "[]",
            r#"[{"Endpoint":"https://127.0.0.1:12379","Status":{"header":{"revision":1}}}]"#,
            r#"{"Endpoint":"x"}"#,
        ] {
            let e = parse_endpoint_status(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(
            parse_endpoint_status("[]")
                .unwrap_err()
                .contains("no endpoint")
        );
        assert!(
            parse_endpoint_status(r#"[{"Endpoint":"e","Status":{}}]"#)
                .unwrap_err()
                .contains("no dbSize")
        );
    }

    #[test]
    fn alarms_are_read_from_alarm_list() {
        assert_eq!(
            parse_alarms(
                "memberID:13803658152347727308 alarm:NOSPACE \nmemberID:2 alarm:NOSPACE \nmemberID:3 alarm:CORRUPT \n"
            ),
            ["CORRUPT", "NOSPACE"]
        );
        assert!(parse_alarms("").is_empty());
        assert!(parse_alarms("memberID:1 alarm:NONE\n").is_empty());
    }

    #[test]
    fn sizes_are_read_and_shown() {
        for (text, bytes) in [
            ("2GB", 2_000_000_000),
            ("4GB", 4_000_000_000),
            ("8GiB", 8 << 30),
            ("512MB", 512_000_000),
            ("512Mi", 512 << 20),
            ("1.5GB", 1_500_000_000),
            (" 2 gb ", 2_000_000_000),
            ("4G", 4_000_000_000),
            ("2147483648", 2 << 30),
            ("100KiB", 100 << 10),
        ] {
            assert_eq!(parse_size(text), Some(bytes), "{text}");
        }
        for bad in [
            "",
            "GB",
            "lots",
            "2XB",
            "-1GB",
            "1.2.3GB",
            ".",
            "99999999999TB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(12_897_485), "12.3 MiB");
        assert_eq!(human(2 << 30), "2.0 GiB");
        assert_eq!(human(2_000_000_000), "1.9 GiB");
    }

    #[test]
    fn the_quota_of_mke3s_etcd_is_read_from_its_container() {
        let inspect = |v: Value| Value::Array(vec![v]);
        let quota = |v: Value| etcd_quota_from_inspect(&inspect(v));
        assert_eq!(
            quota(
                serde_json::json!({"Path": "/bin/etcd", "Args": ["--name=m0", "--quota-backend-bytes=4294967296"]})
            ),
            Ok(Some(4 << 30))
        );
        assert_eq!(
            quota(
                serde_json::json!({"Args": ["--quota-backend-bytes", "8589934592"], "Config": {"Env": ["ETCD_QUOTA_BACKEND_BYTES=1"]}})
            ),
            Ok(Some(8 << 30)),
            "the flag goes over the variable"
        );
        assert_eq!(
            quota(
                serde_json::json!({"Args": [], "Config": {"Cmd": ["etcd", "-quota-backend-bytes=3000000000"]}})
            ),
            Ok(Some(3_000_000_000)),
            "Config.Cmd when there are no Args"
        );
        assert_eq!(
            quota(
                serde_json::json!({"Args": ["--name=m0"], "Config": {"Env": ["PATH=/bin", "ETCD_QUOTA_BACKEND_BYTES=6442450944"]}})
            ),
            Ok(Some(6 << 30))
        );
        assert_eq!(
            quota(serde_json::json!({"Args": ["--name=m0"], "Config": {"Cmd": null, "Env": null}})),
            Ok(None)
        );
        assert_eq!(
            quota(serde_json::json!({"Args": ["--quota-backend-bytes=0"]})),
            Ok(None),
            "0 is etcd's default"
        );
        assert!(
            quota(serde_json::json!({"Args": ["--quota-backend-bytes=8GB"]}))
                .unwrap_err()
                .contains("not a number of bytes")
        );
        assert!(etcd_quota_from_inspect(&Value::Array(vec![])).is_err());
    }

    #[test]
    fn a_small_etcd_passes_with_its_figures() {
        let r = run(&facts(), &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Ok, "{message}");
        assert_eq!(
            message,
            "the MKE 3 etcd holds 24.0 MiB (12.0 MiB in use) of 2.0 GiB (its quota) and of 1.9 GiB (MKE 4k's etcd.storageQuota 2GB)"
        );
    }

    #[test]
    fn an_etcd_larger_than_mke4s_quota_fails_and_says_how_to_raise_it() {
        let mut f = facts();
        f.etcd.mke3_quota = Some(8 << 30);
        f.etcd.db_size = Some(3_000_000_000);
        f.etcd.db_size_in_use = Some(1_000_000_000);
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Fail, "{message}");
        for part in [
            "holds 2.8 GiB (953.7 MiB in use)",
            "MKE 4k's etcd quota of 1.9 GiB (etcd.storageQuota 2GB)",
            "k0s's etcd would refuse",
            "cluster_config.etcd_storage_quota",
            "to \"4GB\" or more",
            "run the upgrade again",
            "`etcdctl defrag`",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        // the converted configuration's quota counts
        f.etcd.mke4_quota = Some("8GB".into());
        let r = run(&f, &CheckOptions::default());
        assert_eq!(one(&r, "etcd-quota", "10.0.0.1").0, Status::Ok);
        f.etcd.mke4_quota = Some("lots".into());
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Fail);
        assert!(message.contains("\"lots\""), "{message}");
    }

    #[test]
    fn an_etcd_near_its_own_quota_or_out_of_space_fails() {
        let mut f = facts();
        f.etcd.mke4_quota = Some("8GB".into());
        f.etcd.db_size = Some((2u64 << 30) / 100 * 96);
        f.etcd.db_size_in_use = None;
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Fail, "{message}");
        for part in [
            "95% of its 2.0 GiB quota",
            "about to refuse writes",
            "`etcdctl compaction 100`",
            "`etcdctl defrag`",
            "`etcdctl alarm disarm`",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        // a NOSPACE alarm fails whatever the size
        let mut f = facts();
        f.etcd.alarms = vec!["NOSPACE".into()];
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Fail);
        assert!(message.contains("NOSPACE alarm"), "{message}");
        // so does any other alarm
        f.etcd.alarms = vec!["CORRUPT".into()];
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Fail);
        assert!(message.contains("CORRUPT alarm"), "{message}");
    }

    #[test]
    fn an_etcd_past_four_fifths_of_a_quota_warns() {
        // of MKE 3's own quota
        let mut f = facts();
        f.etcd.mke3_quota = Some(1 << 30);
        f.etcd.db_size = Some((1u64 << 30) / 100 * 85);
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Warn, "{message}");
        assert!(
            message.contains("84% of its own quota of 1.0 GiB")
                && !message.contains("etcd.storageQuota"),
            "{message}"
        );
        // of MKE 4k's
        let mut f = facts();
        f.etcd.mke3_quota = Some(8 << 30);
        f.etcd.db_size = Some(1_700_000_000);
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Warn, "{message}");
        assert!(
            message.contains("85% of MKE 4k's etcd.storageQuota 2GB (1.9 GiB)")
                && !message.contains("own quota"),
            "{message}"
        );
        assert!(r.passed(), "a warning does not stop the run");
    }

    #[test]
    fn an_etcd_that_cannot_be_read_fails_naming_the_host_and_the_error() {
        let mut f = facts();
        f.etcd = EtcdFacts {
            host: "10.0.0.1".into(),
            error: Some("10.0.0.1: `sudo -n docker exec ucp-kv etcdctl … endpoint status -w json` exited with 1: Error response from daemon: container ucp-kv is not running".into()),
            ..EtcdFacts::default()
        };
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "etcd-quota", "10.0.0.1");
        assert_eq!(status, Status::Fail);
        assert!(
            message.contains("cannot read the size of the MKE 3 etcd (ucp-kv): 10.0.0.1:")
                && message.contains("container ucp-kv is not running")
                && message.contains("the etcd backup would fail too"),
            "{message}"
        );
        // no manager at all
        f.etcd = EtcdFacts {
            error: Some("no MKE 3 manager to ask".into()),
            ..EtcdFacts::default()
        };
        let r = run(&f, &CheckOptions::default());
        assert_eq!(one(&r, "etcd-quota", "cluster").0, Status::Fail);
    }

    // -----------------------------------------------------------------------------------------
    // disk-space

    #[test]
    fn each_host_needs_what_the_upgrade_writes_there() {
        let f = facts();
        let need = |h: &HostFacts| disk_need(&f, h).unwrap();
        // the leader keeps the snapshot too; a worker has no etcd
        let leader: Vec<(String, u64)> = need(&f.hosts[0]);
        assert_eq!(
            leader,
            [
                ("MKE 3 data archive".to_string(), 300 << 20),
                ("k0s".to_string(), K0S_RELEASE_ESTIMATE),
                ("k0s etcd data".to_string(), 25_165_824),
                ("etcd snapshot".to_string(), 25_165_824),
                ("margin".to_string(), DISK_MARGIN),
            ]
        );
        let worker = need(&f.hosts[1]);
        assert_eq!(
            worker.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["MKE 3 data archive", "k0s", "margin"]
        );
        let mut other_manager = host("10.0.0.3", "m1", true);
        other_manager.mke3_data_bytes = Some(0);
        assert_eq!(
            need(&other_manager)
                .iter()
                .map(|p| p.0.as_str())
                .collect::<Vec<_>>(),
            ["MKE 3 data archive", "k0s", "k0s etcd data", "margin"]
        );
        // an etcd of unknown size counts at its quota
        let mut g = facts();
        g.etcd.db_size = None;
        g.etcd.error = Some("down".into());
        let parts = disk_need(&g, &g.hosts[0]).unwrap();
        assert!(parts.contains(&(
            "k0s etcd data (its quota: the size is unknown)".to_string(),
            ETCD_DEFAULT_QUOTA
        )));
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "disk-space", "10.0.0.2");
        assert_eq!(status, Status::Ok);
        assert_eq!(
            message,
            "100.0 GiB free under /var/lib, 1.1 GiB needed: MKE 3 data archive 300.0 MiB + k0s 300.0 MiB + margin 512.0 MiB"
        );
    }

    #[test]
    fn less_free_space_than_needed_fails_unless_skipped() {
        let mut f = facts();
        f.hosts[1].disk_free = 1 << 30;
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "disk-space", "10.0.0.2");
        assert_eq!(status, Status::Fail);
        assert_eq!(
            message,
            "1.0 GiB free under /var/lib, less than the 1.1 GiB needed: MKE 3 data archive 300.0 MiB + k0s 300.0 MiB + margin 512.0 MiB (--skip-disk-space-check to go on anyway)"
        );
        let skip = CheckOptions {
            skip_disk_space_check: true,
            ..CheckOptions::default()
        };
        let r = run(&f, &skip);
        let (status, message) = one(&r, "disk-space", "10.0.0.2");
        assert_eq!(status, Status::Warn);
        assert!(message.ends_with("(check skipped)"), "{message}");
        // under 2 GiB free is no failure by itself any more (MKE 4k 4.1.0, BOP-1441)
        f.hosts[1].disk_free = 1536 << 20;
        let r = run(&f, &CheckOptions::default());
        assert_eq!(one(&r, "disk-space", "10.0.0.2").0, Status::Ok);
        // a large MKE 3 data set needs room for its archive
        f.hosts[1].mke3_data_bytes = Some(40 << 30);
        f.hosts[1].disk_free = 30 << 30;
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "disk-space", "10.0.0.2");
        assert_eq!(status, Status::Fail);
        assert!(
            message.contains("less than the 40.8 GiB needed: MKE 3 data archive 40.0 GiB"),
            "{message}"
        );
    }

    #[test]
    fn unmeasured_mke3_data_fails_unless_skipped() {
        let mut f = facts();
        f.hosts[1].mke3_data_bytes = None;
        f.hosts[1].mke3_data_error = Some(
            "10.0.0.2: `sudo -n du -sb /var/lib/docker/swarm` exited with 1: du: cannot access '/var/lib/docker/swarm': No such file or directory".into(),
        );
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "disk-space", "10.0.0.2");
        assert_eq!(status, Status::Fail);
        assert!(
            message.starts_with("cannot measure the MKE 3 data the cleanup archives: 10.0.0.2: ")
                && message.ends_with("(--skip-disk-space-check to go on anyway)"),
            "{message}"
        );
        let r = run(
            &f,
            &CheckOptions {
                skip_disk_space_check: true,
                ..CheckOptions::default()
            },
        );
        assert_eq!(one(&r, "disk-space", "10.0.0.2").0, Status::Warn);
    }

    #[test]
    fn du_output_is_summed_and_checked() {
        assert_eq!(
            parse_du(
                "1048576\t/var/lib/docker/volumes/ucp-kv\n4096\t/var/lib/docker/swarm\n",
                2
            ),
            Ok(1_052_672)
        );
        assert!(parse_du("1048576\t/var/lib/docker/volumes/ucp-kv\n", 2).is_err());
        assert!(parse_du("lots\t/x\n", 1).is_err());
        assert_eq!(parse_du("", 0), Ok(0));
    }

    // -----------------------------------------------------------------------------------------
    // dataplane

    #[test]
    fn the_mode_of_kube_proxy_is_read_from_its_container() {
        let inspect = |args: &[&str]| serde_json::json!([{"Path": "kube-proxy", "Args": args, "Config": {"Cmd": args}}]);
        let present = |mode: Option<&str>, config: Option<&str>| KubeProxy::Present {
            mode: mode.map(str::to_string),
            config: config.map(str::to_string),
        };
        assert_eq!(
            kube_proxy_from_inspect(&inspect(&["--v=2", "--proxy-mode=ipvs"])),
            present(Some("ipvs"), None)
        );
        assert_eq!(
            kube_proxy_from_inspect(&inspect(&["--proxy-mode", "ipvs", "--v=2"])),
            present(Some("ipvs"), None)
        );
        assert_eq!(
            kube_proxy_from_inspect(&inspect(&["--proxy-mode=iptables"])),
            present(Some("iptables"), None)
        );
        assert_eq!(
            kube_proxy_from_inspect(&inspect(&["--cluster-cidr=192.168.0.0/16"])),
            present(None, None)
        );
        assert_eq!(
            kube_proxy_from_inspect(&inspect(&["--config=/etc/kube-proxy.yaml"])),
            present(None, Some("/etc/kube-proxy.yaml"))
        );
        assert_eq!(
            kube_proxy_from_inspect(&serde_json::json!([])),
            KubeProxy::Absent
        );
    }

    #[test]
    fn kube_proxy_in_ipvs_mode_fails_before_anything_changes() {
        let mut f = facts();
        f.hosts[1].kube_proxy = KubeProxy::Present {
            mode: Some("ipvs".into()),
            config: None,
        };
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "dataplane", "10.0.0.2");
        assert_eq!(status, Status::Fail);
        assert!(
            message.starts_with("kube-proxy on w0 runs in ipvs mode")
                && message.contains("iptables only")
                && message.contains("cluster_config.kube_proxy_mode"),
            "{message}"
        );
        assert_eq!(one(&r, "dataplane", "10.0.0.1").0, Status::Ok);
        // no container: nothing to read on that host
        f.hosts[1].kube_proxy = KubeProxy::Absent;
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "dataplane", "10.0.0.2");
        assert_eq!(status, Status::Ok);
        assert_eq!(message, "no kube-proxy container, Calico without eBPF");
        // no --proxy-mode: kube-proxy's default, iptables
        f.hosts[1].kube_proxy = KubeProxy::Present {
            mode: None,
            config: None,
        };
        let r = run(&f, &CheckOptions::default());
        assert_eq!(
            one(&r, "dataplane", "10.0.0.2"),
            (
                Status::Ok,
                "kube-proxy in iptables mode (its default), Calico without eBPF"
            )
        );
        // a container that cannot be inspected
        f.hosts[1].kube_proxy = KubeProxy::Unreadable {
            error: "10.0.0.2: `sudo -n docker container inspect ucp-kube-proxy` exited with 1: permission denied".into(),
        };
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "dataplane", "10.0.0.2");
        assert_eq!(status, Status::Fail);
        assert!(message.contains("permission denied"), "{message}");
    }

    #[test]
    fn calico_on_ebpf_fails_before_anything_changes() {
        // through calico-node's environment: every host
        let mut f = facts();
        f.calico.bpf_env = Some("true".into());
        let r = run(&f, &CheckOptions::default());
        for (h, node) in [("10.0.0.1", "m0"), ("10.0.0.2", "w0")] {
            let (status, message) = one(&r, "dataplane", h);
            assert_eq!(status, Status::Fail);
            assert!(
                message.starts_with(&format!(
                    "Calico runs the eBPF dataplane on {node} (FELIX_BPFENABLED=true in DaemonSet kube-system/calico-node)"
                )) && message.contains("cluster_config.calico_ebpf_enabled"),
                "{message}"
            );
        }
        // through the cluster's FelixConfiguration, and one node's over it
        let mut f = facts();
        f.calico.felix_bpf = Some(BTreeMap::from([
            ("default".into(), Some(true)),
            ("node.w0".into(), Some(false)),
        ]));
        let r = run(&f, &CheckOptions::default());
        let (status, message) = one(&r, "dataplane", "10.0.0.1");
        assert_eq!(status, Status::Fail);
        assert!(
            message.contains("(FelixConfiguration default: bpfEnabled true)"),
            "{message}"
        );
        assert_eq!(one(&r, "dataplane", "10.0.0.2").0, Status::Ok);
        // the environment goes over the FelixConfigurations
        f.calico.bpf_env = Some("false".into());
        assert!(run(&f, &CheckOptions::default()).passed());
        // unknown live: the configuration check is all there is
        let mut f = facts();
        f.calico = CalicoFacts {
            felix_bpf: None,
            bpf_env: None,
            errors: vec!["FelixConfigurations: invalid: the cluster has no kind FelixConfiguration in crd.projectcalico.org/v1".into()],
        };
        let r = run(&f, &CheckOptions::default());
        assert_eq!(
            one(&r, "dataplane", "10.0.0.1"),
            (
                Status::Ok,
                "kube-proxy in iptables mode, Calico's eBPF state not known live"
            )
        );
        let (status, message) = one(&r, "dataplane", "cluster");
        assert_eq!(status, Status::Ok);
        assert_eq!(
            message,
            "Calico's eBPF state cannot be read live (FelixConfigurations: invalid: the cluster has no kind FelixConfiguration in crd.projectcalico.org/v1): mke3-config checks calico_ebpf_enabled"
        );
        // read: no such finding
        let r = run(&facts(), &CheckOptions::default());
        assert!(
            statuses(&r, "dataplane")
                .iter()
                .all(|(s, _, _)| *s != "cluster")
        );
    }

    #[test]
    fn the_facts_serialize_in_camel_case() {
        let v = serde_json::to_value(facts()).unwrap();
        assert_eq!(v["etcd"]["dbSizeInUse"], 12_582_912);
        assert_eq!(v["hosts"][0]["mke3DataBytes"], 300 << 20);
        assert_eq!(v["hosts"][0]["kubeProxy"]["state"], "present");
        assert_eq!(v["hosts"][0]["kubeProxy"]["mode"], "iptables");
        assert_eq!(v["k0sBinaryBytes"], K0S_RELEASE_ESTIMATE);
        assert!(v["calico"]["felixBpf"].is_object());
    }
}
