//! The RKE backend's edits: `cluster.yml` for each state, computed from the file at the start
//! with [`crate::yaml_edit`], so that everything else in it (comments, order, quoting) stays as
//! the operator wrote it and a state before is the start's text with fewer edits, never a
//! rewrite.
//!
//! A cluster launched by Rancher keeps the same keys under `rancher_kubernetes_engine_config`;
//! a stand-alone `cluster.yml` has them at the top.

use serde_yaml::Value;

use crate::yaml_edit::{self, EditError};

/// The wrapper of a Rancher-launched cluster's configuration.
pub const RANCHER_WRAPPER: &str = "rancher_kubernetes_engine_config";
/// The KCM argument RKE passes as `--enable-leader-migration=true`.
pub const KCM_FLAG: &str = "enable-leader-migration";
/// RKE's name of the external AWS provider (`--cloud-provider=external` for the components).
pub const EXTERNAL: &str = "external-aws";

/// What a state has changed in `cluster.yml`, relative to the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RkeMarks {
    pub kcm_flag: bool,
    pub external: bool,
    /// `useInstanceMetadataHostname` with the external provider, when the operator chose it.
    pub instance_metadata_hostname: Option<bool>,
    pub version: Option<String>,
}

/// Why `cluster.yml` cannot be migrated as it is, or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RkeError {
    #[error("{file}: {source}")]
    Edit {
        file: String,
        #[source]
        source: EditError,
    },
    #[error("{file}: {key} is {found}, not {want}")]
    Value {
        file: String,
        key: String,
        found: String,
        want: String,
    },
    #[error("{file}: no node with the controlplane role in nodes")]
    NoControlPlane { file: String },
}

/// The paths of the keys ferry edits, under the wrapper when the file has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: Option<&'static str>,
}

impl Keys {
    pub fn of(text: &str) -> Result<Keys, EditError> {
        let wrapped = yaml_edit::get(text, &[RANCHER_WRAPPER])?.is_some();
        Ok(Keys {
            prefix: wrapped.then_some(RANCHER_WRAPPER),
        })
    }

    pub fn path<'a>(&self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut p: Vec<&'a str> = self.prefix.into_iter().collect();
        p.extend_from_slice(rest);
        p
    }

    pub fn kcm_flag(&self) -> Vec<&'static str> {
        self.path(&["services", "kube-controller", "extra_args", KCM_FLAG])
    }

    pub fn provider(&self) -> Vec<&'static str> {
        self.path(&["cloud_provider", "name"])
    }

    pub fn instance_metadata_hostname(&self) -> Vec<&'static str> {
        self.path(&["cloud_provider", "useInstanceMetadataHostname"])
    }

    pub fn version(&self) -> Vec<&'static str> {
        self.path(&["kubernetes_version"])
    }

    pub fn nodes(&self) -> Vec<&'static str> {
        self.path(&["nodes"])
    }
}

/// A node of `cluster.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RkeNode {
    pub address: String,
    /// The Node's name: `hostname_override`, else the address.
    pub name: String,
    pub user: String,
    pub port: u16,
    pub ssh_key_path: Option<String>,
    pub roles: Vec<String>,
}

impl RkeNode {
    pub fn control_plane(&self) -> bool {
        self.roles.iter().any(|r| r == "controlplane")
    }
}

/// The nodes of `cluster.yml`.
pub fn nodes(file: &str, text: &str) -> Result<Vec<RkeNode>, RkeError> {
    let edit = |source| RkeError::Edit {
        file: file.to_string(),
        source,
    };
    let keys = Keys::of(text).map_err(edit)?;
    let list = yaml_edit::get(text, &keys.nodes()).map_err(edit)?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let nodes: Vec<RkeNode> = list
        .and_then(|l| l.as_sequence().cloned())
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let address = s(n, "address").unwrap_or_default();
            RkeNode {
                name: s(n, "hostname_override").unwrap_or_else(|| address.clone()),
                user: s(n, "user").unwrap_or_else(|| "root".into()),
                port: n
                    .get("port")
                    .and_then(|p| {
                        p.as_u64()
                            .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
                    })
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(22),
                ssh_key_path: s(n, "ssh_key_path"),
                roles: n
                    .get("role")
                    .and_then(Value::as_sequence)
                    .map(|r| {
                        r.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                address,
            }
        })
        .collect();
    if !nodes.iter().any(RkeNode::control_plane) {
        return Err(RkeError::NoControlPlane { file: file.into() });
    }
    Ok(nodes)
}

