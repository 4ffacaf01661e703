//! `ferry hosts check`: connect to every host of a hosts file over SSH, gather its facts, and
//! report what would stop a migration (unreachable, wrong host key, refused login, no sudo,
//! duplicate hostnames or private addresses).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::facts::{DEFAULT_DATA_DIR, HostFacts};
use ferry_core::hosts::KnownHostsPolicy;
use ferry_core::{ExecError, HostExec, HostSpec};
use ferry_ssh_exec::{HostsFileError, SshConnector, SshOptions};
use serde::Serialize;

use crate::{CliError, Format, Output, exit};

#[derive(Debug, clap::Subcommand)]
pub enum HostsCommand {
    /// Connect to every host of a hosts file, print their facts (OS, hostname, architecture,
    /// CPUs, memory, private interface and address, free disk, sudo) and the problems found.
    /// Changes nothing on the hosts. Exits 3 when any host has a problem.
    Check(CheckArgs),
}

/// Host key checking, overriding every host's `knownHostsPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// The key must be in known_hosts.
    Strict,
    /// Unknown keys are added to known_hosts; a changed key is still refused.
    AcceptNew,
    /// No check (needs --insecure-no-host-key-check).
    Off,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The hosts file is mkectl's hosts.yaml (address, port, user, keyPath, privateAddress or
privateInterface per host), plus ferry's optional bastion, sudo and knownHostsPolicy.

Problems that fail the check (exit 3): a host that cannot be reached, a host key that is unknown
or changed, a refused login, a user without passwordless sudo, two hosts with the same hostname
or the same private address. Notes (a fact that could not be read) do not fail it.

Output: -o text prints a table and the problems on standard output; -o json prints one JSON
document with every host's facts and problems.")]
pub struct CheckArgs {
    /// The hosts file (mkectl's hosts.yaml).
    #[arg(long, value_name = "FILE")]
    pub hosts_path: PathBuf,
    /// Format of the report.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// The data directory whose free disk space is reported.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: String,
}

/// How ferry reaches the hosts over SSH (`ferry hosts check`, `ferry upgrade`).
#[derive(Debug, Clone, clap::Args)]
pub struct SshArgs {
    /// An ssh_config to use where ferry sets nothing (default: ~/.ssh/config when it exists).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// The known_hosts file to check host keys against (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Host key checking for every host, overriding knownHostsPolicy in the hosts file.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub known_hosts_policy: Option<PolicyArg>,
    /// Allow host key checking to be off (knownHostsPolicy: off). Anyone on the network path
    /// can then impersonate a host.
    #[arg(long)]
    pub insecure_no_host_key_check: bool,
    /// Seconds to wait for each connect attempt (TCP and SSH banner).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
}

impl Default for SshArgs {
    fn default() -> Self {
        Self {
            ssh_config: None,
            known_hosts: None,
            known_hosts_policy: None,
            insecure_no_host_key_check: false,
            connect_timeout: 10,
        }
    }
}

impl SshArgs {
    /// The connector options, and whether some host of `specs` will be connected without
    /// host key checking (allowed by --insecure-no-host-key-check; the caller warns).
    pub fn options(&self, specs: &[HostSpec]) -> (SshOptions, bool) {
        let policy = self.known_hosts_policy.map(|p| match p {
            PolicyArg::Strict => KnownHostsPolicy::Strict,
            PolicyArg::AcceptNew => KnownHostsPolicy::AcceptNew,
            PolicyArg::Off => KnownHostsPolicy::Off,
        });
        let off = specs
            .iter()
            .any(|s| policy.unwrap_or(s.known_hosts_policy) == KnownHostsPolicy::Off);
        let opts = SshOptions {
            known_hosts_policy: policy,
            allow_no_host_key_check: self.insecure_no_host_key_check,
            known_hosts_file: self.known_hosts.clone(),
            ssh_config: self.ssh_config.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout),
            ..SshOptions::default()
        };
        (opts, off && self.insecure_no_host_key_check)
    }
}

pub fn run(c: &HostsCommand, out: &mut Output<'_>) -> Result<u8, CliError> {
    match c {
        HostsCommand::Check(args) => check(args, out),
    }
}

