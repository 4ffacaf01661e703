//! `ferry k0s check` and `ferry k0s upgrade` on a k0s cluster of real parts (`k0s_bed`): three
//! controllers and three hosts that run workloads on five hosts (h3 is both, and is upgraded
//! once, in the controllers' pass, drained first), the Nodes on the real API server, and a real
//! Deployment with a PodDisruptionBudget.
//!
//! The upgrade to v1.32.6+k0s.0 (a copy of the double stamped with that version) must: print
//! the report and the plan in a dry run and change nothing; roll back what it did when a host
//! command fails (exit 4), and from the journal alone (`ferry rollback`) after a `kill -9`,
//! leaving every host on the old release; then move every host, controllers
//! one at a time with a backup each, the workers drained and uncordoned; never let the
//! Deployment's ready pods fall below the budget's minimum (polled every 100 ms while it runs);
//! leave every node Ready and reporting the new kubelet version; and do nothing when run again.
//! Then, towards v1.32.7+k0s.0 with a bare pod on h4: the online run refuses (exit 3) and
//! changes nothing, `--partial-ok` moves every host but h4 and names it, and
//! `--ignore-safety-checks` (with `--force-bare-pods`) moves h4 too.
//!
//! The hosts are reset at the start and at the end, so the MKE 3 tests find hosts to provision.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod k0s_bed;
mod mke_bed;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k0s_bed::{CONTROLLERS, FIRST_WORKER, K0sBed, NEW, NEWER, OLD, ready_pods};

