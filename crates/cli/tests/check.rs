//! `ferry check mke3-config`: the binary as a user runs it.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{
    KDD_ERROR, bad_inputs, data, dir_entries, ferry, ferry_run, group, groups, run,
    stray_temp_files,
};
use ferry_cli::cmd::check::{HUMAN_REPORT, SORTED_REPORT};

/// Banner and first box of both reports (conversion rules §9.2, §9.3).
const BANNER: &str = "###################################\n# MKE3->MKE4 Compatibility Checks #\n###################################\n\n\n#################\n# Not supported #\n#################\n\n";

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the check with `--output <dir>/reports` and returns the run and both reports.
fn check_into_dir(file: &Path, extra: &[&str]) -> (common::Run, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let mut args = vec![
        "check",
        "mke3-config",
        path_str(file),
        "--output",
        path_str(&out),
    ];
    args.extend(extra);
    let r = ferry_run(&args);
    r.assert_no_panic();
    assert_eq!(
        dir_entries(&out),
        [SORTED_REPORT, HUMAN_REPORT],
        "{}",
        r.stderr
    );
    let sorted = std::fs::read_to_string(out.join(SORTED_REPORT)).unwrap();
    let human = std::fs::read_to_string(out.join(HUMAN_REPORT)).unwrap();
    (r, sorted, human)
}

#[test]
fn report_file_names() {
    assert_eq!(SORTED_REPORT, "mke3-compatibility.sorted.toml");
    assert_eq!(HUMAN_REPORT, "mke3-compatibility.txt");
}

#[test]
fn kdd_true_writes_both_reports_and_exits_0() {
    let file = data("kdd-true-with-secrets.toml");
    let (r, sorted, human) = check_into_dir(&file, &[]);
    r.assert_code(0);
    assert_eq!(r.stdout, "", "with --output the reports go to files");
    assert!(r.error_lines().is_empty(), "{}", r.stderr);
    assert!(r.stderr.starts_with("wrote "), "{}", r.stderr);
    assert!(
        r.stderr.contains("\nConfiguration file\n---------------\n"),
        "{}",
        r.stderr
    );

    // Sorted TOML report (§9.2).
    assert!(sorted.starts_with(BANNER), "{sorted}");
    assert!(sorted.ends_with('\n'));
    let titles: Vec<String> = groups(&sorted).into_iter().map(|(t, _)| t).collect();
    assert_eq!(titles, ["Not supported", "Supported", "Disabled (skipped)"]);
    assert!(
        sorted.contains("\n#############\n# Supported #\n#############\n\n"),
        "{sorted}"
    );
    assert!(
        sorted.contains(
            "\n######################\n# Disabled (skipped) #\n######################\n\n"
        ),
        "{sorted}"
    );
    let not_supported = group(&sorted, "Not supported");
    assert!(
        not_supported.contains("[cluster_config]\n  swarm_strategy = \"spread\""),
        "{not_supported}"
    );
    assert!(
        not_supported.contains(
            "[auth]\n  [auth.samlProxy]\n    enabled = true\n    proxy_url = \"https://proxy.example.com/\"\n    [auth.samlProxy.credentials]\n      [auth.samlProxy.credentials.basic]\n        password = \"<redacted>\"\n        user = \"mke\"\n"
        ),
        "{not_supported}"
    );
    assert!(
        not_supported.contains("  passphrase = \"<redacted>\"\n"),
        "{not_supported}"
    );
    assert_eq!(
        group(&sorted, "Supported"),
        "[cluster_config]\n  calico_kdd = true\n  kubelet_max_pods = 200\n"
    );
    let skipped = group(&sorted, "Disabled (skipped)");
    assert!(
        skipped.contains("[auth]\n  default_new_user_role = \"restrictedcontrol\"\n"),
        "{skipped}"
    );
    assert!(
        skipped.contains("[cluster_config]\n  profiling_enabled = false"),
        "{skipped}"
    );
    assert!(
        !sorted.contains("verysecret"),
        "secret in report:\n{sorted}"
    );

    // Human-readable report (§9.3).
    assert!(human.starts_with(BANNER), "{human}");
    let titles: Vec<String> = groups(&human).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        titles,
        ["Not supported", "Supported", "Disabled in MKE3 (Skipped)"]
    );
    assert_eq!(
        group(&human, "Supported"),
        "cluster_config\n  Calico KDD\n  Kubelet max pods\n"
    );
    assert!(
        group(&human, "Not supported").contains("  Swarm strategy\n"),
        "{human}"
    );
    assert!(!human.contains("verysecret"));
}

