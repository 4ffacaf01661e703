//! The only module that prints. Commands build text; this module decides where it goes.

use std::io::Write;

/// Where a command's results go. The binary uses the process's stdout and stderr; tests of the
/// library entry point capture both.
pub struct Output<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// The picture of the run this command drove, written into its state directory: named
    /// last, after the summary.
    report: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

impl<'a> Output<'a> {
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Self {
            out,
            err,
            report: None,
        }
    }

    /// Notes the report file of the run this command drove.
    pub fn set_report(&mut self, path: std::path::PathBuf) {
        self.report = Some(path);
    }

    /// The report file noted, once.
    pub fn take_report(&mut self) -> Option<std::path::PathBuf> {
        self.report.take()
    }

    /// Writes a result (YAML, JSON, a report) to standard output.
    pub fn result(&mut self, text: &str) {
        // A closed pipe (`ferry init | head`) is not an error worth a second message.
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// Writes human-oriented information (summaries, notes) to standard error.
    pub fn info(&mut self, text: &str) {
        let _ = self.err.write_all(text.as_bytes());
        let _ = self.err.flush();
    }

    /// Replaces the status line on standard error (a terminal: carriage return, erase line).
    pub fn status(&mut self, text: &str) {
        let _ = write!(self.err, "\r\x1b[2K{text}");
        let _ = self.err.flush();
    }

    /// Erases the status line before ordinary output.
    pub fn clear_status(&mut self) {
        let _ = write!(self.err, "\r\x1b[2K");
        let _ = self.err.flush();
    }

    /// Writes a warning line to standard error.
    pub fn warn(&mut self, text: &str) {
        let _ = writeln!(self.err, "WARN {text}");
    }

    /// Prints an error and its whole chain of causes once, as `Error: a: b: c`.
    pub fn error(&mut self, error: &dyn std::error::Error) {
        let mut line = format!("Error: {error}");
        let mut source = error.source();
        while let Some(cause) = source {
            line.push_str(": ");
            line.push_str(&cause.to_string());
            source = cause.source();
        }
        let _ = writeln!(self.err, "{line}");
        let _ = self.err.flush();
    }
}
