//! The fault matrix of `ferry cloud-provider migrate --distro rke2` on the two control planes of
//! `rancher_bed` (Rancher's `Cluster` CRD, the Rancher double).
//!
//! Cases:
//! * **fail at STATE**: a fault of the double set when the journal shows the state's step
//!   started, cleared once the step failed: Rancher's planner stuck (S1, S5), something
//!   uncordoning the control plane (S2), a DaemonSet that never rolls out (S3), a node that keeps
//!   the `uninitialized` taint (S4), a node left without a provider ID (set at S4, seen at S6).
//!   Exit 4, and the start given back object by object ([`Picture`]).
//! * **sigint STEP**: SIGINT as soon as the journal shows STEP started: exit 4 and the start
//!   given back (or 0 and migrated when the run completed first).
//! * **kill9 STEP then rollback / resume**: SIGKILL as soon as the journal shows STEP applied;
//!   `ferry rollback` must give back the start, `ferry resume` must finish the migration; each
//!   exits 0.
//!
//! Which cases run (`chaos::selected`): `FERRY_CHAOS=all` the whole matrix;
//! `FERRY_CHAOS=only:NAME;NAME` the named ones; otherwise the fixed [`SAMPLE`] plus [`BY_HASH`]
//! cases chosen by the commit hash. It prints `cloud-provider chaos: N cases, P passed` and
//! fails listing every case that went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod common;
mod mke_bed;
mod rancher_bed;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chaos::{recorded, signal_at, tail, wait};
use ferry_kube_api::testing::real::announce;
use rancher_bed::{Bed, Picture};

/// Cases every run includes.
const SAMPLE: [&str; 5] = [
    "fail at S4 (a node keeps the uninitialized taint)",
    "sigint cloud.ccm-install",
    "kill9 cloud.kcm-leader-migration then rollback",
    "kill9 cloud.external-provider then resume",
    "kill9 cloud.restore-cordon then rollback",
];
/// The state deadline of the failure cases, in seconds.
const FAIL_TIMEOUT: &str = "45";
/// Cases chosen by the commit hash besides the sample.
const BY_HASH: usize = 2;

/// The steps of a migration without a version upgrade, in order.
const STEPS: [&str; 9] = [
    "cloud.record",
    "cloud.lease-access",
    "cloud.kcm-leader-migration",
    "cloud.cordon-control-plane",
    "cloud.ccm-install",
    "cloud.external-provider",
    "cloud.ccm-leader-migration-off",
    "cloud.restore-cordon",
    "cloud.verify",
];

#[derive(Debug, Clone)]
enum Fault {
    /// The double's fault `key=value` from the start of `step` until it failed; the run fails
    /// at `state`.
    Fail {
        step: &'static str,
        key: &'static str,
        value: &'static str,
        state: &'static str,
    },
    Sigint {
        step: String,
    },
    Kill9 {
        step: String,
        resume: bool,
    },
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    fault: Fault,
}

fn all_cases() -> Vec<Case> {
    let fail = |state: &'static str,
                why: &str,
                step: &'static str,
                key: &'static str,
                value: &'static str| Case {
        name: format!("fail at {state} ({why})"),
        fault: Fault::Fail {
            step,
            key,
            value,
            state,
        },
    };
    let mut v = vec![
        fail(
            "S1",
            "Rancher's planner stuck",
            "cloud.kcm-leader-migration",
            "stall",
            "true",
        ),
        fail(
            "S2",
            "something uncordons the control plane",
            "cloud.cordon-control-plane",
            "uncordon",
            "true",
        ),
        fail(
            "S3",
            "the DaemonSet never rolls out",
            "cloud.ccm-install",
            "rollout-stuck",
            "true",
        ),
        fail(
            "S4",
            "a node keeps the uninitialized taint",
            "cloud.external-provider",
            "keep-taint",
            "ip-10-0-2-1.ec2.internal",
        ),
        fail(
            "S5",
            "Rancher's planner stuck",
            "cloud.ccm-leader-migration-off",
            "stall",
            "true",
        ),
        fail(
            "S6",
            "a node left without a provider ID",
            "cloud.external-provider",
            "no-provider-id",
            "ip-10-0-2-2.ec2.internal",
        ),
    ];
    for step in STEPS {
        v.push(Case {
            name: format!("sigint {step}"),
            fault: Fault::Sigint { step: step.into() },
        });
        for (resume, word) in [(false, "rollback"), (true, "resume")] {
            v.push(Case {
                name: format!("kill9 {step} then {word}"),
                fault: Fault::Kill9 {
                    step: step.into(),
                    resume,
                },
            });
        }
    }
    v
}

