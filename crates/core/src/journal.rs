//! The run journal: one JSON object per line in `<state-dir>/journal.jsonl`, appended and fsynced
//! before and after every apply and undo, versioned from the first line. After a crash,
//! [`Replay`] tells `resume` what is done and `rollback` what to undo.
//!
//! Every line has `v` (the format version, [`JOURNAL_VERSION`]), `seq` (1, 2, ...), `unix`
//! (seconds) and `type`. The first line is the `header` with the run id, the flow's name, its
//! inputs (never a secret), the hosts and the plan: enough for `ferry resume` and `ferry
//! rollback` to pick the flow and reconnect without the original arguments. A truncated last line
//! (a crash in the middle of a write) is ignored.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Plan, StepKey};
use crate::hosts::HostSpec;

/// The only journal format version this build reads and writes (2: the header names the hosts).
pub const JOURNAL_VERSION: u32 = 2;
/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// One event of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    Header {
        run_id: String,
        flow: String,
        tool: String,
        inputs: Value,
        hosts: Vec<HostSpec>,
        plan: Plan,
    },
    /// About to apply `key`; `prepared` is what undo needs if the apply does not finish.
    Started {
        key: StepKey,
        prepared: Value,
    },
    Applied {
        key: StepKey,
        undo: Value,
    },
    Failed {
        key: StepKey,
        error: String,
    },
    RollbackStarted {
        reason: String,
    },
    UndoStarted {
        key: StepKey,
        data: Value,
        partial: bool,
    },
    Undone {
        key: StepKey,
    },
    UndoFailed {
        key: StepKey,
        error: String,
    },
    /// A `--resume` took over the run.
    Resumed,
    /// Second interrupt: the run stopped at once.
    Interrupted,
    /// `completed`, `rolled-back` or `rollback-incomplete`.
    Finished {
        outcome: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    v: u32,
    seq: u64,
    unix: u64,
    /// Milliseconds since the epoch (a line without it, from an older build, counts `unix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ms: Option<u64>,
    #[serde(flatten)]
    record: Record,
}

/// One line of a journal as written: its sequence number, when, and its record (for a picture
/// of the run: `ferry report`, `ferry status`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// Milliseconds since the epoch.
    pub unix_ms: u64,
    pub record: Record,
}

/// Every line of the journal in `dir`, in order (a torn last line left out).
pub fn read_entries(dir: &Path) -> Result<Vec<Entry>, JournalError> {
    let (lines, path) = read_lines(dir)?;
    entries(&lines, &path)
}

/// The entries of a journal's lines; `path` is only named in errors.
pub fn entries(lines: &[String], path: &Path) -> Result<Vec<Entry>, JournalError> {
    Ok(parse_lines(lines, path)?
        .into_iter()
        .map(|l| Entry {
            seq: l.seq,
            unix_ms: l.ms.unwrap_or(l.unix.saturating_mul(1000)),
            record: l.record,
        })
        .collect())
}

