//! The makespan of the engine's schedules on heterogeneous hosts, with synthetic steps that only
//! wait (on paused tokio time): 3 managers one at a time, then 100 workers, each host's chain of
//! five steps scaled by its own latency, drawn from a fixed-seed lognormal (σ = 0.6) with one host
//! in twenty ten times slower. Compared with the lower bound
//! `managers' total + max(longest worker chain, total worker work / width)`.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::engine::{
    Engine, Group, HostChain, Interrupts, Logger, MaxUnavailable, Outcome, Phase, Plan,
    Reversibility, Step, StepError, StepKey, StepRef, Target, batching, slowest_first,
};
use ferry_core::journal::{Journal, Record};
use serde_json::Value;

/// How the workers are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Lockstep batches in list order, a barrier after every step (the older engine).
    Lockstep,
    /// The sliding window, hosts in list order.
    WindowListed,
    /// The sliding window, slowest first by an estimate off by up to ±30 %.
    WindowSlowestFirst,
}

/// Relative weights of the five node steps (drain, stop, install, start, uncordon).
pub const STEP_WEIGHTS: [u32; 5] = [2, 1, 3, 2, 1];

/// splitmix64: a small fixed-seed generator, so that every run draws the same cluster.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Per-host operation latencies: lognormal(0, σ = 0.6) seconds, every twentieth host ×10.
pub fn latencies(hosts: usize, seed: u64) -> Vec<Duration> {
    let mut rng = Rng::new(seed);
    (0..hosts)
        .map(|i| {
            let base = (0.6 * rng.normal()).exp();
            let slow = if i % 20 == 7 { 10.0 } else { 1.0 };
            Duration::from_secs_f64(base * slow)
        })
        .collect()
}

#[derive(Debug)]
struct Wait {
    key: StepKey,
    took: Duration,
}

#[async_trait::async_trait]
impl Step for Wait {
    fn key(&self) -> &StepKey {
        &self.key
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::NoOp
    }

    async fn apply(&self, _prepared: &Value) -> Result<Value, StepError> {
        tokio::time::sleep(self.took).await;
        Ok(Value::Null)
    }

    async fn undo(&self, _data: &Value, _partial: bool) -> Result<(), StepError> {
        Ok(())
    }
}

fn chain(host: &str, role: &str) -> HostChain {
    HostChain {
        host: host.into(),
        role: role.into(),
        steps: ["drain", "stop", "install", "start", "uncordon"]
            .iter()
            .map(|s| StepRef {
                key: StepKey::new(format!("node.{s}"), Target::Host(host.into())),
                description: (*s).into(),
                reversibility: Reversibility::NoOp,
            })
            .collect(),
    }
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub makespan: Duration,
    pub bound: Duration,
}

impl Measured {
    pub fn ratio(&self) -> f64 {
        self.makespan.as_secs_f64() / self.bound.as_secs_f64()
    }
}

/// Runs 3 managers and `workers` workers under `limit` with `schedule` and returns the makespan
/// and the lower bound.
pub fn measure(workers: usize, limit: MaxUnavailable, schedule: Schedule, seed: u64) -> Measured {
    let managers = 3;
    let lat = latencies(managers + workers, seed);
    let unit: u32 = STEP_WEIGHTS.iter().sum();
    let name = |i: usize| {
        if i < managers {
            format!("m{i}")
        } else {
            format!("w{}", i - managers)
        }
    };
    let chain_time = |i: usize| lat[i] * unit;
    let m_chains: Vec<HostChain> = (0..managers).map(|i| chain(&name(i), "manager")).collect();
    let mut w_chains: Vec<HostChain> = (managers..managers + workers)
        .map(|i| chain(&name(i), "worker"))
        .collect();
    let width = limit.batch_size(workers);
    let mut rng = Rng::new(seed ^ 0xE57);
    let estimate: Vec<Duration> = (0..managers + workers)
        .map(|i| chain_time(i).mul_f64(1.0 + 0.6 * (rng.unit() - 0.5)))
        .collect();
    let index = |h: &str| -> usize {
        h.strip_prefix('w')
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(0, |n| n + managers)
    };
    let workers_group = match schedule {
        Schedule::Lockstep => Group::Batched {
            limit: limit.to_string(),
            batches: batching::batches(&w_chains, limit),
        },
        Schedule::WindowListed | Schedule::WindowSlowestFirst => {
            if schedule == Schedule::WindowSlowestFirst {
                slowest_first(&mut w_chains, |h| estimate[index(h)]);
            }
            Group::Window {
                limit: limit.to_string(),
                width,
                order: "bench".into(),
                hosts: w_chains,
            }
        }
    };
    let plan = Plan {
        flow: "bench".into(),
        phases: vec![Phase {
            name: "Nodes".into(),
            rollback_name: "Rollback Nodes".into(),
            groups: vec![Group::Serial { hosts: m_chains }, workers_group],
        }],
    };
    let steps: Vec<Arc<dyn Step>> = plan
        .steps()
        .into_iter()
        .map(|s| {
            let host = s.key.host().unwrap_or_default().to_string();
            let i = if let Some(m) = host.strip_prefix('m') {
                m.parse().unwrap_or(0)
            } else {
                index(&host)
            };
            let w = match s.key.id.as_str() {
                "node.drain" => STEP_WEIGHTS[0],
                "node.stop" => STEP_WEIGHTS[1],
                "node.install" => STEP_WEIGHTS[2],
                "node.start" => STEP_WEIGHTS[3],
                _ => STEP_WEIGHTS[4],
            };
            Arc::new(Wait {
                key: s.key,
                took: lat[i] * w,
            }) as Arc<dyn Step>
        })
        .collect();
    let managers_total: Duration = (0..managers).map(chain_time).sum();
    let worker_times: Vec<Duration> = (managers..managers + workers).map(chain_time).collect();
    let longest = worker_times.iter().copied().max().unwrap_or_default();
    let total: Duration = worker_times.iter().sum();
    let bound = managers_total + longest.max(total / width as u32);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let dir = crate::fast_tempdir();
    let makespan = rt.block_on(async {
        let journal = Journal::create(
            dir.path(),
            Record::Header {
                run_id: "bench".into(),
                flow: "bench".into(),
                tool: "bench".into(),
                inputs: Value::Null,
                hosts: vec![],
                plan: plan.clone(),
            },
        )
        .expect("journal");
        let engine =
            Engine::new(plan, steps, journal, Logger::null(), Interrupts::new()).expect("engine");
        let start = tokio::time::Instant::now();
        let out = engine.run().await.expect("run");
        assert_eq!(out, Outcome::Completed);
        start.elapsed()
    });
    Measured { makespan, bound }
}
