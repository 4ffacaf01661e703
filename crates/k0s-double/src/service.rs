//! The k0s service: where `k0s install` writes it for the host's service manager, and what the
//! SysV init script's `start|stop|status` do (this binary does them, `k0s __initd NAME CMD`).

use std::io::{Read as _, Seek as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{Env, KNOBS, RUN_DIR, STATUS_SOCK};
use crate::util::{self, Error};

pub const UNITS: [&str; 2] = ["k0scontroller", "k0sworker"];

/// The service manager, detected as k0s's service library detects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Systemd,
    Openrc,
    Sysv,
}

impl Init {
    pub fn detect(env: &Env) -> Init {
        if env.path("/run/systemd/system").is_dir() {
            Init::Systemd
        } else if env.path("/sbin/openrc-init").exists()
            || env.path("/usr/sbin/openrc-init").exists()
        {
            Init::Openrc
        } else {
            Init::Sysv
        }
    }

    /// Where the service `name` is defined, on the host.
    pub fn unit_path(self, name: &str) -> String {
        match self {
            Init::Systemd => format!("/etc/systemd/system/{name}.service"),
            Init::Openrc | Init::Sysv => format!("/etc/init.d/{name}"),
        }
    }
}

/// The installed service: its name and the daemon's arguments (after the binary).
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: &'static str,
    pub init: Init,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// The k0s service on this host, if `k0s install` made one (the controller wins, as in ferry).
pub fn installed(env: &Env) -> Result<Option<Installed>, Error> {
    let init = Init::detect(env);
    for name in UNITS {
        let path = env.path(&init.unit_path(name));
        if !path.is_file() {
            continue;
        }
        let text = util::read(&path, &init.unit_path(name))?;
        let (args, vars) = parse_definition(&text);
        return Ok(Some(Installed {
            name,
            init,
            args,
            env: vars,
        }));
    }
    Ok(None)
}

/// The daemon's command line and environment, from an init script (`cmd="..."`,
/// `export K='V'`) or a systemd unit (`ExecStart=...`, `Environment="K=V"`).
fn parse_definition(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut args = Vec::new();
    let mut vars = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(cmd) = line
            .strip_prefix("cmd=\"")
            .and_then(|c| c.strip_suffix('"'))
            .or_else(|| line.strip_prefix("ExecStart="))
        {
            args = cmd.split_whitespace().skip(1).map(str::to_string).collect();
        } else if let Some(kv) = line
            .strip_prefix("export ")
            .or_else(|| {
                line.strip_prefix("Environment=\"")
                    .and_then(|l| l.strip_suffix('"'))
            })
            .and_then(|kv| kv.split_once('='))
        {
            vars.push((kv.0.to_string(), kv.1.trim_matches('\'').to_string()));
        }
    }
    (args, vars)
}

