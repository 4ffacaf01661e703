//! Properties of the conversion over arbitrary inputs: no panic, nothing lost, deterministic.
#![allow(clippy::unwrap_used)]

use ferry_config_convert::mke3::schema::{self, Kind};
use ferry_config_convert::{self as fc, Options};
use proptest::prelude::*;

fn flag_item() -> impl Strategy<Value = String> {
    prop_oneof![
        "--[a-z][a-z-]{0,12}(=[a-zA-Z0-9,=<.%:/*-]{0,16})?",
        "--[a-z][a-z-]{0,8} [a-z0-9]{1,6}",
        "-?[a-z0-9]{0,6}",
        any::<String>(),
    ]
}

fn value_of(kind: Kind) -> BoxedStrategy<toml::Value> {
    match kind {
        Kind::Bool => any::<bool>().prop_map(toml::Value::Boolean).boxed(),
        Kind::Int => prop_oneof![
            any::<i64>().prop_map(toml::Value::Integer),
            "-?[0-9]{0,12}".prop_map(toml::Value::String),
        ]
        .boxed(),
        Kind::Str | Kind::Duration => prop_oneof![
            any::<String>(),
            "[0-9a-z./=,:-]{0,20}",
            "[0-9]{1,3}(h|m|s|ms)",
        ]
        .prop_map(toml::Value::String)
        .boxed(),
        Kind::StrList => prop::collection::vec(flag_item(), 0..8)
            .prop_map(|v| toml::Value::Array(v.into_iter().map(toml::Value::String).collect()))
            .boxed(),
        Kind::Map => {
            prop::collection::btree_map("[a-zA-Z0-9 _-]{1,10}", "[ a-z0-9=,<%.-]{0,40}", 0..5)
                .prop_map(|m| {
                    toml::Value::Table(
                        m.into_iter()
                            .map(|(k, v)| (k, toml::Value::String(v)))
                            .collect(),
                    )
                })
                .boxed()
        }
        Kind::Tables => Just(toml::Value::Array(vec![])).boxed(),
    }
}

/// A document that sets a random subset of schema keys to random values of their kind.
fn document() -> impl Strategy<Value = String> {
    let keys: Vec<&'static schema::KeyDef> = schema::KEYS
        .iter()
        .filter(|d| d.kind != Kind::Tables)
        .collect();
    prop::collection::vec(
        (prop::sample::select(keys), any::<prop::sample::Index>()),
        0..40,
    )
    .prop_flat_map(|picked| {
        let strategies: Vec<_> = picked
            .iter()
            .map(|(def, _)| {
                let path: &'static str = def.path;
                value_of(def.kind).prop_map(move |v| (path, v))
            })
            .collect();
        (
            strategies,
            prop::collection::vec(flag_item(), 0..10),
            any::<bool>(),
        )
    })
    .prop_map(|(pairs, profile_flags, kdd)| {
        let mut root = toml::Table::new();
        for (path, v) in pairs {
            insert(&mut root, path, v);
        }
        insert(
            &mut root,
            "cluster_config.calico_kdd",
            toml::Value::Boolean(kdd),
        );
        insert(
            &mut root,
            "cluster_config.custom_kubelet_flags_profiles.p1",
            toml::Value::String(profile_flags.join(" ")),
        );
        toml::to_string(&root).unwrap()
    })
}

