//! # ferry-tests
//!
//! Library-level end-to-end scenarios: whole migrations driven through the engine of
//! `ferry-core` against its in-memory fakes, with fault injection at every step, and conversions
//! chained with RBAC translation. The scenarios live in `tests/`; this library holds their shared
//! fixtures.

pub mod window;

use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::Secret;
use ferry_core::engine::{Interrupts, MaxUnavailable, MemoryLog};
use ferry_core::hosts::HostSpec;
use ferry_core::run::{self, Finish, RunError, Session};
use ferry_flow_mke::{Inputs, MkeError, MkeFlow, MkeReport};
use ferry_testing::world::FIXTURE_ADMIN_PASSWORD;
use ferry_testing::{FakeCluster, FakeConnector, FakeMke3, FaultHooks, Fixture, World};

/// One fake cluster with a state directory, a log and an interrupt source.
#[derive(Debug)]
pub struct Harness {
    pub world: World,
    pub state: tempfile::TempDir,
    pub home: tempfile::TempDir,
    pub log: Arc<MemoryLog>,
    pub interrupts: Interrupts,
    pub hooks: Arc<FaultHooks>,
    pub max_unavailable: MaxUnavailable,
}

impl Harness {
    /// A 3-manager, 5-worker MKE 3.7.15 cluster.
    pub fn new() -> Self {
        Self::with(&Fixture::default())
    }

    pub fn with(f: &Fixture) -> Self {
        let world = f.build();
        let interrupts = Interrupts::new();
        world.set_interrupts(interrupts.clone());
        let hooks = FaultHooks::new(&world);
        Self {
            world,
            state: fast_tempdir(),
            home: tempfile::tempdir().expect("tempdir"),
            log: MemoryLog::new(),
            interrupts,
            hooks,
            max_unavailable: MaxUnavailable::Count(2),
        }
    }

    /// Another operator's session on the same cluster: same world, its own state directory.
    pub fn with_world(other: &Harness) -> Self {
        let interrupts = Interrupts::new();
        Self {
            world: other.world.clone(),
            state: fast_tempdir(),
            home: tempfile::tempdir().expect("tempdir"),
            log: MemoryLog::new(),
            interrupts,
            hooks: FaultHooks::new(&other.world),
            max_unavailable: other.max_unavailable,
        }
    }

    /// The hosts file of the fixture.
    pub fn hosts(&self) -> Vec<HostSpec> {
        self.world
            .state()
            .hosts
            .keys()
            .map(|h| HostSpec {
                address: h.clone(),
                port: 22,
                user: "docker".into(),
                key_path: Some("~/.ssh/cluster.pem".into()),
                private_address: None,
                private_interface: None,
                bastion: None,
                sudo: true,
                known_hosts_policy: Default::default(),
            })
            .collect()
    }

    pub fn inputs(&self) -> Inputs {
        let mut i = Inputs::new(self.hosts(), "admin", "mke.example.com");
        i.max_unavailable = self.max_unavailable;
        i.kubeconf_path = Some(self.home.path().join(".mke/mke.kubeconf"));
        i
    }

    /// The MKE flow with the fake MKE 3 API.
    pub fn flow(&self) -> MkeFlow {
        let mke3 = FakeMke3::new(
            &self.world,
            "admin",
            Secret::new(FIXTURE_ADMIN_PASSWORD.to_string()),
        );
        MkeFlow::new(Arc::new(mke3))
    }

