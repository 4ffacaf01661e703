//! `ferry node replace-os` on a k0s cluster of real parts (`k0s_bed`): three controllers (h3
//! runs workloads too) and two workers on the testbed, the Nodes on the real API server, a
//! Deployment and a StatefulSet with PodDisruptionBudgets and a DaemonSet scheduled by the real
//! scheduler. The reinstall is the testbed's own: `scripts/testbed reimage HOST trixie` gives a
//! host a fresh Debian 13 root with a new host key at the same address.
//!
//! The dry run prints the order, the capacity report and every step and changes nothing; a run
//! without `--yes` (and without a terminal) is refused before anything changes; a capacity that
//! cannot hold a node's pods stops the run with exit 3 and the reason per pod. The full run
//! moves every host from bookworm to trixie, workers first, the first controller last, names and
//! addresses unchanged, while a poller checks twice a second that etcd answers on a controller,
//! no PodDisruptionBudget has fewer healthy pods than it wants, and the Deployment keeps its
//! minimum available.
//!
//! Every host is put back on the testbed's base root at the end, so the tests after this one
//! find the hosts they expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod k0s_bed;
mod mke_bed;
mod node_os_bed;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k0s_bed::{Digest, K0sBed, NS};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use node_os_bed::{
    BackToBase, REINSTALL, more_workloads, pretty_name, reinstall_command, replace_os, testbed,
};

/// What the poller saw go wrong, with when.
#[derive(Debug, Default)]
struct Violations(Vec<String>);

