//! What the chaos suites on real hosts share (`real_chaos.rs` for `ferry upgrade`,
//! `real_k0s_chaos.rs`, `real_node_os_chaos.rs`, `real_cloud_chaos.rs`,
//! `real_cloud_rke_chaos.rs`): which cases run, the journal's records, signalling ferry at a
//! step, and the tally.
//!
//! Which cases run: `FERRY_CHAOS=all` every case; `FERRY_CHAOS=only:NAME;NAME` the named ones;
//! otherwise the suite's fixed sample plus some chosen by the commit hash (`FERRY_CHAOS_SEED`,
//! else `git rev-parse HEAD`), so that every commit also tries cases the sample does not.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use ferry_kube_api::testing::real::announce;

/// A number from the commit hash (or `FERRY_CHAOS_SEED`).
pub fn seed() -> u64 {
    let text = std::env::var("FERRY_CHAOS_SEED").ok().or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(crate::mke_bed::repo(""))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    text.unwrap_or_default()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The cases to run out of `all` (see the module's documentation), and how they were chosen.
pub fn selected<C: Clone>(
    all: Vec<C>,
    name: impl Fn(&C) -> &str,
    sample: &[&str],
    by_hash: usize,
) -> (Vec<C>, String) {
    let choice = std::env::var("FERRY_CHAOS").unwrap_or_default();
    if choice == "all" {
        let n = all.len();
        return (all, format!("all {n} cases (FERRY_CHAOS=all)"));
    }
    // `FERRY_CHAOS=only:NAME;NAME...`: the named cases (to run failed ones again).
    if let Some(names) = choice.strip_prefix("only:") {
        let names: Vec<&str> = names
            .split(';')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let chosen: Vec<C> = all
            .into_iter()
            .filter(|c| names.contains(&name(c)))
            .collect();
        assert_eq!(
            chosen.len(),
            names.len(),
            "FERRY_CHAOS=only: names a case the matrix does not have: {names:?}"
        );
        let n = chosen.len();
        return (
            chosen,
            format!("the {n} named cases (FERRY_CHAOS=only:...)"),
        );
    }
    let (mut chosen, rest): (Vec<C>, Vec<C>) =
        all.into_iter().partition(|c| sample.contains(&name(c)));
    assert_eq!(
        chosen.len(),
        sample.len(),
        "a sample case is not in the matrix: {sample:?}"
    );
    let s = seed();
    let mut extra: Vec<C> = Vec::new();
    for i in 0..by_hash.min(rest.len()) {
        let c = &rest[(s.rotate_left(17 * i as u32) as usize) % rest.len()];
        if !extra.iter().any(|e| name(e) == name(c)) {
            extra.push(c.clone());
        }
    }
    let how = format!(
        "the fixed sample of {} and {} chosen by seed {s:016x}: {}",
        chosen.len(),
        extra.len(),
        extra.iter().map(&name).collect::<Vec<_>>().join(", ")
    );
    chosen.extend(extra);
    (chosen, how)
}

/// The step keys of the journal's records of `kind` (`started`, `applied`, `finished`).
pub fn recorded(journal: &Path, kind: &str) -> Vec<String> {
    let Ok(f) = std::fs::File::open(journal) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|v| v["type"] == kind)
        .map(|v| match &v["key"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// How a run of ferry ended: its exit code (`None` when killed by a signal) and its log.
pub struct Ran {
    pub code: Option<i32>,
    pub stderr: String,
}

pub fn wait(child: Child) -> Ran {
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Sends `signal` to `child` once the journal has a `kind` record of `step`, and waits for it.
pub fn signal_at(child: Child, journal: &Path, kind: &str, step: &str, signal: &str) -> Ran {
    let pid = child.id().to_string();
    act_at(child, journal, kind, step, &|| {
        let _ = std::process::Command::new("kill")
            .args([signal, &pid])
            .status();
    })
}

/// Does `act` once the journal has a `kind` record of `step`; waits for `child` (10 min at
/// most: a run that hangs past its commands' deadlines fails the case).
pub fn act_at(mut child: Child, journal: &Path, kind: &str, step: &str, act: &dyn Fn()) -> Ran {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut done = false;
    loop {
        if !done && recorded(journal, kind).iter().any(|k| k == step) {
            act();
            done = true;
        }
        if child.try_wait().unwrap().is_some() {
            return wait(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut r = wait(child);
            r.code = Some(-1);
            r.stderr
                .push_str("\n(killed by the suite: still running after 10 min)");
            return r;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// When a kill -9 landed after the journal recorded the end of the run (it can, after the
/// plan's last step, while ferry writes its report), there is nothing left to resume or roll
/// back: `ferry VERB` must exit 1 saying the run already finished.
pub fn said_already_finished(verb: &str, code: Option<i32>, log: &str) -> Result<(), String> {
    if code == Some(1) && log.contains("already finished") {
        Ok(())
    } else {
        Err(format!(
            "ferry {verb} after a kill -9 that came after the end of the run: exit {code:?}, want 1 and `already finished`\n{}",
            tail(log, 30)
        ))
    }
}

/// The tally of a fault matrix: each case announced as `<label> chaos: ok   NAME (T s)` or
/// `<label> chaos: FAIL NAME`, and at the end `<label> chaos: N cases, P passed`, failing with
/// every case that went wrong and why.
pub struct Tally {
    label: String,
    cases: usize,
    failed: Vec<(String, String)>,
}

impl Tally {
    pub fn new(label: &str) -> Tally {
        Tally {
            label: label.to_string(),
            cases: 0,
            failed: Vec::new(),
        }
    }

    /// Counts case `name`, started at `started`, that came to `r`; whether it passed.
    pub fn case(&mut self, name: &str, started: Instant, r: Result<(), String>) -> bool {
        self.cases += 1;
        let label = &self.label;
        match r {
            Ok(()) => {
                announce(&format!(
                    "{label}chaos: ok   {name} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                ));
                true
            }
            Err(e) => {
                announce(&format!("{label}chaos: FAIL {name}"));
                self.failed.push((name.to_string(), e));
                false
            }
        }
    }

    /// Announces the count and fails listing every case that went wrong.
    pub fn finish(self) {
        announce(&format!(
            "{}chaos: {} cases, {} passed",
            self.label,
            self.cases,
            self.cases - self.failed.len()
        ));
        let report: Vec<String> = self
            .failed
            .iter()
            .map(|(n, e)| format!("=== {n}\n{e}"))
            .collect();
        assert!(self.failed.is_empty(), "{}", report.join("\n"));
    }
}
