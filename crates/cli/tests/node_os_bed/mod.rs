//! What the node OS replacement tests share (`real_node_os.rs`, `real_node_os_chaos.rs`): the
//! k0s bed with more workloads, the reinstall (`scripts/testbed reimage HOST trixie`), putting
//! the hosts back on the testbed's base root, and `ferry node replace-os` against the bed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::k0s_bed::{K0sBed, NS};
use crate::mke_bed;

/// Puts every host of the bed back on the testbed's base root (fresh disk, a new key that the
/// testbed's known_hosts then records), also when the test fails.
pub struct BackToBase {
    pub dir: PathBuf,
    pub hosts: Vec<String>,
}

impl Drop for BackToBase {
    fn drop(&mut self) {
        let base = std::fs::read_to_string(self.dir.join("base")).unwrap_or_default();
        for h in &self.hosts {
            let _ = testbed(&self.dir, &["reimage", h, base.trim()]);
        }
        let mut args = vec!["trust"];
        args.extend(self.hosts.iter().map(String::as_str));
        let _ = testbed(&self.dir, &args);
    }
}

pub fn testbed(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(mke_bed::repo("scripts/testbed"))
        .args(args)
        .env("FERRY_TESTBED_DIR", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `cat /etc/os-release`'s PRETTY_NAME on host `i`, through the testbed's console (no SSH: a
/// poller must not spend logins on hosts that are being reinstalled).
pub fn pretty_name(dir: &Path, host: &str) -> String {
    let out = testbed(dir, &["exec", host, "cat", "/etc/os-release"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap_or("")
        .trim_matches('"')
        .to_string()
}

/// The StatefulSet and the DaemonSet beside the bed's Deployment, each with requests.
pub fn more_workloads(bed: &K0sBed) {
    let pp = PatchParams::apply("ferry-test").force();
    let sts: Api<StatefulSet> = Api::namespaced(bed.client.clone(), NS);
    let ds: Api<DaemonSet> = Api::namespaced(bed.client.clone(), NS);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(bed.client.clone(), NS);
    let spec = |app: &str, cpu: &str, mem: &str| {
        json!({
            "metadata": {"labels": {"app": app}},
            "spec": {
                "containers": [{"name": app, "image": format!("registry.invalid/{app}:1"),
                    "resources": {"requests": {"cpu": cpu, "memory": mem}}}],
                "automountServiceAccountToken": false,
                "terminationGracePeriodSeconds": 0,
                "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}]
            }
        })
    };
    bed.rt.block_on(async {
        sts.patch(
            "db",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "db", "namespace": NS},
                "spec": {
                    "replicas": 2, "serviceName": "db",
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": spec("db", "200m", "128Mi")
                }
            })),
        )
        .await
        .unwrap();
        pdbs.patch(
            "db",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "db", "namespace": NS},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}
            })),
        )
        .await
        .unwrap();
        ds.patch(
            "agent",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "agent", "namespace": NS},
                "spec": {
                    "selector": {"matchLabels": {"app": "agent"}},
                    "template": spec("agent", "50m", "32Mi")
                }
            })),
        )
        .await
        .unwrap();
    });
    bed.rt.block_on(ferry_kube_api::testing::real::eventually(
        "the StatefulSet's 2 pods and the DaemonSet's 3 ready",
        Duration::from_secs(120),
        || async {
            let s = sts.get("db").await.map_err(|e| e.to_string())?;
            let d = ds.get("agent").await.map_err(|e| e.to_string())?;
            let ready = s.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            let dready = d.status.map(|s| s.number_ready).unwrap_or(0);
            if ready == 2 && dready == 3 {
                Ok(())
            } else {
                Err(format!("db {ready}/2, agent {dready}/3"))
            }
        },
    ));
}

pub fn replace_os(bed: &K0sBed, state: &Path, extra: &[&str]) -> Command {
    let mut args = vec![
        "node",
        "replace-os",
        "--order",
        "remove-before-add",
        "--backend",
        "k0s",
        "--k0s-binary",
        bed.old.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--reinstall-timeout",
        "300",
        "--ready-timeout",
        "180",
    ];
    args.extend_from_slice(extra);
    let mut c = bed.ferry(&args);
    c.env("FERRY_TESTBED_DIR", &bed.dir);
    c
}

