//! The fake Kubernetes API: nodes derived from the hosts (a node is Ready while its kubelet runs,
//! MKE 3's or k0s'), pods with owners and volumes, PDBs, cordon, drain through eviction with
//! PDBs respected, server-side apply, get and delete. It is down when no API server runs.

use serde_json::Value;

use super::host::{k0s_api_up, kubelet, mke3_kube_api_up};
use super::world::{Call, PodState, World, WorldState};
use ferry_core::cluster::{
    CONTROLLER_KINDS, Claim, ClusterApi, ClusterError, Controller, DrainOptions, DrainReport, Node,
    ObjectRef, Pdb, PersistentVolume, Pod, Resources, Volume,
};

/// The fake cluster.
#[derive(Debug, Clone)]
pub struct FakeCluster {
    world: World,
}

impl FakeCluster {
    pub fn new(world: &World) -> Self {
        Self {
            world: world.clone(),
        }
    }

    fn call(&self, op: &str, args: Vec<String>, mutating: bool) -> Result<(), ClusterError> {
        self.world
            .record(Call {
                seq: 0,
                backend: "cluster",
                host: None,
                op: op.into(),
                args,
                sudo: false,
                data: None,
                mutating,
                step: None,
            })
            .map_err(|i| {
                if i.transient {
                    ClusterError::Unavailable("injected fault: connection refused".into())
                } else {
                    ClusterError::Forbidden(format!("injected fault: {op} refused"))
                }
            })?;
        let s = self.world.state();
        if !s.cluster.always_up && !k0s_api_up(&s) && !mke3_kube_api_up(&s) {
            return Err(ClusterError::Unavailable(
                "dial tcp :6443: connect: connection refused".into(),
            ));
        }
        Ok(())
    }

    /// The fixed latency applies to host operations only; the Kubernetes API answers at once.
    async fn latency(&self) {}
}

fn node_names(s: &WorldState) -> Vec<String> {
    let mut v: Vec<String> = s.cluster.node_host.keys().cloned().collect();
    v.extend(s.cluster.static_nodes.keys().cloned());
    v.sort();
    v.dedup();
    v
}

/// A node of the model as the API shows it (what the fake keeps of it).
fn node_json(n: &Node) -> Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name, "labels": n.labels},
        "spec": {"unschedulable": n.unschedulable},
    })
}

/// Stores an applied or created object with a new `metadata.resourceVersion`; an object that
/// names a resourceVersion is stored only over that version, as the API server does.
fn store(s: &mut WorldState, r: ObjectRef, object: &Value) -> Result<(), ClusterError> {
    let current = s
        .cluster
        .objects
        .get(&r)
        .and_then(|o| o.pointer("/metadata/resourceVersion"))
        .cloned();
    if let Some(want) = object.pointer("/metadata/resourceVersion") {
        if current.as_ref() != Some(want) {
            return Err(ClusterError::Conflict(format!(
                "{r}: the object has been modified; please apply your changes to the latest version"
            )));
        }
    }
    s.cluster.versions += 1;
    let mut o = object.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(
            "resourceVersion".into(),
            Value::String(s.cluster.versions.to_string()),
        );
    }
    s.cluster.objects.insert(r, o);
    Ok(())
}

/// The kinds every API server serves that the fake is asked for.
const BUILT_IN: [(&str, &str); 17] = [
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Node"),
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "ReplicaSet"),
    ("coordination.k8s.io/v1", "Lease"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
];

/// Whether the fake API server serves `api_version`/`kind`: a built-in, a kind of an applied
/// CustomResourceDefinition, or a kind objects were applied as.
fn served(s: &WorldState, api_version: &str, kind: &str) -> bool {
    if BUILT_IN.contains(&(api_version, kind)) {
        return true;
    }
    s.cluster.objects.iter().any(|(r, o)| {
        (r.api_version == api_version && r.kind == kind)
            || (r.kind == "CustomResourceDefinition"
                && o["spec"]["names"]["kind"] == kind
                && o["spec"]["versions"].as_array().is_some_and(|vs| {
                    vs.iter().any(|v| {
                        format!(
                            "{}/{}",
                            o["spec"]["group"].as_str().unwrap_or(""),
                            v["name"].as_str().unwrap_or("")
                        ) == api_version
                    })
                }))
    })
}

