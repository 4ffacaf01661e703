//! [`SshHost`]: core's [`HostExec`] over one OpenSSH master connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_core::hosts::KnownHostsPolicy;
use ferry_core::{
    Cmd, ExecError, FileSpec, HostExec, HostKeyChange, HostSpec, Output, Reinstalled,
};
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Semaphore};

use crate::classify;
use crate::connector::Shared;
use crate::quote::command_line;
use crate::redact;

/// One host, reached over one multiplexed SSH connection that is kept for the whole run.
///
/// - Commands run as channels on the connection, at most `max_commands_per_host` (10, sshd's
///   `MaxSessions`) at once; more wait their turn. All hosts of a connector also share its
///   fan-out limit.
/// - When the connection is lost (host rebooted, link cut, master idle-closed), a running command
///   fails with [`ExecError::Disconnected`], and the next command reconnects (with the connect
///   retries for transient failures). A command that could not start because the connection was
///   already gone is started again on the new connection, since it never ran.
/// - [`close`](HostExec::close) ends the connection and reports a failure to do so cleanly.
#[derive(Debug)]
pub struct SshHost {
    name: String,
    spec: HostSpec,
    shared: Arc<Shared>,
    builder: SessionBuilder,
    destination: String,
    conn: Mutex<Conn>,
    closed: AtomicBool,
    per_host: Semaphore,
}

#[derive(Debug)]
enum Conn {
    /// Not connected (yet, or again after a loss).
    Down,
    Up(Arc<Session>),
    Closed,
}

/// How a spawn on a session failed.
enum SpawnError {
    /// The master is gone; the command did not start.
    MasterGone(String),
    /// sshd refused another channel (MaxSessions): channels of commands that just ended, or of
    /// a timed-out command, are not closed yet. The command did not start.
    Busy(String),
    Other(ExecError),
}

impl SshHost {
    pub(crate) fn new(
        name: String,
        spec: HostSpec,
        shared: Arc<Shared>,
        builder: SessionBuilder,
        destination: String,
    ) -> Self {
        let per_host = Semaphore::new(shared.opts.max_commands_per_host);
        Self {
            name,
            spec,
            shared,
            builder,
            destination,
            conn: Mutex::new(Conn::Down),
            closed: AtomicBool::new(false),
            per_host,
        }
    }

    /// The hosts.yaml entry this host was connected from.
    pub fn spec(&self) -> &HostSpec {
        &self.spec
    }

    /// Whether commands with `sudo` are wrapped in `sudo -n` (not for root).
    fn wraps_sudo(&self) -> bool {
        self.spec.user != "root"
    }

    /// Connects now if not connected.
    pub(crate) async fn connect_now(&self) -> Result<(), ExecError> {
        self.session().await.map(|_| ())
    }

    /// The current session, connecting when there is none.
    async fn session(&self) -> Result<Arc<Session>, ExecError> {
        let mut conn = self.conn.lock().await;
        match &*conn {
            Conn::Up(s) => return Ok(Arc::clone(s)),
            Conn::Closed => {
                return Err(ExecError::Closed {
                    host: self.name.clone(),
                });
            }
            Conn::Down => {}
        }
        let s = Arc::new(self.establish().await?);
        *conn = Conn::Up(Arc::clone(&s));
        Ok(s)
    }

    /// Forgets `dead` if it is still the current session.
    async fn mark_down(&self, dead: &Arc<Session>) {
        let mut conn = self.conn.lock().await;
        if let Conn::Up(s) = &*conn {
            if Arc::ptr_eq(s, dead) {
                *conn = Conn::Down;
            }
        }
    }