fn insert(root: &mut toml::Table, path: &str, v: toml::Value) {
    let mut node = root;
    let segs: Vec<&str> = path.split('.').collect();
    for s in &segs[..segs.len() - 1] {
        let entry = node
            .entry(s.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        node = entry.as_table_mut().unwrap();
    }
    node.insert(segs[segs.len() - 1].to_string(), v);
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary values of the right kind never panic; every input key is in the report and in a
    /// note; the same input gives the same output.
    #[test]
    fn typed_values_never_panic_and_nothing_is_lost(text in document()) {
        let options = Options::default();
        let first = fc::analyze(&text, &options);
        let second = fc::analyze(&text, &options);
        match (first, second) {
            (Ok(a), Ok(b)) => {
                let ya = fc::to_yaml(&a.config).unwrap();
                prop_assert_eq!(&ya, &fc::to_yaml(&b.config).unwrap());
                prop_assert_eq!(&a.notes, &b.notes);
                prop_assert_eq!(fc::to_yaml(&fc::from_yaml(&ya).unwrap()).unwrap(), ya);
                let table: toml::Table = toml::from_str(&text).unwrap();
                let mut all = Vec::new();
                leaves(&table, "", &mut all);
                for leaf in all {
                    let in_keys = a.keys.iter().any(|k| leaf == k.key || leaf.starts_with(&format!("{}.", k.key)));
                    let in_notes = a.notes.iter().any(|n| leaf == n.key || leaf.starts_with(&format!("{}.", n.key)));
                    prop_assert!(in_keys && in_notes, "{} lost", leaf);
                }
                let _ = fc::report::sorted_toml(&a);
                let _ = fc::report::human_readable(&a);
                let _ = fc::report::configuration_summary(&a);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            _ => prop_assert!(false, "non-deterministic outcome"),
        }
    }

    /// Arbitrary flag lists in all five lists never panic, and every item is accounted for,
    /// exactly once and in order, in the per-flag results.
    #[test]
    fn arbitrary_flag_lists(lists in prop::collection::vec(prop::collection::vec(flag_item(), 0..12), 5)) {
        let names = ["custom_kube_api_server_flags", "custom_kube_controller_manager_flags", "custom_kube_scheduler_flags", "custom_kubelet_flags", "custom_kube_proxy_flags"];
        let mut root = toml::Table::new();
        insert(&mut root, "cluster_config.calico_kdd", toml::Value::Boolean(true));
        for (name, items) in names.iter().zip(&lists) {
            insert(&mut root, &format!("cluster_config.{name}"), toml::Value::Array(items.iter().cloned().map(toml::Value::String).collect()));
        }
        let text = toml::to_string(&root).unwrap();
        let c = fc::analyze(&text, &Options::default()).unwrap();
        for (name, items) in names.iter().zip(&lists) {
            let converted = c.keys.iter().any(|k| k.key == format!("cluster_config.{name}") && k.status == fc::Status::Converted);
            if !converted {
                continue;
            }
            // The results of this list, in order, spell out its items one by one: each result
            // is one trimmed item, or a flag and the value item it took (joined by a space).
            let items: Vec<&str> = items.iter().map(|i| i.trim()).collect();
            let results: Vec<&str> = c.flags.iter().filter(|f| f.source == *name).map(|f| f.item.as_str()).collect();
            let mut i = 0;
            for r in &results {
                prop_assert!(i < items.len(), "{}: result {:?} has no item left; items {:?}", name, r, items);
                if *r == items[i] {
                    i += 1;
                } else {
                    prop_assert!(
                        i + 1 < items.len() && *r == format!("{} {}", items[i], items[i + 1]),
                        "{}: result {:?} is not item {} ({:?}) nor it and the next; items {:?}", name, r, i, items[i], items
                    );
                    i += 2;
                }
            }
            prop_assert_eq!(i, items.len(), "{}: items without a result; items {:?}, results {:?}", name, items, results);
        }
        // A conversion either succeeds with a YAML that round-trips, or is refused with the report.
        match fc::convert(&text, &Options::default()) {
            Ok(ok) => {
                let y = fc::to_yaml(&ok.config).unwrap();
                prop_assert_eq!(fc::to_yaml(&fc::from_yaml(&y).unwrap()).unwrap(), y);
            }
            Err(e) => prop_assert!(e.conversion().is_some(), "{}", e),
        }
    }

    /// Any text at all gives a result or an error, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = fc::analyze(&text, &Options::default());
    }
}
