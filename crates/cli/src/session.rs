//! What every command that runs a flow shares: the process's runtime (environment, terminal,
//! signals, engine hooks), the backend factory, the password (read the same way by every
//! command), the state directory, and [`drive`], which runs a flow on a fresh async runtime with
//! its log lines and the libraries' `tracing` events rendered through [`Output`], and leaves a
//! support dump in the state directory after a run that did not complete.
//!
//! Against a real cluster the binary runs the read-only part only ([`RealBackends`] serves
//! read-only requests): `ferry upgrade --dry-run` connects over SSH, reads MKE 3 and Kubernetes,
//! runs the checks and prints the plan. The steps that change a cluster, `ferry resume` and
//! `ferry rollback` are exercised against the fakes of `ferry-testing` only (tests drive
//! [`crate::run_with`] with their own [`BackendFactory`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::Secret;
use ferry_core::engine::{Interrupts, Level, LogLine, LogSink, Logger, NoHooks, Progress};
use ferry_core::hosts::HostSpec;
use ferry_core::run::Session;
use ferry_core::support::{self, Redactor};
use ferry_core::{ClusterApi, Connector};
use ferry_flow_mke::mke3::Mke3Api;

use crate::{CliError, Output};

/// The environment variable holding the MKE 3 admin password.
pub const PASSWORD_ENV: &str = "MKE3_ADMIN_PASSWORD";

/// What a command is about to do, for [`BackendFactory::serves`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only (`--dry-run`).
    ReadOnly,
    /// A new run that changes the cluster, rolled back automatically on failure or Ctrl-C.
    Run,
    /// Continues or rolls back the run recorded in a journal (`ferry resume`, `ferry rollback`).
    Journal,
}

/// The backends of a run of the MKE flow: the core session's two, and the MKE 3 API.
#[derive(Debug, Clone)]
pub struct Backends {
    pub connector: Arc<dyn Connector>,
    pub cluster: Arc<dyn ClusterApi>,
    pub mke3: Arc<dyn Mke3Api>,
}

/// How to reach the MKE 3 cluster: its hosts over SSH (the hosts file says which), its
/// Kubernetes API and its MKE 3 API.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    #[command(flatten)]
    pub ssh: crate::cmd::hosts::SshArgs,
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

/// How `ferry resume` and `ferry rollback` find a journaled run and reach its cluster again.
#[derive(Debug, Clone, clap::Args)]
pub struct JournalArgs {
    /// The state directory of the run (default: $XDG_STATE_HOME/ferry/<external address>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The external address of the cluster, to find the default state directory.
    #[arg(long, value_name = "ADDRESS")]
    pub external_address: Option<String>,
    /// MKE 3 admin password (visible to other users of the machine: prefer
    /// MKE3_ADMIN_PASSWORD or the prompt).
    #[arg(long, value_name = "PASSWORD")]
    pub mke3_admin_password: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// What a backend factory is given.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    pub hosts: Vec<HostSpec>,
    pub username: String,
    pub password: Secret<String>,
    pub external_address: String,
    pub remote: RemoteArgs,
    /// What the command will do.
    pub access: Access,
}

/// Makes the backends of a run. Called inside the run's async runtime: the Kubernetes and
/// HTTP clients keep tasks on it.
#[async_trait::async_trait]
pub trait BackendFactory: Send + Sync + std::fmt::Debug {
    /// Whether this factory serves a command of this `access`; asked before the password, so
    /// that nobody types it for a run that cannot happen.
    fn serves(&self, access: Access) -> Result<(), String> {
        let _ = access;
        Ok(())
    }
    /// The backends, or why they cannot be made (a message for the operator).
    async fn backends(&self, request: BackendRequest) -> Result<Backends, String>;

    /// The connector to `hosts` alone, for a command that only reads them (`ferry
    /// support-dump`): no password, no API. Default: OpenSSH with `ssh`'s options.
    async fn connector(
        &self,
        hosts: &[HostSpec],
        ssh: &crate::cmd::hosts::SshArgs,
    ) -> Result<Arc<dyn Connector>, String> {
        let (options, _) = ssh.options(hosts);
        let c = ferry_ssh_exec::SshConnector::new(options)
            .map_err(|e| format!("cannot set up SSH: {e}"))?;
        Ok(Arc::new(c))
    }
}

