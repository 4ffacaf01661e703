//! k0s on a host, for every flow that installs, upgrades or removes it: the binary (from a local
//! file, which is what an airgapped cluster needs, or from the release URL for the host's
//! architecture), `k0s install controller|worker`, start, stop, status, reset, join tokens, the
//! etcd member list and backups. The service manager is the one k0s itself picks (see
//! [`crate::facts::InitSystem`]), never assumed to be systemd.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::StepError;
use crate::exec::{Cmd, FileSpec, HostExec, Output};
use crate::facts::{InitSystem, k0s_arch};
use crate::secret::Secret;

/// Where the k0s binary goes.
pub const K0S_BIN: &str = "/usr/local/bin/k0s";
/// k0s's configuration directory.
pub const K0S_DIR: &str = "/etc/k0s";
/// The controller configuration ferry writes.
pub const K0S_CONFIG: &str = "/etc/k0s/k0s.yaml";
/// A join token, present only while `k0s install` reads it.
pub const K0S_TOKEN: &str = "/etc/k0s/join-token";
/// The service names `k0s install` creates.
pub const UNITS: [&str; 2] = ["k0scontroller", "k0sworker"];

/// Where the k0s binary comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "camelCase")]
pub enum K0sBinary {
    /// The release of `version` for the host's architecture, downloaded on the host.
    Release { version: String },
    /// A file on this machine (`--k0s-binary`), copied to every host.
    File { path: PathBuf },
}

impl K0sBinary {
    /// The release download URL of `version` for a host whose `uname -m` is `machine`.
    pub fn release_url(version: &str, machine: &str) -> Result<String, StepError> {
        let arch = k0s_arch(machine).ok_or_else(|| {
            StepError::new(format!(
                "k0s publishes no binary for architecture {machine:?}: give one with --k0s-binary"
            ))
        })?;
        let v = version.replace('+', "%2B");
        Ok(format!(
            "https://github.com/k0sproject/k0s/releases/download/{v}/k0s-{v}-{arch}"
        ))
    }
}

/// What a k0s install is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// A controller; with `worker` it also runs workloads (`--enable-worker`).
    Controller {
        worker: bool,
    },
    Worker,
}

impl Role {
    pub fn token_role(self) -> &'static str {
        match self {
            Role::Controller { .. } => "controller",
            Role::Worker => "worker",
        }
    }
}

/// Runs `cmd` and fails unless it exits 0, naming the host, the command and its stderr.
pub async fn ok(h: &dyn HostExec, cmd: Cmd) -> Result<Output, StepError> {
    let shown = cmd.to_string();
    let out = h.run(&cmd).await?;
    if out.success() {
        Ok(out)
    } else {
        Err(StepError::new(format!(
            "{}: `{shown}` exited with {}: {}",
            h.host(),
            out.code.map_or("a signal".to_string(), |c| c.to_string()),
            out.stderr_text().trim()
        )))
    }
}

/// `test FLAG PATH` as root.
pub async fn exists(h: &dyn HostExec, flag: &str, path: &str) -> Result<bool, StepError> {
    Ok(h.run(&Cmd::new("test").args([flag, path]).sudo())
        .await?
        .success())
}

fn k0s(args: &[&str]) -> Cmd {
    Cmd::new("k0s").args(args.iter().copied()).sudo()
}

/// k0s on one host.
#[derive(Debug, Clone, Copy)]
pub struct K0sHost<'a> {
    pub exec: &'a dyn HostExec,
    pub init: InitSystem,
}

impl<'a> K0sHost<'a> {
    pub fn new(exec: &'a dyn HostExec, init: InitSystem) -> Self {
        Self { exec, init }
    }

