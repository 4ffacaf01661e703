//! `ferry upgrade` and `ferry upgrade --resume`: the MKE 3 → MKE 4k upgrade, with automatic
//! rollback on failure or Ctrl-C. Also the machinery `ferry rollback` shares: where the password
//! comes from, how the backends are made, how the run's log reaches the terminal, and how an
//! outcome maps to an exit code.
//!
//! Against a real cluster the binary runs the read-only part only: `ferry upgrade --dry-run`
//! connects over SSH, reads MKE 3 and Kubernetes, runs the checks and prints the plan
//! ([`RealBackends`]). The steps that change a cluster, `--resume` and `ferry rollback` are
//! exercised against the in-memory fakes of `ferry-core` only (tests drive
//! [`run_upgrade_with`] through [`crate::run_with`]), and the binary refuses them until they
//! have run against a real MKE 3 cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::Secret;
use ferry_core::checks::CheckOptions;
use ferry_core::engine::{Interrupts, Level, LogLine, LogSink, MaxUnavailable, NoHooks};
use ferry_core::hosts::HostSpec;
use ferry_core::mke::{self, Backends, Finish, Inputs, MkeError, Session};

use crate::{CliError, Format, Output, exit, fsio};

/// The environment variable holding the MKE 3 admin password.
pub const PASSWORD_ENV: &str = "MKE3_ADMIN_PASSWORD";

/// What the binary says when asked to change a real cluster.
pub const NO_REAL_CHANGES: &str = "ferry does not change a real cluster yet: against a real cluster only `ferry upgrade --dry-run` runs (read-only: connect, gather facts, checks, plan); the upgrade steps, --resume and rollback are exercised against in-memory fakes by the test suite. Nothing was contacted and nothing was changed";

/// How to reach the MKE 3 cluster: its hosts over SSH (the hosts file says which), its
/// Kubernetes API and its MKE 3 API.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    #[command(flatten)]
    pub ssh: super::hosts::SshArgs,
    /// The Kubernetes API of the MKE 3 cluster: a client bundle directory (its kube.yml is used)
    /// or a kubeconfig file. Default: the admin's client bundle, downloaded from the MKE 3 API
    /// (GET /api/clientbundle) and kept in memory.
    #[arg(long, value_name = "FILE|DIR")]
    pub kubeconfig: Option<PathBuf>,
    /// The MKE 3 API (default: https://<external address>).
    #[arg(long, value_name = "URL")]
    pub mke3_url: Option<String>,
    /// PEM of the CA that signed the MKE 3 API certificate (the client bundle's ca.pem).
    #[arg(long, value_name = "PEM")]
    pub mke3_ca_cert: Option<PathBuf>,
    /// Do not verify the MKE 3 API certificate (anyone on the path can read the password).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
}

/// What a backend factory is given.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    pub hosts: Vec<HostSpec>,
    pub username: String,
    pub password: Secret<String>,
    pub external_address: String,
    pub remote: RemoteArgs,
    /// Only reads will be made (`--dry-run`).
    pub read_only: bool,
}

/// Makes the backends of a run. Called inside the run's async runtime: the Kubernetes and
/// HTTP clients keep tasks on it.
#[async_trait::async_trait]
pub trait BackendFactory: Send + Sync + std::fmt::Debug {
    /// Whether this factory serves a run that only reads (`true`) or also changes things;
    /// asked before the password, so that nobody types it for a run that cannot happen.
    fn serves(&self, read_only: bool) -> Result<(), String> {
        let _ = read_only;
        Ok(())
    }
    /// The backends, or why they cannot be made (a message for the operator).
    async fn backends(&self, request: BackendRequest) -> Result<Backends, String>;
}

/// The factory of the binary: OpenSSH for the hosts, the Kubernetes API from the client bundle,
/// the MKE 3 API logged in with the admin credentials; read-only runs only (see
/// [`NO_REAL_CHANGES`]).
#[derive(Debug, Default)]
pub struct RealBackends;

