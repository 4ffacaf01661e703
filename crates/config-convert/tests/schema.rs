//! The schema table, the typed model and the conversion rules agree with each other.
#![allow(clippy::unwrap_used)]

use ferry_config_convert::mke3::schema::{self, DefaultValue, Kind, Target};
use ferry_config_convert::{self as fc, Options, Status};

/// A TOML document that sets `path` to `value`, with KDD on and every gate of the key on.
fn doc_with(path: &str, value: &str, gate: Option<&str>) -> String {
    let mut lines = vec!["[cluster_config]\ncalico_kdd = true".to_string()];
    for (p, v) in [(Some(path), value), (gate, "true")] {
        let Some(p) = p else { continue };
        let (table, key) = p.rsplit_once('.').unwrap_or(("", p));
        let key = if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            key.to_string()
        } else {
            format!("{key:?}")
        };
        if table.is_empty() {
            lines.insert(0, format!("{key} = {v}"));
        } else {
            lines.push(format!("[{table}]\n{key} = {v}"));
        }
    }
    // TOML forbids defining [cluster_config] twice: merge by re-parsing line groups.
    let mut merged = toml::Table::new();
    for l in &lines {
        let t: toml::Table = toml::from_str(l).unwrap();
        merge(&mut merged, t);
    }
    toml::to_string(&merged).unwrap()
}

fn merge(a: &mut toml::Table, b: toml::Table) {
    for (k, v) in b {
        match (a.get_mut(&k), v) {
            (Some(toml::Value::Table(x)), toml::Value::Table(y)) => merge(x, y),
            (_, v) => {
                a.insert(k, v);
            }
        }
    }
}

/// A value of the key's kind that is not its default and that its rule accepts.
fn sample_value(def: &schema::KeyDef) -> String {
    match (def.path, def.kind) {
        ("auth.backend", _) => "\"ldap\"".into(),
        ("audit_log_configuration.level", _) => "\"metadata\"".into(),
        ("cluster_config.pod_cidr" | "cluster_config.service_cluster_ip_range", _) => {
            "\"10.32.0.0/16\"".into()
        }
        ("cluster_config.nodeport_range", _) => "\"30000-32767\"".into(),
        ("cluster_config.calico_ip_auto_method", _) => "\"first-found\"".into(),
        ("cluster_config.kube_proxy_mode", _) => "\"iptables\"".into(),
        ("cluster_config.kubelet_data_root", _) => "\"/data/kubelet\"".into(),
        (p, _) if p.ends_with("_kube_reserved_resources") => "\"cpu=1,memory=1Gi\"".into(),
        (p, _) if p.ends_with("_port") || p.ends_with("vxlan_port") => "8080".into(),
        ("cluster_config.custom_kubelet_flags_profiles", _) => "{ p = \"--max-pods=10\" }".into(),
        ("cluster_config.metallb_config.metallb_ip_addr_pool", _) => {
            "[{ name = \"a\", external_ip = [\"10.0.0.0/24\"] }]".into()
        }
        (_, Kind::Bool) => match def.default {
            DefaultValue::Bool(true) => "false".into(),
            _ => "true".into(),
        },
        (_, Kind::Int) => match def.default {
            DefaultValue::Int(7) => "8".into(),
            _ => "7".into(),
        },
        (_, Kind::Duration) => "\"90s\"".into(),
        (_, Kind::Str) => "\"x\"".into(),
        (_, Kind::StrList) => "[\"--a=1\"]".into(),
        (_, Kind::Map) => "{ k = \"v\" }".into(),
        (_, Kind::Tables) => "[{ name = \"n\", value = \"v\" }]".into(),
    }
}