/// The outcome for one host.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostReport {
    pub host: String,
    pub user: String,
    /// `ok`, `unreachable`, `timeout`, `auth`, `host-key`, `no-sudo`, `duplicate` or `error`.
    pub status: String,
    pub facts: Option<HostFacts>,
    pub problems: Vec<String>,
}

/// The whole report (`-o json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    pub hosts_path: String,
    pub hosts: Vec<HostReport>,
}

fn check(args: &CheckArgs, out: &mut Output<'_>) -> Result<u8, CliError> {
    let specs = ferry_ssh_exec::read_hosts_file(&args.hosts_path).map_err(|e| match e {
        HostsFileError::Read { path, problem } => CliError::Input { path, problem },
        other => CliError::InvalidContent {
            path: args.hosts_path.clone(),
            message: format!(" {other}"),
        },
    })?;
    let (opts, unchecked) = args.ssh.options(&specs);
    if unchecked {
        out.warn("host key checking is OFF for some hosts: their connections can be intercepted");
    }
    let connector = SshConnector::new(opts).map_err(|e| CliError::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the async runtime: {e}")))?;
    let data_dir = args.data_dir.clone();
    let mut hosts = runtime.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let connector = connector.clone();
            let data_dir = data_dir.clone();
            set.spawn(async move { (i, check_host(&connector, spec, &data_dir).await) });
        }
        let mut v = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                v.push(r);
            }
        }
        v.sort_by_key(|(i, _)| *i);
        v.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
    });
    find_duplicates(&mut hosts);
    let report = Report {
        ok: hosts.iter().all(|h| h.problems.is_empty()),
        hosts_path: args.hosts_path.display().to_string(),
        hosts,
    };
    match args.output {
        Format::Text => out.result(&text_report(&report, &args.data_dir)),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .map_err(|e| CliError::Internal(format!("cannot render the report: {e}")))?;
            json.push('\n');
            out.result(&json);
        }
    }
    let failed = report
        .hosts
        .iter()
        .filter(|h| !h.problems.is_empty())
        .count();
    out.info(&format!(
        "{} hosts checked: {} ok, {failed} with problems\n",
        report.hosts.len(),
        report.hosts.len() - failed
    ));
    Ok(if report.ok {
        exit::code(exit::Ending::Done)
    } else {
        exit::code(exit::Ending::ChecksFailed)
    })
}

async fn check_host(connector: &SshConnector, spec: HostSpec, data_dir: &str) -> HostReport {
    let mut r = HostReport {
        host: spec.name(),
        user: spec.user.clone(),
        status: "ok".into(),
        facts: None,
        problems: Vec::new(),
    };
    let exec: Arc<dyn HostExec> = match connector.connect_host(&spec).await {
        Ok(h) => h,
        Err(e) => {
            r.status = status_of(&e).into();
            r.problems.push(e.to_string());
            return r;
        }
    };
    match ferry_core::facts::gather(&exec, &spec, data_dir).await {
        Ok(f) => {
            if !f.sudo {
                r.status = "no-sudo".into();
                r.problems.push(format!(
                    "{}: user {} cannot run sudo without a password (sudo -n)",
                    r.host, spec.user
                ));
            }
            r.facts = Some(f);
        }
        Err(e) => {
            r.status = status_of(&e).into();
            r.problems.push(e.to_string());
        }
    }
    if let Err(e) = exec.close().await {
        r.problems.push(e.to_string());
    }
    r
}

fn status_of(e: &ExecError) -> &'static str {
    match e {
        ExecError::Unreachable { .. } => "unreachable",
        ExecError::Timeout { .. } => "timeout",
        ExecError::Auth { .. } => "auth",
        ExecError::HostKey { .. } => "host-key",
        ExecError::Sudo { .. } => "no-sudo",
        ExecError::Disconnected { .. } | ExecError::Io { .. } | ExecError::Closed { .. } => "error",
    }
}

