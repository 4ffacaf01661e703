//! `ferry node replace-os --backend kubean` against kubean's own CRDs on the real control plane
//! of `testenv/k8s`, with a double of kubean's operator (`ferry_kube_api::testing::kubean`)
//! running the ClusterOperations ferry creates: the same control plane is the management cluster
//! (the `Cluster`, the ConfigMaps of its inventory and kubeconfig, the operations) and the
//! workload cluster (the Nodes the operator's jobs register, kept Ready by kwok). The hosts are
//! four testbed hosts (`FERRY_NODE_OS_KUBEAN_HOSTS`, default `1,2,3,4`): master1, master2 and two
//! workers, named in the inventory by their addresses; the reinstall is
//! `scripts/testbed reimage HOST trixie`.
//!
//! Shown: the dry run prints every operation and creates none; a `scale.yml` that fails (the
//! double's fault ConfigMap) stops the run, which says which operation failed and rolls back,
//! re-adding the reinstalled worker on its new OS; the full run moves every host to the new OS,
//! workers first and master1 last, with the operations written as the DCE 5.0 procedure writes
//! them, master1 moved last in the inventory, and the workload cluster's cluster-info and
//! kubeadm-config pointing at master2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod k0s_bed;
mod mke_bed;
mod node_os_bed;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ferry_kube_api::testing::kubean::{FAULTS, KubeanDouble, NAMESPACE};
use ferry_kube_api::testing::real::{RealServer, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use node_os_bed::{BackToBase, pretty_name, testbed};
use serde_json::json;

const CLUSTER: &str = "sample";
const IMAGE: &str = "ghcr.io/kubean-io/spray-job:v0.37.0";
const APPS: &str = "kubean-apps";
/// On every Node of this cluster (kubespray's `node_taints`): the other tests' pods, on the
/// same control plane, stay off them; this test's tolerate it.
const TAINT: &str = "ferry-test/kubean=true:NoSchedule";
const NAMES: [&str; 4] = ["kb-master1", "kb-master2", "kb-worker1", "kb-worker2"];

fn ops_resource() -> ApiResource {
    ApiResource {
        group: "kubean.io".into(),
        version: "v1alpha1".into(),
        api_version: "kubean.io/v1alpha1".into(),
        kind: "ClusterOperation".into(),
        plural: "clusteroperations".into(),
    }
}

struct Bed {
    dir: PathBuf,
    hosts: Vec<String>,
    addresses: Vec<String>,
    server: RealServer,
    client: kube::Client,
    rt: tokio::runtime::Runtime,
    tmp: tempfile::TempDir,
    _double: KubeanDouble,
}

impl Bed {
    fn open() -> Bed {
        let what = "`ferry node replace-os --backend kubean`";
        let dir = common::testbed(what);
        let server = RealServer::from_env(what);
        let picks: Vec<usize> = std::env::var("FERRY_NODE_OS_KUBEAN_HOSTS")
            .unwrap_or_else(|_| "1,2,3,4".into())
            .split(',')
            .map(|n| n.trim().parse().unwrap())
            .collect();
        let known = std::fs::read_to_string(dir.join("hosts.txt")).unwrap();
        let hosts: Vec<String> = picks.iter().map(|i| format!("h{i}")).collect();
        for h in &hosts {
            assert!(
                known
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(h)),
                "SSH TESTBED TOO SMALL: this test needs {h}"
            );
        }
        let addresses = picks.iter().map(|i| format!("10.123.1.{i}")).collect();
        let rt = common::runtime();
        let client = rt.block_on(server.client());
        let double = {
            let _guard = rt.enter();
            KubeanDouble::start(
                client.clone(),
                Duration::from_millis(500),
                Duration::from_secs(1),
            )
        };
        let bed = Bed {
            dir,
            hosts,
            addresses,
            server,
            client,
            rt,
            tmp: tempfile::tempdir().unwrap(),
            _double: double,
        };
        let mut args = vec!["reset"];
        args.extend(bed.hosts.iter().map(String::as_str));
        let out = testbed(&bed.dir, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bed
    }

    fn hosts_file(&self) -> PathBuf {
        let mut text = String::from("hosts:\n");
        for a in &self.addresses {
            text.push_str(&format!(
                "  - address: {a}\n    port: 22\n    user: ferry\n    keyPath: {}\n",
                self.dir.join("id_ed25519").display()
            ));
        }
        let p = self.tmp.path().join("hosts.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn inventory(&self) -> String {
        let mut t = String::from("all:\n  hosts:\n");
        for (n, a) in NAMES.iter().zip(&self.addresses) {
            t.push_str(&format!(
                "    {n}:\n      ip: {a}\n      access_ip: {a}\n      ansible_host: {a}\n      ansible_connection: ssh\n      ansible_user: root\n      ansible_password: not-a-real-password\n      node_taints:\n        - {TAINT}\n"
            ));
        }
        t.push_str("  children:\n    kube_control_plane:\n      hosts:\n        kb-master1: null\n        kb-master2: null\n");
        t.push_str("    kube_node:\n      hosts:\n        kb-master1: null\n        kb-master2: null\n        kb-worker1: null\n        kb-worker2: null\n");
        t.push_str("    etcd:\n      hosts:\n        kb-master1: null\n        kb-master2: null\n");
        t.push_str("    k8s_cluster:\n      children:\n        kube_control_plane: null\n        kube_node: null\n    calico_rr:\n      hosts: {}\n");
        t
    }

    /// kubean's CRDs, the cluster's objects, the Nodes its installation registers, the
    /// workload's ConfigMaps and a Deployment under a budget.
    fn provision(&self) {
        let pp = PatchParams::apply("ferry-test").force();
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let repo = mke_bed::repo("testenv/kubean/crds");
        self.rt.block_on(async {
            for f in [
                "kubean.io_clusters.yaml",
                "kubean.io_clusteroperations.yaml",
            ] {
                let text = std::fs::read_to_string(repo.join(f)).unwrap();
                let crd: serde_json::Value = serde_yaml::from_str(&text).unwrap();
                let name = crd["metadata"]["name"].as_str().unwrap().to_string();
                crds.patch(&name, &pp, &Patch::Apply(&crd)).await.unwrap();
            }
        });
        self.rt.block_on(eventually(
            "kubean's CRDs established",
            Duration::from_secs(60),
            || async {
                for n in ["clusters.kubean.io", "clusteroperations.kubean.io"] {
                    let c = crds.get(n).await.map_err(|e| e.to_string())?;
                    let ok = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    });
                    if !ok {
                        return Err(format!("{n} not established"));
                    }
                }
                Ok(())
            },
        ));
        self.clean();
        let apply = |v: serde_json::Value| {
            let client = self.client.clone();
            let pp = pp.clone();
            async move {
                let kind = v["kind"].as_str().unwrap().to_string();
                let name = v["metadata"]["name"].as_str().unwrap().to_string();
                let ns = v["metadata"]["namespace"].as_str().map(str::to_string);
                let ar = match kind.as_str() {
                    "Namespace" => ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
                    "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
                    "Cluster" => ApiResource {
                        kind: "Cluster".into(),
                        plural: "clusters".into(),
                        ..ops_resource()
                    },
                    "ClusterOperation" => ops_resource(),
                    other => panic!("{other}"),
                };
                let api: Api<DynamicObject> = match ns {
                    Some(ns) => Api::namespaced_with(client, &ns, &ar),
                    None => Api::all_with(client, &ar),
                };
                api.patch(&name, &pp, &Patch::Apply(&v)).await.unwrap();
            }
        };
        let m1 = &self.addresses[0];
        self.rt.block_on(async {
            for ns in [NAMESPACE, APPS] {
                apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await;
            }
            apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "sample-hosts-conf", "namespace": NAMESPACE},
                "data": {"hosts.yml": self.inventory()}})).await;
            apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "sample-vars-conf", "namespace": NAMESPACE},
                "data": {"group_vars.yml": "container_manager: containerd\n"}})).await;
            apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "sample-kubeconf", "namespace": NAMESPACE},
                "data": {"config": format!("apiVersion: v1\nkind: Config\nclusters:\n- name: sample\n  cluster:\n    server: https://{m1}:6443\n")}})).await;
            apply(json!({"apiVersion": "kubean.io/v1alpha1", "kind": "Cluster",
                "metadata": {"name": CLUSTER},
                "spec": {
                    "hostsConfRef": {"name": "sample-hosts-conf", "namespace": NAMESPACE},
                    "varsConfRef": {"name": "sample-vars-conf", "namespace": NAMESPACE},
                    "kubeconfRef": {"name": "sample-kubeconf", "namespace": NAMESPACE}
                }})).await;
            // the workload cluster's own ConfigMaps that name master1
            apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                "data": {"kubeconfig": format!("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Y2E=\n    server: https://{m1}:6443\n  name: \"\"\n")}})).await;
            apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                "data": {"ClusterConfiguration": format!("apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: {m1}:6443\nkubernetesVersion: v1.31.4\n")}})).await;
            // the cluster's installation, by the operator
            apply(json!({"apiVersion": "kubean.io/v1alpha1", "kind": "ClusterOperation",
                "metadata": {"name": "sample-install"},
                "spec": {"cluster": CLUSTER, "image": IMAGE, "actionType": "playbook", "action": "cluster.yml"}})).await;
        });
        self.wait_op("sample-install", "Succeeded");
        self.wait_nodes_ready();
        self.deploy();
    }

    fn wait_op(&self, name: &str, want: &str) {
        let ops: Api<DynamicObject> = Api::all_with(self.client.clone(), &ops_resource());
        self.rt.block_on(eventually(
            &format!("ClusterOperation {name} {want}"),
            Duration::from_secs(60),
            || async {
                let o = ops.get(name).await.map_err(|e| e.to_string())?;
                let s = o.data["status"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if s == want {
                    Ok(())
                } else {
                    Err(format!("status {s:?}"))
                }
            },
        ));
    }

    fn wait_nodes_ready(&self) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        self.rt.block_on(eventually(
            "the cluster's four Nodes Ready",
            Duration::from_secs(120),
            || async {
                for n in NAMES {
                    let node = nodes.get(n).await.map_err(|e| format!("{n}: {e}"))?;
                    if !mke_bed::node_ready(&node) {
                        return Err(format!("{n} not Ready"));
                    }
                    // the node lifecycle controller takes its not-ready taint off a moment after
                    let tainted = node
                        .spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .is_some_and(|t| {
                            t.iter().any(|t| t.key.starts_with("node.kubernetes.io/"))
                        });
                    if tainted {
                        return Err(format!("{n} still tainted not-ready"));
                    }
                }
                Ok(())
            },
        ));
    }

    fn deploy(&self) {
        let pp = PatchParams::apply("ferry-test").force();
        let d: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.client.clone(), APPS);
        let b: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
            Api::namespaced(self.client.clone(), APPS);
        self.rt.block_on(async {
            d.patch("web", &pp, &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": APPS},
                "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                        "containers": [{"name": "web", "image": "registry.invalid/web:1",
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
                        "automountServiceAccountToken": false, "terminationGracePeriodSeconds": 0,
                        "tolerations": [{"key": "ferry-test/kubean", "operator": "Exists"}],
                        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": NAMES}]}]}}}}}}
            }))).await.unwrap();
            b.patch("web", &pp, &Patch::Apply(json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": APPS},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}
            }))).await.unwrap();
        });
        self.rt.block_on(eventually(
            "4 ready web pods",
            Duration::from_secs(120),
            || async {
                let x = d.get("web").await.map_err(|e| e.to_string())?;
                let r = x.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                if r == 4 {
                    Ok(())
                } else {
                    Err(format!("{r} ready"))
                }
            },
        ));
    }

    /// Every object of an earlier run gone: operations, the cluster, the apps, the Nodes.
    fn clean(&self) {
        let ops: Api<DynamicObject> = Api::all_with(self.client.clone(), &ops_resource());
        let nodes: Api<Node> = Api::all(self.client.clone());
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), NAMESPACE);
        let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        self.rt.block_on(async {
            let _ = ops
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
            for n in NAMES {
                let _ = nodes.delete(n, &DeleteParams::default()).await;
            }
            let _ = cms.delete(FAULTS, &DeleteParams::default()).await;
            let _ = nss.delete(APPS, &DeleteParams::default()).await;
        });
        self.rt.block_on(eventually(
            "the earlier run's objects gone",
            Duration::from_secs(90),
            || async {
                let left = ops
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .len();
                let ns = nss
                    .get_opt(APPS)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some();
                let mut n = 0;
                for x in NAMES {
                    if nodes.get_opt(x).await.map_err(|e| e.to_string())?.is_some() {
                        n += 1;
                    }
                }
                if left == 0 && !ns && n == 0 {
                    Ok(())
                } else {
                    Err(format!("{left} operations, namespace {ns}, {n} nodes"))
                }
            },
        ));
    }

    fn ferry(&self, state: &Path, extra: &[&str]) -> std::process::Output {
        let cmd = format!(
            "{} reimage {{address}} trixie",
            mke_bed::repo("scripts/testbed").display()
        );
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "node",
                "replace-os",
                "--order",
                "remove-before-add",
                "--backend",
                "kubean",
            ])
            .args(["--kubean-cluster", CLUSTER, "--spray-image", IMAGE])
            .arg("--hosts-path")
            .arg(self.hosts_file())
            .arg("--kubeconfig")
            .arg(&self.server.kubeconfig)
            .arg("--management-kubeconfig")
            .arg(&self.server.kubeconfig)
            .arg("--state-dir")
            .arg(state)
            .args([
                "--reinstall-command",
                &cmd,
                "--target-os",
                "debian:13",
                "--reinstall-timeout",
                "120",
                "--ready-timeout",
                "120",
                "--operation-timeout",
                "120",
            ])
            .arg("--ssh-config")
            .arg(self.dir.join("ssh_config"))
            .arg("--known-hosts")
            .arg(self.dir.join("known_hosts"))
            .args(extra)
            .env("HOME", self.tmp.path())
            .env("FERRY_TESTBED_DIR", &self.dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ops(&self) -> Vec<DynamicObject> {
        let ops: Api<DynamicObject> = Api::all_with(self.client.clone(), &ops_resource());
        let mut v = self
            .rt
            .block_on(ops.list(&ListParams::default()))
            .unwrap()
            .items;
        v.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        v
    }

    fn cm(&self, ns: &str, name: &str, key: &str) -> String {
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        self.rt
            .block_on(cms.get(name))
            .unwrap()
            .data
            .and_then(|d| d.get(key).cloned())
            .unwrap_or_default()
    }
}

