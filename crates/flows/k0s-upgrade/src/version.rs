//! k0s versions (`v1.31.1+k0s.1`: the Kubernetes version, then k0s's own build number) and the
//! rules of a rolling upgrade between them.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A parsed k0s version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The `N` of `+k0s.N` (0 when absent).
    pub build: u32,
}

/// A text that is not a k0s version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a k0s version (like v1.31.1+k0s.1)")]
pub struct VersionError {
    pub text: String,
}

impl std::str::FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError {
            text: text.to_string(),
        };
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let (k8s, build) = match t.split_once("+k0s") {
            Some((k, rest)) => {
                let b = match rest {
                    "" => 0,
                    r => r
                        .strip_prefix('.')
                        .ok_or_else(bad)?
                        .parse()
                        .map_err(|_| bad())?,
                };
                (k, b)
            }
            None => (t, 0),
        };
        let mut parts = k8s.split('.');
        let mut num = || -> Result<u32, VersionError> {
            parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())
        };
        let v = Version {
            major: num()?,
            minor: num()?,
            patch: num()?,
            build,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v{}.{}.{}+k0s.{}",
            self.major, self.minor, self.patch, self.build
        )
    }
}

impl Version {
    /// The kubelet version a node of this release reports (`v1.31.1+k0s`).
    pub fn kubelet(&self) -> String {
        format!("v{}.{}.{}+k0s", self.major, self.minor, self.patch)
    }

    /// The kubelet version of the release named `k0s` (itself when it does not parse).
    pub fn kubelet_of(k0s: &str) -> String {
        k0s.parse::<Version>()
            .map_or_else(|_| k0s.to_string(), |v| v.kubelet())
    }
}

/// What moving one node from `from` to `to` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Already at the target: skipped, which is what makes a re-run continue where it stopped.
    AtTarget,
    Upgrade,
    /// Refused, with why.
    Refused(String),
}

/// The rules: never down, at most one minor up (Kubernetes' skew policy for the control plane),
/// the same major.
pub fn step(from: Version, to: Version) -> Step {
    match from.cmp(&to) {
        Ordering::Equal => Step::AtTarget,
        Ordering::Greater => Step::Refused(format!(
            "{from} is newer than {to}: ferry does not downgrade"
        )),
        Ordering::Less if from.major != to.major => {
            Step::Refused(format!("{from} to {to} changes the major version"))
        }
        Ordering::Less if to.minor > from.minor + 1 => Step::Refused(format!(
            "{from} to {to} skips a minor version: upgrade to 1.{}.x first",
            from.minor + 1
        )),
        Ordering::Less => Step::Upgrade,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_show() {
        assert_eq!(
            v("v1.31.1+k0s.1"),
            Version {
                major: 1,
                minor: 31,
                patch: 1,
                build: 1
            }
        );
        assert_eq!(v("1.32.6+k0s.0").to_string(), "v1.32.6+k0s.0");
        assert_eq!(v("v1.30.2").build, 0);
        assert_eq!(v("v1.31.1+k0s").build, 0);
        assert_eq!(v("v1.31.1+k0s.1").kubelet(), "v1.31.1+k0s");
        for bad in [
            "",
            "v1",
            "v1.31",
            "v1.31.x",
            "v1.31.1.4",
            "v1.31.1+k0sX",
            "v1.31.1+k0s.x",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rules() {
        assert_eq!(step(v("v1.31.1+k0s.1"), v("v1.31.1+k0s.1")), Step::AtTarget);
        assert_eq!(step(v("v1.31.1+k0s.0"), v("v1.31.1+k0s.1")), Step::Upgrade);
        assert_eq!(step(v("v1.31.1+k0s.1"), v("v1.31.9+k0s.0")), Step::Upgrade);
        assert_eq!(step(v("v1.31.1+k0s.1"), v("v1.32.6+k0s.0")), Step::Upgrade);
        assert!(
            matches!(step(v("v1.31.1+k0s.1"), v("v1.33.0+k0s.0")), Step::Refused(w) if w.contains("skips a minor version: upgrade to 1.32.x first"))
        );
        assert!(
            matches!(step(v("v1.32.6+k0s.0"), v("v1.31.1+k0s.1")), Step::Refused(w) if w.contains("does not downgrade"))
        );
        assert!(matches!(
            step(v("v1.32.6+k0s.0"), v("v1.32.5+k0s.9")),
            Step::Refused(_)
        ));
        assert!(
            matches!(step(v("v1.31.1+k0s.1"), v("v2.0.0+k0s.0")), Step::Refused(w) if w.contains("major"))
        );
    }
}