    pub fn session(&self) -> Session {
        Session {
            connector: Arc::new(FakeConnector::new(&self.world)),
            cluster: Arc::new(FakeCluster::new(&self.world)),
            state_dir: self.state_dir(),
            log: self.log.clone(),
            interrupts: self.interrupts.clone(),
            hooks: self.hooks.clone(),
            confirm: None,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    pub async fn upgrade(&self) -> Result<Finish<MkeReport>, RunError<MkeError>> {
        run::start(&self.flow(), self.inputs(), self.session(), false).await
    }

    pub async fn dry_run(&self) -> Result<Finish<MkeReport>, RunError<MkeError>> {
        run::start(&self.flow(), self.inputs(), self.session(), true).await
    }

    /// A fresh interrupt source (a new process) for resume and rollback.
    pub fn new_process(&mut self) {
        self.interrupts = Interrupts::new();
        self.world.set_interrupts(self.interrupts.clone());
        self.hooks = FaultHooks::new(&self.world);
    }

    pub async fn resume(&self) -> Result<Finish<MkeReport>, RunError<MkeError>> {
        run::resume(&self.flow(), self.session()).await
    }

    pub async fn rollback(&self) -> Result<Finish<MkeReport>, RunError<MkeError>> {
        run::rollback(&self.flow(), self.session()).await
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// A temporary directory on tmpfs when there is one: journals fsync every line, which is cheap
/// there and keeps the fault-injection matrix fast.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("ferry-test-")
            .tempdir_in(shm)
        {
            return d;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

/// The figures of one makespan measurement.
#[derive(Debug, Clone)]
pub struct Makespan {
    pub managers: usize,
    pub workers: usize,
    pub limit: MaxUnavailable,
    pub batch: usize,
    /// The fixed latency of one host operation.
    pub latency: std::time::Duration,
    /// From the first step to the last, on the (paused) tokio clock.
    pub makespan: std::time::Duration,
    /// The critical-path lower bound of the plan for this limit.
    pub lower_bound: std::time::Duration,
    /// Host operations the run made.
    pub host_ops: usize,
}

impl Makespan {
    pub fn ratio(&self) -> f64 {
        self.makespan.as_secs_f64() / self.lower_bound.as_secs_f64()
    }
}

/// Runs a whole upgrade of a `managers` + `workers` fake cluster with `latency` per host
/// operation on paused tokio time, and compares the engine's makespan with the critical-path
/// lower bound of its plan: cluster steps and managers (one at a time) add up; a window of
/// workers `w` wide takes at least `max(longest chain, total / w)`.
pub fn measure_makespan(
    managers: usize,
    workers: usize,
    limit: MaxUnavailable,
    latency: std::time::Duration,
) -> Makespan {
    use ferry_core::engine::{Group, Level};
    use ferry_core::journal::Replay;
    use std::collections::BTreeMap;
    use std::time::Duration;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut h = Harness::with(&Fixture {
            managers,
            workers,
            ..Fixture::default()
        });
        h.max_unavailable = limit;
        h.world.set_latency(latency);
        let fin = h.upgrade().await.expect("upgrade");
        assert!(matches!(fin, Finish::Completed { .. }), "{fin:?}");
        // The engine runs between these two log lines.
        let lines = h.log.lines();
        let at = |prefix: &str| {
            lines
                .iter()
                .find(|l| l.level >= Level::Info && l.message.starts_with(prefix))
                .map(|l| l.elapsed)
                .expect("log line")
        };
        let makespan = at("==> Running phase: Release exclusive host lock") - at("Upgrading MKE");
        // Host operations per step instance.
        let mut ops: BTreeMap<String, u32> = BTreeMap::new();
        let mut host_ops = 0;
        for c in h.world.calls() {
            if c.backend == "host" {
                if let Some(s) = c.step {
                    *ops.entry(s).or_insert(0) += 1;
                    host_ops += 1;
                }
            }
        }
        let d = |k: &ferry_core::engine::StepKey| {
            latency * ops.get(&k.to_string()).copied().unwrap_or(0)
        };
        let plan = Replay::read(&h.state_dir()).expect("journal").plan;
        let mut bound = Duration::ZERO;
        for phase in &plan.phases {
            for g in &phase.groups {
                match g {
                    Group::Steps { steps } => bound += steps.iter().map(|s| d(&s.key)).sum(),
                    Group::Serial { hosts } => {
                        bound += hosts.iter().flat_map(|c| &c.steps).map(|s| d(&s.key)).sum()
                    }
                    Group::Window { width, hosts, .. } => {
                        let chains: Vec<Duration> = hosts
                            .iter()
                            .map(|c| c.steps.iter().map(|s| d(&s.key)).sum())
                            .collect();
                        let longest = chains.iter().copied().max().unwrap_or_default();
                        let total: Duration = chains.iter().sum();
                        bound += longest.max(total / (*width).max(1) as u32);
                    }
                    Group::Batched { batches, .. } => {
                        let chains: Vec<Duration> = batches
                            .iter()
                            .flatten()
                            .map(|c| c.steps.iter().map(|s| d(&s.key)).sum())
                            .collect();
                        if chains.is_empty() {
                            continue;
                        }
                        let b = limit.batch_size(chains.len()) as u32;
                        let n = chains.len() as u32;
                        let longest = chains.iter().copied().max().unwrap_or_default();
                        let shortest = chains.iter().copied().min().unwrap_or_default();
                        let total: Duration = chains.iter().sum();
                        bound += longest.max(shortest * n.div_ceil(b)).max(total / b);
                    }
                }
            }
        }
        Makespan {
            managers,
            workers,
            limit,
            batch: limit.batch_size(workers),
            latency,
            makespan,
            lower_bound: bound,
            host_ops,
        }
    })
}