#[test]
fn kubean_replaces_every_node_through_its_operator_and_rolls_back_a_failed_operation() {
    let bed = Bed::open();
    let _back = BackToBase {
        dir: bed.dir.clone(),
        hosts: bed.hosts.clone(),
    };
    bed.provision();
    let inventory = bed.inventory();
    let (m1, m2, w1) = (&bed.addresses[0], &bed.addresses[1], &bed.addresses[2]);

    // the dry run: every operation, none created
    let state = bed.tmp.path().join("dry");
    let out = bed.ferry(&state, &["--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for needle in [
        format!("os.kubean.remove on {w1}"),
        format!("os.kubean.add on {w1}"),
        format!("os.kubean.move-master1-last on {m1}"),
        format!("os.kubean.cluster-info on {m1}"),
        "controller+worker, master1".to_string(),
        "remove-node.yml -e node=NAME".to_string(),
        "Capacity: can the other nodes take each node's pods?".to_string(),
    ] {
        assert!(stdout.contains(&needle), "{needle:?} not in:\n{stdout}");
    }
    let at = |n: &str| stdout.find(n).unwrap();
    assert!(at(&format!("os.node.reinstall on {m2}")) < at(&format!("os.node.reinstall on {m1}")));
    assert!(at(&format!("os.node.reinstall on {w1}")) < at(&format!("os.node.reinstall on {m2}")));
    assert_eq!(bed.ops().len(), 1, "the dry run created an operation");

    // kubean fails the worker's scale.yml: the run says so and rolls back, adding the
    // reinstalled worker back on its new OS
    bed.rt.block_on(async {
        let cms: Api<ConfigMap> = Api::namespaced(bed.client.clone(), NAMESPACE);
        cms.patch(
            FAULTS,
            &PatchParams::apply("ferry-test").force(),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": FAULTS, "namespace": NAMESPACE},
                "data": {"fail": "scale.yml kb-worker1"}
            })),
        )
        .await
        .unwrap();
    });
    let state = bed.tmp.path().join("failed");
    let out = bed.ferry(&state, &["--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("(scale.yml on cluster sample) failed: its job failed: `kubectl -n kubean-system logs job/kubean-sample-ferry-add-kb-worker1-"),
        "{stderr}"
    );
    assert!(stderr.contains("Rollback completed"), "{stderr}");
    bed.wait_nodes_ready();
    assert_eq!(
        pretty_name(&bed.dir, &bed.hosts[2]),
        "Debian GNU/Linux 13 (trixie)"
    );
    for i in [0, 1, 3] {
        assert_eq!(
            pretty_name(&bed.dir, &bed.hosts[i]),
            "Debian GNU/Linux 12 (bookworm)"
        );
    }
    assert_eq!(
        bed.cm(NAMESPACE, "sample-hosts-conf", "hosts.yml"),
        inventory
    );
    let names: Vec<String> = bed
        .ops()
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("sample-ferry-remove-kb-worker1-")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("sample-ferry-readd-kb-worker1-")),
        "{names:?}"
    );

    // the full run
    let state = bed.tmp.path().join("full");
    let out = bed.ferry(&state, &["--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    bed.wait_nodes_ready();
    for h in &bed.hosts {
        assert_eq!(
            pretty_name(&bed.dir, h),
            "Debian GNU/Linux 13 (trixie)",
            "{h}"
        );
    }
    let reinstalled: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("] reinstalled: "))
        .filter_map(|l| l.split('[').nth(2)?.split(']').next())
        .collect();
    assert_eq!(reinstalled.last(), Some(&m1.as_str()), "{stderr}");
    // w1 is on the target OS since the failed run: left alone
    assert_eq!(reinstalled.len(), 3, "{stderr}");
    assert!(
        stdout.contains(&format!("  {w1}: already on the target OS, left alone")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  {m1}: Debian GNU/Linux 12 (bookworm) -> debian:13"
        )),
        "{stdout}"
    );
    // the operations as the procedure writes them
    let ops = bed.ops();
    let find = |prefix: &str| {
        ops.iter()
            .rev()
            .find(|o| {
                o.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .unwrap_or_else(|| panic!("no operation {prefix}*"))
    };
    let rm = &find("sample-ferry-remove-kb-master2-").data["spec"];
    assert_eq!(rm["action"], "remove-node.yml");
    assert_eq!(rm["extraArgs"], "-e node=kb-master2");
    assert_eq!(rm["image"], IMAGE);
    assert_eq!(
        rm["postHook"][0]["actionSourceRef"]["name"],
        "pb-clean-kube-apiserver"
    );
    assert_eq!(rm["postHook"][1]["action"], "cluster-info.yml");
    let add = &find("sample-ferry-add-kb-master1-").data["spec"];
    assert_eq!(add["action"], "cluster.yml");
    assert_eq!(
        add["extraArgs"],
        "--limit=etcd,kube_control_plane -e ignore_assert_errors=yes --skip-tags=multus"
    );
    assert_eq!(add["preHook"][0]["action"], "disable-firewalld.yml");
    assert_eq!(add["postHook"][0]["action"], "upgrade-cluster.yml");
    let scale = &find("sample-ferry-add-kb-worker2-").data["spec"];
    assert_eq!(scale["action"], "scale.yml");
    assert_eq!(scale["extraArgs"], "--limit=kb-worker2");
    for o in &ops {
        // every operation ended, and only the one the fault failed did not succeed
        let name = o.metadata.name.clone().unwrap_or_default();
        let status = o.data["status"]["status"].as_str().unwrap_or("");
        let want = if name.starts_with("sample-ferry-add-kb-worker1-") {
            "Failed"
        } else {
            "Succeeded"
        };
        assert_eq!(status, want, "{name}");
        assert_eq!(
            o.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("hasCompleted"))
                .map(String::as_str),
            Some("done"),
            "{name}"
        );
    }
    assert!(
        bed.cm(NAMESPACE, CLEAN_CM, "clean-kube-apiserver.yml")
            .contains("kube-apiserver"),
        "the clean-kube-apiserver playbook"
    );
    // master1 last in the inventory; the cluster's addresses the second master
    let inv = bed.cm(NAMESPACE, "sample-hosts-conf", "hosts.yml");
    let cp = inv.split("kube_control_plane:").nth(1).unwrap();
    assert!(
        cp.find("kb-master2").unwrap() < cp.find("kb-master1").unwrap(),
        "{inv}"
    );
    assert!(
        inv.contains("ansible_password: not-a-real-password"),
        "{inv}"
    );
    assert!(
        bed.cm(NAMESPACE, "sample-kubeconf", "config")
            .contains(&format!("server: https://{m2}:6443"))
    );
    assert!(
        bed.cm("kube-public", "cluster-info", "kubeconfig")
            .contains(&format!("server: https://{m2}:6443"))
    );
    assert!(
        bed.cm("kube-system", "kubeadm-config", "ClusterConfiguration")
            .contains(&format!("controlPlaneEndpoint: {m2}:6443"))
    );
    // no secret of the inventory in ferry's output or journal
    assert!(!stderr.contains("not-a-real-password"));
    let journal = std::fs::read_to_string(state.join("journal.jsonl")).unwrap();
    assert!(!journal.contains("not-a-real-password"));
    bed.clean();
}

const CLEAN_CM: &str = "pb-clean-kube-apiserver";
