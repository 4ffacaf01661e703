//! core's k0s host operations against the fake hosts, which keep k0s's state the way k0s does:
//! the binary for the host's architecture, install, start, status, the etcd member list, a
//! backup, stop and reset, under systemd and without it.

#![allow(clippy::unwrap_used)]

use ferry_core::exec::{Cmd, FileSpec, HostExec};
use ferry_core::facts;
use ferry_core::k0s::{K0S_CONFIG, K0sBinary, K0sHost, Role};
use ferry_testing::{FakeHost, Fixture};

async fn lifecycle(systemd: bool) {
    let world = Fixture {
        managers: 1,
        workers: 0,
        ..Fixture::default()
    }
    .build();
    let name = world.state().hosts.keys().next().cloned().unwrap();
    // k0s needs MKE 3's ports free: this host is a bare machine.
    world
        .state()
        .hosts
        .get_mut(&name)
        .unwrap()
        .containers
        .clear();
    if !systemd {
        let mut s = world.state();
        let h = s.hosts.get_mut(&name).unwrap();
        h.files.retain(|p, _| !p.starts_with("/run/systemd"));
    }
    let h = FakeHost::new(&world, &name, "docker", true);
    let init = facts::init_system(&h).await.unwrap();
    assert_eq!(
        init,
        if systemd {
            facts::InitSystem::Systemd
        } else {
            facts::InitSystem::Sysv
        }
    );
    let k0s = K0sHost::new(&h, init);
    assert_eq!(k0s.installed().await.unwrap(), None);
    k0s.put_binary(
        &K0sBinary::Release {
            version: "v1.31.1+k0s.1".into(),
        },
        "x86_64",
    )
    .await
    .unwrap();
    h.run(&Cmd::new("mkdir").args(["-p", "/etc/k0s"]).sudo())
        .await
        .unwrap();
    h.put_file(
        K0S_CONFIG,
        b"apiVersion: k0s.k0sproject.io/v1beta1\n",
        &FileSpec::root(0o600),
    )
    .await
    .unwrap();
    k0s.install(Role::Controller { worker: true }, Some(K0S_CONFIG), None)
        .await
        .unwrap();
    assert_eq!(k0s.installed().await.unwrap(), Some("k0scontroller"));
    let unit = init.unit_path("k0scontroller");
    assert!(
        world.state().hosts[&name].files.contains_key(&unit),
        "{unit}"
    );
    // A second install is refused, as k0s refuses it.
    let e = k0s
        .install(Role::Controller { worker: true }, Some(K0S_CONFIG), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert!(k0s.status().await.unwrap().is_none());
    // Nothing to back up or list while k0s is stopped.
    assert!(k0s.etcd_members().await.is_err());
    k0s.start().await.unwrap();
    let st = k0s.status().await.unwrap().unwrap();
    assert_eq!((st.role.as_str(), st.workloads), ("controller", true));
    assert_eq!(st.version, "v1.31.1+k0s.1");
    let members = k0s.etcd_members().await.unwrap();
    let hostname = world.state().hosts[&name].hostname.clone();
    assert_eq!(members.keys().collect::<Vec<_>>(), vec![&hostname]);
    assert!(members[&hostname].ends_with(":2380"));
    let token = k0s.token_create(Role::Worker, "1h").await.unwrap();
    assert!(token.expose().starts_with("k0s-worker-token-"));
    assert!(k0s.backup("/var/lib/nowhere").await.is_err());
    h.run(&Cmd::new("mkdir").args(["-p", "/var/lib/ferry"]).sudo())
        .await
        .unwrap();
    k0s.backup("/var/lib/ferry").await.unwrap();
    let backups = world.state().hosts[&name]
        .files
        .keys()
        .filter(|p| p.starts_with("/var/lib/ferry/k0s_backup_"))
        .count();
    assert_eq!(backups, 1);
    // Reset is refused while k0s runs; stopped, it removes the service.
    assert!(k0s.reset().await.is_err());
    k0s.stop_if_running().await.unwrap();
    k0s.reset().await.unwrap();
    assert_eq!(k0s.installed().await.unwrap(), None);
    k0s.reload().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn k0s_goes_through_its_lifecycle_under_systemd() {
    lifecycle(true).await;
}

#[tokio::test(start_paused = true)]
async fn k0s_goes_through_its_lifecycle_with_sysv_init_scripts() {
    lifecycle(false).await;
}
