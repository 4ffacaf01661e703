#![allow(clippy::unwrap_used)]
//! Properties over random clusters whose numbers agree with each other (a controller's ready
//! count is its ready pods, a budget's status is what its controller would compute): a node
//! with no finding can be drained (one eviction at a time, waiting for each budget, as a drain
//! does) without blocking on or breaking any PodDisruptionBudget, without losing the last ready
//! replica of anything and without losing data; and every node that runs a pod whose
//! data would be lost has a finding.

use std::collections::BTreeMap;

use ferry_safety::model::*;
use ferry_safety::{Kind, Options, check, targets_from_nodes};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Workload {
    kind: u8,                     // 0 Deployment, 1 StatefulSet, 2 DaemonSet, 3 Job, 4 bare pod
    pods: Vec<(usize, bool, u8)>, // node, ready, volume (0 none, 1 emptyDir, 2 hostPath, 3 pvc net, 4 pvc local)
    min_available: Option<u8>,
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        0u8..5,
        prop::collection::vec(
            (
                0usize..6,
                prop::bool::weighted(0.8),
                prop::sample::select(vec![0u8, 0, 0, 1, 2, 3, 4]),
            ),
            1..6,
        ),
        prop::option::of(0u8..5),
    )
        .prop_map(|(kind, pods, min_available)| Workload {
            kind,
            pods,
            min_available,
        })
}

