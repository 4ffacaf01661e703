//! `ferry node replace-os --order add-before-remove` on the k0s bed: its five hosts are replaced
//! by five new machines (h6..h10, grown on the testbed for this test and removed after it; the
//! i-th new host takes the place of the i-th host), each joining with the role, flags and
//! configuration of the one it replaces before that one is drained and removed; the workers
//! first, the first controller (h1) last.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod k0s_bed;
mod mke_bed;
mod node_os_bed;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k0s_bed::{K0sBed, ready_pods};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

/// The testbed back to the five hosts the other tests expect, and the new hosts' Node gone,
/// also when this test fails.
struct Shrink {
    dir: PathBuf,
    client: kube::Client,
    rt: tokio::runtime::Handle,
}

impl Drop for Shrink {
    fn drop(&mut self) {
        let _ = node_os_bed::testbed(&self.dir, &["up", "5"]);
        let nodes: Api<Node> = Api::all(self.client.clone());
        for n in ["h8", "h9", "h10"] {
            let _ = self
                .rt
                .block_on(nodes.delete(n, &kube::api::DeleteParams::default()));
        }
    }
}

fn hosts_file(dir: &Path, to: &Path, picks: &[usize]) {
    let mut t = String::from("hosts:\n");
    for i in picks {
        t.push_str(&format!(
            "  - address: 10.123.1.{i}\n    port: 22\n    user: ferry\n    keyPath: {}\n",
            dir.join("id_ed25519").display()
        ));
    }
    std::fs::write(to, t).unwrap();
}

#[test]
fn new_machines_join_first_and_the_old_ones_leave() {
    let bed = K0sBed::open();
    let out = node_os_bed::testbed(&bed.dir, &["up", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _shrink = Shrink {
        dir: bed.dir.clone(),
        client: bed.client.clone(),
        rt: bed.rt.handle().clone(),
    };
    bed.deploy();
    node_os_bed::more_workloads(&bed);
    let old = bed.tmp.path().join("old.yaml");
    let new = bed.tmp.path().join("new.yaml");
    hosts_file(&bed.dir, &old, &[1, 2, 3, 4, 5]);
    hosts_file(&bed.dir, &new, &[6, 7, 8, 9, 10]);
    let state = bed.tmp.path().join("state");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "node",
                "replace-os",
                "--order",
                "add-before-remove",
                "--backend",
                "k0s",
            ])
            .arg("--hosts-path")
            .arg(&old)
            .arg("--new-hosts-path")
            .arg(&new)
            .arg("--kubeconfig")
            .arg(&bed.server.kubeconfig)
            .arg("--k0s-binary")
            .arg(&bed.old)
            .arg("--state-dir")
            .arg(&state)
            .args(["--ready-timeout", "120"])
            .arg("--ssh-config")
            .arg(bed.dir.join("ssh_config"))
            .arg("--known-hosts")
            .arg(bed.dir.join("known_hosts"))
            .args(extra)
            .env("HOME", bed.tmp.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // the dry run: each new host joins before the one it replaces leaves, the first controller
    // last; nothing changes
    let out = run(&["--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = |n: &str| {
        stdout
            .find(n)
            .unwrap_or_else(|| panic!("{n} not in:\n{stdout}"))
    };
    assert!(at("os.k0s.add on 10.123.1.9") < at("os.k0s.remove on 10.123.1.4"));
    assert!(at("os.k0s.remove on 10.123.1.5") < at("os.k0s.add on 10.123.1.7"));
    assert!(at("os.k0s.remove on 10.123.1.3") < at("os.k0s.add on 10.123.1.6"));
    assert!(!stdout.contains("os.node.reinstall"), "{stdout}");
    assert!(
        mke_bed::sh(&bed.dir, "h6", "command -v k0s || echo none").contains("none"),
        "the dry run installed k0s on a new host"
    );

    // the run: no reinstall, so no confirmation is needed
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("10.123.1.1: replaced by 10.123.1.6"),
        "{stdout}"
    );
    let removed = |m: &str| {
        stderr
            .find(&format!("etcd member {m} "))
            .unwrap_or_else(|| panic!("{m}'s etcd member was not removed:\n{stderr}"))
    };
    assert!(
        removed("h2") < removed("h1"),
        "the first controller goes last:\n{stderr}"
    );
    assert!(
        removed("h3") < removed("h1"),
        "the first controller goes last:\n{stderr}"
    );

    // the new machines run k0s in the roles of the old; the old ones are reset
    let sh = |i: usize, cmd: &str| mke_bed::sh(&bed.dir, &format!("h{i}"), cmd);
    for i in [9, 10] {
        assert!(sh(i, "k0s status").contains("Role: worker"), "h{i}");
    }
    assert!(sh(8, "k0s status").contains("Workloads: true"));
    for i in [6, 7, 8] {
        let s = sh(i, "k0s status");
        assert!(
            s.contains("Role: controller") && s.contains("Version: v1.31.1+k0s.1"),
            "h{i}: {s}"
        );
        let config = sh(i, "cat /etc/k0s/k0s.yaml");
        assert!(
            config.contains(&format!("address: 10.123.1.{i}")),
            "h{i}: {config}"
        );
    }
    for i in [1, 2, 3, 4, 5] {
        let s = sh(i, "k0s status 2>&1 || true");
        assert!(!s.contains("Version:"), "h{i} still runs k0s: {s}");
    }
    let members = sh(7, "k0s etcd member-list");
    for m in ["h6", "h7", "h8"] {
        assert!(members.contains(&format!("\"{m}\"")), "{members}");
    }
    for m in ["h1", "h2", "h3"] {
        assert!(!members.contains(&format!("\"{m}\"")), "{members}");
    }
    let nodes: Api<Node> = Api::all(bed.client.clone());
    bed.rt.block_on(async {
        for gone in ["h3", "h4", "h5"] {
            assert!(
                nodes.get_opt(gone).await.unwrap().is_none(),
                "{gone}'s Node is left"
            );
        }
        for n in ["h8", "h9", "h10"] {
            let node = nodes.get(n).await.unwrap();
            assert!(mke_bed::node_ready(&node), "{n} not Ready");
        }
    });
    assert_eq!(bed.rt.block_on(ready_pods(&bed.client)).unwrap(), 4);
}
