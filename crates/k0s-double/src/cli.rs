//! The k0s commands ferry runs.

use std::io::Read as _;
use std::os::unix::net::UnixStream;
use std::process::Command;

use crate::daemon::{self, parse_flags};
use crate::env::{DATA_DIR, Env, RUN_DIR, STATUS_SOCK};
use crate::service::{self, Init};
use crate::token::{self, Token};
use crate::util::{self, Error};

pub fn run(args: &[String]) -> Result<(), Error> {
    let env = Env::from_process()?;
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if words == ["version"] {
        println!("{}", crate::env::version());
        return Ok(());
    }
    env.require_root()?;
    // The init script's own calls are not k0s commands: a fault names what ferry runs.
    if words.first() != Some(&"__initd") {
        env.check_fault(args)?;
    }
    match words.as_slice() {
        ["install", role, ..] => install(&env, role, &args[2..]),
        ["start"] => service::start(&env),
        ["stop"] => service::stop(&env),
        ["status", rest @ ..] => status(&env, rest),
        ["reset", ..] => reset(&env),
        ["token", "create", ..] => token_create(&env, &args[2..]),
        ["etcd", "member-list", ..] => member_list(&env),
        ["etcd", "leave", rest @ ..] => etcd_leave(&env, rest),
        ["backup", ..] => backup(&env, &args[1..]),
        ["controller" | "worker", ..] => daemon::run(&env, words[0], &args[1..]),
        ["__initd", name, cmd] => service::initd(&env, name, cmd),
        _ => Err(Error::msg(format!(
            "unknown command {:?} for \"k0s\"\nRun 'k0s --help' for usage.",
            words.first().copied().unwrap_or("")
        ))),
    }
}

