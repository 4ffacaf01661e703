//! An RKE2 cluster provisioned by Rancher, on two real control planes of `testenv/k8s`: the
//! management cluster (`FERRY_K8S_KUBECONFIG`) holds Rancher's `Cluster` CRD and the cluster
//! `fleet-default/prod`; the downstream cluster (`FERRY_K8S_DOWNSTREAM_KUBECONFIG`) has RKE2's
//! `HelmChart` CRD, three control-plane nodes and two workers (kwok), their
//! kube-controller-managers, and a LoadBalancer Service. Rancher and the downstream processes
//! are played by `ferry_kube_api::testing::rancher::RancherDouble`.
//!
//! [`Picture`] is the cluster as a rollback must give it back, object by object: the `Cluster`'s
//! spec, every Node (name, provider ID, cordon state, labels, taints), the
//! kube-controller-managers' arguments, the Service's addresses, and whether any of what the
//! migration adds (the HelmChart, the DaemonSet, the Leases, ferry's Role) is there.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_kube_api::testing::rancher::{FAULTS, Machine, NAMESPACE, RancherDouble};
use ferry_kube_api::testing::real::{self, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

pub const CLUSTER: &str = "prod";
pub const VERSION: &str = "v1.26.15+rke2r1";
/// The workload namespace of the downstream cluster.
pub const APPS: &str = "shop";

pub fn machines() -> Vec<Machine> {
    let m = |name: &str, id: &str, cp: bool| Machine {
        name: name.into(),
        provider_id: format!("aws:///us-east-1a/{id}"),
        control_plane: cp,
        worker: !cp,
    };
    vec![
        m("ip-10-0-1-1.ec2.internal", "i-0a1", true),
        m("ip-10-0-1-2.ec2.internal", "i-0a2", true),
        m("ip-10-0-1-3.ec2.internal", "i-0a3", true),
        m("ip-10-0-2-1.ec2.internal", "i-0b1", false),
        m("ip-10-0-2-2.ec2.internal", "i-0b2", false),
    ]
}

fn clusters() -> ApiResource {
    ApiResource {
        group: "provisioning.cattle.io".into(),
        version: "v1".into(),
        api_version: "provisioning.cattle.io/v1".into(),
        kind: "Cluster".into(),
        plural: "clusters".into(),
    }
}

fn helm_charts() -> ApiResource {
    ApiResource {
        group: "helm.cattle.io".into(),
        version: "v1".into(),
        api_version: "helm.cattle.io/v1".into(),
        kind: "HelmChart".into(),
        plural: "helmcharts".into(),
    }
}

pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

/// The cluster as it starts.
pub fn cluster_object() -> Value {
    json!({
        "apiVersion": "provisioning.cattle.io/v1",
        "kind": "Cluster",
        "metadata": {"name": CLUSTER, "namespace": NAMESPACE},
        "spec": {
            "kubernetesVersion": VERSION,
            "rkeConfig": {
                "machineGlobalConfig": {"cloud-provider-name": "aws", "cni": "calico", "disable-kube-proxy": false},
                "machineSelectorConfig": [
                    {"config": {"protect-kernel-defaults": false}},
                    {"config": {"kube-controller-manager-arg": ["node-monitor-period=4s"]},
                     "machineLabelSelector": {"matchLabels": {"rke.cattle.io/control-plane-role": "true"}}},
                ],
                "additionalManifest": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site-settings\n  namespace: default\ndata:\n  region: us-east-1\n",
            },
        },
    })
}

pub struct Bed {
    pub management: PathBuf,
    pub downstream: PathBuf,
    pub mgmt: kube::Client,
    pub down: kube::Client,
    pub rt: tokio::runtime::Runtime,
    pub tmp: tempfile::TempDir,
    double: Option<RancherDouble>,
}

impl Bed {
    /// Both control planes from the environment (panicking, naming what is missing), the CRDs,
    /// a clean cluster provisioned by the double, Ready.
    pub fn open(what: &str) -> Bed {
        let management = ferry_kube_api::testing::real::RealServer::from_env(what).kubeconfig;
        let downstream = real::downstream_from_env(what);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (mgmt, down) = rt.block_on(async {
            (
                real::client_of(&management).await,
                real::client_of(&downstream).await,
            )
        });
        let mut bed = Bed {
            management,
            downstream,
            mgmt,
            down,
            rt,
            tmp: tempfile::tempdir().unwrap(),
            double: None,
        };
        bed.install_crds();
        bed.provision();
        bed
    }

    fn install_crds(&self) {
        let pp = PatchParams::apply("ferry-test").force();
        for (client, file, name) in [
            (
                &self.mgmt,
                "testenv/rancher/crds/provisioning.cattle.io_clusters.yaml",
                "clusters.provisioning.cattle.io",
            ),
            (
                &self.down,
                "testenv/rancher/crds/helm.cattle.io_helmcharts.yaml",
                "helmcharts.helm.cattle.io",
            ),
        ] {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            let text = std::fs::read_to_string(repo(file)).unwrap();
            let crd: Value = serde_yaml::from_str(&text).unwrap();
            self.rt.block_on(async {
                crds.patch(name, &pp, &Patch::Apply(&crd)).await.unwrap();
                eventually(
                    &format!("{name} established"),
                    Duration::from_secs(60),
                    || async {
                        let c = crds.get(name).await.map_err(|e| e.to_string())?;
                        let ok = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c.type_ == "Established" && c.status == "True")
                        });
                        if ok {
                            Ok(())
                        } else {
                            Err(format!("{name} not established"))
                        }
                    },
                )
                .await;
            });
        }
    }

    /// Everything of an earlier run gone, the cluster made again and provisioned.
    pub fn provision(&mut self) {
        self.double = None;
        self.clean();
        let pp = PatchParams::apply("rancher-ui").force();
        self.rt.block_on(async {
            let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.mgmt.clone());
            ns.patch(NAMESPACE, &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})))
                .await
                .unwrap();
            let api: Api<DynamicObject> = Api::namespaced_with(self.mgmt.clone(), NAMESPACE, &clusters());
            api.patch(CLUSTER, &pp, &Patch::Apply(cluster_object())).await.unwrap();
        });
        let double = self.rt.block_on(RancherDouble::start(
            self.mgmt.clone(),
            self.down.clone(),
            CLUSTER,
            machines(),
            Duration::from_millis(300),
        ));
        self.double = Some(double.unwrap());
        self.wait_provisioned();
        self.workloads();
    }

    fn wait_provisioned(&self) {
        let nodes: Api<Node> = Api::all(self.down.clone());
        let pods: Api<Pod> = Api::namespaced(self.down.clone(), "kube-system");
        let cluster: Api<DynamicObject> =
            Api::namespaced_with(self.mgmt.clone(), NAMESPACE, &clusters());
        self.rt.block_on(eventually(
            "the RKE2 cluster provisioned",
            Duration::from_secs(120),
            || async {
                let c = cluster.get(CLUSTER).await.map_err(|e| e.to_string())?;
                if c.data["status"]["ready"] != true {
                    return Err("the Cluster is not ready".into());
                }
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
                    // the node lifecycle controller labels a new Node a moment later: the start
                    // is taken after that
                    if !n
                        .metadata
                        .labels
                        .is_some_and(|l| l.contains_key("beta.kubernetes.io/os"))
                    {
                        return Err(format!(
                            "{} not yet labelled by the node lifecycle controller",
                            m.name
                        ));
                    }
                }
                let kcm = pods
                    .list(&ListParams::default().labels("component=kube-controller-manager"))
                    .await
                    .map_err(|e| e.to_string())?
                    .items;
                let running = kcm
                    .iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .count();
                if running < 3 {
                    return Err(format!("{running} of 3 kube-controller-managers running"));
                }
                Ok(())
            },
        ));
    }

    fn workloads(&self) {
        load_balancer(&self.rt, &self.down);
    }

    /// Deletes what a run or an earlier test left: the Cluster, the fault ConfigMap, and in the
    /// downstream cluster the nodes, kube-system's pods, charts, DaemonSet, Leases and ferry's Role.
    pub fn clean(&self) {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        self.rt.block_on(async {
            let cluster: Api<DynamicObject> =
                Api::namespaced_with(self.mgmt.clone(), NAMESPACE, &clusters());
            let _ = cluster.delete(CLUSTER, &dp).await;
            let cms: Api<ConfigMap> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
            let _ = cms.delete(FAULTS, &dp).await;
            let charts: Api<DynamicObject> =
                Api::namespaced_with(self.down.clone(), "kube-system", &helm_charts());
            let _ = charts.delete("aws-cloud-controller-manager", &dp).await;
            let ds: Api<k8s_openapi::api::apps::v1::DaemonSet> =
                Api::namespaced(self.down.clone(), "kube-system");
            let _ = ds.delete("aws-cloud-controller-manager", &dp).await;
            let pods: Api<Pod> = Api::namespaced(self.down.clone(), "kube-system");
            for sel in [
                "component=kube-controller-manager",
                "k8s-app=aws-cloud-controller-manager",
            ] {
                let _ = pods
                    .delete_collection(&dp, &ListParams::default().labels(sel))
                    .await;
            }
            let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
                Api::namespaced(self.down.clone(), "kube-system");
            for l in [
                "cloud-provider-extraction-migration",
                "cloud-controller-manager",
                "kube-controller-manager",
            ] {
                let _ = leases.delete(l, &dp).await;
            }
            let roles: Api<k8s_openapi::api::rbac::v1::Role> =
                Api::namespaced(self.down.clone(), "kube-system");
            let _ = roles.delete("ferry:leader-migration", &dp).await;
            let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
                Api::namespaced(self.down.clone(), "kube-system");
            let _ = bindings.delete("ferry:leader-migration", &dp).await;
            let cm: Api<ConfigMap> = Api::namespaced(self.down.clone(), "kube-system");
            let _ = cm
                .delete("aws-cloud-controller-manager-leader-migration", &dp)
                .await;
            let site: Api<ConfigMap> = Api::namespaced(self.down.clone(), "default");
            let _ = site.delete("site-settings", &dp).await;
            let nodes: Api<Node> = Api::all(self.down.clone());
            // the RKE bed's nodes too: the downstream cluster is shared by both beds
            clear_nodes(&self.down).await;
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
                    if cluster
                        .get_opt(CLUSTER)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some()
                    {
                        left.push("Cluster".into());
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

    /// A fault for the double (`keep-taint`, `no-provider-id`: a node name; `rollout-stuck`).
    pub fn fault(&self, key: &str, value: &str) {
        let cms: Api<ConfigMap> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        self.rt.block_on(async {
            cms.patch(
                FAULTS,
                &PatchParams::apply("ferry-test").force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": FAULTS, "namespace": NAMESPACE}, "data": {key: value}})),
            )
            .await
            .unwrap();
        });
    }

    pub fn clear_faults(&self) {
        let cms: Api<ConfigMap> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        self.rt.block_on(async {
            let _ = cms.delete(FAULTS, &DeleteParams::default()).await;
        });
    }

    /// `ferry cloud-provider migrate` for this cluster, with `extra` arguments.
    pub fn migrate(&self, state: &Path, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args([
            "cloud-provider",
            "migrate",
            "--distro",
            "rke2",
            "--provider",
            "aws",
            "--cluster",
            CLUSTER,
        ]);
        c.arg("--kubeconfig").arg(&self.management);
        c.arg("--downstream-kubeconfig").arg(&self.downstream);
        c.arg("--state-dir").arg(state);
        c.args(["--poll-interval-ms", "500"]);
        c.args(extra);
        c
    }

    /// `ferry resume` or `ferry rollback` of the run in `state`.
    pub fn ferry_again(&self, verb: &str, state: &Path) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg(verb)
            .arg("--state-dir")
            .arg(state)
            .output()
            .unwrap()
    }

    /// The `Cluster` as the management cluster has it.
    pub fn cluster(&self) -> Value {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.mgmt.clone(), NAMESPACE, &clusters());
        let c = self.rt.block_on(api.get(CLUSTER)).unwrap();
        serde_json::to_value(c).unwrap()
    }

    pub fn picture(&self) -> Picture {
        Picture::take(self)
    }
}

/// Every Node of the downstream cluster and its kube-node-lease Lease deleted, whichever bed
/// (RKE2's or RKE's) registered it: a node of the other bed would be a node of this cluster.
pub async fn clear_nodes(down: &kube::Client) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let nodes: Api<Node> = Api::all(down.clone());
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(down.clone(), "kube-node-lease");
    eventually(
        "no Node left in the downstream cluster",
        Duration::from_secs(60),
        || async {
            let names: Vec<String> = nodes
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect();
            let held: Vec<String> = leases
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter_map(|l| l.metadata.name)
                .collect();
            for n in &names {
                let _ = nodes.delete(n, &dp).await;
            }
            for l in &held {
                let _ = leases.delete(l, &dp).await;
            }
            if names.is_empty() && held.is_empty() {
                Ok(())
            } else {
                Err(format!("left: nodes {names:?}, leases {held:?}"))
            }
        },
    )
    .await;
}