    /// Puts the k0s binary in place, executable.
    pub async fn put_binary(&self, from: &K0sBinary, machine: &str) -> Result<(), StepError> {
        let h = self.exec;
        match from {
            K0sBinary::File { path } => {
                let bytes = std::fs::read(path).map_err(|e| {
                    StepError::caused(
                        format!("cannot read the k0s binary {}", path.display()),
                        e,
                        false,
                    )
                })?;
                h.put_file(K0S_BIN, &bytes, &FileSpec::root(0o755)).await?;
            }
            K0sBinary::Release { version } => {
                let url = K0sBinary::release_url(version, machine)?;
                ok(
                    h,
                    Cmd::new("curl").args(["-sSLf", "-o", K0S_BIN, &url]).sudo(),
                )
                .await?;
                ok(h, Cmd::new("chmod").args(["755", K0S_BIN]).sudo()).await?;
            }
        }
        Ok(())
    }

    /// The k0s service installed on the host, if any (`k0scontroller` or `k0sworker`).
    pub async fn installed(&self) -> Result<Option<&'static str>, StepError> {
        for unit in UNITS {
            if exists(self.exec, "-f", &self.init.unit_path(unit)).await? {
                return Ok(Some(unit));
            }
        }
        Ok(None)
    }

    /// `k0s install controller|worker`; a controller reads `config`, a joining host
    /// `token_file`.
    pub async fn install(
        &self,
        role: Role,
        config: Option<&str>,
        token_file: Option<&str>,
    ) -> Result<(), StepError> {
        let mut args: Vec<&str> = match role {
            Role::Controller { worker } => {
                let mut a = vec!["install", "controller"];
                if worker {
                    a.push("--enable-worker");
                }
                a
            }
            Role::Worker => vec!["install", "worker"],
        };
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        if let Some(t) = token_file {
            args.extend(["--token-file", t]);
        }
        ok(self.exec, k0s(&args)).await.map(|_| ())
    }

    pub async fn start(&self) -> Result<(), StepError> {
        ok(self.exec, k0s(&["start"])).await.map(|_| ())
    }

    pub async fn stop(&self) -> Result<(), StepError> {
        ok(self.exec, k0s(&["stop"])).await.map(|_| ())
    }

    /// `k0s status`, when k0s runs.
    pub async fn status(&self) -> Result<Option<K0sStatus>, StepError> {
        let out = self.exec.run(&k0s(&["status"])).await?;
        Ok(out.success().then(|| parse_status(&out.stdout_text())))
    }

    /// The command line the running k0s daemon was started with (`k0s status -o json`, its
    /// `Args`: the binary, the role, then the flags `k0s install` recorded in the service).
    pub async fn daemon_args(&self) -> Result<Option<Vec<String>>, StepError> {
        let out = self.exec.run(&k0s(&["status", "-o", "json"])).await?;
        if !out.success() {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            StepError::new(format!(
                "{}: k0s status -o json is not JSON: {e}",
                self.exec.host()
            ))
        })?;
        Ok(Some(
            v["Args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        ))
    }

    /// `k0s install ROLE FLAGS...` with flags as k0s takes them (`--config=/etc/k0s/k0s.yaml`).
    pub async fn install_with(&self, role: &str, flags: &[String]) -> Result<(), StepError> {
        let mut args: Vec<&str> = vec!["install", role];
        args.extend(flags.iter().map(String::as_str));
        ok(self.exec, k0s(&args)).await.map(|_| ())
    }

    /// `k0s etcd leave --peer-address ADDR`: removes the etcd member with that peer address,
    /// through this (running) controller.
    pub async fn etcd_leave(&self, peer_address: &str) -> Result<(), StepError> {
        let flag = format!("--peer-address={peer_address}");
        ok(self.exec, k0s(&["etcd", "leave", &flag]))
            .await
            .map(|_| ())
    }

    /// `k0s status` succeeds: k0s runs.
    pub async fn running(&self) -> Result<bool, StepError> {
        Ok(self.status().await?.is_some())
    }

    /// Stops k0s when it runs.
    pub async fn stop_if_running(&self) -> Result<(), StepError> {
        if self.running().await? {
            self.stop().await?;
        }
        Ok(())
    }

    /// `k0s reset`: removes the service and k0s's data (k0s must be stopped).
    pub async fn reset(&self) -> Result<(), StepError> {
        ok(self.exec, k0s(&["reset"])).await.map(|_| ())
    }

    /// A join token for `role`, valid for `expiry` (a Go duration such as `1h`).
    pub async fn token_create(
        &self,
        role: Role,
        expiry: &str,
    ) -> Result<Secret<String>, StepError> {
        let r = format!("--role={}", role.token_role());
        let e = format!("--expiry={expiry}");
        let out = ok(self.exec, k0s(&["token", "create", &r, &e])).await?;
        Ok(Secret::new(out.stdout_text().trim().to_string()))
    }

    /// Writes `token` to [`K0S_TOKEN`] (root, 0600) for `k0s install --token-file`.
    pub async fn put_token(&self, token: &Secret<String>) -> Result<(), StepError> {
        self.exec
            .put_file(K0S_TOKEN, token.expose().as_bytes(), &FileSpec::root(0o600))
            .await?;
        Ok(())
    }

    /// `k0s etcd member-list`: member name -> peer URL.
    pub async fn etcd_members(&self) -> Result<BTreeMap<String, String>, StepError> {
        let out = ok(self.exec, k0s(&["etcd", "member-list"])).await?;
        // k0s before 1.22 printed the list to stderr.
        let text = if out.stdout.is_empty() {
            out.stderr_text()
        } else {
            out.stdout_text()
        };
        parse_member_list(&text)
            .map_err(|e| StepError::new(format!("{}: k0s etcd member-list: {e}", self.exec.host())))
    }

    /// `k0s backup --save-path DIR` (the directory must exist); k0s names the archive.
    pub async fn backup(&self, dir: &str) -> Result<(), StepError> {
        ok(self.exec, k0s(&["backup", "--save-path", dir]))
            .await
            .map(|_| ())
    }

    /// Makes the service manager re-read its units, where it has to.
    pub async fn reload(&self) -> Result<(), StepError> {
        if let Some(c) = self.init.reload() {
            ok(self.exec, c).await?;
        }
        Ok(())
    }
}

/// What `k0s status` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K0sStatus {
    pub version: String,
    /// `controller` or `worker`.
    pub role: String,
    /// The controller also runs workloads.
    pub workloads: bool,
}

