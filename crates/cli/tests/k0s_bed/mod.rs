//! A k0s cluster of real parts for the tests of `ferry k0s check` and `ferry k0s upgrade`: the
//! SSH testbed's first five hosts, reset to fresh Debian roots, running the k0s double as k0s
//! v1.31.1+k0s.1: three controllers (h1..h3; h3 runs workloads too, `--enable-worker
//! --no-taints`) and two workers (h4, h5), so three hosts hold a Node. The real API server of
//! `testenv/k8s` holds the Nodes and kwok keeps them Ready; a real Deployment with a
//! PodDisruptionBudget is scheduled onto them by the real scheduler.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ferry_kube_api::testing::real::{RealServer, eventually};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::common;
use crate::mke_bed::{self, HostApi, sh, sibling_binary, ssh, testbed};

pub const OLD: &str = "v1.31.1+k0s.1";
pub const NEW: &str = "v1.32.6+k0s.0";
pub const NEWER: &str = "v1.32.7+k0s.0";
pub const NS: &str = "rollout";
pub const CONTROLLERS: usize = 3;
/// The first host that runs workloads: h3, the last controller, runs them too.
pub const FIRST_WORKER: usize = 2;

pub struct K0sBed {
    pub dir: PathBuf,
    pub hosts: Vec<String>,
    pub server: RealServer,
    pub rt: tokio::runtime::Runtime,
    pub client: kube::Client,
    pub tmp: tempfile::TempDir,
    pub old: PathBuf,
    pub new: PathBuf,
    pub newer: PathBuf,
    pub api: HostApi,
}

