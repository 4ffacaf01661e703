//! The conversion rules of `reference/conversion-rules.md`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::flags::{self, FlagItem};
use crate::kubelet;
use crate::mke3::model::MetallbPool;
use crate::mke3::parse::{self, Entry, Source};
use crate::mke3::schema::{DefaultValue as Def, KeyDef, Kind, Target};
use crate::mke4::{self, Addon, AddonChart, CustomProfile, Host, HttpPorts, MkeConfig, Ssh};
use crate::options::Options;

/// What happened to one key of the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Converted,
    NotSupported,
    Skipped,
    Unknown,
}

/// One key of the source and its outcome, for the reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyReport {
    /// Dotted path as written in the file.
    pub key: String,
    #[serde(skip)]
    pub segments: Vec<String>,
    #[serde(skip)]
    pub def: Option<&'static KeyDef>,
    /// The source value (`<redacted>` for secrets).
    #[serde(serialize_with = "serialize_toml")]
    pub value: toml::Value,
    pub line: usize,
    pub status: Status,
    /// Where it went, why not, or why it was skipped.
    pub message: String,
}

fn serialize_toml<S: serde::Serializer>(v: &toml::Value, s: S) -> Result<S::Ok, S::Error> {
    toml_to_json(v).serialize(s)
}

/// The kind of a [`Note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteKind {
    Converted,
    Defaulted,
    NotSupported,
    Skipped,
    Unknown,
    FlagNotConverted,
    /// A flag that would be written twice: the conversion fails.
    FlagError,
    /// A condition that stops the upgrade.
    Blocking,
    Warning,
}

/// One finding of the conversion: a key path, what happened, and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub key: String,
    pub kind: NoteKind,
    pub message: String,
}

/// The outcome of one flag of a `custom_*_flags` list or a kubelet profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagNote {
    /// `custom_kube_api_server_flags`, `custom_kubelet_flags_profiles.<name>`, ...
    pub source: String,
    /// The item as written.
    pub item: String,
    #[serde(flatten)]
    pub outcome: FlagOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum FlagOutcome {
    Converted { target: String },
    NotConverted { reason: String },
    Error { reason: String },
}

/// The result of a conversion: the MKE 4k configuration and everything the operator must know.
#[derive(Debug, Clone, Serialize)]
pub struct Conversion {
    pub config: MkeConfig,
    /// Every key of the source file with its outcome, in file order.
    pub keys: Vec<KeyReport>,
    /// One note per key, plus defaulted values, flags not converted, blockers and warnings.
    pub notes: Vec<Note>,
    /// Per-flag results of the five flag lists and the kubelet profiles.
    pub flags: Vec<FlagNote>,
    /// Blocking conditions, in the documented order; the first is the conversion error.
    pub blockers: Vec<String>,
    /// MetalLB pools for the Upgrade Summary, in file order.
    pub metallb_pools: Vec<MetallbPool>,
    /// Whether the reports print secrets as `<redacted>`.
    #[serde(skip)]
    pub redact: bool,
}

impl Conversion {
    /// Counts of keys per status.
    pub fn count(&self, status: Status) -> usize {
        self.keys.iter().filter(|k| k.status == status).count()
    }

    /// Flags that were not converted (errors included).
    pub fn flags_not_converted(&self) -> impl Iterator<Item = &FlagNote> {
        self.flags
            .iter()
            .filter(|f| !matches!(f.outcome, FlagOutcome::Converted { .. }))
    }
}

/// The default configuration of `options.version` with the command-line options applied: what
/// `ferry init` prints without an MKE 3 file.
pub fn default_with_options(options: &Options) -> Result<MkeConfig, Error> {
    options.validate()?;
    let mut c = MkeConfig::defaults(&options.version)?;
    apply_options(&mut c, options);
    if let Some(p) = options.gateway_port_problem(&c.spec.network.node_port_range) {
        return Err(Error::InvalidOption(p));
    }
    Ok(c)
}

/// Section 3: external address, registries, airgap.
fn apply_options(c: &mut MkeConfig, o: &Options) {
    let spec = &mut c.spec;
    if let Some(a) = &o.external_address {
        spec.api_server.external_address = Some(a.clone());
        // Documented default: the ingress load balancer is on when an external address is set.
        if spec.ingress_controller.enable_load_balancer.is_none() {
            spec.ingress_controller.enable_load_balancer = Some(true);
        }
    }
    if let Some(r) = &o.image_registry {
        spec.registries.image_registry.url = r.clone();
    }
    if let Some(r) = &o.chart_registry {
        spec.registries.chart_registry.url = r.clone();
    }
    if let Some(ca) = &o.image_registry_ca {
        spec.registries.image_registry.ca_data = Some(ca.clone());
    }
    if let Some(ca) = &o.chart_registry_ca {
        spec.registries.chart_registry.ca_data = Some(ca.clone());
    }
    spec.airgap.enabled = o.airgapped;
    if let Some(g) = spec.gateway_mke_ingress.as_mut() {
        if let Some(p) = o.gateway_http_node_port {
            g.node_ports.http = i64::from(p);
        }
        if let Some(p) = o.gateway_https_node_port {
            g.node_ports.https = i64::from(p);
        }
    }
    if o.remove_ingress_nginx {
        spec.ingress_controller.enabled = false;
    }
}

/// Analyses `text` and converts it, returning the full report even when the conversion must be
/// refused: callers that only want a valid configuration use [`convert`].
pub fn analyze(text: &str, options: &Options) -> Result<Conversion, Error> {
    options.validate()?;
    let source = parse::parse(text)?;
    let mut config = MkeConfig::defaults(&options.version)?;
    let mut cx = Cx {
        source: &source,
        options,
        keys: Vec::new(),
        notes: Vec::new(),
        flags: Vec::new(),
        blockers: Vec::new(),
        calico_values: Map::new(),
        api_args: BTreeMap::new(),
        kubelet_args: BTreeMap::new(),
        profile_names: BTreeMap::new(),
    };
    for entry in &source.entries {
        let report = cx.classify(entry);
        cx.keys.push(report);
    }
    for i in 0..cx.keys.len() {
        if cx.keys[i].status == Status::Converted {
            let entry = &source.entries[i];
            if let Err(message) = cx.apply(entry, &mut config) {
                cx.keys[i].status = Status::NotSupported;
                cx.keys[i].message = message;
            }
        }
    }
    cx.finish(&mut config);
    let redact = options.redact_reports;
    let Cx {
        keys,
        mut notes,
        flags,
        blockers,
        ..
    } = cx;
    for k in &keys {
        let kind = match k.status {
            Status::Converted => NoteKind::Converted,
            Status::NotSupported => NoteKind::NotSupported,
            Status::Skipped => NoteKind::Skipped,
            Status::Unknown => NoteKind::Unknown,
        };
        notes.push(Note {
            key: k.key.clone(),
            kind,
            message: k.message.clone(),
        });
    }
    for f in &flags {
        let (kind, message) = match &f.outcome {
            FlagOutcome::Converted { .. } => continue,
            FlagOutcome::NotConverted { reason } => (NoteKind::FlagNotConverted, reason),
            FlagOutcome::Error { reason } => (NoteKind::FlagError, reason),
        };
        notes.push(Note {
            key: f.source.clone(),
            kind,
            message: format!("{}: {message}", f.item),
        });
    }
    let metallb_pools = if source.flag("cluster_config.metallb_config.enabled") {
        source
            .config
            .cluster_config
            .as_ref()
            .and_then(|c| c.metallb_config.as_ref())
            .and_then(|m| m.metallb_ip_addr_pool.clone())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Conversion {
        config,
        keys,
        notes,
        flags,
        blockers,
        metallb_pools,
        redact,
    })
}

