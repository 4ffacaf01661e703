//! `ferry report` (a run as a picture) and `ferry status` (where a run stands), from a state
//! directory's journal alone: they work for every flow, for a run in progress, interrupted,
//! failed or done.

use std::path::{Path, PathBuf};

use ferry_report::{Status, Timeline, draw};

use crate::session::Runtime;
use crate::{CliError, Format, Output};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The picture: one row per host (and one for the cluster's steps), each step a bar from its start \
to its end coloured by outcome (done, failed, undone by the rollback, the undo itself, undo \
failed, cut off, still running), the phases as bands, the failure that started a rollback as a \
red line and mark, the rollback's start, interrupts and resumes as dashed lines, the steps never \
reached at the right of their row, the time axis in elapsed minutes. Every bar has a title (shown \
on hover) with the step, host, times and error.

--out FILE.html writes a self-contained page (no script, nothing fetched); --out FILE.svg the \
picture alone. Without --out the page goes to report.html in the state directory. -o json prints \
the timeline's data instead (and still writes --out when given).")]
pub struct ReportArgs {
    /// The run's state directory (default: the one under $XDG_STATE_HOME/ferry, or
    /// ~/.local/state/ferry, whose journal changed last).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where to write the picture: a .html or .svg file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Format of what is printed: the file written (text) or the timeline's data (json).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The run's state directory (default: the one under $XDG_STATE_HOME/ferry, or
    /// ~/.local/state/ferry, whose journal changed last).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// The state directory: the flag's, or the latest run's.
fn state_dir(rt: &Runtime, flag: Option<&Path>) -> Result<PathBuf, CliError> {
    match flag {
        Some(d) => Ok(d.to_path_buf()),
        None => latest_state_dir(rt),
    }
}

/// The state directory under $XDG_STATE_HOME/ferry (or ~/.local/state/ferry) whose journal
/// changed last.
pub(crate) fn latest_state_dir(rt: &Runtime) -> Result<PathBuf, CliError> {
    let xdg = (rt.env)("XDG_STATE_HOME").map(PathBuf::from);
    let home = (rt.env)("HOME").map(PathBuf::from);
    let base = match (xdg, home) {
        (Some(x), _) if x.is_absolute() => x.join("ferry"),
        (_, Some(h)) => h.join(".local/state/ferry"),
        _ => {
            return Err(CliError::Usage(
                "cannot find the state directories: set --state-dir, XDG_STATE_HOME or HOME".into(),
            ));
        }
    };
    let latest = std::fs::read_dir(&base)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let j = e.path().join(ferry_core::journal::JOURNAL_FILE);
            let t = std::fs::metadata(&j).and_then(|m| m.modified()).ok()?;
            Some((t, e.path()))
        })
        .max();
    latest.map(|(_, p)| p).ok_or_else(|| {
        CliError::Usage(format!(
            "no run found under {}: give the run's --state-dir",
            base.display()
        ))
    })
}

fn journal_error(dir: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::Input {
        path: dir.to_path_buf(),
        problem: e.to_string(),
    }
}

pub fn report(args: &ReportArgs, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    let dir = state_dir(rt, args.state_dir.as_deref())?;
    let t = ferry_report::timeline_of(&dir).map_err(|e| journal_error(&dir, e))?;
    let target = match &args.out {
        Some(p) => Some(p.clone()),
        None if args.output == Format::Text => Some(dir.join(ferry_report::REPORT_FILE)),
        None => None,
    };
    if let Some(path) = &target {
        let text = match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => draw::svg(&t),
            Some("html" | "htm") => draw::html(&t),
            _ => {
                return Err(CliError::Usage(format!(
                    "--out {}: the file must end in .html or .svg",
                    path.display()
                )));
            }
        };
        ferry_report::write_atomically(path, &text).map_err(|e| CliError::Output {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    match args.output {
        Format::Json => out.result(&format!(
            "{}\n",
            serde_json::to_string_pretty(&t).map_err(|e| CliError::Internal(e.to_string()))?
        )),
        Format::Text => {
            out.result(&summary(&t));
            if let Some(p) = &target {
                out.result(&format!("Report: {}\n", p.display()));
            }
        }
    }
    Ok(0)
}

/// The run in three lines.
fn summary(t: &Timeline) -> String {
    let mut s = format!(
        "{} run {}: {} after {} ({} rows, {} bars)\n",
        t.flow,
        t.run_id,
        t.outcome,
        draw::elapsed(t.end_ms),
        t.rows.len(),
        t.bars.len()
    );
    if let Some(f) = t.failure() {
        s.push_str(&format!(
            "Failed at {}: {} on {}: {}\n",
            draw::elapsed(f.at_ms),
            f.step.as_deref().unwrap_or(""),
            f.row.as_deref().unwrap_or(""),
            f.text
        ));
    }
    s
}

pub fn status(args: &StatusArgs, rt: &Runtime, out: &mut Output<'_>) -> Result<u8, CliError> {
    let dir = state_dir(rt, args.state_dir.as_deref())?;
    let st = Status::of(&dir).map_err(|e| journal_error(&dir, e))?;
    match args.output {
        Format::Json => out.result(&format!(
            "{}\n",
            serde_json::to_string_pretty(&st).map_err(|e| CliError::Internal(e.to_string()))?
        )),
        Format::Text => out.result(&st.render()),
    }
    Ok(0)
}

/// After a run: its picture written to `report.html` in the state directory, when this command
/// wrote the journal there (a dry run writes none). Its path, or a warning.
pub(crate) fn after_run(dir: &Path, since: std::time::SystemTime) -> Result<PathBuf, String> {
    let j = dir.join(ferry_core::journal::JOURNAL_FILE);
    let fresh = std::fs::metadata(&j)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return Err(String::new());
    }
    ferry_report::write_report(dir).map_err(|e| format!("cannot write the run's report: {e}"))
}
