//! `ferry init`: the binary as a user runs it.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{
    EBPF_ERROR, IPVS_ERROR, KDD_ERROR, REAL_SAMPLES, bad_inputs, data, dir_entries, ferry,
    ferry_run, run, stray_temp_files,
};
use predicates::prelude::*;
use serde_yaml::Value;

/// Parses `text` as YAML and checks it is an MKE 4k configuration.
fn mke_config(text: &str) -> Value {
    let v: Value =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n--- text\n{text}"));
    assert_eq!(v["apiVersion"], "mke.mirantis.com/v1alpha1", "{text}");
    assert_eq!(v["kind"], "MkeConfig", "{text}");
    v
}

/// The `extraConfig` of the network provider named `name`.
fn provider<'a>(config: &'a Value, name: &str) -> &'a Value {
    config["spec"]["network"]["providers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == name)
        .unwrap_or_else(|| panic!("no {name} provider"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Defaults

#[test]
fn without_a_file_prints_the_default_config_for_v4_1_5() {
    let r = ferry_run(["init"]);
    r.assert_code(0);
    assert!(
        r.stdout
            .starts_with("apiVersion: mke.mirantis.com/v1alpha1\nkind: MkeConfig\n"),
        "{}",
        r.stdout
    );
    let v = mke_config(&r.stdout);
    assert_eq!(v["spec"]["version"], "v4.1.5");
    assert_eq!(
        v["spec"]["registries"]["imageRegistry"]["url"],
        "registry.mirantis.com/mke"
    );
    assert_eq!(
        v["spec"]["registries"]["chartRegistry"]["url"],
        "oci://registry.mirantis.com/mke"
    );
    assert_eq!(v["spec"]["airgap"]["enabled"], false);
    assert_eq!(r.stderr, "", "no report without an input file");
}

#[test]
fn mke4_version_option_sets_the_version() {
    let r = ferry_run(["init", "--mke4-version", "v4.1.0"]);
    r.assert_code(0);
    let v = mke_config(&r.stdout);
    assert_eq!(v["spec"]["version"], "v4.1.0");
    assert!(r.stdout.contains("\n  version: v4.1.0\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("v4.1.5"), "{}", r.stdout);
}

#[test]
fn unknown_mke4_version_is_a_usage_error() {
    let r = ferry_run(["init", "--mke4-version", "v9.9.9"]);
    r.assert_code(2);
    assert_eq!(r.stdout, "");
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].starts_with("Error: unsupported target MKE 4k version \"v9.9.9\""),
        "{}",
        r.stderr
    );
}

#[test]
fn default_config_in_json_holds_the_yaml() {
    let r = ferry_run(["init", "-o", "json"]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let yaml = v["yaml"].as_str().unwrap();
    assert_eq!(mke_config(yaml)["spec"]["version"], "v4.1.5");
    assert_eq!(yaml, ferry_run(["init"]).stdout);
}

// ---------------------------------------------------------------------------------------------
// Real samples

#[test]
fn every_real_sample_converts_to_yaml_with_a_report() {
    for name in REAL_SAMPLES {
        let file = data(name);
        let r = ferry_run(["init", "--mke3-config", path_str(&file)]);
        r.assert_code(0);
        let v = mke_config(&r.stdout);
        assert_eq!(v["spec"]["version"], "v4.1.5", "{name}");
        assert!(
            r.stderr
                .starts_with("Configuration file\n---------------\n"),
            "{name}: {}",
            r.stderr
        );
        // None of the samples has calico_kdd (exports older than MKE 3.7): init warns, the
        // conversion still succeeds.
        assert!(
            r.stderr.contains("\nWarnings\n---------------\n"),
            "{name}: {}",
            r.stderr
        );
        assert!(
            r.stderr.lines().any(|l| l.starts_with(
                "cluster_config.calico_kdd: the file has no calico_kdd key"
            )),
            "{name}: {}",
            r.stderr
        );
        assert!(r.error_lines().is_empty(), "{name}: {}", r.stderr);
    }
}

#[test]
fn ucp_sample_converted_values_and_report() {
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("ucp-3.x-config.sample.toml")),
    ]);
    r.assert_code(0);
    let v = mke_config(&r.stdout);
    let spec = &v["spec"];

    // calico_mtu = "1480" lands in the calico chart values (a YAML document inside the YAML).
    let calico = provider(&v, "calico");
    assert_eq!(calico["enabled"], true);
    assert_eq!(calico["extraConfig"]["cidrV4"], "192.168.0.0/16");
    let values: Value =
        serde_yaml::from_str(calico["extraConfig"]["values.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(values["installation"]["calicoNetwork"]["mtu"], 1480);

    // disable_tracking = true
    assert_eq!(spec["tracking"]["enabled"], false);
    assert_eq!(spec["network"]["nodePortRange"], "32768-35535");
    assert_eq!(spec["network"]["kubeProxy"]["mode"], "iptables");
    assert_eq!(spec["kubelet"]["managerKubeReserved"]["cpu"], "250m");
    assert_eq!(spec["kubelet"]["managerKubeReserved"]["memory"], "2Gi");
    assert_eq!(
        spec["kubelet"]["workerKubeReserved"]["ephemeral-storage"],
        "500Mi"
    );

    assert!(r.stderr.starts_with(
        "Configuration file\n---------------\nSome MKE 3 TOML settings could not be converted into MKE 4 YAML settings: 9 not supported. See the compatibility check report.\n"
    ), "{}", r.stderr);
    for line in [
        "not supported: cluster_config.swarm_strategy (line 43): Swarm feature; MKE 4k has no Swarm",
        "not supported: cluster_config.kube_apiserver_port (line 41): set by k0s; not configurable in MKE 4k",
        "not supported: tracking_configuration.disable_usageinfo (line 21): no MKE 4k setting",
    ] {
        assert!(
            r.stderr.lines().any(|l| l == line),
            "missing {line:?} in\n{}",
            r.stderr
        );
    }
}

#[test]
fn metallb_sample_enables_metallb_and_lists_the_pools() {
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("mke3-metallb-config.toml")),
    ]);
    r.assert_code(0);
    let v = mke_config(&r.stdout);
    assert_eq!(v["spec"]["metallb"]["enabled"], true);
    // Conversion rules §10.4, verbatim.
    assert!(
        r.stderr.contains(
            "MetalLB IP address pools\n---------------\nname: example1\nipaddress: [192.168.10.0/24 192.168.1.0/24]\n\nname: example2\nipaddress: [192.155.10.0/24]\n\nPlease make sure that you create these pools after MKE4 installation is complete.\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn kubelet_profiles_sample_becomes_custom_profiles() {
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("mke3-custom-kubelet-flags-profiles.toml")),
    ]);
    r.assert_code(0);
    let v = mke_config(&r.stdout);
    let profiles = v["spec"]["kubelet"]["customProfiles"]
        .as_sequence()
        .unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0]["name"], "high");
    assert_eq!(profiles[0]["values"]["kubeReserved"]["cpu"], "200m");
    assert_eq!(profiles[0]["values"]["kubeReserved"]["memory"], "512Mi");
    assert_eq!(profiles[0]["values"]["kubeReservedCgroup"], "/high");
    assert_eq!(profiles[1]["name"], "low");
    assert_eq!(profiles[1]["values"]["kubeReserved"]["cpu"], "100m");
    assert_eq!(profiles[1]["values"]["kubeReservedCgroup"], "/low");
    assert!(
        r.stderr.contains(
            "All MKE 3 TOML settings were successfully converted into MKE 4 YAML settings."
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn azure_sample_converts_flags_audit_and_cloud_provider() {
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("ucp-config.azure-cloudinit.toml")),
    ]);
    r.assert_code(0);
    let v = mke_config(&r.stdout);
    let spec = &v["spec"];
    assert_eq!(spec["cloudProvider"]["enabled"], true);
    assert_eq!(spec["cloudProvider"]["provider"], "external");
    assert_eq!(spec["apiServer"]["audit"]["enabled"], true);
    assert_eq!(spec["apiServer"]["audit"]["level"], "Request");
    // Flag values are YAML strings, never booleans (conversion rules §4.1 rule 4).
    assert_eq!(spec["apiServer"]["extraArgs"]["profiling"], "false");
    assert_eq!(spec["scheduler"]["extraArgs"]["profiling"], "false");
    assert_eq!(
        spec["controllerManager"]["extraArgs"]["terminated-pod-gc-threshold"],
        "10"
    );
    assert!(
        r.stdout.contains("      profiling: \"false\"\n"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains(
        "not supported: scheduling_configuration.default_node_orchestrator (line 3): Swarm feature; MKE 4k has no Swarm\n"
    ), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cluster_config.cloud_provider: cloud provider \"azure\" runs as an external cloud provider in MKE 4k"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// --config-out

#[test]
fn config_out_writes_the_yaml_to_the_file_and_not_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mke4.yaml");
    let sample = data("ucp-3.x-config.sample.toml");
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&sample),
        "--config-out",
        path_str(&dest),
    ]);
    r.assert_code(0);
    assert_eq!(r.stdout, "", "no YAML on stdout with --config-out");
    assert!(
        r.stderr.ends_with(&format!(
            "MKE 4 configuration written to {}\n",
            dest.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.starts_with("Configuration file\n"), "{}", r.stderr);

    let written = std::fs::read_to_string(&dest).unwrap();
    let expected = ferry_run(["init", "--mke3-config", path_str(&sample)]).stdout;
    assert_eq!(
        written, expected,
        "the file holds exactly what stdout would"
    );
    mke_config(&written);
    assert_eq!(dir_entries(dir.path()), ["mke4.yaml"]);
}

#[test]
fn config_out_replaces_an_existing_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mke4.yaml");
    // Longer than the new YAML: a non-atomic, non-truncating write would leave a tail.
    std::fs::write(&dest, "old: content\n".repeat(2000)).unwrap();
    let r = ferry_run(["init", "--config-out", path_str(&dest)]);
    r.assert_code(0);
    assert_eq!(r.stdout, "");
    let written = std::fs::read_to_string(&dest).unwrap();
    assert_eq!(written, ferry_run(["init"]).stdout);
    assert!(!written.contains("old: content"));
    assert!(stray_temp_files(dir.path()).is_empty());
    assert_eq!(dir_entries(dir.path()), ["mke4.yaml"]);
}

