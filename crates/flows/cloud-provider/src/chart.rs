//! The AWS cloud-controller-manager as ferry installs it: the `aws-cloud-controller-manager`
//! chart of kubernetes/cloud-provider-aws with the values Rancher's documentation gives (host
//! networking, control-plane nodes only, tolerations of the control-plane and `uninitialized`
//! taints, routes off, service-account credentials, the RBAC rules the chart lacks), its image
//! of the cluster's minor version, and leader migration while the migration runs.
//!
//! For RKE2 it is a `HelmChart` (`helm.cattle.io/v1`) in the cluster's `additionalManifest`,
//! which RKE2's helm controller installs; a cloud-controller-manager that needs a leader
//! migration file (1.28 and later, see [`crate::leader`]) gets it from a ConfigMap in the same
//! manifest, mounted through the chart's `extraVolumes`.

use serde_json::{Value, json};

use crate::leader::{self, Version};

/// The chart's name, which is also the DaemonSet's and the HelmChart's.
pub const NAME: &str = "aws-cloud-controller-manager";
/// Where the chart comes from.
pub const REPO: &str = "https://kubernetes.github.io/cloud-provider-aws";
/// The image repository; the tag is the cluster's minor version (`v1.<minor>.0`) unless the
/// operator names another image.
pub const IMAGE: &str = "registry.k8s.io/provider-aws/cloud-controller-manager";
/// The service account the chart's pods run as, and so the identity that takes the Lease.
pub const SERVICE_ACCOUNT: &str = "cloud-controller-manager";
/// The cloud-controller-manager's own leader election Lease (`kube-system`).
pub const OWN_LEASE: &str = "cloud-controller-manager";
/// The argument that turns leader migration on in the cloud-controller-manager.
pub const MIGRATION_ARG: &str = "--enable-leader-migration=true";

/// What varies between installs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ccm {
    /// The control-plane node label: `node-role.kubernetes.io/control-plane` (RKE2) or
    /// `node-role.kubernetes.io/controlplane` (RKE).
    pub control_plane_label: String,
    /// `repository:tag`.
    pub image: String,
    /// The manager's version (from the image tag), which decides the leader migration file.
    pub version: Version,
    /// `--enable-leader-migration=true` (and the file where the version needs one).
    pub leader_migration: bool,
}

impl Ccm {
    /// The image for a cluster of `version`: `v1.<minor>.0`, the first release of the
    /// cloud-provider-aws line that supports that minor.
    pub fn default_image(version: Version) -> String {
        format!("{IMAGE}:v{}.{}.0", version.major, version.minor)
    }

    /// Whether this manager needs a leader migration file (see [`crate::leader`]).
    pub fn needs_file(&self) -> bool {
        self.leader_migration && !leader::default_is_right(self.version)
    }

    /// The container arguments.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "--configure-cloud-routes=false",
            "--use-service-account-credentials=true",
            "--v=2",
            "--cloud-provider=aws",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.leader_migration {
            a.push(MIGRATION_ARG.into());
            if self.needs_file() {
                a.push(format!("--leader-migration-config={}", leader::CONFIG_PATH));
            }
        }
        a
    }

    /// The chart's values.
    pub fn values(&self) -> Value {
        let (repository, tag) = match self.image.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (self.image.clone(), "latest".to_string()),
        };
        let mut v = json!({
            "hostNetworking": true,
            "image": {"repository": repository, "tag": tag},
            "nodeSelector": {self.control_plane_label.clone(): "true"},
            "tolerations": [
                {"effect": "NoSchedule", "key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true"},
                {"effect": "NoSchedule", "key": self.control_plane_label.clone(), "value": "true"},
                {"effect": "NoExecute", "key": "node-role.kubernetes.io/etcd", "value": "true"},
            ],
            "args": self.args(),
            "clusterRoleRules": cluster_role_rules(),
        });
        if self.needs_file() {
            v["extraVolumes"] =
                json!([{"name": "leader-migration", "configMap": {"name": leader::CONFIG_MAP}}]);
            v["extraVolumeMounts"] = json!([{
                "name": "leader-migration",
                "mountPath": "/etc/kubernetes/leader-migration",
                "readOnly": true,
            }]);
        }
        v
    }

    /// The ConfigMap with the leader migration file, when this manager needs one.
    pub fn config_map(&self) -> Option<Value> {
        if !self.needs_file() {
            return None;
        }
        let file = leader::configuration(self.version)?;
        Some(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": leader::CONFIG_MAP, "namespace": leader::NAMESPACE},
            "data": {"config.yaml": file},
        }))
    }

    /// The HelmChart RKE2's helm controller installs.
    pub fn helm_chart(&self) -> Value {
        let values = yaml(&self.values());
        json!({
            "apiVersion": "helm.cattle.io/v1",
            "kind": "HelmChart",
            "metadata": {"name": NAME, "namespace": leader::NAMESPACE},
            "spec": {
                "chart": NAME,
                "repo": REPO,
                "targetNamespace": leader::NAMESPACE,
                "bootstrap": true,
                "valuesContent": values.trim_end(),
            },
        })
    }

    /// The YAML documents ferry adds to an RKE2 cluster's `additionalManifest`.
    pub fn manifest(&self) -> String {
        let mut docs = Vec::new();
        if let Some(cm) = self.config_map() {
            docs.push(yaml(&cm));
        }
        docs.push(yaml(&self.helm_chart()));
        docs.join("---\n")
    }
}

