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
//! * **kill9 ... then rollback**: SIGKILL to ferry as soon as the journal shows the step applied,
//!   for every step; then `ferry rollback` must exit 0 and give back the start's digest. When the
//!   kill lands after the journal recorded the end of the run (it can, after the plan's last
//!   step), `ferry rollback` and `ferry resume` must exit 1 saying the run already finished.
//! * **kill9 ... then resume**: the same kill; then `ferry resume` must exit 0 and leave what an
//!   uninterrupted run leaves, compared by [`Digest::shape`] (which leaves out what differs
//!   between any two runs: file contents, image and swarm IDs) against an uninterrupted run's.
//! * **host-kill H in STEP**: the host crashes (`scripts/testbed kill`) once STEP has started on
//!   it (install-k0s, start-k0s and remove-mke3 of every host). ferry must end (no hang): rolled
//!   back (4), or 5 listing what is left; the host is booted again and `ferry rollback` must
//!   finish; the digest must be the start's.
//! * **link-cut H in STEP**: H's link is cut once STEP has started on it and restored 20 s
//!   later: ferry must end within 10 min, completed, rolled back, or 5 and then `ferry rollback`
//!   finishes; rolled back, the digest must be the start's.
//!
//! Which cases run: `FERRY_CHAOS=all` runs every case (the full matrix, about half an hour);
//! otherwise a fixed sample ([`SAMPLE`]) plus [`BY_HASH`] more cases chosen by the commit hash
//! (`FERRY_CHAOS_SEED`, else `git rev-parse HEAD`), so that every commit also tries cases the
//! sample does not. It prints `chaos: N cases, P passed` and fails listing every case whose
//! digest differs, with the differing lines. Between cases a host left changed is provisioned
//! afresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod common;
mod mke_bed;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chaos::{Ran, act_at, recorded, signal_at, tail, wait};
use ferry_core::engine::Plan;
use ferry_kube_api::testing::real::announce;
use mke_bed::digest::Digest;
use mke_bed::{Bed, sh, ssh};

/// Cases every run of the suite includes: one fault of each kind on a manager and on a worker,
/// SIGINT in a node step, a cluster step and the cleanup, kill -9 then rollback and then
/// resume, a worker that crashes and a link cut.
const SAMPLE: [&str; 10] = [
    "host-fault k0s start on h2",
    "host-fault docker container rm on h5",
    "host-fault docker etcdctl snapshot save on h1",
    "sigint mke.node.install-k0s@host:10.123.1.4",
    "sigint mke.apply-rbac@cluster",
    "sigint mke.node.remove-mke3@host:10.123.1.3",
    "kill9 mke.node.start-k0s@host:10.123.1.2 then rollback",
    "kill9 mke.apply-mke4-config@cluster then resume",
    "host-kill h4 in mke.node.install-k0s@host:10.123.1.4",
    "link-cut h5 in mke.node.start-k0s@host:10.123.1.5",
];
/// The arguments of the backup step's `docker exec ucp-kv etcdctl ... snapshot save`.
const SNAPSHOT_SAVE: &str = "exec ucp-kv etcdctl --endpoints=https://127.0.0.1:12379 --cacert=/etc/docker/ssl/ca.pem --cert=/etc/docker/ssl/cert.pem --key=/etc/docker/ssl/key.pem snapshot save";
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
    /// SIGKILL right after the step was applied, then `ferry rollback` or `ferry resume`.
    Kill9 { step: String, then: Then },
    /// The host crashes (`scripts/testbed kill`) once the step has started on it; it is booted
    /// again once ferry has given up, then `ferry rollback`.
    HostKill { host: String, step: String },
    /// The host's link is cut once the step has started on it, and restored 20 s later.
    LinkCut { host: String, step: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Rollback,
    Resume,
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
    // The backup's snapshot, not every etcdctl: the pre-checks read ucp-kv's status with
    // etcdctl too, and a fault there stops the run before it changes anything (exit 3).
    v.push(Case {
        name: format!("host-fault docker etcdctl snapshot save on {}", managers[0]),
        fault: Fault::Docker {
            host: managers[0].clone(),
            prefix: SNAPSHOT_SAVE,
        },
    });
    for s in plan.steps() {
        let step = s.key.to_string();
        let node_step = [
            "mke.node.install-k0s@",
            "mke.node.start-k0s@",
            "mke.node.remove-mke3@",
        ]
        .iter()
        .any(|p| step.starts_with(p));
        if let Some(addr) = step.split("@host:").nth(1).filter(|_| node_step) {
            let i = bed.addresses.iter().position(|a| a == addr).unwrap();
            let host = bed.hosts[i].clone();
            v.push(Case {
                name: format!("host-kill {host} in {step}"),
                fault: Fault::HostKill {
                    host: host.clone(),
                    step: step.clone(),
                },
            });
            v.push(Case {
                name: format!("link-cut {host} in {step}"),
                fault: Fault::LinkCut {
                    host,
                    step: step.clone(),
                },
            });
        }
        v.push(Case {
            name: format!("sigint {step}"),
            fault: Fault::Sigint { step: step.clone() },
        });
        for (then, word) in [(Then::Rollback, "rollback"), (Then::Resume, "resume")] {
            v.push(Case {
                name: format!("kill9 {step} then {word}"),
                fault: Fault::Kill9 {
                    step: step.clone(),
                    then,
                },
            });
        }
    }
    v
}

