//! The SSH backend against the testbed's real sshd hosts: core's HostExec conformance suite, plus
//! what only SSH has (host key policies, bastions, facts, log redaction).
//!
//! Needs the testbed (root): `sudo scripts/testbed up 5 && eval "$(sudo scripts/testbed env)"`,
//! or simply `scripts/test`. Without it these tests FAIL and say so; they never pass silently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ferry_core::hosts::{Bastion, KnownHostsPolicy};
use ferry_core::{Cmd, Connector, ExecError, HostExec, HostSpec};
use ferry_ssh_exec::{SshConnector, SshOptions, read_hosts_file};
use ferry_testing::conformance::host_exec::{FaultControl, run_suite};

const NO_SUDO_USER: &str = "ferrynosudo";

/// Tests in this file share the hosts, and some break them: one at a time, each on its own
/// runtime.
fn serial<F: std::future::Future>(test: F) -> F::Output {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard: MutexGuard<'_, ()> = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The running testbed, or a loud failure that says how to start it.
fn testbed_dir() -> PathBuf {
    let how = "start it with `sudo scripts/testbed up 5 && eval \"$(sudo scripts/testbed env)\"`, or run the whole suite with `scripts/test` (as root)";
    let Some(dir) = std::env::var_os("FERRY_TESTBED_DIR") else {
        panic!(
            "SSH TESTBED MISSING: FERRY_TESTBED_DIR is not set, so the SSH conformance tests cannot run: {how}"
        );
    };
    let dir = PathBuf::from(dir);
    for f in ["hosts.yaml", "known_hosts", "id_ed25519", "ssh_config"] {
        assert!(
            dir.join(f).is_file(),
            "SSH TESTBED DOWN: {} has no {f} (FERRY_TESTBED_DIR is set but the testbed is not up): {how}",
            dir.display()
        );
    }
    dir
}

/// An ssh_config with only the fast key exchange the testbed's own config uses (not that
/// config itself: its IdentityFile would be offered on top of a host's keyPath).
fn kex_config() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let p = std::env::temp_dir().join(format!(
            "ferry-conformance-ssh_config-{}",
            std::process::id()
        ));
        std::fs::write(&p, "KexAlgorithms curve25519-sha256\n").unwrap();
        p
    })
    .clone()
}

fn options(dir: &Path) -> SshOptions {
    SshOptions {
        known_hosts_file: Some(dir.join("known_hosts")),
        ssh_config: Some(kex_config()),
        connect_timeout: Duration::from_secs(3),
        connect_attempts: 2,
        retry_backoff: Duration::from_millis(200),
        server_alive_interval: Duration::from_secs(1),
        server_alive_count_max: 3,
        ..SshOptions::default()
    }
}

