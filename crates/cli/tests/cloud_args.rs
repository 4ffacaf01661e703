//! `ferry cloud-provider migrate`: bad flags and inputs are refused before any cluster is
//! reached, each with a clear error and exit 2.
#![allow(clippy::unwrap_used)]

mod common;

use common::ferry_run;

#[test]
fn bad_flags_and_inputs_are_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let kc = tmp.path().join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\n").unwrap();
    let kc = kc.display().to_string();
    let missing = tmp.path().join("nowhere.kubeconfig").display().to_string();
    let base = |cluster: &str, down: &str, extra: &[&str]| {
        let mut v = vec![
            "cloud-provider",
            "migrate",
            "--distro",
            "rke2",
            "--cluster",
            cluster,
            "--kubeconfig",
            kc.as_str(),
            "--downstream-kubeconfig",
            down,
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (base("prod", &missing, &[]), "nowhere.kubeconfig"),
        (
            base("fleet-default/prod", &kc, &[]),
            "is not a Cluster name",
        ),
        (
            base("prod", &kc, &["--kubernetes-version", "latest"]),
            "is not a Kubernetes version",
        ),
        (
            base("prod", &kc, &["--ccm-image", "two words"]),
            "is not an image reference",
        ),
        (
            base("prod", &kc, &["--state-timeout", "0"]),
            "--state-timeout",
        ),
        (
            base("prod", &kc, &["--poll-interval-ms", "5"]),
            "--poll-interval-ms",
        ),
        (base("prod", &kc, &["--provider", "gce"]), "--provider"),
        (
            vec![
                "cloud-provider",
                "migrate",
                "--distro",
                "rke",
                "--cluster",
                "prod",
                "--kubeconfig",
                &kc,
                "--downstream-kubeconfig",
                &kc,
            ]
            .into_iter()
            .map(str::to_string)
            .collect(),
            "--distro",
        ),
    ];
    for (args, want) in cases {
        let r = ferry_run(&args);
        assert_eq!(r.code, Some(2), "{args:?}\n{}", r.stderr);
        assert!(
            r.stderr.contains(want),
            "{args:?}: want {want:?} in\n{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(!tmp.path().join("state").exists());
    }
}
