//! `ferry rbac`: translate an MKE 3 access model (orgs, teams, users, roles, grants) into
//! Kubernetes RBAC manifests for MKE 4k, with the Authentication and Authorization sections of
//! the Upgrade Summary and a detailed report.

use std::path::{Path, PathBuf};

use ferry_rbac::{Export, Options, RbacError, Translation};

use crate::{CliError, Format, Output, exit, fsio};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output:
  -o text (default): the manifests go to standard output, or to --out; the Upgrade Summary
    sections and the detailed report (every grant and what became of it, renames, inactive
    users, dropped flags, dangling references) go to standard error.
  -o json: one JSON document on standard output with the counts, the summary text, every grant
    and every note. Without --out it also holds the manifests, as a list of objects under
    \"manifests\" (the same documents, in the same order, as the YAML); with --out they are
    written to that file and \"out\" names it.

Nothing is written when the export cannot be read: --out is created only on success.
The export format is described in docs/formats.md (mke3-rbac-export.json).")]
pub struct RbacArgs {
    /// The MKE 3 access model to translate (mke3-rbac-export.json: accounts, org and team
    /// members, roles, collections and grants, as returned by the MKE 3 API).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Write the manifests (multi-document YAML) to this file, atomically, instead of standard
    /// output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Format of the report: text (report on stderr) or json (one JSON document on stdout that
    /// also holds the manifests unless --out is given).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// Maps an error of the export or the translation to the CLI's error, naming the file.
fn export_error(path: &Path, e: &RbacError) -> CliError {
    let message = match e {
        RbacError::Json {
            path: json_path,
            line,
            column,
            message,
        } if json_path == "." => format!("{line}:{column}: {message}"),
        RbacError::Json {
            path: json_path,
            line,
            column,
            message,
        } => format!("{line}:{column}: at {json_path}: {message}"),
        other => format!(" {other}"),
    };
    CliError::InvalidContent {
        path: path.to_path_buf(),
        message,
    }
}

pub fn run(args: &RbacArgs, out: &mut Output<'_>) -> Result<u8, CliError> {
    let text = fsio::read_text_input(&args.from)?;
    let export = Export::from_json(&text).map_err(|e| export_error(&args.from, &e))?;
    let translation = ferry_rbac::translate(&export, &Options::default())
        .map_err(|e| export_error(&args.from, &e))?;
    // Render everything before writing anything, so a failure leaves no output file.
    let yaml = translation
        .to_yaml()
        .map_err(|e| CliError::Internal(format!("cannot render the RBAC manifests: {e}")))?;
    if let Some(dest) = &args.out {
        fsio::write_atomic(dest, yaml.as_bytes())?;
    }
    match args.output {
        Format::Text => {
            if args.out.is_none() {
                out.result(&yaml);
            }
            out.info(&text_report(&translation, args.out.as_deref()));
        }
        Format::Json => out.result(&json_report(&translation, args.out.as_deref())),
    }
    Ok(exit::code(exit::Ending::Done))
}

fn text_report(t: &Translation, written: Option<&Path>) -> String {
    let mut s = t.report.summary_sections();
    s.push('\n');
    if let Some(path) = written {
        s.push_str(&format!(
            "Wrote {} RBAC objects to {}\n\n",
            t.manifests.len(),
            path.display()
        ));
    }
    s.push_str(&t.report.details());
    s
}

fn json_report(t: &Translation, written: Option<&Path>) -> String {
    let r = &t.report;
    let mut doc = serde_json::json!({
        "summary": {
            "users": r.users,
            "organizations": r.organizations,
            "teams": r.teams,
            "grantsConverted": r.grants_converted(),
            "grantsNotConvertedSwarm": r.grants_not_converted_swarm(),
            "grantsNotConvertedOther": r.grants_not_converted_other(),
            "inactiveUsers": r.inactive_users(),
            "renamedObjects": r.renamed_objects(),
            "untranslatedOrgsAndTeams": r.untranslated_orgs_and_teams,
            "objects": t.manifests.len(),
        },
        "summaryText": r.summary_sections(),
        "grants": r.grants,
        "notes": r.notes,
    });
    if let Some(map) = doc.as_object_mut() {
        match written {
            Some(path) => {
                map.insert("out".into(), path.display().to_string().into());
            }
            None => {
                map.insert("manifests".into(), t.manifests.to_json_values().into());
            }
        }
    }
    // A JSON value of strings, numbers and lists always serialises.
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
