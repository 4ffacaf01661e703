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
/// A controller tells the others the member list after a change (`<line> <json>`), as etcd's
/// raft log would carry it to every member.
const MEMBERS: &str = "K0S-DOUBLE-MEMBERS";
/// A controller that starts again asks a peer for the list it missed while it was down.
const SYNC: &str = "K0S-DOUBLE-SYNC";

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
    /// `--kubelet-extra-args`: the double honours `--max-pods=N` in it (the Node's pod limit).
    pub kubelet_extra_args: Option<String>,
}

impl Flags {
    /// `--max-pods` of the kubelet's extra arguments.
    pub fn max_pods(&self) -> Option<u64> {
        self.kubelet_extra_args.as_deref().and_then(|a| {
            let mut it = a.split_whitespace();
            while let Some(w) = it.next() {
                if let Some(v) = w.strip_prefix("--max-pods=") {
                    return v.parse().ok();
                }
                if w == "--max-pods" {
                    return it.next().and_then(|v| v.parse().ok());
                }
            }
            None
        })
    }
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
            "--kubelet-extra-args" => f.kubelet_extra_args = Some(value()?),
            "--data-dir" | "--labels" | "--cri-socket" => {
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

/// Set when this controller's etcd member was removed (`k0s etcd leave`): its etcd is gone for
/// good until `k0s reset` and a new join.
fn removed_marker(env: &Env) -> std::path::PathBuf {
    env.path(&format!("{DOUBLE_DIR}/removed"))
}

/// This controller's etcd member was removed from the cluster.
pub fn removed(env: &Env) -> bool {
    removed_marker(env).exists()
}

/// `host:port` of the join API of the controller whose etcd peer URL is `peer`
/// (`https://10.0.0.1:2380` → `10.0.0.1:9443`, the port offset kept).
fn api_of(peer: &str) -> Option<String> {
    let rest = peer.strip_prefix("https://")?;
    let (host, port) = rest.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!(
        "{host}:{}",
        port.checked_sub(2380)?.checked_add(9443)?
    ))
}

/// Whether something listens at `peer`'s etcd port.
fn peer_answers(peer: &str) -> bool {
    let Some(rest) = peer.strip_prefix("https://") else {
        return false;
    };
    use std::net::ToSocketAddrs as _;
    rest.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// The member list when a majority of its members answers, as an etcd read needs; etcd's
/// errors otherwise.
pub fn quorate_members(env: &Env) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    if removed(env) {
        return Err(Error::msg(
            "etcdserver: the member has been permanently removed from the cluster",
        ));
    }
    let m = members(env)?;
    let up = m
        .values()
        .filter(|p| p.as_str().is_some_and(peer_answers))
        .count();
    if up * 2 <= m.len() {
        return Err(Error::msg(format!(
            "context deadline exceeded (etcd has no quorum: {up} of {} members answer)",
            m.len()
        )));
    }
    Ok(m)
}

/// Sends `m` to every member but `skip` (best effort: a member that is down catches up with
/// [`SYNC`] when it starts), and to `also` (a member just removed, so that it knows).
fn broadcast(m: &serde_json::Map<String, serde_json::Value>, skip: &[&str], also: Option<&str>) {
    let line = format!("{MEMBERS} {}\n", serde_json::Value::Object(m.clone()));
    let peers = m
        .iter()
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .filter_map(|(_, p)| p.as_str())
        .chain(also);
    for peer in peers {
        let Some(api) = api_of(peer) else { continue };
        use std::net::ToSocketAddrs as _;
        let Some(addr) = api.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            continue;
        };
        if let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            let _ = c.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = c.write_all(line.as_bytes());
            // wait for the peer to have written it
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut ack = String::new();
            let _ = BufReader::new(c).read_line(&mut ack);
        }
    }
}

/// `k0s etcd leave [--peer-address ADDR]`: removes the member whose peer URL has `ADDR` (this
/// controller's own by default), through this controller, which must be a quorate member.
pub fn leave(env: &Env, peer_address: Option<&str>) -> Result<(), Error> {
    let mut m = quorate_members(env)?;
    let own = {
        let me = env.hostname();
        m.get(&me).and_then(|p| p.as_str()).map(str::to_string)
    };
    let host_of = |p: &str| {
        p.strip_prefix("https://")
            .and_then(|r| r.rsplit_once(':'))
            .map(|(h, _)| h.to_string())
    };
    let want = match peer_address {
        Some(a) => a.to_string(),
        None => own
            .as_deref()
            .and_then(|p| p.strip_prefix("https://"))
            .map(str::to_string)
            .ok_or_else(|| Error::msg("this controller is not an etcd member"))?,
    };
    // k0s takes an address and means its peer URL on the etcd port; with the double's port
    // offsets several members can share an address, so `ADDR:PORT` picks one of them
    let matching: Vec<(String, String)> = m
        .iter()
        .filter_map(|(n, p)| Some((n, p.as_str()?)))
        .filter(|(_, p)| {
            p.strip_prefix("https://") == Some(want.as_str())
                || host_of(p).as_deref() == Some(want.as_str())
        })
        .map(|(n, p)| (n.clone(), p.to_string()))
        .collect();
    let (name, peer) = match matching.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::msg(format!(
                "failed to remove member: no etcd member has peer address {want}"
            )));
        }
        _ => {
            return Err(Error::msg(format!(
                "failed to remove member: more than one member has peer address {want}; give ADDR:PORT"
            )));
        }
    };
    m.remove(&name);
    let me = env.hostname();
    if name == me {
        util::write(&removed_marker(env), b"", 0o600, "the removed marker")?;
    } else {
        save_members(env, &m)?;
    }
    broadcast(&m, &[me.as_str()], Some(&peer));
    if name == me {
        save_members(env, &m)?;
    }
    eprintln!("Successfully removed the member {name} ({peer}) from the etcd cluster");
    Ok(())
}

