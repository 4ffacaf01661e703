//! # ferry-ssh-exec
//!
//! The SSH backend of ferry: `ferry-core`'s [`HostExec`](ferry_core::HostExec) and
//! [`Connector`](ferry_core::Connector) over OpenSSH, through the `openssh` crate's native
//! multiplexing (one `ssh` master process per host, every command a channel on it, no process
//! per command).
//!
//! - [`yaml`]: reading and validating `hosts.yaml` (mkectl's format plus `bastion`, `sudo`,
//!   `knownHostsPolicy`); errors name the entry and the field.
//! - [`SshConnector`] / [`SshHost`]: one connection per host kept for the run, connect timeout
//!   and retries for transient failures only, at most 10 commands per host (sshd's
//!   `MaxSessions`) and a global fan-out limit, host keys strict by default, commands as argv
//!   quoted for the remote shell ([`quote`]), `sudo -n`, stdin, per-command timeouts, atomic
//!   `put_file`, secrets redacted in every log line ([`redact`]).
//!
//! Host facts are gathered by `ferry_core::facts` over any `HostExec`, this one included.

pub mod classify;
pub mod connector;
pub mod host;
pub mod quote;
pub mod redact;
pub mod yaml;

pub use connector::{SetupError, SshConnector, SshOptions, default_control_bases};
pub use host::SshHost;
pub use yaml::{HostsFileError, parse_hosts, read_hosts_file};
