//! One run per cluster: an exclusive lock on `<state-dir>/lock` (an OS file lock, released by
//! the kernel when the process dies, so it never sticks), plus a lock directory on every host,
//! `/run/lock/ferry`, holding an `owner` file that the run refreshes and that goes stale when it
//! is not refreshed (k0sctl's scheme, `peers.md` 2.1). A second run is refused with a message
//! that names the owner.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use crate::exec::{Cmd, ExecError, FileSpec, HostExec};

/// The lock file's name in the state directory.
pub const LOCK_FILE: &str = "lock";
/// The lock directory on every host.
pub const HOST_LOCK_DIR: &str = "/run/lock/ferry";
/// The owner file inside [`HOST_LOCK_DIR`].
pub const HOST_LOCK_OWNER: &str = "/run/lock/ferry/owner";
/// How often a run refreshes its host locks.
pub const HOST_LOCK_REFRESH: Duration = Duration::from_secs(10);
/// A host lock not refreshed for this long is stale and may be taken over.
pub const HOST_LOCK_STALE: Duration = Duration::from_secs(60);

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// `user@machine`.
    pub owner: String,
    pub pid: u32,
    /// The run the lock is for.
    pub run_id: String,
    pub since_unix: u64,
}

impl LockOwner {
    /// The current process as owner of `run_id`.
    pub fn current(run_id: &str) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Self {
            owner: format!("{user}@{machine}"),
            pid: std::process::id(),
            run_id: run_id.to_string(),
            since_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// `alice@admin-box (pid 4242, run 20260101-...)`.
    pub fn describe(&self) -> String {
        format!("{} (pid {}, run {})", self.owner, self.pid, self.run_id)
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another ferry run holds the lock on {path}: {owner}")]
    Held { path: PathBuf, owner: String },
    #[error("host {host} is locked by another ferry run: {owner}")]
    HostHeld { host: String, owner: String },
    #[error("cannot lock {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock host {host}: {detail}")]
    Host { host: String, detail: String },
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// The exclusive lock of a state directory; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Who holds the lock of `dir` now, without taking it for longer than a look: `None` when
    /// nobody does (or there is no lock file).
    pub fn holder(dir: &Path) -> Result<Option<String>, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if FileExt::try_lock_exclusive(&file).map_err(io)? {
            let _ = FileExt::unlock(&file);
            return Ok(None);
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        Ok(Some(
            serde_json::from_str::<LockOwner>(&text)
                .map(|o| o.describe())
                .unwrap_or_else(|_| "an unknown process".into()),
        ))
    }

    /// Takes the lock of `dir` (created if missing) for `owner`, or says who holds it.
    pub fn acquire(dir: &Path, owner: &LockOwner) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let got = FileExt::try_lock_exclusive(&file).map_err(io)?;
        if !got {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let owner = serde_json::from_str::<LockOwner>(&text)
                .map(|o| o.describe())
                .unwrap_or_else(|_| "an unknown process".into());
            return Err(LockError::Held { path, owner });
        }
        let text = serde_json::to_string(owner)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(Self { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

fn fail(host: &dyn HostExec, what: &str, out: &crate::exec::Output) -> LockError {
    LockError::Host {
        host: host.host().to_string(),
        detail: format!(
            "{what} exited with {:?}: {}",
            out.code,
            out.stderr_text().trim()
        ),
    }
}

/// How long a lock directory without an owner file may be a lock being taken.
pub const OWNERLESS_GRACE: Duration = Duration::from_secs(5);

/// Takes the lock of one host for `owner`. A lock of the same run (a resume or rollback of the
/// run that took it) or a stale one is taken over; a live lock of another run is refused.
/// Returns `true` when an existing lock was taken over.
pub async fn acquire_host(
    host: &dyn HostExec,
    owner: &LockOwner,
    stale_after: Duration,
) -> Result<bool, LockError> {
    let body = serde_json::to_vec(owner).map_err(|e| LockError::Host {
        host: host.host().into(),
        detail: e.to_string(),
    })?;
    let spec = FileSpec {
        mode: 0o644,
        sudo: true,
        ..FileSpec::default()
    };
    let mk = host
        .run(&Cmd::new("mkdir").arg(HOST_LOCK_DIR).sudo())
        .await?;
    if mk.success() {
        host.put_file(HOST_LOCK_OWNER, &body, &spec).await?;
        return Ok(false);
    }
    // The directory exists: whose is it, and is it alive?
    let cat = host
        .run(&Cmd::new("cat").arg(HOST_LOCK_OWNER).sudo())
        .await?;
    let current: Option<LockOwner> = if cat.success() {
        serde_json::from_slice(&cat.stdout).ok()
    } else {
        None
    };
    let age = {
        let m = host
            .run(&Cmd::new("stat").args(["-c", "%Y", HOST_LOCK_DIR]).sudo())
            .await?;
        let o = host
            .run(&Cmd::new("stat").args(["-c", "%Y", HOST_LOCK_OWNER]).sudo())
            .await?;
        let now = host.run(&Cmd::new("date").arg("+%s")).await?;
        let parse = |o: &crate::exec::Output| o.stdout_text().trim().parse::<u64>().ok();
        let newest = match (parse(&m), parse(&o)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match (newest, parse(&now)) {
            (Some(t), Some(n)) => Some(Duration::from_secs(n.saturating_sub(t))),
            _ => None,
        }
    };
    let same_run = current.as_ref().is_some_and(|c| c.run_id == owner.run_id);
    // A directory without an owner file is a ferry that died between making it and writing the
    // owner (milliseconds apart), or a lock of an older ferry that let go in two commands: once
    // it is older than that moment could be, nobody holds it.
    let ownerless = current.is_none() && !cat.success();
    let stale = age.is_some_and(|a| a > stale_after || (ownerless && a > OWNERLESS_GRACE));
    if !same_run && !stale {
        let who = current
            .map(|c| c.describe())
            .unwrap_or_else(|| "an unknown run (no readable owner file)".into());
        return Err(LockError::HostHeld {
            host: host.host().into(),
            owner: who,
        });
    }
    host.put_file(HOST_LOCK_OWNER, &body, &spec).await?;
    Ok(true)
}

/// Marks the host lock as alive.
pub async fn refresh_host(host: &dyn HostExec) -> Result<(), LockError> {
    let out = host
        .run(&Cmd::new("touch").arg(HOST_LOCK_OWNER).sudo())
        .await?;
    if out.success() {
        Ok(())
    } else {
        Err(fail(host, "touch", &out))
    }
}

/// Removes the host lock: its directory and owner file in one command, so that a ferry killed
/// while it lets go leaves either the whole lock (taken over as its own by a resume, or as stale
/// by another run) or nothing, never a directory without an owner.
pub async fn release_host(host: &dyn HostExec) -> Result<(), LockError> {
    let out = host
        .run(&Cmd::new("rm").args(["-rf", HOST_LOCK_DIR]).sudo())
        .await?;
    if out.success() {
        Ok(())
    } else {
        Err(fail(host, "rm", &out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_owner_and_frees_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let a = LockOwner {
            owner: "alice@box".into(),
            pid: 4242,
            run_id: "r1".into(),
            since_unix: 0,
        };
        let l = RunLock::acquire(d.path(), &a).unwrap();
        let e = RunLock::acquire(d.path(), &LockOwner::current("r2")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "another ferry run holds the lock on {}: alice@box (pid 4242, run r1)",
                d.path().join("lock").display()
            )
        );
        drop(l);
        RunLock::acquire(d.path(), &LockOwner::current("r2")).unwrap();
    }
}
