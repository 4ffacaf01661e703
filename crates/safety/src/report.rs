//! What the checks found, per node: the report in Kismatic's layout and as JSON.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Why a finding matters (the grouping of the Kismatic guide, plus what could not be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Class {
    /// Data may be lost.
    Unsafe,
    /// The cluster or a workload may become unavailable.
    Unavailable,
    /// Something the check needs could not be read or resolved; the check fails closed.
    Unknown,
    /// The node is not ready to be upgraded (readiness checks: disk, binary).
    NotReady,
}

/// What was found. The kinds are stable names for `-o json` and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    EtcdQuorum,
    OnlyController,
    OnlyWorker,
    IngressNode,
    StorageNode,
    NodeMissing,
    EmptyDir,
    HostPath,
    HostPathVolume,
    LocalVolume,
    Unmanaged,
    FewReplicas,
    AllReplicasHere,
    SingleDaemonSet,
    Job,
    UnknownOwner,
    OwnerMissing,
    ClaimMissing,
    VolumeMissing,
    DisruptionBudget,
    LookupFailed,
    Readiness,
}

impl Kind {
    pub fn class(self) -> Class {
        match self {
            Kind::EmptyDir
            | Kind::HostPath
            | Kind::HostPathVolume
            | Kind::LocalVolume
            | Kind::Unmanaged => Class::Unsafe,
            Kind::EtcdQuorum
            | Kind::OnlyController
            | Kind::OnlyWorker
            | Kind::IngressNode
            | Kind::StorageNode
            | Kind::FewReplicas
            | Kind::AllReplicasHere
            | Kind::SingleDaemonSet
            | Kind::Job
            | Kind::DisruptionBudget => Class::Unavailable,
            Kind::NodeMissing
            | Kind::UnknownOwner
            | Kind::OwnerMissing
            | Kind::ClaimMissing
            | Kind::VolumeMissing
            | Kind::LookupFailed => Class::Unknown,
            Kind::Readiness => Class::NotReady,
        }
    }
}

/// One finding on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: Kind,
    pub class: Class,
    pub message: String,
}

impl Finding {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Finding {
            kind,
            class: kind.class(),
            message: message.into(),
        }
    }

    /// A readiness finding (free disk, the new binary), which the caller computes from the
    /// host's facts and adds to the node's report.
    pub fn readiness(message: impl Into<String>) -> Self {
        Finding::new(Kind::Readiness, message)
    }
}

/// How a node came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    Ok,
    /// Findings that stop the run.
    Error,
    /// Findings printed but ignored (`--ignore-safety-checks`).
    Warning,
}

impl Status {
    /// The word in the text report.
    pub fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[OK]",
            Status::Error => "[ERROR]",
            Status::Warning => "[WARNING]",
        }
    }
}

/// One node of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// The host (or Node) name as the operator knows it.
    pub name: String,
    /// `etcd`, `controller`, `worker`, in that order.
    pub roles: Vec<String>,
    pub status: Status,
    pub findings: Vec<Finding>,
}

impl NodeReport {
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// Adds findings found elsewhere (readiness) and sets the status again.
    pub fn add(&mut self, findings: impl IntoIterator<Item = Finding>, ignored: bool) {
        self.findings.extend(findings);
        self.status = status_of(&self.findings, ignored);
    }
}

pub(crate) fn status_of(findings: &[Finding], ignored: bool) -> Status {
    match (findings.is_empty(), ignored) {
        (true, _) => Status::Ok,
        (false, false) => Status::Error,
        (false, true) => Status::Warning,
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub nodes: Vec<NodeReport>,
    /// Findings are printed as warnings and do not stop the run (`--ignore-safety-checks`).
    pub ignored: bool,
}

/// The header's width, and the column where the status starts (Kismatic's layout).
const HEADER_WIDTH: usize = 84;
const STATUS_COLUMN: usize = 80;
pub const HEADER: &str = "Validate Online Upgrade";

impl Report {
    /// No node has a finding.
    pub fn is_ok(&self) -> bool {
        self.nodes.iter().all(NodeReport::is_ok)
    }

    /// Nodes with findings.
    pub fn unsafe_nodes(&self) -> impl Iterator<Item = &NodeReport> {
        self.nodes.iter().filter(|n| !n.is_ok())
    }

    pub fn node(&self, name: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeReport> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// Prints findings as warnings from now on (or as errors again).
    pub fn set_ignored(&mut self, ignored: bool) {
        self.ignored = ignored;
        for n in &mut self.nodes {
            n.status = status_of(&n.findings, ignored);
        }
    }

    /// The text report: an empty line, the header padded with `=`, then per node
    /// `<name> [<roles>]` padded to the status column, the status, and one `- ` line per
    /// finding.
    pub fn render(&self) -> String {
        let mut out = String::from("\n");
        let _ = writeln!(out, "{HEADER:=<HEADER_WIDTH$}");
        for n in &self.nodes {
            let head = format!("{} [{}]", n.name, n.roles.join(" "));
            let _ = writeln!(out, "{head:<STATUS_COLUMN$}{}", n.status.tag());
            for f in &n.findings {
                let _ = writeln!(out, "- {}", f.message);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_kismatics() {
        let mut r = Report {
            nodes: vec![
                NodeReport {
                    name: "node1".into(),
                    roles: vec!["etcd".into(), "controller".into()],
                    status: Status::Ok,
                    findings: vec![],
                },
                NodeReport {
                    name: "node2".into(),
                    roles: vec!["worker".into()],
                    status: Status::Error,
                    findings: vec![Finding::new(
                        Kind::EmptyDir,
                        r#"Pod "default/web-0" is using EmptyDir volume "cache", which is unsafe for upgrades."#,
                    )],
                },
            ],
            ignored: false,
        };
        let text = r.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(lines[1].len(), 84);
        assert!(lines[1].starts_with("Validate Online Upgrade====="));
        assert_eq!(&lines[2][..80].trim_end(), &"node1 [etcd controller]");
        assert_eq!(&lines[2][80..], "[OK]");
        assert_eq!(&lines[3][80..], "[ERROR]");
        assert_eq!(
            lines[4],
            r#"- Pod "default/web-0" is using EmptyDir volume "cache", which is unsafe for upgrades."#
        );
        r.set_ignored(true);
        assert!(r.render().lines().nth(3).unwrap().ends_with("[WARNING]"));
        assert_eq!(r.nodes[0].status, Status::Ok);
    }
}
