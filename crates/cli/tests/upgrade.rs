//! `ferry upgrade`, `ferry upgrade --resume` and `ferry rollback` through the CLI's library
//! entry point, with the in-memory fakes of `ferry-core` as backends; and the binary's way to
//! the real backends (its runs against them are in `tests/dry_run.rs`, `tests/real_upgrade.rs`
//! and `tests/real_chaos.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_cli::session::{BackendFactory, BackendRequest, Backends, Runtime};
use ferry_cli::{Output, exit};
use ferry_core::engine::{Hooks, Interrupts, NoHooks};
use ferry_testing::world::FIXTURE_ADMIN_PASSWORD as PW;
use ferry_testing::{FakeCluster, FakeConnector, FakeMke3, Fault, FaultAction, Fixture, World};

#[derive(Debug)]
struct Fakes(World);

#[async_trait::async_trait]
impl BackendFactory for Fakes {
    async fn backends(&self, r: BackendRequest) -> Result<Backends, String> {
        Ok(Backends {
            connector: Arc::new(FakeConnector::new(&self.0)),
            cluster: Arc::new(FakeCluster::new(&self.0)),
            mke3: Arc::new(FakeMke3::new(&self.0, &r.username, r.password.clone())),
        })
    }
}

/// The fakes, but the MKE 3 API is the real HTTPS client logged in to the in-process MKE 3
/// server, with the request's TLS options.
#[derive(Debug)]
struct RealMke3 {
    world: World,
    url: String,
}

#[async_trait::async_trait]
impl BackendFactory for RealMke3 {
    async fn backends(&self, r: BackendRequest) -> Result<Backends, String> {
        let mut options = ferry_mke3_api::Options::new(self.url.clone());
        options.insecure_skip_tls_verify = r.remote.insecure_skip_tls_verify;
        let client = ferry_mke3_api::Mke3Client::login(options, &r.username, &r.password)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Backends {
            connector: Arc::new(FakeConnector::new(&self.world)),
            cluster: Arc::new(FakeCluster::new(&self.world)),
            mke3: Arc::new(client),
        })
    }
}

struct Env {
    world: World,
    dir: tempfile::TempDir,
    vars: HashMap<String, String>,
    interrupts: Interrupts,
    hooks: Arc<dyn Hooks>,
    /// Run as on a terminal: with a progress line.
    progress: bool,
    /// Backends other than the fakes.
    backends: Option<Arc<dyn BackendFactory>>,
}

struct Ran {
    code: u8,
    stdout: String,
    stderr: String,
}