/// Every schema key is a field of the typed model: a set value comes back when the model is
/// serialised.
#[test]
fn typed_model_has_every_schema_key() {
    for def in schema::KEYS {
        let text = doc_with(def.path, &sample_value(def), def.gate);
        let source = ferry_config_convert::mke3::parse::parse(&text)
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", def.path));
        let back = toml::Value::try_from(&source.config).unwrap();
        let mut node = &back;
        for seg in def.path.split('.') {
            node = node
                .get(seg)
                .unwrap_or_else(|| panic!("typed model lost {} ({seg})\n{text}", def.path));
        }
    }
}

/// Every key that has an MKE 4 path converts without falling back to "no rule".
#[test]
fn every_mapped_key_has_a_rule() {
    let options = Options::default();
    let mut checked = 0;
    for def in schema::KEYS
        .iter()
        .filter(|d| matches!(d.target, Target::Path(_)))
    {
        let text = doc_with(def.path, &sample_value(def), def.gate);
        let c = fc::analyze(&text, &options).unwrap();
        let k = c
            .keys
            .iter()
            .find(|k| k.def.is_some_and(|d| d.path == def.path))
            .unwrap();
        assert!(
            !k.message.contains("no rule"),
            "{}: {}",
            def.path,
            k.message
        );
        if k.status != Status::Converted {
            // Only the documented version gaps may refuse a well-formed value.
            assert!(
                k.message.contains("exists from MKE"),
                "{} = {} was not converted: {}",
                def.path,
                sample_value(def),
                k.message
            );
        }
        checked += 1;
    }
    assert!(checked >= 75, "only {checked} mapped keys");
}

/// A wrong type is an error with the line, the column and the key.
#[test]
fn wrong_types_name_line_column_and_key() {
    for (text, line, col, key) in [
        (
            "[cluster_config]\n  kubelet_max_pods = \"abc\"\n",
            2,
            22,
            "cluster_config.kubelet_max_pods",
        ),
        (
            "[cluster_config]\n  calico_kdd = \"yes\"\n",
            2,
            16,
            "cluster_config.calico_kdd",
        ),
        (
            "[cluster_config]\n  custom_kubelet_flags = [\"--a\", 1]\n",
            2,
            26,
            "cluster_config.custom_kubelet_flags",
        ),
        (
            "[auth.sessions]\n  lifetime_minutes = true\n",
            2,
            22,
            "auth.sessions.lifetime_minutes",
        ),
        (
            "[cluster_config.metallb_config]\n  enabled = true\n  [[cluster_config.metallb_config.metallb_ip_addr_pool]]\n    name = 3\n",
            4,
            12,
            "cluster_config.metallb_config.metallb_ip_addr_pool",
        ),
        (
            "[cluster_config]\n  calico_mtu = [1]\n",
            2,
            16,
            "cluster_config.calico_mtu",
        ),
    ] {
        let e = fc::analyze(text, &Options::default()).unwrap_err();
        let fc::Error::Parse(p) = &e else {
            panic!("{e}")
        };
        assert_eq!(
            (p.line, p.column, p.key.as_deref()),
            (line, col, Some(key)),
            "{e}"
        );
    }
}

#[test]
fn syntax_errors_name_line_column_and_key() {
    let e = fc::analyze(
        "[cluster_config]\n  calico_kdd = true\n  kubelet_max_pods = 1 2\n",
        &Options::default(),
    )
    .unwrap_err();
    let fc::Error::Parse(p) = &e else {
        panic!("{e}")
    };
    assert_eq!(p.line, 3);
    assert_eq!(
        p.key.as_deref(),
        Some("cluster_config.kubelet_max_pods"),
        "{e}"
    );
    let e = fc::analyze("[cluster_config\n", &Options::default()).unwrap_err();
    assert!(matches!(e, fc::Error::Parse(ref p) if p.line == 1), "{e}");
}

#[test]
fn both_spellings_of_one_key_are_an_error() {
    let text = "[auth.external_identity_provider]\n  clientId = \"a\"\n  clientID = \"b\"\n";
    let e = fc::analyze(text, &Options::default()).unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
}
