//! An MKE 3 cluster made of real parts, for the tests that run `ferry upgrade` against it: the
//! SSH testbed's hosts with the MKE 3 node profile (`scripts/testbed mke3`: Docker engine, swarm,
//! `ucp-*` containers, `ucp-kv` etcd cluster with TLS), the real API server of `testenv/k8s`
//! (kwok keeps the hosts' Nodes Ready while `ucp-kubelet`, later k0s, runs on them), the
//! `ferry-mke3-sim` process serving the MKE 3 API, and the k0s double as `--k0s-binary`.
//!
//! The hosts reach the API server (which listens on 127.0.0.1 only) through a TCP forwarder on
//! the testbed's bridge address that this process runs; their kubeconfig names the server's
//! certificate name (`tls-server-name: 127.0.0.1`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod digest;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferry_kube_api::testing::real::{RealServer, eventually};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

/// The MKE 3 admin password of the simulated cluster (a test value; the suite scans for it).
pub const PASSWORD: &str = "Mke3-Testbed-Secret-0420";
/// The testbed's bridge address: the hosts' way to this machine.
const BRIDGE: &str = "10.123.0.1";
/// The namespace of the workloads the tests put on the cluster.
pub const APP_NS: &str = "shop";
/// Where the hosts keep the kubeconfig of the API server: MKE 3's kubelet reads it from its
/// certificates volume, the k0s double from its own directory.
const NODE_CERTS: &str = "/var/lib/docker/volumes/ucp-node-certs/_data/kubeconfig";
const K0S_DOUBLE_KUBECONFIG: &str = "/etc/k0s-double/kubeconfig";

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// With `FERRY_KEEP_JOURNALS=DIR`, a copy of the run's journal in `state` as `DIR/<name>.jsonl`
/// (the fixtures of `ferry report` come from real runs this way); nothing otherwise.
pub fn keep_journal(state: &Path, name: &str) {
    let Some(dir) = std::env::var_os("FERRY_KEEP_JOURNALS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::copy(
        state.join("journal.jsonl"),
        dir.join(format!("{name}.jsonl")),
    );
}

