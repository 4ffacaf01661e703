//! The two compatibility reports and the Upgrade Summary blocks, against the documented samples.
#![allow(clippy::unwrap_used)]

use ferry_config_convert::{self as fc, Options};

const EXPORT: &str = include_str!("fixtures/mke38-export.compat-check-sample.toml");

fn analyze(text: &str, redact: bool) -> fc::Conversion {
    let options = Options {
        redact_reports: redact,
        ..Options::default()
    };
    fc::analyze(text, &options).unwrap()
}

/// Splits a sorted report into its groups: title -> body.
fn groups(report: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let lines: Vec<&str> = report.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.starts_with("# ") && l.ends_with(" #") && i > 0 && lines[i - 1].starts_with("##") {
            out.push((
                l.trim_matches(|c| c == '#' || c == ' ').to_string(),
                String::new(),
            ));
            i += 2;
            continue;
        }
        if let Some(last) = out.last_mut() {
            last.1.push_str(l);
            last.1.push('\n');
        }
        i += 1;
    }
    out
}

fn merge(a: &mut toml::Table, b: toml::Table) {
    for (k, v) in b {
        match (a.get_mut(&k), v) {
            (Some(toml::Value::Table(x)), toml::Value::Table(y)) => merge(x, y),
            (_, v) => {
                a.insert(k, v);
            }
        }
    }
}

/// Every group of the sorted report is valid TOML, and the groups together are the input:
/// regrouping loses nothing and invents nothing.
#[test]
fn sorted_report_regroups_the_whole_input() {
    let report = fc::report::sorted_toml(&analyze(EXPORT, false));
    assert!(report.starts_with("###################################\n# MKE3->MKE4 Compatibility Checks #\n###################################\n\n\n#################\n# Not supported #\n#################\n\n"));
    let gs = groups(&report);
    let titles: Vec<&str> = gs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        [
            "MKE3->MKE4 Compatibility Checks",
            "Not supported",
            "Supported",
            "Disabled (skipped)"
        ]
    );
    let mut merged = toml::Table::new();
    for (_, body) in &gs[1..] {
        merge(
            &mut merged,
            toml::from_str(body).unwrap_or_else(|e| panic!("{e}\n{body}")),
        );
    }
    let input: toml::Table = toml::from_str(EXPORT).unwrap();
    assert_eq!(merged, input);
}

/// The grouping agrees with Mirantis' documented run wherever ferry's rule (section 1) does not
/// deliberately differ; the differences are listed here so a change to either is noticed.
#[test]
fn sorted_report_matches_the_documented_run_except_the_documented_differences() {
    let ours = groups(&fc::report::sorted_toml(&analyze(EXPORT, false)));
    let theirs = groups(include_str!("data/mkectl-compat-check.sorted-mke3.toml"));
    let keys = |body: &str| -> std::collections::BTreeSet<String> {
        let t: toml::Table = toml::from_str(body).unwrap();
        let mut out = Vec::new();
        leaves(&t, "", &mut out);
        out.into_iter().collect()
    };
    let moved: Vec<String> = ["Not supported", "Supported", "Disabled (skipped)"]
        .iter()
        .flat_map(|title| {
            let a = keys(&ours.iter().find(|(t, _)| t == title).unwrap().1);
            let b = keys(&theirs.iter().find(|(t, _)| t == title).unwrap().1);
            b.difference(&a)
                .map(|k| format!("{title}: {k}"))
                .collect::<Vec<_>>()
        })
        .collect();
    insta::assert_snapshot!(moved.join("\n"));
}

fn leaves(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) if !inner.is_empty() => leaves(inner, &p, out),
            _ => out.push(p),
        }
    }
}

#[test]
fn reports_of_the_documented_export() {
    let c = analyze(EXPORT, true);
    insta::assert_snapshot!("sorted", fc::report::sorted_toml(&c));
    insta::assert_snapshot!("human", fc::report::human_readable(&c));
}

#[test]
fn secrets_are_redacted_unless_asked() {
    let redacted = fc::report::sorted_toml(&analyze(EXPORT, true));
    assert!(redacted.contains("passphrase = \"<redacted>\""));
    assert!(redacted.contains("password = \"<redacted>\""));
    assert!(!redacted.contains("verysecret"));
    let clear = fc::report::sorted_toml(&analyze(EXPORT, false));
    assert!(clear.contains("passphrase = \"verysecretphrase\""));
}

#[test]
fn human_report_has_the_documented_boxes() {
    let text = fc::report::human_readable(&analyze(EXPORT, true));
    for b in [
        "#################\n# Not supported #\n#################\n",
        "#############\n# Supported #\n#############\n",
        "##############################\n# Disabled in MKE3 (Skipped) #\n##############################\n",
    ] {
        assert!(text.contains(b), "missing box {b}");
    }
    // Every title of the documented run that names a key ferry knows appears in our report too.
    let documented = include_str!("data/mkectl-compat-check.human-readable.txt");
    for title in [
        "Default new user role",
        "Per user limit",
        "Kube Proxy Mode",
        "Node Port Range",
        "Calico KDD",
        "Scheduled Backups",
        "Swarm port",
    ] {
        assert!(documented.contains(title));
        assert!(text.contains(title), "{title}");
    }
}

#[test]
fn metallb_block_is_the_documented_one() {
    let text = "[cluster_config]\n  calico_kdd = true\n".to_string()
        + include_str!("fixtures/mke3-metallb-config.toml");
    let c = fc::convert(&text, &Options::default()).unwrap();
    assert_eq!(
        fc::report::metallb_block(&c),
        include_str!("data/mkectl-upgrade-summary.metallb-pools.txt")
    );
}

#[test]
fn configuration_section_when_everything_converts() {
    let c = fc::convert(
        "[cluster_config]\n  calico_kdd = true\n  kubelet_max_pods = 200\n",
        &Options::default(),
    )
    .unwrap();
    assert_eq!(
        fc::report::configuration_summary(&c),
        "Configuration file\n---------------\nAll MKE 3 TOML settings were successfully converted into MKE 4 YAML settings.\n"
    );
}
