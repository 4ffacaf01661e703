//! The timeline drawn: an SVG (for tickets and docs) and a self-contained HTML page around it
//! (no script, no fetch: the SVG inline, its styles inline, a hover title on every bar).
//!
//! The picture: the run's title and outcome at the top, the phases as shaded bands with their
//! names, the time axis in elapsed minutes, one row per host (the cluster's first), each apply a
//! bar coloured by its outcome and each undo a bar of its own colour, the failure that started
//! the rollback as a red line with a mark on its row, the rollback's start, interrupts and
//! resumes as dashed lines, and at the right of each row the steps the run never reached.
//! [`Layout`] places everything; the drawing and the tests read the same numbers.

use std::fmt::Write as _;

use crate::timeline::{BarKind, Outcome, Timeline};

/// The whole width of the picture, in pixels.
pub const WIDTH: u32 = 1280;
/// The width of the row labels.
pub const LABELS: u32 = 190;
/// The column of the steps not run, at the right.
pub const NOT_RUN: u32 = 110;
/// The height of a row.
pub const ROW: u32 = 16;

/// The fill of a bar of `kind` that ended with `outcome` (also in the legend).
pub fn colour(kind: BarKind, outcome: Outcome) -> &'static str {
    match (kind, outcome) {
        (BarKind::Apply, Outcome::Done) => "#2e9e44",
        (BarKind::Apply, Outcome::Failed) => "#e0262b",
        (BarKind::Apply, Outcome::Undone) => "#8fa3ad",
        (BarKind::Undo, Outcome::Done) => "#f28c00",
        (_, Outcome::UndoFailed) => "#8a1fb0",
        (_, Outcome::Interrupted) => "#f2cd00",
        (_, Outcome::InFlight) => "#1b76e0",
        // an undo bar is never "failed" or "undone"
        (BarKind::Undo, _) => "#f28c00",
    }
}

/// The colour of the failure line and mark.
pub const FAILURE: &str = "#c80000";

/// The colour of a row's square in the label gutter: its worst news (failed, running, cut off,
/// rolled back, done, not started).
pub fn row_colour(t: &Timeline, row: &str) -> &'static str {
    let mine: Vec<_> = t.bars.iter().filter(|b| b.row == row).collect();
    let any = |f: &dyn Fn(&crate::timeline::Bar) -> bool| mine.iter().any(|b| f(b));
    if any(&|b| matches!(b.outcome, Outcome::Failed | Outcome::UndoFailed)) {
        colour(BarKind::Apply, Outcome::Failed)
    } else if any(&|b| b.outcome == Outcome::InFlight) {
        colour(BarKind::Apply, Outcome::InFlight)
    } else if any(&|b| b.outcome == Outcome::Interrupted) {
        colour(BarKind::Apply, Outcome::Interrupted)
    } else if any(&|b| b.kind == BarKind::Undo) {
        colour(BarKind::Undo, Outcome::Done)
    } else if any(&|b| b.outcome == Outcome::Done) {
        colour(BarKind::Apply, Outcome::Done)
    } else {
        NOT_STARTED
    }
}

/// A row none of whose steps started.
pub const NOT_STARTED: &str = "#b0bec5";

/// A rectangle in the picture's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// Its centre.
    pub fn centre(&self) -> (u32, u32) {
        (self.x + self.w / 2, self.y + self.h / 2)
    }
}

/// Where everything goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// The top of the first row.
    pub rows_top: u32,
    /// Each row's band (the whole width).
    pub rows: Vec<Rect>,
    /// Each row's square in the label gutter, coloured by [`row_colour`].
    pub gutters: Vec<Rect>,
    /// Each bar of the timeline, in its order.
    pub bars: Vec<Rect>,
    /// The failure's mark on its row, when there is one.
    pub failure: Option<Rect>,
    /// The plot's left and right edges, and the milliseconds they stand for.
    pub plot: (u32, u32),
    pub span_ms: u64,
}

