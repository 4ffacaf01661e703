//! One test host of the k0s double: a root directory, a port offset of its own (so tests run
//! unprivileged and side by side on loopback) and a hostname.
#![allow(dead_code, reason = "each test binary uses part of it")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFIG: &str = "apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\nmetadata:\n  name: k0s\nspec:\n  api:\n    address: 127.0.0.1\n";

/// One host: a root directory, a port offset, a hostname.
pub struct Host {
    pub root: tempfile::TempDir,
    offset: u16,
    pub name: String,
}

impl Host {
    pub fn new(name: impl Into<String>, offset: u16) -> Host {
        let h = Host {
            root: tempfile::tempdir().unwrap(),
            offset,
            name: name.into(),
        };
        std::fs::create_dir_all(h.path("/etc/k0s")).unwrap();
        std::fs::write(h.path("/etc/k0s/k0s.yaml"), CONFIG).unwrap();
        h
    }

    /// A host whose k0s daemon registers its Node with the API server of `kubeconfig`.
    pub fn registering(name: impl Into<String>, offset: u16, kubeconfig: &Path) -> Host {
        let h = Host::new(name, offset);
        std::fs::create_dir_all(h.path("/etc/k0s-double")).unwrap();
        std::fs::copy(kubeconfig, h.path("/etc/k0s-double/kubeconfig")).unwrap();
        h
    }

    pub fn path(&self, logical: &str) -> PathBuf {
        self.root.path().join(logical.trim_start_matches('/'))
    }

    pub fn k0s(&self, args: &[&str]) -> Output {
        self.k0s_from(Path::new(env!("CARGO_BIN_EXE_k0s")), args)
    }

    /// Runs the k0s binary at `exe` (a stamped copy, say).
    pub fn k0s_from(&self, exe: &Path, args: &[&str]) -> Output {
        Command::new(exe)
            .args(args)
            .env("K0S_DOUBLE_ROOT", self.root.path())
            .env("K0S_DOUBLE_PORT_OFFSET", self.offset.to_string())
            .env("K0S_DOUBLE_HOSTNAME", &self.name)
            .env("K0S_DOUBLE_ADDRESS", "127.0.0.1")
            .output()
            .unwrap()
    }

    /// Runs k0s and asserts success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.k0s(args);
        assert!(
            out.status.success(),
            "k0s {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs k0s and asserts failure; its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.k0s(args);
        assert!(
            !out.status.success(),
            "k0s {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn port(&self, p: u16) -> u16 {
        p + self.offset
    }

    /// Every file under the root, for "nothing changed" checks (logs excepted).
    pub fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                if rel.starts_with("var/log") {
                    continue;
                }
                out.push(rel);
                if p.is_dir() {
                    walk(&p, base, out);
                }
            }
        }
        let mut v = Vec::new();
        walk(self.root.path(), self.root.path(), &mut v);
        v.sort();
        v
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // No daemon may outlive its test, and no Node its host.
        let _ = self.k0s(&["stop"]);
        let _ = self.k0s(&["reset"]);
    }
}

/// A copy of the double at `to`, stamped as k0s `version` (see the double's `env::STAMP`).
pub fn stamped(to: &Path, version: &str) {
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_k0s")).unwrap();
    bytes.extend_from_slice(format!("\n#k0s-double-version:{version}\n").as_bytes());
    std::fs::write(to, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}
