//! The crate's only YAML code: writing manifests as a multi-document stream and reading such a
//! stream back. Swapping the YAML library means changing this file only.
//!
//! Writing is done by hand rather than through `serde_yaml`, for two reasons:
//! * Kubernetes tools read YAML 1.1 (`sigs.k8s.io/yaml` over go-yaml v2), where plain `yes`,
//!   `no`, `on`, `off`, `y`, `n` are booleans and `1_000` is a number; `serde_yaml` (YAML 1.2)
//!   leaves those plain, so a user named `no` would reach kubectl as `false`. Here a scalar is
//!   plain only when it is a string in both versions (see [`is_plain_safe`]); everything else
//!   is single-quoted, or double-quoted with escapes when it holds characters a one-line
//!   single-quoted scalar cannot carry.
//! * Speed: the emitted objects have a small, fixed shape, and writing them directly is many
//!   times faster than `serde_yaml`'s emitter on a model with 10,000 users (see
//!   `docs/benchmarks.md`).
//!
//! Reading uses `serde_yaml`; the tests read every emitted stream back and compare.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::error::RbacError;
use crate::k8s::{
    ClusterRole, ClusterRoleBinding, Manifests, ObjectMeta, RoleBinding, RoleRef, Subject,
};

/// Writes the manifests as one YAML stream, documents separated by `---`, in the order of
/// [`Manifests`] (call [`Manifests::normalize`] first; [`crate::translate()`] does). An empty
/// set gives an empty string. Every map is written with its keys in byte order.
pub fn to_yaml(manifests: &Manifests) -> Result<String, RbacError> {
    let mut out = String::with_capacity(manifests.len() * 768);
    for o in &manifests.cluster_roles {
        separator(&mut out);
        write_cluster_role(&mut out, o)?;
    }
    for o in &manifests.cluster_role_bindings {
        separator(&mut out);
        write_binding(
            &mut out,
            &o.api_version,
            &o.kind,
            &o.metadata,
            &o.role_ref,
            &o.subjects,
        );
    }
    for o in &manifests.role_bindings {
        separator(&mut out);
        write_binding(
            &mut out,
            &o.api_version,
            &o.kind,
            &o.metadata,
            &o.role_ref,
            &o.subjects,
        );
    }
    Ok(out)
}

fn separator(out: &mut String) {
    if !out.is_empty() {
        out.push_str("---\n");
    }
}

/// Whether `s` can be written as a plain scalar and be read back as the same string by YAML 1.1
/// and YAML 1.2 parsers alike. Deliberately narrow: a letter first (no number, timestamp,
/// indicator or `.inf` starts with one), then only letters, digits, `.`, `_`, `/`, `-` and
/// inner spaces (without `:` or `#` no space can start a comment or end a key), and none of the
/// words YAML 1.1 or 1.2 read as booleans, null or special floats.
pub fn is_plain_safe(s: &str) -> bool {
    const WORDS: [&str; 12] = [
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "inf", "nan", "infinity",
    ];
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-' | b' '))
        && !s.ends_with(' ')
        && (s.len() > 8 || !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)))
}

/// Characters a one-line single-quoted scalar can hold as they are: printable in YAML 1.1 and
/// 1.2, and not a line break in either (U+0085, U+2028 and U+2029 are line breaks in 1.1), and
/// not a byte-order mark.
fn single_quotable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}'
        | '\u{a0}'..='\u{2027}'
        | '\u{202a}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fefe}'
        | '\u{ff00}'..='\u{fffd}'
        | '\u{10000}'..)
}

/// Writes one scalar: plain, single-quoted, or double-quoted with escapes.
fn scalar(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if s.chars().all(single_quotable) {
        out.push('\'');
        for c in s.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
        out.push('\'');
    } else {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if single_quotable(c) => out.push(c),
                // Writing into a String cannot fail.
                c if u32::from(c) <= 0xffff => {
                    let _ = write!(out, "\\u{:04X}", u32::from(c));
                }
                c => {
                    let _ = write!(out, "\\U{:08X}", u32::from(c));
                }
            }
        }
        out.push('"');
    }
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// `key: value` on its own line, `n` spaces in.
fn entry(out: &mut String, n: usize, key: &str, value: &str) {
    indent(out, n);
    scalar(out, key);
    out.push_str(": ");
    scalar(out, value);
    out.push('\n');
}

/// The rest of a line that opened a map under `key` (`key:` already written): a newline and
/// the entries `n` spaces in, or ` {}` when the map is empty.
fn map_body<'a, K: AsRef<str> + 'a, V: AsRef<str> + 'a>(
    out: &mut String,
    n: usize,
    entries: impl ExactSizeIterator<Item = (&'a K, &'a V)>,
) {
    if entries.len() == 0 {
        out.push_str(" {}\n");
        return;
    }
    out.push('\n');
    for (k, v) in entries {
        entry(out, n, k.as_ref(), v.as_ref());
    }
}

