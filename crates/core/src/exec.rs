//! Running commands on hosts: the [`HostExec`] and [`Connector`] traits and their data.
//!
//! A command is data ([`Cmd`]: program, argv, sudo, stdin, timeout, which arguments are secret),
//! never a shell string, so that no quoting bug can turn a value into code and a secret can be
//! redacted wherever the command is shown. A non-zero exit is an [`Output`], not an error: only
//! the transport fails with an [`ExecError`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::hosts::HostSpec;

/// A command to run on a host.
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The program, looked up in the host's `PATH` (or an absolute path).
    pub program: String,
    /// Arguments, passed as they are.
    pub args: Vec<String>,
    /// Run as root through `sudo -n` (non-interactive: a password prompt is a failure).
    pub sudo: bool,
    /// Bytes fed to standard input; `None` gives an empty standard input.
    pub stdin: Option<Vec<u8>>,
    /// Give up after this long; the backend's default when `None`.
    pub timeout: Option<Duration>,
    /// Indices into `args` of arguments that are secret: shown as `<redacted>` everywhere.
    pub secret_args: BTreeSet<usize>,
}

impl Cmd {
    /// A command running `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            sudo: false,
            stdin: None,
            timeout: None,
            secret_args: BTreeSet::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends an argument that must never be shown (a token, a password).
    pub fn secret_arg(mut self, a: impl Into<String>) -> Self {
        self.secret_args.insert(self.args.len());
        self.args.push(a.into());
        self
    }

    /// Runs the command as root through `sudo -n`.
    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    /// Feeds `bytes` to standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// The arguments with secrets replaced by `<redacted>`, for logs, journals and errors.
    pub fn redacted_args(&self) -> Vec<String> {
        self.args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if self.secret_args.contains(&i) {
                    "<redacted>".to_string()
                } else {
                    a.clone()
                }
            })
            .collect()
    }
}

/// Shows the command as a shell would read it, with secrets redacted. For humans only: backends
/// never build a shell string from it.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sudo {
            f.write_str("sudo -n ")?;
        }
        f.write_str(&shell_quote(&self.program))?;
        for a in self.redacted_args() {
            write!(f, " {}", shell_quote(&a))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("program", &self.program)
            .field("args", &self.redacted_args())
            .field("sudo", &self.sudo)
            .field(
                "stdin",
                &self.stdin.as_ref().map(|s| format!("<{} bytes>", s.len())),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Quotes a word for display the way POSIX sh would read it back.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// The exit code; `None` when the command was killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Mode and ownership of a file written with [`HostExec::put_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    /// Owner user name; the connecting user when `None`.
    pub owner: Option<String>,
    /// Owner group name; the owner's primary group when `None`.
    pub group: Option<String>,
    /// Write as root (through sudo), for paths the user cannot write.
    pub sudo: bool,
}

impl FileSpec {
    /// A file owned by root with `mode`, written through sudo.
    pub fn root(mode: u32) -> Self {
        Self {
            mode,
            owner: Some("root".into()),
            group: None,
            sudo: true,
        }
    }
}

impl Default for FileSpec {
    fn default() -> Self {
        Self {
            mode: 0o644,
            owner: None,
            group: None,
            sudo: false,
        }
    }
}

/// Why a transport failed. Every variant names the host. The engine decides on retries and
/// rollback from the kind alone, without knowing the transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// Nothing answered: connection refused, no route, or the host is down.
    #[error("{host}: unreachable: {detail}")]
    Unreachable { host: String, detail: String },
    /// Connecting or the command took longer than allowed.
    #[error("{host}: timed out after {after:?}: {what}")]
    Timeout {
        host: String,
        after: Duration,
        what: String,
    },
    /// The host refused the credentials.
    #[error("{host}: authentication failed: {detail}")]
    Auth { host: String, detail: String },
    /// The host key is unknown or changed.
    #[error("{host}: host key verification failed: {detail}")]
    HostKey { host: String, detail: String },
    /// The connection broke while a command was running; the command's effect is unknown.
    #[error("{host}: connection lost during `{cmd}`: {detail}")]
    Disconnected {
        host: String,
        cmd: String,
        detail: String,
    },
    /// `sudo -n` needs a password or is not allowed.
    #[error("{host}: sudo is not available without a password: {detail}")]
    Sudo { host: String, detail: String },
    /// A local or remote IO problem that is none of the above (e.g. a put_file target that
    /// cannot be written).
    #[error("{host}: {detail}")]
    Io { host: String, detail: String },
    /// The connection was closed with [`HostExec::close`].
    #[error("{host}: connection is closed")]
    Closed { host: String },
}

impl ExecError {
    /// Failures worth retrying with backoff: the next attempt may succeed without anyone doing
    /// anything. Authentication and host-key failures never are.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExecError::Unreachable { .. } | ExecError::Timeout { .. }
        )
    }

    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            ExecError::Unreachable { host, .. }
            | ExecError::Timeout { host, .. }
            | ExecError::Auth { host, .. }
            | ExecError::HostKey { host, .. }
            | ExecError::Disconnected { host, .. }
            | ExecError::Sudo { host, .. }
            | ExecError::Io { host, .. }
            | ExecError::Closed { host } => host,
        }
    }
}

/// The command that removes what an interrupted [`HostExec::put_file`] of `path` left beside it
/// (`.<name>.ferry-*` files in its directory), as root.
pub fn partial_uploads_cmd(path: &str) -> Cmd {
    let (dir, name) = dir_and_name(path);
    Cmd::new("find")
        .args([dir, "-maxdepth", "1", "-name"])
        .arg(format!(".{name}.ferry-*"))
        .args(["-type", "f", "-delete"])
        .sudo()
}

