//! `ferry k0s check` and `ferry k0s upgrade` on a k0s cluster of real parts: the SSH testbed's
//! hosts (reset to fresh Debian roots) running the k0s double as k0s v1.31.1+k0s.1, three
//! controllers (h1..h3) and two workers (h4, h5) whose Nodes the real API server of
//! `testenv/k8s` holds and kwok keeps Ready, and a real Deployment with a PodDisruptionBudget
//! scheduled onto them by the real scheduler.
//!
//! The upgrade to v1.32.6+k0s.0 (a copy of the double stamped with that version) must: print
//! the report and the plan in a dry run and change nothing; roll back what it did when a host
//! command fails (exit 4), and from the journal alone (`ferry rollback`) after a `kill -9`,
//! leaving every host on the old release; then move every host, controllers
//! one at a time with a backup each, the workers drained and uncordoned; never let the
//! Deployment's ready pods fall below the budget's minimum (polled every 100 ms while it runs);
//! leave every node Ready and reporting the new kubelet version; and do nothing when run again.
//! Then, towards v1.32.7+k0s.0 with a bare pod on h4: the online run refuses (exit 3) and
//! changes nothing, `--partial-ok` moves every host but h4 and names it, and
//! `--ignore-safety-checks` (with `--force-bare-pods`) moves h4 too.
//!
//! The hosts are reset at the start and at the end, so the MKE 3 tests find hosts to provision.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod mke_bed;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ferry_kube_api::testing::real::{RealServer, eventually};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use mke_bed::{HostApi, sh, sibling_binary, ssh, testbed};
use serde_json::json;

const OLD: &str = "v1.31.1+k0s.1";
const NEW: &str = "v1.32.6+k0s.0";
const NEWER: &str = "v1.32.7+k0s.0";
const NS: &str = "rollout";
const CONTROLLERS: usize = 3;

struct K0sBed {
    dir: PathBuf,
    hosts: Vec<String>,
    server: RealServer,
    rt: tokio::runtime::Runtime,
    client: kube::Client,
    tmp: tempfile::TempDir,
    old: PathBuf,
    new: PathBuf,
    newer: PathBuf,
    _api: HostApi,
}

