//! `KubeCluster` against the REAL control plane of `testenv/k8s` (kube-apiserver with RBAC,
//! kube-controller-manager, kube-scheduler, etcd, kwok playing the kubelets): cordon, drain
//! through the Eviction API against the real disruption controller, server-side apply of the
//! MKE 4k configuration through a real CRD, delete, the errors a user meets, and node readiness
//! as kwok and the node lifecycle controller make it.
//!
//! Every test panics, naming the control plane and how to start it, when it is not there: none
//! passes without it. The tests share one cluster and run side by side: each makes its own
//! namespace and its own kwok nodes (named after the test and the run), pins its pods to its own
//! nodes with a node selector (the MkeConfig test uses the `mke` namespace ferry emits, made and
//! deleted by it unless it exists), touches nothing else, and deletes everything it made when
//! it ends, passed or failed (`Fixture`'s `Drop`), after removing what a killed earlier run of
//! the same test left behind (everything it makes carries `ferry.test/real-cluster=<test>`).
//!
//! kwok lets go of a node when somebody else holds the node's Lease (`kube-node-lease/<node>`):
//! it renews only leases it holds and leaves the status of a node whose lease another holder
//! has alone (kwok 0.8 `NodeLeaseController`). Taking the lease over with a long duration is
//! what a kwok instance that stopped managing the node looks like to the node lifecycle
//! controller, which then turns the node NotReady after its grace period (20 s here). Removing
//! the `kwok.x-k8s.io/node` annotation does not do it: kwok filters its node watch by the
//! annotation on the client side, so it never hears that the node left its selection and keeps
//! renewing the lease (seen here: Ready 40 s after the removal; and once such a node is deleted,
//! kwok, which never heard of that either, creates its lease again every 10 s).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::ClusterApi;
use ferry_core::cluster::{ClusterError, DrainOptions, ObjectRef};
use ferry_kube_api::testing::real::{KWOK_ANNOTATION, NOBODY, RealServer, eventually};
use ferry_kube_api::{KubeCluster, KubeOptions};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Label on everything a test makes: `<label>=<test>`, to find what an earlier run left.
const OWNER_LABEL: &str = "ferry.test/real-cluster";
/// Label on a test's nodes, `<label>=<run id>`: its pods select their nodes with it.
const GROUP_LABEL: &str = "ferry.test/group";
/// Where node leases live.
const LEASES: &str = "kube-node-lease";
/// The holder a test puts on a node lease to make kwok let go of the node.
const NOT_KWOK: &str = "ferry-test-not-kwok";

const MKE_CRD: &str = "mkeconfigs.mke.mirantis.com";

/// `rc-<test>-<6 hex digits>`, different for every run.
fn unique(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!(
        "rc-{test}-{:06x}",
        (nanos ^ u64::from(std::process::id()).rotate_left(24)) & 0xff_ffff
    )
}

fn drain_options(timeout: Duration) -> DrainOptions {
    DrainOptions {
        timeout,
        delete_emptydir_data: false,
        force_bare_pods: false,
    }
}

fn is_404(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(r) if r.code == 404)
}

/// What a test made, for its clean-up.
#[derive(Debug, Default)]
struct Created {
    namespaces: Vec<String>,
    nodes: Vec<String>,
    crds: Vec<String>,
}

/// One test's view of the shared cluster: its run id, its admin client, and what it made.
struct Fixture {
    server: RealServer,
    client: kube::Client,
    test: &'static str,
    id: String,
    created: Mutex<Created>,
}

impl Fixture {
    async fn new(test: &'static str, what: &str) -> Fixture {
        let server = RealServer::from_env(what);
        let client = server.client().await;
        let fx = Fixture {
            server,
            client,
            test,
            id: unique(test),
            created: Mutex::new(Created::default()),
        };
        fx.remove_leftovers().await;
        fx
    }

