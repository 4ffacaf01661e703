//! The support dump: what a failed, rolled-back or interrupted run leaves for whoever has to find
//! out why, collected into `<state-dir>/support-dump-<UTC time>/`, flow-agnostic.
//!
//! Per host of the journal's header, a fixed list of read-only commands, each run as root with a
//! timeout and each tolerant of failure (its exit status and standard error are written in place
//! of its output): `docker ps -a`, `docker info`, `k0s status`, `k0s version`, `df -h` and
//! `df -i`, the ferry host lock ([`HOST_LOCK_OWNER`]), the k0s logs (`journalctl` of the k0s
//! units, and the OpenRC log files when they exist) and the MKE 3 logs (`docker logs` of every
//! `ucp-*` container). A host that cannot be reached is recorded as such; it never fails the
//! dump. Besides: copies of the run's journal and summaries, and `index.txt`, which lists what was
//! collected per host, with each command's exit status and what failed.
//!
//! Every file goes through a [`Redactor`] before it is written: known secret values (the MKE 3
//! admin password), PEM private key blocks, the values of `password`/`passwd`/`secret`/`token`/
//! `bindpw`/`passphrase` keys, bearer tokens and k0s join tokens. The directory is 0700, its
//! files 0600: they hold host names and logs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use crate::engine::Logger;
use crate::engine::join::join_all;
use crate::exec::{Cmd, Connector, ExecError, HostExec};
use crate::hosts::HostSpec;
use crate::journal::{JOURNAL_FILE, JournalError, Replay};
use crate::lock::HOST_LOCK_OWNER;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";
/// The name of a dump directory starts with this, followed by the UTC time
/// (`support-dump-20260102T030405Z`).
pub const DUMP_PREFIX: &str = "support-dump-";
/// The bundle's table of contents.
pub const INDEX_FILE: &str = "index.txt";
/// The directory of a host's MKE 3 container logs, inside the host's directory.
pub const MKE3_LOGS_DIR: &str = "mke3-logs";
/// At most this many `ucp-*` containers have their logs collected per host.
const MAX_CONTAINERS: usize = 200;

/// Why no dump could be made. Hosts that cannot be reached and commands that fail are not
/// errors: the bundle records them.
#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("no journal in {dir}: no run to make a support dump of")]
    NoJournal { dir: PathBuf },
    #[error("cannot read the journal in {dir}")]
    Journal {
        dir: PathBuf,
        #[source]
        source: JournalError,
    },
    #[error("cannot create the support dump directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SupportError {
    /// A journal that cannot be read: [`SupportError::NoJournal`] when there is none.
    pub fn of_journal(dir: &Path, e: JournalError) -> Self {
        match e {
            JournalError::Missing { dir } => SupportError::NoJournal { dir },
            source => SupportError::Journal {
                dir: dir.to_path_buf(),
                source,
            },
        }
    }
}

/// Limits of a dump.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long each command may run.
    pub command_timeout: Duration,
    /// How long connecting to a host may take.
    pub connect_timeout: Duration,
    /// Hosts collected at the same time.
    pub parallel_hosts: usize,
    /// Lines of each log (`journalctl -n`, `tail -n`, `docker logs --tail`).
    pub log_lines: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(20),
            parallel_hosts: 8,
            log_lines: 2000,
        }
    }
}

/// What a dump collected.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The dump directory, `<state-dir>/support-dump-<UTC time>`.
    pub dir: PathBuf,
    /// Per host of the journal, in its order.
    pub hosts: Vec<HostResult>,
}

impl Bundle {
    /// The hosts that could not be reached.
    pub fn unreachable(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| h.unreachable.is_some())
            .map(|h| h.host.as_str())
            .collect()
    }

    /// How many commands failed on the reachable hosts.
    pub fn failed_commands(&self) -> usize {
        self.hosts.iter().map(|h| h.failed).sum()
    }
}

/// What a dump collected from one host.
#[derive(Debug, Clone)]
pub struct HostResult {
    /// The host's name (`address` or `address:port`).
    pub host: String,
    /// Why it could not be reached, when it could not (redacted).
    pub unreachable: Option<String>,
    /// Commands that failed or could not run.
    pub failed: usize,
}

// ---------------------------------------------------------------------------------------------
// Redaction.

/// Removes secrets from text: known values, and the patterns secrets take in logs, configs and
/// command lines. `Debug` shows only how many values it knows.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Known values and their JSON-escaped forms, longest first.
    known: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor {{ known: {} values }}", self.known.len())
    }
}

/// Key words whose values are secret (matched case-insensitively inside a key).
const SECRET_KEYS: [&str; 10] = [
    "password",
    "privatekey",
    "passwd",
    "secret",
    "token",
    "bindpw",
    "passphrase",
    "authorization",
    "apikey",
    "api_key",
];
/// Keys naming where a secret is, not the secret itself (`--token-file`, `passwordPath`).
const NOT_SECRET_SUFFIXES: [&str; 4] = ["file", "path", "dir", "stdin"];
/// Authorization schemes: the credential is the word after them.
const AUTH_SCHEMES: [&str; 5] = ["bearer", "basic", "digest", "negotiate", "token"];

impl Redactor {
    /// Known values shorter than this (in characters) are ignored: they would redact everything.
    pub const MIN_SECRET_LEN: usize = 4;