/// The container RKE runs the kube-controller-manager in on each control-plane node.
pub const KCM_CONTAINER: &str = "kube-controller-manager";

/// `ssh_key_path` at the top of `cluster.yml` (RKE's default for nodes without their own).
pub fn default_ssh_key(text: &str) -> Option<String> {
    let keys = Keys::of(text).ok()?;
    let mut path = keys.path(&[]);
    path.push("ssh_key_path");
    yaml_edit::get(text, &path)
        .ok()
        .flatten()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// How ferry reaches a node, as `rke up` does: its address, port, user and key (RKE's default
/// `~/.ssh/id_rsa`). RKE's user runs `docker` without sudo (it is in the docker group), so
/// ferry does too.
pub fn host_spec(n: &RkeNode, default_key: Option<&str>) -> ferry_core::hosts::HostSpec {
    ferry_core::hosts::HostSpec {
        address: n.address.clone(),
        port: n.port,
        user: n.user.clone(),
        key_path: Some(
            n.ssh_key_path
                .clone()
                .or_else(|| default_key.map(str::to_string))
                .unwrap_or_else(|| "~/.ssh/id_rsa".into()),
        ),
        private_address: None,
        private_interface: None,
        bastion: None,
        sudo: false,
        known_hosts_policy: Default::default(),
    }
}

/// The kube-controller-manager container as `docker inspect` shows it: its arguments (after the
/// entrypoint) and whether it runs. `None` for output that is not one container's JSON.
pub fn kcm_of_inspect(json: &str) -> Option<(Vec<String>, bool)> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    let c = match &v {
        serde_json::Value::Array(a) => a.first()?.clone(),
        o => o.clone(),
    };
    let args = c["Args"]
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    Some((args, c["State"]["Running"].as_bool().unwrap_or(false)))
}

/// The start's checks of `cluster.yml`: the in-tree `aws` provider, no leader migration flag yet.
pub fn check_start(file: &str, text: &str) -> Result<(), RkeError> {
    let edit = |source| RkeError::Edit {
        file: file.to_string(),
        source,
    };
    let keys = Keys::of(text).map_err(edit)?;
    let provider = yaml_edit::get(text, &keys.provider()).map_err(edit)?;
    let name = provider.as_ref().and_then(Value::as_str).unwrap_or("");
    if name != "aws" {
        return Err(RkeError::Value {
            file: file.into(),
            key: keys.provider().join("."),
            found: if name.is_empty() {
                "not set".into()
            } else {
                format!("{name:?}")
            },
            want: "aws (the in-tree provider)".into(),
        });
    }
    Ok(())
}