impl Env {
    fn new() -> Self {
        let world = Fixture::default().build();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.pem"), "not a real key\n").unwrap();
        let mut yaml = String::from("hosts:\n");
        for h in world.state().hosts.keys() {
            yaml.push_str(&format!(
                "  - address: {h}\n    port: 22\n    user: docker\n    keyPath: {}\n",
                dir.path().join("key.pem").display()
            ));
        }
        std::fs::write(dir.path().join("hosts.yaml"), yaml).unwrap();
        let mut vars = HashMap::new();
        vars.insert(
            "HOME".to_string(),
            dir.path().join("home").display().to_string(),
        );
        let interrupts = Interrupts::new();
        world.set_interrupts(interrupts.clone());
        Self {
            world,
            dir,
            vars,
            interrupts,
            hooks: Arc::new(NoHooks),
            progress: false,
            backends: None,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn runtime(&self) -> Runtime {
        let vars = self.vars.clone();
        Runtime {
            backends: self
                .backends
                .clone()
                .unwrap_or_else(|| Arc::new(Fakes(self.world.clone()))),
            interrupts: self.interrupts.clone(),
            listen_to_signals: false,
            env: Box::new(move |k| vars.get(k).cloned()),
            read_secret: Box::new(|| Err(std::io::Error::other("no terminal in tests"))),
            hooks: self.hooks.clone(),
            progress: self.progress,
        }
    }

    fn run(&self, args: &[&str]) -> Ran {
        let mut o = Vec::new();
        let mut e = Vec::new();
        let code = {
            let mut out = Output::new(&mut o, &mut e);
            let mut argv = vec!["ferry"];
            argv.extend(args);
            ferry_cli::run_with(argv, &mut out, &self.runtime())
        };
        Ran {
            code,
            stdout: String::from_utf8(o).unwrap(),
            stderr: String::from_utf8(e).unwrap(),
        }
    }

    fn upgrade(&self, extra: &[&str]) -> Ran {
        let hosts = self.path("hosts.yaml").display().to_string();
        let state = self.state().display().to_string();
        let mut args = vec![
            "upgrade",
            "--hosts-path",
            &hosts,
            "--mke3-admin-username",
            "admin",
            "--external-address",
            "mke.example.com",
            "--state-dir",
            &state,
            "--max-unavailable",
            "2",
            "--gateway-http-node-port",
            "33000",
            "--gateway-https-node-port",
            "33001",
        ];
        args.extend(extra);
        self.run(&args)
    }
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

#[test]
fn upgrades_with_the_password_from_the_environment_and_writes_the_config() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let config = env.path("mke4.yaml").display().to_string();
    let r = env.upgrade(&["--config-out", &config]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("Upgrade Summary\n---------------\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("MKE 3.7.15 was uninstalled from the cluster successfully.")
    );
    assert!(
        r.stderr
            .contains("INFO[0000] ==> Running phase: Connect to hosts"),
        "{}",
        r.stderr
    );
    let yaml = std::fs::read_to_string(env.path("mke4.yaml")).unwrap();
    assert!(yaml.contains("externalAddress: mke.example.com"), "{yaml}");
    // the run's picture, written beside its journal, named last
    let report = env.state().join("report.html");
    assert!(
        r.stderr
            .trim_end()
            .ends_with(&format!("Report: {}", report.display())),
        "{}",
        r.stderr
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<svg") && html.contains("completed"),
        "{html}"
    );
    // The password is nowhere: outputs, state directory, recorded commands and their data.
    assert!(!r.stdout.contains(PW) && !r.stderr.contains(PW));
    for (p, b) in files_under(env.dir.path()) {
        assert!(!String::from_utf8_lossy(&b).contains(PW), "{}", p.display());
    }
    for c in env.world.calls() {
        assert!(!c.args.iter().any(|a| a.contains(PW)), "{c:?}");
        assert!(
            !c.data
                .as_ref()
                .is_some_and(|d| String::from_utf8_lossy(d).contains(PW))
        );
    }
}

#[test]
fn the_password_flag_works_with_a_warning_and_a_wrong_password_changes_nothing() {
    let env = Env::new();
    let start = env.world.digest();
    let r = env.upgrade(&["--mke3-admin-password", "wrong-password", "--dry-run"]);
    assert_eq!(r.code, exit::FAILED, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("WARN --mke3-admin-password is visible to other users of this machine"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("MKE 3 refused the credentials (401)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("wrong-password"));
    assert_eq!(env.world.digest(), start);
    // No password at all and no terminal: a usage error before anything is contacted.
    let r = env.upgrade(&["--dry-run"]);
    assert_eq!(r.code, exit::USAGE, "{}", r.stderr);
    assert!(r.stderr.contains("MKE3_ADMIN_PASSWORD"), "{}", r.stderr);
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    let r = env.upgrade(&["--dry-run"]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(
        r.stdout.contains("Plan (dry run: nothing was changed)"),
        "{}",
        r.stdout
    );
    // a dry run writes no journal, so no report either
    assert!(!env.state().join("report.html").exists());
    assert!(!r.stderr.contains("Report: "), "{}", r.stderr);
    assert!(
        r.stdout.contains("mke.node.install-k0s on 10.0.1.25"),
        "{}",
        r.stdout
    );
    assert!(env.world.mutating_calls().is_empty());
    assert_eq!(env.world.digest(), start);
    let r = env.upgrade(&["--dry-run", "-o", "json", "--log-format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["plan"]["flow"], "mke3-to-mke4");
    for line in r.stderr.lines() {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(l["level"].is_string() && l["message"].is_string(), "{line}");
    }
}

#[test]
fn a_failure_rolls_back_with_the_documented_log_and_exit_code_4() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    env.world.inject(Fault::at_step(
        "mke.node.start-k0s@host:10.0.0.12",
        1,
        FaultAction::Fail,
    ));
    let r = env.upgrade(&[]);
    assert_eq!(r.code, exit::ROLLED_BACK, "{}", r.stderr);
    assert_eq!(env.world.digest(), start);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| {
            l.len() > 11 && (l.contains("ollback") || l.starts_with("FATA") || l.contains("etcd"))
        })
        .map(|l| &l[..4])
        .collect();
    assert!(!lines.is_empty());
    let msgs: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, m)| m))
        .collect();
    let pos = |m: &str| {
        msgs.iter()
            .position(|x| x.starts_with(m))
            .unwrap_or_else(|| panic!("no line {m:?} in\n{}", r.stderr))
    };
    let order = [
        pos(
            "Initiating rollback because of upgrade failure. upgradeErr = failed to run step mke.node.start-k0s@host:10.0.0.12",
        ),
        pos("Initiating rollback of MKE to version: 3.7.15"),
        pos("Step 1 of 2: [Rollback Upgrade Tasks]"),
        pos("Resetting k0s on 10.0.0.12 ..."),
        pos("Waiting for etcd to be healthy ..."),
        pos("[Rollback Upgrade Tasks] Completed"),
        pos("Step 2 of 2: [Rollback Pre Upgrade Tasks]"),
        pos("[Rollback Pre Upgrade Tasks] Completed"),
        pos("Rollback to MKE version 3.7.15 completed successfully ..."),
        pos("Upgrade failed due to error: failed to run step mke.node.start-k0s@host:10.0.0.12"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?}\n{}",
        r.stderr
    );
    assert!(r.stderr.contains("\nWARN["), "{}", r.stderr);
    assert!(r.stderr.contains("\nFATA["), "{}", r.stderr);
}

/// A fake world whose next `ferry upgrade` gets Ctrl-C twice during an install (calls take a
/// moment, so that the second comes while the step still runs), and its digest before.
fn interrupted_twice_at_an_install() -> (Env, String) {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    env.world.set_latency(std::time::Duration::from_millis(1));
    for nth in [1, 2] {
        env.world.inject(Fault::at_step(
            "mke.node.install-k0s@host:10.0.1.22",
            nth,
            FaultAction::Interrupt,
        ));
    }
    (env, start)
}

#[test]
fn interrupted_twice_exits_130_then_resume_or_rollback_from_the_journal() {
    for how in ["upgrade --resume", "resume", "rollback"] {
        let (mut env, start) = interrupted_twice_at_an_install();
        let r = env.upgrade(&[]);
        assert_eq!(r.code, exit::INTERRUPTED, "{}", r.stderr);
        assert!(
            r.stderr.contains("Interrupted again: stopping now."),
            "{}",
            r.stderr
        );
        // A second `ferry upgrade` is refused: the journal holds an unfinished run.
        let again = env.upgrade(&[]);
        assert_eq!(again.code, exit::FAILED);
        assert!(
            again.stderr.contains("an unfinished run"),
            "{}",
            again.stderr
        );
        env.interrupts = Interrupts::new();
        env.world.set_interrupts(env.interrupts.clone());
        let state = env.state().display().to_string();
        if how != "rollback" {
            let mut argv: Vec<&str> = how.split(' ').collect();
            argv.extend(["--state-dir", &state]);
            let r = env.run(&argv);
            assert_eq!(r.code, exit::OK, "{how}: {}", r.stderr);
            assert!(r.stdout.contains("Upgrade Summary"), "{}", r.stdout);
            assert!(r.stderr.contains("Resuming run"), "{}", r.stderr);
        } else {
            let r = env.run(&["rollback", "--state-dir", &state]);
            assert_eq!(r.code, exit::OK, "{}", r.stderr);
            assert_eq!(env.world.digest(), start);
            // Nothing is left to roll back.
            let r = env.run(&["rollback", "--state-dir", &state]);
            assert_eq!(r.code, exit::FAILED);
            assert!(r.stderr.contains("nothing to roll back"), "{}", r.stderr);
        }
    }
}

#[test]
fn max_unavailable_is_never_zero() {
    let env = Env::new();
    let hosts = env.path("hosts.yaml").display().to_string();
    let r = env.run(&[
        "upgrade",
        "--hosts-path",
        &hosts,
        "--mke3-admin-username",
        "admin",
        "--external-address",
        "mke.example.com",
        "--max-unavailable",
        "0",
    ]);
    assert_eq!(r.code, exit::USAGE);
    assert!(r.stderr.contains("must be at least 1"), "{}", r.stderr);
}

#[test]
fn the_binary_goes_on_to_the_real_apis_for_a_run_a_dry_run_a_resume_and_a_rollback() {
    let env = Env::new();
    let upgrade = |extra: &[&str]| {
        let mut c = common::ferry();
        c.env("MKE3_ADMIN_PASSWORD", "whatever").args([
            "upgrade",
            "--hosts-path",
            env.path("hosts.yaml").to_str().unwrap(),
            "--mke3-admin-username",
            "admin",
            "--external-address",
            "mke.example.com",
            "--state-dir",
            env.state().to_str().unwrap(),
            "--mke3-url",
            "https://127.0.0.1:1",
            "--gateway-http-node-port",
            "33000",
            "--gateway-https-node-port",
            "33001",
        ]);
        c.args(extra);
        c.output().unwrap()
    };
    // A run and a dry run both go on to the MKE 3 API, and say so when it is not there;
    // nothing is journaled.
    for extra in [&[][..], &["--dry-run"][..]] {
        let out = upgrade(extra);
        assert_eq!(out.status.code(), Some(i32::from(exit::FAILED)));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot log in to MKE 3 at https://127.0.0.1:1"),
            "{extra:?}: {err}"
        );
        assert!(!env.state().join("journal.jsonl").exists());
    }

    // A run interrupted twice (through the library, on the fakes) leaves its journal; the
    // binary's resume and rollback go on to the MKE 3 API too, and a failed login changes
    // nothing.
    let (env, _) = interrupted_twice_at_an_install();
    assert_eq!(env.upgrade(&[]).code, exit::INTERRUPTED);
    let journal = std::fs::read(env.state().join("journal.jsonl")).unwrap();
    let state = env.state().display().to_string();
    for verb in ["resume", "rollback"] {
        let out = common::ferry()
            .env("MKE3_ADMIN_PASSWORD", "whatever")
            .args([
                verb,
                "--state-dir",
                &state,
                "--mke3-url",
                "https://127.0.0.1:1",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(i32::from(exit::FAILED)), "{err}");
        assert!(
            err.contains("cannot log in to MKE 3 at https://127.0.0.1:1"),
            "{verb}: {err}"
        );
    }
    assert_eq!(
        std::fs::read(env.state().join("journal.jsonl")).unwrap(),
        journal,
        "the journal was changed"
    );
}

#[test]
fn a_second_run_is_refused_naming_the_owner_of_the_lock() {
    use ferry_core::lock::{LockOwner, RunLock};
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    // Another ferry run holds the state directory.
    let other = LockOwner {
        owner: "alice@admin-box".into(),
        pid: 4242,
        run_id: "1790000000-00001".into(),
        since_unix: 1_790_000_000,
    };
    let held = RunLock::acquire(&env.state(), &other).unwrap();
    let r = env.upgrade(&[]);
    assert_eq!(r.code, exit::FAILED, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "another ferry run holds the lock on {}: alice@admin-box (pid 4242, run 1790000000-00001)"
                .replace("{}", &env.state().join("lock").display().to_string())
                .as_str()
        ),
        "{}",
        r.stderr
    );
    assert!(env.world.mutating_calls().is_empty());
    assert_eq!(env.world.digest(), start);
    drop(held);
    assert_eq!(env.upgrade(&[]).code, exit::OK);
}

#[test]
fn the_warning_of_insecure_skip_tls_verify_reaches_the_output() {
    let sim = ferry_mke3_sim::Sim::start_standalone(
        ferry_mke3_sim::generated_model(3, 1, 1, 2),
        ferry_mke3_sim::SimOptions::default(),
    )
    .unwrap();
    let mut env = Env::new();
    env.vars.insert(
        "MKE3_ADMIN_PASSWORD".into(),
        ferry_mke3_sim::SimOptions::default().password,
    );
    env.backends = Some(Arc::new(RealMke3 {
        world: env.world.clone(),
        url: sim.url(),
    }));
    let run = |extra: &[&str]| {
        let mut argv = vec!["--dry-run"];
        argv.extend(extra);
        let r = env.upgrade(&argv);
        (r.code, r.stderr)
    };
    // The sim's certificate is its own CA's: without the flag, TLS refuses it, and says so.
    let (code, stderr) = run(&[]);
    assert_eq!(code, exit::FAILED, "{stderr}");
    assert!(
        !stderr.contains("TLS verification of the MKE 3 API is OFF"),
        "{stderr}"
    );
    // With it, the client's warning (a `tracing` event of ferry-mke3-api) is printed as a log line.
    let (code, stderr) = run(&["--insecure-skip-tls-verify"]);
    let line = stderr
        .lines()
        .find(|l| l.contains("TLS verification of the MKE 3 API is OFF"))
        .unwrap_or_else(|| panic!("no TLS warning (exit {code}):\n{stderr}"));
    assert!(line.starts_with("WARN["), "{line}");
    assert!(line.contains("--insecure-skip-tls-verify"), "{line}");
}

#[test]
fn a_journal_of_a_flow_this_ferry_does_not_know_is_refused_and_left_alone() {
    // an unknown flow, and a known one whose journaled inputs are not its own
    for (flow, want) in [
        (
            "no-such-flow",
            "written by flow \"no-such-flow\", which this ferry does not know",
        ),
        (
            "k0s-upgrade",
            "does not hold the inputs of flow k0s-upgrade",
        ),
    ] {
        let env = Env::new();
        std::fs::create_dir_all(env.state()).unwrap();
        let journal = env.state().join("journal.jsonl");
        let header = format!(
            r#"{{"v":2,"seq":1,"unix":0,"type":"header","run_id":"r9","flow":"{flow}","tool":"ferry 9","inputs":{{}},"hosts":[],"plan":{{"flow":"{flow}","phases":[]}}}}"#
        );
        std::fs::write(&journal, format!("{header}\n")).unwrap();
        let state = env.state().display().to_string();
        for cmd in ["resume", "rollback"] {
            let r = env.run(&[cmd, "--state-dir", &state]);
            assert_eq!(r.code, exit::FAILED, "{cmd}: {}", r.stderr);
            assert!(r.stderr.contains(want), "{cmd}: {}", r.stderr);
        }
        assert_eq!(
            std::fs::read_to_string(&journal).unwrap(),
            format!("{header}\n")
        );
        assert!(env.world.calls().is_empty());
    }
}

#[test]
fn on_a_terminal_a_progress_line_shows_the_phase_the_hosts_and_the_window() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    env.progress = true;
    let r = env.upgrade(&[]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    let status: Vec<&str> = r
        .stderr
        .split("\r\x1b[2K")
        .filter(|s| s.starts_with('['))
        .collect();
    assert!(
        status.iter().any(|s| s.starts_with("[Upgrade Tasks]")
            && s.contains(", window ")
            && s.contains("/2: 10.0.1.")),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|s| s.starts_with("[Pre Upgrade Tasks]") && s.contains(" steps")),
        "{status:?}"
    );
    // Every log line still comes whole, on its own line, after the status line is erased.
    assert!(r.stderr.contains("\r\x1b[2KINFO["), "{}", r.stderr);
    // Without a terminal (or with JSON logs), no status line at all.
    env.progress = false;
    let env2 = {
        let mut e = Env::new();
        e.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
        e
    };
    let r = env2.upgrade(&[]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(!r.stderr.contains('\r'), "{}", r.stderr);
}

#[test]
fn a_registry_ca_file_that_is_not_pem_is_refused_before_anything_is_contacted() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    let bad = env.path("registry-ca.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let bad = bad.display().to_string();
    let r = env.upgrade(&["--chart-registry-ca-file", &bad]);
    assert_eq!(r.code, exit::USAGE, "{}", r.stderr);
    assert!(
        r.stderr.contains("registry-ca.pem: not a PEM certificate"),
        "{}",
        r.stderr
    );
    assert_eq!(env.world.digest(), start);
    assert!(env.world.calls().is_empty(), "{:?}", env.world.calls());
}

#[test]
fn an_upgrade_to_4_1_5_needs_the_gateway_node_ports_unless_ingress_nginx_goes() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    let hosts = env.path("hosts.yaml").display().to_string();
    let base = [
        "upgrade",
        "--hosts-path",
        &hosts,
        "--mke3-admin-username",
        "admin",
        "--external-address",
        "mke.example.com:33001",
        "--dry-run",
    ];
    let r = env.run(&base);
    assert_eq!(r.code, exit::USAGE, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("needs --gateway-http-node-port and --gateway-https-node-port")
            && r.stderr
                .contains("missing: --gateway-http-node-port, --gateway-https-node-port"),
        "{}",
        r.stderr
    );
    assert_eq!(env.world.digest(), start);
    let mut with = base.to_vec();
    with.push("--remove-ingress-nginx");
    let r = env.run(&with);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
}

/// The MKE 3 configuration of the fake cluster with secrets in it: an LDAP bind password and an
/// OIDC client secret.
fn with_secrets(env: &Env) {
    let mut toml = ferry_testing::world::fixture_config_toml(true);
    toml.push_str(
        "\n[auth.external_identity_provider]\n  client_secret = \"Oidc-Secret-77\"\n\n[auth.ldap]\n  server_url = \"ldaps://ldap.example.com\"\n  reader_dn = \"cn=reader\"\n  reader_password = \"Ldap-Secret-88\"\n",
    );
    env.world.state().mke3.config_toml = toml;
}

#[test]
fn a_dry_run_with_output_writes_the_results_folder_and_changes_nothing() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    with_secrets(&env);
    let start = env.world.digest();
    let out = env.path("results");
    let r = env.upgrade(&["--dry-run", &format!("--output={}", out.display())]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(env.world.mutating_calls().is_empty());
    assert_eq!(env.world.digest(), start);
    let folder = out.join("mke-upgrade");
    assert!(
        r.stderr.contains(&format!("Results: {}", folder.display())),
        "{}",
        r.stderr
    );
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cluster-checks.json",
            "cluster-checks.txt",
            "compatibility.json",
            "compatibility.sorted.toml",
            "compatibility.txt",
            "mke3.toml",
            "mke4.yaml",
            "node-checks.json",
            "node-checks.txt",
            "summary.json",
            "summary.txt",
            "version-checks.json",
            "version-checks.txt",
        ]
    );
    let read = |f: &str| std::fs::read_to_string(folder.join(f)).unwrap();
    // Nothing in the folder holds a secret, yet the settings are all there.
    for (path, bytes) in files_under(&folder) {
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["Oidc-Secret-77", "Ldap-Secret-88", PW] {
            assert!(!text.contains(secret), "{} holds {secret}", path.display());
        }
    }
    assert!(read("mke3.toml").contains("reader_password = \"<redacted>\""));
    assert!(read("mke3.toml").contains("ldaps://ldap.example.com"));
    let mke4: serde_yaml::Value = serde_yaml::from_str(&read("mke4.yaml")).unwrap();
    assert_eq!(
        mke4["spec"]["apiServer"]["externalAddress"],
        "mke.example.com"
    );
    assert!(
        read("version-checks.txt").contains("mke3-version (cluster): MKE 3.7.15 can be upgraded")
    );
    assert!(
        read("node-checks.txt").contains("cpu-cores ("),
        "{}",
        read("node-checks.txt")
    );
    assert!(read("compatibility.txt").contains("MKE3->MKE4 Compatibility Checks"));
    let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
    assert_eq!(summary["outcome"], "dry-run");
    assert_eq!(summary["checksPassed"], true);
    assert_eq!(summary["plan"]["flow"], "mke3-to-mke4");
    assert!(read("summary.txt").starts_with("Outcome: dry-run\nDry run: nothing was changed."));
    // a dry run keeps nothing else: no journal, no lock
    assert!(!env.state().join("journal.jsonl").exists());

