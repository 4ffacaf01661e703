//! The HTML report in a real browser: headless Chromium (Debian's `chromium`) opens the page of
//! a failed run, takes a screenshot, and every row's status square, every bar and the failure
//! mark must be drawn where the layout puts them, in their colours (read from the screenshot's
//! pixels). A machine without Chromium fails this test, naming what to install.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_report::draw::{self, Layout};
use ferry_report::timeline::Timeline;

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "CHROMIUM MISSING: no chromium on PATH (nor FERRY_CHROMIUM), so the HTML report cannot be checked in a browser: `apt-get install chromium`, or run `scripts/test` (as root), which does"
    );
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[test]
fn the_html_report_draws_every_row_bar_and_the_failure_in_chromium() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mke-failed.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let t = Timeline::of(&ferry_core::journal::entries(&lines, &path).unwrap()).unwrap();
    let layout = Layout::of(&t);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, draw::html(&t)).unwrap();
    let shot = dir.path().join("shot.png");
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!(
            "--window-size={},{}",
            layout.width,
            layout.height + 200
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "chromium took no screenshot: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let at = |x: u32, y: u32| -> [u8; 3] {
        let i = ((y * info.width + x) as usize) * channels;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    let close = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 6);
    if let Ok(keep) = std::env::var("FERRY_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let mut wrong = Vec::new();
    for (row, g) in t.rows.iter().zip(&layout.gutters) {
        let (x, y) = g.centre();
        let want = rgb(draw::row_colour(&t, row));
        if !close(at(x, y), want) {
            wrong.push(format!(
                "row {row}: square at ({x},{y}) is {:?}, want {want:?}",
                at(x, y)
            ));
        }
    }
    for (b, r) in t.bars.iter().zip(&layout.bars) {
        let (x, y) = r.centre();
        let want = rgb(draw::colour(b.kind, b.outcome));
        // a later bar (or the failure mark) may be drawn over a short one
        if !close(at(x, y), want) && !close(at(x, y), rgb(draw::FAILURE)) {
            wrong.push(format!(
                "bar {} on {}: ({x},{y}) is {:?}, want {want:?}",
                b.step,
                b.row,
                at(x, y)
            ));
        }
    }
    let f = layout.failure.expect("a failure mark in the layout");
    let (x, y) = f.centre();
    if !close(at(x, y), rgb(draw::FAILURE)) {
        wrong.push(format!("failure mark at ({x},{y}) is {:?}", at(x, y)));
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows, {} bars and the failure mark not drawn as laid out:\n{}",
        wrong.len(),
        t.rows.len(),
        t.bars.len(),
        wrong.join("\n")
    );
}
