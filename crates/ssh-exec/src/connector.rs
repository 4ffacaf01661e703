//! [`SshConnector`]: turns a hosts.yaml entry into a connected [`SshHost`].

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_core::hosts::KnownHostsPolicy;
use ferry_core::{Connector, ExecError, HostExec, HostSpec};
use openssh::{ControlPersist, KnownHosts, SessionBuilder};
use tokio::sync::Semaphore;

use crate::host::SshHost;
use crate::yaml::expand_home;

/// sshd's default `MaxSessions`: channels per connection. Production nodes keep it.
pub const SSHD_MAX_SESSIONS: usize = 10;

/// A Unix socket path holds 107 bytes. The openssh crate puts its socket at
/// `<dir>/.ssh-connectionXXXXXX/master`, and ssh appends `.` and 16 random characters while
/// binding, so the control directory must stay short.
pub const MAX_CONTROL_DIR_LEN: usize = 60;

/// How the SSH backend behaves. [`Default`] is what ferry uses in production.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Overrides every host's `knownHostsPolicy` when set (`--known-hosts-policy`).
    pub known_hosts_policy: Option<KnownHostsPolicy>,
    /// `off` is refused unless this is set (`--insecure-no-host-key-check`); a warning is logged
    /// for every host connected that way.
    pub allow_no_host_key_check: bool,
    /// The known_hosts file to check and (with `accept-new`) to add to; ssh's default
    /// (`~/.ssh/known_hosts`) when `None`.
    pub known_hosts_file: Option<PathBuf>,
    /// An ssh_config whose settings apply where ferry sets nothing (KexAlgorithms, proxies, ...).
    /// `None`: `~/.ssh/config` when it exists.
    pub ssh_config: Option<PathBuf>,
    /// Per connect attempt: TCP connect and SSH banner (`ConnectTimeout`, whole seconds).
    pub connect_timeout: Duration,
    /// Attempts for transient connect failures (refused, unreachable, timed out); at least 1.
    pub connect_attempts: u32,
    /// Wait before the second attempt; doubles for each further one.
    pub retry_backoff: Duration,
    /// Keep-alive probes on open connections (`ServerAliveInterval`, whole seconds).
    pub server_alive_interval: Duration,
    /// Unanswered probes before a connection counts as lost (`ServerAliveCountMax`).
    pub server_alive_count_max: u32,
    /// Timeout of a command whose [`Cmd`](ferry_core::Cmd) sets none.
    pub command_timeout: Duration,
    /// Also bound each command that sets its own timeout on the host, with coreutils `timeout`
    /// (2 s longer than the local timeout, which decides), so that a timed-out command does not
    /// keep running there: SSH has no way to kill a remote process. Commands on the default
    /// timeout are bounded locally only, because the wrapper costs a fork and an exec on the
    /// host per command (45 ms more per round on 50 testbed hosts sharing 2 cores).
    pub remote_timeout: bool,
    /// Concurrent commands per host; at most sshd's `MaxSessions` (10).
    pub max_commands_per_host: usize,
    /// Concurrent commands over all hosts of this connector (the fan-out limit).
    pub max_fanout: usize,
    /// Concurrent SSH handshakes over all hosts (client CPU and sshd's `MaxStartups`).
    pub max_connecting: usize,
    /// An idle master connection ends after this long with no command (so that nothing outlives
    /// a crashed ferry); the next command reconnects.
    pub idle_close: Duration,
    /// Where the control sockets go (a fresh private directory is made inside). Must be short
    /// (see [`MAX_CONTROL_DIR_LEN`]). `None`: the first of `$XDG_RUNTIME_DIR`, `/dev/shm` and
    /// the temp dir where a short private directory can be made (see [`default_control_bases`]).
    pub control_dir: Option<PathBuf>,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            known_hosts_policy: None,
            allow_no_host_key_check: false,
            known_hosts_file: None,
            ssh_config: None,
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 3,
            retry_backoff: Duration::from_millis(500),
            server_alive_interval: Duration::from_secs(5),
            server_alive_count_max: 3,
            command_timeout: Duration::from_secs(3600),
            remote_timeout: true,
            max_commands_per_host: SSHD_MAX_SESSIONS,
            max_fanout: 100,
            max_connecting: 32,
            idle_close: Duration::from_secs(600),
            control_dir: None,
        }
    }
}

