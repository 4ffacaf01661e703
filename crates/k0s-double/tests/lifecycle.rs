//! The k0s double run as ferry runs k0s: each test is a host (a root directory) whose ports are
//! shifted by an offset of its own, so tests run unprivileged and side by side on loopback.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Host;

use ferry_core::k0s::{parse_member_list, parse_status};

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn controller_lifecycle() {
    let h = Host::new("c1", 21000);
    assert_eq!(h.ok(&["version"]).trim(), "v1.31.1+k0s.1");
    let e = h.fails(&["status"]);
    assert!(
        e.contains(r#"Error: status: can't get "status" via "/run/k0s/status.sock""#),
        "{e}"
    );

    h.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--config",
        "/etc/k0s/k0s.yaml",
    ]);
    let script = std::fs::read_to_string(h.path("/etc/init.d/k0scontroller")).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(
        script.contains(" controller --enable-worker --config=/etc/k0s/k0s.yaml\""),
        "{script}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(h.path("/etc/init.d/k0scontroller"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(h.path("/var/lib/k0s").is_dir());

    // A second install is refused, as k0s's service library refuses it.
    let e = h.fails(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    assert!(
        e.contains("Init already exists: /etc/init.d/k0scontroller"),
        "{e}"
    );
    let e = h.fails(&["install", "worker"]);
    assert!(e.contains("Init already exists"), "{e}");
    // `--force` rewrites the service (k0s is not running).
    h.ok(&[
        "install",
        "controller",
        "--force",
        "--enable-worker",
        "--config=/etc/k0s/k0s.yaml",
    ]);

    // The init script itself reports the service stopped.
    let out = Command::new(h.path("/etc/init.d/k0scontroller"))
        .arg("status")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Stopped");

    h.ok(&["start"]);
    let e = h.fails(&["start"]);
    assert!(e.contains("already running"), "{e}");
    let s = parse_status(&h.ok(&["status"]));
    assert_eq!(s.version, "v1.31.1+k0s.1");
    assert_eq!(s.role, "controller");
    assert!(s.workloads);
    // It holds k0s's ports.
    for p in [2380, 6443, 8132, 9443, 10250] {
        assert!(
            TcpListener::bind(("0.0.0.0", h.port(p))).is_err(),
            "port {p} is free"
        );
    }

    for role in ["--role=worker", "--role=controller"] {
        let t = h.ok(&["token", "create", role, "--expiry=1h"]);
        assert!(t.trim().len() > 100, "{t}");
        assert!(!t.trim().contains(char::is_whitespace), "{t}");
    }
    let e = h.fails(&["token", "create", "--role=admin"]);
    assert!(e.contains("unsupported role"), "{e}");

    let members = parse_member_list(&h.ok(&["etcd", "member-list"])).unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members["c1"], format!("https://127.0.0.1:{}", h.port(2380)));

    std::fs::create_dir_all(h.path("/backups")).unwrap();
    h.ok(&["backup", "--save-path", "/backups"]);
    let archives: Vec<_> = std::fs::read_dir(h.path("/backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(
        archives[0].starts_with("k0s_backup_") && archives[0].ends_with("Z.tar.gz"),
        "{archives:?}"
    );
    let bytes = std::fs::read(h.path("/backups").join(&archives[0])).unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "not gzip");
    let e = h.fails(&["backup", "--save-path", "/nowhere"]);
    assert!(e.contains("does not exist"), "{e}");

    let e = h.fails(&["reset"]);
    assert!(
        e.contains("k0s seems to be running! please stop k0s before reset"),
        "{e}"
    );

    h.ok(&["stop"]);
    assert!(h.fails(&["status"]).contains("no such file or directory"));
    for p in [6443, 10250] {
        TcpListener::bind(("0.0.0.0", h.port(p))).unwrap();
    }
    let e = h.fails(&["token", "create", "--role=worker"]);
    assert!(e.contains("not running"), "{e}");
    assert!(h.fails(&["etcd", "member-list"]).contains("not running"));
    // Stopping a stopped k0s is no error (as in the in-memory fake).
    h.ok(&["stop"]);

    h.ok(&["reset"]);
    assert!(!h.path("/etc/init.d/k0scontroller").exists());
    assert!(!h.path("/var/lib/k0s").exists());
    assert!(!h.path("/run/k0s").exists());
    assert!(
        h.path("/etc/k0s/k0s.yaml").exists(),
        "reset keeps the config"
    );
    assert!(h.fails(&["reset"]).contains("not installed"));

    h.ok(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    h.ok(&["start"]);
    let s = parse_status(&h.ok(&["status"]));
    assert!(!s.workloads);
    // Without a worker, the kubelet port stays free.
    TcpListener::bind(("0.0.0.0", h.port(10250))).unwrap();
    h.ok(&["stop"]);
}

#[test]
fn workers_and_controllers_join_with_tokens_their_controller_made() {
    let c = Host::new("c1", 21100);
    c.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--config=/etc/k0s/k0s.yaml",
    ]);
    c.ok(&["start"]);

    // A worker.
    let w = Host::new("w1", 21200);
    std::fs::write(
        w.path("/etc/k0s/join-token"),
        c.ok(&["token", "create", "--role=worker", "--expiry=1h"]),
    )
    .unwrap();
    let e = w.fails(&[
        "install",
        "controller",
        "--token-file",
        "/etc/k0s/join-token",
    ]);
    assert!(e.contains("invalid join token"), "{e}");
    w.ok(&["install", "worker", "--token-file", "/etc/k0s/join-token"]);
    assert!(w.path("/etc/init.d/k0sworker").is_file());
    w.ok(&["start"]);
    let s = parse_status(&w.ok(&["status"]));
    assert_eq!((s.role.as_str(), s.workloads), ("worker", true));
    eventually("the worker joins", || {
        w.path("/var/lib/k0s/double/joined").exists()
    });
    let e = w.fails(&["token", "create"]);
    assert!(e.contains("not running"), "{e}");

    // A second controller.
    let c2 = Host::new("c2", 21300);
    std::fs::write(
        c2.path("/etc/k0s/join-token"),
        c.ok(&["token", "create", "--role=controller"]),
    )
    .unwrap();
    c2.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--config",
        "/etc/k0s/k0s.yaml",
        "--token-file",
        "/etc/k0s/join-token",
    ]);
    c2.ok(&["start"]);
    let members = parse_member_list(&c.ok(&["etcd", "member-list"])).unwrap();
    assert_eq!(
        members.keys().map(String::as_str).collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert_eq!(
        members["c2"],
        format!("https://127.0.0.1:{}", c2.port(2380))
    );
    let on_c2 = parse_member_list(&c2.ok(&["etcd", "member-list"])).unwrap();
    assert_eq!(on_c2, members);

    // Once joined, a restart needs no token file.
    std::fs::remove_file(c2.path("/etc/k0s/join-token")).unwrap();
    c2.ok(&["stop"]);
    c2.ok(&["start"]);
}

