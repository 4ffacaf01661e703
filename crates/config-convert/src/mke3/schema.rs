//! Every MKE 3 config-toml key that public sources show (`reference/mke3-config.md`), as data:
//! its type, documented default, report title, gate, and what MKE 4k does with it
//! (`reference/conversion-rules.md` section 6).
//!
//! The table drives the classification of every key (converted, not supported, skipped,
//! unknown), the two compatibility reports and the type checks with line and column. The typed
//! model in [`super::model`] mirrors it; a test asserts that both list the same keys.

/// The value type a key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// An integer, written as a TOML integer or as a string of digits (`"1480"`); `""` means
    /// unset.
    Int,
    Str,
    /// A Go duration string (`"1m"`, `"1m0s"`); compared with its default by value.
    Duration,
    StrList,
    /// A free-form table (a map, or a nested table such as `user_workload_defaults`); one
    /// setting.
    Map,
    /// An array of tables; an empty one may be exported as an empty table. One setting.
    Tables,
}

/// The documented default of a key. Values seen only in example exports are not defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    None,
    Bool(bool),
    Int(i64),
    Str(&'static str),
}

/// Why a key has no MKE 4k equivalent (`conversion-rules.md` section 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Swarm,
    Mke3Only,
    NoField,
    AuthUnsupported,
    MonitoringUnsupported,
    NoScheduledBackups,
    K0sManaged,
    NotDocumented,
    RawFlag,
    License,
}

impl Reason {
    /// The reason text shown in notes and reports.
    pub fn text(self) -> &'static str {
        match self {
            Reason::Swarm => "Swarm feature; MKE 4k has no Swarm",
            Reason::Mke3Only => "MKE 3 controller or UI feature with no MKE 4k equivalent",
            Reason::NoField => "no MKE 4k setting",
            Reason::AuthUnsupported => "documented as not supported by MKE 4k authentication",
            Reason::MonitoringUnsupported => "documented as not supported by MKE 4k monitoring",
            Reason::NoScheduledBackups => "MKE 4k has no scheduled backups",
            Reason::K0sManaged => "set by k0s; not configurable in MKE 4k",
            Reason::NotDocumented => {
                "listed as supported by mkectl, but no MKE 4k field is documented"
            }
            Reason::RawFlag => "no structured MKE 4k field; set the flag in extraArgs by hand",
            Reason::License => "MKE 4k reads the license from license.token",
        }
    }
}

/// What MKE 4k does with a key that is set (not skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Written to this MKE 4 path (under `spec.`).
    Path(&'static str),
    /// No MKE 4k equivalent.
    Unsupported(Reason),
    /// A gate checked by the conversion itself (calico KDD, eBPF, kube-proxy mode).
    Blocker,
    /// Printed in the Upgrade Summary for the operator to apply (MetalLB pools).
    Summary,
}

/// One key of the MKE 3 schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyDef {
    /// Canonical dotted path, e.g. `cluster_config.calico_mtu`.
    pub path: &'static str,
    /// The other spelling of the last segment that real exports or the reference use.
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: DefaultValue,
    /// Title in the human-readable report; empty when no title is known.
    pub title: &'static str,
    pub target: Target,
    /// The key that switches this one on; when the gate is off this key is skipped.
    pub gate: Option<&'static str>,
    /// Printed as `"<redacted>"` in reports.
    pub secret: bool,
}

impl KeyDef {
    /// The last segment of the canonical path.
    pub fn name(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }

    /// The title shown in the human-readable report: the documented one, or one derived from
    /// the key name (underscores to spaces, camelCase split, first letter upper-cased).
    pub fn display_title(&self) -> String {
        if self.title.is_empty() {
            derive_title(self.name())
        } else {
            self.title.to_string()
        }
    }
}