/// A binary of another package of the workspace, built beside `ferry`.
pub fn sibling_binary(name: &str) -> PathBuf {
    let ferry = PathBuf::from(env!("CARGO_BIN_EXE_ferry"));
    let p = ferry.with_file_name(name);
    assert!(
        p.is_file(),
        "TEST BINARY MISSING: {} is not built; run `cargo build --workspace --bins` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

/// Forwards TCP connections from the bridge address to the API server, for as long as it lives.
struct Forwarder {
    addr: std::net::SocketAddr,
}

impl Forwarder {
    fn start(target: String) -> Forwarder {
        let l = TcpListener::bind((BRIDGE, 0)).unwrap_or_else(|e| {
            panic!("SSH TESTBED DOWN: cannot listen on its bridge address {BRIDGE}: {e}")
        });
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let target = target.clone();
                std::thread::spawn(move || {
                    if let Ok(s) = TcpStream::connect(&target) {
                        pipe(c, s);
                    }
                });
            }
        });
        Forwarder { addr }
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    let (mut a, mut b) = (a, b);
    let _ = std::io::copy(&mut b, &mut a);
    let _ = a.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

/// The API server as the testbed's hosts reach it: through a forwarder on the bridge address
/// (the server listens on 127.0.0.1 only), with a kubeconfig that carries the CA and names the
/// server's certificate name.
pub struct HostApi {
    pub kubeconfig: String,
    forwarder: Forwarder,
}

impl HostApi {
    pub fn start(server: &RealServer) -> HostApi {
        let text = std::fs::read_to_string(&server.kubeconfig).unwrap();
        let mut kc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let cluster = &mut kc["clusters"][0]["cluster"];
        let server_url = cluster["server"].as_str().unwrap().to_string();
        let target = server_url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let forwarder = Forwarder::start(target);
        cluster["server"] = format!("https://{}", forwarder.addr).into();
        if let Some(ca) = cluster["certificate-authority"].as_str() {
            // The hosts do not see this machine's files: the CA goes in the file.
            use base64::Engine as _;
            let pem = std::fs::read(ca).unwrap();
            cluster["certificate-authority-data"] =
                base64::engine::general_purpose::STANDARD.encode(pem).into();
            cluster
                .as_mapping_mut()
                .unwrap()
                .remove("certificate-authority");
        }
        cluster["tls-server-name"] = "127.0.0.1".into();
        HostApi {
            kubeconfig: serde_yaml::to_string(&kc).unwrap(),
            forwarder,
        }
    }
}

/// The `ferry-mke3-sim` process; stopped (SIGTERM) when dropped.
pub struct SimProcess {
    child: Child,
    pub url: String,
    pub ca: PathBuf,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The model the MKE 3 API serves: accounts, orgs, teams, roles, collections and grants.
pub fn model_path() -> PathBuf {
    repo("crates/rbac/tests/fixtures/02-worked-example.json")
}

/// The MKE 3 configuration it serves (Calico on KDD).
pub fn config_toml_path() -> PathBuf {
    repo("examples/mke3-config.toml")
}

/// The testbed hosts as MKE 3 nodes, the API server and the MKE 3 API.
pub struct Bed {
    pub dir: PathBuf,
    /// Host names (`h1`..), which are also the node names.
    pub hosts: Vec<String>,
    /// Their addresses, as the hosts file lists them.
    pub addresses: Vec<String>,
    pub managers: usize,
    pub version: String,
    pub server: RealServer,
    pub rt: tokio::runtime::Runtime,
    pub client: kube::Client,
    pub sim: SimProcess,
    pub tmp: tempfile::TempDir,
    /// The k0s double, stripped (ferry copies it to every host).
    pub k0s: PathBuf,
    /// The kubeconfig of the API server as the hosts reach it.
    host_kubeconfig: String,
    _forwarder: Forwarder,
}

fn testbed_dir(what: &str) -> PathBuf {
    let dir = crate::common::testbed(what);
    assert!(
        dir.join("mke3/profile").is_file(),
        "MKE 3 NODE PROFILE MISSING: the testbed in {} runs no MKE 3 cluster, so {what} cannot be tested: run `sudo scripts/testbed mke3 3 --standin target/debug/ucp-standin`, or `scripts/test` (as root), which does",
        dir.display()
    );
    dir
}

/// Runs `scripts/testbed ARGS` (needs root, as the suite does) and panics with its output when
/// it fails.
pub fn testbed(dir: &Path, args: &[&str]) {
    let out = Command::new(repo("scripts/testbed"))
        .args(args)
        .env("FERRY_TESTBED_DIR", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/testbed {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ssh` to a testbed host as root, `stdin` fed to the command.
pub fn ssh(dir: &Path, host: &str, cmd: &str, stdin: &[u8]) -> Output {
    let mut child = Command::new("ssh")
        .arg("-F")
        .arg(dir.join("ssh_config"))
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// `ssh` that must succeed; its standard output.
pub fn sh(dir: &Path, host: &str, cmd: &str) -> String {
    let out = ssh(dir, host, cmd, b"");
    assert!(
        out.status.success(),
        "{host}: {cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Bed {
    /// The MKE 3 cluster on the testbed as `scripts/testbed mke3` made it, joined to the API
    /// server: every host's Node Ready, the MKE 3 API serving. Panics, naming what is missing,
    /// when the testbed, its MKE 3 profile or the control plane is not there.
    pub fn open(what: &str) -> Bed {
        let dir = testbed_dir(what);
        let server = RealServer::from_env(what);
        let profile = std::fs::read_to_string(dir.join("mke3/profile")).unwrap();
        let mut words = profile.split_whitespace();
        let managers: usize = words.next().unwrap().parse().unwrap();
        let version = words.next().unwrap().to_string();
        let hosts: Vec<String> = std::fs::read_to_string(dir.join("hosts.txt"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        let addresses = (1..=hosts.len()).map(|i| format!("10.123.1.{i}")).collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(server.client());
        let tmp = tempfile::tempdir().unwrap();

        // The API server as the hosts see it.
        let HostApi {
            kubeconfig: host_kubeconfig,
            forwarder,
        } = HostApi::start(&server);

        let k0s = tmp.path().join("k0s");
        let st = Command::new("strip")
            .arg("-o")
            .arg(&k0s)
            .arg(sibling_binary("k0s"))
            .status()
            .unwrap();
        assert!(st.success(), "strip the k0s double");

        let sim = start_sim(tmp.path(), &server.kubeconfig, &version);
        let bed = Bed {
            dir,
            hosts,
            addresses,
            managers,
            version,
            server,
            rt,
            client,
            sim,
            tmp,
            k0s,
            host_kubeconfig,
            _forwarder: forwarder,
        };
        if !bed.pristine() {
            // An earlier run that failed left the hosts changed: start from fresh MKE 3 nodes.
            bed.reprovision();
        }
        bed.join_api_server();
        bed.create_model_namespaces();
        bed
    }

    /// Whether every host is the MKE 3 node the profile made: in the swarm, with its ucp-*
    /// containers running and no k0s.
    pub fn pristine(&self) -> bool {
        self.hosts.iter().enumerate().all(|(i, h)| {
            let want = if i < self.managers { 7 } else { 3 };
            let out = ssh(
                &self.dir,
                h,
                "test ! -e /usr/local/bin/k0s && docker info --format '{{.Swarm.LocalNodeState}}' && docker ps --filter name=ucp- --format '{{.Names}}' | wc -l",
                b"",
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            out.status.success()
                && lines.next() == Some("active")
                && lines.next().and_then(|n| n.trim().parse::<usize>().ok()) == Some(want)
        })
    }

    /// Everything a run needs on the cluster besides the hosts: MKE 4k's kinds, the workloads,
    /// a key the tests write into MKE 3's etcd (the backup must hold it).
    pub fn prepare(&self) {
        install_mke4_kinds(self);
        self.deploy_workloads();
        sh(
            &self.dir,
            &self.hosts[0],
            "docker exec ucp-kv etcdctl --endpoints=https://127.0.0.1:12379 --cacert=/etc/docker/ssl/ca.pem --cert=/etc/docker/ssl/cert.pem --key=/etc/docker/ssl/key.pem put /ferry-test/owner chaos",
        );
    }

    /// Removes from the API server what an upgrade applied (the objects ferry labels as its
    /// own and the `mke` namespace), so that the next run starts from an MKE 3 cluster.
    pub fn clear_api(&self) {
        self.rt.block_on(async {
            for (group, version, kind) in [
                ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
                ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
                ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
                ("rbac.authorization.k8s.io", "v1", "Role"),
            ] {
                let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
                let (ar, _) = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .unwrap();
                let all: Api<kube::api::DynamicObject> = Api::all_with(self.client.clone(), &ar);
                let lp = ListParams::default().labels("app.kubernetes.io/managed-by=ferry");
                for o in all.list(&lp).await.unwrap().items {
                    let name = o.metadata.name.clone().unwrap();
                    let api: Api<kube::api::DynamicObject> = match &o.metadata.namespace {
                        Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                        None => Api::all_with(self.client.clone(), &ar),
                    };
                    let _ = api.delete(&name, &DeleteParams::default()).await;
                }
            }
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> =
                Api::all(self.client.clone());
            let _ = namespaces.delete("mke", &DeleteParams::default()).await;
            eventually("namespace mke gone", Duration::from_secs(60), || async {
                match namespaces.get_opt("mke").await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
        });
    }

    /// Removes the MkeConfig CRD if the bed made it, and waits until it is gone.
    fn remove_mke4_kinds(&self) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        self.rt.block_on(async {
            let ours = crds.get_opt(MKE_CRD).await.unwrap().is_some_and(|c| {
                c.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(BED_LABEL))
                    .map(String::as_str)
                    == Some("mke-bed")
            });
            if !ours {
                return;
            }
            let _ = crds.delete(MKE_CRD, &DeleteParams::default()).await;
            eventually(
                "the MkeConfig CRD gone",
                Duration::from_secs(60),
                || async {
                    match crds.get_opt(MKE_CRD).await {
                        Ok(None) => Ok(()),
                        other => Err(format!("{:?}", other.map(|c| c.is_some()))),
                    }
                },
            )
            .await;
        });
    }

    /// Fresh MKE 3 nodes joined to the API server, from whatever state: used between cases.
    pub fn fresh(&self) {
        self.reprovision();
        self.clear_api();
        self.join_api_server();
    }

    /// Leaves the testbed as the suite's set-up made it: fresh MKE 3 nodes, their Nodes and the
    /// workloads gone from the API server.
    pub fn restore(&self) {
        self.remove_workloads();
        self.clear_api();
        self.remove_mke4_kinds();
        self.reprovision();
        let nodes: Api<Node> = Api::all(self.client.clone());
        for h in &self.hosts {
            let _ = self.rt.block_on(nodes.delete(h, &DeleteParams::default()));
        }
    }

    /// The namespaces the MKE 3 model grants access to exist in its cluster: a grant whose
    /// object is a namespace (no collection path), except the all-namespaces object.
    fn create_model_namespaces(&self) {
        let model: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(model_path()).unwrap()).unwrap();
        let names: std::collections::BTreeSet<&str> = model["grants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g.get("collectionPath").is_none())
            .filter_map(|g| g["objectID"].as_str())
            .filter(|o| *o != "kubernetesnamespaces")
            .collect();
        self.rt.block_on(async {
            for n in names {
                let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}});
                apply(&self.client, &ns).await;
            }
        });
    }

    /// Puts the kubeconfig where the hosts' kubelets read it; `ucp-kubelet` (retrying every
    /// 2 s) then registers each Node and kwok makes it Ready.
    pub fn join_api_server(&self) {
        let kubeconfig = &self.host_kubeconfig;
        // Nodes of earlier runs go: the kubelets register them afresh.
        let nodes: Api<Node> = Api::all(self.client.clone());
        for h in &self.hosts {
            let _ = self.rt.block_on(nodes.delete(h, &DeleteParams::default()));
        }
        for h in &self.hosts {
            for path in [NODE_CERTS, K0S_DOUBLE_KUBECONFIG] {
                let out = ssh(
                    &self.dir,
                    h,
                    &format!(
                        "mkdir -p {} && install -m 0600 /dev/stdin {path}",
                        parent(path)
                    ),
                    kubeconfig.as_bytes(),
                );
                assert!(out.status.success(), "{h}: writing {path}: {out:?}");
            }
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        for h in &self.hosts {
            self.rt.block_on(eventually(
                &format!("node {h} Ready under MKE 3's kubelet"),
                Duration::from_secs(90),
                || async {
                    let n = nodes.get(h).await.map_err(|e| e.to_string())?;
                    if node_ready(&n) {
                        Ok(())
                    } else {
                        Err(format!("{:?}", n.status.and_then(|s| s.conditions)))
                    }
                },
            ));
        }
    }

    /// The hosts file of the testbed.
    pub fn hosts_yaml(&self) -> PathBuf {
        self.dir.join("hosts.yaml")
    }

    /// `ferry` with the connection flags every run against this cluster needs.
    pub fn ferry(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args(args)
            .arg("--ssh-config")
            .arg(self.dir.join("ssh_config"))
            .arg("--known-hosts")
            .arg(self.dir.join("known_hosts"))
            .arg("--mke3-url")
            .arg(&self.sim.url)
            .arg("--mke3-ca-cert")
            .arg(&self.sim.ca)
            .env("MKE3_ADMIN_PASSWORD", PASSWORD)
            .env("HOME", self.tmp.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    /// The arguments of `ferry upgrade` on this cluster.
    pub fn upgrade_args(&self, state: &Path, config_out: &Path) -> Vec<String> {
        [
            "upgrade",
            "--hosts-path",
            self.hosts_yaml().to_str().unwrap(),
            "--mke3-admin-username",
            "admin",
            "--external-address",
            &self.addresses[0],
            "--k0s-binary",
            self.k0s.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--config-out",
            config_out.to_str().unwrap(),
            "--max-unavailable",
            "1",
            "--gateway-http-node-port",
            "33000",
            "--gateway-https-node-port",
            "33001",
            // The hosts share this machine's 2 cores and its memory.
            "--skip-cpu-cores-check",
            "--skip-total-memory-check",
            "--force",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    pub fn nodes(&self) -> Vec<Node> {
        let api: Api<Node> = Api::all(self.client.clone());
        let names = &self.hosts;
        self.rt
            .block_on(api.list(&ListParams::default()))
            .unwrap()
            .items
            .into_iter()
            .filter(|n| names.contains(n.metadata.name.as_ref().unwrap()))
            .collect()
    }

    /// Workloads on the nodes: a Deployment of 3 behind a PodDisruptionBudget of at least 2,
    /// a DaemonSet on every node; waits until they run.
    pub fn deploy_workloads(&self) {
        let c = &self.client;
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APP_NS}});
        let select = json!({"com.docker.ucp.orchestrator.kubernetes": "true"});
        let web = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": APP_NS},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"nodeSelector": select, "terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "web", "image": "nginx:1.27"}]}}}
        });
        let pdb = json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": APP_NS},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}
        });
        let ds = json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "node-agent", "namespace": APP_NS},
            "spec": {"selector": {"matchLabels": {"app": "node-agent"}},
                "template": {"metadata": {"labels": {"app": "node-agent"}},
                    "spec": {"nodeSelector": select, "terminationGracePeriodSeconds": 0,
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "agent", "image": "busybox:1.36"}]}}}
        });
        self.rt.block_on(async {
            for doc in [&ns, &web, &pdb, &ds] {
                apply(c, doc).await;
            }
            let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(c.clone(), APP_NS);
            eventually(
                "Deployment web 3/3 ready",
                Duration::from_secs(90),
                || async {
                    let d = deployments.get("web").await.map_err(|e| e.to_string())?;
                    let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                    if ready == 3 {
                        Ok(())
                    } else {
                        Err(format!("{ready} ready"))
                    }
                },
            )
            .await;
            let daemonsets: Api<k8s_openapi::api::apps::v1::DaemonSet> =
                Api::namespaced(c.clone(), APP_NS);
            let want = self.hosts.len() as i32;
            eventually(
                "DaemonSet node-agent on every node",
                Duration::from_secs(90),
                || async {
                    let d = daemonsets
                        .get("node-agent")
                        .await
                        .map_err(|e| e.to_string())?;
                    let s = d.status.unwrap_or_default();
                    if s.number_ready == want {
                        Ok(())
                    } else {
                        Err(format!("{s:?}"))
                    }
                },
            )
            .await;
        });
    }

    /// Removes the workloads' namespace (the end of a test).
    pub fn remove_workloads(&self) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let _ = self
            .rt
            .block_on(api.delete(APP_NS, &DeleteParams::default()));
    }

    /// Every host back to a fresh MKE 3 node: its disk wiped (`scripts/testbed reset`) and the
    /// profile applied again (not joined to the API server).
    pub fn reprovision(&self) {
        let all: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
        let mut args = vec!["reset"];
        args.extend(all);
        testbed(&self.dir, &args);
        let managers = self.managers.to_string();
        testbed(
            &self.dir,
            &[
                "mke3",
                &managers,
                "--version",
                &self.version,
                "--standin",
                sibling_binary("ucp-standin").to_str().unwrap(),
            ],
        );
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("/", |(p, _)| p)
}

pub fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn apply(c: &kube::Client, doc: &serde_json::Value) {
    let gvk: kube::api::GroupVersionKind = serde_json::from_value(json!({
        "group": doc["apiVersion"].as_str().unwrap().rsplit_once('/').map_or("", |(g, _)| g),
        "version": doc["apiVersion"].as_str().unwrap().rsplit('/').next().unwrap(),
        "kind": doc["kind"],
    }))
    .unwrap();
    let (ar, caps) = kube::discovery::pinned_kind(c, &gvk).await.unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap();
    let api: Api<kube::api::DynamicObject> =
        match (caps.scope, doc["metadata"]["namespace"].as_str()) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(c.clone(), ns, &ar)
            }
            _ => Api::all_with(c.clone(), &ar),
        };
    api.patch(
        name,
        &PatchParams::apply("ferry-test").force(),
        &Patch::Apply(doc),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

/// The CRD of the MkeConfig kind, and the label that marks it as the bed's own (other tests
/// refuse to touch a CRD they did not make, so the bed removes its own when it is done).
const MKE_CRD: &str = "mkeconfigs.mke.mirantis.com";
const BED_LABEL: &str = "ferry.test/made-by";

/// Installs what MKE 4k's installation brings and ferry's apply step writes into: the
/// `MkeConfig` kind (group `mke.mirantis.com`).
pub fn install_mke4_kinds(bed: &Bed) {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": MKE_CRD, "labels": {BED_LABEL: "mke-bed"}},
        "spec": {"group": "mke.mirantis.com", "scope": "Namespaced",
            "names": {"kind": "MkeConfig", "plural": "mkeconfigs", "singular": "mkeconfig",
                      "listKind": "MkeConfigList"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    bed.rt.block_on(async {
        apply(&bed.client, &crd).await;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(bed.client.clone());
        eventually("CRD mkeconfigs.mke.mirantis.com established", Duration::from_secs(30), || async {
            let c = crds.get(MKE_CRD).await.map_err(|e| e.to_string())?;
            let ok = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter().any(|c| c.type_ == "Established" && c.status == "True")
            });
            if ok { Ok(()) } else { Err("not established".into()) }
        })
        .await;
        // Established is not yet served: its storage answers 429 for a moment.
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("mke.mirantis.com", "v1alpha1", "MkeConfig"),
            "mkeconfigs",
        );
        let all: Api<kube::api::DynamicObject> = Api::all_with(bed.client.clone(), &ar);
        eventually("MkeConfig served", Duration::from_secs(30), || async {
            all.list(&ListParams::default()).await.map(|_| ()).map_err(|e| e.to_string())
        })
        .await;
    });
}

fn start_sim(tmp: &Path, kubeconfig: &Path, version: &str) -> SimProcess {
    let state = tmp.join("mke3-sim");
    let mut child = Command::new(sibling_binary("ferry-mke3-sim"))
        .arg("--model")
        .arg(model_path())
        .arg("--config-toml")
        .arg(config_toml_path())
        .arg("--state-dir")
        .arg(&state)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--mke-version", version])
        .env("FERRY_MKE3_SIM_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = loop {
        if let Ok(url) = std::fs::read_to_string(state.join("url")) {
            break url.trim().to_string();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ferry-mke3-sim exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "ferry-mke3-sim: no url within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    SimProcess {
        child,
        url,
        ca: state.join("ca.pem"),
    }
}