    /// A redactor that knows no value (the patterns still apply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a known secret value; one shorter than [`Self::MIN_SECRET_LEN`] characters or blank
    /// is ignored.
    pub fn add(&mut self, secret: &str) {
        if secret.trim().is_empty() || secret.chars().count() < Self::MIN_SECRET_LEN {
            return;
        }
        let mut forms = vec![secret.to_string()];
        // As it appears inside a JSON string (the journal, `docker inspect`).
        if let Ok(json) = serde_json::to_string(secret) {
            let inner = &json[1..json.len() - 1];
            if inner != secret {
                forms.push(inner.to_string());
            }
        }
        for f in forms {
            if !self.known.contains(&f) {
                self.known.push(f);
            }
        }
        self.known
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// [`Self::add`], chained.
    pub fn with(mut self, secret: &str) -> Self {
        self.add(secret);
        self
    }

    /// How many values it knows (a value and its JSON form count twice).
    pub fn known_count(&self) -> usize {
        self.known.len()
    }

    /// `text` with every secret replaced by [`REDACTED`]. Text without a secret comes back
    /// unchanged; redacting twice changes nothing more.
    pub fn redact(&self, text: &str) -> String {
        let mut s = redact_pem(text);
        for k in &self.known {
            if s.contains(k.as_str()) {
                s = s.replace(k.as_str(), REDACTED);
            }
        }
        let s = redact_join_tokens(&s);
        let s = redact_bearer(&s);
        redact_pairs(&s)
    }

    /// [`Self::redact`] of bytes read as UTF-8 (invalid sequences replaced).
    pub fn redact_bytes(&self, bytes: &[u8]) -> String {
        self.redact(&String::from_utf8_lossy(bytes))
    }
}

/// PEM private key blocks (`-----BEGIN ... PRIVATE KEY-----` to the matching END line) become
/// `-----BEGIN ... PRIVATE KEY-----<redacted>-----END ... PRIVATE KEY-----` (on one line, so
/// that a JSON string stays one). A block without its END line is cut to the end of the text.
fn redact_pem(s: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let Some(b) = rest.find(BEGIN) else {
            out.push_str(rest);
            return out;
        };
        let after = &rest[b + BEGIN.len()..];
        let label = after.find("-----").map(|e| &after[..e]);
        let Some(label) = label
            .filter(|l| l.contains("PRIVATE KEY") && l.len() <= 64 && !l.contains(['\n', '\r']))
        else {
            out.push_str(&rest[..b + BEGIN.len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..b]);
        let end = format!("-----END {label}-----");
        out.push_str(BEGIN);
        out.push_str(label);
        out.push_str("-----");
        out.push_str(REDACTED);
        let body = &after[label.len() + 5..];
        match body.find(&end) {
            Some(p) => {
                out.push_str(&end);
                rest = &body[p + end.len()..];
            }
            None => return out,
        }
    }
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_')
}

/// k0s join tokens: base64 of gzip, so they start with `H4sI`; at least 24 characters long.
fn redact_join_tokens(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(p) = s[from..].find("H4sI").map(|p| p + from) {
        let mut e = p;
        while e < b.len() && is_b64(b[e]) {
            e += 1;
        }
        if (p == 0 || !is_b64(b[p - 1])) && e - p >= 24 {
            out.push_str(&s[copied..p]);
            out.push_str(REDACTED);
            copied = e;
        }
        from = e.max(p + 4);
    }
    out.push_str(&s[copied..]);
    out
}

fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// `Bearer <token>` (any case) becomes `Bearer <redacted>`.
fn redact_bearer(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(p) = lower[from..].find("bearer").map(|p| p + from) {
        from = p + 6;
        if p > 0 && b[p - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut v = p + 6;
        while v < b.len() && matches!(b[v], b' ' | b'\t') {
            v += 1;
        }
        if v == p + 6 {
            continue;
        }
        let mut e = v;
        while e < b.len() && is_token_byte(b[e]) {
            e += 1;
        }
        if e > v {
            out.push_str(&s[copied..v]);
            out.push_str(REDACTED);
            copied = e;
            from = e;
        }
    }
    out.push_str(&s[copied..]);
    out
}

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Whether a key's name says its value is secret (`readerPassword`, `client_secret`, `--token`),
/// and not where a secret is (`--token-file`).
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    let k = lower.trim_end_matches(['-', '.', '_']);
    SECRET_KEYS.iter().any(|w| k.contains(w)) && !NOT_SECRET_SUFFIXES.iter().any(|s| k.ends_with(s))
}

fn is_value_end(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b',' | b';' | b'&' | b')' | b']' | b'}' | b'"' | b'\'' | b'\\'
        )
}

fn starts_at(b: &[u8], p: usize, pat: &[u8]) -> bool {
    b.get(p..p + pat.len()) == Some(pat)
}

fn line_end(b: &[u8], p: usize) -> usize {
    b[p..]
        .iter()
        .position(|c| matches!(c, b'\n' | b'\r'))
        .map_or(b.len(), |e| p + e)
}