/// Writes `content` to `path` on `host` (its directory made), with `mode`.
fn put(bed: &Bed, host: &str, path: &str, mode: &str, content: &str) {
    let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
    let out = ssh(
        &bed.dir,
        host,
        &format!("mkdir -p {dir} && install -m {mode} /dev/stdin {path}"),
        content.as_bytes(),
    );
    assert!(out.status.success(), "{host}: {path}: {out:?}");
}

fn set_fault(bed: &Bed, f: &Fault) {
    match f {
        Fault::K0s { host, command } => {
            put(
                bed,
                host,
                "/etc/k0s-double/fault",
                "0644",
                &format!("{command}\n"),
            );
        }
        Fault::Docker { host, prefix } => {
            put(bed, host, "/usr/local/bin/docker", "0755", DOCKER_WRAPPER);
            put(
                bed,
                host,
                "/etc/ferry-chaos/docker-fault",
                "0644",
                &format!("{prefix}\n"),
            );
        }
        _ => {}
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

/// Runs one case from the state the bed is in; returns what is wrong, if anything.
/// `completed` is the shape of a cluster an uninterrupted run left (for `resume` cases).
fn run_case(
    bed: &Bed,
    case: &Case,
    n: usize,
    completed: &dyn Fn() -> Digest,
) -> Result<(), String> {
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
    let journal = state.join("journal.jsonl");
    let ran = match &case.fault {
        Fault::Sigint { step } => signal_at(child, &journal, "started", step, "-INT"),
        Fault::Kill9 { step, .. } => signal_at(child, &journal, "applied", step, "-KILL"),
        Fault::HostKill { host, step } => act_at(child, &journal, "started", step, &|| {
            mke_bed::testbed(&bed.dir, &["kill", host]);
        }),
        Fault::LinkCut { host, step } => {
            let dir = bed.dir.clone();
            let h = host.clone();
            let cut_at = std::sync::Mutex::new(None::<std::thread::JoinHandle<()>>);
            let ran = act_at(child, &journal, "started", step, &|| {
                mke_bed::testbed(&dir, &["cut", &h]);
                let (dir, h) = (dir.clone(), h.clone());
                *cut_at.lock().unwrap() = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(20));
                    mke_bed::testbed(&dir, &["uncut", &h]);
                }));
            });
            if let Some(t) = cut_at.lock().unwrap().take() {
                t.join().unwrap();
            }
            ran
        }
        _ => wait(child),
    };
    mke_bed::keep_journal(&state, &case.name);
    if let Fault::HostKill { host, .. } = &case.fault {
        // ferry has given up on the host: boot it again (the engine starts at boot).
        mke_bed::testbed(&bed.dir, &["start", host]);
        wait_docker(bed, host);
    }
    clear_faults(bed);
    if matches!(case.fault, Fault::HostKill { .. } | Fault::LinkCut { .. }) {
        return after_a_broken_host(bed, &ran, &state, &start);
    }
    if let Fault::Kill9 { then, .. } = &case.fault {
        if ran.code.is_some() {
            // Exited on its own: the kill came after the end of the run.
            return Ok(());
        }
        // Killed after the journal recorded the end of the run (after the plan's last step,
        // ferry only writes its report and lets go of the locks): there is nothing left to
        // resume or roll back, and ferry says so.
        if !recorded(&state.join("journal.jsonl"), "finished").is_empty() {
            let verb = match then {
                Then::Rollback => "rollback",
                Then::Resume => "resume",
            };
            let out = bed
                .ferry(&[verb, "--state-dir", state.to_str().unwrap()])
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&out.stderr);
            return chaos::said_already_finished(verb, out.status.code(), &log);
        }
        let state_arg = state.to_str().unwrap();
        let (verb, want) = match then {
            Then::Rollback => ("rollback", None),
            Then::Resume => ("resume", Some(())),
        };
        let out = bed
            .ferry(&[verb, "--state-dir", state_arg])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.code() != Some(0) {
            return Err(format!(
                "ferry {verb} after kill -9: exit {:?}, want 0\n{}",
                out.status.code(),
                tail(&log, 30)
            ));
        }
        let (end, want, what) = match want {
            None => (Digest::take(bed, Some(&bed.hosts[0])), start, "the start"),
            Some(()) => (
                Digest::take(bed, None).shape(),
                completed(),
                "an uninterrupted run's",
            ),
        };
        return match want.diff(&end) {
            None => Ok(()),
            Some(d) => Err(format!(
                "the digest after ferry {verb} differs from {what}:\n{d}\n--- ferry {verb}'s log\n{}",
                tail(&log, 30)
            )),
        };
    }
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

