//! Fuzz target: arbitrary bytes, split lossily into lines, into
//! `ferry_core::journal::Replay::parse` (reading `journal.jsonl` back after a crash).
//!
//! `Replay::parse` documents that it never panics, whatever the lines hold: errors are
//! expected, a panic is a bug. On success the replay's state, its undo list and its plan
//! (steps and dry-run rendering) must be computable.
#![no_main]

use ferry_core::journal::Replay;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if let Ok(replay) = Replay::parse(&lines, std::path::Path::new("fuzz/journal.jsonl")) {
        let _ = replay.is_finished();
        let _ = replay.to_undo();
        let _ = replay.plan.steps();
        let _ = replay.plan.render();
    }
});