/// The values of secret keys: `key=value`, `key: value`, `"key":"value"`, `--key=value` and
/// `--key value`, quoted values included, become `<redacted>`.
fn redact_pairs(s: &str) -> String {
    let b = s.as_bytes();
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !is_key_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_key_byte(b[i]) {
            i += 1;
        }
        let key = &lower[start..i];
        if !is_secret_key(key) {
            continue;
        }
        if let Some((vs, ve)) = pair_value(b, &lower, start, i) {
            if vs >= copied && ve > vs {
                out.push_str(&s[copied..vs]);
                out.push_str(REDACTED);
                copied = ve;
                i = i.max(ve);
            }
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// Where the value of the key at `start..end` is, if it has one.
fn pair_value(b: &[u8], lower: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let key = &lower[start..end];
    // `"key": ...`: a JSON (or quoted YAML) key, whose unquoted values are numbers and objects.
    let quoted_key = start > 0 && matches!(b[start - 1], b'"' | b'\'');
    let mut p = end;
    if starts_at(b, p, b"\\\"") {
        p += 2;
    } else if p < b.len() && matches!(b[p], b'"' | b'\'') {
        p += 1;
    }
    let after_key = p;
    while p < b.len() && matches!(b[p], b' ' | b'\t') {
        p += 1;
    }
    if p < b.len() && matches!(b[p], b'=' | b':') {
        let sep = b[p];
        p += 1;
        // `==`, `::`, `://`: a comparison, a path or a URL, not an assignment.
        if p < b.len() && (b[p] == sep || (sep == b':' && b[p] == b'/')) {
            return None;
        }
        while p < b.len() && matches!(b[p], b' ' | b'\t') {
            p += 1;
        }
        return value_at(b, lower, p, quoted_key, key.contains("authorization"));
    }
    // `--key value`
    if key.starts_with("--") && after_key == end && p > end && p < b.len() && b[p] != b'-' {
        return value_at(b, lower, p, false, false);
    }
    None
}

/// The value starting at `p`: quoted (`"..."`, `'...'`, `\"...\"`) or one word.
fn value_at(
    b: &[u8],
    lower: &str,
    p: usize,
    quoted_key: bool,
    auth: bool,
) -> Option<(usize, usize)> {
    if p >= b.len() || matches!(b[p], b'\n' | b'\r') {
        return None;
    }
    if starts_at(b, p, b"\\\"") {
        let vs = p + 2;
        let ve = (vs..b.len())
            .find(|&q| starts_at(b, q, b"\\\""))
            .unwrap_or_else(|| line_end(b, vs));
        return Some((vs, ve)).filter(|(s, e)| e > s && !starts_at(b, *s, REDACTED.as_bytes()));
    }
    if matches!(b[p], b'"' | b'\'') {
        let quote = b[p];
        let vs = p + 1;
        let mut q = vs;
        let mut ve = None;
        while q < b.len() && !matches!(b[q], b'\n' | b'\r') {
            if b[q] == b'\\' {
                q += 2;
                continue;
            }
            if b[q] == quote {
                ve = Some(q);
                break;
            }
            q += 1;
        }
        let ve = ve.unwrap_or_else(|| line_end(b, vs)).min(b.len());
        return Some((vs, ve)).filter(|(s, e)| e > s && !starts_at(b, *s, REDACTED.as_bytes()));
    }
    if quoted_key || matches!(b[p], b'{' | b'[' | b'<') {
        return None;
    }
    let word = |from: usize| {
        let mut e = from;
        while e < b.len() && !is_value_end(b[e]) {
            e += 1;
        }
        e
    };
    let e = word(p);
    if e == p {
        return None;
    }
    if auth && AUTH_SCHEMES.contains(&&lower[p..e]) {
        // `Authorization: Bearer <credential>`: the scheme stays.
        let mut v = e;
        while v < b.len() && matches!(b[v], b' ' | b'\t') {
            v += 1;
        }
        if v == e || v >= b.len() || b[v] == b'<' {
            return None;
        }
        let ve = word(v);
        return Some((v, ve)).filter(|(s, e)| e > s);
    }
    Some((p, e))
}

// ---------------------------------------------------------------------------------------------
// Collecting.

/// `YYYYmmddTHHMMSSZ` of `t`.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A file or directory name made of `[A-Za-z0-9._-]` only (anything else becomes `_`), never
/// `.` or `..`.
fn safe_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() || n.chars().all(|c| c == '.') {
        format!("_{n}")
    } else {
        n
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        b.create(path)
    }
}

/// Writes `text` to a new file `path`, 0600.
fn write_private(path: &Path, text: &str) -> Result<(), SupportError> {
    use std::io::Write;
    let write = || -> std::io::Result<()> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write().map_err(|source| SupportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `<state>/support-dump-<stamp>` (with `-2`, `-3`, ... when a dump of the same second
/// exists).
fn create_dump_dir(state: &Path, stamp: &str) -> Result<PathBuf, SupportError> {
    let base = format!("{DUMP_PREFIX}{stamp}");
    let mut n = 1;
    loop {
        let path = if n == 1 {
            state.join(&base)
        } else {
            state.join(format!("{base}-{n}"))
        };
        match create_private_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(source) => return Err(SupportError::CreateDir { path, source }),
        }
    }
}

/// How one command ended, for the file and the index.
#[derive(Debug, Clone)]
enum Ran {
    /// It ran; its exit code (`None`: killed by a signal) and the first line of its stderr.
    Exit {
        code: Option<i32>,
        stderr_line: String,
    },
    /// The transport failed: the command's effect and output are unknown.
    Transport(String),
    /// Not run: the host's connection was lost before.
    Skipped,
    /// An optional log file that does not exist on the host.
    Absent,
}

impl Ran {
    fn failed(&self) -> bool {
        match self {
            Ran::Exit { code, .. } => *code != Some(0),
            Ran::Transport(_) | Ran::Skipped => true,
            Ran::Absent => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Ran::Exit { code: Some(0), .. } => "exit 0".into(),
            Ran::Exit { code, stderr_line } => {
                let code =
                    code.map_or_else(|| "killed by a signal".into(), |c| format!("exit {c}"));
                if stderr_line.is_empty() {
                    code
                } else {
                    format!("{code}: {stderr_line}")
                }
            }
            Ran::Transport(e) => format!("not run to the end: {e}"),
            Ran::Skipped => "skipped: the connection was lost".into(),
            Ran::Absent => "absent".into(),
        }
    }
}

/// One line of the index: a file of a host, the command behind it and how it ended.
#[derive(Debug, Clone)]
struct Entry {
    file: String,
    shown: String,
    ran: Ran,
}

/// Runs commands on a host one after the other, writing each file as it goes.
struct HostRun<'a> {
    h: &'a dyn HostExec,
    dir: PathBuf,
    opts: &'a Options,
    redactor: &'a Redactor,
    lost: bool,
    entries: Vec<Entry>,
}

impl HostRun<'_> {
    async fn run(&mut self, cmd: &Cmd) -> (Ran, String) {
        let shown = cmd.to_string();
        if self.lost {
            return (Ran::Skipped, String::new());
        }
        let guard = self.opts.command_timeout + Duration::from_secs(5);
        let r = match tokio::time::timeout(guard, self.h.run(cmd)).await {
            Ok(r) => r,
            Err(_) => Err(ExecError::Timeout {
                host: self.h.host().to_string(),
                after: guard,
                what: shown.clone(),
            }),
        };
        match r {
            Ok(o) => {
                let stdout = o.stdout_text();
                let stderr = o.stderr_text();
                let stderr_line = stderr
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>();
                let mut body = String::new();
                if !stdout.is_empty() {
                    body.push_str(&stdout);
                    if !stdout.ends_with('\n') {
                        body.push('\n');
                    }
                }
                if !stderr.is_empty() {
                    body.push_str("--- stderr ---\n");
                    body.push_str(&stderr);
                    if !stderr.ends_with('\n') {
                        body.push('\n');
                    }
                }
                (
                    Ran::Exit {
                        code: o.code,
                        stderr_line: stderr_line.trim().to_string(),
                    },
                    body,
                )
            }
            Err(e) => {
                // A lost connection fails every later command too: they are skipped.
                if matches!(
                    e,
                    ExecError::Unreachable { .. }
                        | ExecError::Disconnected { .. }
                        | ExecError::Closed { .. }
                        | ExecError::Auth { .. }
                        | ExecError::HostKey { .. }
                ) {
                    self.lost = true;
                }
                (Ran::Transport(e.to_string()), String::new())
            }
        }
    }

    /// Runs `read` (which reads the file `path`) when `path` exists on the host; `absent`
    /// otherwise.
    async fn if_exists(&mut self, path: &str, read: &Cmd) -> (Ran, String) {
        let (exists, _) = self.run(&cmd("test", &["-f", path], self.opts)).await;
        match exists {
            Ran::Exit { code: Some(0), .. } => self.run(read).await,
            Ran::Exit { .. } => (Ran::Absent, String::new()),
            other => (other, String::new()),
        }
    }

    /// Notes how `c` ended for the index and appends its section to `text` (of `file`).
    fn record(&mut self, text: &mut String, file: &str, c: &Cmd, ran: Ran, body: &str) {
        section(text, &c.to_string(), &ran, body);
        self.entries.push(Entry {
            file: file.to_string(),
            shown: c.to_string(),
            ran,
        });
    }

    /// Runs `cmds` into the file `file` (relative to the host's directory): per command a
    /// header with the command and how it ended, then its output.
    async fn file(&mut self, file: &str, cmds: &[Cmd]) -> Result<(), SupportError> {
        let mut text = String::new();
        for c in cmds {
            let (ran, body) = self.run(c).await;
            self.record(&mut text, file, c, ran, &body);
        }
        write_private(&self.dir.join(file), &self.redactor.redact(&text))
    }
}

fn section(text: &mut String, shown: &str, ran: &Ran, body: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!("==> {shown} <==\n# {}\n", ran.describe()));
    text.push_str(body);
}

