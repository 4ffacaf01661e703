//! Errors and small helpers.

use std::io::Read as _;
use std::path::Path;

/// What a k0s command fails with; shown as `Error: {self}`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Msg(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn msg(m: impl Into<String>) -> Error {
        Error::Msg(m.into())
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Go's wording of an I/O error, for messages that imitate k0s's.
pub fn go_io(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory",
        std::io::ErrorKind::ConnectionRefused => "connection refused",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        std::io::ErrorKind::AddrInUse => "address already in use",
        _ => "input/output error",
    }
}

pub fn read(path: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {what}"), e))
}

pub fn write(path: &Path, content: &[u8], mode: u32, what: &str) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(dir) = path.parent() {
        mkdirs(dir)?;
    }
    // Written aside and renamed, so a reader never sees half a file.
    let tmp = path.with_extension("k0s-double-tmp");
    std::fs::write(&tmp, content).map_err(|e| Error::io(format!("cannot write {what}"), e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("cannot chmod {what}"), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("cannot write {what}"), e))
}

pub fn mkdirs(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

pub fn remove_tree(path: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }
}

pub fn remove_file(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }
}

/// `n` random lowercase letters and digits, from the kernel.
pub fn random_id(n: usize) -> Result<String, Error> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("cannot read /dev/urandom", e))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2006-01-02T15_04_05_000Z`-style UTC time, as k0s names its backups.
pub fn backup_stamp(unix: u64, millis: u32) -> String {
    let secs = i64::try_from(unix).unwrap_or(i64::MAX);
    match k8s_openapi::chrono::DateTime::from_timestamp(secs, millis.min(999) * 1_000_000) {
        Some(t) => t.format("%Y-%m-%dT%H_%M_%S_%3fZ").to_string(),
        // Past chrono's range (year 262143): not a time a backup is taken at.
        None => format!("{unix}_{millis:03}"),
    }
}

/// A Go duration (`1h`, `2h45m`, `300ms`, `0s`) in seconds, rounded down.
pub fn go_duration(s: &str) -> Result<u64, Error> {
    let bad = || Error::msg(format!("time: invalid duration {s:?}"));
    if s == "0" {
        return Ok(0);
    }
    let mut total_ms: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..u] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return Err(bad()),
        };
        total_ms += value * factor;
        rest = &rest[u..];
    }
    Ok((total_ms / 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_durations() {
        assert_eq!(backup_stamp(0, 0), "1970-01-01T00_00_00_000Z");
        assert_eq!(backup_stamp(1_619_466_717, 5), "2021-04-26T19_51_57_005Z");
        assert_eq!(go_duration("1h").unwrap(), 3600);
        assert_eq!(go_duration("2h45m").unwrap(), 9900);
        assert_eq!(go_duration("0s").unwrap(), 0);
        assert!(go_duration("soon").is_err());
        assert!(go_duration("").is_err());
    }
}