    /// Starts the master connection, retrying transient failures with backoff.
    async fn establish(&self) -> Result<Session, ExecError> {
        let opts = &self.shared.opts;
        // ConnectTimeout covers TCP and the banner; key exchange and authentication get the same
        // again before the attempt is abandoned.
        let attempt_limit = opts.connect_timeout * 2 + Duration::from_secs(5);
        let mut backoff = opts.retry_backoff;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = {
                let _permit = self.shared.connect_permit().await;
                tokio::time::timeout(attempt_limit, self.builder.connect_mux(&self.destination))
                    .await
            };
            let err = match result {
                Ok(Ok(session)) => {
                    tracing::debug!(host = %self.name, attempt, took = ?started.elapsed(), "connected");
                    return Ok(session);
                }
                Ok(Err(e)) => self.connect_error(e),
                Err(_) => ExecError::Timeout {
                    host: self.name.clone(),
                    after: attempt_limit,
                    what: "connecting (handshake did not finish)".into(),
                },
            };
            if !err.is_transient() || attempt >= opts.connect_attempts {
                tracing::debug!(host = %self.name, attempt, error = %err, "connect failed");
                return Err(err);
            }
            tracing::debug!(host = %self.name, attempt, error = %err, retry_in = ?backoff, "connect failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    fn connect_error(&self, e: openssh::Error) -> ExecError {
        match e {
            openssh::Error::Connect(io) => classify::connect_error(
                &self.name,
                &io.to_string(),
                self.shared.opts.connect_timeout,
            ),
            other => ExecError::Io {
                host: self.name.clone(),
                detail: format!("starting ssh: {}", error_chain(&other)),
            },
        }
    }

    /// The command string sent to the host: `[sudo -n --] [timeout -k 5 T] program args...`,
    /// every element quoted (see [`crate::quote`]).
    fn remote_line(&self, cmd: &Cmd, timeout: Duration) -> Result<String, ExecError> {
        let mut argv: Vec<String> = Vec::with_capacity(cmd.args.len() + 8);
        if cmd.sudo && self.wraps_sudo() {
            if !self.spec.sudo {
                return Err(ExecError::Sudo {
                    host: self.name.clone(),
                    detail: format!(
                        "`{cmd}` needs root, but sudo is disabled for this host in hosts.yaml (sudo: false) and the user is {}",
                        self.spec.user
                    ),
                });
            }
            argv.extend(["sudo", "-n", "--"].map(String::from));
        }
        if self.shared.opts.remote_timeout && cmd.timeout.is_some() {
            // A little longer than the local timeout, which decides; this one only makes sure
            // that nothing is left running on the host.
            let secs = timeout.as_secs() + 2;
            argv.extend(["timeout", "-k", "5"].map(String::from));
            argv.push(secs.to_string());
        }
        argv.push(cmd.program.clone());
        argv.extend(cmd.args.iter().cloned());
        command_line(&argv).map_err(|e| ExecError::Io {
            host: self.name.clone(),
            detail: format!("`{cmd}`: {e}"),
        })
    }

    async fn spawn(
        &self,
        session: &Arc<Session>,
        line: &str,
        with_stdin: bool,
    ) -> Result<openssh::Child<Arc<Session>>, SpawnError> {
        let mut c = Session::to_raw_command(Arc::clone(session), line);
        c.stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        match c.spawn().await {
            Ok(child) => Ok(child),
            Err(openssh::Error::Disconnected) => {
                Err(SpawnError::MasterGone("the connection is gone".into()))
            }
            Err(openssh::Error::SshMux(e)) => {
                let text = e.to_string();
                if session.check().await.is_err() {
                    Err(SpawnError::MasterGone(text))
                } else if text.contains("open refused") || text.contains("prohibited") {
                    Err(SpawnError::Busy(text))
                } else {
                    Err(SpawnError::Other(ExecError::Io {
                        host: self.name.clone(),
                        detail: format!("starting the command: {text}"),
                    }))
                }
            }
            Err(e) => Err(SpawnError::Other(ExecError::Io {
                host: self.name.clone(),
                detail: format!("starting the command: {}", error_chain(&e)),
            })),
        }
    }

    /// Runs `line` to completion: feeds stdin while reading both outputs (so that no pipe fills
    /// up), then waits for the exit status.
    async fn run_line(&self, cmd: &Cmd, line: &str) -> Result<Output, ExecError> {
        let with_stdin = cmd.stdin.is_some();
        let mut session = self.session().await?;
        let _fanout = self
            .shared
            .fanout
            .acquire()
            .await
            .map_err(|_| ExecError::Closed {
                host: self.name.clone(),
            })?;
        let mut reconnected = false;
        let mut busy_wait = Duration::from_millis(10);
        let busy_since = Instant::now();
        let mut child = loop {
            match self.spawn(&session, line, with_stdin).await {
                Ok(c) => break c,
                Err(SpawnError::Other(e)) => return Err(e),
                Err(SpawnError::Busy(why)) => {
                    // Channels free up within milliseconds; a host that keeps refusing is
                    // misconfigured (MaxSessions 0, no session channels allowed).
                    if busy_since.elapsed() > BUSY_LIMIT {
                        return Err(ExecError::Io {
                            host: self.name.clone(),
                            detail: format!(
                                "sshd refused to open a session for {BUSY_LIMIT:?}: {why}"
                            ),
                        });
                    }
                    tracing::trace!(host = %self.name, reason = %why, "no free channel yet, waiting");
                    tokio::time::sleep(busy_wait).await;
                    busy_wait = (busy_wait * 2).min(Duration::from_millis(200));
                }
                Err(SpawnError::MasterGone(why)) if !reconnected => {
                    // The command never started: reconnect and start it on the new connection.
                    tracing::debug!(host = %self.name, reason = %why, "connection gone, reconnecting");
                    self.mark_down(&session).await;
                    session = self.session().await?;
                    reconnected = true;
                }
                Err(SpawnError::MasterGone(why)) => {
                    self.mark_down(&session).await;
                    return Err(ExecError::Unreachable {
                        host: self.name.clone(),
                        detail: format!("connection lost right after connecting: {why}"),
                    });
                }
            }
        };
        let stdin = child.stdin().take();
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let data = cmd.stdin.as_deref().unwrap_or_default();
        let feed = async move {
            if let Some(mut w) = stdin {
                // A command that exits without reading all its input closes the pipe: that is
                // its business, not an error of ours.
                let _ = w.write_all(data).await;
                let _ = w.shutdown().await;
            }
        };
        let read_out = async move {
            let mut buf = Vec::new();
            if let Some(mut r) = stdout {
                r.read_to_end(&mut buf).await.map(|_| buf)
            } else {
                Ok(buf)
            }
        };
        let read_err = async move {
            let mut buf = Vec::new();
            if let Some(mut r) = stderr {
                r.read_to_end(&mut buf).await.map(|_| buf)
            } else {
                Ok(buf)
            }
        };
        let ((), out, err) = tokio::join!(feed, read_out, read_err);
        let status = child.wait().await;
        let (out, err) = match (out, err) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                return Err(self
                    .lost(&session, cmd, format!("reading output: {e}"))
                    .await);
            }
        };
        let code = match status {
            Ok(s) => s.code(),
            // The native mux reports exit 127 as an error; it is a normal non-zero exit.
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
            Err(openssh::Error::RemoteProcessTerminated | openssh::Error::Disconnected) => {
                // The protocol cannot tell "killed by a signal" from "connection lost": ask the
                // master whether it is still there.
                let alive = tokio::time::timeout(Duration::from_secs(5), session.check())
                    .await
                    .is_ok_and(|r| r.is_ok());
                if !alive {
                    return Err(self
                        .lost(&session, cmd, "the connection closed".into())
                        .await);
                }
                None
            }
            Err(e) => {
                return Err(self.lost(&session, cmd, error_chain(&e)).await);
            }
        };
        Ok(Output {
            code,
            stdout: out,
            stderr: err,
        })
    }

    async fn lost(&self, session: &Arc<Session>, cmd: &Cmd, detail: String) -> ExecError {
        self.mark_down(session).await;
        ExecError::Disconnected {
            host: self.name.clone(),
            cmd: cmd.to_string(),
            detail: redact::scrub(cmd, &detail),
        }
    }

    fn check_open(&self) -> Result<(), ExecError> {
        if self.closed.load(Ordering::Acquire) {
            Err(ExecError::Closed {
                host: self.name.clone(),
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl HostExec for SshHost {
    fn host(&self) -> &str {
        &self.name
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        self.check_open()?;
        let timeout = cmd.timeout.unwrap_or(self.shared.opts.command_timeout);
        let line = self.remote_line(cmd, timeout)?;
        let _slot = self
            .per_host
            .acquire()
            .await
            .map_err(|_| ExecError::Closed {
                host: self.name.clone(),
            })?;
        self.check_open()?;
        let started = Instant::now();
        // `cmd` displays with its secret arguments redacted.
        tracing::debug!(host = %self.name, cmd = %cmd, "run");
        let result = match tokio::time::timeout(timeout, self.run_line(cmd, &line)).await {
            Ok(r) => r,
            Err(_) => Err(ExecError::Timeout {
                host: self.name.clone(),
                after: timeout,
                what: format!("`{cmd}`"),
            }),
        };
        let took = started.elapsed();
        match &result {
            Ok(out) => {
                if cmd.sudo && self.wraps_sudo() {
                    if let Some(why) = classify::sudo_failure(out.code, &out.stderr) {
                        let detail = redact::scrub(cmd, &why);
                        tracing::debug!(host = %self.name, cmd = %cmd, ?took, error = %detail, "sudo refused");
                        return Err(ExecError::Sudo {
                            host: self.name.clone(),
                            detail,
                        });
                    }
                }
                if out.success() {
                    tracing::debug!(host = %self.name, cmd = %cmd, ?took, "done");
                } else {
                    tracing::debug!(
                        host = %self.name,
                        cmd = %cmd,
                        ?took,
                        code = ?out.code,
                        stderr = %redact::first_line(cmd, &out.stderr),
                        "exited non-zero"
                    );
                }
            }
            Err(e) => {
                tracing::debug!(host = %self.name, cmd = %cmd, ?took, error = %redact::scrub(cmd, &e.to_string()), "failed");
            }
        }
        result
    }

    async fn put_file(
        &self,
        path: &str,
        contents: &[u8],
        spec: &FileSpec,
    ) -> Result<(), ExecError> {
        self.check_open()?;
        let io = |detail: String| ExecError::Io {
            host: self.name.clone(),
            detail,
        };
        let (dir, base) = split_path(path).map_err(|p| io(format!("put_file {path:?}: {p}")))?;
        if spec.mode > 0o7777 {
            return Err(io(format!(
                "put_file {path}: mode {:o} is not a file mode",
                spec.mode
            )));
        }
        let owner = match (&spec.owner, spec.sudo && self.wraps_sudo()) {
            (Some(o), _) => o.clone(),
            // Written as root through sudo, but owned by the connecting user when no owner is
            // given.
            (None, true) => self.spec.user.clone(),
            (None, false) => String::new(),
        };
        let group = spec.group.clone().unwrap_or_default();
        let mut cmd = Cmd::new("sh")
            .arg("-c")
            .arg(PUT_FILE_SCRIPT)
            .arg("ferry-put-file")
            .arg(dir)
            .arg(base)
            .arg(format!("{:04o}", spec.mode))
            .arg(owner)
            .arg(group)
            .stdin(contents.to_vec())
            .timeout(
                self.shared
                    .opts
                    .command_timeout
                    .min(put_timeout(contents.len())),
            );
        cmd.sudo = spec.sudo;
        let out = self.run(&cmd).await?;
        if out.success() {
            tracing::debug!(host = %self.name, path, bytes = contents.len(), mode = %format!("{:04o}", spec.mode), "file written");
            Ok(())
        } else {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(io(format!(
                "put_file {path}: {}",
                if why.is_empty() {
                    format!("exit code {:?}", out.code)
                } else {
                    why
                }
            )))
        }
    }

    async fn read_after_reinstall(
        &self,
        path: &str,
        accept: &(dyn for<'s> Fn(&'s str) -> bool + Send + Sync),
    ) -> Result<Reinstalled, ExecError> {
        self.learn_host_key(path, accept).await
    }

    async fn close(&self) -> Result<(), ExecError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Running commands finish first (bounded), then no new command can start.
        let all = self.shared.opts.max_commands_per_host as u32;
        let drained =
            tokio::time::timeout(Duration::from_secs(10), self.per_host.acquire_many(all)).await;
        self.per_host.close();
        let prev = std::mem::replace(&mut *self.conn.lock().await, Conn::Closed);
        let Conn::Up(session) = prev else {
            return Ok(());
        };
        if drained.is_err() {
            tracing::warn!(host = %self.name, "closing while commands are still running");
        }
        match Arc::try_unwrap(session) {
            Ok(session) => session.close().await.map_err(|e| ExecError::Io {
                host: self.name.clone(),
                detail: format!("closing the connection: {}", error_chain(&e)),
            }),
            // A command still holds it: dropping the last reference shuts the master down.
            Err(_) => Ok(()),
        }
    }
}

/// `ssh-keygen ARGS`: its stdout, or `Err` with its stderr; `Ok(None)` for exit status 1 when
/// `one_is_none` (`-F` found nothing).
async fn ssh_keygen(
    args: &[&std::ffi::OsStr],
    one_is_none: bool,
) -> Result<Option<String>, String> {
    let out = tokio::process::Command::new("ssh-keygen")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    if out.status.success() {
        return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    if one_is_none && out.status.code() == Some(1) {
        return Ok(None);
    }
    Err(format!(
        "ssh-keygen {}: {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// The key material (`type base64`) of each known_hosts line, markers and comments skipped.
fn key_material(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('@'))
        .filter_map(|l| {
            let mut f = l.split_whitespace().skip(1);
            Some(format!("{} {}", f.next()?, f.next()?))
        })
        .collect()
}

/// The `SHA256:...` fingerprints in `ssh-keygen -l` output.
fn fingerprints(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("SHA256:")))
        .map(str::to_string)
        .collect()
}

impl SshHost {
    /// [`HostExec::read_after_reinstall`]: connects once with every setting of this host but an
    /// empty known_hosts file that takes a new key, so that ssh itself records the key the host
    /// presents (through any bastion), and reads `path` over that connection. When `accept`
    /// takes the content and the key is not the recorded one, this host's entries in the
    /// known_hosts file ferry checks are replaced with it (`ssh-keygen -R`, which keeps the
    /// previous file as `known_hosts.old`), and the current connection is dropped so that the
    /// next command connects with the new key. A failed login counts against the source
    /// address on hosts with OpenSSH's `PerSourcePenalties`; this one logs in.
    async fn learn_host_key(
        &self,
        path: &str,
        accept: &(dyn for<'s> Fn(&'s str) -> bool + Send + Sync),
    ) -> Result<Reinstalled, ExecError> {
        let opts = &self.shared.opts;
        let policy = opts
            .known_hosts_policy
            .unwrap_or(self.spec.known_hosts_policy);
        let io = |detail: String| ExecError::Io {
            host: self.name.clone(),
            detail,
        };
        let dir = tempfile::Builder::new()
            .prefix("hk")
            .tempdir_in(self.shared.control_dir())
            .map_err(|e| io(format!("temporary known_hosts: {e}")))?;
        let learned_file = dir.path().join("known_hosts");
        std::fs::write(&learned_file, b"")
            .map_err(|e| io(format!("temporary known_hosts: {e}")))?;
        let mut b = self.builder.clone();
        b.known_hosts_check(KnownHosts::Add)
            .user_known_hosts_file(&learned_file)
            .control_directory(dir.path());
        let limit = opts.connect_timeout * 2 + Duration::from_secs(5);
        let session = {
            let _permit = self.shared.connect_permit().await;
            tokio::time::timeout(limit, b.connect_mux(&self.destination)).await
        };
        let session = match session {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(self.connect_error(e)),
            Err(_) => {
                return Err(ExecError::Timeout {
                    host: self.name.clone(),
                    after: limit,
                    what: "connecting with the key the host presents now".into(),
                });
            }
        };
        let read = tokio::time::timeout(
            Duration::from_secs(30),
            session.command("cat").arg(path).output(),
        )
        .await;
        let _ = session.close().await;
        let content = match read {
            Ok(Ok(o)) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(Ok(o)) => {
                return Err(io(format!(
                    "cat {path}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
            Ok(Err(e)) => return Err(io(format!("cat {path}: {}", error_chain(&e)))),
            Err(_) => return Err(io(format!("cat {path}: no answer within 30 s"))),
        };
        let accepted = accept(&content);
        let mut out = Reinstalled {
            content,
            accepted,
            key: HostKeyChange::default(),
        };
        if !accepted || policy == KnownHostsPolicy::Off {
            return Ok(out);
        }
        let learned_text = std::fs::read_to_string(&learned_file)
            .map_err(|e| io(format!("temporary known_hosts: {e}")))?;
        let learned = key_material(&learned_text);
        if learned.is_empty() {
            return Err(ExecError::HostKey {
                host: self.name.clone(),
                detail: "the host presented no key that ssh recorded".into(),
            });
        }
        let file = opts
            .known_hosts_file
            .clone()
            .unwrap_or_else(|| crate::yaml::expand_home("~/.ssh/known_hosts"));
        let address = self
            .spec
            .address
            .trim_start_matches('[')
            .trim_end_matches(']');
        let pattern = if self.spec.port == 22 {
            address.to_string()
        } else {
            format!("[{address}]:{}", self.spec.port)
        };
        let _edit = self.shared.known_hosts_edit.lock().await;
        let f = file.as_os_str();
        let p = std::ffi::OsStr::new(&pattern);
        let recorded = if file.exists() {
            ssh_keygen(&["-F".as_ref(), p, "-f".as_ref(), f], true)
                .await
                .map_err(io)?
                .unwrap_or_default()
        } else {
            String::new()
        };
        let recorded_keys = key_material(&recorded);
        let new = fingerprints(
            &ssh_keygen(
                &["-l".as_ref(), "-f".as_ref(), learned_file.as_os_str()],
                false,
            )
            .await
            .map_err(io)?
            .unwrap_or_default(),
        );
        if learned.iter().any(|k| recorded_keys.contains(k)) {
            out.key = HostKeyChange {
                replaced: false,
                old: new.clone(),
                new,
            };
            return Ok(out);
        }
        let old = if recorded_keys.is_empty() {
            Vec::new()
        } else {
            let old = fingerprints(
                &ssh_keygen(&["-l".as_ref(), "-F".as_ref(), p, "-f".as_ref(), f], true)
                    .await
                    .map_err(io)?
                    .unwrap_or_default(),
            );
            ssh_keygen(&["-R".as_ref(), p, "-f".as_ref(), f], false)
                .await
                .map_err(io)?;
            old
        };
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io(format!("{}: {e}", parent.display())))?;
        }
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut w = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&file)
                .map_err(|e| io(format!("{}: {e}", file.display())))?;
            let mut text = learned_text;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            w.write_all(text.as_bytes())
                .and_then(|()| w.sync_all())
                .map_err(|e| io(format!("{}: {e}", file.display())))?;
        }
        // the connection made with the old key (if it still stands) goes; the next command
        // connects, and is checked against the new key
        {
            let mut conn = self.conn.lock().await;
            if let Conn::Up(_) = &*conn {
                *conn = Conn::Down;
            }
        }
        tracing::warn!(host = %self.name, old = ?old, new = ?new, file = %file.display(), "host key replaced after a reinstall");
        out.key = HostKeyChange {
            replaced: true,
            old,
            new,
        };
        Ok(out)
    }
}

/// How long a command waits for sshd to accept a new channel before that is an error.
const BUSY_LIMIT: Duration = Duration::from_secs(30);

/// Writes stdin to `$dir/$base` atomically: a temp file in the same directory (created 0600 by
/// mktemp, so nobody reads it half-written), data flushed to disk, owner and mode set, then
/// renamed over the target. The temp file is removed on any failure. A constant script whose
/// data arrives only as positional parameters, never as code.
const PUT_FILE_SCRIPT: &str = r#"set -eu
dir=$1 base=$2 mode=$3 owner=$4 group=$5
[ -d "$dir" ] || { echo "directory $dir does not exist" >&2; exit 1; }
tmp=$(mktemp "$dir/.$base.ferry-XXXXXX")
trap 'rm -f "$tmp"' EXIT
dd of="$tmp" bs=65536 conv=fsync status=none
if [ -n "$owner$group" ]; then chown -- "$owner:$group" "$tmp"; fi
chmod -- "$mode" "$tmp"
mv -f -T -- "$tmp" "$dir/$base"
trap - EXIT"#;

fn put_timeout(len: usize) -> Duration {
    // Generous: 1 MiB/s plus a minute.
    Duration::from_secs(60 + (len as u64 >> 20))
}

fn split_path(path: &str) -> Result<(&str, &str), &'static str> {
    if !path.starts_with('/') {
        return Err("path must be absolute");
    }
    if path.ends_with('/') {
        return Err("path names a directory");
    }
    if path.contains('\0') {
        return Err("path contains a NUL byte");
    }
    let (dir, base) = path.rsplit_once('/').ok_or("path must be absolute")?;
    if base == "." || base == ".." {
        return Err("path names a directory");
    }
    Ok((if dir.is_empty() { "/" } else { dir }, base))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_directory_and_name() {
        assert_eq!(
            split_path("/etc/k0s/k0s.yaml"),
            Ok(("/etc/k0s", "k0s.yaml"))
        );
        assert_eq!(split_path("/f"), Ok(("/", "f")));
        assert!(split_path("rel/f").is_err());
        assert!(split_path("/etc/").is_err());
        assert!(split_path("/etc/..").is_err());
    }
}
