//! The fake host: a small interpreter of the commands ferry runs (and of the command set of the
//! `HostExec` conformance suite) over a host's files, services, containers and k0s state.
//!
//! Interpreted commands: `true`, `false`, `echo`, `printf`, `cat` (stdin, files, `/proc/meminfo`),
//! `sleep` (honours `Cmd::timeout`, on tokio time), `id -u`/`-un`, `stat -c` (`%a %U %s %Y`),
//! `test -f/-e/-d`, `head -c N /dev/zero`, `mkdir [-p]`, `rm [-r|-f|-rf]`, `rmdir`, `ls -A`,
//! `touch`, `chmod`, `date +%s`, `hostname`, `nproc`, `df -B1 --output=avail`, `ss -Htln`,
//! `du -sb PATH…`, `sh -c` with the conformance suite's three scripts, `curl -sSLf -o FILE URL`,
//! `tar -C DIR -czf ARCHIVE PATH…` / `tar -C DIR -xzf ARCHIVE`, `systemctl`, `docker` (ps,
//! inspect, start, stop, rm, create, volume ls/rm, exec etcdctl (snapshot save, endpoint
//! health, endpoint status -w json, alarm list), cp, run etcdctl snapshot restore, info, swarm
//! leave) and `k0s` (install, start, stop, status, reset, token create, version). Anything else
//! is exit 127, as a shell says.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::world::{Call, Container, FsEntry, HostState, Service, World, WorldState, mkdirs};
use ferry_core::exec::{Cmd, Connector, ExecError, FileSpec, HostExec, Output};
use ferry_core::hosts::HostSpec;

/// What a joining k0s node keeps once its first start has used the join token.
const K0S_JOINED: &str = "/var/lib/k0s/kubelet.conf";

/// The k0s version the fake's binary reports.
pub const FAKE_K0S_VERSION: &str = "v1.31.1+k0s.1";

/// Connects to the fake hosts of a world.
#[derive(Debug, Clone)]
pub struct FakeConnector {
    world: World,
}

impl FakeConnector {
    pub fn new(world: &World) -> Self {
        Self {
            world: world.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Connector for FakeConnector {
    async fn connect(&self, spec: &HostSpec) -> Result<Arc<dyn HostExec>, ExecError> {
        let name = spec.name();
        let s = self.world.state();
        let h = s.hosts.get(&name).ok_or_else(|| ExecError::Unreachable {
            host: name.clone(),
            detail: "no route to host".into(),
        })?;
        if h.killed {
            return Err(ExecError::Unreachable {
                host: name,
                detail: "connection refused".into(),
            });
        }
        if h.cut {
            return Err(ExecError::Timeout {
                host: name,
                after: Duration::from_secs(10),
                what: "connect".into(),
            });
        }
        drop(s);
        Ok(Arc::new(FakeHost::new(
            &self.world,
            &name,
            &spec.user,
            true,
        )))
    }
}

/// A connection to one fake host.
#[derive(Debug)]
pub struct FakeHost {
    world: World,
    host: String,
    user: String,
    sudo_ok: bool,
    closed: AtomicBool,
}

impl FakeHost {
    /// A connection as `user`; `sudo_ok` says whether `sudo -n` works for that user.
    pub fn new(world: &World, host: &str, user: &str, sudo_ok: bool) -> Self {
        Self {
            world: world.clone(),
            host: host.into(),
            user: user.into(),
            sudo_ok,
            closed: AtomicBool::new(false),
        }
    }

    fn check_link(&self, what: &str) -> Result<(), ExecError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ExecError::Closed {
                host: self.host.clone(),
            });
        }
        let s = self.world.state();
        match s.hosts.get(&self.host) {
            Some(h) if h.killed || h.cut => Err(ExecError::Disconnected {
                host: self.host.clone(),
                cmd: what.into(),
                detail: "connection reset by peer".into(),
            }),
            Some(_) => Ok(()),
            None => Err(ExecError::Unreachable {
                host: self.host.clone(),
                detail: "no such host".into(),
            }),
        }
    }

    /// Waits `d` of tokio time unless the host breaks first.
    async fn wait(&self, d: Duration, what: &str) -> Result<(), ExecError> {
        if d.is_zero() {
            return Ok(());
        }
        let Some(mut rx) = self.world.break_receiver(&self.host) else {
            tokio::time::sleep(d).await;
            return Ok(());
        };
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = rx.changed() => Err(ExecError::Disconnected {
                host: self.host.clone(),
                cmd: what.into(),
                detail: "connection reset by peer".into(),
            }),
        }
    }

    fn injected(&self, what: &str, transient: bool) -> ExecError {
        if transient {
            ExecError::Timeout {
                host: self.host.clone(),
                after: Duration::from_secs(30),
                what: format!("{what} (injected fault)"),
            }
        } else {
            ExecError::Disconnected {
                host: self.host.clone(),
                cmd: what.into(),
                detail: "injected fault: connection lost".into(),
            }
        }
    }
}

#[async_trait::async_trait]
impl HostExec for FakeHost {
    fn host(&self) -> &str {
        &self.host
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let shown = cmd.to_string();
        self.check_link(&shown)?;
        let mutating = is_mutating(&cmd.program, &cmd.args);
        self.world
            .record(Call {
                seq: 0,
                backend: "host",
                host: Some(self.host.clone()),
                op: cmd.program.clone(),
                args: cmd.args.clone(),
                sudo: cmd.sudo,
                data: cmd.stdin.clone(),
                mutating,
                step: None,
            })
            .map_err(|i| self.injected(&shown, i.transient))?;
        let latency = self.world.state().latency;
        self.wait(latency, &shown).await?;
        self.check_link(&shown)?;
        if cmd.sudo && !self.sudo_ok {
            return Err(ExecError::Sudo {
                host: self.host.clone(),
                detail: "sudo: a password is required".into(),
            });
        }
        if cmd.program == "sleep" {
            let secs: f64 = cmd
                .args
                .first()
                .and_then(|a| a.parse().ok())
                .unwrap_or(-1.0);
            if secs < 0.0 {
                return Ok(err_out(1, "sleep: invalid time interval\n"));
            }
            let d = Duration::from_secs_f64(secs);
            return match cmd.timeout {
                Some(t) if t < d => {
                    self.wait(t, &shown).await?;
                    Err(ExecError::Timeout {
                        host: self.host.clone(),
                        after: t,
                        what: shown,
                    })
                }
                _ => {
                    self.wait(d, &shown).await?;
                    Ok(ok_out(""))
                }
            };
        }
        let now = self.world.now_unix();
        let user = if cmd.sudo { "root" } else { self.user.as_str() };
        let mut s = self.world.state();
        Ok(exec(
            &mut s,
            &self.host,
            user,
            &self.user,
            &cmd.program,
            &cmd.args,
            cmd.stdin.as_deref().unwrap_or(&[]),
            now,
        ))
    }

    async fn put_file(
        &self,
        path: &str,
        contents: &[u8],
        spec: &FileSpec,
    ) -> Result<(), ExecError> {
        let what = format!("put_file {path}");
        self.check_link(&what)?;
        self.world
            .record(Call {
                seq: 0,
                backend: "host",
                host: Some(self.host.clone()),
                op: "put_file".into(),
                args: vec![path.into(), format!("{:o}", spec.mode)],
                sudo: spec.sudo,
                data: Some(contents.to_vec()),
                mutating: true,
                step: None,
            })
            .map_err(|i| self.injected(&what, i.transient))?;
        let latency = self.world.state().latency;
        self.wait(latency, &what).await?;
        self.check_link(&what)?;
        if spec.sudo && !self.sudo_ok {
            return Err(ExecError::Sudo {
                host: self.host.clone(),
                detail: "sudo: a password is required".into(),
            });
        }
        let now = self.world.now_unix();
        let mut s = self.world.state();
        let h = s.hosts.get_mut(&self.host).ok_or_else(|| ExecError::Io {
            host: self.host.clone(),
            detail: "no such host".into(),
        })?;
        let root = spec.sudo;
        let user = if root { "root" } else { self.user.as_str() };
        if let Err(e) = can_create(h, user, path) {
            return Err(ExecError::Io {
                host: self.host.clone(),
                detail: format!("cannot write {path}: {e}"),
            });
        }
        let owner = spec.owner.clone().unwrap_or_else(|| self.user.clone());
        h.files.insert(
            norm(path),
            FsEntry {
                dir: false,
                content: contents.to_vec(),
                mode: spec.mode & 0o7777,
                owner,
                mtime: now,
            },
        );
        Ok(())
    }