#[async_trait::async_trait]
impl BackendFactory for RealBackends {
    fn serves(&self, read_only: bool) -> Result<(), String> {
        if read_only {
            Ok(())
        } else {
            Err(NO_REAL_CHANGES.to_string())
        }
    }

    async fn backends(&self, r: BackendRequest) -> Result<Backends, String> {
        self.serves(r.read_only)?;
        let mut options = ferry_mke3_api::Options::new(
            r.remote
                .mke3_url
                .clone()
                .unwrap_or_else(|| format!("https://{}", r.external_address)),
        );
        if let Some(ca) = &r.remote.mke3_ca_cert {
            options.ca_cert_pem = Some(
                std::fs::read(ca)
                    .map_err(|e| format!("cannot read --mke3-ca-cert {}: {e}", ca.display()))?,
            );
        }
        options.insecure_skip_tls_verify = r.remote.insecure_skip_tls_verify;
        let url = options.url.clone();
        // The command warned about hosts without host key checking.
        let (ssh, _) = r.remote.ssh.options(&r.hosts);
        let connector = ferry_ssh_exec::SshConnector::new(ssh)
            .map_err(|e| format!("cannot set up SSH: {e}"))?;
        let mke3 = ferry_mke3_api::Mke3Client::login(options, &r.username, &r.password)
            .await
            .map_err(|e| format!("cannot log in to MKE 3 at {url}: {e}"))?;
        let kube_options = ferry_kube_api::KubeOptions::default();
        let cluster = match &r.remote.kubeconfig {
            Some(k) => {
                let path = ferry_kube_api::kubeconfig_path(k).map_err(|e| e.to_string())?;
                ferry_kube_api::KubeCluster::from_kubeconfig(&path, kube_options)
                    .await
                    .map_err(|e| format!("cannot use the kubeconfig {}: {e}", path.display()))?
            }
            // As mkectl does: the admin's client bundle, which never touches the disk.
            None => {
                let zip = mke3.client_bundle().await.map_err(|e| {
                    format!("cannot download the admin client bundle from MKE 3 at {url} (or give one with --kubeconfig): {e}")
                })?;
                ferry_kube_api::KubeCluster::from_client_bundle(&zip, kube_options)
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        Ok(Backends {
            connector: Arc::new(connector),
            cluster: Arc::new(cluster),
            mke3: Arc::new(mke3),
        })
    }
}

type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;
type ReadSecretFn = dyn Fn() -> std::io::Result<String> + Send + Sync;

/// What the upgrade commands take from the process; tests replace every part.
pub struct Runtime {
    pub backends: Arc<dyn BackendFactory>,
    pub interrupts: Interrupts,
    /// Count SIGINT and SIGTERM into `interrupts`.
    pub listen_to_signals: bool,
    /// Environment lookup.
    pub env: Box<EnvFn>,
    /// Reads a secret from the terminal without echo (the prompt itself goes through
    /// [`Output::info`]).
    pub read_secret: Box<ReadSecretFn>,
    /// Hooks of the engine (tests inject faults and crashes here).
    pub hooks: Arc<dyn ferry_core::engine::Hooks>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The process's own environment, terminal and signals, with [`RealBackends`].
    pub fn process() -> Self {
        Self {
            backends: Arc::new(RealBackends),
            interrupts: Interrupts::new(),
            listen_to_signals: true,
            env: Box::new(|k| std::env::var(k).ok()),
            read_secret: Box::new(read_secret_from_tty),
            hooks: Arc::new(NoHooks),
        }
    }
}

/// Reads a line from `/dev/tty` with echo off (`stty -echo`).
fn read_secret_from_tty() -> std::io::Result<String> {
    use std::io::BufRead;
    let tty = std::fs::File::open("/dev/tty")?;
    let stty = |arg: &str| {
        std::fs::File::open("/dev/tty").and_then(|t| {
            std::process::Command::new("stty")
                .arg(arg)
                .stdin(t)
                .status()
                .map(|_| ())
        })
    };
    let _ = stty("-echo");
    let mut line = String::new();
    let r = std::io::BufReader::new(tty).read_line(&mut line);
    let _ = stty("echo");
    r?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Log levels of `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
}

/// Formats of `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// `INFO[0012] message`, as mkectl and k0sctl print.
    #[default]
    Text,
    /// One JSON object per line: `level`, `elapsedSeconds`, `message`.
    Json,
}

/// How the run's log is shown.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LogArgs {
    /// Log level.
    #[arg(short = 'l', long, value_enum, default_value_t)]
    pub log_level: LogLevel,
    /// Log format.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

fn parse_max_unavailable(s: &str) -> Result<MaxUnavailable, String> {
    s.parse()
        .map_err(|e: ferry_core::engine::batching::MaxUnavailableError| e.reason)
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The MKE 3 admin password is read from MKE3_ADMIN_PASSWORD, or asked for on the terminal. \
--mke3-admin-password works too but shows the password to every user of this machine.

Against a real cluster this build runs --dry-run only (read-only: it connects to the hosts, \
reads the MKE 3 API and the Kubernetes API (through the admin client bundle, or --kubeconfig), \
runs the checks and prints the plan); it refuses to change a real cluster, to --resume or to \
roll one back.

Exit codes: 0 upgraded (or dry run with passing checks), 2 usage, 3 checks failed and nothing \
changed, 4 failed and rolled back cleanly, 5 failed and the rollback is incomplete (see \
`ferry rollback`), 130 interrupted twice (the journal is kept), 1 anything else (nothing changed).")]
pub struct UpgradeArgs {
    /// The hosts file (mkectl's hosts.yaml): every node, reachable over SSH.
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    pub hosts_path: Option<PathBuf>,
    /// MKE 3 admin user name.
    #[arg(long, value_name = "USER", required_unless_present = "resume")]
    pub mke3_admin_username: Option<String>,
    /// MKE 3 admin password (visible to other users of the machine: prefer
    /// MKE3_ADMIN_PASSWORD or the prompt).
    #[arg(long, value_name = "PASSWORD")]
    pub mke3_admin_password: Option<String>,
    /// DNS name of the load balancer in front of the managers (host or host:port).
    #[arg(long, value_name = "ADDRESS", required_unless_present = "resume")]
    pub external_address: Option<String>,
    /// Write the new mke4.yaml here (atomically) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// Run the checks and print every step per host; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Workers upgraded at once: a count (2) or a percentage of the workers (10%); at least 1.
    #[arg(long, value_name = "N|N%", default_value = "10%", value_parser = parse_max_unavailable)]
    pub max_unavailable: MaxUnavailable,
    /// Registry of the MKE 4k images (offline upgrade).
    #[arg(long, value_name = "REGISTRY")]
    pub image_registry: Option<String>,
    /// Registry of the MKE 4k charts (`oci://...`).
    #[arg(long, value_name = "OCI_REGISTRY")]
    pub chart_registry: Option<String>,
    /// The cluster has no internet access (needs both registries).
    #[arg(long)]
    pub mke3_airgapped: bool,
    /// Do not prompt when settings cannot be migrated.
    #[arg(long)]
    pub force: bool,
    /// Where the journal, the lock and the exports live (default:
    /// $XDG_STATE_HOME/ferry/<external address>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Continue the run recorded in the state directory after a crash or a second Ctrl-C.
    #[arg(long, conflicts_with_all = ["dry_run", "hosts_path"])]
    pub resume: bool,
    /// Go on when a host has fewer CPU cores than recommended.
    #[arg(long)]
    pub skip_cpu_cores_check: bool,
    /// Go on when a host has less memory than recommended.
    #[arg(long)]
    pub skip_total_memory_check: bool,
    /// Go on when a host has less free disk than recommended.
    #[arg(long)]
    pub skip_disk_space_check: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Format of the result (the dry-run plan, the checks, the summary).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// Failures of the upgrade commands that are not input errors.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{0}")]
    Backends(String),
    #[error(transparent)]
    Run(#[from] MkeError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// The password: the flag (with a warning), the environment, or the terminal.
pub(crate) fn password(
    rt: &Runtime,
    flag: Option<&str>,
    out: &mut Output<'_>,
) -> Result<Secret<String>, CliError> {
    if let Some(p) = flag {
        out.warn("--mke3-admin-password is visible to other users of this machine (process list, shell history); prefer MKE3_ADMIN_PASSWORD or the prompt");
        return Ok(Secret::new(p.to_string()));
    }
    if let Some(p) = (rt.env)(PASSWORD_ENV).filter(|p| !p.is_empty()) {
        return Ok(Secret::new(p));
    }
    out.info("MKE 3 admin password: ");
    let p = (rt.read_secret)().map_err(|e| {
        CliError::Usage(format!(
            "no MKE 3 admin password: set {PASSWORD_ENV} or run on a terminal ({e})"
        ))
    })?;
    if p.is_empty() {
        return Err(CliError::Usage("the MKE 3 admin password is empty".into()));
    }
    Ok(Secret::new(p))
}

/// The state directory: the flag, or the default for the external address.
pub(crate) fn state_dir(
    rt: &Runtime,
    flag: Option<&Path>,
    external_address: Option<&str>,
) -> Result<PathBuf, CliError> {
    if let Some(d) = flag {
        return Ok(d.to_path_buf());
    }
    let Some(addr) = external_address else {
        return Err(CliError::Usage(
            "--state-dir is needed to find the run's journal (or --external-address for the default state directory)".into(),
        ));
    };
    let xdg = (rt.env)("XDG_STATE_HOME").map(PathBuf::from);
    let home = (rt.env)("HOME").map(PathBuf::from);
    mke::default_state_dir(addr, xdg.as_deref(), home.as_deref()).ok_or_else(|| {
        CliError::Usage(
            "cannot find a state directory: set --state-dir, XDG_STATE_HOME or HOME".into(),
        )
    })
}

/// Sends the run's log lines to a channel the command drains into [`Output`].
#[derive(Debug)]
struct ChannelLog {
    tx: tokio::sync::mpsc::UnboundedSender<LogLine>,
    min: Level,
}

impl LogSink for ChannelLog {
    fn log(&self, line: LogLine) {
        if line.level >= self.min {
            let _ = self.tx.send(line);
        }
    }
}

/// Runs a flow on a new runtime: makes the backends of `request` there (the Kubernetes and
/// HTTP clients keep tasks on the runtime that made them), then runs `flow` on its session,
/// printing the log lines as they come.
pub(crate) fn drive<F, Fut>(
    rt: &Runtime,
    log: LogArgs,
    out: &mut Output<'_>,
    request: BackendRequest,
    state_dir: PathBuf,
    flow: F,
) -> Result<Result<Finish, MkeError>, UpgradeError>
where
    F: FnOnce(Session) -> Fut,
    Fut: std::future::Future<Output = Result<Finish, MkeError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(UpgradeError::Runtime)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let min = match log.log_level {
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warn,
    };
    let sink: Arc<dyn LogSink> = Arc::new(ChannelLog { tx, min });
    let show = |line: &LogLine| match log.log_format {
        LogFormat::Text => format!("{line}\n"),
        LogFormat::Json => format!("{}\n", serde_json::to_string(line).unwrap_or_default()),
    };
    runtime.block_on(async {
        if rt.listen_to_signals {
            if let Err(e) = rt.interrupts.listen_to_signals() {
                out.warn(&format!("cannot watch for Ctrl-C: {e}"));
            }
        }
        let fut = async {
            let backends = rt
                .backends
                .backends(request)
                .await
                .map_err(UpgradeError::Backends)?;
            Ok(flow(Session {
                backends,
                state_dir,
                log: sink,
                interrupts: rt.interrupts.clone(),
                hooks: rt.hooks.clone(),
            })
            .await)
        };
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                Some(line) = rx.recv() => out.info(&show(&line)),
                r = &mut fut => {
                    while let Ok(line) = rx.try_recv() {
                        out.info(&show(&line));
                    }
                    break r;
                }
            }
        }
    })
}

/// The exit code of a finished upgrade or resume.
pub fn exit_code(f: &Finish) -> u8 {
    match f {
        Finish::DryRun { checks, .. } => {
            if checks.passed() {
                exit::OK
            } else {
                exit::CHECKS_FAILED
            }
        }
        Finish::Completed { .. } => exit::OK,
        Finish::RolledBack { .. } => exit::ROLLED_BACK,
        Finish::RollbackIncomplete { .. } => exit::ROLLBACK_INCOMPLETE,
        Finish::Interrupted => exit::INTERRUPTED,
    }
}

/// Prints an error of a run and returns its exit code.
pub(crate) fn report_error(e: MkeError, format: Format, out: &mut Output<'_>) -> u8 {
    let code = match &e {
        MkeError::Checks(report) => {
            match format {
                Format::Text => out.info(&report.render()),
                Format::Json => out.result(&format!(
                    "{}\n",
                    serde_json::json!({ "checks": report, "error": e.to_string() })
                )),
            }
            exit::CHECKS_FAILED
        }
        MkeError::Input(_) => exit::USAGE,
        _ => exit::FAILED,
    };
    out.error(&e);
    code
}

/// `ferry upgrade [--resume]`.
pub fn run_upgrade_with(
    rt: &Runtime,
    args: &UpgradeArgs,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    if args.resume {
        return resume(rt, args, out);
    }
    // clap enforces these unless --resume.
    let (Some(hosts_path), Some(username), Some(external)) = (
        args.hosts_path.as_deref(),
        args.mke3_admin_username.as_deref(),
        args.external_address.as_deref(),
    ) else {
        return Err(CliError::Usage(
            "--hosts-path, --mke3-admin-username and --external-address are required".into(),
        ));
    };
    let hosts =
        ferry_ssh_exec::read_hosts_file(hosts_path).map_err(|e| CliError::InvalidContent {
            path: hosts_path.to_path_buf(),
            message: format!(" {e}"),
        })?;
    let state = state_dir(rt, args.state_dir.as_deref(), Some(external))?;
    let home = (rt.env)("HOME").map(PathBuf::from);
    let mut inputs = Inputs::new(hosts, username, external);
    inputs.max_unavailable = args.max_unavailable;
    inputs.image_registry = args.image_registry.clone();
    inputs.chart_registry = args.chart_registry.clone();
    inputs.mke3_airgapped = args.mke3_airgapped;
    inputs.force = args.force;
    inputs.checks = CheckOptions {
        skip_cpu_cores_check: args.skip_cpu_cores_check,
        skip_total_memory_check: args.skip_total_memory_check,
        skip_disk_space_check: args.skip_disk_space_check,
    };
    inputs.kubeconf_path = home.map(|h| h.join(".mke/mke.kubeconf"));
    // Validate the options before asking for anything.
    let probe = ferry_config_convert::Options {
        external_address: Some(external.to_string()),
        image_registry: inputs.image_registry.clone(),
        chart_registry: inputs.chart_registry.clone(),
        airgapped: inputs.mke3_airgapped,
        ..ferry_config_convert::Options::default()
    };
    probe
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if let Err(m) = rt.backends.serves(args.dry_run) {
        out.error(&UpgradeError::Backends(m));
        return Ok(exit::FAILED);
    }
    if args.remote.ssh.options(&inputs.hosts).1 {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let pw = password(rt, args.mke3_admin_password.as_deref(), out)?;
    let dry_run = args.dry_run;
    let request = BackendRequest {
        hosts: inputs.hosts.clone(),
        username: username.to_string(),
        password: pw,
        external_address: external.to_string(),
        remote: args.remote.clone(),
        read_only: dry_run,
    };
    let r = drive(rt, args.log, out, request, state, |session| {
        mke::upgrade(inputs, session, dry_run)
    });
    finish(r, args.config_out.as_deref(), args.output, out)
}

fn resume(rt: &Runtime, args: &UpgradeArgs, out: &mut Output<'_>) -> Result<u8, CliError> {
    let state = state_dir(
        rt,
        args.state_dir.as_deref(),
        args.external_address.as_deref(),
    )?;
    let replay = match ferry_core::journal::Replay::read(&state) {
        Ok(r) => r,
        Err(e) => {
            out.error(&e);
            return Ok(exit::FAILED);
        }
    };
    let Some(request) = journaled_request(
        rt,
        &replay,
        &state,
        args.mke3_admin_password.as_deref(),
        &args.remote,
        out,
    )?
    else {
        return Ok(exit::FAILED);
    };
    let r = drive(rt, args.log, out, request, state, mke::resume);
    finish(r, args.config_out.as_deref(), args.output, out)
}

fn finish(
    r: Result<Result<Finish, MkeError>, UpgradeError>,
    config_out: Option<&Path>,
    format: Format,
    out: &mut Output<'_>,
) -> Result<u8, CliError> {
    let fin = match r {
        Err(e) => {
            out.error(&e);
            return Ok(exit::FAILED);
        }
        Ok(Err(e)) => return Ok(report_error(e, format, out)),
        Ok(Ok(f)) => f,
    };
    let code = exit_code(&fin);
    match &fin {
        Finish::DryRun { checks, plan } => match format {
            Format::Text => {
                out.result(&checks.render());
                out.result("\nPlan (dry run: nothing was changed)\n---------------\n");
                out.result(&plan.render());
            }
            Format::Json => out.result(&format!(
                "{}\n",
                serde_json::json!({ "checks": checks, "plan": plan })
            )),
        },
        Finish::Completed {
            summary, mke4_yaml, ..
        } => {
            if let Some(dest) = config_out {
                fsio::write_atomic(dest, mke4_yaml.as_bytes())?;
                out.info(&format!(
                    "MKE 4 configuration written to {}\n",
                    dest.display()
                ));
            }
            match format {
                Format::Text => {
                    if config_out.is_none() {
                        out.info("Below is your new MKE 4 config. Save it to a file and use it to configure the MKE 4 cluster with mkectl apply:\n");
                        out.result(mke4_yaml);
                        out.result("\n");
                    }
                    out.result(summary);
                }
                Format::Json => out.result(&format!(
                    "{}\n",
                    serde_json::json!({
                        "summary": summary,
                        "yaml": config_out.is_none().then_some(mke4_yaml),
                    })
                )),
            }
        }
        Finish::RolledBack { .. } => {}
        Finish::RollbackIncomplete { remaining, .. } => {
            out.info(&format!(
                "Still applied (undo order): {}\n",
                remaining.join(", ")
            ));
        }
        Finish::Interrupted => {}
    }
    Ok(code)
}

/// The backend request of a journaled run: its inputs read back from the journal, the password
/// asked again (it is never journaled). `None` after the reason was printed.
pub(crate) fn journaled_request(
    rt: &Runtime,
    replay: &ferry_core::journal::Replay,
    state: &std::path::Path,
    password_flag: Option<&str>,
    remote: &RemoteArgs,
    out: &mut Output<'_>,
) -> Result<Option<BackendRequest>, CliError> {
    let inputs: Inputs = match replay
        .inputs
        .get("inputs")
        .cloned()
        .map(serde_json::from_value)
    {
        Some(Ok(i)) => i,
        _ => {
            out.error(&CliError::Usage(format!(
                "the journal in {} does not hold the inputs of an MKE upgrade",
                state.display()
            )));
            return Ok(None);
        }
    };
    if let Err(m) = rt.backends.serves(false) {
        out.error(&UpgradeError::Backends(m));
        return Ok(None);
    }
    let pw = password(rt, password_flag, out)?;
    Ok(Some(BackendRequest {
        hosts: inputs.hosts,
        username: inputs.mke3_admin_username,
        password: pw,
        external_address: inputs.external_address,
        remote: remote.clone(),
        read_only: false,
    }))
}
