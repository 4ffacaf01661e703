//! Host facts: what ferry needs to know about a host before touching it.
//!
//! Gathered with a handful of read-only argv commands (run concurrently on the one connection)
//! through any [`HostExec`], so the same code works over SSH and on the fake.
//!
//! | fact | from |
//! |---|---|
//! | OS | `cat /etc/os-release` (`ID`, `VERSION_ID`, `PRETTY_NAME`) |
//! | hostname | `uname -n`, lowercased as k0sctl does |
//! | architecture | `uname -m` |
//! | CPUs | `nproc` |
//! | memory | `MemTotal` of `/proc/meminfo` |
//! | private interface / address | as k0sctl finds them (see [`private_interface`]), unless hosts.yaml sets one |
//! | free disk | `df -P -k` on `/` and on the data dir (its nearest existing parent when it does not exist yet) |
//! | sudo | `sudo -n true` for a user other than root |
//! | listening TCP ports | `ss -Htln` |
//! | service manager | as k0s detects it (see [`InitSystem`]) |
//!
//! This is the one gatherer every flow and `ferry hosts check` use; flows add their own facts
//! (an MKE 3 node's swarm state) next to it. How long a host took to answer is kept as
//! [`HostFacts::took`]: the engine's window starts the slowest hosts first by it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::engine::join::join_all;
use crate::exec::{Cmd, ExecError, HostExec, Output};
use crate::hosts::HostSpec;

/// k0s's default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/k0s";

/// Facts about one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFacts {
    /// The host's name in messages (`address` or `address:port`).
    pub host: String,
    pub hostname: String,
    pub os: OsInfo,
    /// `uname -m`, e.g. `x86_64`.
    pub arch: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub private_interface: Option<String>,
    pub private_address: Option<String>,
    pub root_disk: DiskFree,
    pub data_dir_disk: DiskFree,
    /// Root works (`sudo -n` succeeds, or the user is root).
    pub sudo: bool,
    /// TCP ports something listens on.
    pub listening: BTreeSet<u16>,
    /// The service manager k0s would install its service into.
    pub init_system: InitSystem,
    /// Facts that could not be found, with why.
    pub notes: Vec<String>,
    /// How long gathering took: an estimate of how slow the host is.
    #[serde(skip)]
    pub took: Duration,
}

/// A service manager, detected as `k0s install` detects it (through the kardianos/service
/// library): systemd when `/run/systemd/system` exists, else OpenRC when `openrc-init` is
/// installed, else SysV init scripts, its fallback. (Upstart, rcS and procd, which kardianos also
/// knows, are not supported by k0s and not by ferry.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitSystem {
    /// Units in `/etc/systemd/system`, `systemctl`.
    Systemd,
    /// Scripts in `/etc/init.d`, `rc-service`.
    Openrc,
    /// Scripts in `/etc/init.d`, run directly.
    Sysv,
}

impl InitSystem {
    /// Where `k0s install` puts the service of `unit` (`k0scontroller`, `k0sworker`).
    pub fn unit_path(self, unit: &str) -> String {
        match self {
            InitSystem::Systemd => format!("/etc/systemd/system/{unit}.service"),
            InitSystem::Openrc | InitSystem::Sysv => format!("/etc/init.d/{unit}"),
        }
    }

    /// The command that restarts `service`.
    pub fn restart(self, service: &str) -> Cmd {
        match self {
            InitSystem::Systemd => Cmd::new("systemctl").args(["restart", service]),
            InitSystem::Openrc => Cmd::new("rc-service").args([service, "restart"]),
            InitSystem::Sysv => Cmd::new(format!("/etc/init.d/{service}")).arg("restart"),
        }
        .sudo()
    }

    /// The command that makes the service manager re-read its units, if it has one.
    pub fn reload(self) -> Option<Cmd> {
        match self {
            InitSystem::Systemd => Some(Cmd::new("systemctl").arg("daemon-reload").sudo()),
            InitSystem::Openrc | InitSystem::Sysv => None,
        }
    }
}

/// Detects the service manager with read-only tests, in k0s's order.
pub async fn init_system(e: &dyn HostExec) -> Result<InitSystem, ExecError> {
    for (path, sys) in [
        ("/run/systemd/system", InitSystem::Systemd),
        ("/sbin/openrc-init", InitSystem::Openrc),
        ("/usr/sbin/openrc-init", InitSystem::Openrc),
    ] {
        if e.run(&Cmd::new("test").args(["-e", path])).await?.success() {
            return Ok(sys);
        }
    }
    Ok(InitSystem::Sysv)
}