/// `k0s controller ...` / `k0s worker ...`: runs until killed.
pub fn run(env: &Env, role: &str, args: &[String]) -> Result<(), Error> {
    let flags = parse_flags(args)?;
    crate::node::set_max_pods(flags.max_pods());
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
            None if joined || members(env)?.len() > 1 => catch_up(env, &me),
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

/// A controller that was down asks each peer it knows for the current list; the first answer
/// wins (etcd's raft would bring it up to date the same way).
fn catch_up(env: &Env, me: &str) {
    let Ok(m) = members(env) else { return };
    for (name, peer) in &m {
        if name == me {
            continue;
        }
        let Some(api) = peer.as_str().and_then(api_of) else {
            continue;
        };
        let Ok(mut c) = TcpStream::connect(&api) else {
            continue;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
        if c.write_all(format!("{SYNC}\n").as_bytes()).is_err() {
            continue;
        }
        let mut line = String::new();
        if BufReader::new(c).read_line(&mut line).is_err() {
            continue;
        }
        if let Ok(serde_json::Value::Object(list)) = serde_json::from_str(line.trim()) {
            if !list.contains_key(me) {
                let _ = util::write(&removed_marker(env), b"", 0o600, "the removed marker");
            }
            let _ = save_members(env, &list);
            return;
        }
    }
}

/// The kubeconfig a joining node's kubelet uses: the one this controller holds, as k0s hands
/// out the API's address and credentials with a join.
fn kubeconfig_for_join(env: &Env) -> Option<String> {
    use base64::Engine as _;
    std::fs::read(env.path(crate::node::KUBECONFIG))
        .ok()
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
}

/// Keeps the kubeconfig a join handed out.
fn keep_kubeconfig(env: &Env, encoded: Option<&str>) -> Result<(), Error> {
    use base64::Engine as _;
    let Some(b) = encoded.and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
    else {
        return Ok(());
    };
    let path = env.path(crate::node::KUBECONFIG);
    if let Some(dir) = path.parent() {
        util::mkdirs(dir)?;
    }
    util::write(&path, &b, 0o600, "the kubelet's kubeconfig")
}

fn answer_join(env: &Env, mut c: TcpStream) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(c.try_clone()?).read_line(&mut line)?;
    if let Some(list) = line.trim().strip_prefix(MEMBERS) {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(list.trim()) {
            if !m.contains_key(&env.hostname()) {
                let _ = util::write(&removed_marker(env), b"", 0o600, "the removed marker");
            }
            let _ = save_members(env, &m);
        }
        return c.write_all(b"ok\n");
    }
    if line.trim() == SYNC {
        let m = members(env).unwrap_or_default();
        return c.write_all(format!("{}\n", serde_json::Value::Object(m)).as_bytes());
    }
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
                // adding a member is an etcd write: it needs the quorum
                (Some(name), Some(peer)) => match quorate_members(env).and_then(|mut m| {
                    m.insert(name.to_string(), serde_json::Value::String(peer.into()));
                    save_members(env, &m).map(|()| m)
                }) {
                    Ok(m) => {
                        broadcast(&m, &[env.hostname().as_str(), name], None);
                        format!(
                            "ok {}",
                            serde_json::json!({"members": m, "kubeconfig": kubeconfig_for_join(env)})
                        )
                    }
                    Err(e) => format!("denied {e}"),
                },
                _ => "denied a controller names itself".to_string(),
            },
            Ok(()) => format!(
                "ok {}",
                serde_json::json!({"kubeconfig": kubeconfig_for_join(env)})
            ),
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
            Ok(Ok(answer)) => {
                let a: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
                let m = a["members"].as_object().cloned().unwrap_or_default();
                save_members(env, &m)?;
                util::remove_file(&removed_marker(env))?;
                keep_kubeconfig(env, a["kubeconfig"].as_str())?;
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
            Ok(Ok(answer)) => {
                let a: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
                if let Err(e) = keep_kubeconfig(env, a["kubeconfig"].as_str()) {
                    eprintln!("{e}");
                }
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
    let registered = Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        std::thread::sleep(pause);
        if let Err(e) = crate::node::report_version(env) {
            eprintln!("kubelet: {e}");
        }
        if let Err(e) = crate::node::status_posted(env, registered.elapsed()) {
            eprintln!("kubelet: {e}");
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}
