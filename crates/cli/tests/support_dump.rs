//! The support dump through the CLI's library entry point, with the in-memory fakes of
//! `ferry-testing` as backends: the one a failed run leaves by itself, `ferry support-dump` on
//! demand, and the runs that leave none.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_cli::cmd::hosts::SshArgs;
use ferry_cli::session::{BackendFactory, BackendRequest, Backends, Runtime};
use ferry_cli::{Output, exit};
use ferry_core::engine::{Interrupts, NoHooks};
use ferry_core::{Connector, HostSpec};
use ferry_testing::world::FIXTURE_ADMIN_PASSWORD as PW;
use ferry_testing::world::FsEntry;
use ferry_testing::{FakeCluster, FakeConnector, FakeMke3, Fault, FaultAction, Fixture, World};

/// A private key as a host might show one (the body must never reach a dump).
const KEY_BODY: &str = "MIIEpAIBAAKCAQEA0Zf4keybodyNeverDumped";

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

    async fn connector(&self, _: &[HostSpec], _: &SshArgs) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(FakeConnector::new(&self.0)))
    }
}

struct Env {
    world: World,
    dir: tempfile::TempDir,
    vars: HashMap<String, String>,
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
        vars.insert("MKE3_ADMIN_PASSWORD".into(), PW.into());
        Self { world, dir, vars }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn hosts(&self) -> Vec<String> {
        self.world.state().hosts.keys().cloned().collect()
    }

