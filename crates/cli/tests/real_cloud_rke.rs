//! `ferry cloud-provider migrate --distro rke` against an RKE cluster of real parts (`rke_bed`):
//! the testbed hosts' Docker engines run the kube-controller-managers that `rke-standin` (as
//! `rke up`) starts from `cluster.yml`, the downstream control plane of `testenv/k8s` holds the
//! Nodes, Leases and the cloud-controller-manager's DaemonSet.
//!
//! Shown: a dry run prints every state's edits of `cluster.yml` and checks and changes nothing;
//! a full migration (with a Kubernetes upgrade) goes S0 → S6 with the state-by-state log and
//! `rke up`'s output, keeps the file's comments and order, and ends with every node as at the
//! start; an `rke up` that fails stops the run at its state, and the rollback gives back the
//! start object by object, the file byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod mke_bed;
mod rancher_bed;
mod rke_bed;

use std::sync::Mutex;

use rke_bed::{Bed, CONTROL_PLANE, WORKER};

/// One cluster for every test of this file: they take turns.
static TURN: Mutex<()> = Mutex::new(());

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn a_dry_run_prints_every_rke_state_and_changes_nothing() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::open("the RKE cloud provider migration's dry run");
    let before = bed.picture();
    let state = bed.tmp.path().join("dry");
    let out = bed.migrate(&state, &["--dry-run"]).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for want in [
        "[OK]      version (cluster): v1.26.15 has the in-tree provider and leader migration",
        "[OK]      control-plane (cluster): 3 control-plane nodes",
        "cluster.yml: cloud_provider.name is aws",
        "S1 Leader migration",
        "cluster.yml: services.kube-controller.extra_args.enable-leader-migration: \"true\"",
        "up --config cluster.yml` in ",
        "S2 Cordon control plane",
        "S3 Cloud controller manager",
        "apply to the downstream cluster, as the aws-cloud-controller-manager chart makes them: ServiceAccount kube-system/cloud-controller-manager, ClusterRole system:cloud-controller-manager",
        "DaemonSet kube-system/aws-cloud-controller-manager (image registry.k8s.io/provider-aws/cloud-controller-manager:v1.26.0, with --enable-leader-migration=true)",
        "S4 External provider",
        "cluster.yml: cloud_provider.name: external-aws",
        "cluster.yml: cloud_provider.useInstanceMetadataHostname left unset",
        "cluster.yml: services.kube-controller.extra_args.enable-leader-migration removed",
        "cordon the control-plane nodes again",
        "S5 Leader migration off",
        "S6 End",
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
fn an_rke_cluster_moves_state_by_state_to_the_external_provider_and_upgrades() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::open("the RKE cloud provider migration");
    let before = bed.picture();
    let start_text = bed.cluster_yml();
    let state = bed.tmp.path().join("run");
    let out = bed
        .migrate(&state, &["--kubernetes-version", "v1.27.16-rancher1-1"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut at = 0;
    for want in [
        "S0: ",
        "S1: running `",
        "S1: apply: INFO[",
        "Finished building Kubernetes cluster successfully",
        "S1 reached",
        "S2 reached",
        "S3 reached",
        "S4: apply: ",
        "[upgrade] Uncordoned node [h1]",
        "S4: node h1 cordoned again",
        "S4 reached",
        "S5 reached",
        "S6 reached",
        "every node runs v1.27.16-rancher1-1",
    ] {
        let i = stderr[at..]
            .find(want)
            .unwrap_or_else(|| panic!("no {want:?} after byte {at} of the log:\n{stderr}"));
        at += i;
    }
    for l in stderr
        .lines()
        .filter(|l| l.contains(" reached") || l.contains("S0: ") || l.contains(": running `"))
    {
        ferry_kube_api::testing::real::announce(&format!("rke migration: {l}"));
    }
    // cluster.yml: the start with exactly the end's edits, comments and order kept
    let end = bed.cluster_yml();
    assert_eq!(
        end,
        start_text
            .replace("  name: aws\n", "  name: external-aws\n")
            .replace(
                "kubernetes_version: v1.26.15-rancher1-1",
                "kubernetes_version: v1.27.16-rancher1-1"
            ),
        "cluster.yml at the end"
    );
    let now = bed.picture();
    for h in CONTROL_PLANE {
        let args = &now.sections[&format!("kube-controller-manager on {h}")];
        assert!(
            args.contains("--cloud-provider=external")
                && !args.contains("leader-migration")
                && args.contains("running=true"),
            "{h}: {args}"
        );
    }
    for m in rke_bed::machines() {
        let k = format!("Node {}", m.name);
        let (was, is) = (&before.sections[&k], &now.sections[&k]);
        // the same node, provider ID, cordon state, labels and taints; a new kubelet
        assert_eq!(
            was.replace("kubelet v1.26.15", "kubelet v1.27.16"),
            *is,
            "{k}"
        );
    }
    assert!(now.sections[&format!("Node {WORKER}")].contains("unschedulable true"));
    assert_eq!(
        now.sections["DaemonSet kube-system/aws-cloud-controller-manager"],
        "present"
    );
    assert_eq!(
        now.sections["Role kube-system/ferry:leader-migration"],
        "present"
    );
    assert_eq!(
        now.sections["Service shop/web"],
        before.sections["Service shop/web"]
    );
    assert!(
        stdout.contains("Cloud provider migration summary"),
        "{stdout}"
    );
}

#[test]
fn a_failing_rke_up_stops_the_run_and_the_rollback_gives_back_the_start() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::open("an RKE migration whose rke up fails");
    let before = bed.picture();
    let start_text = bed.cluster_yml();
    bed.rke_fault("fail-once-after h2");
    let state = bed.tmp.path().join("fail");
    let out = bed.migrate(&state, &[]).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("S1: `")
            && stderr.contains("` exited with 1: ")
            && stderr.contains("Failed to upgrade hosts: 10.123.1.3"),
        "{stderr}"
    );
    assert!(stderr.contains("Rollback completed"), "{stderr}");
    assert_eq!(
        bed.cluster_yml(),
        start_text,
        "cluster.yml after the rollback"
    );
    assert_eq!(
        before.diff(&bed.picture()),
        None,
        "the rollback did not give back the start"
    );
}
