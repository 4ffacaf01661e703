//! A plan is plain data: phases in order, each a list of groups (cluster steps, hosts one at a
//! time, or hosts in batches), each host with its chain of steps. It is serialised into the
//! journal, printed by a dry run, and flattened into waves by the runner.

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
    /// Hosts in batches: the hosts of a batch run each step of their chain together, with a
    /// barrier after every step; the next batch starts when the previous one is done.
    Batched {
        limit: String,
        batches: Vec<Vec<HostChain>>,
    },
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

/// Steps that run together, with a barrier after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub phase: usize,
    pub steps: Vec<StepRef>,
}

impl Plan {
    /// The plan as a sequence of waves, in execution order.
    pub fn waves(&self) -> Vec<Wave> {
        let mut out = Vec::new();
        for (pi, phase) in self.phases.iter().enumerate() {
            for g in &phase.groups {
                match g {
                    Group::Steps { steps } => {
                        for s in steps {
                            out.push(Wave {
                                phase: pi,
                                steps: vec![s.clone()],
                            });
                        }
                    }
                    Group::Serial { hosts } => {
                        for h in hosts {
                            for s in &h.steps {
                                out.push(Wave {
                                    phase: pi,
                                    steps: vec![s.clone()],
                                });
                            }
                        }
                    }
                    Group::Batched { batches, .. } => {
                        for batch in batches {
                            let len = batch.iter().map(|h| h.steps.len()).max().unwrap_or(0);
                            for j in 0..len {
                                let steps: Vec<StepRef> = batch
                                    .iter()
                                    .filter_map(|h| h.steps.get(j).cloned())
                                    .collect();
                                out.push(Wave { phase: pi, steps });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Every step, in execution order.
    pub fn steps(&self) -> Vec<StepRef> {
        self.waves().into_iter().flat_map(|w| w.steps).collect()
    }

    /// The phase index of every step.
    pub fn phase_of(&self) -> BTreeMap<StepKey, usize> {
        self.waves()
            .into_iter()
            .flat_map(|w| w.steps.into_iter().map(move |s| (s.key, w.phase)))
            .collect()
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
        let w: Vec<Vec<String>> = plan
            .waves()
            .iter()
            .map(|w| w.steps.iter().map(|s| s.key.to_string()).collect())
            .collect();
        assert_eq!(
            w,
            vec![
                vec!["a@cluster"],
                vec!["x@host:m1"],
                vec!["y@host:m1"],
                vec!["x@host:w1", "x@host:w2"],
                vec!["y@host:w1", "y@host:w2"],
                vec!["x@host:w3"],
                vec!["y@host:w3"],
            ]
        );
        let text = plan.render();
        assert!(text.contains("Step 2 of 2: [B]"), "{text}");
        assert!(text.contains("Batch 1: w1, w2"), "{text}");
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
    }
}
