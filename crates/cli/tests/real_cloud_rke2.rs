//! `ferry cloud-provider migrate --distro rke2` against Rancher's own `Cluster` CRD on a
//! management control plane and a downstream control plane of `testenv/k8s` (`rancher_bed`),
//! with the Rancher double playing the provisioning and the downstream processes.
//!
//! Shown: a dry run prints every state's edits and checks and changes nothing; a full migration
//! goes S0 → S6 with the state-by-state log and ends on the external provider with every node as
//! at the start; each failure mode of the double stops the run at its state, naming the node or
//! object, and the rollback gives back the start object by object.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rancher_bed;

use std::sync::Mutex;

use rancher_bed::{Bed, Picture};

/// One cluster for every test of this file: they take turns.
static TURN: Mutex<()> = Mutex::new(());

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn a_dry_run_prints_every_state_and_changes_nothing() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::open("the cloud provider migration's dry run");
    let before = bed.picture();
    let state = bed.tmp.path().join("dry");
    let out = bed.migrate(&state, &["--dry-run"]).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for want in [
        "[OK]      version (cluster): v1.26.15 has the in-tree provider and leader migration",
        "[OK]      control-plane (cluster): 3 control-plane nodes",
        "S1 Leader migration",
        "spec.rkeConfig.machineSelectorConfig: entry for rke.cattle.io/control-plane-role In ['true']: kube-controller-manager-arg [\"node-monitor-period=4s\",\"enable-leader-migration\"]",
        "S2 Cordon control plane",
        "S3 Cloud controller manager",
        "spec.rkeConfig.additionalManifest: HelmChart kube-system/aws-cloud-controller-manager (image registry.k8s.io/provider-aws/cloud-controller-manager:v1.26.0, with --enable-leader-migration=true)",
        "S4 External provider",
        "spec.rkeConfig.machineGlobalConfig: cloud-provider-name: external",
        "S5 Leader migration off",
        "S6 End",
        "no two Nodes for one instance",
    ] {
        assert!(
            stdout.contains(want),
            "the dry run lacks {want:?}:\n{stdout}"
        );
    }
    assert_eq!(
        before.diff(&bed.picture()),
        None,
        "the dry run changed the cluster"
    );
    assert!(
        !state.join("journal.jsonl").exists(),
        "a dry run wrote a journal"
    );
}

#[test]
fn an_rke2_cluster_moves_state_by_state_to_the_external_provider() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::open("the RKE2 cloud provider migration");
    let before = bed.picture();
    let state = bed.tmp.path().join("run");
    let out = bed.migrate(&state, &[]).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut at = 0;
    for want in [
        "S0: ",
        "S1 reached",
        "S2 reached",
        "S3 reached",
        "S4 reached",
        "S5 reached",
        "S6 reached",
    ] {
        let i = stderr[at..]
            .find(want)
            .unwrap_or_else(|| panic!("no {want:?} after byte {at} of the log:\n{stderr}"));
        at += i;
    }
    assert!(
        stdout.contains("Cloud provider migration summary"),
        "{stdout}"
    );
    // the state-by-state log, for the suite's output
    for l in stderr
        .lines()
        .filter(|l| l.contains(" reached") || l.contains("S0: "))
    {
        ferry_kube_api::testing::real::announce(&format!("rke2 migration: {l}"));
    }
    let c = bed.cluster();
    let rke = &c["spec"]["rkeConfig"];
    assert_eq!(
        rke["machineGlobalConfig"]["cloud-provider-name"],
        "external"
    );
    assert_eq!(rke["machineGlobalConfig"]["cni"], "calico");
    assert_eq!(
        rke["machineSelectorConfig"],
        rancher_bed::cluster_object()["spec"]["rkeConfig"]["machineSelectorConfig"]
    );
    let manifest = rke["additionalManifest"].as_str().unwrap();
    assert!(
        manifest.starts_with(
            rancher_bed::cluster_object()["spec"]["rkeConfig"]["additionalManifest"]
                .as_str()
                .unwrap()
        )
    );
    assert!(
        manifest.contains("kind: HelmChart") && !manifest.contains("--enable-leader-migration"),
        "{manifest}"
    );
    let after = bed.picture();
    for m in rancher_bed::machines() {
        let k = format!("Node {}", m.name);
        assert_eq!(after.sections[&k], before.sections[&k], "{k} changed");
        if m.control_plane {
            let kcm = &after.sections[&format!("Pod kube-controller-manager-{}", m.name)];
            assert!(
                kcm.contains("--cloud-provider=external") && !kcm.contains("leader-migration"),
                "{kcm}"
            );
        }
    }
    assert_eq!(
        after.sections["DaemonSet kube-system/aws-cloud-controller-manager"],
        "present"
    );
    assert_eq!(
        after.sections["Service shop/web"],
        before.sections["Service shop/web"]
    );
}

