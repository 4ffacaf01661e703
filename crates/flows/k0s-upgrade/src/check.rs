//! The check of a k0s cluster before a rolling upgrade: the targets (one per host, or one per
//! Node when only the API is known), `ferry-safety`'s report over the snapshot, and each host's
//! readiness in the same report.

use serde::{Deserialize, Serialize};

use ferry_safety::{Finding, Options, Report, Target, targets_from_nodes};

use crate::discover::{Discovered, HostState};

/// Free disk a host needs by default on `/` and on k0s's data directory: room for a second k0s
/// binary (about 250 MiB), a `k0s backup` archive, and the images of the new version.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 2 << 30;

/// What the readiness checks require of each host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub min_free_root_bytes: u64,
    pub min_free_data_bytes: u64,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            min_free_root_bytes: DEFAULT_MIN_FREE_BYTES,
            min_free_data_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

/// Everything the check is told.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub safety: Options,
    pub readiness: Readiness,
}

/// One target per host (its roles from k0s itself, etcd membership from the member list), or
/// one per Node when no host is known.
pub fn targets(d: &Discovered) -> Vec<Target> {
    if d.hosts.is_empty() {
        return targets_from_nodes(&d.snapshot);
    }
    d.hosts
        .iter()
        .map(|h| Target {
            name: h.name.clone(),
            node: h.node().map(str::to_string),
            etcd: d
                .snapshot
                .etcd_members
                .as_ref()
                .is_some_and(|m| m.contains(&h.name)),
            controller: h.controller,
            worker: h.worker,
        })
        .collect()
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Why `h` is not ready to be upgraded (k0s not installed or not running, too little disk).
pub fn readiness(h: &HostState, r: &Readiness) -> Vec<Finding> {
    let mut out = Vec::new();
    match (&h.service, h.running) {
        (None, _) => out.push(Finding::readiness("k0s is not installed on this host.")),
        (Some(s), false) => out.push(Finding::readiness(format!(
            "k0s is installed ({s}) but not running."
        ))),
        _ => {}
    }
    for (disk, min) in [
        (&h.facts.root_disk, r.min_free_root_bytes),
        (&h.facts.data_dir_disk, r.min_free_data_bytes),
    ] {
        if disk.available_bytes < min {
            out.push(Finding::readiness(format!(
                "Only {} free on the file system of {} (mounted at {}): at least {} is needed.",
                gib(disk.available_bytes),
                disk.path,
                if disk.mount_point.is_empty() {
                    "?"
                } else {
                    &disk.mount_point
                },
                gib(min)
            )));
        }
    }
    out
}

/// The whole report: safety and availability per target, readiness per host.
pub fn check(d: &Discovered, options: &CheckOptions) -> Report {
    let targets = targets(d);
    let mut report = ferry_safety::check(&d.snapshot, &targets, &options.safety);
    for h in &d.hosts {
        let found = readiness(h, &options.readiness);
        if let Some(n) = report.node_mut(&h.name) {
            n.add(found, false);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::facts::{DiskFree, HostFacts, InitSystem};
    use ferry_safety::Kind;

    fn host(name: &str, controller: bool, worker: bool, free_gib: u64) -> HostState {
        let disk = |path: &str| DiskFree {
            path: path.into(),
            measured: path.into(),
            mount_point: "/".into(),
            available_bytes: free_gib << 30,
            total_bytes: 100 << 30,
        };
        HostState {
            name: name.into(),
            facts: HostFacts {
                host: name.into(),
                hostname: format!("{name}-host"),
                os: Default::default(),
                arch: "x86_64".into(),
                cpus: 2,
                memory_bytes: 0,
                private_interface: None,
                private_address: None,
                root_disk: disk("/"),
                data_dir_disk: disk("/var/lib/k0s"),
                sudo: true,
                listening: Default::default(),
                init_system: InitSystem::Systemd,
                notes: vec![],
                took: Default::default(),
            },
            service: Some(
                if controller {
                    "k0scontroller"
                } else {
                    "k0sworker"
                }
                .into(),
            ),
            running: true,
            version: Some("v1.31.1+k0s.1".into()),
            controller,
            worker,
        }
    }

    #[test]
    fn hosts_become_targets_with_k0s_roles_and_readiness_joins_the_report() {
        let mut stopped = host("w2", false, true, 50);
        stopped.running = false;
        let mut none = host("w3", false, false, 50);
        none.service = None;
        none.running = false;
        let d = Discovered {
            hosts: vec![
                host("c1", true, false, 50),
                host("c2", true, true, 50),
                host("c3", true, false, 1),
                host("w1", false, true, 50),
                stopped,
                none,
            ],
            snapshot: ferry_safety::model::Snapshot {
                etcd_members: Some(vec!["c1".into(), "c2".into(), "c3".into()]),
                nodes: ["c2-host", "w1-host", "w2-host"]
                    .iter()
                    .map(|n| ferry_safety::model::Node {
                        name: n.to_string(),
                        ready: true,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            server_version: "v1.31.1+k0s".into(),
        };
        let t = targets(&d);
        assert_eq!(t[1].node.as_deref(), Some("c2-host"));
        assert_eq!(t[1].roles(), vec!["etcd", "controller", "worker"]);
        assert_eq!(t[0].node, None);
        let r = check(&d, &CheckOptions::default());
        let kinds =
            |n: &str| -> Vec<Kind> { r.node(n).unwrap().findings.iter().map(|f| f.kind).collect() };
        assert!(r.node("c1").unwrap().is_ok(), "{}", r.render());
        assert_eq!(kinds("c3"), vec![Kind::Readiness, Kind::Readiness]);
        assert!(
            r.render()
                .contains("Only 1.0 GiB free on the file system of /var/lib/k0s")
        );
        assert_eq!(kinds("w2"), vec![Kind::Readiness]);
        assert!(
            r.render()
                .contains("k0s is installed (k0sworker) but not running.")
        );
        assert!(r.render().contains("k0s is not installed on this host."));
        assert_eq!(r.node("w3").unwrap().roles, Vec::<String>::new());
    }
}
