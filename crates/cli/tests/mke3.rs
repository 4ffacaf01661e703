//! `ferry mke3 export` against the in-process MKE 3 server (HTTPS on 127.0.0.1): the export and
//! the config TOML are written only when everything was read, transient faults are retried, and
//! every other fault gives a clear error and no file.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Run, run};
use ferry_mke3_sim::{Fault, FaultKind, Sim, SimOptions, generated_model};
use ferry_rbac::export::Export;

struct Env {
    sim: Sim,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let sim =
            Sim::start_standalone(generated_model(45, 3, 12, 70), SimOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), sim.ca_pem()).unwrap();
        Env { sim, dir }
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("export.json")
    }
    fn toml(&self) -> PathBuf {
        self.dir.path().join("mke3-config.toml")
    }
    fn run(&self, extra: &[&str]) -> Run {
        self.run_with_password(Some(&SimOptions::default().password), extra)
    }
    fn run_with_password(&self, password: Option<&str>, extra: &[&str]) -> Run {
        let mut cmd = common::ferry();
        cmd.args(["mke3", "export", "--mke3-url", &self.sim.url()])
            .args(["--mke3-admin-username", "admin"])
            .arg("--out")
            .arg(self.out())
            .args(["--page-size", "10"])
            .args(extra)
            .env_remove("MKE3_ADMIN_PASSWORD");
        if !extra.contains(&"--insecure-skip-tls-verify") && !extra.contains(&"--no-ca") {
            cmd.arg("--mke3-ca-cert")
                .arg(self.dir.path().join("ca.pem"));
        }
        if let Some(p) = password {
            cmd.env("MKE3_ADMIN_PASSWORD", p);
        }
        let r = run(&mut cmd);
        let password = SimOptions::default().password;
        assert!(!r.stdout.contains(&password) && !r.stderr.contains(&password));
        assert!(!r.stderr.contains("sim-token"), "{}", r.stderr);
        r
    }
    fn no_files(&self) {
        assert!(!self.out().exists(), "an export file was written");
        assert!(!self.toml().exists(), "a config TOML was written");
        let left: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "ca.pem")
            .collect();
        assert!(left.is_empty(), "files left behind: {left:?}");
    }
}