#[test]
fn config_out_with_json_keeps_the_yaml_out_of_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.yaml");
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("ucp-3.x-config.sample.toml")),
        "--config-out",
        path_str(&dest),
        "-o",
        "json",
    ]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["yaml"].is_null(), "{}", r.stdout);
    assert!(v["error"].is_null());
    mke_config(&std::fs::read_to_string(&dest).unwrap());
    assert_eq!(dir_entries(dir.path()), ["out.yaml"]);
}

#[test]
fn config_out_into_a_missing_directory_fails_without_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("no-such-dir").join("mke4.yaml");
    let r = ferry_run(["init", "--config-out", path_str(&dest)]);
    r.assert_code(1);
    assert_eq!(r.stdout, "");
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].starts_with(&format!("Error: cannot write {}: ", dest.display())),
        "{}",
        r.stderr
    );
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn config_out_onto_a_directory_fails_without_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("taken");
    std::fs::create_dir(&dest).unwrap();
    let r = ferry_run(["init", "--config-out", path_str(&dest)]);
    r.assert_code(1);
    let errors = r.error_lines();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].starts_with(&format!("Error: cannot write {}: ", dest.display())),
        "{}",
        r.stderr
    );
    assert_eq!(dir_entries(dir.path()), ["taken"]);
    assert!(dir_entries(&dest).is_empty());
}