/// The factory of the binary: OpenSSH for the hosts, the Kubernetes API from the client bundle,
/// the MKE 3 API logged in with the admin credentials.
#[derive(Debug, Default)]
pub struct RealBackends;

#[async_trait::async_trait]
impl BackendFactory for RealBackends {
    async fn backends(&self, r: BackendRequest) -> Result<Backends, String> {
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
    /// Standard error is a terminal: show a progress line (phase, hosts, window).
    pub progress: bool,
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
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
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

/// The password: the flag (with a warning), the environment, or the terminal.
pub fn password(
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
pub fn state_dir(
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
    ferry_core::state::default_dir(addr, xdg.as_deref(), home.as_deref()).ok_or_else(|| {
        CliError::Usage(
            "cannot find a state directory: set --state-dir, XDG_STATE_HOME or HOME".into(),
        )
    })
}

/// What the run sends to the terminal.
#[derive(Debug)]
pub(crate) enum Event {
    Line(LogLine),
    Progress(Progress),
}

/// Sends the run's log lines (and, on a terminal, its progress) to a channel the command drains
/// into [`Output`].
#[derive(Debug)]
pub(crate) struct ChannelLog {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    min: Level,
    progress: bool,
}

impl LogSink for ChannelLog {
    fn log(&self, line: LogLine) {
        if line.level >= self.min {
            let _ = self.tx.send(Event::Line(line));
        }
    }

    fn progress(&self, p: &Progress) {
        if self.progress {
            let _ = self.tx.send(Event::Progress(p.clone()));
        }
    }
}

/// The one-line progress display: `[Upgrade Tasks] 23/55 steps, window 2/10: w1 mke.node.drain,
/// w2 mke.node.install-k0s`, cut to `width` characters.
pub fn progress_line(p: &Progress, width: usize) -> String {
    let mut s = format!("[{}] {}/{} steps", p.phase, p.done.min(p.total), p.total);
    let hosts: Vec<String> = p
        .running
        .iter()
        .map(|(t, id)| format!("{} {id}", t.strip_prefix("host:").unwrap_or(t)))
        .collect();
    match p.window {
        Some(w) => s.push_str(&format!(", window {}/{w}", p.running.len())),
        None if !hosts.is_empty() => s.push_str(", running"),
        None => {}
    }
    if !hosts.is_empty() {
        s.push_str(": ");
        s.push_str(&hosts.join(", "));
    }
    if s.chars().count() > width {
        s = s.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
    }
    s
}

/// Why a run could not be driven (before the flow itself had a say).
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("{0}")]
    Backends(String),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Runs a flow on a new runtime: makes the backends of `request` there (the Kubernetes and
/// HTTP clients keep tasks on the runtime that made them), then runs `flow` with them and a core
/// [`Session`], printing the log lines, and the libraries' `tracing` events at the same level,
/// as they come.
pub fn drive<F, Fut, T>(
    rt: &Runtime,
    log: LogArgs,
    out: &mut Output<'_>,
    request: BackendRequest,
    state_dir: PathBuf,
    flow: F,
) -> Result<T, DriveError>
where
    F: FnOnce(Backends, Session) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let factory = rt.backends.clone();
    let mut secrets = known_secrets(rt, None);
    secrets.add(request.password.expose());
    drive_inner(
        rt,
        log,
        out,
        || async move {
            let b = factory.backends(request).await?;
            Ok((b.connector.clone(), b.cluster.clone(), b))
        },
        state_dir,
        flow,
        secrets,
    )
}

/// [`drive`] with the backends made by `make` (on the run's runtime): the SSH connector and
/// the Kubernetes API of the session, and whatever else the flow needs (`B`).
///
/// After a run that failed, was rolled back or was interrupted (its journal in `state_dir`,
/// written by this invocation, does not say `completed`), a support dump of its hosts is
/// collected into the state directory with the session's connector ([`ferry_core::support`])
/// and its path printed; a dump that cannot be made is a warning.
pub fn drive_with<M, MF, B, F, Fut, T>(
    rt: &Runtime,
    log: LogArgs,
    out: &mut Output<'_>,
    make: M,
    state_dir: PathBuf,
    flow: F,
) -> Result<T, DriveError>
where
    M: FnOnce() -> MF,
    MF: std::future::Future<Output = Result<(Arc<dyn Connector>, Arc<dyn ClusterApi>, B), String>>,
    F: FnOnce(B, Session) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let secrets = known_secrets(rt, None);
    drive_inner(rt, log, out, make, state_dir, flow, secrets)
}

/// The secrets a support dump redacts besides its patterns: the MKE 3 admin password of the
/// flag or the environment, when there is one.
pub(crate) fn known_secrets(rt: &Runtime, flag: Option<&str>) -> Redactor {
    let mut r = Redactor::new();
    if let Some(p) = flag {
        r.add(p);
    }
    if let Some(p) = (rt.env)(PASSWORD_ENV) {
        r.add(&p);
    }
    r
}

/// Whether the run whose journal is in `dir` needs a support dump: this invocation wrote the
/// journal (its mtime is not before `since`), and the run did not complete.
fn needs_support_dump(dir: &Path, since: std::time::SystemTime) -> bool {
    let j = dir.join(ferry_core::journal::JOURNAL_FILE);
    let fresh = std::fs::metadata(&j)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    fresh
        && ferry_core::journal::Replay::read(dir)
            .is_ok_and(|r| r.finished.as_deref() != Some("completed"))
}

/// What became of the automatic support dump.
enum Dumped {
    /// The run needed none.
    None,
    Made(support::Bundle),
    Failed(support::SupportError),
    /// Skipped by one more Ctrl-C.
    Interrupted,
}

/// The automatic support dump after a run, when [`needs_support_dump`]; one more interrupt
/// skips it.
async fn auto_dump(
    connector: &Arc<dyn Connector>,
    dir: &Path,
    since: std::time::SystemTime,
    secrets: &Redactor,
    log: &Logger,
    interrupts: &Interrupts,
) -> Dumped {
    if !needs_support_dump(dir, since) {
        return Dumped::None;
    }
    let more = interrupts.count().saturating_add(1);
    tokio::select! {
        r = support::collect(connector, dir, secrets, log) => match r {
            Ok(b) => Dumped::Made(b),
            Err(e) => Dumped::Failed(e),
        },
        () = interrupts.wait_for(more) => Dumped::Interrupted,
    }
}

/// Prints what became of the automatic support dump (never an error: the run's exit code stays).
fn show_dump(d: Dumped, out: &mut Output<'_>) {
    match d {
        Dumped::None => {}
        Dumped::Made(b) => {
            let away = b.unreachable();
            if !away.is_empty() {
                out.warn(&format!(
                    "the support dump has nothing from unreachable host(s) {}",
                    away.join(", ")
                ));
            }
            out.info(&format!("Support dump: {}\n", b.dir.display()));
        }
        Dumped::Failed(e) => {
            let mut line = format!("cannot make the support dump: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                line.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            out.warn(&line);
        }
        Dumped::Interrupted => out.warn("the support dump was skipped (interrupted)"),
    }
}

/// Prints the lines of `rx` (and, on a terminal, the progress line) while `fut` runs, then the
/// lines left; returns what `fut` returned.
async fn pump<Fut: std::future::Future>(
    out: &mut Output<'_>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    format: LogFormat,
    fut: Fut,
) -> Fut::Output {
    let show = |line: &LogLine| match format {
        LogFormat::Text => format!("{line}\n"),
        LogFormat::Json => format!("{}\n", serde_json::to_string(line).unwrap_or_default()),
    };
    tokio::pin!(fut);
    let mut status = false;
    let mut print = |out: &mut Output<'_>, e: Event| match e {
        Event::Line(line) => {
            if status {
                out.clear_status();
            }
            out.info(&show(&line));
            status = false;
        }
        Event::Progress(p) => {
            out.status(&progress_line(&p, 100));
            status = true;
        }
    };
    let r = loop {
        tokio::select! {
            biased;
            Some(e) = rx.recv() => print(out, e),
            r = &mut fut => {
                while let Ok(e) = rx.try_recv() {
                    print(out, e);
                }
                break r;
            }
        }
    };
    if status {
        out.clear_status();
    }
    r
}

/// Runs `f` on a new single-threaded runtime with a [`Logger`] whose lines (and the libraries'
/// `tracing` events) are printed as they come, like [`drive`] without a flow: for commands
/// that only read (`ferry support-dump`).
pub(crate) fn with_log<F, Fut, T>(log: LogArgs, out: &mut Output<'_>, f: F) -> Result<T, DriveError>
where
    F: FnOnce(Logger) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DriveError::Runtime)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let min = min_level(log.log_level);
    let sink: Arc<dyn LogSink> = Arc::new(ChannelLog {
        tx: tx.clone(),
        min,
        progress: false,
    });
    let _tracing = crate::logging::install(tx, min);
    Ok(runtime.block_on(pump(out, &mut rx, log.log_format, f(Logger::new(sink)))))
}

