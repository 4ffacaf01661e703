//! `ucp-standin`: the process inside the testbed's `ucp-*` containers (test-only, never shipped).
//!
//! MKE 3's images cannot be had on the testbed, so the MKE 3 node profile of `scripts/testbed`
//! imports images under MKE 3's names whose entry point is this binary. What ferry can observe of
//! an MKE 3 node is what it reproduces:
//!
//! * `ucp-standin hold PORT...` holds the ports the component holds on a real node (with host
//!   networking, as the testbed's engine has no bridge), so k0s cannot start while it runs.
//!   A port already taken fails the start as Go's `net.Listen` does:
//!   `listen tcp 0.0.0.0:6443: bind: address already in use`.
//! * `ucp-standin kubelet --kubeconfig FILE --node-name NAME --role manager|worker PORT...` is
//!   `ucp-kubelet`: it holds 10250 and, while it runs, keeps its Node registered with the API
//!   server the kubeconfig names, annotated for kwok (which makes it Ready and heartbeats its
//!   lease), with the labels MKE 3 gives its nodes. When the API server cannot be reached it
//!   keeps trying, and a Node deleted under it is registered again, as a kubelet does. On SIGTERM (`docker stop`) it takes the kwok annotation
//!   away, so the Node goes NotReady as with a stopped kubelet, and exits 0.
//!
//! Both run until SIGTERM or SIGINT. PID 1 of a container gets no default signal handlers, so
//! the handlers here are what makes `docker stop` quick instead of a 10 s kill.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test program: its log is its output"
)]

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};

const KWOK: &str = "kwok.x-k8s.io/node";
const MANAGER: &str = "ucp-kubelet";

struct Kubelet {
    kubeconfig: String,
    node: String,
    manager: bool,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: ucp-standin hold PORT...\n       ucp-standin kubelet --kubeconfig FILE --node-name NAME --role manager|worker PORT..."
    );
    ExitCode::from(2)
}

fn parse_ports(args: &[String]) -> Result<Vec<u16>, String> {
    args.iter()
        .map(|a| a.parse::<u16>().map_err(|e| format!("port {a:?}: {e}")))
        .collect()
}

fn parse_kubelet(args: &[String]) -> Result<(Kubelet, Vec<u16>), String> {
    let (mut kubeconfig, mut node, mut role) = (None, None, None);
    let mut ports = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(value("--kubeconfig")?),
            "--node-name" => node = Some(value("--node-name")?),
            "--role" => role = Some(value("--role")?),
            p => ports.push(p.parse::<u16>().map_err(|e| format!("port {p:?}: {e}"))?),
        }
    }
    let manager = match role.as_deref() {
        Some("manager") => true,
        Some("worker") => false,
        other => return Err(format!("--role must be manager or worker, not {other:?}")),
    };
    Ok((
        Kubelet {
            kubeconfig: kubeconfig.ok_or("--kubeconfig is required")?,
            node: node.ok_or("--node-name is required")?,
            manager,
        },
        ports,
    ))
}

fn hold(ports: &[u16]) -> Result<Vec<TcpListener>, String> {
    ports
        .iter()
        .map(|p| {
            TcpListener::bind(("0.0.0.0", *p)).map_err(|e| {
                let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                    "address already in use".to_string()
                } else {
                    e.to_string()
                };
                format!("listen tcp 0.0.0.0:{p}: bind: {why}")
            })
        })
        .collect()
}

/// Accepts and drops connections, so a port probe sees something listening.
fn serve(listeners: Vec<TcpListener>) {
    for l in listeners {
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
    }
}

async fn nodes(kubeconfig: &str) -> Result<Api<Node>, String> {
    let k = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("{kubeconfig}: {e}"))?;
    let config =
        kube::Config::from_custom_kubeconfig(k, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| format!("{kubeconfig}: {e}"))?;
    let client = kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))?;
    Ok(Api::all(client))
}

async fn register(k: &Kubelet) -> Result<(), String> {
    let api = nodes(&k.kubeconfig).await?;
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    let mut labels = serde_json::json!({
        "kubernetes.io/hostname": k.node,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
        "com.docker.ucp.orchestrator.kubernetes": "true",
    });
    if k.manager {
        labels["node-role.kubernetes.io/master"] = "".into();
    }
    let node = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": k.node, "labels": labels, "annotations": { KWOK: "fake" } },
    });
    api.patch(
        &k.node,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&node),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("cannot register node {}: {e}", k.node))
}

async fn deregister(k: &Kubelet) -> Result<(), String> {
    let api = nodes(&k.kubeconfig).await?;
    let patch = serde_json::json!({ "metadata": { "annotations": { KWOK: null } } });
    match api
        .patch(&k.node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(format!("cannot update node {}: {e}", k.node)),
    }
}

async fn until_signal() -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("hold") => {
            serve(hold(&parse_ports(&args[1..])?)?);
            until_signal().await
        }
        Some("kubelet") => {
            let (k, ports) = parse_kubelet(&args[1..])?;
            serve(hold(&ports)?);
            // As a kubelet does, it registers its Node again whenever the Node is gone (deleted,
            // or a new API server): the registration is re-applied every 10 s, and retried every
            // 2 s while it fails. The kubeconfig is read anew each time.
            let registering = async {
                let mut registered = false;
                loop {
                    match register(&k).await {
                        Ok(()) => {
                            if !registered {
                                println!("node {} registered", k.node);
                            }
                            registered = true;
                            tokio::time::sleep(Duration::from_secs(10)).await;
                        }
                        Err(e) => {
                            eprintln!("{e} (retrying in 2s)");
                            registered = false;
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                }
            };
            tokio::select! {
                r = until_signal() => r?,
                () = registering => {}
            }
            match tokio::time::timeout(Duration::from_secs(5), deregister(&k)).await {
                Ok(Ok(())) => println!("node {} released", k.node),
                Ok(Err(e)) => eprintln!("{e}"),
                Err(_) => eprintln!(
                    "cannot release node {}: the API server did not answer in 5s",
                    k.node
                ),
            }
            Ok(())
        }
        _ => Err(String::new()),
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
            eprintln!("cannot start an async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_empty() => usage(),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