#[test]
fn config_out_write_error_names_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    let r = ferry_run(["init", "--config-out", path_str(&taken)]);
    r.assert_code(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error: cannot write {}: it is a directory\n",
            taken.display()
        )
    );

    let missing = dir.path().join("no-such-dir").join("mke4.yaml");
    let r = ferry_run(["init", "--config-out", path_str(&missing)]);
    r.assert_code(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error: cannot write {}: directory {} does not exist\n",
            missing.display(),
            missing.parent().unwrap().display()
        )
    );
    assert!(!r.stderr.contains(".ferry-"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Blocking conditions

const BLOCKED: [(&str, &str, &str); 3] = [
    (
        "calico-kdd-false.toml",
        KDD_ERROR,
        "not supported: cluster_config.calico_kdd (line 2): blocks the upgrade: mke3 cluster is using etcdv3 and not kdd backend for calico",
    ),
    (
        "calico-ebpf.toml",
        EBPF_ERROR,
        "not supported: cluster_config.calico_ebpf_enabled (line 3): blocks the upgrade: mke3 cluster is using the calico ebpf dataplane",
    ),
    (
        "kube-proxy-ipvs.toml",
        IPVS_ERROR,
        "not supported: cluster_config.kube_proxy_mode (line 3): blocks the upgrade: mke3 cluster is using kube-proxy mode \"ipvs\"; only iptables is supported",
    ),
];

#[test]
fn blocking_conditions_exit_3_with_the_exact_error() {
    for (name, error, key_line) in BLOCKED {
        let r = ferry_run(["init", "--mke3-config", path_str(&data(name))]);
        r.assert_code(3);
        assert_eq!(r.stdout, "", "{name}: no YAML when blocked");
        assert_eq!(r.error_lines(), [error], "{name}: {}", r.stderr);
        assert!(r.stderr.ends_with(&format!("{error}\n")), "{name}");
        // The report is still shown, with the condition under "Blocking conditions".
        assert!(r.stderr.starts_with("Configuration file\n"), "{name}");
        let reason = error.trim_start_matches("Error: unable to generate upgrade config: ");
        assert!(
            r.stderr.contains(&format!(
                "\nBlocking conditions\n---------------\n{reason}\n"
            )),
            "{name}: {}",
            r.stderr
        );
        assert!(
            r.stderr.lines().any(|l| l == key_line),
            "{name}: {}",
            r.stderr
        );
    }
}

#[test]
fn blocking_conditions_write_no_output_file() {
    for (name, error, _) in BLOCKED {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("mke4.yaml");
        let r = ferry_run([
            "init",
            "--mke3-config",
            path_str(&data(name)),
            "--config-out",
            path_str(&dest),
        ]);
        r.assert_code(3);
        assert_eq!(r.error_lines(), [error], "{name}");
        assert!(!dest.exists(), "{name}: output file created");
        assert!(dir_entries(dir.path()).is_empty(), "{name}");
    }
}

#[test]
fn blocking_conditions_leave_an_existing_output_file_untouched() {
    for (name, _, _) in BLOCKED {
        for format in ["text", "json"] {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("mke4.yaml");
            let before: &[u8] = b"# hand-edited MKE 4k config\nspec: {}\n\xff";
            std::fs::write(&dest, before).unwrap();
            let r = ferry_run([
                "init",
                "--mke3-config",
                path_str(&data(name)),
                "--config-out",
                path_str(&dest),
                "-o",
                format,
            ]);
            r.assert_code(3);
            assert_eq!(std::fs::read(&dest).unwrap(), before, "{name} {format}");
            assert_eq!(dir_entries(dir.path()), ["mke4.yaml"], "{name} {format}");
        }
    }
}

#[test]
fn blocking_condition_in_json_is_a_report_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mke4.yaml");
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("calico-kdd-false.toml")),
        "-o",
        "json",
        "--config-out",
        path_str(&dest),
    ]);
    r.assert_code(3);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", r.stdout));
    assert_eq!(
        v["error"],
        KDD_ERROR.trim_start_matches("Error: "),
        "{}",
        r.stdout
    );
    assert_eq!(
        v["blockers"],
        serde_json::json!(["mke3 cluster is using etcdv3 and not kdd backend for calico"])
    );
    assert!(v["yaml"].is_null());
    assert_eq!(v["counts"]["notSupported"], 1);
    assert_eq!(r.stderr, format!("{KDD_ERROR}\n"));
    assert!(!dest.exists());
}

