//! `ferry rbac`: the binary as a user runs it. Inputs are the ferry-rbac fixtures and files
//! written into a temporary directory.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A ferry-rbac fixture (an export in `crates/rbac/tests/fixtures/`).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rbac/tests/fixtures")
        .join(name)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn ferry<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "ferry panicked:\n{}",
        run.stderr
    );
    run
}

impl Run {
    fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Files in `dir` other than `keep` (temporary files left behind by a failed write).
fn strays(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

fn yaml_documents(text: &str) -> Vec<serde_yaml::Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .collect()
}

const WORKED: &str = "02-worked-example.json";

#[test]
fn text_output_puts_manifests_on_stdout_and_the_report_on_stderr() {
    let run = ferry(["rbac", "--from", fixture(WORKED).to_str().unwrap()]);
    run.code(0);
    let docs = yaml_documents(&run.stdout);
    assert_eq!(docs.len(), 16, "{}", run.stdout);
    let names: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(names.contains(&("ClusterRoleBinding", "mke3-admins")));
    assert!(names.contains(&("RoleBinding", "development-team")));
    assert!(names.contains(&("ClusterRole", "development-team.dev")));
    // The documented summary lines, then ferry's counts and the detailed report.
    for line in [
        "Authentication\n---------------\nUsers found in the MKE3 cluster: 3\n\nAll users were upgraded to the MKE 4k cluster successfully.\n",
        "Organizations found in the MKE3 cluster: 1\nTeams found in the MKE3 cluster: 3\n",
        "All organizations and teams were translated to aggregated roles in the MKE 4k cluster successfully.",
        "Grants converted: 2\nGrants not converted (Swarm collections): 7\n",
        "collection /prod | not converted: Swarm collection grant; no Kubernetes equivalent",
    ] {
        assert!(
            run.stderr.contains(line),
            "missing {line:?} in\n{}",
            run.stderr
        );
    }
    assert!(!run.stdout.contains("Authentication"));
}

#[test]
fn out_writes_the_same_manifests_and_stdout_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rbac.yaml");
    let from = fixture(WORKED);
    let plain = ferry(["rbac", "--from", from.to_str().unwrap()]);
    let run = ferry([
        "rbac",
        "--from",
        from.to_str().unwrap(),
        "--out",
        dest.to_str().unwrap(),
    ]);
    run.code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), plain.stdout);
    assert!(
        run.stderr.contains("Wrote 16 RBAC objects to"),
        "{}",
        run.stderr
    );
    assert!(strays(dir.path(), &["rbac.yaml"]).is_empty());
}

#[test]
fn json_output_holds_the_report_and_the_manifests() {
    let run = ferry([
        "rbac",
        "--from",
        fixture("05-dangling-references.json").to_str().unwrap(),
        "-o",
        "json",
    ]);
    run.code(0);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["summary"]["users"], 2);
    assert_eq!(v["summary"]["untranslatedOrgsAndTeams"], 2);
    assert_eq!(v["summary"]["grantsNotConvertedOther"], 4);
    let manifests = v["manifests"].as_array().unwrap();
    assert_eq!(
        manifests.len() as u64,
        v["summary"]["objects"].as_u64().unwrap()
    );
    assert!(
        v["summaryText"]
            .as_str()
            .unwrap()
            .contains("Some organizations and teams could not be translated")
    );
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "dangling" && n["message"].as_str().unwrap().contains("ghost"))
    );
    // The manifests in the JSON are the YAML's documents.
    let text = ferry([
        "rbac",
        "--from",
        fixture("05-dangling-references.json").to_str().unwrap(),
    ]);
    let from_yaml: Vec<Value> = yaml_documents(&text.stdout)
        .into_iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    assert_eq!(manifests, &from_yaml);
}

#[test]
fn json_output_with_out_names_the_file_instead() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.yaml");
    let run = ferry([
        "rbac",
        "--from",
        fixture(WORKED).to_str().unwrap(),
        "--out",
        dest.to_str().unwrap(),
        "-o",
        "json",
    ]);
    run.code(0);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v.get("manifests").is_none());
    assert_eq!(v["out"], dest.to_str().unwrap());
    assert_eq!(
        yaml_documents(&std::fs::read_to_string(&dest).unwrap()).len(),
        16
    );
}

/// Runs `ferry rbac` on `content` with `--out`, expects exit 2, and checks that nothing was
/// written. Returns stderr.
fn fails_without_output(content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.json");
    std::fs::write(&input, content).unwrap();
    let dest = dir.path().join("out.yaml");
    let run = ferry([
        "rbac",
        "--from",
        input.to_str().unwrap(),
        "--out",
        dest.to_str().unwrap(),
    ]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(!dest.exists(), "--out was created on failure");
    assert!(strays(dir.path(), &["export.json"]).is_empty());
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with(&format!("Error: {}:", input.display())),
        "{}",
        run.stderr
    );
    run.stderr
}

#[test]
fn malformed_json_is_refused_with_its_position() {
    let stderr =
        fails_without_output("{\"version\": 1, \"accounts\": [\n  {\"name\": \"bob\",,}\n]}");
    // Line 2, column 18: the second comma.
    assert!(stderr.contains("export.json:2:18: "), "{stderr}");
    assert!(stderr.contains("at accounts[0]"), "{stderr}");
    assert!(stderr.contains("key must be a string"), "{stderr}");
}

#[test]
fn a_wrong_shape_names_the_json_path() {
    let stderr = fails_without_output(
        r#"{"version": 1, "accounts": [{"name": "bob", "id": "u1", "isOrg": false},
            {"name": "acme", "id": "o1", "isOrg": "yes"}]}"#,
    );
    assert!(stderr.contains("at accounts[1].isOrg: "), "{stderr}");
    assert!(stderr.contains("expected a boolean"), "{stderr}");

    let stderr = fails_without_output(
        r#"{"version": 1, "accounts": [], "orgs": {"acme": {"teams": [{"members": []}]}}}"#,
    );
    assert!(
        stderr.contains("at orgs.acme.teams[0]: missing field `team`"),
        "{stderr}"
    );
}

#[test]
fn another_export_version_is_refused() {
    let stderr = fails_without_output(r#"{"version": 2, "accounts": []}"#);
    assert!(
        stderr.contains("unsupported export version 2 (this ferry reads version 1)"),
        "{stderr}"
    );
}

#[test]
fn an_empty_file_is_refused() {
    let stderr = fails_without_output("  \n");
    assert!(stderr.contains("file is empty"), "{stderr}");
}

#[test]
fn a_missing_file_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.yaml");
    let missing = dir.path().join("nope.json");
    let run = ferry([
        "rbac",
        "--from",
        missing.to_str().unwrap(),
        "--out",
        dest.to_str().unwrap(),
    ]);
    run.code(2);
    assert_eq!(
        run.stderr,
        format!("Error: {}: no such file\n", missing.display())
    );
    assert!(!dest.exists());
}

#[test]
fn a_failure_leaves_an_existing_out_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.yaml");
    std::fs::write(&dest, "previous\n").unwrap();
    let input = dir.path().join("bad.json");
    std::fs::write(&input, "[]").unwrap();
    let run = ferry([
        "rbac",
        "--from",
        input.to_str().unwrap(),
        "--out",
        dest.to_str().unwrap(),
    ]);
    run.code(2);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "previous\n");
}

#[test]
fn from_is_required() {
    let run = ferry(["rbac"]);
    run.code(2);
    assert!(run.stderr.contains("--from <FILE>"), "{}", run.stderr);
}