#[test]
fn bad_tokens_are_refused() {
    let c = Host::new("c1", 21400);
    c.ok(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    c.ok(&["start"]);
    let w = Host::new("w1", 21500);

    let e = w.fails(&["install", "worker"]);
    assert!(e.contains("--token-file"), "{e}");
    let e = w.fails(&["install", "worker", "--token-file", "/etc/k0s/join-token"]);
    assert!(
        e.contains("failed to read token file /etc/k0s/join-token")
            && e.contains("no such file or directory"),
        "{e}"
    );
    std::fs::write(
        w.path("/etc/k0s/join-token"),
        "k0s-worker-token-000001-h1\n",
    )
    .unwrap();
    let before = w.files();
    let e = w.fails(&["install", "worker", "--token-file", "/etc/k0s/join-token"]);
    assert!(e.starts_with("Error: invalid join token"), "{e}");
    assert_eq!(w.files(), before, "a refused install changes nothing");

    // A well-formed token its controller never made: the worker runs but is not let in.
    let real = c.ok(&["token", "create", "--role=controller"]);
    c.ok(&["stop"]);
    c.ok(&["reset"]);
    c.ok(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    c.ok(&["start"]);
    std::fs::write(w.path("/etc/k0s/join-token"), &real).unwrap();
    w.ok(&[
        "install",
        "controller",
        "--config",
        "/etc/k0s/k0s.yaml",
        "--token-file",
        "/etc/k0s/join-token",
    ]);
    let e = w.fails(&["start"]);
    assert!(e.contains("invalid bootstrap token"), "{e}");
    assert!(w.fails(&["status"]).contains("can't get \"status\""));
}

#[test]
fn the_token_file_must_outlive_install_until_the_first_start() {
    let c = Host::new("c1", 21600);
    c.ok(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    c.ok(&["start"]);
    let w = Host::new("w1", 21700);
    std::fs::write(
        w.path("/etc/k0s/join-token"),
        c.ok(&["token", "create", "--role=worker"]),
    )
    .unwrap();
    w.ok(&["install", "worker", "--token-file", "/etc/k0s/join-token"]);
    std::fs::remove_file(w.path("/etc/k0s/join-token")).unwrap();
    let e = w.fails(&["start"]);
    assert!(
        e.contains("failed to read token file /etc/k0s/join-token"),
        "{e}"
    );
}

#[test]
fn a_fault_file_fails_the_named_command_and_changes_nothing() {
    let h = Host::new("c1", 21800);
    std::fs::create_dir_all(h.path("/etc/k0s-double")).unwrap();
    std::fs::write(h.path("/etc/k0s-double/fault"), "install\nstart\n").unwrap();
    let before = h.files();
    let e = h.fails(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    assert!(
        e.contains("injected failure of `k0s install controller`"),
        "{e}"
    );
    assert_eq!(h.files(), before);

    std::fs::write(h.path("/etc/k0s-double/fault"), "start\ntoken create\n").unwrap();
    h.ok(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    let before = h.files();
    let e = h.fails(&["start"]);
    assert!(e.contains("injected failure of `k0s start`"), "{e}");
    assert_eq!(h.files(), before);
    h.fails(&["status"]);

    std::fs::write(h.path("/etc/k0s-double/fault"), "token create\n").unwrap();
    h.ok(&["start"]);
    let e = h.fails(&["token", "create", "--role=worker"]);
    assert!(e.contains("injected failure"), "{e}");
    h.ok(&["etcd", "member-list"]);
}

#[test]
fn a_held_port_fails_the_start() {
    let h = Host::new("c1", 21900);
    // MKE 3's ucp-proxy holds the API port.
    let held = TcpListener::bind(("0.0.0.0", h.port(6443))).unwrap();
    h.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--config",
        "/etc/k0s/k0s.yaml",
    ]);
    let e = h.fails(&["start"]);
    assert!(
        e.contains(&format!(
            "failed to start k0scontroller: listen tcp :{}: bind: address already in use",
            h.port(6443)
        )),
        "{e}"
    );
    let e = h.fails(&["status"]);
    assert!(e.contains("can't get \"status\""), "{e}");
    // The other ports were let go with the exiting daemon.
    TcpListener::bind(("0.0.0.0", h.port(2380))).unwrap();
    assert!(!h.path("/var/run/k0scontroller.pid").exists());
    // Reset is allowed: nothing runs.
    drop(held);
    h.ok(&["start"]);
    h.ok(&["status"]);
}

#[test]
fn systemd_hosts_get_a_unit() {
    let h = Host::new("c1", 22000);
    std::fs::create_dir_all(h.path("/run/systemd/system")).unwrap();
    h.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--config",
        "/etc/k0s/k0s.yaml",
    ]);
    assert!(!h.path("/etc/init.d/k0scontroller").exists());
    let unit =
        std::fs::read_to_string(h.path("/etc/systemd/system/k0scontroller.service")).unwrap();
    assert!(unit.contains("ExecStart="), "{unit}");
    assert!(
        unit.contains(" controller --enable-worker --config=/etc/k0s/k0s.yaml\n"),
        "{unit}"
    );
    h.ok(&["start"]);
    assert_eq!(parse_status(&h.ok(&["status"])).role, "controller");
    h.ok(&["stop"]);
    h.fails(&["status"]);
    h.ok(&["reset"]);
    assert!(!h.path("/etc/systemd/system/k0scontroller.service").exists());
}

#[test]
fn the_in_memory_fake_and_the_double_agree_on_status_and_member_list() {
    // The fake's exact `k0s status` lines and the double's parse the same.
    let h = Host::new("c1", 22100);
    h.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--config",
        "/etc/k0s/k0s.yaml",
    ]);
    h.ok(&["start"]);
    let text = h.ok(&["status"]);
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        ["Version", "Process ID", "Role", "Workloads", "SingleNode"]
    );
    let json: serde_json_like::Value = h.ok(&["status", "-o", "json"]).parse().unwrap();
    assert!(json.0.contains("\"Role\":\"controller\""), "{}", json.0);
}