/// Why the connector could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("control directory {path}: {problem}")]
    ControlDir { path: PathBuf, problem: String },
    #[error("ssh config {path}: {problem}")]
    SshConfig { path: PathBuf, problem: String },
    #[error("invalid option: {0}")]
    Option(String),
}

/// State shared by the connector and every host it connected.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) opts: SshOptions,
    /// Private directory (0700) holding control sockets and generated ssh configs.
    control: tempfile::TempDir,
    base_config: PathBuf,
    user_config: Option<PathBuf>,
    pub(crate) fanout: Semaphore,
    connecting: Semaphore,
    counter: AtomicU64,
    /// One edit of the known_hosts file at a time (hosts reinstalled side by side).
    pub(crate) known_hosts_edit: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(crate) fn control_dir(&self) -> &Path {
        self.control.path()
    }

    /// One connect attempt's permit on the handshake limit.
    pub(crate) async fn connect_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.connecting.acquire().await.ok()
    }
}

/// Connects hosts over OpenSSH, one multiplexed master connection per host.
///
/// All hosts connected through one connector share its fan-out and handshake limits and its
/// private control directory, which is removed when the connector and its hosts are dropped.
#[derive(Debug, Clone)]
pub struct SshConnector {
    shared: Arc<Shared>,
}

impl SshConnector {
    /// Checks the options and makes the private control directory.
    pub fn new(opts: SshOptions) -> Result<Self, SetupError> {
        if opts.max_commands_per_host == 0 || opts.max_fanout == 0 || opts.max_connecting == 0 {
            return Err(SetupError::Option(
                "concurrency limits must be at least 1".into(),
            ));
        }
        if opts.max_commands_per_host > SSHD_MAX_SESSIONS {
            return Err(SetupError::Option(format!(
                "max_commands_per_host {} is above sshd's default MaxSessions ({SSHD_MAX_SESSIONS})",
                opts.max_commands_per_host
            )));
        }
        if opts.connect_attempts == 0 {
            return Err(SetupError::Option(
                "connect_attempts must be at least 1".into(),
            ));
        }
        let control = match &opts.control_dir {
            Some(base) => make_control_dir(base)?,
            None => {
                // The first base that works; the last one's error when none does.
                let mut made = Err(SetupError::ControlDir {
                    path: std::env::temp_dir(),
                    problem: "no candidate directory".into(),
                });
                for base in default_control_bases() {
                    made = make_control_dir(&base);
                    match &made {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "control directory not usable, trying the next");
                        }
                    }
                }
                made?
            }
        };
        let user_config = match &opts.ssh_config {
            Some(p) => {
                let p = std::path::absolute(p).map_err(|e| SetupError::SshConfig {
                    path: p.clone(),
                    problem: e.to_string(),
                })?;
                if !p.is_file() {
                    return Err(SetupError::SshConfig {
                        path: p,
                        problem: "not a readable file".into(),
                    });
                }
                Some(p)
            }
            None => Some(expand_home("~/.ssh/config")).filter(|p| p.is_file()),
        };
        let base_config = control.path().join("ssh_config");
        let text = config_text(&opts, user_config.as_deref(), None);
        std::fs::write(&base_config, text).map_err(|e| SetupError::ControlDir {
            path: base_config.clone(),
            problem: e.to_string(),
        })?;
        let shared = Shared {
            fanout: Semaphore::new(opts.max_fanout),
            connecting: Semaphore::new(opts.max_connecting),
            opts,
            control,
            base_config,
            user_config,
            counter: AtomicU64::new(0),
            known_hosts_edit: tokio::sync::Mutex::new(()),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &SshOptions {
        &self.shared.opts
    }

    /// Connects `spec` and returns the concrete host (for callers that want more than
    /// [`HostExec`]).
    pub async fn connect_host(&self, spec: &HostSpec) -> Result<Arc<SshHost>, ExecError> {
        let host = self.host_handle(spec)?;
        host.connect_now().await?;
        Ok(host)
    }

    /// The host, not connected yet: its first command connects.
    pub fn host_handle(&self, spec: &HostSpec) -> Result<Arc<SshHost>, ExecError> {
        let name = spec.name();
        let (builder, destination) = self.builder(spec, &name)?;
        Ok(Arc::new(SshHost::new(
            name,
            spec.clone(),
            Arc::clone(&self.shared),
            builder,
            destination,
        )))
    }

    fn builder(&self, spec: &HostSpec, name: &str) -> Result<(SessionBuilder, String), ExecError> {
        let opts = &self.shared.opts;
        let policy = opts.known_hosts_policy.unwrap_or(spec.known_hosts_policy);
        if policy == KnownHostsPolicy::Off && !opts.allow_no_host_key_check {
            return Err(ExecError::HostKey {
                host: name.to_string(),
                detail: "knownHostsPolicy is off, which needs the explicit flag --insecure-no-host-key-check".into(),
            });
        }
        let mut b = SessionBuilder::default();
        b.user(spec.user.clone())
            .port(spec.port)
            .control_directory(self.shared.control_dir())
            .connect_timeout(round_up_secs(opts.connect_timeout))
            .server_alive_interval(round_up_secs(opts.server_alive_interval))
            .control_persist(ControlPersist::IdleFor(
                NonZeroUsize::new(round_up_secs(opts.idle_close).as_secs() as usize)
                    .unwrap_or(NonZeroUsize::MIN),
            ));
        if let Some(k) = &spec.key_path {
            let path = expand_home(k);
            if !path.is_file() {
                return Err(ExecError::Auth {
                    host: name.to_string(),
                    detail: format!("keyPath {}: no such file", path.display()),
                });
            }
            b.keyfile(path);
        }
        match policy {
            KnownHostsPolicy::Strict => {
                b.known_hosts_check(KnownHosts::Strict);
            }
            KnownHostsPolicy::AcceptNew => {
                b.known_hosts_check(KnownHosts::Add);
            }
            KnownHostsPolicy::Off => {
                tracing::warn!(
                    host = %name,
                    "host key checking is OFF for this host: the connection can be intercepted"
                );
                b.known_hosts_check(KnownHosts::Accept);
                b.user_known_hosts_file("/dev/null");
            }
        }
        if policy != KnownHostsPolicy::Off {
            if let Some(f) = &opts.known_hosts_file {
                b.user_known_hosts_file(f);
            }
        }
        let config = match &spec.bastion {
            None => self.shared.base_config.clone(),
            Some(bastion) => {
                let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
                let alias = format!("ferry-jump-{n}");
                let jump = JumpHost {
                    alias: &alias,
                    address: &bastion.address,
                    port: bastion.port,
                    user: &bastion.user,
                    key: bastion.key_path.as_deref().map(expand_home),
                    policy,
                };
                let path = self.shared.control_dir().join(format!("ssh_config-{n}"));
                let text = config_text(opts, self.shared.user_config.as_deref(), Some(&jump));
                std::fs::write(&path, text).map_err(|e| ExecError::Io {
                    host: name.to_string(),
                    detail: format!("writing {}: {e}", path.display()),
                })?;
                b.jump_hosts([alias]);
                path
            }
        };
        b.config_file(config);
        let destination = spec
            .address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok((b, destination))
    }
}

