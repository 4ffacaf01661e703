//! Where the double's state lives, and the testing knobs from the environment.

use std::path::{Path, PathBuf};

use crate::util::Error;

/// The version of an unstamped build.
pub const DEFAULT_VERSION: &str = "v1.31.1+k0s.1";
/// A stamped copy of this binary ends with `\n#k0s-double-version:<version>\n`: then it is that
/// k0s release. Copies stamped with different versions are different files (different sha256),
/// as real releases are, and a running daemon keeps reporting the version of the file it was
/// started from after that file is replaced, as a real k0s process does.
pub const STAMP: &str = "#k0s-double-version:";

/// The version this binary is: its stamp, or [`DEFAULT_VERSION`].
pub fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| stamped_version().unwrap_or_else(|| DEFAULT_VERSION.to_string()))
}

fn stamped_version() -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open("/proc/self/exe").ok()?;
    let len = f.metadata().ok()?.len();
    let tail = len.min(256);
    f.seek(SeekFrom::Start(len - tail)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    parse_stamp(&buf)
}

/// The version in the stamp at the end of `tail`, if there is one.
pub fn parse_stamp(tail: &[u8]) -> Option<String> {
    let body = tail.strip_suffix(b"\n")?;
    let at = body
        .windows(STAMP.len())
        .rposition(|w| w == STAMP.as_bytes())?;
    let v = std::str::from_utf8(&body[at + STAMP.len()..]).ok()?;
    (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_string())
}

/// The kubelet version a k0s release reports for its Node: `v1.31.1+k0s.1` -> `v1.31.1+k0s`.
pub fn kubelet_version(k0s: &str) -> String {
    match k0s.split_once("+k0s") {
        Some((k8s, _)) => format!("{k8s}+k0s"),
        None => k0s.to_string(),
    }
}
pub const ROOT_ENV: &str = "K0S_DOUBLE_ROOT";
pub const OFFSET_ENV: &str = "K0S_DOUBLE_PORT_OFFSET";
pub const HOSTNAME_ENV: &str = "K0S_DOUBLE_HOSTNAME";
pub const ADDRESS_ENV: &str = "K0S_DOUBLE_ADDRESS";
/// The knobs a service records, so the daemon it starts sees the same world.
pub const KNOBS: [&str; 4] = [ROOT_ENV, OFFSET_ENV, HOSTNAME_ENV, ADDRESS_ENV];

pub const DATA_DIR: &str = "/var/lib/k0s";
pub const RUN_DIR: &str = "/run/k0s";
pub const STATUS_SOCK: &str = "/run/k0s/status.sock";
/// The double's own bookkeeping inside the data dir (gone with `k0s reset`, like k0s's state).
pub const DOUBLE_DIR: &str = "/var/lib/k0s/double";
pub const FAULT_FILE: &str = "/etc/k0s-double/fault";

/// The host as the double sees it.
#[derive(Debug, Clone)]
pub struct Env {
    root: PathBuf,
    /// `K0S_DOUBLE_ROOT` is set: a test world, run unprivileged.
    pub test_root: bool,
    pub offset: u16,
}

impl Env {
    pub fn from_process() -> Result<Env, Error> {
        let root = std::env::var_os(ROOT_ENV).filter(|r| !r.is_empty());
        let offset = match std::env::var(OFFSET_ENV) {
            Ok(v) if !v.is_empty() => v
                .parse::<u16>()
                .map_err(|e| Error::msg(format!("{OFFSET_ENV}={v:?}: {e}")))?,
            _ => 0,
        };
        Ok(Env {
            test_root: root.is_some(),
            root: root.map_or_else(|| PathBuf::from("/"), PathBuf::from),
            offset,
        })
    }