/// The k0s release name of an architecture (`uname -m`): `amd64`, `arm64` or `arm`, mapped as
/// k0sctl maps them; `None` for one k0s publishes no binary for.
pub fn k0s_arch(uname_m: &str) -> Option<&'static str> {
    match uname_m.trim() {
        "x86_64" | "amd64" => Some("amd64"),
        "aarch64" | "arm64" => Some("arm64"),
        "armv8l" | "armv7l" | "armv6l" | "armv5tel" | "aarch32" | "arm32" | "armhfp" | "arm"
        | "arm-32" => Some("arm"),
        _ => None,
    }
}

/// The facts of every host, gathered concurrently; in the order of `hosts`.
pub async fn gather_all(
    hosts: &[(HostSpec, Arc<dyn HostExec>)],
    data_dir: &str,
) -> Vec<Result<HostFacts, ExecError>> {
    let futs: Vec<_> = hosts
        .iter()
        .map(|(spec, exec)| gather(exec, spec, data_dir))
        .collect();
    join_all(futs).await
}

/// From `/etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OsInfo {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

/// Free space of the file system holding `path`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskFree {
    /// The directory asked about.
    pub path: String,
    /// The directory measured (the nearest existing one).
    pub measured: String,
    pub mount_point: String,
    pub available_bytes: u64,
    pub total_bytes: u64,
}

/// Gathers the facts of the host behind `exec`. Fails only on a transport error; a fact that
/// cannot be read is left empty with a note.
pub async fn gather(
    exec: &Arc<dyn HostExec>,
    spec: &HostSpec,
    data_dir: &str,
) -> Result<HostFacts, ExecError> {
    let started = tokio::time::Instant::now();
    let e = &**exec;
    let run = |c: Cmd| async move { e.run(&c).await };
    let (os, hostname, arch, cpus, mem, routes, addrs, ss, init, sudo) = tokio::join!(
        run(Cmd::new("cat").arg("/etc/os-release")),
        run(Cmd::new("uname").arg("-n")),
        run(Cmd::new("uname").arg("-m")),
        run(Cmd::new("nproc")),
        run(Cmd::new("cat").arg("/proc/meminfo")),
        run(Cmd::new("ip").args(["route", "list"])),
        run(Cmd::new("ip").args(["-o", "-4", "addr", "show", "scope", "global"])),
        run(Cmd::new("ss").arg("-Htln")),
        init_system(e),
        async {
            if spec.user == "root" {
                Ok(None)
            } else {
                e.run(&Cmd::new("true").sudo()).await.map(Some)
            }
        },
    );
    let mut notes = Vec::new();
    let mut text = |what: &str, r: Result<Output, ExecError>| -> Result<String, ExecError> {
        let out = r?;
        if out.success() {
            Ok(out.stdout_text())
        } else {
            notes.push(format!(
                "{what}: exit {:?}: {}",
                out.code,
                out.stderr_text().trim()
            ));
            Ok(String::new())
        }
    };
    let os = parse_os_release(&text("os-release", os)?);
    let hostname = text("hostname", hostname)?.trim().to_ascii_lowercase();
    let arch = text("arch", arch)?.trim().to_string();
    let cpus = text("cpus", cpus)?.trim().parse().unwrap_or(0);
    let memory_bytes = parse_meminfo_total(&text("memory", mem)?);
    let routes = text("routes (ip route)", routes)?;
    let addrs = parse_addresses(&text("addresses (ip addr)", addrs)?);
    let listening = parse_listening(&text("listening ports (ss)", ss)?);
    let init_system = init?;
    let sudo = match sudo {
        Ok(None) => true,
        Ok(Some(out)) => out.success(),
        Err(ExecError::Sudo { detail, .. }) => {
            notes.push(detail);
            false
        }
        Err(e) => return Err(e),
    };
    let (private_interface, private_address) =
        match (&spec.private_address, &spec.private_interface) {
            (Some(a), _) => {
                let iface = addrs.iter().find(|(_, x)| x == a).map(|(i, _)| i.clone());
                if iface.is_none() {
                    notes.push(format!("privateAddress {a} is not an address of this host"));
                }
                (iface, Some(a.clone()))
            }
            (None, Some(i)) => {
                let a = pick_address(&addrs, i, &spec.address);
                if a.is_none() {
                    notes.push(format!("privateInterface {i} has no IPv4 address"));
                }
                (Some(i.clone()), a)
            }
            (None, None) => match private_interface(&routes) {
                Some(i) => {
                    let a = pick_address(&addrs, &i, &spec.address);
                    (Some(i), a)
                }
                None => {
                    notes.push("no private interface found (no private or default route)".into());
                    (None, None)
                }
            },
        };
    let root_disk = disk_free(e, "/", &mut notes).await?;
    let data_dir_disk = disk_free(e, data_dir, &mut notes).await?;
    Ok(HostFacts {
        host: e.host().to_string(),
        hostname,
        os,
        arch,
        cpus,
        memory_bytes,
        private_interface,
        private_address,
        root_disk,
        data_dir_disk,
        sudo,
        listening,
        init_system,
        notes,
        took: started.elapsed(),
    })
}