/// The service definition for `args` (`controller --config=...`), as k0s writes it.
pub fn definition(init: Init, name: &str, exe: &str, args: &[String]) -> Result<String, Error> {
    let cmd = std::iter::once(exe.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut vars = Vec::new();
    for k in KNOBS {
        if let Ok(v) = std::env::var(k) {
            if v.contains(['\'', '"', '\n']) {
                return Err(Error::msg(format!("{k}={v:?}: quotes are not supported")));
            }
            vars.push((k, v));
        }
    }
    const DESCRIPTION: &str = "k0s - Zero Friction Kubernetes";
    Ok(match init {
        Init::Systemd => {
            let env: String = vars
                .iter()
                .map(|(k, v)| format!("Environment=\"{k}={v}\"\n"))
                .collect();
            format!(
                "[Unit]\nDescription={DESCRIPTION}\nDocumentation=https://docs.k0sproject.io\nConditionFileIsExecutable={exe}\nAfter=network-online.target\nWants=network-online.target\n\n[Service]\nStartLimitInterval=5\nStartLimitBurst=10\nExecStart={cmd}\n{env}RestartSec=10\nDelegate=yes\nKillMode=process\nLimitCORE=infinity\nTasksMax=infinity\nTimeoutStartSec=0\nLimitNOFILE=999999\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n"
            )
        }
        Init::Openrc | Init::Sysv => {
            let env: String = vars
                .iter()
                .map(|(k, v)| format!("export {k}='{v}'\n"))
                .collect();
            // The shape of the SysV template of k0s's service library: LSB header, `cmd=`,
            // then start|stop|restart|status; the cases call back into the double.
            format!(
                "#!/bin/sh\n# For RedHat and cousins:\n# chkconfig: - 99 01\n# description: {DESCRIPTION}\n# processname: {exe}\n\n### BEGIN INIT INFO\n# Provides:          {exe}\n# Required-Start:\n# Required-Stop:\n# Default-Start:     2 3 4 5\n# Default-Stop:      0 1 6\n# Short-Description: {DESCRIPTION}\n# Description:       {DESCRIPTION}\n### END INIT INFO\n\n# Written by ferry's k0s double (a test tool), not by k0s.\ncmd=\"{cmd}\"\n{env}name={name}\n\ncase \"$1\" in\n    start|stop|restart|status)\n        exec {exe} __initd \"$name\" \"$1\"\n    ;;\n    *)\n        echo \"Usage: $0 {{start|stop|restart|status}}\"\n        exit 1\n    ;;\nesac\n"
            )
        }
    })
}

fn pid_file(env: &Env, name: &str) -> PathBuf {
    env.path(&format!("/var/run/{name}.pid"))
}

fn log_files(env: &Env, name: &str) -> (PathBuf, PathBuf) {
    (
        env.path(&format!("/var/log/{name}.log")),
        env.path(&format!("/var/log/{name}.err")),
    )
}

/// The daemon's pid when it runs: the pid file names a live (not zombie) k0s daemon. The
/// command line is checked because a stale pid file may name a reused pid.
pub fn daemon_pid(env: &Env, name: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(env, name))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

fn alive(pid: u32) -> bool {
    running(pid) && is_k0s(pid)
}

/// Whether any thread of the process has yet to exit. The daemon is multi-threaded: when it is
/// signalled, its main thread can show as a zombie (and its command line as empty) while the
/// other threads are still exiting and the process's files, its listening ports among them,
/// are still open. Only when every thread is gone is the port free for the next start.
fn running(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            return false;
        };
        // `pid (comm) S ...`: the state follows the last parenthesis.
        let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
        state.is_some_and(|s| !s.starts_with('Z') && !s.starts_with('X'))
    })
}

/// Whether the process is a k0s daemon (`k0s controller|worker ...`): a stale pid file may
/// name a reused pid. Any thread's view will do while the main thread's may already be empty.
fn is_k0s(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        let cmdline = std::fs::read(t.path().join("cmdline")).unwrap_or_default();
        cmdline
            .split(|b| *b == 0)
            .nth(1)
            .is_some_and(|a| a == b"controller" || a == b"worker")
    })
}

/// Whether k0s answers on its status socket.
pub fn status_answers(env: &Env) -> bool {
    std::os::unix::net::UnixStream::connect(env.path(STATUS_SOCK)).is_ok()
}

/// `k0s start`: through the init script, as k0s's service library does on a SysV host.
pub fn start(env: &Env) -> Result<(), Error> {
    let Some(svc) = installed(env)? else {
        return Err(Error::msg("k0s is not installed: run `k0s install` first"));
    };
    if daemon_pid(env, svc.name).is_some() {
        return Err(Error::msg("k0s is already running"));
    }
    match svc.init {
        Init::Systemd => initd_start(env, &svc)
            .map_err(|e| Error::msg(format!("failed to start {}: {e}", svc.name))),
        Init::Openrc | Init::Sysv => run_script(env, &svc, "start"),
    }
}

/// `k0s stop`.
pub fn stop(env: &Env) -> Result<(), Error> {
    let Some(svc) = installed(env)? else {
        return Err(Error::msg("k0s is not installed"));
    };
    match svc.init {
        Init::Systemd => initd_stop(env, svc.name),
        Init::Openrc | Init::Sysv => run_script(env, &svc, "stop"),
    }
}

fn run_script(env: &Env, svc: &Installed, cmd: &str) -> Result<(), Error> {
    let script = env.path(&svc.init.unit_path(svc.name));
    let out = Command::new(&script)
        .arg(cmd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("cannot run {}", script.display()), e))?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    let why = why.trim();
    let why = why.strip_prefix("Error: ").unwrap_or(why);
    Err(Error::msg(format!("failed to {cmd} {}: {why}", svc.name)))
}