fn dir_and_name(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((d, n)) => (d, n),
        None => (".", path),
    }
}

/// Removes what interrupted uploads of `path` left (see [`partial_uploads_cmd`]); nothing to do
/// when the directory does not exist; a failure of the command is an error naming the host.
pub async fn discard_partial_uploads(h: &dyn HostExec, path: &str) -> Result<(), ExecError> {
    let (dir, _) = dir_and_name(path);
    if !h
        .run(&Cmd::new("test").args(["-d", dir]).sudo())
        .await?
        .success()
    {
        return Ok(());
    }
    let out = h.run(&partial_uploads_cmd(path)).await?;
    if out.success() {
        Ok(())
    } else {
        Err(ExecError::Io {
            host: h.host().to_string(),
            detail: format!(
                "cannot remove partial uploads of {path}: {}",
                out.stderr_text().trim()
            ),
        })
    }
}

/// Runs commands on one host.
///
/// Behaviour every implementation must have (checked by the conformance suite):
/// - `run` returns the exit code and both output streams in full, however large; a non-zero exit
///   is `Ok(Output)`; stdin is fed and closed; `sudo` runs as root without a prompt or fails with
///   [`ExecError::Sudo`]; a timeout ends the command and returns [`ExecError::Timeout`].
/// - `put_file` replaces the file atomically (a reader sees the old or the new content, never a
///   part) with the given mode and owner, creating no parent directories. It writes a temporary
///   file `.<name>.ferry-<random>` beside the target and renames it over the target; a host or
///   connection that dies in between can leave that file behind, and
///   [`discard_partial_uploads`] removes it (every undo of a step that uploads does).
/// - after `close`, every call fails with [`ExecError::Closed`]; `close` reports a failure to shut
///   the connection down cleanly and is idempotent.
/// - calls may run concurrently; the implementation limits them as the transport requires.
#[async_trait::async_trait]
pub trait HostExec: Send + Sync + fmt::Debug {
    /// The host's name in messages (its address, or `address:port`).
    fn host(&self) -> &str;

    /// Runs `cmd`.
    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError>;

    /// Writes `contents` to `path` atomically with `spec`.
    async fn put_file(&self, path: &str, contents: &[u8], spec: &FileSpec)
    -> Result<(), ExecError>;

    /// Closes the connection.
    async fn close(&self) -> Result<(), ExecError>;

    /// For a host being reinstalled: connects with whatever host key the host presents now
    /// (every other setting of this host kept), reads the file `path` there, and, when
    /// `accept` says yes to its content, records that key for this host in place of the
    /// recorded one, so that the next command connects with it. Only a flow that reinstalls
    /// this very host calls it, at the moment it expects the change; every other changed key
    /// is still refused. A transport without host keys only reads the file.
    async fn read_after_reinstall(
        &self,
        path: &str,
        accept: &(dyn for<'s> Fn(&'s str) -> bool + Send + Sync),
    ) -> Result<Reinstalled, ExecError> {
        let out = self.run(&Cmd::new("cat").arg(path)).await?;
        if !out.success() {
            return Err(ExecError::Io {
                host: self.host().to_string(),
                detail: format!("cat {path}: {}", out.stderr_text().trim()),
            });
        }
        let content = out.stdout_text();
        let accepted = accept(&content);
        Ok(Reinstalled {
            content,
            accepted,
            key: HostKeyChange::default(),
        })
    }
}

/// What [`HostExec::read_after_reinstall`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reinstalled {
    /// The file's content, read with the key the host presents now.
    pub content: String,
    /// The caller accepted it (and so the key).
    pub accepted: bool,
    pub key: HostKeyChange,
}

/// What [`HostExec::read_after_reinstall`] did to the recorded host key.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostKeyChange {
    /// The recorded keys were replaced (false: the host presents a key already recorded).
    pub replaced: bool,
    /// Fingerprints of the keys recorded before (`SHA256:...`).
    pub old: Vec<String>,
    /// Fingerprints of the keys the host presents now.
    pub new: Vec<String>,
}

/// Opens a [`HostExec`] for a host of the hosts file.
#[async_trait::async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// Connects to `host`. Transient failures are retried inside, within the connect timeout.
    async fn connect(&self, host: &HostSpec) -> Result<Arc<dyn HostExec>, ExecError>;

    /// A connection to `host` that is made when it is first used (for a host that is away
    /// now). Default: [`Connector::connect`].
    async fn handle(&self, host: &HostSpec) -> Result<Arc<dyn HostExec>, ExecError> {
        self.connect(host).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let c = Cmd::new("k0s")
            .arg("token")
            .secret_arg("s3cr3t")
            .arg("it's")
            .sudo();
        assert_eq!(c.to_string(), "sudo -n k0s token '<redacted>' 'it'\\''s'");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(c.args[1], "s3cr3t");
    }

    #[test]
    fn only_unreachable_and_timeouts_are_retried() {
        let h = || "h1".to_string();
        assert!(
            ExecError::Unreachable {
                host: h(),
                detail: "refused".into()
            }
            .is_transient()
        );
        assert!(
            !ExecError::Auth {
                host: h(),
                detail: "denied".into()
            }
            .is_transient()
        );
        assert!(
            !ExecError::HostKey {
                host: h(),
                detail: "changed".into()
            }
            .is_transient()
        );
    }
}
