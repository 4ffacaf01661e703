//! # ferry-ssh-exec
//!
//! The SSH backend of ferry. It will implement `ferry-core`'s `HostExec` and `Connector` with
//! the `openssh` crate: one multiplexed connection per host for the whole run, commands as argv
//! (never shell strings), sudo wrapping, atomic `put_file`, per-command timeouts, strict host
//! keys by default, host facts gathering, and errors that name the host and what failed. It also
//! reads the `hosts.yaml` of `mkectl upgrade`.
