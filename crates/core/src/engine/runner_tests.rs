//! Engine tests on a toy world: a map of integers, steps that set one key each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::plan::tests::sref;
use super::*;
use crate::journal::{Journal, Record, Replay};

type World = Arc<Mutex<BTreeMap<String, i64>>>;

#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[derive(Debug)]
struct SetStep {
    key: StepKey,
    world: World,
    value: i64,
    fail: bool,
    irreversible: bool,
    interrupts: Option<Interrupts>,
    triggers: u32,
    gauge: Option<(Arc<Gauge>, Duration)>,
}

#[async_trait::async_trait]
impl Step for SetStep {
    fn key(&self) -> &StepKey {
        &self.key
    }

    fn reversibility(&self) -> Reversibility {
        if self.irreversible {
            Reversibility::Irreversible {
                why: "it burns the bridge".into(),
            }
        } else {
            Reversibility::Reversible
        }
    }

    async fn prepare(&self) -> Result<Value, StepError> {
        let w = self.world.lock().unwrap();
        Ok(json!(w.get(&self.key.to_string())))
    }

    async fn apply(&self, _prepared: &Value) -> Result<Value, StepError> {
        if let Some(i) = &self.interrupts {
            for _ in 0..self.triggers {
                i.trigger();
            }
        }
        if let Some((g, d)) = &self.gauge {
            let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
            g.max.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(*d).await;
            g.now.fetch_sub(1, Ordering::SeqCst);
        }
        // A failing step changes something first: undo must clean up a partial apply.
        self.world
            .lock()
            .unwrap()
            .insert(self.key.to_string(), self.value);
        if self.fail {
            return Err(StepError::new("boom"));
        }
        Ok(json!({"set": self.value}))
    }

    async fn undo(&self, data: &Value, _partial: bool) -> Result<(), StepError> {
        let _ = data;
        self.world.lock().unwrap().remove(&self.key.to_string());
        Ok(())
    }
}

struct Fixture {
    plan: Plan,
    world: World,
    dir: tempfile::TempDir,
    log: Arc<MemoryLog>,
    interrupts: Interrupts,
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

fn plan(managers: usize, workers: usize, limit: MaxUnavailable) -> Plan {
    let ms: Vec<HostChain> = (0..managers)
        .map(|i| chain(&format!("m{i}"), "manager", &["node.a", "node.b"]))
        .collect();
    let ws: Vec<HostChain> = (0..workers)
        .map(|i| chain(&format!("w{i}"), "worker", &["node.a", "node.b"]))
        .collect();
    Plan {
        flow: "toy".into(),
        phases: vec![
            Phase {
                name: "Pre".into(),
                rollback_name: "Rollback Pre".into(),
                groups: vec![Group::Steps {
                    steps: vec![
                        sref("pre.one", Target::Cluster),
                        sref("pre.two", Target::Cluster),
                    ],
                }],
            },
            Phase {
                name: "Nodes".into(),
                rollback_name: "Rollback Nodes".into(),
                groups: vec![
                    Group::Serial { hosts: ms },
                    Group::Window {
                        limit: limit.to_string(),
                        width: limit.batch_size(ws.len()),
                        order: "as listed".into(),
                        hosts: ws,
                    },
                ],
            },
        ],
    }
}

impl Fixture {
    fn new(plan: Plan) -> Self {
        Self {
            plan,
            world: Arc::default(),
            dir: tempfile::tempdir().unwrap(),
            log: MemoryLog::new(),
            interrupts: Interrupts::new(),
        }
    }