fn is_node(r: &ObjectRef) -> bool {
    r.api_version == "v1" && r.kind == "Node"
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Some(t) = target.as_object_mut() {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn node_exists(s: &WorldState, name: &str) -> bool {
    s.cluster.node_host.contains_key(name) || s.cluster.static_nodes.contains_key(name)
}

fn node_of(s: &WorldState, name: &str) -> Option<Node> {
    if let Some(n) = s.cluster.static_nodes.get(name) {
        let mut n = n.clone();
        n.unschedulable = s.cluster.cordoned.contains(name);
        return Some(n);
    }
    let host = s.cluster.node_host.get(name)?;
    let labels = s.cluster.node_labels.get(name).cloned().unwrap_or_default();
    let k = kubelet(s, host);
    let roles = labels
        .keys()
        .filter_map(|l| l.strip_prefix("node-role.kubernetes.io/"))
        .map(str::to_string)
        .collect();
    let internal_ip = s.hosts.get(host).map(|h| h.private_ip.clone());
    Some(Node {
        name: name.into(),
        roles,
        ready: k.is_some(),
        unschedulable: s.cluster.cordoned.contains(name),
        labels,
        internal_ip,
        kubelet_version: match k {
            Some("k0s") => "v1.31.1+k0s".into(),
            _ => "v1.27.16-mirantis-1".into(),
        },
        // what the kubelet of a 4-CPU, 8 GiB machine reports, with the default pod limit
        allocatable: Some(Resources {
            cpu_millis: 4000,
            memory_bytes: 8 << 30,
            pods: 110,
        }),
        taints: Vec::new(),
    })
}

#[async_trait::async_trait]
impl ClusterApi for FakeCluster {
    async fn server_version(&self) -> Result<String, ClusterError> {
        self.call("server_version", vec![], false)?;
        let s = self.world.state();
        if let Some(v) = &s.cluster.version {
            return Ok(v.clone());
        }
        Ok(if k0s_api_up(&s) {
            "v1.31.1+k0s".into()
        } else {
            "v1.27.16-mirantis-1".into()
        })
    }

    async fn nodes(&self) -> Result<Vec<Node>, ClusterError> {
        self.call("nodes", vec![], false)?;
        self.latency().await;
        let s = self.world.state();
        Ok(node_names(&s)
            .iter()
            .filter_map(|n| node_of(&s, n))
            .collect())
    }

    async fn pods(&self, node: Option<&str>) -> Result<Vec<Pod>, ClusterError> {
        self.call(
            "pods",
            node.map(str::to_string).into_iter().collect(),
            false,
        )?;
        let s = self.world.state();
        Ok(s.cluster
            .pods
            .iter()
            .filter(|p| node.is_none() || p.node.as_deref() == node)
            .map(|p| Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                node: p.node.clone(),
                labels: p.labels.clone(),
                owner: p.owner.clone(),
                volumes: p.volumes.clone(),
                phase: if p.node.is_some() {
                    "Running"
                } else {
                    "Pending"
                }
                .into(),
                // a pod runs (and is ready) once it has a node
                ready: p.node.is_some(),
                requests: p.requests,
                node_selector: p.node_selector.clone(),
                tolerations: p.tolerations.clone(),
            })
            .collect())
    }

    async fn pdbs(&self) -> Result<Vec<Pdb>, ClusterError> {
        self.call("pdbs", vec![], false)?;
        Ok(self.world.state().cluster.pdbs.clone())
    }

    async fn controllers(&self, kind: &str) -> Result<Vec<Controller>, ClusterError> {
        self.call("controllers", vec![kind.into()], false)?;
        if !CONTROLLER_KINDS.contains(&kind) {
            return Err(ClusterError::Invalid(format!(
                "{kind} is not a controller kind ferry reads (one of {})",
                CONTROLLER_KINDS.join(", ")
            )));
        }
        let s = self.world.state();
        Ok(s.cluster
            .workloads
            .iter()
            .filter(|c| c.kind == kind)
            .cloned()
            .collect())
    }

    async fn claims(&self) -> Result<Vec<Claim>, ClusterError> {
        self.call("claims", vec![], false)?;
        Ok(self.world.state().cluster.claims.clone())
    }

    async fn persistent_volumes(&self) -> Result<Vec<PersistentVolume>, ClusterError> {
        self.call("persistent_volumes", vec![], false)?;
        Ok(self.world.state().cluster.volumes.clone())
    }

    async fn api_servers(&self) -> Result<Vec<String>, ClusterError> {
        self.call("api_servers", vec![], false)?;
        Ok(self.world.state().cluster.api_servers.clone())
    }

    async fn cordon(&self, node: &str) -> Result<(), ClusterError> {
        self.call("cordon", vec![node.into()], true)?;
        self.latency().await;
        let mut s = self.world.state();
        if !node_exists(&s, node) {
            return Err(ClusterError::NotFound(format!("nodes \"{node}\"")));
        }
        s.cluster.cordoned.insert(node.into());
        Ok(())
    }

    async fn uncordon(&self, node: &str) -> Result<(), ClusterError> {
        self.call("uncordon", vec![node.into()], true)?;
        self.latency().await;
        let mut s = self.world.state();
        if !node_exists(&s, node) {
            return Err(ClusterError::NotFound(format!("nodes \"{node}\"")));
        }
        s.cluster.cordoned.remove(node);
        Ok(())
    }

    async fn drain(&self, node: &str, options: &DrainOptions) -> Result<DrainReport, ClusterError> {
        self.call("drain", vec![node.into()], true)?;
        let mut report = DrainReport::default();
        let mut blocked = None;
        {
            let mut s = self.world.state();
            if !node_exists(&s, node) {
                return Err(ClusterError::NotFound(format!("nodes \"{node}\"")));
            }
            s.cluster.cordoned.insert(node.into());
            let kind_of = |p: &PodState| p.owner.as_ref().map(|o| o.kind.clone());
            let mut on_node: Vec<PodState> = s
                .cluster
                .pods
                .iter()
                .filter(|p| p.node.as_deref() == Some(node))
                .cloned()
                .collect();
            on_node.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            // Refusals first: nothing is evicted when the drain is refused.
            for p in &on_node {
                let kind = kind_of(p);
                if matches!(kind.as_deref(), Some("DaemonSet") | Some("Node")) {
                    continue;
                }
                if p.owner.is_none() && !options.force_bare_pods {
                    return Err(ClusterError::DrainRefused {
                        node: node.into(),
                        reason: format!(
                            "pod {}/{} is not managed by a controller",
                            p.namespace, p.name
                        ),
                    });
                }
                if p.volumes
                    .iter()
                    .any(|v| matches!(v, Volume::EmptyDir { .. }))
                    && !options.delete_emptydir_data
                {
                    return Err(ClusterError::DrainRefused {
                        node: node.into(),
                        reason: format!("pod {}/{} uses emptyDir data", p.namespace, p.name),
                    });
                }
            }
            for p in &on_node {
                let key = format!("{}/{}", p.namespace, p.name);
                match kind_of(p).as_deref() {
                    Some("DaemonSet") => {
                        report.skipped_daemonset.push(key);
                        continue;
                    }
                    Some("Node") => continue,
                    _ => {}
                }
                // The Eviction API: a PDB covering the pod must allow one more disruption.
                let pdb = s
                    .cluster
                    .pdbs
                    .iter()
                    .position(|b| b.namespace == p.namespace && b.selector.matches(&p.labels));
                if let Some(i) = pdb {
                    if s.cluster.pdbs[i].disruptions_allowed <= 0 {
                        let b = &s.cluster.pdbs[i];
                        blocked = Some((key, b.name.clone()));
                        break;
                    }
                    s.cluster.pdbs[i].disruptions_allowed -= 1;
                    s.cluster.pdbs[i].current_healthy -= 1;
                }
                evict(&mut s, p, node, pdb);
                report.evicted.push(key);
            }
        }
        if let Some((pod, pdb)) = blocked {
            // A blocked eviction is retried until the timeout.
            tokio::time::sleep(options.timeout).await;
            return Err(ClusterError::EvictionBlocked { pod, pdb });
        }
        report.evicted.sort();
        report.skipped_daemonset.sort();
        Ok(report)
    }

    async fn apply(&self, object: &Value) -> Result<(), ClusterError> {
        let r = ObjectRef::of(object)?;
        self.call("apply", vec![r.to_string()], true)?;
        self.latency().await;
        store(&mut self.world.state(), r, object)
    }

    async fn apply_forced(&self, object: &Value) -> Result<(), ClusterError> {
        let r = ObjectRef::of(object)?;
        self.call("apply_forced", vec![r.to_string()], true)?;
        self.latency().await;
        store(&mut self.world.state(), r, object)
    }

    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.call("list", vec![format!("{kind}s")], false)?;
        let s = self.world.state();
        let labels_of = |o: &Value| -> std::collections::BTreeMap<String, String> {
            o.pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let wanted = |o: &Value| {
            selector.is_none_or(|sel| ferry_core::cluster::selector_matches(sel, &labels_of(o)))
        };
        if !served(&s, api_version, kind) {
            return Err(ClusterError::Invalid(format!(
                "the cluster has no kind {kind} in {api_version}"
            )));
        }
        if api_version == "v1" && kind == "Node" {
            return Ok(node_names(&s)
                .iter()
                .filter_map(|n| node_of(&s, n))
                .map(|n| node_json(&n))
                .filter(|o| wanted(o))
                .collect());
        }
        Ok(s.cluster
            .objects
            .iter()
            .filter(|(r, _)| r.api_version == api_version && r.kind == kind)
            .filter(|(r, _)| namespace.is_none() || r.namespace.as_deref() == namespace)
            .map(|(_, o)| o.clone())
            .filter(|o| wanted(o))
            .collect())
    }

    async fn create(&self, object: &Value) -> Result<Value, ClusterError> {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        self.call("create", vec![kind.to_string()], true)?;
        self.latency().await;
        let mut s = self.world.state();
        if object.get("apiVersion").and_then(Value::as_str) == Some("authorization.k8s.io/v1")
            && kind == "SubjectAccessReview"
        {
            let rbac = s
                .cluster
                .objects
                .iter()
                .filter(|(r, _)| r.api_version == "rbac.authorization.k8s.io/v1")
                .map(|(r, o)| (r.kind.as_str(), r.namespace.as_deref(), o));
            let allowed = ferry_core::cluster::rbac_allows(rbac, object);
            let mut answer = object.clone();
            answer["status"] = serde_json::json!({ "allowed": allowed });
            return Ok(answer);
        }
        let r = ObjectRef::of(object)?;
        if s.cluster.objects.contains_key(&r) {
            return Err(ClusterError::Conflict(format!("{r} already exists")));
        }
        store(&mut s, r.clone(), object)?;
        Ok(s.cluster.objects.get(&r).cloned().unwrap_or(Value::Null))
    }

    async fn get(&self, object: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        self.call("get", vec![object.to_string()], false)?;
        let s = self.world.state();
        if is_node(object) {
            // Nodes live in the node model, not among the applied objects.
            return Ok(node_of(&s, &object.name).map(|n| node_json(&n)));
        }
        Ok(s.cluster.objects.get(object).cloned())
    }

    async fn merge_patch(&self, object: &ObjectRef, patch: &Value) -> Result<(), ClusterError> {
        self.call("merge_patch", vec![object.to_string()], true)?;
        self.latency().await;
        let mut s = self.world.state();
        if is_node(object) {
            if !node_exists(&s, &object.name) {
                return Err(ClusterError::NotFound(format!("nodes \"{}\"", object.name)));
            }
            // The node model keeps labels only (no taints): those are what it patches.
            if let Some(labels) = patch.pointer("/metadata/labels").and_then(Value::as_object) {
                let mine = match s.cluster.static_nodes.get_mut(&object.name) {
                    Some(n) => &mut n.labels,
                    None => s
                        .cluster
                        .node_labels
                        .entry(object.name.clone())
                        .or_default(),
                };
                for (k, v) in labels {
                    match v.as_str() {
                        Some(v) => {
                            mine.insert(k.clone(), v.to_string());
                        }
                        None => {
                            mine.remove(k);
                        }
                    }
                }
            }
            return Ok(());
        }
        s.cluster.versions += 1;
        let version = s.cluster.versions.to_string();
        let Some(current) = s.cluster.objects.get_mut(object) else {
            return Err(ClusterError::NotFound(object.to_string()));
        };
        merge(current, patch);
        if let Some(m) = current.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), Value::String(version));
        }
        Ok(())
    }

    async fn delete(&self, object: &ObjectRef) -> Result<bool, ClusterError> {
        self.call("delete", vec![object.to_string()], true)?;
        self.latency().await;
        Ok(self.world.state().cluster.objects.remove(object).is_some())
    }
}