fn cluster(nodes: usize, workloads: &[Workload]) -> Snapshot {
    let mut s = Snapshot {
        nodes: (0..nodes)
            .map(|i| Node {
                name: format!("n{i}"),
                ready: true,
                ..Node::default()
            })
            .collect(),
        ..Snapshot::default()
    };
    for (w, wl) in workloads.iter().enumerate() {
        let app = format!("app{w}");
        let pods: Vec<(usize, bool, u8)> =
            wl.pods.iter().map(|&(n, r, v)| (n % nodes, r, v)).collect();
        let ready = pods.iter().filter(|p| p.1).count() as i32;
        let (kind, owner) = match wl.kind {
            0 => {
                s.controllers.push(Controller {
                    kind: "Deployment".into(),
                    namespace: "ns".into(),
                    name: app.clone(),
                    desired: pods.len() as i32,
                    ready,
                    owner: None,
                });
                s.controllers.push(Controller {
                    kind: "ReplicaSet".into(),
                    namespace: "ns".into(),
                    name: format!("{app}-rs"),
                    desired: pods.len() as i32,
                    ready,
                    owner: Some(Owner {
                        kind: "Deployment".into(),
                        name: app.clone(),
                    }),
                });
                ("ReplicaSet", Some(format!("{app}-rs")))
            }
            1 => ("StatefulSet", Some(app.clone())),
            2 => ("DaemonSet", Some(app.clone())),
            3 => ("Job", Some(app.clone())),
            _ => ("", None),
        };
        if wl.kind == 1 || wl.kind == 3 {
            s.controllers.push(Controller {
                kind: kind.into(),
                namespace: "ns".into(),
                name: app.clone(),
                desired: pods.len() as i32,
                ready,
                owner: None,
            });
        }
        if wl.kind == 2 {
            // a DaemonSet's desired count is the nodes it runs on
            let mut on: Vec<usize> = pods.iter().map(|p| p.0).collect();
            on.sort();
            on.dedup();
            s.controllers.push(Controller {
                kind: "DaemonSet".into(),
                namespace: "ns".into(),
                name: app.clone(),
                desired: on.len() as i32,
                ready,
                owner: None,
            });
        }
        for (i, &(node, r, vol)) in pods.iter().enumerate() {
            let name = format!("{app}-{i}");
            let volumes = match vol {
                1 => vec![Volume::EmptyDir { name: "v".into() }],
                2 => vec![Volume::HostPath {
                    name: "v".into(),
                    path: "/x".into(),
                }],
                3 | 4 => {
                    let claim = format!("c-{name}");
                    s.claims.push(Claim {
                        namespace: "ns".into(),
                        name: claim.clone(),
                        volume: Some(format!("pv-{name}")),
                    });
                    s.volumes.push(PersistentVolume {
                        name: format!("pv-{name}"),
                        source: if vol == 4 {
                            VolumeSource::Local { path: "/d".into() }
                        } else {
                            VolumeSource::Other
                        },
                    });
                    vec![Volume::PersistentVolumeClaim {
                        name: "v".into(),
                        claim,
                    }]
                }
                _ => vec![],
            };
            s.pods.push(Pod {
                namespace: "ns".into(),
                name,
                node: Some(format!("n{node}")),
                labels: BTreeMap::from([("app".to_string(), app.clone())]),
                owner: owner.clone().map(|name| Owner {
                    kind: kind.into(),
                    name,
                }),
                volumes,
                phase: "Running".into(),
                ready: r,
                ..Pod::default()
            });
        }
        if let Some(m) = wl.min_available {
            let desired = i32::from(m);
            s.pdbs.push(Pdb {
                namespace: "ns".into(),
                name: app.clone(),
                selector: LabelSelector::labels([("app", app.as_str())]),
                disruptions_allowed: (ready - desired).max(0),
                current_healthy: ready,
                desired_healthy: desired,
                expected_pods: pods.len() as i32,
            });
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_node_without_findings_drains_safely(
        nodes in 2usize..6,
        workloads in prop::collection::vec(workload(), 0..8),
    ) {
        let s = cluster(nodes, &workloads);
        let report = check(&s, &targets_from_nodes(&s), &Options::default());
        for n in &report.nodes {
            let here = |p: &&Pod| p.node.as_deref() == Some(n.name.as_str());
            let data_loss = s.pods.iter().filter(here).any(|p| {
                p.owner.is_none()
                    || p.volumes.iter().any(|v| match v {
                        Volume::EmptyDir { .. } | Volume::HostPath { .. } => true,
                        Volume::PersistentVolumeClaim { claim, .. } => s.volumes.iter().any(|pv| {
                            pv.name == format!("pv-{}", claim.trim_start_matches("c-"))
                                && matches!(pv.source, VolumeSource::Local { .. })
                        }),
                        Volume::Other { .. } => false,
                    })
            });
            // every node that would lose data says so
            if data_loss {
                prop_assert!(
                    n.findings.iter().any(|f| matches!(f.kind, Kind::Unmanaged | Kind::EmptyDir | Kind::HostPath | Kind::LocalVolume)),
                    "{} loses data but reports {:?}", n.name, n.findings
                );
            }
            if !n.is_ok() {
                continue;
            }
            // drained as a drain does: one eviction at a time, each waiting for the budget;
            // a pod of a replicated owner comes back elsewhere, a bare one does not, and
            // DaemonSet pods stay
            let gone: Vec<&Pod> = s.pods.iter().filter(here).collect();
            for b in &s.pdbs {
                let evicted: Vec<&&Pod> = gone
                    .iter()
                    .filter(|p| b.covers(p) && p.owner.as_ref().is_none_or(|o| o.kind != "DaemonSet"))
                    .collect();
                let healthy = evicted.iter().filter(|p| p.ready).count() as i32;
                let lost = evicted.iter().filter(|p| p.ready && p.owner.is_none()).count() as i32;
                if healthy > 0 {
                    prop_assert!(
                        b.disruptions_allowed > 0,
                        "{} has no finding, yet its drain blocks on {}", n.name, b.key()
                    );
                }
                // a budget already short before the drain is not the drain's doing
                prop_assert!(
                    lost == 0 || b.current_healthy - lost >= b.desired_healthy,
                    "{} has no finding, yet draining it breaks {}", n.name, b.key()
                );
            }
            for p in &gone {
                let Some(o) = &p.owner else { continue };
                if o.kind == "Job" {
                    prop_assert!(false, "{} has no finding, yet runs job pod {}", n.name, p.key());
                }
                let app = &p.labels["app"];
                let ready_elsewhere = s
                    .pods
                    .iter()
                    .filter(|q| &q.labels["app"] == app && q.ready && q.node != p.node)
                    .count();
                let ds_elsewhere = s.pods.iter().any(|q| &q.labels["app"] == app && q.node != p.node);
                if o.kind == "DaemonSet" {
                    prop_assert!(ds_elsewhere, "{}: DaemonSet {} lives only here", n.name, app);
                } else {
                    prop_assert!(
                        ready_elsewhere >= 1,
                        "{} has no finding, yet {} has no ready replica elsewhere", n.name, app
                    );
                }
            }
        }
    }

    #[test]
    fn the_report_always_has_its_layout(
        nodes in 2usize..6,
        workloads in prop::collection::vec(workload(), 0..8),
        ignored in any::<bool>(),
    ) {
        let s = cluster(nodes, &workloads);
        let mut report = check(&s, &targets_from_nodes(&s), &Options::default());
        report.set_ignored(ignored);
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        prop_assert_eq!(lines[0], "");
        prop_assert_eq!(lines[1].len(), 84);
        let mut nodes_seen = 0;
        for l in &lines[2..] {
            if let Some(m) = l.strip_prefix("- ") {
                prop_assert!(!m.is_empty());
            } else {
                nodes_seen += 1;
                let tag = &l[80..];
                prop_assert!(["[OK]", if ignored { "[WARNING]" } else { "[ERROR]" }].contains(&tag), "{}", l);
            }
        }
        prop_assert_eq!(nodes_seen, nodes);
    }
}
