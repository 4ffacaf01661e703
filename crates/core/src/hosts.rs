//! The hosts of a cluster as the operator lists them (`hosts.yaml` of `mkectl upgrade`, plus
//! ferry's additions). Reading and validating the file is the SSH backend's job; this is the data.

use serde::{Deserialize, Serialize};

/// How strictly an SSH host key is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnownHostsPolicy {
    /// The key must already be in `known_hosts` (the default).
    #[default]
    Strict,
    /// An unknown key is added; a changed key is still refused.
    AcceptNew,
    /// No check at all; only with an explicit flag, and with a warning.
    Off,
}

/// A jump host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bastion {
    pub address: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub key_path: Option<String>,
}

/// One entry of `hosts.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostSpec {
    /// IP address or DNS name used to connect.
    pub address: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    /// Private key file; the SSH agent / default keys when absent.
    #[serde(default)]
    pub key_path: Option<String>,
    /// The address other nodes reach this one on (mutually exclusive with `private_interface`).
    #[serde(default)]
    pub private_address: Option<String>,
    /// The interface whose address is the private address.
    #[serde(default)]
    pub private_interface: Option<String>,
    #[serde(default)]
    pub bastion: Option<Bastion>,
    /// Use `sudo -n` for privileged commands (needed unless `user` is root).
    #[serde(default = "default_true")]
    pub sudo: bool,
    #[serde(default)]
    pub known_hosts_policy: KnownHostsPolicy,
}

impl HostSpec {
    /// `address:port`, the name of the host in messages.
    pub fn name(&self) -> String {
        if self.port == 22 {
            self.address.clone()
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

fn default_port() -> u16 {
    22
}

fn default_true() -> bool {
    true
}
