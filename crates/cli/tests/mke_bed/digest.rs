//! Digests of the MKE 3 cluster on the testbed, compared before and after a run: what a rollback
//! must give back and what an upgrade must change.
//!
//! Per host (one SSH command): every Docker container with its configuration (image, state,
//! restart policy, network mode, command, labels, mounts), the volumes, the images, the swarm
//! state (state, node ID, manager), and every file, directory and symbolic link under `/etc`,
//! `/var/lib` and `/usr/local` with its mode and the SHA-256 of its content. Left out, because
//! they change while nothing is done to the host: Docker's own bookkeeping under
//! `/var/lib/docker` other than the volumes' data (container IDs, logs and the swarm's raft log
//! change with every container start; the swarm is compared through `docker info` instead), the
//! data files of `ucp-kv` (etcd's write-ahead log; its keys are compared instead), and the
//! apt/dpkg timestamps nothing here touches.
//!
//! Of the cluster: the keys and values in `ucp-kv` (through the first manager), and of the API
//! server the hosts' Nodes (labels, taints, unschedulable, the kwok annotation), the workloads'
//! specs, every object ferry labels as its own (`app.kubernetes.io/managed-by: ferry`) with its
//! role references, subjects and aggregation rules, and the `mke` namespace with its MkeConfig.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::{Bed, ssh};

/// What one host holds, one line per item, sorted within sections.
const HOST_SCRIPT: &str = r#"set -e
echo '## containers'
for n in $(docker ps -a --format '{{.Names}}' | sort); do
  docker container inspect --format '{{.Name}} image={{.Config.Image}} running={{.State.Running}} restart={{.HostConfig.RestartPolicy.Name}} net={{.HostConfig.NetworkMode}} cmd={{json .Config.Cmd}} labels={{json .Config.Labels}}{{range .Mounts}}
{{$.Name}} mount {{.Type}}:{{.Name}}:{{.Destination}}:{{.RW}}{{end}}' "$n"
done | sort
echo '## volumes'
docker volume ls --format '{{.Name}}' | sort
echo '## images'
docker images --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort
echo '## swarm'
docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} manager={{.Swarm.ControlAvailable}}'
echo '## files'
find /etc /var/lib /usr/local \
  \( -path /var/lib/docker -o -path /var/lib/apt -o -path /var/lib/dpkg \) -prune \
  -o -printf '%y %m %u %p %l\n' | sort
find /etc /var/lib /usr/local \
  \( -path /var/lib/docker -o -path /var/lib/apt -o -path /var/lib/dpkg \) -prune \
  -o -type f -print0 | sort -z | xargs -0 -r sha256sum
if [ -d /var/lib/docker/volumes ]; then
  find /var/lib/docker/volumes -mindepth 1 -path '/var/lib/docker/volumes/ucp-kv/_data/*' -prune \
    -o -path /var/lib/docker/volumes/metadata.db -prune -o -printf '%y %m %p\n' | sort
  find /var/lib/docker/volumes -mindepth 1 -path '/var/lib/docker/volumes/ucp-kv/_data/*' -prune \
    -o -path /var/lib/docker/volumes/metadata.db -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum
fi
"#;

const ETCD: &str = "docker exec ucp-kv etcdctl --endpoints=https://127.0.0.1:12379 --cacert=/etc/docker/ssl/ca.pem --cert=/etc/docker/ssl/cert.pem --key=/etc/docker/ssl/key.pem";

/// The digest of one host, section by section.
pub fn host(bed: &Bed, h: &str) -> String {
    let out = ssh(&bed.dir, h, HOST_SCRIPT, b"");
    assert!(
        out.status.success(),
        "{h}: digest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The keys and values in ucp-kv, read through `through` (a manager whose ucp-kv runs).
pub fn etcd(bed: &Bed, through: &str) -> String {
    let out = ssh(&bed.dir, through, &format!("{ETCD} get '' --prefix"), b"");
    assert!(
        out.status.success(),
        "{through}: etcd keys: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pick(v: &Value, path: &[&str]) -> Value {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return Value::Null,
        }
    }
    cur.clone()
}

/// Every object of `api`. A kind whose CRD was just made answers 429 ("storage is
/// (re)initializing") for a moment: retried for up to 30 s.
async fn list_settled(api: &Api<DynamicObject>) -> Vec<DynamicObject> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match api.list(&ListParams::default()).await {
            Ok(l) => return l.items,
            Err(kube::Error::Api(e)) if e.code == 429 && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => panic!("list: {e}"),
        }
    }
}

