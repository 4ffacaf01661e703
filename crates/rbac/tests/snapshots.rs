//! One fixture in, one snapshot out: each export under `tests/fixtures/` is translated, checked
//! against every invariant (valid unique names, exact access per user through the RBAC
//! evaluator, order independence), and its YAML, summary and report are snapshotted.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use ferry_rbac::Export;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn render(file: &str) -> String {
    let text = std::fs::read_to_string(fixtures_dir().join(file)).unwrap();
    let export = Export::from_json(&text).unwrap();
    let (t, yaml) = support::checks::translate_and_check(&export);
    format!(
        "==== manifests ({} objects) ====\n{yaml}==== summary ====\n{}==== report ====\n{}",
        t.manifests.len(),
        t.report.summary_sections(),
        t.report.details()
    )
}

macro_rules! fixtures {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                let name = $file.trim_end_matches(".json");
                insta::with_settings!({ description => format!("fixture {}", $file), omit_expression => true }, {
                    insta::assert_snapshot!(name, render($file));
                });
            }
        )*

        /// Every fixture file has a test above.
        #[test]
        fn every_fixture_is_tested() {
            let listed = [$($file),*];
            let mut found: Vec<String> = std::fs::read_dir(fixtures_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect();
            found.sort();
            assert_eq!(found, listed);
        }
    };
}

fixtures! {
    documented_example => "01-documented-example.json",
    worked_example => "02-worked-example.json",
    team_name_collision => "03-team-name-collision.json",
    inactive_users_and_admins => "04-inactive-users-and-admins.json",
    dangling_references => "05-dangling-references.json",
    service_accounts_and_groups => "06-service-accounts-and-groups.json",
    custom_roles => "07-custom-roles.json",
    namespaces => "08-namespaces.json",
    no_roles => "09-no-roles.json",
    long_and_unicode_names => "10-long-and-unicode-names.json",
    collection_grants => "11-collection-grants.json",
    duplicates => "12-duplicates.json",
    empty => "13-empty.json",
}
