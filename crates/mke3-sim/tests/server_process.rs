//! The `ferry-mke3-sim` server process: what ferry's real MKE 3 client reads from it, its client
//! bundle reaching the real API server of `testenv/k8s`, its refusals, and a clean stop.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_core::{ClusterApi, Secret};
use ferry_flow_mke::export_rbac;
use ferry_flow_mke::mke3::Mke3Api;
use ferry_kube_api::testing::real::RealServer;
use ferry_kube_api::{KubeCluster, KubeOptions};
use ferry_mke3_api::{Mke3Client, Options};
use ferry_rbac::export::Export;

const PASSWORD: &str = "sim-Secret-4711";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn model_path() -> PathBuf {
    repo("crates/rbac/tests/fixtures/02-worked-example.json")
}

fn spawn(state: &Path, kubeconfig: Option<&Path>, password: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry-mke3-sim"));
    cmd.arg("--model")
        .arg(model_path())
        .arg("--config-toml")
        .arg(repo("examples/mke3-config.toml"))
        .arg("--state-dir")
        .arg(state)
        .env_remove("FERRY_MKE3_SIM_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    if let Some(p) = password {
        cmd.env("FERRY_MKE3_SIM_PASSWORD", p);
    }
    cmd.spawn().unwrap()
}

/// The URL once the process wrote it (it writes `url` last).
fn wait_url(state: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(url) = std::fs::read_to_string(state.join("url")) {
            return url.trim().to_string();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ferry-mke3-sim exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no url within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn output(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_process_serves_the_model_and_a_bundle_to_the_real_api_server_and_stops_clean() {
    let real = RealServer::from_env("the client bundle of the ferry-mke3-sim process");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = spawn(&state, Some(&real.kubeconfig), Some(PASSWORD));
    let url = wait_url(&state, &mut child);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pid: u32 = std::fs::read_to_string(state.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, child.id());

    let mut options = Options::new(url.clone());
    options.ca_cert_pem = Some(std::fs::read(state.join("ca.pem")).unwrap());
    options.retries = 0;

    // A wrong password is refused; the right one logs in.
    let wrong =
        Mke3Client::login(options.clone(), "admin", &Secret::new("not-it".to_string())).await;
    assert!(wrong.is_err(), "a wrong password logged in");
    let client = Mke3Client::login(options, "admin", &Secret::new(PASSWORD.to_string()))
        .await
        .unwrap();

    // What ferry exports is the model, and the configuration is the file.
    let model = Export::from_json(&std::fs::read_to_string(model_path()).unwrap()).unwrap();
    let exported = export_rbac(&client, 10).await.unwrap();
    assert_eq!(exported, ferry_mke3_sim::canonical(model));
    assert_eq!(
        client.config_toml().await.unwrap(),
        std::fs::read_to_string(repo("examples/mke3-config.toml")).unwrap()
    );

    // The bundle reaches the real API server as its admin.
    let bundle = client.client_bundle().await.unwrap();
    let cluster = KubeCluster::from_client_bundle(&bundle, KubeOptions::default())
        .await
        .unwrap();
    let direct = real.cluster(Duration::from_millis(200)).await;
    assert_eq!(
        cluster.server_version().await.unwrap(),
        direct.server_version().await.unwrap()
    );
    cluster.nodes().await.unwrap();

    // SIGTERM: exit 0, state files gone, and the password was never printed.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let (status, text) = output(child);
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("serving https://127.0.0.1:"), "{text}");
    assert!(!text.contains(PASSWORD), "the password was printed: {text}");
    for name in ["url", "ca.pem", "pid"] {
        assert!(!state.join(name).exists(), "{name} left after the stop");
    }
}

#[test]
fn without_the_password_variable_it_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (status, text) = output(spawn(&state, None, None));
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("FERRY_MKE3_SIM_PASSWORD is not set"),
        "{text}"
    );
    assert!(!state.exists(), "it made its state directory");
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry-mke3-sim"));
    let out = cmd
        .args(["--model", "/nonexistent/export.json", "--config-toml"])
        .arg(repo("examples/mke3-config.toml"))
        .arg("--state-dir")
        .arg(dir.path())
        .env("FERRY_MKE3_SIM_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("model /nonexistent/export.json"), "{text}");
    let bad = Command::new(env!("CARGO_BIN_EXE_ferry-mke3-sim"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown argument \"--bogus\""));
}