/// Removes an evicted pod; with controllers, recreates it on another Ready, schedulable node and
/// gives its PDB the disruption back once it runs there.
fn evict(s: &mut WorldState, p: &PodState, from: &str, pdb: Option<usize>) {
    s.cluster
        .pods
        .retain(|x| !(x.namespace == p.namespace && x.name == p.name));
    if !s.cluster.controllers {
        return;
    }
    let Some(owner) = p.owner.clone() else {
        return;
    };
    let target = node_names(s)
        .into_iter()
        .filter(|n| n != from && !s.cluster.cordoned.contains(n))
        .find(|n| node_of(s, n).is_some_and(|x| x.ready));
    s.counter += 1;
    let name = if owner.kind == "StatefulSet" {
        p.name.clone()
    } else {
        format!("{}-{:05}", owner.name, s.counter)
    };
    let running = target.is_some();
    s.cluster.pods.push(PodState {
        namespace: p.namespace.clone(),
        name,
        node: target,
        labels: p.labels.clone(),
        owner: Some(owner),
        volumes: p.volumes.clone(),
        phase: if running { "Running" } else { "Pending" }.into(),
        requests: p.requests,
        node_selector: p.node_selector.clone(),
        tolerations: p.tolerations.clone(),
    });
    if running {
        if let Some(i) = pdb {
            if let Some(b) = s.cluster.pdbs.get_mut(i) {
                b.disruptions_allowed += 1;
                b.current_healthy += 1;
            }
        }
    }
}

