//! `ferry mke3 ...`: read an MKE 3 cluster over its HTTPS API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_flow_mke::export_rbac;
use ferry_flow_mke::mke3::{Mke3Api, Mke3Error};
use ferry_mke3_api::{ClientError, Mke3Client, Options};

use crate::session::{Runtime, password};
use crate::{CliError, Output, exit, fsio};

/// Default file of the RBAC export.
pub const DEFAULT_OUT: &str = "mke3-rbac-export.json";
/// File name of the config TOML, next to the export unless `--config-out` says otherwise.
pub const DEFAULT_CONFIG_OUT: &str = "mke3-config.toml";

#[derive(Debug, clap::Subcommand)]
pub enum Mke3Command {
    /// Read the access model (accounts, org and team members, roles, collections, grants) and
    /// the config TOML of an MKE 3 cluster, and write them to files.
    #[command(after_help = "\
The password is read from the MKE3_ADMIN_PASSWORD environment variable, or asked for on the
terminal. TLS verification is on: give the cluster's CA with --mke3-ca-cert (MKE 3 clusters
usually have their own CA); --insecure-skip-tls-verify turns it off and is reported as a warning.

Both files are written atomically and only once everything was read: a failure leaves no file,
and any previous file untouched. The export format is described in docs/formats.md
(mke3-rbac-export.json); `ferry rbac --from` reads it.")]
    Export(ExportArgs),
    /// Switch an MKE 3 cluster's Calico to the Kubernetes datastore (KDD), the prerequisite of
    /// the upgrade: cluster_config.calico_kdd = true in its config-toml, every other byte kept.
    #[command(after_help = "\
Reads the config-toml (GET /api/ucp/config-toml), changes only cluster_config.calico_kdd (the
line is shown before and after; a missing key is added under [cluster_config]), says what the
switch does, asks for confirmation (type yes; --yes skips the question; without a terminal and
without --yes nothing is changed and the exit code is 3), PUTs the file, prints MKE 3's answer
and reads the config-toml back to confirm. A cluster already on KDD is left alone.

The switch cannot be undone. It takes about 20 seconds per node, and while it runs new or
replacement pods cannot start (running workloads keep their connectivity).

The password is read from MKE3_ADMIN_PASSWORD or asked for on the terminal; TLS as for
`ferry mke3 export`.")]
    EnableKdd(EnableKddArgs),
}

#[derive(Debug, clap::Args)]
pub struct EnableKddArgs {
    /// The MKE 3 manager, e.g. https://mke.example.com (https only).
    #[arg(long, value_name = "URL")]
    pub mke3_url: String,
    /// An MKE 3 administrator.
    #[arg(long, value_name = "USER")]
    pub mke3_admin_username: String,
    /// PEM file of the CA that signed the MKE 3 certificate.
    #[arg(long, value_name = "PEM")]
    pub mke3_ca_cert: Option<PathBuf>,
    /// Do not verify the MKE 3 certificate (anyone on the path can read the password).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Seconds allowed for one request.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Do not ask: the switch is confirmed.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The MKE 3 manager, e.g. https://mke.example.com (https only).
    #[arg(long, value_name = "URL")]
    pub mke3_url: String,
    /// An MKE 3 administrator.
    #[arg(long, value_name = "USER")]
    pub mke3_admin_username: String,
    /// Where to write the RBAC export.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Where to write the config TOML [default: mke3-config.toml next to --out].
    #[arg(long, value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// PEM file of the CA that signed the MKE 3 certificate.
    #[arg(long, value_name = "PEM")]
    pub mke3_ca_cert: Option<PathBuf>,
    /// Do not verify the MKE 3 certificate (anyone on the path can read the password).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Items per page of every list call (MKE's default is 10).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
    /// Seconds allowed for one request.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

/// Why `ferry mke3 export` failed after its arguments were accepted.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("cannot reach MKE 3 at {url}")]
    Client {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot read the MKE 3 cluster at {url}")]
    Read {
        url: String,
        #[source]
        source: Mke3Error,
    },
    #[error("cannot change the config-toml of the MKE 3 cluster at {url}: it is as it was")]
    Write {
        url: String,
        #[source]
        source: Mke3Error,
    },
}

impl ExportError {
    fn exit_code(&self) -> u8 {
        match self {
            ExportError::Client {
                source: ClientError::Url { .. } | ClientError::CaCert(_),
                ..
            } => exit::code(exit::Ending::InvalidInput),
            _ => exit::code(exit::Ending::Failed),
        }
    }
}

pub fn run(c: &Mke3Command, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        Mke3Command::Export(args) => export(args, rt, out),
        Mke3Command::EnableKdd(args) => enable_kdd(args, rt, out),
    }
}