impl Layout {
    pub fn of(t: &Timeline) -> Layout {
        let rows_top = 78;
        let plot = (LABELS + 8, WIDTH - NOT_RUN - 12);
        let span_ms = t.end_ms.max(1000);
        let x = |ms: u64| x_at(plot, span_ms, ms);
        let row_y = |name: &str| -> u32 {
            let i = t.rows.iter().position(|r| r == name).unwrap_or(0);
            rows_top + u32::try_from(i).unwrap_or(0) * ROW
        };
        let rows = (0..t.rows.len())
            .map(|i| Rect {
                x: 0,
                y: rows_top + u32::try_from(i).unwrap_or(0) * ROW,
                w: WIDTH,
                h: ROW,
            })
            .collect();
        let gutters = (0..t.rows.len())
            .map(|i| Rect {
                x: LABELS - 10,
                y: rows_top + u32::try_from(i).unwrap_or(0) * ROW + 3,
                w: 8,
                h: ROW - 6,
            })
            .collect();
        let bars = t
            .bars
            .iter()
            .map(|b| {
                let x0 = x(b.start_ms);
                let x1 = x(b.end_ms.unwrap_or(t.end_ms));
                // undo bars sit in the row's lower half, applies in the upper: a step undone at
                // once shows both
                let (dy, h) = match b.kind {
                    BarKind::Apply => (2, ROW / 2 - 1),
                    BarKind::Undo => (ROW / 2 + 1, ROW / 2 - 3),
                };
                Rect {
                    x: x0,
                    y: row_y(&b.row) + dy,
                    w: (x1 - x0).max(3),
                    h,
                }
            })
            .collect();
        let failure = t.failure().map(|m| {
            let cx = x(m.at_ms);
            Rect {
                x: cx.saturating_sub(5),
                y: row_y(m.row.as_deref().unwrap_or("")) + 2,
                w: 11,
                h: ROW - 4,
            }
        });
        let height = rows_top + u32::try_from(t.rows.len()).unwrap_or(0) * ROW + 70;
        Layout {
            width: WIDTH,
            height,
            rows_top,
            rows,
            gutters,
            bars,
            failure,
            plot,
            span_ms,
        }
    }

    fn x(&self, ms: u64) -> u32 {
        x_at(self.plot, self.span_ms, ms)
    }
}

/// The x of `ms` on a plot from `plot.0` to `plot.1` standing for `span_ms`.
fn x_at(plot: (u32, u32), span_ms: u64, ms: u64) -> u32 {
    let w = u64::from(plot.1 - plot.0);
    plot.0 + u32::try_from(ms.min(span_ms) * w / span_ms).unwrap_or(0)
}

/// Text for XML: `&`, `<`, `>`, `"` escaped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c if c.is_control() && c != '\n' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut o: String = s.chars().take(n.saturating_sub(1)).collect();
        o.push('…');
        o
    }
}

/// Elapsed time as `12m 03s` (or `4.2s` under a minute).
pub fn elapsed(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of milliseconds since the epoch.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The axis's tick step: a round number of minutes (or seconds) giving 5–12 ticks.
fn tick_ms(span: u64) -> u64 {
    const STEPS: [u64; 16] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 12)
        .unwrap_or(86_400_000)
}

/// Elapsed minutes and seconds, `m:ss`.
fn minutes(ms: u64) -> String {
    format!("{}:{:02}", ms / 60_000, (ms / 1000) % 60)
}