/// `kube_api_server_port` -> `Kube api server port`; `samlLoginText` -> `Saml login text`.
pub fn derive_title(name: &str) -> String {
    let mut words = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            words.push(' ');
            prev_lower = false;
        } else if c.is_ascii_uppercase() && prev_lower {
            words.push(' ');
            words.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            words.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

use DefaultValue as D;
use Kind::*;
use Reason as R;
use Target as T;

const fn k(
    path: &'static str,
    kind: Kind,
    default: DefaultValue,
    title: &'static str,
    target: Target,
) -> KeyDef {
    KeyDef {
        path,
        alias: None,
        kind,
        default,
        title,
        target,
        gate: None,
        secret: false,
    }
}

impl KeyDef {
    const fn gate(mut self, gate: &'static str) -> Self {
        self.gate = Some(gate);
        self
    }
    const fn alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }
    const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

/// Tables the schema knows. A table not listed here (and not inside a [`Kind::Map`] or
/// [`Kind::Tables`] key) is unknown.
pub const TABLES: &[&str] = &[
    "auth",
    "auth.sessions",
    "auth.external_identity_provider",
    "auth.account_lock",
    "auth.samlProxy",
    "auth.samlProxy.credentials",
    "auth.samlProxy.credentials.basic",
    "auth.saml",
    "hardening_configuration",
    "audit_log_configuration",
    "scheduling_configuration",
    "tracking_configuration",
    "trust_configuration",
    "log_configuration",
    "license_configuration",
    "pki",
    "backup_schedule_config",
    "etcd_cleanup_schedule_config",
    "cluster_config",
    "cluster_config.ingress_controller",
    "cluster_config.ingress_controller.ingress_extra_args",
    "cluster_config.metallb_config",
    "cluster_config.policy_enforcement",
    "cluster_config.policy_enforcement.gatekeeper",
    "cluster_config.core_dns_lameduck_config",
    "cluster_config.k8s_event_rate_limit",
];

const SAML_PROXY: &str = "auth.samlProxy.enabled";
const SAML: &str = "auth.samlEnabled";
const ACCOUNT_LOCK: &str = "auth.account_lock.enabled";
const HARDENING: &str = "hardening_configuration.hardening_enabled";
const BACKUP: &str = "backup_schedule_config.enabled";
const ETCD_CLEANUP: &str = "etcd_cleanup_schedule_config.cleanup_enabled";
const PROBES: &str = "cluster_config.calico_controller_probes_tuning";
const AUDIT_POLICY: &str = "cluster_config.KubeAPIServerEnableCustomAuditPolicy";
const ISCSI: &str = "cluster_config.iscsi_enabled";
const NODE_LOCAL_DNS: &str = "cluster_config.node_local_dns";
const INGRESS: &str = "cluster_config.ingress_controller.enabled";
const METALLB: &str = "cluster_config.metallb_config.enabled";
const GATEKEEPER: &str = "cluster_config.policy_enforcement.gatekeeper.enabled";
const LAMEDUCK: &str = "cluster_config.core_dns_lameduck_config.enabled";

/// The keys, grouped as in `mke3-config.md`.
#[rustfmt::skip]
pub const KEYS: &[KeyDef] = &[
    // [auth]
    k("auth.backend", Str, D::Str("managed"), "External authentication providers", T::Path("authentication.ldap.enabled")),
    k("auth.default_new_user_role", Str, D::Str("restrictedcontrol"), "Default new user role", T::Unsupported(R::NoField)),
    k("auth.samlEnabled", Bool, D::None, "SAML Authentication", T::Path("authentication.saml.enabled")),
    k("auth.scimEnabled", Bool, D::None, "SCIM Authentication", T::Unsupported(R::AuthUnsupported)),
    k("auth.samlLoginText", Str, D::None, "", T::Unsupported(R::NoField)),
    k("auth.managedPasswordDisabled", Bool, D::None, "Managed password disabled", T::Path("authentication.localUsers")),
    k("auth.managedPasswordFallbackUser", Str, D::None, "Managed password fallback user", T::Unsupported(R::NoField)),
    // [auth.sessions]
    k("auth.sessions.lifetime_minutes", Int, D::Int(60), "Lifetime minutes", T::Path("authentication.expiry.idTokens")),
    k("auth.sessions.renewal_threshold_minutes", Int, D::Int(20), "Renewal threshold minutes", T::Path("authentication.expiry.refreshTokens.validIfNotUsedFor")),
    k("auth.sessions.per_user_limit", Int, D::Int(10), "Per user limit", T::Unsupported(R::NoField)),
    k("auth.sessions.store_token_per_session", Bool, D::None, "Store token per session", T::Unsupported(R::NoField)),
    // [auth.external_identity_provider]
    k("auth.external_identity_provider.wellKnownConfigUrl", Str, D::None, "External identity provider well known config URL", T::Unsupported(R::NoField)),
    k("auth.external_identity_provider.clientId", Str, D::None, "External identity provider client ID", T::Path("authentication.oidc.clientID")).alias("clientID"),
    k("auth.external_identity_provider.clientSecret", Str, D::None, "", T::Path("authentication.oidc.clientSecret")).secret(),
    k("auth.external_identity_provider.usernameClaim", Str, D::None, "External identity provider username claim", T::Unsupported(R::NoField)),
    k("auth.external_identity_provider.caBundle", Str, D::None, "External identity provider CA bundle", T::Unsupported(R::NoField)),
    k("auth.external_identity_provider.httpProxy", Str, D::None, "External identity provider HTTP proxy", T::Unsupported(R::AuthUnsupported)),
    k("auth.external_identity_provider.httpsProxy", Str, D::None, "External identity provider HTTPS proxy", T::Unsupported(R::AuthUnsupported)),
    k("auth.external_identity_provider.issuer", Str, D::None, "OIDC Authentication", T::Path("authentication.oidc.issuer")),
    k("auth.external_identity_provider.userServiceId", Str, D::None, "External identity provider user service ID", T::Unsupported(R::NoField)),
    k("auth.external_identity_provider.signInCriteria", Tables, D::None, "", T::Unsupported(R::NoField)),
    k("auth.external_identity_provider.adminRoleCriteria", Tables, D::None, "", T::Unsupported(R::NoField)),
    // [auth.account_lock]
    k("auth.account_lock.enabled", Bool, D::None, "Account Lock", T::Unsupported(R::NoField)),
    k("auth.account_lock.failureTrigger", Int, D::None, "", T::Unsupported(R::NoField)).gate(ACCOUNT_LOCK),
    k("auth.account_lock.durationSeconds", Int, D::None, "", T::Unsupported(R::NoField)).gate(ACCOUNT_LOCK),
    // [auth.samlProxy]
    k("auth.samlProxy.enabled", Bool, D::None, "SAML Proxy", T::Unsupported(R::AuthUnsupported)),
    k("auth.samlProxy.proxy_url", Str, D::None, "SAML proxy URL", T::Unsupported(R::AuthUnsupported)).gate(SAML_PROXY),
    k("auth.samlProxy.credentials.basic.user", Str, D::None, "SAML proxy credentials basic", T::Unsupported(R::AuthUnsupported)).gate(SAML_PROXY),
    k("auth.samlProxy.credentials.basic.password", Str, D::None, "SAML proxy credentials basic", T::Unsupported(R::AuthUnsupported)).gate(SAML_PROXY).secret(),
    // [auth.saml]
    k("auth.saml.idpMetadataURL", Str, D::None, "", T::Path("authentication.saml.ssoMetadataURL")).gate(SAML),
    k("auth.saml.spHost", Str, D::None, "", T::Unsupported(R::NoField)).gate(SAML),
    k("auth.saml.rootCerts", Str, D::None, "", T::Path("authentication.saml.caData")).gate(SAML),
    k("auth.saml.tlsSkipVerify", Bool, D::None, "", T::Unsupported(R::NoField)).gate(SAML),
    // [hardening_configuration]
    k("hardening_configuration.hardening_enabled", Bool, D::Bool(false), "Hardening", T::Unsupported(R::NoField)),
    k("hardening_configuration.limit_kernel_capabilities", Bool, D::Bool(false), "", T::Unsupported(R::NoField)).gate(HARDENING),
    k("hardening_configuration.pid_limit", Int, D::Int(0), "", T::Unsupported(R::NoField)).gate(HARDENING),
    k("hardening_configuration.pid_limit_unspecified", Bool, D::Bool(true), "", T::Unsupported(R::NoField)).gate(HARDENING),
    k("hardening_configuration.use_strong_tls_ciphers", Bool, D::Bool(false), "", T::Unsupported(R::NoField)).gate(HARDENING),
    // Small tables
    k("registries", Tables, D::None, "Registries", T::Unsupported(R::NoField)),
    k("audit_log_configuration.level", Str, D::Str(""), "Audit Log Configuration", T::Path("apiServer.audit.level")),
    k("audit_log_configuration.support_dump_include_audit_logs", Bool, D::Bool(false), "Include audit logs in support bundles", T::Unsupported(R::NoField)).alias("support_bundle_include_audit_logs"),
    k("scheduling_configuration.enable_admin_ucp_scheduling", Bool, D::Bool(false), "Admin Scheduling", T::Unsupported(R::Swarm)),
    k("scheduling_configuration.default_node_orchestrator", Str, D::Str("swarm"), "Swarm", T::Unsupported(R::Swarm)),
    k("tracking_configuration.disable_usageinfo", Bool, D::Bool(false), "", T::Unsupported(R::NoField)),
    k("tracking_configuration.disable_tracking", Bool, D::Bool(false), "Tracking", T::Path("tracking.enabled")),
    k("tracking_configuration.cluster_label", Str, D::None, "", T::Path("tracking.clusterLabel")),
    k("tracking_configuration.ops_care", Bool, D::Bool(false), "", T::Path("monitoring.enableOpscare")),
    k("tracking_configuration.anonymize_tracking", Bool, D::None, "", T::Unsupported(R::NoField)),
    k("trust_configuration.require_content_trust", Bool, D::Bool(false), "", T::Unsupported(R::NoField)),
    k("trust_configuration.require_signature_from", StrList, D::None, "", T::Unsupported(R::NoField)),
    k("trust_configuration.allow_repos", StrList, D::None, "", T::Unsupported(R::NoField)),
    k("log_configuration.protocol", Str, D::Str("tcp"), "", T::Unsupported(R::NoField)),
    k("log_configuration.host", Str, D::None, "", T::Unsupported(R::NoField)),
    k("log_configuration.level", Str, D::None, "Log Level Configuration", T::Unsupported(R::NotDocumented)),
    k("license_configuration.auto_refresh", Bool, D::Bool(true), "Auto refresh license", T::Unsupported(R::License)),
    k("license_configuration.omit_telemetry", Bool, D::None, "Omit telemetry", T::Unsupported(R::License)),
    k("custom_api_server_headers", Tables, D::None, "Custom API server headers", T::Unsupported(R::Mke3Only)),
    k("user_workload_defaults", Map, D::None, "User workload defaults", T::Unsupported(R::Swarm)),
    k("pki.client_ca_bundle", Str, D::None, "Client CA bundle", T::Unsupported(R::NoField)),
    k("windows_gmsa", Bool, D::None, "Windows GMSA", T::Unsupported(R::NoField)),
    // [backup_schedule_config]
    k("backup_schedule_config.notification_delay", Int, D::Int(7), "Backup schedule notification delay", T::Unsupported(R::NoScheduledBackups)).alias("notification-delay").gate(BACKUP),
    k("backup_schedule_config.enabled", Bool, D::Bool(false), "Scheduled Backups", T::Unsupported(R::NoScheduledBackups)),
    k("backup_schedule_config.path", Str, D::None, "Backup schedule path", T::Unsupported(R::NoScheduledBackups)).gate(BACKUP),
    k("backup_schedule_config.no_passphrase", Bool, D::Bool(false), "Backup schedule no passphrase", T::Unsupported(R::NoScheduledBackups)).gate(BACKUP),
    k("backup_schedule_config.passphrase", Str, D::None, "Backup schedule passphrase", T::Unsupported(R::NoScheduledBackups)).gate(BACKUP).secret(),
    k("backup_schedule_config.cron_spec", Str, D::None, "Backup schedule cron spec", T::Unsupported(R::NoScheduledBackups)).gate(BACKUP),
    k("backup_schedule_config.include_logs", Bool, D::None, "Backup schedule include logs", T::Unsupported(R::NoScheduledBackups)).gate(BACKUP),
    k("backup_schedule_config.backups_limit", Int, D::None, "Backup schedule backups limit", T::Unsupported(R::NoScheduledBackups)).alias("backup_limits").gate(BACKUP),
    // [etcd_cleanup_schedule_config]
    k("etcd_cleanup_schedule_config.cleanup_enabled", Bool, D::Bool(false), "Etcd Cleanup", T::Unsupported(R::NoField)),
    k("etcd_cleanup_schedule_config.min_ttl_to_keep_seconds", Int, D::Int(0), "Etcd cleanup min ttl to keep seconds", T::Unsupported(R::NoField)).gate(ETCD_CLEANUP),
    k("etcd_cleanup_schedule_config.cron_expression", Str, D::None, "Etcd cleanup cron expression", T::Unsupported(R::NoField)).gate(ETCD_CLEANUP),
    k("etcd_cleanup_schedule_config.defrag_enabled", Bool, D::Bool(false), "Etcd cleanup defrag enabled", T::Unsupported(R::NoField)).gate(ETCD_CLEANUP),
    k("etcd_cleanup_schedule_config.defrag_pause_seconds", Int, D::Int(60), "Etcd cleanup defrag pause seconds", T::Unsupported(R::NoField)).gate(ETCD_CLEANUP),
    k("etcd_cleanup_schedule_config.defrag_timeout_seconds", Int, D::Int(300), "Etcd cleanup defrag timeout seconds", T::Unsupported(R::NoField)).gate(ETCD_CLEANUP),
    // [cluster_config]
    k("cluster_config.controller_port", Int, D::Int(443), "Configurable controller port", T::Unsupported(R::Mke3Only)),
    k("cluster_config.kube_apiserver_port", Int, D::None, "Configurable kube port", T::Unsupported(R::K0sManaged)),
    k("cluster_config.swarm_port", Int, D::Int(2376), "Swarm port", T::Unsupported(R::Swarm)),
    k("cluster_config.swarm_strategy", Str, D::None, "Swarm strategy", T::Unsupported(R::Swarm)),
    k("cluster_config.swarm_only", Bool, D::None, "Swarm only", T::Unsupported(R::Swarm)),
    k("cluster_config.swarm_polling_disabled", Bool, D::Bool(false), "Swarm polling disabled", T::Unsupported(R::Swarm)),
    k("cluster_config.hide_swarm_ui", Bool, D::Bool(false), "Hide swarm UI", T::Unsupported(R::Swarm)),
    k("cluster_config.networks_quota_per_collection", Int, D::None, "Networks quota per collection", T::Unsupported(R::Swarm)),
    k("cluster_config.dns", StrList, D::None, "", T::Unsupported(R::Mke3Only)),
    k("cluster_config.dns_opt", StrList, D::None, "", T::Unsupported(R::Mke3Only)),
    k("cluster_config.dns_search", StrList, D::None, "", T::Unsupported(R::Mke3Only)),
    k("cluster_config.profiling_enabled", Bool, D::Bool(false), "Profiling", T::Unsupported(R::Mke3Only)),
    k("cluster_config.authz_cache_timeout", Int, D::Int(0), "", T::Unsupported(R::Mke3Only)),
    k("cluster_config.kv_timeout", Int, D::Int(5000), "KV timeout", T::Unsupported(R::Mke3Only)),
    k("cluster_config.kv_snapshot_count", Int, D::Int(20000), "KV snapshot count", T::Unsupported(R::Mke3Only)),
    k("cluster_config.external_service_lb", Str, D::None, "External service LB", T::Unsupported(R::Mke3Only)),
    k("cluster_config.cni_installer_url", Str, D::None, "CNI installer URL", T::Unsupported(R::NoField)),
    k("cluster_config.metrics_retention_time", Str, D::None, "Metrics retention time", T::Unsupported(R::MonitoringUnsupported)),
    k("cluster_config.metrics_scrape_interval", Str, D::None, "Metrics scrape interval", T::Unsupported(R::MonitoringUnsupported)),
    k("cluster_config.metrics_disk_usage_interval", Str, D::None, "", T::Unsupported(R::NoField)),
    k("cluster_config.nvidia_device_plugin", Bool, D::Bool(false), "Nvidia device plugin", T::Path("devicePlugins.nvidiaGPU.enabled")),
    k("cluster_config.nvidia_device_partitioner", Bool, D::Bool(true), "", T::Unsupported(R::NoField)),
    k("cluster_config.rethinkdb_cache_size", Str, D::Str("1GB"), "RethinkDB cache size", T::Unsupported(R::Mke3Only)),
    k("cluster_config.exclude_server_identity_headers", Bool, D::Bool(false), "Exclude server identity headers", T::Unsupported(R::Mke3Only)),
    k("cluster_config.cloud_provider", Str, D::None, "Cloud provider", T::Path("cloudProvider")),
    k("cluster_config.pod_cidr", Str, D::Str("192.168.0.0/16"), "Pod CIDR", T::Path("network.providers[calico].extraConfig.cidrV4")),
    k("cluster_config.ipip_mtu", Int, D::None, "IPIP MTU", T::Unsupported(R::NoField)),
    k("cluster_config.calico_mtu", Int, D::None, "Calico MTU", T::Path("network.providers[calico].extraConfig.values.yaml:installation.calicoNetwork.mtu")),
    k("cluster_config.calico_ip_auto_method", Str, D::None, "Calico auto IP", T::Path("network.providers[calico].extraConfig.values.yaml:installation.calicoNetwork.nodeAddressAutodetectionV4")),
    k("cluster_config.calico_kdd", Bool, D::None, "Calico KDD", T::Blocker),
    k("cluster_config.calico_vxlan", Bool, D::None, "Calico VXLAN", T::Unsupported(R::NoField)),
    k("cluster_config.calico_vxlan_mtu", Int, D::None, "Calico VXLAN MTU", T::Unsupported(R::NoField)),
    k("cluster_config.calico_vxlan_port", Int, D::None, "Calico VXLAN port", T::Path("network.providers[calico].extraConfig.values.yaml:defaultFelixConfiguration.vxlanPort")),
    k("cluster_config.vxlan_vni", Int, D::None, "VXLAN VNI", T::Path("network.providers[calico].extraConfig.values.yaml:defaultFelixConfiguration.vxlanVNI")),
    k("cluster_config.calico_strict_affinity", Bool, D::None, "Calico strict affinity", T::Unsupported(R::NoField)),
    k("cluster_config.calico_ebpf_enabled", Bool, D::None, "Calico EBPF", T::Blocker),
    k("cluster_config.calico_controller_probes_tuning", Bool, D::Bool(false), "Calico controller probes tuning", T::Unsupported(R::NoField)),
    k("cluster_config.calico_controller_liveness_probe_failure_threshold", Int, D::Int(0), "Calico liveness probe threshold", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_liveness_probe_success_threshold", Int, D::Int(0), "Calico controller liveness probe success threshold", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_liveness_probe_period_seconds", Int, D::Int(0), "Calico controller liveness probe period seconds", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_liveness_probe_timeout_seconds", Int, D::Int(0), "Calico controller liveness probe timeout seconds", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_liveness_probe_initial_delay_seconds", Int, D::Int(-1), "Calico controller liveness probe initial delay seconds", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_readiness_probe_failure_threshold", Int, D::Int(0), "Calico controller readiness probe failure threshold", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_readiness_probe_success_threshold", Int, D::Int(0), "Calico controller readiness probe success threshold", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_readiness_probe_period_seconds", Int, D::Int(0), "Calico controller readiness probe period seconds", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_readiness_probe_timeout_seconds", Int, D::Int(0), "Calico controller readiness probe timeout seconds", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.calico_controller_readiness_probe_initial_delay_seconds", Int, D::Int(-1), "Calico controller readiness probe initial delay seconds", T::Unsupported(R::NoField)).gate(PROBES),
    k("cluster_config.unmanaged_cni", Bool, D::None, "Unmanaged CNI", T::Path("network.providers[*].enabled")),
    k("cluster_config.secure_overlay", Bool, D::Bool(false), "Secure overlay", T::Unsupported(R::NoField)),
    k("cluster_config.azure_ip_count", Int, D::None, "Azure IP count", T::Unsupported(R::NoField)),
    k("cluster_config.service_cluster_ip_range", Str, D::Str("10.96.0.0/16"), "Service cluster IP range", T::Path("network.serviceCIDR")).alias("service-cluster-ip-range"),
    k("cluster_config.nodeport_range", Str, D::Str("32768-35535"), "Node Port Range", T::Path("network.nodePortRange")),
    k("cluster_config.custom_kube_api_server_flags", StrList, D::None, "Custom kube API server flags", T::Path("apiServer.extraArgs")),
    k("cluster_config.custom_kube_controller_manager_flags", StrList, D::None, "Custom kube controller manager flags", T::Path("controllerManager.extraArgs")),
    k("cluster_config.custom_kubelet_flags", StrList, D::None, "Custom kubelet flags", T::Path("kubelet.extraArgs")),
    k("cluster_config.custom_kube_scheduler_flags", StrList, D::None, "Custom kube scheduler flags", T::Path("scheduler.extraArgs")),
    k("cluster_config.custom_kube_proxy_flags", StrList, D::None, "Custom kube proxy flags", T::Path("network.kubeProxy")),
    k("cluster_config.custom_kubelet_flags_profiles", Map, D::None, "Custom kubelet flags profiles", T::Path("kubelet.customProfiles")),
    k("cluster_config.local_volume_collection_mapping", Bool, D::None, "Local volume collection mapping", T::Unsupported(R::Swarm)),
    k("cluster_config.manager_kube_reserved_resources", Str, D::None, "Manager kube reserved resources", T::Path("kubelet.managerKubeReserved")),
    k("cluster_config.worker_kube_reserved_resources", Str, D::None, "Worker kube reserved resources", T::Path("kubelet.workerKubeReserved")),
    k("cluster_config.kubelet_max_pods", Int, D::Int(110), "Kubelet max pods", T::Path("kubelet.maxPods")),
    k("cluster_config.kubelet_pods_per_core", Int, D::Int(0), "Kubelet pods per core", T::Path("kubelet.podsPerCore")),
    k("cluster_config.kubelet_event_record_qps", Int, D::None, "Kubelet event record QPS", T::Path("kubelet.eventRecordQPS")),
    k("cluster_config.kubelet_data_root", Str, D::None, "Kubelet data root", T::Path("kubelet.kubeletRootDir")),
    k("cluster_config.containerd_root", Str, D::None, "Configurable containerd root", T::Unsupported(R::K0sManaged)),
    k("cluster_config.windows_kubelet_data_root", Str, D::None, "Windows kubelet data root", T::Unsupported(R::K0sManaged)),
    k("cluster_config.windows_containerd_root", Str, D::None, "Windows containerd root", T::Unsupported(R::K0sManaged)),
    k("cluster_config.kube_protect_kernel_defaults", Bool, D::Bool(false), "Kube protect kernel defaults", T::Path("kubelet.protectKernelDefaults")),
    k("cluster_config.disable_seccomp_default", Bool, D::None, "Disable seccomp default", T::Path("kubelet.seccompDefault")),
    k("cluster_config.image_scan_aggregation_enabled", Bool, D::Bool(false), "Image Scan Aggregation", T::Unsupported(R::Mke3Only)),
    k("cluster_config.image_scan_cvss_version", Int, D::None, "Image scan CVSS version", T::Unsupported(R::Mke3Only)),
    k("cluster_config.oidc_client_id", Str, D::None, "", T::Unsupported(R::Mke3Only)),
    k("cluster_config.kube_default_drop_masq_bits", Bool, D::None, "Kube default drop masq bits", T::Unsupported(R::NoField)),
    k("cluster_config.kube_proxy_mode", Str, D::Str("iptables"), "Kube Proxy Mode", T::Blocker),
    k("cluster_config.kube_proxy_no_cleanup_on_start", Bool, D::None, "Kube proxy no cleanup on start", T::Unsupported(R::NoField)),
    k("cluster_config.kube_proxy_use_config_file", Bool, D::None, "Kube proxy use config file", T::Unsupported(R::NoField)),
    k("cluster_config.custom_proxy_config_yaml", Str, D::None, "Custom proxy config YAML", T::Unsupported(R::NoField)),
    k("cluster_config.cipher_suites_for_kube_api_server", Str, D::None, "Cipher suites for kube API server", T::Path("apiServer.extraArgs.tls-cipher-suites")),
    k("cluster_config.cipher_suites_for_kubelet", Str, D::None, "Cipher suites for kubelet", T::Path("kubelet.extraArgs.tls-cipher-suites")),
    k("cluster_config.cipher_suites_for_etcd_server", Str, D::None, "Cipher suites for etcd server", T::Path("etcd.tlsCipherSuites")),
    k("cluster_config.image_prune_schedule", Str, D::None, "Image prune schedule", T::Unsupported(R::Mke3Only)),
    k("cluster_config.cpu_usage_banner_threshold", Int, D::Int(20), "CPU usage banner threshold", T::Unsupported(R::Mke3Only)),
    k("cluster_config.cpu_usage_banner_scrape_interval", Duration, D::Str("10m"), "CPU usage banner scrape interval", T::Unsupported(R::Mke3Only)),
    k("cluster_config.etcd_storage_quota", Str, D::Str("2GB"), "Etcd storage quota", T::Path("etcd.storageQuota")),
    k("cluster_config.kube_api_server_profiling_enabled", Bool, D::Bool(true), "", T::Unsupported(R::RawFlag)),
    k("cluster_config.kube_controller_manager_profiling_enabled", Bool, D::Bool(true), "Kube controller manager profiling enabled", T::Unsupported(R::RawFlag)),
    k("cluster_config.kube_scheduler_profiling_enabled", Bool, D::Bool(true), "Kube scheduler profiling enabled", T::Path("scheduler.profilingEnabled")),
    k("cluster_config.kube_scheduler_bind_to_all", Bool, D::Bool(false), "Kube scheduler bind to all", T::Path("scheduler.bindToAll")),
    k("cluster_config.use_flex_volume_driver", Bool, D::Bool(false), "Use flex volume driver", T::Unsupported(R::NoField)),
    k("cluster_config.pubkey_auth_cache_enabled", Bool, D::Bool(false), "Auth cache", T::Unsupported(R::Mke3Only)),
    k("cluster_config.prometheus_memory_limit", Str, D::Str("2Gi"), "Prometheus memory limit", T::Unsupported(R::MonitoringUnsupported)),
    k("cluster_config.prometheus_memory_request", Str, D::Str("1Gi"), "Prometheus memory request", T::Unsupported(R::MonitoringUnsupported)),
    k("cluster_config.shared_sans", StrList, D::None, "", T::Unsupported(R::NoField)),
    k("cluster_config.kube_manager_terminated_pod_gc_threshold", Int, D::Int(12500), "Kube manager terminated pod GC threshold", T::Path("controllerManager.terminatedPodGCThreshold")),
    k("cluster_config.kube_api_server_request_timeout", Duration, D::Str("1m"), "Kube API server request timeout", T::Path("apiServer.requestTimeout")),
    k("cluster_config.cadvisor_enabled", Bool, D::Bool(false), "CAdvisor enabled", T::Path("monitoring.enableCAdvisor")),
    k("cluster_config.kube_api_server_auditing", Bool, D::Bool(false), "Kube API server auditing", T::Path("apiServer.audit.enabled")),
    k("cluster_config.kube_api_server_audit_log_maxage", Int, D::Int(30), "Kube API server audit log max age", T::Path("apiServer.audit.maxAge")),
    k("cluster_config.kube_api_server_audit_log_maxbackup", Int, D::Int(10), "Kube API server audit log max backup", T::Path("apiServer.audit.maxBackup")),
    k("cluster_config.kube_api_server_audit_log_maxsize", Int, D::Int(10), "Kube API server audit log max size", T::Path("apiServer.audit.maxSize")),
    k("cluster_config.KubeAPIServerCustomAuditPolicyYaml", Str, D::None, "Kube API server custom audit policy YAML", T::Path("apiServer.audit.customPolicyYaml")).gate(AUDIT_POLICY),
    k("cluster_config.KubeAPIServerEnableCustomAuditPolicy", Bool, D::Bool(false), "Kube API server enable custom audit policy", T::Path("apiServer.audit.customPolicyYaml")),
    k("cluster_config.node_exporter_port", Int, D::Int(9100), "Configurable node export port", T::Unsupported(R::MonitoringUnsupported)),
    k("cluster_config.k8s_always_pull_images_ac_enabled", Bool, D::None, "K8s always pull images AC enabled", T::Path("apiServer.alwaysPullImages")),
    k("cluster_config.kms_enabled", Bool, D::None, "KMS enabled", T::Unsupported(R::NoField)),
    k("cluster_config.disable_http2", Bool, D::None, "Disable HTTP2", T::Unsupported(R::NoField)),
    k("cluster_config.unauthenticated_http2_dos_mitigation", Bool, D::None, "Unauthenticated HTTP2 DOS mitigation", T::Unsupported(R::NoField)),
    k("cluster_config.gmsa_allow_non_admins", Bool, D::None, "GMSA allow non admins", T::Unsupported(R::NoField)),
    k("cluster_config.ignore_pod_updates_for_node_selector", Bool, D::None, "Ignore pod updates for node selector", T::Unsupported(R::NoField)),
    k("cluster_config.storage_expt_enabled", Bool, D::None, "Storage export", T::Unsupported(R::NoField)),
    k("cluster_config.pre_logon_message", Str, D::None, "Pre logon message", T::Unsupported(R::Mke3Only)),
    k("cluster_config.cluster_name", Str, D::None, "Cluster name", T::Unsupported(R::NotDocumented)),
    k("cluster_config.iscsi_enabled", Bool, D::Bool(false), "ISCSI", T::Unsupported(R::NoField)),
    k("cluster_config.iscsiadm_path", Str, D::Str("/usr/sbin/iscsiadm"), "ISCSIadm path", T::Unsupported(R::NoField)).gate(ISCSI),
    k("cluster_config.iscsidb_path", Str, D::Str("/etc/iscsi"), "ISCSIdb path", T::Unsupported(R::NoField)).gate(ISCSI),
    k("cluster_config.node_local_dns", Bool, D::Bool(false), "Node local DNS", T::Path("nodeLocalDNS.enabled")),
    k("cluster_config.node_local_dns_config_persist", Bool, D::Bool(false), "", T::Path("nodeLocalDNS.nodeLocalConfigPersist")).gate(NODE_LOCAL_DNS),
    // The compatibility-check example lists "Windows GMSA" under cluster_config.
    k("cluster_config.windows_gmsa", Bool, D::None, "Windows GMSA", T::Unsupported(R::NoField)),
    // Sub-tables of [cluster_config]
    k("cluster_config.image_prune_whitelist", Tables, D::None, "Image prune whitelist", T::Unsupported(R::Mke3Only)),
    k("cluster_config.ingress_controller.enabled", Bool, D::Bool(false), "Ingress controller enabled", T::Path("ingressController.enabled")),
    k("cluster_config.ingress_controller.ingress_num_replicas", Int, D::Int(2), "", T::Path("ingressController.replicaCount")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_external_ips", StrList, D::None, "", T::Path("ingressController.externalIPs")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_enable_lb", Bool, D::Bool(false), "", T::Path("ingressController.enableLoadBalancer")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_preserve_client_ip", Bool, D::Bool(false), "", T::Path("ingressController.preserveClientIP")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_exposed_ports", Tables, D::None, "", T::Path("ingressController.nodePorts")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_node_affinity", Map, D::None, "", T::Path("ingressController.affinity")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_node_toleration", Tables, D::None, "", T::Path("ingressController.tolerations")).gate(INGRESS),
    k("cluster_config.ingress_controller.config_map", Map, D::None, "", T::Path("ingressController.configMap")).alias("ingress_config_map").gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_tcp_services", Map, D::None, "", T::Path("ingressController.tcpServices")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_udp_services", Map, D::None, "", T::Path("ingressController.udpServices")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_extra_args.http_port", Int, D::Int(80), "", T::Path("ingressController.extraArgs.httpPort")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_extra_args.https_port", Int, D::Int(443), "", T::Path("ingressController.extraArgs.httpsPort")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_extra_args.enable_ssl_passthrough", Bool, D::Bool(false), "", T::Path("ingressController.extraArgs.enableSslPassthrough")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_extra_args.default_ssl_certificate", Str, D::None, "", T::Path("ingressController.extraArgs.defaultSslCertificate")).gate(INGRESS),
    k("cluster_config.ingress_controller.ingress_extra_args.default_backend_service", Str, D::None, "", T::Unsupported(R::NoField)).gate(INGRESS),
    k("cluster_config.metallb_config.enabled", Bool, D::Bool(false), "Metallb config enabled", T::Path("metallb.enabled")),
    k("cluster_config.metallb_config.metallb_ip_addr_pool", Tables, D::None, "Metallb IP address pools", T::Summary).gate(METALLB),
    k("cluster_config.policy_enforcement.pod_security_policy", Bool, D::None, "Policy enforcement pod security policy", T::Unsupported(R::NoField)),
    k("cluster_config.policy_enforcement.gatekeeper.enabled", Bool, D::Bool(false), "Policy enforcement gatekeeper enabled", T::Path("policyController.opaGatekeeper.enabled")),
    k("cluster_config.policy_enforcement.gatekeeper.excluded_namespaces", StrList, D::None, "", T::Path("policyController.opaGatekeeper.exemptNamespaces")).gate(GATEKEEPER),
    k("cluster_config.core_dns_lameduck_config.enabled", Bool, D::Bool(false), "Core DNS lameduck config enabled", T::Path("dns.lameduck.enabled")),
    k("cluster_config.core_dns_lameduck_config.duration", Duration, D::Str("7s"), "", T::Path("dns.lameduck.duration")).gate(LAMEDUCK),
    k("cluster_config.k8s_event_rate_limit.event_rate_limit_ac_enabled", Bool, D::None, "K8s event rate limit AC enabled", T::Path("apiServer.eventRateLimit.enabled")),
];

/// (table, key as written) -> definition, for both spellings. Built once: every key of every
/// file is looked up here.
fn index() -> &'static std::collections::HashMap<(&'static str, &'static str), &'static KeyDef> {
    static INDEX: std::sync::OnceLock<
        std::collections::HashMap<(&'static str, &'static str), &'static KeyDef>,
    > = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = std::collections::HashMap::with_capacity(KEYS.len() + 8);
        for def in KEYS {
            let (parent, last) = def.path.rsplit_once('.').unwrap_or(("", def.path));
            m.insert((parent, last), def);
            if let Some(alias) = def.alias {
                m.insert((parent, alias), def);
            }
        }
        m
    })
}

