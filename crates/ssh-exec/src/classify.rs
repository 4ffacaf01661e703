//! Mapping what `ssh` and the remote side report onto core's [`ExecError`] kinds.
//!
//! `ssh` only tells us what went wrong in text (its log, which the openssh crate hands back on a
//! failed connect). The engine needs a kind: retry (refused, timed out, unreachable), stop and
//! tell the operator (authentication, host key), or treat the command's effect as unknown
//! (connection lost mid-command). Every detail names what failed in plain words.

use std::time::Duration;

use ferry_core::ExecError;

/// Classifies the log of a failed `ssh` master start.
pub fn connect_error(host: &str, log: &str, connect_timeout: Duration) -> ExecError {
    let lower = log.to_ascii_lowercase();
    let host = host.to_string();
    let has = |s: &str| lower.contains(s);
    if has("remote host identification has changed") || has("host key for") && has("has changed") {
        return ExecError::HostKey {
            host,
            detail: "the host key has CHANGED since it was recorded in known_hosts (possible man-in-the-middle, or a reinstalled host); remove the old key only if you know why it changed".into(),
        };
    }
    if has("host key verification failed") || has("host key is known for") {
        let detail = if has("no ") && has("host key is known") {
            "the host key is not in known_hosts and the policy is strict (add it, or set knownHostsPolicy: accept-new)"
        } else {
            "the host key does not match known_hosts"
        };
        return ExecError::HostKey {
            host,
            detail: detail.into(),
        };
    }
    if has("permission denied (") || has("too many authentication failures") {
        return ExecError::Auth {
            host,
            detail: format!("permission denied: {}", last_line(log)),
        };
    }
    if has("connection refused") {
        return ExecError::Unreachable {
            host,
            detail: "connection refused (no sshd listening, or the host is restarting)".into(),
        };
    }
    if has("connection timed out")
        || has("operation timed out")
        || has("timed out during banner exchange")
        || has("timeout, server")
    {
        return ExecError::Timeout {
            host,
            after: connect_timeout,
            what: format!("connecting: {}", last_line(log)),
        };
    }
    if has("no route to host")
        || has("network is unreachable")
        || has("could not resolve hostname")
        || has("name or service not known")
        || has("temporary failure in name resolution")
    {
        return ExecError::Unreachable {
            host,
            detail: last_line(log),
        };
    }
    if has("kex_exchange_identification")
        || has("connection closed by")
        || has("connection reset")
        || has("broken pipe")
    {
        // Includes sshd's MaxStartups throttling: worth another attempt.
        return ExecError::Unreachable {
            host,
            detail: format!("connection closed during the handshake: {}", last_line(log)),
        };
    }
    if has("too long for unix domain socket") {
        return ExecError::Io {
            host,
            detail: format!("control socket path too long: {}", last_line(log)),
        };
    }
    let line = last_line(log);
    ExecError::Io {
        host,
        detail: if line.is_empty() {
            "ssh failed without a message".into()
        } else {
            format!("ssh failed: {line}")
        },
    }
}

/// The last non-empty line of `text`, without ssh's `ssh: ` prefix and trailing `\r`.
pub fn last_line(text: &str) -> String {
    text.lines()
        .map(|l| l.trim())
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .map(|l| l.strip_prefix("ssh: ").unwrap_or(l).to_string())
        .unwrap_or_default()
}

/// When a command run through `sudo -n` failed because of sudo itself, why.
pub fn sudo_failure(code: Option<i32>, stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let first = text.lines().find(|l| !l.trim().is_empty())?.trim();
    let l = first.to_ascii_lowercase();
    match code {
        Some(1) => {
            let sudo_says =
                l.starts_with("sudo: ") || l.contains("sudoers") || l.starts_with("sorry, user");
            let reasons = [
                "password is required",
                "terminal is required",
                "not in the sudoers",
                "is not allowed to",
                "no tty present",
                "account validation failure",
                "unable to",
            ];
            (sudo_says && reasons.iter().any(|r| l.contains(r))).then(|| first.to_string())
        }
        Some(127) => (l.contains("sudo: not found") || l.contains("sudo: command not found"))
            .then(|| "sudo is not installed".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn host_key_changes_are_named() {
        let log = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n...\r\nHost key for 10.123.1.3 has changed and you have requested strict checking.\r\nHost key verification failed.\r\n";
        let e = connect_error("10.123.1.3", log, T);
        assert!(matches!(e, ExecError::HostKey { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("10.123.1.3: host key verification failed: the host key has CHANGED")
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn unknown_host_keys_are_named() {
        let log = "No ED25519 host key is known for 10.123.1.3 and you have requested strict checking.\r\nHost key verification failed.\r\n";
        let e = connect_error("10.123.1.3", log, T);
        assert!(e.to_string().contains("not in known_hosts"), "{e}");
    }

    #[test]
    fn kinds() {
        let cases = [
            ("ferry@10.123.1.1: Permission denied (publickey).", "auth"),
            (
                "ssh: connect to host 10.123.1.1 port 22: Connection refused",
                "unreachable",
            ),
            (
                "ssh: connect to host 10.123.1.1 port 22: Connection timed out",
                "timeout",
            ),
            ("Connection timed out during banner exchange", "timeout"),
            (
                "ssh: connect to host 10.123.1.1 port 22: No route to host",
                "unreachable",
            ),
            (
                "ssh: Could not resolve hostname nope: Name or service not known",
                "unreachable",
            ),
            (
                "kex_exchange_identification: Connection closed by remote host",
                "unreachable",
            ),
            ("something new", "io"),
        ];
        for (log, want) in cases {
            let e = connect_error("h", log, T);
            let got = match e {
                ExecError::Auth { .. } => "auth",
                ExecError::Unreachable { .. } => "unreachable",
                ExecError::Timeout { .. } => "timeout",
                ExecError::Io { .. } => "io",
                _ => "other",
            };
            assert_eq!(got, want, "{log}");
        }
    }

    #[test]
    fn sudo_failures() {
        assert_eq!(
            sudo_failure(Some(1), b"sudo: a password is required\n").as_deref(),
            Some("sudo: a password is required")
        );
        assert!(sudo_failure(Some(1), b"nosudo is not in the sudoers file.\n").is_some());
        assert!(sudo_failure(Some(127), b"bash: line 1: sudo: command not found\n").is_some());
        assert!(sudo_failure(Some(1), b"cat: x: No such file or directory\n").is_none());
        assert!(sudo_failure(Some(0), b"sudo: a password is required\n").is_none());
    }
}
