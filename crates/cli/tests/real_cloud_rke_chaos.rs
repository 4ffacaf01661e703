//! The fault matrix of `ferry cloud-provider migrate --distro rke` on the RKE cluster of real
//! parts of `rke_bed` (the testbed's Docker engines, `rke-standin` as `rke up`, the downstream
//! control plane).
//!
//! Cases:
//! * **fail at STATE**: `rke up` fails (`fail-once-after h2`: after the second control-plane
//!   node) at S1 and at S4, or never finishes (`hang-once`) at S1, written as the state's step
//!   starts. Exit 4 with the apply command's failure named, and the start given back object by
//!   object, `cluster.yml` byte for byte ([`Picture`]).
//! * **sigint STEP**: SIGINT as soon as the journal shows STEP started (an `rke up` under way
//!   is stopped): exit 4 and the start given back (or 0 and migrated when the run completed
//!   first).
//! * **kill9 STEP then rollback / resume**: SIGKILL as soon as the journal shows STEP applied;
//!   `ferry rollback` must give back the start, `ferry resume` must finish the migration.
//! * **kill9 during rke up at S1 / S4 then rollback / resume**: SIGKILL while `rke up` runs (it
//!   goes on, orphaned); the next ferry waits for it before running its own.
//!
//! Which cases run (`chaos::selected`): `FERRY_CHAOS=all` the whole matrix;
//! `FERRY_CHAOS=only:NAME;NAME` the named ones; otherwise the fixed [`SAMPLE`] plus [`BY_HASH`]
//! cases chosen by the commit hash. It prints `rke cloud-provider chaos: N cases, P passed`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod common;
mod mke_bed;
mod rancher_bed;
mod rke_bed;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chaos::{act_at, recorded, signal_at, tail};
use ferry_kube_api::testing::real::announce;
use rke_bed::{Bed, Picture};

/// Cases every run includes.
const SAMPLE: [&str; 4] = [
    "fail at S4 (rke up fails)",
    "sigint cloud.external-provider",
    "kill9 during rke up at S4 then resume",
    "kill9 cloud.ccm-install then rollback",
];
/// The state deadline of the failure cases, in seconds.
const FAIL_TIMEOUT: &str = "45";
/// Cases chosen by the commit hash besides the sample.
const BY_HASH: usize = 1;

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
    /// `rke-standin`'s fault `line`, written when `step` starts; the run fails at `state`
    /// saying `says`.
    Fail {
        step: &'static str,
        line: &'static str,
        state: &'static str,
        says: &'static str,
    },
    Sigint {
        step: String,
    },
    Kill9 {
        step: String,
        resume: bool,
    },
    /// SIGKILL a moment after `step` started, while its `rke up` runs.
    Kill9Apply {
        step: &'static str,
        resume: bool,
    },
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    fault: Fault,
}

