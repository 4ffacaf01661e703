//! The daemon the service runs: `k0s controller [--config=F] [--enable-worker]
//! [--token-file=F]` or `k0s worker --token-file=F`. It holds k0s's ports, joins the controller
//! its token names, and answers on `/run/k0s/status.sock` until it is killed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use crate::env::{DATA_DIR, DOUBLE_DIR, Env, RUN_DIR, STATUS_SOCK};
use crate::token::{self, Token};
use crate::util::{self, Error};

/// The join line a joining node sends to a controller's API port.
const JOIN: &str = "K0S-DOUBLE-JOIN";

/// Ports a k0s daemon listens on (the in-memory fake's `k0s_ports`): etcd peer, kube-apiserver,
/// konnectivity, controller join API; the kubelet with a worker.
pub fn ports(controller: bool, worker: bool) -> Vec<u16> {
    let mut v = Vec::new();
    if controller {
        v.extend([2380, 6443, 8132, 9443]);
    }
    if worker {
        v.push(10250);
    }
    v
}

/// The daemon's flags, `--flag=value` or `--flag value`.
#[derive(Debug, Default)]
pub struct Flags {
    pub config: Option<String>,
    pub token_file: Option<String>,
    pub enable_worker: bool,
    pub force: bool,
    pub no_taints: bool,
}

pub fn parse_flags(args: &[String]) -> Result<Flags, Error> {
    let mut f = Flags::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| Error::msg(format!("flag needs an argument: {name}")))
        };
        match name {
            "--config" | "-c" => f.config = Some(value()?),
            "--token-file" => f.token_file = Some(value()?),
            "--enable-worker" => f.enable_worker = true,
            "--force" => f.force = true,
            "--no-taints" => f.no_taints = true,
            // Flags ferry does not use, accepted and ignored as k0s would honour them.
            "--debug" | "-d" | "--verbose" | "-v" | "--single" => {}
            "--data-dir" | "--labels" | "--kubelet-extra-args" | "--cri-socket" => {
                value()?;
            }
            other => return Err(Error::msg(format!("unknown flag: {other}"))),
        }
    }
    Ok(f)
}

/// Reads and parses a config file named on the host.
pub fn read_config(env: &Env, path: &str) -> Result<serde_yaml::Value, Error> {
    let text = std::fs::read_to_string(env.path(path)).map_err(|e| {
        Error::msg(format!(
            "failed to read config file {path}: {}",
            util::go_io(&e)
        ))
    })?;
    serde_yaml::from_str(&text)
        .map_err(|e| Error::msg(format!("failed to parse config file {path}: {e}")))
}

/// Reads and decodes the join token in the file `path` names on the host; also its text.
pub fn read_token(env: &Env, path: &str) -> Result<(Token, String), Error> {
    let text = std::fs::read_to_string(env.path(path)).map_err(|e| {
        Error::msg(format!(
            "failed to read token file {path}: open {path}: {}",
            util::go_io(&e)
        ))
    })?;
    let token = Token::decode(&text).map_err(|e| Error::msg(format!("invalid join token: {e}")))?;
    Ok((token, text.trim().to_string()))
}

fn members_path(env: &Env) -> std::path::PathBuf {
    env.path(&format!("{DOUBLE_DIR}/members.json"))
}

/// The etcd members this controller knows of.
pub fn members(env: &Env) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let path = members_path(env);
    match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| Error::msg(format!("corrupt {}: {e}", path.display()))),
        Err(_) => Ok(serde_json::Map::new()),
    }
}

fn save_members(env: &Env, m: &serde_json::Map<String, serde_json::Value>) -> Result<(), Error> {
    let text = serde_json::Value::Object(m.clone()).to_string();
    util::write(
        &members_path(env),
        text.as_bytes(),
        0o600,
        "the member list",
    )
}

fn joined_marker(env: &Env) -> std::path::PathBuf {
    env.path(&format!("{DOUBLE_DIR}/joined"))
}

/// `k0s controller ...` / `k0s worker ...`: runs until killed.
pub fn run(env: &Env, role: &str, args: &[String]) -> Result<(), Error> {
    let flags = parse_flags(args)?;
    let controller = role == "controller";
    let worker = !controller || flags.enable_worker;
    let name = if controller {
        "k0scontroller"
    } else {
        "k0sworker"
    };
    let config = match &flags.config {
        Some(c) => Some(read_config(env, c)?),
        None => None,
    };
    util::mkdirs(&env.path(RUN_DIR))?;
    util::mkdirs(&env.path(DOUBLE_DIR))?;
    let joined = joined_marker(env).exists();
    // k0s reads the token at every start until the node has joined: a token file removed
    // between `k0s install` and the first `k0s start` fails that start.
    let token = match (&flags.token_file, joined) {
        (Some(path), false) => Some(read_token(env, path)?),
        (None, false) if !controller => {
            return Err(Error::msg("a worker needs a join token (--token-file)"));
        }
        _ => None,
    };

    // Every port first, as k0s's components bind theirs at start: a held one ends the daemon.
    let mut listeners = Vec::new();
    for p in ports(controller, worker) {
        let port = env.port(p)?;
        let l = TcpListener::bind(("0.0.0.0", port))
            .map_err(|e| Error::msg(format!("listen tcp :{port}: bind: {}", util::go_io(&e))))?;
        listeners.push((p, l));
    }

    let me = env.hostname();
    let address = env.address(config.as_ref());
    if controller {
        let peer = format!("https://{address}:{}", env.port(2380)?);
        match &token {
            Some(t) => join_controller(env, t, &me, &peer)?,
            None => {
                let mut m = members(env)?;
                m.insert(me.clone(), serde_json::Value::String(peer));
                save_members(env, &m)?;
            }
        }
        let ca = env.path(&format!("{DATA_DIR}/pki/ca.crt"));
        if !ca.exists() {
            let pem = format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                util::random_id(64)?
            );
            util::write(&ca, pem.as_bytes(), 0o644, "the CA certificate")?;
        }
    }

    for (p, l) in listeners {
        let env = env.clone();
        let api = controller && (p == 6443 || p == 9443);
        std::thread::spawn(move || serve_port(&env, l, api));
    }
    if let (Some(t), false) = (token.clone(), controller) {
        let env = env.clone();
        std::thread::spawn(move || {
            join_worker(&env, &t);
            register_node(&env, false, false);
        });
    } else if worker {
        // A controller with a worker, or a worker that joined before this start.
        let env = env.clone();
        let taint = !flags.no_taints;
        std::thread::spawn(move || register_node(&env, controller, taint));
    }

    let sock = env.path(STATUS_SOCK);
    util::remove_file(&sock)?;
    let status = UnixListener::bind(&sock)
        .map_err(|e| Error::msg(format!("listen unix {STATUS_SOCK}: {}", util::go_io(&e))))?;
    eprintln!(
        "{name} {} started as {me} ({address}), pid {}",
        crate::env::version(),
        std::process::id()
    );
    let answer = serde_json::json!({
        "Version": crate::env::version(),
        "Pid": std::process::id(),
        "Role": role,
        "Workloads": worker,
        "SingleNode": false,
        "Args": std::env::args().collect::<Vec<_>>(),
    })
    .to_string();
    // A failed accept or write concerns one client only.
    for mut c in status.incoming().flatten() {
        let _ = c.write_all(answer.as_bytes());
    }
    Ok(())
}

