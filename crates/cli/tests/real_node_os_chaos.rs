//! The fault matrix of `ferry node replace-os --order remove-before-add` on the testbed's k0s
//! cluster of real parts (`k0s_bed`: 3 controllers, one of them running workloads, and 2
//! workers; a Deployment and a StatefulSet with budgets and a DaemonSet), from Debian 12 to
//! Debian 13 by `scripts/testbed reimage`.
//!
//! A reinstall cannot be undone, so a rollback cannot give back the hosts' disks: it must give
//! back the cluster. What is compared ([`Membership`]): each host's k0s (version, role,
//! workloads), its binary, its configuration and its service; the etcd members; the hosts'
//! Nodes (Ready, cordon state, labels, taints) and the workloads' ready pods. And the OS: after
//! a rollback a host runs its old OS unless its reinstall had started; after a resume every
//! host runs the new one.
//!
//! Cases:
//! * **k0s reset fails on HOST** (the double's fault file): the removal stops half-way; exit 4,
//!   or exit 5 naming what is left when the rollback's own reset fails too, then `ferry rollback`
//!   once the fault is gone.
//! * **reinstall fails before / after the reimage on HOST**: the reinstall command exits non-zero
//!   before touching the host, or after it reinstalled it (the host is on the new OS and must be
//!   added back on it, then the others rolled back): exit 4.
//! * **sigint STEP**: SIGINT as soon as the journal shows STEP started: exit 4 (or 0 when the
//!   run completed first).
//! * **kill9 STEP then rollback / resume**: SIGKILL as soon as the journal shows STEP applied;
//!   `ferry rollback` or `ferry resume` must exit 0.
//!
//! Which cases run (`chaos::selected`): `FERRY_CHAOS=all` the whole matrix;
//! `FERRY_CHAOS=only:NAME;NAME` the named ones; otherwise the fixed [`SAMPLE`] plus [`BY_HASH`]
//! cases chosen by the commit hash. It prints `node-os chaos: N cases, P passed` and fails
//! listing every case that went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod common;
mod k0s_bed;
mod mke_bed;
mod node_os_bed;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Instant;

use chaos::{recorded, signal_at, tail, wait};
use ferry_core::engine::Plan;
use ferry_kube_api::testing::real::announce;
use k0s_bed::K0sBed;
use node_os_bed::{BackToBase, Membership, REINSTALL, fresh, replace_os};

/// Cases every run includes: a reinstall that fails after it reinstalled a worker, SIGINT in a
/// controller's reinstall, kill -9 after the first controller's removal then rollback, after a
/// worker's reinstall then resume, after the dual-role controller's join then rollback.
const SAMPLE: [&str; 5] = [
    "reinstall fails after the reimage on 10.123.1.4",
    "sigint os.node.reinstall@host:10.123.1.2",
    "kill9 os.k0s.remove@host:10.123.1.1 then rollback",
    "kill9 os.node.reinstall@host:10.123.1.5 then resume",
    "kill9 os.k0s.join@host:10.123.1.3 then rollback",
];
/// Cases chosen by the commit hash besides the sample.
const BY_HASH: usize = 1;