/// Converts `text` into an MKE 4k configuration. A blocking condition or a repeated flag is an
/// error that still carries the whole report.
pub fn convert(text: &str, options: &Options) -> Result<Conversion, Error> {
    let conversion = analyze(text, options)?;
    if let Some(reason) = conversion.blockers.first() {
        return Err(Error::Blocked {
            reason: reason.clone(),
            conversion: Box::new(conversion),
        });
    }
    let mut repeated: Vec<String> = conversion
        .flags
        .iter()
        .filter(|f| matches!(f.outcome, FlagOutcome::Error { .. }))
        .map(|f| format!("{}: {}", f.source, f.item))
        .collect();
    repeated.dedup();
    if !repeated.is_empty() {
        return Err(Error::RepeatedFlags {
            names: repeated,
            conversion: Box::new(conversion),
        });
    }
    Ok(conversion)
}

struct Cx<'a> {
    source: &'a Source,
    options: &'a Options,
    keys: Vec<KeyReport>,
    notes: Vec<Note>,
    flags: Vec<FlagNote>,
    blockers: Vec<String>,
    /// Calico Helm values collected from several keys, written once at the end.
    calico_values: Map<String, Value>,
    /// Structured keys that write an `extraArgs` flag: flag name -> source key.
    api_args: BTreeMap<String, String>,
    kubelet_args: BTreeMap<String, String>,
    /// Source profile name -> name written to MKE 4k.
    profile_names: BTreeMap<String, String>,
}

const KDD_BLOCKER: &str = "mke3 cluster is using etcdv3 and not kdd backend for calico";
const EBPF_BLOCKER: &str = "mke3 cluster is using the calico ebpf dataplane";

fn proxy_blocker(mode: &str) -> String {
    format!("mke3 cluster is using kube-proxy mode {mode:?}; only iptables is supported")
}

