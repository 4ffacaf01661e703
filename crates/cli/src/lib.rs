//! # ferry-cli
//!
//! The composition root of ferry: command-line parsing with clap, wiring of the libraries, output
//! and exit codes. The `ferry` binary is a one-line `main` over [`main_with_args`]; tests drive
//! [`run`] directly with captured output.
//!
//! Exit codes are documented in [`exit`].

pub mod cmd;
pub mod error;
pub mod exit;
pub mod fsio;
mod logging;
pub mod output;
pub mod session;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

pub use error::CliError;
pub use output::Output;

/// ferry moves Kubernetes clusters safely: today, MKE 3.7/3.8 to MKE 4k, rolled back on any
/// failure or Ctrl-C and journaled so that a crash can be resumed or rolled back.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "ferry moves Kubernetes clusters safely: MKE 3.7/3.8 to MKE 4k (the configuration converted, RBAC translated), rolling k0s upgrades, node OS replacement, and the in-tree to out-of-tree AWS cloud provider move of RKE2 and RKE clusters; each rolled back on any failure or Ctrl-C.",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an MKE 4k configuration: the defaults, or the conversion of an MKE 3 config-toml.
    Init(cmd::init::InitArgs),
    /// Offline checks of input files.
    #[command(subcommand)]
    Check(cmd::check::CheckCommand),
    /// Translate MKE 3 orgs, teams, users, roles and grants into Kubernetes RBAC manifests.
    Rbac(cmd::rbac::RbacArgs),
    /// Check the hosts of a hosts file over SSH: facts and problems.
    #[command(subcommand)]
    Hosts(cmd::hosts::HostsCommand),
    /// Read an MKE 3 cluster over its API: export its access model and config TOML.
    #[command(subcommand)]
    Mke3(cmd::mke3::Mke3Command),
    /// Look at a Kubernetes cluster through its API: nodes and readiness.
    #[command(subcommand)]
    Cluster(cmd::cluster::ClusterCommand),
    /// A k0s or MKE 4k cluster: the safety and availability report, and a rolling version upgrade.
    #[command(subcommand)]
    K0s(cmd::k0s::K0sCommand),
    /// Nodes of a k0s cluster: replace every node's operating system without downtime.
    #[command(subcommand)]
    Node(cmd::node::NodeCommand),
    /// A Rancher RKE2 or an RKE cluster on AWS: move it from the in-tree to the out-of-tree
    /// cloud provider with leader migration.
    #[command(subcommand, name = "cloud-provider")]
    CloudProvider(cmd::cloud::CloudCommand),
    /// Upgrade an MKE 3.7/3.8 cluster to MKE 4k in place, rolling back on any failure or Ctrl-C.
    Upgrade(cmd::upgrade::UpgradeArgs),
    /// Continue an interrupted or crashed run from its journal.
    Resume(cmd::resume::ResumeArgs),
    /// Undo what an interrupted or crashed run did, from its journal.
    Rollback(cmd::rollback::RollbackArgs),
    /// Draw a run from its journal: a timeline with one row per host (HTML, SVG or JSON).
    Report(cmd::report::ReportArgs),
    /// Where a run stands: its phase, per host what is done, in flight and left, the run lock,
    /// and the command that continues or rolls it back.
    Status(cmd::report::StatusArgs),
    /// Collect a support bundle of a run into its state directory: per host the MKE 3 and k0s
    /// logs, containers, k0s status, ferry host lock and disk usage, plus the journal and the
    /// summary, every secret redacted. Changes nothing.
    #[command(name = "support-dump")]
    SupportDump(cmd::support_dump::SupportDumpArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completions(cmd::completions::CompletionsArgs),
}

/// Output format of a command's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// Parses `args` and runs the command, printing through `out`. Returns the exit code.
pub fn run<I, T>(args: I, out: &mut Output<'_>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(args, out, &session::Runtime::process())
}

/// [`run`] with the process's environment, terminal, signals and backends replaced by `rt`
/// (tests drive `ferry upgrade` and `ferry rollback` with in-memory fakes through it).
pub fn run_with<I, T>(args: I, out: &mut Output<'_>, rt: &session::Runtime) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap renders help, version and usage errors itself.
            let code = exit::code(if e.use_stderr() {
                exit::Ending::InvalidInput
            } else {
                exit::Ending::Done
            });
            let rendered = e.render().to_string();
            if e.use_stderr() {
                out.info(&rendered);
            } else {
                out.result(&rendered);
            }
            return code;
        }
    };
    let result = match cli.command {
        Command::Init(args) => cmd::init::run(&args, out),
        Command::Upgrade(args) => cmd::upgrade::run_upgrade_with(rt, &args, out),
        Command::Resume(args) => cmd::resume::run_resume_with(rt, &args, out),
        Command::Rollback(args) => cmd::rollback::run_rollback_with(rt, &args, out),
        Command::Completions(args) => cmd::completions::run(&args, out),
        Command::Check(c) => cmd::check::run(&c, out),
        Command::Rbac(args) => cmd::rbac::run(&args, out),
        Command::Hosts(c) => cmd::hosts::run(&c, out),
        Command::Mke3(c) => cmd::mke3::run(&c, rt, out),
        Command::Cluster(c) => cmd::cluster::run(&c, out),
        Command::K0s(c) => cmd::k0s::run(&c, rt, out),
        Command::Node(c) => cmd::node::run(&c, rt, out),
        Command::CloudProvider(c) => cmd::cloud::run(&c, rt, out),
        Command::Report(args) => cmd::report::report(&args, rt, out),
        Command::Status(args) => cmd::report::status(&args, rt, out),
        Command::SupportDump(args) => cmd::support_dump::run_with(rt, &args, out),
    };
    if let Some(p) = out.take_report() {
        out.info(&format!("Report: {}\n", p.display()));
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            e.exit_code()
        }
    }
}

/// Entry point of the binary: runs with the process's stdout and stderr.
pub fn main_with_args<I, T>(args: I) -> std::process::ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let mut out = Output::new(&mut stdout, &mut stderr);
    std::process::ExitCode::from(run(args, &mut out))
}
