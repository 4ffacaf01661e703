//! Reading `hosts.yaml` (the only module of this crate that touches YAML).
//!
//! The format is the one `mkectl upgrade --hosts-path` documents:
//!
//! ```yaml
//! hosts:
//!   - address: 10.0.0.1        # IP or DNS name (required)
//!     port: 22                 # default 22
//!     user: docker             # required
//!     keyPath: ~/.ssh/id_ed25519
//!     privateAddress: 172.16.0.1   # or privateInterface: eth1 (not both)
//! ```
//!
//! plus ferry's additions per host: `bastion: {address, port, user, keyPath}`, `sudo` (default
//! true) and `knownHostsPolicy` (`strict`, the default; `accept-new`; `off`). Unknown fields are
//! errors, so a typo such as `keypath` is not silently ignored. Every error names the entry
//! (`hosts[2]`, with its address when known) and the field.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ferry_core::HostSpec;
use ferry_core::hosts::{Bastion, KnownHostsPolicy};
use serde_yaml::Value;

/// What is wrong with a hosts file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsFileError {
    /// The file could not be read.
    #[error("{path}: {problem}")]
    Read { path: PathBuf, problem: String },
    /// The text is not YAML.
    #[error("not valid YAML: {0}")]
    Syntax(String),
    /// The document has no usable `hosts` list.
    #[error("{0}")]
    Shape(String),
    /// One field of one entry is invalid. `entry` is e.g. `hosts[2] (10.0.0.3)`.
    #[error("{entry}: {field}: {problem}")]
    Field {
        entry: String,
        field: String,
        problem: String,
    },
}

const HOST_FIELDS: [&str; 9] = [
    "address",
    "port",
    "user",
    "keyPath",
    "privateAddress",
    "privateInterface",
    "bastion",
    "sudo",
    "knownHostsPolicy",
];
const BASTION_FIELDS: [&str; 4] = ["address", "port", "user", "keyPath"];

/// Reads and validates a hosts file.
pub fn read_hosts_file(path: &Path) -> Result<Vec<HostSpec>, HostsFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| HostsFileError::Read {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    parse_hosts(&text)
}