/// `k0s __initd NAME start|stop|restart|status`: what the init script does.
pub fn initd(env: &Env, name: &str, cmd: &str) -> Result<(), Error> {
    let svc = installed(env)?
        .filter(|s| s.name == name)
        .ok_or_else(|| Error::msg(format!("{name} is not installed")))?;
    match cmd {
        "start" => {
            if daemon_pid(env, name).is_some() {
                println!("Already started");
                return Ok(());
            }
            println!("Starting {name}");
            initd_start(env, &svc)
        }
        "stop" => initd_stop(env, name),
        "restart" => {
            initd_stop(env, name)?;
            initd_start(env, &svc)
        }
        "status" => {
            if daemon_pid(env, name).is_some() {
                println!("Running");
                Ok(())
            } else {
                println!("Stopped");
                Err(Error::msg(format!("{name} is stopped")))
            }
        }
        other => Err(Error::msg(format!(
            "Usage: /etc/init.d/{name} {{start|stop|restart|status}} (not {other:?})"
        ))),
    }
}

/// Starts the daemon detached, and waits until it serves its status socket or exits: its
/// error (a held port, a refused join) is then the start's.
fn initd_start(env: &Env, svc: &Installed) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find this binary", e))?;
    let (out_log, err_log) = log_files(env, svc.name);
    if let Some(dir) = out_log.parent() {
        util::mkdirs(dir)?;
    }
    let open = |p: &PathBuf| {
        std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(p)
            .map_err(|e| Error::io(format!("cannot open {}", p.display()), e))
    };
    let stdout = open(&out_log)?;
    let mut stderr = open(&err_log)?;
    let err_start = stderr
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| Error::io("cannot seek the error log", e))?;
    let stderr_for_child = stderr
        .try_clone()
        .map_err(|e| Error::io("cannot clone the error log", e))?;
    // A stale socket from a killed daemon must not count as an answer.
    util::remove_file(&env.path(STATUS_SOCK))?;
    util::mkdirs(&env.path(RUN_DIR))?;

    // setsid(1) gives the daemon its own session, so the SSH session that started it can end;
    // without it, a process group of its own is the next best thing.
    let mut command = if which("setsid") {
        let mut c = Command::new("setsid");
        c.arg(&exe);
        c
    } else {
        use std::os::unix::process::CommandExt as _;
        let mut c = Command::new(&exe);
        c.process_group(0);
        c
    };
    command
        .args(&svc.args)
        .envs(svc.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr_for_child);
    let mut child = command
        .spawn()
        .map_err(|e| Error::io(format!("cannot start {}", exe.display()), e))?;
    util::write(
        &pid_file(env, svc.name),
        format!("{}\n", child.id()).as_bytes(),
        0o644,
        "the pid file",
    )?;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            util::remove_file(&pid_file(env, svc.name))?;
            let mut text = String::new();
            stderr
                .seek(std::io::SeekFrom::Start(err_start))
                .and_then(|_| stderr.read_to_string(&mut text))
                .map_err(|e| Error::io("cannot read the error log", e))?;
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no error logged")
                .trim();
            let last = last.strip_prefix("Error: ").unwrap_or(last);
            return Err(Error::msg(format!("{last} (daemon exited with {status})")));
        }
        if status_answers(env) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::msg(
                "the daemon did not serve /run/k0s/status.sock within 30s",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Stops the daemon: SIGTERM, then SIGKILL after 10 s, as the SysV template waits. The daemon
/// does not clean up on a signal, so its socket and pid file are removed here.
fn initd_stop(env: &Env, name: &str) -> Result<(), Error> {
    let Some(pid) = daemon_pid(env, name) else {
        println!("Not running");
        util::remove_file(&pid_file(env, name))?;
        return Ok(());
    };
    println!("Stopping {name}..");
    signal(pid, "TERM")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(pid) {
        if Instant::now() >= deadline {
            signal(pid, "KILL")?;
            std::thread::sleep(Duration::from_millis(200));
            if running(pid) {
                return Err(Error::msg(
                    "Not stopped; may still be shutting down or shutdown may have failed",
                ));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    util::remove_file(&pid_file(env, name))?;
    util::remove_file(&env.path(STATUS_SOCK))?;
    // The kubelet is gone whether or not the control plane hears of it.
    if let Err(e) = crate::node::stopped(env) {
        eprintln!("warning: {e}");
    }
    println!("Stopped");
    Ok(())
}

/// kill(1) through sh, whose builtin exists where procps's /bin/kill may not.
fn signal(pid: u32, sig: &str) -> Result<(), Error> {
    let out = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\"", "sh", sig, &pid.to_string()])
        .output()
        .map_err(|e| Error::io("cannot run kill", e))?;
    if out.status.success() || !running(pid) {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "cannot signal {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Removes the service definition and the daemon's pid file.
pub fn uninstall(env: &Env, svc: &Installed) -> Result<(), Error> {
    util::remove_file(&env.path(&svc.init.unit_path(svc.name)))?;
    util::remove_file(&pid_file(env, svc.name))
}