impl Cx<'_> {
    fn classify(&mut self, entry: &Entry) -> KeyReport {
        // Known keys are secret by the schema; unknown ones by their name (an LDAP `readerPassword`).
        let secret = match entry.def {
            Some(d) => d.secret,
            None => is_secret_name(entry.segments.last()),
        };
        let value = match (self.options.redact_reports, secret) {
            (true, true) => redact(&entry.value),
            // Whole-table settings may hold secrets of their own (`password` in a table).
            (true, false) => redact_nested(&entry.value),
            (false, _) => entry.value.clone(),
        };
        let mut report = KeyReport {
            key: entry.source_path(),
            segments: entry.segments.clone(),
            def: entry.def,
            value,
            line: entry.line,
            status: Status::Unknown,
            message: String::new(),
        };
        if entry.empty_table {
            report.status = Status::Skipped;
            report.message = "empty table: sets nothing".to_string();
            return report;
        }
        let Some(def) = entry.def else {
            report.message = if secret {
                "not in the MKE 3 schema; kept out of the MKE 4 file".to_string()
            } else {
                format!(
                    "not in the MKE 3 schema ({}); kept out of the MKE 4 file",
                    inline(&entry.value)
                )
            };
            return report;
        };
        let (status, message) = self.status_of(def, entry);
        report.status = status;
        report.message = message;
        report
    }

    fn status_of(&mut self, def: &'static KeyDef, entry: &Entry) -> (Status, String) {
        let v = &entry.value;
        if def.target == Target::Blocker {
            return match def.name() {
                "calico_kdd" if v.as_bool() == Some(true) => (
                    Status::Converted,
                    "requirement met: Calico uses the Kubernetes datastore".into(),
                ),
                "calico_kdd" => (Status::NotSupported, blocking(KDD_BLOCKER)),
                "calico_ebpf_enabled" if v.as_bool() == Some(true) => {
                    (Status::NotSupported, blocking(EBPF_BLOCKER))
                }
                "calico_ebpf_enabled" => (Status::Skipped, "not set".into()),
                _ => {
                    let mode = v.as_str().unwrap_or_default();
                    if mode == "iptables" {
                        (Status::Skipped, "default value".into())
                    } else {
                        (Status::NotSupported, blocking(&proxy_blocker(mode)))
                    }
                }
            };
        }
        if let Some(gate) = def.gate {
            if !self.source.flag(gate) {
                return (Status::Skipped, format!("switched off by {gate}"));
            }
        }
        if let Some(why) = skip_reason(def, v) {
            return (Status::Skipped, why.to_string());
        }
        match def.target {
            Target::Path(path) => (Status::Converted, format!("spec.{path}")),
            Target::Unsupported(reason) => (Status::NotSupported, reason.text().to_string()),
            Target::Summary => (
                Status::Converted,
                "listed in the Upgrade Summary: create these pools after the upgrade".into(),
            ),
            Target::Blocker => (Status::Skipped, String::new()),
        }
    }

    /// Writes one converted key. An `Err` turns the key into "not supported" with that reason.
    fn apply(&mut self, entry: &Entry, c: &mut MkeConfig) -> Result<(), String> {
        let Some(def) = entry.def else {
            return Ok(());
        };
        if matches!(def.target, Target::Blocker | Target::Summary) {
            // Gates checked in `blockers`, and MetalLB pools printed in the summary.
            return Ok(());
        }
        let v = &entry.value;
        let spec = &mut c.spec;
        let newer = mke4::has_4_1_3_fields(&spec.version);
        let b = v.as_bool().unwrap_or(false);
        let s = v.as_str().unwrap_or_default();
        let n = int_of(v);
        match def.path {
            "auth.backend" => match s {
                "ldap" => {
                    spec.authentication.ldap.enabled = true;
                    self.note(def.path, NoteKind::Warning, "the LDAP server settings are not in the config-toml (GET /enzi/v0/config/auth/ldap holds them): fill in spec.authentication.ldap before applying");
                }
                other => return Err(format!("invalid value {other:?}: expected managed or ldap")),
            },
            "auth.samlEnabled" => spec.authentication.saml.enabled = b,
            "auth.managedPasswordDisabled" => spec.authentication.local_users = Some(!b),
            "auth.sessions.lifetime_minutes" => {
                spec.authentication.expiry.id_tokens = Some(minutes(n)?);
            }
            "auth.sessions.renewal_threshold_minutes" => {
                spec.authentication
                    .expiry
                    .refresh_tokens
                    .get_or_insert_with(Default::default)
                    .valid_if_not_used_for = Some(minutes(n)?);
            }
            "auth.external_identity_provider.clientId" => {
                spec.authentication.oidc.enabled = true;
                spec.authentication.oidc.client_id = Some(s.to_string());
            }
            "auth.external_identity_provider.clientSecret" => {
                spec.authentication.oidc.client_secret = Some(s.to_string());
            }
            "auth.external_identity_provider.issuer" => {
                spec.authentication.oidc.enabled = true;
                spec.authentication.oidc.issuer = Some(s.to_string());
            }
            "auth.saml.idpMetadataURL" => {
                spec.authentication.saml.sso_metadata_url = Some(s.to_string());
            }
            "auth.saml.rootCerts" => spec.authentication.saml.ca_data = Some(s.to_string()),
            "audit_log_configuration.level" => {
                let level = match s {
                    "metadata" => "Metadata",
                    "request" => "Request",
                    other => {
                        return Err(format!(
                            "invalid value {other:?}: expected \"\", metadata or request"
                        ));
                    }
                };
                spec.api_server.audit.enabled = true;
                spec.api_server.audit.level = Some(level.to_string());
            }
            "tracking_configuration.disable_tracking" => spec.tracking.enabled = !b,
            "tracking_configuration.cluster_label" => {
                spec.tracking.cluster_label = Some(s.to_string());
            }
            "tracking_configuration.ops_care" => spec.monitoring.enable_opscare = b,
            "cluster_config.nvidia_device_plugin" => spec.device_plugins.nvidia_gpu.enabled = b,
            "cluster_config.cloud_provider" => {
                spec.cloud_provider.enabled = true;
                let provider = if s == "aws" { "aws" } else { "external" };
                spec.cloud_provider.provider = Some(provider.to_string());
                if provider == "external" {
                    self.note(def.path, NoteKind::Warning, &format!("cloud provider {s:?} runs as an external cloud provider in MKE 4k: deploy its cloud-controller-manager"));
                }
            }
            "cluster_config.pod_cidr" => {
                let cidr = parse_cidr(s)?;
                set_calico(c, "cidrV4", cidr);
            }
            "cluster_config.calico_mtu" => {
                let mtu = positive(n, "an MTU")?;
                set_json(
                    &mut self.calico_values,
                    &["installation", "calicoNetwork", "mtu"],
                    json!(mtu),
                );
            }
            "cluster_config.calico_ip_auto_method" => {
                let method = autodetection(s)?;
                set_json(
                    &mut self.calico_values,
                    &[
                        "installation",
                        "calicoNetwork",
                        "nodeAddressAutodetectionV4",
                    ],
                    method,
                );
            }
            "cluster_config.calico_vxlan_port" => {
                let port = port(n)?;
                set_json(
                    &mut self.calico_values,
                    &["defaultFelixConfiguration", "vxlanPort"],
                    json!(port),
                );
            }
            "cluster_config.vxlan_vni" => {
                let vni = positive(n, "a VNI")?;
                set_json(
                    &mut self.calico_values,
                    &["defaultFelixConfiguration", "vxlanVNI"],
                    json!(vni),
                );
            }
            "cluster_config.unmanaged_cni" => {
                for p in &mut spec.network.providers {
                    p.enabled = false;
                }
                self.note(def.path, NoteKind::Warning, "every MKE 4k CNI provider is disabled (custom CNI): networking must come up within the upgrade's CNI check window or the upgrade rolls back");
            }
            "cluster_config.service_cluster_ip_range" => {
                spec.network.service_cidr = parse_cidr(s)?.to_string();
            }
            "cluster_config.nodeport_range" => {
                parse_range(s)?;
                spec.network.node_port_range = s.to_string();
            }
            "cluster_config.custom_kube_api_server_flags"
            | "cluster_config.custom_kube_controller_manager_flags"
            | "cluster_config.custom_kube_scheduler_flags"
            | "cluster_config.custom_kubelet_flags"
            | "cluster_config.custom_kube_proxy_flags"
            | "cluster_config.custom_kubelet_flags_profiles" => {
                // Flags are converted together at the end, when every structured key that writes
                // a flag is known (collisions are errors).
            }
            "cluster_config.manager_kube_reserved_resources" => {
                spec.kubelet.manager_kube_reserved = reserved(s)?;
            }
            "cluster_config.worker_kube_reserved_resources" => {
                spec.kubelet.worker_kube_reserved = reserved(s)?;
            }
            "cluster_config.kubelet_max_pods" => spec.kubelet.max_pods = bounded(n, 1, 250)?,
            "cluster_config.kubelet_pods_per_core" => {
                spec.kubelet.pods_per_core = bounded(n, 0, i64::from(i32::MAX))?
            }
            "cluster_config.kubelet_event_record_qps" => {
                spec.kubelet.event_record_qps = bounded(n, 0, i64::from(i32::MAX))?
            }
            "cluster_config.kubelet_data_root" => {
                if !s.starts_with('/') {
                    return Err(format!("invalid value {s:?}: expected an absolute path"));
                }
                if !newer {
                    // An unknown field would be refused (or the kubelet would silently move to
                    // /var/lib/kubelet), and the root dir cannot change after install.
                    return Err(format!(
                        "kubelet.kubeletRootDir exists from MKE 4.1.3; not in {}: the kubelet would use /var/lib/kubelet (target 4.1.3 or later to keep {s})",
                        spec.version
                    ));
                }
                spec.kubelet.kubelet_root_dir = Some(s.to_string());
            }
            "cluster_config.kube_protect_kernel_defaults" => {
                spec.kubelet.protect_kernel_defaults = b
            }
            "cluster_config.disable_seccomp_default" => spec.kubelet.seccomp_default = !b,
            "cluster_config.cipher_suites_for_kube_api_server" => {
                self.api_args
                    .insert("tls-cipher-suites".into(), s.to_string());
            }
            "cluster_config.cipher_suites_for_kubelet" => {
                self.kubelet_args
                    .insert("tls-cipher-suites".into(), s.to_string());
            }
            "cluster_config.cipher_suites_for_etcd_server" => {
                spec.etcd.tls_cipher_suites = Some(s.to_string());
            }
            "cluster_config.etcd_storage_quota" => spec.etcd.storage_quota = Some(s.to_string()),
            "cluster_config.kube_scheduler_profiling_enabled" => {
                spec.scheduler.profiling_enabled = Some(b)
            }
            "cluster_config.kube_scheduler_bind_to_all" => spec.scheduler.bind_to_all = Some(b),
            "cluster_config.kube_manager_terminated_pod_gc_threshold" => {
                spec.controller_manager.terminated_pod_gc_threshold =
                    bounded(n, 0, i64::from(i32::MAX))?;
            }
            "cluster_config.kube_api_server_request_timeout" => {
                duration(s)?;
                spec.api_server.request_timeout = s.to_string();
            }
            "cluster_config.cadvisor_enabled" => spec.monitoring.enable_cadvisor = b,
            "cluster_config.kube_api_server_auditing" => spec.api_server.audit.enabled = b,
            "cluster_config.kube_api_server_audit_log_maxage" => {
                spec.api_server.audit.max_age = bounded(n, 0, i64::from(i32::MAX))?
            }
            "cluster_config.kube_api_server_audit_log_maxbackup" => {
                spec.api_server.audit.max_backup = bounded(n, 0, i64::from(i32::MAX))?
            }
            "cluster_config.kube_api_server_audit_log_maxsize" => {
                spec.api_server.audit.max_size = bounded(n, 0, i64::from(i32::MAX))?
            }
            "cluster_config.KubeAPIServerEnableCustomAuditPolicy" => {
                // The gate itself: the policy key below does the writing.
            }
            "cluster_config.KubeAPIServerCustomAuditPolicyYaml" => {
                spec.api_server.audit.custom_policy_yaml = Some(s.to_string());
            }
            "cluster_config.k8s_always_pull_images_ac_enabled" => {
                return Err(format!(
                    "apiServer.alwaysPullImages exists from MKE 4.2; the {} schema has no such field",
                    spec.version
                ));
            }
            "cluster_config.node_local_dns" | "cluster_config.node_local_dns_config_persist" => {
                let Some(nld) = spec.node_local_dns.as_mut() else {
                    return Err(format!(
                        "nodeLocalDNS exists from MKE 4.1.3; not in {}",
                        spec.version
                    ));
                };
                if def.name() == "node_local_dns" {
                    nld.enabled = b;
                } else {
                    nld.node_local_config_persist = b;
                }
            }
            "cluster_config.ingress_controller.enabled" => spec.ingress_controller.enabled = true,
            "cluster_config.ingress_controller.ingress_num_replicas" => {
                spec.ingress_controller.replica_count = bounded(n, 1, 1000)?;
            }
            "cluster_config.ingress_controller.ingress_external_ips" => {
                spec.ingress_controller.external_ips = Some(strings(v));
            }
            "cluster_config.ingress_controller.ingress_enable_lb" => {
                spec.ingress_controller.enable_load_balancer = Some(b);
            }
            "cluster_config.ingress_controller.ingress_preserve_client_ip" => {
                spec.ingress_controller.preserve_client_ip = Some(b);
            }
            "cluster_config.ingress_controller.ingress_exposed_ports" => {
                // Read by the NodePort rule in `finish`.
            }
            "cluster_config.ingress_controller.ingress_node_affinity" => {
                spec.ingress_controller.affinity = toml_to_json(v);
            }
            "cluster_config.ingress_controller.ingress_node_toleration" => {
                let items = match v {
                    toml::Value::Array(a) => a.iter().map(toml_to_json).collect(),
                    other => vec![toml_to_json(other)],
                };
                spec.ingress_controller.tolerations = Some(items);
            }
            "cluster_config.ingress_controller.config_map" => {
                spec.ingress_controller.config_map = Some(string_map(v)?);
            }
            "cluster_config.ingress_controller.ingress_tcp_services" => {
                spec.ingress_controller.tcp_services = Some(string_map(v)?);
            }
            "cluster_config.ingress_controller.ingress_udp_services" => {
                spec.ingress_controller.udp_services = Some(string_map(v)?);
            }
            "cluster_config.ingress_controller.ingress_extra_args.http_port" => {
                spec.ingress_controller.extra_args.http_port = port(n)?;
            }
            "cluster_config.ingress_controller.ingress_extra_args.https_port" => {
                spec.ingress_controller.extra_args.https_port = port(n)?;
            }
            "cluster_config.ingress_controller.ingress_extra_args.enable_ssl_passthrough" => {
                spec.ingress_controller.extra_args.enable_ssl_passthrough = b;
            }
            "cluster_config.ingress_controller.ingress_extra_args.default_ssl_certificate" => {
                spec.ingress_controller.extra_args.default_ssl_certificate = s.to_string();
            }
            "cluster_config.metallb_config.enabled" => {
                if newer {
                    spec.metallb = Some(mke4::Enabled { enabled: true });
                } else {
                    spec.addons = Some(vec![Addon {
                        chart: AddonChart {
                            name: "metallb".into(),
                            repo: "https://metallb.github.io/metallb".into(),
                            values: None,
                            version: "0.14.7".into(),
                        },
                        dry_run: false,
                        enabled: true,
                        kind: "chart".into(),
                        name: "metallb".into(),
                        namespace: "metallb-system".into(),
                    }]);
                }
            }
            "cluster_config.metallb_config.metallb_ip_addr_pool" => {}
            "cluster_config.policy_enforcement.gatekeeper.enabled" => {
                spec.policy_controller.opa_gatekeeper.enabled = b;
            }
            "cluster_config.policy_enforcement.gatekeeper.excluded_namespaces" => {
                spec.policy_controller.opa_gatekeeper.exempt_namespaces = Some(strings(v));
            }
            "cluster_config.core_dns_lameduck_config.enabled" => {
                spec.dns.lameduck.enabled = Some(true);
                // Decision (d): copy the duration as is; MKE 3's default when absent.
                if spec.dns.lameduck.duration.is_none() {
                    spec.dns.lameduck.duration = Some("7s".into());
                }
            }
            "cluster_config.core_dns_lameduck_config.duration" => {
                let d = duration(s)?;
                if d <= 0.0 {
                    return Err(format!(
                        "invalid value {s:?}: the lameduck duration must be more than 0s"
                    ));
                }
                spec.dns.lameduck.duration = Some(s.to_string());
            }
            "cluster_config.k8s_event_rate_limit.event_rate_limit_ac_enabled" => {
                spec.api_server.event_rate_limit.enabled = b;
            }
            other => {
                // Every Target::Path key is handled above; a test converts each of them.
                return Err(format!("ferry has no rule for {other} yet"));
            }
        }
        Ok(())
    }

    fn note(&mut self, key: &str, kind: NoteKind, message: &str) {
        self.notes.push(Note {
            key: key.to_string(),
            kind,
            message: message.to_string(),
        });
    }

    fn finish(&mut self, c: &mut MkeConfig) {
        self.blockers();
        self.oidc_issuer(c);
        self.flag_lists(c);
        self.profiles(c);
        self.calico_values(c);
        self.ingress_node_ports(c);
        self.apply_options(c);
        self.hosts(c);
    }

    fn blockers(&mut self) {
        // (key, reason) in the documented order: KDD, eBPF, kube-proxy mode.
        let mut found: Vec<(&str, String)> = Vec::new();
        match self.source.get("cluster_config.calico_kdd") {
            Some(e) if e.value.as_bool() == Some(true) => {}
            None if self.options.allow_missing_calico_kdd => self.note(
                "cluster_config.calico_kdd",
                NoteKind::Warning,
                "the file has no calico_kdd key (an export older than MKE 3.7?): the upgrade requires cluster_config.calico_kdd = true on the live cluster",
            ),
            _ => found.push(("cluster_config.calico_kdd", KDD_BLOCKER.to_string())),
        }
        if self.source.flag("cluster_config.calico_ebpf_enabled") {
            found.push((
                "cluster_config.calico_ebpf_enabled",
                EBPF_BLOCKER.to_string(),
            ));
        }
        let mode = self
            .source
            .get("cluster_config.kube_proxy_mode")
            .and_then(|e| e.value.as_str())
            .unwrap_or("iptables");
        if mode != "iptables" {
            found.push(("cluster_config.kube_proxy_mode", proxy_blocker(mode)));
        }
        let flag_mode = self
            .source
            .config
            .cluster_config
            .as_ref()
            .and_then(|c| c.custom_kube_proxy_flags.as_ref())
            .and_then(|list| {
                flags::parse_flag_list(list)
                    .into_iter()
                    .find_map(|item| match item {
                        FlagItem::Flag(f) if f.name == "proxy-mode" => Some(f.value),
                        _ => None,
                    })
            });
        if let Some(m) = flag_mode.filter(|m| m != "iptables") {
            let text = proxy_blocker(&m);
            if !found.iter().any(|(_, t)| *t == text) {
                found.push(("cluster_config.custom_kube_proxy_flags", text));
            }
        }
        for (key, text) in found {
            self.note(key, NoteKind::Blocking, &blocking(&text));
            self.blockers.push(text);
        }
    }

    fn oidc_issuer(&mut self, c: &mut MkeConfig) {
        let oidc = &mut c.spec.authentication.oidc;
        if !oidc.enabled || oidc.issuer.as_deref().is_some_and(|i| !i.is_empty()) {
            return;
        }
        let url = self
            .source
            .get("auth.external_identity_provider.wellKnownConfigUrl")
            .and_then(|e| e.value.as_str())
            .unwrap_or_default();
        if let Some(issuer) = url
            .strip_suffix("/.well-known/openid-configuration")
            .filter(|i| !i.is_empty())
        {
            oidc.issuer = Some(issuer.to_string());
            self.note(
                "authentication.oidc.issuer",
                NoteKind::Defaulted,
                &format!("derived from wellKnownConfigUrl: {issuer}"),
            );
        } else {
            self.note(
                "authentication.oidc.issuer",
                NoteKind::Warning,
                "OIDC is enabled without an issuer: set spec.authentication.oidc.issuer",
            );
        }
    }

    /// The four `extraArgs` lists and the kube-proxy flags (sections 4, 4.1, 4.2).
    fn flag_lists(&mut self, c: &mut MkeConfig) {
        let cc = self
            .source
            .config
            .cluster_config
            .clone()
            .unwrap_or_default();
        let converted = |path: &str, keys: &[KeyReport]| {
            keys.iter()
                .any(|k| k.def.is_some_and(|d| d.path == path) && k.status == Status::Converted)
        };
        let lists: [(&str, &str, Option<Vec<String>>); 4] = [
            (
                "custom_kube_api_server_flags",
                "apiServer.extraArgs",
                cc.custom_kube_api_server_flags,
            ),
            (
                "custom_kube_controller_manager_flags",
                "controllerManager.extraArgs",
                cc.custom_kube_controller_manager_flags,
            ),
            (
                "custom_kube_scheduler_flags",
                "scheduler.extraArgs",
                cc.custom_kube_scheduler_flags,
            ),
            (
                "custom_kubelet_flags",
                "kubelet.extraArgs",
                cc.custom_kubelet_flags,
            ),
        ];
        for (key, target, list) in lists {
            let structured = match key {
                "custom_kube_api_server_flags" => std::mem::take(&mut self.api_args),
                "custom_kubelet_flags" => std::mem::take(&mut self.kubelet_args),
                _ => BTreeMap::new(),
            };
            let list = if converted(&format!("cluster_config.{key}"), &self.keys) {
                list.unwrap_or_default()
            } else {
                Vec::new()
            };
            let args = self.flag_map(key, target, &list, structured);
            if args.is_empty() {
                continue;
            }
            let slot = match key {
                "custom_kube_api_server_flags" => &mut c.spec.api_server.extra_args,
                "custom_kube_controller_manager_flags" => &mut c.spec.controller_manager.extra_args,
                "custom_kube_scheduler_flags" => &mut c.spec.scheduler.extra_args,
                _ => &mut c.spec.kubelet.extra_args,
            };
            *slot = Some(args);
        }
        if converted("cluster_config.custom_kube_proxy_flags", &self.keys) {
            let list = cc.custom_kube_proxy_flags.unwrap_or_default();
            self.kube_proxy_flags(c, &list);
        }
    }

    /// Parses one list into a flag map. Structured keys' flags take part in the collision rule.
    fn flag_map(
        &mut self,
        key: &str,
        target: &str,
        list: &[String],
        structured: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let items = flags::parse_flag_list(list);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for item in &items {
            if let FlagItem::Flag(f) = item {
                *counts.entry(f.name.clone()).or_default() += 1;
            }
        }
        for name in structured.keys() {
            *counts.entry(name.clone()).or_default() += 1;
        }
        let mut out = BTreeMap::new();
        for item in items {
            let (item_text, outcome) = match item {
                FlagItem::NotAFlag { original } => (
                    original,
                    FlagOutcome::NotConverted {
                        reason: "not a --flag".into(),
                    },
                ),
                FlagItem::Flag(f) => {
                    let outcome = if counts.get(&f.name).copied().unwrap_or(0) > 1 {
                        FlagOutcome::Error {
                            reason: format!("repeated flag {}; nothing written for it", f.name),
                        }
                    } else if let Some(why) = (key == "custom_kubelet_flags")
                        .then(|| kubelet::extra_arg_rejection(&f.name))
                        .flatten()
                    {
                        FlagOutcome::NotConverted {
                            reason: why.to_string(),
                        }
                    } else {
                        out.insert(f.name.clone(), f.value.clone());
                        FlagOutcome::Converted {
                            target: format!("spec.{target}.{}", f.name),
                        }
                    };
                    (f.original, outcome)
                }
            };
            self.flags.push(FlagNote {
                source: key.to_string(),
                item: item_text,
                outcome,
            });
        }
        for (name, value) in structured {
            if counts.get(&name).copied().unwrap_or(0) > 1 {
                let source = if key == "custom_kubelet_flags" {
                    "cipher_suites_for_kubelet"
                } else {
                    "cipher_suites_for_kube_api_server"
                };
                self.flags.push(FlagNote {
                    source: source.to_string(),
                    item: format!("--{name}={value}"),
                    outcome: FlagOutcome::Error {
                        reason: format!("repeated flag {name}; also set in {key}"),
                    },
                });
            } else {
                out.insert(name, value);
            }
        }
        out
    }

    fn kube_proxy_flags(&mut self, c: &mut MkeConfig, list: &[String]) {
        let items = flags::parse_flag_list(list);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for item in &items {
            if let FlagItem::Flag(f) = item {
                *counts.entry(f.name.clone()).or_default() += 1;
            }
        }
        let kp = &mut c.spec.network.kube_proxy;
        for item in items {
            let (text, outcome) = match item {
                FlagItem::NotAFlag { original } => (
                    original,
                    FlagOutcome::NotConverted {
                        reason: "not a --flag".into(),
                    },
                ),
                FlagItem::Flag(f) if counts.get(&f.name).copied().unwrap_or(0) > 1 => (
                    f.original,
                    FlagOutcome::Error {
                        reason: format!("repeated flag {}; nothing written for it", f.name),
                    },
                ),
                FlagItem::Flag(f) => {
                    let outcome = match kube_proxy_field(kp, &f.name, &f.value) {
                        Ok(Some(field)) => FlagOutcome::Converted {
                            target: format!("spec.network.kubeProxy.{field}"),
                        },
                        Ok(None) => FlagOutcome::NotConverted {
                            reason: "no MKE 4k kube-proxy field".into(),
                        },
                        Err(field) => FlagOutcome::NotConverted {
                            reason: format!("invalid value for {field}"),
                        },
                    };
                    (f.original, outcome)
                }
            };
            self.flags.push(FlagNote {
                source: "custom_kube_proxy_flags".into(),
                item: text,
                outcome,
            });
        }
    }

    /// Kubelet flag profiles -> `kubelet.customProfiles` (section 5).
    fn profiles(&mut self, c: &mut MkeConfig) {
        let converted = self.keys.iter().any(|k| {
            k.def
                .is_some_and(|d| d.path == "cluster_config.custom_kubelet_flags_profiles")
                && k.status == Status::Converted
        });
        if !converted {
            return;
        }
        let profiles = self
            .source
            .config
            .cluster_config
            .as_ref()
            .and_then(|cc| cc.custom_kubelet_flags_profiles.clone())
            .unwrap_or_default();
        let names = profile_names(profiles.keys().map(String::as_str));
        let mut out = Vec::with_capacity(profiles.len());
        for (name, text) in &profiles {
            let final_name = names
                .get(name.as_str())
                .cloned()
                .unwrap_or_else(|| name.clone());
            if &final_name != name {
                self.note(
                    &format!("cluster_config.custom_kubelet_flags_profiles.{name}"),
                    NoteKind::Warning,
                    &format!("profile renamed to {final_name} (a profile name must be a DNS-1123 label other than mke-default-manager / mke-default-worker)"),
                );
            }
            let source = format!("custom_kubelet_flags_profiles.{name}");
            let tokens = flags::split_profile(text);
            let items = flags::parse_flag_list(&tokens);
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for item in &items {
                if let FlagItem::Flag(f) = item {
                    *counts.entry(kubelet_canonical(&f.name)).or_default() += 1;
                }
            }
            let mut values = Map::new();
            for item in items {
                let (text, outcome) = match item {
                    FlagItem::NotAFlag { original } => (
                        original,
                        FlagOutcome::NotConverted {
                            reason: "not a --flag".into(),
                        },
                    ),
                    FlagItem::Flag(f)
                        if counts
                            .get(&kubelet_canonical(&f.name))
                            .copied()
                            .unwrap_or(0)
                            > 1 =>
                    {
                        (
                            f.original,
                            FlagOutcome::Error {
                                reason: format!("repeated flag {}; nothing written for it", f.name),
                            },
                        )
                    }
                    FlagItem::Flag(f) => {
                        let outcome = match kubelet::convert_profile_flag(&f) {
                            Ok(field) => {
                                let path = field.path.join(".");
                                match kubelet::set_path(&mut values, &field) {
                                    Ok(()) => FlagOutcome::Converted {
                                        target: format!("values.{path}"),
                                    },
                                    Err(()) => FlagOutcome::Error {
                                        reason: format!("{path} is set twice"),
                                    },
                                }
                            }
                            Err(why) => FlagOutcome::NotConverted {
                                reason: why.to_string(),
                            },
                        };
                        (f.original, outcome)
                    }
                };
                self.flags.push(FlagNote {
                    source: source.clone(),
                    item: text,
                    outcome,
                });
            }
            out.push(CustomProfile {
                name: final_name,
                values: Value::Object(values),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        c.spec.kubelet.custom_profiles = Some(out);
        // Host assignments are checked against the final names.
        self.profile_names = names;
    }

    fn calico_values(&mut self, c: &mut MkeConfig) {
        if self.calico_values.is_empty() {
            return;
        }
        if self.calico_values.contains_key("defaultFelixConfiguration") {
            // The upgrade output turns the default FelixConfiguration on when it sets fields.
            set_json(
                &mut self.calico_values,
                &["defaultFelixConfiguration", "enabled"],
                json!(true),
            );
        }
        let body = crate::yaml::to_string(&Value::Object(std::mem::take(&mut self.calico_values)))
            .unwrap_or_default();
        let text = format!(
            "kubeletVolumePluginPath: /var/lib/k0s/kubelet\n{}",
            body.trim_end()
        );
        set_calico(c, "values.yaml", &text);
    }

    /// Section 7, rule 6.
    fn ingress_node_ports(&mut self, c: &mut MkeConfig) {
        let range = self
            .source
            .get("cluster_config.nodeport_range")
            .and_then(|e| e.value.as_str())
            .unwrap_or("32768-35535");
        let enabled = self
            .source
            .flag("cluster_config.ingress_controller.enabled");
        let (http, https, why) = if enabled {
            let ports = self
                .source
                .config
                .cluster_config
                .as_ref()
                .and_then(|cc| cc.ingress_controller.as_ref())
                .and_then(|i| i.ingress_exposed_ports.clone())
                .unwrap_or_default();
            let find = |https: bool| {
                ports.iter().find_map(|p| {
                    let is_https = p.name == "https" || p.port == Some(443);
                    let is_http = !is_https && (p.name.starts_with("http") || p.port == Some(80));
                    ((https && is_https) || (!https && is_http))
                        .then_some(p.node_port)
                        .flatten()
                })
            };
            (
                find(false).unwrap_or(33000),
                find(true).unwrap_or(33001),
                "kept from the MKE 3 ingress",
            )
        } else if range == "32768-35535" {
            (
                33000,
                33001,
                "MKE 3 ingress disabled, default NodePort range",
            )
        } else {
            match parse_range(range) {
                Ok((lo, _)) => (
                    lo,
                    lo + 1,
                    "MKE 3 ingress disabled: the first two ports of the custom NodePort range",
                ),
                Err(_) => (
                    33000,
                    33001,
                    "MKE 3 ingress disabled, invalid NodePort range",
                ),
            }
        };
        c.spec.ingress_controller.node_ports = Some(HttpPorts { http, https });
        self.note(
            "ingressController.nodePorts",
            NoteKind::Defaulted,
            &format!("http {http}, https {https} ({why})"),
        );
    }

    fn apply_options(&mut self, c: &mut MkeConfig) {
        apply_options(c, self.options);
        // the MKE 3 cluster's node port range comes with the conversion
        if let Some(p) = self
            .options
            .gateway_port_problem(&c.spec.network.node_port_range)
        {
            self.blockers.push(p);
        }
    }

    fn hosts(&mut self, c: &mut MkeConfig) {
        let managers = self.options.hosts.iter().filter(|h| h.manager).count();
        if managers > 0 && managers % 2 == 0 {
            self.note("hosts", NoteKind::Warning, &format!("{managers} managers: an even number of managers is not sanctioned and upgrades with two managers may fail"));
        }
        for h in &self.options.hosts {
            let mut install_flags = None;
            if let Some(p) = &h.profile {
                match self.profile_names.get(p.as_str()) {
                    Some(name) => install_flags = Some(vec![format!("--profile={name}")]),
                    None => self.note("hosts", NoteKind::Warning, &format!("host {} is labelled with kubelet profile {p:?}, which the config-toml does not define", h.address)),
                }
            }
            c.spec.hosts.push(Host {
                hostname: None,
                install_flags,
                no_taints: None,
                private_address: h.private_address.clone(),
                private_interface: h.private_interface.clone(),
                role: if h.manager {
                    "controller+worker"
                } else {
                    "worker"
                }
                .to_string(),
                ssh: Ssh {
                    address: h.address.clone(),
                    bastion: None,
                    key_path: h.key_path.clone(),
                    port: i64::from(h.port),
                    user: h.user.clone(),
                },
            });
        }
    }
}

fn blocking(reason: &str) -> String {
    format!("blocks the upgrade: {reason}")
}

/// The skip rule of section 1: the documented default, or an empty value when none is
/// documented.
fn skip_reason(def: &KeyDef, v: &toml::Value) -> Option<&'static str> {
    let equal = match def.default {
        Def::Bool(b) => v.as_bool() == Some(b),
        Def::Int(d) => int_of(v) == Some(d),
        Def::Str(d) if def.kind == Kind::Duration => {
            let s = v.as_str().unwrap_or_default();
            s == d || matches!((duration(s), duration(d)), (Ok(a), Ok(b)) if a == b)
        }
        Def::Str(d) => v.as_str() == Some(d),
        Def::None => false,
    };
    if equal {
        return Some("default value");
    }
    // An empty string means "unset" in MKE 3 (`rethinkdb_cache_size = ""` is automatic,
    // `prometheus_memory_limit = ""` is the default), whatever the documented default.
    if v.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Some("not set");
    }
    let empty = match v {
        toml::Value::String(s) => {
            s.trim().is_empty() || (def.kind == Kind::Int && int_of(v) == Some(0))
        }
        toml::Value::Integer(i) => *i == 0,
        toml::Value::Boolean(b) => !b,
        toml::Value::Array(a) => a.is_empty(),
        toml::Value::Table(t) => t.is_empty(),
        _ => false,
    };
    (def.default == Def::None && empty).then_some("not set")
}

