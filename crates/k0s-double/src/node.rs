//! The kubelet's part, played against a real control plane: when
//! `$ROOT/etc/k0s-double/kubeconfig` exists, a daemon that runs workloads registers a Node named
//! after the host, annotated for kwok (which makes it Ready and keeps its lease), with k0s's
//! role labels and taint. k0s registers no Node for a controller without `--enable-worker`.
//!
//! `k0s stop` takes the kwok annotation away, so the Node goes NotReady after the node monitor's
//! grace period, as with a stopped kubelet. `k0s reset` leaves the Node object, as real k0s does
//! (deleting it is the administrator's call, and a rollback to MKE 3 wants the same object back
//! under MKE 3's kubelet); tests delete the Nodes they made.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};

use crate::env::Env;
use crate::util::Error;

pub const KUBECONFIG: &str = "/etc/k0s-double/kubeconfig";
const KWOK: &str = "kwok.x-k8s.io/node";
const MANAGER: &str = "k0s-double";

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start an async runtime", e))
}

/// The Node API of the control plane the kubeconfig names, if there is one.
async fn nodes(env: &Env) -> Result<Option<Api<Node>>, Error> {
    Ok(client(env).await?.map(Api::all))
}

/// A client of the control plane the kubeconfig names, if there is one.
async fn client(env: &Env) -> Result<Option<kube::Client>, Error> {
    let path = env.path(KUBECONFIG);
    if !path.is_file() {
        return Ok(None);
    }
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .map_err(|e| Error::msg(format!("{KUBECONFIG}: {e}")))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| Error::msg(format!("{KUBECONFIG}: {e}")))?;
    let client =
        kube::Client::try_from(config).map_err(|e| Error::msg(format!("kube client: {e}")))?;
    Ok(Some(client))
}

/// Registers (or re-registers) this host's Node.
pub fn register(env: &Env, controller: bool, taint: bool) -> Result<(), Error> {
    let name = env.hostname();
    runtime()?.block_on(async {
        let Some(client) = client(env).await? else {
            return Ok(());
        };
        let api: Api<Node> = Api::all(client.clone());
        // A Node deleted a moment ago (the node was removed and is added back) leaves its Lease
        // until the garbage collector takes it; kwok, which posts the status here, loses a
        // Node registered again before that. A kubelet registers again at once; the double
        // waits for the old Lease to go first (30 s at most).
        if api.get_opt(&name).await.ok().flatten().is_none() {
            let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
                Api::namespaced(client, "kube-node-lease");
            for _ in 0..30 {
                match leases.get_opt(&name).await {
                    Ok(Some(_)) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                    _ => break,
                }
            }
        }
        let mut labels = serde_json::json!({
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "node.k0sproject.io/role": if controller { "control-plane" } else { "worker" },
        });
        let mut taints = serde_json::json!([]);
        if controller {
            labels["node-role.kubernetes.io/control-plane"] = "true".into();
            if taint {
                taints = serde_json::json!([{
                    "key": "node-role.kubernetes.io/master",
                    "effect": "NoSchedule",
                }]);
            }
        }
        let node = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": { KWOK: "fake" },
            },
            "spec": { "taints": taints },
        });
        api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&node))
            .await
            .map_err(|e| Error::msg(format!("cannot register node {name}: {e}")))?;
        patch_version(&api, &name).await
    })
}

/// The kubelet reports its version in the Node's status (kwok's stages keep a version that is
/// there), so an upgraded node says so once it runs again. Writes only when it differs.
pub fn report_version(env: &Env) -> Result<(), Error> {
    let name = env.hostname();
    runtime()?.block_on(async {
        let Some(api) = nodes(env).await? else {
            return Ok(());
        };
        let want = crate::env::kubelet_version(crate::env::version());
        match api.get_opt(&name).await {
            Ok(Some(n)) => {
                let have = n
                    .status
                    .and_then(|s| s.node_info)
                    .map(|i| i.kubelet_version);
                if have.as_deref() == Some(want.as_str()) {
                    return Ok(());
                }
            }
            // deleted under us: the registration loop of a real kubelet would make it again
            Ok(None) => return Ok(()),
            Err(e) => return Err(Error::msg(format!("cannot read node {name}: {e}"))),
        }
        patch_version(&api, &name).await
    })
}

static MAX_PODS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// The kubelet's `--max-pods` (from k0s's `--kubelet-extra-args`); 110 when not given.
pub fn set_max_pods(n: Option<u64>) {
    let _ = MAX_PODS.set(n);
}

/// What a kubelet reports as its capacity and allocatable: the machine's CPUs and memory (the
/// testbed's hosts share one machine, so each reports all of it), and its pod limit.
fn resources() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(4 << 20);
    let pods = MAX_PODS.get().copied().flatten().unwrap_or(110);
    serde_json::json!({
        "cpu": cpus.to_string(),
        "memory": format!("{mem_kib}Ki"),
        "pods": pods.to_string(),
    })
}

async fn patch_version(api: &Api<Node>, name: &str) -> Result<(), Error> {
    let r = resources();
    let status = serde_json::json!({ "status": {
        "nodeInfo": {
            "kubeletVersion": crate::env::kubelet_version(crate::env::version()),
        },
        "capacity": r,
        "allocatable": r,
    } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map(|_| ())
        .map_err(|e| Error::msg(format!("cannot report the version of node {name}: {e}")))
}

/// A kubelet posts its Node's status within seconds of registering; here kwok posts it. A Node
/// deleted and registered again under the same name within a second or two (a node removed and
/// re-added) is sometimes never picked up by kwok again, and stays without any status: after
/// 20 s without a Ready condition the double hands the Node to kwok again (its annotation off
/// and on), as a kubelet would simply post its status again.
pub fn status_posted(env: &Env, since_registration: std::time::Duration) -> Result<(), Error> {
    if since_registration < std::time::Duration::from_secs(20) {
        return Ok(());
    }
    let name = env.hostname();
    runtime()?.block_on(async {
        let Some(api) = nodes(env).await? else {
            return Ok(());
        };
        let Ok(Some(n)) = api.get_opt(&name).await else {
            return Ok(());
        };
        let posted = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if posted {
            return Ok(());
        }
        eprintln!("kubelet: node {name} has no Ready status yet: handing it to kwok again");
        for value in [serde_json::Value::Null, serde_json::json!("fake")] {
            let patch = serde_json::json!({ "metadata": { "annotations": { KWOK: value } } });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::msg(format!("cannot update node {name}: {e}")))?;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
        Ok(())
    })
}

/// The kubelet stopped: kwok no longer keeps the Node Ready.
pub fn stopped(env: &Env) -> Result<(), Error> {
    let name = env.hostname();
    runtime()?.block_on(async {
        let Some(api) = nodes(env).await? else {
            return Ok(());
        };
        let patch = serde_json::json!({ "metadata": { "annotations": { KWOK: null } } });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(Error::msg(format!("cannot update node {name}: {e}"))),
        }
    })
}
