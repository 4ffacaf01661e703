//! One module per subcommand. Each exposes its clap arguments and a `run` that returns an exit
//! code or a [`crate::CliError`].

pub mod check;
pub mod cloud;
pub mod cluster;
pub mod completions;
pub mod hosts;
pub mod init;
pub mod k0s;
pub mod mke3;
pub mod node;
pub mod rbac;
pub mod report;
pub mod resume;
pub mod rollback;
pub mod support_dump;
pub mod upgrade;
