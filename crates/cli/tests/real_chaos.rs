//! The chaos suite on real hosts: `ferry upgrade`, the binary, on the testbed's MKE 3 cluster of
//! real parts (see `mke_bed`), broken on purpose at every step, must give back exactly what it
//! found: a digest of every host (containers, volumes, images, swarm state, files under `/etc`,
//! `/var/lib`, `/usr/local`), of the keys in `ucp-kv` and of the API server's objects, taken
//! before the run, equals the one taken after it (`mke_bed::digest`).
//!
//! Cases:
//! * **host-fault**: a host command fails: the k0s double's fault file names `install` or
//!   `start` (steps install-k0s and start-k0s), or a `docker` wrapper in `/usr/local/bin` fails
//!   `exec ucp-kv etcdctl` (backup-etcd), `container stop` (stop-mke3) or `container rm`
//!   (remove-mke3), on every host each applies to. The run must exit 4 (rolled back).
//! * **sigint**: SIGINT to ferry as soon as the journal shows the step started, for every step
//!   of the plan. The run must exit 4 (rolled back) or, when the step was the last one and the
//!   run completed before the signal landed, 0 (then the case does not count as a rollback).
//!
//! Which cases run: `FERRY_CHAOS=all` runs every case (the full matrix, about half an hour);
//! otherwise a fixed sample ([`SAMPLE`]) plus [`BY_HASH`] more cases chosen by the commit hash
//! (`FERRY_CHAOS_SEED`, else `git rev-parse HEAD`), so that every commit also tries cases the
//! sample does not. It prints `chaos: N cases, P passed` and fails listing every case whose
//! digest differs, with the differing lines. Between cases a host left changed is provisioned
//! afresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mke_bed;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ferry_core::engine::Plan;
use ferry_kube_api::testing::real::announce;
use mke_bed::digest::Digest;
use mke_bed::{Bed, sh, ssh};

/// Cases every run of the suite includes: one fault of each kind on a manager and on a worker,
/// and SIGINT in a node step, a cluster step and the cleanup.
const SAMPLE: [&str; 6] = [
    "host-fault k0s start on h2",
    "host-fault docker container rm on h5",
    "host-fault docker exec ucp-kv etcdctl on h1",
    "sigint mke.node.install-k0s@host:10.123.1.4",
    "sigint mke.apply-rbac@cluster",
    "sigint mke.node.remove-mke3@host:10.123.1.3",
];
/// Cases chosen by the commit hash besides the sample.
const BY_HASH: usize = 2;