/// `cluster.yml` of a state: the start's text with `marks` applied, in a fixed order.
pub fn text_at(file: &str, start: &str, marks: &RkeMarks) -> Result<String, RkeError> {
    let edit = |source| RkeError::Edit {
        file: file.to_string(),
        source,
    };
    let keys = Keys::of(start).map_err(edit)?;
    let mut t = start.to_string();
    if marks.kcm_flag {
        t = yaml_edit::set(&t, &keys.kcm_flag(), &Value::String("true".into())).map_err(edit)?;
    }
    if marks.external {
        t = yaml_edit::set(&t, &keys.provider(), &Value::String(EXTERNAL.into())).map_err(edit)?;
        if let Some(b) = marks.instance_metadata_hostname {
            t = yaml_edit::set(&t, &keys.instance_metadata_hostname(), &Value::Bool(b))
                .map_err(edit)?;
        }
    }
    if let Some(v) = &marks.version {
        t = yaml_edit::set(&t, &keys.version(), &Value::String(v.clone())).map_err(edit)?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "# prod, by hand
nodes:
  - address: 10.0.1.1
    hostname_override: ip-10-0-1-1.ec2.internal
    user: ubuntu
    ssh_key_path: ~/.ssh/prod
    role: [controlplane, etcd]
  - address: 10.0.2.1
    port: 2222
    role: [worker]
kubernetes_version: v1.26.15-rancher1-1
services:
  kube-controller:
    extra_args:
      node-monitor-period: 4s
cloud_provider:
  name: aws   # in-tree, until the migration
";

    #[test]
    fn each_state_is_the_start_with_its_edits() {
        let s1 = text_at(
            "cluster.yml",
            START,
            &RkeMarks {
                kcm_flag: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            s1,
            START.replace(
                "      node-monitor-period: 4s\n",
                "      node-monitor-period: 4s\n      enable-leader-migration: \"true\"\n"
            )
        );
        let s4 = text_at(
            "cluster.yml",
            START,
            &RkeMarks {
                external: true,
                instance_metadata_hostname: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            s4,
            START.replace(
                "  name: aws   # in-tree, until the migration\n",
                "  name: external-aws   # in-tree, until the migration\n  useInstanceMetadataHostname: true\n"
            )
        );
        assert_eq!(
            text_at("cluster.yml", START, &RkeMarks::default()).unwrap(),
            START
        );
    }

    #[test]
    fn the_nodes_and_the_start_are_read_from_the_file() {
        let n = nodes("cluster.yml", START).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].name, "ip-10-0-1-1.ec2.internal");
        assert!(n[0].control_plane() && !n[1].control_plane());
        assert_eq!(
            (n[1].user.as_str(), n[1].port, n[1].name.as_str()),
            ("root", 2222, "10.0.2.1")
        );
        assert!(check_start("cluster.yml", START).is_ok());
        let e = check_start(
            "cluster.yml",
            &START.replace("name: aws", "name: external-aws"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cluster.yml: cloud_provider.name is \"external-aws\", not aws (the in-tree provider)"
        );
        let wrapped = "rancher_kubernetes_engine_config:\n  nodes:\n    - address: 1.2.3.4\n      role: [controlplane]\n  cloud_provider:\n    name: aws\n";
        assert!(check_start("cluster.yml", wrapped).is_ok());
        assert_eq!(nodes("cluster.yml", wrapped).unwrap()[0].name, "1.2.3.4");
        let s1 = text_at(
            "cluster.yml",
            wrapped,
            &RkeMarks {
                kcm_flag: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(s1.ends_with("  services:\n    kube-controller:\n      extra_args:\n        enable-leader-migration: \"true\"\n"), "{s1}");
    }

    #[test]
    fn a_node_is_reached_as_rke_reaches_it_and_its_manager_read_from_docker() {
        let n = nodes("cluster.yml", START).unwrap();
        let cp = host_spec(&n[0], default_ssh_key(START).as_deref());
        assert_eq!(
            (
                cp.address.as_str(),
                cp.port,
                cp.user.as_str(),
                cp.key_path.as_deref(),
                cp.sudo
            ),
            ("10.0.1.1", 22, "ubuntu", Some("~/.ssh/prod"), false)
        );
        let with_default = format!("ssh_key_path: /keys/rke\n{START}");
        let w = host_spec(&n[1], default_ssh_key(&with_default).as_deref());
        assert_eq!(
            (w.name(), w.key_path.as_deref()),
            ("10.0.2.1:2222".to_string(), Some("/keys/rke"))
        );
        assert_eq!(
            host_spec(&n[1], None).key_path.as_deref(),
            Some("~/.ssh/id_rsa")
        );
        let inspect = r#"[{"Path": "/opt/rke-tools/entrypoint.sh", "Args": ["kube-controller-manager", "--cloud-provider=aws", "--enable-leader-migration=true"], "State": {"Running": true}}]"#;
        let (args, running) = kcm_of_inspect(inspect).unwrap();
        assert_eq!(args[1], "--cloud-provider=aws");
        assert!(running);
        assert_eq!(kcm_of_inspect("[]"), None);
        assert_eq!(kcm_of_inspect("Error: No such object"), None);
    }
}
