//! The RKE2 backend's edits: the fields of Rancher's `provisioning.cattle.io/v1` `Cluster` that
//! the migration changes, computed for each state from what they were at the start.
//!
//! Rancher renders a machine's RKE2 configuration from `spec.rkeConfig.machineGlobalConfig`,
//! then from each `machineSelectorConfig` entry whose `machineLabelSelector` matches the machine
//! (an entry without one matches every machine), in order, a later entry's key replacing an
//! earlier one's. So the leader migration flag goes into a new entry at the end for the
//! control-plane machines, holding every `kube-controller-manager-arg` they had plus the flag;
//! the switch sets `machineGlobalConfig.cloud-provider-name`; the cloud-controller-manager
//! goes into `additionalManifest` after what is there. Every state is computed from the start,
//! so a step's undo is the previous state's fields, byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::chart::{self, Ccm};

/// The machine label of control-plane machines that the migration's selector uses.
pub const CONTROL_PLANE_ROLE: &str = "rke.cattle.io/control-plane-role";
/// The kube-controller-manager argument, as Rancher's documentation writes it.
pub const KCM_FLAG: &str = "enable-leader-migration";
const KCM_ARGS: &str = "kube-controller-manager-arg";
const PROVIDER: &str = "cloud-provider-name";

/// The fields of the `Cluster` the migration changes; `None` where the object has none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fields {
    pub machine_selector_config: Option<Value>,
    pub machine_global_config: Option<Value>,
    pub additional_manifest: Option<String>,
    pub kubernetes_version: Option<String>,
}

impl Fields {
    /// The fields of a `Cluster` as read from the management cluster.
    pub fn read(cluster: &Value) -> Fields {
        let rke = &cluster["spec"]["rkeConfig"];
        let some = |v: &Value| (!v.is_null()).then(|| v.clone());
        Fields {
            machine_selector_config: some(&rke["machineSelectorConfig"]),
            machine_global_config: some(&rke["machineGlobalConfig"]),
            additional_manifest: rke["additionalManifest"].as_str().map(str::to_string),
            kubernetes_version: cluster["spec"]["kubernetesVersion"]
                .as_str()
                .map(str::to_string),
        }
    }

    /// The server-side apply of these fields onto `name` in `namespace`, conditional on
    /// `resource_version` (the object as read). A field that is `None` is left out, which
    /// removes it where ferry set it before.
    pub fn apply_object(&self, name: &str, namespace: &str, resource_version: &str) -> Value {
        let mut rke = Map::new();
        if let Some(v) = &self.machine_selector_config {
            rke.insert("machineSelectorConfig".into(), v.clone());
        }
        if let Some(v) = &self.machine_global_config {
            rke.insert("machineGlobalConfig".into(), v.clone());
        }
        if let Some(v) = &self.additional_manifest {
            rke.insert("additionalManifest".into(), Value::String(v.clone()));
        }
        let mut spec = json!({ "rkeConfig": rke });
        if let Some(v) = &self.kubernetes_version {
            spec["kubernetesVersion"] = Value::String(v.clone());
        }
        json!({
            "apiVersion": "provisioning.cattle.io/v1",
            "kind": "Cluster",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
            "spec": spec,
        })
    }

    /// The names of the fields that differ from `other`.
    pub fn differences(&self, other: &Fields) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.machine_selector_config != other.machine_selector_config {
            v.push("spec.rkeConfig.machineSelectorConfig");
        }
        if self.machine_global_config != other.machine_global_config {
            v.push("spec.rkeConfig.machineGlobalConfig");
        }
        if self.additional_manifest != other.additional_manifest {
            v.push("spec.rkeConfig.additionalManifest");
        }
        if self.kubernetes_version != other.kubernetes_version {
            v.push("spec.kubernetesVersion");
        }
        v
    }
}

/// What a state has changed, relative to the start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks {
    /// The control-plane kube-controller-managers run with leader migration.
    pub kcm_flag: bool,
    /// The cloud-controller-manager is installed, with leader migration or without.
    pub ccm: Option<bool>,
    /// `cloud-provider-name: external`.
    pub external: bool,
    /// A new `kubernetesVersion`.
    pub version: Option<String>,
}

/// Why the `Cluster`'s configuration cannot be migrated safely as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "spec.rkeConfig.machineSelectorConfig[{index}] sets {key} for the machines matching {selector}; ferry cannot tell whether those are control-plane machines, so it cannot know which value they run with: give that setting to every machine (machineGlobalConfig) or to the control-plane machines ({CONTROL_PLANE_ROLE} In ['true'])"
    )]
    UndecidableSelector {
        index: usize,
        key: &'static str,
        selector: String,
    },
    #[error(
        "spec.rkeConfig.machineSelectorConfig[{index}] sets cloud-provider-name, which would keep the switch in machineGlobalConfig from reaching those machines: move it to machineGlobalConfig"
    )]
    ProviderInSelector { index: usize },
    #[error(
        "the control-plane machines' kube-controller-manager-arg sets {arg:?}, which would keep the kube-controller-manager on that provider after the switch: remove it and set cloud-provider-name in machineGlobalConfig"
    )]
    ProviderInArgs { arg: String },
    #[error("spec.rkeConfig.{field} is not {what}")]
    Shape { field: String, what: &'static str },
}