impl Ccm {
    /// The chart's objects as `helm install` of the chart with [`Ccm::values`] makes them, for
    /// an RKE cluster, where ferry applies them itself (RKE has no helm controller): the leader
    /// migration ConfigMap when needed, the ServiceAccount, the ClusterRole and its binding, the
    /// authentication reader binding and the DaemonSet. Each carries [`MANAGED_BY`] so that
    /// ferry removes only what it added.
    pub fn objects(&self) -> Vec<Value> {
        let values = self.values();
        let labels = json!({MANAGED_BY: "ferry", "app.kubernetes.io/name": NAME});
        let ns = leader::NAMESPACE;
        let mut pod = json!({
            "serviceAccountName": SERVICE_ACCOUNT,
            "priorityClassName": "system-node-critical",
            "dnsPolicy": "Default",
            "hostNetwork": true,
            "nodeSelector": values["nodeSelector"],
            "tolerations": values["tolerations"],
            "containers": [{
                "name": NAME,
                "image": self.image,
                "args": values["args"],
                "resources": {"requests": {"cpu": "200m"}},
            }],
        });
        if let Some(v) = values.get("extraVolumes") {
            pod["volumes"] = v.clone();
            pod["containers"][0]["volumeMounts"] = values["extraVolumeMounts"].clone();
        }
        let mut out = Vec::new();
        if let Some(mut cm) = self.config_map() {
            cm["metadata"]["labels"] = labels.clone();
            out.push(cm);
        }
        let sa = json!([{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}]);
        out.extend([
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": SERVICE_ACCOUNT, "namespace": ns, "labels": labels}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": CLUSTER_ROLE, "labels": labels},
                   "rules": values["clusterRoleRules"]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": CLUSTER_ROLE, "labels": labels},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
                   "subjects": sa}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "cloud-controller-manager:apiserver-authentication-reader", "namespace": ns, "labels": labels},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
                   "subjects": sa}),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                   "metadata": {"name": NAME, "namespace": ns, "labels": labels},
                   "spec": {
                       "selector": {"matchLabels": {"k8s-app": NAME}},
                       "updateStrategy": {"type": "RollingUpdate"},
                       "template": {"metadata": {"labels": {"k8s-app": NAME}}, "spec": pod},
                   }}),
        ]);
        out
    }
}

/// The label on what ferry applied itself.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The chart's ClusterRole and ClusterRoleBinding.
pub const CLUSTER_ROLE: &str = "system:cloud-controller-manager";

/// The RBAC rules of Rancher's documented values (the chart's own, with `get` on service
/// accounts, which the manager needs at start).
pub fn cluster_role_rules() -> Value {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
    Value::Array(vec![
        rule(&[""], &["events"], &["create", "patch", "update"]),
        rule(&[""], &["nodes"], &["*"]),
        rule(&[""], &["nodes/status"], &["patch"]),
        rule(&[""], &["services"], &["list", "patch", "update", "watch"]),
        rule(
            &[""],
            &["services/status"],
            &["list", "patch", "update", "watch"],
        ),
        rule(&[""], &["serviceaccounts"], &["create", "get"]),
        rule(
            &[""],
            &["persistentvolumes"],
            &["get", "list", "update", "watch"],
        ),
        rule(
            &[""],
            &["endpoints"],
            &["create", "get", "list", "watch", "update"],
        ),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["create", "get", "list", "watch", "update"],
        ),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
        rule(
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
            &["create"],
        ),
    ])
}

