//! The one conformance suite for [`HostExec`] implementations.
//!
//! Every implementation runs it: the in-memory fake (this crate) and the SSH backend
//! against the testbed hosts (`crates/ssh-exec/tests/conformance.rs`). A runner implements
//! [`FaultControl`] (connect to host *i*, crash it, cut its link, restore it, connect with a wrong
//! host key or refused credentials) and calls [`run_suite`], which returns a [`SuiteReport`] with
//! one result per case.
//!
//! # The command set
//!
//! The suite runs only these commands, so that a fake can interpret exactly this set and nothing
//! else. Every command is an argv (program + arguments), optionally with `sudo` and stdin; exit
//! codes and output are those of GNU coreutils on Linux.
//!
//! | argv | behaviour |
//! |---|---|
//! | `true` | exit 0, no output |
//! | `false` | exit 1, no output |
//! | `echo ARG…` | the arguments joined by one space, then `\n` (no option parsing) |
//! | `printf FORMAT ARG…` | FORMAT uses only `%s`, `%%`, `\n` and `\\`; the format is reused until every argument is consumed (at least once) |
//! | `cat` | copies stdin to stdout |
//! | `cat FILE` | the file's bytes; a missing file: exit 1 and `cat: FILE: No such file or directory` on stderr |
//! | `sleep SECONDS` | waits (decimal seconds, e.g. `0.2`), exit 0 |
//! | `id -u` / `id -un` | the uid / the user name of the effective user (`0` / `root` under sudo) |
//! | `stat -c FORMAT PATH` | FORMAT uses only `%a` (octal permission bits, no leading zero), `%U` (owner name), `%s` (size) and spaces; a missing path: exit 1 |
//! | `test -f PATH` / `test -e PATH` | exit 0 when PATH is a regular file / exists, else 1 |
//! | `head -c N /dev/zero` | N zero bytes on stdout |
//! | `mkdir -p DIR` | creates DIR and its parents |
//! | `rm -rf PATH` | removes PATH recursively, no error when missing |
//! | `ls -A DIR` | the entry names of DIR (including dot files), sorted, one per line |
//! | `sh -c SCRIPT sh ARG…` | SCRIPT is exactly one of [`SH_EXIT`], [`SH_OUT_ERR`] or [`SH_ZEROS_TO_STDERR`] |
//! | any other program name starting with `ferry-no-such-command` | exit 127, a "not found" line on stderr |
//!
//! Paths the suite touches: a scratch directory `/tmp/ferry-conformance-<unique>` and, with sudo,
//! `/etc/ferry-conformance-<unique>`; both are removed at the end.
//!
//! # What the runner provides
//!
//! At least one host; the fault cases use hosts `1 % n` (no sudo), `2 % n` (crash), `3 % n` (cut)
//! and `4 % n` (wrong key, refused credentials), so five hosts keep the faults apart. After each
//! fault case the suite restores the host through [`FaultControl::restore`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::exec::{Cmd, ExecError, FileSpec, HostExec, Output};

/// `sh -c SH_EXIT sh CODE`: exits with CODE.
pub const SH_EXIT: &str = "exit \"$1\"";
/// `sh -c SH_OUT_ERR sh OUT ERR CODE`: prints OUT on stdout and ERR on stderr (no newlines
/// added), then exits with CODE.
pub const SH_OUT_ERR: &str = "printf %s \"$1\"; printf %s \"$2\" >&2; exit \"$3\"";
/// `sh -c SH_ZEROS_TO_STDERR sh N`: writes N zero bytes to stderr, nothing to stdout, exit 0.
pub const SH_ZEROS_TO_STDERR: &str = "head -c \"$1\" /dev/zero >&2";

/// How a runner lets the suite reach hosts and break them.
///
/// Host indices are `0..host_count()`. Fault methods return `Err(text)` when the runner itself
/// failed to inject the fault (which fails the case with that text).
#[async_trait::async_trait]
pub trait FaultControl: Send + Sync {
    /// How many hosts the runner offers (at least 1; 5 keeps the fault cases on separate hosts).
    fn host_count(&self) -> usize;

