//! The MKE flow's pre-upgrade checks of MKE 4k 4.1.x (`etcd-quota`, `disk-space`, `dataplane`)
//! over the facts its discovery gathers from the fakes: the fake hosts answer `du -sb`,
//! `etcdctl endpoint status -w json` and `etcdctl alarm list` from their state, and the
//! discovery changes nothing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_core::checks::{CheckReport, Status};
use ferry_core::cluster::ObjectRef;
use ferry_core::exec::Connector;
use ferry_core::hosts::HostSpec;
use ferry_core::run::RunContext;
use ferry_flow_mke::checks::{self, CheckOptions};
use ferry_testing::world::{Container, FIXTURE_ADMIN_PASSWORD};
use ferry_testing::{FakeCluster, FakeConnector, FakeMke3, Fixture, World};

const LEADER: &str = "10.0.0.11";
const WORKER: &str = "10.0.1.21";

async fn checks_of(world: &World, options: CheckOptions) -> (checks::Facts, CheckReport) {
    let names: Vec<String> = world.state().hosts.keys().cloned().collect();
    let connector = FakeConnector::new(world);
    let mut hosts = BTreeMap::new();
    let mut specs = Vec::new();
    for address in names {
        let spec = HostSpec {
            address,
            port: 22,
            user: "docker".into(),
            key_path: None,
            private_address: None,
            private_interface: None,
            bastion: None,
            sudo: true,
            known_hosts_policy: Default::default(),
        };
        hosts.insert(spec.name(), connector.connect(&spec).await.unwrap());
        specs.push(spec);
    }
    let state = std::env::temp_dir().join(format!("ferry-mke-prechecks-{}", std::process::id()));
    let cx = RunContext {
        hosts: Arc::new(hosts),
        specs: Arc::new(specs.clone()),
        cluster: Arc::new(FakeCluster::new(world)),
        state: ferry_core::state::StateDir::new(&state),
        log: ferry_core::engine::Logger::null(),
        owner: ferry_core::lock::LockOwner {
            owner: "test@probe".into(),
            pid: 1,
            run_id: "1".into(),
            since_unix: 0,
        },
    };
    let mke3 = FakeMke3::new(
        world,
        "admin",
        ferry_core::secret::Secret::new(FIXTURE_ADMIN_PASSWORD.into()),
    );
    let mut inputs = ferry_flow_mke::Inputs::new(specs, "admin", "mke.example.com");
    inputs.checks = options;
    let (facts, _, _) = ferry_flow_mke::flow::discover(&inputs, &mke3, &cx)
        .await
        .unwrap();
    let report = checks::run(&facts, &inputs.checks);
    (facts, report)
}

fn one<'a>(r: &'a CheckReport, check: &str, subject: &str) -> (Status, &'a str) {
    let found: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.check == check && f.subject == subject)
        .collect();
    assert_eq!(found.len(), 1, "{check} ({subject}):\n{}", r.render());
    (found[0].status, found[0].message.as_str())
}

#[tokio::test]
async fn a_healthy_cluster_passes_the_new_checks_read_only() {
    let world = Fixture::default().build();
    let start = world.digest();
    world.clear_calls();
    let (facts, r) = checks_of(&world, CheckOptions::default()).await;
    assert!(r.passed(), "{}", r.render());
    assert!(
        world.mutating_calls().is_empty(),
        "{:?}",
        world.mutating_calls()
    );
    assert_eq!(world.digest(), start);
    // the leader's etcd: the fake's data directory
    let db = world.state().hosts[LEADER].files["/var/lib/docker/volumes/ucp-kv/_data/datav3/member/snap/db"]
        .content
        .len() as u64;
    assert_eq!(facts.etcd.host, LEADER);
    assert_eq!(facts.etcd.db_size, Some(db));
    assert!(facts.etcd.alarms.is_empty() && facts.etcd.error.is_none());
    let (status, message) = one(&r, "etcd-quota", LEADER);
    assert_eq!(status, Status::Ok);
    assert!(message.contains(&format!("holds {db} B")), "{message}");
    // what the cleanup archives: the ucp-* volumes and the swarm state, file by file
    let expected: u64 = world.state().hosts[WORKER]
        .files
        .iter()
        .filter(|(p, e)| {
            !e.dir
                && (p.starts_with("/var/lib/docker/volumes/ucp-")
                    || p.starts_with("/var/lib/docker/swarm/"))
        })
        .map(|(_, e)| e.content.len() as u64)
        .sum();
    let worker = facts.hosts.iter().find(|h| h.host == WORKER).unwrap();
    assert_eq!(worker.mke3_data_bytes, Some(expected));
    let (status, message) = one(&r, "disk-space", WORKER);
    assert_eq!(status, Status::Ok);
    assert!(
        message.contains("k0s 300.0 MiB + margin 512.0 MiB"),
        "{message}"
    );
    let (status, message) = one(&r, "disk-space", LEADER);
    assert_eq!(status, Status::Ok);
    assert!(message.contains("etcd snapshot"), "{message}");
    assert_eq!(
        one(&r, "dataplane", WORKER),
        (
            Status::Ok,
            "no kube-proxy container, Calico's eBPF state not known live"
        )
    );
}

#[tokio::test]
async fn a_stopped_ucp_kv_on_the_leader_fails_the_etcd_check() {
    let world = Fixture::default().build();
    if let Some(c) = world
        .state()
        .hosts
        .get_mut(LEADER)
        .and_then(|h| h.containers.get_mut("ucp-kv"))
    {
        c.running = false;
    }
    let (_, r) = checks_of(&world, CheckOptions::default()).await;
    let (status, message) = one(&r, "etcd-quota", LEADER);
    assert_eq!(status, Status::Fail);
    assert!(
        message.contains("10.0.0.11: `")
            && message.contains("endpoint status -w json")
            && message.contains("container ucp-kv is not running"),
        "{message}"
    );
}

