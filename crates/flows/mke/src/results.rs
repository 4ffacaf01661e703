//! The results folder of `ferry upgrade --output[=DIR]` (mkectl 4.1.1's `mke-upgrade/`): the MKE
//! 3 configuration as read, the MKE 4k configuration it converts to, the node, cluster and version
//! pre-checks, the compatibility checks and a run summary, each as text and as JSON.
//!
//! The folder is meant to be read and shared (attached to a support case), so it never holds a
//! secret: the values of secret settings (passwords, client secrets, bind passwords, tokens) are
//! written as `<redacted>` in both configurations. The configuration to apply is `--config-out`'s.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use ferry_core::checks::{CheckReport, Finding};

/// The folder's name inside the directory `--output` names.
pub const FOLDER: &str = "mke-upgrade";
/// What a redacted value reads.
pub const REDACTED: &str = "<redacted>";

/// The files, by name.
pub const MKE3_TOML: &str = "mke3.toml";
pub const MKE4_YAML: &str = "mke4.yaml";
pub const COMPATIBILITY: &str = "compatibility";
pub const SUMMARY: &str = "summary";
/// The Upgrade Summary of a completed run, as printed.
pub const UPGRADE_SUMMARY: &str = "upgrade-summary.txt";

/// The three groups of pre-checks, and the file each goes to.
pub const CHECK_GROUPS: [(&str, &str); 3] = [
    ("version", "version-checks"),
    ("cluster", "cluster-checks"),
    ("node", "node-checks"),
];

/// The results folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    dir: PathBuf,
}

/// Why the results folder cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the results folder {}", path.display())]
pub struct ResultsError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl Results {
    /// The folder `mke-upgrade` inside `parent`.
    pub fn in_dir(parent: &Path) -> Self {
        Self {
            dir: parent.join(FOLDER),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates the folder (private to the user: it names hosts and settings).
    pub fn create(&self) -> Result<(), ResultsError> {
        let err = |source| ResultsError {
            path: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(err)?;
        }
        Ok(())
    }

    /// Writes `name` atomically (a temporary file renamed into place), mode 0600.
    pub fn write(&self, name: &str, data: &[u8]) -> Result<(), ResultsError> {
        let path = self.dir.join(name);
        let err = |source| ResultsError {
            path: path.clone(),
            source,
        };
        let tmp = self.dir.join(format!(".{name}.tmp"));
        {
            use std::io::Write as _;
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                o.mode(0o600);
            }
            let mut f = o.open(&tmp).map_err(err)?;
            f.write_all(data).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &path).map_err(err)
    }

    /// `name.json`, pretty.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), ResultsError> {
        let mut text = serde_json::to_string_pretty(value).map_err(|e| ResultsError {
            path: self.dir.join(format!("{name}.json")),
            source: io::Error::other(e),
        })?;
        text.push('\n');
        self.write(&format!("{name}.json"), text.as_bytes())
    }

    /// The pre-checks, one text and one JSON file per group.
    pub fn write_checks(&self, checks: &CheckReport) -> Result<(), ResultsError> {
        for (group, file) in CHECK_GROUPS {
            let part = CheckReport {
                title: format!("Pre-upgrade checks: {group}"),
                findings: checks
                    .findings
                    .iter()
                    .filter(|f| check_group(f) == group)
                    .cloned()
                    .collect(),
            };
            self.write(&format!("{file}.txt"), part.render().as_bytes())?;
            self.write_json(
                file,
                &serde_json::json!({ "passed": part.passed(), "findings": part.findings }),
            )?;
        }
        Ok(())
    }
}

/// Which file a pre-check goes to: the MKE 3 version check is `version`, findings about the
/// cluster as a whole (and its configuration) are `cluster`, the rest (a host, a node) `node`.
pub fn check_group(f: &Finding) -> &'static str {
    if f.check.ends_with("version") {
        "version"
    } else if f.subject == "cluster" {
        "cluster"
    } else {
        "node"
    }
}

