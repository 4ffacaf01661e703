//! An RKE cluster made of real parts, for `ferry cloud-provider migrate --distro rke`: the SSH
//! testbed's hosts h1..h4 with their real Docker engines (`scripts/testbed mke3`, which the
//! suite runs), the downstream control plane of `testenv/k8s` (`FERRY_K8S_DOWNSTREAM_KUBECONFIG`)
//! with the four Nodes (kwok keeps them Ready), and `rke-standin` as `rke up`: it runs each
//! control-plane node's kube-controller-manager (`kcm-standin`, which holds the Leases) in a
//! Docker container named `kube-controller-manager` with RKE's flags from `cluster.yml`. The
//! cloud-controller-manager's pods (the real DaemonSet controller and kwok run them) are played
//! by `RancherDouble::start_cloud`.
//!
//! [`Picture`] is the cluster as a rollback must give it back: `cluster.yml`'s text, every Node,
//! each kube-controller-manager container's arguments, the Service's addresses, and whether any
//! of what the migration adds is there.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_kube_api::testing::rancher::{FAULTS, Machine, NAMESPACE, RancherDouble};
use ferry_kube_api::testing::real::{self, KWOK_ANNOTATION, RealServer, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::mke_bed::{HostApi, sh, sibling_binary};

/// The cluster's version in `cluster.yml`, and its kubelets'.
pub const VERSION: &str = "v1.26.15-rancher1-1";
pub const KUBELET: &str = "v1.26.15";
pub const APPS: &str = "shop";
/// The hosts of the cluster: three control-plane and etcd nodes, one worker (cordoned at the
/// start, so that the rollback's cordon states are seen).
pub const CONTROL_PLANE: [&str; 3] = ["h1", "h2", "h3"];
pub const WORKER: &str = "h4";

impl Drop for Bed {
    fn drop(&mut self) {
        self.double = None;
        self.leave_hosts();
    }
}

/// An object of the downstream cluster: apiVersion, kind, namespace, name.
type Obj = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

/// What a migration may add to the downstream cluster (the migration Lease aside): ferry's Role
/// for the migration Lease, the cloud-controller-manager's objects and its Lease.
const ADDED: [Obj; 9] = [
    (
        "apps/v1",
        "DaemonSet",
        Some("kube-system"),
        "aws-cloud-controller-manager",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "Role",
        Some("kube-system"),
        "ferry:leader-migration",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        Some("kube-system"),
        "ferry:leader-migration",
    ),
    (
        "v1",
        "ConfigMap",
        Some("kube-system"),
        "aws-cloud-controller-manager-leader-migration",
    ),
    (
        "v1",
        "ServiceAccount",
        Some("kube-system"),
        "cloud-controller-manager",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        None,
        "system:cloud-controller-manager",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        None,
        "system:cloud-controller-manager",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        Some("kube-system"),
        "cloud-controller-manager:apiserver-authentication-reader",
    ),
    (
        "coordination.k8s.io/v1",
        "Lease",
        Some("kube-system"),
        "cloud-controller-manager",
    ),
];
const MIGRATION_LEASE: Obj = (
    "coordination.k8s.io/v1",
    "Lease",
    Some("kube-system"),
    "cloud-provider-extraction-migration",
);

pub fn machines() -> Vec<Machine> {
    let m = |name: &str, id: &str, cp: bool| Machine {
        name: name.into(),
        provider_id: format!("aws:///us-east-1a/{id}"),
        control_plane: cp,
        worker: !cp,
    };
    vec![
        m("h1", "i-0c1", true),
        m("h2", "i-0c2", true),
        m("h3", "i-0c3", true),
        m("h4", "i-0d1", false),
    ]
}

/// `cluster.yml` at the start, as an operator keeps it (comments, order, quoting).
pub fn cluster_yml(key: &Path) -> String {
    let mut s =
        String::from("# prod RKE cluster: keep this file in git\ncluster_name: prod\nnodes:\n");
    for (i, m) in machines().iter().enumerate() {
        s.push_str(&format!(
            "  - address: 10.123.1.{}\n    hostname_override: {}\n    user: root\n    role: [{}]\n",
            i + 1,
            m.name,
            if m.control_plane {
                "controlplane, etcd"
            } else {
                "worker"
            }
        ));
    }
    s.push_str(&format!(
        "ssh_key_path: {}\nkubernetes_version: {VERSION}\nservices:\n  etcd:\n    snapshot: true\n  kube-controller:\n    extra_args:\n      node-monitor-period: \"4s\"   # tuned for the AZ\ncloud_provider:\n  name: aws\ningress:\n  provider: nginx\n",
        key.display()
    ));
    s
}

pub struct Bed {
    pub testbed: PathBuf,
    pub downstream: PathBuf,
    pub down: kube::Client,
    pub rt: tokio::runtime::Runtime,
    pub tmp: tempfile::TempDir,
    /// The directory of `cluster.yml` and `kube_config_cluster.yml`.
    pub dir: PathBuf,
    api: HostApi,
    double: Option<RancherDouble>,
}

impl Bed {
    /// The testbed (with its Docker engines) and the downstream control plane from the
    /// environment (panicking, naming what is missing), and a clean cluster provisioned by
    /// `rke up`.
    pub fn open(what: &str) -> Bed {
        let testbed = crate::common::testbed(what);
        assert!(
            testbed.join("mke3/profile").is_file(),
            "DOCKER ENGINES MISSING: the testbed in {} runs no Docker engine on its hosts, so {what} cannot be tested: run `sudo scripts/testbed mke3 3 --standin target/debug/ucp-standin`, or `scripts/test` (as root), which does",
            testbed.display()
        );
        let downstream = real::downstream_from_env(what);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let down = rt.block_on(real::client_of(&downstream));
        let api = HostApi::start(&RealServer {
            kubeconfig: downstream.clone(),
            user_kubeconfig: downstream.clone(),
        });
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("prod");
        std::fs::create_dir_all(&dir).unwrap();
        let mut bed = Bed {
            testbed,
            downstream,
            down,
            rt,
            tmp,
            dir,
            api,
            double: None,
        };
        bed.provision();
        bed
    }

    pub fn cluster_yml_path(&self) -> PathBuf {
        self.dir.join("cluster.yml")
    }

    pub fn cluster_yml(&self) -> String {
        std::fs::read_to_string(self.cluster_yml_path()).unwrap()
    }

    /// `rke up` as the tests and ferry run it.
    pub fn apply_command(&self) -> String {
        format!(
            "{} up --config cluster.yml",
            sibling_binary("rke-standin").display()
        )
    }

    /// Everything of an earlier run gone, the Nodes registered, `rke up` run.
    pub fn provision(&mut self) {
        self.double = None;
        self.clean();
        std::fs::write(
            self.cluster_yml_path(),
            cluster_yml(&self.testbed.join("id_ed25519")),
        )
        .unwrap();
        std::fs::write(
            self.dir.join("kube_config_cluster.yml"),
            &self.api.kubeconfig,
        )
        .unwrap();
        self.register();
        let out = Command::new("sh")
            .arg("-c")
            .arg(self.apply_command())
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rke up (rke-standin) failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let double = self.rt.block_on(async {
            RancherDouble::start_cloud(self.down.clone(), machines(), Duration::from_millis(300))
        });
        self.double = Some(double);
        self.wait_provisioned();
        self.workloads();
        // the operator keeps the worker cordoned (after rke up, which uncordons what it upgrades)
        let nodes: Api<Node> = Api::all(self.down.clone());
        self.rt
            .block_on(nodes.patch(
                WORKER,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"unschedulable": true}})),
            ))
            .unwrap();
    }

    fn register(&self) {
        let nodes: Api<Node> = Api::all(self.down.clone());
        self.rt.block_on(async {
            for m in machines() {
                let mut labels = json!({
                    "kubernetes.io/hostname": m.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                });
                let mut taints = Vec::new();
                if m.control_plane {
                    labels["node-role.kubernetes.io/controlplane"] = "true".into();
                    labels["node-role.kubernetes.io/etcd"] = "true".into();
                    taints.push(json!({"key": "node-role.kubernetes.io/controlplane", "value": "true", "effect": "NoSchedule"}));
                    taints.push(json!({"key": "node-role.kubernetes.io/etcd", "value": "true", "effect": "NoExecute"}));
                } else {
                    labels["node-role.kubernetes.io/worker"] = "true".into();
                }
                let n: Node = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": m.name, "labels": labels, "annotations": {KWOK_ANNOTATION.0: KWOK_ANNOTATION.1}},
                    "spec": {"taints": taints, "providerID": m.provider_id},
                }))
                .unwrap();
                nodes.create(&PostParams::default(), &n).await.unwrap();
                nodes
                    .patch_status(
                        &m.name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"nodeInfo": {"kubeletVersion": KUBELET}}})),
                    )
                    .await
                    .unwrap();
            }
        });
    }

    fn wait_provisioned(&self) {
        let nodes: Api<Node> = Api::all(self.down.clone());
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(self.down.clone(), "kube-system");
        self.rt.block_on(eventually(
            "the RKE cluster provisioned",
            Duration::from_secs(120),
            || async {
                for m in machines() {
                    let n = nodes
                        .get_opt(&m.name)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or(format!("no node {}", m.name))?;
                    let ready = n.status.and_then(|s| s.conditions).is_some_and(|c| {
                        c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                    });
                    if !ready {
                        return Err(format!("{} not Ready", m.name));
                    }
                    if !n
                        .metadata
                        .labels
                        .is_some_and(|l| l.contains_key("beta.kubernetes.io/os"))
                    {
                        return Err(format!("{} not yet labelled", m.name));
                    }
                }
                let l = leases
                    .get_opt("kube-controller-manager")
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("no kube-controller-manager Lease yet")?;
                let holder = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                if !CONTROL_PLANE
                    .iter()
                    .any(|h| holder.starts_with(&format!("{h}_")))
                {
                    return Err(format!("kube-controller-manager Lease held by {holder:?}"));
                }
                Ok(())
            },
        ));
    }

    fn workloads(&self) {
        crate::rancher_bed::load_balancer(&self.rt, &self.down);
    }

    /// The hosts as the bed found them: no container or file of the RKE cluster left for the
    /// suites that run after this one.
    fn leave_hosts(&self) {
        for m in machines() {
            let _ = crate::mke_bed::ssh(
                &self.testbed,
                &m.name,
                "docker rm -f kube-controller-manager >/dev/null 2>&1; rm -f /etc/kubernetes/ferry-rke-kubelet-args /etc/kubernetes/ssl/kubecfg-kube-controller-manager.yaml; rmdir /etc/kubernetes/ssl /etc/kubernetes 2>/dev/null; true",
                b"",
            );
        }
    }

    /// Runs `cmd` on host `h` as root.
    pub fn on(&self, h: &str, cmd: &str) -> String {
        sh(&self.testbed, h, cmd)
    }

    /// What a run or an earlier test left: the containers and files on the hosts, and in the
    /// downstream cluster the Nodes, Leases, the cloud-controller-manager's objects, ferry's
    /// Role and the faults.
    pub fn clean(&self) {
        for m in machines() {
            self.on(
                &m.name,
                // a run killed after its end leaves its host locks (taken over only once stale)
                "docker rm -f kube-controller-manager >/dev/null 2>&1; rm -f /etc/kubernetes/ferry-rke-kubelet-args; rm -rf /run/lock/ferry; true",
            );
        }
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        self.rt.block_on(async {
            let cms: Api<ConfigMap> = Api::namespaced(self.down.clone(), NAMESPACE);
            let _ = cms.delete(FAULTS, &dp).await;
            let ds: Api<k8s_openapi::api::apps::v1::DaemonSet> =
                Api::namespaced(self.down.clone(), "kube-system");
            let _ = ds.delete("aws-cloud-controller-manager", &dp).await;
            let pods: Api<Pod> = Api::namespaced(self.down.clone(), "kube-system");
            let _ = pods
                .delete_collection(
                    &dp,
                    &ListParams::default().labels("k8s-app=aws-cloud-controller-manager"),
                )
                .await;
            let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
                Api::namespaced(self.down.clone(), "kube-system");
            for l in [
                "cloud-provider-extraction-migration",
                "cloud-controller-manager",
                "kube-controller-manager",
            ] {
                let _ = leases.delete(l, &dp).await;
            }
            for (api_version, kind, ns, name) in ADDED {
                let _ = dynamic(&self.down, api_version, kind, ns)
                    .await
                    .delete(name, &dp)
                    .await;
            }
            let nodes: Api<Node> = Api::all(self.down.clone());
            // the RKE2 bed's nodes too: the downstream cluster is shared by both beds
            crate::rancher_bed::clear_nodes(&self.down).await;
            let node_leases: Api<k8s_openapi::api::coordination::v1::Lease> =
                Api::namespaced(self.down.clone(), "kube-node-lease");
            eventually(
                "the last run's objects gone",
                Duration::from_secs(60),
                || async {
                    let mut left = Vec::new();
                    for m in machines() {
                        let _ = node_leases.delete(&m.name, &dp).await;
                        if nodes
                            .get_opt(&m.name)
                            .await
                            .map_err(|e| e.to_string())?
                            .is_some()
                        {
                            left.push(m.name.clone());
                        }
                        if node_leases
                            .get_opt(&m.name)
                            .await
                            .map_err(|e| e.to_string())?
                            .is_some()
                        {
                            left.push(format!("lease {}", m.name));
                        }
                    }
                    if left.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("left: {left:?}"))
                    }
                },
            )
            .await;
        });
    }

    /// A fault for `rke-standin` (`fail-after NODE`, `hang`), in `rke-standin.faults`.
    pub fn rke_fault(&self, line: &str) {
        std::fs::write(self.dir.join("rke-standin.faults"), format!("{line}\n")).unwrap();
    }

    pub fn clear_faults(&self) {
        let _ = std::fs::remove_file(self.dir.join("rke-standin.faults"));
        let cms: Api<ConfigMap> = Api::namespaced(self.down.clone(), NAMESPACE);
        self.rt.block_on(async {
            let _ = cms.delete(FAULTS, &DeleteParams::default()).await;
        });
    }

    /// A fault for the cloud-controller-manager double (`keep-taint`: a node name).
    pub fn fault(&self, key: &str, value: &str) {
        let pp = PatchParams::apply("ferry-test").force();
        self.rt.block_on(async {
            let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.down.clone());
            ns.patch(NAMESPACE, &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})))
                .await
                .unwrap();
            let cms: Api<ConfigMap> = Api::namespaced(self.down.clone(), NAMESPACE);
            cms.patch(
                FAULTS,
                &pp,
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": FAULTS, "namespace": NAMESPACE}, "data": {key: value}})),
            )
            .await
            .unwrap();
        });
    }

    /// `ferry cloud-provider migrate --distro rke` for this cluster, with `extra` arguments.
    pub fn migrate(&self, state: &Path, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args([
            "cloud-provider",
            "migrate",
            "--distro",
            "rke",
            "--provider",
            "aws",
        ]);
        c.arg("--cluster-yml").arg(self.cluster_yml_path());
        c.arg("--apply-command").arg(self.apply_command());
        c.arg("--downstream-kubeconfig").arg(&self.downstream);
        c.arg("--known-hosts").arg(self.testbed.join("known_hosts"));
        c.arg("--state-dir").arg(state);
        c.args(["--poll-interval-ms", "500"]);
        c.env("HOME", self.tmp.path());
        c.args(extra);
        c
    }

    /// `ferry resume` or `ferry rollback` of the run in `state`.
    pub fn ferry_again(&self, verb: &str, state: &Path) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg(verb)
            .arg("--state-dir")
            .arg(state)
            .arg("--known-hosts")
            .arg(self.testbed.join("known_hosts"))
            .env("HOME", self.tmp.path())
            .output()
            .unwrap()
    }

    /// Each control-plane node's kube-controller-manager container arguments.
    pub fn kcm_args(&self, h: &str) -> String {
        let out = self.on(
            h,
            "docker inspect --type container --format '{{json .Args}} running={{.State.Running}}' kube-controller-manager 2>/dev/null || echo none",
        );
        out.trim().to_string()
    }

    pub fn picture(&self) -> Picture {
        take(self)
    }
}

