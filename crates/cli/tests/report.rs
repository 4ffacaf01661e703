//! `ferry report` and `ferry status` on journals of real runs (`crates/report/tests/fixtures`):
//! the files they write, what they print, and their refusals.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::ferry_run;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../report/tests/fixtures")
        .join(format!("{name}.jsonl"))
}

/// A state directory holding a copy of the fixture's journal.
fn state_of(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture(name), dir.join("journal.jsonl")).unwrap();
    dir
}

#[test]
fn report_writes_the_page_into_the_state_directory_or_where_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_of(tmp.path(), "mke-failed");
    let d = dir.display().to_string();
    let r = ferry_run(["report", "--state-dir", &d]);
    r.assert_code(0);
    let page = dir.join("report.html");
    assert!(r.stdout.contains("mke3-to-mke4 run "), "{}", r.stdout);
    assert!(r.stdout.contains(": rolled-back after "), "{}", r.stdout);
    assert!(r.stdout.contains("Failed at "), "{}", r.stdout);
    assert!(
        r.stdout.ends_with(&format!("Report: {}\n", page.display())),
        "{}",
        r.stdout
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(r#"<g id="failure-mark">"#));
    // self-contained: nothing fetched
    assert!(
        !html.contains("http://") || !html.contains("src="),
        "a fetch in the page"
    );
    assert!(!html.contains("<script"), "a script in the page");
    let svg = tmp.path().join("run.svg");
    let r = ferry_run(["report", "--state-dir", &d, "--out", svg.to_str().unwrap()]);
    r.assert_code(0);
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .starts_with("<svg xmlns")
    );
    // JSON: the timeline's data
    let r = ferry_run(["report", "--state-dir", &d, "-o", "json"]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outcome"], "rolled-back");
    assert!(v["bars"].as_array().unwrap().len() > 10);
    assert!(
        v["marks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "failure")
    );
}

#[test]
fn report_and_status_refuse_what_they_cannot_use() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_of(tmp.path(), "mke-completed");
    let d = dir.display().to_string();
    let png = tmp.path().join("x.png");
    let r = ferry_run(["report", "--state-dir", &d, "--out", png.to_str().unwrap()]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("must end in .html or .svg"),
        "{}",
        r.stderr
    );
    assert!(!png.exists());
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for cmd in ["report", "status"] {
        let r = ferry_run([cmd, "--state-dir", empty.to_str().unwrap()]);
        r.assert_code(2);
        assert!(r.stderr.contains("empty"), "{cmd}: {}", r.stderr);
    }
    // a journal cut in the middle of a line is read up to it; a broken line before the end is not
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    let text = std::fs::read_to_string(fixture("mke-completed")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(3, "{not json");
    std::fs::write(broken.join("journal.jsonl"), lines.join("\n")).unwrap();
    let r = ferry_run(["status", "--state-dir", broken.to_str().unwrap()]);
    r.assert_code(2);
    assert!(r.stderr.contains("line 4"), "{}", r.stderr);
}

#[test]
fn status_says_where_an_interrupted_run_stands_and_what_to_run_next() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = state_of(tmp.path(), "mke-interrupted");
    let d = dir.display().to_string();
    let r = ferry_run(["status", "--state-dir", &d]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("of mke3-to-mke4: in-progress"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Run lock: free"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("ferry resume --state-dir {d}")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("ferry rollback --state-dir {d}")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("10.123.1.1"), "{}", r.stdout);
    let r = ferry_run(["status", "--state-dir", &d, "-o", "json"]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["state"], "in-progress");
    assert!(v["rows"].as_array().unwrap().len() >= 5);
    // a ferry working on the run: its lock named, and nothing to run but waiting
    let lock = ferry_core::lock::RunLock::acquire(
        &dir,
        &ferry_core::lock::LockOwner {
            owner: "alice@ops-box".into(),
            pid: 4242,
            run_id: "r-live".into(),
            since_unix: 0,
        },
    )
    .unwrap();
    let r = ferry_run(["status", "--state-dir", &d]);
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("Run lock: held by alice@ops-box (pid 4242, run r-live)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("is working on this run now: wait for it"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("ferry resume --state-dir"),
        "{}",
        r.stdout
    );
    drop(lock);
    // a completed run: nothing to run next
    let done = state_of(tmp.path(), "mke-completed");
    let r = ferry_run(["status", "--state-dir", done.to_str().unwrap()]);
    r.assert_code(0);
    assert!(r.stdout.contains(": completed, started "), "{}", r.stdout);
    assert!(!r.stdout.contains("Next:"), "{}", r.stdout);
}

#[test]
fn without_state_dir_the_latest_run_under_the_state_home_is_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("state");
    let ferry = home.join("ferry");
    let old = state_of(&ferry, "mke-completed");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let new = state_of(&ferry, "mke-interrupted");
    assert!(old.exists() && new.exists());
    let r = common::run(
        common::ferry()
            .arg("status")
            .env("XDG_STATE_HOME", &home)
            .env_remove("HOME"),
    );
    r.assert_code(0);
    assert!(r.stdout.contains("in-progress"), "{}", r.stdout);
    let r = common::run(
        common::ferry()
            .arg("report")
            .env("XDG_STATE_HOME", tmp.path().join("nothing-here"))
            .env_remove("HOME"),
    );
    r.assert_code(2);
    assert!(r.stderr.contains("no run found under"), "{}", r.stderr);
}