/// Hostnames and private addresses must be unique (k0s names nodes by hostname, and nodes talk
/// over the private addresses): one `(host, problem)` per host that shares one, naming the
/// others. Hosts whose facts are unknown (`None`) are skipped.
pub fn duplicates(facts: &[Option<&HostFacts>]) -> Vec<(String, String)> {
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut by_addr: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in facts.iter().flatten() {
        if !f.hostname.is_empty() {
            by_name.entry(&f.hostname).or_default().push(&f.host);
        }
        if let Some(a) = &f.private_address {
            by_addr.entry(a).or_default().push(&f.host);
        }
    }
    let mut out = Vec::new();
    for (what, map) in [("hostname", &by_name), ("private address", &by_addr)] {
        for (value, hosts) in map.iter().filter(|(_, v)| v.len() > 1) {
            for h in hosts {
                let others: Vec<&str> = hosts.iter().copied().filter(|o| o != h).collect();
                out.push((
                    h.to_string(),
                    format!(
                        "{h}: duplicate {what} {value} (also on {})",
                        others.join(", ")
                    ),
                ));
            }
        }
    }
    // Per host in the order of `facts`, hostnames before addresses.
    let order: BTreeMap<&str, usize> = facts
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.map(|f| (f.host.as_str(), i)))
        .collect();
    out.sort_by_key(|(h, _)| order.get(h.as_str()).copied().unwrap_or(usize::MAX));
    out
}

/// The local ports of `ss -Htln` lines (`LISTEN 0 4096 0.0.0.0:6443 0.0.0.0:*`).
pub fn parse_listening(text: &str) -> BTreeSet<u16> {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .collect()
}

async fn disk_free(
    e: &dyn HostExec,
    path: &str,
    notes: &mut Vec<String>,
) -> Result<DiskFree, ExecError> {
    let mut dir = path.trim_end_matches('/').to_string();
    if dir.is_empty() {
        dir = "/".into();
    }
    loop {
        let out = e
            .run(&Cmd::new("df").args(["-P", "-k", "--", &dir]))
            .await?;
        if out.success() {
            if let Some(mut d) = parse_df(&out.stdout_text()) {
                d.path = path.to_string();
                d.measured = dir;
                return Ok(d);
            }
        }
        if dir == "/" {
            notes.push(format!(
                "df {path}: exit {:?}: {}",
                out.code,
                out.stderr_text().trim()
            ));
            return Ok(DiskFree {
                path: path.to_string(),
                ..DiskFree::default()
            });
        }
        dir = match dir.rsplit_once('/') {
            Some(("", _)) | None => "/".into(),
            Some((parent, _)) => parent.to_string(),
        };
    }
}

/// `KEY=value` lines, values optionally quoted.
pub fn parse_os_release(text: &str) -> OsInfo {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            m.insert(k.trim().to_string(), v.to_string());
        }
    }
    let get = |k: &str| m.get(k).cloned().unwrap_or_default();
    OsInfo {
        id: get("ID"),
        version_id: get("VERSION_ID"),
        pretty_name: get("PRETTY_NAME"),
    }
}

/// `MemTotal:  24565432 kB` in bytes.
pub fn parse_meminfo_total(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The second line of `df -P -k`: size, available and mount point.
pub fn parse_df(text: &str) -> Option<DiskFree> {
    let line = text.lines().nth(1)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 6 {
        return None;
    }
    Some(DiskFree {
        path: String::new(),
        measured: String::new(),
        total_bytes: f[1].parse::<u64>().ok()? * 1024,
        available_bytes: f[3].parse::<u64>().ok()? * 1024,
        mount_point: f[5..].join(" "),
    })
}

/// `(interface, address)` pairs from `ip -o -4 addr show scope global`.
pub fn parse_addresses(text: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // 2: eth0    inet 10.123.1.1/16 brd 10.123.255.255 scope global eth0
        if let Some(pos) = f.iter().position(|x| *x == "inet") {
            if let (Some(iface), Some(addr)) = (f.get(1), f.get(pos + 1)) {
                let iface = iface.trim_end_matches(':');
                let iface = iface.split('@').next().unwrap_or(iface);
                let addr = addr.split('/').next().unwrap_or(addr);
                v.push((iface.to_string(), addr.to_string()));
            }
        }
    }
    v
}