fn read_export(path: &Path) -> Export {
    Export::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn export_writes_the_model_and_the_config_toml() {
    let env = Env::new();
    let r = env.run(&[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(read_export(&env.out()), env.sim.model());
    assert_eq!(
        std::fs::read_to_string(env.toml()).unwrap(),
        env.sim.config_toml()
    );
    assert!(
        r.stderr.contains(
            "MKE 3.7.15: 45 users, 3 organizations, 12 teams, 5 roles, 25 collections, 70 grants"
        ),
        "{}",
        r.stderr
    );
    // Every list was read at the asked page size.
    assert!(
        env.sim
            .requests()
            .iter()
            .filter(|r| r.contains("limit="))
            .all(|r| r.contains("limit=10"))
    );
}

#[test]
fn config_out_puts_the_toml_elsewhere() {
    let env = Env::new();
    let toml = env.dir.path().join("sub.toml");
    let r = env.run(&["--config-out", toml.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(toml.exists() && !env.toml().exists());
}

#[test]
fn transient_faults_are_retried_and_the_export_is_complete() {
    let env = Env::new();
    env.sim.inject(
        Fault::on("/enzi/v0/accounts", FaultKind::Status(500))
            .skip(1)
            .times(2),
    );
    env.sim
        .inject(Fault::on("/collectionGrants", FaultKind::Drop).skip(2));
    env.sim.inject(Fault::on("/roles", FaultKind::Status(429)));
    env.sim.inject(Fault::on(
        "/collections",
        FaultKind::Slow(Duration::from_secs(3)),
    ));
    let r = env.run(&["--timeout", "1"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(read_export(&env.out()), env.sim.model());
}

#[test]
fn a_server_error_that_stays_fails_clearly_and_writes_nothing() {
    let env = Env::new();
    env.sim.inject(
        Fault::on("/collectionGrants", FaultKind::Status(500))
            .skip(3)
            .times(u32::MAX),
    );
    let r = env.run(&[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.starts_with(&format!(
            "Error: cannot read the MKE 3 cluster at {}: MKE 3 unavailable: GET /collectionGrants?",
            env.sim.url()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("HTTP 500"), "{}", r.stderr);
    env.no_files();
}

#[test]
fn a_broken_page_in_the_middle_names_it_and_writes_nothing() {
    let env = Env::new();
    let third = env.sim.model().accounts[20].name.clone();
    env.sim.inject(
        Fault::on("/enzi/v0/accounts", FaultKind::BadShape)
            .query(&format!("start={third}"))
            .times(u32::MAX),
    );
    let r = env.run(&[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("start={third}")), "{}", r.stderr);
    assert!(
        r.stderr.contains("at `accounts[0]`: missing field `name`"),
        "{}",
        r.stderr
    );
    env.no_files();
}

#[test]
fn a_truncated_answer_writes_nothing() {
    let env = Env::new();
    env.sim
        .inject(Fault::on("/enzi/v0/accounts/org001/teams", FaultKind::Truncated).times(u32::MAX));
    let r = env.run(&[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("body is not valid JSON"), "{}", r.stderr);
    env.no_files();
}

#[test]
fn a_connection_that_keeps_dropping_writes_nothing() {
    let env = Env::new();
    env.sim
        .inject(Fault::on("/api/ucp/config-toml", FaultKind::Drop).times(u32::MAX));
    let r = env.run(&[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("GET /api/ucp/config-toml"),
        "{}",
        r.stderr
    );
    env.no_files();
}

#[test]
fn a_failure_leaves_a_previous_export_untouched() {
    let env = Env::new();
    std::fs::write(env.out(), "previous").unwrap();
    env.sim.inject(Fault::on("/roles", FaultKind::Status(403)));
    let r = env.run(&[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("MKE 3 refused the request (403)"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(env.out()).unwrap(), "previous");
    assert!(!env.toml().exists());
}

#[test]
fn a_wrong_password_is_refused() {
    let env = Env::new();
    let r = env.run_with_password(Some("not-the-password"), &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "Error: cannot reach MKE 3 at {}: MKE 3 refused the credentials (401)",
            env.sim.url()
        )
    );
    assert!(!r.stderr.contains("not-the-password"));
    env.no_files();
}

#[test]
fn no_password_and_no_terminal_is_a_usage_error() {
    let env = Env::new();
    let r = env.run_with_password(None, &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("MKE3_ADMIN_PASSWORD"), "{}", r.stderr);
    assert!(env.sim.requests().is_empty());
}

#[test]
fn tls_is_verified_unless_asked_not_to() {
    let env = Env::new();
    let r = env.run(&["--no-ca"]);
    // `--no-ca` is not a ferry flag: clap refuses it.
    assert_eq!(r.code, Some(2));

    let mut cmd = common::ferry();
    cmd.args(["mke3", "export", "--mke3-url", &env.sim.url()])
        .args(["--mke3-admin-username", "admin"])
        .arg("--out")
        .arg(env.out())
        .env("MKE3_ADMIN_PASSWORD", SimOptions::default().password);
    let r = run(&mut cmd);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("TLS:"), "{}", r.stderr);
    assert!(r.stderr.contains("certificate"), "{}", r.stderr);
    env.no_files();

    let r = env.run(&["--insecure-skip-tls-verify"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("WARN TLS verification of the MKE 3 API is OFF"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_urls_and_ca_files_are_usage_errors() {
    let env = Env::new();
    let mut cmd = common::ferry();
    cmd.args([
        "mke3",
        "export",
        "--mke3-url",
        &env.sim.url().replace("https", "http"),
    ])
    .args(["--mke3-admin-username", "admin"])
    .arg("--out")
    .arg(env.out())
    .env("MKE3_ADMIN_PASSWORD", "x");
    let r = run(&mut cmd);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("plain http is refused"), "{}", r.stderr);

    let bad_ca = env.dir.path().join("bad.pem");
    std::fs::write(&bad_ca, "not a certificate\n").unwrap();
    let mut cmd = common::ferry();
    cmd.args(["mke3", "export", "--mke3-url", &env.sim.url()])
        .args(["--mke3-admin-username", "admin"])
        .arg("--mke3-ca-cert")
        .arg(&bad_ca)
        .arg("--out")
        .arg(env.out())
        .env("MKE3_ADMIN_PASSWORD", "x");
    let r = run(&mut cmd);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("invalid CA certificate"), "{}", r.stderr);
    assert!(env.sim.requests().is_empty());
}

#[test]
fn an_output_directory_that_does_not_exist_fails_before_any_traffic() {
    let env = Env::new();
    let mut cmd = common::ferry();
    cmd.args(["mke3", "export", "--mke3-url", &env.sim.url()])
        .args(["--mke3-admin-username", "admin"])
        .args(["--out", "/nonexistent-dir-ferry/x.json"])
        .arg("--mke3-ca-cert")
        .arg(env.dir.path().join("ca.pem"))
        .env("MKE3_ADMIN_PASSWORD", "x");
    let r = run(&mut cmd);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(env.sim.requests().is_empty());
}

/// `ferry mke3 enable-kdd` against a simulator serving `config`.
fn kdd_env(config: &str) -> Env {
    let options = SimOptions {
        config_toml: config.into(),
        ..SimOptions::default()
    };
    let sim = Sim::start_standalone(generated_model(3, 1, 1, 2), options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), sim.ca_pem()).unwrap();
    Env { sim, dir }
}

fn kdd(env: &Env, extra: &[&str]) -> Run {
    let mut cmd = common::ferry();
    cmd.args(["mke3", "enable-kdd", "--mke3-url", &env.sim.url()])
        .args(["--mke3-admin-username", "admin"])
        .arg("--mke3-ca-cert")
        .arg(env.dir.path().join("ca.pem"))
        .args(extra)
        .env("MKE3_ADMIN_PASSWORD", SimOptions::default().password);
    let r = run(&mut cmd);
    assert!(!r.stdout.contains(&SimOptions::default().password));
    assert!(!r.stderr.contains(&SimOptions::default().password));
    r
}

fn puts(env: &Env) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT /api/ucp/config-toml"))
        .count()
}

const KDD_CONFIG: &str = "# the cluster's config\n[scheduling_configuration]\n  enable_admin_ucp_scheduling = false\n\n[cluster_config]\n  controller_port = 443\n  calico_kdd = false   # etcd today\n  calico_vxlan = false\n";

#[test]
fn enable_kdd_changes_that_one_key_once_confirmed_and_then_leaves_it_alone() {
    let env = kdd_env(KDD_CONFIG);
    // no terminal and no --yes: nothing changes
    let r = kdd(&env, &[]);
    r.assert_code(3);
    assert!(r.stderr.contains("cannot be undone"), "{}", r.stderr);
    assert!(
        r.stderr.contains("give --yes to go on; nothing changed"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("- calico_kdd = false   # etcd today")
            || r.stderr.contains("-   calico_kdd = false   # etcd today"),
        "{}",
        r.stderr
    );
    assert_eq!(env.sim.config_toml(), KDD_CONFIG);
    assert_eq!(puts(&env), 0);
    // confirmed
    let r = kdd(&env, &["--yes"]);
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("MKE 3 answered: Calico datastore upgrade from etcd to kdd successful"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("read back has cluster_config.calico_kdd = true"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("about 20 seconds per node"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.sim.config_toml(),
        KDD_CONFIG.replace("calico_kdd = false   # etcd", "calico_kdd = true   # etcd"),
        "every other byte as it was"
    );
    assert_eq!(puts(&env), 1);
    // already on KDD: left alone
    let r = kdd(&env, &["--yes"]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("already uses the Kubernetes datastore"),
        "{}",
        r.stdout
    );
    assert_eq!(puts(&env), 1);
}

#[test]
fn enable_kdd_leaves_the_config_as_it_was_when_the_server_fails_or_the_file_is_unusable() {
    let env = kdd_env(KDD_CONFIG);
    // the GET passes, the PUT fails every time
    env.sim.inject(
        Fault::on("/api/ucp/config-toml", FaultKind::Status(500))
            .skip(1)
            .times(u32::MAX),
    );
    let r = kdd(&env, &["--yes"]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("cannot change the config-toml of the MKE 3 cluster at")
            && r.stderr.contains("it is as it was"),
        "{}",
        r.stderr
    );
    assert_eq!(env.sim.config_toml(), KDD_CONFIG);
    // a config without the table: refused, nothing sent
    let env = kdd_env("[other]\n  a = 1\n");
    let r = kdd(&env, &["--yes"]);
    r.assert_code(3);
    assert!(
        r.stderr
            .contains("has no [cluster_config] table; nothing changed"),
        "{}",
        r.stderr
    );
    assert_eq!(puts(&env), 0);
}
