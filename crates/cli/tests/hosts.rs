//! `ferry hosts check`: the binary against the SSH testbed, and its input validation.
//!
//! The testbed tests need `sudo scripts/testbed up 5 && eval "$(sudo scripts/testbed env)"` (or
//! `scripts/test`); without it they FAIL and say how to start it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn ferry(args: &[&str]) -> Run {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The tests below change hosts (hostname, users) and must not overlap.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn testbed() -> PathBuf {
    common::testbed("`ferry hosts check`")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a command on testbed host `h` as root with plain ssh.
fn on_host(dir: &Path, h: &str, cmd: &str) {
    let st = std::process::Command::new("ssh")
        .args(["-F", s(&dir.join("ssh_config")), "-n", h, cmd])
        .status()
        .unwrap();
    assert!(st.success(), "ssh {h} {cmd}");
}

fn check_args(dir: &Path, hosts: &Path, known_hosts: &Path) -> Vec<String> {
    vec![
        "hosts".into(),
        "check".into(),
        "--hosts-path".into(),
        s(hosts).into(),
        "--known-hosts".into(),
        s(known_hosts).into(),
        "--ssh-config".into(),
        s(&dir.join("ssh_config")).into(),
        "--connect-timeout".into(),
        "2".into(),
    ]
}

fn run_check(args: &[String], extra: &[&str]) -> Run {
    let mut v: Vec<&str> = args.iter().map(String::as_str).collect();
    v.extend(extra);
    ferry(&v)
}

