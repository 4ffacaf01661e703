//! # ferry-report
//!
//! Every ferry run as a picture, from its journal alone (`ferry report`), and where a run
//! stands (`ferry status`).
//!
//! - [`timeline`]: the journal's lines as rows (one per host, one for the cluster's steps), bars
//!   (each apply and undo, with its outcome), phase bands, marks (the failure that started the
//!   rollback, interrupts, resumes) and the steps never reached; serialisable as JSON.
//! - [`draw`]: the SVG and the self-contained HTML page of a timeline.
//! - [`status`]: done, in flight and left per host, the run lock, and what to run next.

pub mod draw;
pub mod status;
pub mod timeline;

use std::path::{Path, PathBuf};

pub use status::Status;
pub use timeline::Timeline;

/// The report file ferry writes into a run's state directory when the run ends.
pub const REPORT_FILE: &str = "report.html";

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Journal(#[from] ferry_core::journal::JournalError),
    #[error(transparent)]
    Timeline(#[from] timeline::TimelineError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The timeline of the run whose state directory is `dir`.
pub fn timeline_of(dir: &Path) -> Result<Timeline, ReportError> {
    let entries = ferry_core::journal::read_entries(dir)?;
    Ok(Timeline::of(&entries)?)
}

/// Writes `text` to `path` at once (a temporary file beside it, renamed).
pub fn write_atomically(path: &Path, text: &str) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Draws the run of `dir` into `dir/report.html`; its path.
pub fn write_report(dir: &Path) -> Result<PathBuf, ReportError> {
    let t = timeline_of(dir)?;
    let path = dir.join(REPORT_FILE);
    write_atomically(&path, &draw::html(&t))?;
    Ok(path)
}