/// The SVG picture of a timeline.
pub fn svg(t: &Timeline) -> String {
    let l = Layout::of(t);
    let mut s = String::with_capacity(4096 + t.bars.len() * 300);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">"#,
        w = l.width,
        h = l.height
    );
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
        l.width, l.height
    );
    // title
    let _ = write!(
        s,
        r#"<text x="8" y="18" font-size="14" font-weight="bold">{} — run {} — {} — {}</text>"#,
        esc(&t.flow),
        esc(&t.run_id),
        esc(&t.outcome),
        elapsed(t.end_ms)
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="18" text-anchor="end" fill="#555555">started {}</text>"##,
        l.width - 8,
        utc(t.started_unix_ms)
    );
    let bottom = l.rows_top + u32::try_from(t.rows.len()).unwrap_or(0) * ROW;
    // row stripes, labels and the rows' squares
    for (i, ((r, g), name)) in l.rows.iter().zip(&l.gutters).zip(&t.rows).enumerate() {
        let fill = if i % 2 == 0 { "#f4f6f8" } else { "#ffffff" };
        let _ = write!(
            s,
            r#"<rect class="row" x="0" y="{}" width="{}" height="{}" fill="{fill}" shape-rendering="crispEdges"/>"#,
            r.y, r.w, r.h
        );
        let _ = write!(
            s,
            r#"<text x="8" y="{}"><title>{}</title>{}</text>"#,
            r.y + ROW - 4,
            esc(name),
            esc(&cut(name, 28))
        );
        let _ = write!(
            s,
            r#"<rect class="row-status" x="{}" y="{}" width="{}" height="{}" fill="{}" shape-rendering="crispEdges"/>"#,
            g.x,
            g.y,
            g.w,
            g.h,
            row_colour(t, name)
        );
    }
    // phase bands, their names on two alternating lines above the rows
    for (i, b) in t.phases.iter().enumerate() {
        let x0 = l.x(b.start_ms);
        let x1 = l.x(b.end_ms).max(x0 + 1);
        let fill = if b.rollback {
            "#f28c00"
        } else if i % 2 == 0 {
            "#1b76e0"
        } else {
            "#2e9e44"
        };
        let _ = write!(
            s,
            r#"<rect class="phase" x="{x0}" y="{}" width="{}" height="{}" fill="{fill}" fill-opacity="0.07" stroke="{fill}" stroke-opacity="0.35" shape-rendering="crispEdges"><title>{}: {} – {}</title></rect>"#,
            l.rows_top - 22,
            x1 - x0,
            bottom - (l.rows_top - 22),
            esc(&b.name),
            elapsed(b.start_ms),
            elapsed(b.end_ms)
        );
        let width_chars = usize::try_from((x1 - x0) / 6).unwrap_or(0).max(4);
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" fill="#333333" font-size="10"><title>{}</title>{}</text>"##,
            x0 + 2,
            l.rows_top - 26 - if i % 2 == 0 { 0 } else { 11 },
            esc(&b.name),
            esc(&cut(&b.name, width_chars.max(12)))
        );
    }
    // the time axis, in elapsed minutes
    let step = tick_ms(l.span_ms);
    let mut ms = 0;
    while ms <= l.span_ms {
        let x = l.x(ms);
        let _ = write!(
            s,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{bottom}" stroke="#cfd8dc" stroke-width="1"/><text x="{x}" y="{}" text-anchor="middle" fill="#555555" font-size="10">{}</text>"##,
            l.rows_top - 2,
            bottom + 13,
            minutes(ms)
        );
        ms += step;
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" fill="#555555" font-size="10">elapsed (min:s)</text>"##,
        8,
        bottom + 13
    );
    // the bars
    for (b, r) in t.bars.iter().zip(&l.bars) {
        let fill = colour(b.kind, b.outcome);
        let what = match b.kind {
            BarKind::Apply => "apply",
            BarKind::Undo => "undo",
        };
        let end = b
            .end_ms
            .map(elapsed)
            .unwrap_or_else(|| "still running".into());
        let mut title = format!(
            "{} on {} ({what}, {:?})\n{}\nfrom {} to {}",
            b.step,
            b.row,
            b.outcome,
            b.phase,
            elapsed(b.start_ms),
            end
        );
        if let Some(e) = &b.error {
            let _ = write!(title, "\n{e}");
        }
        let _ = write!(
            s,
            r#"<rect class="bar {what} {}" x="{}" y="{}" width="{}" height="{}" fill="{fill}" shape-rendering="crispEdges"><title>{}</title></rect>"#,
            outcome_class(b.outcome),
            r.x,
            r.y,
            r.w,
            r.h,
            esc(&title)
        );
    }
    // marks: the rollback, interrupts and resumes as dashed lines; the failure in red
    for m in &t.marks {
        let x = l.x(m.at_ms);
        let colour = match m.kind.as_str() {
            "rollback" => "#f28c00",
            "resume" => "#1b76e0",
            "interrupt" => "#222222",
            _ => continue,
        };
        let _ = write!(
            s,
            r#"<line class="mark {}" x1="{x}" y1="{}" x2="{x}" y2="{bottom}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"><title>{}: {}</title></line>"#,
            esc(&m.kind),
            l.rows_top - 22,
            esc(&m.kind),
            esc(&m.text)
        );
    }
    if let (Some(m), Some(r)) = (t.failure(), l.failure) {
        let x = l.x(m.at_ms);
        let title = format!(
            "failure of {} on {}: {}",
            m.step.as_deref().unwrap_or(""),
            m.row.as_deref().unwrap_or(""),
            m.text
        );
        let _ = write!(
            s,
            r#"<g id="failure-mark"><title>{t}</title><line x1="{x}" y1="{}" x2="{x}" y2="{bottom}" stroke="{FAILURE}" stroke-width="2"/><rect x="{}" y="{}" width="{}" height="{}" fill="{FAILURE}" shape-rendering="crispEdges"/><text x="{}" y="{}" fill="{FAILURE}" font-weight="bold">failed here</text></g>"#,
            l.rows_top - 22,
            r.x,
            r.y,
            r.w,
            r.h,
            x + 8,
            l.rows_top - 4,
            t = esc(&title)
        );
    }
    // the steps never reached, per row
    let mut not_run: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for k in &t.skipped {
        not_run.entry(k.row.as_str()).or_default().push(&k.step);
    }
    let word = if t.outcome == "in-progress" {
        "left"
    } else {
        "not run"
    };
    for (i, row) in t.rows.iter().enumerate() {
        let Some(steps) = not_run.get(row.as_str()) else {
            continue;
        };
        let y = l.rows_top + u32::try_from(i).unwrap_or(0) * ROW;
        let _ = write!(
            s,
            r##"<g class="skipped"><title>{word} on {}: {}</title><rect x="{}" y="{}" width="14" height="{}" fill="none" stroke="#8fa3ad" stroke-dasharray="2 2"/><text x="{}" y="{}" fill="#555555">{} {word}</text></g>"##,
            esc(row),
            esc(&steps.join(", ")),
            WIDTH - NOT_RUN,
            y + 3,
            ROW - 6,
            WIDTH - NOT_RUN + 18,
            y + ROW - 4,
            steps.len()
        );
    }
    // the legend
    let mut x = 8;
    let y = bottom + 34;
    for (label, fill) in [
        ("done", colour(BarKind::Apply, Outcome::Done)),
        ("failed", colour(BarKind::Apply, Outcome::Failed)),
        ("undone", colour(BarKind::Apply, Outcome::Undone)),
        ("undo", colour(BarKind::Undo, Outcome::Done)),
        ("undo failed", colour(BarKind::Undo, Outcome::UndoFailed)),
        ("interrupted", colour(BarKind::Apply, Outcome::Interrupted)),
        ("running", colour(BarKind::Apply, Outcome::InFlight)),
    ] {
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="10" fill="{fill}"/><text x="{}" y="{}">{label}</text>"#,
            y - 9,
            x + 16,
            y
        );
        x += 30 + u32::try_from(label.len()).unwrap_or(0) * 7;
    }
    let _ = write!(
        s,
        r##"<line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="{FAILURE}" stroke-width="2"/><text x="{}" y="{y}">failure</text><rect x="{}" y="{}" width="12" height="10" fill="none" stroke="#8fa3ad" stroke-dasharray="2 2"/><text x="{}" y="{y}">{word}</text>"##,
        y - 5,
        x + 14,
        y - 5,
        x + 18,
        x + 80,
        y - 9,
        x + 96
    );
    s.push_str("</svg>\n");
    s
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Done => "done",
        Outcome::Failed => "failed",
        Outcome::Undone => "undone",
        Outcome::UndoFailed => "undo-failed",
        Outcome::Interrupted => "interrupted",
        Outcome::InFlight => "in-flight",
    }
}