/// A failure of the double stops the run at `state` naming `what`; the rollback gives back the
/// start.
fn fails_at(key: &str, value: &str, state_name: &str, what: &str) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::open("the cloud provider migration's failure modes");
    let before: Picture = bed.picture();
    bed.fault(key, value);
    let state = bed.tmp.path().join(key);
    let out = bed
        .migrate(&state, &["--state-timeout", "45"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(4),
        "want 4 (rolled back)\n{stdout}\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("{state_name} not reached within 45s")))
        .unwrap_or_else(|| panic!("no {state_name} failure in the log:\n{stderr}"));
    assert!(
        line.contains(what),
        "the failure does not name {what:?}: {line}"
    );
    assert!(stderr.contains("Rollback completed"), "{stderr}");
    bed.clear_faults();
    if let Some(d) = before.diff(&bed.picture()) {
        panic!("the rollback did not give back the start:\n{d}\n--- log\n{stderr}");
    }
}

#[test]
fn a_node_that_keeps_the_uninitialized_taint_stops_the_run_at_s4() {
    fails_at(
        "keep-taint",
        "ip-10-0-2-1.ec2.internal",
        "S4",
        "node ip-10-0-2-1.ec2.internal to lose the node.cloudprovider.kubernetes.io/uninitialized taint",
    );
}

#[test]
fn a_node_left_without_a_provider_id_stops_the_run_at_s6() {
    fails_at(
        "no-provider-id",
        "ip-10-0-2-2.ec2.internal",
        "S6",
        "node ip-10-0-2-2.ec2.internal to have a provider ID (it had aws:///us-east-1a/i-0b2)",
    );
}

#[test]
fn a_rollout_that_never_finishes_stops_the_run_at_s3() {
    fails_at(
        "rollout-stuck",
        "true",
        "S3",
        "DaemonSet kube-system/aws-cloud-controller-manager to roll out",
    );
}

#[test]
fn a_migration_can_keep_leader_migration_and_upgrade_kubernetes_after_it() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::open("the RKE2 migration with an upgrade");
    // the upgrade is the one step a rollback cannot take back: the plan says so
    let dry = bed
        .migrate(
            &bed.tmp.path().join("upgrade-dry"),
            &["--dry-run", "--kubernetes-version", "v1.27.16+rke2r1"],
        )
        .output()
        .unwrap();
    let plan = text(&dry.stdout);
    assert!(
        plan.contains(
            "irreversible: Rancher does not take a cluster back to an older Kubernetes version"
        ),
        "{plan}"
    );
    let state = bed.tmp.path().join("upgrade");
    let out = bed
        .migrate(
            &state,
            &[
                "--keep-leader-migration",
                "--kubernetes-version",
                "v1.27.16+rke2r1",
            ],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("S5 reached"),
        "S5 ran with --keep-leader-migration:\n{stderr}"
    );
    assert!(
        stderr.contains("every node runs v1.27.16+rke2r1"),
        "{stderr}"
    );
    let c = bed.cluster();
    assert_eq!(c["spec"]["kubernetesVersion"], "v1.27.16+rke2r1");
    let manifest = c["spec"]["rkeConfig"]["additionalManifest"]
        .as_str()
        .unwrap()
        .to_string();
    // the chart kept leader migration, with the image of the new minor
    assert!(
        manifest.contains("--enable-leader-migration=true"),
        "{manifest}"
    );
    assert!(manifest.contains("tag: v1.27.0"), "{manifest}");
    let picture = bed.picture();
    for m in rancher_bed::machines().iter().filter(|m| m.control_plane) {
        let kcm = &picture.sections[&format!("Pod kube-controller-manager-{}", m.name)];
        assert!(kcm.contains("--cloud-provider=external"), "{kcm}");
    }
}