fn is_secret_name(name: Option<&String>) -> bool {
    name.is_some_and(|n| {
        let l = n.to_ascii_lowercase();
        ["password", "passphrase", "secret", "token", "bindpw"]
            .iter()
            .any(|w| l.contains(w))
    })
}

/// Replaces every non-empty string inside `v`; booleans and numbers are not secrets.
fn redact(v: &toml::Value) -> toml::Value {
    match v {
        toml::Value::String(s) if !s.is_empty() => toml::Value::String("<redacted>".into()),
        toml::Value::Table(t) => {
            toml::Value::Table(t.iter().map(|(k, x)| (k.clone(), redact(x))).collect())
        }
        toml::Value::Array(a) => toml::Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// Redacts the values of secret-looking keys inside tables.
fn redact_nested(v: &toml::Value) -> toml::Value {
    match v {
        toml::Value::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, x)| {
                    let x = if is_secret_name(Some(k)) {
                        redact(x)
                    } else {
                        redact_nested(x)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        toml::Value::Array(a) => toml::Value::Array(a.iter().map(redact_nested).collect()),
        other => other.clone(),
    }
}

/// A short TOML rendering of a value for messages.
fn inline(v: &toml::Value) -> String {
    let mut s = crate::report::toml_inline(v);
    if s.len() > 80 {
        let cut = (0..=77).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// The integer of an `Int` key (TOML integer or string of digits).
fn int_of(v: &toml::Value) -> Option<i64> {
    match v {
        toml::Value::Integer(i) => Some(*i),
        toml::Value::String(s) => crate::mke3::de::parse_int_str(s).ok().flatten(),
        _ => None,
    }
}

fn minutes(n: Option<i64>) -> Result<String, String> {
    match n {
        Some(m) if m > 0 => Ok(format!("{m}m")),
        other => Err(format!(
            "invalid value {other:?}: expected a positive number of minutes"
        )),
    }
}

fn bounded(n: Option<i64>, lo: i64, hi: i64) -> Result<i64, String> {
    match n {
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        Some(v) => Err(format!("invalid value {v}: expected {lo} to {hi}")),
        None => Err("invalid value: expected an integer".into()),
    }
}

fn positive(n: Option<i64>, what: &str) -> Result<i64, String> {
    match n {
        Some(v) if v > 0 && v <= i64::from(u32::MAX) => Ok(v),
        Some(v) => Err(format!("invalid value {v}: expected {what} greater than 0")),
        None => Err(format!("invalid value: expected {what}")),
    }
}

fn port(n: Option<i64>) -> Result<i64, String> {
    bounded(n, 1, 65535)
}

fn parse_cidr(s: &str) -> Result<&str, String> {
    let bad = || format!("invalid value {s:?}: expected a CIDR such as 10.96.0.0/16");
    let (addr, bits) = s.split_once('/').ok_or_else(bad)?;
    let bits: u8 = bits.parse().map_err(|_| bad())?;
    match addr.parse::<std::net::IpAddr>().map_err(|_| bad())? {
        std::net::IpAddr::V4(_) if bits <= 32 => Ok(s),
        std::net::IpAddr::V6(_) if bits <= 128 => Ok(s),
        _ => Err(bad()),
    }
}

fn parse_range(s: &str) -> Result<(i64, i64), String> {
    let bad = || format!("invalid value {s:?}: expected a port range such as 32768-35535");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: i64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: i64 = hi.trim().parse().map_err(|_| bad())?;
    if lo < 1 || hi > 65535 || lo >= hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// A Go duration in seconds (`300ms`, `1m0s`, `1.5h`, `0`), as Go parses it.
pub(crate) fn duration(s: &str) -> Result<f64, String> {
    crate::go::parse_duration(s.trim())
        .map(|ns| ns as f64 / 1e9)
        .ok_or_else(|| format!("invalid value {s:?}: expected a duration such as 1m0s"))
}

fn reserved(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid value {s:?}: {part:?} is not resource=quantity"))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    if out.is_empty() {
        return Err(format!("invalid value {s:?}: no resource=quantity pairs"));
    }
    Ok(out)
}

/// `calico_ip_auto_method` -> `nodeAddressAutodetectionV4` (section 7, rule 5).
fn autodetection(s: &str) -> Result<Value, String> {
    let v = match s.split_once('=') {
        None if s == "first-found" => json!({ "firstFound": true }),
        None if s == "kubernetes-internal-ip" => json!({ "kubernetes": "NodeInternalIP" }),
        Some(("can-reach", d)) if !d.is_empty() => json!({ "canReach": d }),
        Some(("interface", r)) if !r.is_empty() => json!({ "interface": r }),
        Some(("skip-interface", r)) if !r.is_empty() => json!({ "skipInterface": r }),
        Some(("cidr", list)) if !list.is_empty() => {
            let cidrs: Vec<&str> = list.split(',').map(str::trim).collect();
            json!({ "cidrs": cidrs })
        }
        _ => {
            return Err(format!(
                "invalid value {s:?}: not a Calico autodetection method"
            ));
        }
    };
    Ok(v)
}

fn strings(v: &toml::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn string_map(v: &toml::Value) -> Result<BTreeMap<String, String>, String> {
    let t = v.as_table().ok_or("invalid value: expected a table")?;
    t.iter()
        .map(|(k, x)| match x {
            toml::Value::String(s) => Ok((k.clone(), s.clone())),
            toml::Value::Integer(i) => Ok((k.clone(), i.to_string())),
            toml::Value::Float(f) => Ok((k.clone(), f.to_string())),
            toml::Value::Boolean(b) => Ok((k.clone(), b.to_string())),
            other => Err(format!("invalid value for {k}: {}", parse::describe(other))),
        })
        .collect()
}

/// TOML -> JSON for free-form settings written to MKE 4k.
pub(crate) fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, x)| (k.clone(), toml_to_json(x)))
                .collect(),
        ),
    }
}

fn set_json(root: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for p in parents {
        let entry = node
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        node = next;
    }
    node.insert(last.to_string(), value);
}

fn set_calico(c: &mut MkeConfig, key: &str, value: &str) {
    if let Some(p) = c.calico_mut() {
        p.extra_config
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
    }
}

/// Sets the `network.kubeProxy` field of a kube-proxy flag. `Ok(None)`: no such field;
/// `Err(field)`: the value does not parse.
fn kube_proxy_field(
    kp: &mut mke4::KubeProxy,
    name: &str,
    value: &str,
) -> Result<Option<&'static str>, &'static str> {
    let dur = |field: &'static str| {
        duration(value)
            .map(|_| value.to_string())
            .map_err(|_| field)
    };
    let boolean = |field: &'static str| crate::go::parse_bool(value).ok_or(field);
    let list = |field: &'static str| {
        let items: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if items.is_empty() {
            Err(field)
        } else {
            Ok(items)
        }
    };
    let field = match name {
        "proxy-mode" => {
            if value != "iptables" {
                return Err("mode");
            }
            kp.mode = value.to_string();
            "mode"
        }
        "metrics-bind-address" => {
            if value
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err("metricsBindAddress");
            }
            kp.metrics_bind_address = value.to_string();
            "metricsBindAddress"
        }
        "iptables-sync-period" => {
            kp.iptables.sync_period = dur("iptables.syncPeriod")?;
            "iptables.syncPeriod"
        }
        "iptables-min-sync-period" => {
            kp.iptables.min_sync_period = dur("iptables.minSyncPeriod")?;
            "iptables.minSyncPeriod"
        }
        "iptables-masquerade-bit" => {
            let bit = value
                .parse::<i64>()
                .ok()
                .filter(|b| (0..=31).contains(b))
                .ok_or("iptables.masqueradeBit")?;
            kp.iptables.masquerade_bit = Some(bit);
            "iptables.masqueradeBit"
        }
        "masquerade-all" => {
            kp.iptables.masquerade_all = Some(boolean("iptables.masqueradeAll")?);
            "iptables.masqueradeAll"
        }
        "iptables-localhost-nodeports" => {
            kp.iptables.localhost_node_ports = Some(boolean("iptables.localhostNodePorts")?);
            "iptables.localhostNodePorts"
        }
        "ipvs-sync-period" => {
            kp.ipvs.sync_period = dur("ipvs.syncPeriod")?;
            "ipvs.syncPeriod"
        }
        "ipvs-min-sync-period" => {
            kp.ipvs.min_sync_period = dur("ipvs.minSyncPeriod")?;
            "ipvs.minSyncPeriod"
        }
        "ipvs-scheduler" => {
            if value.is_empty() {
                return Err("ipvs.scheduler");
            }
            kp.ipvs.scheduler = Some(value.to_string());
            "ipvs.scheduler"
        }
        "ipvs-exclude-cidrs" => {
            let items = list("ipvs.excludeCIDRs")?;
            if items.iter().any(|c| parse_cidr(c).is_err()) {
                return Err("ipvs.excludeCIDRs");
            }
            kp.ipvs.exclude_cidrs = Some(items);
            "ipvs.excludeCIDRs"
        }
        "ipvs-strict-arp" => {
            kp.ipvs.strict_arp = Some(boolean("ipvs.strictARP")?);
            "ipvs.strictARP"
        }
        "ipvs-tcp-timeout" => {
            kp.ipvs.tcp_timeout = dur("ipvs.tcpTimeout")?;
            "ipvs.tcpTimeout"
        }
        "ipvs-tcpfin-timeout" => {
            kp.ipvs.tcp_fin_timeout = dur("ipvs.tcpFinTimeout")?;
            "ipvs.tcpFinTimeout"
        }
        "ipvs-udp-timeout" => {
            kp.ipvs.udp_timeout = dur("ipvs.udpTimeout")?;
            "ipvs.udpTimeout"
        }
        "nodeport-addresses" => {
            kp.node_port_addresses = Some(list("nodePortAddresses")?);
            "nodePortAddresses"
        }
        _ => return Ok(None),
    };
    Ok(Some(field))
}

