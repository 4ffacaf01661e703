//! Join tokens as k0s makes them: base64 of a gzipped kubeconfig whose server is the
//! controller's API (6443 for workers, the controller join API 9443 for controllers) and whose
//! user carries a bootstrap token `id.secret`. The controller that made a token keeps it in its
//! data dir (k0s keeps it as a bootstrap-token Secret), so `k0s reset` forgets it.

use std::io::{Read as _, Write as _};

use base64::Engine as _;

use crate::env::{DOUBLE_DIR, Env};
use crate::util::{self, Error};

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `worker` or `controller`, from the kubeconfig's user.
    pub role: String,
    /// `https://host:port`.
    pub server: String,
    /// `id.secret`.
    pub bootstrap: String,
}

fn user_of(role: &str) -> &'static str {
    if role == "controller" {
        "controller-bootstrap"
    } else {
        "kubelet-bootstrap"
    }
}

impl Token {
    /// `host:port` of the server URL.
    pub fn endpoint(&self) -> &str {
        self.server
            .strip_prefix("https://")
            .unwrap_or(&self.server)
            .trim_end_matches('/')
    }

    pub fn encode(&self, ca_data: &str) -> Result<String, Error> {
        let kubeconfig = format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca_data}\n    server: {}\n  name: k0s\ncontexts:\n- context:\n    cluster: k0s\n    user: {user}\n  name: k0s\ncurrent-context: k0s\nkind: Config\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    token: {}\n",
            self.server,
            self.bootstrap,
            user = user_of(&self.role),
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(kubeconfig.as_bytes())
            .and_then(|()| gz.finish())
            .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
            .map_err(|e| Error::io("cannot compress the join token", e))
    }

    /// Decodes a token; the message says what is wrong with it, as k0s's would.
    pub fn decode(text: &str) -> Result<Token, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("failed to decode token: {e}"))?;
        let mut yaml = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut yaml)
            .map_err(|e| format!("failed to decompress token: {e}"))?;
        let v: serde_yaml::Value =
            serde_yaml::from_str(&yaml).map_err(|e| format!("failed to parse kubeconfig: {e}"))?;
        let first = |key: &str| v.get(key).and_then(|l| l.get(0)).cloned();
        let server = first("clusters")
            .and_then(|c| {
                c.get("cluster")?
                    .get("server")?
                    .as_str()
                    .map(str::to_string)
            })
            .ok_or("no server in the token's kubeconfig")?;
        let user = first("users").ok_or("no user in the token's kubeconfig")?;
        let role = match user.get("name").and_then(|n| n.as_str()) {
            Some("kubelet-bootstrap") => "worker",
            Some("controller-bootstrap") => "controller",
            other => return Err(format!("unknown token user {other:?}")),
        };
        let bootstrap = user
            .get("user")
            .and_then(|u| u.get("token"))
            .and_then(|t| t.as_str())
            .ok_or("no bootstrap token in the token's kubeconfig")?
            .to_string();
        Ok(Token {
            role: role.to_string(),
            server,
            bootstrap,
        })
    }
}

fn store(env: &Env) -> std::path::PathBuf {
    env.path(&format!("{DOUBLE_DIR}/tokens"))
}

/// Records a new bootstrap token of `role` that expires `expiry` seconds from now (0: never).
pub fn remember(env: &Env, role: &str, expiry: u64) -> Result<String, Error> {
    let id = format!("{}.{}", util::random_id(6)?, util::random_id(16)?);
    let until = if expiry == 0 {
        0
    } else {
        util::now_unix() + expiry
    };
    let path = store(env);
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&format!("{role} {id} {until}\n"));
    util::write(&path, text.as_bytes(), 0o600, "the token store")?;
    Ok(id)
}

/// Whether this controller made `token` and it is still valid; the reason when not.
pub fn accept(env: &Env, token: &Token) -> Result<(), String> {
    let text = std::fs::read_to_string(store(env)).unwrap_or_default();
    let now = util::now_unix();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(role), Some(id), Some(until)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        if id != token.bootstrap {
            continue;
        }
        if role != token.role {
            return Err(format!("token is for role {role}, not {}", token.role));
        }
        let until: u64 = until.parse().unwrap_or(0);
        if until != 0 && until < now {
            return Err("token has expired".to_string());
        }
        return Ok(());
    }
    Err("Unauthorized: invalid bootstrap token".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let t = Token {
            role: "controller".into(),
            server: "https://10.0.0.1:9443".into(),
            bootstrap: "abcdef.0123456789abcdef".into(),
        };
        let text = t.encode("Q0E=").unwrap();
        assert_eq!(Token::decode(&text).unwrap(), t);
        assert_eq!(t.endpoint(), "10.0.0.1:9443");
        assert!(
            Token::decode("k0s-worker-token-000001-h1")
                .unwrap_err()
                .contains("failed to decode token")
        );
        // Valid base64 of something that is not gzip.
        assert!(
            Token::decode("aGVsbG8=")
                .unwrap_err()
                .contains("decompress")
        );
    }
}
