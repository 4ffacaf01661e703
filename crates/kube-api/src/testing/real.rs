//! The real Kubernetes control plane of `testenv/k8s` for the tests that need it: etcd,
//! kube-apiserver (RBAC authorizer, token users), kube-controller-manager (ClusterRole
//! aggregation, disruption, Deployment/ReplicaSet/DaemonSet, node lifecycle, garbage
//! collector), kube-scheduler and kwok, all on loopback.
//!
//! `scripts/test` starts it and exports the environment these functions read; by hand:
//! `testenv/k8s/ctl up && eval "$(testenv/k8s/ctl env)"`. A test that needs it and does not
//! find it panics with a message that names it: such a test never passes without it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{KubeCluster, KubeOptions};

/// The admin kubeconfig (a token user in `system:masters`).
pub const KUBECONFIG_ENV: &str = "FERRY_K8S_KUBECONFIG";
/// The kubeconfig of `ferry-nobody`, a token user with no rights at all.
pub const USER_KUBECONFIG_ENV: &str = "FERRY_K8S_USER_KUBECONFIG";
/// The admin kubeconfig of the second control plane (`FERRY_K8S_INSTANCE=downstream`): a
/// downstream cluster beside the management cluster of [`KUBECONFIG_ENV`].
pub const DOWNSTREAM_KUBECONFIG_ENV: &str = "FERRY_K8S_DOWNSTREAM_KUBECONFIG";
/// The annotation kwok is told to manage nodes by (`kwok.x-k8s.io/node: fake`).
pub const KWOK_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");
/// The user of [`USER_KUBECONFIG_ENV`].
pub const NOBODY: &str = "ferry-nobody";

const HOW: &str = "scripts/test starts it; by hand: `testenv/k8s/ctl up && eval \"$(testenv/k8s/ctl env)\"` (the second, downstream one: `FERRY_K8S_INSTANCE=downstream testenv/k8s/ctl up` and its env)";

/// Where the running control plane is.
#[derive(Debug, Clone)]
pub struct RealServer {
    pub kubeconfig: PathBuf,
    pub user_kubeconfig: PathBuf,
}

fn file_from_env(var: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!(
            "REAL KUBERNETES CONTROL PLANE MISSING: {var} is not set, so {what} cannot be tested against the real kube-apiserver of testenv/k8s: {HOW}"
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "REAL KUBERNETES CONTROL PLANE DOWN: {var}={} does not exist, so {what} cannot be tested: {HOW}",
        path.display()
    );
    path
}

/// The second control plane's admin kubeconfig; panics, naming it and how to start it, when the
/// environment does not name one or it is gone.
pub fn downstream_from_env(what: &str) -> PathBuf {
    file_from_env(DOWNSTREAM_KUBECONFIG_ENV, what)
}

/// A plain kube-rs client for `kubeconfig`, for a test's own set-up and checks.
pub async fn client_of(kubeconfig: &Path) -> kube::Client {
    let k = kube::config::Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    let config =
        kube::Config::from_custom_kubeconfig(k, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}"))
}

impl RealServer {
    /// The control plane named by the environment. Panics, naming it and how to start it,
    /// when the environment does not name one or its kubeconfig is gone. `what` is what the
    /// calling test checks, for the message.
    pub fn from_env(what: &str) -> RealServer {
        RealServer {
            kubeconfig: file_from_env(KUBECONFIG_ENV, what),
            user_kubeconfig: file_from_env(USER_KUBECONFIG_ENV, what),
        }
    }

    /// `KubeCluster` as the admin, polling every `poll` (drains, waits). Panics when the API
    /// server does not answer `/version` within 30 s.
    pub async fn cluster(&self, poll: Duration) -> KubeCluster {
        cluster_of(&self.kubeconfig, poll).await
    }

    /// `KubeCluster` as `ferry-nobody`, who may do nothing.
    pub async fn nobody(&self) -> KubeCluster {
        cluster_of(&self.user_kubeconfig, Duration::from_millis(200)).await
    }

    /// A plain kube-rs client as the admin, for the test's own set-up and checks.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("{}: {e}", self.kubeconfig.display()));
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", self.kubeconfig.display()));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}"))
    }
}

async fn cluster_of(path: &Path, poll: Duration) -> KubeCluster {
    use ferry_core::ClusterApi as _;
    let options = KubeOptions {
        poll_interval: poll,
        ..KubeOptions::default()
    };
    let cluster = KubeCluster::from_kubeconfig(path, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cluster.server_version().await {
            // An answer, even a refusal, means the server is up.
            Ok(_)
            | Err(
                ferry_core::ClusterError::Unauthorized | ferry_core::ClusterError::Forbidden(_),
            ) => {
                return cluster;
            }
            Err(e) if Instant::now() >= deadline => panic!(
                "REAL KUBERNETES CONTROL PLANE DOWN: {} does not answer: {e}: {HOW}",
                cluster.server()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `limit` saying what was
/// awaited and what `check` saw last (`Err(text)`).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {limit:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Writes `line` straight to the process's standard error. The test harness keeps what a
/// passing test prints with `println!`/`eprintln!`; a suite's one summary line (how many
/// answers it checked) belongs in the log of a whole-suite run too, so it bypasses the capture.
pub fn announce(line: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    // Nothing to do about a closed stderr in a test.
    let _ = writeln!(err, "{line}");
}
