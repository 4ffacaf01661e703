//! `rke-standin`: `rke up` for the testbed's RKE clusters (test-only, never shipped).
//!
//! `rke-standin up --config FILE` does to the testbed hosts and the downstream API server what
//! `rke up` does to an RKE cluster for the keys a cloud provider migration changes, with real
//! parts:
//!
//! * it reaches every node of `FILE` over SSH as `rke up` does (`address`, `port`, `user`,
//!   `ssh_key_path`, the top-level `ssh_key_path` else `~/.ssh/id_rsa`; host keys are not checked,
//!   as RKE does not);
//! * on each `controlplane` node, one at a time, it runs the kube-controller-manager in the
//!   host's real Docker engine, in a container named `kube-controller-manager` from the image
//!   `rancher/hyperkube:<version>` with `--network host`, its command `kube-controller-manager`
//!   and RKE's flags: `--cloud-provider=aws` for `cloud_provider.name: aws`,
//!   `--cloud-provider=external` for `external-aws`, `--leader-elect=true`, the kubeconfig RKE
//!   writes to `/etc/kubernetes/ssl/kubecfg-kube-controller-manager.yaml`, and each
//!   `services.kube-controller.extra_args` `k: v` as `--k=v`. A container whose image and
//!   arguments are already those is left alone; another is replaced. The image is "pulled"
//!   when the host lacks it: nothing can be pulled here, so it is imported from a root file
//!   system holding `kcm-standin` (this program's sibling, which holds the Leases as a
//!   kube-controller-manager does) and its libraries;
//! * each node's kubelet: its arguments (`--cloud-provider`, `--hostname-override`) kept in
//!   `/etc/kubernetes/ferry-rke-kubelet-args` on the host, "restarted" when they change; its
//!   Node's `kubeletVersion` becomes the version of `kubernetes_version`
//!   (`v1.26.15-rancher1-1` → `v1.26.15`);
//! * a node whose components it changed is uncordoned at the end of its turn, as `rke up`
//!   does after upgrading a node;
//! * it prints RKE's log lines (`INFO[0003] [controlplane] …`), ending with `Finished building
//!   Kubernetes cluster successfully`, and exits 0; on a failure it prints `FATA[…] …` and exits
//!   1.
//!
//! The API server: `kube_config_<FILE's name>` beside `FILE`, which `rke up` writes and which
//! the test bed provides here (its server reachable from the hosts). Faults on purpose:
//! `rke-standin.faults` beside `FILE`, one per line: `fail-after NODE` (exit 1 once NODE is
//! done), `fail-once-after NODE` (the same, and the faults file is removed, so the next run
//! succeeds), `hang` (never finish: sleep until killed), `hang-once` (the same, the file
//! removed). The file is read after the SSH tunnels are set up, so a fault written as the run
//! starts still strikes it.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test program: its log is its output"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_yaml::Value;

const KCM: &str = "kube-controller-manager";
const KCM_KUBECONFIG: &str = "/etc/kubernetes/ssl/kubecfg-kube-controller-manager.yaml";
/// The kubelet's arguments: a kubelet container's, kept as a file (the API server's Nodes are
/// kept Ready by kwok, not by a kubelet).
const KUBELET_ARGS: &str = "/etc/kubernetes/ferry-rke-kubelet-args";

struct Host {
    address: String,
    name: String,
    port: u16,
    user: String,
    key: String,
    control_plane: bool,
}

struct Log(Instant);

impl Log {
    fn info(&self, m: &str) {
        println!("INFO[{:04}] {m}", self.0.elapsed().as_secs());
        let _ = std::io::stdout().flush();
    }
    fn fatal(&self, m: &str) -> ExitCode {
        println!("FATA[{:04}] {m}", self.0.elapsed().as_secs());
        ExitCode::FAILURE
    }
}

fn expand(p: &str) -> String {
    match p.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", std::env::var("HOME").unwrap_or_default()),
        None => p.to_string(),
    }
}

