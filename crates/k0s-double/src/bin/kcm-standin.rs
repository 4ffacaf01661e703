//! `kcm-standin`: a kube-controller-manager of the testbed's RKE nodes (test-only, never
//! shipped), run in a Docker container named `kube-controller-manager` as RKE runs the real one.
//!
//! What ferry can observe of a controller manager is its flags (`docker inspect`) and its leader
//! election on Leases; that is what it does, with client-go's leader election rules: a Lease is
//! taken when it is missing, held by this process, or not renewed for `leaseDurationSeconds`;
//! it is renewed every 2 s while held; a write that loses a race (a conflict) is a lost round.
//!
//! * always its own Lease `kube-system/kube-controller-manager` (with `--leader-elect`, the
//!   default);
//! * with `--enable-leader-migration` and a `--cloud-provider` other than `external`, also the
//!   migration Lease `kube-system/cloud-provider-extraction-migration`, as a 1.22+ manager does
//!   with its built-in configuration.
//!
//! The identity is `<hostname>_<random>`, as client-go makes it. `--kubeconfig` names the API
//! server. Runs until SIGTERM or SIGINT (then it stops renewing, and the Leases run out).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test program: its log is its output"
)]

use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};

const NAMESPACE: &str = "kube-system";
const OWN: &str = "kube-controller-manager";
const MIGRATION: &str = "cloud-provider-extraction-migration";
const DURATION: i32 = 15;

fn flag(args: &[String], name: &str) -> Option<String> {
    let mut found = None;
    for a in args {
        let t = a.trim_start_matches('-');
        if t == name {
            found = Some("true".to_string());
        } else if let Some(v) = t.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

fn now_micro() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::chrono::Utc::now())
}

/// One round of leader election on `name`: `true` while this process holds it.
async fn elect(api: &Api<Lease>, name: &str, me: &str) -> Result<bool, kube::Error> {
    let now = now_micro();
    match api.get_opt(name).await? {
        None => {
            let lease: Lease = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"holderIdentity": me, "leaseDurationSeconds": DURATION,
                         "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
            }))
            .map_err(kube::Error::SerdeError)?;
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            let holder = spec.holder_identity.clone().unwrap_or_default();
            let expired = spec.renew_time.as_ref().is_none_or(|t| {
                let age = k8s_openapi::chrono::Utc::now() - t.0;
                age.num_seconds() > i64::from(spec.lease_duration_seconds.unwrap_or(DURATION))
            });
            if holder != me && !holder.is_empty() && !expired {
                return Ok(false);
            }
            if holder != me {
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                spec.holder_identity = Some(me.to_string());
                spec.lease_duration_seconds = Some(DURATION);
            }
            spec.renew_time = Some(now);
            // the resourceVersion read makes this a compare-and-swap
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let path = flag(&args, "kubeconfig").ok_or("--kubeconfig is required")?;
    let kubeconfig =
        kube::config::Kubeconfig::read_from(&path).map_err(|e| format!("{path}: {e}"))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| format!("{path}: {e}"))?;
    let client = kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))?;
    let api: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let me = format!("{host}_{:x}{:x}", std::process::id(), nanos);
    let leader_elect = flag(&args, "leader-elect").as_deref() != Some("false");
    let migration = flag(&args, "enable-leader-migration").as_deref() == Some("true")
        && flag(&args, "cloud-provider").as_deref() != Some("external");
    println!(
        "kube-controller-manager standin {me}: leader election {leader_elect}, leader migration {migration}"
    );
    let mut held = (false, false);
    loop {
        if leader_elect {
            match elect(&api, OWN, &me).await {
                Ok(h) if h != held.0 => {
                    println!("{} {OWN}", if h { "acquired" } else { "lost" });
                    held.0 = h;
                }
                Ok(_) => {}
                Err(e) => eprintln!("lease {OWN}: {e}"),
            }
        }
        if migration {
            match elect(&api, MIGRATION, &me).await {
                Ok(h) if h != held.1 => {
                    println!("{} {MIGRATION}", if h { "acquired" } else { "lost" });
                    held.1 = h;
                }
                Ok(_) => {}
                Err(e) => eprintln!("lease {MIGRATION}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kcm-standin: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        tokio::select! {
            r = run(args) => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kcm-standin: {e}");
                    ExitCode::FAILURE
                }
            },
            _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
            _ = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => { s.recv().await; }
                    Err(_) => std::future::pending::<()>().await,
                }
            } => ExitCode::SUCCESS,
        }
    })
}
