//! What the command line adds to a conversion (`conversion-rules.md` section 3).

use crate::Error;

/// A node of the cluster, from the upgrade `hosts.yaml` and the detected role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInput {
    pub address: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    pub key_path: String,
    #[serde(default)]
    pub private_address: Option<String>,
    #[serde(default)]
    pub private_interface: Option<String>,
    /// `true` for an MKE 3 manager (becomes `controller+worker`).
    #[serde(default)]
    pub manager: bool,
    /// The kubelet profile the node's profile label names, if any.
    #[serde(default)]
    pub profile: Option<String>,
}

fn default_port() -> u16 {
    22
}

/// Options of a conversion. `Options::default()` converts with the MKE 4k defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--external-address`: `apiServer.externalAddress` (`host` or `host:port`).
    pub external_address: Option<String>,
    /// `--image-registry`: `registries.imageRegistry.url`.
    pub image_registry: Option<String>,
    /// `--chart-registry`: `registries.chartRegistry.url` (`oci://...`).
    pub chart_registry: Option<String>,
    /// `--image-registry-ca-file`'s content: `registries.imageRegistry.caData` (PEM).
    pub image_registry_ca: Option<String>,
    /// `--chart-registry-ca-file`'s content: `registries.chartRegistry.caData` (PEM).
    pub chart_registry_ca: Option<String>,
    /// `--mke3-airgapped`: `airgap.enabled`; needs both registries.
    pub airgapped: bool,
    /// `--gateway-http-node-port`: `gatewayMKEIngress.nodePorts.http` (4.1.3+).
    pub gateway_http_node_port: Option<u16>,
    /// `--gateway-https-node-port`: `gatewayMKEIngress.nodePorts.https` (4.1.3+).
    pub gateway_https_node_port: Option<u16>,
    /// `--remove-ingress-nginx`: `ingressController.enabled: false`.
    pub remove_ingress_nginx: bool,
    /// An MKE 3 upgrade (not an offline conversion): from 4.1.5 both gateway node ports are
    /// required unless ingress-nginx is removed.
    pub upgrade: bool,
    /// Target MKE 4k version (`spec.version`), one of [`crate::mke4::SUPPORTED_VERSIONS`].
    pub version: String,
    /// Hosts for `spec.hosts`; empty for an offline conversion.
    pub hosts: Vec<HostInput>,
    /// Print secrets as `<redacted>` in the compatibility reports (on by default).
    pub redact_reports: bool,
    /// Treat a config-toml without `cluster_config.calico_kdd` as a warning instead of a
    /// blocking condition. Off by default, as documented: an MKE 3.7/3.8 export always has the
    /// key. `ferry init` turns it on for old exports (UCP 3.x predates the key); `ferry upgrade`
    /// never does, because it reads the live configuration.
    pub allow_missing_calico_kdd: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            external_address: None,
            image_registry: None,
            chart_registry: None,
            image_registry_ca: None,
            chart_registry_ca: None,
            airgapped: false,
            gateway_http_node_port: None,
            gateway_https_node_port: None,
            remove_ingress_nginx: false,
            upgrade: false,
            version: crate::mke4::DEFAULT_VERSION.to_string(),
            hosts: Vec::new(),
            redact_reports: true,
            allow_missing_calico_kdd: false,
        }
    }
}

