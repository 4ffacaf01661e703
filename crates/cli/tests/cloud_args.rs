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
    let yml = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let good = yml(
        "cluster.yml",
        "nodes:\n  - address: 10.0.1.1\n    role: [controlplane, etcd]\ncloud_provider:\n  name: aws\n",
    );
    let bad = yml(
        "bad.yml",
        "nodes:\n  - address: 10.0.1.1\n    role: [controlplane\n",
    );
    let workers = yml(
        "workers.yml",
        "nodes:\n  - address: 10.0.2.1\n    role: [worker]\n",
    );
    let rke = |file: &str, extra: &[&str]| {
        let mut v = vec![
            "cloud-provider",
            "migrate",
            "--distro",
            "rke",
            "--downstream-kubeconfig",
            kc.as_str(),
            "--cluster-yml",
            file,
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let rke_cases: Vec<(Vec<String>, &str)> = vec![
        (
            rke(&good, &[]),
            "--distro rke needs --cluster-yml FILE and --apply-command CMD",
        ),
        (
            rke(&good, &["--apply-command", "  "]),
            "--apply-command is empty",
        ),
        (
            rke(&missing, &["--apply-command", "rke up"]),
            "nowhere.kubeconfig",
        ),
        (
            rke(&bad, &["--apply-command", "rke up"]),
            "bad.yml: not valid YAML",
        ),
        (
            rke(&workers, &["--apply-command", "rke up"]),
            "workers.yml: no node with the controlplane role",
        ),
        (
            base("prod", &kc, &["--cluster-yml", good.as_str()]),
            "are for --distro rke;",
        ),
    ];
    for (args, want) in cases.into_iter().chain(rke_cases) {
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