    fn steps(
        &self,
        fail: Option<&str>,
        interrupt_at: Option<&str>,
        gauge: Option<(Arc<Gauge>, Duration, &str)>,
    ) -> Vec<Arc<dyn Step>> {
        self.plan
            .steps()
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let k = s.key.to_string();
                Arc::new(SetStep {
                    key: s.key.clone(),
                    world: self.world.clone(),
                    value: i as i64 + 1,
                    fail: fail == Some(k.as_str()),
                    irreversible: false,
                    interrupts: (interrupt_at == Some(k.as_str())).then(|| self.interrupts.clone()),
                    triggers: 1,
                    gauge: gauge
                        .as_ref()
                        .and_then(|(g, d, prefix)| k.starts_with(prefix).then(|| (g.clone(), *d))),
                }) as Arc<dyn Step>
            })
            .collect()
    }

    fn engine(&self, steps: Vec<Arc<dyn Step>>) -> Engine {
        let j = Journal::create(
            self.dir.path(),
            Record::Header {
                run_id: "r1".into(),
                flow: "toy".into(),
                tool: "test".into(),
                inputs: json!({}),
                hosts: vec![],
                plan: self.plan.clone(),
            },
        )
        .unwrap();
        self.engine_with(steps, j)
    }

    fn engine_with(&self, steps: Vec<Arc<dyn Step>>, j: Journal) -> Engine {
        Engine::new(
            self.plan.clone(),
            steps,
            j,
            Logger::new(self.log.clone()),
            self.interrupts.clone(),
        )
        .unwrap()
    }

    fn world(&self) -> BTreeMap<String, i64> {
        self.world.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn completes_every_step() {
    let f = Fixture::new(plan(3, 5, MaxUnavailable::Count(2)));
    let out = f.engine(f.steps(None, None, None)).run().await.unwrap();
    assert_eq!(out, Outcome::Completed);
    assert_eq!(f.world().len(), 2 + 3 * 2 + 5 * 2);
    let r = Replay::read(f.dir.path()).unwrap();
    assert!(r.is_finished());
}

#[tokio::test]
async fn a_failure_rolls_back_in_reverse_grouped_by_phase() {
    let f = Fixture::new(plan(3, 5, MaxUnavailable::Count(2)));
    let e = f.engine(f.steps(Some("node.b@host:w2"), None, None));
    let out = e.run().await.unwrap();
    let Outcome::RolledBack { error, undone } = out else {
        panic!("{out:?}")
    };
    assert_eq!(error, "failed to run step node.b@host:w2: boom");
    assert!(f.world().is_empty(), "{:?}", f.world());
    // The failing step's partial change is undone first, then the rest in reverse.
    assert_eq!(undone.first().unwrap().to_string(), "node.b@host:w2");
    assert_eq!(undone.last().unwrap().to_string(), "pre.one@cluster");
    let log = f.log.text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("DEBU"))
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(
        lines,
        vec![
            "node.b@host:w2 failed: boom",
            "Rolling back because of a failure: failed to run step node.b@host:w2: boom",
            "Step 1 of 2: [Rollback Nodes]",
            "[Rollback Nodes] Completed",
            "Step 2 of 2: [Rollback Pre]",
            "[Rollback Pre] Completed",
        ]
    );
    assert!(log.contains("WARN[0000] Rolling back because of a failure"));
}

#[tokio::test]
async fn first_interrupt_lets_the_step_finish_then_rolls_back() {
    let f = Fixture::new(plan(3, 5, MaxUnavailable::Count(2)));
    let out = f
        .engine(f.steps(None, Some("node.a@host:m1"), None))
        .run()
        .await
        .unwrap();
    assert!(
        matches!(&out, Outcome::RolledBack { error, .. } if *error == Texts::default().signal_abort),
        "{out:?}"
    );
    assert!(f.world().is_empty());
}

#[tokio::test]
async fn second_interrupt_stops_at_once_and_rollback_from_the_journal_finishes() {
    let f = Fixture::new(plan(1, 2, MaxUnavailable::Count(1)));
    let mut steps = f.steps(None, None, None);
    steps[3] = Arc::new(SetStep {
        key: "node.b@host:m0".parse().unwrap(),
        world: f.world.clone(),
        value: 4,
        fail: false,
        irreversible: false,
        interrupts: Some(f.interrupts.clone()),
        triggers: 2,
        gauge: Some((Arc::default(), Duration::from_millis(10))),
    });
    let e = f.engine(steps);
    let out = e.run().await.unwrap();
    assert_eq!(out, Outcome::Interrupted);
    drop(e);
    assert!(!f.world().is_empty());
    let (j, replay) = Journal::open(f.dir.path()).unwrap();
    assert!(replay.interrupted);
    let f2 = Fixture {
        interrupts: Interrupts::new(),
        ..f
    };
    let e = f2.engine_with(f2.steps(None, None, None), j);
    let out = e.rollback_journal(&replay).await.unwrap();
    assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
    assert!(f2.world().is_empty(), "{:?}", f2.world());
}

#[derive(Debug)]
struct CrashAfter(StepKey);

#[async_trait::async_trait]
impl Hooks for CrashAfter {
    async fn after_apply(&self, key: &StepKey) {
        if *key == self.0 {
            std::future::pending::<()>().await;
        }
    }
}