    /// Connects to host `i` as a user that may run commands with `sudo`.
    async fn connect(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError>;

    /// Connects to host `i` as a user that exists but may not use sudo.
    async fn connect_without_sudo(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError>;

    /// Connects to host `i` while expecting a host key other than the host's own. Must fail with
    /// [`ExecError::HostKey`].
    async fn connect_wrong_host_key(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError>;

    /// Connects to host `i` with credentials the host refuses. Must fail with [`ExecError::Auth`].
    async fn connect_bad_credentials(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError>;

    /// Crashes host `i`: every process on it dies at once, new connections are refused.
    async fn kill(&self, i: usize) -> Result<(), String>;

    /// Cuts host `i` off the network silently: packets are dropped, nothing is answered.
    async fn cut(&self, i: usize) -> Result<(), String>;

    /// Undoes [`kill`](Self::kill) and [`cut`](Self::cut): host `i` answers again, with its disk
    /// and host key as before. Returns once new connections succeed.
    async fn restore(&self, i: usize) -> Result<(), String>;

    /// How long the implementation may take to notice, on an open connection, that the link was
    /// cut (keep-alive interval times count, plus slack).
    fn cut_detection(&self) -> Duration;

    /// How long a new connection to a crashed or cut host may take to fail (connect timeout
    /// times attempts, plus slack).
    fn connect_failure_within(&self) -> Duration;
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's stable name, e.g. `run.large-stdout`.
    pub name: &'static str,
    /// `Err` holds why the case failed.
    pub outcome: Result<(), String>,
    /// How long the case took.
    pub elapsed: Duration,
}

/// The outcome of the whole suite.
#[derive(Debug, Clone, Default)]
pub struct SuiteReport {
    pub cases: Vec<CaseResult>,
}

impl SuiteReport {
    /// Number of cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.outcome.is_ok()).count()
    }

    /// The cases that failed.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.cases.iter().filter(|c| c.outcome.is_err()).collect()
    }

    /// Panics with every failure when any case failed.
    pub fn assert_all_passed(&self) {
        assert!(self.failures().is_empty(), "{self}");
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cases {
            match &c.outcome {
                Ok(()) => writeln!(f, "ok      {} ({:.2?})", c.name, c.elapsed)?,
                Err(e) => writeln!(f, "FAILED  {} ({:.2?}): {e}", c.name, c.elapsed)?,
            }
        }
        write!(
            f,
            "HostExec conformance: {} of {} cases passed",
            self.passed(),
            self.cases.len()
        )
    }
}

type CaseResultInner = Result<(), String>;

/// Runs every case in order and reports each one. Never panics on a failing case.
pub async fn run_suite(fc: &dyn FaultControl) -> SuiteReport {
    let mut report = SuiteReport::default();
    let n = fc.host_count().max(1);
    let main = match fc.connect(0).await {
        Ok(e) => e,
        Err(e) => {
            report.cases.push(CaseResult {
                name: "connect",
                outcome: Err(format!("cannot connect to host 0: {e}")),
                elapsed: Duration::ZERO,
            });
            return report;
        }
    };
    let scratch = format!("/tmp/ferry-conformance-{}", unique());
    let root_scratch = format!("/etc/ferry-conformance-{}", unique());

    macro_rules! case {
        ($name:literal, $body:expr) => {
            report.cases.push(timed($name, $body).await);
        };
    }

    case!("setup.scratch-dir", setup(&*main, &scratch));
    case!("run.true", run_true(&*main));
    case!("run.false", run_false(&*main));
    case!("run.exit-code", run_exit_code(&*main));
    case!("run.not-found", run_not_found(&*main));
    case!("run.argv-verbatim", run_argv_verbatim(&*main));
    case!("run.stdout-and-stderr", run_out_err(&*main));
    case!("run.large-stdout", run_large_stdout(&*main));
    case!("run.large-stderr", run_large_stderr(&*main));
    case!("run.stdin", run_stdin(&*main));
    case!("run.no-stdin", run_no_stdin(&*main));
    case!("run.timeout", run_timeout(&*main));
    case!("run.concurrent-on-one-host", run_concurrent(&main));
    case!("run.fan-out-all-hosts", run_fan_out(fc, n));
    case!("sudo.root", sudo_root(&*main));
    case!("sudo.stdin", sudo_stdin(&*main));
    case!("sudo.denied", sudo_denied(fc, 1 % n));
    case!("put_file.new", put_new(&*main, &scratch));
    case!("put_file.replace", put_replace(&*main, &scratch));
    case!(
        "put_file.owner-and-mode-with-sudo",
        put_sudo(&*main, &root_scratch)
    );
    case!("put_file.atomic", put_atomic(&main, &scratch));
    case!("put_file.missing-directory", put_missing_dir(&*main));
    case!(
        "put_file.no-permission",
        put_no_permission(&*main, &root_scratch)
    );
    case!(
        "cleanup.scratch-dirs",
        cleanup(&*main, &scratch, &root_scratch)
    );
    case!("close", close(fc, n));
    case!("fault.wrong-host-key", wrong_host_key(fc, 4 % n));
    case!("fault.bad-credentials", bad_credentials(fc, 4 % n));
    case!("fault.host-killed", host_killed(fc, 2 % n));
    case!("fault.link-cut", link_cut(fc, 3 % n));
    let _ = main.close().await;
    report
}

async fn timed(name: &'static str, f: impl Future<Output = CaseResultInner>) -> CaseResult {
    let start = Instant::now();
    let outcome = f.await;
    CaseResult {
        name,
        outcome,
        elapsed: start.elapsed(),
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// helpers

fn cmd(program: &str, args: &[&str]) -> Cmd {
    Cmd::new(program).args(args.iter().copied())
}

async fn ok(e: &dyn HostExec, c: &Cmd) -> Result<Output, String> {
    let out = e.run(c).await.map_err(|err| format!("`{c}`: {err}"))?;
    if !out.success() {
        return Err(format!(
            "`{c}` exited {:?}: {}",
            out.code,
            out.stderr_text().trim()
        ));
    }
    Ok(out)
}

fn expect_eq<T: PartialEq + fmt::Debug>(what: &str, got: T, want: T) -> CaseResultInner {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn expect_bytes(what: &str, got: &[u8], want: &[u8]) -> CaseResultInner {
    if got == want {
        return Ok(());
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    Err(format!(
        "{what}: {} bytes, want {}; first difference at {:?}",
        got.len(),
        want.len(),
        first
    ))
}

fn expect_host(e: &ExecError, host: &str) -> CaseResultInner {
    if e.host() == host && e.to_string().contains(host) {
        Ok(())
    } else {
        Err(format!("error does not name host {host:?}: {e}"))
    }
}

fn pattern(len: usize) -> Vec<u8> {
    // Every byte value, in an order that is not a multiple of common buffer sizes.
    (0..len).map(|i| ((i * 7 + i / 251) % 256) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// cases: run

async fn setup(e: &dyn HostExec, scratch: &str) -> CaseResultInner {
    ok(e, &cmd("mkdir", &["-p", scratch])).await?;
    Ok(())
}

async fn cleanup(e: &dyn HostExec, scratch: &str, root_scratch: &str) -> CaseResultInner {
    ok(e, &cmd("rm", &["-rf", scratch])).await?;
    ok(e, &cmd("rm", &["-rf", root_scratch]).sudo()).await?;
    let out = e
        .run(&cmd("test", &["-e", scratch]))
        .await
        .map_err(|x| x.to_string())?;
    expect_eq("scratch dir gone (test -e exit code)", out.code, Some(1))
}

async fn run_true(e: &dyn HostExec) -> CaseResultInner {
    let out = ok(e, &cmd("true", &[])).await?;
    expect_eq("stdout", out.stdout.as_slice(), b"")?;
    expect_eq("stderr", out.stderr.as_slice(), b"")
}

async fn run_false(e: &dyn HostExec) -> CaseResultInner {
    let out = e
        .run(&cmd("false", &[]))
        .await
        .map_err(|x| format!("a non-zero exit must be an Output, not an error: {x}"))?;
    expect_eq("exit code", out.code, Some(1))
}

async fn run_exit_code(e: &dyn HostExec) -> CaseResultInner {
    for code in [2, 42, 126, 255] {
        let s = code.to_string();
        let out = e
            .run(&cmd("sh", &["-c", SH_EXIT, "sh", &s]))
            .await
            .map_err(|x| x.to_string())?;
        expect_eq("exit code", out.code, Some(code))?;
    }
    Ok(())
}

async fn run_not_found(e: &dyn HostExec) -> CaseResultInner {
    let out = e
        .run(&cmd("ferry-no-such-command-4711", &["x"]))
        .await
        .map_err(|x| format!("a missing program must be exit 127, not an error: {x}"))?;
    expect_eq("exit code", out.code, Some(127))
}

/// Arguments reach the program byte for byte: no word splitting, globbing, expansion or option
/// parsing by any shell in between.
pub const TRICKY_ARGS: [&str; 14] = [
    "plain",
    "two words",
    "it's",
    "\"double\"",
    "$HOME",
    "$(id -u)",
    "`id`",
    "*",
    "a;b|c&d",
    "-n",
    "",
    "line1\nline2",
    "back\\slash",
    "tab\there ~ # !",
];

async fn run_argv_verbatim(e: &dyn HostExec) -> CaseResultInner {
    let c = Cmd::new("printf").arg("[%s]\\n").args(TRICKY_ARGS);
    let out = ok(e, &c).await?;
    let want: String = TRICKY_ARGS.iter().map(|a| format!("[{a}]\n")).collect();
    expect_eq("stdout", out.stdout_text(), want)?;
    // The program name goes through the same quoting.
    let out = ok(e, &cmd("echo", &["a  b", "c"])).await?;
    expect_eq("echo", out.stdout_text(), "a  b c\n".to_string())
}

async fn run_out_err(e: &dyn HostExec) -> CaseResultInner {
    let out = e
        .run(&cmd(
            "sh",
            &["-c", SH_OUT_ERR, "sh", "to stdout", "to stderr", "3"],
        ))
        .await
        .map_err(|x| x.to_string())?;
    expect_eq("exit code", out.code, Some(3))?;
    expect_eq("stdout", out.stdout_text(), "to stdout".to_string())?;
    expect_eq("stderr", out.stderr_text(), "to stderr".to_string())
}

const BIG: usize = 8 << 20;

async fn run_large_stdout(e: &dyn HostExec) -> CaseResultInner {
    let out = ok(e, &cmd("head", &["-c", &BIG.to_string(), "/dev/zero"])).await?;
    expect_eq("stdout length", out.stdout.len(), BIG)?;
    expect_eq("all zero", out.stdout.iter().all(|b| *b == 0), true)?;
    expect_eq("stderr", out.stderr.len(), 0)
}

async fn run_large_stderr(e: &dyn HostExec) -> CaseResultInner {
    let n = 4 << 20;
    let out = ok(
        e,
        &cmd("sh", &["-c", SH_ZEROS_TO_STDERR, "sh", &n.to_string()]),
    )
    .await?;
    expect_eq("stderr length", out.stderr.len(), n)?;
    expect_eq("stdout length", out.stdout.len(), 0)
}

async fn run_stdin(e: &dyn HostExec) -> CaseResultInner {
    // Larger than any pipe buffer, so a backend that writes stdin before reading stdout
    // deadlocks here.
    let data = pattern(3 << 20);
    let out = ok(e, &Cmd::new("cat").stdin(data.clone())).await?;
    expect_bytes("stdout", &out.stdout, &data)
}

async fn run_no_stdin(e: &dyn HostExec) -> CaseResultInner {
    let c = Cmd::new("cat").timeout(Duration::from_secs(20));
    let out = ok(e, &c).await?;
    expect_eq("stdout", out.stdout.len(), 0)
}

async fn run_timeout(e: &dyn HostExec) -> CaseResultInner {
    let start = Instant::now();
    let r = e
        .run(&cmd("sleep", &["30"]).timeout(Duration::from_secs(1)))
        .await;
    let took = start.elapsed();
    match r {
        Err(ExecError::Timeout { ref host, .. }) if host == e.host() => {}
        other => return Err(format!("want a Timeout naming the host, got {other:?}")),
    }
    if took < Duration::from_millis(900) || took > Duration::from_secs(6) {
        return Err(format!("timed out after {took:?}, want about 1 s"));
    }
    // The connection is still usable.
    ok(e, &cmd("true", &[])).await?;
    Ok(())
}

async fn run_concurrent(e: &Arc<dyn HostExec>) -> CaseResultInner {
    // More than sshd's default MaxSessions (10) at once: the implementation must queue.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..25 {
        let e1 = Arc::clone(e);
        set.spawn(async move {
            let e = e1;
            let out = e
                .run(&cmd(
                    "sh",
                    &["-c", SH_OUT_ERR, "sh", &i.to_string(), "", "0"],
                ))
                .await;
            (i, out)
        });
        let e2 = Arc::clone(e);
        set.spawn(async move { (1000 + i, e2.run(&cmd("sleep", &["0.2"])).await) });
    }
    let mut failures = Vec::new();
    while let Some(j) = set.join_next().await {
        match j {
            Ok((i, Ok(out))) if i < 1000 => {
                if !out.success() || out.stdout_text() != i.to_string() {
                    failures.push(format!("#{i}: {out:?}"));
                }
            }
            Ok((i, Ok(out))) => {
                if !out.success() {
                    failures.push(format!("sleep #{i}: {out:?}"));
                }
            }
            Ok((i, Err(err))) => failures.push(format!("#{i}: {err}")),
            Err(join) => failures.push(format!("task: {join}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of 50 failed: {}",
            failures.len(),
            failures.join("; ")
        ))
    }
}

async fn run_fan_out(fc: &dyn FaultControl, n: usize) -> CaseResultInner {
    let mut execs = Vec::new();
    for i in 0..n {
        execs.push(fc.connect(i).await.map_err(|e| format!("host {i}: {e}"))?);
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, e) in execs.iter().enumerate() {
        let e = Arc::clone(e);
        set.spawn(async move {
            let r = e.run(&cmd("echo", &["host", &i.to_string()])).await;
            (i, r)
        });
    }
    let mut failures = Vec::new();
    while let Some(j) = set.join_next().await {
        match j {
            Ok((i, Ok(out))) if out.success() && out.stdout_text() == format!("host {i}\n") => {}
            Ok((i, r)) => failures.push(format!("host {i}: {r:?}")),
            Err(join) => failures.push(join.to_string()),
        }
    }
    for e in &execs {
        if let Err(err) = e.close().await {
            failures.push(format!("close: {err}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------
// cases: sudo

async fn sudo_root(e: &dyn HostExec) -> CaseResultInner {
    let out = ok(e, &cmd("id", &["-u"]).sudo()).await?;
    expect_eq(
        "uid under sudo",
        out.stdout_text().trim().to_string(),
        "0".into(),
    )?;
    let out = ok(e, &cmd("id", &["-un"]).sudo()).await?;
    expect_eq(
        "user under sudo",
        out.stdout_text().trim().to_string(),
        "root".into(),
    )
}

async fn sudo_stdin(e: &dyn HostExec) -> CaseResultInner {
    let data = pattern(1 << 20);
    let out = ok(e, &Cmd::new("cat").sudo().stdin(data.clone())).await?;
    expect_bytes("stdout", &out.stdout, &data)
}

async fn sudo_denied(fc: &dyn FaultControl, i: usize) -> CaseResultInner {
    let e = fc
        .connect_without_sudo(i)
        .await
        .map_err(|x| format!("connect: {x}"))?;
    let plain = ok(&*e, &cmd("id", &["-u"])).await;
    let r = e.run(&cmd("true", &[]).sudo()).await;
    let _ = e.close().await;
    let uid = plain?;
    if uid.stdout_text().trim() == "0" {
        return Err("the no-sudo user is root".into());
    }
    match r {
        Err(ref err @ ExecError::Sudo { .. }) => expect_host(err, e.host()),
        other => Err(format!("want a Sudo error, got {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// cases: put_file

async fn stat(e: &dyn HostExec, format: &str, path: &str, sudo: bool) -> Result<String, String> {
    let mut c = cmd("stat", &["-c", format, path]);
    c.sudo = sudo;
    Ok(ok(e, &c).await?.stdout_text().trim().to_string())
}

async fn read(e: &dyn HostExec, path: &str, sudo: bool) -> Result<Vec<u8>, String> {
    let mut c = cmd("cat", &[path]);
    c.sudo = sudo;
    Ok(ok(e, &c).await?.stdout)
}

async fn put_new(e: &dyn HostExec, scratch: &str) -> CaseResultInner {
    let path = format!("{scratch}/new file's name");
    let data = pattern(1 << 20);
    let spec = FileSpec {
        mode: 0o640,
        ..FileSpec::default()
    };
    e.put_file(&path, &data, &spec)
        .await
        .map_err(|x| x.to_string())?;
    expect_bytes("content", &read(e, &path, false).await?, &data)?;
    expect_eq("mode", stat(e, "%a", &path, false).await?, "640".into())?;
    let me = ok(e, &cmd("id", &["-un"])).await?.stdout_text();
    expect_eq(
        "owner",
        stat(e, "%U", &path, false).await?,
        me.trim().to_string(),
    )?;
    // An empty file is a file too.
    let empty = format!("{scratch}/empty");
    e.put_file(&empty, b"", &FileSpec::default())
        .await
        .map_err(|x| x.to_string())?;
    expect_eq(
        "empty size",
        stat(e, "%s", &empty, false).await?,
        "0".into(),
    )?;
    expect_eq(
        "default mode",
        stat(e, "%a", &empty, false).await?,
        "644".into(),
    )
}

async fn put_replace(e: &dyn HostExec, scratch: &str) -> CaseResultInner {
    let path = format!("{scratch}/replace");
    let spec = FileSpec {
        mode: 0o600,
        ..FileSpec::default()
    };
    e.put_file(&path, &pattern(100_000), &spec)
        .await
        .map_err(|x| x.to_string())?;
    let spec = FileSpec {
        mode: 0o755,
        ..FileSpec::default()
    };
    e.put_file(&path, b"short\n", &spec)
        .await
        .map_err(|x| x.to_string())?;
    expect_bytes("content", &read(e, &path, false).await?, b"short\n")?;
    expect_eq("mode", stat(e, "%a", &path, false).await?, "755".into())?;
    // No temporary file is left next to it.
    let ls = ok(e, &cmd("ls", &["-A", scratch])).await?.stdout_text();
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort_unstable();
    let mut want = vec!["empty", "new file's name", "replace"];
    want.sort_unstable();
    expect_eq("directory entries", names, want)
}

async fn put_sudo(e: &dyn HostExec, root_scratch: &str) -> CaseResultInner {
    ok(e, &cmd("mkdir", &["-p", root_scratch]).sudo()).await?;
    let path = format!("{root_scratch}/secret.conf");
    let spec = FileSpec {
        mode: 0o600,
        owner: Some("root".into()),
        group: None,
        sudo: true,
    };
    e.put_file(&path, b"root only\n", &spec)
        .await
        .map_err(|x| x.to_string())?;
    expect_eq(
        "mode",
        stat(e, "%a %U", &path, true).await?,
        "600 root".into(),
    )?;
    expect_bytes("content", &read(e, &path, true).await?, b"root only\n")?;
    // Written with sudo but owned by the connecting user when no owner is given.
    let mine = format!("{root_scratch}/mine");
    let spec = FileSpec {
        mode: 0o644,
        owner: None,
        group: None,
        sudo: true,
    };
    e.put_file(&mine, b"mine\n", &spec)
        .await
        .map_err(|x| x.to_string())?;
    let me = ok(e, &cmd("id", &["-un"])).await?.stdout_text();
    expect_eq(
        "owner",
        stat(e, "%a %U", &mine, true).await?,
        format!("644 {}", me.trim()),
    )
}

async fn put_atomic(e: &Arc<dyn HostExec>, scratch: &str) -> CaseResultInner {
    let path = format!("{scratch}/atomic");
    let a = vec![b'a'; 2 << 20];
    let b = vec![b'b'; 2 << 20];
    e.put_file(&path, &a, &FileSpec::default())
        .await
        .map_err(|x| x.to_string())?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let e = Arc::clone(e);
        let path = path.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut reads = 0;
            let mut torn = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                match e.run(&cmd("cat", &[&path])).await {
                    Ok(out) if out.success() => {
                        let all_a = out.stdout.iter().all(|x| *x == b'a');
                        let all_b = out.stdout.iter().all(|x| *x == b'b');
                        if out.stdout.len() != 2 << 20 || !(all_a || all_b) {
                            torn.push(out.stdout.len());
                        }
                    }
                    _ => torn.push(usize::MAX),
                }
                reads += 1;
            }
            (reads, torn)
        })
    };
    let mut result = Ok(());
    for round in 0..6 {
        let data = if round % 2 == 0 { &b } else { &a };
        if let Err(x) = e.put_file(&path, data, &FileSpec::default()).await {
            result = Err(x.to_string());
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, torn) = reader.await.map_err(|x| x.to_string())?;
    result?;
    if torn.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {reads} reads saw a partial or failed file",
            torn.len()
        ))
    }
}

async fn put_missing_dir(e: &dyn HostExec) -> CaseResultInner {
    let dir = format!("/tmp/ferry-conformance-missing-{}", unique());
    let path = format!("{dir}/f");
    match e.put_file(&path, b"x", &FileSpec::default()).await {
        Err(err) => expect_host(&err, e.host())?,
        Ok(()) => return Err("put_file into a missing directory succeeded".into()),
    }
    let out = e
        .run(&cmd("test", &["-e", &dir]))
        .await
        .map_err(|x| x.to_string())?;
    expect_eq("directory not created (test -e exit)", out.code, Some(1))
}

async fn put_no_permission(e: &dyn HostExec, root_scratch: &str) -> CaseResultInner {
    // root_scratch exists (put_sudo made it) and belongs to root, mode 755.
    let me = ok(e, &cmd("id", &["-u"])).await?.stdout_text();
    if me.trim() == "0" {
        // Root may write anywhere; nothing to check for this runner's user.
        return Ok(());
    }
    let path = format!("{root_scratch}/denied");
    match e.put_file(&path, b"x", &FileSpec::default()).await {
        Err(err) => expect_host(&err, e.host())?,
        Ok(()) => return Err("put_file without sudo into a root directory succeeded".into()),
    }
    let out = e
        .run(&cmd("test", &["-e", &path]).sudo())
        .await
        .map_err(|x| x.to_string())?;
    expect_eq("file not created (test -e exit)", out.code, Some(1))
}

// ---------------------------------------------------------------------------------------------
// cases: close and faults

async fn close(fc: &dyn FaultControl, n: usize) -> CaseResultInner {
    let e = fc
        .connect((n - 1) % n)
        .await
        .map_err(|x| format!("connect: {x}"))?;
    ok(&*e, &cmd("true", &[])).await?;
    e.close().await.map_err(|x| format!("close: {x}"))?;
    match e.run(&cmd("true", &[])).await {
        Err(ExecError::Closed { ref host }) if host == e.host() => {}
        other => return Err(format!("run after close: want Closed, got {other:?}")),
    }
    match e.put_file("/tmp/x", b"x", &FileSpec::default()).await {
        Err(ExecError::Closed { .. }) => {}
        other => return Err(format!("put_file after close: want Closed, got {other:?}")),
    }
    e.close()
        .await
        .map_err(|x| format!("second close must succeed: {x}"))
}

async fn wrong_host_key(fc: &dyn FaultControl, i: usize) -> CaseResultInner {
    match fc.connect_wrong_host_key(i).await {
        Err(ref err @ ExecError::HostKey { .. }) => {
            let good = fc.connect(i).await.map_err(|x| x.to_string())?;
            let host = good.host().to_string();
            let _ = good.close().await;
            expect_host(err, &host)
        }
        Err(other) => Err(format!("want a HostKey error, got {other}")),
        Ok(e) => {
            let _ = e.close().await;
            Err("connected despite a wrong host key".into())
        }
    }
}

async fn bad_credentials(fc: &dyn FaultControl, i: usize) -> CaseResultInner {
    match fc.connect_bad_credentials(i).await {
        Err(ref err @ ExecError::Auth { .. }) => {
            if err.is_transient() {
                return Err("an auth failure must not be transient".into());
            }
            Ok(())
        }
        Err(other) => Err(format!("want an Auth error, got {other}")),
        Ok(e) => {
            let _ = e.close().await;
            Err("connected with refused credentials".into())
        }
    }
}

/// Runs `sleep 60` on `e`, breaks the host with `fault` after 300 ms, and returns the run's
/// result with how long it took after the fault.
async fn break_mid_command<F>(
    e: &Arc<dyn HostExec>,
    fault: F,
) -> (Result<Output, ExecError>, Duration, Result<(), String>)
where
    F: Future<Output = Result<(), String>>,
{
    let runner = {
        let e = Arc::clone(e);
        tokio::spawn(async move { e.run(&cmd("sleep", &["60"])).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let injected = fault.await;
    let at = Instant::now();
    let r = match tokio::time::timeout(Duration::from_secs(90), runner).await {
        Ok(Ok(r)) => r,
        Ok(Err(join)) => Err(ExecError::Io {
            host: e.host().to_string(),
            detail: join.to_string(),
        }),
        Err(_) => Err(ExecError::Io {
            host: e.host().to_string(),
            detail: "suite: run did not return within 90 s".into(),
        }),
    };
    (r, at.elapsed(), injected)
}

async fn recovers(fc: &dyn FaultControl, e: &Arc<dyn HostExec>, i: usize) -> CaseResultInner {
    fc.restore(i).await.map_err(|x| format!("restore: {x}"))?;
    // The same HostExec reconnects by itself.
    ok(&**e, &cmd("echo", &["back"]))
        .await
        .map_err(|x| format!("after restore, the same HostExec: {x}"))?;
    let fresh = fc
        .connect(i)
        .await
        .map_err(|x| format!("after restore, a new connection: {x}"))?;
    let r = ok(&*fresh, &cmd("true", &[])).await;
    let _ = fresh.close().await;
    r.map(|_| ())
}

async fn host_killed(fc: &dyn FaultControl, i: usize) -> CaseResultInner {
    let e = fc.connect(i).await.map_err(|x| format!("connect: {x}"))?;
    let (r, after, injected) = break_mid_command(&e, fc.kill(i)).await;
    let result = check_killed(fc, &e, i, r, after, injected).await;
    let restored = recovers(fc, &e, i).await;
    let _ = e.close().await;
    result.and(restored)
}

async fn check_killed(
    fc: &dyn FaultControl,
    e: &Arc<dyn HostExec>,
    i: usize,
    r: Result<Output, ExecError>,
    after: Duration,
    injected: Result<(), String>,
) -> CaseResultInner {
    injected.map_err(|x| format!("kill: {x}"))?;
    match r {
        Err(ref err @ ExecError::Disconnected { .. }) => expect_host(err, e.host())?,
        other => {
            return Err(format!(
                "command on a crashed host: want Disconnected, got {other:?}"
            ));
        }
    }
    if after > Duration::from_secs(10) {
        return Err(format!("crash noticed after {after:?}, want within 10 s"));
    }
    let start = Instant::now();
    match fc.connect(i).await {
        Err(ref err @ (ExecError::Unreachable { .. } | ExecError::Timeout { .. })) => {
            expect_host(err, e.host())?;
        }
        Err(other) => {
            return Err(format!(
                "connect to a crashed host: want Unreachable, got {other}"
            ));
        }
        Ok(x) => {
            let _ = x.close().await;
            return Err("connected to a crashed host".into());
        }
    }
    let took = start.elapsed();
    if took > fc.connect_failure_within() {
        return Err(format!("connect to a crashed host failed after {took:?}"));
    }
    Ok(())
}

async fn link_cut(fc: &dyn FaultControl, i: usize) -> CaseResultInner {
    let e = fc.connect(i).await.map_err(|x| format!("connect: {x}"))?;
    let (r, after, injected) = break_mid_command(&e, fc.cut(i)).await;
    let result = check_cut(fc, &e, i, r, after, injected).await;
    let restored = recovers(fc, &e, i).await;
    let _ = e.close().await;
    result.and(restored)
}

async fn check_cut(
    fc: &dyn FaultControl,
    e: &Arc<dyn HostExec>,
    i: usize,
    r: Result<Output, ExecError>,
    after: Duration,
    injected: Result<(), String>,
) -> CaseResultInner {
    injected.map_err(|x| format!("cut: {x}"))?;
    match r {
        Err(ref err @ (ExecError::Disconnected { .. } | ExecError::Timeout { .. })) => {
            expect_host(err, e.host())?;
        }
        other => {
            return Err(format!(
                "command on a cut host: want Disconnected, got {other:?}"
            ));
        }
    }
    if after > fc.cut_detection() {
        return Err(format!(
            "cut noticed after {after:?}, want within {:?}",
            fc.cut_detection()
        ));
    }
    let start = Instant::now();
    match fc.connect(i).await {
        Err(ref err) if err.is_transient() => expect_host(err, e.host())?,
        Err(other) => {
            return Err(format!(
                "connect to a cut host: want a transient error, got {other}"
            ));
        }
        Ok(x) => {
            let _ = x.close().await;
            return Err("connected to a cut host".into());
        }
    }
    let took = start.elapsed();
    if took > fc.connect_failure_within() {
        return Err(format!(
            "connect to a cut host failed after {took:?}, want within {:?}",
            fc.connect_failure_within()
        ));
    }
    Ok(())
}