/// The journal's lines in `dir` and its path, for [`Replay::parse`] and [`entries`] of one read.
pub fn read_lines(dir: &Path) -> Result<(Vec<String>, PathBuf), JournalError> {
    let path = Journal::path_in(dir);
    let file = File::open(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            JournalError::Missing {
                dir: dir.to_path_buf(),
            }
        } else {
            JournalError::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
    Ok((lines, path))
}

/// The lines of a journal, checked: every one of this format version and well formed but a
/// torn last one, which is left out.
fn parse_lines(lines: &[String], path: &Path) -> Result<Vec<Line>, JournalError> {
    let path = path.to_path_buf();
    let mut parsed = Vec::new();
    let count = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        // Peek at the version first so that a newer format is reported as such.
        let raw: Result<Value, _> = serde_json::from_str(l);
        match raw {
            Ok(v) => {
                let ver = v.get("v").and_then(Value::as_u64).unwrap_or(0) as u32;
                if ver != JOURNAL_VERSION {
                    return Err(JournalError::Version {
                        path: path.clone(),
                        found: ver,
                    });
                }
                let line: Line = serde_json::from_value(v).map_err(|e| JournalError::Corrupt {
                    path: path.clone(),
                    line: i + 1,
                    reason: e.to_string(),
                })?;
                parsed.push(line);
            }
            // A crash in the middle of the last write leaves a partial line: ignore it.
            Err(_) if i + 1 == count => {}
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.clone(),
                    line: i + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(parsed)
}

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path} line {line}: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "journal {path} has format version {found}; this ferry reads version {JOURNAL_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("no journal in {dir}: nothing to resume or roll back")]
    Missing { dir: PathBuf },
    #[error(
        "an unfinished run {run_id} is recorded in {path}: continue it with `ferry resume` or undo it with `ferry rollback`"
    )]
    Unfinished { path: PathBuf, run_id: String },
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    seq: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Journal {
    /// The journal path in `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(JOURNAL_FILE)
    }

    /// Starts a new journal in `dir` with `header`. An unfinished journal there is refused; a
    /// finished one is kept as `journal-<run id>.jsonl`.
    pub fn create(dir: &Path, header: Record) -> Result<Self, JournalError> {
        let path = Self::path_in(dir);
        if path.exists() {
            let replay = Replay::read(dir)?;
            if !replay.is_finished() {
                return Err(JournalError::Unfinished {
                    path,
                    run_id: replay.run_id,
                });
            }
            let kept = dir.join(format!("journal-{}.jsonl", replay.run_id));
            std::fs::rename(&path, &kept).map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
        let mut j = Self { file, path, seq: 0 };
        j.append(header)?;
        // The directory entry of a new file must reach the disk too.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(j)
    }

    /// Opens the journal in `dir` for appending after reading it.
    pub fn open(dir: &Path) -> Result<(Self, Replay), JournalError> {
        let replay = Replay::read(dir)?;
        let path = Self::path_in(dir);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        // Cut a torn last line (a crash in the middle of a write) before appending after it.
        let bytes = std::fs::read(&path).map_err(io)?;
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        if keep < bytes.len() {
            file.set_len(keep as u64).map_err(io)?;
        }
        Ok((
            Self {
                file,
                path,
                seq: replay.last_seq,
            },
            replay,
        ))
    }

    /// Appends one record and forces it to disk.
    pub fn append(&mut self, record: Record) -> Result<(), JournalError> {
        self.seq += 1;
        let ms = now_ms();
        let line = Line {
            v: JOURNAL_VERSION,
            seq: self.seq,
            unix: ms / 1000,
            ms: Some(ms),
            record,
        };
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut text = serde_json::to_string(&line)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        text.push('\n');
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What a step's journal lines say about it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    /// Started, never finished: in doubt; undo with the prepared data.
    Started {
        prepared: Value,
    },
    Applied {
        undo: Value,
    },
    /// Failed in the middle; undo with the prepared data.
    Failed {
        prepared: Value,
    },
    /// An undo started and did not finish; run it again.
    UndoStarted {
        data: Value,
        partial: bool,
    },
    Undone,
    UndoFailed {
        data: Value,
        partial: bool,
        error: String,
    },
}

impl StepState {
    /// The data and partial flag an undo of this step needs, or `None` if nothing is left to
    /// undo.
    pub fn pending_undo(&self) -> Option<(Value, bool)> {
        match self {
            StepState::Started { prepared } | StepState::Failed { prepared } => {
                Some((prepared.clone(), true))
            }
            StepState::Applied { undo } => Some((undo.clone(), false)),
            StepState::UndoStarted { data, partial }
            | StepState::UndoFailed { data, partial, .. } => Some((data.clone(), *partial)),
            StepState::Undone => None,
        }
    }
}

/// A journal read back.
#[derive(Debug, Clone)]
pub struct Replay {
    pub run_id: String,
    pub flow: String,
    pub inputs: Value,
    pub hosts: Vec<HostSpec>,
    pub plan: Plan,
    /// The latest state of every step that was started.
    pub steps: BTreeMap<StepKey, StepState>,
    /// Steps in the order they (last) started.
    pub order: Vec<StepKey>,
    /// The reason of a rollback that started.
    pub rollback_reason: Option<String>,
    /// The outcome of the last `finished` line, if it is the last word.
    pub finished: Option<String>,
    pub interrupted: bool,
    last_seq: u64,
}

impl Replay {
    /// Reads and interprets the journal in `dir`.
    pub fn read(dir: &Path) -> Result<Self, JournalError> {
        let (lines, path) = read_lines(dir)?;
        Self::parse(&lines, &path)
    }

    /// Interprets the lines of a journal; `path` is only named in errors. Never panics, whatever
    /// the lines hold.
    pub fn parse(lines: &[String], path: &Path) -> Result<Self, JournalError> {
        let parsed = parse_lines(lines, path)?;
        let path = path.to_path_buf();
        let mut it = parsed.into_iter();
        let first = it.next().ok_or_else(|| JournalError::Corrupt {
            path: path.clone(),
            line: 1,
            reason: "empty journal".into(),
        })?;
        let Record::Header {
            run_id,
            flow,
            inputs,
            hosts,
            plan,
            ..
        } = first.record
        else {
            return Err(JournalError::Corrupt {
                path: path.clone(),
                line: 1,
                reason: "the first line is not a header".into(),
            });
        };
        let mut r = Replay {
            run_id,
            flow,
            inputs,
            hosts,
            plan,
            steps: BTreeMap::new(),
            order: Vec::new(),
            rollback_reason: None,
            finished: None,
            interrupted: false,
            last_seq: first.seq,
        };
        let mut prepared: BTreeMap<StepKey, Value> = BTreeMap::new();
        for line in it {
            r.last_seq = line.seq;
            if !matches!(line.record, Record::Finished { .. }) {
                r.finished = None;
            }
            match line.record {
                Record::Header { .. } => {
                    return Err(JournalError::Corrupt {
                        path: path.clone(),
                        line: line.seq as usize,
                        reason: "a second header".into(),
                    });
                }
                Record::Started { key, prepared: p } => {
                    prepared.insert(key.clone(), p.clone());
                    r.order.retain(|k| k != &key);
                    r.order.push(key.clone());
                    r.steps.insert(key, StepState::Started { prepared: p });
                }
                Record::Applied { key, undo } => {
                    r.steps.insert(key, StepState::Applied { undo });
                }
                Record::Failed { key, .. } => {
                    let p = prepared.get(&key).cloned().unwrap_or(Value::Null);
                    r.steps.insert(key, StepState::Failed { prepared: p });
                }
                Record::RollbackStarted { reason } => r.rollback_reason = Some(reason),
                Record::UndoStarted { key, data, partial } => {
                    r.steps
                        .insert(key, StepState::UndoStarted { data, partial });
                }
                Record::Undone { key } => {
                    r.steps.insert(key, StepState::Undone);
                }
                Record::UndoFailed { key, error } => {
                    let (data, partial) = match r.steps.get(&key) {
                        Some(StepState::UndoStarted { data, partial }) => (data.clone(), *partial),
                        Some(s) => s.pending_undo().unwrap_or((Value::Null, true)),
                        None => (Value::Null, true),
                    };
                    r.steps.insert(
                        key,
                        StepState::UndoFailed {
                            data,
                            partial,
                            error,
                        },
                    );
                }
                Record::Resumed => r.interrupted = false,
                Record::Interrupted => r.interrupted = true,
                Record::Finished { outcome } => r.finished = Some(outcome),
            }
        }
        Ok(r)
    }

    /// The run ended with nothing left to do: completed or cleanly rolled back.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.finished.as_deref(),
            Some("completed") | Some("rolled-back")
        )
    }

    /// Steps with something left to undo, in the order they were started.
    pub fn to_undo(&self) -> Vec<(StepKey, Value, bool)> {
        self.order
            .iter()
            .filter_map(|k| {
                self.steps
                    .get(k)
                    .and_then(StepState::pending_undo)
                    .map(|(d, p)| (k.clone(), d, p))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Target, plan::Plan};

    fn header() -> Record {
        Record::Header {
            run_id: "r1".into(),
            flow: "t".into(),
            tool: "ferry test".into(),
            inputs: serde_json::json!({"a": 1}),
            hosts: vec![],
            plan: Plan {
                flow: "t".into(),
                phases: vec![],
            },
        }
    }

    fn k(id: &str) -> StepKey {
        StepKey::new(id, Target::Cluster)
    }

    #[test]
    fn writes_versioned_lines_and_replays_them() {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::create(d.path(), header()).unwrap();
        j.append(Record::Started {
            key: k("a"),
            prepared: serde_json::json!(1),
        })
        .unwrap();
        j.append(Record::Applied {
            key: k("a"),
            undo: serde_json::json!(2),
        })
        .unwrap();
        j.append(Record::Started {
            key: k("b"),
            prepared: serde_json::json!(3),
        })
        .unwrap();
        drop(j);
        let text = std::fs::read_to_string(Journal::path_in(d.path())).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["v"], JOURNAL_VERSION);
        assert_eq!(first["type"], "header");
        // A torn last line is ignored.
        std::fs::write(
            Journal::path_in(d.path()),
            format!("{text}{{\"v\":1,\"seq\":5,\"ty"),
        )
        .unwrap();
        let r = Replay::read(d.path()).unwrap();
        assert_eq!(
            r.to_undo(),
            vec![
                (k("a"), serde_json::json!(2), false),
                (k("b"), serde_json::json!(3), true)
            ]
        );
        assert!(!r.is_finished());
        // An unfinished journal blocks a new run.
        assert!(matches!(
            Journal::create(d.path(), header()),
            Err(JournalError::Unfinished { .. })
        ));
        let (mut j, _) = Journal::open(d.path()).unwrap();
        j.append(Record::Finished {
            outcome: "rolled-back".into(),
        })
        .unwrap();
        drop(j);
        Journal::create(d.path(), header()).unwrap();
        assert!(d.path().join("journal-r1.jsonl").exists());
    }

    #[test]
    fn refuses_other_versions() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            Journal::path_in(d.path()),
            "{\"v\":1,\"seq\":1,\"unix\":0,\"type\":\"header\"}\n",
        )
        .unwrap();
        let e = Replay::read(d.path()).unwrap_err();
        assert!(e.to_string().contains("format version 1"), "{e}");
    }
}