    async fn close(&self) -> Result<(), ExecError> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Whether a command changes anything (for the recorder and the dry-run assertion).
pub fn is_mutating(program: &str, args: &[String]) -> bool {
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match program {
        "true" | "false" | "echo" | "printf" | "cat" | "sleep" | "id" | "stat" | "test"
        | "head" | "ls" | "date" | "hostname" | "uname" | "nproc" | "df" | "ss" | "sh" | "tail"
        | "journalctl" | "du" => false,
        // a TCP probe (`timeout 3 bash -c 'exec 3<>/dev/tcp/ADDR/PORT'`)
        "timeout" if a(1) == "bash" && a(3).starts_with("exec 3<>/dev/tcp/") => false,
        "ip" => !args.iter().any(|x| x == "list" || x == "show"),
        // etcdctl's reads in the ucp-kv container
        "docker" if a(0) == "exec" && a(2) == "etcdctl" => {
            let rest: Vec<&str> = args[3..]
                .iter()
                .map(String::as_str)
                .filter(|x| !x.starts_with("--"))
                .collect();
            !matches!(
                rest.as_slice(),
                ["endpoint", "status" | "health", ..] | ["alarm", "list"]
            )
        }
        "systemctl" => !matches!(a(0), "is-active" | "status" | "is-enabled"),
        "docker" => {
            let sub = if a(0) == "container" || a(0) == "volume" {
                (a(0), a(1))
            } else {
                ("", a(0))
            };
            !matches!(
                sub,
                ("", "ps" | "inspect" | "info" | "version" | "logs")
                    | ("container", "ls" | "inspect")
                    | ("volume", "ls" | "inspect")
            )
        }
        "k0s" => !matches!(a(0), "status" | "version"),
        _ => true,
    }
}

fn ok_out(s: &str) -> Output {
    Output {
        code: Some(0),
        stdout: s.as_bytes().to_vec(),
        stderr: Vec::new(),
    }
}

fn ok_bytes(b: Vec<u8>) -> Output {
    Output {
        code: Some(0),
        stdout: b,
        stderr: Vec::new(),
    }
}

fn err_out(code: i32, s: &str) -> Output {
    Output {
        code: Some(code),
        stdout: Vec::new(),
        stderr: s.as_bytes().to_vec(),
    }
}

fn norm(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((p, _)) => p.into(),
        None => "/".into(),
    }
}

fn under(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || path.starts_with(&format!("{dir}/"))
}

/// Whether `user` may create or replace `path`.
fn can_create(h: &HostState, user: &str, path: &str) -> Result<(), String> {
    let path = norm(path);
    let par = parent(&path);
    match h.files.get(&par) {
        Some(d) if d.dir => {
            if user == "root" || d.owner == user || d.mode & 0o002 != 0 {
                if let Some(existing) = h.files.get(&path) {
                    if existing.dir {
                        return Err("Is a directory".into());
                    }
                }
                Ok(())
            } else {
                Err("Permission denied".into())
            }
        }
        Some(_) => Err("Not a directory".into()),
        None => Err("No such file or directory".into()),
    }
}

fn can_read(f: &FsEntry, user: &str) -> bool {
    user == "root" || f.owner == user || f.mode & 0o004 != 0
}

fn remove_tree(h: &mut HostState, path: &str) {
    let path = norm(path);
    let keys: Vec<String> = h
        .files
        .keys()
        .filter(|k| under(k, &path))
        .cloned()
        .collect();
    for k in keys {
        h.files.remove(&k);
    }
}

fn children(h: &HostState, dir: &str) -> Vec<String> {
    let dir = norm(dir);
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    h.files
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .map(str::to_string)
        .collect()
}