/// Waits until the host's Docker engine answers (after a boot).
fn wait_docker(bed: &Bed, host: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ssh(&bed.dir, host, "docker version >/dev/null 2>&1", b"")
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "{host}: Docker does not answer 60 s after boot"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A run that lost a host: it must have ended (no hang) completed (0), rolled back (4), or
/// with an incomplete rollback (5) that lists what is left, which `ferry rollback` finishes
/// now that the host is back. Rolled back either way, the digest must be the start's.
fn after_a_broken_host(bed: &Bed, ran: &Ran, state: &Path, start: &Digest) -> Result<(), String> {
    match ran.code {
        Some(0) => return Ok(()),
        Some(4) => {}
        Some(5) => {
            if !ran.stderr.contains("Still applied (undo order): ") {
                return Err(format!(
                    "exit 5 without the list of what is left\n{}",
                    tail(&ran.stderr, 30)
                ));
            }
            let out = bed
                .ferry(&["rollback", "--state-dir", state.to_str().unwrap()])
                .output()
                .unwrap();
            if out.status.code() != Some(0) {
                return Err(format!(
                    "ferry rollback once the host is back: exit {:?}\n{}",
                    out.status.code(),
                    tail(&String::from_utf8_lossy(&out.stderr), 30)
                ));
            }
        }
        other => {
            return Err(format!(
                "exit {other:?}, want 0, 4 or 5\n{}",
                tail(&ran.stderr, 30)
            ));
        }
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
    let (cases, how) = chaos::selected(
        all_cases(&bed, &plan),
        |c: &Case| c.name.as_str(),
        &SAMPLE,
        BY_HASH,
    );
    announce(&format!("chaos: running {how}"));
    let mut tally = chaos::Tally::new("");
    // The shape of what an uninterrupted run leaves, made once, when a resume case needs it.
    let baseline: std::cell::OnceCell<Digest> = std::cell::OnceCell::new();
    let completed = || {
        baseline
            .get_or_init(|| {
                if !bed.pristine() {
                    bed.fresh();
                    bed.prepare();
                }
                let state = bed.tmp.path().join("state-baseline");
                let config_out = bed.tmp.path().join("mke4-baseline.yaml");
                let args = bed.upgrade_args(&state, &config_out);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = bed.ferry(&args).output().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "the uninterrupted run: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let d = Digest::take(&bed, None).shape();
                bed.fresh();
                bed.prepare();
                d
            })
            .clone()
    };
    for (n, case) in cases.iter().enumerate() {
        if !bed.pristine() {
            bed.fresh();
            bed.prepare();
        }
        let t = Instant::now();
        let r = run_case(&bed, case, n, &completed);
        if !tally.case(&case.name, t, r) {
            // The next case starts from fresh MKE 3 nodes.
            bed.fresh();
            bed.prepare();
        }
    }
    bed.restore();
    tally.finish();
}
