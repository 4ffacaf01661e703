#![allow(clippy::print_stdout, clippy::print_stderr)] // a command: its output is its interface
//! `ferry-mke3-sim`: the MKE 3 API simulator as a server process, for test runs that need one
//! outside the test's own process (the `ferry` binary against a testbed cluster).
//!
//! ```text
//! FERRY_MKE3_SIM_PASSWORD=... ferry-mke3-sim --model EXPORT.json --config-toml FILE \
//!     --state-dir DIR [--listen 127.0.0.1:0] [--kubeconfig FILE] [--username admin] [--mke-version 3.7.15]
//! ```
//!
//! It serves the access model of `--model` (an `mke3-rbac-export.json`) and the configuration of
//! `--config-toml` over HTTPS with a CA of its own, and, with `--kubeconfig`, an admin client
//! bundle whose `kube.yml` points at that kubeconfig's API server (its CA and token), so that a
//! client that downloads the bundle reaches the real cluster. Once it serves, it writes
//! `url`, `ca.pem` and `pid` into `--state-dir` (each atomically; `url` last, so a reader that
//! sees it sees the others) and runs until SIGTERM or SIGINT, then removes them.
//!
//! The admin password comes from `FERRY_MKE3_SIM_PASSWORD` only (never an argument, which `ps`
//! would show) and is never printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry_mke3_sim::{Sim, SimOptions, client_bundle};
use ferry_rbac::export::Export;

const PASSWORD_ENV: &str = "FERRY_MKE3_SIM_PASSWORD";

#[derive(Debug, Default)]
struct Args {
    model: Option<PathBuf>,
    config_toml: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    listen: Option<String>,
    kubeconfig: Option<PathBuf>,
    username: Option<String>,
    mke_version: Option<String>,
}

const USAGE: &str = "usage: ferry-mke3-sim --model EXPORT.json --config-toml FILE --state-dir DIR \
[--listen ADDR:PORT] [--kubeconfig FILE] [--username NAME] [--mke-version V]\n\
the admin password is read from FERRY_MKE3_SIM_PASSWORD";

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(flag) = argv.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let mut value = || argv.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = Some(value()?.into()),
            "--config-toml" => a.config_toml = Some(value()?.into()),
            "--state-dir" => a.state_dir = Some(value()?.into()),
            "--listen" => a.listen = Some(value()?),
            "--kubeconfig" => a.kubeconfig = Some(value()?.into()),
            "--username" => a.username = Some(value()?),
            "--mke-version" => a.mke_version = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// The API server URL, its CA (PEM) and the bearer token of the current context of a
/// kubeconfig, for the client bundle.
fn kube_target(path: &Path) -> Result<(String, String, Option<String>), String> {
    use base64::Engine as _;
    let fail = |m: String| format!("kubeconfig {}: {m}", path.display());
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read(path, "kubeconfig")?).map_err(|e| fail(e.to_string()))?;
    let current = doc
        .get("current-context")
        .and_then(|v| v.as_str())
        .ok_or_else(|| fail("no current-context".into()))?;
    let named = |section: &str, name: &str, inner: &str| {
        doc.get(section)
            .and_then(|v| v.as_sequence())
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i.get("name").and_then(|n| n.as_str()) == Some(name))
            })
            .and_then(|i| i.get(inner))
            .cloned()
            .ok_or_else(|| fail(format!("no {section} entry {name:?}")))
    };
    let context = named("contexts", current, "context")?;
    let field =
        |v: &serde_yaml::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let cluster_name =
        field(&context, "cluster").ok_or_else(|| fail("context without cluster".into()))?;
    let cluster = named("clusters", &cluster_name, "cluster")?;
    let server = field(&cluster, "server").ok_or_else(|| fail("cluster without server".into()))?;
    let ca = if let Some(data) = field(&cluster, "certificate-authority-data") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| fail(format!("certificate-authority-data: {e}")))?;
        String::from_utf8(bytes)
            .map_err(|_| fail("certificate-authority-data is not PEM".into()))?
    } else if let Some(file) = field(&cluster, "certificate-authority") {
        let file = path.parent().unwrap_or(Path::new(".")).join(file);
        read(&file, "certificate authority")?
    } else {
        return Err(fail("the cluster has no certificate authority".into()));
    };
    let token = match field(&context, "user") {
        Some(user) => field(&named("users", &user, "user")?, "token"),
        None => None,
    };
    Ok((server, ca, token))
}

/// Writes `body` to `dir/name` through a temporary file and a rename.
fn put(dir: &Path, name: &str, body: &str) -> Result<(), String> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
        .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
}

async fn run(args: Args) -> Result<(), String> {
    let need = |v: Option<PathBuf>, flag: &str| v.ok_or(format!("{flag} is required\n{USAGE}"));
    let model_path = need(args.model, "--model")?;
    let config_path = need(args.config_toml, "--config-toml")?;
    let state_dir = need(args.state_dir, "--state-dir")?;
    let password = std::env::var(PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or(format!(
            "{PASSWORD_ENV} is not set: it holds the admin password"
        ))?;
    let model = Export::from_json(&read(&model_path, "model")?)
        .map_err(|e| format!("model {}: {e}", model_path.display()))?;
    let config_toml = read(&config_path, "configuration")?;
    let bundle = match &args.kubeconfig {
        Some(k) => {
            let (server, ca, token) = kube_target(k)?;
            Some(client_bundle(&server, &ca, token.as_deref()).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let defaults = SimOptions::default();
    let options = SimOptions {
        username: args.username.unwrap_or(defaults.username),
        password,
        version: args.mke_version.unwrap_or(defaults.version),
        config_toml,
        client_bundle: bundle,
    };
    let listen = args.listen.unwrap_or_else(|| "127.0.0.1:0".into());
    let sim = Sim::start_on(&listen, model, options)
        .await
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| format!("cannot make {}: {e}", state_dir.display()))?;
    put(&state_dir, "ca.pem", sim.ca_pem())?;
    put(&state_dir, "pid", &format!("{}\n", std::process::id()))?;
    put(&state_dir, "url", &format!("{}\n", sim.url()))?;
    eprintln!(
        "ferry-mke3-sim: serving {} (state in {})",
        sim.url(),
        state_dir.display()
    );

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    drop(sim);
    for name in ["url", "ca.pem", "pid"] {
        let _ = std::fs::remove_file(state_dir.join(name));
    }
    eprintln!("ferry-mke3-sim: stopped");
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ferry-mke3-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry-mke3-sim: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-mke3-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