#[test]
fn missing_calico_kdd_only_warns_in_init() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-kdd.toml");
    std::fs::write(&file, "[cluster_config]\n  kubelet_max_pods = 200\n").unwrap();
    let r = ferry_run(["init", "--mke3-config", path_str(&file)]);
    r.assert_code(0);
    assert_eq!(mke_config(&r.stdout)["spec"]["kubelet"]["maxPods"], 200);
    assert!(r.stderr.contains("cluster_config.calico_kdd: the file has no calico_kdd key (an export older than MKE 3.7?): the upgrade requires cluster_config.calico_kdd = true on the live cluster\n"), "{}", r.stderr);
}

#[test]
fn calico_kdd_true_counts_as_converted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kdd.toml");
    std::fs::write(
        &file,
        "[cluster_config]\n  calico_kdd = true\n  kubelet_max_pods = 200\n",
    )
    .unwrap();
    let r = ferry_run(["init", "--mke3-config", path_str(&file)]);
    r.assert_code(0);
    assert_eq!(
        r.stderr,
        "Configuration file\n---------------\nAll MKE 3 TOML settings were successfully converted into MKE 4 YAML settings.\n\nKeys of the MKE 3 file: 2 converted, 0 not supported, 0 skipped (default, unset or switched off), 0 unknown. `ferry check mke3-config` lists every one.\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input files

#[test]
fn bad_input_files_are_usage_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mke4.yaml");
    for case in bad_inputs(inputs.path()) {
        for format in ["text", "json"] {
            let r = ferry_run([
                "init",
                "--mke3-config",
                path_str(&case.path),
                "--config-out",
                path_str(&dest),
                "-o",
                format,
            ]);
            r.assert_code(2);
            r.assert_only_error(&format!("Error: {}{}", case.path.display(), case.problem));
            assert_eq!(r.stdout, "", "{} {format}", case.name);
            assert!(!dest.exists(), "{} {format}: output written", case.name);
        }
    }
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn unreadable_file_is_a_usage_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("locked.toml");
    std::fs::write(&file, "[cluster_config]\n  calico_kdd = true\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&file).is_ok() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: running as root, a mode-000 file is still readable");
        }
        return;
    }
    let r = ferry_run(["init", "--mke3-config", path_str(&file)]);
    r.assert_code(2);
    r.assert_only_error(&format!("Error: {}: permission denied", file.display()));
}