    // `--output` alone puts the folder beside the journal, in the state directory.
    let r = env.upgrade(&["--dry-run", "--output"]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(env.state().join("mke-upgrade/summary.json").is_file());
}

#[test]
fn a_real_run_with_output_adds_the_upgrade_summary_and_a_failed_one_says_how_it_ended() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let out = env.path("results");
    let arg = format!("--output={}", out.display());
    let r = env.upgrade(&[&arg]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    let folder = out.join("mke-upgrade");
    let summary = std::fs::read_to_string(folder.join("upgrade-summary.txt")).unwrap();
    assert!(summary.starts_with("Upgrade Summary\n"), "{summary}");
    assert!(r.stdout.contains(&summary), "{}", r.stdout);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["outcome"], "completed");
    assert_eq!(s["upgradeSummary"], summary);

    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    env.world.inject(Fault::at_step(
        "mke.node.start-k0s@host:10.0.0.12",
        1,
        FaultAction::Fail,
    ));
    let out = env.path("results");
    let r = env.upgrade(&[&format!("--output={}", out.display())]);
    assert_eq!(r.code, exit::ROLLED_BACK, "{}", r.stderr);
    let folder = out.join("mke-upgrade");
    assert!(!folder.join("upgrade-summary.txt").exists());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["outcome"], "rolled-back");
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .starts_with("failed to run step mke.node.start-k0s@host:10.0.0.12"),
        "{s}"
    );
}