/// Polls, twice a second until stopped: etcd answers on some controller (through the console),
/// every budget has its desired healthy pods, and the Deployment keeps its minimum available (3
/// of 4: maxUnavailable 25%).
fn poll(bed: &K0sBed, stop: &AtomicBool, seen: &Mutex<Violations>, polls: &Mutex<usize>) {
    let start = Instant::now();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(bed.client.clone(), NS);
    let deploys: Api<Deployment> = Api::namespaced(bed.client.clone(), NS);
    while !stop.load(Ordering::SeqCst) {
        let t = start.elapsed().as_secs_f32();
        let quorate = bed.hosts[..k0s_bed::CONTROLLERS].iter().any(|h| {
            testbed(&bed.dir, &["exec", h, "k0s", "etcd", "member-list"])
                .status
                .success()
        });
        if !quorate {
            seen.lock()
                .unwrap()
                .0
                .push(format!("{t:.1}s: etcd answers on no controller"));
        }
        let api = bed.rt.block_on(async {
            let mut v = Vec::new();
            for b in pdbs
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
            {
                let s = b.status.unwrap_or_default();
                if s.current_healthy < s.desired_healthy {
                    v.push(format!(
                        "PDB {}: {} healthy, wants {}",
                        b.metadata.name.unwrap_or_default(),
                        s.current_healthy,
                        s.desired_healthy
                    ));
                }
            }
            let web = deploys.get("web").await.map_err(|e| e.to_string())?;
            let available = web.status.and_then(|s| s.available_replicas).unwrap_or(0);
            if available < 3 {
                v.push(format!(
                    "Deployment web: {available} available, its minimum is 3"
                ));
            }
            Ok::<_, String>(v)
        });
        match api {
            Ok(v) => seen
                .lock()
                .unwrap()
                .0
                .extend(v.into_iter().map(|x| format!("{t:.1}s: {x}"))),
            Err(e) => seen.lock().unwrap().0.push(format!("{t:.1}s: API: {e}")),
        }
        *polls.lock().unwrap() += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn every_node_gets_a_new_os_with_the_cluster_available_throughout() {
    let bed = K0sBed::open();
    let _back = BackToBase {
        dir: bed.dir.clone(),
        hosts: bed.hosts.clone(),
    };
    bed.deploy();
    more_workloads(&bed);
    let state = bed.tmp.path().join("state");
    let cmd = reinstall_command();
    let before = Digest::take(&bed).unwrap();

    // the dry run: the reports, the order, every step; nothing changes
    let out = replace_os(&bed, &state, &["--dry-run", REINSTALL, &cmd])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Capacity: can the other nodes take each node's pods?"),
        "{stdout}"
    );
    for n in ["h3", "h4", "h5"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(n) && l.contains("[OK]")),
            "no capacity line for {n}:\n{stdout}"
        );
    }
    let at = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in the plan:\n{stdout}"))
    };
    // workers first, then h2, h3, and the first controller h1 last
    let order = [
        "os.node.reinstall on 10.123.1.4",
        "os.node.reinstall on 10.123.1.5",
        "os.node.reinstall on 10.123.1.2",
        "os.node.reinstall on 10.123.1.3",
        "os.node.reinstall on 10.123.1.1",
    ];
    for w in order.windows(2) {
        assert!(at(w[0]) < at(w[1]), "{} before {}:\n{stdout}", w[0], w[1]);
    }
    assert!(
        stdout.contains("controller, the first controller"),
        "{stdout}"
    );
    assert!(stdout.contains("[one-way: the old OS is gone"), "{stdout}");
    assert!(stdout.contains("os.k0s.remove on 10.123.1.2"), "{stdout}");
    assert!(stdout.contains("os.node.drain on 10.123.1.3"), "{stdout}");
    assert!(!state.join("journal.jsonl").exists());
    assert_eq!(Digest::take(&bed).unwrap().diff(&before), None);

    // without --yes and without a terminal: refused before anything changes
    let out = replace_os(&bed, &state, &[REINSTALL, &cmd])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("5 host(s) will be reinstalled, which cannot be undone"),
        "{stderr}"
    );
    assert!(stderr.contains("give --yes"), "{stderr}");
    assert_eq!(Digest::take(&bed).unwrap().diff(&before), None);
    for h in &bed.hosts {
        assert_eq!(pretty_name(&bed.dir, h), "Debian GNU/Linux 12 (bookworm)");
    }

    // the run, polled throughout
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Violations::default());
    let polls = Mutex::new(0usize);
    let started = Instant::now();
    let out = std::thread::scope(|s| {
        let poller = s.spawn(|| poll(&bed, &stop, &seen, &polls));
        let out = replace_os(&bed, &state, &["--yes", REINSTALL, &cmd])
            .output()
            .unwrap();
        stop.store(true, Ordering::SeqCst);
        poller.join().unwrap();
        out
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    eprintln!(
        "replace-os took {:.1} s, {} polls",
        started.elapsed().as_secs_f32(),
        polls.lock().unwrap()
    );
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.0.is_empty(),
        "availability broken during the run:\n{}",
        seen.0.join("\n")
    );
    assert!(*polls.lock().unwrap() > 20, "the poller did not poll");
    assert!(
        stdout.contains("Node OS replacement completed (remove-before-add): 5 host(s)"),
        "{stdout}"
    );

    // every host runs trixie, at the same address, with the same node names, the first
    // controller reinstalled last
    for h in &bed.hosts {
        assert_eq!(
            pretty_name(&bed.dir, h),
            "Debian GNU/Linux 13 (trixie)",
            "{h}"
        );
        let status = bed.sh(bed.hosts.iter().position(|x| x == h).unwrap(), "k0s status");
        assert!(status.contains("Version: v1.31.1+k0s.1"), "{h}: {status}");
    }
    let reinstalled: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains(
                "] reinstalled: Debian GNU/Linux 12 (bookworm) -> Debian GNU/Linux 13 (trixie)",
            )
        })
        .filter_map(|l| l.split('[').nth(2)?.split(']').next())
        .collect();
    assert_eq!(
        reinstalled,
        [
            "10.123.1.4",
            "10.123.1.5",
            "10.123.1.2",
            "10.123.1.3",
            "10.123.1.1"
        ],
        "{stderr}"
    );
    let nodes: Api<Node> = Api::all(bed.client.clone());
    bed.rt.block_on(async {
        for name in ["h3", "h4", "h5"] {
            let n = nodes.get(name).await.unwrap();
            assert!(mke_bed::node_ready(&n), "{name} not Ready");
            assert_ne!(
                n.spec.as_ref().and_then(|s| s.unschedulable),
                Some(true),
                "{name} cordoned"
            );
        }
    });
    let members = bed.sh(1, "k0s etcd member-list");
    for c in ["h1", "h2", "h3"] {
        assert!(members.contains(&format!("\"{c}\"")), "{members}");
    }
    bed.settle().unwrap();
}