#[test]
fn relative_paths_are_named_as_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    let r = run(ferry()
        .current_dir(dir.path())
        .args(["init", "--mke3-config", "empty.toml"]));
    r.assert_code(2);
    r.assert_only_error("Error: empty.toml: file is empty");
}

// ---------------------------------------------------------------------------------------------
// Option validation

#[test]
fn invalid_options_are_usage_errors() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--image-registry", "r.example.com/mke/"],
            r#"Error: invalid --image-registry "r.example.com/mke/": must not end with "/""#,
        ),
        (
            &["--chart-registry", "r.example.com/mke"],
            r#"Error: invalid --chart-registry "r.example.com/mke": must start with "oci://""#,
        ),
        (
            &["--chart-registry", "oci://r.example.com/mke/"],
            r#"Error: invalid --chart-registry "oci://r.example.com/mke/": must not end with "/""#,
        ),
        (
            &["--mke3-airgapped"],
            "Error: --mke3-airgapped requires --image-registry and --chart-registry",
        ),
        (
            &["--mke3-airgapped", "--image-registry", "r.example.com/mke"],
            "Error: --mke3-airgapped requires --image-registry and --chart-registry",
        ),
        (
            &["--external-address", "https://x"],
            r#"Error: invalid --external-address "https://x": expected host or host:port without scheme or path"#,
        ),
        (
            &["--external-address", "mke.example.com/api"],
            r#"Error: invalid --external-address "mke.example.com/api": expected host or host:port without scheme or path"#,
        ),
    ];
    let sample = data("ucp-3.x-config.sample.toml");
    for (opts, error) in cases {
        // Without an input file, and with one and --config-out: the option is refused either
        // way and nothing is written.
        let r = ferry_run(std::iter::once("init").chain(opts.iter().copied()));
        r.assert_code(2);
        r.assert_only_error(error);
        assert_eq!(r.stdout, "", "{opts:?}");

        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("mke4.yaml");
        let mut args = vec!["init", "--mke3-config", path_str(&sample)];
        args.extend(opts.iter().copied());
        args.extend(["--config-out", path_str(&dest)]);
        let r = ferry_run(&args);
        r.assert_code(2);
        assert_eq!(r.error_lines(), [error], "{opts:?}: {}", r.stderr);
        assert!(dir_entries(dir.path()).is_empty(), "{opts:?}");
    }
}