/// `k0s install controller|worker [--config F] [--token-file F] [--enable-worker [--no-taints]]
/// [--force]`.
fn install(env: &Env, role: &str, args: &[String]) -> Result<(), Error> {
    if role != "controller" && role != "worker" {
        return Err(Error::msg(format!(
            "unknown command {role:?} for \"k0s install\""
        )));
    }
    let flags = parse_flags(args)?;
    let init = Init::detect(env);
    if let Some(existing) = service::installed(env)? {
        if !flags.force {
            return Err(Error::msg(format!(
                "failed to install k0s service: Init already exists: {}",
                init.unit_path(existing.name)
            )));
        }
        if service::daemon_pid(env, existing.name).is_some() {
            return Err(Error::msg(
                "failed to install k0s service: k0s is running, stop it first",
            ));
        }
        service::uninstall(env, &existing)?;
    }
    if let Some(c) = &flags.config {
        daemon::read_config(env, c)?;
    }
    match &flags.token_file {
        Some(t) => {
            let (tok, _) = daemon::read_token(env, t)?;
            if tok.role != role {
                return Err(Error::msg(format!(
                    "invalid join token: it is a {} token, not a {role} token",
                    tok.role
                )));
            }
        }
        None if role == "worker" => {
            return Err(Error::msg("a worker needs a join token (--token-file)"));
        }
        None => {}
    }
    // k0s records absolute paths in the service, as `--flag=value`.
    let absolute = |p: &str| -> Result<String, Error> {
        if p.starts_with('/') {
            Ok(p.to_string())
        } else {
            let cwd = std::env::current_dir().map_err(|e| Error::io("no working directory", e))?;
            Ok(cwd.join(p).display().to_string())
        }
    };
    let mut daemon_args = vec![role.to_string()];
    if role == "controller" && flags.enable_worker {
        daemon_args.push("--enable-worker".into());
        // k0s keeps the flag in the service: the controller's Node is registered untainted at
        // every start, not only the first
        if flags.no_taints {
            daemon_args.push("--no-taints".into());
        }
    }
    if let Some(c) = &flags.config {
        daemon_args.push(format!("--config={}", absolute(c)?));
    }
    if let Some(t) = &flags.token_file {
        daemon_args.push(format!("--token-file={}", absolute(t)?));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find this binary", e))?;
    let name = if role == "worker" {
        "k0sworker"
    } else {
        "k0scontroller"
    };
    let text = service::definition(init, name, &exe.display().to_string(), &daemon_args)?;
    let mode = if init == Init::Systemd { 0o644 } else { 0o755 };
    util::mkdirs(&env.path(&format!("{DATA_DIR}/pki")))?;
    util::write(
        &env.path(&init.unit_path(name)),
        text.as_bytes(),
        mode,
        &init.unit_path(name),
    )
}

/// What the daemon answers on its status socket.
fn ask_status(env: &Env) -> Result<serde_json::Value, Error> {
    let not_running = |why: &str| {
        Error::msg(format!(
            "status: can't get \"status\" via \"{STATUS_SOCK}\": dial unix {STATUS_SOCK}: connect: {why}"
        ))
    };
    let mut c =
        UnixStream::connect(env.path(STATUS_SOCK)).map_err(|e| not_running(util::go_io(&e)))?;
    let mut text = String::new();
    c.read_to_string(&mut text)
        .map_err(|e| not_running(util::go_io(&e)))?;
    serde_json::from_str(&text).map_err(|e| Error::msg(format!("status: bad answer: {e}")))
}

fn status(env: &Env, rest: &[&str]) -> Result<(), Error> {
    let out = match rest {
        [] => None,
        ["-o" | "--out", f] => Some(*f),
        [f] => f.strip_prefix("--out=").or_else(|| f.strip_prefix("-o=")),
        _ => {
            return Err(Error::msg(format!(
                "unknown arguments {rest:?} for \"k0s status\""
            )));
        }
    };
    let s = ask_status(env)?;
    match out {
        None => {}
        Some("json") => {
            println!("{s}");
            return Ok(());
        }
        Some("yaml") => {
            let text = serde_yaml::to_string(&s)
                .map_err(|e| Error::msg(format!("status: cannot write yaml: {e}")))?;
            print!("{text}");
            return Ok(());
        }
        Some(other) => {
            return Err(Error::msg(format!(
                "unknown output format {other:?}: use json or yaml"
            )));
        }
    }
    println!(
        "Version: {}\nProcess ID: {}\nRole: {}\nWorkloads: {}\nSingleNode: {}",
        s["Version"].as_str().unwrap_or(crate::env::version()),
        s["Pid"],
        s["Role"].as_str().unwrap_or(""),
        s["Workloads"].as_bool().unwrap_or(false),
        s["SingleNode"].as_bool().unwrap_or(false),
    );
    Ok(())
}

fn running_controller(env: &Env, doing: &str) -> Result<(), Error> {
    match ask_status(env) {
        Ok(s) if s["Role"] == "controller" => Ok(()),
        _ => Err(Error::msg(format!(
            "{doing}: the k0s controller is not running"
        ))),
    }
}

/// `k0s reset`: refused while k0s runs; removes the service, the data dir and the run dir.
fn reset(env: &Env) -> Result<(), Error> {
    let svc = service::installed(env)?;
    let running = service::status_answers(env)
        || svc
            .as_ref()
            .is_some_and(|s| service::daemon_pid(env, s.name).is_some());
    if running {
        return Err(Error::msg(
            "k0s seems to be running! please stop k0s before reset.",
        ));
    }
    let Some(svc) = svc else {
        return Err(Error::msg("k0s is not installed"));
    };
    service::uninstall(env, &svc)?;
    util::remove_tree(&env.path(DATA_DIR))?;
    util::remove_tree(&env.path(RUN_DIR))?;
    eprintln!("k0s cleaned up successfully. To ensure a full reset, a node reboot is recommended.");
    Ok(())
}

fn token_create(env: &Env, args: &[String]) -> Result<(), Error> {
    let mut role = "worker".to_string();
    let mut expiry = "0s".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let value = inline
            .or_else(|| it.next().cloned())
            .ok_or_else(|| Error::msg(format!("flag needs an argument: {name}")))?;
        match name {
            "--role" => role = value,
            "--expiry" => expiry = value,
            other => return Err(Error::msg(format!("unknown flag: {other}"))),
        }
    }
    if role != "worker" && role != "controller" {
        return Err(Error::msg(format!(
            "unsupported role {role:?}; supported roles are \"controller\" and \"worker\""
        )));
    }
    let expiry = util::go_duration(&expiry)?;
    running_controller(env, "failed to create token")?;
    let svc = service::installed(env)?;
    let config = match svc.as_ref().and_then(|s| {
        s.args
            .iter()
            .find_map(|a| a.strip_prefix("--config=").map(str::to_string))
    }) {
        Some(c) => Some(daemon::read_config(env, &c)?),
        None => None,
    };
    let address = env.api_address(config.as_ref());
    let port = env.port(if role == "controller" { 9443 } else { 6443 })?;
    let bootstrap = token::remember(env, &role, expiry)?;
    let ca = std::fs::read(env.path(&format!("{DATA_DIR}/pki/ca.crt"))).unwrap_or_default();
    use base64::Engine as _;
    let t = Token {
        role,
        server: format!("https://{address}:{port}"),
        bootstrap,
    };
    println!(
        "{}",
        t.encode(&base64::engine::general_purpose::STANDARD.encode(ca))?
    );
    Ok(())
}