#[tokio::test]
async fn a_crash_can_be_resumed_or_rolled_back_from_the_journal() {
    let full = {
        let f = Fixture::new(plan(2, 4, MaxUnavailable::Count(2)));
        f.engine(f.steps(None, None, None)).run().await.unwrap();
        f.world()
    };
    for resume in [true, false] {
        let f = Fixture::new(plan(2, 4, MaxUnavailable::Count(2)));
        let e = f
            .engine(f.steps(None, None, None))
            .with_hooks(Arc::new(CrashAfter("node.a@host:w2".parse().unwrap())));
        let crashed = tokio::time::timeout(Duration::from_millis(200), e.run()).await;
        assert!(crashed.is_err(), "the run must hang in the hook");
        drop(e);
        let (j, replay) = Journal::open(f.dir.path()).unwrap();
        let e = f.engine_with(f.steps(None, None, None), j);
        if resume {
            assert_eq!(e.resume(&replay).await.unwrap(), Outcome::Completed);
            assert_eq!(f.world(), full);
        } else {
            let out = e.rollback_journal(&replay).await.unwrap();
            assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
            assert!(f.world().is_empty(), "{:?}", f.world());
        }
    }
}

#[tokio::test]
async fn an_irreversible_step_makes_the_rollback_incomplete() {
    let f = Fixture::new(plan(1, 1, MaxUnavailable::Count(1)));
    let mut steps = f.steps(Some("node.a@host:w0"), None, None);
    steps[1] = Arc::new(SetStep {
        key: "pre.two@cluster".parse().unwrap(),
        world: f.world.clone(),
        value: 9,
        fail: false,
        irreversible: true,
        interrupts: None,
        triggers: 0,
        gauge: None,
    });
    let out = f.engine(steps).run().await.unwrap();
    let Outcome::RollbackIncomplete {
        failed, remaining, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(failed.to_string(), "pre.two@cluster");
    assert_eq!(
        remaining
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec!["pre.two@cluster", "pre.one@cluster"]
    );
    assert!(
        f.log
            .text()
            .contains("cannot be undone: it burns the bridge")
    );
}

fn max_concurrency(managers: usize, workers: usize, limit: MaxUnavailable) -> (usize, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let f = Fixture::new(plan(managers, workers, limit));
        let gm = Arc::new(Gauge::default());
        let gw = Arc::new(Gauge::default());
        let mut steps = f.steps(
            None,
            None,
            Some((gm.clone(), Duration::from_secs(1), "node.a@host:m")),
        );
        let wsteps = f.steps(
            None,
            None,
            Some((gw.clone(), Duration::from_secs(1), "node.a@host:w")),
        );
        for (i, s) in wsteps.into_iter().enumerate() {
            if s.key().to_string().contains("@host:w") {
                steps[i] = s;
            }
        }
        assert_eq!(f.engine(steps).run().await.unwrap(), Outcome::Completed);
        (gm.max.load(Ordering::SeqCst), gw.max.load(Ordering::SeqCst))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn managers_never_run_in_parallel_and_workers_respect_the_limit(
        managers in 1usize..4, workers in 0usize..12, count in 1u32..6, pct in 1u8..=100, use_pct: bool
    ) {
        let limit = if use_pct { MaxUnavailable::Percent(pct) } else { MaxUnavailable::Count(count) };
        let (m, w) = max_concurrency(managers, workers, limit);
        prop_assert_eq!(m, 1);
        prop_assert!(w <= limit.batch_size(workers));
        if workers > 0 {
            prop_assert_eq!(w, limit.batch_size(workers).min(workers));
        }
    }
}

/// Lockstep batches (the older schedule) still run every step once, under the limit.
#[tokio::test]
async fn lockstep_batches_complete_and_roll_back() {
    let mut p = plan(1, 5, MaxUnavailable::Count(2));
    let Group::Window { hosts, .. } = p.phases[1].groups[1].clone() else {
        panic!()
    };
    p.phases[1].groups[1] = Group::Batched {
        limit: "2".into(),
        batches: batching::batches(&hosts, MaxUnavailable::Count(2)),
    };
    let f = Fixture::new(p.clone());
    assert_eq!(
        f.engine(f.steps(None, None, None)).run().await.unwrap(),
        Outcome::Completed
    );
    assert_eq!(f.world().len(), 2 + 2 + 5 * 2);
    let f = Fixture::new(p);
    let out = f
        .engine(f.steps(Some("node.a@host:w3"), None, None))
        .run()
        .await
        .unwrap();
    assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
    assert!(f.world().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_the_window_stops_new_starts_and_lets_hosts_in_flight_finish_their_step() {
    let f = Fixture::new(plan(1, 6, MaxUnavailable::Count(2)));
    let mut steps = f.steps(
        None,
        None,
        Some((Arc::default(), Duration::from_secs(5), "node.")),
    );
    // w1 fails at once, while w0 is in the middle of its first step.
    let i = steps
        .iter()
        .position(|s| s.key().to_string() == "node.a@host:w1")
        .unwrap();
    steps[i] = Arc::new(SetStep {
        key: "node.a@host:w1".parse().unwrap(),
        world: f.world.clone(),
        value: 1,
        fail: true,
        irreversible: false,
        interrupts: None,
        triggers: 0,
        gauge: None,
    });
    let out = f.engine(steps).run().await.unwrap();
    assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
    let r = Replay::read(f.dir.path()).unwrap();
    let started: Vec<String> = r.order.iter().map(ToString::to_string).collect();
    // w0 finished the step it was in, and went no further; nobody else started.
    assert!(
        started.contains(&"node.a@host:w0".to_string()),
        "{started:?}"
    );
    assert!(
        !started.contains(&"node.b@host:w0".to_string()),
        "{started:?}"
    );
    assert!(
        started.iter().all(|k| !k.contains("host:w2")),
        "{started:?}"
    );
    assert!(matches!(
        r.steps.get(&"node.a@host:w0".parse().unwrap()),
        Some(crate::journal::StepState::Undone)
    ));
    assert!(f.world().is_empty(), "{:?}", f.world());
}

#[tokio::test(start_paused = true)]
async fn a_finished_host_frees_its_slot_without_waiting_for_the_others() {
    // w0's steps take 10 s each, every other host's 1 s: with a window two wide, w1..w4 pass
    // through the second slot while w0 is still busy (lockstep would hold them behind w0).
    let f = Fixture::new(plan(0, 5, MaxUnavailable::Count(2)));
    let mut steps = f.steps(
        None,
        None,
        Some((Arc::default(), Duration::from_secs(1), "node.")),
    );
    for s in steps.iter_mut() {
        if s.key().to_string().ends_with("host:w0") {
            *s = Arc::new(SetStep {
                key: s.key().clone(),
                world: f.world.clone(),
                value: 7,
                fail: false,
                irreversible: false,
                interrupts: None,
                triggers: 0,
                gauge: Some((Arc::default(), Duration::from_secs(10))),
            });
        }
    }
    let start = tokio::time::Instant::now();
    assert_eq!(f.engine(steps).run().await.unwrap(), Outcome::Completed);
    // The bound is w0's chain: 20 s. Lockstep batches of two would take 10+10+1+1+1+1 = 24 s.
    assert_eq!(start.elapsed(), Duration::from_secs(20));
}

#[derive(Debug, Default)]
struct RecordingGate {
    calls: Mutex<Vec<(String, Vec<String>)>>,
    refuse: Option<String>,
}

#[async_trait::async_trait]
impl Gate for RecordingGate {
    async fn wait(&self, host: &str, others: &[String]) -> Result<(), StepError> {
        self.calls
            .lock()
            .unwrap()
            .push((host.to_string(), others.to_vec()));
        if self.refuse.as_deref() == Some(host) {
            return Err(StepError::new("node m0 is not Ready"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_gate_is_asked_before_every_controller_and_a_closed_gate_rolls_back() {
    let f = Fixture::new(plan(3, 2, MaxUnavailable::Count(1)));
    let gate = Arc::new(RecordingGate::default());
    let out = f
        .engine(f.steps(None, None, None))
        .with_gate(gate.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(out, Outcome::Completed);
    let calls = gate.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            ("m0".to_string(), vec!["m1".to_string(), "m2".to_string()]),
            ("m1".to_string(), vec!["m0".to_string(), "m2".to_string()]),
            ("m2".to_string(), vec!["m0".to_string(), "m1".to_string()]),
        ]
    );
    let f = Fixture::new(plan(3, 2, MaxUnavailable::Count(1)));
    let gate = Arc::new(RecordingGate {
        refuse: Some("m1".into()),
        ..RecordingGate::default()
    });
    let out = f
        .engine(f.steps(None, None, None))
        .with_gate(gate)
        .run()
        .await
        .unwrap();
    let Outcome::RolledBack { error, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        error,
        "m1 cannot start: the other controllers are not healthy: node m0 is not Ready"
    );
    assert!(f.world().is_empty(), "{:?}", f.world());
    // m1's steps never started.
    let r = Replay::read(f.dir.path()).unwrap();
    assert!(
        r.order.iter().all(|k| k.host() != Some("m1")),
        "{:?}",
        r.order
    );
}

/// A step that counts its applies and undos, hangs in its first apply when told to (a crash in
/// the middle), and says it is one-way and picks up where it was cut off when told to.
#[derive(Debug)]
struct Counted {
    key: StepKey,
    applies: Arc<AtomicUsize>,
    undos: Arc<AtomicUsize>,
    hang_first: std::sync::atomic::AtomicBool,
    reapply: bool,
}

#[async_trait::async_trait]
impl Step for Counted {
    fn key(&self) -> &StepKey {
        &self.key
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::OneWay {
            why: "the disk is new".into(),
        }
    }

    fn resumes_by_reapplying(&self) -> bool {
        self.reapply
    }

    async fn apply(&self, _prepared: &Value) -> Result<Value, StepError> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        if self.hang_first.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(Value::Null)
    }

    async fn undo(&self, _data: &Value, _partial: bool) -> Result<(), StepError> {
        self.undos.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn counted(
    f: &Fixture,
    at: &str,
    hang: bool,
    reapply: bool,
) -> (Vec<Arc<dyn Step>>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let mut steps = f.steps(None, None, None);
    let applies = Arc::new(AtomicUsize::new(0));
    let undos = Arc::new(AtomicUsize::new(0));
    let i = steps
        .iter()
        .position(|s| s.key().to_string() == at)
        .unwrap();
    steps[i] = Arc::new(Counted {
        key: at.parse().unwrap(),
        applies: applies.clone(),
        undos: undos.clone(),
        hang_first: std::sync::atomic::AtomicBool::new(hang),
        reapply,
    });
    (steps, applies, undos)
}

/// Unlike an irreversible step, a one-way step does not stop a rollback: its undo (which
/// brings the target back in its new state) runs, and the steps before it are undone.
#[tokio::test]
async fn a_one_way_step_is_undone_by_its_own_undo_and_the_rollback_goes_on() {
    let f = Fixture::new(plan(1, 1, MaxUnavailable::Count(1)));
    let (mut steps, applies, undos) = counted(&f, "node.a@host:m0", false, false);
    let fail = steps
        .iter()
        .position(|s| s.key().to_string() == "node.b@host:m0")
        .unwrap();
    steps[fail] = Arc::new(SetStep {
        key: "node.b@host:m0".parse().unwrap(),
        world: f.world.clone(),
        value: 1,
        fail: true,
        irreversible: false,
        interrupts: None,
        triggers: 0,
        gauge: None,
    });
    let out = f.engine(steps).run().await.unwrap();
    assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
    assert_eq!(applies.load(Ordering::SeqCst), 1);
    assert_eq!(undos.load(Ordering::SeqCst), 1);
    assert!(f.world().is_empty(), "{:?}", f.world());
}

/// A step cut off in its apply is undone before a resume runs it again, unless it picks up
/// where it was cut off: then it is applied again, never undone.
#[tokio::test]
async fn a_resume_applies_again_a_step_that_picks_up_where_it_was_cut_off() {
    for reapply in [true, false] {
        let f = Fixture::new(plan(1, 1, MaxUnavailable::Count(1)));
        let (steps, applies, undos) = counted(&f, "node.a@host:w0", true, reapply);
        let e = f.engine(steps);
        let cut = tokio::time::timeout(Duration::from_millis(200), e.run()).await;
        assert!(cut.is_err(), "the run must hang in the step");
        drop(e);
        let (j, replay) = Journal::open(f.dir.path()).unwrap();
        let (steps, applies2, undos2) = counted(&f, "node.a@host:w0", false, reapply);
        let e = f.engine_with(steps, j);
        assert_eq!(e.resume(&replay).await.unwrap(), Outcome::Completed);
        assert_eq!(
            applies.load(Ordering::SeqCst) + applies2.load(Ordering::SeqCst),
            2
        );
        let undone = undos.load(Ordering::SeqCst) + undos2.load(Ordering::SeqCst);
        assert_eq!(undone, usize::from(!reapply), "reapply {reapply}");
    }
}

/// Changes the world, then never finishes (a host that stopped answering in the middle).
#[derive(Debug)]
struct HangStep {
    key: StepKey,
    world: World,
}

#[async_trait::async_trait]
impl Step for HangStep {
    fn key(&self) -> &StepKey {
        &self.key
    }

    async fn prepare(&self) -> Result<Value, StepError> {
        Ok(json!({"before": null}))
    }

    async fn apply(&self, _prepared: &Value) -> Result<Value, StepError> {
        self.world.lock().unwrap().insert(self.key.to_string(), -1);
        std::future::pending().await
    }

    async fn undo(&self, _data: &Value, partial: bool) -> Result<(), StepError> {
        assert!(partial, "a cut-off step is undone as partially applied");
        self.world.lock().unwrap().remove(&self.key.to_string());
        Ok(())
    }
}

fn with_hang(f: &Fixture, at: &str) -> Vec<Arc<dyn Step>> {
    let mut steps = f.steps(None, None, None);
    let i = steps
        .iter()
        .position(|s| s.key().to_string() == at)
        .unwrap();
    steps[i] = Arc::new(HangStep {
        key: at.parse().unwrap(),
        world: f.world.clone(),
    });
    steps
}

#[tokio::test(start_paused = true)]
async fn a_phase_deadline_cuts_off_the_steps_in_flight_and_rolls_everything_back() {
    let f = Fixture::new(plan(2, 3, MaxUnavailable::Count(2)));
    let deadline = Deadline {
        name: "the node phase (--phase-minutes 2)".into(),
        limit: Duration::from_secs(120),
        phase: Some("Nodes".into()),
    };
    let e = f
        .engine(with_hang(&f, "node.b@host:w1"))
        .with_deadlines(vec![deadline.clone()]);
    let started = tokio::time::Instant::now();
    let out = e.run().await.unwrap();
    let Outcome::RolledBack { error, undone } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        error,
        "deadline exceeded: the node phase (--phase-minutes 2) ran longer than 2 minutes"
    );
    assert_eq!(error, deadline.expired());
    // The clock of the phase, not of the run; nothing waited for the hung step.
    assert_eq!(started.elapsed(), Duration::from_secs(120));
    assert!(f.world().is_empty(), "{:?}", f.world());
    assert_eq!(undone.first().unwrap().to_string(), "node.b@host:w1");
    let log = f.log.text();
    assert!(
        log.contains("Deadline exceeded: the node phase (--phase-minutes 2) ran longer than 2 minutes: the run stops and rolls back"),
        "{log}"
    );
    assert!(
        log.contains("node.b@host:w1 was cut off by the deadline"),
        "{log}"
    );
    // The journal says the cut-off step failed, and the run finished rolled back.
    let r = Replay::read(f.dir.path()).unwrap();
    assert_eq!(r.finished.as_deref(), Some("rolled-back"));
}

#[tokio::test(start_paused = true)]
async fn a_run_deadline_counts_from_the_start_and_a_phase_deadline_only_in_its_phase() {
    // A deadline of a phase the run never lingers in does not fire.
    let f = Fixture::new(plan(1, 1, MaxUnavailable::Count(1)));
    let e = f
        .engine(f.steps(None, None, None))
        .with_deadlines(vec![Deadline {
            name: "the pre phase".into(),
            limit: Duration::from_secs(1),
            phase: Some("Pre".into()),
        }]);
    assert_eq!(e.run().await.unwrap(), Outcome::Completed);

    // The whole run's deadline bounds the first phase too.
    let f = Fixture::new(plan(1, 1, MaxUnavailable::Count(1)));
    let e = f
        .engine(with_hang(&f, "pre.two@cluster"))
        .with_deadlines(vec![
            Deadline {
                name: "the run (--timeout-minutes 1)".into(),
                limit: Duration::from_secs(60),
                phase: None,
            },
            Deadline {
                name: "the node phase".into(),
                limit: Duration::from_secs(30),
                phase: Some("Nodes".into()),
            },
        ]);
    let out = e.run().await.unwrap();
    assert!(
        matches!(&out, Outcome::RolledBack { error, .. } if error == "deadline exceeded: the run (--timeout-minutes 1) ran longer than 1 minute"),
        "{out:?}"
    );
    assert!(f.world().is_empty(), "{:?}", f.world());
}