fn hosts(cfg: &Value) -> Result<Vec<Host>, String> {
    let default_key = cfg["ssh_key_path"]
        .as_str()
        .unwrap_or("~/.ssh/id_rsa")
        .to_string();
    let nodes = cfg["nodes"]
        .as_sequence()
        .ok_or("cluster file has no nodes")?;
    nodes
        .iter()
        .map(|n| {
            let address = n["address"]
                .as_str()
                .ok_or("a node has no address")?
                .to_string();
            Ok(Host {
                name: n["hostname_override"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| address.clone()),
                port: n["port"]
                    .as_u64()
                    .or_else(|| n["port"].as_str().and_then(|p| p.parse().ok()))
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(22),
                user: n["user"].as_str().unwrap_or("root").to_string(),
                key: expand(n["ssh_key_path"].as_str().unwrap_or(&default_key)),
                control_plane: n["role"]
                    .as_sequence()
                    .is_some_and(|r| r.iter().any(|r| r.as_str() == Some("controlplane"))),
                address,
            })
        })
        .collect()
}

/// Runs `cmd` on `h` with `stdin`; (success, stdout, stderr).
fn ssh(h: &Host, cmd: &str, stdin: Option<&mut dyn std::io::Read>) -> (bool, String, String) {
    let mut c = Command::new("ssh");
    c.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        "-i",
        &h.key,
        "-p",
        &h.port.to_string(),
        &format!("{}@{}", h.user, h.address),
        cmd,
    ])
    .stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let Ok(mut child) = c.spawn() else {
        return (false, String::new(), "cannot run ssh".into());
    };
    if let Some(r) = stdin {
        if let Some(mut w) = child.stdin.take() {
            let _ = std::io::copy(r, &mut w);
        }
    }
    match child.wait_with_output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), e.to_string()),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A root file system with `kcm-standin` and its libraries, as a tar.
