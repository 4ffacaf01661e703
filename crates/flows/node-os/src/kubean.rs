//! The kubean backend: nodes are removed and added by kubean's operator, through
//! `ClusterOperation` objects in the management cluster, exactly as the DCE 5.0 procedure writes
//! them by hand:
//!
//! - remove: `remove-node.yml -e node=NAME`, post-hooks the `pb-clean-kube-apiserver` ConfigMap's
//!   `clean-kube-apiserver.yml` (kills a kube-apiserver left running) and `cluster-info.yml`;
//! - add a control-plane node: `cluster.yml --limit=etcd,kube_control_plane -e
//!   ignore_assert_errors=yes --skip-tags=multus`, pre-hook `disable-firewalld.yml`, post-hooks
//!   `upgrade-cluster.yml` (same limit) and `cluster-info.yml`;
//! - add a worker: `scale.yml --limit=NAME`, pre-hook `disable-firewalld.yml`;
//! - master1 (the first host of `kube_control_plane` in the hosts-conf ConfigMap): before its
//!   removal the cluster's kubeconfig in the management cluster points at the second master and
//!   master1 moves last in `kube_control_plane`, `kube_node` and `etcd`; after it, the workload
//!   cluster's `kube-public/cluster-info` and `kube-system/kubeadm-config` name the second master.
//!
//! Operations run one at a time (kubean's webhook refuses a second one for a cluster while one
//! runs); each is watched until it succeeds or fails, within `--operation-timeout`. An operation
//! ferry created is found again by its name on a resume, never created twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use ferry_core::cluster::{ClusterApi, ObjectRef};
use ferry_core::engine::StepError;

/// A ConfigMap's name and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmRef {
    pub name: String,
    pub namespace: String,
}

/// What the kubean steps need: the cluster, the job image, the ConfigMaps of its inventory and
/// its kubeconfig, and the suffix that makes this run's operation names unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeanSetup {
    pub cluster: String,
    pub image: String,
    pub hosts_conf: CmRef,
    pub kubeconf: Option<CmRef>,
    /// The management cluster's kubeconfig (a path, never its content).
    pub management_kubeconfig: Option<std::path::PathBuf>,
    pub suffix: String,
    pub operation_timeout_secs: u64,
    /// The address of the second master: master1's stand-in while it is replaced.
    pub second: Option<String>,
}

/// The ConfigMap with the playbook that kills a kube-apiserver left running on a removed
/// control-plane node (the DCE 5.0 procedure's).
pub const CLEAN_APISERVER: &str = "pb-clean-kube-apiserver";
pub const CLEAN_APISERVER_PLAYBOOK: &str = r#"- name: Clean kube-apiserver
  hosts: "{{ node | default('kube_node') }}"
  gather_facts: no
  tasks:
    - name: Kill kube-apiserver process
      shell: ps -eopid=,comm= | awk '$2=="kube-apiserver" {print $1}' | xargs -r kill -9
"#;

/// A kubean inventory (`hosts.yml` of the hosts-conf ConfigMap): hosts with their addresses,
/// groups with their hosts, in the file's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// name → the addresses it is known by (`ansible_host`, `ip`, `access_ip`)
    pub hosts: Vec<(String, Vec<String>)>,
    pub groups: BTreeMap<String, Vec<String>>,
}

impl Inventory {
    pub fn parse(text: &str) -> Result<Inventory, String> {
        let v: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| format!("hosts.yml: {e}"))?;
        let all = &v["all"];
        let mut inv = Inventory::default();
        let hosts = all["hosts"]
            .as_mapping()
            .ok_or("hosts.yml: no all.hosts mapping")?;
        for (k, h) in hosts {
            let name = k
                .as_str()
                .ok_or("hosts.yml: a host name that is not a string")?;
            let addrs = ["ansible_host", "ip", "access_ip"]
                .iter()
                .filter_map(|f| h[*f].as_str().map(str::to_string))
                .collect();
            inv.hosts.push((name.to_string(), addrs));
        }
        if let Some(m) = all["children"].as_mapping() {
            for (g, body) in m {
                let names = body["hosts"]
                    .as_mapping()
                    .map(|h| {
                        h.keys()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(g) = g.as_str() {
                    inv.groups.insert(g.to_string(), names);
                }
            }
        }
        Ok(inv)
    }

    pub fn in_group(&self, group: &str, host: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|v| v.iter().any(|h| h == host))
    }