fn cmd(program: &str, args: &[&str], opts: &Options) -> Cmd {
    Cmd::new(program)
        .args(args.iter().copied())
        .sudo()
        .timeout(opts.command_timeout)
}

/// Collects one connected host into `dir`.
async fn collect_host(
    h: &dyn HostExec,
    dir: PathBuf,
    opts: &Options,
    redactor: &Redactor,
) -> Result<Vec<Entry>, SupportError> {
    let n = opts.log_lines.to_string();
    let mut r = HostRun {
        h,
        dir,
        opts,
        redactor,
        lost: false,
        entries: Vec::new(),
    };
    r.file("docker-ps-a.txt", &[cmd("docker", &["ps", "-a"], opts)])
        .await?;
    r.file("docker-info.txt", &[cmd("docker", &["info"], opts)])
        .await?;
    r.file("k0s-status.txt", &[cmd("k0s", &["status"], opts)])
        .await?;
    r.file("k0s-version.txt", &[cmd("k0s", &["version"], opts)])
        .await?;
    r.file(
        "df.txt",
        &[cmd("df", &["-h"], opts), cmd("df", &["-i"], opts)],
    )
    .await?;
    // The ferry host lock: absent unless a run holds (or held, and crashed) the host.
    let mut text = String::new();
    let lock = cmd("cat", &[HOST_LOCK_OWNER], opts);
    let (ran, body) = r.if_exists(HOST_LOCK_OWNER, &lock).await;
    r.record(&mut text, "host-lock.txt", &lock, ran, &body);
    write_private(&r.dir.join("host-lock.txt"), &redactor.redact(&text))?;

    // k0s logs: systemd's journal, and the log files of OpenRC hosts when they exist.
    let mut text = String::new();
    let journal = cmd(
        "journalctl",
        &[
            "-u",
            "k0scontroller",
            "-u",
            "k0sworker",
            "--no-pager",
            "-n",
            &n,
        ],
        opts,
    );
    let (ran, body) = r.run(&journal).await;
    r.record(&mut text, "k0s-logs.txt", &journal, ran, &body);
    for log in ["/var/log/k0scontroller.log", "/var/log/k0sworker.log"] {
        let tail = cmd("tail", &["-n", &n, log], opts);
        let (ran, body) = r.if_exists(log, &tail).await;
        r.record(&mut text, "k0s-logs.txt", &tail, ran, &body);
    }
    write_private(&r.dir.join("k0s-logs.txt"), &redactor.redact(&text))?;

    // MKE 3 logs: every ucp-* container.
    let list = cmd("docker", &["ps", "-a", "--format", "{{.Names}}"], opts);
    let (ran, body) = r.run(&list).await;
    let names: Vec<String> = match &ran {
        Ran::Exit { code: Some(0), .. } => {
            let mut v: Vec<String> = body
                .lines()
                .map(str::trim)
                .filter(|n| n.starts_with("ucp-"))
                .map(str::to_string)
                .collect();
            v.sort();
            v.dedup();
            v.truncate(MAX_CONTAINERS);
            v
        }
        _ => Vec::new(),
    };
    r.entries.push(Entry {
        file: format!("{MKE3_LOGS_DIR}/"),
        shown: if names.is_empty() && !ran.failed() {
            format!("{list} (no ucp-* container)")
        } else {
            list.to_string()
        },
        ran,
    });
    if !names.is_empty() {
        let logs = r.dir.join(MKE3_LOGS_DIR);
        create_private_dir(&logs).map_err(|source| SupportError::CreateDir {
            path: logs.clone(),
            source,
        })?;
        let mut used = std::collections::BTreeSet::new();
        for name in &names {
            // Docker's names are file-safe already; two that are not could meet.
            let mut base = safe_name(name);
            while !used.insert(base.clone()) {
                base.push('_');
            }
            let file = format!("{MKE3_LOGS_DIR}/{base}.txt");
            r.file(&file, &[cmd("docker", &["logs", "--tail", &n, name], opts)])
                .await?;
        }
    }
    Ok(r.entries)
}

/// What became of one host.
struct HostDone {
    spec_name: String,
    dir_name: String,
    unreachable: Option<String>,
    entries: Vec<Entry>,
}

/// What every host's collection shares.
struct Ctx<'a> {
    connector: &'a Arc<dyn Connector>,
    root: &'a Path,
    opts: &'a Options,
    redactor: &'a Redactor,
    log: &'a Logger,
    permits: Semaphore,
}