/// How an entry's selector relates to the control-plane machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Every,
    ControlPlane,
    Unknown,
}

fn reach(entry: &Value) -> Reach {
    let sel = &entry["machineLabelSelector"];
    let empty = |v: &Value| {
        v.is_null()
            || v.as_object().is_some_and(Map::is_empty)
            || v.as_array().is_some_and(Vec::is_empty)
    };
    if empty(sel) || (empty(&sel["matchLabels"]) && empty(&sel["matchExpressions"])) {
        return Reach::Every;
    }
    let labels_cp = sel["matchLabels"].as_object().is_some_and(|m| {
        m.len() == 1 && m.get(CONTROL_PLANE_ROLE).and_then(Value::as_str) == Some("true")
    });
    let expr_cp = sel["matchExpressions"].as_array().is_some_and(|a| {
        a.len() == 1
            && a[0]["key"] == CONTROL_PLANE_ROLE
            && a[0]["operator"] == "In"
            && a[0]["values"] == json!(["true"])
    });
    match (
        empty(&sel["matchLabels"]),
        empty(&sel["matchExpressions"]),
        labels_cp,
        expr_cp,
    ) {
        (false, true, true, _) | (true, false, _, true) => Reach::ControlPlane,
        _ => Reach::Unknown,
    }
}

/// A `kube-controller-manager-arg` value as a list (RKE2 takes one string or a list).
fn args_of(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn entries(fields: &Fields) -> Result<Vec<Value>, ConfigError> {
    match &fields.machine_selector_config {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(_) => Err(ConfigError::Shape {
            field: "machineSelectorConfig".into(),
            what: "a list",
        }),
    }
}

/// The `kube-controller-manager-arg` the control-plane machines run with, after every entry;
/// refuses entries whose reach cannot be told and provider settings that would hide the switch.
pub fn control_plane_kcm_args(fields: &Fields) -> Result<Vec<Value>, ConfigError> {
    let mut args = fields
        .machine_global_config
        .as_ref()
        .map(|g| args_of(&g[KCM_ARGS]))
        .unwrap_or_default();
    for (index, e) in entries(fields)?.iter().enumerate() {
        let config = &e["config"];
        if !config[PROVIDER].is_null() {
            return Err(ConfigError::ProviderInSelector { index });
        }
        if config[KCM_ARGS].is_null() {
            continue;
        }
        match reach(e) {
            Reach::Every | Reach::ControlPlane => args = args_of(&config[KCM_ARGS]),
            Reach::Unknown => {
                return Err(ConfigError::UndecidableSelector {
                    index,
                    key: KCM_ARGS,
                    selector: e["machineLabelSelector"].to_string(),
                });
            }
        }
    }
    if let Some(a) = args
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.trim_start_matches("--").starts_with("cloud-provider="))
    {
        return Err(ConfigError::ProviderInArgs { arg: a.to_string() });
    }
    Ok(args)
}

/// The cloud provider `machineGlobalConfig` names (`aws`, `external`, or none).
pub fn provider(fields: &Fields) -> Option<String> {
    fields
        .machine_global_config
        .as_ref()
        .and_then(|g| g[PROVIDER].as_str())
        .map(str::to_string)
}

