//! The fault matrix of `ferry k0s upgrade online` on the testbed's k0s cluster of real parts
//! (`k0s_bed`: 3 controllers, one of them running workloads, and 2 workers, from v1.31.1+k0s.1
//! to v1.32.6+k0s.0): broken on purpose at every step of its plan, the run must give back
//! exactly what it found, compared by a digest of every host (k0s's state, every file under
//! `/etc`, `/var/lib`, `/usr/local` with its SHA-256, the kept backups left out) and of the
//! hosts' Nodes and the Deployment (`k0s_bed::Digest`).
//!
//! Cases:
//! * **host-fault**: a k0s command fails on a host (the double's fault file names `backup`,
//!   `stop` or `start`), for every host the command runs on. The run must exit 4 (rolled back).
//!   A fault that stays also fails the rollback's own use of the command (`start` brings the old
//!   release back): then ferry must exit 5 naming what is left, and once the fault is gone
//!   `ferry rollback` must finish.
//! * **sigint STEP**: SIGINT to ferry as soon as the journal shows STEP started, for every step
//!   of the plan: exit 4 (or 0 when it was the last step and the run completed first).
//! * **kill9 STEP then rollback**: SIGKILL as soon as the journal shows STEP applied; then
//!   `ferry rollback` must exit 0 and give back the start's digest.
//! * **kill9 STEP then resume**: the same kill; then `ferry resume` must exit 0 and leave what
//!   an uninterrupted run leaves ([`Digest::shape`], against an uninterrupted run's).
//!
//! Which cases run (`chaos::selected`): `FERRY_CHAOS=all` the whole matrix;
//! `FERRY_CHAOS=only:NAME;NAME` the named ones; otherwise the fixed [`SAMPLE`] plus [`BY_HASH`]
//! cases chosen by the commit hash (`FERRY_CHAOS_SEED`, else `git rev-parse HEAD`). It prints `k0s chaos: N cases, P passed` and
//! fails listing every case that went wrong, with the differing lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod common;
mod k0s_bed;
mod mke_bed;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Instant;

use chaos::{recorded, signal_at, tail, wait};
use ferry_core::engine::Plan;
use ferry_kube_api::testing::real::announce;
use k0s_bed::{CONTROLLERS, Digest, K0sBed};

/// Cases every run includes: a fault on a controller and on a worker, SIGINT in a controller's
/// swap, in a drain and in the last uncordon, kill -9 then rollback and then resume.
const SAMPLE: [&str; 7] = [
    "host-fault k0s backup on h2",
    "host-fault k0s start on h5",
    "sigint k0s.node.replace-binary@host:10.123.1.1",
    "sigint k0s.node.drain@host:10.123.1.3",
    "kill9 k0s.node.start@host:10.123.1.2 then rollback",
    "kill9 k0s.node.stop@host:10.123.1.4 then resume",
    "kill9 k0s.node.wait-ready@host:10.123.1.5 then rollback",
];
/// Cases chosen by the commit hash besides the sample.
const BY_HASH: usize = 2;

