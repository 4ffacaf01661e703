//! Reading input files with clear errors, and writing output files atomically.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::CliError;

/// Input files larger than this are refused: no real MKE 3 configuration or export comes close,
/// and reading an arbitrary large file into memory is not what a user meant.
pub const MAX_INPUT_BYTES: u64 = 10 * 1024 * 1024;

/// Reads a UTF-8 text input file, refusing directories, empty files and files over
/// [`MAX_INPUT_BYTES`]. Every error names the file.
pub fn read_text_input(path: &Path) -> Result<String, CliError> {
    let fail = |problem: String| CliError::Input {
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(io_problem(&e)))?;
    if meta.is_dir() {
        return Err(fail("is a directory, expected a file".into()));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(fail(format!(
            "file is {} bytes, larger than the {} MiB limit",
            meta.len(),
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| fail(io_problem(&e)))?;
    // Read at most one byte past the limit: the file may grow after the metadata call, and a
    // special file (a FIFO, /dev/zero) has no meaningful length at all.
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(io_problem(&e)))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(fail(format!(
            "file is larger than the {} MiB limit",
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(fail("file is empty".into()));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "file is not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn io_problem(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory is written,
/// flushed to disk and renamed over the target, so a reader never sees a half-written file and a
/// failure leaves any previous file untouched.
/// Fails unless `path` is a file that can be opened for reading.
pub fn check_file(path: &Path) -> Result<(), CliError> {
    let fail = |problem: String| CliError::Input {
        path: path.to_path_buf(),
        problem,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| fail(e.to_string())),
        Ok(_) => Err(fail("not a file".into())),
        Err(e) => Err(fail(e.to_string())),
    }
}

pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let fail = |source: std::io::Error| CliError::Output {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Checked here so that the error names the user's directory, not our temporary file.
    if !dir.is_dir() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("directory {} does not exist", dir.display()),
        )));
    }
    if path.is_dir() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    // A replaced file keeps its permissions; a new one gets the usual 0644 (the temporary file
    // is created 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail)?;
    }
    tmp.write_all(contents).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