    fn created(&self) -> std::sync::MutexGuard<'_, Created> {
        self.created.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (OWNER_LABEL.to_string(), self.test.to_string()),
            (GROUP_LABEL.to_string(), self.id.clone()),
        ])
    }

    /// Deletes the nodes and namespaces an earlier run of this test left (killed runs).
    async fn remove_leftovers(&self) {
        let lp = ListParams::default().labels(&format!("{OWNER_LABEL}={}", self.test));
        let nodes: Api<Node> = Api::all(self.client.clone());
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASES);
        for n in nodes.list(&lp).await.unwrap() {
            let name = n.metadata.name.unwrap_or_default();
            let _ = nodes.delete(&name, &DeleteParams::default()).await;
            let _ = leases.delete(&name, &DeleteParams::default()).await;
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for ns in namespaces.list(&lp).await.unwrap() {
            if ns.metadata.deletion_timestamp.is_none() {
                let name = ns.metadata.name.unwrap_or_default();
                let _ = namespaces.delete(&name, &DeleteParams::default()).await;
            }
        }
    }

    /// `KubeCluster` as the admin, polling every 250 ms.
    async fn cluster(&self) -> KubeCluster {
        self.server.cluster(Duration::from_millis(250)).await
    }

    /// A new namespace named after the run, once its `default` ServiceAccount exists.
    async fn namespace(&self) -> String {
        let name = self.id.clone();
        self.make_namespace(&name).await;
        name
    }

    async fn make_namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": self.labels()}
        }))
        .unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        self.created().namespaces.push(name.to_string());
        let sa: Api<ServiceAccount> = Api::namespaced(self.client.clone(), name);
        eventually(
            &format!("the default ServiceAccount of {name}"),
            Duration::from_secs(30),
            || {
                let sa = sa.clone();
                async move {
                    match sa.get_opt("default").await {
                        Ok(Some(_)) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
    }

    /// A node kwok manages, `<run id>-<suffix>`, with the run's labels; cordoned from the start
    /// when `unschedulable`.
    async fn kwok_node(&self, suffix: &str, unschedulable: bool) -> String {
        let name = format!("{}-{suffix}", self.id);
        let mut labels = self.labels();
        labels.insert("kubernetes.io/hostname".into(), name.clone());
        labels.insert("type".into(), "kwok".into());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {KWOK_ANNOTATION.0: KWOK_ANNOTATION.1},
            },
            "spec": {"unschedulable": unschedulable},
        }))
        .unwrap();
        let api: Api<Node> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("create node {name}: {e}"));
        self.created().nodes.push(name.clone());
        name
    }

    /// Whether the node's `Ready` condition is `True`, as the API server has it.
    async fn node_ready(&self, name: &str) -> Result<bool, String> {
        let api: Api<Node> = Api::all(self.client.clone());
        let node = api.get(name).await.map_err(|e| e.to_string())?;
        Ok(node_condition(&node, "Ready").as_deref() == Some("True"))
    }

    async fn wait_ready(&self, name: &str) {
        eventually(
            &format!("kwok makes node {name} Ready"),
            Duration::from_secs(30),
            || async move {
                match self.node_ready(name).await? {
                    true => Ok(()),
                    false => Err("not Ready".into()),
                }
            },
        )
        .await;
    }

    async fn unschedulable(&self, name: &str) -> bool {
        let api: Api<Node> = Api::all(self.client.clone());
        let node = api.get(name).await.unwrap();
        node.spec.and_then(|s| s.unschedulable).unwrap_or(false)
    }

    /// Creates a namespaced object (given as JSON) in `ns`.
    async fn create<K>(&self, ns: &str, object: Value) -> K
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + DeserializeOwned
            + Serialize,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let typed: K = serde_json::from_value(object.clone()).unwrap();
        api.create(&PostParams::default(), &typed)
            .await
            .unwrap_or_else(|e| panic!("create {object}: {e}"))
    }

    /// The pods of app `app` in `ns`, those being deleted included.
    async fn pods_of(&self, ns: &str, app: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut pods = api
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap()
            .items;
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        pods
    }

    async fn pod(&self, ns: &str, name: &str) -> Option<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        api.get_opt(name).await.unwrap()
    }

    /// Waits until the Deployment has `replicas` ready pods, all up to date.
    async fn wait_deployment(&self, ns: &str, name: &str, replicas: i32) {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        eventually(
            &format!("Deployment {ns}/{name} with {replicas} ready replicas"),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                async move {
                    let d = api.get(name).await.map_err(|e| e.to_string())?;
                    let s = d.status.clone().unwrap_or_default();
                    let current = s.observed_generation >= d.metadata.generation;
                    if current
                        && s.ready_replicas == Some(replicas)
                        && s.updated_replicas == Some(replicas)
                        && s.replicas == Some(replicas)
                    {
                        Ok(())
                    } else {
                        Err(format!("{s:?}"))
                    }
                }
            },
        )
        .await;
    }

    /// Waits until the disruption controller has computed the PDB's status for the current
    /// pods: `healthy` healthy pods, `allowed` disruptions allowed.
    async fn wait_pdb(&self, ns: &str, name: &str, healthy: i32, allowed: i32) {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), ns);
        eventually(
            &format!("the disruption controller's status of PDB {ns}/{name}"),
            Duration::from_secs(30),
            || {
                let api = api.clone();
                async move {
                    let p = api.get(name).await.map_err(|e| e.to_string())?;
                    let s = p.status.clone().unwrap_or_default();
                    if s.observed_generation.is_some()
                        && s.observed_generation == p.metadata.generation
                        && s.current_healthy == healthy
                        && s.disruptions_allowed == allowed
                    {
                        Ok(())
                    } else {
                        Err(format!("{s:?}"))
                    }
                }
            },
        )
        .await;
    }

    /// Makes kwok let go of `node`: takes over its Lease (holder [`NOT_KWOK`], one hour), so
    /// that kwok neither renews it nor touches the node's status again, and the node lifecycle
    /// controller sees the heartbeats stop. The last renewal time is kept as it is.
    async fn take_from_kwok(&self, node: &str) {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASES);
        let holder = eventually(
            &format!("kwok holds the lease of {node}"),
            Duration::from_secs(30),
            || {
                let leases = leases.clone();
                async move {
                    let lease = leases
                        .get_opt(node)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("no lease yet")?;
                    let spec = lease.spec.unwrap_or_default();
                    match (spec.holder_identity, spec.renew_time) {
                        (Some(h), Some(_)) if !h.is_empty() => Ok(h),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
        assert_ne!(holder, NOT_KWOK);
        let patch = json!({"spec": {"holderIdentity": NOT_KWOK, "leaseDurationSeconds": 3600}});
        leases
            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("take over the lease of {node}: {e}"));
    }
}

fn node_condition(node: &Node, kind: &str) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_node(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

/// `name@node ready|not-ready [deleting]` of each pod, for messages.
fn summary(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| {
            format!(
                "{}@{} {}{}",
                p.metadata.name.as_deref().unwrap_or_default(),
                pod_node(p),
                if pod_ready(p) { "ready" } else { "not-ready" },
                if p.metadata.deletion_timestamp.is_some() {
                    " deleting"
                } else {
                    ""
                }
            )
        })
        .collect()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let created = std::mem::take(&mut *self.created());
        let server = self.server.clone();
        let what = format!("{created:?}");
        // A runtime of its own on a thread of its own: the test's runtime may be unwinding.
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(clean_up(server, created))
        })
        .join();
        let problem = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(left)) => left,
            Err(_) => "the clean-up panicked".to_string(),
        };
        if std::thread::panicking() {
            eprintln!("clean-up of {what}: {problem}");
        } else {
            panic!("clean-up of {what}: {problem}");
        }
    }
}