#[test]
fn bad_deadlines_and_results_folders_are_refused_before_anything_is_contacted() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    let file = env.path("a-file");
    std::fs::write(&file, "keep me\n").unwrap();
    let under_file = format!("--output={}", file.join("sub").display());
    let on_file = format!("--output={}", file.display());
    let cases: [(&[&str], &str); 7] = [
        (
            &["--upgrade-timeout-minutes", "0"],
            "--upgrade-timeout-minutes <MINUTES>",
        ),
        (&["--timeout-minutes", "0"], "--timeout-minutes <MINUTES>"),
        (&["--timeout-minutes", "ten"], "invalid digit"),
        (
            &["--upgrade-timeout-minutes", "10081"],
            "10081 is not in 1..=10080",
        ),
        (&[&on_file], "is not a directory"),
        (&[&under_file], "is not a directory"),
        // the folder flag takes its directory after `=` only (`--output DIR` would be ambiguous
        // with a positional argument)
        (
            &["--output", "somewhere"],
            "unexpected argument 'somewhere'",
        ),
    ];
    for (extra, message) in cases {
        let r = env.upgrade(extra);
        assert_eq!(r.code, exit::USAGE, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{extra:?}: {}", r.stderr);
        assert!(env.world.calls().is_empty(), "{extra:?}");
    }
    assert_eq!(env.world.digest(), start);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me\n");
    assert!(!env.state().exists());
}