/// The conformance suite's setup: a world holding only the seeded cluster, always up, without
/// controllers.
#[derive(Debug, Default)]
pub struct FakeClusterSetup;

#[async_trait::async_trait]
impl crate::conformance::cluster::ClusterSetup for FakeClusterSetup {
    async fn start(
        &self,
        seed: &crate::conformance::cluster::ClusterSeed,
    ) -> Result<std::sync::Arc<dyn ClusterApi>, String> {
        let mut st = WorldState::default();
        st.cluster.always_up = true;
        st.cluster.version = Some(seed.version.clone());
        for n in &seed.nodes {
            st.cluster
                .node_labels
                .insert(n.name.clone(), n.labels.clone());
            st.cluster.static_nodes.insert(n.name.clone(), n.clone());
            if n.unschedulable {
                st.cluster.cordoned.insert(n.name.clone());
            }
        }
        st.cluster.pods = seed
            .pods
            .iter()
            .map(|p| PodState {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                node: p.node.clone(),
                labels: p.labels.clone(),
                owner: p.owner.clone(),
                volumes: p.volumes.clone(),
                phase: p.phase.clone(),
                requests: p.requests,
                node_selector: p.node_selector.clone(),
                tolerations: p.tolerations.clone(),
            })
            .collect();
        st.cluster.pdbs = seed.pdbs.clone();
        Ok(std::sync::Arc::new(FakeCluster::new(&World::new(st))))
    }
}