/// Just enough to check `-o json` prints one JSON object without a JSON dev-dependency.
mod serde_json_like {
    pub struct Value(pub String);
    impl std::str::FromStr for Value {
        type Err = String;
        fn from_str(s: &str) -> Result<Value, String> {
            let s = s.trim();
            if s.starts_with('{') && s.ends_with('}') {
                Ok(Value(s.to_string()))
            } else {
                Err(s.to_string())
            }
        }
    }
}

#[test]
fn openrc_hosts_get_an_init_script_that_restarts() {
    let h = Host::new("c1", 22400);
    std::fs::create_dir_all(h.path("/sbin")).unwrap();
    std::fs::write(h.path("/sbin/openrc-init"), "").unwrap();
    h.ok(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    assert!(!h.path("/etc/systemd/system/k0scontroller.service").exists());
    h.ok(&["start"]);
    let pid = |h: &Host| {
        h.ok(&["status"])
            .lines()
            .find_map(|l| l.strip_prefix("Process ID: ").map(str::to_string))
            .unwrap()
    };
    let before = pid(&h);
    // The script carries the world it was installed in: it runs with no environment at all.
    let out = Command::new(h.path("/etc/init.d/k0scontroller"))
        .arg("restart")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(pid(&h), before);
    let out = Command::new(h.path("/etc/init.d/k0scontroller"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Running");
}

/// A stamped copy is that release: `k0s version` and the running daemon's `k0s status` say so.
/// The service runs the binary at the path it was installed from, so replacing that file while
/// k0s is stopped and starting again runs the new release, and a daemon started before the
/// replacement keeps reporting the old one (as a real process does).
#[test]
fn a_stamped_copy_is_that_release_and_a_restart_runs_the_replaced_file() {
    let h = Host::new("c9", 22500);
    let bin = h.path("/usr/local/bin/k0s");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    common::stamped(&bin, "v1.31.1+k0s.1");
    let run = |args: &[&str]| {
        let out = h.k0s_from(&bin, args);
        assert!(
            out.status.success(),
            "k0s {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&["version"]).trim(), "v1.31.1+k0s.1");
    run(&["install", "controller", "--config", "/etc/k0s/k0s.yaml"]);
    run(&["start"]);
    assert_eq!(parse_status(&run(&["status"])).version, "v1.31.1+k0s.1");

    // replaced while running (a new file under the same name): the daemon is still the old one
    let next = h.path("/usr/local/bin/k0s.next");
    common::stamped(&next, "v1.32.6+k0s.0");
    std::fs::rename(&next, &bin).unwrap();
    assert_eq!(run(&["version"]).trim(), "v1.32.6+k0s.0");
    assert_eq!(parse_status(&run(&["status"])).version, "v1.31.1+k0s.1");

    run(&["stop"]);
    run(&["start"]);
    assert_eq!(parse_status(&run(&["status"])).version, "v1.32.6+k0s.0");
    run(&["stop"]);
}

/// `--no-taints` with `--enable-worker` stays in the service, as k0s keeps it: the controller's
/// Node is registered untainted at every start, not only after the install.
#[test]
fn no_taints_is_kept_in_the_service() {
    let h = Host::new("c1", 22600);
    h.ok(&[
        "install",
        "controller",
        "--enable-worker",
        "--no-taints",
        "--config",
        "/etc/k0s/k0s.yaml",
    ]);
    let script = std::fs::read_to_string(h.path("/etc/init.d/k0scontroller")).unwrap();
    assert!(
        script.contains(" controller --enable-worker --no-taints --config=/etc/k0s/k0s.yaml\""),
        "{script}"
    );
}

/// etcd's membership as k0s shows it: every controller sees every member, a read needs a
/// majority of them up, `k0s etcd leave` removes one for good (its own reads fail until it is
/// reset and joins again), and a controller that was down catches up when it starts.
#[test]
fn etcd_membership_is_one_list_with_a_quorum() {
    let c1 = Host::new("c1", 22800);
    c1.ok(&["install", "controller", "--config=/etc/k0s/k0s.yaml"]);
    c1.ok(&["start"]);
    let join = |h: &Host, via: &Host| {
        std::fs::write(
            h.path("/etc/k0s/join-token"),
            via.ok(&["token", "create", "--role=controller"]),
        )
        .unwrap();
        h.ok(&[
            "install",
            "controller",
            "--config=/etc/k0s/k0s.yaml",
            "--token-file=/etc/k0s/join-token",
        ]);
        h.ok(&["start"]);
    };
    let c2 = Host::new("c2", 22900);
    join(&c2, &c1);
    let c3 = Host::new("c3", 23000);
    join(&c3, &c1);
    let names = |h: &Host| -> Vec<String> {
        parse_member_list(&h.ok(&["etcd", "member-list"]))
            .unwrap()
            .into_keys()
            .collect()
    };
    // c2 joined before c3 and learns of it from c1
    for h in [&c1, &c2, &c3] {
        assert_eq!(names(h), ["c1", "c2", "c3"], "on {}", h.name);
    }

    // one of three down: the other two are a majority
    c3.ok(&["stop"]);
    assert_eq!(names(&c1), ["c1", "c2", "c3"]);
    // two of three down: no quorum
    c2.ok(&["stop"]);
    let e = c1.fails(&["etcd", "member-list"]);
    assert!(
        e.contains("etcd has no quorum: 1 of 3 members answer"),
        "{e}"
    );
    c2.ok(&["start"]);
    c3.ok(&["start"]);

    // c3 removed through c1, by its peer address (all of them are 127.0.0.1 here: with the
    // port), while c2 is down: c1 and c3 are two of three
    let e = c1.fails(&["etcd", "leave", "--peer-address", "192.0.2.9"]);
    assert!(
        e.contains("no etcd member has peer address 192.0.2.9"),
        "{e}"
    );
    let e = c1.fails(&["etcd", "leave", "--peer-address=127.0.0.1"]);
    assert!(e.contains("more than one member"), "{e}");
    c2.ok(&["stop"]);
    let c3_peer = format!("--peer-address=127.0.0.1:{}", c3.port(2380));
    c1.ok(&["etcd", "leave", &c3_peer]);
    let e = c3.fails(&["etcd", "member-list"]);
    assert!(e.contains("permanently removed"), "{e}");
    // {c1, c2} with c2 down has no quorum
    let e = c1.fails(&["etcd", "member-list"]);
    assert!(e.contains("1 of 2 members answer"), "{e}");
    // c2 was down during the change: it catches up when it starts
    c2.ok(&["start"]);
    assert_eq!(names(&c2), ["c1", "c2"]);
    assert_eq!(names(&c1), ["c1", "c2"]);

    // c3, reset, joins again
    c3.ok(&["stop"]);
    c3.ok(&["reset"]);
    join(&c3, &c1);
    for h in [&c1, &c2, &c3] {
        assert_eq!(names(h), ["c1", "c2", "c3"], "on {}", h.name);
    }
    for h in [&c1, &c2, &c3] {
        h.ok(&["stop"]);
    }
}