/// The fields of a state: the start's, with `marks` applied.
pub fn desired(start: &Fields, marks: &Marks, ccm: &Ccm) -> Result<Fields, ConfigError> {
    let mut f = start.clone();
    if marks.kcm_flag {
        let mut args = control_plane_kcm_args(start)?;
        if !args.iter().any(|a| a.as_str() == Some(KCM_FLAG)) {
            args.push(Value::String(KCM_FLAG.into()));
        }
        let mut list = entries(start)?;
        list.push(json!({
            "config": { KCM_ARGS: args },
            "machineLabelSelector": {
                "matchExpressions": [{"key": CONTROL_PLANE_ROLE, "operator": "In", "values": ["true"]}],
            },
        }));
        f.machine_selector_config = Some(Value::Array(list));
    }
    if let Some(migration) = marks.ccm {
        let c = Ccm {
            leader_migration: migration,
            ..ccm.clone()
        };
        f.additional_manifest = Some(chart::append_manifest(
            start.additional_manifest.as_deref(),
            &c.manifest(),
        ));
    }
    if marks.external {
        let mut g = match &start.machine_global_config {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(ConfigError::Shape {
                    field: "machineGlobalConfig".into(),
                    what: "a map",
                });
            }
        };
        g.insert(PROVIDER.into(), Value::String("external".into()));
        f.machine_global_config = Some(Value::Object(g));
    }
    if let Some(v) = &marks.version {
        f.kubernetes_version = Some(v.clone());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::Version;

    fn ccm() -> Ccm {
        let version = Version::parse("v1.26.15").unwrap();
        Ccm {
            control_plane_label: "node-role.kubernetes.io/control-plane".into(),
            image: Ccm::default_image(version),
            version,
            leader_migration: true,
        }
    }

    fn start() -> Fields {
        Fields::read(&json!({
            "spec": {
                "kubernetesVersion": "v1.26.15+rke2r1",
                "rkeConfig": {
                    "machineGlobalConfig": {"cloud-provider-name": "aws", "cni": "calico", "kube-controller-manager-arg": ["node-monitor-period=4s"]},
                    "machineSelectorConfig": [
                        {"config": {"protect-kernel-defaults": false}},
                        {"config": {"kube-controller-manager-arg": ["node-monitor-period=4s", "v=2"]},
                         "machineLabelSelector": {"matchLabels": {CONTROL_PLANE_ROLE: "true"}}},
                    ],
                    "additionalManifest": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n",
                }
            }
        }))
    }

    #[test]
    fn the_leader_migration_entry_keeps_the_control_planes_arguments() {
        let f = desired(
            &start(),
            &Marks {
                kcm_flag: true,
                ..Default::default()
            },
            &ccm(),
        )
        .unwrap();
        let list = f
            .machine_selector_config
            .as_ref()
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            list[..2],
            start().machine_selector_config.unwrap().as_array().unwrap()[..]
        );
        assert_eq!(
            list[2]["config"][KCM_ARGS],
            json!(["node-monitor-period=4s", "v=2", "enable-leader-migration"])
        );
        assert_eq!(
            list[2]["machineLabelSelector"]["matchExpressions"][0]["key"],
            CONTROL_PLANE_ROLE
        );
        // nothing else moved
        assert_eq!(
            f.differences(&start()),
            ["spec.rkeConfig.machineSelectorConfig"]
        );
    }

    #[test]
    fn the_switch_changes_only_the_provider_and_keeps_the_chart() {
        let f = desired(
            &start(),
            &Marks {
                ccm: Some(true),
                external: true,
                ..Default::default()
            },
            &ccm(),
        )
        .unwrap();
        let g = f.machine_global_config.as_ref().unwrap();
        assert_eq!(g[PROVIDER], "external");
        assert_eq!(g["cni"], "calico");
        assert_eq!(f.machine_selector_config, start().machine_selector_config);
        let m = f.additional_manifest.unwrap();
        assert!(m.starts_with("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n---\n"));
        assert!(m.contains("kind: HelmChart"));
        assert!(m.contains(chart::MIGRATION_ARG));
    }

    #[test]
    fn settings_ferry_cannot_place_are_refused_naming_the_entry() {
        let mut f = start();
        f.machine_selector_config = Some(json!([
            {"config": {"kube-controller-manager-arg": ["v=4"]},
             "machineLabelSelector": {"matchLabels": {"pool": "big"}}}
        ]));
        let e = control_plane_kcm_args(&f).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "spec.rkeConfig.machineSelectorConfig[0] sets kube-controller-manager-arg"
            ),
            "{e}"
        );
        f.machine_selector_config = Some(json!([{ "config": {"cloud-provider-name": "aws"} }]));
        assert_eq!(
            control_plane_kcm_args(&f).unwrap_err(),
            ConfigError::ProviderInSelector { index: 0 }
        );
        f.machine_selector_config =
            Some(json!([{ "config": {"kube-controller-manager-arg": "cloud-provider=aws"} }]));
        assert!(matches!(
            control_plane_kcm_args(&f),
            Err(ConfigError::ProviderInArgs { .. })
        ));
        // an entry for other machines that sets other keys is fine
        f.machine_selector_config = Some(json!([
            {"config": {"kubelet-arg": ["max-pods=200"]},
             "machineLabelSelector": {"matchLabels": {"pool": "big"}}}
        ]));
        assert_eq!(
            control_plane_kcm_args(&f).unwrap(),
            vec![json!("node-monitor-period=4s")]
        );
    }

    #[test]
    fn the_apply_names_only_the_migration_fields_at_the_version_read() {
        let o = start().apply_object("prod", "fleet-default", "4711");
        assert_eq!(o["metadata"]["resourceVersion"], "4711");
        let rke = o["spec"]["rkeConfig"].as_object().unwrap();
        let mut keys: Vec<&String> = rke.keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "additionalManifest",
                "machineGlobalConfig",
                "machineSelectorConfig"
            ]
        );
        assert_eq!(o["spec"]["kubernetesVersion"], "v1.26.15+rke2r1");
        let none = Fields::default().apply_object("prod", "fleet-default", "1");
        assert_eq!(none["spec"], json!({"rkeConfig": {}}));
    }
}