#[test]
fn the_deadlines_are_journaled_with_the_inputs() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let r = env.upgrade(&["--timeout-minutes", "90", "--upgrade-timeout-minutes", "45"]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    let journal = std::fs::read_to_string(env.state().join("journal.jsonl")).unwrap();
    let header: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    let inputs = &header["inputs"]["inputs"];
    assert_eq!(inputs["timeoutMinutes"], 90, "{header}");
    assert_eq!(inputs["upgradeTimeoutMinutes"], 45, "{header}");
}

/// The fake cluster's MKE 3 configuration with `unmanaged_cni = true`, and port 8080 open on
/// the hosts in `listening`.
fn unmanaged_cni(env: &Env, listening: &[String]) {
    let toml = ferry_testing::world::fixture_config_toml(true).replace(
        "calico_kdd = true",
        "calico_kdd = true\n  unmanaged_cni = true",
    );
    let mut s = env.world.state();
    s.mke3.config_toml = toml;
    for h in listening {
        s.hosts.get_mut(h).unwrap().listeners.insert(8080);
    }
}

#[test]
fn an_unmanaged_cni_is_checked_on_the_first_two_managers_and_workers_and_rolls_back_when_down() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let hosts: Vec<String> = env.world.state().hosts.keys().cloned().collect();
    unmanaged_cni(&env, &hosts);
    let r = env.upgrade(&["--dry-run", "--cni-check-port", "8080"]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(r.stdout.contains("mke.cni-check"), "{}", r.stdout);
    let r = env.upgrade(&["--cni-check-port", "8080", "--cni-check-timeout", "1"]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(r.stderr.contains("CNI check passed"), "{}", r.stderr);
    let checked: Vec<String> = env
        .world
        .calls()
        .iter()
        .filter(|c| format!("{c:?}").contains("/dev/tcp/"))
        .map(|c| format!("{c:?}"))
        .collect();
    // 4 hosts, each reaching the 3 others
    assert_eq!(checked.len(), 12, "{checked:#?}");

    // The port is closed on one checked worker: after --cni-check-timeout the run rolls back.
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    let start = env.world.digest();
    let workers: Vec<String> = {
        let s = env.world.state();
        s.hosts
            .keys()
            .filter(|h| !s.cluster.managers.contains(*h))
            .cloned()
            .collect()
    };
    let open: Vec<String> = {
        let s = env.world.state();
        s.hosts
            .keys()
            .filter(|h| *h != &workers[0])
            .cloned()
            .collect()
    };
    unmanaged_cni(&env, &open);
    let start_cni = env.world.digest();
    assert_ne!(start, start_cni);
    let r = env.upgrade(&["--cni-check-port", "8080", "--cni-check-timeout", "1"]);
    assert_eq!(r.code, exit::ROLLED_BACK, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the CNI is not ready after 1 minute(s) (--cni-check-timeout): ")
            && r.stderr
                .contains(&format!("cannot reach {}:8080", workers[0])),
        "{}",
        r.stderr
    );
    assert_eq!(env.world.digest(), start_cni);
}

#[test]
fn bad_cni_check_values_are_refused_before_anything_is_contacted() {
    let mut env = Env::new();
    env.vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
    for (extra, message) in [
        (["--cni-check-port", "0"], "0 is not in 1..=65535"),
        (["--cni-check-port", "70000"], "70000 is not in 1..=65535"),
        (["--cni-check-timeout", "0"], "0 is not in 1..=1440"),
    ] {
        let r = env.upgrade(&extra);
        assert_eq!(r.code, exit::USAGE, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{extra:?}: {}", r.stderr);
        assert!(env.world.calls().is_empty(), "{extra:?}");
    }
}