/// The API server's side.
pub fn api(bed: &Bed) -> String {
    let mut s = String::new();
    bed.rt.block_on(async {
        let nodes: Api<Node> = Api::all(bed.client.clone());
        for n in nodes.list(&ListParams::default()).await.unwrap().items {
            let name = n.metadata.name.clone().unwrap_or_default();
            if !bed.hosts.contains(&name) {
                continue;
            }
            let kwok = n
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kwok.x-k8s.io/node").cloned());
            let spec = n.spec.clone().unwrap_or_default();
            let _ = writeln!(
                s,
                "node {name} labels={:?} taints={} unschedulable={:?} kwok={kwok:?}",
                n.metadata.labels.clone().unwrap_or_default(),
                serde_json::to_string(&spec.taints).unwrap(),
                spec.unschedulable.unwrap_or(false),
            );
        }
        let kinds: [(&str, &str, &str, &[&[&str]]); 8] = [
            (
                "apps",
                "v1",
                "Deployment",
                &[&["spec", "replicas"], &["spec", "selector"]],
            ),
            ("apps", "v1", "DaemonSet", &[&["spec", "selector"]]),
            ("policy", "v1", "PodDisruptionBudget", &[&["spec"]]),
            (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                &[&["aggregationRule"]],
            ),
            (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                &[&["roleRef"], &["subjects"]],
            ),
            ("rbac.authorization.k8s.io", "v1", "Role", &[&["rules"]]),
            (
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                &[&["roleRef"], &["subjects"]],
            ),
            ("mke.mirantis.com", "v1alpha1", "MkeConfig", &[&["spec"]]),
        ];
        for (group, version, kind, fields) in kinds {
            let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
            let Ok((ar, _)) = kube::discovery::pinned_kind(&bed.client, &gvk).await else {
                let _ = writeln!(s, "{kind}: not served");
                continue;
            };
            let ar: ApiResource = ar;
            let api: Api<DynamicObject> = Api::all_with(bed.client.clone(), &ar);
            let mut rows = BTreeMap::new();
            for o in list_settled(&api).await {
                let ns = o.metadata.namespace.clone().unwrap_or_default();
                let ours = o.metadata.labels.as_ref().is_some_and(|l| {
                    l.get("app.kubernetes.io/managed-by").map(String::as_str) == Some("ferry")
                });
                if !(ours || ns == super::APP_NS || ns == "mke") {
                    continue;
                }
                let v = serde_json::to_value(&o).unwrap();
                let picked: Vec<Value> = fields.iter().map(|f| pick(&v, f)).collect();
                rows.insert(
                    format!(
                        "{kind} {ns}/{}",
                        o.metadata.name.clone().unwrap_or_default()
                    ),
                    format!(
                        "labels={:?} {}",
                        o.metadata.labels.clone().unwrap_or_default(),
                        serde_json::to_string(&picked).unwrap()
                    ),
                );
            }
            for (k, v) in rows {
                let _ = writeln!(s, "{k} {v}");
            }
        }
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(bed.client.clone());
        let _ = writeln!(
            s,
            "namespace mke exists={}",
            namespaces
                .get_opt("mke")
                .await
                .unwrap()
                .is_some_and(|n| n.metadata.deletion_timestamp.is_none())
        );
    });
    s
}

/// Everything: every host, ucp-kv's keys (when `etcd_through` names a manager whose ucp-kv
/// runs) and the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub parts: BTreeMap<String, String>,
}

impl Digest {
    pub fn take(bed: &Bed, etcd_through: Option<&str>) -> Digest {
        let mut parts = BTreeMap::new();
        // The hosts at once: each digest is one SSH command that mostly hashes files.
        let taken: Vec<(String, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = bed
                .hosts
                .iter()
                .map(|h| scope.spawn(move || (format!("host {h}"), host(bed, h))))
                .collect();
            handles.into_iter().map(|t| t.join().unwrap()).collect()
        });
        parts.extend(taken);
        if let Some(m) = etcd_through {
            parts.insert("ucp-kv".into(), etcd(bed, m));
        }
        parts.insert("api".into(), api(bed));
        Digest { parts }
    }

    /// What any two runs that did the same leave alike: without file contents (the
    /// `sha256sum` lines: keys, tokens and certificates are made anew each time), image IDs and
    /// swarm node IDs (images are imported anew with every provisioning).
    pub fn shape(&self) -> Digest {
        let parts = self
            .parts
            .iter()
            .map(|(k, v)| {
                let mut section = "";
                let lines: Vec<String> = v
                    .lines()
                    .filter_map(|l| {
                        if let Some(sec) = l.strip_prefix("## ") {
                            section = sec;
                            return Some(l.to_string());
                        }
                        let is_hash = l.len() > 66
                            && l.as_bytes()[64] == b' '
                            && l[..64].bytes().all(|b| b.is_ascii_hexdigit());
                        match section {
                            _ if is_hash => None,
                            "images" => Some(l.split_whitespace().next().unwrap_or("").to_string()),
                            "swarm" => Some(
                                l.split_whitespace()
                                    .filter(|w| {
                                        *w == "active"
                                            || *w == "inactive"
                                            || w.starts_with("manager=")
                                    })
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ),
                            _ => Some(l.to_string()),
                        }
                    })
                    .collect();
                (k.clone(), lines.join("\n"))
            })
            .collect();
        Digest { parts }
    }

    /// The lines that differ, part by part (`-` before, `+` now), or `None` when equal.
    pub fn diff(&self, now: &Digest) -> Option<String> {
        let mut out = String::new();
        let keys: std::collections::BTreeSet<&String> =
            self.parts.keys().chain(now.parts.keys()).collect();
        for k in keys {
            let a = self.parts.get(k).map(String::as_str).unwrap_or("");
            let b = now.parts.get(k).map(String::as_str).unwrap_or("");
            if a == b {
                continue;
            }
            let la: std::collections::BTreeSet<&str> = a.lines().collect();
            let lb: std::collections::BTreeSet<&str> = b.lines().collect();
            let _ = writeln!(out, "== {k}");
            for l in la.difference(&lb) {
                let _ = writeln!(out, "- {l}");
            }
            for l in lb.difference(&la) {
                let _ = writeln!(out, "+ {l}");
            }
        }
        (!out.is_empty()).then_some(out)
    }
}