fn write_meta(out: &mut String, meta: &ObjectMeta) {
    out.push_str("metadata:\n");
    if !meta.annotations.is_empty() {
        out.push_str("  annotations:");
        map_body(out, 4, meta.annotations.iter());
    }
    if !meta.labels.is_empty() {
        out.push_str("  labels:");
        map_body(out, 4, meta.labels.iter());
    }
    entry(out, 2, "name", &meta.name);
    if let Some(ns) = &meta.namespace {
        entry(out, 2, "namespace", ns);
    }
}

fn write_cluster_role(out: &mut String, role: &ClusterRole) -> Result<(), RbacError> {
    if !role.rules.is_empty() {
        // ferry never emits rules; a role read back with rules a user added is rare enough to
        // go through the general serialiser.
        let text = serde_yaml::to_string(role).map_err(|e| RbacError::Yaml(e.to_string()))?;
        out.push_str(&text);
        return Ok(());
    }
    if let Some(rule) = &role.aggregation_rule {
        out.push_str("aggregationRule:\n");
        if rule.cluster_role_selectors.is_empty() {
            out.push_str("  clusterRoleSelectors: []\n");
        } else {
            out.push_str("  clusterRoleSelectors:\n");
            for selector in &rule.cluster_role_selectors {
                out.push_str("  - matchLabels:");
                map_body(out, 6, selector.match_labels.iter());
            }
        }
    }
    entry(out, 0, "apiVersion", &role.api_version);
    entry(out, 0, "kind", &role.kind);
    write_meta(out, &role.metadata);
    out.push_str("rules: []\n");
    Ok(())
}

fn write_binding(
    out: &mut String,
    api_version: &str,
    kind: &str,
    meta: &ObjectMeta,
    role_ref: &RoleRef,
    subjects: &[Subject],
) {
    entry(out, 0, "apiVersion", api_version);
    entry(out, 0, "kind", kind);
    write_meta(out, meta);
    out.push_str("roleRef:\n");
    entry(out, 2, "apiGroup", &role_ref.api_group);
    entry(out, 2, "kind", &role_ref.kind);
    entry(out, 2, "name", &role_ref.name);
    if subjects.is_empty() {
        out.push_str("subjects: []\n");
        return;
    }
    out.push_str("subjects:\n");
    for s in subjects {
        // The first key of a sequence item follows `- `; the others align under it.
        let mut first = true;
        let mut item = |out: &mut String, key: &str, value: &str| {
            out.push_str(if first { "- " } else { "  " });
            first = false;
            entry(out, 0, key, value);
        };
        if let Some(group) = &s.api_group {
            item(out, "apiGroup", group);
        }
        item(out, "kind", &s.kind);
        item(out, "name", &s.name);
        if let Some(ns) = &s.namespace {
            item(out, "namespace", ns);
        }
    }
}