/// What a call to MKE 3 needs: the client's options (CA, TLS, timeout), the password (from
/// MKE3_ADMIN_PASSWORD or the terminal) and a runtime; TLS off is said as a warning.
fn connection(
    url: &str,
    ca_cert: Option<&Path>,
    insecure: bool,
    timeout: u64,
    rt: &Runtime,
    out: &mut Output<'_>,
) -> Result<(Options, ferry_core::Secret<String>, tokio::runtime::Runtime), CliError> {
    let ca = match ca_cert {
        Some(p) => Some(fsio::read_text_input(p)?.into_bytes()),
        None => None,
    };
    let password = password(rt, None, out)?;
    if insecure {
        out.warn("TLS verification of the MKE 3 API is OFF (--insecure-skip-tls-verify): the connection can be intercepted");
    }
    let mut options = Options::new(url.to_string());
    options.ca_cert_pem = ca;
    options.insecure_skip_tls_verify = insecure;
    options.timeout = Duration::from_secs(timeout);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the async runtime: {e}")))?;
    Ok((options, password, runtime))
}

fn config_out(args: &ExportArgs) -> PathBuf {
    match &args.config_out {
        Some(p) => p.clone(),
        None => match args.out.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(DEFAULT_CONFIG_OUT),
            _ => PathBuf::from(DEFAULT_CONFIG_OUT),
        },
    }
}

fn check_writable_dir(path: &Path) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(CliError::Output {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("directory {} does not exist", dir.display()),
            ),
        })
    }
}

fn export(args: &ExportArgs, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    let config_path = config_out(args);
    if config_path == args.out {
        return Err(CliError::Usage(
            "--out and --config-out name the same file".into(),
        ));
    }
    // Fail before any traffic when the files could not be written anyway.
    check_writable_dir(&args.out)?;
    check_writable_dir(&config_path)?;
    let (options, password, runtime) = connection(
        &args.mke3_url,
        args.mke3_ca_cert.as_deref(),
        args.insecure_skip_tls_verify,
        args.timeout,
        rt,
        out,
    )?;
    let url = args.mke3_url.clone();
    let username = args.mke3_admin_username.clone();
    let page_size = args.page_size;
    let result = runtime.block_on(async move {
        let client = Mke3Client::login(options, &username, &password)
            .await
            .map_err(|source| ExportError::Client {
                url: url.clone(),
                source,
            })?;
        let read = |source| ExportError::Read {
            url: url.clone(),
            source,
        };
        let version = client.version().await.map_err(read)?;
        let export = export_rbac(&client, page_size).await.map_err(read)?;
        let toml = client.config_toml().await.map_err(read)?;
        Ok::<_, ExportError>((version, export, toml))
    });
    let (version, export, toml) = match result {
        Ok(r) => r,
        Err(e) => {
            out.error(&e);
            return Ok(e.exit_code());
        }
    };
    let mut json = serde_json::to_string_pretty(&export).map_err(|e| CliError::Output {
        path: args.out.clone(),
        source: std::io::Error::other(e),
    })?;
    json.push('\n');
    fsio::write_atomic(&config_path, toml.as_bytes())?;
    fsio::write_atomic(&args.out, json.as_bytes())?;

    let users = export.accounts.iter().filter(|a| !a.is_org).count();
    let orgs = export.accounts.len() - users;
    let teams: usize = export.orgs.values().map(|o| o.teams.len()).sum();
    out.info(&format!(
        "MKE {version}: {users} users, {orgs} organizations, {teams} teams, {} roles, {} collections, {} grants\nwrote {} and {}\n",
        export.roles.len(),
        export.collections.len(),
        export.grants.len(),
        args.out.display(),
        config_path.display()
    ));
    Ok(exit::code(exit::Ending::Done))
}

