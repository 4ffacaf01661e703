//! `ferry node replace-os`: bad flags and inputs are refused before anything is connected,
//! each with a clear error and exit 2.
#![allow(clippy::unwrap_used)]

mod common;

use common::ferry_run;

fn hosts(dir: &std::path::Path, name: &str, addresses: &[&str]) -> String {
    let mut t = String::from("hosts:\n");
    for a in addresses {
        t.push_str(&format!("  - address: {a}\n    user: root\n"));
    }
    let p = dir.join(name);
    std::fs::write(&p, t).unwrap();
    p.display().to_string()
}

#[test]
fn bad_flags_and_inputs_are_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let h = hosts(tmp.path(), "hosts.yaml", &["10.9.0.1", "10.9.0.2"]);
    let n1 = hosts(tmp.path(), "new1.yaml", &["10.9.0.3"]);
    let dup = hosts(tmp.path(), "dup.yaml", &["10.9.0.1", "10.9.0.4"]);
    let n2 = hosts(tmp.path(), "new2.yaml", &["10.9.0.5", "10.9.0.6"]);
    let kc = tmp.path().join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\n").unwrap();
    let kc = kc.display().to_string();
    let base = |extra: &[&str]| {
        let mut v = vec![
            "node",
            "replace-os",
            "--hosts-path",
            h.as_str(),
            "--kubeconfig",
            kc.as_str(),
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (base(&["--order", "add-before-remove"]), "--new-hosts-path"),
        (
            base(&["--order", "add-before-remove", "--new-hosts-path", &n1]),
            "lists 1 host(s) and --hosts-path 2",
        ),
        (
            base(&["--order", "add-before-remove", "--new-hosts-path", &dup]),
            "10.9.0.1 is in both hosts files",
        ),
        (
            base(&["--order", "remove-before-add", "--new-hosts-path", &n1]),
            "--new-hosts-path is for --order add-before-remove",
        ),
        (
            base(&["--order", "remove-before-add", "--target-os", "debian13"]),
            "give ID:VERSION_ID of /etc/os-release",
        ),
        (
            base(&["--order", "remove-before-add", "--backend", "kubean"]),
            "--kubean-cluster",
        ),
        (
            base(&["--order", "remove-before-add", "--spray-image", "x:1"]),
            "are for --backend kubean",
        ),
        (
            base(&[
                "--order",
                "add-before-remove",
                "--new-hosts-path",
                &n2,
                "--backend",
                "kubean",
                "--kubean-cluster",
                "c",
                "--spray-image",
                "x:1",
                "--management-kubeconfig",
                &kc,
            ]),
            "--backend kubean replaces nodes --order remove-before-add",
        ),
        (
            base(&["--order", "remove-before-add", "--reinstall-command", "  "]),
            "--reinstall-command is empty",
        ),
        (
            base(&["--order", "remove-before-add", "--max-unavailable", "0"]),
            "--max-unavailable",
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
    }
}
