//! The fault-injection matrix: for every step of the MKE 3 → MKE 4k flow on a 3-manager,
//! 5-worker fake cluster,
//! (a) the step fails, at its first backend call and at its last (so that the most of it is half
//!     done) → the run rolls back and the whole fake world has the digest it had before the
//!     run;
//! (b) SIGINT during the step → the same;
//! (c) the process dies right after the step (the engine is dropped) → `rollback` from the
//!     journal restores the start digest, and `resume` reaches the digest of an uninterrupted
//!     run.
//! Prints the matrix size and the pass count. Outcomes are checked as the exit codes `ferry`
//! maps them to (4 rolled back, 0 completed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_cli::exit::{self, Ending};
use ferry_core::engine::StepKey;
use ferry_core::journal::Replay;
use ferry_core::run::Finish;
use ferry_flow_mke::SIGNAL_ABORT;
use ferry_testing::{Fault, FaultAction, FaultWhen};
use ferry_tests::Harness;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    FailFirst,
    Fail,
    Sigint,
    CrashThenRollback,
    CrashThenResume,
}

#[derive(Debug, Clone)]
struct Reference {
    start: String,
    end: String,
    steps: Vec<StepKey>,
    calls: BTreeMap<String, usize>,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

fn reference() -> Reference {
    rt().block_on(async {
        let h = Harness::new();
        let start = h.world.digest();
        let fin = h.upgrade().await.expect("reference run");
        assert!(matches!(fin, Finish::Completed { .. }), "{fin:?}");
        let end = h.world.digest();
        let replay = Replay::read(&h.state_dir()).expect("journal");
        let steps = replay.plan.steps().into_iter().map(|s| s.key).collect();
        let mut calls = BTreeMap::new();
        for c in h.world.calls() {
            if let Some(s) = c.step {
                *calls.entry(s).or_insert(0) += 1;
            }
        }
        Reference {
            start,
            end,
            steps,
            calls,
        }
    })
}

fn fault(r: &Reference, key: &StepKey, action: FaultAction, last: bool) -> Fault {
    let n = r.calls.get(&key.to_string()).copied().unwrap_or(0);
    let when = if n == 0 {
        FaultWhen::StepStart { key: key.clone() }
    } else {
        FaultWhen::Step {
            key: key.clone(),
            nth: if last { n } else { 1 },
        }
    };
    Fault { when, action }
}

fn diff(h: &Harness, want: &str) -> String {
    format!(
        "digest {} != {want}; log tail:\n{}",
        h.world.digest(),
        h.log
            .text()
            .lines()
            .rev()
            .take(25)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    )
}

async fn run_case(r: &Reference, key: &StepKey, sc: Scenario) -> Result<(), String> {
    let mut h = Harness::new();
    match sc {
        Scenario::FailFirst | Scenario::Fail | Scenario::Sigint => {
            let action = if sc == Scenario::Sigint {
                FaultAction::Interrupt
            } else {
                FaultAction::Fail
            };
            h.world.inject(fault(r, key, action, sc == Scenario::Fail));
            let fin = h.upgrade().await.map_err(|e| format!("error: {e}"))?;
            if !h.world.faults_fired() {
                return Err("the fault never fired".into());
            }
            if exit::code(Ending::of_finish(&fin)) != exit::ROLLED_BACK {
                return Err(format!(
                    "exit code {}, want {} (rolled back): {fin:?}\n{}",
                    exit::code(Ending::of_finish(&fin)),
                    exit::ROLLED_BACK,
                    h.log.text()
                ));
            }
            if let (Finish::RolledBack { error }, Scenario::Sigint) = (&fin, sc) {
                if error != SIGNAL_ABORT {
                    return Err(format!("rolled back for another reason: {error}"));
                }
            }
            if h.world.digest() != r.start {
                return Err(diff(&h, &r.start));
            }
        }
        Scenario::CrashThenRollback | Scenario::CrashThenResume => {
            h.hooks.crash_after(key.clone());
            {
                let hooks = h.hooks.clone();
                tokio::select! {
                    biased;
                    _ = hooks.crashed() => {}
                    fin = h.upgrade() => return Err(format!("the run ended without crashing: {fin:?}")),
                }
            }
            // A new process picks the run up from the journal.
            h.new_process();
            if sc == Scenario::CrashThenRollback {
                let fin = h.rollback().await.map_err(|e| format!("rollback: {e}"))?;
                if !matches!(fin, Finish::RolledBack { .. }) {
                    return Err(format!("rollback: {fin:?}\n{}", h.log.text()));
                }
                if h.world.digest() != r.start {
                    return Err(diff(&h, &r.start));
                }
            } else {
                let fin = h.resume().await.map_err(|e| format!("resume: {e}"))?;
                if exit::code(Ending::of_finish(&fin)) != exit::OK
                    || !matches!(fin, Finish::Completed { .. })
                {
                    return Err(format!("resume: {fin:?}\n{}", h.log.text()));
                }
                if h.world.digest() != r.end {
                    return Err(diff(&h, &r.end));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_step_fails_interrupts_and_crashes_back_to_a_known_state() {
    let r = Arc::new(reference());
    assert!(r.steps.len() >= 50, "{} steps", r.steps.len());
    let mut cases = Vec::new();
    for k in &r.steps {
        for sc in [
            Scenario::FailFirst,
            Scenario::Fail,
            Scenario::Sigint,
            Scenario::CrashThenRollback,
            Scenario::CrashThenResume,
        ] {
            cases.push((k.clone(), sc));
        }
    }
    let total = cases.len();
    let queue = Arc::new(Mutex::new(cases));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (q, f, r) = (queue.clone(), failures.clone(), r.clone());
            std::thread::spawn(move || {
                let rt = rt();
                loop {
                    let Some((k, sc)) = q.lock().unwrap().pop() else {
                        break;
                    };
                    if let Err(e) = rt.block_on(run_case(&r, &k, sc)) {
                        f.lock().unwrap().push(format!("{k} {sc:?}: {e}"));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    println!(
        "fault-injection matrix: {} steps x 5 scenarios = {total} cases, {} passed, {} failed",
        r.steps.len(),
        total - failures.len(),
        failures.len()
    );
    for f in failures.iter().take(8) {
        let short: String = f.chars().take(3000).collect();
        println!("FAILED {short}\n");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed",
        failures.len()
    );
}
