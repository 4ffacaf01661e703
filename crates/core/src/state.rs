//! The state directory of a run: the journal, the run lock, and the files a flow keeps (exports,
//! backups, the configuration it applied, the summary). Files are private to the user (0600) and
//! replaced atomically, so a crash never leaves half a file behind.

use std::path::{Path, PathBuf};

use crate::engine::StepError;

/// A file of the state directory that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {path}")]
pub struct StateError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl From<StateError> for StepError {
    fn from(e: StateError) -> Self {
        StepError::caused("state directory", e, false)
    }
}

/// A run's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directory (and its parents) when missing, private to the user.
    pub fn create(&self) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.path).map_err(|source| StateError {
            what: "create",
            path: self.path.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    /// The bytes of `file`.
    pub fn read(&self, file: &str) -> Result<Vec<u8>, StateError> {
        let path = self.path.join(file);
        std::fs::read(&path).map_err(|source| StateError {
            what: "read",
            path,
            source,
        })
    }

    /// Replaces `file` with `data` atomically (a temporary file, fsynced, then renamed), mode 0600.
    pub fn write(&self, file: &str, data: &[u8]) -> Result<(), StateError> {
        let path = self.path.join(file);
        let tmp = self.path.join(format!(".{file}.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            StateError {
                what: "write",
                path,
                source,
            }
        })
    }
}

/// The default state directory of a cluster: `$XDG_STATE_HOME/ferry/<name>` (or
/// `~/.local/state/ferry/<name>`), the name made filesystem-safe.
pub fn default_dir(
    name: &str,
    xdg_state_home: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    let base = match (xdg_state_home, home) {
        (Some(x), _) if x.is_absolute() => x.to_path_buf(),
        (_, Some(h)) => h.join(".local/state"),
        _ => return None,
    };
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(base.join("ferry").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_replaced_whole() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path().join("state"));
        s.create().unwrap();
        s.write("a.txt", b"one").unwrap();
        s.write("a.txt", b"two").unwrap();
        assert_eq!(s.read("a.txt").unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.path().join("a.txt"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = s.read("missing").unwrap_err();
        assert!(e.to_string().starts_with("cannot read "), "{e}");
        assert!(
            std::fs::read_dir(s.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp"))
        );
    }
}