    fn run(&self, args: &[&str]) -> Ran {
        let vars = self.vars.clone();
        let interrupts = Interrupts::new();
        self.world.set_interrupts(interrupts.clone());
        let rt = Runtime {
            backends: Arc::new(Fakes(self.world.clone())),
            interrupts,
            listen_to_signals: false,
            env: Box::new(move |k| vars.get(k).cloned()),
            read_secret: Box::new(|| Err(std::io::Error::other("no terminal in tests"))),
            hooks: Arc::new(NoHooks),
            progress: false,
        };
        let mut o = Vec::new();
        let mut e = Vec::new();
        let code = {
            let mut out = Output::new(&mut o, &mut e);
            let mut argv = vec!["ferry"];
            argv.extend(args);
            ferry_cli::run_with(argv, &mut out, &rt)
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

    /// The support dump directories in the state directory, oldest first.
    fn dumps(&self) -> Vec<PathBuf> {
        let mut d: Vec<PathBuf> = std::fs::read_dir(self.state())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("support-dump-"))
            })
            .collect();
        d.sort();
        d
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every file of `dump` is free of the admin password and of private keys, and private.
fn assert_no_secret(dump: &Path) {
    let files = files_under(dump);
    assert!(!files.is_empty());
    for p in files {
        let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
        assert!(
            !text.contains(PW),
            "{} holds the password:\n{text}",
            p.display()
        );
        assert!(
            !text.contains(KEY_BODY),
            "{} holds a key:\n{text}",
            p.display()
        );
        // A private key block is only ever left as its redacted one-line form.
        for (i, _) in text.match_indices("-----BEGIN ") {
            let rest = &text[i + 11..];
            let Some(end) = rest.find("-----") else {
                continue;
            };
            if rest[..end].contains("PRIVATE KEY") {
                assert!(
                    rest[end + 5..].starts_with("<redacted>"),
                    "{} holds a private key block:\n{text}",
                    p.display()
                );
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
}

/// The path `Support dump: <path>` names in `text`.
fn named_dump(text: &str) -> PathBuf {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Support dump: "))
        .unwrap_or_else(|| panic!("no `Support dump:` line in\n{text}"));
    PathBuf::from(line)
}

#[test]
fn a_failed_run_leaves_a_redacted_support_dump_and_support_dump_makes_another() {
    let env = Env::new();
    env.world.inject(Fault::at_step(
        "mke.node.start-k0s@host:10.0.0.12",
        1,
        FaultAction::Fail,
    ));
    let r = env.upgrade(&[]);
    assert_eq!(r.code, exit::ROLLED_BACK, "{}", r.stderr);

    // The dump is there, named on stderr, with a directory per host and the journal.
    let dumps = env.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let dump = &dumps[0];
    assert_eq!(&named_dump(&r.stderr), dump, "{}", r.stderr);
    assert!(!r.stdout.contains("Support dump"), "{}", r.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dump).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    assert!(dump.join("journal.jsonl").is_file());
    assert!(dump.join("index.txt").is_file());
    for h in env.hosts() {
        for f in [
            "docker-ps-a.txt",
            "docker-info.txt",
            "k0s-status.txt",
            "k0s-version.txt",
            "df.txt",
            "host-lock.txt",
            "k0s-logs.txt",
        ] {
            assert!(dump.join(&h).join(f).is_file(), "{h}/{f}");
        }
    }
    // The managers' MKE 3 containers have their logs (the fake answers `docker logs` with 127,
    // which is recorded, not fatal).
    let manager = &env.hosts()[0];
    let logs: Vec<PathBuf> = files_under(&dump.join(manager).join("mke3-logs"));
    assert!(
        logs.iter().any(|p| p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("ucp-"))),
        "{logs:?}"
    );
    let k0s_logs = std::fs::read_to_string(dump.join(manager).join("k0s-logs.txt")).unwrap();
    assert!(
        k0s_logs.contains("# exit 127: sh: 1: journalctl: not found"),
        "{k0s_logs}"
    );
    let index = std::fs::read_to_string(dump.join("index.txt")).unwrap();
    assert!(index.contains("outcome:     rolled-back\n"), "{index}");
    assert!(index.contains("FAILED"), "{index}");
    // No run holds the hosts any more: their locks are absent, which is no failure.
    assert!(
        index.contains("sudo -n cat /run/lock/ferry/owner  [absent]"),
        "{index}"
    );
    for h in env.hosts() {
        assert!(index.contains(&format!("Host {h} ({h}/):\n")), "{index}");
    }
    // The journal copy is the run's journal.
    assert_eq!(
        std::fs::read_to_string(dump.join("journal.jsonl"))
            .unwrap()
            .lines()
            .count(),
        std::fs::read_to_string(env.state().join("journal.jsonl"))
            .unwrap()
            .lines()
            .count()
    );
    assert_no_secret(dump);
    // The dump only read the hosts.
    assert!(
        env.world
            .calls()
            .iter()
            .filter(|c| c.op == "journalctl" || c.op == "tail")
            .all(|c| !c.mutating)
    );

    // On demand: a second bundle beside the first, with what a host shows now. One host holds
    // the password and a private key in its lock file; another is away.
    let hosts = env.hosts();
    let (planted, away) = (&hosts[0], &hosts[1]);
    {
        let mut s = env.world.state();
        let h = s.hosts.get_mut(planted).unwrap();
        let entry = |dir: bool, content: String| FsEntry {
            dir,
            content: content.into_bytes(),
            mode: if dir { 0o755 } else { 0o644 },
            owner: "root".into(),
            mtime: 0,
        };
        for d in ["/run", "/run/lock", "/run/lock/ferry"] {
            h.files
                .entry(d.into())
                .or_insert_with(|| entry(true, String::new()));
        }
        h.files.insert(
            "/run/lock/ferry/owner".into(),
            entry(
                false,
                format!(
                    "{{\"owner\":\"alice@box\",\"note\":\"admin password {PW}\"}}\n-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\nbindPW=Other-Pass-42\n"
                ),
            ),
        );
    }
    env.world.cut_host(away);
    let state = env.state().display().to_string();
    let r = env.run(&["support-dump", "--state-dir", &state]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    let dumps = env.dumps();
    assert_eq!(dumps.len(), 2, "{dumps:?}");
    let second = dumps.iter().find(|d| *d != dump).unwrap();
    assert_eq!(r.stdout, format!("Support dump: {}\n", second.display()));
    assert!(
        r.stderr.contains(&format!(
            "WARN the support dump has nothing from unreachable host(s) {away}"
        )),
        "{}",
        r.stderr
    );
    let lock = std::fs::read_to_string(second.join(planted).join("host-lock.txt")).unwrap();
    assert!(lock.contains("alice@box"), "{lock}");
    assert!(
        lock.contains("-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA PRIVATE KEY-----"),
        "{lock}"
    );
    assert!(lock.contains("bindPW=<redacted>\n"), "{lock}");
    assert!(!lock.contains("Other-Pass-42"), "{lock}");
    assert!(
        second.join(away).join("unreachable.txt").is_file(),
        "{away}"
    );
    let index = std::fs::read_to_string(second.join("index.txt")).unwrap();
    assert!(
        index.contains(&format!("Host {away} ({away}/): UNREACHABLE")),
        "{index}"
    );
    assert_no_secret(second);
    // The first dump is not copied into the second.
    assert!(
        files_under(second)
            .iter()
            .all(|p| !p.to_string_lossy()[second.to_string_lossy().len()..]
                .contains("support-dump-"))
    );
}

#[test]
fn support_dump_without_a_journal_names_the_directory() {
    let env = Env::new();
    let empty = env.path("empty-state");
    std::fs::create_dir(&empty).unwrap();
    let dir = empty.display().to_string();
    let r = env.run(&["support-dump", "--state-dir", &dir]);
    assert_eq!(r.code, exit::USAGE, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "Error: {dir}: no journal (journal.jsonl) in this directory: no run to make a support dump of\n"
        )
    );
    assert!(r.stdout.is_empty());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert!(env.world.calls().is_empty(), "nothing was contacted");
}

#[test]
fn a_completed_run_and_a_dry_run_leave_no_support_dump() {
    let env = Env::new();
    let r = env.upgrade(&["--dry-run"]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(env.dumps().is_empty());
    let r = env.upgrade(&[]);
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert!(env.dumps().is_empty(), "{}", r.stderr);
    assert!(!r.stderr.contains("Support dump"), "{}", r.stderr);
}