#[async_trait::async_trait]
impl Connector for SshConnector {
    async fn connect(&self, host: &HostSpec) -> Result<Arc<dyn HostExec>, ExecError> {
        let h: Arc<dyn HostExec> = self.connect_host(host).await?;
        Ok(h)
    }

    async fn handle(&self, host: &HostSpec) -> Result<Arc<dyn HostExec>, ExecError> {
        let h: Arc<dyn HostExec> = self.host_handle(host)?;
        Ok(h)
    }
}

struct JumpHost<'a> {
    alias: &'a str,
    address: &'a str,
    port: u16,
    user: &'a str,
    key: Option<PathBuf>,
    policy: KnownHostsPolicy,
}

/// Where the private control directory goes when [`SshOptions::control_dir`] is `None`, best
/// first: the user's runtime directory (the XDG place for sockets: private, on tmpfs), then
/// `/dev/shm` (tmpfs on every Linux), then the temp dir.
///
/// Why not simply the temp dir: every host's connection makes a directory, a log file and a
/// socket there and removes them at the end. On a disk-backed `/tmp` (ext4 here) 50 hosts
/// connecting at once queue on one directory lock and inode allocation, which cost about 5 % of
/// a 50-host cold fan-out (`bench/fanout`); on tmpfs it is noise.
pub fn default_control_bases() -> Vec<PathBuf> {
    let mut v = Vec::with_capacity(3);
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if x.is_absolute() && x.is_dir() {
            v.push(x);
        }
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        v.push(shm.to_path_buf());
    }
    v.push(std::env::temp_dir());
    v
}

