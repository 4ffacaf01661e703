//! `ferry upgrade --dry-run` through the binary's real backends: OpenSSH to the SSH testbed, the
//! Kubernetes API of the in-process API server, the MKE 3 API of the in-process MKE 3 server.
//!
//! The testbed hosts play MKE 3 nodes for the read-only discovery: a `docker` stub answers
//! `docker info` with the swarm state (h1 a manager, the others workers); everything else
//! (hostname, CPUs, memory, free disk, listening ports) is the hosts' own.
//!
//! Needs `sudo scripts/testbed up 5 && eval "$(sudo scripts/testbed env)"` (or `scripts/test`);
//! without it the test FAILS and says how to start it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_core::cluster::Node;
use ferry_kube_api::testing::{KubeSeed, KubeServer, TOKEN};
use ferry_mke3_sim::{Sim, SimOptions, generated_model};

fn testbed() -> PathBuf {
    common::testbed("`ferry upgrade --dry-run` on real backends")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `cmd` on testbed host `h` as root with plain ssh, `stdin` fed to it.
fn on_host(dir: &Path, h: &str, cmd: &str, stdin: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("ssh")
        .args(["-F", s(&dir.join("ssh_config")), h, cmd])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "ssh {h} {cmd}");
}

const STUB: &str = "/usr/local/bin/docker";

/// Installs the `docker` stub on every host, and removes it again when dropped.
struct DockerStubs<'a> {
    dir: &'a Path,
    hosts: Vec<String>,
}

impl<'a> DockerStubs<'a> {
    fn install(dir: &'a Path, hosts: &[String]) -> Self {
        for (i, h) in hosts.iter().enumerate() {
            let manager = i == 0;
            // The swarm state, and what the pre-checks read: no ucp-* volumes, no kube-proxy
            // container, and on the first manager a small ucp-kv etcd without a quota flag.
            let script = format!(
                "#!/bin/sh\n\
                 # ferry test stub: the swarm state of an MKE 3 node and what the pre-checks read.\n\
                 case \"$*\" in\n\
                 \x20 'info --format {{{{json .Swarm}}}}')\n\
                 \x20   echo '{{\"LocalNodeState\":\"active\",\"ControlAvailable\":{manager}}}'; exit 0 ;;\n\
                 \x20 'volume ls --filter name=ucp- --format {{{{.Name}}}}') exit 0 ;;\n\
                 \x20 'container inspect ucp-kube-proxy')\n\
                 \x20   echo '[]'; echo 'Error: No such container: ucp-kube-proxy' >&2; exit 1 ;;\n\
                 \x20 'container inspect ucp-kv') echo '[{{\"Args\":[]}}]'; exit 0 ;;\n\
                 \x20 'exec ucp-kv etcdctl '*' endpoint status -w json')\n\
                 \x20   echo '[{{\"Endpoint\":\"https://127.0.0.1:12379\",\"Status\":{{\"header\":{{\"revision\":1}},\"dbSize\":20480}}}}]'; exit 0 ;;\n\
                 \x20 'exec ucp-kv etcdctl '*' alarm list') exit 0 ;;\n\
                 esac\n\
                 echo \"docker stub: '$*' is not modelled\" >&2\n\
                 exit 1\n"
            );
            on_host(
                dir,
                h,
                &format!("cat > {STUB} && chmod 755 {STUB}"),
                &script,
            );
        }
        Self {
            dir,
            hosts: hosts.to_vec(),
        }
    }
}

impl Drop for DockerStubs<'_> {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = std::process::Command::new("ssh")
                .args([
                    "-F",
                    s(&self.dir.join("ssh_config")),
                    "-n",
                    h,
                    "rm",
                    "-f",
                    STUB,
                ])
                .status();
        }
    }
}