#[derive(Debug, Clone)]
enum Fault {
    /// `k0s reset` fails on the host (index into the bed's hosts).
    Reset {
        host: usize,
    },
    /// The reinstall command fails on the host, before or after it reinstalled it.
    Reinstall {
        address: String,
        after: bool,
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

fn all_cases(bed: &K0sBed, plan: &Plan) -> Vec<Case> {
    let mut v = Vec::new();
    for (i, h) in bed.hosts.iter().enumerate() {
        v.push(Case {
            name: format!("k0s reset fails on {h}"),
            fault: Fault::Reset { host: i },
        });
    }
    for i in 1..=bed.hosts.len() {
        let address = format!("10.123.1.{i}");
        for after in [false, true] {
            v.push(Case {
                name: format!(
                    "reinstall fails {} the reimage on {address}",
                    if after { "after" } else { "before" }
                ),
                fault: Fault::Reinstall {
                    address: address.clone(),
                    after,
                },
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

/// The reinstall every case runs: the testbed's reimage, failing where
/// `FERRY_TEST_REINSTALL_FAIL` (`ADDRESS before` or `ADDRESS after`) says.
fn command() -> String {
    let tb = mke_bed::repo("scripts/testbed");
    format!(
        "case \"${{FERRY_TEST_REINSTALL_FAIL:-}}\" in \"$FERRY_HOST_ADDRESS before\") echo 'reinstall refused' >&2; exit 3;; esac; \
         {} reimage {{address}} trixie || exit 1; \
         case \"${{FERRY_TEST_REINSTALL_FAIL:-}}\" in \"$FERRY_HOST_ADDRESS after\") echo 'the post-install step failed' >&2; exit 4;; esac",
        tb.display()
    )
}

fn run(bed: &K0sBed, state: &Path, fail: Option<String>) -> Child {
    let cmd = command();
    let mut c = replace_os(
        bed,
        state,
        &["--yes", REINSTALL, &cmd, "--drain-timeout", "120"],
    );
    match fail {
        Some(f) => c.env("FERRY_TEST_REINSTALL_FAIL", f),
        None => c.env_remove("FERRY_TEST_REINSTALL_FAIL"),
    };
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The cluster as at `start`; hosts whose reinstall started (by the journal) may run the new
/// OS, the others must run the old one; with `complete`, every host runs the new one.
fn compare(
    bed: &K0sBed,
    start: &Membership,
    journal: &Path,
    complete: bool,
    log: &str,
) -> Result<(), String> {
    let now = Membership::take(bed)?;
    if let Some(d) = start.diff(&now) {
        return Err(format!(
            "the cluster differs from the start:\n{d}\n--- ferry's log\n{}",
            tail(log, 30)
        ));
    }
    let started: Vec<String> = recorded(journal, "started");
    for (h, os) in &now.os {
        let i: usize = h.trim_start_matches('h').parse().unwrap_or(0);
        let key = format!("os.node.reinstall@host:10.123.1.{i}");
        let old = start.os.get(h).cloned().unwrap_or_default();
        let ok = if complete {
            os.contains("trixie")
        } else {
            *os == old || (os.contains("trixie") && started.contains(&key))
        };
        if !ok {
            return Err(format!(
                "{h} runs {os:?} (it ran {old:?}; reinstall started: {})\n--- ferry's log\n{}",
                started.contains(&key),
                tail(log, 30)
            ));
        }
    }
    Ok(())
}

fn run_case(bed: &K0sBed, case: &Case, n: usize) -> Result<(), String> {
    let start = Membership::take(bed)?;
    let state = bed.tmp.path().join(format!("chaos-{n}"));
    let journal = state.join("journal.jsonl");
    match &case.fault {
        Fault::Reset { host } => {
            bed.put(*host, "/etc/k0s-double/fault", b"reset\n", "644");
            let ran = wait(run(bed, &state, None));
            // the host may be reinstalled by now (no fault file then)
            let _ = mke_bed::ssh(
                &bed.dir,
                &bed.hosts[*host],
                "rm -f /etc/k0s-double/fault",
                b"",
            );
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
            compare(bed, &start, &journal, false, &ran.stderr)
        }
        Fault::Reinstall { address, after } => {
            let f = format!("{address} {}", if *after { "after" } else { "before" });
            let ran = wait(run(bed, &state, Some(f)));
            if ran.code != Some(4) {
                return Err(format!(
                    "exit {:?}, want 4 (rolled back)\n{}",
                    ran.code,
                    tail(&ran.stderr, 30)
                ));
            }
            compare(bed, &start, &journal, false, &ran.stderr)
        }
        Fault::Sigint { step } => {
            let ran = signal_at(run(bed, &state, None), &journal, "started", step, "-INT");
            match ran.code {
                Some(0) => compare(bed, &start, &journal, true, &ran.stderr),
                Some(4) => compare(bed, &start, &journal, false, &ran.stderr),
                other => Err(format!(
                    "exit {other:?}, want 4 (rolled back)\n{}",
                    tail(&ran.stderr, 30)
                )),
            }
        }
        Fault::Kill9 { step, resume } => {
            let ran = signal_at(run(bed, &state, None), &journal, "applied", step, "-KILL");
            if ran.code.is_some() {
                return Ok(());
            }
            let verb = if *resume { "resume" } else { "rollback" };
            let ended = !recorded(&journal, "finished").is_empty();
            let t = Instant::now();
            let out = bed.ferry_again(verb, &state);
            announce(&format!(
                "node-os chaos:      ferry {verb} took {:.0} s",
                t.elapsed().as_secs_f64()
            ));
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
            compare(bed, &start, &journal, *resume, &log)
        }
    }
}

fn plan_of(bed: &K0sBed) -> Plan {
    let state = bed.tmp.path().join("chaos-dry-run");
    let cmd = command();
    let out = replace_os(bed, &state, &["--dry-run", "-o", "json", REINSTALL, &cmd])
        .output()
        .unwrap();
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
fn every_failure_and_interrupt_of_a_node_os_replacement_gives_back_the_cluster() {
    let bed = K0sBed::open();
    let _back = BackToBase {
        dir: bed.dir.clone(),
        hosts: bed.hosts.clone(),
    };
    bed.deploy();
    node_os_bed::more_workloads(&bed);
    let plan = plan_of(&bed);
    let (cases, how) = chaos::selected(
        all_cases(&bed, &plan),
        |c: &Case| c.name.as_str(),
        &SAMPLE,
        BY_HASH,
    );
    announce(&format!("node-os chaos: running {how}"));
    let mut tally = chaos::Tally::new("node-os ");
    let mut fresh_now = true;
    for (n, case) in cases.iter().enumerate() {
        if !fresh_now {
            fresh(&bed);
        }
        fresh_now = false;
        let t = Instant::now();
        tally.case(&case.name, t, run_case(&bed, case, n));
    }
    tally.finish();
}