/// Reads every document of a YAML stream as a generic JSON value (empty documents are
/// skipped). Tests use it to check the emitted objects without trusting this crate's types.
pub fn read_documents(yaml: &str) -> Result<Vec<serde_json::Value>, RbacError> {
    let mut docs = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value = serde_json::Value::deserialize(document)
            .map_err(|e| RbacError::Yaml(format!("document {}: {e}", index + 1)))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Reads a YAML stream of ClusterRoles, ClusterRoleBindings and RoleBindings back into
/// [`Manifests`], keeping the stream's order within each kind.
pub fn read_manifests(yaml: &str) -> Result<Manifests, RbacError> {
    let mut m = Manifests::default();
    for (index, value) in read_documents(yaml)?.into_iter().enumerate() {
        let bad = |e: serde_json::Error| RbacError::Yaml(format!("document {}: {e}", index + 1));
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "ClusterRole" => m
                .cluster_roles
                .push(serde_json::from_value::<ClusterRole>(value).map_err(bad)?),
            "ClusterRoleBinding" => m
                .cluster_role_bindings
                .push(serde_json::from_value::<ClusterRoleBinding>(value).map_err(bad)?),
            "RoleBinding" => m
                .role_bindings
                .push(serde_json::from_value::<RoleBinding>(value).map_err(bad)?),
            other => {
                return Err(RbacError::Yaml(format!(
                    "document {}: unexpected kind {other:?}",
                    index + 1
                )));
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::k8s::*;

    fn sample() -> Manifests {
        let labels: BTreeMap<Text, Text> =
            [("app.kubernetes.io/managed-by".into(), "ferry".into())].into();
        let mut annotations: BTreeMap<Text, Text> = BTreeMap::new();
        annotations.insert(
            "ferry.io/mke3-collection-grants".into(),
            r#"[{"path":"/prod","role":"fullcontrol"}]"#.into(),
        );
        Manifests {
            cluster_roles: vec![ClusterRole {
                aggregation_rule: Some(AggregationRule {
                    cluster_role_selectors: vec![LabelSelector {
                        match_labels: [("ferry.io/role".into(), "none".into())].into(),
                    }],
                }),
                api_version: API_VERSION.into(),
                kind: "ClusterRole".into(),
                metadata: ObjectMeta {
                    annotations,
                    labels: labels.clone(),
                    name: "a-team".into(),
                    namespace: None,
                },
                rules: vec![],
            }],
            cluster_role_bindings: vec![ClusterRoleBinding {
                api_version: API_VERSION.into(),
                kind: "ClusterRoleBinding".into(),
                metadata: ObjectMeta {
                    labels: labels.clone(),
                    name: "a-team".into(),
                    ..Default::default()
                },
                role_ref: RoleRef::cluster_role("a-team"),
                subjects: vec![Subject::user("true"), Subject::service_account("ns", "sa")],
            }],
            role_bindings: vec![RoleBinding {
                api_version: API_VERSION.into(),
                kind: "RoleBinding".into(),
                metadata: ObjectMeta {
                    labels,
                    name: "a-team".into(),
                    namespace: Some("dev".into()),
                    ..Default::default()
                },
                role_ref: RoleRef::cluster_role("a-team.dev"),
                subjects: vec![],
            }],
        }
    }

    fn assert_keys_sorted(v: &serde_yaml::Value) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                let keys: Vec<&str> = m.keys().filter_map(|k| k.as_str()).collect();
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                assert_eq!(keys, sorted);
                m.values().for_each(assert_keys_sorted);
            }
            serde_yaml::Value::Sequence(s) => s.iter().for_each(assert_keys_sorted),
            _ => {}
        }
    }

    #[test]
    fn every_map_is_written_with_sorted_keys() {
        let yaml = to_yaml(&sample()).expect("yaml");
        for doc in serde_yaml::Deserializer::from_str(&yaml) {
            let v = serde_yaml::Value::deserialize(doc).expect("doc");
            assert_keys_sorted(&v);
        }
    }

    #[test]
    fn round_trips_through_yaml() {
        let m = sample();
        let yaml = to_yaml(&m).expect("yaml");
        assert_eq!(yaml.matches("---\n").count(), 2);
        assert!(yaml.contains("rules: []"));
        // A user named `true` must stay a string.
        assert_eq!(read_manifests(&yaml).expect("read back"), m);
    }

    #[test]
    fn yaml_1_1_booleans_numbers_and_indicators_are_quoted() {
        for s in [
            "no",
            "No",
            "YES",
            "y",
            "n",
            "on",
            "Off",
            "true",
            "null",
            "~",
            "",
            "1_000",
            "0123",
            "12",
            "1e3",
            ".5",
            "-",
            "-a",
            "inf",
            "NaN",
            "@x",
            "a: b",
            "a #b",
            " a",
            "a ",
            "system:authenticated",
            "<<",
            "=",
        ] {
            assert!(!is_plain_safe(s), "{s:?} must not be plain");
        }
        for s in [
            "bob",
            "Full Control",
            "rbac.authorization.k8s.io/v1",
            "dev-97b9eea4-team",
        ] {
            assert!(is_plain_safe(s), "{s:?} can be plain");
        }
        let mut out = String::new();
        scalar(&mut out, "no");
        assert_eq!(out, "'no'");
        out.clear();
        scalar(&mut out, "it's");
        assert_eq!(out, "'it''s'");
        out.clear();
        scalar(&mut out, "a\nb\u{85}\u{1F600}\u{7f}\"");
        assert_eq!(out, "\"a\\nb\\u0085\u{1F600}\\u007F\\\"\"");
    }

    #[test]
    fn plain_documents_are_written_as_serde_yaml_writes_them() {
        // With only plain-safe strings the hand-written emitter and serde_yaml agree byte for
        // byte; quoting is the only intended difference.
        let mut m = sample();
        m.cluster_role_bindings[0].subjects[0].name = "bob".into();
        m.cluster_roles[0].metadata.annotations.clear();
        let mut expected = String::new();
        for (i, doc) in [
            serde_yaml::to_string(&m.cluster_roles[0]),
            serde_yaml::to_string(&m.cluster_role_bindings[0]),
            serde_yaml::to_string(&m.role_bindings[0]),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                expected.push_str("---\n");
            }
            expected.push_str(&doc.expect("yaml"));
        }
        assert_eq!(to_yaml(&m).expect("yaml"), expected);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any string in any position survives the round trip.
        #[test]
        fn arbitrary_strings_round_trip(
            name in ".{0,12}",
            value in proptest::prelude::any::<String>(),
            user in "[a-z0-9 :#'\"\\\n\t-]{0,10}",
        ) {
            let mut m = sample();
            m.cluster_roles[0].metadata.annotations.insert(name.clone().into(), value.clone().into());
            m.cluster_roles[0].metadata.labels.insert("k".into(), user.clone().into());
            m.cluster_role_bindings[0].subjects[0].name = user.clone();
            m.role_bindings[0].metadata.name = value.clone();
            let yaml = to_yaml(&m).expect("yaml");
            let back = read_manifests(&yaml).expect("read back");
            proptest::prop_assert_eq!(back, m);
        }
    }

    #[test]
    fn empty_manifests_are_an_empty_stream() {
        assert_eq!(to_yaml(&Manifests::default()).expect("yaml"), "");
        assert!(read_documents("").expect("read").is_empty());
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let err = read_manifests("kind: Pod\n").expect_err("must fail");
        assert!(err.to_string().contains("unexpected kind"), "{err}");
    }
}