#[test]
fn show_secrets_prints_them_in_clear() {
    let file = data("kdd-true-with-secrets.toml");
    let (r, sorted, _) = check_into_dir(&file, &["--show-secrets"]);
    r.assert_code(0);
    assert!(
        sorted.contains("        password = \"verysecret\"\n"),
        "{sorted}"
    );
    assert!(
        sorted.contains("  passphrase = \"verysecretphrase\"\n"),
        "{sorted}"
    );
    assert!(!sorted.contains("<redacted>"), "{sorted}");
}

#[test]
fn redaction_keeps_non_secret_keys() {
    let file = data("kdd-true-with-secrets.toml");
    let (r, sorted, _) = check_into_dir(&file, &[]);
    r.assert_code(0);
    assert!(
        group(&sorted, "Disabled (skipped)").contains("  no_passphrase = false\n"),
        "{sorted}"
    );
}

#[test]
fn redaction_covers_passwords_inside_table_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registries.toml");
    std::fs::write(
        &file,
        "[cluster_config]\n  calico_kdd = true\n\n[[registries]]\n  host_address = \"msr.example.com\"\n  password = \"hunter2\"\n",
    )
    .unwrap();
    let (r, sorted, _) = check_into_dir(&file, &[]);
    r.assert_code(0);
    assert!(!sorted.contains("hunter2"), "{sorted}");
    assert!(sorted.contains("  password = \"<redacted>\"\n"), "{sorted}");
}

#[test]
fn calico_kdd_true_is_listed_as_supported() {
    let file = data("kdd-true-with-secrets.toml");
    let (r, sorted, human) = check_into_dir(&file, &[]);
    r.assert_code(0);
    assert!(
        group(&sorted, "Supported").contains("  calico_kdd = true\n"),
        "{sorted}"
    );
    assert!(
        !group(&sorted, "Not supported").contains("calico_kdd"),
        "{sorted}"
    );
    assert!(
        group(&human, "Supported").contains("  Calico KDD\n"),
        "{human}"
    );
}

#[test]
fn kdd_false_still_writes_reports_and_exits_3() {
    let file = data("calico-kdd-false-with-secrets.toml");
    let (r, sorted, human) = check_into_dir(&file, &[]);
    r.assert_code(3);
    assert_eq!(r.stdout, "");
    assert_eq!(r.error_lines(), [KDD_ERROR], "{}", r.stderr);
    assert!(
        r.stderr.ends_with(&format!("{KDD_ERROR}\n")),
        "{}",
        r.stderr
    );
    assert!(sorted.starts_with(BANNER));
    assert!(
        group(&sorted, "Not supported").contains("[cluster_config]\n  calico_kdd = false\n"),
        "{sorted}"
    );
    assert!(group(&sorted, "Not supported").contains("  passphrase = \"<redacted>\"\n"));
    assert_eq!(
        group(&sorted, "Supported"),
        "[cluster_config]\n  kubelet_max_pods = 200\n"
    );
    assert!(!sorted.contains("verysecret"));
    assert!(
        group(&human, "Not supported").contains("cluster_config\n  Calico KDD\n"),
        "{human}"
    );
}

#[test]
fn other_blocking_conditions_exit_3() {
    for (name, error) in [
        ("calico-ebpf.toml", common::EBPF_ERROR),
        ("kube-proxy-ipvs.toml", common::IPVS_ERROR),
    ] {
        let (r, sorted, _) = check_into_dir(&data(name), &[]);
        r.assert_code(3);
        assert_eq!(r.error_lines(), [error], "{name}: {}", r.stderr);
        assert!(sorted.starts_with(BANNER), "{name}");
    }
}