/// The private interface as k0sctl finds it: the device of the first global route into 10/8,
/// 172.16/12 or 192.168/16, else the default route's device. ferry adds a last resort for hosts
/// with neither (such as the testbed's, which have only a link route): the device of the first
/// route that is not on `lo`.
pub fn private_interface(routes: &str) -> Option<String> {
    let dev = |line: &str| -> Option<String> {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.iter()
            .position(|x| *x == "dev")
            .and_then(|i| f.get(i + 1))
            .map(|s| s.to_string())
    };
    let global = |l: &&str| !l.contains("scope link") && !l.contains("scope host");
    let private = |l: &&str| {
        let first = l.split_whitespace().next().unwrap_or("");
        first.starts_with("10.")
            || first.starts_with("192.168.")
            || first
                .strip_prefix("172.")
                .and_then(|r| r.split('.').next())
                .and_then(|o| o.parse::<u8>().ok())
                .is_some_and(|o| (16..=31).contains(&o))
    };
    routes
        .lines()
        .filter(global)
        .find(private)
        .and_then(dev)
        .or_else(|| {
            routes
                .lines()
                .find(|l| l.starts_with("default"))
                .and_then(dev)
        })
        .or_else(|| routes.lines().filter_map(dev).find(|d| d != "lo"))
}

/// The private address on `iface` as k0sctl picks it: the first IPv4 address that is not the
/// address ferry connects to; ferry falls back to that address when it is the only one.
pub fn pick_address(addrs: &[(String, String)], iface: &str, public: &str) -> Option<String> {
    let on: Vec<&String> = addrs
        .iter()
        .filter(|(i, _)| i == iface)
        .map(|(_, a)| a)
        .collect();
    on.iter()
        .find(|a| a.as_str() != public)
        .or_else(|| on.first())
        .map(|a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let os = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        );
        assert_eq!(
            os,
            OsInfo {
                id: "debian".into(),
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into()
            }
        );
    }

    #[test]
    fn listening_ports_and_architectures() {
        let ss = "LISTEN 0 4096 0.0.0.0:6443 0.0.0.0:*\nLISTEN 0 128 [::]:22 [::]:*\nLISTEN 0 5 127.0.0.1:12379 0.0.0.0:*\n";
        assert_eq!(parse_listening(ss), BTreeSet::from([22, 6443, 12379]));
        assert_eq!(k0s_arch("x86_64"), Some("amd64"));
        assert_eq!(k0s_arch("aarch64\n"), Some("arm64"));
        assert_eq!(k0s_arch("armv7l"), Some("arm"));
        assert_eq!(k0s_arch("s390x"), None);
        assert_eq!(
            InitSystem::Openrc.unit_path("k0sworker"),
            "/etc/init.d/k0sworker"
        );
        assert_eq!(
            InitSystem::Systemd.restart("docker").to_string(),
            "sudo -n systemctl restart docker"
        );
    }

    #[test]
    fn meminfo_and_df() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       24565432 kB\nMemFree: 1 kB\n"),
            24565432 * 1024
        );
        let d = parse_df("Filesystem     1024-blocks    Used Available Capacity Mounted on\noverlay          102400  2048     100352       2% /var/lib\n").unwrap();
        assert_eq!(
            (d.total_bytes, d.available_bytes, d.mount_point.as_str()),
            (102400 * 1024, 100352 * 1024, "/var/lib")
        );
    }

    #[test]
    fn private_interface_like_k0sctl() {
        let aws = "default via 172.31.0.1 dev ens5 proto dhcp src 172.31.5.9 metric 100\n172.31.0.0/20 dev ens5 proto kernel scope link src 172.31.5.9\n10.0.0.0/8 via 10.1.0.1 dev ens6\n";
        assert_eq!(private_interface(aws).as_deref(), Some("ens6"));
        let default_only = "default via 203.0.113.1 dev eth0\n203.0.113.0/24 dev eth0 scope link\n";
        assert_eq!(private_interface(default_only).as_deref(), Some("eth0"));
        let testbed = "10.123.0.0/16 dev eth0 proto kernel scope link src 10.123.1.3\n";
        assert_eq!(private_interface(testbed).as_deref(), Some("eth0"));
        assert_eq!(private_interface(""), None);
    }

    #[test]
    fn private_address_skips_the_public_one() {
        let a = parse_addresses(
            "2: eth0    inet 10.123.1.3/16 brd 10.123.255.255 scope global eth0\\       valid_lft forever\n3: eth1@if7    inet 172.16.0.3/24 scope global eth1\n4: eth1    inet 172.16.0.4/24 scope global secondary eth1\n",
        );
        assert_eq!(a[1], ("eth1".to_string(), "172.16.0.3".to_string()));
        assert_eq!(
            pick_address(&a, "eth0", "10.123.1.3").as_deref(),
            Some("10.123.1.3")
        );
        assert_eq!(
            pick_address(&a, "eth1", "172.16.0.3").as_deref(),
            Some("172.16.0.4")
        );
        assert_eq!(pick_address(&a, "eth9", "x"), None);
    }
}