/// Duplicate hostnames and private addresses are problems of every host that has one.
fn find_duplicates(hosts: &mut [HostReport]) {
    let facts: Vec<Option<&HostFacts>> = hosts.iter().map(|h| h.facts.as_ref()).collect();
    let found = ferry_core::facts::duplicates(&facts);
    for (host, problem) in found {
        if let Some(h) = hosts.iter_mut().find(|h| h.host == host) {
            h.problems.push(problem);
            if h.status == "ok" {
                h.status = "duplicate".into();
            }
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn text_report(r: &Report, data_dir: &str) -> String {
    let header = [
        "HOST".to_string(),
        "USER".into(),
        "HOSTNAME".into(),
        "OS".into(),
        "ARCH".into(),
        "CPUS".into(),
        "MEMORY".into(),
        "PRIVATE".into(),
        "FREE /".into(),
        format!("FREE {data_dir}"),
        "SUDO".into(),
        "STATUS".into(),
    ];
    let mut rows = vec![header.to_vec()];
    for h in &r.hosts {
        let row = match &h.facts {
            Some(f) => vec![
                h.host.clone(),
                h.user.clone(),
                f.hostname.clone(),
                if f.os.pretty_name.is_empty() {
                    format!("{} {}", f.os.id, f.os.version_id)
                } else {
                    f.os.pretty_name.clone()
                },
                f.arch.clone(),
                f.cpus.to_string(),
                gib(f.memory_bytes),
                format!(
                    "{} {}",
                    f.private_interface.as_deref().unwrap_or("-"),
                    f.private_address.as_deref().unwrap_or("-")
                ),
                gib(f.root_disk.available_bytes),
                gib(f.data_dir_disk.available_bytes),
                if f.sudo { "yes" } else { "no" }.into(),
                h.status.clone(),
            ],
            None => {
                let mut v = vec![h.host.clone(), h.user.clone()];
                v.extend(std::iter::repeat_n("-".to_string(), 9));
                v.push(h.status.clone());
                v
            }
        };
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
    }
    let problems: Vec<&String> = r.hosts.iter().flat_map(|h| &h.problems).collect();
    let notes: Vec<String> = r
        .hosts
        .iter()
        .filter_map(|h| h.facts.as_ref().map(|f| (h, f)))
        .flat_map(|(h, f)| f.notes.iter().map(move |n| format!("{}: {n}", h.host)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\nNotes:");
        for n in notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    if problems.is_empty() {
        let _ = writeln!(s, "\nNo problems found.");
    } else {
        let _ = writeln!(s, "\nProblems:");
        for p in problems {
            let _ = writeln!(s, "  - {p}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::facts::{DiskFree, InitSystem, OsInfo};

    fn host(name: &str, hostname: &str, addr: &str) -> HostReport {
        HostReport {
            host: name.into(),
            user: "u".into(),
            status: "ok".into(),
            facts: Some(HostFacts {
                host: name.into(),
                hostname: hostname.into(),
                os: OsInfo::default(),
                arch: "x86_64".into(),
                cpus: 1,
                memory_bytes: 1,
                private_interface: Some("eth1".into()),
                private_address: Some(addr.into()),
                root_disk: DiskFree::default(),
                data_dir_disk: DiskFree::default(),
                sudo: true,
                listening: Default::default(),
                init_system: InitSystem::Systemd,
                notes: vec![],
                took: Default::default(),
            }),
            problems: vec![],
        }
    }

    #[test]
    fn duplicate_hostnames_and_private_addresses_are_problems() {
        let mut hosts = vec![
            host("a", "n1", "172.16.0.1"),
            host("b", "n2", "172.16.0.1"),
            host("c", "n1", "172.16.0.3"),
            host("d", "n4", "172.16.0.4"),
        ];
        find_duplicates(&mut hosts);
        assert_eq!(
            hosts[0].problems,
            [
                "a: duplicate hostname n1 (also on c)",
                "a: duplicate private address 172.16.0.1 (also on b)"
            ]
        );
        assert_eq!(
            hosts[1].problems,
            ["b: duplicate private address 172.16.0.1 (also on a)"]
        );
        assert_eq!(hosts[2].problems, ["c: duplicate hostname n1 (also on a)"]);
        assert!(hosts[3].problems.is_empty());
        assert_eq!(hosts[0].status, "duplicate");
        assert_eq!(hosts[3].status, "ok");
    }
}