/// A LoadBalancer Service `shop/web` in the downstream cluster, whose address the cloud's load
/// balancer gave it.
pub fn load_balancer(rt: &tokio::runtime::Runtime, down: &kube::Client) {
    let pp = PatchParams::apply("ferry-test").force();
    rt.block_on(async {
        let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(down.clone());
        ns.patch(APPS, &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS}})))
            .await
            .unwrap();
        let svcs: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(down.clone(), APPS);
        svcs.patch(
            "web",
            &pp,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": APPS},
                "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})),
        )
        .await
        .unwrap();
        svcs.patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"hostname": "web-1234.us-east-1.elb.amazonaws.com"}]}}})),
        )
        .await
        .unwrap();
    });
}

/// The cluster as a rollback must give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub sections: BTreeMap<String, String>,
}

impl Picture {
    pub fn take(bed: &Bed) -> Picture {
        let mut s = BTreeMap::new();
        let c = bed.cluster();
        s.insert(
            "Cluster spec".into(),
            serde_json::to_string_pretty(&c["spec"]).unwrap(),
        );
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
                        "providerID {:?} unschedulable {} labels {:?} taints {:?}",
                        spec.provider_id.unwrap_or_default(),
                        spec.unschedulable.unwrap_or(false),
                        n.metadata.labels.unwrap_or_default(),
                        taints
                    ),
                );
            }
            let pods: Api<Pod> = Api::namespaced(bed.down.clone(), "kube-system");
            for p in pods.list(&ListParams::default()).await.unwrap().items {
                let name = p.metadata.name.clone().unwrap_or_default();
                let args = p
                    .spec
                    .map(|s| s.containers[0].args.clone().unwrap_or_default())
                    .unwrap_or_default();
                s.insert(format!("Pod {name}"), args.join(" "));
            }
            for (kind, api_version, ns, name) in [
                (
                    "HelmChart",
                    "helm.cattle.io/v1",
                    "kube-system",
                    "aws-cloud-controller-manager",
                ),
                (
                    "DaemonSet",
                    "apps/v1",
                    "kube-system",
                    "aws-cloud-controller-manager",
                ),
                (
                    "Lease",
                    "coordination.k8s.io/v1",
                    "kube-system",
                    "cloud-provider-extraction-migration",
                ),
                (
                    "Lease",
                    "coordination.k8s.io/v1",
                    "kube-system",
                    "cloud-controller-manager",
                ),
                (
                    "Role",
                    "rbac.authorization.k8s.io/v1",
                    "kube-system",
                    "ferry:leader-migration",
                ),
                (
                    "RoleBinding",
                    "rbac.authorization.k8s.io/v1",
                    "kube-system",
                    "ferry:leader-migration",
                ),
                (
                    "ConfigMap",
                    "v1",
                    "kube-system",
                    "aws-cloud-controller-manager-leader-migration",
                ),
                ("ConfigMap", "v1", "default", "site-settings"),
            ] {
                let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
                let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
                let (ar, _) = kube::discovery::pinned_kind(&bed.down, &gvk).await.unwrap();
                let api: Api<DynamicObject> = Api::namespaced_with(bed.down.clone(), ns, &ar);
                let there = api.get_opt(name).await.unwrap().is_some();
                s.insert(
                    format!("{kind} {ns}/{name}"),
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

    /// What differs from `other`, one line per section; `None` when nothing does.
    pub fn diff(&self, other: &Picture) -> Option<String> {
        let mut out = String::new();
        let keys: std::collections::BTreeSet<&String> =
            self.sections.keys().chain(other.sections.keys()).collect();
        for k in keys {
            let (a, b) = (self.sections.get(k), other.sections.get(k));
            if a != b {
                out.push_str(&format!("{k}:\n  was {a:?}\n  now {b:?}\n"));
            }
        }
        (!out.is_empty()).then_some(out)
    }
}