/// Deletes what a test made: its namespaces first (kwok finishes their pods while it still
/// manages their nodes), then its nodes and their leases, then its CRDs; waits until all is
/// gone.
async fn clean_up(server: RealServer, created: Created) -> Result<(), String> {
    let client = server.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASES);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dp = DeleteParams::default();
    let mut problems = Vec::new();
    for ns in &created.namespaces {
        if let Err(e) = namespaces.delete(ns, &dp).await {
            if !is_404(&e) {
                problems.push(format!("delete namespace {ns}: {e}"));
            }
        }
    }
    for crd in &created.crds {
        if let Err(e) = crds.delete(crd, &dp).await {
            if !is_404(&e) {
                problems.push(format!("delete CRD {crd}: {e}"));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for ns in &created.namespaces {
        while matches!(namespaces.get_opt(ns).await, Ok(Some(_))) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if !matches!(namespaces.get_opt(ns).await, Ok(None)) {
            problems.push(format!("namespace {ns} still there"));
        }
    }
    for node in &created.nodes {
        if let Err(e) = nodes.delete(node, &dp).await {
            if !is_404(&e) {
                problems.push(format!("delete node {node}: {e}"));
            }
        }
        if let Err(e) = leases.delete(node, &dp).await {
            if !is_404(&e) {
                problems.push(format!("delete lease {node}: {e}"));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &created.nodes {
        while matches!(nodes.get_opt(node).await, Ok(Some(_))) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !matches!(nodes.get_opt(node).await, Ok(None)) {
            problems.push(format!("node {node} still there"));
        }
        // kwok may have written the lease again before it heard of the deletion.
        let _ = leases.delete(node, &dp).await;
    }
    for crd in &created.crds {
        while matches!(crds.get_opt(crd).await, Ok(Some(_))) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !matches!(crds.get_opt(crd).await, Ok(None)) {
            problems.push(format!("CRD {crd} still there"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A Deployment of `replicas` pods labelled `app=<name>`, pinned to the nodes of run `group`.
fn deployment(ns: &str, name: &str, replicas: i32, group: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {GROUP_LABEL: group},
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "app", "image": "registry.invalid/ferry/app:1"}],
                },
            },
        },
    })
}

fn pdb(ns: &str, name: &str, app: &str, budget: Value) -> Value {
    let mut spec = json!({"selector": {"matchLabels": {"app": app}}});
    spec.as_object_mut()
        .unwrap()
        .extend(budget.as_object().unwrap().clone());
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

/// Everything the code under test logs through `tracing` (INFO and up), from every test's
/// thread. A process-wide subscriber, not a thread's own: `tracing` caches whether a log line is
/// wanted per call site, and with a thread's subscriber as the only one it decides that on the
/// thread that reaches the call site first (another test's, without a subscriber, may turn it
/// off for all). Tests pick their own lines by their namespace.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// The captured log lines that contain `needle`.
fn log_lines(needle: &str) -> Vec<String> {
    String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|e| e.into_inner()))
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

// --- 1. cordon / uncordon ---------------------------------------------------------------------

#[tokio::test]
async fn cordon_and_uncordon_a_kwok_node_are_idempotent_and_a_missing_node_is_not_found() {
    let fx = Fixture::new("cordon", "cordon and uncordon").await;
    let node = fx.kwok_node("n", false).await;
    fx.wait_ready(&node).await;
    let c = fx.cluster().await;
    let ferry_view = |nodes: Vec<ferry_core::cluster::Node>| {
        nodes
            .into_iter()
            .find(|n| n.name == node)
            .map(|n| (n.ready, n.unschedulable))
    };

    assert!(!fx.unschedulable(&node).await);
    for _ in 0..2 {
        c.cordon(&node).await.unwrap();
        assert!(
            fx.unschedulable(&node).await,
            "cordon sets spec.unschedulable"
        );
        assert_eq!(ferry_view(c.nodes().await.unwrap()), Some((true, true)));
    }
    for _ in 0..2 {
        c.uncordon(&node).await.unwrap();
        assert!(!fx.unschedulable(&node).await, "uncordon clears it");
        assert_eq!(ferry_view(c.nodes().await.unwrap()), Some((true, false)));
    }

    let missing = format!("{}-missing", fx.id);
    for result in [
        c.cordon(&missing).await,
        c.uncordon(&missing).await,
        c.drain(&missing, &drain_options(Duration::from_secs(5)))
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(ClusterError::NotFound(m)) => assert!(m.contains(&missing), "{m}"),
            other => panic!("{missing}: {other:?}"),
        }
    }
}

// --- 2. drain against the real disruption controller ----------------------------------------

#[tokio::test]
async fn drain_waits_for_the_budget_while_the_replacements_become_ready_elsewhere() {
    let fx = Fixture::new("drain", "a drain paced by a real PodDisruptionBudget").await;
    let ns = fx.namespace().await;
    let a = fx.kwok_node("a", false).await;
    let b = fx.kwok_node("b", true).await;
    fx.wait_ready(&a).await;
    fx.wait_ready(&b).await;

    // Three replicas, all on A (B is cordoned); a budget that keeps two of them available, so
    // that the real disruption controller allows one eviction at a time.
    fx.create::<Deployment>(&ns, deployment(&ns, "web", 3, &fx.id))
        .await;
    fx.create::<PodDisruptionBudget>(&ns, pdb(&ns, "web-pdb", "web", json!({"minAvailable": 2})))
        .await;
    fx.wait_deployment(&ns, "web", 3).await;
    let before = fx.pods_of(&ns, "web").await;
    assert_eq!(before.len(), 3);
    assert!(
        before.iter().all(|p| pod_node(p) == a),
        "{:?}",
        summary(&before)
    );
    fx.wait_pdb(&ns, "web-pdb", 3, 1).await;

    // The drain starts while B is still cordoned: the budget's one disruption goes to the first
    // eviction, whose replacement has nowhere to run, so the API server must refuse (429) the
    // others. Once it has refused one, B opens; the replacements become Ready there one at a time, each
    // giving the budget a disruption back, and the drain's retries go through.
    let c = fx.cluster().await;
    capture_log();
    let refusals = format!("pod={ns}/");
    let options = drain_options(Duration::from_secs(90));
    let drain = c.drain(&a, &options);
    let open_b = async {
        eventually(
            "the API server refuses an eviction (429) while B is cordoned",
            Duration::from_secs(30),
            || async {
                match log_lines(&refusals).is_empty() {
                    false => Ok(()),
                    true => Err("no refusal yet".to_string()),
                }
            },
        )
        .await;
        assert!(
            fx.pods_of(&ns, "web")
                .await
                .iter()
                .all(|p| pod_node(p) != b),
            "nothing runs on the cordoned {b} yet"
        );
        c.uncordon(&b).await.unwrap();
    };
    let (report, ()) = tokio::join!(drain, open_b);
    let report = report.unwrap_or_else(|e| panic!("drain of {a}: {e}\n{:?}", log_lines(&ns)));

    // Every pod of the Deployment was evicted; the refusals named the budget. (How many there
    // were depends on how fast the requests went: an eviction sent late may find the budget
    // given back already.)
    let mut expected: Vec<String> = before.iter().map(pod_key).collect();
    expected.sort();
    assert_eq!(report.evicted, expected);
    assert!(report.skipped_daemonset.is_empty(), "{report:?}");
    let blocked = log_lines(&refusals);
    assert!(
        !blocked.is_empty()
            && blocked.iter().all(|l| {
                l.contains("eviction blocked by a PodDisruptionBudget") && l.contains("pdb=web-pdb")
            }),
        "evictions refused by web-pdb (429): {blocked:?}"
    );

    // When the drain returned, the budget held: at least two replacements were Ready on B.
    let after = fx.pods_of(&ns, "web").await;
    assert!(
        after.iter().all(|p| pod_node(p) != a),
        "pods left on {a}: {:?}",
        summary(&after)
    );
    let ready_on_b = after
        .iter()
        .filter(|p| pod_node(p) == b && pod_ready(p) && p.metadata.deletion_timestamp.is_none())
        .count();
    assert!(
        ready_on_b >= 2,
        "{ready_on_b} ready on {b}: {:?}",
        summary(&after)
    );

    // And the Deployment is whole again, on B. (Its status may still show the three ready
    // replicas of before: evictions do not change its generation; the pods tell.)
    eventually(
        "three ready pods of the Deployment on B",
        Duration::from_secs(60),
        || async {
            let pods = fx.pods_of(&ns, "web").await;
            let good = pods.len() == 3
                && pods.iter().all(|p| {
                    pod_node(p) == b && pod_ready(p) && p.metadata.deletion_timestamp.is_none()
                });
            if good {
                Ok(())
            } else {
                Err(format!("{:?}", summary(&pods)))
            }
        },
    )
    .await;
    fx.wait_deployment(&ns, "web", 3).await;
    assert!(c.pods(Some(&a)).await.unwrap().is_empty());
    assert!(
        fx.unschedulable(&a).await,
        "the drained node stays cordoned"
    );
}

#[tokio::test]
async fn drain_gives_up_at_its_deadline_when_the_budget_allows_nothing() {
    let fx = Fixture::new("deadline", "a drain blocked by a real PodDisruptionBudget").await;
    let ns = fx.namespace().await;
    let node = fx.kwok_node("n", false).await;
    fx.wait_ready(&node).await;
    fx.create::<Deployment>(&ns, deployment(&ns, "api", 2, &fx.id))
        .await;
    fx.create::<PodDisruptionBudget>(
        &ns,
        pdb(&ns, "api-pdb", "api", json!({"maxUnavailable": 0})),
    )
    .await;
    fx.wait_deployment(&ns, "api", 2).await;
    fx.wait_pdb(&ns, "api-pdb", 2, 0).await;
    let before = fx.pods_of(&ns, "api").await;
    let names: Vec<String> = before.iter().map(pod_key).collect();

    let c = fx.cluster().await;
    capture_log();
    let timeout = Duration::from_secs(3);
    let started = Instant::now();
    let result = c.drain(&node, &drain_options(timeout)).await;
    let took = started.elapsed();
    match result {
        Err(ClusterError::EvictionBlocked { pod, pdb }) => {
            assert_eq!(pdb, "api-pdb");
            assert!(names.contains(&pod), "{pod} not in {names:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(10),
        "gave up after {took:?}"
    );
    // It retried the refused evictions (429) until then.
    let blocked = log_lines(&format!("pod={ns}/"));
    assert!(
        blocked.len() >= 2 && blocked.iter().all(|l| l.contains("pdb=api-pdb")),
        "{blocked:?}"
    );

    // Nothing was evicted: the same pods, on the node, not being deleted.
    let after = fx.pods_of(&ns, "api").await;
    assert_eq!(
        after.iter().map(pod_key).collect::<Vec<_>>(),
        names,
        "{:?}",
        summary(&after)
    );
    for p in &after {
        assert_eq!(pod_node(p), node);
        assert!(
            p.metadata.deletion_timestamp.is_none(),
            "{:?}",
            summary(&after)
        );
    }
    assert_eq!(
        after.iter().map(|p| &p.metadata.uid).collect::<Vec<_>>(),
        before.iter().map(|p| &p.metadata.uid).collect::<Vec<_>>()
    );
}

// --- 3. bare pods -----------------------------------------------------------------------------

#[tokio::test]
async fn drain_refuses_a_bare_pod_before_evicting_anything() {
    let fx = Fixture::new("bare", "a drain refused because of a bare pod").await;
    let ns = fx.namespace().await;
    let node = fx.kwok_node("n", false).await;
    fx.wait_ready(&node).await;
    let bare: Pod = fx
        .create(
            &ns,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "lonely", "namespace": ns, "labels": {"app": "lonely"}},
                "spec": {
                    "nodeName": node,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "c", "image": "registry.invalid/ferry/lonely:1"}],
                },
            }),
        )
        .await;
    fx.create::<Deployment>(&ns, deployment(&ns, "kept", 1, &fx.id))
        .await;
    fx.wait_deployment(&ns, "kept", 1).await;
    let kept = fx.pods_of(&ns, "kept").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(pod_node(&kept[0]), node);

    let c = fx.cluster().await;
    match c
        .drain(&node, &drain_options(Duration::from_secs(20)))
        .await
    {
        Err(ClusterError::DrainRefused { node: n, reason }) => {
            assert_eq!(n, node);
            assert!(reason.contains(&format!("{ns}/lonely")), "{reason}");
            assert!(reason.contains("no controller"), "{reason}");
            assert!(!reason.contains(&pod_key(&kept[0])), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // Neither the bare pod nor the Deployment's pod was evicted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (p, name) in [
        (&bare, "lonely".to_string()),
        (&kept[0], kept[0].metadata.name.clone().unwrap()),
    ] {
        let now = fx
            .pod(&ns, &name)
            .await
            .unwrap_or_else(|| panic!("{name} is gone"));
        assert_eq!(now.metadata.uid, p.metadata.uid, "{name} was replaced");
        assert!(
            now.metadata.deletion_timestamp.is_none(),
            "{name} is being deleted"
        );
    }
    assert_eq!(fx.pods_of(&ns, "kept").await.len(), 1);
}

// --- 4. DaemonSet pods ------------------------------------------------------------------------

#[tokio::test]
async fn drain_leaves_the_daemonset_pods_and_evicts_the_others() {
    let fx = Fixture::new("daemonset", "a drain that leaves DaemonSet pods").await;
    let ns = fx.namespace().await;
    let node = fx.kwok_node("n", false).await;
    fx.wait_ready(&node).await;
    fx.create::<DaemonSet>(
        &ns,
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": ns},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {
                        "nodeSelector": {GROUP_LABEL: fx.id},
                        "terminationGracePeriodSeconds": 0,
                        "containers": [
                            {"name": "agent", "image": "registry.invalid/ferry/agent:1"}
                        ],
                    },
                },
            },
        }),
    )
    .await;
    fx.create::<Deployment>(&ns, deployment(&ns, "app", 1, &fx.id))
        .await;
    fx.wait_deployment(&ns, "app", 1).await;
    let agent = eventually(
        "the DaemonSet controller and the scheduler run agent on the node, Ready",
        Duration::from_secs(60),
        || async {
            let pods = fx.pods_of(&ns, "agent").await;
            match pods.as_slice() {
                [p] if pod_node(p) == node && pod_ready(p) => Ok(p.clone()),
                other => Err(format!("{:?}", summary(other))),
            }
        },
    )
    .await;
    let app = fx.pods_of(&ns, "app").await;

    let c = fx.cluster().await;
    let report = c
        .drain(&node, &drain_options(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(report.skipped_daemonset, [pod_key(&agent)]);
    assert_eq!(report.evicted, [pod_key(&app[0])]);

    // The DaemonSet pod stays, the same pod, on the drained node.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = fx.pods_of(&ns, "agent").await;
    assert_eq!(now.len(), 1, "{:?}", summary(&now));
    assert_eq!(now[0].metadata.uid, agent.metadata.uid);
    assert_eq!(pod_node(&now[0]), node);
    assert!(now[0].metadata.deletion_timestamp.is_none());
    let left: Vec<String> = c
        .pods(Some(&node))
        .await
        .unwrap()
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    assert_eq!(left, [pod_key(&agent)]);
}

// --- 5. server-side apply of the MKE 4k configuration -----------------------------------------

/// The MkeConfig `ferry init` makes of `examples/mke3-config.toml`.
fn converted_mke_config() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/mke3-config.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let options = ferry_config_convert::Options {
        external_address: Some("mke.example.com".into()),
        ..ferry_config_convert::Options::default()
    };
    let conversion =
        ferry_config_convert::convert(&text, &options).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::to_value(&conversion.config).unwrap()
}