/// `value` as YAML text (JSON values always serialise).
fn yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}

/// `original` with `added` appended as further YAML documents; an empty original is just
/// `added`. A state before the install is the original itself, kept apart, never this text
/// cut back.
pub fn append_manifest(original: Option<&str>, added: &str) -> String {
    match original.map(str::trim_end).filter(|o| !o.trim().is_empty()) {
        None => added.to_string(),
        Some(o) => format!("{o}\n---\n{added}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ccm(version: &str, leader_migration: bool) -> Ccm {
        let version = Version::parse(version).unwrap();
        Ccm {
            control_plane_label: "node-role.kubernetes.io/control-plane".into(),
            image: Ccm::default_image(version),
            version,
            leader_migration,
        }
    }

    #[test]
    fn the_helm_chart_is_rancher_s_with_leader_migration() {
        let c = ccm("v1.26.15+rke2r1", true);
        let hc = c.helm_chart();
        assert_eq!(hc["spec"]["repo"], REPO);
        assert_eq!(hc["spec"]["targetNamespace"], "kube-system");
        let values: serde_yaml::Value =
            serde_yaml::from_str(hc["spec"]["valuesContent"].as_str().unwrap()).unwrap();
        assert_eq!(values["hostNetworking"], serde_yaml::Value::Bool(true));
        assert_eq!(
            values["nodeSelector"]["node-role.kubernetes.io/control-plane"],
            "true"
        );
        assert_eq!(values["image"]["tag"], "v1.26.0");
        let args: Vec<&str> = values["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert!(args.contains(&"--cloud-provider=aws"));
        assert!(args.contains(&MIGRATION_ARG));
        // 1.26 migrates the right controllers by default: no file
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--leader-migration-config"))
        );
        assert!(c.config_map().is_none());
        assert!(!c.manifest().contains("ConfigMap"));
    }

    #[test]
    fn a_new_manager_gets_its_leader_migration_file_mounted() {
        let c = ccm("v1.30.4", true);
        let m = c.manifest();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&m)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2, "{m}");
        assert_eq!(docs[0]["kind"], "ConfigMap");
        assert!(
            docs[0]["data"]["config.yaml"]
                .as_str()
                .unwrap()
                .contains("service-lb-controller")
        );
        let values: serde_yaml::Value =
            serde_yaml::from_str(docs[1]["spec"]["valuesContent"].as_str().unwrap()).unwrap();
        assert_eq!(
            values["extraVolumes"][0]["configMap"]["name"],
            leader::CONFIG_MAP
        );
        assert!(
            values["args"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|a| a.as_str()
                    == Some(
                        "--leader-migration-config=/etc/kubernetes/leader-migration/config.yaml"
                    ))
        );
        // without leader migration, no file either
        let off = ccm("v1.30.4", false);
        assert!(off.config_map().is_none());
        assert!(!off.args().iter().any(|a| a.contains("leader-migration")));
    }

    #[test]
    fn rke_gets_the_chart_s_objects_on_its_control_plane_label() {
        let mut c = ccm("v1.30.4", true);
        c.control_plane_label = "node-role.kubernetes.io/controlplane".into();
        let objs = c.objects();
        let kinds: Vec<&str> = objs.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "ConfigMap",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "RoleBinding",
                "DaemonSet"
            ]
        );
        assert!(
            objs.iter()
                .all(|o| o["metadata"]["labels"][MANAGED_BY] == "ferry")
        );
        let ds = &objs[5];
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(
            pod["nodeSelector"]["node-role.kubernetes.io/controlplane"],
            "true"
        );
        assert_eq!(pod["containers"][0]["image"], c.image);
        assert!(
            pod["containers"][0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == MIGRATION_ARG)
        );
        assert_eq!(pod["volumes"][0]["configMap"]["name"], leader::CONFIG_MAP);
        // without leader migration: no file, no mount
        c.leader_migration = false;
        let off = c.objects();
        assert_eq!(off.len(), 5);
        assert!(off[4]["spec"]["template"]["spec"].get("volumes").is_none());
    }

    #[test]
    fn appended_documents_keep_the_original_text() {
        assert_eq!(append_manifest(None, "a: 1\n"), "a: 1\n");
        assert_eq!(append_manifest(Some("  \n"), "a: 1\n"), "a: 1\n");
        assert_eq!(
            append_manifest(Some("kind: X\n# keep\n"), "a: 1\n"),
            "kind: X\n# keep\n---\na: 1\n"
        );
    }
}