#[test]
fn valid_options_land_in_the_yaml() {
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("ucp-3.x-config.sample.toml")),
        "--external-address",
        "mke.example.com:33001",
        "--mke3-airgapped",
        "--image-registry",
        "r.example.com/mke",
        "--chart-registry",
        "oci://r.example.com/mke",
    ]);
    r.assert_code(0);
    let v = mke_config(&r.stdout);
    let spec = &v["spec"];
    assert_eq!(
        spec["apiServer"]["externalAddress"],
        "mke.example.com:33001"
    );
    assert_eq!(spec["airgap"]["enabled"], true);
    assert_eq!(
        spec["registries"]["imageRegistry"]["url"],
        "r.example.com/mke"
    );
    assert_eq!(
        spec["registries"]["chartRegistry"]["url"],
        "oci://r.example.com/mke"
    );
}

// ---------------------------------------------------------------------------------------------
// -o json

#[test]
fn json_report_is_one_document_with_counts_notes_flags_and_yaml() {
    let sample = data("ucp-3.x-config.sample.toml");
    let r = ferry_run(["init", "--mke3-config", path_str(&sample), "-o", "json"]);
    r.assert_code(0);
    assert_eq!(r.stderr, "", "json mode prints nothing else");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    for key in ["counts", "notes", "flags", "yaml"] {
        assert!(v.get(key).is_some(), "no {key} in {}", r.stdout);
    }
    assert!(v["error"].is_null());
    assert_eq!(v["counts"]["notSupported"], 9);
    assert_eq!(v["counts"]["unknown"], 0);
    assert!(v["notes"].is_array());
    assert!(v["flags"].is_array());
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["key"] == "cluster_config.calico_kdd" && n["kind"] == "warning"),
        "{}",
        v["notes"]
    );
    let yaml = v["yaml"].as_str().unwrap();
    assert_eq!(
        yaml,
        ferry_run(["init", "--mke3-config", path_str(&sample)]).stdout,
        "the YAML in the report is the text-mode YAML"
    );
}

#[test]
fn json_report_lists_converted_kubelet_profile_flags() {
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("mke3-custom-kubelet-flags-profiles.toml")),
        "-o",
        "json",
    ]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let flags = v["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 4, "{}", v["flags"]);
    assert_eq!(flags[0]["source"], "custom_kubelet_flags_profiles.high");
    assert_eq!(flags[0]["item"], "--kube-reserved=cpu=200m,memory=512Mi");
    assert_eq!(flags[0]["outcome"], "converted");
    assert_eq!(v["counts"]["flagsNotConverted"], 0);
}

