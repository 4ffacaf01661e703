//! A plan is plain data: phases in order, each a list of groups (cluster steps, hosts one at a
//! time, hosts in a sliding window, or lockstep batches), each host with its chain of steps. It
//! is serialised into the journal, printed by a dry run, and run group by group by the runner.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Reversibility, StepKey, Target};

/// One planned step: its key, what it does, the commands it runs, and its reversibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    pub key: StepKey,
    pub description: String,
    pub reversibility: Reversibility,
}

/// A host and the steps it goes through, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostChain {
    pub host: String,
    /// `manager` or `worker`, for display.
    pub role: String,
    pub steps: Vec<StepRef>,
}

/// How the steps of a group run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Group {
    /// Steps one after the other.
    Steps { steps: Vec<StepRef> },
    /// Hosts strictly one at a time (control plane, etcd quorum): each host's whole chain
    /// finishes before the next host starts.
    Serial { hosts: Vec<HostChain> },
    /// Hosts in a sliding window: at most `width` hosts in flight, each through its whole
    /// chain; a host that finishes frees its slot for the next one, in the order listed (which
    /// the flow chose: slowest first, or the operator's). No barrier between steps.
    Window {
        /// The `--max-unavailable` value it came from (`10%`).
        limit: String,
        width: usize,
        /// How the order was chosen, for display (`slowest first`, `as listed`).
        order: String,
        hosts: Vec<HostChain>,
    },
    /// Hosts in lockstep batches: the hosts of a batch run each step of their chain together,
    /// with a barrier after every step; the next batch starts when the previous one is done.
    /// The older schedule; flows use [`Group::Window`].
    Batched {
        limit: String,
        batches: Vec<Vec<HostChain>>,
    },
}

impl Group {
    /// Every step of the group, host by host.
    pub fn steps(&self) -> Vec<&StepRef> {
        match self {
            Group::Steps { steps } => steps.iter().collect(),
            Group::Serial { hosts } | Group::Window { hosts, .. } => {
                hosts.iter().flat_map(|h| &h.steps).collect()
            }
            Group::Batched { batches, .. } => {
                batches.iter().flatten().flat_map(|h| &h.steps).collect()
            }
        }
    }
}

/// A named group of steps ("Pre Upgrade Tasks"); rolled back as one ("Rollback Pre Upgrade
/// Tasks").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub rollback_name: String,
    pub groups: Vec<Group>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Which flow built it (`mke3-to-mke4`).
    pub flow: String,
    pub phases: Vec<Phase>,
}

impl Plan {
    /// The steps that cannot be taken back ([`Reversibility::OneWay`]).
    pub fn one_way(&self) -> Vec<StepRef> {
        self.steps()
            .into_iter()
            .filter(|s| matches!(s.reversibility, Reversibility::OneWay { .. }))
            .collect()
    }

    /// Every step, phase by phase, host by host.
    pub fn steps(&self) -> Vec<StepRef> {
        self.phases
            .iter()
            .flat_map(|p| &p.groups)
            .flat_map(Group::steps)
            .cloned()
            .collect()
    }

    /// The phase index of every step.
    pub fn phase_of(&self) -> BTreeMap<StepKey, usize> {
        let mut m = BTreeMap::new();
        for (i, p) in self.phases.iter().enumerate() {
            for g in &p.groups {
                for s in g.steps() {
                    m.insert(s.key.clone(), i);
                }
            }
        }
        m
    }

    /// The plan as text for a dry run: every phase, every step per host, with its reversibility.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let n = self.phases.len();
        for (i, phase) in self.phases.iter().enumerate() {
            let _ = writeln!(s, "Step {} of {n}: [{}]", i + 1, phase.name);
            for g in &phase.groups {
                match g {
                    Group::Steps { steps } => {
                        for st in steps {
                            render_step(&mut s, "  ", st);
                        }
                    }
                    Group::Serial { hosts } => {
                        let _ = writeln!(s, "  {} host(s), one at a time:", hosts.len());
                        for h in hosts {
                            render_host(&mut s, "    ", h);
                        }
                    }
                    Group::Window {
                        limit,
                        width,
                        order,
                        hosts,
                    } => {
                        let _ = writeln!(
                            s,
                            "  {} host(s), at most {width} at once (--max-unavailable {limit}), {order}:",
                            hosts.len()
                        );
                        for h in hosts {
                            render_host(&mut s, "    ", h);
                        }
                    }
                    Group::Batched { limit, batches } => {
                        let hosts: usize = batches.iter().map(Vec::len).sum();
                        let _ = writeln!(
                            s,
                            "  {hosts} host(s) in {} batch(es) (--max-unavailable {limit}):",
                            batches.len()
                        );
                        for (bi, b) in batches.iter().enumerate() {
                            let names: Vec<&str> = b.iter().map(|h| h.host.as_str()).collect();
                            let _ = writeln!(s, "    Batch {}: {}", bi + 1, names.join(", "));
                            for h in b {
                                render_host(&mut s, "      ", h);
                            }
                        }
                    }
                }
            }
        }
        s
    }
}

fn render_host(s: &mut String, indent: &str, h: &HostChain) {
    let _ = writeln!(s, "{indent}{} ({}):", h.host, h.role);
    for st in &h.steps {
        render_step(s, &format!("{indent}  "), st);
    }
}

fn render_step(s: &mut String, indent: &str, st: &StepRef) {
    let on = match &st.key.target {
        Target::Cluster => String::new(),
        Target::Host(h) => format!(" on {h}"),
    };
    let _ = writeln!(
        s,
        "{indent}{}{on}: {} [{}]",
        st.key.id, st.description, st.reversibility
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sref(id: &str, target: Target) -> StepRef {
        StepRef {
            key: StepKey::new(id, target),
            description: format!("do {id}"),
            reversibility: Reversibility::Reversible,
        }
    }

    fn chain(host: &str, role: &str, ids: &[&str]) -> HostChain {
        HostChain {
            host: host.into(),
            role: role.into(),
            steps: ids
                .iter()
                .map(|i| sref(i, Target::Host(host.into())))
                .collect(),
        }
    }

    #[test]
    fn waves_follow_groups() {
        let plan = Plan {
            flow: "t".into(),
            phases: vec![
                Phase {
                    name: "A".into(),
                    rollback_name: "Rollback A".into(),
                    groups: vec![Group::Steps {
                        steps: vec![sref("a", Target::Cluster)],
                    }],
                },
                Phase {
                    name: "B".into(),
                    rollback_name: "Rollback B".into(),
                    groups: vec![
                        Group::Serial {
                            hosts: vec![chain("m1", "manager", &["x", "y"])],
                        },
                        Group::Batched {
                            limit: "2".into(),
                            batches: vec![
                                vec![
                                    chain("w1", "worker", &["x", "y"]),
                                    chain("w2", "worker", &["x", "y"]),
                                ],
                                vec![chain("w3", "worker", &["x", "y"])],
                            ],
                        },
                    ],
                },
            ],
        };
        let all: Vec<String> = plan.steps().iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            all,
            vec![
                "a@cluster",
                "x@host:m1",
                "y@host:m1",
                "x@host:w1",
                "y@host:w1",
                "x@host:w2",
                "y@host:w2",
                "x@host:w3",
                "y@host:w3",
            ]
        );
        assert_eq!(
            plan.phase_of()[&StepKey::new(
                "y@host:w3".split('@').next().unwrap(),
                Target::Host("w3".into())
            )],
            1
        );
        let text = plan.render();
        assert!(text.contains("Step 2 of 2: [B]"), "{text}");
        assert!(text.contains("Batch 1: w1, w2"), "{text}");
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
    }
}