/// Looks a key up by its path as written in the file (either spelling).
pub fn lookup(table: &str, name: &str) -> Option<&'static KeyDef> {
    index().get(&(table, name)).copied()
}

/// The definition of a canonical path.
pub fn by_path(path: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|def| def.path == path)
}

/// Whether `path` is a table the schema knows.
pub fn is_table(path: &str) -> bool {
    TABLES.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique_and_parents_are_known_tables() {
        let mut seen = std::collections::HashSet::new();
        for def in KEYS {
            assert!(seen.insert(def.path), "duplicate schema path {}", def.path);
            if let Some((parent, _)) = def.path.rsplit_once('.') {
                assert!(is_table(parent), "{} has an unknown parent table", def.path);
            }
            if let Some(gate) = def.gate {
                let g =
                    by_path(gate).unwrap_or_else(|| panic!("{}: unknown gate {gate}", def.path));
                assert_eq!(g.kind, Kind::Bool, "gate {gate} must be a bool");
            }
        }
    }

    #[test]
    fn titles_are_derived_when_unknown() {
        assert_eq!(derive_title("kube_api_server_port"), "Kube api server port");
        assert_eq!(derive_title("samlLoginText"), "Saml login text");
        assert_eq!(derive_title("ingress_num_replicas"), "Ingress num replicas");
    }

    #[test]
    fn both_spellings_are_found() {
        assert_eq!(
            lookup("auth.external_identity_provider", "clientID").map(|d| d.path),
            Some("auth.external_identity_provider.clientId")
        );
        assert_eq!(
            lookup("backup_schedule_config", "backup_limits").map(|d| d.path),
            Some("backup_schedule_config.backups_limit")
        );
        assert!(lookup("cluster_config", "no_such_key").is_none());
    }
}