/// `v` without its `null` members (the API server keeps no nulls).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn the_converted_mke_config_is_applied_server_side_and_a_second_apply_changes_nothing() {
    let fx = Fixture::new("mkeconfig", "server-side apply of the MkeConfig").await;
    let config = converted_mke_config();
    assert_eq!(config["apiVersion"], "mke.mirantis.com/v1alpha1");
    assert_eq!(config["kind"], "MkeConfig");
    let ns = config["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();

    // The CRD, as MKE 4k has it: namespaced (`mke/mke`); a schema that keeps every field.
    let crds: Api<CustomResourceDefinition> = Api::all(fx.client.clone());
    if let Some(old) = crds.get_opt(MKE_CRD).await.unwrap() {
        let ours = old
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(OWNER_LABEL))
            .is_some_and(|t| t == fx.test);
        assert!(
            ours,
            "CRD {MKE_CRD} exists and was not made by this test: not touching it"
        );
        let _ = crds.delete(MKE_CRD, &DeleteParams::default()).await;
        eventually(
            "the CRD an earlier run left is gone",
            Duration::from_secs(30),
            || async {
                match crds.get_opt(MKE_CRD).await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{:?}", other.map(|o| o.map(|c| c.metadata)))),
                }
            },
        )
        .await;
    }
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": MKE_CRD, "labels": fx.labels()},
        "spec": {
            "group": "mke.mirantis.com",
            "scope": "Namespaced",
            "names": {"plural": "mkeconfigs", "singular": "mkeconfig", "kind": "MkeConfig",
                      "listKind": "MkeConfigList"},
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": true}},
                }},
            }],
        },
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    fx.created().crds.push(MKE_CRD.to_string());
    eventually(
        "the MkeConfig CRD is established",
        Duration::from_secs(30),
        || async {
            let crd = crds.get(MKE_CRD).await.map_err(|e| e.to_string())?;
            let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                Ok(())
            } else {
                Err(format!("{conditions:?}"))
            }
        },
    )
    .await;

    // Its namespace, unless it is there already (then it is not ours to delete).
    let namespaces: Api<Namespace> = Api::all(fx.client.clone());
    eventually(
        &format!("namespace {ns} of an earlier run is gone"),
        Duration::from_secs(60),
        || async {
            match namespaces.get_opt(&ns).await {
                Ok(Some(n)) if n.metadata.deletion_timestamp.is_some() => {
                    Err("terminating".to_string())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    if namespaces.get_opt(&ns).await.unwrap().is_none() {
        fx.make_namespace(&ns).await;
    }

    let c = fx.cluster().await;
    let object = ObjectRef::of(&config).unwrap();
    // Discovery may lag the Established condition by a moment.
    eventually(
        "the first apply of the MkeConfig",
        Duration::from_secs(20),
        || async {
            match c.apply(&config).await {
                Ok(()) => Ok(()),
                Err(ClusterError::Invalid(m)) if m.contains("has no kind") => Err(m),
                Err(e) => panic!("apply {object}: {e}"),
            }
        },
    )
    .await;
    let first = c
        .get(&object)
        .await
        .unwrap()
        .expect("the applied MkeConfig");
    assert_eq!(
        first["spec"],
        without_nulls(&config["spec"]),
        "the stored spec is what ferry emitted"
    );
    let managed = first["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert_eq!(managed[0]["manager"], "ferry");
    assert_eq!(managed[0]["operation"], "Apply");
    assert_eq!(managed[0]["apiVersion"], "mke.mirantis.com/v1alpha1");

    c.apply(&config).await.unwrap();
    let second = c.get(&object).await.unwrap().unwrap();
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert_eq!(
        second["metadata"]["generation"],
        first["metadata"]["generation"]
    );
    assert_eq!(
        second["metadata"]["managedFields"],
        first["metadata"]["managedFields"]
    );

    assert!(c.delete(&object).await.unwrap());
    assert_eq!(c.get(&object).await.unwrap(), None);
}

// --- 6. delete of what is not there ---------------------------------------------------------

#[tokio::test]
async fn delete_of_a_missing_object_is_false_for_namespaced_and_cluster_scoped_kinds() {
    let fx = Fixture::new("delete", "delete of missing objects").await;
    let ns = fx.namespace().await;
    let c = fx.cluster().await;
    let reference =
        |api_version: &str, kind: &str, namespace: Option<&str>, name: &str| ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        };
    let missing = format!("{}-missing", fx.id);
    for r in [
        reference("v1", "ConfigMap", Some(&ns), &missing),
        reference("v1", "Node", None, &missing),
        reference(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            &missing,
        ),
    ] {
        assert_eq!(c.get(&r).await, Ok(None), "{r}");
        assert_eq!(c.delete(&r).await, Ok(false), "{r}");
    }

    // And one that is there: true, then false.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "present", "namespace": ns}, "data": {"k": "v"}});
    c.apply(&cm).await.unwrap();
    let r = reference("v1", "ConfigMap", Some(&ns), "present");
    assert_eq!(c.get(&r).await.unwrap().unwrap()["data"]["k"], "v");
    assert_eq!(c.delete(&r).await, Ok(true));
    assert_eq!(c.delete(&r).await, Ok(false));
    assert_eq!(c.get(&r).await, Ok(None));
}

// --- 7. refused credentials -------------------------------------------------------------------

#[tokio::test]
async fn a_bad_token_is_unauthorized() {
    let server = RealServer::from_env("a refused token");
    let text = std::fs::read_to_string(&server.kubeconfig).unwrap();
    let mut replaced = 0;
    let bad: String = text
        .lines()
        .map(|l| match l.find("token: ") {
            Some(at) => {
                replaced += 1;
                format!("{}token: 0123456789abcdef-not-a-token\n", &l[..at])
            }
            None => format!("{l}\n"),
        })
        .collect();
    assert_eq!(replaced, 1, "{}", server.kubeconfig.display());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, bad).unwrap();
    let c = KubeCluster::from_kubeconfig(&path, KubeOptions::default())
        .await
        .unwrap();
    assert_eq!(c.nodes().await, Err(ClusterError::Unauthorized));
    assert_eq!(c.server_version().await.ok(), None);
}

#[tokio::test]
async fn a_user_without_rights_is_forbidden_with_the_servers_reason() {
    let fx = Fixture::new("forbidden", "RBAC refusals").await;
    let ns = fx.namespace().await;
    let nobody = fx.server.nobody().await;
    match nobody.nodes().await {
        Err(ClusterError::Forbidden(m)) => {
            assert!(m.contains("list nodes"), "{m}");
            assert!(m.contains(&format!("User \"{NOBODY}\"")), "{m}");
            assert!(m.contains("cannot list resource \"nodes\""), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "refused", "namespace": ns}, "data": {}});
    match nobody.apply(&cm).await {
        Err(ClusterError::Forbidden(m)) => {
            assert!(m.contains(&format!("ConfigMap {ns}/refused")), "{m}");
            assert!(m.contains(&format!("User \"{NOBODY}\"")), "{m}");
            assert!(m.contains("configmaps"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let admin = fx.cluster().await;
    let r = ObjectRef::of(&cm).unwrap();
    assert_eq!(admin.get(&r).await, Ok(None), "nothing was created");
}

// --- 8. readiness from kwok and the node lifecycle controller ---------------------------------

#[tokio::test]
async fn wait_ready_sees_kwok_make_nodes_ready_and_the_lifecycle_controller_turn_one_not_ready() {
    let fx = Fixture::new("ready", "node readiness").await;
    let keep = fx.kwok_node("keep", false).await;
    let lose = fx.kwok_node("lose", false).await;
    let c = fx.cluster().await;

    // Waited for from creation: kwok makes them Ready.
    for node in [&keep, &lose] {
        ferry_core::node::wait_ready(
            &c,
            node,
            Duration::from_secs(30),
            Duration::from_millis(200),
        )
        .await
        .unwrap_or_else(|e| panic!("{node}: {e}"));
    }
    let ready = |nodes: &[ferry_core::cluster::Node], name: &str| {
        nodes.iter().find(|n| n.name == name).map(|n| n.ready)
    };
    let nodes = c.nodes().await.unwrap();
    assert_eq!(ready(&nodes, &keep), Some(true));
    assert_eq!(ready(&nodes, &lose), Some(true));

    // kwok lets go of one; the node lifecycle controller (grace 20 s) turns it NotReady.
    fx.take_from_kwok(&lose).await;
    let started = Instant::now();
    eventually(
        &format!("the node lifecycle controller turns {lose} NotReady"),
        Duration::from_secs(60),
        || async {
            let nodes = c.nodes().await.map_err(|e| e.to_string())?;
            match ready(&nodes, &lose) {
                Some(false) => Ok(()),
                other => Err(format!("ready: {other:?}")),
            }
        },
    )
    .await;
    let took = started.elapsed();
    let api: Api<Node> = Api::all(fx.client.clone());
    let node = api.get(&lose).await.unwrap();
    assert_eq!(
        node_condition(&node, "Ready").as_deref(),
        Some("Unknown"),
        "the controller, not kwok, changed it: {:?}",
        node.status
    );
    let nodes = c.nodes().await.unwrap();
    assert_eq!(
        ready(&nodes, &keep),
        Some(true),
        "the other node stays Ready"
    );
    assert!(took < Duration::from_secs(45), "NotReady after {took:?}");

    // Waiting for it now times out, naming it.
    let err = ferry_core::node::wait_ready(
        &c,
        &lose,
        Duration::from_secs(3),
        Duration::from_millis(200),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&lose), "{text}");
    assert!(text.contains("did not become Ready"), "{text}");
    ferry_core::node::wait_ready(
        &c,
        &keep,
        Duration::from_secs(1),
        Duration::from_millis(200),
    )
    .await
    .unwrap();

    // kwok has not taken the lease back.
    let leases: Api<Lease> = Api::namespaced(fx.client.clone(), LEASES);
    let lease = leases.get(&lose).await.unwrap();
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(NOT_KWOK)
    );
}