#[derive(Debug, Clone)]
enum Fault {
    /// `k0s <command>` fails on the host.
    K0s { host: String, command: &'static str },
    /// `docker <prefix>...` fails on the host.
    Docker { host: String, prefix: &'static str },
    /// SIGINT once the step has started.
    Sigint { step: String },
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    fault: Fault,
}

const DOCKER_WRAPPER: &str = r#"#!/bin/sh
# ferry chaos suite: fails the docker commands whose arguments start with a line of
# /etc/ferry-chaos/docker-fault, runs every other one
f=/etc/ferry-chaos/docker-fault
if [ -f "$f" ]; then
  while read -r c; do
    case "$*" in "$c"*) echo "Error response from daemon: injected fault ($c)" >&2; exit 1 ;; esac
  done <"$f"
fi
exec /usr/bin/docker "$@"
"#;

fn all_cases(bed: &Bed, plan: &Plan) -> Vec<Case> {
    let mut v = Vec::new();
    let managers = &bed.hosts[..bed.managers];
    for h in &bed.hosts {
        for command in ["install", "start"] {
            v.push(Case {
                name: format!("host-fault k0s {command} on {h}"),
                fault: Fault::K0s {
                    host: h.clone(),
                    command,
                },
            });
        }
        for prefix in ["container stop", "container rm"] {
            v.push(Case {
                name: format!("host-fault docker {prefix} on {h}"),
                fault: Fault::Docker {
                    host: h.clone(),
                    prefix,
                },
            });
        }
    }
    v.push(Case {
        name: format!("host-fault docker exec ucp-kv etcdctl on {}", managers[0]),
        fault: Fault::Docker {
            host: managers[0].clone(),
            prefix: "exec ucp-kv etcdctl",
        },
    });
    for s in plan.steps() {
        let step = s.key.to_string();
        v.push(Case {
            name: format!("sigint {step}"),
            fault: Fault::Sigint { step },
        });
    }
    v
}

/// A number from the commit hash (or `FERRY_CHAOS_SEED`).
fn seed() -> u64 {
    let text = std::env::var("FERRY_CHAOS_SEED").ok().or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(mke_bed::repo(""))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    let text = text.unwrap_or_default();
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn selected(all: Vec<Case>) -> (Vec<Case>, String) {
    if std::env::var("FERRY_CHAOS").as_deref() == Ok("all") {
        let n = all.len();
        return (all, format!("all {n} cases (FERRY_CHAOS=all)"));
    }
    let (mut chosen, rest): (Vec<Case>, Vec<Case>) = all
        .into_iter()
        .partition(|c| SAMPLE.contains(&c.name.as_str()));
    assert_eq!(
        chosen.len(),
        SAMPLE.len(),
        "a sample case is not in the matrix: {SAMPLE:?}"
    );
    let s = seed();
    let mut extra = Vec::new();
    for i in 0..BY_HASH.min(rest.len()) {
        let k = (s.rotate_left(17 * i as u32) as usize) % rest.len();
        let c = &rest[k];
        if !extra.iter().any(|e: &Case| e.name == c.name) {
            extra.push(c.clone());
        }
    }
    let how = format!(
        "the fixed sample of {} and {} chosen by seed {s:016x}: {}",
        chosen.len(),
        extra.len(),
        extra
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    chosen.extend(extra);
    (chosen, how)
}

fn set_fault(bed: &Bed, f: &Fault) {
    match f {
        Fault::K0s { host, command } => {
            let out = ssh(
                &bed.dir,
                host,
                "mkdir -p /etc/k0s-double && cat > /etc/k0s-double/fault",
                format!("{command}\n").as_bytes(),
            );
            assert!(out.status.success());
        }
        Fault::Docker { host, prefix } => {
            let out = ssh(
                &bed.dir,
                host,
                "install -m 0755 /dev/stdin /usr/local/bin/docker",
                DOCKER_WRAPPER.as_bytes(),
            );
            assert!(out.status.success());
            let out = ssh(
                &bed.dir,
                host,
                "mkdir -p /etc/ferry-chaos && cat > /etc/ferry-chaos/docker-fault",
                format!("{prefix}\n").as_bytes(),
            );
            assert!(out.status.success());
        }
        Fault::Sigint { .. } => {}
    }
}

fn clear_faults(bed: &Bed) {
    for h in &bed.hosts {
        sh(
            &bed.dir,
            h,
            "rm -rf /etc/k0s-double/fault /etc/ferry-chaos /usr/local/bin/docker",
        );
    }
}

/// The step keys the journal shows started so far.
fn started(journal: &Path) -> Vec<String> {
    let Ok(f) = std::fs::File::open(journal) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|v| v["type"] == "started")
        .map(|v| match &v["key"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

struct Ran {
    code: Option<i32>,
    stderr: String,
}

fn wait(child: Child) -> Ran {
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Runs one case from the state the bed is in; returns what is wrong, if anything.
fn run_case(bed: &Bed, case: &Case, n: usize) -> Result<(), String> {
    let start = Digest::take(bed, Some(&bed.hosts[0]));
    set_fault(bed, &case.fault);
    let state = bed.tmp.path().join(format!("state-{n}"));
    let config_out = bed.tmp.path().join(format!("mke4-{n}.yaml"));
    let args = bed.upgrade_args(&state, &config_out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = bed
        .ferry(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ran = match &case.fault {
        Fault::Sigint { step } => {
            let journal = state.join("journal.jsonl");
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut child = child;
            loop {
                if started(&journal).iter().any(|k| k == step) {
                    let _ = std::process::Command::new("kill")
                        .args(["-INT", &child.id().to_string()])
                        .status();
                    break;
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            wait(child)
        }
        _ => wait(child),
    };
    clear_faults(bed);
    let expected_ok = matches!(case.fault, Fault::Sigint { .. }) && ran.code == Some(0);
    if ran.code != Some(4) && !expected_ok {
        return Err(format!(
            "exit {:?}, want 4 (rolled back)\n{}",
            ran.code,
            tail(&ran.stderr, 30)
        ));
    }
    if expected_ok {
        // The signal came after the last step: a completed run, nothing to compare.
        return Ok(());
    }
    let end = Digest::take(bed, Some(&bed.hosts[0]));
    match start.diff(&end) {
        None => Ok(()),
        Some(d) => Err(format!(
            "the digest after the rollback differs from the start:\n{d}\n--- ferry's log\n{}",
            tail(&ran.stderr, 30)
        )),
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn plan_of(bed: &Bed) -> Plan {
    let state = bed.tmp.path().join("state-dry-run");
    let config_out = bed.tmp.path().join("mke4-dry-run.yaml");
    let mut args = bed.upgrade_args(&state, &config_out);
    args.extend(["--dry-run".to_string(), "-o".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = bed.ferry(&args).output().unwrap();
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
fn every_failure_and_interrupt_on_real_hosts_rolls_back_to_the_exact_start() {
    let bed = Bed::open("the chaos suite of `ferry upgrade` on real hosts");
    bed.prepare();
    let plan = plan_of(&bed);
    let (cases, how) = selected(all_cases(&bed, &plan));
    announce(&format!("chaos: running {how}"));
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut timings = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        if !bed.pristine() {
            bed.fresh();
            bed.prepare();
        }
        let t = Instant::now();
        let r = run_case(&bed, case, n);
        timings.push(t.elapsed());
        match r {
            Ok(()) => announce(&format!(
                "chaos: ok   {} ({:.0} s)",
                case.name,
                t.elapsed().as_secs_f64()
            )),
            Err(e) => {
                announce(&format!("chaos: FAIL {}", case.name));
                failed.push((case.name.clone(), e));
                // The next case starts from fresh MKE 3 nodes.
                bed.fresh();
                bed.prepare();
            }
        }
    }
    announce(&format!(
        "chaos: {} cases, {} passed",
        cases.len(),
        cases.len() - failed.len()
    ));
    bed.restore();
    let report: Vec<String> = failed
        .iter()
        .map(|(n, e)| format!("=== {n}\n{e}"))
        .collect();
    assert!(failed.is_empty(), "{}", report.join("\n"));
}