impl Options {
    /// Checks the options with the documented validation texts.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(r) = &self.image_registry {
            if r.ends_with('/') {
                return Err(Error::InvalidOption(format!(
                    "invalid --image-registry {r:?}: must not end with \"/\""
                )));
            }
            if r.trim().is_empty() {
                return Err(Error::InvalidOption(format!(
                    "invalid --image-registry {r:?}: must not be empty"
                )));
            }
        }
        if let Some(r) = &self.chart_registry {
            if !r.starts_with("oci://") {
                return Err(Error::InvalidOption(format!(
                    "invalid --chart-registry {r:?}: must start with \"oci://\""
                )));
            }
            if r.ends_with('/') {
                return Err(Error::InvalidOption(format!(
                    "invalid --chart-registry {r:?}: must not end with \"/\""
                )));
            }
        }
        if let Some(a) = &self.external_address {
            if !valid_external_address(a) {
                return Err(Error::InvalidOption(format!(
                    "invalid --external-address {a:?}: expected host or host:port without scheme or path"
                )));
            }
        }
        for (flag, pem) in [
            ("--image-registry-ca-file", &self.image_registry_ca),
            ("--chart-registry-ca-file", &self.chart_registry_ca),
        ] {
            if let Some(why) = pem.as_deref().and_then(pem_certificate_problem) {
                return Err(Error::InvalidOption(format!("invalid {flag}: {why}")));
            }
        }
        if self.airgapped && (self.image_registry.is_none() || self.chart_registry.is_none()) {
            return Err(Error::InvalidOption(
                "--mke3-airgapped requires --image-registry and --chart-registry".to_string(),
            ));
        }
        if !crate::mke4::SUPPORTED_VERSIONS.contains(&self.version.as_str()) {
            return Err(Error::UnsupportedVersion {
                version: self.version.clone(),
            });
        }
        self.validate_gateway()
    }

    /// The 4.1.5 gateway flags: on a version with the Envoy gateway, two different ports, and
    /// both given for an upgrade unless ingress-nginx is removed.
    fn validate_gateway(&self) -> Result<(), Error> {
        let (http, https) = (self.gateway_http_node_port, self.gateway_https_node_port);
        if (http.is_some() || https.is_some()) && !crate::mke4::has_4_1_3_fields(&self.version) {
            return Err(Error::InvalidOption(format!(
                "--gateway-http-node-port and --gateway-https-node-port need MKE 4k v4.1.3 or later (the Envoy gateway); --mke4-version is {}",
                self.version
            )));
        }
        if let (Some(a), Some(b)) = (http, https) {
            if a == b {
                return Err(Error::InvalidOption(format!(
                    "--gateway-http-node-port and --gateway-https-node-port are both {a}: they must differ"
                )));
            }
        }
        let from_4_1_5 = !matches!(
            self.version.as_str(),
            "v4.1.0" | "v4.1.1" | "v4.1.2" | "v4.1.3" | "v4.1.4"
        );
        if self.upgrade && from_4_1_5 && !self.remove_ingress_nginx {
            let missing: Vec<&str> = [
                ("--gateway-http-node-port", http),
                ("--gateway-https-node-port", https),
            ]
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(f, _)| *f)
            .collect();
            if !missing.is_empty() {
                return Err(Error::InvalidOption(format!(
                    "an upgrade from MKE 3 to MKE 4k {} needs --gateway-http-node-port and --gateway-https-node-port (the Envoy gateway's node ports, inside network.nodePortRange), unless --remove-ingress-nginx is given; missing: {}",
                    self.version,
                    missing.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// A gateway node port outside `range` (`network.nodePortRange`, `low-high`).
    pub fn gateway_port_problem(&self, range: &str) -> Option<String> {
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi): (u32, u32) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        [
            ("--gateway-http-node-port", self.gateway_http_node_port),
            ("--gateway-https-node-port", self.gateway_https_node_port),
        ]
        .iter()
        .find_map(|(flag, p)| {
            p.filter(|p| !(lo..=hi).contains(&u32::from(*p))).map(|p| {
                format!("{flag} {p} is outside network.nodePortRange {range}: the node port cannot be allocated")
            })
        })
    }
}

/// What makes `text` not a PEM file of certificates (`None` when it is one): at least one
/// `CERTIFICATE` block, each of base64 text, and nothing else but blank lines or other PEM
/// blocks' explanatory text outside them.
pub fn pem_certificate_problem(text: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut blocks = 0;
    let mut rest = text;
    while let Some(i) = rest.find(BEGIN) {
        let after = &rest[i + BEGIN.len()..];
        let Some(j) = after.find(END) else {
            return Some(format!("certificate {} has no {END} line", blocks + 1));
        };
        let body: String = after[..j].chars().filter(|c| !c.is_whitespace()).collect();
        let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
        if body.is_empty() || body.len() % 4 != 0 || !body.chars().all(base64) {
            return Some(format!("certificate {} is not base64", blocks + 1));
        }
        blocks += 1;
        rest = &after[j + END.len()..];
    }
    if blocks == 0 {
        return Some(format!("not a PEM certificate (no {BEGIN} line)"));
    }
    None
}

fn valid_external_address(a: &str) -> bool {
    if a.is_empty() || a.contains("://") || a.contains('/') || a.chars().any(char::is_whitespace) {
        return false;
    }
    // `[v6]:port`, `host:port` or a bare host / IPv6 address.
    let (host, port) = match a.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return false,
            },
            None => return false,
        },
        None if a.matches(':').count() == 1 => {
            let (h, p) = a.split_once(':').unwrap_or((a, ""));
            (h, Some(p))
        }
        None => (a, None),
    };
    !host.is_empty() && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(o: Options) -> String {
        o.validate().unwrap_err().to_string()
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ3Jh\nZmVycnk=\n-----END CERTIFICATE-----\n";

    #[test]
    fn registry_cas_must_be_pem_certificates_and_go_to_ca_data() {
        assert_eq!(pem_certificate_problem(PEM), None);
        assert_eq!(
            pem_certificate_problem(&format!("# ours\n{PEM}{PEM}")),
            None
        );
        assert_eq!(
            pem_certificate_problem("hello"),
            Some("not a PEM certificate (no -----BEGIN CERTIFICATE----- line)".into())
        );
        assert_eq!(
            pem_certificate_problem(
                "-----BEGIN CERTIFICATE-----\nabc$\n-----END CERTIFICATE-----\n"
            ),
            Some("certificate 1 is not base64".into())
        );
        assert_eq!(
            pem_certificate_problem(&PEM.replace("-----END CERTIFICATE-----\n", "")),
            Some("certificate 1 has no -----END CERTIFICATE----- line".into())
        );
        assert_eq!(
            err(Options {
                chart_registry_ca: Some("hello".into()),
                ..Options::default()
            }),
            "invalid --chart-registry-ca-file: not a PEM certificate (no -----BEGIN CERTIFICATE----- line)"
        );
        let o = Options {
            image_registry: Some("registry.example.com/mke".into()),
            image_registry_ca: Some(PEM.into()),
            chart_registry_ca: Some(PEM.into()),
            ..Options::default()
        };
        let c = crate::default_with_options(&o).unwrap();
        assert_eq!(
            c.spec.registries.image_registry.ca_data.as_deref(),
            Some(PEM)
        );
        assert_eq!(
            c.spec.registries.chart_registry.ca_data.as_deref(),
            Some(PEM)
        );
        assert_eq!(
            c.spec.registries.image_registry.url,
            "registry.example.com/mke"
        );
    }

    #[test]
    fn the_gateway_flags_of_4_1_5_are_checked_and_carried() {
        let gw = |http, https| Options {
            gateway_http_node_port: http,
            gateway_https_node_port: https,
            ..Options::default()
        };
        // an offline conversion may leave them out; an upgrade to 4.1.5 may not
        assert!(gw(None, None).validate().is_ok());
        let upgrade = Options {
            upgrade: true,
            ..gw(Some(33000), None)
        };
        assert_eq!(
            err(upgrade.clone()),
            "an upgrade from MKE 3 to MKE 4k v4.1.5 needs --gateway-http-node-port and --gateway-https-node-port (the Envoy gateway's node ports, inside network.nodePortRange), unless --remove-ingress-nginx is given; missing: --gateway-https-node-port"
        );
        assert!(
            Options {
                remove_ingress_nginx: true,
                ..upgrade.clone()
            }
            .validate()
            .is_ok()
        );
        assert!(
            Options {
                version: "v4.1.3".into(),
                ..upgrade
            }
            .validate()
            .is_ok()
        );
        assert_eq!(
            err(gw(Some(33000), Some(33000))),
            "--gateway-http-node-port and --gateway-https-node-port are both 33000: they must differ"
        );
        assert!(
            err(Options {
                version: "v4.1.2".into(),
                ..gw(Some(33000), Some(33001))
            })
            .contains("need MKE 4k v4.1.3 or later")
        );
        // carried, and checked against the node port range
        let c = crate::default_with_options(&Options {
            remove_ingress_nginx: true,
            ..gw(Some(33100), Some(33101))
        })
        .unwrap();
        let g = c.spec.gateway_mke_ingress.unwrap();
        assert_eq!((g.node_ports.http, g.node_ports.https), (33100, 33101));
        assert!(!c.spec.ingress_controller.enabled);
        assert_eq!(
            crate::default_with_options(&gw(Some(30080), Some(33101)))
                .unwrap_err()
                .to_string(),
            "--gateway-http-node-port 30080 is outside network.nodePortRange 32768-35535: the node port cannot be allocated"
        );
    }

    #[test]
    fn documented_validation_texts() {
        let base = Options::default();
        assert_eq!(
            err(Options {
                image_registry: Some("r.example.com/mke/".into()),
                ..base.clone()
            }),
            r#"invalid --image-registry "r.example.com/mke/": must not end with "/""#
        );
        assert_eq!(
            err(Options {
                chart_registry: Some("r.example.com/mke".into()),
                ..base.clone()
            }),
            r#"invalid --chart-registry "r.example.com/mke": must start with "oci://""#
        );
        assert_eq!(
            err(Options {
                chart_registry: Some("oci://r.example.com/mke/".into()),
                ..base.clone()
            }),
            r#"invalid --chart-registry "oci://r.example.com/mke/": must not end with "/""#
        );
        assert_eq!(
            err(Options {
                external_address: Some("https://mke.example.com".into()),
                ..base.clone()
            }),
            r#"invalid --external-address "https://mke.example.com": expected host or host:port without scheme or path"#
        );
        assert_eq!(
            err(Options {
                airgapped: true,
                image_registry: Some("r/mke".into()),
                ..base.clone()
            }),
            "--mke3-airgapped requires --image-registry and --chart-registry"
        );
        for ok in [
            "mke.example.com",
            "mke.example.com:33001",
            "10.0.0.1",
            "[fd00::1]:443",
            "fd00::1",
        ] {
            assert!(
                Options {
                    external_address: Some(ok.into()),
                    ..base.clone()
                }
                .validate()
                .is_ok(),
                "{ok}"
            );
        }
        for bad in ["", "mke.example.com:0", "mke.example.com:x", "a b", "mke/x"] {
            assert!(
                Options {
                    external_address: Some(bad.into()),
                    ..base.clone()
                }
                .validate()
                .is_err(),
                "{bad}"
            );
        }
    }
}
