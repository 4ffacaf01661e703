//! The invariants every translation must satisfy, checked on the emitted YAML.

use std::collections::BTreeSet;

use ferry_rbac::export::Export;
use serde_json::Value;

use super::evaluator::{Cluster, Effective, Who};
use super::model::{self, Expected};

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| alnum(c) || *c == b'-')
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
}

/// Kubernetes label values: empty, or at most 63 characters of `[A-Za-z0-9_.-]` starting and
/// ending with an alphanumeric.
fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

fn s<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// (b): every name valid, every (kind, namespace, name) unique, labels valid, every roleRef
/// resolvable, every selector selecting at least one role replica.
pub fn check_names_and_structure(cluster: &Cluster) {
    let mut seen = BTreeSet::new();
    for d in &cluster.documents {
        let kind = s(d, "/kind").expect("kind");
        let name = s(d, "/metadata/name").expect("name");
        let ns = s(d, "/metadata/namespace").unwrap_or("");
        assert!(
            seen.insert((kind.to_string(), ns.to_string(), name.to_string())),
            "duplicate {kind} {ns}/{name}"
        );
        match kind {
            // `<S>` or `<S>.<N>`: labels joined by one dot at most.
            "ClusterRole" => {
                let parts: Vec<&str> = name.split('.').collect();
                assert!(parts.len() <= 2, "{name}");
                assert!(parts.iter().all(|p| is_label(p)), "invalid name {name}");
            }
            _ => assert!(is_label(name), "invalid {kind} name {name}"),
        }
        if !ns.is_empty() {
            assert!(is_label(ns), "invalid namespace {ns}");
        }
        if let Some(labels) = d.pointer("/metadata/labels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v.as_str().expect("label value is a string");
                assert!(is_label_value(v), "label {k}={v:?} on {name}");
                assert!(!k.contains("aggregate-to"), "{name} carries {k}");
            }
        }
        if kind == "ClusterRole" {
            assert_eq!(
                d.get("rules").and_then(Value::as_array).map(Vec::len),
                Some(0),
                "{name}: rules: [] expected"
            );
            if let Some(rule) = d.get("aggregationRule") {
                assert!(
                    d.pointer("/metadata/labels/ferry.io~1role").is_none(),
                    "aggregating role {name} is selectable"
                );
                let selectors = rule
                    .get("clusterRoleSelectors")
                    .and_then(Value::as_array)
                    .expect("selectors");
                assert!(!selectors.is_empty(), "{name} aggregates nothing");
                for sel in selectors {
                    let role = s(sel, "/matchLabels/ferry.io~1role").expect("role selector");
                    let labels = cluster.labels(role).expect("selected replica exists");
                    assert_eq!(
                        labels.get("ferry.io/kind").map(String::as_str),
                        Some("role")
                    );
                }
            }
        }
    }
    let missing = cluster.missing_role_refs();
    assert!(
        missing.iter().all(|r| r == "cluster-admin"),
        "roleRefs to missing ClusterRoles: {missing:?}"
    );
}

fn compare(who: &str, cluster: &Cluster, got: &Effective, want: &Expected, admin: bool) {
    let none = BTreeSet::from(["none".to_string()]);
    let mut want_cluster = want.cluster.clone();
    if admin {
        want_cluster.insert("cluster-admin".into());
    }
    let got_cluster = cluster.role_ids(&got.cluster);
    assert!(
        want_cluster.is_subset(&got_cluster),
        "{who}: cluster-wide roles missing: want {want_cluster:?}, got {got_cluster:?}"
    );
    assert!(
        got_cluster.is_subset(&want_cluster.union(&none).cloned().collect()),
        "{who}: cluster-wide roles beyond MKE 3 access: want {want_cluster:?}, got {got_cluster:?}"
    );
    let namespaces: BTreeSet<&String> = got
        .namespaced
        .keys()
        .chain(want.namespaced.keys())
        .collect();
    for ns in namespaces {
        let got_ns = got
            .namespaced
            .get(ns)
            .map(|r| cluster.role_ids(r))
            .unwrap_or_default();
        let want_ns = want.namespaced.get(ns).cloned().unwrap_or_default();
        assert!(
            want_ns.is_subset(&got_ns),
            "{who}: roles missing in namespace {ns}: want {want_ns:?}, got {got_ns:?}"
        );
        assert!(
            got_ns.is_subset(&want_ns.union(&none).cloned().collect()),
            "{who}: roles beyond MKE 3 access in namespace {ns}: want {want_ns:?}, got {got_ns:?}"
        );
    }
}

/// (a): every user and every service account reaches exactly the roles MKE 3 gave it (plus
/// the permissionless `none` placeholder).
pub fn check_access(export: &Export, cluster: &Cluster) {
    for a in export.accounts.iter().filter(|a| !a.is_org) {
        // An inactive user cannot log in, so it is never in `system:authenticated`; the
        // manifests must not give it anything else either.
        let groups: &[&str] = if a.is_active {
            &["system:authenticated"]
        } else {
            &[]
        };
        let (want, admin) = model::expected_for_user(export, &a.name);
        let got = cluster.effective(&Who::User {
            name: &a.name,
            groups,
        });
        compare(&format!("user {}", a.name), cluster, &got, &want, admin);
    }
    let sas: BTreeSet<(&str, &str)> = export
        .grants
        .iter()
        .filter_map(|g| g.subject_id.strip_prefix("system:serviceaccount:"))
        .filter_map(|rest| rest.split_once(':'))
        .filter(|(ns, name)| is_label(ns) && !name.is_empty() && !name.contains(':'))
        .collect();
    for (ns, name) in sas {
        let want = model::expected_for_service_account(export, ns, name);
        let got = cluster.effective(&Who::ServiceAccount {
            namespace: ns,
            name,
        });
        compare(
            &format!("serviceaccount {ns}/{name}"),
            cluster,
            &got,
            &want,
            false,
        );
    }
}

/// Translates `export`, checks every invariant, and returns the YAML.
pub fn translate_and_check(export: &Export) -> (ferry_rbac::Translation, String) {
    let t = ferry_rbac::translate(export, &ferry_rbac::Options::default()).expect("translates");
    let yaml = t.to_yaml().expect("yaml");
    let cluster = Cluster::parse(&yaml);
    check_names_and_structure(&cluster);
    check_access(export, &cluster);
    check_order_independence(export, &t, &yaml);
    (t, yaml)
}

/// (c): the same model in another input order gives byte-identical output.
pub fn check_order_independence(export: &Export, t: &ferry_rbac::Translation, yaml: &str) {
    let mut reversed = export.clone();
    reversed.accounts.reverse();
    reversed.roles.reverse();
    reversed.collections.reverse();
    reversed.grants.reverse();
    for org in reversed.orgs.values_mut() {
        org.members.reverse();
        org.teams.reverse();
        for t in &mut org.teams {
            t.members.reverse();
        }
    }
    let r = ferry_rbac::translate(&reversed, &ferry_rbac::Options::default()).expect("translates");
    assert_eq!(
        r.to_yaml().expect("yaml"),
        yaml,
        "output depends on input order"
    );
    assert_eq!(r.report, t.report, "report depends on input order");
}