fn min_level(l: LogLevel) -> Level {
    match l {
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warn,
    }
}

/// [`drive_with`], with the known `secrets` its support dump redacts.
fn drive_inner<M, MF, B, F, Fut, T>(
    rt: &Runtime,
    log: LogArgs,
    out: &mut Output<'_>,
    make: M,
    state_dir: PathBuf,
    flow: F,
    secrets: Redactor,
) -> Result<T, DriveError>
where
    M: FnOnce() -> MF,
    MF: std::future::Future<Output = Result<(Arc<dyn Connector>, Arc<dyn ClusterApi>, B), String>>,
    F: FnOnce(B, Session) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DriveError::Runtime)?;
    let since = std::time::SystemTime::now();
    let report_dir = state_dir.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let min = min_level(log.log_level);
    // A status line only on a terminal, and only with text logs; plain lines otherwise.
    let progress = rt.progress && log.log_format == LogFormat::Text;
    let sink: Arc<dyn LogSink> = Arc::new(ChannelLog {
        tx: tx.clone(),
        min,
        progress,
    });
    // The libraries log through `tracing` (a backend's warning, a retry): their events join the
    // run's lines. The runtime is single-threaded, so a thread-local default reaches every task.
    let _tracing = crate::logging::install(tx, min);
    runtime.block_on(async {
        if rt.listen_to_signals {
            if let Err(e) = rt.interrupts.listen_to_signals() {
                out.warn(&format!("cannot watch for Ctrl-C: {e}"));
            }
        }
        let fut = async {
            let (connector, cluster, backends) = make().await.map_err(DriveError::Backends)?;
            let dump_log = Logger::new(sink.clone());
            let session = Session {
                connector: connector.clone(),
                cluster,
                state_dir,
                log: sink,
                interrupts: rt.interrupts.clone(),
                hooks: rt.hooks.clone(),
                confirm: None,
            };
            let r = flow(backends, session).await;
            // A failed, rolled-back or interrupted run leaves a support dump of its hosts.
            let dumped = auto_dump(
                &connector,
                &report_dir,
                since,
                &secrets,
                &dump_log,
                &rt.interrupts,
            )
            .await;
            Ok((r, dumped))
        };
        let r = pump(out, &mut rx, log.log_format, fut).await;
        let r = r.map(|(r, dumped)| {
            show_dump(dumped, out);
            r
        });
        // the run's picture beside its journal, named after the summary
        match crate::cmd::report::after_run(&report_dir, since) {
            Ok(p) => out.set_report(p),
            Err(w) if !w.is_empty() => out.warn(&w),
            Err(_) => {}
        }
        r
    })
}

/// Asks `what` on the terminal and waits for `yes`; refused (with why) when the answer is
/// anything else or there is no terminal to ask on.
pub(crate) fn ask_yes(what: &str) -> Result<(), String> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Err(format!("{what}; give --yes to go on"));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{what}.\nType yes to go on: ");
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(format!("{what}; the answer was not yes"))
    }
}