/// The HTML page: the SVG inline, then the run's facts and its failures in words.
pub fn html(t: &Timeline) -> String {
    let mut s = String::with_capacity(8192 + t.bars.len() * 400);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ferry report: {} {}</title>\n<style>body{{margin:0;font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;font-size:13px;color:#222}}#chart{{margin:0;padding:0;line-height:0}}section{{padding:8px 12px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}}th{{background:#f4f6f8}}.bar:hover{{stroke:#000;stroke-width:1}}</style></head><body>\n<div id=\"chart\">",
        esc(&t.flow),
        esc(&t.run_id)
    );
    s.push_str(&svg(t));
    s.push_str("</div>\n<section>\n");
    let _ = writeln!(
        s,
        "<p><b>{}</b> run <code>{}</code> ({}) started {}, {} long: <b>{}</b>.</p>",
        esc(&t.flow),
        esc(&t.run_id),
        esc(&t.tool),
        utc(t.started_unix_ms),
        elapsed(t.end_ms),
        esc(&t.outcome)
    );
    let counts = |k: BarKind, o: Outcome| {
        t.bars
            .iter()
            .filter(|b| b.kind == k && b.outcome == o)
            .count()
    };
    let _ = writeln!(
        s,
        "<p>{} hosts and rows; {} steps applied, {} failed, {} undone by the rollback, {} undo failures, {} cut off, {} running; {} not reached.</p>",
        t.rows.len(),
        counts(BarKind::Apply, Outcome::Done) + counts(BarKind::Apply, Outcome::Undone),
        counts(BarKind::Apply, Outcome::Failed),
        counts(BarKind::Undo, Outcome::Done),
        counts(BarKind::Undo, Outcome::UndoFailed),
        t.bars
            .iter()
            .filter(|b| b.outcome == Outcome::Interrupted)
            .count(),
        t.bars
            .iter()
            .filter(|b| b.outcome == Outcome::InFlight)
            .count(),
        t.skipped.len()
    );
    let errors: Vec<_> = t.bars.iter().filter(|b| b.error.is_some()).collect();
    if !errors.is_empty() {
        s.push_str("<table><tr><th>at</th><th>step</th><th>on</th><th>error</th></tr>\n");
        for b in errors {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                elapsed(b.end_ms.unwrap_or(b.start_ms)),
                esc(&b.step),
                esc(&b.row),
                esc(b.error.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</section>\n</body></html>\n");
    s
}