fn write_file(
    h: &mut HostState,
    user: &str,
    path: &str,
    content: Vec<u8>,
    mode: u32,
    now: u64,
) -> Result<(), String> {
    can_create(h, user, path)?;
    let path = norm(path);
    let (mode, owner) = match h.files.get(&path) {
        Some(f) => (f.mode, f.owner.clone()),
        None => (mode, user.to_string()),
    };
    h.files.insert(
        path,
        FsEntry {
            dir: false,
            content,
            mode,
            owner,
            mtime: now,
        },
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Derived state that the cluster and MKE 3 fakes read.

/// k0s unit of a host: `(service name, worker enabled)`.
pub(crate) fn k0s_unit(h: &HostState) -> Option<(&'static str, bool)> {
    if let Some(f) = h.files.get(&unit_path(h, "k0scontroller")) {
        let text = String::from_utf8_lossy(&f.content);
        return Some(("k0scontroller", text.contains("--enable-worker")));
    }
    if h.files.contains_key(&unit_path(h, "k0sworker")) {
        return Some(("k0sworker", true));
    }
    None
}

pub(crate) fn k0s_active(h: &HostState) -> Option<(&'static str, bool)> {
    let (name, worker) = k0s_unit(h)?;
    h.services
        .get(name)
        .filter(|s| s.active)
        .map(|_| (name, worker))
}

pub(crate) fn running(h: &HostState, name: &str) -> bool {
    h.services.get("docker").is_some_and(|s| s.active)
        && h.containers.get(name).is_some_and(|c| c.running)
}

pub(crate) fn kv_quorum(s: &WorldState) -> bool {
    let total = s.cluster.managers.len();
    let up = s
        .cluster
        .managers
        .iter()
        .filter(|m| {
            s.hosts
                .get(*m)
                .is_some_and(|h| !h.killed && running(h, "ucp-kv"))
        })
        .count();
    total > 0 && up * 2 > total
}

pub(crate) fn k0s_api_up(s: &WorldState) -> bool {
    s.hosts
        .values()
        .any(|h| !h.killed && k0s_active(h).is_some_and(|(n, _)| n == "k0scontroller"))
}

pub(crate) fn mke3_kube_api_up(s: &WorldState) -> bool {
    kv_quorum(s)
        && s.hosts
            .values()
            .any(|h| !h.killed && running(h, "ucp-kube-apiserver"))
}

pub(crate) fn mke3_api_up(s: &WorldState) -> bool {
    s.mke3.always_up
        || kv_quorum(s)
            && s.hosts
                .values()
                .any(|h| !h.killed && running(h, "ucp-controller"))
}

/// A node's kubelet runs: MKE 3's container, or k0s with a worker and a reachable controller.
pub(crate) fn kubelet(s: &WorldState, host: &str) -> Option<&'static str> {
    let h = s.hosts.get(host)?;
    if h.killed {
        return None;
    }
    if running(h, "ucp-kubelet") {
        return Some("mke3");
    }
    match k0s_active(h) {
        Some((_, true)) if k0s_api_up(s) => Some("k0s"),
        _ => None,
    }
}

fn ports_in_use(h: &HostState, except_container: Option<&str>) -> BTreeMap<u16, String> {
    let mut m = BTreeMap::new();
    for p in &h.listeners {
        m.insert(*p, "a process".to_string());
    }
    if h.services.get("docker").is_some_and(|s| s.active) {
        for (n, c) in &h.containers {
            if c.running && Some(n.as_str()) != except_container {
                for p in &c.ports {
                    m.insert(*p, format!("container {n}"));
                }
            }
        }
    }
    if let Some((name, worker)) = k0s_active(h) {
        for p in k0s_ports(name, worker) {
            m.insert(p, "k0s".to_string());
        }
    }
    m
}

/// `bash`'s `/dev/tcp/ADDR/PORT` from a host: connects when host ADDR is up and something
/// listens on PORT there (its listeners, its running containers' ports, k0s), as bash says
/// otherwise.
fn tcp_probe(s: &WorldState, target: &str) -> Output {
    let Some((addr, port)) = target.rsplit_once('/') else {
        return err_out(1, &format!("bash: /dev/tcp/{target}: Invalid argument\n"));
    };
    let refused = || {
        err_out(
            1,
            &format!(
                "bash: connect: Connection refused\nbash: line 1: /dev/tcp/{addr}/{port}: Connection refused\n"
            ),
        )
    };
    let (Ok(port), Some(h)) = (port.parse::<u16>(), s.hosts.get(addr)) else {
        return refused();
    };
    if h.killed || h.cut {
        // `timeout` ends the hanging connect
        return err_out(124, "");
    }
    if ports_in_use(h, None).contains_key(&port) {
        ok_out("")
    } else {
        refused()
    }
}

/// Ports a k0s unit listens on.
pub(crate) fn k0s_ports(unit: &str, worker: bool) -> Vec<u16> {
    let mut v = Vec::new();
    if unit == "k0scontroller" {
        v.extend([2380, 6443, 8132, 9443]);
    }
    if worker {
        v.push(10250);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The interpreter.

#[allow(clippy::too_many_arguments)]
fn exec(
    s: &mut WorldState,
    host: &str,
    user: &str,
    _login: &str,
    program: &str,
    args: &[String],
    stdin: &[u8],
    now: u64,
) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match program {
        "docker" => return docker(s, host, user, &a, now),
        "k0s" => return k0s(s, host, user, &a, now),
        "systemctl" => return systemctl(s, host, user, &a),
        "rc-service" => return rc_service(s, host, user, &a),
        p if p.starts_with("/etc/init.d/") => return init_script(s, host, user, p, &a),
        _ => {}
    }
    if let ("timeout", [_, "bash", "-c", script]) = (program, a.as_slice()) {
        if let Some(target) = script.strip_prefix("exec 3<>/dev/tcp/") {
            return tcp_probe(s, target);
        }
    }
    let Some(h) = s.hosts.get_mut(host) else {
        return err_out(255, "no such host\n");
    };
    match (program, a.as_slice()) {
        ("true", _) => ok_out(""),
        ("false", _) => err_out(1, ""),
        ("echo", rest) => ok_out(&format!("{}\n", rest.join(" "))),
        ("printf", [fmt, rest @ ..]) => ok_out(&printf(fmt, rest)),
        ("cat", []) => ok_bytes(stdin.to_vec()),
        ("cat", ["/proc/meminfo"]) => ok_out(&format!(
            "MemTotal:       {} kB\nMemFree:        {} kB\n",
            h.mem_kib,
            h.mem_kib / 2
        )),
        ("cat", files) => {
            let mut out = Vec::new();
            for f in files {
                match h.files.get(&norm(f)) {
                    Some(e) if e.dir => {
                        return err_out(1, &format!("cat: {f}: Is a directory\n"));
                    }
                    Some(e) if !can_read(e, user) => {
                        return err_out(1, &format!("cat: {f}: Permission denied\n"));
                    }
                    Some(e) => out.extend_from_slice(&e.content),
                    None => {
                        return err_out(1, &format!("cat: {f}: No such file or directory\n"));
                    }
                }
            }
            ok_bytes(out)
        }
        ("id", ["-u"]) => ok_out(if user == "root" { "0\n" } else { "1000\n" }),
        ("id", ["-un"]) => ok_out(&format!("{user}\n")),
        ("stat", ["-c", fmt, path]) => match h.files.get(&norm(path)) {
            Some(e) => {
                let mut out = String::new();
                let mut chars = fmt.chars();
                while let Some(c) = chars.next() {
                    if c == '%' {
                        match chars.next() {
                            Some('a') => out.push_str(&format!("{:o}", e.mode)),
                            Some('U') => out.push_str(&e.owner),
                            Some('s') => out.push_str(&e.content.len().to_string()),
                            Some('Y') => out.push_str(&e.mtime.to_string()),
                            Some(o) => {
                                out.push('%');
                                out.push(o);
                            }
                            None => out.push('%'),
                        }
                    } else {
                        out.push(c);
                    }
                }
                ok_out(&format!("{out}\n"))
            }
            None => err_out(
                1,
                &format!("stat: cannot statx '{path}': No such file or directory\n"),
            ),
        },
        ("test", [flag, path]) => {
            let e = h.files.get(&norm(path));
            let yes = match *flag {
                "-f" => e.is_some_and(|e| !e.dir),
                "-d" => e.is_some_and(|e| e.dir),
                "-e" => e.is_some(),
                _ => return err_out(2, "test: unknown operator\n"),
            };
            if yes { ok_out("") } else { err_out(1, "") }
        }
        ("head", ["-c", n, "/dev/zero"]) => match n.parse::<usize>() {
            Ok(n) => ok_bytes(vec![0; n]),
            Err(_) => err_out(1, &format!("head: invalid number of bytes: '{n}'\n")),
        },
        ("sh", ["-c", script, "sh", rest @ ..]) => sh(script, rest),
        ("mkdir", args) => {
            let (p, dirs) = match args {
                ["-p", rest @ ..] => (true, rest),
                rest => (false, rest),
            };
            for d in dirs {
                let d = norm(d);
                if let Some(e) = h.files.get(&d) {
                    if p && e.dir {
                        continue;
                    }
                    return err_out(
                        1,
                        &format!("mkdir: cannot create directory '{d}': File exists\n"),
                    );
                }
                if p {
                    // Create missing parents one by one, checking permission on each.
                    let mut cur = String::new();
                    for part in d.split('/').filter(|x| !x.is_empty()) {
                        cur.push('/');
                        cur.push_str(part);
                        if h.files.contains_key(&cur) {
                            continue;
                        }
                        if let Err(e) = can_create(h, user, &cur) {
                            return err_out(
                                1,
                                &format!("mkdir: cannot create directory '{cur}': {e}\n"),
                            );
                        }
                        h.files.insert(
                            cur.clone(),
                            FsEntry {
                                dir: true,
                                content: vec![],
                                mode: 0o755,
                                owner: user.into(),
                                mtime: now,
                            },
                        );
                    }
                } else {
                    if let Err(e) = can_create(h, user, &d) {
                        return err_out(1, &format!("mkdir: cannot create directory '{d}': {e}\n"));
                    }
                    h.files.insert(
                        d,
                        FsEntry {
                            dir: true,
                            content: vec![],
                            mode: 0o755,
                            owner: user.into(),
                            mtime: now,
                        },
                    );
                }
            }
            ok_out("")
        }
        ("rm", args) => {
            let mut recursive = false;
            let mut force = false;
            let mut paths = Vec::new();
            for x in args {
                match *x {
                    "-rf" | "-fr" => {
                        recursive = true;
                        force = true;
                    }
                    "-r" | "-R" => recursive = true,
                    "-f" => force = true,
                    p => paths.push(p),
                }
            }
            for p in paths {
                let p = norm(p);
                match h.files.get(&p) {
                    None if force => {}
                    None => {
                        return err_out(
                            1,
                            &format!("rm: cannot remove '{p}': No such file or directory\n"),
                        );
                    }
                    Some(e) if e.dir && !recursive => {
                        return err_out(1, &format!("rm: cannot remove '{p}': Is a directory\n"));
                    }
                    Some(_) => {
                        let par = parent(&p);
                        let allowed = user == "root"
                            || h.files
                                .get(&par)
                                .is_some_and(|d| d.owner == user || d.mode & 0o002 != 0);
                        if !allowed {
                            return err_out(
                                1,
                                &format!("rm: cannot remove '{p}': Permission denied\n"),
                            );
                        }
                        remove_tree(h, &p);
                    }
                }
            }
            ok_out("")
        }
        // What `discard_partial_uploads` runs: the files of DIR (not below) whose name matches
        // a `prefix*` pattern are deleted.
        (
            "find",
            [
                dir,
                "-maxdepth",
                "1",
                "-name",
                pattern,
                "-type",
                "f",
                "-delete",
            ],
        ) => {
            let d = norm(dir);
            if !h.files.get(&d).is_some_and(|e| e.dir) {
                return err_out(1, &format!("find: '{dir}': No such file or directory\n"));
            }
            let Some(prefix) = pattern.strip_suffix('*').filter(|p| !p.contains('*')) else {
                return err_out(1, "find: the fake host knows `prefix*` patterns only\n");
            };
            let victims: Vec<String> = h
                .files
                .iter()
                .filter(|(p, e)| !e.dir && parent(p) == d)
                .filter(|(p, _)| p.rsplit('/').next().is_some_and(|n| n.starts_with(prefix)))
                .map(|(p, _)| p.clone())
                .collect();
            if !victims.is_empty() && user != "root" {
                return err_out(1, "find: cannot delete: Permission denied\n");
            }
            for v in victims {
                remove_tree(h, &v);
            }
            ok_out("")
        }
        ("rmdir", args) => {
            let (ignore, dirs) = match args {
                ["--ignore-fail-on-non-empty", rest @ ..] => (true, rest),
                rest => (false, rest),
            };
            for d in dirs {
                let d = norm(d);
                match h.files.get(&d) {
                    Some(e) if e.dir => {
                        if !children(h, &d).is_empty() {
                            if ignore {
                                continue;
                            }
                            return err_out(
                                1,
                                &format!("rmdir: failed to remove '{d}': Directory not empty\n"),
                            );
                        }
                        if user != "root" {
                            return err_out(
                                1,
                                &format!("rmdir: failed to remove '{d}': Permission denied\n"),
                            );
                        }
                        h.files.remove(&d);
                    }
                    _ => {
                        return err_out(
                            1,
                            &format!("rmdir: failed to remove '{d}': No such file or directory\n"),
                        );
                    }
                }
            }
            ok_out("")
        }
        ("ls", ["-A", d]) => match h.files.get(&norm(d)) {
            Some(e) if e.dir => {
                let names = children(h, d);
                ok_out(&names.iter().map(|n| format!("{n}\n")).collect::<String>())
            }
            _ => err_out(
                2,
                &format!("ls: cannot access '{d}': No such file or directory\n"),
            ),
        },
        ("touch", [p]) => {
            let p = norm(p);
            if let Some(e) = h.files.get_mut(&p) {
                if user != "root" && e.owner != user {
                    return err_out(
                        1,
                        &format!("touch: cannot touch '{p}': Permission denied\n"),
                    );
                }
                e.mtime = now;
                return ok_out("");
            }
            match write_file(h, user, &p, vec![], 0o644, now) {
                Ok(()) => ok_out(""),
                Err(e) => err_out(1, &format!("touch: cannot touch '{p}': {e}\n")),
            }
        }
        ("chmod", [mode, p]) => {
            let Ok(m) = u32::from_str_radix(mode, 8) else {
                return err_out(1, &format!("chmod: invalid mode: '{mode}'\n"));
            };
            match h.files.get_mut(&norm(p)) {
                Some(e) if user == "root" || e.owner == user => {
                    e.mode = m;
                    ok_out("")
                }
                Some(_) => err_out(
                    1,
                    &format!("chmod: changing permissions of '{p}': Operation not permitted\n"),
                ),
                None => err_out(
                    1,
                    &format!("chmod: cannot access '{p}': No such file or directory\n"),
                ),
            }
        }
        ("date", ["+%s"]) => ok_out(&format!("{now}\n")),
        ("hostname", []) | ("uname", ["-n"]) => ok_out(&format!("{}\n", h.hostname)),
        ("uname", ["-m"]) => ok_out(&format!("{}\n", h.arch)),
        ("ip", ["route", "list"]) => ok_out(&format!(
            "{}.0.0/16 dev eth0 proto kernel scope link src {}\n",
            h.private_ip
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join("."),
            h.private_ip
        )),
        ("ip", ["-o", "-4", "addr", "show", "scope", "global"]) => ok_out(&format!(
            "2: eth0    inet {}/16 scope global eth0\\       valid_lft forever preferred_lft forever\n",
            h.private_ip
        )),
        ("df", ["-P", "-k", "--", path]) => {
            if !h.files.get(&norm(path)).is_some_and(|e| e.dir) {
                return err_out(1, &format!("df: {path}: No such file or directory\n"));
            }
            let total = h.disk_free.saturating_mul(2) / 1024;
            ok_out(&format!(
                "Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/vda1 {total} {} {} 50% /\n",
                total - h.disk_free / 1024,
                h.disk_free / 1024
            ))
        }
        ("nproc", []) => ok_out(&format!("{}\n", h.cpus)),
        // The apparent size of each tree: its files' bytes (a directory counts 0 here, as `stat
        // -c %s` says); one line per path, a missing or unreadable one an error (exit 1) with
        // the other lines still printed.
        ("du", ["-sb", paths @ ..]) if !paths.is_empty() => {
            let mut out = String::new();
            let mut err = String::new();
            for p in paths {
                let root = norm(p);
                if !h.files.contains_key(&root) {
                    err.push_str(&format!(
                        "du: cannot access '{p}': No such file or directory\n"
                    ));
                    continue;
                }
                let mut total = 0u64;
                for (path, e) in h.files.iter().filter(|(k, _)| under(k, &root)) {
                    if e.dir && !can_read(e, user) {
                        err.push_str(&format!(
                            "du: cannot read directory '{path}': Permission denied\n"
                        ));
                    } else if !e.dir {
                        total += e.content.len() as u64;
                    }
                }
                out.push_str(&format!("{total}\t{p}\n"));
            }
            Output {
                code: Some(if err.is_empty() { 0 } else { 1 }),
                stdout: out.into_bytes(),
                stderr: err.into_bytes(),
            }
        }
        ("df", ["-B1", "--output=avail", _]) => ok_out(&format!("    Avail\n{}\n", h.disk_free)),
        ("ss", ["-Htln"]) => {
            let ports = ports_in_use(h, None);
            ok_out(
                &ports
                    .keys()
                    .map(|p| format!("LISTEN 0      4096         0.0.0.0:{p}        0.0.0.0:*\n"))
                    .collect::<String>(),
            )
        }
        ("curl", args) => {
            let mut out_path = None;
            let mut url = None;
            let mut it = args.iter();
            while let Some(x) = it.next() {
                match *x {
                    "-o" => out_path = it.next().copied(),
                    x if x.starts_with('-') => {}
                    x => url = Some(x),
                }
            }
            let (Some(path), Some(url)) = (out_path, url) else {
                return err_out(2, "curl: no URL specified\n");
            };
            if s.airgapped {
                return err_out(6, "curl: (6) Could not resolve host: github.com\n");
            }
            let prefix = "https://github.com/k0sproject/k0s/releases/download/";
            let Some(rest) = url.strip_prefix(prefix) else {
                return err_out(22, "curl: (22) The requested URL returned error: 404\n");
            };
            let version = rest.split('/').next().unwrap_or("").replace("%2B", "+");
            let arch = rest.rsplit('-').next().unwrap_or("").to_string();
            let Some(h) = s.hosts.get_mut(host) else {
                return err_out(255, "no such host\n");
            };
            match write_file(
                h,
                user,
                path,
                format!("k0s {version} {arch}\n").into_bytes(),
                0o644,
                now,
            ) {
                Ok(()) => ok_out(""),
                Err(e) => err_out(
                    23,
                    &format!("curl: (23) Failure writing output to destination: {path}: {e}\n"),
                ),
            }
        }
        ("tar", args) => tar(h, user, args, now),
        _ => err_out(127, &format!("sh: 1: {program}: not found\n")),
    }
}

fn printf(fmt: &str, args: &[&str]) -> String {
    let mut out = String::new();
    let mut i = 0;
    loop {
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '%' => match chars.next() {
                    Some('s') => {
                        out.push_str(args.get(i).copied().unwrap_or(""));
                        i += 1;
                    }
                    Some('%') => out.push('%'),
                    Some(o) => {
                        out.push('%');
                        out.push(o);
                    }
                    None => out.push('%'),
                },
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('\\') => out.push('\\'),
                    Some(o) => {
                        out.push('\\');
                        out.push(o);
                    }
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        if i >= args.len() || !fmt.contains("%s") {
            break;
        }
    }
    out
}

fn sh(script: &str, args: &[&str]) -> Output {
    use crate::conformance::host_exec::{SH_EXIT, SH_OUT_ERR, SH_ZEROS_TO_STDERR};
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    if script == SH_EXIT {
        return Output {
            code: Some(arg(0).parse().unwrap_or(2)),
            stdout: vec![],
            stderr: vec![],
        };
    }
    if script == SH_OUT_ERR {
        return Output {
            code: Some(arg(2).parse().unwrap_or(2)),
            stdout: arg(0).as_bytes().to_vec(),
            stderr: arg(1).as_bytes().to_vec(),
        };
    }
    if script == SH_ZEROS_TO_STDERR {
        return Output {
            code: Some(0),
            stdout: vec![],
            stderr: vec![0; arg(0).parse().unwrap_or(0)],
        };
    }
    err_out(
        2,
        "sh: the fake host runs only the conformance suite's scripts\n",
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

/// `tar -C DIR -czf ARCHIVE PATH…` and `tar -C DIR -xzf ARCHIVE`. The fake's archive is JSON.
fn tar(h: &mut HostState, user: &str, args: &[&str], now: u64) -> Output {
    if user != "root" {
        return err_out(2, "tar: Cannot open: Permission denied\n");
    }
    match args {
        ["-C", base, "-czf", archive, paths @ ..] => {
            let base = norm(base);
            let mut entries = Vec::new();
            for p in paths {
                let full = norm(&format!("{base}/{p}"));
                if !h.files.contains_key(&full) {
                    return err_out(
                        2,
                        &format!(
                            "tar: {p}: Cannot stat: No such file or directory\ntar: Exiting with failure status due to previous errors\n"
                        ),
                    );
                }
                for (k, e) in h.files.iter().filter(|(k, _)| under(k, &full)) {
                    let rel = k.strip_prefix(&format!("{base}/")).unwrap_or(k);
                    entries.push(json!({
                        "path": rel, "dir": e.dir, "mode": e.mode, "owner": e.owner,
                        "hex": hex(&e.content),
                    }));
                }
            }
            let body = json!({ "fakeTar": 1, "entries": entries }).to_string();
            match write_file(h, user, archive, body.into_bytes(), 0o600, now) {
                Ok(()) => ok_out(""),
                Err(e) => err_out(2, &format!("tar: {archive}: Cannot open: {e}\n")),
            }
        }
        ["-C", base, "-xzf", archive] => {
            let base = norm(base);
            let Some(f) = h.files.get(&norm(archive)) else {
                return err_out(
                    2,
                    &format!("tar: {archive}: Cannot open: No such file or directory\n"),
                );
            };
            let Ok(v) = serde_json::from_slice::<Value>(&f.content) else {
                return err_out(2, "tar: This does not look like a tar archive\n");
            };
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            for e in entries {
                let rel = e["path"].as_str().unwrap_or("");
                let full = norm(&format!("{base}/{rel}"));
                mkdirs(&mut h.files, &parent(&full), "root");
                h.files.insert(
                    full,
                    FsEntry {
                        dir: e["dir"].as_bool().unwrap_or(false),
                        content: unhex(e["hex"].as_str().unwrap_or("")).unwrap_or_default(),
                        mode: e["mode"].as_u64().unwrap_or(0o644) as u32,
                        owner: e["owner"].as_str().unwrap_or("root").to_string(),
                        mtime: now,
                    },
                );
            }
            ok_out("")
        }
        _ => err_out(
            2,
            "tar: the fake supports -C DIR -czf and -C DIR -xzf only\n",
        ),
    }
}

/// The service manager of a fake host, detected as k0s detects it.
pub(crate) fn init_system(h: &HostState) -> &'static str {
    if h.files.get("/run/systemd/system").is_some_and(|e| e.dir) {
        "systemd"
    } else if h.files.contains_key("/sbin/openrc-init") {
        "openrc"
    } else {
        "sysv"
    }
}

/// Where `k0s install` puts the service of `name` on this host.
pub(crate) fn unit_path(h: &HostState, name: &str) -> String {
    if init_system(h) == "systemd" {
        format!("/etc/systemd/system/{name}.service")
    } else {
        format!("/etc/init.d/{name}")
    }
}

/// `rc-service NAME start|stop|restart` (OpenRC).
fn rc_service(s: &mut WorldState, host: &str, user: &str, a: &[&str]) -> Output {
    let Some(h) = s.hosts.get_mut(host) else {
        return err_out(255, "no such host\n");
    };
    if init_system(h) != "openrc" {
        return err_out(127, "sh: 1: rc-service: not found\n");
    }
    match a {
        [unit, verb @ ("start" | "stop" | "restart")] => service_verb(h, user, unit, verb),
        _ => err_out(1, "rc-service: the fake supports NAME start|stop|restart\n"),
    }
}

/// `/etc/init.d/NAME start|stop|restart` (SysV and OpenRC scripts).
fn init_script(s: &mut WorldState, host: &str, user: &str, path: &str, a: &[&str]) -> Output {
    let Some(h) = s.hosts.get_mut(host) else {
        return err_out(255, "no such host\n");
    };
    let unit = path.trim_start_matches("/etc/init.d/");
    let scripted =
        h.files.contains_key(path) || (unit == "docker" && h.services.contains_key(unit));
    if init_system(h) == "systemd" || !scripted {
        return err_out(127, &format!("sh: 1: {path}: not found\n"));
    }
    match a {
        [verb @ ("start" | "stop" | "restart")] => service_verb(h, user, unit, verb),
        _ => err_out(1, "init script: the fake supports start|stop|restart\n"),
    }
}

fn systemctl(s: &mut WorldState, host: &str, user: &str, a: &[&str]) -> Output {
    let Some(h) = s.hosts.get_mut(host) else {
        return err_out(255, "no such host\n");
    };
    if init_system(h) != "systemd" {
        return err_out(
            1,
            "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
        );
    }
    match a {
        ["is-active", unit] => {
            if h.services.get(*unit).is_some_and(|x| x.active) {
                ok_out("active\n")
            } else {
                Output {
                    code: Some(3),
                    stdout: b"inactive\n".to_vec(),
                    stderr: vec![],
                }
            }
        }
        _ if user != "root" => err_out(
            1,
            "Failed to execute operation: Interactive authentication required.\n",
        ),
        ["daemon-reload"] => ok_out(""),
        [
            verb @ ("start" | "stop" | "restart" | "enable" | "disable"),
            unit,
        ] => service_verb(h, user, unit, verb),
        _ => err_out(
            1,
            "systemctl: the fake supports is-active, daemon-reload, start, stop, restart, enable, disable\n",
        ),
    }
}

/// A service manager's verb on `unit`, whichever manager runs it.
fn service_verb(h: &mut HostState, user: &str, unit: &str, verb: &str) -> Output {
    if user != "root" {
        return err_out(
            1,
            "Failed to execute operation: Interactive authentication required.\n",
        );
    }
    {
        {
            let Some(svc) = h.services.get_mut(unit) else {
                return err_out(
                    5,
                    &format!("Failed to {verb} {unit}.service: Unit {unit}.service not found.\n"),
                );
            };
            match verb {
                "start" => svc.active = true,
                "stop" => svc.active = false,
                "restart" => svc.active = true,
                "enable" => svc.enabled = true,
                _ => svc.enabled = false,
            }
            if unit == "docker" && matches!(verb, "stop" | "restart") {
                // The daemon stops every container; on start it restarts those with a
                // restart policy that asks for it.
                for c in h.containers.values_mut() {
                    if c.running && !(c.restart == "always" || c.restart == "unless-stopped") {
                        c.running = false;
                    }
                    if verb == "stop" {
                        c.running = false;
                    }
                }
            }
            ok_out("")
        }
    }
}

// -------------------------------------------------------------------------------------------
// docker

fn volume_dir(name: &str) -> String {
    format!("/var/lib/docker/volumes/{name}")
}

/// Maps a container path to a host path through the container's volume mounts.
fn map_path(mounts: &[(String, String)], path: &str) -> Option<String> {
    let path = norm(path);
    mounts.iter().find_map(|(vol, dest)| {
        let dest = norm(dest);
        let rest = if path == dest {
            Some("")
        } else {
            path.strip_prefix(&format!("{dest}/"))
        }?;
        let base = if vol.starts_with('/') {
            norm(vol)
        } else {
            format!("{}/_data", volume_dir(vol))
        };
        Some(if rest.is_empty() {
            base
        } else {
            format!("{base}/{rest}")
        })
    })
}

fn inspect_json(name: &str, c: &Container) -> Value {
    json!({
        "Name": format!("/{name}"),
        "Path": c.cmd.first().cloned().unwrap_or_default(),
        "Args": c.cmd.iter().skip(1).collect::<Vec<_>>(),
        "Config": {"Image": c.image, "Labels": c.labels, "Cmd": if c.cmd.is_empty() { Value::Null } else { json!(c.cmd) }},
        "State": {"Running": c.running, "Status": if c.running { "running" } else { "exited" }},
        "HostConfig": {
            "NetworkMode": c.network,
            "RestartPolicy": {"Name": c.restart},
            "PortBindings": c.ports.iter().map(|p| (format!("{p}/tcp"), json!([{"HostPort": p.to_string()}]))).collect::<serde_json::Map<_, _>>(),
        },
        "Mounts": c.mounts.iter().map(|(v, d)| json!({"Type": "volume", "Name": v, "Source": volume_dir(v) + "/_data", "Destination": d, "RW": true})).collect::<Vec<_>>(),
    })
}

/// `etcdctl` in a container with `mounts`; `quorum`: a quorum of the `ucp-kv` members runs (what
/// a request through raft, `alarm list`, needs; a member's own status does not).
fn etcdctl(
    h: &mut HostState,
    mounts: &[(String, String)],
    args: &[&str],
    quorum: bool,
    now: u64,
) -> Output {
    // Skip connection flags.
    let rest: Vec<&str> = args
        .iter()
        .copied()
        .filter(|x| {
            !x.starts_with("--endpoints")
                && !x.starts_with("--cacert")
                && !x.starts_with("--cert")
                && !x.starts_with("--key")
        })
        .collect();
    match rest.as_slice() {
        ["snapshot", "save", path] => {
            let db = map_path(mounts, "/data/datav3/member/snap/db");
            let Some(content) = db.and_then(|p| h.files.get(&p)).map(|f| f.content.clone()) else {
                return err_out(1, "Error: etcd cluster is unavailable or misconfigured\n");
            };
            let Some(dst) = map_path(mounts, path) else {
                return err_out(
                    1,
                    &format!("Error: could not open {path}: read-only file system\n"),
                );
            };
            let mut body = b"etcd-snapshot:".to_vec();
            body.extend(content);
            match write_file(h, "root", &dst, body, 0o600, now) {
                Ok(()) => ok_out(&format!("Snapshot saved at {path}\n")),
                Err(e) => err_out(1, &format!("Error: {e}\n")),
            }
        }
        ["snapshot", "restore", src, "--data-dir", dir] => {
            let (Some(src_h), Some(dir_h)) = (map_path(mounts, src), map_path(mounts, dir)) else {
                return err_out(1, "Error: paths must be inside a mounted volume\n");
            };
            let Some(snap) = h.files.get(&src_h).map(|f| f.content.clone()) else {
                return err_out(
                    1,
                    &format!("Error: open {src}: no such file or directory\n"),
                );
            };
            let Some(data) = snap
                .strip_prefix(b"etcd-snapshot:".as_slice())
                .map(<[u8]>::to_vec)
            else {
                return err_out(1, "Error: snapshot file has invalid integrity\n");
            };
            if h.files.contains_key(&dir_h) {
                return err_out(1, &format!("Error: data-dir {dir:?} exists\n"));
            }
            mkdirs(&mut h.files, &format!("{dir_h}/member/snap"), "root");
            h.files.insert(
                format!("{dir_h}/member/snap/db"),
                FsEntry {
                    dir: false,
                    content: data,
                    mode: 0o600,
                    owner: "root".into(),
                    mtime: now,
                },
            );
            ok_out("restored snapshot\n")
        }
        ["endpoint", "health"] | ["endpoint", "health", "--cluster"] => {
            ok_out("127.0.0.1:2379 is healthy\n")
        }
        // The member's own status: its database is the data directory's `db` file.
        ["endpoint", "status", "-w", "json"] | ["endpoint", "status", "--write-out=json"] => {
            let db = map_path(mounts, "/data/datav3/member/snap/db");
            let Some(size) = db.and_then(|p| h.files.get(&p)).map(|f| f.content.len()) else {
                return err_out(
                    1,
                    "Failed to get the status of endpoint https://127.0.0.1:12379 (context deadline exceeded)\n",
                );
            };
            let member = h.hostname.bytes().fold(0xcbf2_9ce4_8422_2325u64, |x, b| {
                (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            ok_out(&format!(
                "{}\n",
                json!([{
                    "Endpoint": "https://127.0.0.1:12379",
                    "Status": {
                        "header": {"cluster_id": 17_237_436_991_929_493_444u64, "member_id": member, "revision": 1, "raft_term": 2},
                        "version": "3.5.16",
                        "dbSize": size,
                        "leader": member,
                        "raftIndex": 1,
                        "raftTerm": 2,
                        "raftAppliedIndex": 1,
                        "dbSizeInUse": size,
                    },
                }])
            ))
        }
        // No alarm is ever raised in the fake: the list is empty, once raft answers.
        ["alarm", "list"] if quorum => ok_out(""),
        ["alarm", "list"] => err_out(1, "Error: context deadline exceeded\n"),
        _ => err_out(1, "Error: unknown etcdctl command for the fake\n"),
    }
}

fn docker(s: &mut WorldState, host: &str, user: &str, a: &[&str], now: u64) -> Output {
    let quorum = kv_quorum(s);
    let Some(h) = s.hosts.get_mut(host) else {
        return err_out(255, "no such host\n");
    };
    if user != "root" {
        return err_out(
            1,
            "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n",
        );
    }
    if !h.services.get("docker").is_some_and(|x| x.active) {
        return err_out(
            1,
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
        );
    }
    // Normalise `docker ps` to `docker container ls` and so on.
    let (group, verb, rest): (&str, &str, &[&str]) = match a {
        ["container", v, rest @ ..] => ("container", v, rest),
        ["volume", v, rest @ ..] => ("volume", v, rest),
        ["swarm", v, rest @ ..] => ("swarm", v, rest),
        ["ps", rest @ ..] => ("container", "ls", rest),
        [
            v @ ("inspect" | "stop" | "start" | "rm" | "create"),
            rest @ ..,
        ] => ("container", v, rest),
        [v, rest @ ..] => ("", v, rest),
        [] => return err_out(1, "docker: missing command\n"),
    };
    match (group, verb) {
        ("container", "ls") => {
            let all = rest.contains(&"-a");
            let filter = rest
                .iter()
                .find_map(|x| x.strip_prefix("name="))
                .unwrap_or("");
            let names: String = h
                .containers
                .iter()
                .filter(|(n, c)| (all || c.running) && n.contains(filter))
                .map(|(n, _)| format!("{n}\n"))
                .collect();
            ok_out(&names)
        }
        ("container", "inspect") => {
            let names: Vec<&&str> = rest.iter().filter(|x| !x.starts_with('-')).collect();
            let mut out = Vec::new();
            for n in &names {
                match h.containers.get(**n) {
                    Some(c) => out.push(inspect_json(n, c)),
                    None => {
                        return Output {
                            code: Some(1),
                            stdout: b"[]\n".to_vec(),
                            stderr: format!("Error: No such container: {n}\n").into_bytes(),
                        };
                    }
                }
            }
            ok_out(&format!("{}\n", Value::Array(out)))
        }
        ("container", v @ ("stop" | "start")) => {
            for n in rest.iter().filter(|x| !x.starts_with('-')) {
                if !h.containers.contains_key(*n) {
                    return err_out(
                        1,
                        &format!("Error response from daemon: No such container: {n}\n"),
                    );
                }
                if v == "start" {
                    let busy = ports_in_use(h, Some(n));
                    let ports = h
                        .containers
                        .get(*n)
                        .map(|c| c.ports.clone())
                        .unwrap_or_default();
                    if let Some(p) = ports.iter().find(|p| busy.contains_key(p)) {
                        return err_out(
                            1,
                            &format!(
                                "Error response from daemon: driver failed programming external connectivity on endpoint {n}: Bind for 0.0.0.0:{p} failed: port is already allocated\n"
                            ),
                        );
                    }
                }
                if let Some(c) = h.containers.get_mut(*n) {
                    c.running = v == "start";
                }
            }
            ok_out(
                &rest
                    .iter()
                    .filter(|x| !x.starts_with('-'))
                    .map(|n| format!("{n}\n"))
                    .collect::<String>(),
            )
        }
        ("container", "rm") => {
            let force = rest.contains(&"-f");
            for n in rest.iter().filter(|x| !x.starts_with('-')) {
                match h.containers.get(*n) {
                    None => {
                        return err_out(
                            1,
                            &format!("Error response from daemon: No such container: {n}\n"),
                        );
                    }
                    Some(c) if c.running && !force => {
                        return err_out(
                            1,
                            &format!(
                                "Error response from daemon: cannot remove container \"/{n}\": container is running: stop the container before removing or force remove\n"
                            ),
                        );
                    }
                    Some(_) => {
                        h.containers.remove(*n);
                    }
                }
            }
            ok_out("")
        }
        ("container", "create") => {
            let mut name = None;
            let mut labels = BTreeMap::new();
            let mut mounts = Vec::new();
            let mut restart = "no".to_string();
            let mut ports = Vec::new();
            let mut image = None;
            let mut network = "default".to_string();
            let mut it = rest.iter();
            while let Some(x) = it.next() {
                match *x {
                    "--name" => name = it.next().map(|s| s.to_string()),
                    "--network" => network = it.next().map(|s| s.to_string()).unwrap_or_default(),
                    "--label" => {
                        if let Some((k, v)) = it.next().and_then(|l| l.split_once('=')) {
                            labels.insert(k.to_string(), v.to_string());
                        }
                    }
                    "-v" => {
                        if let Some((v, d)) = it.next().and_then(|l| l.split_once(':')) {
                            let d = d.strip_suffix(":ro").unwrap_or(d);
                            mounts.push((v.to_string(), d.to_string()));
                        }
                    }
                    "-p" => {
                        if let Some(p) = it
                            .next()
                            .and_then(|l| l.split(':').next())
                            .and_then(|p| p.parse().ok())
                        {
                            ports.push(p);
                        }
                    }
                    "--restart" => restart = it.next().map(|s| s.to_string()).unwrap_or_default(),
                    x if x.starts_with('-') => {}
                    x => {
                        image = Some(x.to_string());
                        break;
                    }
                }
            }
            let cmd: Vec<String> = it.map(|s| s.to_string()).collect();
            let (Some(name), Some(image)) = (name, image) else {
                return err_out(1, "docker: the fake needs --name and an image\n");
            };
            if h.containers.contains_key(&name) {
                return err_out(
                    1,
                    &format!(
                        "docker: Error response from daemon: Conflict. The container name \"/{name}\" is already in use.\n"
                    ),
                );
            }
            for (v, _) in &mounts {
                if !v.starts_with('/') && !h.files.contains_key(&volume_dir(v)) {
                    mkdirs(&mut h.files, &format!("{}/_data", volume_dir(v)), "root");
                }
            }
            h.containers.insert(
                name.clone(),
                Container {
                    image,
                    labels,
                    mounts,
                    running: false,
                    restart,
                    ports,
                    cmd,
                    network,
                },
            );
            ok_out(&format!("{name}\n"))
        }
        ("volume", "ls") => {
            let filter = rest
                .iter()
                .find_map(|x| x.strip_prefix("name="))
                .unwrap_or("");
            let names: String = children(h, "/var/lib/docker/volumes")
                .into_iter()
                .filter(|n| n.contains(filter))
                .map(|n| format!("{n}\n"))
                .collect();
            ok_out(&names)
        }
        ("volume", "rm") => {
            for n in rest.iter().filter(|x| !x.starts_with('-')) {
                if !h.files.contains_key(&volume_dir(n)) {
                    return err_out(
                        1,
                        &format!("Error response from daemon: get {n}: no such volume\n"),
                    );
                }
                if let Some((c, _)) = h
                    .containers
                    .iter()
                    .find(|(_, c)| c.mounts.iter().any(|(v, _)| v == n))
                {
                    return err_out(
                        1,
                        &format!(
                            "Error response from daemon: remove {n}: volume is in use - [{c}]\n"
                        ),
                    );
                }
                remove_tree(h, &volume_dir(n));
            }
            ok_out("")
        }
        ("", "exec") => {
            let [name, cmd @ ..] = rest else {
                return err_out(1, "docker exec: missing container\n");
            };
            let Some(c) = h.containers.get(*name).cloned() else {
                return err_out(
                    1,
                    &format!("Error response from daemon: No such container: {name}\n"),
                );
            };
            if !c.running {
                return err_out(
                    1,
                    &format!("Error response from daemon: container {name} is not running\n"),
                );
            }
            match cmd {
                ["etcdctl", args @ ..] => etcdctl(h, &c.mounts, args, quorum, now),
                ["rm", "-f", path] => {
                    if let Some(p) = map_path(&c.mounts, path) {
                        h.files.remove(&p);
                    }
                    ok_out("")
                }
                _ => err_out(
                    126,
                    "OCI runtime exec failed: the fake knows etcdctl and rm -f only\n",
                ),
            }
        }
        ("", "cp") => {
            let [src, dst] = rest else {
                return err_out(1, "docker cp: needs SRC and DST\n");
            };
            let Some((name, path)) = src.split_once(':') else {
                return err_out(1, "docker cp: the fake copies out of containers only\n");
            };
            let Some(c) = h.containers.get(name).cloned() else {
                return err_out(
                    1,
                    &format!("Error response from daemon: No such container: {name}\n"),
                );
            };
            let Some(content) = map_path(&c.mounts, path)
                .and_then(|p| h.files.get(&p))
                .map(|f| f.content.clone())
            else {
                return err_out(
                    1,
                    &format!(
                        "Error response from daemon: Could not find the file {path} in container {name}\n"
                    ),
                );
            };
            match write_file(h, "root", dst, content, 0o600, now) {
                Ok(()) => ok_out(""),
                Err(e) => err_out(1, &format!("docker cp: {dst}: {e}\n")),
            }
        }
        ("", "run") => {
            let mut mounts = Vec::new();
            let mut it = rest.iter();
            let mut image = None;
            while let Some(x) = it.next() {
                match *x {
                    "-v" => {
                        if let Some((v, d)) = it.next().and_then(|l| l.split_once(':')) {
                            let d = d.strip_suffix(":ro").unwrap_or(d);
                            mounts.push((v.to_string(), d.to_string()));
                        }
                    }
                    "--rm" | "-i" => {}
                    "--name" | "--entrypoint" => {
                        it.next();
                    }
                    x => {
                        image = Some(x);
                        break;
                    }
                }
            }
            if image.is_none() {
                return err_out(125, "docker run: missing image\n");
            }
            for (v, _) in &mounts {
                if !v.starts_with('/') && !h.files.contains_key(&volume_dir(v)) {
                    mkdirs(&mut h.files, &format!("{}/_data", volume_dir(v)), "root");
                }
            }
            let cmd: Vec<&str> = it.copied().collect();
            match cmd.as_slice() {
                // a container of its own, on no etcd cluster's network
                ["etcdctl", args @ ..] => etcdctl(h, &mounts, args, false, now),
                _ => err_out(127, "docker run: the fake runs etcdctl only\n"),
            }
        }
        ("", "version") => ok_out("20.10.24+dfsg1\n"),
        ("", "info") => {
            let state = h
                .files
                .get("/var/lib/docker/swarm/state.json")
                .and_then(|f| serde_json::from_slice::<Value>(&f.content).ok());
            let swarm = match state {
                Some(v) => json!({
                    "LocalNodeState": "active",
                    "ControlAvailable": v["role"] == "manager",
                    "NodeID": v["node_id"],
                    "Cluster": {"ID": v["cluster"]},
                }),
                None => {
                    json!({"LocalNodeState": "inactive", "ControlAvailable": false, "NodeID": ""})
                }
            };
            if rest == ["--format", "{{json .Swarm}}"] {
                ok_out(&format!("{swarm}\n"))
            } else {
                ok_out(&format!("{}\n", json!({"Swarm": swarm})))
            }
        }
        ("swarm", "leave") => {
            if !h.files.contains_key("/var/lib/docker/swarm/state.json") {
                return err_out(
                    1,
                    "Error response from daemon: This node is not part of a swarm\n",
                );
            }
            if !rest.contains(&"--force")
                && h.files
                    .get("/var/lib/docker/swarm/state.json")
                    .is_some_and(|f| String::from_utf8_lossy(&f.content).contains("\"manager\""))
            {
                return err_out(
                    1,
                    "Error response from daemon: You are attempting to leave the swarm on a node that is participating as a manager. Use `--force` to suppress this message.\n",
                );
            }
            h.files.remove("/var/lib/docker/swarm/state.json");
            ok_out("Node left the swarm.\n")
        }
        _ => err_out(
            1,
            &format!("docker: '{verb}' is not a docker command the fake knows\n"),
        ),
    }
}

// -------------------------------------------------------------------------------------------
// k0s

fn k0s(s: &mut WorldState, host: &str, user: &str, a: &[&str], now: u64) -> Output {
    let counter = s.counter;
    let api_up = k0s_api_up(s);
    let Some(h) = s.hosts.get(host) else {
        return err_out(255, "no such host\n");
    };
    let Some(bin) = h.files.get("/usr/local/bin/k0s") else {
        return err_out(127, "sh: 1: k0s: not found\n");
    };
    if bin.mode & 0o111 == 0 {
        return err_out(126, "sh: 1: k0s: Permission denied\n");
    }
    let content = String::from_utf8_lossy(&bin.content).trim().to_string();
    let mut words = content
        .strip_prefix("k0s ")
        .unwrap_or("")
        .split_whitespace();
    let version = words.next().unwrap_or(FAKE_K0S_VERSION).to_string();
    let want = match h.arch.as_str() {
        "aarch64" => "arm64",
        "armv7l" => "arm",
        _ => "amd64",
    };
    if words.next().is_some_and(|a| a != want) {
        return err_out(
            126,
            "sh: 1: k0s: cannot execute binary file: Exec format error\n",
        );
    }
    if a == ["version"] {
        return ok_out(&format!("{version}\n"));
    }
    if user != "root" {
        return err_out(1, "Error: this command must be run as root!\n");
    }
    let unit = k0s_unit(h);
    let active = k0s_active(h);
    match a {
        ["install", role, flags @ ..] => {
            if unit.is_some() {
                return err_out(
                    1,
                    "Error: failed to install k0s service: init already exists\n",
                );
            }
            let mut token_file = None;
            let mut config = None;
            let mut worker = *role == "worker";
            let mut it = flags.iter();
            while let Some(f) = it.next() {
                match *f {
                    "--token-file" => token_file = it.next().copied(),
                    "--config" | "-c" => config = it.next().copied(),
                    "--enable-worker" => worker = true,
                    _ => {}
                }
            }
            if *role != "controller" && *role != "worker" {
                return err_out(
                    1,
                    &format!("Error: unknown command {role:?} for \"k0s install\"\n"),
                );
            }
            if let Some(c) = config {
                if !h.files.contains_key(&norm(c)) {
                    return err_out(
                        1,
                        &format!(
                            "Error: failed to read config file {c}: no such file or directory\n"
                        ),
                    );
                }
            }
            match token_file {
                Some(t) => {
                    let Some(tok) = h.files.get(&norm(t)) else {
                        return err_out(
                            1,
                            &format!(
                                "Error: failed to read token file {t}: no such file or directory\n"
                            ),
                        );
                    };
                    let tok = String::from_utf8_lossy(&tok.content).trim().to_string();
                    let want = if *role == "worker" {
                        "k0s-worker-token-"
                    } else {
                        "k0s-controller-token-"
                    };
                    if !tok.starts_with(want) || !s.k0s_tokens.contains(&tok) {
                        return err_out(1, "Error: invalid join token\n");
                    }
                }
                None if *role == "worker" => {
                    return err_out(1, "Error: a worker needs a join token (--token-file)\n");
                }
                None => {}
            }
            let Some(h) = s.hosts.get_mut(host) else {
                return err_out(255, "no such host\n");
            };
            let name = if *role == "worker" {
                "k0sworker"
            } else {
                "k0scontroller"
            };
            // The token file is only recorded: k0s reads it when the service first starts.
            let exec = format!(
                "[Unit]\nDescription=k0s - Zero Friction Kubernetes\n[Service]\nExecStart=/usr/local/bin/k0s {role}{}{}{}\n",
                if *role == "controller" && worker {
                    " --enable-worker"
                } else {
                    ""
                },
                config.map(|c| format!(" --config={c}")).unwrap_or_default(),
                token_file
                    .map(|t| format!(" --token-file={t}"))
                    .unwrap_or_default(),
            );
            let path = unit_path(h, name);
            let mode = if path.starts_with("/etc/init.d/") {
                0o755
            } else {
                0o644
            };
            h.files.insert(
                path,
                FsEntry {
                    dir: false,
                    content: exec.into_bytes(),
                    mode,
                    owner: "root".into(),
                    mtime: now,
                },
            );
            mkdirs(&mut h.files, "/var/lib/k0s/pki", "root");
            h.services.insert(
                name.into(),
                Service {
                    enabled: true,
                    active: false,
                },
            );
            ok_out("")
        }
        ["start"] => {
            let Some((name, worker)) = unit else {
                return err_out(1, "Error: k0s is not installed: run `k0s install` first\n");
            };
            if active.is_some() {
                return err_out(1, "Error: k0s is already running\n");
            }
            if name == "k0sworker" && !api_up {
                return err_out(
                    1,
                    "Error: failed to start k0sworker: no controller reachable to join\n",
                );
            }
            let busy = ports_in_use(h, None);
            if let Some(p) = k0s_ports(name, worker)
                .iter()
                .find(|p| busy.contains_key(p))
            {
                let who = busy.get(p).cloned().unwrap_or_default();
                return err_out(
                    1,
                    &format!(
                        "Error: failed to start {name}: listen tcp :{p}: bind: address already in use (held by {who})\n"
                    ),
                );
            }
            // A joining node reads its join token at its first start (k0s turns it into
            // `kubelet-bootstrap.conf`, then the kubelet's own `kubelet.conf`); later starts
            // need it no more. So the file must still be there when k0s first starts.
            let unit_text = h
                .files
                .get(&unit_path(h, name))
                .map(|f| String::from_utf8_lossy(&f.content).into_owned())
                .unwrap_or_default();
            let token_file = unit_text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--token-file="))
                .map(str::to_string);
            let joined = h.files.contains_key(K0S_JOINED);
            if let (Some(t), false) = (&token_file, joined) {
                let Some(tok) = h.files.get(&norm(t)) else {
                    return err_out(
                        1,
                        &format!(
                            "Error: failed to start {name}: failed to read token file {t}: open {t}: no such file or directory\n"
                        ),
                    );
                };
                let tok = String::from_utf8_lossy(&tok.content).trim().to_string();
                if !s.k0s_tokens.contains(&tok) {
                    return err_out(
                        1,
                        &format!("Error: failed to start {name}: invalid join token\n"),
                    );
                }
            }
            let Some(h) = s.hosts.get_mut(host) else {
                return err_out(255, "no such host\n");
            };
            if token_file.is_some() && !joined {
                h.files.insert(
                    K0S_JOINED.into(),
                    FsEntry {
                        dir: false,
                        content: b"# kubelet credentials of the joined node\n".to_vec(),
                        mode: 0o600,
                        owner: "root".into(),
                        mtime: now,
                    },
                );
            }
            if let Some(svc) = h.services.get_mut(name) {
                svc.active = true;
            }
            ok_out("")
        }
        ["stop"] => {
            let Some((name, _)) = unit else {
                return err_out(1, "Error: k0s is not installed\n");
            };
            if let Some(svc) = s.hosts.get_mut(host).and_then(|h| h.services.get_mut(name)) {
                svc.active = false;
            }
            ok_out("")
        }
        ["status"] => match active {
            Some((name, worker)) => ok_out(&format!(
                "Version: {version}\nProcess ID: 4242\nRole: {}\nWorkloads: {worker}\nSingleNode: false\n",
                if name == "k0scontroller" {
                    "controller"
                } else {
                    "worker"
                }
            )),
            None => err_out(
                1,
                "Error: status: can't get \"status\" via \"/run/k0s/status.sock\": dial unix /run/k0s/status.sock: connect: no such file or directory\n",
            ),
        },
        ["reset", ..] => {
            if active.is_some() {
                return err_out(
                    1,
                    "Error: k0s seems to be running! please stop k0s before reset.\n",
                );
            }
            let Some((name, _)) = unit else {
                return err_out(1, "Error: k0s is not installed\n");
            };
            let Some(h) = s.hosts.get_mut(host) else {
                return err_out(255, "no such host\n");
            };
            let path = unit_path(h, name);
            h.files.remove(&path);
            h.services.remove(name);
            remove_tree(h, "/var/lib/k0s");
            remove_tree(h, "/run/k0s");
            // Tokens live in the control plane: gone with the last controller.
            let any_controller = s
                .hosts
                .values()
                .any(|h| matches!(k0s_unit(h), Some(("k0scontroller", _))));
            if !any_controller {
                s.k0s_tokens.clear();
            }
            ok_out("")
        }
        ["etcd", "member-list"] => {
            if !matches!(active, Some(("k0scontroller", _))) {
                return err_out(
                    1,
                    "Error: failed to read etcd member list: the k0s controller is not running\n",
                );
            }
            let members: serde_json::Map<String, Value> = s
                .hosts
                .values()
                .filter(|h| !h.killed && matches!(k0s_active(h), Some(("k0scontroller", _))))
                .map(|h| {
                    (
                        h.hostname.clone(),
                        Value::String(format!("https://{}:2380", h.private_ip)),
                    )
                })
                .collect();
            ok_out(&format!("{}\n", json!({ "members": members })))
        }
        ["backup", "--save-path", dir] => {
            if !matches!(active, Some(("k0scontroller", _))) {
                return err_out(
                    1,
                    "Error: backup can only be taken on a running controller\n",
                );
            }
            let Some(h) = s.hosts.get_mut(host) else {
                return err_out(255, "no such host\n");
            };
            if !h.files.get(&norm(dir)).is_some_and(|e| e.dir) {
                return err_out(
                    1,
                    &format!("Error: save path {dir} does not exist or is not a directory\n"),
                );
            }
            let path = format!("{}/k0s_backup_{now}.tar.gz", norm(dir));
            let archive = format!("k0s backup of {} at {now}\n", h.hostname);
            match write_file(h, user, &path, archive.into_bytes(), 0o600, now) {
                Ok(()) => ok_out(""),
                Err(e) => err_out(1, &format!("Error: cannot write {path}: {e}\n")),
            }
        }
        ["token", "create", flags @ ..] => {
            if !matches!(active, Some(("k0scontroller", _))) {
                return err_out(
                    1,
                    "Error: failed to create token: the k0s controller is not running\n",
                );
            }
            let role = flags
                .iter()
                .find_map(|f| f.strip_prefix("--role="))
                .unwrap_or("worker");
            let token = format!(
                "k0s-{role}-token-{:06}-{}",
                counter + 1,
                host.replace('.', "")
            );
            s.counter += 1;
            s.k0s_tokens.insert(token.clone());
            ok_out(&format!("{token}\n"))
        }
        _ => err_out(
            1,
            &format!(
                "Error: unknown command {:?} for \"k0s\"\n",
                a.first().copied().unwrap_or("")
            ),
        ),
    }
}

/// The conformance suite's fault control over a fake world: host `i` is the `i`-th host of the
/// world; a no-sudo user, a wrong host key, refused credentials, kill, cut and restore act on
/// the world as the SSH testbed does on real hosts.
#[derive(Debug, Clone)]
pub struct FakeFaultControl {
    world: World,
    hosts: Vec<String>,
}

impl FakeFaultControl {
    pub fn new(world: &World) -> Self {
        let hosts = world.state().hosts.keys().cloned().collect();
        Self {
            world: world.clone(),
            hosts,
        }
    }

    fn name(&self, i: usize) -> Result<String, ExecError> {
        self.hosts
            .get(i)
            .cloned()
            .ok_or_else(|| ExecError::Unreachable {
                host: format!("host-{i}"),
                detail: "no such host in the fake world".into(),
            })
    }

    fn spec(&self, i: usize, user: &str) -> Result<HostSpec, ExecError> {
        Ok(HostSpec {
            address: self.name(i)?,
            port: 22,
            user: user.into(),
            key_path: None,
            private_address: None,
            private_interface: None,
            bastion: None,
            sudo: true,
            known_hosts_policy: Default::default(),
        })
    }
}

#[async_trait::async_trait]
impl crate::conformance::host_exec::FaultControl for FakeFaultControl {
    fn host_count(&self) -> usize {
        self.hosts.len()
    }

    async fn connect(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        FakeConnector::new(&self.world)
            .connect(&self.spec(i, "docker")?)
            .await
    }

    async fn connect_without_sudo(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        let name = self.name(i)?;
        FakeConnector::new(&self.world)
            .connect(&self.spec(i, "guest")?)
            .await?;
        Ok(Arc::new(FakeHost::new(&self.world, &name, "guest", false)))
    }

    async fn connect_wrong_host_key(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        Err(ExecError::HostKey {
            host: self.name(i)?,
            detail: "the host key does not match the known_hosts entry".into(),
        })
    }

    async fn connect_bad_credentials(&self, i: usize) -> Result<Arc<dyn HostExec>, ExecError> {
        Err(ExecError::Auth {
            host: self.name(i)?,
            detail: "Permission denied (publickey)".into(),
        })
    }

    async fn kill(&self, i: usize) -> Result<(), String> {
        let n = self.name(i).map_err(|e| e.to_string())?;
        self.world.kill_host(&n);
        Ok(())
    }

    async fn cut(&self, i: usize) -> Result<(), String> {
        let n = self.name(i).map_err(|e| e.to_string())?;
        self.world.cut_host(&n);
        Ok(())
    }

    async fn restore(&self, i: usize) -> Result<(), String> {
        let n = self.name(i).map_err(|e| e.to_string())?;
        self.world.restore_host(&n);
        Ok(())
    }

    fn cut_detection(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn connect_failure_within(&self) -> Duration {
        Duration::from_secs(5)
    }
}
