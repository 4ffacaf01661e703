//! One MKE 3 fixture in, one snapshot out: the MKE 4 YAML and every note. Run
//! `cargo insta review` (or `INSTA_UPDATE=always`) after a deliberate change and read the diff.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;

use ferry_config_convert::{self as fc, HostInput, Options};

fn options_for(name: &str) -> Options {
    let mut o = Options {
        external_address: Some("mke.example.com".into()),
        // As `ferry init` does: the real UCP 3.x samples predate the calico_kdd key.
        allow_missing_calico_kdd: true,
        ..Options::default()
    };
    if name.contains("profile") {
        let host = |addr: &str, manager: bool, profile: Option<&str>| HostInput {
            address: addr.into(),
            port: 22,
            user: "docker".into(),
            key_path: "~/.ssh/cluster.pem".into(),
            private_address: None,
            private_interface: Some("ens5".into()),
            manager,
            profile: profile.map(str::to_string),
        };
        o.hosts = vec![
            host("10.0.0.1", true, Some("high")),
            host("10.0.0.2", false, Some("kinds")),
            host("10.0.0.3", false, Some("GPU Nodes")),
            host("10.0.0.4", false, Some("undefined")),
        ];
    }
    o
}

/// The text a snapshot holds: the outcome, the YAML (when there is one), then every note and
/// every flag.
fn render(text: &str, options: &Options) -> String {
    let mut out = String::new();
    let conversion = match fc::convert(text, options) {
        Ok(c) => {
            let yaml = fc::to_yaml(&c.config).unwrap();
            assert_round_trip(&yaml);
            writeln!(out, "# outcome: converted\n\n# MKE 4 YAML\n{yaml}").unwrap();
            c
        }
        Err(e) => {
            writeln!(out, "# outcome: refused\nError: {e}\n").unwrap();
            match e.conversion() {
                Some(c) => c.clone(),
                None => return out,
            }
        }
    };
    writeln!(out, "# notes").unwrap();
    for n in &conversion.notes {
        writeln!(out, "{:?} {}: {}", n.kind, n.key, n.message).unwrap();
    }
    if !conversion.flags.is_empty() {
        writeln!(out, "\n# flags").unwrap();
        for f in &conversion.flags {
            writeln!(out, "{}: {} => {:?}", f.source, f.item, f.outcome).unwrap();
        }
    }
    writeln!(
        out,
        "\n# summary\n{}",
        fc::report::configuration_summary(&conversion)
    )
    .unwrap();
    out
}

/// The output parses back into the model and re-serialises byte for byte.
fn assert_round_trip(yaml: &str) {
    let back = fc::from_yaml(yaml).unwrap();
    assert_eq!(
        fc::to_yaml(&back).unwrap(),
        yaml,
        "YAML does not round-trip"
    );
}

#[test]
fn fixtures() {
    insta::glob!("fixtures/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        insta::assert_snapshot!(render(&text, &options_for(&name)));
    });
}

#[test]
fn there_are_at_least_twenty_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(n >= 20, "only {n} fixtures");
}

/// Every key of every fixture is accounted for: in the report, and in a note.
#[test]
fn every_key_is_accounted_for() {
    insta::glob!("fixtures/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let parsed = toml::from_str::<toml::Table>(&text).unwrap();
        let c = fc::analyze(&text, &Options::default()).unwrap();
        let mut leaves = Vec::new();
        collect(&parsed, String::new(), &mut leaves);
        for leaf in leaves {
            let covered = c
                .keys
                .iter()
                .any(|k| leaf == k.key || leaf.starts_with(&format!("{}.", k.key)));
            let noted = c
                .notes
                .iter()
                .any(|n| leaf == n.key || leaf.starts_with(&format!("{}.", n.key)));
            assert!(
                covered && noted,
                "{}: {leaf} is not accounted for",
                path.display()
            );
        }
    });
}

fn collect(t: &toml::Table, prefix: String, out: &mut Vec<String>) {
    for (k, v) in t {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) if !inner.is_empty() => collect(inner, p, out),
            _ => out.push(p),
        }
    }
}

/// `ferry init` without a file prints what `mkectl init` 4.1.0 prints: the conformance sample
/// without the submitter's two edits and hosts.
#[test]
fn default_4_1_0_is_what_mkectl_init_prints() {
    let sample = include_str!("data/mke4-v4.1.0.cncf-conformance.yaml");
    let expected = sample
        .replace("nodePortRange: 30000-32767", "nodePortRange: 32768-35535")
        .replace(
            "    nodePorts: \n      http: 30000\n      https: 30001\n",
            "",
        );
    let expected = format!(
        "{}  hosts: []\n",
        &expected[..expected.find("  hosts:\n").unwrap()]
    );
    let ours = fc::to_yaml(&fc::default_config("v4.1.0").unwrap()).unwrap();
    assert_eq!(ours, expected);
}

/// The MKE 3 defaults of the keys that describe the running cluster equal the MKE 4k defaults
/// (conversion-rules.md section 1), so skipping them is safe.
#[test]
fn mke3_defaults_equal_mke4_defaults() {
    let text = r#"
[auth.sessions]
  lifetime_minutes = 60
[cluster_config]
  calico_kdd = true
  pod_cidr = "192.168.0.0/16"
  service_cluster_ip_range = "10.96.0.0/16"
  nodeport_range = "32768-35535"
  kube_proxy_mode = "iptables"
  kubelet_max_pods = 110
  kube_manager_terminated_pod_gc_threshold = 12500
  etcd_storage_quota = "2GB"
  kube_api_server_request_timeout = "1m"
  kube_api_server_audit_log_maxage = 30
  kube_api_server_audit_log_maxbackup = 10
  kube_api_server_audit_log_maxsize = 10
  [cluster_config.core_dns_lameduck_config]
    enabled = false
    duration = "7s"
"#;
    let c = fc::convert(text, &Options::default()).unwrap();
    for k in &c.keys {
        if k.key != "cluster_config.calico_kdd" {
            assert_eq!(k.status, fc::Status::Skipped, "{} should be skipped", k.key);
        }
    }
    let mut expected = fc::default_config(fc::mke4::DEFAULT_VERSION).unwrap();
    // The NodePort rule always writes the ingress NodePorts (33000/33001 for the defaults).
    expected.spec.ingress_controller.node_ports = Some(fc::mke4::HttpPorts {
        http: 33000,
        https: 33001,
    });
    assert_eq!(c.config, expected);
    let d = &expected.spec;
    assert_eq!(d.network.service_cidr, "10.96.0.0/16");
    assert_eq!(d.network.node_port_range, "32768-35535");
    assert_eq!(d.network.kube_proxy.mode, "iptables");
    assert_eq!(d.kubelet.max_pods, 110);
    assert_eq!(d.controller_manager.terminated_pod_gc_threshold, 12500);
    assert_eq!(d.api_server.request_timeout, "1m0s");
    assert_eq!(
        (
            d.api_server.audit.max_age,
            d.api_server.audit.max_backup,
            d.api_server.audit.max_size
        ),
        (30, 10, 10)
    );
    let calico = d
        .network
        .providers
        .iter()
        .find(|p| p.provider == "calico")
        .unwrap();
    assert_eq!(
        calico.extra_config.as_ref().unwrap()["cidrV4"],
        "192.168.0.0/16"
    );
}
