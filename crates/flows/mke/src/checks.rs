//! The pre-upgrade checks of the MKE flow: pure functions over gathered facts that return a
//! report (ok / warn / fail with a reason per subject). They never mutate anything; the flow
//! gathers the facts read-only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use ferry_core::checks::{CheckReport, Status};
use ferry_core::cluster::Node;

/// The heading of the rendered report, as mkectl prints it.
pub const TITLE: &str = "Pre-upgrade checks";

/// Minimum CPU cores (ferry's threshold: mkectl documents repeated failures with 2 vCPUs and
/// tests with 8).
pub const MIN_CPUS: u32 = 4;
/// Minimum total memory in KiB (16 GiB; failures documented with 8 GB, tested with 32 GB).
pub const MIN_MEM_KIB: u64 = 16 * 1024 * 1024;
/// Minimum free disk under `/var/lib` in bytes (less than 2 GB used to fail the upgrade,
/// BOP-1441).
pub const MIN_DISK_FREE: u64 = 2 << 30;
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
    pub disk_free: u64,
    pub listening: BTreeSet<u16>,
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
        let free_gib = h.disk_free as f64 / (1u64 << 30) as f64;
        let disk = if h.disk_free >= MIN_DISK_FREE {
            (Status::Ok, format!("{free_gib:.1} GiB free under /var/lib"))
        } else if options.skip_disk_space_check {
            (
                Status::Warn,
                format!("{free_gib:.1} GiB free under /var/lib, less than 2 GiB (check skipped)"),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{free_gib:.1} GiB free under /var/lib, less than 2 GiB (--skip-disk-space-check to go on anyway)"
                ),
            )
        };
        r.push("disk-space", &h.host, disk.0, disk.1);
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
        }
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
}