pub const REINSTALL: &str = "--reinstall-command";

pub fn reinstall_command() -> String {
    format!(
        "{} reimage {{address}} trixie",
        mke_bed::repo("scripts/testbed").display()
    )
}

/// The hosts of the bed back on the base root where a run reinstalled them, then fresh k0s
/// hosts with the workloads: the start of every case.
pub fn fresh(bed: &K0sBed) {
    // the bed's reset puts reimaged hosts back on the base root
    bed.provision();
    more_workloads(bed);
}

/// What a node OS replacement must keep or give back, whatever OS the hosts run: each host's
/// k0s (version, role, workloads), its binary and configuration, its service; the etcd members;
/// from the API the hosts' Nodes and the workloads' ready pods (`k0s_bed::Digest`'s section).
/// The OS of each host is kept apart ([`Membership::os`]): a rollback may leave a reinstalled
/// host on its new OS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub sections: std::collections::BTreeMap<String, String>,
    pub os: std::collections::BTreeMap<String, String>,
}

/// The StatefulSet's and the DaemonSet's ready pods.
fn workloads(bed: &K0sBed) -> Result<String, String> {
    bed.rt.block_on(async {
        let sts: Api<StatefulSet> = Api::namespaced(bed.client.clone(), NS);
        let ds: Api<DaemonSet> = Api::namespaced(bed.client.clone(), NS);
        let s = sts.get("db").await.map_err(|e| e.to_string())?;
        let d = ds.get("agent").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(format!(
            "db ready {}, agent ready {}",
            s.status.and_then(|s| s.ready_replicas).unwrap_or(0),
            d.status.map(|s| s.number_ready).unwrap_or(0)
        ))
    })
}

const MEMBER_SCRIPT: &str = r#"k0s status 2>/dev/null | grep -E '^(Version|Role|Workloads):' || echo 'not running'
sha256sum /usr/local/bin/k0s /etc/k0s/k0s.yaml 2>/dev/null || true
ls /etc/init.d/k0scontroller /etc/init.d/k0sworker /etc/systemd/system/k0scontroller.service /etc/systemd/system/k0sworker.service 2>/dev/null || true
"#;

impl Membership {
    pub fn take(bed: &K0sBed) -> Result<Membership, String> {
        let d = crate::k0s_bed::Digest::take(bed)?;
        let mut sections = std::collections::BTreeMap::new();
        let mut os = std::collections::BTreeMap::new();
        for h in &bed.hosts {
            let out = crate::mke_bed::ssh(&bed.dir, h, MEMBER_SCRIPT, b"");
            if !out.status.success() {
                return Err(format!("{h}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            sections.insert(
                format!("host {h}"),
                String::from_utf8_lossy(&out.stdout).to_string(),
            );
            os.insert(h.clone(), pretty_name(&bed.dir, h));
        }
        let members = bed.hosts[..crate::k0s_bed::CONTROLLERS]
            .iter()
            .find_map(|h| {
                let out = crate::mke_bed::ssh(&bed.dir, h, "k0s etcd member-list", b"");
                out.status.success().then(|| {
                    let v: serde_json::Value =
                        serde_json::from_slice(&out.stdout).unwrap_or_default();
                    v["members"]
                        .as_object()
                        .map(|m| {
                            // etcd lists its members in no order that matters
                            let mut names: Vec<String> = m.keys().cloned().collect();
                            names.sort();
                            names.join(" ")
                        })
                        .unwrap_or_default()
                })
            })
            .unwrap_or_else(|| "no controller answers".into());
        sections.insert("etcd members".into(), members);
        sections.insert(
            "api".into(),
            d.sections.get("api").cloned().unwrap_or_default(),
        );
        let want = "db ready 2, agent ready 3";
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        let extra = loop {
            let got = workloads(bed)?;
            if got == want || std::time::Instant::now() >= deadline {
                break got;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        sections.insert("workloads".into(), extra);
        Ok(Membership { sections, os })
    }

    /// The lines that differ, section by section (`-` here only, `+` in `now` only).
    pub fn diff(&self, now: &Membership) -> Option<String> {
        let a = crate::k0s_bed::Digest {
            sections: self.sections.clone(),
        };
        let b = crate::k0s_bed::Digest {
            sections: now.sections.clone(),
        };
        a.diff(&b)
    }
}