    /// The inventory name of the host at `address` (or named `hostname`).
    pub fn name_of(&self, address: &str, hostname: &str) -> Option<String> {
        self.hosts
            .iter()
            .find(|(_, a)| a.iter().any(|x| x == address))
            .or_else(|| self.hosts.iter().find(|(n, _)| n == hostname))
            .map(|(n, _)| n.clone())
    }
}

/// The groups master1 is moved to the end of.
pub const REORDERED: [&str; 3] = ["kube_control_plane", "kube_node", "etcd"];

/// `hosts.yml` with `host` moved to position `to` (`None`: last) of each group of
/// [`REORDERED`] it is in; every other key and value as it was. Returns the new text and the
/// position it had in each group.
pub fn move_host(
    text: &str,
    host: &str,
    to: &BTreeMap<String, usize>,
) -> Result<(String, BTreeMap<String, usize>), String> {
    let mut v: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("hosts.yml: {e}"))?;
    let mut was = BTreeMap::new();
    for g in REORDERED {
        let Some(hosts) = v["all"]["children"][g]["hosts"].as_mapping_mut() else {
            continue;
        };
        let key = serde_yaml::Value::String(host.to_string());
        let Some(i) = hosts.keys().position(|k| k == &key) else {
            continue;
        };
        was.insert(g.to_string(), i);
        let entries: Vec<(serde_yaml::Value, serde_yaml::Value)> =
            hosts.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut rest: Vec<_> = entries.iter().filter(|(k, _)| k != &key).cloned().collect();
        let me = entries[i].clone();
        let at = to.get(g).copied().unwrap_or(rest.len()).min(rest.len());
        rest.insert(at, me);
        hosts.clear();
        for (k, val) in rest {
            hosts.insert(k, val);
        }
    }
    let out = serde_yaml::to_string(&v).map_err(|e| format!("hosts.yml: {e}"))?;
    Ok((out, was))
}

fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(str::to_string),
        name: name.into(),
    }
}

pub fn configmap(r: &CmRef) -> ObjectRef {
    object("v1", "ConfigMap", Some(&r.namespace), &r.name)
}

pub fn operation(name: &str) -> ObjectRef {
    object("kubean.io/v1alpha1", "ClusterOperation", None, name)
}

/// A ConfigMap's `data[key]`.
pub async fn cm_data(
    api: &dyn ClusterApi,
    r: &CmRef,
    key: &str,
) -> Result<Option<String>, StepError> {
    Ok(api
        .get(&configmap(r))
        .await?
        .and_then(|v| v["data"][key].as_str().map(str::to_string)))
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Remove,
    AddControlPlane,
    AddWorker,
}