#[tokio::test]
async fn ipvs_and_ebpf_fail_before_anything_changes() {
    let world = Fixture::default().build();
    {
        let mut s = world.state();
        let worker = s.hosts.get_mut(WORKER).unwrap();
        worker.containers.insert(
            "ucp-kube-proxy".into(),
            Container {
                image: "mirantis/ucp-hyperkube:3.7.15".into(),
                labels: BTreeMap::new(),
                mounts: vec![],
                running: true,
                restart: "unless-stopped".into(),
                ports: vec![],
                cmd: vec!["kube-proxy".into(), "--proxy-mode".into(), "ipvs".into()],
                network: "host".into(),
            },
        );
    }
    let (_, r) = checks_of(&world, CheckOptions::default()).await;
    let (status, message) = one(&r, "dataplane", WORKER);
    assert_eq!(status, Status::Fail);
    assert!(
        message.starts_with("kube-proxy on mke-worker-0 runs in ipvs mode"),
        "{message}"
    );
    assert_eq!(one(&r, "dataplane", LEADER).0, Status::Ok);
    // Calico on eBPF, as its FelixConfiguration says
    world.state().cluster.objects.insert(
        ObjectRef {
            api_version: "crd.projectcalico.org/v1".into(),
            kind: "FelixConfiguration".into(),
            namespace: None,
            name: "default".into(),
        },
        serde_json::json!({
            "apiVersion": "crd.projectcalico.org/v1",
            "kind": "FelixConfiguration",
            "metadata": {"name": "default"},
            "spec": {"bpfEnabled": true},
        }),
    );
    let (facts, r) = checks_of(&world, CheckOptions::default()).await;
    assert_eq!(
        facts.calico.felix_bpf,
        Some(BTreeMap::from([("default".to_string(), Some(true))]))
    );
    let (status, message) = one(&r, "dataplane", LEADER);
    assert_eq!(status, Status::Fail);
    assert!(
        message.starts_with(
            "Calico runs the eBPF dataplane on mke-manager-0 (FelixConfiguration default: bpfEnabled true)"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn too_little_free_space_fails_unless_skipped() {
    let world = Fixture::default().build();
    if let Some(h) = world.state().hosts.get_mut(WORKER) {
        h.disk_free = 700 << 20;
    }
    let (_, r) = checks_of(&world, CheckOptions::default()).await;
    let (status, message) = one(&r, "disk-space", WORKER);
    assert_eq!(status, Status::Fail);
    assert!(
        message.starts_with("700.0 MiB free under /var/lib, less than the 812.0 MiB needed"),
        "{message}"
    );
    let (_, r) = checks_of(
        &world,
        CheckOptions {
            skip_disk_space_check: true,
            ..CheckOptions::default()
        },
    )
    .await;
    assert_eq!(one(&r, "disk-space", WORKER).0, Status::Warn);
    assert!(r.passed(), "{}", r.render());
}

#[tokio::test]
async fn du_counts_a_missing_directory_as_empty_and_an_unreadable_one_fails() {
    let world = Fixture::default().build();
    let spec = HostSpec {
        address: WORKER.into(),
        port: 22,
        user: "docker".into(),
        key_path: None,
        private_address: None,
        private_interface: None,
        bastion: None,
        sudo: true,
        known_hosts_policy: Default::default(),
    };
    let h = FakeConnector::new(&world).connect(&spec).await.unwrap();
    let certs: u64 = world.state().hosts[WORKER]
        .files
        .iter()
        .filter(|(p, e)| !e.dir && p.starts_with("/var/lib/docker/volumes/ucp-node-certs/"))
        .map(|(_, e)| e.content.len() as u64)
        .sum();
    let with_swarm = ferry_flow_mke::steps::mke3_data_size(h.as_ref(), true)
        .await
        .unwrap();
    assert!(with_swarm > certs);
    assert_eq!(
        ferry_flow_mke::steps::mke3_data_size(h.as_ref(), false)
            .await
            .unwrap(),
        certs
    );
    {
        let mut s = world.state();
        let files = &mut s.hosts.get_mut(WORKER).unwrap().files;
        files.retain(|p, _| !p.starts_with("/var/lib/docker/swarm"));
    }
    assert_eq!(
        ferry_flow_mke::steps::mke3_data_size(h.as_ref(), true)
            .await
            .unwrap(),
        certs,
        "no swarm directory: nothing to count"
    );
    // without root, du cannot read the volume's directories (as on a real host, where
    // /var/lib/docker is root's): the measure fails, naming the host and du's error
    {
        let mut s = world.state();
        for (p, e) in s.hosts.get_mut(WORKER).unwrap().files.iter_mut() {
            if p.starts_with("/var/lib/docker/volumes/ucp-node-certs") && e.dir {
                e.mode = 0o700;
            }
        }
    }
    let no_sudo = HostSpec {
        sudo: false,
        ..spec
    };
    let h = FakeConnector::new(&world).connect(&no_sudo).await.unwrap();
    let out = h
        .run(
            &ferry_core::exec::Cmd::new("du")
                .args(["-sb", "/var/lib/docker/volumes/ucp-node-certs"]),
        )
        .await
        .unwrap();
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr_text().contains("Permission denied"),
        "{}",
        out.stderr_text()
    );
}
