//! Fields that only some MKE 4k targets have: older targets report the key as not supported
//! instead of writing a field they do not know.
#![allow(clippy::unwrap_used)]

use ferry_config_convert::{self as fc, Options, Status};

const TEXT: &str = r#"
[cluster_config]
calico_kdd = true
kubelet_data_root = "/data/kubelet"
node_local_dns = true
"#;

fn convert(version: &str) -> fc::Conversion {
    let o = Options {
        version: version.into(),
        ..Options::default()
    };
    fc::convert(TEXT, &o).unwrap()
}

fn key<'a>(c: &'a fc::Conversion, k: &str) -> &'a fc::KeyReport {
    c.keys.iter().find(|r| r.key == k).unwrap()
}

#[test]
fn targets_before_4_1_3_report_the_kubelet_root_dir_and_node_local_dns() {
    for v in ["v4.1.0", "v4.1.1", "v4.1.2"] {
        let c = convert(v);
        let yaml = fc::to_yaml(&c.config).unwrap();
        assert!(!yaml.contains("kubeletRootDir"), "{v}:\n{yaml}");
        assert!(!yaml.contains("nodeLocalDNS"), "{v}:\n{yaml}");
        let root = key(&c, "cluster_config.kubelet_data_root");
        assert_eq!(root.status, Status::NotSupported, "{v}: {root:?}");
        assert_eq!(
            root.message,
            format!(
                "kubelet.kubeletRootDir exists from MKE 4.1.3; not in {v}: the kubelet would use /var/lib/kubelet (target 4.1.3 or later to keep /data/kubelet)"
            )
        );
        let nld = key(&c, "cluster_config.node_local_dns");
        assert_eq!(nld.status, Status::NotSupported, "{v}: {nld:?}");
        assert!(nld.message.contains("from MKE 4.1.3"), "{v}: {nld:?}");
    }
}

#[test]
fn targets_from_4_1_3_convert_them() {
    for v in ["v4.1.3", "v4.1.5"] {
        let c = convert(v);
        let yaml = fc::to_yaml(&c.config).unwrap();
        assert!(
            yaml.contains("kubeletRootDir: /data/kubelet"),
            "{v}:\n{yaml}"
        );
        assert_eq!(
            key(&c, "cluster_config.kubelet_data_root").status,
            Status::Converted
        );
        assert_eq!(
            key(&c, "cluster_config.node_local_dns").status,
            Status::Converted
        );
    }
}