#[derive(Debug, Clone)]
enum Fault {
    /// `k0s <command>` fails on the host (index into the bed's hosts).
    K0s { host: usize, command: &'static str },
    /// SIGINT once the step has started.
    Sigint { step: String },
    /// SIGKILL once the step was applied, then `ferry rollback` or `ferry resume`.
    Kill9 { step: String, resume: bool },
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    fault: Fault,
}

fn all_cases(bed: &K0sBed, plan: &Plan) -> Vec<Case> {
    let mut v = Vec::new();
    for (i, h) in bed.hosts.iter().enumerate() {
        let commands: &[&'static str] = if i < CONTROLLERS {
            &["backup", "stop", "start"]
        } else {
            &["stop", "start"]
        };
        for command in commands {
            v.push(Case {
                name: format!("host-fault k0s {command} on {h}"),
                fault: Fault::K0s { host: i, command },
            });
        }
    }
    for s in plan.steps() {
        let step = s.key.to_string();
        v.push(Case {
            name: format!("sigint {step}"),
            fault: Fault::Sigint { step: step.clone() },
        });
        for (resume, word) in [(false, "rollback"), (true, "resume")] {
            v.push(Case {
                name: format!("kill9 {step} then {word}"),
                fault: Fault::Kill9 {
                    step: step.clone(),
                    resume,
                },
            });
        }
    }
    v
}

/// The upgrade every case runs: the whole cluster to the new release, one worker at a time.
const UPGRADE: [&str; 6] = [
    "--max-unavailable",
    "1",
    "--ready-timeout",
    "120",
    "--drain-timeout",
    "120",
];

fn run_upgrade(bed: &K0sBed, state: &Path) -> Child {
    bed.upgrade(&bed.new, state, &UPGRADE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Compares the digest now with `want`; `what` names `want` in the message. With `shape`, the
/// shapes are compared, and `want` is asked for only after the digest of now was taken (making
/// the reference changes the hosts).
fn compare(
    bed: &K0sBed,
    want: &dyn Fn() -> Digest,
    shape: bool,
    what: &str,
    log: &str,
) -> Result<(), String> {
    let now = Digest::take(bed)?;
    let now = if shape { now.shape() } else { now };
    match want().diff(&now) {
        None => Ok(()),
        Some(d) => Err(format!(
            "the digest differs from {what}:\n{d}\n--- ferry's log\n{}",
            tail(log, 30)
        )),
    }
}

/// Runs one case from the start the bed is in; `completed` gives the shape an uninterrupted
/// run leaves. Returns what went wrong.
fn run_case(
    bed: &K0sBed,
    case: &Case,
    n: usize,
    completed: &dyn Fn() -> Digest,
) -> Result<(), String> {
    let start = Digest::take(bed)?;
    covers(bed, &start)?;
    let state = bed.tmp.path().join(format!("chaos-{n}"));
    let journal = state.join("journal.jsonl");
    match &case.fault {
        Fault::K0s { host, command } => {
            bed.put(
                *host,
                "/etc/k0s-double/fault",
                format!("{command}\n").as_bytes(),
                "644",
            );
            let ran = wait(run_upgrade(bed, &state));
            bed.sh(*host, "rm -f /etc/k0s-double/fault");
            match ran.code {
                Some(4) => {}
                Some(5) if ran.stderr.contains("Still applied (undo order): ") => {
                    let out = bed.ferry_again("rollback", &state);
                    if out.status.code() != Some(0) {
                        return Err(format!(
                            "ferry rollback once the fault is gone: exit {:?}\n{}",
                            out.status.code(),
                            tail(&String::from_utf8_lossy(&out.stderr), 30)
                        ));
                    }
                }
                other => {
                    return Err(format!(
                        "exit {other:?}, want 4 (rolled back) or 5 naming what is left\n{}",
                        tail(&ran.stderr, 30)
                    ));
                }
            }
            compare(bed, &|| start.clone(), false, "the start", &ran.stderr)
        }
        Fault::Sigint { step } => {
            let ran = signal_at(run_upgrade(bed, &state), &journal, "started", step, "-INT");
            match ran.code {
                // the signal came after the last step: a completed run
                Some(0) => Ok(()),
                Some(4) => compare(bed, &|| start.clone(), false, "the start", &ran.stderr),
                other => Err(format!(
                    "exit {other:?}, want 4 (rolled back)\n{}",
                    tail(&ran.stderr, 30)
                )),
            }
        }
        Fault::Kill9 { step, resume } => {
            let ran = signal_at(run_upgrade(bed, &state), &journal, "applied", step, "-KILL");
            if ran.code.is_some() {
                // exited on its own before the kill landed: nothing was interrupted
                return Ok(());
            }
            let verb = if *resume { "resume" } else { "rollback" };
            // read before ferry runs again: its own end is recorded too
            let ended = !recorded(&journal, "finished").is_empty();
            let out = bed.ferry_again(verb, &state);
            let log = String::from_utf8_lossy(&out.stderr).to_string();
            if ended {
                // killed after the journal recorded the end of the run
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
                compare(bed, completed, true, "an uninterrupted run's", &log)
            } else {
                compare(bed, &|| start.clone(), false, "the start", &log)
            }
        }
    }
}

/// A digest that would not see the change is no check: every host's section must hold its
/// running release and its k0s binary's checksum, and the API's the three Nodes.
fn covers(bed: &K0sBed, d: &Digest) -> Result<(), String> {
    for h in &bed.hosts {
        let s = d
            .sections
            .get(&format!("host {h}"))
            .map_or("", String::as_str);
        let has = |needle: &str| s.lines().any(|l| l.contains(needle));
        if !has(&format!("Version: {}", k0s_bed::OLD)) || !has("  /usr/local/bin/k0s") {
            return Err(format!(
                "{h}: the digest misses k0s's state or binary:\n{s}"
            ));
        }
    }
    let api = d.sections.get("api").map_or("", String::as_str);
    if api.lines().filter(|l| l.contains("ready=true")).count() != 3 {
        return Err(format!("the digest misses the Nodes:\n{api}"));
    }
    Ok(())
}

fn plan_of(bed: &K0sBed) -> Plan {
    let state = bed.tmp.path().join("chaos-dry-run");
    let mut args = UPGRADE.to_vec();
    args.extend(["--dry-run", "-o", "json"]);
    let out = bed.upgrade(&bed.new, &state, &args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "dry run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(v["plan"].clone()).unwrap()
}

#[test]
fn every_failure_and_interrupt_of_a_k0s_upgrade_gives_back_the_start() {
    let bed = K0sBed::open();
    bed.deploy();
    let plan = plan_of(&bed);
    let (cases, how) = chaos::selected(
        all_cases(&bed, &plan),
        |c: &Case| c.name.as_str(),
        &SAMPLE,
        BY_HASH,
    );
    announce(&format!("k0s chaos: running {how}"));
    // what an uninterrupted run leaves, made once, when a resume case needs it
    let baseline: std::cell::OnceCell<Digest> = std::cell::OnceCell::new();
    let at_start = std::cell::Cell::new(true);
    let completed = || {
        baseline
            .get_or_init(|| {
                // from fresh hosts, whatever the case before left
                bed.provision();
                let state = bed.tmp.path().join("chaos-baseline");
                let out = wait(run_upgrade(&bed, &state));
                assert_eq!(out.code, Some(0), "the uninterrupted run: {}", out.stderr);
                let d = Digest::take(&bed).unwrap().shape();
                at_start.set(false);
                d
            })
            .clone()
    };
    let mut tally = chaos::Tally::new("k0s ");
    for (n, case) in cases.iter().enumerate() {
        if !at_start.get() {
            bed.provision();
            at_start.set(true);
        }
        let t = Instant::now();
        let r = run_case(&bed, case, n, &completed);
        // a resume, a completed run or a failed case leaves the hosts changed
        let rolled_back = r.is_ok()
            && !matches!(case.fault, Fault::Kill9 { resume: true, .. })
            && bed.versions().iter().all(|v| v == k0s_bed::OLD);
        at_start.set(at_start.get() && rolled_back);
        tally.case(&case.name, t, r);
    }
    tally.finish();
}
