//! Leader migration: the `LeaderMigrationConfiguration` each controller manager needs, by its
//! Kubernetes version.
//!
//! Both managers must migrate the same controllers under the same Lease, or a controller runs
//! in both at once. Kubernetes 1.22 to 1.27 name them `route`, `service` and
//! `cloud-node-lifecycle`, and a manager started with `--enable-leader-migration` alone uses
//! exactly those. From 1.28 the built-in default says `route-controller`,
//! `service-controller` and `cloud-node-lifecycle-controller`, but the migrator matches names
//! without resolving aliases and the controllers are called `node-route-controller`,
//! `service-lb-controller` and `cloud-node-lifecycle-controller`: with the default, only the
//! node lifecycle controller migrates, and the service and route controllers of a 1.28+
//! cloud-controller-manager run beside the old kube-controller-manager's. So a manager of
//! 1.28 or later is given a file naming its controllers as it knows them; one of 1.22–1.27
//! keeps the default, which is right for it. 1.21 has no default at all.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The migration Lease (namespace `kube-system`), the same in every version's default.
pub const LEASE: &str = "cloud-provider-extraction-migration";
/// The namespace of the migration Lease and of the controller managers.
pub const NAMESPACE: &str = "kube-system";
/// Where the cloud-controller-manager reads its file (a ConfigMap mounted there).
pub const CONFIG_PATH: &str = "/etc/kubernetes/leader-migration/config.yaml";
/// The ConfigMap that holds the cloud-controller-manager's file.
pub const CONFIG_MAP: &str = "aws-cloud-controller-manager-leader-migration";

/// A Kubernetes `major.minor.patch`, read from `v1.26.15+rke2r1`, `v1.26.15-rancher1-1`,
/// `1.27`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim().trim_start_matches('v');
        let end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let mut parts = t[..end].split('.').filter(|p| !p.is_empty());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map(str::parse).transpose().ok()?.unwrap_or(0);
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    pub fn minor_of(major: u32, minor: u32) -> Version {
        Version {
            major,
            minor,
            patch: 0,
        }
    }

    pub fn with_patch(self, patch: u32) -> Version {
        Version { patch, ..self }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Which controller manager a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    KubeControllerManager,
    CloudControllerManager,
}

/// The names a manager of `version` gives the controllers that move: route, service and cloud
/// node lifecycle. `None` before 1.21 (no leader migration).
pub fn controller_names(version: Version) -> Option<[&'static str; 3]> {
    if version < Version::minor_of(1, 21) {
        None
    } else if version < Version::minor_of(1, 28) {
        Some(["route", "service", "cloud-node-lifecycle"])
    } else {
        Some([
            "node-route-controller",
            "service-lb-controller",
            "cloud-node-lifecycle-controller",
        ])
    }
}

/// Whether a manager of `version` started with `--enable-leader-migration` and no file
/// migrates the right controllers (1.22–1.27).
pub fn default_is_right(version: Version) -> bool {
    version >= Version::minor_of(1, 22) && version < Version::minor_of(1, 28)
}

/// The apiVersion a manager of `version` reads: `v1` from 1.24, `v1beta1` in 1.22–1.23,
/// `v1alpha1` in 1.21.
pub fn api_version(version: Version) -> &'static str {
    if version >= Version::minor_of(1, 24) {
        "controllermanager.config.k8s.io/v1"
    } else if version >= Version::minor_of(1, 22) {
        "controllermanager.config.k8s.io/v1beta1"
    } else {
        "controllermanager.config.k8s.io/v1alpha1"
    }
}

/// The configuration for a manager of `version`, as YAML (`None` before 1.21). Components are
/// `*`, so the kube-controller-manager's and the cloud-controller-manager's files are the same
/// when their versions name the controllers alike.
pub fn configuration(version: Version) -> Option<String> {
    let names = controller_names(version)?;
    let mut s = format!(
        "kind: LeaderMigrationConfiguration\napiVersion: {}\nleaderName: {LEASE}\nresourceLock: leases\ncontrollerLeaders:\n",
        api_version(version)
    );
    for n in names {
        s.push_str(&format!("  - name: {n}\n    component: \"*\"\n"));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_read_as_the_distributions_write_them() {
        assert_eq!(
            v("v1.26.15+rke2r1"),
            Version::minor_of(1, 26).with_patch(15)
        );
        assert_eq!(
            v("v1.26.15-rancher1-1"),
            Version::minor_of(1, 26).with_patch(15)
        );
        assert_eq!(v("1.27"), Version::minor_of(1, 27));
        assert_eq!(Version::parse("latest"), None);
        assert_eq!(Version::parse("v1"), None);
    }

    #[test]
    fn the_names_follow_the_managers_version() {
        assert_eq!(controller_names(v("v1.20.4")), None);
        assert_eq!(
            controller_names(v("v1.26.15")),
            Some(["route", "service", "cloud-node-lifecycle"])
        );
        assert_eq!(
            controller_names(v("v1.27.16")),
            Some(["route", "service", "cloud-node-lifecycle"])
        );
        assert_eq!(
            controller_names(v("v1.28.0")),
            Some([
                "node-route-controller",
                "service-lb-controller",
                "cloud-node-lifecycle-controller"
            ])
        );
        assert!(!default_is_right(v("v1.21.14")));
        assert!(default_is_right(v("v1.22.0")));
        assert!(default_is_right(v("v1.27.3")));
        assert!(!default_is_right(v("v1.28.0")));
    }

    #[test]
    fn a_configuration_for_a_new_manager_names_its_own_controllers() {
        let c = configuration(v("v1.30.2")).unwrap();
        assert_eq!(
            c,
            "kind: LeaderMigrationConfiguration\napiVersion: controllermanager.config.k8s.io/v1\nleaderName: cloud-provider-extraction-migration\nresourceLock: leases\ncontrollerLeaders:\n  - name: node-route-controller\n    component: \"*\"\n  - name: service-lb-controller\n    component: \"*\"\n  - name: cloud-node-lifecycle-controller\n    component: \"*\"\n"
        );
        let old = configuration(v("v1.22.1")).unwrap();
        assert!(old.contains("apiVersion: controllermanager.config.k8s.io/v1beta1\n"));
        assert!(old.contains("  - name: route\n"));
        // it is YAML a manager can read
        let parsed: serde_yaml::Value = serde_yaml::from_str(&c).unwrap();
        assert_eq!(
            parsed["controllerLeaders"][1]["name"],
            "service-lb-controller"
        );
    }
}
