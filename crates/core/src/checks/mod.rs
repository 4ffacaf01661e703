//! Check reports: what the read-only checks of every flow return (ok / warn / fail with a reason
//! per subject). The checks themselves are pure functions of each flow over facts it gathered;
//! they never mutate anything, and a failed check stops a run before anything changes.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable check id (`mke3-version`, `nodes-ready`, ...).
    pub check: &'static str,
    /// `cluster` or a host / node name.
    pub subject: String,
    pub status: Status,
    pub message: String,
}

/// The report of all checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The heading of the rendered report (`Pre-upgrade checks`); not serialised.
    #[serde(skip)]
    pub title: String,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// An empty report rendered under `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            findings: Vec::new(),
        }
    }

    /// Adds one finding.
    pub fn push(&mut self, check: &'static str, subject: &str, status: Status, message: String) {
        self.findings.push(Finding {
            check,
            subject: subject.to_string(),
            status,
            message,
        });
    }

    /// No finding failed.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.status != Status::Fail)
    }

    pub fn failures(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Fail)
            .collect()
    }

    /// One line per finding, `[OK]`, `[WARNING]` or `[ERROR]` first.
    pub fn render(&self) -> String {
        let title = if self.title.is_empty() {
            "Checks"
        } else {
            &self.title
        };
        let mut s = format!("{title}\n{}\n", "-".repeat(15));
        for f in &self.findings {
            let tag = match f.status {
                Status::Ok => "[OK]     ",
                Status::Warn => "[WARNING]",
                Status::Fail => "[ERROR]  ",
            };
            let _ = writeln!(s, "{tag} {} ({}): {}", f.check, f.subject, f.message);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_fails_when_one_finding_fails_and_renders_every_finding() {
        let mut r = CheckReport::default();
        r.push("a", "cluster", Status::Ok, "fine".into());
        r.push("b", "h1", Status::Warn, "careful".into());
        assert!(r.passed());
        r.push("c", "h2", Status::Fail, "broken".into());
        assert!(!r.passed());
        assert_eq!(r.failures().len(), 1);
        let text = r.render();
        assert!(text.contains("[WARNING] b (h1): careful"), "{text}");
        assert!(text.contains("[ERROR]   c (h2): broken"), "{text}");
    }
}