/// A copy of the stripped double at `to`, stamped as k0s `version`.
fn stamped(stripped: &Path, to: &Path, version: &str) {
    let mut bytes = std::fs::read(stripped).unwrap();
    bytes.extend_from_slice(format!("\n#k0s-double-version:{version}\n").as_bytes());
    std::fs::write(to, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl K0sBed {
    fn open() -> K0sBed {
        let what = "`ferry k0s upgrade` on the testbed";
        let dir = common::testbed(what);
        let server = RealServer::from_env(what);
        let hosts: Vec<String> = std::fs::read_to_string(dir.join("hosts.txt"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        assert!(
            hosts.len() >= 5,
            "SSH TESTBED TOO SMALL: {} hosts, this test needs 5",
            hosts.len()
        );
        let hosts = hosts[..5].to_vec();
        let rt = common::runtime();
        let client = rt.block_on(server.client());
        let tmp = tempfile::tempdir().unwrap();
        let stripped = tmp.path().join("k0s");
        let st = Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(sibling_binary("k0s"))
            .status()
            .unwrap();
        assert!(st.success(), "strip the k0s double");
        let old = tmp.path().join(format!("k0s-{OLD}"));
        let new = tmp.path().join(format!("k0s-{NEW}"));
        let newer = tmp.path().join(format!("k0s-{NEWER}"));
        stamped(&stripped, &old, OLD);
        stamped(&stripped, &new, NEW);
        stamped(&stripped, &newer, NEWER);
        let api = HostApi::start(&server);
        let bed = K0sBed {
            dir,
            hosts,
            server,
            rt,
            client,
            tmp,
            old,
            new,
            newer,
            _api: api,
        };
        bed.reset();
        bed.install(&bed._api.kubeconfig);
        bed
    }

    /// Fresh hosts and no Nodes of theirs.
    fn reset(&self) {
        let mut args = vec!["reset"];
        args.extend(self.hosts.iter().map(String::as_str));
        testbed(&self.dir, &args);
        let nodes: Api<Node> = Api::all(self.client.clone());
        let ns: Api<Namespace> = Api::all(self.client.clone());
        self.rt.block_on(async {
            for h in &self.hosts {
                let _ = nodes.delete(h, &DeleteParams::default()).await;
            }
            let _ = ns.delete(NS, &DeleteParams::default()).await;
        });
        self.rt.block_on(eventually(
            "the test's namespace and the hosts' Nodes gone",
            Duration::from_secs(60),
            || async {
                let gone_ns = ns.get_opt(NS).await.map_err(|e| e.to_string())?.is_none();
                let left: Vec<String> = nodes
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .into_iter()
                    .filter_map(|n| n.metadata.name)
                    .filter(|n| self.hosts.contains(n))
                    .collect();
                if gone_ns && left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("namespace gone: {gone_ns}, nodes left: {left:?}"))
                }
            },
        ));
    }

    fn sh(&self, i: usize, cmd: &str) -> String {
        sh(&self.dir, &self.hosts[i], cmd)
    }

    fn put(&self, i: usize, path: &str, bytes: &[u8], mode: &str) {
        let out = ssh(
            &self.dir,
            &self.hosts[i],
            &format!(
                "mkdir -p {} && cat > {path} && chmod {mode} {path}",
                parent(path)
            ),
            bytes,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// k0s v1.31.1+k0s.1 on every host: h1 a controller, h2 and h3 controllers joined with its
    /// token, h4 and h5 workers; the workers' Nodes Ready.
    fn install(&self, kubeconfig: &str) {
        let old = std::fs::read(&self.old).unwrap();
        for i in 0..self.hosts.len() {
            self.put(i, "/usr/local/bin/k0s", &old, "755");
            self.put(
                i,
                "/etc/k0s-double/kubeconfig",
                kubeconfig.as_bytes(),
                "600",
            );
        }
        for i in 0..CONTROLLERS {
            let config = format!(
                "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\nmetadata:\n  name: k0s\nspec:\n  api:\n    address: 10.123.1.{}\n",
                i + 1
            );
            self.put(i, "/etc/k0s/k0s.yaml", config.as_bytes(), "600");
        }
        self.sh(
            0,
            "k0s install controller --config /etc/k0s/k0s.yaml && k0s start",
        );
        let token = self.sh(0, "k0s token create --role=controller --expiry=1h");
        for i in 1..CONTROLLERS {
            self.put(i, "/etc/k0s/join-token", token.trim().as_bytes(), "600");
            self.sh(
                i,
                "k0s install controller --config /etc/k0s/k0s.yaml --token-file /etc/k0s/join-token && k0s start",
            );
        }
        let token = self.sh(0, "k0s token create --role=worker --expiry=1h");
        for i in CONTROLLERS..self.hosts.len() {
            self.put(i, "/etc/k0s/join-token", token.trim().as_bytes(), "600");
            self.sh(
                i,
                "k0s install worker --token-file /etc/k0s/join-token && k0s start",
            );
        }
        self.wait_workers(&OLD.replace("+k0s.1", "+k0s"));
    }

    fn workers(&self) -> &[String] {
        &self.hosts[CONTROLLERS..]
    }

    fn wait_workers(&self, kubelet: &str) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        self.rt.block_on(eventually(
            &format!("the workers' Nodes Ready with kubelet {kubelet}"),
            Duration::from_secs(120),
            || async {
                for w in self.workers() {
                    let n = nodes.get(w).await.map_err(|e| format!("{w}: {e}"))?;
                    let v = n
                        .status
                        .as_ref()
                        .and_then(|s| s.node_info.as_ref())
                        .map(|i| i.kubelet_version.clone())
                        .unwrap_or_default();
                    // the node lifecycle controller takes its not-ready taint off a moment
                    // after the node is Ready; until then nothing schedules there
                    let taints: Vec<String> = n
                        .spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .map(|t| t.iter().map(|t| t.key.clone()).collect())
                        .unwrap_or_default();
                    if !mke_bed::node_ready(&n) || v != kubelet || !taints.is_empty() {
                        return Err(format!(
                            "{w}: ready {}, kubelet {v}, taints {taints:?}",
                            mke_bed::node_ready(&n)
                        ));
                    }
                }
                Ok(())
            },
        ));
    }

    /// A Deployment of four replicas on the workers under a budget of at most one unavailable.
    fn deploy(&self) {
        let ns: Api<Namespace> = Api::all(self.client.clone());
        let pp = PatchParams::apply("ferry-test").force();
        let deploy: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.client.clone(), NS);
        let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
            Api::namespaced(self.client.clone(), NS);
        self.rt.block_on(async {
            ns.patch(
                NS,
                &pp,
                &Patch::Apply(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
                ),
            )
            .await
            .unwrap();
            deploy
                .patch(
                    "web",
                    &pp,
                    &Patch::Apply(json!({
                        "apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": NS},
                        "spec": {
                            "replicas": 4,
                            "selector": {"matchLabels": {"app": "web"}},
                            "template": {
                                "metadata": {"labels": {"app": "web"}},
                                "spec": {
                                    "containers": [{"name": "web", "image": "registry.invalid/web:1"}],
                                    "automountServiceAccountToken": false,
                                    "terminationGracePeriodSeconds": 0,
                                    // two per worker; a cordoned worker (tainted
                                    // unschedulable) leaves the count, so the pods a drain
                                    // evicts can all go to the other one
                                    "topologySpreadConstraints": [{
                                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                        "whenUnsatisfiable": "DoNotSchedule",
                                        "nodeTaintsPolicy": "Honor",
                                        "labelSelector": {"matchLabels": {"app": "web"}}
                                    }]
                                }
                            }
                        }
                    })),
                )
                .await
                .unwrap();
            pdbs.patch(
                "web",
                &pp,
                &Patch::Apply(json!({
                    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                    "metadata": {"name": "web", "namespace": NS},
                    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}
                })),
            )
            .await
            .unwrap();
        });
        self.rt.block_on(eventually(
            "4 ready web pods and the budget allowing 1 disruption",
            Duration::from_secs(120),
            || async {
                let ready = ready_pods(&self.client).await?;
                let b = pdbs.get("web").await.map_err(|e| e.to_string())?;
                let allowed = b.status.map(|s| s.disruptions_allowed).unwrap_or(0);
                if ready == 4 && allowed == 1 {
                    Ok(())
                } else {
                    Err(format!("{ready} ready, {allowed} allowed"))
                }
            },
        ));
    }

    /// The web pods deleted and recreated by their Deployment, two on each worker.
    fn respread(&self) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        self.rt.block_on(async {
            pods.delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels("app=web"),
            )
            .await
            .unwrap();
        });
        self.rt.block_on(eventually(
            "4 ready web pods, two on each worker",
            Duration::from_secs(120),
            || async {
                let list = pods
                    .list(&ListParams::default().labels("app=web"))
                    .await
                    .map_err(|e| e.to_string())?;
                let on = |w: &str| {
                    list.items
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(w))
                        .count()
                };
                let ready = ready_pods(&self.client).await?;
                let per: Vec<usize> = self.workers().iter().map(|w| on(w)).collect();
                if ready == 4 && per.iter().all(|n| *n == 2) {
                    Ok(())
                } else {
                    Err(format!("{ready} ready, per worker {per:?}"))
                }
            },
        ));
    }

    /// A pod without a controller, bound to `node`.
    fn bare_pod(&self, name: &str, node: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        let pp = PatchParams::apply("ferry-test").force();
        self.rt.block_on(async {
            pods.patch(
                name,
                &pp,
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": NS, "labels": {"app": "debug"}},
                    "spec": {
                        "nodeName": node,
                        "containers": [{"name": "sh", "image": "registry.invalid/debug:1"}],
                        "automountServiceAccountToken": false,
                        "terminationGracePeriodSeconds": 0
                    }
                })),
            )
            .await
            .unwrap();
        });
        self.rt.block_on(eventually(
            &format!("the bare pod {name} ready on {node}"),
            Duration::from_secs(60),
            || async {
                let p = pods.get(name).await.map_err(|e| e.to_string())?;
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready {
                    Ok(())
                } else {
                    Err("not ready".into())
                }
            },
        ));
    }

    fn ferry(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args(args)
            .arg("--hosts-path")
            .arg(self.dir.join("hosts.yaml"))
            .arg("--kubeconfig")
            .arg(&self.server.kubeconfig)
            .arg("--ssh-config")
            .arg(self.dir.join("ssh_config"))
            .arg("--known-hosts")
            .arg(self.dir.join("known_hosts"))
            .env("HOME", self.tmp.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    /// Every host's binary and running k0s are `version`, the workers' Nodes Ready and
    /// schedulable with its kubelet version.
    fn assert_running(&self, version: &str) {
        assert_eq!(self.versions(), vec![version; self.hosts.len()]);
        for i in 0..self.hosts.len() {
            let status = self.sh(i, "k0s status");
            assert!(status.contains(&format!("Version: {version}")), "{status}");
        }
        self.wait_workers(&version.replace("+k0s.1", "+k0s").replace("+k0s.0", "+k0s"));
        let nodes: Api<Node> = Api::all(self.client.clone());
        self.rt.block_on(async {
            for w in self.workers() {
                let n = nodes.get(w).await.unwrap();
                assert_ne!(
                    n.spec.unwrap().unschedulable,
                    Some(true),
                    "{w} left cordoned"
                );
            }
        });
    }

    fn versions(&self) -> Vec<String> {
        (0..self.hosts.len())
            .map(|i| self.sh(i, "k0s version").trim().to_string())
            .collect()
    }
}

impl Drop for K0sBed {
    fn drop(&mut self) {
        // leave fresh hosts for the next test, even when this one failed
        let mut args = vec!["reset".to_string()];
        args.extend(self.hosts.iter().cloned());
        let _ = Command::new(mke_bed::repo("scripts/testbed"))
            .args(&args)
            .env("FERRY_TESTBED_DIR", &self.dir)
            .stdin(Stdio::null())
            .output();
        let nodes: Api<Node> = Api::all(self.client.clone());
        let ns: Api<Namespace> = Api::all(self.client.clone());
        self.rt.block_on(async {
            for h in &self.hosts {
                let _ = nodes.delete(h, &DeleteParams::default()).await;
            }
            let _ = ns.delete(NS, &DeleteParams::default()).await;
        });
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(p, _)| p)
}

/// Ready pods of the Deployment that are not being deleted.
async fn ready_pods(client: &kube::Client) -> Result<usize, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count())
}

