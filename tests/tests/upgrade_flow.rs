//! End-to-end runs of the MKE 3 → MKE 4k flow on the fake cluster.

use ferry_core::run::Finish;
use ferry_testing::{Fault, FaultAction, FaultWhen};
use ferry_tests::Harness;

#[tokio::test(start_paused = true)]
async fn a_full_upgrade_moves_every_node_to_k0s_and_removes_mke3() {
    let h = Harness::new();
    let start = h.world.digest();
    let fin = h
        .upgrade()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", h.log.text()));
    let Finish::Completed {
        report: ferry_flow_mke::MkeReport { summary, mke4_yaml },
        ..
    } = fin
    else {
        panic!("{fin:?}\n{}", h.log.text())
    };
    assert!(
        summary.starts_with("Upgrade Summary\n---------------\n"),
        "{summary}"
    );
    assert!(summary.contains("MKE 3.7.15 was uninstalled from the cluster successfully."));
    assert!(mke4_yaml.contains("mke.example.com"), "{mke4_yaml}");
    let kept = std::fs::read_to_string(h.state_dir().join("upgrade-summary.txt")).unwrap();
    assert_eq!(kept, summary);
    assert_ne!(h.world.digest(), start);
    let s = h.world.state();
    for (name, host) in &s.hosts {
        assert!(
            host.containers.keys().all(|c| !c.starts_with("ucp-")),
            "{name}: {:?}",
            host.containers.keys()
        );
        assert!(!host.files.contains_key("/var/lib/docker/swarm/state.json"));
        assert!(
            !host.files.contains_key("/run/lock/ferry"),
            "{name}: lock left"
        );
        // The join token served the first start of k0s and is gone.
        assert!(
            !host.files.contains_key("/etc/k0s/join-token"),
            "{name}: join token left"
        );
    }
    assert!(s.hosts["10.0.1.21"].containers["app-db"].running);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_lists_every_step_per_host_and_changes_nothing() {
    let h = Harness::new();
    let start = h.world.digest();
    let fin = h.dry_run().await.unwrap();
    let Finish::DryRun { checks, plan } = fin else {
        panic!("{fin:?}")
    };
    assert!(checks.passed(), "{}", checks.render());
    let calls = h.world.calls();
    assert!(
        calls.len() > 20,
        "the dry run gathers facts: {} calls",
        calls.len()
    );
    let mutating = h.world.mutating_calls();
    assert!(
        mutating.is_empty(),
        "mutating calls in a dry run: {mutating:#?}"
    );
    assert_eq!(h.world.digest(), start);
    assert!(!h.state_dir().join("journal.jsonl").exists());
    let text = plan.render();
    for host in h.world.state().hosts.keys() {
        for id in [
            "mke.node.drain",
            "mke.node.install-k0s",
            "mke.node.remove-mke3",
        ] {
            assert!(
                text.contains(&format!("{id} on {host}")),
                "{id} on {host}:\n{text}"
            );
        }
    }
    // Five workers under --max-unavailable 2: a window two wide, slowest first.
    assert!(
        text.contains("5 host(s), at most 2 at once (--max-unavailable 2), slowest first:"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_checks_change_nothing() {
    let h = Harness::with(&ferry_testing::Fixture {
        calico_kdd: false,
        ..Default::default()
    });
    let start = h.world.digest();
    let e = h.upgrade().await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("mke3 cluster is using etcdv3 and not kdd backend for calico"),
        "{msg}"
    );
    assert!(h.world.mutating_calls().is_empty());
    assert_eq!(h.world.digest(), start);
}

#[tokio::test(start_paused = true)]
async fn a_second_concurrent_run_is_refused_naming_the_owner() {
    let h = Harness::new();
    h.hooks
        .crash_after("mke.node.drain@host:10.0.0.11".parse().unwrap());
    let first = h.upgrade();
    tokio::pin!(first);
    tokio::select! {
        _ = h.hooks.crashed() => {}
        r = &mut first => panic!("the first run ended: {r:?}"),
    }
    // The first run is alive and holds the state directory's lock.
    let e = h.upgrade().await.unwrap_err().to_string();
    let pid = std::process::id().to_string();
    assert!(e.starts_with("another ferry run holds the lock on "), "{e}");
    assert!(e.contains(&format!("(pid {pid}, run ")), "{e}");
    // A run from another state directory finds the host locks.
    let other = Harness {
        state: ferry_tests::fast_tempdir(),
        ..Harness::with_world(&h)
    };
    let e = other.upgrade().await.unwrap_err().to_string();
    assert!(e.contains("is locked by another ferry run: "), "{e}");
    assert!(e.contains(&format!("(pid {pid}, run ")), "{e}");
}

#[tokio::test(start_paused = true)]
async fn the_admin_password_appears_nowhere() {
    use ferry_testing::world::FIXTURE_ADMIN_PASSWORD as PW;
    // One run that fails and rolls back, one that completes.
    let failing = Harness::new();
    failing.world.inject(Fault::at_step(
        "mke.node.install-k0s@host:10.0.1.23",
        3,
        FaultAction::Fail,
    ));
    let f1 = failing.upgrade().await.unwrap();
    assert!(matches!(f1, Finish::RolledBack { .. }), "{f1:?}");
    let ok = Harness::new();
    let f2 = ok.upgrade().await.unwrap();
    let Finish::Completed {
        report: ferry_flow_mke::MkeReport { summary, mke4_yaml },
        ..
    } = &f2
    else {
        panic!("{f2:?}")
    };
    let mut scanned = 0usize;
    let mut scan = |what: &str, bytes: &[u8]| {
        scanned += 1;
        let hay = String::from_utf8_lossy(bytes);
        assert!(!hay.contains(PW), "the admin password is in {what}");
    };
    scan("the summary", summary.as_bytes());
    scan("mke4.yaml", mke4_yaml.as_bytes());
    scan("the outcome", format!("{f1:?}{f2:?}").as_bytes());
    for h in [&failing, &ok] {
        scan("the log", h.log.text().as_bytes());
        for entry in std::fs::read_dir(h.state_dir()).unwrap() {
            let p = entry.unwrap().path();
            scan(&p.display().to_string(), &std::fs::read(&p).unwrap());
        }
        for c in h.world.calls() {
            scan(
                &format!("call {} {:?}", c.op, c.args),
                c.args.join(" ").as_bytes(),
            );
            if let Some(d) = &c.data {
                scan(&format!("data of {} {:?}", c.op, c.args), d);
            }
        }
        for (host, st) in &h.world.state().hosts {
            for (path, f) in &st.files {
                scan(&format!("{host}:{path}"), &f.content);
            }
        }
    }
    assert!(scanned > 500, "{scanned}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_undo_leaves_an_incomplete_rollback_that_ferry_rollback_finishes() {
    let install = "mke.node.install-k0s@host:10.0.1.21";
    // How many calls the install makes, from an uninterrupted run.
    let reference = Harness::new();
    reference.upgrade().await.unwrap();
    let n = reference
        .world
        .calls()
        .iter()
        .filter(|c| c.step.as_deref() == Some(install))
        .count();
    let mut h = Harness::new();
    let start = h.world.digest();
    h.world.inject(Fault::at_step(
        "mke.node.start-k0s@host:10.0.1.22",
        1,
        FaultAction::Fail,
    ));
    // The first call of the install's undo fails for good; a transient failure of the next undo
    // is retried.
    h.world.inject(Fault {
        when: FaultWhen::Step {
            key: install.parse().unwrap(),
            nth: n + 1,
        },
        action: FaultAction::Fail,
    });
    h.world.inject(Fault::at_step(
        "mke.node.install-k0s@host:10.0.1.22",
        n + 1,
        FaultAction::FailTransient,
    ));
    let fin = h.upgrade().await.unwrap();
    let Finish::RollbackIncomplete {
        failure, remaining, ..
    } = &fin
    else {
        panic!("{fin:?}\n{}", h.log.text())
    };
    assert!(failure.contains(install), "{failure}");
    assert_eq!(remaining.first().map(String::as_str), Some(install));
    assert!(h.log.text().contains("retrying"), "{}", h.log.text());
    assert_ne!(h.world.digest(), start);
    // The operator fixes the cause and rolls back from the journal.
    h.new_process();
    let fin = h.rollback().await.unwrap();
    assert!(matches!(fin, Finish::RolledBack { .. }), "{fin:?}");
    assert_eq!(h.world.digest(), start);
}

/// Makes `host` boot without systemd: OpenRC when `openrc`, else SysV init scripts.
fn without_systemd(h: &Harness, host: &str, openrc: bool) {
    let mut s = h.world.state();
    let st = s.hosts.get_mut(host).expect("a host of the fixture");
    st.files.retain(|p, _| !p.starts_with("/run/systemd"));
    if openrc {
        let bin = st
            .files
            .get("/etc/hostname")
            .expect("a hostname file")
            .clone();
        st.files.insert("/sbin/openrc-init".into(), bin);
    }
}

#[tokio::test(start_paused = true)]
async fn hosts_without_systemd_get_k0s_as_an_init_script_and_roll_back_through_it() {
    // A completed run: k0s's services where k0s puts them on each host.
    let h = Harness::new();
    without_systemd(&h, "10.0.1.22", false);
    without_systemd(&h, "10.0.1.23", true);
    let fin = h.upgrade().await.unwrap();
    assert!(
        matches!(fin, Finish::Completed { .. }),
        "{fin:?}\n{}",
        h.log.text()
    );
    {
        let s = h.world.state();
        for host in ["10.0.1.22", "10.0.1.23"] {
            let files = &s.hosts[host].files;
            assert!(files.contains_key("/etc/init.d/k0sworker"), "{host}");
            assert!(
                !files.contains_key("/etc/systemd/system/k0sworker.service"),
                "{host}"
            );
        }
        let systemd = &s.hosts["10.0.1.21"].files;
        assert!(systemd.contains_key("/etc/systemd/system/k0sworker.service"));
    }
    let calls = h.world.calls();
    for c in calls.iter().filter(|c| c.op == "systemctl") {
        let host = c.host.as_deref().unwrap_or("");
        assert!(
            host != "10.0.1.22" && host != "10.0.1.23",
            "systemctl on a host without systemd: {c:?}"
        );
    }
    // A run that fails at the end of the cleanup: the undo restarts Docker and resets k0s
    // through each host's own service manager, and the cluster is as it was.
    let h = Harness::new();
    without_systemd(&h, "10.0.1.22", false);
    without_systemd(&h, "10.0.1.23", true);
    let start = h.world.digest();
    h.world.inject(Fault::at_step(
        "mke.node.remove-mke3@host:10.0.0.11",
        1,
        FaultAction::Fail,
    ));
    let fin = h.upgrade().await.unwrap();
    assert!(
        matches!(fin, Finish::RolledBack { .. }),
        "{fin:?}\n{}",
        h.log.text()
    );
    assert_eq!(h.world.digest(), start, "{}", h.log.text());
    let restarted: Vec<_> = h
        .world
        .calls()
        .into_iter()
        .filter(|c| c.op == "rc-service" || c.op == "/etc/init.d/docker")
        .map(|c| (c.host.unwrap_or_default(), c.op))
        .collect();
    assert!(
        restarted.contains(&("10.0.1.23".into(), "rc-service".into()))
            && restarted.contains(&("10.0.1.22".into(), "/etc/init.d/docker".into())),
        "{restarted:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_host_gets_the_k0s_binary_of_its_architecture_or_the_one_given() {
    use ferry_core::k0s::{K0S_BIN, K0sBinary};
    // An arm64 worker downloads the arm64 release.
    let h = Harness::new();
    h.world.state().hosts.get_mut("10.0.1.21").unwrap().arch = "aarch64".into();
    let fin = h.upgrade().await.unwrap();
    assert!(
        matches!(fin, Finish::Completed { .. }),
        "{fin:?}\n{}",
        h.log.text()
    );
    let bin = |h: &Harness, host: &str| {
        String::from_utf8(h.world.state().hosts[host].files[K0S_BIN].content.clone()).unwrap()
    };
    assert_eq!(bin(&h, "10.0.1.21").trim(), "k0s v1.31.1+k0s.1 arm64");
    assert_eq!(bin(&h, "10.0.1.22").trim(), "k0s v1.31.1+k0s.1 amd64");

    // Airgapped: nothing can be downloaded, the binary given with --k0s-binary is copied.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("k0s");
    std::fs::write(&local, "k0s v1.31.1+k0s.1 amd64\n").unwrap();
    let h = Harness::new();
    h.world.state().airgapped = true;
    let mut inputs = h.inputs();
    inputs.k0s = K0sBinary::File {
        path: local.clone(),
    };
    let fin = ferry_core::run::start(&h.flow(), inputs, h.session(), false)
        .await
        .unwrap();
    assert!(
        matches!(fin, Finish::Completed { .. }),
        "{fin:?}\n{}",
        h.log.text()
    );
    assert!(!h.world.calls().iter().any(|c| c.op == "curl"));

    // The same amd64 binary cannot run on an arm64 host: the run fails there and rolls back.
    let h = Harness::new();
    h.world.state().hosts.get_mut("10.0.1.24").unwrap().arch = "aarch64".into();
    let start = h.world.digest();
    let mut inputs = h.inputs();
    inputs.k0s = K0sBinary::File { path: local };
    let fin = ferry_core::run::start(&h.flow(), inputs, h.session(), false)
        .await
        .unwrap();
    let Finish::RolledBack { error } = &fin else {
        panic!("{fin:?}")
    };
    assert!(error.contains("Exec format error"), "{error}");
    assert_eq!(h.world.digest(), start);
}