/// The kubelet reads `_` in flag names as `-`, so `--max_pods` and `--max-pods` are one flag.
fn kubelet_canonical(name: &str) -> String {
    name.replace('_', "-")
}

/// Profile names for MKE 4k: DNS-1123 labels, never the two MKE 4k defaults, unique. Names
/// that need a change get a hash of the source name (the algorithm of `rbac-mapping.md`
/// section 5), so the result does not depend on input order.
fn profile_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<String, String> {
    const RESERVED: &[&str] = &["mke-default-manager", "mke-default-worker"];
    let names: Vec<&str> = names.collect();
    let sanitized: Vec<String> = names.iter().map(|n| dns_label(n, 63)).collect();
    // Counted once, so thousands of profiles stay linear.
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for s in &sanitized {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let s = &sanitized[i];
        let collides = counts.get(s.as_str()).copied().unwrap_or(0) > 1;
        let final_name = if s == name && !collides && !RESERVED.contains(&s.as_str()) {
            s.clone()
        } else {
            let hash = sha256_hex(&format!("profile:{name}"));
            let stem = dns_label(name, 63 - 9);
            format!("{stem}-{}", &hash[..8])
        };
        out.insert(name.to_string(), final_name);
    }
    out
}

fn dns_label(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut t = out.trim_matches('-').to_string();
    if t.is_empty() {
        t.push('x');
    }
    t.truncate(max);
    t.trim_end_matches('-').to_string()
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
