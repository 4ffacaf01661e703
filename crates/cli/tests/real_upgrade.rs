//! `ferry upgrade`, the binary, against an MKE 3 cluster of real parts: 3 managers and 2 workers
//! of the SSH testbed with a real Docker engine, swarm and `ucp-kv` etcd cluster, the real API
//! server of `testenv/k8s` with workloads on the nodes, the `ferry-mke3-sim` process, and the
//! k0s double installed by ferry from `--k0s-binary` (see `mke_bed`).
//!
//! Needs `scripts/test` (as root), or by hand: the testbed up with the MKE 3 profile and the
//! control plane running; without them the test FAILS naming what is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod mke_bed;

use std::time::Instant;

use ferry_kube_api::testing::real::announce;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{Api, PostParams};
use mke_bed::{APP_NS, Bed, PASSWORD, sh, ssh};
use serde_json::json;

/// One SubjectAccessReview: may `user` (with `groups`) `verb` `resource` in `namespace`?
fn may(bed: &Bed, user: &str, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
    let mut attrs = json!({"verb": verb, "resource": resource, "group": ""});
    if let Some(ns) = namespace {
        attrs["namespace"] = ns.into();
    }
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:authenticated"], "resourceAttributes": attrs}
    }))
    .unwrap();
    let api: Api<SubjectAccessReview> = Api::all(bed.client.clone());
    let r = bed
        .rt
        .block_on(api.create(&PostParams::default(), &review))
        .unwrap();
    r.status.is_some_and(|s| s.allowed)
}