/// Accepts connections; on a controller's API ports, answers the join line.
fn serve_port(env: &Env, l: TcpListener, api: bool) {
    for conn in l.incoming() {
        let Ok(c) = conn else { continue };
        if api {
            let env = env.clone();
            std::thread::spawn(move || {
                let _ = answer_join(&env, c);
            });
        }
    }
}

fn answer_join(env: &Env, mut c: TcpStream) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(c.try_clone()?).read_line(&mut line)?;
    let mut w = line.split_whitespace();
    if w.next() != Some(JOIN) {
        return Ok(());
    }
    let reply = match w.next().map(Token::decode) {
        None => "denied no token".to_string(),
        Some(Err(e)) => format!("denied {e}"),
        Some(Ok(t)) => match token::accept(env, &t) {
            Err(e) => format!("denied {e}"),
            Ok(()) if t.role == "controller" => match (w.next(), w.next()) {
                (Some(name), Some(peer)) => match members(env).and_then(|mut m| {
                    m.insert(name.to_string(), serde_json::Value::String(peer.into()));
                    save_members(env, &m).map(|()| m)
                }) {
                    Ok(m) => format!("ok {}", serde_json::Value::Object(m)),
                    Err(e) => format!("denied {e}"),
                },
                _ => "denied a controller names itself".to_string(),
            },
            Ok(()) => "ok {}".to_string(),
        },
    };
    c.write_all(format!("{reply}\n").as_bytes())
}

/// Sends the join line; `Ok(Err(reason))` when the controller refused.
fn ask((t, raw): &(Token, String), extra: &str) -> std::io::Result<Result<String, String>> {
    let mut c = TcpStream::connect(t.endpoint())?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.write_all(format!("{JOIN} {raw} {extra}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line)?;
    let line = line.trim();
    Ok(match line.strip_prefix("ok") {
        Some(rest) => Ok(rest.trim().to_string()),
        None => Err(line.strip_prefix("denied ").unwrap_or(line).to_string()),
    })
}

/// A controller joins before it starts its etcd: refused or unreachable (for 30 s), it fails.
fn join_controller(env: &Env, tok: &(Token, String), me: &str, peer: &str) -> Result<(), Error> {
    let t = &tok.0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ask(tok, &format!("{me} {peer}")) {
            Ok(Ok(list)) => {
                let m = serde_json::from_str(&list).unwrap_or_default();
                save_members(env, &m)?;
                return util::write(&joined_marker(env), b"", 0o600, "the join marker");
            }
            Ok(Err(why)) => {
                return Err(Error::msg(format!(
                    "failed to join the controller at {}: {why}",
                    t.server
                )));
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(Error::msg(format!(
                    "failed to join the controller: dial tcp {}: {}",
                    t.endpoint(),
                    util::go_io(&e)
                )));
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// A worker's kubelet bootstraps in the background and retries until it is let in.
fn join_worker(env: &Env, tok: &(Token, String)) {
    let t = &tok.0;
    loop {
        match ask(tok, "") {
            Ok(Ok(_)) => {
                eprintln!("joined the cluster at {}", t.server);
                if let Err(e) = util::write(&joined_marker(env), b"", 0o600, "the join marker") {
                    eprintln!("{e}");
                }
                return;
            }
            Ok(Err(why)) => eprintln!("kubelet bootstrap at {}: {why}", t.server),
            Err(e) => eprintln!(
                "kubelet bootstrap: dial tcp {}: {}",
                t.endpoint(),
                util::go_io(&e)
            ),
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The kubelet registers its Node, retrying as a kubelet does until the API answers, then keeps
/// reporting its version in the Node's status as a kubelet's status updates do (kwok's first
/// status of a new Node can land after the double's and carry kwok's own version).
fn register_node(env: &Env, controller: bool, taint: bool) {
    loop {
        match crate::node::register(env, controller, taint) {
            Ok(()) => break,
            Err(e) => eprintln!("kubelet: {e}"),
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let mut pause = Duration::from_secs(1);
    loop {
        std::thread::sleep(pause);
        if let Err(e) = crate::node::report_version(env) {
            eprintln!("kubelet: {e}");
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}
