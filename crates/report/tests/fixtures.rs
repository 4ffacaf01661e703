//! The report of real runs: journals that `ferry upgrade` wrote on the testbed's MKE 3 cluster
//! (copied with `FERRY_KEEP_JOURNALS`, see `docs/testing.md`): a completed upgrade, one that
//! failed on a host and rolled back, and one killed (`kill -9`) between two steps. Their timeline's JSON and their SVG
//! are snapshots; the facts a reader looks for are asserted too.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ferry_report::draw;
use ferry_report::timeline::{BarKind, Outcome, Timeline};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.jsonl"))
}

fn timeline(name: &str) -> Timeline {
    let path = fixture(name);
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let entries = ferry_core::journal::entries(&lines, &path).unwrap();
    Timeline::of(&entries).unwrap()
}

fn snapshots(name: &str, t: &Timeline) {
    insta::assert_json_snapshot!(format!("{name}.json"), t);
    insta::assert_snapshot!(format!("{name}.svg"), draw::svg(t));
}

#[test]
fn a_completed_upgrade_is_every_step_done_on_its_host() {
    let t = timeline("mke-completed");
    assert_eq!(t.flow, "mke3-to-mke4");
    assert_eq!(t.outcome, "completed");
    assert_eq!(t.rows.len(), 6, "the cluster and five hosts: {:?}", t.rows);
    assert!(
        t.bars
            .iter()
            .all(|b| b.kind == BarKind::Apply && b.outcome == Outcome::Done)
    );
    assert!(t.failure().is_none());
    assert!(t.skipped.is_empty());
    // every host has its own bars
    for r in &t.rows {
        assert!(t.bars.iter().any(|b| &b.row == r), "no bar on {r}");
    }
    snapshots("mke-completed", &t);
}

#[test]
fn a_failed_upgrade_shows_the_failure_and_the_rollback_after_it() {
    let t = timeline("mke-failed");
    assert_eq!(t.outcome, "rolled-back");
    let f = t.failure().expect("the failure that started the rollback");
    let failed: Vec<_> = t
        .bars
        .iter()
        .filter(|b| b.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(f.row.as_deref(), Some(failed[0].row.as_str()));
    assert_eq!(Some(f.at_ms), failed[0].end_ms);
    let undos: Vec<_> = t.bars.iter().filter(|b| b.kind == BarKind::Undo).collect();
    assert!(!undos.is_empty());
    assert!(
        undos
            .iter()
            .all(|b| b.start_ms >= f.at_ms && b.outcome == Outcome::Done)
    );
    assert!(t.phases.iter().any(|p| p.rollback));
    let svg = draw::svg(&t);
    assert!(svg.contains(r#"<g id="failure-mark">"#));
    snapshots("mke-failed", &t);
}

#[test]
fn an_interrupted_upgrade_shows_what_was_cut_off_and_what_is_left() {
    // killed with kill -9 right after a step was applied: no line says the run ended
    let t = timeline("mke-interrupted");
    assert_eq!(t.outcome, "in-progress");
    let last = t.bars.last().unwrap();
    assert_eq!(
        (last.step.as_str(), last.row.as_str(), last.outcome),
        ("mke.node.start-k0s", "10.123.1.2", Outcome::Done)
    );
    assert!(t.marks.is_empty(), "{:?}", t.marks);
    assert!(!t.skipped.is_empty());
    assert!(draw::svg(&t).contains(" left</text>"));
    snapshots("mke-interrupted", &t);
}

#[test]
fn the_status_of_an_interrupted_run_says_what_is_done_and_how_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("mke-interrupted"), dir.path().join("journal.jsonl")).unwrap();
    let st = ferry_report::Status::of(dir.path()).unwrap();
    assert_eq!(st.state, "in-progress");
    assert_eq!(st.lock_holder, None);
    assert_eq!(
        st.next,
        [
            format!("ferry resume --state-dir {}", dir.path().display()),
            format!("ferry rollback --state-dir {}", dir.path().display()),
        ]
    );
    let t = timeline("mke-interrupted");
    let started = t.bars.iter().filter(|b| b.kind == BarKind::Apply).count();
    let done: usize = st.rows.iter().map(|r| r.done.len()).sum();
    let in_flight: usize = st.rows.iter().map(|r| r.in_flight.len()).sum();
    let left: usize = st.rows.iter().map(|r| r.left.len()).sum();
    assert_eq!((done, in_flight), (started, 0));
    assert_eq!(left, t.skipped.len());
    assert!(
        st.rows
            .iter()
            .any(|r| r.row == "10.123.1.2" && r.done.contains(&"mke.node.start-k0s".to_string()))
    );
    let text = st.render();
    assert!(text.contains("Run lock: free"), "{text}");
    assert!(text.contains("ferry resume --state-dir"), "{text}");
}