#[test]
fn json_report_does_not_leak_secrets() {
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("kdd-true-with-secrets.toml")),
        "-o",
        "json",
    ]);
    r.assert_code(0);
    assert!(!r.stdout.contains("verysecret"), "{}", r.stdout);
    assert!(r.stdout.contains("\"<redacted>\""));
    let r = ferry_run([
        "init",
        "--mke3-config",
        path_str(&data("kdd-true-with-secrets.toml")),
    ]);
    assert!(!r.stderr.contains("verysecret"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Help and usage

#[test]
fn help_exits_0() {
    ferry()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Usage: ferry <COMMAND>"))
        .stdout(predicate::str::contains("init"))
        .stdout(predicate::str::contains("check"));
    ferry()
        .args(["init", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Usage: ferry init [OPTIONS]"))
        .stdout(predicate::str::contains("--mke3-config <FILE>"))
        .stdout(predicate::str::contains("--config-out <FILE>"))
        .stdout(predicate::str::contains("--mke3-airgapped"));
    ferry()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("ferry "));
}

#[test]
fn help_describes_ferry_to_users() {
    ferry()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("composition root").not())
        .stdout(predicate::str::contains(
            "ferry moves Kubernetes clusters safely: MKE 3.7/3.8 to MKE 4k",
        ))
        // The four jobs, and the run's picture and status.
        .stdout(predicate::str::contains("rolling k0s upgrades"))
        .stdout(predicate::str::contains("node OS replacement"))
        .stdout(predicate::str::contains("cloud-provider"))
        .stdout(predicate::str::contains("RKE2 and RKE clusters"))
        .stdout(predicate::str::contains("report"))
        .stdout(predicate::str::contains("status"))
        .stdout(predicate::str::contains("resume"))
        .stdout(predicate::str::contains("completions"));
}

#[test]
fn bash_accepts_the_completion_script_and_it_knows_the_commands() {
    let out = ferry().args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).unwrap();
    for cmd in ["upgrade", "resume", "rollback", "init", "--max-unavailable"] {
        assert!(script.contains(cmd), "{cmd} missing from the script");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.bash");
    std::fs::write(&path, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = ferry().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("upgrade"),
            "{shell}"
        );
    }
    ferry().args(["completions", "powershell"]).assert().code(2);
}

#[test]
fn unknown_flag_and_bad_values_exit_2() {
    ferry()
        .args(["init", "--bogus"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "error: unexpected argument '--bogus' found",
        ));
    ferry()
        .args(["init", "-o", "yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value 'yaml'"));
    ferry()
        .args(["init", "--mke3-config"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("panicked").not());
    ferry().assert().code(2).stdout("");
    ferry().arg("frobnicate").assert().code(2);
}

#[test]
fn registry_ca_files_go_into_the_configuration_and_bad_ones_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ3Jh\nZmVycnk=\n-----END CERTIFICATE-----\n";
    let ca = dir.path().join("registry-ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let out = ferry()
        .args(["init", "--image-registry", "registry.example.com/mke"])
        .arg("--image-registry-ca-file")
        .arg(&ca)
        .arg("--chart-registry-ca-file")
        .arg(&ca)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let regs = &yaml["spec"]["registries"];
    assert_eq!(regs["imageRegistry"]["caData"].as_str(), Some(pem));
    assert_eq!(regs["chartRegistry"]["caData"].as_str(), Some(pem));
    // not PEM, and missing: exit 2 naming the file, nothing written
    let bad = dir.path().join("not-a-cert.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let config_out = dir.path().join("mke4.yaml");
    for (file, want) in [
        (bad.clone(), "not-a-cert.pem: not a PEM certificate"),
        (dir.path().join("missing.pem"), "missing.pem"),
    ] {
        let out = ferry()
            .args(["init", "--image-registry-ca-file"])
            .arg(&file)
            .arg("--config-out")
            .arg(&config_out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!config_out.exists());
    }
}

#[test]
fn gateway_node_ports_go_into_the_configuration_and_bad_ones_are_refused() {
    let out = ferry()
        .args([
            "init",
            "--gateway-http-node-port",
            "33100",
            "--gateway-https-node-port",
            "33101",
            "--remove-ingress-nginx",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(
        yaml["spec"]["gatewayMKEIngress"]["nodePorts"]["http"].as_i64(),
        Some(33100)
    );
    assert_eq!(
        yaml["spec"]["gatewayMKEIngress"]["nodePorts"]["https"].as_i64(),
        Some(33101)
    );
    assert_eq!(
        yaml["spec"]["ingressController"]["enabled"].as_bool(),
        Some(false)
    );
    for (args, want) in [
        (
            vec!["--gateway-http-node-port", "0"],
            "--gateway-http-node-port",
        ),
        (
            vec!["--gateway-http-node-port", "70000"],
            "--gateway-http-node-port",
        ),
        (
            vec!["--gateway-http-node-port", "30080"],
            "outside network.nodePortRange 32768-35535",
        ),
        (
            vec![
                "--gateway-http-node-port",
                "33000",
                "--gateway-https-node-port",
                "33000",
            ],
            "they must differ",
        ),
        (
            vec![
                "--gateway-https-node-port",
                "33001",
                "--mke4-version",
                "v4.1.2",
            ],
            "need MKE 4k v4.1.3 or later",
        ),
    ] {
        let out = ferry().arg("init").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}
