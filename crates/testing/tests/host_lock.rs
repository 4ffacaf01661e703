//! Host locks on the fake hosts: a live lock of another run is refused naming its owner, the
//! same run takes its own lock back, a lock not refreshed for the stale time is taken over.

use std::time::Duration;

use ferry_core::exec::{Cmd, HostExec};
use ferry_core::lock::{self, HOST_LOCK_STALE, LockError, LockOwner};
use ferry_testing::{FakeHost, Fixture};

fn owner(run: &str, pid: u32) -> LockOwner {
    LockOwner {
        owner: format!("op-{run}@admin-box"),
        pid,
        run_id: run.into(),
        since_unix: 0,
    }
}

#[tokio::test(start_paused = true)]
async fn live_locks_are_refused_stale_ones_taken_over() {
    let world = Fixture {
        managers: 1,
        workers: 0,
        ..Fixture::default()
    }
    .build();
    let host = world.state().hosts.keys().next().cloned().unwrap();
    let h = FakeHost::new(&world, &host, "docker", true);
    assert!(
        !lock::acquire_host(&h, &owner("r1", 11), HOST_LOCK_STALE)
            .await
            .unwrap()
    );
    // Another run is refused with the owner's name.
    let e = lock::acquire_host(&h, &owner("r2", 22), HOST_LOCK_STALE)
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::HostHeld { .. }));
    assert_eq!(
        e.to_string(),
        format!("host {host} is locked by another ferry run: op-r1@admin-box (pid 11, run r1)")
    );
    // The owner refreshes: still live after more than the stale time in total.
    tokio::time::advance(Duration::from_secs(40)).await;
    lock::refresh_host(&h).await.unwrap();
    tokio::time::advance(Duration::from_secs(40)).await;
    assert!(
        lock::acquire_host(&h, &owner("r2", 22), HOST_LOCK_STALE)
            .await
            .is_err()
    );
    // The same run (a resume after a crash) takes its lock back at once.
    assert!(
        lock::acquire_host(&h, &owner("r1", 33), HOST_LOCK_STALE)
            .await
            .unwrap()
    );
    // Not refreshed for longer than the stale time: another run takes it over.
    tokio::time::advance(HOST_LOCK_STALE + Duration::from_secs(1)).await;
    assert!(
        lock::acquire_host(&h, &owner("r2", 22), HOST_LOCK_STALE)
            .await
            .unwrap()
    );
    let out = h
        .run(&Cmd::new("cat").arg(lock::HOST_LOCK_OWNER).sudo())
        .await
        .unwrap();
    assert!(
        out.stdout_text().contains("\"run_id\":\"r2\""),
        "{}",
        out.stdout_text()
    );
    lock::release_host(&h).await.unwrap();
    let out = h
        .run(&Cmd::new("test").args(["-e", lock::HOST_LOCK_DIR]))
        .await
        .unwrap();
    assert_eq!(out.code, Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_lock_directory_without_an_owner_is_taken_once_its_maker_cannot_be_alive() {
    let world = Fixture {
        managers: 1,
        workers: 0,
        ..Fixture::default()
    }
    .build();
    let host = world.state().hosts.keys().next().cloned().unwrap();
    let h = FakeHost::new(&world, &host, "docker", true);
    // a ferry killed between the directory and the owner file
    h.run(&Cmd::new("mkdir").arg(lock::HOST_LOCK_DIR).sudo())
        .await
        .unwrap();
    let e = lock::acquire_host(&h, &owner("r2", 22), HOST_LOCK_STALE)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "host {host} is locked by another ferry run: an unknown run (no readable owner file)"
        )
    );
    tokio::time::advance(lock::OWNERLESS_GRACE + Duration::from_secs(1)).await;
    assert!(
        lock::acquire_host(&h, &owner("r2", 22), HOST_LOCK_STALE)
            .await
            .unwrap()
    );
    // let go in one command: nothing left
    lock::release_host(&h).await.unwrap();
    let out = h
        .run(&Cmd::new("test").args(["-e", lock::HOST_LOCK_DIR]))
        .await
        .unwrap();
    assert_eq!(out.code, Some(1));
}