/// Makes a fresh private (0700) directory in `base`, refusing one too long for sockets.
fn make_control_dir(base: &Path) -> Result<tempfile::TempDir, SetupError> {
    use std::os::unix::fs::PermissionsExt;
    let control = tempfile::Builder::new()
        .prefix("ferry-ssh-")
        // Sockets, logs and generated configs are nobody else's business (tempfile would leave
        // the umask's 0755).
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
        .map_err(|e| SetupError::ControlDir {
            path: base.to_path_buf(),
            problem: e.to_string(),
        })?;
    let len = control.path().as_os_str().len();
    if len > MAX_CONTROL_DIR_LEN {
        return Err(SetupError::ControlDir {
            path: control.path().to_path_buf(),
            problem: format!(
                "path is {len} bytes long; control sockets need a directory of at most {MAX_CONTROL_DIR_LEN} (set a shorter TMPDIR or control directory)"
            ),
        });
    }
    Ok(control)
}

/// ssh applies the first value it finds for an option: command-line options (set through the
/// openssh builder) first, then this generated file in order, then the operator's own config,
/// included last.
fn config_text(
    opts: &SshOptions,
    user_config: Option<&Path>,
    jump: Option<&JumpHost<'_>>,
) -> String {
    let mut s = String::from("# Generated by ferry for one run; removed when the run ends.\n");
    if let Some(j) = jump {
        // The jump connection is a separate ssh process that gets only `-F`, so everything it
        // needs is spelled out here.
        let _ = writeln!(s, "Host {}", j.alias);
        let _ = writeln!(s, "    HostName {}", j.address);
        let _ = writeln!(s, "    Port {}", j.port);
        let _ = writeln!(s, "    User {}", j.user);
        if let Some(k) = &j.key {
            let _ = writeln!(s, "    IdentityFile \"{}\"", k.display());
            let _ = writeln!(s, "    IdentitiesOnly yes");
        }
        let strict = match j.policy {
            KnownHostsPolicy::Strict => "yes",
            KnownHostsPolicy::AcceptNew => "accept-new",
            KnownHostsPolicy::Off => "no",
        };
        let _ = writeln!(s, "    StrictHostKeyChecking {strict}");
        if j.policy == KnownHostsPolicy::Off {
            let _ = writeln!(s, "    UserKnownHostsFile /dev/null");
        } else if let Some(f) = &opts.known_hosts_file {
            let _ = writeln!(s, "    UserKnownHostsFile \"{}\"", f.display());
        }
        let _ = writeln!(
            s,
            "    ConnectTimeout {}",
            round_up_secs(opts.connect_timeout).as_secs()
        );
        let _ = writeln!(s, "    BatchMode yes");
    }
    let _ = writeln!(s, "Host *");
    let _ = writeln!(
        s,
        "    ServerAliveCountMax {}",
        opts.server_alive_count_max.max(1)
    );
    let _ = writeln!(s, "    BatchMode yes");
    let _ = writeln!(s, "    PasswordAuthentication no");
    let _ = writeln!(s, "    KbdInteractiveAuthentication no");
    if let Some(u) = user_config {
        let _ = writeln!(s, "    Include \"{}\"", u.display());
    }
    s
}