/// The `ClusterOperation` of `op` for inventory host `node`, as the DCE 5.0 procedure writes it.
pub fn operation_object(s: &KubeanSetup, name: &str, op: Op, node: &str) -> Value {
    let limit_cp = "--limit=etcd,kube_control_plane -e ignore_assert_errors=yes";
    let spec = match op {
        Op::Remove => json!({
            "cluster": s.cluster, "image": s.image,
            "actionType": "playbook", "action": "remove-node.yml",
            "extraArgs": format!("-e node={node}"),
            "postHook": [
                {"actionType": "playbook", "actionSource": "configmap",
                 "actionSourceRef": {"name": CLEAN_APISERVER, "namespace": s.hosts_conf.namespace},
                 "action": "clean-kube-apiserver.yml"},
                {"actionType": "playbook", "action": "cluster-info.yml"}
            ]
        }),
        Op::AddControlPlane => json!({
            "cluster": s.cluster, "image": s.image,
            "actionType": "playbook", "action": "cluster.yml",
            "extraArgs": format!("{limit_cp} --skip-tags=multus"),
            "preHook": [{"actionType": "playbook", "action": "disable-firewalld.yml"}],
            "postHook": [
                {"actionType": "playbook", "action": "upgrade-cluster.yml", "extraArgs": limit_cp},
                {"actionType": "playbook", "action": "cluster-info.yml"}
            ]
        }),
        Op::AddWorker => json!({
            "cluster": s.cluster, "image": s.image,
            "actionType": "playbook", "action": "scale.yml",
            "extraArgs": format!("--limit={node}"),
            "preHook": [{"actionType": "playbook", "action": "disable-firewalld.yml"}]
        }),
    };
    json!({
        "apiVersion": "kubean.io/v1alpha1", "kind": "ClusterOperation",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "ferry"}},
        "spec": spec
    })
}