/// A copy of the stripped double at `to`, stamped as k0s `version`.
pub fn stamped(stripped: &Path, to: &Path, version: &str) {
    let mut bytes = std::fs::read(stripped).unwrap();
    bytes.extend_from_slice(format!("\n#k0s-double-version:{version}\n").as_bytes());
    std::fs::write(to, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl K0sBed {
    pub fn open() -> K0sBed {
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
            api,
        };
        bed.reset();
        bed.install(&bed.api.kubeconfig);
        bed
    }

    /// Fresh hosts and no Nodes of theirs. A host an earlier test reimaged (`scripts/testbed
    /// reimage`, the OS replacement tests) is put back on the testbed's base root first.
    pub fn reset(&self) {
        let base = std::fs::read_to_string(self.dir.join("base")).unwrap();
        let moved: Vec<String> = (1..=self.hosts.len())
            .filter(|i| self.dir.join(format!("hosts/h{i}/base")).exists())
            .map(|i| format!("h{i}"))
            .collect();
        for h in &moved {
            testbed(&self.dir, &["reimage", h, base.trim()]);
        }
        if !moved.is_empty() {
            let mut args = vec!["trust"];
            args.extend(moved.iter().map(String::as_str));
            testbed(&self.dir, &args);
        }
        let mut args = vec!["reset"];
        args.extend(self.hosts.iter().map(String::as_str));
        testbed(&self.dir, &args);
        self.forget();
        let nodes: Api<Node> = Api::all(self.client.clone());
        let ns: Api<Namespace> = Api::all(self.client.clone());
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

    /// Deletes the hosts' Nodes and the test's namespace (without waiting for them to go).
    fn forget(&self) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let ns: Api<Namespace> = Api::all(self.client.clone());
        self.rt.block_on(async {
            for h in &self.hosts {
                let _ = nodes.delete(h, &DeleteParams::default()).await;
            }
            let _ = ns.delete(NS, &DeleteParams::default()).await;
        });
    }

    pub fn sh(&self, i: usize, cmd: &str) -> String {
        sh(&self.dir, &self.hosts[i], cmd)
    }

    pub fn put(&self, i: usize, path: &str, bytes: &[u8], mode: &str) {
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
    /// token (h3 with a worker), h4 and h5 workers; the Nodes of h3, h4 and h5 Ready.
    pub fn install(&self, kubeconfig: &str) {
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
            // the last controller runs workloads as well: a host with two roles
            let worker = if i >= FIRST_WORKER {
                " --enable-worker --no-taints"
            } else {
                ""
            };
            self.sh(
                i,
                &format!(
                    "k0s install controller --config /etc/k0s/k0s.yaml --token-file /etc/k0s/join-token{worker} && k0s start"
                ),
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

    /// The hosts that run workloads (and hold a Node): h3, h4, h5.
    pub fn workers(&self) -> &[String] {
        &self.hosts[FIRST_WORKER..]
    }

    pub fn wait_workers(&self, kubelet: &str) {
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
    pub fn deploy(&self) {
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
                                    // spread over the hosts that run workloads; a
                                    // cordoned one (tainted unschedulable) leaves the count,
                                    // so the pods a drain evicts can go to the others
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

    /// The web pods deleted and recreated by their Deployment, spread over the three hosts that
    /// run workloads (2, 1 and 1).
    pub fn respread(&self) {
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
            "4 ready web pods spread over h3, h4 and h5",
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
                if ready == 4 && per.iter().all(|n| (1..=2).contains(n)) {
                    Ok(())
                } else {
                    Err(format!("{ready} ready, per worker {per:?}"))
                }
            },
        ));
    }

    /// A pod without a controller, bound to `node`.
    pub fn bare_pod(&self, name: &str, node: &str) {
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

    pub fn ferry(&self, args: &[&str]) -> Command {
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

    /// `ferry k0s upgrade online --k0s-binary BINARY --state-dir STATE EXTRA...` against the bed.
    pub fn upgrade(&self, binary: &Path, state: &Path, extra: &[&str]) -> Command {
        let mut args = vec![
            "k0s",
            "upgrade",
            "online",
            "--k0s-binary",
            binary.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.ferry(&args)
    }

    /// Every host's binary and running k0s are `version`, the workers' Nodes Ready and
    /// schedulable with its kubelet version.
    pub fn assert_running(&self, version: &str) {
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

    pub fn versions(&self) -> Vec<String> {
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
        self.forget();
    }
}

pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(p, _)| p)
}

/// Ready pods of the Deployment that are not being deleted.
pub async fn ready_pods(client: &kube::Client) -> Result<usize, String> {
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

/// What one host holds: the k0s service's state, and every file, directory and link under
/// `/etc`, `/var/lib` and `/usr/local` with its mode and, for files, its SHA-256. Left out: the
/// backups ferry keeps on purpose, also after a rollback (`/var/lib/ferry/k0s-backups`, and the
/// `/var/lib/ferry` directory that holds them), and apt's and dpkg's bookkeeping, which nothing
/// here touches.
const HOST_SCRIPT: &str = r#"set -e
echo '## k0s'
k0s status 2>/dev/null | grep -E '^(Version|Role|Workloads):' || echo 'not running'
skip='( -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/lib/ferry )'
echo '## files'
{
  find /etc /var/lib /usr/local $skip -prune -o -printf '%y %m %u %p %l\n'
  # ferry's own directory appears with the first backup and stays with it: its other contents
  [ ! -d /var/lib/ferry ] || find /var/lib/ferry -mindepth 1 -path /var/lib/ferry/k0s-backups \
    -prune -o -printf '%y %m %u %p %l\n'
} | sort
echo '## sums'
{
  find /etc /var/lib /usr/local $skip -prune -o -type f -print0
  [ ! -d /var/lib/ferry ] || find /var/lib/ferry -mindepth 1 -path /var/lib/ferry/k0s-backups \
    -prune -o -type f -print0
} | sort -z | xargs -0 -r sha256sum
"#;

/// The files whose contents are the same after any two runs from any two provisions: the
/// binaries. Everything else a provision makes (certificates, tokens) is random.
const STABLE_SUMS: &[&str] = &["/usr/local/bin/k0s", "/var/lib/ferry/k0s.previous"];

/// A digest of the k0s cluster: each host (see [`HOST_SCRIPT`]) and, from the API server, the
/// Nodes of the hosts (unschedulable, labels, taints, kubelet version) and the Deployment's
/// ready count. Taken once the cluster has settled: the Nodes of running hosts Ready without
/// taints and the Deployment fully ready, so that it is not a snapshot of a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub sections: std::collections::BTreeMap<String, String>,
}

impl Digest {
    pub fn take(bed: &K0sBed) -> Result<Digest, String> {
        bed.settle()?;
        let mut sections = std::collections::BTreeMap::new();
        for h in &bed.hosts {
            let out = ssh(&bed.dir, h, HOST_SCRIPT, b"");
            if !out.status.success() {
                return Err(format!(
                    "{h}: digest: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            sections.insert(
                format!("host {h}"),
                String::from_utf8_lossy(&out.stdout).to_string(),
            );
        }
        sections.insert("api".into(), bed.rt.block_on(api_digest(bed))?);
        Ok(Digest { sections })
    }

    /// What any two runs that end the same way share: the digest without the contents of files
    /// a provision makes at random (see [`STABLE_SUMS`]).
    pub fn shape(&self) -> Digest {
        let sections = self
            .sections
            .iter()
            .map(|(k, v)| {
                let mut in_sums = false;
                let kept: Vec<&str> = v
                    .lines()
                    .filter(|l| {
                        if l.starts_with("## ") {
                            in_sums = *l == "## sums";
                            return true;
                        }
                        !in_sums
                            || l.split_whitespace()
                                .nth(1)
                                .is_some_and(|p| STABLE_SUMS.contains(&p))
                    })
                    .collect();
                (k.clone(), kept.join("\n"))
            })
            .collect();
        Digest { sections }
    }

    /// The lines that differ, section by section (`-` here only, `+` in `now` only).
    pub fn diff(&self, now: &Digest) -> Option<String> {
        let mut out = String::new();
        let keys: std::collections::BTreeSet<&String> =
            self.sections.keys().chain(now.sections.keys()).collect();
        for k in keys {
            let a = self.sections.get(k).map(String::as_str).unwrap_or("");
            let b = now.sections.get(k).map(String::as_str).unwrap_or("");
            if a == b {
                continue;
            }
            let la: std::collections::BTreeSet<&str> = a.lines().collect();
            let lb: std::collections::BTreeSet<&str> = b.lines().collect();
            out.push_str(&format!("[{k}]\n"));
            for l in la.difference(&lb) {
                out.push_str(&format!("- {l}\n"));
            }
            for l in lb.difference(&la) {
                out.push_str(&format!("+ {l}\n"));
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

async fn api_digest(bed: &K0sBed) -> Result<String, String> {
    let nodes: Api<Node> = Api::all(bed.client.clone());
    let mut out = String::new();
    for h in &bed.hosts {
        let Some(n) = nodes.get_opt(h).await.map_err(|e| e.to_string())? else {
            out.push_str(&format!("node {h}: none\n"));
            continue;
        };
        let spec = n.spec.clone().unwrap_or_default();
        let taints: Vec<String> = spec
            .taints
            .unwrap_or_default()
            .iter()
            .map(|t| {
                format!(
                    "{}={}:{}",
                    t.key,
                    t.value.clone().unwrap_or_default(),
                    t.effect
                )
            })
            .collect();
        let labels: std::collections::BTreeMap<String, String> =
            n.metadata.labels.clone().unwrap_or_default();
        let kubelet = n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default();
        out.push_str(&format!(
            "node {h}: unschedulable={} ready={} kubelet={kubelet} taints={taints:?} labels={labels:?}\n",
            spec.unschedulable.unwrap_or(false),
            mke_bed::node_ready(&n),
        ));
    }
    let ready = ready_pods(&bed.client).await?;
    out.push_str(&format!("web ready pods: {ready}\n"));
    Ok(out)
}

impl K0sBed {
    /// Fresh hosts with the old release, and the Deployment on them.
    pub fn provision(&self) {
        self.reset();
        self.install(&self.api.kubeconfig);
        self.deploy();
    }

    /// Waits (2 min at most) until the Nodes of the hosts whose k0s runs are Ready without
    /// taints and the Deployment has its 4 ready pods: what a digest may be taken of.
    pub fn settle(&self) -> Result<(), String> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let why = self.rt.block_on(async {
                for (i, w) in self.hosts.iter().enumerate().skip(FIRST_WORKER) {
                    let running = ssh(&self.dir, w, "k0s status >/dev/null 2>&1", b"")
                        .status
                        .success();
                    let Some(n) = nodes.get_opt(w).await.map_err(|e| e.to_string())? else {
                        return Err(format!("{w}: no Node"));
                    };
                    let tainted = n
                        .spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .is_some_and(|t| !t.is_empty());
                    if running && (!mke_bed::node_ready(&n) || tainted) {
                        return Err(format!("h{}: k0s runs, Node not Ready or tainted", i + 1));
                    }
                }
                let ready = ready_pods(&self.client).await?;
                if ready != 4 {
                    return Err(format!("{ready} of 4 web pods ready"));
                }
                Ok(())
            });
            match why {
                Ok(()) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(format!("the cluster did not settle within 2 min: {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// `ferry rollback` or `ferry resume` of the run in `state`, from its journal.
    pub fn ferry_again(&self, verb: &str, state: &Path) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([verb, "--state-dir"])
            .arg(state)
            .arg("--ssh-config")
            .arg(self.dir.join("ssh_config"))
            .arg("--known-hosts")
            .arg(self.dir.join("known_hosts"))
            .env("HOME", self.tmp.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}
