//! Log lines as users of mkectl and k0sctl know them (`INFO[0012] message`): the engine and the
//! flows emit them through a [`LogSink`]; the CLI decides where they go. A log line never holds a
//! secret: callers format only redacted values.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// The four-letter tag of logrus' text format (`INFO`, `WARN`, `FATA`...).
    pub fn tag(self) -> &'static str {
        match self {
            Level::Debug => "DEBU",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERRO",
            Level::Fatal => "FATA",
        }
    }
}

/// One log line with the time since the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: Level,
    #[serde(rename = "elapsedSeconds", serialize_with = "secs")]
    pub elapsed: Duration,
    pub message: String,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl fmt::Display for LogLine {
    /// `INFO[0012] message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{:04}] {}",
            self.level.tag(),
            self.elapsed.as_secs(),
            self.message
        )
    }
}

/// Where a run stands, for a progress display: the phase, how many steps are done, and what is
/// in flight on which host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: String,
    pub done: usize,
    pub total: usize,
    /// `(target, step id)` of every step being applied, in start order.
    pub running: Vec<(String, String)>,
    /// The width of the window the phase is in, if it is in one.
    pub window: Option<usize>,
}

/// Where log lines go.
pub trait LogSink: Send + Sync + fmt::Debug {
    fn log(&self, line: LogLine);

    /// The run moved on (a step started or finished). Ignored unless the sink shows progress.
    fn progress(&self, progress: &Progress) {
        let _ = progress;
    }
}

/// A sink that keeps every line, for tests and for the CLI to drain.
#[derive(Debug, Default)]
pub struct MemoryLog {
    lines: Mutex<Vec<LogLine>>,
}

impl MemoryLog {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every line so far as text, one per line.
    pub fn text(&self) -> String {
        self.lines()
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    }

    /// Removes and returns the lines so far.
    pub fn take(&self) -> Vec<LogLine> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

impl LogSink for MemoryLog {
    fn log(&self, line: LogLine) {
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }
}

/// A sink that drops everything.
#[derive(Debug, Default)]
pub struct NullLog;

impl LogSink for NullLog {
    fn log(&self, _line: LogLine) {}
}

/// The handle engines and steps log through: a sink and the start of the run.
#[derive(Debug, Clone)]
pub struct Logger {
    sink: Arc<dyn LogSink>,
    start: tokio::time::Instant,
}

impl Logger {
    pub fn new(sink: Arc<dyn LogSink>) -> Self {
        Self {
            sink,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn null() -> Self {
        Self::new(Arc::new(NullLog))
    }

    pub fn log(&self, level: Level, message: impl Into<String>) {
        self.sink.log(LogLine {
            level,
            elapsed: self.start.elapsed(),
            message: message.into(),
        });
    }

    pub fn debug(&self, m: impl Into<String>) {
        self.log(Level::Debug, m);
    }

    pub fn info(&self, m: impl Into<String>) {
        self.log(Level::Info, m);
    }

    pub fn warn(&self, m: impl Into<String>) {
        self.log(Level::Warn, m);
    }

    pub fn error(&self, m: impl Into<String>) {
        self.log(Level::Error, m);
    }

    pub fn fatal(&self, m: impl Into<String>) {
        self.log(Level::Fatal, m);
    }

    pub fn progress(&self, p: &Progress) {
        self.sink.progress(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_logrus() {
        let l = LogLine {
            level: Level::Warn,
            elapsed: Duration::from_millis(96_400),
            message: "Initiating rollback".into(),
        };
        assert_eq!(l.to_string(), "WARN[0096] Initiating rollback");
    }
}