/// Parses and validates the text of a hosts file.
pub fn parse_hosts(text: &str) -> Result<Vec<HostSpec>, HostsFileError> {
    let doc: Value =
        serde_yaml::from_str(text).map_err(|e| HostsFileError::Syntax(e.to_string()))?;
    let Value::Mapping(top) = doc else {
        return Err(HostsFileError::Shape(
            "the file must be a mapping with a `hosts` list".into(),
        ));
    };
    for (k, _) in &top {
        if k.as_str() != Some("hosts") {
            return Err(HostsFileError::Shape(format!(
                "unknown top-level field {}: only `hosts` is allowed",
                key_text(k)
            )));
        }
    }
    let hosts = match top.get("hosts") {
        Some(Value::Sequence(s)) => s,
        Some(Value::Null) | None => {
            return Err(HostsFileError::Shape("`hosts` is missing or empty".into()));
        }
        Some(_) => return Err(HostsFileError::Shape("`hosts` must be a list".into())),
    };
    if hosts.is_empty() {
        return Err(HostsFileError::Shape("`hosts` is empty".into()));
    }
    let mut specs = Vec::with_capacity(hosts.len());
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (i, v) in hosts.iter().enumerate() {
        let spec = parse_host(i, v)?;
        let key = format!("{}:{}", spec.address.to_ascii_lowercase(), spec.port);
        let entry = entry_name(i, Some(&spec.address));
        if let Some(first) = seen.insert(key, entry.clone()) {
            return Err(HostsFileError::Field {
                entry,
                field: "address".into(),
                problem: format!("duplicate of {first} (same address and port)"),
            });
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn entry_name(i: usize, address: Option<&str>) -> String {
    match address {
        Some(a) => format!("hosts[{i}] ({a})"),
        None => format!("hosts[{i}]"),
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => format!("`{s}`"),
        other => format!("{other:?}"),
    }
}

struct Entry<'a> {
    name: String,
    map: &'a serde_yaml::Mapping,
    /// `bastion.` for the fields of a bastion.
    prefix: &'static str,
}

impl Entry<'_> {
    fn err(&self, field: &str, problem: impl Into<String>) -> HostsFileError {
        HostsFileError::Field {
            entry: self.name.clone(),
            field: format!("{}{field}", self.prefix),
            problem: problem.into(),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        match self.map.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn string(&self, field: &str) -> Result<Option<String>, HostsFileError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // YAML reads `address: 10` or `user: 1000` as numbers; accept them as text.
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.err(field, "must be a string")),
        }
    }

    fn required(&self, field: &str) -> Result<String, HostsFileError> {
        match self.string(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.err(field, "must not be empty")),
            None => Err(self.err(field, "is required")),
        }
    }

    fn port(&self, field: &str) -> Result<u16, HostsFileError> {
        match self.get(field) {
            None => Ok(22),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
                _ => Err(self.err(field, format!("must be 1 to 65535, got {n}"))),
            },
            Some(Value::String(s)) => match s.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(self.err(field, format!("must be 1 to 65535, got {s:?}"))),
            },
            Some(_) => Err(self.err(field, "must be a number")),
        }
    }

    fn check_fields(&self, allowed: &[&str]) -> Result<(), HostsFileError> {
        for (k, _) in self.map {
            let known = k.as_str().is_some_and(|k| allowed.contains(&k));
            if !known {
                let k = key_text(k);
                return Err(self.err(
                    k.trim_matches('`'),
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

fn parse_host(i: usize, v: &Value) -> Result<HostSpec, HostsFileError> {
    let Value::Mapping(map) = v else {
        return Err(HostsFileError::Field {
            entry: entry_name(i, None),
            field: "-".into(),
            problem: "each host must be a mapping (address, port, user, keyPath, ...)".into(),
        });
    };
    let address = map.get("address").and_then(Value::as_str);
    let e = Entry {
        name: entry_name(i, address),
        map,
        prefix: "",
    };
    e.check_fields(&HOST_FIELDS)?;
    let address = e.required("address")?;
    check_address(&e, "address", &address)?;
    let port = e.port("port")?;
    let user = e.required("user")?;
    check_user(&e, "user", &user)?;
    let key_path = e.string("keyPath")?;
    if let Some(k) = &key_path {
        check_path(&e, "keyPath", k)?;
    }
    let private_address = e.string("privateAddress")?;
    let private_interface = e.string("privateInterface")?;
    if private_address.is_some() && private_interface.is_some() {
        return Err(e.err(
            "privateAddress",
            "privateAddress and privateInterface are mutually exclusive",
        ));
    }
    if let Some(a) = &private_address {
        if a.parse::<IpAddr>().is_err() {
            return Err(e.err("privateAddress", format!("{a:?} is not an IP address")));
        }
    }
    if let Some(n) = &private_interface {
        let ok = !n.is_empty()
            && n.len() <= 15
            && n.chars()
                .all(|c| !c.is_whitespace() && c != '/' && c != ':' && c != '\0');
        if !ok {
            return Err(e.err(
                "privateInterface",
                format!("{n:?} is not an interface name (1 to 15 characters, no /, : or spaces)"),
            ));
        }
    }
    let sudo = match e.get("sudo") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(e.err("sudo", "must be true or false")),
    };
    let known_hosts_policy = match e.string("knownHostsPolicy")?.as_deref() {
        None | Some("strict") => KnownHostsPolicy::Strict,
        Some("accept-new") => KnownHostsPolicy::AcceptNew,
        Some("off") => KnownHostsPolicy::Off,
        Some(other) => {
            return Err(e.err(
                "knownHostsPolicy",
                format!("{other:?} is not one of strict, accept-new, off"),
            ));
        }
    };
    let bastion = match e.get("bastion") {
        None => None,
        Some(Value::Mapping(m)) => Some(parse_bastion(&e.name, m)?),
        Some(_) => {
            return Err(e.err(
                "bastion",
                "must be a mapping (address, port, user, keyPath)",
            ));
        }
    };
    Ok(HostSpec {
        address,
        port,
        user,
        key_path,
        private_address,
        private_interface,
        bastion,
        sudo,
        known_hosts_policy,
    })
}

fn parse_bastion(host: &str, map: &serde_yaml::Mapping) -> Result<Bastion, HostsFileError> {
    let e = Entry {
        name: host.to_string(),
        map,
        prefix: "bastion.",
    };
    e.check_fields(&BASTION_FIELDS)?;
    let address = e.required("address")?;
    check_address(&e, "address", &address)?;
    let port = e.port("port")?;
    let user = e.required("user")?;
    check_user(&e, "user", &user)?;
    let key_path = e.string("keyPath")?;
    if let Some(k) = &key_path {
        check_path(&e, "keyPath", k)?;
    }
    Ok(Bastion {
        address,
        port,
        user,
        key_path,
    })
}

/// An address goes to `ssh` as the destination: it must not look like an option, and must be a
/// host name or an IP address.
fn check_address(e: &Entry<'_>, field: &str, a: &str) -> Result<(), HostsFileError> {
    if a.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let a_host = a.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
    if let Some(inner) = a_host {
        if inner.parse::<IpAddr>().is_ok() {
            return Ok(());
        }
    }
    let ok = !a.starts_with('-')
        && !a.starts_with('.')
        && a.len() <= 253
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(e.err(
            field,
            format!(
                "{a:?} is not a host name or IP address (no user@ or :port here; use user and port)"
            ),
        ))
    }
}

fn check_user(e: &Entry<'_>, field: &str, u: &str) -> Result<(), HostsFileError> {
    let ok = !u.starts_with('-')
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c));
    if ok {
        Ok(())
    } else {
        Err(e.err(field, format!("{u:?} is not a user name")))
    }
}

fn check_path(e: &Entry<'_>, field: &str, p: &str) -> Result<(), HostsFileError> {
    if p.trim().is_empty() {
        return Err(e.err(field, "must not be empty"));
    }
    if p.contains('\0') || p.contains('\n') {
        return Err(e.err(field, "contains a NUL or newline"));
    }
    Ok(())
}

/// Expands a leading `~/` with `$HOME`, as mkectl and ssh do for `keyPath`.
pub fn expand_home(p: &str) -> PathBuf {
    if p == "~" {
        if let Some(h) = std::env::var_os("HOME") {
            return PathBuf::from(h);
        }
    }
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(h) = std::env::var_os("HOME") {
            return PathBuf::from(h).join(rest);
        }
    }
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_hosts(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_mkectl_sample() {
        let hosts = parse_hosts(
            "hosts:\n  - address: 35.167.183.127\n    port: 22\n    user: docker\n    keyPath: ~/.ssh/cluster.pem\n  - address: node2.example.com\n    user: docker\n",
        )
        .unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].address, "35.167.183.127");
        assert_eq!(hosts[0].key_path.as_deref(), Some("~/.ssh/cluster.pem"));
        assert_eq!(hosts[1].port, 22);
        assert!(hosts[1].sudo);
        assert_eq!(hosts[1].known_hosts_policy, KnownHostsPolicy::Strict);
    }

    #[test]
    fn reads_ferry_additions() {
        let hosts = parse_hosts(
            "hosts:\n- address: 10.0.0.5\n  port: \"2222\"\n  user: root\n  privateInterface: ens5\n  sudo: false\n  knownHostsPolicy: accept-new\n  bastion:\n    address: jump.example.com\n    user: ops\n    keyPath: /k\n",
        )
        .unwrap();
        let h = &hosts[0];
        assert_eq!(h.port, 2222);
        assert_eq!(h.private_interface.as_deref(), Some("ens5"));
        assert!(!h.sudo);
        assert_eq!(h.known_hosts_policy, KnownHostsPolicy::AcceptNew);
        let b = h.bastion.as_ref().unwrap();
        assert_eq!(
            (b.address.as_str(), b.port, b.user.as_str()),
            ("jump.example.com", 22, "ops")
        );
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let base = "hosts:\n- address: 10.0.0.1\n  user: a\n";
        assert_eq!(
            err(&format!(
                "{base}- address: 10.0.0.2\n  user: b\n  port: 70000\n"
            )),
            "hosts[1] (10.0.0.2): port: must be 1 to 65535, got 70000"
        );
        assert_eq!(
            err(&format!("{base}- address: 10.0.0.2\n")),
            "hosts[1] (10.0.0.2): user: is required"
        );
        assert_eq!(
            err(&format!("{base}- user: b\n")),
            "hosts[1]: address: is required"
        );
        assert_eq!(
            err(&format!(
                "{base}- address: 10.0.0.2\n  user: b\n  keypath: /k\n"
            )),
            "hosts[1] (10.0.0.2): keypath: unknown field (expected one of: address, port, user, keyPath, privateAddress, privateInterface, bastion, sudo, knownHostsPolicy)"
        );
        assert_eq!(
            err(&format!(
                "{base}- address: 10.0.0.2\n  user: b\n  privateAddress: 10.1.1.1\n  privateInterface: eth1\n"
            )),
            "hosts[1] (10.0.0.2): privateAddress: privateAddress and privateInterface are mutually exclusive"
        );
        assert_eq!(
            err(&format!(
                "{base}- address: 10.0.0.2\n  user: b\n  privateAddress: eth1\n"
            )),
            "hosts[1] (10.0.0.2): privateAddress: \"eth1\" is not an IP address"
        );
        assert_eq!(
            err(&format!(
                "{base}- address: 10.0.0.2\n  user: b\n  knownHostsPolicy: yolo\n"
            )),
            "hosts[1] (10.0.0.2): knownHostsPolicy: \"yolo\" is not one of strict, accept-new, off"
        );
        assert_eq!(
            err(&format!(
                "{base}- address: 10.0.0.2\n  user: b\n  sudo: maybe\n"
            )),
            "hosts[1] (10.0.0.2): sudo: must be true or false"
        );
        assert_eq!(
            err(&format!(
                "{base}- address: 10.0.0.2\n  user: b\n  bastion:\n    address: j\n"
            )),
            "hosts[1] (10.0.0.2): bastion.user: is required"
        );
        assert_eq!(
            err(&format!("{base}- address: 10.0.0.1\n  user: b\n")),
            "hosts[1] (10.0.0.1): address: duplicate of hosts[0] (10.0.0.1) (same address and port)"
        );
    }

    #[test]
    fn option_injection_through_addresses_and_users_is_refused() {
        assert_eq!(
            err("hosts:\n- address: -oProxyCommand=touch /tmp/x\n  user: a\n"),
            "hosts[0] (-oProxyCommand=touch /tmp/x): address: \"-oProxyCommand=touch /tmp/x\" is not a host name or IP address (no user@ or :port here; use user and port)"
        );
        assert_eq!(
            err("hosts:\n- address: root@h1\n  user: a\n"),
            "hosts[0] (root@h1): address: \"root@h1\" is not a host name or IP address (no user@ or :port here; use user and port)"
        );
        assert_eq!(
            err("hosts:\n- address: h1\n  user: -lroot\n"),
            "hosts[0] (h1): user: \"-lroot\" is not a user name"
        );
    }

    #[test]
    fn the_document_shape_is_checked() {
        assert_eq!(err("hosts: []\n"), "`hosts` is empty");
        assert_eq!(err("hosts:\n"), "`hosts` is missing or empty");
        assert_eq!(
            err("- address: x\n"),
            "the file must be a mapping with a `hosts` list"
        );
        assert_eq!(
            err("hosts:\n- address: h\n  user: u\nspec: {}\n"),
            "unknown top-level field `spec`: only `hosts` is allowed"
        );
        assert_eq!(
            err("hosts:\n- just a string\n"),
            "hosts[0]: -: each host must be a mapping (address, port, user, keyPath, ...)"
        );
        assert!(err("hosts: [\n").starts_with("not valid YAML: "));
    }

    #[test]
    fn ipv6_addresses_are_accepted() {
        let h = parse_hosts("hosts:\n- address: \"fd00::1\"\n  user: u\n").unwrap();
        assert_eq!(h[0].address, "fd00::1");
    }

    #[test]
    fn home_is_expanded() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_home("~/.ssh/k"), PathBuf::from(home).join(".ssh/k"));
        assert_eq!(expand_home("/abs/k"), PathBuf::from("/abs/k"));
        assert_eq!(expand_home("rel/~/k"), PathBuf::from("rel/~/k"));
    }
}