/// Whether a key's name says its value is secret: the support dump's rule.
pub use ferry_core::support::is_secret_key;

/// `toml` with the value of every secret-named key (at any depth) redacted; the text is
/// re-serialised, so comments of the source are not kept.
pub fn redact_toml(text: &str) -> Result<String, toml::de::Error> {
    fn walk(v: &mut toml::Value) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t.iter_mut() {
                    if is_secret_key(k) {
                        blank_toml(x);
                    } else {
                        walk(x);
                    }
                }
            }
            toml::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    fn blank_toml(v: &mut toml::Value) {
        match v {
            toml::Value::String(s) if !s.is_empty() => *s = REDACTED.into(),
            toml::Value::Table(t) => t.iter_mut().for_each(|(_, x)| blank_toml(x)),
            toml::Value::Array(a) => a.iter_mut().for_each(blank_toml),
            _ => {}
        }
    }
    let mut v: toml::Value = toml::from_str(text)?;
    walk(&mut v);
    Ok(toml::to_string(&v).unwrap_or_default())
}

/// A JSON value (the MKE 4k configuration) with every secret-named key's value redacted.
pub fn redact_json(v: &mut serde_json::Value) {
    fn blank(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if !s.is_empty() => *s = REDACTED.into(),
            serde_json::Value::Object(o) => o.values_mut().for_each(blank),
            serde_json::Value::Array(a) => a.iter_mut().for_each(blank),
            _ => {}
        }
    }
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if is_secret_key(k) {
                    blank(x);
                } else {
                    redact_json(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::checks::Status;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_nothing_else_is() {
        let text = "[auth.ldap]\nbind_password = \"hunter2\"\nserver_url = \"ldaps://x\"\n\
                    [[auth.ldap.servers]]\nreaderPassword = \"s3cret\"\nname = \"a\"\n\
                    [cluster_config]\ncalico_kdd = true\n";
        let out = redact_toml(text).unwrap();
        assert!(!out.contains("hunter2") && !out.contains("s3cret"), "{out}");
        assert!(
            out.contains("ldaps://x") && out.contains("calico_kdd = true"),
            "{out}"
        );
        assert_eq!(out.matches(REDACTED).count(), 2, "{out}");

        let mut v = serde_json::json!({"spec": {"authentication": {"oidc": {"clientSecret": "abc", "clientID": "id"},
            "ldap": {"bindPassword": "pw", "host": "h"}}, "empty": {"token": ""}}});
        redact_json(&mut v);
        let s = v.to_string();
        assert!(!s.contains("\"abc\"") && !s.contains("\"pw\""), "{s}");
        assert!(s.contains("\"id\"") && s.contains("\"h\""), "{s}");
        // an empty value says nothing and stays empty
        assert_eq!(v["spec"]["empty"]["token"], "");
    }

    #[test]
    fn checks_are_split_into_version_cluster_and_node_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = Results::in_dir(dir.path());
        r.create().unwrap();
        let mut c = CheckReport::new("Pre-upgrade checks");
        c.push("mke3-version", "cluster", Status::Ok, "3.8.2".into());
        c.push("mke3-config", "cluster", Status::Fail, "etcdv3".into());
        c.push("cpu-cores", "h1", Status::Warn, "2 cores".into());
        r.write_checks(&c).unwrap();
        let read = |f: &str| std::fs::read_to_string(r.path().join(f)).unwrap();
        assert!(read("version-checks.txt").contains("mke3-version (cluster): 3.8.2"));
        assert!(!read("version-checks.txt").contains("etcdv3"));
        assert!(read("cluster-checks.txt").contains("[ERROR]   mke3-config (cluster): etcdv3"));
        assert!(read("node-checks.txt").contains("[WARNING] cpu-cores (h1): 2 cores"));
        let j: serde_json::Value = serde_json::from_str(&read("cluster-checks.json")).unwrap();
        assert_eq!(j["passed"], false);
        assert_eq!(j["findings"][0]["check"], "mke3-config");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(r.path().join("node-checks.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