/// The `Key: value` lines of `k0s status`.
pub fn parse_status(text: &str) -> K0sStatus {
    let mut s = K0sStatus::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "Version" => s.version = v.to_string(),
            "Role" => s.role = v.to_string(),
            "Workloads" => s.workloads = v == "true",
            _ => {}
        }
    }
    s
}

/// `{"members":{"name":"https://10.0.0.1:2380"}}`.
pub fn parse_member_list(text: &str) -> Result<BTreeMap<String, String>, String> {
    #[derive(Deserialize)]
    struct List {
        members: BTreeMap<String, String>,
    }
    serde_json::from_str::<List>(text.trim())
        .map(|l| l.members)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_urls_follow_the_host_architecture() {
        assert_eq!(
            K0sBinary::release_url("v1.31.1+k0s.1", "aarch64").unwrap(),
            "https://github.com/k0sproject/k0s/releases/download/v1.31.1%2Bk0s.1/k0s-v1.31.1%2Bk0s.1-arm64"
        );
        assert!(
            K0sBinary::release_url("v1.31.1+k0s.1", "x86_64")
                .unwrap()
                .ends_with("-amd64")
        );
        let e = K0sBinary::release_url("v1", "s390x").unwrap_err();
        assert!(e.to_string().contains("--k0s-binary"), "{e}");
    }

    #[test]
    fn status() {
        let s = parse_status(
            "Version: v1.31.1+k0s.1\nProcess ID: 4242\nRole: controller\nWorkloads: true\nSingleNode: false\n",
        );
        assert_eq!(
            s,
            K0sStatus {
                version: "v1.31.1+k0s.1".into(),
                role: "controller".into(),
                workloads: true
            }
        );
    }

    #[test]
    fn member_lists() {
        let m = parse_member_list(
            r#"{"members":{"m0":"https://10.0.0.1:2380","m1":"https://10.0.0.2:2380"}}"#,
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["m1"], "https://10.0.0.2:2380");
        assert!(parse_member_list("not json").is_err());
    }
}