/// What `ferry mke3 enable-kdd` came to.
enum Kdd {
    Already,
    Refused(ferry_config_convert::kdd::KddError),
    NotConfirmed(String),
    Done { answer: String },
    NotApplied { answer: String, now: String },
}

fn enable_kdd(args: &EnableKddArgs, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    use ferry_config_convert::kdd;
    let (options, password, runtime) = connection(
        &args.mke3_url,
        args.mke3_ca_cert.as_deref(),
        args.insecure_skip_tls_verify,
        args.timeout,
        rt,
        out,
    )?;
    let url = args.mke3_url.clone();
    let username = args.mke3_admin_username.clone();
    let yes = args.yes;
    let result = runtime.block_on(async {
        let client = Mke3Client::login(options, &username, &password)
            .await
            .map_err(|source| ExportError::Client {
                url: url.clone(),
                source,
            })?;
        let read = |source| ExportError::Read {
            url: url.clone(),
            source,
        };
        let text = client.config_toml().await.map_err(read)?;
        let edit = match kdd::enable(&text) {
            Ok(e) => e,
            Err(kdd::KddError::AlreadyKdd) => return Ok(Kdd::Already),
            Err(e) => return Ok(Kdd::Refused(e)),
        };
        out.info(&format!(
            "config-toml line {}: cluster_config.calico_kdd to true\n{}+ {}\n",
            edit.line,
            edit.before
                .as_deref()
                .map(|b| format!("- {b}\n"))
                .unwrap_or_default(),
            edit.after
        ));
        let what = "Switching Calico from etcd to the Kubernetes datastore (KDD) cannot be undone. It takes about 20 seconds per node, and while it runs new or replacement pods cannot start (running workloads keep their connectivity)";
        if !yes {
            if let Err(e) = crate::session::ask_yes(what) {
                return Ok(Kdd::NotConfirmed(e));
            }
        } else {
            out.warn(&format!("{what}; confirmed with --yes"));
        }
        let answer = client
            .put_config_toml(&edit.text)
            .await
            .map_err(|source| ExportError::Write {
                url: url.clone(),
                source,
            })?;
        let now = client.config_toml().await.map_err(read)?;
        Ok::<_, ExportError>(match kdd::calico_kdd(&now) {
            Ok(Some(true)) => Kdd::Done { answer },
            other => Kdd::NotApplied {
                answer,
                now: match other {
                    Ok(v) => format!("{v:?}"),
                    Err(e) => e.to_string(),
                },
            },
        })
    });
    match result {
        Err(e) => {
            out.error(&e);
            Ok(e.exit_code())
        }
        Ok(Kdd::Already) => {
            out.result("Calico already uses the Kubernetes datastore (cluster_config.calico_kdd = true): nothing changed\n");
            Ok(exit::code(exit::Ending::Done))
        }
        Ok(Kdd::Refused(e)) => Err(CliError::Blocked(format!(
            "{url}: {e}; nothing changed",
            url = args.mke3_url
        ))),
        Ok(Kdd::NotConfirmed(why)) => Err(CliError::Blocked(format!("{why}; nothing changed"))),
        Ok(Kdd::Done { answer }) => {
            out.result(&format!(
                "MKE 3 answered: {answer}\nThe config-toml read back has cluster_config.calico_kdd = true.\n"
            ));
            Ok(exit::code(exit::Ending::Done))
        }
        Ok(Kdd::NotApplied { answer, now }) => {
            out.error(&CliError::Internal(format!(
                "MKE 3 answered {answer:?}, but the config-toml read back has cluster_config.calico_kdd {now}"
            )));
            Ok(exit::code(exit::Ending::Failed))
        }
    }
}