#[test]
fn all_testbed_hosts_pass() {
    let _s = serial();
    let dir = testbed();
    let args = check_args(&dir, &dir.join("hosts.yaml"), &dir.join("known_hosts"));
    let r = run_check(&args, &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let n = std::fs::read_to_string(dir.join("hosts.txt"))
        .unwrap()
        .lines()
        .count();
    for i in 1..=n {
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("10.123.1.{i} ")))
            .unwrap_or_else(|| panic!("no row for host {i}:\n{}", r.stdout));
        assert!(line.contains(&format!(" h{i} ")), "{line}");
        assert!(line.contains("Debian GNU/Linux 12"), "{line}");
        assert!(line.contains(&format!("eth0 10.123.1.{i}")), "{line}");
        assert!(line.ends_with("yes   ok"), "{line}");
    }
    assert!(r.stdout.contains("No problems found."), "{}", r.stdout);
    assert!(
        r.stderr
            .contains(&format!("{n} hosts checked: {n} ok, 0 with problems")),
        "{}",
        r.stderr
    );

    let r = run_check(&args, &["-o", "json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["hosts"].as_array().unwrap().len(), n);
    assert_eq!(v["hosts"][0]["facts"]["hostname"], "h1");
    assert_eq!(v["hosts"][0]["facts"]["os"]["id"], "debian");
    assert_eq!(v["hosts"][0]["facts"]["privateInterface"], "eth0");
    assert!(v["hosts"][0]["facts"]["cpus"].as_u64().unwrap() >= 1);
    assert!(
        v["hosts"][0]["facts"]["dataDirDisk"]["availableBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn every_kind_of_problem_is_reported_and_fails_the_check() {
    let _s = serial();
    let dir = testbed();
    let tmp = tempfile::tempdir().unwrap();
    let key = dir.join("id_ed25519");
    // h1: fine. h2: its key is missing from known_hosts. h3: a user without sudo. h4 and h5:
    // the same hostname. 10.123.1.250: nobody there.
    on_host(
        &dir,
        "h3",
        "id ferrynosudo >/dev/null 2>&1 || { useradd -m -s /bin/sh ferrynosudo && usermod -p '*' ferrynosudo; }; \
         mkdir -p /home/ferrynosudo/.ssh && cp /root/.ssh/authorized_keys /home/ferrynosudo/.ssh/ && chown -R ferrynosudo: /home/ferrynosudo/.ssh",
    );
    on_host(&dir, "h5", "hostname h4");
    let hosts = tmp.path().join("hosts.yaml");
    let entry = |a: &str, u: &str| {
        format!(
            "  - address: {a}\n    user: {u}\n    keyPath: {}\n",
            s(&key)
        )
    };
    std::fs::write(
        &hosts,
        format!(
            "hosts:\n{}{}{}{}{}{}",
            entry("10.123.1.1", "ferry"),
            entry("10.123.1.2", "ferry"),
            entry("10.123.1.3", "ferrynosudo"),
            entry("10.123.1.4", "ferry"),
            entry("10.123.1.5", "ferry"),
            entry("10.123.1.250", "ferry"),
        ),
    )
    .unwrap();
    let kh: String = std::fs::read_to_string(dir.join("known_hosts"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("10.123.1.2,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let known_hosts = tmp.path().join("known_hosts");
    std::fs::write(&known_hosts, kh).unwrap();

    let args = check_args(&dir, &hosts, &known_hosts);
    let r = run_check(&args, &[]);
    on_host(&dir, "h5", "hostname h5");
    assert_eq!(r.code, Some(3), "{}\n{}", r.stdout, r.stderr);
    let row = |a: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{a} ")))
            .unwrap_or_else(|| panic!("no row for {a}:\n{}", r.stdout))
            .to_string()
    };
    assert!(row("10.123.1.1").ends_with(" ok"), "{}", r.stdout);
    assert!(row("10.123.1.2").ends_with(" host-key"), "{}", r.stdout);
    assert!(row("10.123.1.3").ends_with(" no-sudo"), "{}", r.stdout);
    assert!(row("10.123.1.3").contains(" no "), "{}", r.stdout);
    assert!(row("10.123.1.4").ends_with(" duplicate"), "{}", r.stdout);
    assert!(row("10.123.1.5").ends_with(" duplicate"), "{}", r.stdout);
    let unreachable = row("10.123.1.250");
    assert!(
        unreachable.ends_with(" unreachable") || unreachable.ends_with(" timeout"),
        "{unreachable}"
    );
    for p in [
        "  - 10.123.1.2: host key verification failed: the host key is not in known_hosts",
        "  - 10.123.1.3: user ferrynosudo cannot run sudo without a password (sudo -n)",
        "  - 10.123.1.4: duplicate hostname h4 (also on 10.123.1.5)",
        "  - 10.123.1.5: duplicate hostname h4 (also on 10.123.1.4)",
        "  - 10.123.1.250: ",
    ] {
        assert!(r.stdout.contains(p), "missing {p:?} in:\n{}", r.stdout);
    }
    assert!(
        r.stderr.contains("6 hosts checked: 1 ok, 5 with problems"),
        "{}",
        r.stderr
    );

    let r = run_check(&args, &["-o", "json"]);
    assert_eq!(r.code, Some(3));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["hosts"][1]["status"], "host-key");
    assert!(v["hosts"][1]["facts"].is_null());
}

#[test]
fn invalid_hosts_files_are_usage_errors_naming_entry_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let hosts = tmp.path().join("hosts.yaml");
    std::fs::write(
        &hosts,
        "hosts:\n  - address: 10.0.0.1\n    user: a\n  - address: 10.0.0.2\n    user: b\n    port: 0\n",
    )
    .unwrap();
    let r = ferry(&["hosts", "check", "--hosts-path", s(&hosts)]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "Error: {}: hosts[1] (10.0.0.2): port: must be 1 to 65535, got 0\n",
            s(&hosts)
        )
    );
    assert!(r.stdout.is_empty());

    let missing = tmp.path().join("nope.yaml");
    let r = ferry(&["hosts", "check", "--hosts-path", s(&missing)]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.starts_with(&format!("Error: {}: ", s(&missing))),
        "{}",
        r.stderr
    );

    // `off` needs the explicit flag.
    std::fs::write(
        &hosts,
        "hosts:\n  - address: 10.123.1.1\n    user: a\n    knownHostsPolicy: off\n",
    )
    .unwrap();
    let r = ferry(&[
        "hosts",
        "check",
        "--hosts-path",
        s(&hosts),
        "--connect-timeout",
        "1",
    ]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stdout.contains("--insecure-no-host-key-check"),
        "{}",
        r.stdout
    );
}