fn member_list(env: &Env) -> Result<(), Error> {
    running_controller(env, "failed to read etcd member list")?;
    let m = daemon::quorate_members(env)
        .map_err(|e| Error::msg(format!("failed to read etcd member list: {e}")))?;
    println!("{}", serde_json::json!({ "members": m }));
    Ok(())
}

/// `k0s etcd leave [--peer-address ADDR]`.
fn etcd_leave(env: &Env, args: &[&str]) -> Result<(), Error> {
    let peer = match args {
        [] => None,
        ["--peer-address", a] => Some(*a),
        [f] if f.starts_with("--peer-address=") => f.strip_prefix("--peer-address="),
        _ => {
            return Err(Error::msg(format!(
                "unknown arguments {args:?} for \"k0s etcd leave\""
            )));
        }
    };
    running_controller(env, "failed to leave the etcd cluster")?;
    daemon::leave(env, peer)
}

/// `k0s backup --save-path DIR`: a tar.gz of /etc/k0s and the data dir, made by the host's tar.
fn backup(env: &Env, args: &[String]) -> Result<(), Error> {
    let dir = match args {
        [flag, dir] if flag == "--save-path" => dir.clone(),
        [flag] if flag.starts_with("--save-path=") => {
            flag.trim_start_matches("--save-path=").to_string()
        }
        _ => return Err(Error::msg("backup needs --save-path DIR")),
    };
    running_controller(env, "backup can only be taken on a running controller")?;
    let real_dir = env.path(&dir);
    if !real_dir.is_dir() {
        return Err(Error::msg(format!(
            "save path {dir} does not exist or is not a directory"
        )));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let name = format!(
        "k0s_backup_{}.tar.gz",
        util::backup_stamp(now.as_secs(), now.subsec_millis())
    );
    let parts: Vec<&str> = ["etc/k0s", "var/lib/k0s"]
        .into_iter()
        .filter(|p| env.root().join(p).exists())
        .collect();
    let out = Command::new("tar")
        .arg("-czf")
        .arg(real_dir.join(&name))
        .arg("-C")
        .arg(env.root())
        // The daemon writes its bookkeeping while tar reads; a changed file is no failure.
        .arg("--warning=no-file-changed")
        .args(&parts)
        .output()
        .map_err(|e| Error::io("cannot run tar", e))?;
    // GNU tar exits 1 when a file changed while read: the archive is still whole.
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(Error::msg(format!(
            "failed to write {dir}/{name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    eprintln!("backup saved to {dir}/{name}");
    Ok(())
}