fn all_cases() -> Vec<Case> {
    let mut v = vec![
        Case {
            name: "fail at S1 (rke up fails)".into(),
            fault: Fault::Fail {
                step: "cloud.kcm-leader-migration",
                line: "fail-once-after h2",
                state: "S1",
                says: "Failed to upgrade hosts: 10.123.1.3",
            },
        },
        Case {
            name: "fail at S1 (rke up never finishes)".into(),
            fault: Fault::Fail {
                step: "cloud.kcm-leader-migration",
                line: "hang-once",
                state: "S1",
                says: "did not finish within 45s: stopped",
            },
        },
        Case {
            name: "fail at S4 (rke up fails)".into(),
            fault: Fault::Fail {
                step: "cloud.external-provider",
                line: "fail-once-after h2",
                state: "S4",
                says: "Failed to upgrade hosts: 10.123.1.3",
            },
        },
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
    for (state, step) in [
        ("S1", "cloud.kcm-leader-migration"),
        ("S4", "cloud.external-provider"),
    ] {
        for (resume, word) in [(false, "rollback"), (true, "resume")] {
            v.push(Case {
                name: format!("kill9 during rke up at {state} then {word}"),
                fault: Fault::Kill9Apply { step, resume },
            });
        }
    }
    v
}

fn run(bed: &Bed, state: &Path, timeout: &str) -> Child {
    bed.migrate(state, &["--state-timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn back_at_start(bed: &Bed, start: &Picture, log: &str) -> Result<(), String> {
    match start.diff(&bed.picture()) {
        None => Ok(()),
        Some(d) => Err(format!(
            "the cluster differs from the start:\n{d}\n--- ferry's log\n{}",
            tail(log, 30)
        )),
    }
}

/// Migrated: `cluster.yml` on the external provider, every kube-controller-manager external,
/// the cloud-controller-manager there, every node as at the start.
fn migrated(bed: &Bed, start: &Picture, log: &str) -> Result<(), String> {
    let now = bed.picture();
    let mut wrong = Vec::new();
    let want = start.sections["cluster.yml"].replace("  name: aws\n", "  name: external-aws\n");
    if now.sections["cluster.yml"] != want {
        wrong.push(format!("cluster.yml is\n{}", now.sections["cluster.yml"]));
    }
    for h in rke_bed::CONTROL_PLANE {
        let args = &now.sections[&format!("kube-controller-manager on {h}")];
        if !args.contains("--cloud-provider=external") || args.contains("leader-migration") {
            wrong.push(format!("the kube-controller-manager on {h} runs {args}"));
        }
    }
    if now.sections["DaemonSet kube-system/aws-cloud-controller-manager"] != "present" {
        wrong.push("no cloud-controller-manager DaemonSet".into());
    }
    for m in rke_bed::machines() {
        let k = format!("Node {}", m.name);
        if now.sections.get(&k) != start.sections.get(&k) {
            wrong.push(format!(
                "{k}: was {:?}, now {:?}",
                start.sections.get(&k),
                now.sections.get(&k)
            ));
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

/// `ferry resume` or `ferry rollback` after a kill -9, and what it must come to.
fn again(bed: &Bed, start: &Picture, state: &Path, resume: bool) -> Result<(), String> {
    let journal = state.join("journal.jsonl");
    let verb = if resume { "resume" } else { "rollback" };
    let ended = !recorded(&journal, "finished").is_empty();
    let out = bed.ferry_again(verb, state);
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
    if resume {
        migrated(bed, start, &log)
    } else {
        back_at_start(bed, start, &log)
    }
}

fn run_case(bed: &Bed, case: &Case, n: usize) -> Result<(), String> {
    let start = bed.picture();
    let state = bed.tmp.path().join(format!("chaos-{n}"));
    let journal = state.join("journal.jsonl");
    match &case.fault {
        Fault::Fail {
            step,
            line,
            state: at,
            says,
        } => {
            let key = format!("{step}@cluster");
            let ran = act_at(
                run(bed, &state, FAIL_TIMEOUT),
                &journal,
                "started",
                &key,
                &|| bed.rke_fault(line),
            );
            bed.clear_faults();
            if ran.code != Some(4) {
                return Err(format!(
                    "exit {:?}, want 4 (rolled back)\n{}",
                    ran.code,
                    tail(&ran.stderr, 30)
                ));
            }
            if !ran.stderr.contains(&format!("{at}: `")) || !ran.stderr.contains(says) {
                return Err(format!(
                    "the run did not stop at {at} saying {says:?}\n{}",
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
            again(bed, &start, &state, *resume)
        }
        Fault::Kill9Apply { step, resume } => {
            let key = format!("{step}@cluster");
            let child = run(bed, &state, "90");
            let pid = child.id().to_string();
            let ran = act_at(child, &journal, "started", &key, &|| {
                // rke up has started by then: its tunnels take longer than this
                std::thread::sleep(Duration::from_millis(400));
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid])
                    .status();
            });
            if ran.code.is_some() {
                return Err(format!(
                    "the run ended (exit {:?}) before the kill\n{}",
                    ran.code,
                    tail(&ran.stderr, 30)
                ));
            }
            again(bed, &start, &state, *resume)
        }
    }
}

#[test]
fn every_failure_and_interrupt_of_an_rke_migration_ends_at_s0_or_migrated() {
    let mut bed = Bed::open("the RKE cloud provider migration's fault matrix");
    let (cases, how) = chaos::selected(all_cases(), |c: &Case| c.name.as_str(), &SAMPLE, BY_HASH);
    announce(&format!("rke cloud-provider chaos: running {how}"));
    let mut tally = chaos::Tally::new("rke cloud-provider ");
    for (n, case) in cases.iter().enumerate() {
        if n > 0 {
            bed.provision();
        }
        let t = Instant::now();
        tally.case(&case.name, t, run_case(&bed, case, n));
    }
    tally.finish();
}