#[test]
fn a_dry_run_reads_the_real_cluster_and_changes_nothing() {
    let dir = testbed();
    let names: Vec<String> = std::fs::read_to_string(dir.join("hosts.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(names.len() >= 2, "the testbed needs 2 hosts or more");
    let _stubs = DockerStubs::install(&dir, &names);

    // The MKE 3 API, on KDD, and the Kubernetes API with one Ready node per testbed host.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, n)| Node {
            name: n.clone(),
            roles: if i == 0 {
                vec!["master".into()]
            } else {
                Vec::new()
            },
            ready: true,
            unschedulable: false,
            labels: BTreeMap::new(),
            internal_ip: Some(format!("10.123.1.{}", i + 1)),
            kubelet_version: "v1.27.7-mirantis-1".into(),
            ..Node::default()
        })
        .collect();
    let kube = rt
        .block_on(KubeServer::start(&KubeSeed {
            version: "v1.27.7-mirantis-1".into(),
            nodes,
            pods: Vec::new(),
            pdbs: Vec::new(),
        }))
        .unwrap();
    // The admin client bundle MKE 3 hands out points at that Kubernetes API.
    let some_ca = ferry_mke3_sim::TestPki::generate().unwrap().ca_pem;
    let bundle = ferry_mke3_sim::client_bundle(&kube.url(), &some_ca, Some(TOKEN)).unwrap();
    let sim = Sim::start_standalone(
        generated_model(10, 1, 2, 10),
        SimOptions {
            config_toml: "[cluster_config]\n  calico_kdd = true\n".into(),
            client_bundle: Some(bundle),
            ..SimOptions::default()
        },
    )
    .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kube.yml");
    std::fs::write(&kubeconfig, kube.kubeconfig(TOKEN)).unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem()).unwrap();
    let state = tmp.path().join("state");

    // Without --kubeconfig (the admin client bundle from the MKE 3 API, as mkectl does it),
    // then with one.
    for kubeconfig_arg in [None, Some(&kubeconfig)] {
        dry_run(&DryRun {
            dir: &dir,
            names: &names,
            sim: &sim,
            kube: &kube,
            ca: &ca,
            state: &state,
            kubeconfig: kubeconfig_arg.map(PathBuf::as_path),
        });
    }
    let bundles = sim
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/clientbundle"))
        .count();
    assert_eq!(
        bundles, 1,
        "the bundle is downloaded only without --kubeconfig"
    );
}

struct DryRun<'a> {
    dir: &'a Path,
    names: &'a [String],
    sim: &'a Sim,
    kube: &'a KubeServer,
    ca: &'a Path,
    state: &'a Path,
    kubeconfig: Option<&'a Path>,
}

/// Runs `ferry upgrade --dry-run` and checks what it printed and what reached the APIs.
fn dry_run(t: &DryRun<'_>) {
    let DryRun {
        dir,
        names,
        sim,
        kube,
        ca,
        state,
        kubeconfig,
    } = *t;
    let password = SimOptions::default().password;
    let url = sim.url();
    let (hosts, ssh_config, known_hosts) = (
        dir.join("hosts.yaml"),
        dir.join("ssh_config"),
        dir.join("known_hosts"),
    );
    let mut args = vec![
        "upgrade",
        "--dry-run",
        "--hosts-path",
        s(&hosts),
        "--ssh-config",
        s(&ssh_config),
        "--known-hosts",
        s(&known_hosts),
        "--mke3-admin-username",
        "admin",
        "--external-address",
        "mke.example.com",
        "--mke3-url",
        &url,
        "--mke3-ca-cert",
        s(ca),
        "--state-dir",
        s(state),
        "--gateway-http-node-port",
        "33000",
        "--gateway-https-node-port",
        "33001",
        // The testbed hosts share this machine's 2 cores and its memory.
        "--skip-cpu-cores-check",
        "--skip-total-memory-check",
    ];
    if let Some(k) = kubeconfig {
        args.extend(["--kubeconfig", s(k)]);
    }
    let out = common::ferry()
        .env("MKE3_ADMIN_PASSWORD", &password)
        .env("HOME", state)
        .args(&args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    // What the checks say comes from the three real backends.
    assert!(
        stdout.contains("[OK]      mke3-version (cluster): MKE 3.7.15 can be upgraded"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[OK]      mke3-config (cluster)"),
        "{stdout}"
    );
    let cpus = std::thread::available_parallelism().unwrap().get();
    for (i, n) in names.iter().enumerate() {
        let host = format!("10.123.1.{}", i + 1);
        let role = if i == 0 { "manager" } else { "worker" };
        assert!(
            stdout.contains(&format!("[OK]      nodes-ready ({n}): node is Ready")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "[OK]      hosts-match ({host}): host is node {n} ({role})"
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("cpu-cores ({host}): {cpus} CPU cores")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("disk-space ({host}): ")),
            "{stdout}"
        );
    }
    // The plan: the manager first, on its own.
    assert!(
        stdout.contains("Plan (dry run: nothing was changed)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 host(s), one at a time:"), "{stdout}");
    assert!(!state.join("journal.jsonl").exists());

    // Read-only: the MKE 3 API saw a login and reads, the Kubernetes API reads only.
    let mke3 = sim.requests();
    assert!(
        mke3.iter().any(|r| r.starts_with("POST /auth/login")),
        "{mke3:?}"
    );
    assert!(
        mke3.iter()
            .all(|r| r.starts_with("GET ") || r.starts_with("POST /auth/login")),
        "{mke3:?}"
    );
    assert!(
        mke3.iter()
            .any(|r| r.starts_with("GET /api/ucp/config-toml")),
        "{mke3:?}"
    );
    let k8s = kube.requests();
    assert!(
        k8s.iter().any(|r| r.starts_with("GET /api/v1/nodes")),
        "{k8s:?}"
    );
    assert!(k8s.iter().all(|r| r.starts_with("GET ")), "{k8s:?}");
    // The password went nowhere it could be read back.
    assert!(!stdout.contains(&password) && !stderr.contains(&password));
}