    /// The real path of a path on the host (`/etc/k0s` -> `$ROOT/etc/k0s`).
    pub fn path(&self, logical: &str) -> PathBuf {
        let p = Path::new(logical);
        if p.is_absolute() {
            self.root.join(logical.trim_start_matches('/'))
        } else {
            p.to_path_buf()
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A k0s port as this world numbers it.
    pub fn port(&self, p: u16) -> Result<u16, Error> {
        p.checked_add(self.offset)
            .ok_or_else(|| Error::msg(format!("{OFFSET_ENV}={} overflows port {p}", self.offset)))
    }

    /// k0s refuses to run its commands but `version` as anyone but root.
    pub fn require_root(&self) -> Result<(), Error> {
        if self.test_root {
            return Ok(());
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("0");
        if euid == "0" {
            Ok(())
        } else {
            Err(Error::msg("this command must be run as root!"))
        }
    }

    /// The node name k0s uses: the hostname, lowercased.
    pub fn hostname(&self) -> String {
        if let Ok(h) = std::env::var(HOSTNAME_ENV) {
            if !h.is_empty() {
                return h.to_lowercase();
            }
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_lowercase())
            .unwrap_or_else(|_| "localhost".to_string())
    }

    /// The address a join token names: `spec.api.externalAddress` when set (k0s's
    /// `APIAddress()`), else [`Env::address`].
    pub fn api_address(&self, config: Option<&serde_yaml::Value>) -> String {
        config
            .and_then(|c| c.get("spec"))
            .and_then(|s| s.get("api"))
            .and_then(|a| a.get("externalAddress"))
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
            .map_or_else(|| self.address(config), str::to_string)
    }

    /// The address this host's controller advertises: `spec.api.address` of its config, else
    /// `K0S_DOUBLE_ADDRESS`, else the source address of the default route, else loopback.
    pub fn address(&self, config: Option<&serde_yaml::Value>) -> String {
        if let Some(a) = config
            .and_then(|c| c.get("spec"))
            .and_then(|s| s.get("api"))
            .and_then(|a| a.get("address"))
            .and_then(|a| a.as_str())
        {
            return a.to_string();
        }
        if let Ok(a) = std::env::var(ADDRESS_ENV) {
            if !a.is_empty() {
                return a;
            }
        }
        // Connecting a UDP socket sends nothing; it only picks the route's source address.
        std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| {
                s.connect("192.0.2.1:9")?;
                s.local_addr()
            })
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| "127.0.0.1".to_string())
    }

    /// The fault file names `command` (`start`, or `token create` / `token`).
    pub fn check_fault(&self, args: &[String]) -> Result<(), Error> {
        let Ok(text) = std::fs::read_to_string(self.path(FAULT_FILE)) else {
            return Ok(());
        };
        let one = args.first().map(String::as_str).unwrap_or("");
        let two = args.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
        if text
            .lines()
            .map(str::trim)
            .any(|l| !l.is_empty() && (l == one || l == two))
        {
            return Err(Error::msg(format!(
                "injected failure of `k0s {two}` (listed in {FAULT_FILE})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_the_external_address_first() {
        let env = Env {
            root: PathBuf::from("/"),
            test_root: true,
            offset: 0,
        };
        let both: serde_yaml::Value = serde_yaml::from_str(
            "spec:\n  api:\n    externalAddress: lb.example\n    address: 10.0.0.1\n",
        )
        .unwrap();
        assert_eq!(env.api_address(Some(&both)), "lb.example");
        assert_eq!(env.address(Some(&both)), "10.0.0.1");
        let plain: serde_yaml::Value =
            serde_yaml::from_str("spec:\n  api:\n    address: 10.0.0.2\n").unwrap();
        assert_eq!(env.api_address(Some(&plain)), "10.0.0.2");
        assert_eq!(env.path("/etc/k0s"), PathBuf::from("/etc/k0s"));
    }

    #[test]
    fn stamps() {
        let mut bin = vec![0xffu8, 0xfe, 0x00, 0x7f];
        assert_eq!(parse_stamp(&bin), None);
        bin.extend_from_slice(b"\n#k0s-double-version:v1.32.6+k0s.0\n");
        assert_eq!(parse_stamp(&bin).as_deref(), Some("v1.32.6+k0s.0"));
        assert_eq!(parse_stamp(b"\n#k0s-double-version:\n"), None);
        assert_eq!(kubelet_version("v1.32.6+k0s.0"), "v1.32.6+k0s");
        assert_eq!(kubelet_version("v1.32.6"), "v1.32.6");
    }
}