#[test]
fn real_sample_without_calico_kdd_is_blocked() {
    // The check follows §2 strictly: a missing calico_kdd blocks (init only warns).
    let (r, sorted, human) = check_into_dir(&data("ucp-3.x-config.sample.toml"), &[]);
    r.assert_code(3);
    assert_eq!(r.error_lines(), [KDD_ERROR], "{}", r.stderr);
    let not_supported = group(&sorted, "Not supported");
    assert!(
        not_supported.contains("  swarm_strategy = \"spread\"\n"),
        "{not_supported}"
    );
    assert!(
        not_supported.contains("[tracking_configuration]\n  disable_usageinfo = true\n"),
        "{not_supported}"
    );
    assert!(
        group(&sorted, "Supported").contains("  calico_mtu = \"1480\"\n"),
        "{sorted}"
    );
    assert!(
        group(&sorted, "Disabled (skipped)").contains("  cni_installer_url = \"\"\n"),
        "{sorted}"
    );
    assert!(human.starts_with(BANNER));
}

#[test]
fn without_output_the_human_report_goes_to_stdout() {
    let file = data("kdd-true-with-secrets.toml");
    let (_, _, human) = check_into_dir(&file, &[]);
    let cwd = tempfile::tempdir().unwrap();
    let r = run(ferry()
        .current_dir(cwd.path())
        .args(["check", "mke3-config", path_str(&file)]));
    r.assert_code(0);
    assert_eq!(r.stdout, human);
    assert!(
        r.stderr
            .starts_with("Configuration file\n---------------\n"),
        "{}",
        r.stderr
    );
    assert!(dir_entries(cwd.path()).is_empty(), "nothing written");
}

#[test]
fn without_output_kdd_false_exits_3_with_the_report_on_stdout() {
    let r = ferry_run([
        "check",
        "mke3-config",
        path_str(&data("calico-kdd-false.toml")),
    ]);
    r.assert_code(3);
    assert!(r.stdout.starts_with(BANNER), "{}", r.stdout);
    assert_eq!(r.error_lines(), [KDD_ERROR]);
}

#[test]
fn reports_replace_previous_reports_without_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SORTED_REPORT), "stale\n".repeat(5000)).unwrap();
    std::fs::write(dir.path().join(HUMAN_REPORT), "stale\n".repeat(5000)).unwrap();
    let r = ferry_run([
        "check",
        "mke3-config",
        path_str(&data("kdd-true-with-secrets.toml")),
        "--output",
        path_str(dir.path()),
    ]);
    r.assert_code(0);
    for name in [SORTED_REPORT, HUMAN_REPORT] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text.starts_with(BANNER), "{name}");
        assert!(!text.contains("stale"), "{name}");
    }
    assert!(stray_temp_files(dir.path()).is_empty());
    assert_eq!(dir_entries(dir.path()), [SORTED_REPORT, HUMAN_REPORT]);
}

#[test]
fn bad_input_files_are_usage_errors_and_write_nothing() {
    let inputs = tempfile::tempdir().unwrap();
    for case in bad_inputs(inputs.path()) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        let r = ferry_run([
            "check",
            "mke3-config",
            path_str(&case.path),
            "--output",
            path_str(&out),
        ]);
        r.assert_code(2);
        r.assert_only_error(&format!("Error: {}{}", case.path.display(), case.problem));
        assert_eq!(r.stdout, "", "{}", case.name);
        assert!(!out.exists(), "{}: output directory created", case.name);
    }
}

#[test]
fn output_that_is_a_file_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("not-a-dir");
    std::fs::write(&out, "keep me\n").unwrap();
    let r = ferry_run([
        "check",
        "mke3-config",
        path_str(&data("kdd-true-with-secrets.toml")),
        "--output",
        path_str(&out),
    ]);
    r.assert_code(1);
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].starts_with(&format!("Error: cannot write {}: ", out.display())),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
    assert_eq!(dir_entries(dir.path()), ["not-a-dir"]);
}

#[test]
fn usage_errors_exit_2() {
    ferry()
        .args(["check", "mke3-config"])
        .assert()
        .code(2)
        .stdout("");
    ferry()
        .args(["check", "mke3-config", "x.toml", "--bogus"])
        .assert()
        .code(2);
    ferry().args(["check", "nothing"]).assert().code(2);
    ferry()
        .args(["check", "mke3-config", "--help"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("--show-secrets"));
}