async fn dump_host(
    cx: &Ctx<'_>,
    spec: &HostSpec,
    dir_name: String,
) -> Result<HostDone, SupportError> {
    let Ctx {
        connector,
        root,
        opts,
        redactor,
        log,
        ..
    } = *cx;
    let _permit = cx.permits.acquire().await.ok();
    let name = spec.name();
    let dir = root.join(&dir_name);
    create_private_dir(&dir).map_err(|source| SupportError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let connected = match tokio::time::timeout(opts.connect_timeout, connector.connect(spec)).await
    {
        Ok(r) => r,
        Err(_) => Err(ExecError::Timeout {
            host: name.clone(),
            after: opts.connect_timeout,
            what: "connect".into(),
        }),
    };
    let h = match connected {
        Ok(h) => h,
        Err(e) => {
            let why = redactor.redact(&e.to_string());
            log.warn(format!("Support dump: {name} is unreachable: {why}"));
            write_private(
                &dir.join("unreachable.txt"),
                &format!("cannot connect to {name}: {why}\n"),
            )?;
            return Ok(HostDone {
                spec_name: name,
                dir_name,
                unreachable: Some(why),
                entries: Vec::new(),
            });
        }
    };
    let r = collect_host(h.as_ref(), dir, opts, redactor).await;
    let _ = h.close().await;
    Ok(HostDone {
        spec_name: name,
        dir_name,
        unreachable: None,
        entries: r?,
    })
}

/// The files of the state directory a dump copies, relative to it: the journal, then the
/// summaries (`*summary*.txt`) at its top and one directory down (a results folder such as
/// `mke-upgrade/summary.txt`; never an earlier dump's).
fn state_files(state: &Path) -> Vec<String> {
    fn summaries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.') && n.contains("summary") && n.ends_with(".txt"))
            .collect();
        names.sort();
        names
    }
    let mut files = vec![JOURNAL_FILE.to_string()];
    files.extend(summaries(state));
    let mut subdirs: Vec<String> = std::fs::read_dir(state)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.') && !n.starts_with(DUMP_PREFIX))
        .collect();
    subdirs.sort();
    for d in subdirs {
        files.extend(
            summaries(&state.join(&d))
                .into_iter()
                .map(|f| format!("{d}/{f}")),
        );
    }
    files
}

/// [`collect_with`] with the default [`Options`].
pub async fn collect(
    connector: &Arc<dyn Connector>,
    state_dir: &Path,
    secrets: &Redactor,
    log: &Logger,
) -> Result<Bundle, SupportError> {
    collect_with(connector, state_dir, secrets, log, &Options::default()).await
}

/// Makes a support dump of the run whose journal is in `state_dir`: its hosts (from the
/// journal's header) connected concurrently, at most `opts.parallel_hosts` at a time, and
/// collected into `<state_dir>/support-dump-<UTC time>/` with the journal, the summaries and
/// `index.txt`, every file redacted by `secrets`. Fails only when the journal cannot be read or
/// the bundle cannot be written.
pub async fn collect_with(
    connector: &Arc<dyn Connector>,
    state_dir: &Path,
    secrets: &Redactor,
    log: &Logger,
    opts: &Options,
) -> Result<Bundle, SupportError> {
    let replay = Replay::read(state_dir).map_err(|e| SupportError::of_journal(state_dir, e))?;
    let now = SystemTime::now();
    let stamp = utc_stamp(now);
    let root = create_dump_dir(state_dir, &stamp)?;
    log.info(format!(
        "Collecting a support dump of {} host(s) into {}",
        replay.hosts.len(),
        root.display()
    ));

    // One directory per host, by its name made file-safe (and unique).
    let mut used = std::collections::BTreeSet::new();
    let mut dir_names = Vec::new();
    for spec in &replay.hosts {
        let base = safe_name(&spec.name());
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.clone()) || name == MKE3_LOGS_DIR {
            name = format!("{base}-{n}");
            n += 1;
        }
        dir_names.push(name);
    }
    let cx = Ctx {
        connector,
        root: &root,
        opts,
        redactor: secrets,
        log,
        permits: Semaphore::new(opts.parallel_hosts.max(1)),
    };
    let futs: Vec<_> = replay
        .hosts
        .iter()
        .zip(dir_names)
        .map(|(spec, dir_name)| dump_host(&cx, spec, dir_name))
        .collect();
    let done: Vec<HostDone> = join_all(futs).await.into_iter().collect::<Result<_, _>>()?;

    // The state directory's journal and summaries.
    let mut copied = Vec::new();
    for name in state_files(state_dir) {
        let from = state_dir.join(&name);
        match std::fs::read(&from) {
            Ok(bytes) => {
                if let Some((sub, _)) = name.split_once('/') {
                    let d = root.join(sub);
                    if !d.is_dir() {
                        create_private_dir(&d)
                            .map_err(|source| SupportError::CreateDir { path: d, source })?;
                    }
                }
                write_private(&root.join(&name), &secrets.redact_bytes(&bytes))?;
                copied.push(format!("  {name}\n"));
            }
            Err(e) => copied.push(format!("  {name}: not copied: {e}\n")),
        }
    }

    let index = index_text(&replay, state_dir, &stamp, &copied, &done);
    write_private(&root.join(INDEX_FILE), &secrets.redact(&index))?;

    let hosts: Vec<HostResult> = done
        .iter()
        .map(|d| HostResult {
            host: d.spec_name.clone(),
            unreachable: d.unreachable.clone(),
            failed: d.entries.iter().filter(|e| e.ran.failed()).count(),
        })
        .collect();
    let bundle = Bundle { dir: root, hosts };
    log.debug(format!(
        "Support dump written to {} ({} host(s) unreachable, {} command(s) failed: see {INDEX_FILE})",
        bundle.dir.display(),
        bundle.unreachable().len(),
        bundle.failed_commands()
    ));
    Ok(bundle)
}