fn image_tar() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let kcm = me.with_file_name("kcm-standin");
    if !kcm.is_file() {
        return Err(format!(
            "{} is missing (cargo build -p ferry-k0s-double --bins)",
            kcm.display()
        ));
    }
    let dir = std::env::temp_dir().join(format!("rke-standin-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "tmp", "etc/kubernetes"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(&kcm, dir.join("bin/kcm-standin")).map_err(|e| e.to_string())?;
    let _ = Command::new("strip")
        .arg(dir.join("bin/kcm-standin"))
        .status();
    let ldd = Command::new("ldd")
        .arg(&kcm)
        .output()
        .map_err(|e| e.to_string())?;
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let to = dir.join(lib.trim_start_matches('/'));
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        std::fs::copy(lib, &to).map_err(|e| format!("{lib}: {e}"))?;
    }
    let tar = dir.with_extension("tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(|e| e.to_string())?
        .success();
    let _ = std::fs::remove_dir_all(&dir);
    if !ok {
        return Err("tar of the image's root failed".into());
    }
    Ok(tar)
}

fn kcm_args(cfg: &Value) -> Vec<String> {
    let mut a = vec![KCM.to_string()];
    match cfg["cloud_provider"]["name"].as_str() {
        Some("aws") => a.push("--cloud-provider=aws".into()),
        Some("external-aws" | "external") => a.push("--cloud-provider=external".into()),
        _ => {}
    }
    a.push("--leader-elect=true".into());
    a.push(format!("--kubeconfig={KCM_KUBECONFIG}"));
    if let Some(m) = cfg["services"]["kube-controller"]["extra_args"].as_mapping() {
        for (k, v) in m {
            let k = k.as_str().unwrap_or_default();
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            a.push(format!("--{k}={v}"));
        }
    }
    a
}

/// The container's image and arguments, when it runs.
fn running_kcm(h: &Host) -> Option<(String, Vec<String>)> {
    let (ok, out, _) = ssh(h, &format!("docker inspect --type container {KCM}"), None);
    if !ok {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let c = &v[0];
    if c["State"]["Running"].as_bool() != Some(true) {
        return None;
    }
    let args = c["Args"]
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    Some((c["Config"]["Image"].as_str()?.to_string(), args))
}

async fn up(config: &Path, log: &Log) -> Result<(), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let cfg: Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    let dir = config.parent().unwrap_or(Path::new("."));
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kubeconfig_path = dir.join(format!("kube_config_{name}"));
    let kubeconfig_text = std::fs::read_to_string(&kubeconfig_path)
        .map_err(|e| format!("{}: {e}", kubeconfig_path.display()))?;
    let version = cfg["kubernetes_version"]
        .as_str()
        .unwrap_or("v1.26.15-rancher1-1")
        .to_string();
    // rancher/hyperkube:v1.26.15-rancher1 for v1.26.15-rancher1-1
    let image = format!(
        "rancher/hyperkube:{}",
        version.rsplit_once('-').map(|(a, _)| a).unwrap_or(&version)
    );
    let kubelet = version.split('-').next().unwrap_or(&version).to_string();
    log.info("Running RKE version: v1.5.10 (ferry's rke-standin)");
    log.info(&format!(
        "Initiating Kubernetes cluster from {}",
        config.display()
    ));
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&kubeconfig_text)
        .map_err(|e| format!("{}: {e}", kubeconfig_path.display()))?;
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let nodes: Api<Node> = Api::all(client);
    let mut hosts = hosts(&cfg)?;
    for h in &hosts {
        log.info(&format!("[dialer] Setup tunnel for host [{}]", h.address));
        let (ok, _, err) = ssh(h, "docker version --format '{{.Server.Version}}'", None);
        if !ok {
            return Err(format!(
                "[dialer] Failed to set up SSH tunneling for host [{}]: {}",
                h.address,
                err.trim()
            ));
        }
    }
    // read after the tunnels, as late as a fault could strike
    let faults: Vec<String> = std::fs::read_to_string(dir.join("rke-standin.faults"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    if faults.iter().any(|f| f == "hang-once") {
        let _ = std::fs::remove_file(dir.join("rke-standin.faults"));
    }
    if faults.iter().any(|f| f == "hang" || f == "hang-once") {
        log.info("[controlplane] Processing controlplane hosts for upgrade 1 at a time");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
    // control plane first, one at a time, then the workers
    hosts.sort_by_key(|h| !h.control_plane);
    let args = kcm_args(&cfg);
    let mut tar: Option<PathBuf> = None;
    log.info("[controlplane] Processing controlplane hosts for upgrade 1 at a time");
    for h in &hosts {
        let mut changed = false;
        if h.control_plane {
            let (have, _, _) = ssh(h, &format!("docker image inspect {image} >/dev/null"), None);
            if !have {
                log.info(&format!("Pulling image [{image}] on host [{}]", h.address));
                if tar.is_none() {
                    tar = Some(image_tar()?);
                }
                let path = tar.as_ref().ok_or("no image")?;
                let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
                let (ok, _, err) = ssh(
                    h,
                    &format!(
                        "docker import -c 'ENTRYPOINT [\"/bin/kcm-standin\"]' - {image} >/dev/null"
                    ),
                    Some(&mut f),
                );
                if !ok {
                    return Err(format!("pull {image} on [{}]: {}", h.address, err.trim()));
                }
            }
            let mut kc = std::io::Cursor::new(kubeconfig_text.clone().into_bytes());
            let (ok, _, err) = ssh(
                h,
                &format!("mkdir -p /etc/kubernetes/ssl && cat > {KCM_KUBECONFIG}"),
                Some(&mut kc),
            );
            if !ok {
                return Err(format!(
                    "[{}]: write {KCM_KUBECONFIG}: {}",
                    h.address,
                    err.trim()
                ));
            }
            if running_kcm(h).as_ref() == Some(&(image.clone(), args.clone())) {
                log.info(&format!(
                    "[controlplane] Container [{KCM}] on host [{}] is up to date",
                    h.address
                ));
            } else {
                changed = true;
                let quoted: Vec<String> = args.iter().map(|a| quote(a)).collect();
                let cmd = format!(
                    "docker rm -f {KCM} >/dev/null 2>&1; docker run -d --name {KCM} --network host --restart always -v /etc/kubernetes:/etc/kubernetes:ro {image} {}",
                    quoted.join(" ")
                );
                let (ok, _, err) = ssh(h, &cmd, None);
                if !ok {
                    return Err(format!(
                        "[controlplane] Failed to start [{KCM}] container on host [{}]: {}",
                        h.address,
                        err.trim()
                    ));
                }
                let mut up = false;
                for _ in 0..100 {
                    if running_kcm(h).is_some() {
                        up = true;
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                if !up {
                    return Err(format!(
                        "[controlplane] Container [{KCM}] on host [{}] is not running",
                        h.address
                    ));
                }
                log.info(&format!(
                    "[controlplane] Successfully started [{KCM}] container on host [{}]",
                    h.address
                ));
            }
        }
        // the kubelet: its arguments (what its container would run with) in a file on the host
        let want = format!(
            "--cloud-provider={} --hostname-override={}\n",
            match cfg["cloud_provider"]["name"].as_str() {
                Some("aws") => "aws",
                Some("external-aws" | "external") => "external",
                _ => "",
            },
            h.name
        );
        let (_, have, _) = ssh(h, &format!("cat {KUBELET_ARGS} 2>/dev/null"), None);
        if have != want {
            let mut w = std::io::Cursor::new(want.clone().into_bytes());
            let (ok, _, err) = ssh(
                h,
                &format!("mkdir -p /etc/kubernetes && cat > {KUBELET_ARGS}"),
                Some(&mut w),
            );
            if !ok {
                return Err(format!(
                    "[worker] kubelet on [{}]: {}",
                    h.address,
                    err.trim()
                ));
            }
            changed = true;
            log.info(&format!(
                "[worker] Successfully restarted container [kubelet] on host [{}]",
                h.address
            ));
        }
        match nodes.get_opt(&h.name).await {
            Ok(Some(n)) => {
                let have = n
                    .status
                    .as_ref()
                    .and_then(|s| s.node_info.as_ref())
                    .map(|i| i.kubelet_version.clone())
                    .unwrap_or_default();
                if have != kubelet {
                    changed = true;
                    nodes
                        .patch_status(
                            &h.name,
                            &PatchParams::default(),
                            &Patch::Merge(
                                serde_json::json!({"status": {"nodeInfo": {"kubeletVersion": kubelet}}}),
                            ),
                        )
                        .await
                        .map_err(|e| format!("[worker] kubelet of [{}]: {e}", h.name))?;
                    log.info(&format!(
                        "[worker] Successfully upgraded kubelet on host [{}] to {kubelet}",
                        h.address
                    ));
                }
                let cordoned = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
                if changed && cordoned {
                    nodes
                        .patch(
                            &h.name,
                            &PatchParams::default(),
                            &Patch::Merge(serde_json::json!({"spec": {"unschedulable": false}})),
                        )
                        .await
                        .map_err(|e| format!("uncordon [{}]: {e}", h.name))?;
                    log.info(&format!("[upgrade] Uncordoned node [{}]", h.name));
                }
            }
            Ok(None) => {
                return Err(format!(
                    "[worker] node [{}] has not registered with the API server",
                    h.name
                ));
            }
            Err(e) => return Err(format!("[worker] node [{}]: {e}", h.name)),
        }
        let once = faults
            .iter()
            .any(|f| f == &format!("fail-once-after {}", h.name));
        if once {
            let _ = std::fs::remove_file(dir.join("rke-standin.faults"));
        }
        if once
            || faults
                .iter()
                .any(|f| f == &format!("fail-after {}", h.name))
        {
            return Err(format!(
                "[workerPlane] Failed to upgrade hosts: {} with error [timeout waiting for node to become ready]",
                hosts
                    .iter()
                    .skip_while(|x| x.name != h.name)
                    .nth(1)
                    .map(|x| x.address.clone())
                    .unwrap_or_else(|| h.address.clone())
            ));
        }
    }
    if let Some(t) = tar {
        let _ = std::fs::remove_file(t);
    }
    log.info("[controlplane] Successfully upgraded Controller Plane..");
    log.info("Finished building Kubernetes cluster successfully");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let log = Log(Instant::now());
    let config = match args.as_slice() {
        [up, flag, file] if up == "up" && flag == "--config" => PathBuf::from(file),
        [up] if up == "up" => PathBuf::from("cluster.yml"),
        _ => {
            eprintln!("usage: rke-standin up [--config FILE]");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return log.fatal(&e.to_string()),
    };
    match rt.block_on(up(&config, &log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => log.fatal(&e),
    }
}