async fn dynamic(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// The cluster as a rollback must give it back: the RKE2 bed's type (sections compared one by
/// one), taken of this cluster.
pub use crate::rancher_bed::Picture;

/// This cluster's picture.
fn take(bed: &Bed) -> Picture {
    let mut s = BTreeMap::new();
    s.insert("cluster.yml".into(), bed.cluster_yml());
    for h in CONTROL_PLANE {
        s.insert(format!("kube-controller-manager on {h}"), bed.kcm_args(h));
    }
    bed.rt.block_on(async {
        let nodes: Api<Node> = Api::all(bed.down.clone());
        for n in nodes.list(&ListParams::default()).await.unwrap().items {
            let name = n.metadata.name.clone().unwrap_or_default();
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
            s.insert(
                format!("Node {name}"),
                format!(
                    "providerID {:?} unschedulable {} labels {:?} taints {:?} kubelet {}",
                    spec.provider_id.unwrap_or_default(),
                    spec.unschedulable.unwrap_or(false),
                    n.metadata.labels.unwrap_or_default(),
                    taints,
                    n.status
                        .and_then(|s| s.node_info)
                        .map(|i| i.kubelet_version)
                        .unwrap_or_default()
                ),
            );
        }
        for (api_version, kind, ns, name) in ADDED.into_iter().chain([MIGRATION_LEASE]) {
            let there = dynamic(&bed.down, api_version, kind, ns)
                .await
                .get_opt(name)
                .await
                .unwrap()
                .is_some();
            s.insert(
                format!(
                    "{kind} {}{name}",
                    ns.map(|n| format!("{n}/")).unwrap_or_default()
                ),
                if there { "present" } else { "absent" }.into(),
            );
        }
        let svcs: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(bed.down.clone(), APPS);
        let web = svcs.get("web").await.unwrap();
        s.insert(
            "Service shop/web".into(),
            serde_json::to_string(&web.status.and_then(|s| s.load_balancer)).unwrap(),
        );
    });
    Picture { sections: s }
}

/// The `Value` of a JSON text, for assertions.
pub fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}