/// [`may`] once ClusterRole aggregation (the controller manager's, asynchronous) has caught up
/// with what the upgrade applied: polls for up to 30 s while the answer is not `want`.
fn may_settled(bed: &Bed, user: &str, verb: &str, resource: &str, ns: Option<&str>, want: bool) {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = may(bed, user, verb, resource, ns);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "may {user} {verb} {resource} in {ns:?}: {got}, want {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Gives the role replica `name` (a ClusterRole ferry applied without rules) `rules`.
fn fill_replica(bed: &Bed, name: &str, rules: serde_json::Value) {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use kube::api::{Patch, PatchParams};
    let api: Api<ClusterRole> = Api::all(bed.client.clone());
    let patch = json!({"rules": rules});
    bed.rt
        .block_on(api.patch(
            name,
            &PatchParams {
                field_manager: Some("operator".into()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        ))
        .unwrap_or_else(|e| panic!("replica {name}: {e}"));
}

#[test]
fn ferry_upgrade_moves_a_real_mke3_cluster_to_k0s() {
    let bed = Bed::open("`ferry upgrade` on an MKE 3 cluster of real parts");
    assert_eq!(bed.hosts.len(), 5, "the end-to-end run wants 5 hosts");
    assert_eq!(bed.managers, 3, "the end-to-end run wants 3 managers");
    bed.prepare();

    let state = bed.tmp.path().join("state");
    let config_out = bed.tmp.path().join("mke4.yaml");
    let started = Instant::now();
    let mut args = bed.upgrade_args(&state, &config_out);
    // The debug log names every connection and command per host (the figures below).
    args.extend(["--log-level".to_string(), "debug".into()]);
    let out = bed
        .ferry(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let took = started.elapsed();
    mke_bed::keep_journal(&state, "completed");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "ferry upgrade failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    announce(&format!(
        "ferry upgrade on the testbed (3 managers, 2 workers): completed in {:.1} s",
        took.as_secs_f64()
    ));
    announce(&figures(&stderr, &bed.addresses));

    // Every host runs k0s, has no MKE 3 left and has left the swarm.
    for h in &bed.hosts {
        let status = sh(&bed.dir, h, "k0s status");
        assert!(status.contains("Process ID:"), "{h}: {status}");
        assert_eq!(
            sh(
                &bed.dir,
                h,
                "docker ps -a --filter name=ucp- --format '{{.Names}}'"
            )
            .trim(),
            "",
            "{h}: ucp-* containers left"
        );
        assert_eq!(
            sh(
                &bed.dir,
                h,
                "docker volume ls --filter name=ucp- --format '{{.Name}}'"
            )
            .trim(),
            "",
            "{h}: ucp-* volumes left"
        );
        assert_eq!(
            sh(
                &bed.dir,
                h,
                "docker info --format '{{.Swarm.LocalNodeState}}'"
            )
            .trim(),
            "inactive",
            "{h}: still in the swarm"
        );
    }
    // The nodes are Ready and uncordoned, the workloads still run.
    let nodes = bed.nodes();
    assert_eq!(nodes.len(), 5);
    for n in &nodes {
        let name = n.metadata.name.clone().unwrap();
        assert!(mke_bed::node_ready(n), "{name} is not Ready");
        assert!(
            !n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
            "{name} is still cordoned"
        );
        let role = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("node.k0sproject.io/role"))
            .cloned();
        assert!(role.is_some(), "{name} was not registered by k0s");
    }

    // The Upgrade Summary's sections, and the configuration written where asked.
    for section in [
        "Upgrade Summary",
        "Authentication",
        "Authorization",
        "Ports",
        "MCR",
        "MKE3 Cleanup",
    ] {
        assert!(stdout.contains(section), "no {section} in\n{stdout}");
    }
    let yaml = std::fs::read_to_string(&config_out).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(doc["kind"].as_str(), Some("MkeConfig"), "{yaml}");

    // The RBAC of the MKE 3 model is in force. The role replicas come without rules (MKE 4k
    // replicates MKE 3's roles without permissions); as an operator would, give View Only and
    // Restricted Control theirs, then ask the authorizer: the development team (bob) has
    // Restricted Control on namespace dev, the entire-company org (bob, bill) View Only on every
    // namespace; alice, an MKE 3 admin, is cluster-admin.
    fill_replica(
        &bed,
        "viewonly",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
    );
    fill_replica(
        &bed,
        "restrictedcontrol",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create"]}]),
    );
    may_settled(&bed, "bob", "create", "pods", Some("dev"), true);
    may_settled(&bed, "bill", "get", "pods", Some("dev"), true);
    may_settled(&bed, "bill", "list", "pods", Some(APP_NS), true);
    assert!(!may(&bed, "bill", "create", "pods", Some("dev")));
    assert!(may(&bed, "alice", "delete", "nodes", None));
    assert!(!may(&bed, "bob", "delete", "nodes", None));
    assert!(!may(&bed, "bill", "delete", "pods", Some(APP_NS)));

    // The password is in no file on any host, no log line, no journal entry.
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    for h in &bed.hosts {
        let out = ssh(
            &bed.dir,
            h,
            "grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -f /dev/stdin / 2>/dev/null; true",
            PASSWORD.as_bytes(),
        );
        let found = String::from_utf8_lossy(&out.stdout);
        assert!(found.trim().is_empty(), "{h}: the password is in {found}");
    }
    let mut leaked = Vec::new();
    for e in walk(&state) {
        if std::fs::read(&e)
            .unwrap()
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
        {
            leaked.push(e);
        }
    }
    assert!(leaked.is_empty(), "the password is in {leaked:?}");
    bed.restore();
}

/// From the debug log: when each phase of the run started (seconds since the start, as the
/// log's `DEBU[0012]` prefix counts them) and, per host, the SSH connections, commands and
/// file uploads. The figures of `docs/benchmarks.md`.
fn figures(log: &str, hosts: &[String]) -> String {
    let mut phases = Vec::new();
    let mut per_host: std::collections::BTreeMap<&str, (usize, usize, usize)> =
        hosts.iter().map(|h| (h.as_str(), (0, 0, 0))).collect();
    let mut last = 0u64;
    for line in log.lines() {
        let Some((head, msg)) = line.split_once("] ") else {
            continue;
        };
        let secs: u64 = head
            .rsplit('[')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(last);
        last = secs;
        if let Some(p) = msg.strip_prefix("phase started: ") {
            phases.push(format!("{p} at {secs} s"));
        }
        if let Some(p) = msg.strip_prefix("==> Running phase: ") {
            phases.push(format!("{p} at {secs} s"));
        }
        for (h, c) in per_host.iter_mut() {
            let field = format!("host={h} ");
            if msg.starts_with("connected ")
                && (msg.contains(&field) || msg.ends_with(&format!("host={h}")))
            {
                c.0 += 1;
            } else if msg.starts_with("run ") && msg.contains(&field) {
                c.1 += 1;
            } else if msg.starts_with("file written ") && msg.contains(&field) {
                c.2 += 1;
            }
        }
    }
    let hosts: Vec<String> = per_host
        .iter()
        .map(|(h, (conn, cmds, files))| {
            format!("{h}: {conn} connection(s), {cmds} commands, {files} files")
        })
        .collect();
    format!(
        "phases (ferry's log): {}\nper host: {}",
        phases.join(", "),
        hosts.join("; ")
    )
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