#[test]
fn an_online_upgrade_moves_every_node_and_never_breaks_the_budget() {
    let bed = K0sBed::open();
    bed.deploy();
    let state = bed.tmp.path().join("state");

    // the report: everything can move
    let out = bed.ferry(&["k0s", "check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for i in 0..bed.hosts.len() {
        let roles = match i {
            i if i >= CONTROLLERS => "[worker]",
            i if i >= FIRST_WORKER => "[etcd controller worker]",
            _ => "[etcd controller]",
        };
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("10.123.1.{} ", i + 1)))
            .unwrap_or_else(|| panic!("no line for host {}:\n{stdout}", i + 1));
        assert!(line.contains(roles) && line.ends_with("[OK]"), "{line}");
    }

    // a dry run prints the report and the plan, and changes nothing
    let out = bed
        .upgrade(&bed.new, &state, &["--dry-run", "--max-unavailable", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Validate Online Upgrade"), "{stdout}");
    assert!(stdout.contains("3 host(s), one at a time:"), "{stdout}");
    assert!(stdout.contains("k0s.node.backup on 10.123.1.1"), "{stdout}");
    assert!(stdout.contains("k0s.node.drain on 10.123.1.4"), "{stdout}");
    // the controller that runs workloads is drained in the controllers' pass, and only there
    assert!(stdout.contains("k0s.node.drain on 10.123.1.3"), "{stdout}");
    assert_eq!(
        stdout.matches("k0s.node.stop on 10.123.1.3").count(),
        1,
        "{stdout}"
    );
    assert_eq!(bed.versions(), vec![OLD; 5]);

    // a host command fails on h2 (`k0s stop`, by the double's fault file): the run rolls back
    // what it did on h1, and every host runs the old release again
    bed.put(1, "/etc/k0s-double/fault", b"stop\n", "644");
    let failed_state = bed.tmp.path().join("state-failed");
    let out = bed.upgrade(&bed.new, &failed_state, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("Rollback completed"), "{stderr}");
    bed.sh(1, "rm /etc/k0s-double/fault");
    bed.assert_running(OLD);

    // kill -9 in the middle of the run, then `ferry rollback` from the journal alone
    let killed_state = bed.tmp.path().join("state-killed");
    let mut child = bed
        .upgrade(&bed.new, &killed_state, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while bed.sh(0, "k0s version").trim() != NEW {
        assert!(
            std::time::Instant::now() < deadline,
            "h1 never got the new binary"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = bed.ferry_again("rollback", &killed_state);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    bed.assert_running(OLD);

    // the run, with the budget watched
    let stop = Arc::new(AtomicBool::new(false));
    let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
    let samples = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, min_ready, samples) = (stop.clone(), min_ready.clone(), samples.clone());
        let client = bed.client.clone();
        std::thread::spawn(move || {
            let rt = common::runtime();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(n) = rt.block_on(ready_pods(&client)) {
                    min_ready.fetch_min(n, Ordering::SeqCst);
                    samples.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = std::time::Instant::now();
    let out = bed
        .upgrade(
            &bed.new,
            &state,
            &[
                "--max-unavailable",
                "1",
                "--ready-timeout",
                "120",
                "--drain-timeout",
                "120",
            ],
        )
        .output()
        .unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("k0s {NEW}: 5 host(s) upgraded, 0 already at it")),
        "{stdout}"
    );
    let min = min_ready.load(Ordering::SeqCst);
    println!(
        "k0s upgrade online of 3 controllers and 3 workers on 5 hosts: {:.1} s; ready web pods never below {min} of 4 ({} samples)",
        took.as_secs_f64(),
        samples.load(Ordering::SeqCst)
    );
    assert!(
        min >= 3,
        "the budget allows 1 unavailable, yet only {min} pods were ready"
    );
    assert!(samples.load(Ordering::SeqCst) > 10);

    // every host runs the new release; backups kept on the controllers; nodes back in service
    assert_eq!(bed.versions(), vec![NEW; 5]);
    for i in 0..bed.hosts.len() {
        let status = bed.sh(i, "k0s status");
        assert!(status.contains(&format!("Version: {NEW}")), "{status}");
        let kept = bed.sh(i, "ls /var/lib/ferry");
        assert!(kept.contains("k0s.previous"), "{kept}");
        if i < CONTROLLERS {
            let b = bed.sh(i, "ls /var/lib/ferry/k0s-backups");
            assert!(b.contains("k0s_backup_"), "{b}");
            assert!(
                stdout.contains(&format!("etcd backup kept on 10.123.1.{}", i + 1)),
                "{stdout}"
            );
        }
    }
    bed.assert_running(NEW);

    // run again: nothing to do
    let out = bed.upgrade(&bed.new, &state, &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("0 host(s) upgraded, 5 already at it"),
        "{stdout}"
    );

    // the upgrade left every web pod on the worker drained last: spread them again, then a
    // bare pod on h4 makes it unsafe: the online run refuses and changes nothing
    bed.respread();
    bed.bare_pod("debug", &bed.hosts[3]);
    let run = |extra: &[&str], state: &std::path::Path| {
        bed.upgrade(&bed.newer, state, extra).output().unwrap()
    };
    let s1 = bed.tmp.path().join("s1");
    let out = run(&[], &s1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "- The pod \"rollout/debug\" is not being managed by a controller. Upgrading this node might result in data or availability loss."
        ),
        "{stdout}"
    );
    assert!(
        stderr
            .contains("Unable to perform an online upgrade due to the unsafe conditions detected."),
        "{stderr}"
    );
    assert_eq!(bed.versions(), vec![NEW; 5]);

    // --partial-ok: every host but h4 moves, and the summary says h4 was left behind
    let s2 = bed.tmp.path().join("s2");
    let out = run(&["--partial-ok"], &s2);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "k0s {NEWER}: 4 host(s) upgraded, 0 already at it, 1 left behind"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Partial upgrade: these hosts were not upgraded:\n  10.123.1.4: The pod \"rollout/debug\""), "{stdout}");
    let v = bed.versions();
    assert_eq!(v[3], NEW, "{v:?}");
    assert!(
        v.iter().enumerate().all(|(i, x)| i == 3 || x == NEWER),
        "{v:?}"
    );

    // --ignore-safety-checks (with the drain allowed to evict the bare pod): h4 moves too
    let s3 = bed.tmp.path().join("s3");
    let out = run(&["--ignore-safety-checks", "--force-bare-pods"], &s3);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("[WARNING]"), "{stdout}");
    assert!(
        stderr.contains("Ignoring safety checks and continuing with the upgrade"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("k0s {NEWER}: 1 host(s) upgraded, 4 already at it")),
        "{stdout}"
    );
    bed.assert_running(NEWER);
}
