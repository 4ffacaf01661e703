#![allow(clippy::unwrap_used)]
//! One fixture in, one snapshot out: each `tests/fixtures/*.yaml` is a cluster (targets,
//! options, snapshot); its snapshot is the text report followed by the JSON kinds per node.

use std::collections::BTreeSet;
use std::path::Path;

use ferry_safety::model::Snapshot;
use ferry_safety::{NodeSelector, Options, Target, check, targets_from_nodes};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Fixture {
    #[serde(default)]
    targets: Option<Vec<Target>>,
    #[serde(default)]
    ingress: Option<String>,
    #[serde(default)]
    storage: Option<String>,
    #[serde(default)]
    skip_namespaces: Option<BTreeSet<String>>,
    snapshot: Snapshot,
}

fn run(path: &Path) -> (String, ferry_safety::Report) {
    let text = std::fs::read_to_string(path).unwrap();
    let f: Fixture = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut options = Options::default();
    if let Some(s) = &f.ingress {
        options.ingress = NodeSelector::parse(s).unwrap();
    }
    if let Some(s) = &f.storage {
        options.storage = NodeSelector::parse(s).unwrap();
    }
    if let Some(s) = f.skip_namespaces {
        options.skip_namespaces = s;
    }
    let targets = f.targets.unwrap_or_else(|| targets_from_nodes(&f.snapshot));
    let report = check(&f.snapshot, &targets, &options);
    let mut out = report.render();
    out.push_str("\n-- kinds --\n");
    for n in &report.nodes {
        let kinds: Vec<String> = n
            .findings
            .iter()
            .map(|f| {
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        out.push_str(&format!("{}: {:?} {}\n", n.name, n.status, kinds.join(" ")));
    }
    (out, report)
}

#[test]
fn fixtures() {
    insta::glob!("fixtures/*.yaml", |path| {
        let (out, report) = run(path);
        if path.file_name().unwrap() == "what-is-not-a-finding.yaml" {
            assert!(report.is_ok(), "{out}");
        } else {
            assert!(!report.is_ok(), "{out}");
        }
        insta::assert_snapshot!(out);
    });
}

#[test]
fn every_condition_of_the_table_lands_on_its_own_node() {
    let (out, report) = run(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kismatic-table.yaml"
    )));
    let kinds = |node: &str| -> Vec<ferry_safety::Kind> {
        report
            .node(node)
            .unwrap_or_else(|| panic!("{node} missing:\n{out}"))
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    };
    use ferry_safety::Kind::*;
    for (node, want) in [
        ("c1", vec![]),
        ("w-ok", vec![]),
        ("w-emptydir", vec![EmptyDir]),
        ("w-hostpath", vec![HostPath]),
        ("w-hostpath-pv", vec![HostPathVolume]),
        ("w-local-pv", vec![LocalVolume]),
        ("w-bare", vec![Unmanaged]),
        ("w-single", vec![FewReplicas]),
        ("w-all-here", vec![AllReplicasHere]),
        ("w-daemon", vec![SingleDaemonSet]),
        ("w-job", vec![Job]),
        ("w-unknown", vec![UnknownOwner]),
        ("w-pdb", vec![DisruptionBudget]),
        ("w-ingress", vec![IngressNode, DisruptionBudget]),
        ("w-storage", vec![StorageNode]),
    ] {
        assert_eq!(kinds(node), want, "{node}:\n{out}");
    }
    // the Job finding names namespace/name in that order (Kismatic swapped them)
    assert!(
        out.contains(r#"Pod that belongs to job "batch/nightly-report" is running on this node."#)
    );
    // a ReplicaSet's Deployment is what the operator is told about
    assert!(out.contains(r#"Pod managed by Deployment "shop/cart" is running on this node"#));
}

#[test]
fn json_carries_status_kind_class_and_message() {
    let (_, mut report) = run(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/small-cluster.yaml"
    )));
    report.set_ignored(true);
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["ignored"], true);
    assert_eq!(v["nodes"][0]["name"], "ctl-1");
    assert_eq!(
        v["nodes"][0]["roles"],
        serde_json::json!(["etcd", "controller"])
    );
    assert_eq!(v["nodes"][0]["status"], "warning");
    assert_eq!(v["nodes"][0]["findings"][0]["kind"], "etcdQuorum");
    assert_eq!(v["nodes"][0]["findings"][0]["class"], "unavailable");
    assert_eq!(v["nodes"][1]["findings"][0]["kind"], "onlyWorker");
}

#[test]
fn ingress_and_storage_selectors_are_configurable() {
    let snapshot: Snapshot = serde_yaml::from_str(
        "nodes:\n- {name: a, labels: {edge: 'true', zone: x}}\n- {name: b, labels: {edge: 'false'}}\n- {name: c, labels: {ceph: osd}}\n",
    )
    .unwrap();
    let options = Options {
        ingress: NodeSelector::parse("edge=true").unwrap(),
        storage: NodeSelector::parse("ceph").unwrap(),
        ..Options::default()
    };
    let r = check(&snapshot, &targets_from_nodes(&snapshot), &options);
    let kinds = |n: &str| -> Vec<ferry_safety::Kind> {
        r.node(n).unwrap().findings.iter().map(|f| f.kind).collect()
    };
    assert_eq!(kinds("a"), vec![ferry_safety::Kind::IngressNode]);
    assert_eq!(kinds("b"), vec![]);
    assert_eq!(kinds("c"), vec![ferry_safety::Kind::StorageNode]);
    for bad in ["", "a,,b", "a!=b", "has space=x", "=v"] {
        let e = NodeSelector::parse(bad).unwrap_err();
        assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
    }
}