fn index_text(
    replay: &Replay,
    state_dir: &Path,
    stamp: &str,
    copied: &[String],
    done: &[HostDone],
) -> String {
    let outcome = match (&replay.finished, replay.interrupted) {
        (Some(o), _) => o.clone(),
        (None, true) => "interrupted".into(),
        (None, false) => "unfinished".into(),
    };
    let mut s = String::new();
    s.push_str("ferry support dump\n\n");
    s.push_str(&format!("run:         {}\n", replay.run_id));
    s.push_str(&format!("flow:        {}\n", replay.flow));
    s.push_str(&format!("outcome:     {outcome}\n"));
    if let Some(r) = &replay.rollback_reason {
        s.push_str(&format!("rolled back: {r}\n"));
    }
    s.push_str(&format!("collected:   {stamp}\n"));
    s.push_str(&format!("state dir:   {}\n", state_dir.display()));
    s.push_str(
        "redacted:    every file (known secrets, PEM private keys, the values of password, secret and token keys, Authorization headers, k0s join tokens)\n",
    );
    s.push_str("\nFrom the state directory:\n");
    for c in copied {
        s.push_str(c);
    }
    let mut failed = 0;
    for d in done {
        s.push('\n');
        match &d.unreachable {
            Some(why) => {
                s.push_str(&format!(
                    "Host {} ({}/): UNREACHABLE: {why}\n",
                    d.spec_name, d.dir_name
                ));
            }
            None => {
                s.push_str(&format!("Host {} ({}/):\n", d.spec_name, d.dir_name));
                for e in &d.entries {
                    let mark = if e.ran.failed() {
                        failed += 1;
                        "FAILED"
                    } else {
                        "ok"
                    };
                    s.push_str(&format!(
                        "  {mark:<6}  {:<28}  {}  [{}]\n",
                        e.file,
                        e.shown,
                        e.ran.describe()
                    ));
                }
            }
        }
    }
    let unreachable = done.iter().filter(|d| d.unreachable.is_some()).count();
    s.push_str(&format!(
        "\nSummary: {} host(s), {} unreachable; {failed} command(s) failed.\n",
        done.len(),
        unreachable
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{MemoryLog, Plan};
    use crate::exec::{FileSpec, Output};
    use crate::journal::{Journal, Record};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    const PW: &str = "Sup3r-S3cret!";
    const KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1x2\nabcdEFGH+/==\n-----END RSA PRIVATE KEY-----";

    fn r() -> Redactor {
        Redactor::new().with(PW)
    }

    #[test]
    fn known_secrets_are_redacted_and_short_ones_ignored() {
        let red = Redactor::new().with(PW).with("abc").with("   ").with("");
        assert_eq!(red.known_count(), 1);
        assert_eq!(
            red.redact(&format!("login as admin with {PW} then {PW}.")),
            "login as admin with <redacted> then <redacted>."
        );
        // "abc" is too short to be redacted.
        assert_eq!(red.redact("abcdef abc"), "abcdef abc");
        // The JSON-escaped form of a value with quotes and backslashes.
        let red = Redactor::new().with(r#"pa"ss\wd"#);
        assert_eq!(red.known_count(), 2);
        assert_eq!(
            red.redact(r#"{"x":"pa\"ss\\wd"} pa"ss\wd"#),
            r#"{"x":"<redacted>"} <redacted>"#
        );
        assert!(!format!("{red:?}").contains("pa"));
    }

    #[test]
    fn pem_private_keys_are_redacted_but_certificates_are_not() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----";
        let text = format!("before\n{KEY}\nmiddle\n{cert}\nafter\n");
        let out = r().redact(&text);
        assert_eq!(
            out,
            format!(
                "before\n-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA PRIVATE KEY-----\nmiddle\n{cert}\nafter\n"
            )
        );
        for label in [
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ] {
            let k = format!("-----BEGIN {label}-----\nAAAAsecretbody\n-----END {label}-----");
            assert!(!r().redact(&k).contains("AAAAsecretbody"), "{label}");
        }
        // Inside a JSON string (escaped newlines) it stays one JSON string.
        let json = serde_json::json!({ "key": KEY }).to_string();
        let out = r().redact(&json);
        assert!(!out.contains("MIIEow"), "{out}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        // A block cut off before its END line: cut to the end.
        let out = r().redact("x\n-----BEGIN PRIVATE KEY-----\nMIIEtruncated");
        assert_eq!(out, "x\n-----BEGIN PRIVATE KEY-----<redacted>");
    }

    #[test]
    fn values_of_secret_keys_are_redacted_in_every_form() {
        let cases = [
            ("password=hunter22", "password=<redacted>"),
            ("PASSWORD=hunter22 next", "PASSWORD=<redacted> next"),
            ("db_passwd = hunter22", "db_passwd = <redacted>"),
            (
                "password: hunter22\nuser: bob",
                "password: <redacted>\nuser: bob",
            ),
            ("  ldap.bindPW: 'x y z'\n", "  ldap.bindPW: '<redacted>'\n"),
            (
                r#"{"password":"hunter22","user":"bob"}"#,
                r#"{"password":"<redacted>","user":"bob"}"#,
            ),
            (
                r#"{"clientSecret": "s3cr3t", "n": 1}"#,
                r#"{"clientSecret": "<redacted>", "n": 1}"#,
            ),
            (
                r#"{"error":"run failed: token=\"abcd1234\" rest"}"#,
                r#"{"error":"run failed: token=\"<redacted>\" rest"}"#,
            ),
            (
                r#"{"msg":"{\"passphrase\":\"abcd\"}"}"#,
                r#"{"msg":"{\"passphrase\":\"<redacted>\"}"}"#,
            ),
            (
                "k0s install --token=abcd1234 --x",
                "k0s install --token=<redacted> --x",
            ),
            (
                "mkectl --admin-password hunter22 --verbose",
                "mkectl --admin-password <redacted> --verbose",
            ),
            (
                "https://h/x?token=abcd&y=1",
                "https://h/x?token=<redacted>&y=1",
            ),
            (
                "MKE3_ADMIN_PASSWORD=hunter22",
                "MKE3_ADMIN_PASSWORD=<redacted>",
            ),
            (
                "level=info msg=\"x\" join_token=abcd,ok",
                "level=info msg=\"x\" join_token=<redacted>,ok",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Redactor::new().redact(input), want, "{input}");
        }
    }

    #[test]
    fn bearer_tokens_and_authorization_headers_are_redacted() {
        let red = Redactor::new();
        assert_eq!(
            red.redact("Authorization: Bearer eyJhbGciOi.J9.sig_-x"),
            "Authorization: Bearer <redacted>"
        );
        assert_eq!(
            red.redact("curl -H 'authorization: bearer abc.def' https://x"),
            "curl -H 'authorization: bearer <redacted>' https://x"
        );
        assert_eq!(
            red.redact("Authorization: Basic YWRtaW46cGFzcw=="),
            "Authorization: Basic <redacted>"
        );
        assert_eq!(
            red.redact(r#"{"Authorization":"Bearer abc"}"#),
            r#"{"Authorization":"<redacted>"}"#
        );
    }

    #[test]
    fn k0s_join_tokens_are_redacted() {
        let token = format!("H4sIAAAAAAAC/{}==", "AbCd0123+/".repeat(20));
        let red = Redactor::new();
        assert_eq!(
            red.redact(&format!("join with {token}\n")),
            "join with <redacted>\n"
        );
        assert_eq!(red.redact(&format!("\"{token}\"")), "\"<redacted>\"");
        // Too short, or in the middle of another word: left alone.
        assert_eq!(red.redact("H4sIabc"), "H4sIabc");
        assert_eq!(
            red.redact("xH4sIAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            "xH4sIAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
    }

    #[test]
    fn text_without_secrets_passes_unchanged() {
        let texts = [
            "CONTAINER ID   IMAGE                         COMMAND   CREATED   STATUS   NAMES\n\
             1a2b3c4d5e6f   mirantis/ucp-agent:3.7.15     \"/bin/ucp-agent\"   2 days ago   Up 2 days   ucp-kv\n",
            "Filesystem      Size  Used Avail Use% Mounted on\n/dev/sda1        40G   12G   28G  30% /\n",
            "Version: v1.31.1+k0s.0\nProcess ID: 1234\nRole: controller\nWorkloads: true\n",
            "Swarm: active\n NodeID: abc\n Is Manager: true\n Managers: 3\n",
            "k0s token create --role=worker failed: exit 1\n",
            "the token expired; create a new one\n",
            "secret/ucp-auth created\nkind: Secret\ntype: kubernetes.io/service-account-token\n",
            "--token-file /etc/k0s/join-token --password-stdin\n",
            "token_ttl == 3; url: https://x/token://y\n",
            "{\"v\":2,\"seq\":1,\"unix\":1,\"type\":\"header\",\"run_id\":\"1-00001\",\"inputs\":{\"token_ttl\":3600}}\n",
            "héllo wörld — ünïcode ✓ password\n",
            "",
        ];
        for t in texts {
            assert_eq!(r().redact(t), t);
        }
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let t = format!(
            "password=abcd {PW} Authorization: Bearer xyz\n{KEY}\n--token abc \"secret\": \"v\" H4sI{}",
            "A".repeat(40)
        );
        let once = r().redact(&t);
        assert_eq!(r().redact(&once), once);
        assert!(!once.contains(PW) && !once.contains("MIIEow") && !once.contains("xyz"));
    }

    #[test]
    fn utc_stamps() {
        let t = |s: u64| utc_stamp(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "19700101T000000Z");
        assert_eq!(t(951_782_400), "20000229T000000Z");
        assert_eq!(t(1_767_225_599), "20251231T235959Z");
        assert_eq!(t(1_772_323_200), "20260301T000000Z");
    }

    #[test]
    fn names_are_made_file_safe() {
        assert_eq!(safe_name("10.0.0.1:2222"), "10.0.0.1_2222");
        assert_eq!(safe_name(".."), "_..");
        assert_eq!(safe_name("ucp-kv"), "ucp-kv");
        assert_eq!(safe_name("a/b"), "a_b");
    }

    // A tiny fake host: answers by program and arguments, 127 for anything else.
    #[derive(Debug)]
    struct Fake {
        name: String,
        answers: BTreeMap<String, Output>,
        /// Every command from this one on fails with a lost connection.
        lose_at: Option<String>,
        calls: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl HostExec for Fake {
        fn host(&self) -> &str {
            &self.name
        }
        async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
            let line = format!("{} {}", cmd.program, cmd.args.join(" "));
            assert!(cmd.sudo && cmd.timeout.is_some(), "{line}");
            let mut calls = self.calls.lock().unwrap();
            calls.push(line.clone());
            if let Some(at) = &self.lose_at {
                if calls.iter().any(|c| c == at) {
                    return Err(ExecError::Disconnected {
                        host: self.name.clone(),
                        cmd: line,
                        detail: "broken pipe".into(),
                    });
                }
            }
            Ok(self.answers.get(&line).cloned().unwrap_or(Output {
                code: Some(127),
                stdout: Vec::new(),
                stderr: format!("sh: 1: {}: not found\n", cmd.program).into_bytes(),
            }))
        }
        async fn put_file(&self, _: &str, _: &[u8], _: &FileSpec) -> Result<(), ExecError> {
            panic!("a support dump never writes to a host");
        }
        async fn close(&self) -> Result<(), ExecError> {
            Ok(())
        }
    }

    #[derive(Debug, Default)]
    struct Conn {
        hosts: BTreeMap<String, Arc<Fake>>,
    }

    #[async_trait::async_trait]
    impl Connector for Conn {
        async fn connect(&self, spec: &HostSpec) -> Result<Arc<dyn HostExec>, ExecError> {
            match self.hosts.get(&spec.name()) {
                Some(h) => Ok(h.clone()),
                None => Err(ExecError::Unreachable {
                    host: spec.name(),
                    detail: "no route to host".into(),
                }),
            }
        }
    }

    fn ok(s: &str) -> Output {
        Output {
            code: Some(0),
            stdout: s.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    fn spec(address: &str, port: u16) -> HostSpec {
        HostSpec {
            address: address.into(),
            port,
            user: "docker".into(),
            key_path: None,
            private_address: None,
            private_interface: None,
            bastion: None,
            sudo: true,
            known_hosts_policy: Default::default(),
        }
    }

    fn journal(dir: &Path, hosts: Vec<HostSpec>) {
        let mut j = Journal::create(
            dir,
            Record::Header {
                run_id: "1700000000-00001".into(),
                flow: "mke3-to-mke4".into(),
                tool: "ferry test".into(),
                inputs: serde_json::json!({ "note": format!("password={PW}") }),
                hosts,
                plan: Plan {
                    flow: "mke3-to-mke4".into(),
                    phases: vec![],
                },
            },
        )
        .unwrap();
        j.append(Record::RollbackStarted {
            reason: "step failed".into(),
        })
        .unwrap();
        j.append(Record::Finished {
            outcome: "rolled-back".into(),
        })
        .unwrap();
    }

    fn manager() -> Fake {
        let mut a = BTreeMap::new();
        a.insert(
            "docker ps -a".into(),
            ok("ucp-kv\nucp-controller\nmy-app\n"),
        );
        a.insert(
            "docker ps -a --format {{.Names}}".into(),
            ok("ucp-kv\nucp-controller\nmy-app\n"),
        );
        a.insert(
            "docker info".into(),
            ok(&format!("Swarm: active\n{KEY}\nRegistry: x\n")),
        );
        a.insert(
            "cat /run/lock/ferry/owner".into(),
            ok(&format!("{{\"owner\":\"a@b\",\"note\":\"{PW}\"}}\n")),
        );
        a.insert("test -f /var/log/k0scontroller.log".into(), ok(""));
        a.insert("test -f /run/lock/ferry/owner".into(), ok(""));
        a.insert(
            "test -f /var/log/k0sworker.log".into(),
            Output {
                code: Some(1),
                ..Output::default()
            },
        );
        a.insert(
            "tail -n 2000 /var/log/k0scontroller.log".into(),
            ok("time=x level=info msg=\"joining\" token=H4sIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"),
        );
        a.insert(
            "docker logs --tail 2000 ucp-kv".into(),
            Output {
                code: Some(0),
                stdout: b"kv up\n".to_vec(),
                stderr: format!("login with password {PW}\n").into_bytes(),
            },
        );
        Fake {
            name: "10.0.0.11".into(),
            answers: a,
            lose_at: None,
            calls: Mutex::new(Vec::new()),
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

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn collects_every_host_into_a_private_redacted_bundle() {
        let d = tempfile::tempdir().unwrap();
        let lost = Fake {
            name: "10.0.0.12:2222".into(),
            answers: BTreeMap::new(),
            lose_at: Some("k0s status".into()),
            calls: Mutex::new(Vec::new()),
        };
        let hosts = vec![
            spec("10.0.0.11", 22),
            spec("10.0.0.12", 2222),
            spec("10.0.0.13", 22),
        ];
        journal(d.path(), hosts);
        std::fs::write(d.path().join("upgrade-summary.txt"), format!("pw {PW}\n")).unwrap();
        std::fs::write(d.path().join("mke4.yaml"), "not copied\n").unwrap();
        std::fs::create_dir(d.path().join("mke-upgrade")).unwrap();
        std::fs::write(
            d.path().join("mke-upgrade/summary.txt"),
            format!("token: {PW}\n"),
        )
        .unwrap();
        let mut conn = Conn::default();
        conn.hosts.insert("10.0.0.11".into(), Arc::new(manager()));
        conn.hosts.insert("10.0.0.12:2222".into(), Arc::new(lost));
        let conn: Arc<dyn Connector> = Arc::new(conn);
        let mem = MemoryLog::new();
        let log = Logger::new(mem.clone());
        let b = collect(&conn, d.path(), &r(), &log).await.unwrap();

        let name = b.dir.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with(DUMP_PREFIX) && name.ends_with('Z'),
            "{name}"
        );
        assert_eq!(b.dir.parent().unwrap(), d.path());
        assert_eq!(b.unreachable(), vec!["10.0.0.13"]);
        assert_eq!(b.hosts.len(), 3);

        let rel: Vec<String> = files_under(&b.dir)
            .iter()
            .map(|p| p.strip_prefix(&b.dir).unwrap().display().to_string())
            .collect();
        for f in [
            "index.txt",
            "journal.jsonl",
            "upgrade-summary.txt",
            "mke-upgrade/summary.txt",
            "10.0.0.11/docker-ps-a.txt",
            "10.0.0.11/docker-info.txt",
            "10.0.0.11/k0s-status.txt",
            "10.0.0.11/k0s-version.txt",
            "10.0.0.11/df.txt",
            "10.0.0.11/host-lock.txt",
            "10.0.0.11/k0s-logs.txt",
            "10.0.0.11/mke3-logs/ucp-kv.txt",
            "10.0.0.11/mke3-logs/ucp-controller.txt",
            "10.0.0.12_2222/docker-ps-a.txt",
            "10.0.0.13/unreachable.txt",
        ] {
            assert!(rel.contains(&f.to_string()), "{f} missing from {rel:?}");
        }
        assert!(!rel.iter().any(|f| f.contains("my-app") || f == "mke4.yaml"));

        // Nothing secret anywhere, and everything private.
        for p in files_under(&b.dir) {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(!text.contains(PW), "{}: {text}", p.display());
            assert!(!text.contains("MIIEow"), "{}: {text}", p.display());
            assert!(!text.contains("H4sIAAAA"), "{}: {text}", p.display());
            #[cfg(unix)]
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        #[cfg(unix)]
        {
            assert_eq!(mode(&b.dir), 0o700);
            assert_eq!(mode(&b.dir.join("10.0.0.11")), 0o700);
            assert_eq!(mode(&b.dir.join("10.0.0.11/mke3-logs")), 0o700);
        }
        // The journal copy is still a journal.
        let copy = std::fs::read_to_string(b.dir.join("journal.jsonl")).unwrap();
        for l in copy.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }

        // A command the host does not know: its exit status and stderr, in the file and index.
        let logs = std::fs::read_to_string(b.dir.join("10.0.0.11/k0s-logs.txt")).unwrap();
        assert!(logs.contains("==> sudo -n journalctl -u k0scontroller -u k0sworker --no-pager -n 2000 <==\n# exit 127: sh: 1: journalctl: not found\n"), "{logs}");
        assert!(logs.contains("# absent"), "{logs}");
        assert!(logs.contains("token=<redacted>"), "{logs}");
        let ucp = std::fs::read_to_string(b.dir.join("10.0.0.11/mke3-logs/ucp-kv.txt")).unwrap();
        assert!(
            ucp.contains("kv up\n--- stderr ---\nlogin with password <redacted>\n"),
            "{ucp}"
        );

        let index = std::fs::read_to_string(b.dir.join("index.txt")).unwrap();
        assert!(index.contains("outcome:     rolled-back\n"), "{index}");
        assert!(
            index.contains("Authorization headers, k0s join tokens)\n"),
            "the index's own words survive redaction: {index}"
        );
        assert!(
            index.contains(
                "Host 10.0.0.13 (10.0.0.13/): UNREACHABLE: 10.0.0.13: unreachable: no route to host"
            ),
            "{index}"
        );
        assert!(index.contains("  ok      docker-ps-a.txt"), "{index}");
        assert!(index.contains("FAILED  df.txt                        sudo -n df -h  [exit 127: sh: 1: df: not found]"), "{index}");
        assert!(
            index.contains("skipped: the connection was lost"),
            "{index}"
        );
        assert!(index.contains("connection lost during"), "{index}");
        assert!(
            index.contains("  journal.jsonl\n  upgrade-summary.txt\n  mke-upgrade/summary.txt\n"),
            "{index}"
        );
        assert!(
            index.contains("Summary: 3 host(s), 1 unreachable;"),
            "{index}"
        );
        assert!(
            mem.text()
                .contains("Support dump: 10.0.0.13 is unreachable")
        );
        assert!(!mem.text().contains(PW));

        // A second dump in the same second gets its own directory.
        let again = collect(&conn, d.path(), &r(), &log).await.unwrap();
        assert_ne!(again.dir, b.dir);
    }

    #[tokio::test]
    async fn without_a_journal_the_error_names_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let conn: Arc<dyn Connector> = Arc::new(Conn::default());
        let e = collect(&conn, d.path(), &Redactor::new(), &Logger::null())
            .await
            .unwrap_err();
        assert!(matches!(e, SupportError::NoJournal { .. }));
        assert_eq!(
            e.to_string(),
            format!(
                "no journal in {}: no run to make a support dump of",
                d.path().display()
            )
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