/// A name for a Kubernetes object: lowercase letters, digits and `-`, at most 63 characters.
pub fn dns_name(parts: &[&str]) -> String {
    let raw = parts.join("-").to_lowercase();
    let mut s: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-').to_string();
    s.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// Runs the operation `name` (made from `object`, unless it exists: a resumed run watches the
/// one it made) to its end: waits for the cluster's other operations, creates it, and watches
/// its `status.status` until `Succeeded` (`Ok`) or `Failed` (an error naming its job), within
/// the setup's deadline.
pub async fn run_operation(
    api: &Arc<dyn ClusterApi>,
    s: &KubeanSetup,
    name: &str,
    object: Value,
    log: &ferry_core::engine::Logger,
) -> Result<(), StepError> {
    let timeout = Duration::from_secs(s.operation_timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    if api.get(&operation(name)).await?.is_none() {
        api.apply(&object).await?;
        log.info(format!(
            "ClusterOperation {name} created: {} {}",
            object["spec"]["action"].as_str().unwrap_or(""),
            object["spec"]["extraArgs"].as_str().unwrap_or("")
        ));
    }
    let mut said = String::new();
    loop {
        let o = api
            .get(&operation(name))
            .await?
            .ok_or_else(|| StepError::new(format!("ClusterOperation {name} is gone")))?;
        let status = o["status"]["status"].as_str().unwrap_or("").to_string();
        let job = o["status"]["jobRef"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if status != said {
            if !status.is_empty() {
                log.info(format!("ClusterOperation {name}: {status}"));
            }
            said.clone_from(&status);
        }
        match status.as_str() {
            "Succeeded" => return Ok(()),
            "Failed" => {
                let why = if job.is_empty() {
                    "kubean refused it before running a job (a missing cluster, playbook or ConfigMap; see the kubean operator's log)".to_string()
                } else {
                    format!(
                        "its job failed: `kubectl -n {} logs job/{job}` on the management cluster has the playbook's output",
                        o["status"]["jobRef"]["namespace"]
                            .as_str()
                            .unwrap_or("kubean-system")
                    )
                };
                return Err(StepError::new(format!(
                    "ClusterOperation {name} ({} on cluster {}) failed: {why}",
                    o["spec"]["action"].as_str().unwrap_or(""),
                    s.cluster
                )));
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StepError::new(format!(
                "ClusterOperation {name} did not end within {}s (status {:?})",
                timeout.as_secs(),
                status
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Makes sure the `pb-clean-kube-apiserver` ConfigMap exists (the remove operations' hook).
pub async fn ensure_clean_apiserver(
    api: &dyn ClusterApi,
    s: &KubeanSetup,
) -> Result<(), StepError> {
    let r = CmRef {
        name: CLEAN_APISERVER.into(),
        namespace: s.hosts_conf.namespace.clone(),
    };
    if cm_data(api, &r, "clean-kube-apiserver.yml")
        .await?
        .is_none()
    {
        api.apply(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": r.name, "namespace": r.namespace},
            "data": {"clean-kube-apiserver.yml": CLEAN_APISERVER_PLAYBOOK}
        }))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "all:\n  hosts:\n    m1:\n      ip: 10.0.0.1\n      ansible_host: 10.0.0.1\n      ansible_password: s3cret\n    m2:\n      ansible_host: 10.0.0.2\n    w1:\n      ansible_host: 10.0.0.3\n  children:\n    kube_control_plane:\n      hosts:\n        m1: null\n        m2: null\n    kube_node:\n      hosts:\n        m1: null\n        m2: null\n        w1: null\n    etcd:\n      hosts:\n        m1: null\n        m2: null\n    k8s_cluster:\n      children:\n        kube_control_plane: null\n        kube_node: null\n";

    #[test]
    fn the_inventory_names_hosts_by_address_and_master1_first() {
        let inv = Inventory::parse(HOSTS).unwrap();
        assert_eq!(inv.name_of("10.0.0.2", "x"), Some("m2".into()));
        assert_eq!(inv.name_of("10.9.9.9", "w1"), Some("w1".into()));
        assert_eq!(inv.groups["kube_control_plane"][0], "m1");
        assert!(inv.in_group("kube_node", "w1") && !inv.in_group("etcd", "w1"));
        assert!(Inventory::parse("all: {}").is_err());
    }

    #[test]
    fn master1_moves_last_and_back_with_everything_else_kept() {
        let (moved, was) = move_host(HOSTS, "m1", &BTreeMap::new()).unwrap();
        let inv = Inventory::parse(&moved).unwrap();
        assert_eq!(inv.groups["kube_control_plane"], ["m2", "m1"]);
        assert_eq!(inv.groups["kube_node"], ["m2", "w1", "m1"]);
        assert_eq!(inv.groups["etcd"], ["m2", "m1"]);
        assert!(moved.contains("ansible_password: s3cret"), "{moved}");
        assert_eq!(was["kube_control_plane"], 0);
        let (back, _) = move_host(&moved, "m1", &was).unwrap();
        assert_eq!(
            Inventory::parse(&back).unwrap(),
            Inventory::parse(HOSTS).unwrap()
        );
    }

    #[test]
    fn operations_are_written_as_the_procedure_writes_them() {
        let s = KubeanSetup {
            cluster: "centos".into(),
            image: "ghcr.io/kubean-io/spray-job:v0.12.2".into(),
            hosts_conf: CmRef {
                name: "centos-hosts-conf".into(),
                namespace: "kubean-system".into(),
            },
            kubeconf: None,
            management_kubeconfig: None,
            suffix: "r1".into(),
            operation_timeout_secs: 60,
            second: None,
        };
        let r = operation_object(&s, "x", Op::Remove, "centos-master2");
        assert_eq!(r["spec"]["extraArgs"], "-e node=centos-master2");
        assert_eq!(
            r["spec"]["postHook"][0]["actionSourceRef"]["name"],
            CLEAN_APISERVER
        );
        assert_eq!(r["spec"]["postHook"][1]["action"], "cluster-info.yml");
        let a = operation_object(&s, "x", Op::AddControlPlane, "centos-master2");
        assert_eq!(
            a["spec"]["extraArgs"],
            "--limit=etcd,kube_control_plane -e ignore_assert_errors=yes --skip-tags=multus"
        );
        assert_eq!(a["spec"]["preHook"][0]["action"], "disable-firewalld.yml");
        assert_eq!(a["spec"]["postHook"][0]["action"], "upgrade-cluster.yml");
        let w = operation_object(&s, "x", Op::AddWorker, "w1");
        assert_eq!(w["spec"]["action"], "scale.yml");
        assert_eq!(w["spec"]["extraArgs"], "--limit=w1");
        assert_eq!(
            dns_name(&["centos", "remove", "W_1", "1733-01"]),
            "centos-remove-w-1-1733-01"
        );
    }
}