#[test]
fn an_online_upgrade_moves_every_node_and_never_breaks_the_budget() {
    let bed = K0sBed::open();
    bed.deploy();
    let state = bed.tmp.path().join("state");
    let state = state.to_str().unwrap();
    let new = bed.new.to_str().unwrap().to_string();

    // the report: everything can move
    let out = bed.ferry(&["k0s", "check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for i in 0..bed.hosts.len() {
        let roles = if i < CONTROLLERS {
            "[etcd controller]"
        } else {
            "[worker]"
        };
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("10.123.1.{} ", i + 1)))
            .unwrap_or_else(|| panic!("no line for host {}:\n{stdout}", i + 1));
        assert!(line.contains(roles) && line.ends_with("[OK]"), "{line}");
    }

    // a dry run prints the report and the plan, and changes nothing
    let out = bed
        .ferry(&[
            "k0s",
            "upgrade",
            "online",
            "--dry-run",
            "--k0s-binary",
            &new,
            "--state-dir",
            state,
            "--max-unavailable",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Validate Online Upgrade"), "{stdout}");
    assert!(stdout.contains("3 host(s), one at a time:"), "{stdout}");
    assert!(stdout.contains("k0s.node.backup on 10.123.1.1"), "{stdout}");
    assert!(stdout.contains("k0s.node.drain on 10.123.1.4"), "{stdout}");
    assert_eq!(bed.versions(), vec![OLD; 5]);

    // a host command fails on h2 (`k0s stop`, by the double's fault file): the run rolls back
    // what it did on h1, and every host runs the old release again
    bed.put(1, "/etc/k0s-double/fault", b"stop\n", "644");
    let failed_state = bed.tmp.path().join("state-failed");
    let out = bed
        .ferry(&[
            "k0s",
            "upgrade",
            "online",
            "--k0s-binary",
            &new,
            "--state-dir",
            failed_state.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("Rollback completed"), "{stderr}");
    bed.sh(1, "rm /etc/k0s-double/fault");
    bed.assert_running(OLD);

    // kill -9 in the middle of the run, then `ferry rollback` from the journal alone
    let killed_state = bed.tmp.path().join("state-killed");
    let mut child = bed
        .ferry(&[
            "k0s",
            "upgrade",
            "online",
            "--k0s-binary",
            &new,
            "--state-dir",
            killed_state.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while bed.sh(0, "k0s version").trim() != NEW {
        assert!(
            std::time::Instant::now() < deadline,
            "h1 never got the new binary"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["rollback", "--state-dir", killed_state.to_str().unwrap()])
        .arg("--ssh-config")
        .arg(bed.dir.join("ssh_config"))
        .arg("--known-hosts")
        .arg(bed.dir.join("known_hosts"))
        .env("HOME", bed.tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    bed.assert_running(OLD);

    // the run, with the budget watched
    let stop = Arc::new(AtomicBool::new(false));
    let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
    let samples = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, min_ready, samples) = (stop.clone(), min_ready.clone(), samples.clone());
        let client = bed.client.clone();
        std::thread::spawn(move || {
            let rt = common::runtime();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(n) = rt.block_on(ready_pods(&client)) {
                    min_ready.fetch_min(n, Ordering::SeqCst);
                    samples.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = std::time::Instant::now();
    let out = bed
        .ferry(&[
            "k0s",
            "upgrade",
            "online",
            "--k0s-binary",
            &new,
            "--state-dir",
            state,
            "--max-unavailable",
            "1",
            "--ready-timeout",
            "120",
            "--drain-timeout",
            "120",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("k0s {NEW}: 5 host(s) upgraded, 0 already at it")),
        "{stdout}"
    );
    let min = min_ready.load(Ordering::SeqCst);
    println!(
        "k0s upgrade online of 3 controllers and 2 workers: {:.1} s; ready web pods never below {min} of 4 ({} samples)",
        took.as_secs_f64(),
        samples.load(Ordering::SeqCst)
    );
    assert!(
        min >= 3,
        "the budget allows 1 unavailable, yet only {min} pods were ready"
    );
    assert!(samples.load(Ordering::SeqCst) > 10);

    // every host runs the new release; backups kept on the controllers; nodes back in service
    assert_eq!(bed.versions(), vec![NEW; 5]);
    for i in 0..bed.hosts.len() {
        let status = bed.sh(i, "k0s status");
        assert!(status.contains(&format!("Version: {NEW}")), "{status}");
        let kept = bed.sh(i, "ls /var/lib/ferry");
        assert!(kept.contains("k0s.previous"), "{kept}");
        if i < CONTROLLERS {
            let b = bed.sh(i, "ls /var/lib/ferry/k0s-backups");
            assert!(b.contains("k0s_backup_"), "{b}");
            assert!(
                stdout.contains(&format!("etcd backup kept on 10.123.1.{}", i + 1)),
                "{stdout}"
            );
        }
    }
    bed.assert_running(NEW);

    // run again: nothing to do
    let out = bed
        .ferry(&[
            "k0s",
            "upgrade",
            "online",
            "--k0s-binary",
            &new,
            "--state-dir",
            state,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("0 host(s) upgraded, 5 already at it"),
        "{stdout}"
    );

    // the upgrade left every web pod on the worker drained last: spread them again, then a
    // bare pod on h4 makes it unsafe: the online run refuses and changes nothing
    bed.respread();
    let newer = bed.newer.to_str().unwrap().to_string();
    bed.bare_pod("debug", &bed.hosts[3]);
    let run = |extra: &[&str], state: &str| {
        let mut args = vec![
            "k0s",
            "upgrade",
            "online",
            "--k0s-binary",
            &newer,
            "--state-dir",
            state,
        ];
        args.extend_from_slice(extra);
        bed.ferry(&args).output().unwrap()
    };
    let s1 = bed.tmp.path().join("s1");
    let out = run(&[], s1.to_str().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "- The pod \"rollout/debug\" is not being managed by a controller. Upgrading this node might result in data or availability loss."
        ),
        "{stdout}"
    );
    assert!(
        stderr
            .contains("Unable to perform an online upgrade due to the unsafe conditions detected."),
        "{stderr}"
    );
    assert_eq!(bed.versions(), vec![NEW; 5]);

    // --partial-ok: every host but h4 moves, and the summary says h4 was left behind
    let s2 = bed.tmp.path().join("s2");
    let out = run(&["--partial-ok"], s2.to_str().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "k0s {NEWER}: 4 host(s) upgraded, 0 already at it, 1 left behind"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Partial upgrade: these hosts were not upgraded:\n  10.123.1.4: The pod \"rollout/debug\""), "{stdout}");
    let v = bed.versions();
    assert_eq!(v[3], NEW, "{v:?}");
    assert!(
        v.iter().enumerate().all(|(i, x)| i == 3 || x == NEWER),
        "{v:?}"
    );

    // --ignore-safety-checks (with the drain allowed to evict the bare pod): h4 moves too
    let s3 = bed.tmp.path().join("s3");
    let out = run(
        &["--ignore-safety-checks", "--force-bare-pods"],
        s3.to_str().unwrap(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("[WARNING]"), "{stdout}");
    assert!(
        stderr.contains("Ignoring safety checks and continuing with the upgrade"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("k0s {NEWER}: 1 host(s) upgraded, 4 already at it")),
        "{stdout}"
    );
    bed.assert_running(NEWER);
}