fn round_up_secs(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_puts_ferry_first_and_the_user_config_last() {
        let opts = SshOptions {
            known_hosts_file: Some("/k/known_hosts".into()),
            ..SshOptions::default()
        };
        let jump = JumpHost {
            alias: "ferry-jump-0",
            address: "10.0.0.9",
            port: 2222,
            user: "ops",
            key: Some("/keys/jump".into()),
            policy: KnownHostsPolicy::Strict,
        };
        let text = config_text(&opts, Some(Path::new("/home/u/.ssh/config")), Some(&jump));
        assert_eq!(
            text,
            "# Generated by ferry for one run; removed when the run ends.\n\
             Host ferry-jump-0\n    HostName 10.0.0.9\n    Port 2222\n    User ops\n    IdentityFile \"/keys/jump\"\n    IdentitiesOnly yes\n    StrictHostKeyChecking yes\n    UserKnownHostsFile \"/k/known_hosts\"\n    ConnectTimeout 10\n    BatchMode yes\n\
             Host *\n    ServerAliveCountMax 3\n    BatchMode yes\n    PasswordAuthentication no\n    KbdInteractiveAuthentication no\n    Include \"/home/u/.ssh/config\"\n"
        );
    }

    #[test]
    fn off_needs_the_explicit_flag() {
        let c = SshConnector::new(SshOptions::default()).unwrap();
        let spec = HostSpec {
            address: "10.0.0.1".into(),
            port: 22,
            user: "u".into(),
            key_path: None,
            private_address: None,
            private_interface: None,
            bastion: None,
            sudo: true,
            known_hosts_policy: KnownHostsPolicy::Off,
        };
        let e = c.builder(&spec, "10.0.0.1").unwrap_err();
        assert!(
            e.to_string().contains("--insecure-no-host-key-check"),
            "{e}"
        );
        let c = SshConnector::new(SshOptions {
            allow_no_host_key_check: true,
            ..SshOptions::default()
        })
        .unwrap();
        assert!(c.builder(&spec, "10.0.0.1").is_ok());
    }

    #[test]
    fn the_control_dir_is_private_and_in_the_first_usable_base() {
        use std::os::unix::fs::PermissionsExt;
        let bases = default_control_bases();
        assert_eq!(bases.last(), Some(&std::env::temp_dir()));
        if Path::new("/dev/shm").is_dir() {
            assert!(
                bases.iter().any(|b| b == Path::new("/dev/shm")),
                "{bases:?}"
            );
        }
        let c = SshConnector::new(SshOptions::default()).unwrap();
        let dir = c.shared.control_dir().to_path_buf();
        assert_eq!(dir.parent(), Some(bases[0].as_path()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(c);
        assert!(
            !dir.exists(),
            "the control directory outlived the connector"
        );
    }

    #[test]
    fn long_control_dirs_are_refused_up_front() {
        let long = std::env::temp_dir().join("x".repeat(80));
        std::fs::create_dir_all(&long).unwrap();
        let e = SshConnector::new(SshOptions {
            control_dir: Some(long.clone()),
            ..SshOptions::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("at most 60"), "{e}");
        std::fs::remove_dir_all(long).unwrap();
    }

    #[test]
    fn missing_key_files_are_an_auth_error_naming_the_host() {
        let c = SshConnector::new(SshOptions::default()).unwrap();
        let spec = HostSpec {
            address: "10.0.0.1".into(),
            port: 2222,
            user: "u".into(),
            key_path: Some("/nonexistent/key".into()),
            private_address: None,
            private_interface: None,
            bastion: None,
            sudo: true,
            known_hosts_policy: KnownHostsPolicy::Strict,
        };
        let e = c.builder(&spec, &spec.name()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "10.0.0.1:2222: authentication failed: keyPath /nonexistent/key: no such file"
        );
    }
}