fn testbed_cmd(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(repo_root().join("scripts/testbed"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("scripts/testbed {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/testbed {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

struct Testbed {
    dir: PathBuf,
    hosts: Vec<HostSpec>,
    connector: SshConnector,
    scratch: tempfile::TempDir,
    no_sudo_ready: tokio::sync::OnceCell<()>,
}

impl Testbed {
    async fn new() -> Self {
        let dir = testbed_dir();
        let hosts = read_hosts_file(&dir.join("hosts.yaml")).unwrap();
        assert!(
            hosts.len() >= 5,
            "the conformance suite wants 5 testbed hosts, found {}: `sudo scripts/testbed up 5`",
            hosts.len()
        );
        let connector = SshConnector::new(options(&dir)).unwrap();
        // The testbed is really there: a loud failure otherwise.
        if let Err(e) = connector.connect(&hosts[0]).await {
            panic!(
                "SSH TESTBED DOWN: cannot reach {}: {e}; start it with `sudo scripts/testbed up 5` or run `scripts/test`",
                hosts[0].address
            );
        }
        Self {
            dir,
            hosts,
            connector,
            scratch: tempfile::tempdir().unwrap(),
            no_sudo_ready: tokio::sync::OnceCell::new(),
        }
    }

    fn name(i: usize) -> String {
        format!("h{}", i + 1)
    }

    fn root_spec(&self, i: usize) -> HostSpec {
        HostSpec {
            user: "root".into(),
            ..self.hosts[i].clone()
        }
    }

    /// Makes a user without sudo on every host (key login with the testbed key).
    async fn ensure_no_sudo_user(&self) {
        self.no_sudo_ready
            .get_or_init(|| async {
                for i in 0..self.hosts.len() {
                    let root = self.connector.connect(&self.root_spec(i)).await.unwrap();
                    let home = format!("/home/{NO_SUDO_USER}");
                    let steps: Vec<Cmd> = vec![
                        Cmd::new("useradd").args(["-m", "-s", "/bin/sh", NO_SUDO_USER]),
                        Cmd::new("usermod").args(["-p", "*", NO_SUDO_USER]),
                        Cmd::new("mkdir").args(["-p", &format!("{home}/.ssh")]),
                        Cmd::new("cp").args([
                            "/root/.ssh/authorized_keys",
                            &format!("{home}/.ssh/authorized_keys"),
                        ]),
                        Cmd::new("chown").args([
                            "-R",
                            &format!("{NO_SUDO_USER}:"),
                            &format!("{home}/.ssh"),
                        ]),
                    ];
                    for (n, c) in steps.iter().enumerate() {
                        let out = root.run(c).await.unwrap();
                        // useradd exits 9 when the user exists.
                        assert!(
                            out.success() || (n == 0 && out.code == Some(9)),
                            "{c}: {out:?}"
                        );
                    }
                    root.close().await.unwrap();
                }
            })
            .await;
    }

    async fn wait_reachable(&self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.connector.connect(&self.hosts[i]).await {
                Ok(e) => {
                    let _ = e.close().await;
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => return Err(format!("not back: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

#[async_trait::async_trait]
impl FaultControl for Testbed {
    fn host_count(&self) -> usize {
        self.hosts.len()
    }

    async fn connect(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        self.connector.connect(&self.hosts[i]).await
    }

    async fn connect_without_sudo(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        self.ensure_no_sudo_user().await;
        let spec = HostSpec {
            user: NO_SUDO_USER.into(),
            ..self.hosts[i].clone()
        };
        self.connector.connect(&spec).await
    }

    async fn connect_wrong_host_key(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        // known_hosts where host i's line carries the key of another host.
        let kh = std::fs::read_to_string(self.dir.join("known_hosts")).unwrap();
        let lines: Vec<&str> = kh.lines().collect();
        let other_key = lines[(i + 1) % lines.len()].split_once(' ').unwrap().1;
        let tampered: String = lines
            .iter()
            .enumerate()
            .map(|(n, l)| {
                if n == i {
                    format!("{} {other_key}\n", l.split_once(' ').unwrap().0)
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let path = self.scratch.path().join(format!("known_hosts.wrong-{i}"));
        std::fs::write(&path, tampered).unwrap();
        let c = SshConnector::new(SshOptions {
            known_hosts_file: Some(path),
            ..options(&self.dir)
        })
        .unwrap();
        c.connect(&self.hosts[i]).await
    }

    async fn connect_bad_credentials(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        let key = self.scratch.path().join("unauthorized_key");
        if !key.exists() {
            let st = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let spec = HostSpec {
            key_path: Some(key.to_string_lossy().into_owned()),
            ..self.hosts[i].clone()
        };
        self.connector.connect(&spec).await
    }

    async fn kill(&self, i: usize) -> Result<(), String> {
        testbed_cmd(&["kill", &Self::name(i)])
    }

    async fn cut(&self, i: usize) -> Result<(), String> {
        testbed_cmd(&["cut", &Self::name(i)])
    }

    async fn restore(&self, i: usize) -> Result<(), String> {
        testbed_cmd(&["start", &Self::name(i)])?;
        testbed_cmd(&["uncut", &Self::name(i)])?;
        self.wait_reachable(i).await
    }

    fn cut_detection(&self) -> Duration {
        // ServerAliveInterval 1 s x ServerAliveCountMax 3, plus slack for a loaded machine.
        Duration::from_secs(15)
    }

    fn connect_failure_within(&self) -> Duration {
        // 2 attempts of ConnectTimeout 3 s, 200 ms backoff, plus slack.
        Duration::from_secs(15)
    }
}

#[test]
fn host_exec_conformance_on_the_testbed() {
    serial(async {
        let tb = Testbed::new().await;
        let report = run_suite(&tb).await;
        println!("{report}");
        // Whatever happened, leave every host up.
        for i in 0..tb.hosts.len() {
            let _ = tb.restore(i).await;
        }
        report.assert_all_passed();
        assert!(report.cases.len() >= 29, "{report}");
    });
}

fn fresh_known_hosts(tb: &Testbed, name: &str, content: &str) -> PathBuf {
    let p = tb.scratch.path().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn host_key_policies() {
    serial(async {
        let tb = Testbed::new().await;
        let h = &tb.hosts[1];
        let with = |kh: PathBuf, policy: Option<KnownHostsPolicy>, allow_off: bool| {
            SshConnector::new(SshOptions {
                known_hosts_file: Some(kh),
                known_hosts_policy: policy,
                allow_no_host_key_check: allow_off,
                ..options(&tb.dir)
            })
            .unwrap()
        };

        // strict (the default) with an unknown host: refused, naming the host.
        let empty = fresh_known_hosts(&tb, "kh-empty", "");
        let e = with(empty.clone(), None, false)
            .connect(h)
            .await
            .unwrap_err();
        assert!(matches!(e, ExecError::HostKey { .. }), "{e}");
        assert!(
            e.to_string().starts_with(&format!(
                "{}: host key verification failed: the host key is not in known_hosts",
                h.address
            )),
            "{e}"
        );

        // accept-new: connects and records the key...
        let c = with(empty.clone(), Some(KnownHostsPolicy::AcceptNew), false);
        let x = c.connect(h).await.unwrap();
        assert!(x.run(&Cmd::new("true")).await.unwrap().success());
        x.close().await.unwrap();
        let recorded = std::fs::read_to_string(&empty).unwrap();
        assert!(recorded.contains("ssh-ed25519"), "{recorded:?}");
        // ...which strict then accepts.
        let x = with(empty.clone(), None, false).connect(h).await.unwrap();
        x.close().await.unwrap();

        // A changed key is refused even with accept-new, and the error says it CHANGED.
        let kh = std::fs::read_to_string(tb.dir.join("known_hosts")).unwrap();
        let other_key = kh.lines().next().unwrap().split_once(' ').unwrap().1;
        let changed = fresh_known_hosts(&tb, "kh-changed", &format!("{} {other_key}\n", h.address));
        for policy in [None, Some(KnownHostsPolicy::AcceptNew)] {
            let e = with(changed.clone(), policy, false)
                .connect(h)
                .await
                .unwrap_err();
            assert!(matches!(e, ExecError::HostKey { .. }), "{e}");
            assert!(e.to_string().contains("CHANGED"), "{e}");
            assert_eq!(e.host(), h.address);
        }

        // off: refused without the explicit flag, works with it, and writes nothing.
        let e = with(changed.clone(), Some(KnownHostsPolicy::Off), false)
            .connect(h)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("--insecure-no-host-key-check"),
            "{e}"
        );
        let x = with(changed.clone(), Some(KnownHostsPolicy::Off), true)
            .connect(h)
            .await
            .unwrap();
        assert!(x.run(&Cmd::new("true")).await.unwrap().success());
        x.close().await.unwrap();
    });
}

#[test]
fn through_a_bastion() {
    serial(async {
        let tb = Testbed::new().await;
        // h1 is the jump host for h2 (hosts reach each other on the testbed network).
        let jump = &tb.hosts[0];
        let spec = HostSpec {
            bastion: Some(Bastion {
                address: jump.address.clone(),
                port: jump.port,
                user: "root".into(),
                key_path: jump.key_path.clone(),
            }),
            ..tb.hosts[1].clone()
        };
        let x = tb.connector.connect(&spec).await.unwrap();
        let out = x.run(&Cmd::new("uname").arg("-n")).await.unwrap();
        assert_eq!(out.stdout_text().trim(), "h2");
        x.close().await.unwrap();
    });
}

#[test]
fn facts_of_every_host() {
    serial(async {
        let tb = Testbed::new().await;
        for (i, spec) in tb.hosts.iter().enumerate() {
            let x = tb.connector.connect(spec).await.unwrap();
            let f = ferry_core::facts::gather(&x, spec, ferry_core::facts::DEFAULT_DATA_DIR)
                .await
                .unwrap();
            x.close().await.unwrap();
            assert_eq!(f.hostname, format!("h{}", i + 1));
            assert_eq!(f.os.id, "debian");
            assert_eq!(f.os.version_id, "12");
            assert!(!f.arch.is_empty());
            assert!(f.cpus >= 1);
            assert!(f.memory_bytes > 1 << 20);
            assert_eq!(f.private_interface.as_deref(), Some("eth0"));
            assert_eq!(f.private_address.as_deref(), Some(spec.address.as_str()));
            assert!(f.root_disk.available_bytes > 0);
            // /var/lib/k0s does not exist on a fresh host: measured on its nearest parent.
            assert_eq!(f.data_dir_disk.path, "/var/lib/k0s");
            assert_eq!(f.data_dir_disk.measured, "/var/lib");
            assert!(f.sudo, "{f:?}");
            assert!(f.notes.is_empty(), "{:?}", f.notes);
        }
    });
}

/// Captures every log line of the backend (all levels) while it runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURE: OnceLock<Captured> = OnceLock::new();

#[test]
fn secrets_never_reach_a_log_line() {
    serial(async {
        let cap = CAPTURE.get_or_init(Captured::default).clone();
        let writer = cap.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(sub);
        let tb = Testbed::new().await;
        let x = tb.connector.connect(&tb.hosts[0]).await.unwrap();
        let secret = "hunter2-s3cr3t";
        // Succeeds, fails with the secret echoed on stderr, runs under sudo, times out.
        let c = Cmd::new("echo").arg("token").secret_arg(secret);
        assert!(x.run(&c).await.unwrap().success());
        let c = Cmd::new("cat").arg("--").secret_arg(secret);
        let out = x.run(&c).await.unwrap();
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr_text().contains(secret),
            "the caller still gets the real stderr"
        );
        let c = Cmd::new("true").secret_arg(secret).sudo();
        assert!(x.run(&c).await.unwrap().success());
        let c = Cmd::new("sh")
            .args(["-c", "sleep 5", "sh"])
            .secret_arg(secret)
            .timeout(Duration::from_millis(300));
        let e = x.run(&c).await.unwrap_err();
        assert!(!e.to_string().contains(secret), "{e}");
        x.close().await.unwrap();
        let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("<redacted>"), "nothing was logged: {logs}");
        assert!(logs.contains("exited non-zero"), "{logs}");
        assert!(!logs.contains(secret), "a secret reached the logs:\n{logs}");
    });
}

#[test]
fn at_most_ten_commands_per_host_at_once() {
    serial(async {
        let tb = Testbed::new().await;
        let x = tb.connector.connect(&tb.hosts[0]).await.unwrap();
        // 30 one-second sleeps: with 10 at a time they take three rounds, and none fails on sshd's
        // MaxSessions 10.
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let x = Arc::clone(&x);
            set.spawn(async move { x.run(&Cmd::new("sleep").arg("1")).await });
        }
        while let Some(r) = set.join_next().await {
            assert!(r.unwrap().unwrap().success());
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(2900),
            "{took:?}: more than 10 ran at once"
        );
        x.close().await.unwrap();
    });
}

/// Puts a reimaged host back on the testbed's base root (a fresh disk, a new key that the
/// testbed's known_hosts then records), also when the test fails.
struct BackToBase(String);

impl Drop for BackToBase {
    #[allow(
        clippy::print_stderr,
        reason = "a drop cannot fail the test; the next test's setup would"
    )]
    fn drop(&mut self) {
        let dir = testbed_dir();
        let base = std::fs::read_to_string(dir.join("base")).unwrap_or_default();
        let base = base.trim();
        if let Err(e) =
            testbed_cmd(&["reimage", &self.0, base]).and_then(|()| testbed_cmd(&["trust", &self.0]))
        {
            eprintln!("cannot put {} back on the base root: {e}", self.0);
        }
    }
}

/// A reinstall gives the host a new key: every command is refused as a changed key, until
/// `read_after_reinstall` reads the host's os-release with the key it presents and the caller
/// takes it; then that key is recorded for that host, and for no other.
#[test]
fn a_reinstalled_host_is_let_in_with_its_new_key_only_when_the_caller_takes_it() {
    serial(async {
        let tb = Testbed::new().await;
        let i = 4;
        let h = &tb.hosts[i];
        let name = Testbed::name(i);
        let recorded = std::fs::read_to_string(tb.dir.join("known_hosts")).unwrap();
        let kh = fresh_known_hosts(&tb, "kh-reinstall", &recorded);
        let c = SshConnector::new(SshOptions {
            known_hosts_file: Some(kh.clone()),
            ..options(&tb.dir)
        })
        .unwrap();
        let x = c.connect(h).await.unwrap();
        let os = || Cmd::new("cat").arg("/etc/os-release");
        let before = x.run(&os()).await.unwrap().stdout_text();
        assert!(before.contains("bookworm"), "{before}");

        testbed_cmd(&["reimage", &name, "trixie"]).unwrap();
        let _back = BackToBase(name.clone());
        let e = x.run(&Cmd::new("true")).await.unwrap_err();
        assert!(matches!(e, ExecError::HostKey { .. }), "{e}");
        assert!(e.to_string().contains("CHANGED"), "{e}");

        // the caller does not take what it read: nothing is recorded, the key stays refused
        let r = x
            .read_after_reinstall("/etc/os-release", &|t| t == before)
            .await
            .unwrap();
        assert!(r.content.contains("trixie"), "{}", r.content);
        assert!(!r.accepted && !r.key.replaced, "{r:?}");
        let kept = std::fs::read_to_string(&kh).unwrap();
        assert_eq!(kept, recorded);
        assert!(matches!(
            x.run(&Cmd::new("true")).await.unwrap_err(),
            ExecError::HostKey { .. }
        ));

        // the OS changed: the new key is recorded for this host, and commands run again
        let r = x
            .read_after_reinstall("/etc/os-release", &|t| t != before)
            .await
            .unwrap();
        assert!(r.accepted && r.key.replaced, "{r:?}");
        assert_eq!((r.key.old.len(), r.key.new.len()), (1, 1), "{r:?}");
        assert_ne!(r.key.old, r.key.new);
        assert!(r.key.new[0].starts_with("SHA256:"), "{r:?}");
        let now = x.run(&os()).await.unwrap().stdout_text();
        assert!(now.contains("trixie"), "{now}");
        // every other host's entry is as it was
        let after = std::fs::read_to_string(&kh).unwrap();
        for other in tb.hosts.iter().filter(|o| o.address != h.address) {
            let line = |text: &str| {
                text.lines()
                    .find(|l| {
                        l.split_whitespace()
                            .next()
                            .unwrap_or("")
                            .split(',')
                            .any(|a| a == other.address)
                    })
                    .map(str::to_string)
            };
            assert_eq!(line(&after), line(&recorded), "{}", other.address);
            assert!(line(&after).is_some(), "{}", other.address);
        }
        // asked again: the key is the recorded one now
        let r = x
            .read_after_reinstall("/etc/os-release", &|_| true)
            .await
            .unwrap();
        assert!(r.accepted && !r.key.replaced, "{r:?}");
        x.close().await.unwrap();
    });
}