/// A state's deadline: short where the case makes a state fail, and long enough elsewhere for
/// a loaded machine (two control planes, kwok, the double and ferry on two cores).
fn run(bed: &Bed, state: &Path, timeout: &str) -> Child {
    bed.migrate(state, &["--state-timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The start given back.
fn back_at_start(bed: &Bed, start: &Picture, log: &str) -> Result<(), String> {
    match start.diff(&bed.picture()) {
        None => Ok(()),
        Some(d) => Err(format!(
            "the cluster differs from the start:\n{d}\n--- ferry's log\n{}",
            tail(log, 30)
        )),
    }
}

/// Migrated: the Cluster on the external provider with the chart, every node as at the start,
/// every control-plane kube-controller-manager external.
fn migrated(bed: &Bed, start: &Picture, log: &str) -> Result<(), String> {
    let now = bed.picture();
    let c = bed.cluster();
    let rke = &c["spec"]["rkeConfig"];
    let mut wrong = Vec::new();
    if rke["machineGlobalConfig"]["cloud-provider-name"] != "external" {
        wrong.push(format!(
            "cloud-provider-name is {}",
            rke["machineGlobalConfig"]["cloud-provider-name"]
        ));
    }
    if !rke["additionalManifest"]
        .as_str()
        .unwrap_or("")
        .contains("kind: HelmChart")
    {
        wrong.push("no HelmChart in additionalManifest".into());
    }
    for m in rancher_bed::machines() {
        let k = format!("Node {}", m.name);
        if now.sections.get(&k) != start.sections.get(&k) {
            wrong.push(format!(
                "{k}: was {:?}, now {:?}",
                start.sections.get(&k),
                now.sections.get(&k)
            ));
        }
        if m.control_plane {
            let kcm = now
                .sections
                .get(&format!("Pod kube-controller-manager-{}", m.name))
                .cloned()
                .unwrap_or_default();
            if !kcm.contains("--cloud-provider=external") {
                wrong.push(format!(
                    "the kube-controller-manager on {} runs {kcm}",
                    m.name
                ));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not migrated: {}\n--- ferry's log\n{}",
            wrong.join("; "),
            tail(log, 30)
        ))
    }
}

fn run_case(bed: &Bed, case: &Case, n: usize) -> Result<(), String> {
    let start = bed.picture();
    let state = bed.tmp.path().join(format!("chaos-{n}"));
    let journal = state.join("journal.jsonl");
    match &case.fault {
        Fault::Fail {
            step,
            key,
            value,
            state: at,
        } => {
            let mut child = run(bed, &state, FAIL_TIMEOUT);
            let deadline = Instant::now() + Duration::from_secs(300);
            let (mut set, mut cleared) = (false, false);
            loop {
                if !set
                    && recorded(&journal, "started")
                        .iter()
                        .any(|k| k.starts_with(step))
                {
                    bed.fault(key, value);
                    set = true;
                }
                if set && !cleared && !recorded(&journal, "failed").is_empty() {
                    bed.clear_faults();
                    cleared = true;
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            bed.clear_faults();
            let ran = wait(child);
            if ran.code != Some(4) {
                return Err(format!(
                    "exit {:?}, want 4 (rolled back)\n{}",
                    ran.code,
                    tail(&ran.stderr, 30)
                ));
            }
            if !ran
                .stderr
                .contains(&format!("{at} not reached within {FAIL_TIMEOUT}s"))
            {
                return Err(format!(
                    "the run did not stop at {at}\n{}",
                    tail(&ran.stderr, 30)
                ));
            }
            back_at_start(bed, &start, &ran.stderr)
        }
        Fault::Sigint { step } => {
            let key = format!("{step}@cluster");
            let ran = signal_at(run(bed, &state, "90"), &journal, "started", &key, "-INT");
            match ran.code {
                Some(0) => migrated(bed, &start, &ran.stderr),
                Some(4) => back_at_start(bed, &start, &ran.stderr),
                other => Err(format!(
                    "exit {other:?}, want 4 (rolled back)\n{}",
                    tail(&ran.stderr, 30)
                )),
            }
        }
        Fault::Kill9 { step, resume } => {
            let key = format!("{step}@cluster");
            let ran = signal_at(run(bed, &state, "90"), &journal, "applied", &key, "-KILL");
            if ran.code.is_some() {
                return Ok(());
            }
            let verb = if *resume { "resume" } else { "rollback" };
            let ended = !recorded(&journal, "finished").is_empty();
            let out = bed.ferry_again(verb, &state);
            let log = String::from_utf8_lossy(&out.stderr).to_string();
            if ended {
                return chaos::said_already_finished(verb, out.status.code(), &log);
            }
            if out.status.code() != Some(0) {
                return Err(format!(
                    "ferry {verb} after kill -9: exit {:?}, want 0\n{}",
                    out.status.code(),
                    tail(&log, 30)
                ));
            }
            if *resume {
                migrated(bed, &start, &log)
            } else {
                back_at_start(bed, &start, &log)
            }
        }
    }
}

#[test]
fn every_failure_and_interrupt_of_a_cloud_provider_migration_ends_at_s0_or_migrated() {
    let mut bed = Bed::open("the cloud provider migration's fault matrix");
    let (cases, how) = chaos::selected(all_cases(), |c: &Case| c.name.as_str(), &SAMPLE, BY_HASH);
    announce(&format!("cloud-provider chaos: running {how}"));
    let mut tally = chaos::Tally::new("cloud-provider ");
    for (n, case) in cases.iter().enumerate() {
        if n > 0 {
            bed.provision();
        }
        let t = Instant::now();
        tally.case(&case.name, t, run_case(&bed, case, n));
    }
    tally.finish();
}
