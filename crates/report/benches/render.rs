//! Benchmark: `ferry report` of a run over 100 hosts must render in well under 1 s.
//!
//! Run with `cargo bench -p ferry-report`. The journal is made here as ferry writes it: an MKE
//! upgrade's plan (cluster steps, 3 managers one at a time, 97 workers in a window of 10, seven
//! steps per host), every step started and applied, then a failure on a worker and the rollback
//! of everything (about 1,600 lines). Timed: reading the lines, the timeline, and the HTML page
//! (with its SVG). The in-run peer is parsing the same lines as untyped JSON (`serde_json::Value`),
//! the least any tool reading the journal pays: the ratio says what drawing adds on top.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const HOSTS: usize = 100;
const MANAGERS: usize = 3;
const STEPS: [&str; 7] = [
    "mke.node.preflight",
    "mke.node.drain",
    "mke.node.install-k0s",
    "mke.node.start-k0s",
    "mke.node.wait-ready",
    "mke.node.stop-mke3",
    "mke.node.remove-mke3",
];
const RUNS: usize = 15;
const BUDGET: Duration = Duration::from_secs(1);

fn key(id: &str, host: Option<usize>) -> String {
    match host {
        Some(h) => format!("{id}@host:10.0.{}.{}", h / 250, h % 250 + 1),
        None => format!("{id}@cluster"),
    }
}

fn step(id: &str, host: Option<usize>) -> Value {
    json!({"key": key(id, host), "description": "a step", "reversibility": {"kind": "reversible"}})
}

fn journal() -> Vec<String> {
    let chain = |h: usize| {
        json!({"host": format!("10.0.{}.{}", h / 250, h % 250 + 1), "role": if h < MANAGERS { "manager" } else { "worker" },
               "steps": STEPS.iter().map(|s| step(s, Some(h))).collect::<Vec<_>>()})
    };
    let plan = json!({"flow": "mke3-to-mke4", "phases": [
        {"name": "Pre Upgrade Tasks", "rollback_name": "Rollback Pre Upgrade Tasks", "groups": [
            {"kind": "steps", "steps": [step("mke.checks", None), step("mke.backup-etcd", None)]}]},
        {"name": "Migrate managers", "rollback_name": "Rollback Migrate managers", "groups": [
            {"kind": "serial", "hosts": (0..MANAGERS).map(chain).collect::<Vec<_>>()}]},
        {"name": "Migrate workers", "rollback_name": "Rollback Migrate workers", "groups": [
            {"kind": "window", "limit": "10%", "width": 10, "order": "as listed", "hosts": (MANAGERS..HOSTS).map(chain).collect::<Vec<_>>()}]},
    ]});
    let hosts: Vec<Value> = (0..HOSTS)
        .map(|h| json!({"address": format!("10.0.{}.{}", h / 250, h % 250 + 1), "user": "root"}))
        .collect();
    let mut lines = Vec::new();
    let mut seq = 0;
    let mut ms: u64 = 1_764_000_000_000;
    let mut push = |ms: u64, rec: Value| {
        seq += 1;
        let mut v = json!({"v": 2, "seq": seq, "unix": ms / 1000, "ms": ms});
        for (k, x) in rec.as_object().unwrap() {
            v[k] = x.clone();
        }
        lines.push(v.to_string());
    };
    push(
        ms,
        json!({"type": "header", "run_id": "bench", "flow": "mke3-to-mke4", "tool": "ferry", "inputs": {}, "hosts": hosts, "plan": plan}),
    );
    let mut done: Vec<String> = Vec::new();
    for id in ["mke.checks", "mke.backup-etcd"] {
        let k = key(id, None);
        ms += 2_000;
        push(ms, json!({"type": "started", "key": k, "prepared": null}));
        ms += 9_000;
        push(ms, json!({"type": "applied", "key": k, "undo": {}}));
        done.push(k);
    }
    for h in 0..HOSTS {
        for s in STEPS {
            let k = key(s, Some(h));
            // the failure: the last worker's k0s start
            if h == HOSTS - 1 && s == "mke.node.start-k0s" {
                ms += 700;
                push(ms, json!({"type": "started", "key": k, "prepared": null}));
                ms += 30_000;
                push(
                    ms,
                    json!({"type": "failed", "key": k, "error": "k0s start: exit status 1"}),
                );
                push(
                    ms,
                    json!({"type": "rollback-started", "reason": format!("{k} failed")}),
                );
                for k in done.iter().rev() {
                    ms += 300;
                    push(
                        ms,
                        json!({"type": "undo-started", "key": k, "data": {}, "partial": false}),
                    );
                    ms += 500;
                    push(ms, json!({"type": "undone", "key": k}));
                }
                push(ms, json!({"type": "finished", "outcome": "rolled-back"}));
                return lines;
            }
            ms += 700;
            push(ms, json!({"type": "started", "key": k, "prepared": null}));
            ms += 1_500;
            push(ms, json!({"type": "applied", "key": k, "undo": {}}));
            done.push(k);
        }
    }
    lines
}

fn min_median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2])
}

fn main() {
    let lines = journal();
    let path = Path::new("bench.jsonl");
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut render = Vec::new();
    let mut peer = Vec::new();
    let mut html_len = 0;
    let mut bars = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let values: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        peer.push(t.elapsed());
        assert_eq!(values.len(), lines.len());
        let t = Instant::now();
        let entries = ferry_core::journal::entries(&lines, path).unwrap();
        let timeline = ferry_report::Timeline::of(&entries).unwrap();
        let html = ferry_report::draw::html(&timeline);
        render.push(t.elapsed());
        html_len = html.len();
        bars = timeline.bars.len();
        assert_eq!(timeline.rows.len(), HOSTS + 1);
    }
    let (rmin, rmed) = min_median(render);
    let (pmin, pmed) = min_median(peer);
    println!(
        "ferry report, {HOSTS} hosts: {} journal lines ({} KiB), {bars} bars, HTML {} KiB",
        lines.len(),
        bytes / 1024,
        html_len / 1024
    );
    println!(
        "  render (read + timeline + HTML): min {rmin:.1?}, median {rmed:.1?} (budget {BUDGET:?})"
    );
    println!("  peer (lines parsed as serde_json::Value): min {pmin:.1?}, median {pmed:.1?}");
    println!(
        "  ratio render / peer (medians): {:.1}x",
        rmed.as_secs_f64() / pmed.as_secs_f64().max(1e-9)
    );
    assert!(
        rmed < BUDGET,
        "rendering {HOSTS} hosts took {rmed:?}, over {BUDGET:?}"
    );
}
